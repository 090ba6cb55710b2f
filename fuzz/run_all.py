"""Run every fuzz target, each on a temporary copy of its seed corpus.

    python fuzz/run_all.py --seconds 20            # what CI runs: each target 20 s
    python fuzz/run_all.py --runs 10000000 --target command --log-dir /tmp/fuzz-logs
    python fuzz/run_all.py --seconds 30 --target pdu --target framing --keep /tmp/findings

The targets run as subprocesses (atheris takes libFuzzer's flags), one after the
other unless `--jobs J` lets J of them run at once (the machines are shared: keep
the default of 1 for long runs). The corpus is copied to a temporary folder first,
so that neither the inputs libFuzzer adds nor its crash files land in the
repository; `--merge-corpus` copies the inputs a run added back into
fuzz/corpus/NAME/ (do it after a long run, then review the change in size).

Prints, per target, the inputs executed (libFuzzer's stat::number_of_executed_units),
the inputs per second and the time taken; exits 1 on a finding (a crash, an
uncaught exception, a timeout or a memory blow-up), after copying the crashing
inputs to `--keep` if given. Each target has its own largest input (`-max_len`),
which `--max-len` overrides for all.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

FUZZ = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Target:
    script: str
    max_len: int
    what: str


TARGETS = {
    "pdu": Target("fuzz_pdu.py", 4096, "dul.decode_pdu and encode/decode stability"),
    "framing": Target("fuzz_framing.py", 2048, "dul.framing.Framer, a stream in chunks vs whole"),
    "command": Target("fuzz_command.py", 1024, "dimse command set codec and message_from_command"),
    "reassembly": Target("fuzz_reassembly.py", 2048, "dimse Reassembler against a model"),
    "negotiation": Target("fuzz_negotiation.py", 2048, "negotiate() and the acceptor Machine"),
}
_EXECUTED = re.compile(r"stat::number_of_executed_units:\s*(\d+)")
_SPEED = re.compile(r"stat::average_exec_per_sec:\s*(\d+)")
_RSS = re.compile(r"stat::peak_rss_mb:\s*(\d+)")
_DONE = re.compile(r"^#(\d+)\s+DONE.*$", re.MULTILINE)
_ARTIFACT = re.compile(r"(?:crash|leak|timeout|oom|slow-unit)-[0-9a-f]+")


@dataclass
class Result:
    name: str
    executed: int
    per_second: int
    seconds: float
    peak_rss_mb: int
    code: int
    findings: list[str]

    @property
    def failed(self) -> bool:
        return self.code != 0 or bool(self.findings)


def run_target(
    name: str,
    limits: list[str],
    keep: Path | None,
    max_len: int | None,
    log_dir: Path | None,
    merge: bool,
) -> Result:
    """Run one target to its limits; report what it did and found."""
    target = TARGETS[name]
    with tempfile.TemporaryDirectory(prefix=f"fuzz-{name}-") as tmp:
        work = Path(tmp)
        corpus = work / "corpus"
        seeds = FUZZ / "corpus" / name
        shutil.copytree(seeds, corpus)
        before = {p.name for p in corpus.iterdir()}
        artifacts = work / "artifacts"
        artifacts.mkdir()
        if log_dir is not None:
            log_dir.mkdir(parents=True, exist_ok=True)
            log = log_dir / f"fuzz-{name}.log"
        else:
            log = work / "log.txt"
        command = [
            sys.executable,
            str(FUZZ / target.script),
            str(corpus),
            *limits,
            "-print_final_stats=1",
            f"-artifact_prefix={artifacts}/",
            f"-max_len={max_len or target.max_len}",
            "-timeout=10",
            "-rss_limit_mb=1024",
        ]
        print(
            f"[{name}] {' '.join(command[1:])}" + (f"  (log: {log})" if log_dir else ""), flush=True
        )
        started = time.monotonic()
        with log.open("wb") as out:
            code = subprocess.run(
                command, stdout=out, stderr=subprocess.STDOUT, cwd=work
            ).returncode
        seconds = time.monotonic() - started
        text = log.read_text(errors="replace")
        match = _EXECUTED.search(text) or _DONE.search(text)
        executed = int(match.group(1)) if match else 0
        speed = _SPEED.search(text)
        rss = _RSS.search(text)
        found = sorted(p for p in artifacts.iterdir() if _ARTIFACT.fullmatch(p.name))
        result = Result(
            name,
            executed,
            int(speed.group(1)) if speed else 0,
            seconds,
            int(rss.group(1)) if rss else 0,
            code,
            [p.name for p in found],
        )
        if result.failed:
            print(f"[{name}] --- end of the log ---\n{text[-6000:]}", file=sys.stderr)
            for path in found:
                data = path.read_bytes()
                print(
                    f"[{name}] finding {path.name} ({len(data)} bytes): {data[:256].hex()}",
                    file=sys.stderr,
                )
                if keep is not None:
                    keep.mkdir(parents=True, exist_ok=True)
                    shutil.copy(path, keep / f"{name}-{path.name}")
        elif merge:
            added = [p for p in corpus.iterdir() if p.name not in before]
            for path in added:
                shutil.copy(path, seeds / path.name)
            print(f"[{name}] merged {len(added)} new inputs into {seeds.relative_to(FUZZ.parent)}")
        done = _DONE.search(text)
        if done:
            print(f"[{name}] {done.group(0).strip()}")
        status = "FINDING" if result.failed else "ok"
        print(
            f"[{name}] executed {executed} inputs in {seconds:.0f} s "
            f"({result.per_second}/s, peak RSS {result.peak_rss_mb} MB), exit {code}: {status}",
            flush=True,
        )
        return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=int, help="time budget per target (-max_total_time)")
    parser.add_argument("--runs", type=int, help="inputs per target (-runs)")
    parser.add_argument(
        "--target", action="append", choices=sorted(TARGETS), help="run only this one (repeatable)"
    )
    parser.add_argument("--jobs", type=int, default=1, help="targets run at once (default 1)")
    parser.add_argument("--keep", type=Path, help="copy crashing inputs to this folder")
    parser.add_argument("--max-len", type=int, help="largest input for every target (-max_len)")
    parser.add_argument("--log-dir", type=Path, help="write each target's libFuzzer log here")
    parser.add_argument(
        "--merge-corpus", action="store_true", help="add the inputs found to fuzz/corpus/NAME/"
    )
    parser.add_argument("--list", action="store_true", help="list the targets and exit")
    args = parser.parse_args(argv)
    if args.list:
        for name, target in TARGETS.items():
            print(f"{name:12} {target.script:22} max_len {target.max_len:5}  {target.what}")
        return 0
    if args.seconds is None and args.runs is None:
        parser.error("give --seconds N or --runs N (or both)")
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    limits = []
    if args.seconds is not None:
        limits.append(f"-max_total_time={args.seconds}")
    if args.runs is not None:
        limits.append(f"-runs={args.runs}")
    names = list(dict.fromkeys(args.target or TARGETS))

    def one(name: str) -> Result:
        return run_target(name, limits, args.keep, args.max_len, args.log_dir, args.merge_corpus)

    started = time.monotonic()
    if args.jobs == 1:
        results = [one(name) for name in names]
    else:
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            results = list(pool.map(one, names))
    print(
        "executions: "
        + ", ".join(f"{r.name}={r.executed} ({r.per_second}/s)" for r in results)
        + f"; {time.monotonic() - started:.0f} s in all"
    )
    failed = [r.name for r in results if r.failed]
    if failed:
        print(f"findings in: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
