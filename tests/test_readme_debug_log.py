"""The debug logs pasted in README.md ("Reading the debug log") are what the tools print
today (issue 13).

`scripts/debug_log_example.py` is run as a reader would run it (with DCMTK and
pynetdicom as its peers) and its blocks are compared with the README's excerpts, each
marked by `<!-- debug-log: NAME -->` before its code fence. Ours (dicomscu-store,
dicomscp-find) are pasted whole: every line pasted must be in the fresh output, and
every line of the fresh output must be pasted. DCMTK's and pynetdicom's are trimmed
(a line starting with `…` stands for what was cut) and are their programs' business:
only their presence is checked, so a new DCMTK does not fail our tests.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests import peers

REPOSITORY = Path(__file__).resolve().parent.parent
SCRIPT = REPOSITORY / "scripts" / "debug_log_example.py"
OURS = ("dicomscu-store", "dicomscp-find")
THEIRS = ("storescu-store", "pynetdicom-store")
RUN_S = 100.0  # the script takes a few seconds; pytest's own limit is 120 s
ELIDED = "…"  # a README line starting with it stands for lines cut
HOW_TO_FIX = (
    "the debug log no longer matches README.md: run "
    "`.venv/bin/python scripts/debug_log_example.py` and paste its block {name!r} into "
    "README.md after `<!-- debug-log: {name} -->`"
)

pytestmark = pytest.mark.peers


def readme_excerpts(text: str) -> dict[str, list[str]]:
    """NAME -> the lines of the code block after `<!-- debug-log: NAME -->`."""
    found: dict[str, list[str]] = {}
    for match in re.finditer(r"<!-- debug-log: ([\w-]+) -->\n```\w*\n(.*?)^```", text, re.M | re.S):
        assert match[1] not in found, f"two README excerpts named {match[1]!r}"
        found[match[1]] = match[2].splitlines()
    return found


def script_blocks(output: str) -> dict[str, list[str]]:
    """NAME -> the lines of the script's block `===== debug-log: NAME =====`."""
    blocks: dict[str, list[str]] = {}
    name = None
    for line in output.splitlines():
        header = re.fullmatch(r"===== debug-log: ([\w-]+) =====", line)
        if header:
            name = header[1]
            blocks[name] = []
        elif name is not None:
            blocks[name].append(line)
    for lines in blocks.values():
        while lines and not lines[-1]:
            lines.pop()
    return blocks


def differences(name: str, pasted: list[str], fresh: list[str]) -> list[str]:
    """What stops `pasted` (an excerpt of ours, whole) being `fresh`, line by line."""
    kept = [line for line in pasted if not line.startswith(ELIDED)]
    problems = [f"in README, not printed now: {line!r}" for line in kept if line not in fresh]
    problems += [f"printed now, not in README: {line!r}" for line in fresh if line not in kept]
    if len(kept) != len(pasted):
        problems.append(f"{name} is ours and pasted whole: no line may be cut ({ELIDED})")
    return problems


@pytest.fixture(scope="module")
def fresh() -> dict[str, list[str]]:
    for tool in ("storescp", "storescu", "findscu"):
        peers.dcmtk(tool)  # skips, or fails when CI is set, if DCMTK is missing
    peers.require_pynetdicom()
    result = subprocess.run(
        [sys.executable, str(SCRIPT)], cwd=REPOSITORY, stdin=subprocess.DEVNULL,
        capture_output=True, text=True, errors="replace", timeout=RUN_S, check=False,
    )  # fmt: skip
    assert result.returncode == 0, f"{SCRIPT.name} failed:\n{result.stderr}\n{result.stdout}"
    return script_blocks(result.stdout)


@pytest.fixture(scope="module")
def readme() -> dict[str, list[str]]:
    return readme_excerpts((REPOSITORY / "README.md").read_text(encoding="utf-8"))


def test_the_script_prints_every_block_the_readme_shows(
    fresh: dict[str, list[str]], readme: dict[str, list[str]]
) -> None:
    assert sorted(fresh) == sorted(OURS + THEIRS)
    assert sorted(readme) == sorted(OURS + THEIRS)
    for name in OURS + THEIRS:
        assert len(fresh[name]) > 10 and len(readme[name]) > 10, name
        assert readme[name][:2] == fresh[name][:2], name  # the same command lines


@pytest.mark.parametrize("name", OURS)
def test_our_debug_log_in_the_readme_is_what_we_print(
    name: str, fresh: dict[str, list[str]], readme: dict[str, list[str]]
) -> None:
    problems = differences(name, readme[name], fresh[name])
    assert not problems, HOW_TO_FIX.format(name=name) + ":\n" + "\n".join(problems)


def test_the_output_shows_no_traceback_and_no_raw_warning(
    fresh: dict[str, list[str]],
) -> None:
    text = "\n".join(line for lines in fresh.values() for line in lines)
    for word in ("Traceback", "UserWarning", "DeprecationWarning"):
        assert word not in text


def test_a_changed_line_is_found() -> None:
    # The comparison can fail: one README line altered, one dropped, one cut.
    fresh = ["$ dicomscu -D", "D: dul.machine: requestor: Sta1 + Evt1 -> AE-1 -> Sta4", "x"]
    assert not differences("ours", list(fresh), fresh)
    altered = [fresh[0], fresh[1].replace("Sta4", "Sta5"), fresh[2]]
    assert differences("ours", altered, fresh) == [
        f"in README, not printed now: {altered[1]!r}",
        f"printed now, not in README: {fresh[1]!r}",
    ]
    assert differences("ours", fresh[:2], fresh) == ["printed now, not in README: 'x'"]
    assert len(differences("ours", [*fresh, f"{ELIDED} (2 more)"], fresh)) == 1
