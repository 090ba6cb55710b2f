"""The demo (`python -m cli.demo`, what `bash scripts/demo.sh` runs from the README) end
to end: it must exit 0 and its output must show that every step succeeded.

It is run as on a fresh machine: from an empty folder, with a PATH that holds only the
Python interpreter's folder (no DCMTK, no Orthanc: the demo needs neither).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parent.parent
FIND_LEVELS = ("patient", "study", "series", "image")


def _sections(output: str) -> dict[str, str]:
    """The demo's output cut at its `=== title` lines: title -> the text below it."""
    parts = re.split(r"^=== (.*)$", output, flags=re.M)
    return {parts[i].strip(): parts[i + 1] for i in range(1, len(parts) - 1, 2)}


def _one(sections: dict[str, str], prefix: str) -> str:
    matching = [text for title, text in sections.items() if title.startswith(prefix)]
    assert len(matching) == 1, f"one section {prefix!r} expected in {list(sections)}"
    return matching[0]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_demo_runs_end_to_end(tmp_path: Path) -> None:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPOSITORY)
    env["PATH"] = str(Path(sys.executable).parent)
    result = subprocess.run(
        [sys.executable, "-m", "cli.demo"],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        errors="replace",
        timeout=280,
        check=False,
    )
    output = result.stdout
    assert result.returncode == 0, output + result.stderr
    sections = _sections(output)

    start = _one(sections, "Start dicomscp")
    assert re.search(
        r"dicomscp: DICOMSCP listening on 127\.0\.0\.1:\d+, archive .* \(0 instances\)", start
    )

    assert "(exit status" not in output, "a dicomscu step failed"

    echo = _one(sections, "C-ECHO")
    assert "$ dicomscu --echo" in echo

    store = _one(sections, "C-STORE")
    stored = int(re.search(r"send (\d+) of pydicom's test instances", output)[1])  # type: ignore[index]
    assert stored >= 6, "the demo found too few of pydicom's bundled files"
    assert "$ dicomscu --store" in store

    for level in FIND_LEVELS:
        text = _one(sections, f"C-FIND, patient root, {level} level")
        assert re.search(r"^Find Response: 1$", text, re.M), f"no match at the {level} level"
    only_mr = _one(sections, "C-FIND, study root, series level, only MR")
    modalities = re.findall(r"\(0008,0060\) .*\[(\w+)\s*\]", only_mr)
    assert modalities and set(modalities) == {"MR"}

    move = _one(sections, "C-MOVE")
    received = re.search(r"received: \[(.*)\]", move)
    assert received and re.fullmatch(r"'[0-9.]+\.dcm'", received[1]), move

    get = _one(sections, "C-GET")
    got = re.search(r"received (\d+) instances in got/", get)
    assert got and int(got[1]) == stored, get

    stop = _one(sections, "Stop the server")
    assert "dicomscp exit status 0" in stop

    done = re.search(r"^=== Done in [\d.]+ s, (\d+) step\(s\) failed$", output, re.M)
    assert done and done[1] == "0", output


def test_the_readme_runs_the_demo_entry_point() -> None:
    """README -> scripts/demo.sh -> the dicom-ul-demo script -> cli.demo:main."""
    readme = (REPOSITORY / "README.md").read_text(encoding="utf-8")
    assert "bash scripts/demo.sh" in readme
    script = (REPOSITORY / "scripts" / "demo.sh").read_text(encoding="utf-8")
    assert re.search(r"^exec \.venv/bin/dicom-ul-demo\b", script, re.M)
    project = tomllib.loads((REPOSITORY / "pyproject.toml").read_text(encoding="utf-8"))
    assert project["project"]["scripts"]["dicom-ul-demo"] == "cli.demo:main"
    from cli import demo

    assert callable(demo.main)
