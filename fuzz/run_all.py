"""Run every fuzz target, each on a temporary copy of its seed corpus.

    python fuzz/run_all.py --seconds 60            # each target for 60 s
    python fuzz/run_all.py --runs 1000000          # each target for 1,000,000 inputs
    python fuzz/run_all.py --seconds 30 --target pdu --keep /tmp/findings

The targets run one after the other, as subprocesses (atheris takes libFuzzer's
flags). The corpus is copied to a temporary folder first, so that neither the
inputs libFuzzer adds nor its crash files land in the repository. Prints the number
of inputs each target executed; exits 1 on a finding (a crash, an uncaught
exception, a timeout or a memory blow-up), after copying the crashing inputs to
`--keep` if given.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

FUZZ = Path(__file__).resolve().parent
TARGETS = {
    "pdu": FUZZ / "fuzz_pdu.py",
    "framing": FUZZ / "fuzz_framing.py",
}
_EXECUTED = re.compile(r"stat::number_of_executed_units:\s*(\d+)")
_DONE = re.compile(r"^#(\d+)\s+DONE.*$", re.MULTILINE)
_ARTIFACT = re.compile(r"(?:crash|leak|timeout|oom|slow-unit)-[0-9a-f]+")


def run_target(name: str, limits: list[str], keep: Path | None, max_len: int) -> tuple[int, bool]:
    """Run one target; returns (inputs executed, finding?)."""
    with tempfile.TemporaryDirectory(prefix=f"fuzz-{name}-") as tmp:
        work = Path(tmp)
        corpus = work / "corpus"
        shutil.copytree(FUZZ / "corpus" / name, corpus)
        artifacts = work / "artifacts"
        artifacts.mkdir()
        log = work / "log.txt"
        command = [
            sys.executable,
            str(TARGETS[name]),
            str(corpus),
            *limits,
            "-print_final_stats=1",
            f"-artifact_prefix={artifacts}/",
            f"-max_len={max_len}",
            "-timeout=10",
            "-rss_limit_mb=1024",
        ]
        print(f"[{name}] {' '.join(command[1:])}", flush=True)
        with log.open("wb") as out:
            code = subprocess.run(
                command, stdout=out, stderr=subprocess.STDOUT, cwd=work
            ).returncode
        text = log.read_text(errors="replace")
        match = _EXECUTED.search(text) or _DONE.search(text)
        executed = int(match.group(1)) if match else 0
        found = sorted(p for p in artifacts.iterdir() if _ARTIFACT.fullmatch(p.name))
        finding = code != 0 or bool(found)
        if finding:
            print(text[-6000:], file=sys.stderr)
            for path in found:
                data = path.read_bytes()
                print(f"[{name}] finding {path.name}: {data[:256].hex()}", file=sys.stderr)
                if keep is not None:
                    keep.mkdir(parents=True, exist_ok=True)
                    shutil.copy(path, keep / f"{name}-{path.name}")
        status = "FINDING" if finding else "ok"
        done = _DONE.search(text)
        if done:
            print(f"[{name}] {done.group(0).strip()}")
        print(f"[{name}] executed {executed} inputs, exit {code}: {status}", flush=True)
        return executed, finding


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=int, help="time budget per target (-max_total_time)")
    parser.add_argument("--runs", type=int, help="inputs per target (-runs)")
    parser.add_argument("--target", action="append", choices=sorted(TARGETS), help="run only these")
    parser.add_argument("--keep", type=Path, help="copy crashing inputs to this folder")
    parser.add_argument("--max-len", type=int, default=4096, help="largest input (-max_len)")
    args = parser.parse_args(argv)
    if args.seconds is None and args.runs is None:
        parser.error("give --seconds N or --runs N (or both)")
    limits = []
    if args.seconds is not None:
        limits.append(f"-max_total_time={args.seconds}")
    if args.runs is not None:
        limits.append(f"-runs={args.runs}")
    findings = 0
    totals = {}
    for name in args.target or list(TARGETS):
        executed, finding = run_target(name, limits, args.keep, args.max_len)
        totals[name] = executed
        findings += finding
    print("executions: " + ", ".join(f"{name}={count}" for name, count in totals.items()))
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
