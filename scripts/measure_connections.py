"""What idle connections cost dicomscp: the figures of issue 12 (ROBUSTNESS 47, 48).

    .venv/bin/python scripts/measure_connections.py [--connections 4000]

1. RSS per connection that never sends its A-ASSOCIATE-RQ: dicomscp with room for all
   of them (max_pending), RSS before, with the connections open, and after they close.
2. CPU with descriptors exhausted: dicomscp under a limit of 1,024 descriptors and
   1,100 idle connections, its CPU time over 5 seconds.

It prints one line per figure. Loopback only; the server is stopped at the end.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent
LISTENING = re.compile(r"listening on \S+:(\d+)")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start(workdir: Path, config: str, nofile: int) -> tuple[subprocess.Popen[str], int]:
    (workdir / "dicomscp.toml").write_text(config)

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

    process = subprocess.Popen(
        [sys.executable, "-m", "cli.dicomscp", "-q", "--config", str(workdir / "dicomscp.toml"),
         "--archive", str(workdir / "archive"), "--host", "127.0.0.1", "--no-fsync", "0"],
        cwd=REPOSITORY, env={**os.environ, "PYTHONPATH": str(REPOSITORY)},
        stderr=subprocess.PIPE, text=True, preexec_fn=limit,
    )  # fmt: skip
    assert process.stderr is not None
    for line in process.stderr:
        match = LISTENING.search(line)
        if match:
            threading.Thread(target=process.stderr.read, daemon=True).start()  # drain
            return process, int(match[1])
    raise RuntimeError("dicomscp did not start")


def settle(pid: int, seconds: float = 3.0) -> int:
    """RSS once it has stopped moving (sampled every 0.2 s for `seconds` at most)."""
    last, deadline = rss_kib(pid), time.monotonic() + seconds
    while time.monotonic() < deadline:
        threading.Event().wait(0.2)
        now = rss_kib(pid)
        if abs(now - last) < 64:
            return now
        last = now
    return last


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=4000)
    args = parser.parse_args()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, args.connections + 256), hard))
    with tempfile.TemporaryDirectory() as work:
        workdir = Path(work)
        count = args.connections
        process, port = start(workdir, f"max_pending = {count + 100}\n", count + 256)
        try:
            before = settle(process.pid)
            sockets = [socket.create_connection(("127.0.0.1", port)) for _ in range(count)]
            held = settle(process.pid)
            for sock in sockets:
                sock.close()
            after = settle(process.pid, 10.0)
            print(f"RSS before: {before / 1024:.1f} MiB; with {count} idle connections: "
                  f"{held / 1024:.1f} MiB ({(held - before) / count:.1f} KiB each); "
                  f"after they closed: {after / 1024:.1f} MiB ({(after - before) / 1024:+.1f} MiB)")  # fmt: skip
        finally:
            process.terminate()
            process.wait(30)
        process, port = start(workdir, "max_pending = 5000\n", 1024)
        try:
            sockets = [socket.create_connection(("127.0.0.1", port)) for _ in range(1100)]
            settle(process.pid)
            cpu = cpu_seconds(process.pid)
            threading.Event().wait(5.0)
            used = cpu_seconds(process.pid) - cpu
            print(f"CPU with descriptors exhausted (limit 1,024, 1,100 idle connections): "
                  f"{used:.2f} s in 5 s ({used / 5 * 100:.1f}% of a core)")  # fmt: skip
            for sock in sockets:
                sock.close()
        finally:
            process.terminate()
            process.wait(30)


if __name__ == "__main__":
    main()
