"""The speed benchmark: W1..W10 of the speed issue, one table, optionally JSON.

    python -m tests.bench.run                 # everything: about 25 minutes, 12 of them
                                              # loading 10,000 instances into dcmqrscp
    python -m tests.bench.run --cache DIR     # the same; dcmqrscp's loaded storage area is
                                              # kept in DIR: the next runs take about 13
    python -m tests.bench.run --quick         # small sizes: under a minute
    python -m tests.bench.run --only W1,W5 --repeat 5 --json bench.json

It builds its own data (pydicom, fixed seed) under a temporary directory, starts every
peer itself on free loopback ports, stops them, and removes the directory at the end
(--keep leaves it, with every program's log; it is also left when a workload failed).
The workloads are described in tests/bench/workloads.py; the figures are medians of
`--repeat` runs, 5 by default ("Runs": how many, and half their range as a share of the
median): on a 2-core VM single runs drift by a quarter, and with 3 runs W2 and W4 came
out on either side of their targets from one full run to the next.
Exit status: 0 when every workload ran (MISS included), 1 when one
failed to run, or with --strict when a target is missed.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from tests.bench.common import FULL, QUICK, Bench, Row, machine
from tests.bench.data import DataCache
from tests.bench.peers import BenchError
from tests.bench.workloads import WORKLOADS


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tests.bench.run", description="dicom-ul speed benchmark (W1..W10)."
    )
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated workloads, e.g. W1,W5: W1, W2 client; W3 server (with "
        "Orthanc); W4 query; W5 associations; W6 memory; W7 our client and server; W8 "
        "many associations at once; W9 every core (dicomscp --workers); W10 two nodes on "
        "PostgreSQL against one on SQLite",
    )
    parser.add_argument(
        "--repeat", type=int, help="runs of each pairing (default 5; 1 with --quick)"
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="write the table as JSON here")
    parser.add_argument("--associations", type=int, help="W5: associations (overrides the size)")
    parser.add_argument(
        "--query-instances", type=int, help="W4: instances in each server (overrides the size)"
    )
    parser.add_argument(
        "--cache",
        type=Path,
        metavar="DIR",
        help="keep W4's loaded dcmqrscp storage area here and reuse it in the next runs "
        "(loading 10,000 instances into dcmqrscp takes about 10 minutes)",
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        help="where to make the temporary directory (default: the system's temp dir)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the data and the logs")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    return parser


def _figure(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "s":
        return f"{value:.3f} s"
    if value < 10:
        return f"{value:.2f} {unit}"
    if value >= 100:
        return f"{value:,.0f} {unit}"
    return f"{value:.1f} {unit}"


def _x(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio:.2f}x"


def _spread(samples: Sequence[float]) -> str:
    """How far apart the runs were: n, and (max - min) / 2 as a share of the median."""
    if not samples:
        return "-"  # a bound computed, not a run timed
    if len(samples) < 2:
        return f"{len(samples)}"
    middle = sorted(samples)[len(samples) // 2]
    return f"{len(samples)} ±{(max(samples) - min(samples)) / 2 / middle * 100:.0f}%"


def format_table(rows: Sequence[Row]) -> str:
    header = (
        "Workload",
        "Pairing",
        "Figure",
        "Runs",
        "vs DCMTK",
        "vs pynetdicom",
        "Target",
        "Result",
    )
    lines = [
        (r.workload, r.pairing, _figure(r.value, r.unit), _spread(r.samples), _x(r.vs_dcmtk), _x(r.vs_pynetdicom), r.target, r.verdict)
        for r in rows
    ]  # fmt: skip
    widths = [max(len(str(c)) for c in col) for col in zip(header, *lines, strict=True)]
    out = []
    for n, line in enumerate([header, *lines]):
        cells = [
            str(c).rjust(w) if i in (2, 3, 4, 5) else str(c).ljust(w)
            for i, (c, w) in enumerate(zip(line, widths, strict=True))
        ]
        out.append("  ".join(cells).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    notes = [f"  {r.workload} {r.pairing}: {r.note}" for r in rows if r.note]
    if notes:
        out += ["", "Row notes:", *notes]
    return "\n".join(out)


REPOSITORY = Path(__file__).resolve().parents[2]


def code_state() -> dict[str, Any]:
    """Which code was measured: the commit, and the files of dul/, dimse/, cli/ changed
    since (the benchmark measures the working tree)."""
    repository = REPOSITORY

    def git(*args: str) -> str:
        try:
            result = subprocess.run(
                ["git", *args], cwd=repository, capture_output=True, text=True, timeout=30
            )
        except (OSError, subprocess.TimeoutExpired):
            return ""
        return result.stdout.rstrip() if result.returncode == 0 else ""

    changed = git("status", "--porcelain", "--", "dul", "dimse", "cli").splitlines()
    return {"commit": git("rev-parse", "HEAD"), "changed": [line[3:] for line in changed]}


def _scratch(base: Path | None) -> Path | None:
    """RAM for W4's three archives when there is room (loading 3 x 10,000 files)."""
    shm = Path("/dev/shm")
    if base is None and shm.is_dir() and os.access(shm, os.W_OK):
        stat = os.statvfs(shm)
        if stat.f_bavail * stat.f_frsize > 2 << 30:
            return shm
    return None


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    sizes = QUICK if args.quick else FULL
    if args.associations:
        sizes = replace(sizes, associations=args.associations)
    if args.query_instances:
        sizes = replace(sizes, query=args.query_instances)
    repeat = args.repeat or (1 if args.quick else 5)
    selected = [w.strip().upper() for w in args.only.split(",") if w.strip()] or list(WORKLOADS)
    unknown = [w for w in selected if w not in WORKLOADS]
    if unknown:
        print(
            f"unknown workload(s): {', '.join(unknown)}; choose among {', '.join(WORKLOADS)}",
            file=sys.stderr,
        )
        return 2

    def log(text: str) -> None:
        if not args.quiet:
            print(text, file=sys.stderr, flush=True)

    started = time.perf_counter()
    before = machine()
    code = code_state()
    # An installed package has its bytecode compiled (pip does it); a working tree
    # may not, and PYTHONDONTWRITEBYTECODE would then have every run compile our
    # modules again, which is start-up time a user does not pay.
    for package in ("dul", "dimse", "cli"):
        compileall.compile_dir(str(REPOSITORY / package), quiet=1)
    root = Path(tempfile.mkdtemp(prefix="dicom-ul-bench-", dir=args.workdir))
    scratch_base = _scratch(args.workdir)
    scratch = (
        Path(tempfile.mkdtemp(prefix="dicom-ul-bench-", dir=scratch_base))
        if scratch_base
        else root / "scratch"
    )
    cache = args.cache.resolve() if args.cache else None
    bench = Bench(root, scratch, DataCache(root / "data"), sizes, repeat, log, cache=cache)
    log(
        f"dicom-ul benchmark: {', '.join(selected)}{' (quick)' if args.quick else ''}, {repeat} run(s) each, in {root}"
    )
    rows: list[Row] = []
    errors: list[str] = []
    timings: dict[str, float] = {}
    for name in selected:
        log(f"{name}...")
        t0 = time.perf_counter()
        try:
            rows += WORKLOADS[name](bench)
        except (BenchError, OSError, ValueError) as exc:
            errors.append(f"{name}: {exc}")
            log(f"{name} FAILED: {exc}")
            if not isinstance(exc, BenchError):
                log(traceback.format_exc())
        timings[name] = time.perf_counter() - t0
        log(f"{name} done in {timings[name]:.1f} s")
    elapsed = time.perf_counter() - started
    after = machine()

    table = format_table(rows)
    print(table)
    print()
    for note in bench.notes:
        print(f"- {note}")
    print(
        f"- code: {code['commit'] or 'unknown commit'}"
        + (f" with changes in {', '.join(code['changed'])}" if code["changed"] else "")
        + "."
    )
    print(
        f"- {elapsed:.0f} s in all ({', '.join(f'{k} {v:.0f} s' for k, v in timings.items())}); "
        f"load average {before['loadavg'][0]:.2f} before, {after['loadavg'][0]:.2f} after, "
        f"on {before['cpus']} CPUs; Python {before['python']}."
    )
    for error in errors:
        print(f"ERROR {error}", file=sys.stderr)

    if args.json:
        document = {
            "command": [
                sys.executable,
                "-m",
                "tests.bench.run",
                *(argv if argv is not None else sys.argv[1:]),
            ],
            "quick": args.quick,
            "repeat": repeat,
            "sizes": asdict(sizes),
            "code": code,
            "machine_before": before,
            "machine_after": after,
            "elapsed_s": elapsed,
            "workload_s": timings,
            "rows": [asdict(r) for r in rows],
            "notes": bench.notes,
            "errors": errors,
        }
        args.json.write_text(json.dumps(document, indent=2, default=str) + "\n")
        log(f"JSON written to {args.json}")

    if args.keep or errors:
        log(f"kept {root}" + (f" and {scratch}" if scratch_base else "") + " (data and logs)")
    else:
        shutil.rmtree(root, ignore_errors=True)
        if scratch_base:
            shutil.rmtree(scratch, ignore_errors=True)
    if errors:
        return 1
    if args.strict and any(r.verdict == "MISS" for r in rows):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
