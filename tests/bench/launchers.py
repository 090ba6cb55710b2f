"""The small programs that start the benchmark's clients and report on them.

Each runs in its own small interpreter (`python -S -c PROGRAM`), forks the client(s)
and reaps them with os.wait4, so that the time and the peak memory are those of the
client alone: LAUNCHER for one client (peers.run_client), FLEET for many at once
(W8, W9, W10).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

#: Runs a client and reports its wall time and peak RSS (JSON into argv[1]).
#:
#: Why not os.wait4 on the client itself: Linux carries the parent's RSS high-water mark
#: into a child's ru_maxrss at fork/exec, so every child of this (70 MB) process would
#: report at least 70 MB. Forked from this small interpreter (python -S, about 9 MB),
#: the client's ru_maxrss is its own (floor: the launcher's 9 MB). The time runs from
#: just before the fork to the reaping: the client's process start is included, the
#: launcher's own start is not. Signals for the client reach it through the process
#: group; the launcher ignores SIGINT/SIGTERM and exits with the client's status.
LAUNCHER = """
import json, os, signal, sys, time
report, argv = sys.argv[1], sys.argv[2:]
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGTERM, signal.SIG_IGN)
started = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.execvp(argv[0], argv)
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
seconds = time.perf_counter() - started
with open(report, "w") as f:
    json.dump({"seconds": seconds, "maxrss_kib": usage.ru_maxrss}, f)
code = os.waitstatus_to_exitcode(status)
os._exit(code if code >= 0 else 128 - code)
"""


#: Starts many clients at once and waits for them all (W8): argv[1] is a JSON file of
#: argv lists; each is started with posix_spawn (stdout and stderr inherited: the log),
#: one after the other as fast as they go, then every one is reaped. Prints one JSON
#: line: `seconds` from just before the first start to the last exit (this
#: interpreter's own start excluded, as LAUNCHER excludes its own), `spawn_s` (the
#: last start), `ok`/`failed` (exit statuses), `cpu_s` (user + system time of them
#: all) and their peak RSS (`max_rss_kib`, `sum_rss_kib`: shared libraries are counted
#: in each). Exit status 1 if any failed. Run it under LAUNCHER (`run_client`).
FLEET = """
import json, os, signal, sys, time
with open(sys.argv[1]) as f:
    commands = json.load(f)
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGTERM, signal.SIG_IGN)
default = (signal.SIGINT, signal.SIGTERM)
started = time.perf_counter()
running = {os.posix_spawnp(argv[0], argv, os.environ, setsigdef=default) for argv in commands}
spawned = time.perf_counter()
codes, cpu, rss = [], 0.0, []
while running:
    pid, status, usage = os.wait4(-1, 0)
    if pid in running:
        running.discard(pid)
        codes.append(os.waitstatus_to_exitcode(status))
        cpu += usage.ru_utime + usage.ru_stime
        rss.append(usage.ru_maxrss)
ended = time.perf_counter()
failed = sum(1 for code in codes if code != 0)
print(json.dumps({
    "seconds": ended - started, "spawn_s": spawned - started, "ok": len(codes) - failed,
    "failed": failed, "cpu_s": cpu, "max_rss_kib": max(rss), "sum_rss_kib": sum(rss),
}), flush=True)
os._exit(1 if failed else 0)
"""


def fleet_argv(commands: Sequence[Sequence[str]], path: Path) -> list[str]:
    """The argv of FLEET starting `commands` all at once (written to `path`, JSON)."""
    path.write_text(json.dumps([list(c) for c in commands]))
    return [sys.executable, "-S", "-c", FLEET, str(path)]
