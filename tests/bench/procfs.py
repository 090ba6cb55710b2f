"""What Linux's /proc says about the processes the benchmark starts, and the machine.

- `vm_hwm_kib`: the peak resident memory so far of a running process;
- `tree_cpu_seconds`: the CPU time of a server and of every process under it (its
  worker processes), read before and after a client's run: the difference is what the
  server spent on that run;
- `listen_overflows`: the connections this machine dropped because a listening
  socket's accept queue was full.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

#: utime, stime, cutime, cstime are fields 14 to 17 of /proc/PID/stat (proc(5)); in
#: the fields after the command's closing parenthesis (field 3 on) they are 11 to 14.
_TIMES = slice(11, 15)
_PPID = 1  # field 4
_TICKS = os.sysconf("SC_CLK_TCK")


def vm_hwm_kib(pid: int) -> int | None:
    """Peak resident set size so far (VmHWM) of a running process, KiB."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    match = re.search(r"^VmHWM:\s+(\d+) kB", text, re.MULTILINE)
    return int(match.group(1)) if match else None


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat from the state on (the command, in parentheses,
    may hold spaces and parentheses: cut after its last ')'); None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()


def _children_listed(pid: int) -> list[int] | None:
    """The children of `pid` from /proc/PID/task/*/children; None where the kernel
    does not have these files (they need CONFIG_PROC_CHILDREN)."""
    listed: list[int] = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return []  # it has ended
    for task in tasks:
        try:
            listed += [int(c) for c in (task / "children").read_text().split()]
        except FileNotFoundError:
            if not (task / "stat").exists():
                continue  # a thread that just ended
            return None
        except OSError:
            continue
    return listed


def _children_by_parent() -> dict[int, list[int]]:
    """Every process's children, from the parent field of each /proc/*/stat."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields is not None:
                children.setdefault(int(fields[_PPID]), []).append(int(entry.name))
    return children


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process `pid` and of all its descendants now
    running: utime + stime of each (all its threads), plus cutime + cstime (what its
    children that have ended, and were reaped, had used: a worker that exited is
    counted in its parent). A process that ends while it is read is left out."""
    total = 0
    by_parent: dict[int, list[int]] | None = None
    pending, seen = [pid], set()
    while pending:
        current = pending.pop()
        if current in seen:
            continue
        seen.add(current)
        fields = _stat_fields(current)
        if fields is None:
            continue
        total += sum(int(f) for f in fields[_TIMES])
        children = _children_listed(current)
        if children is None:
            if by_parent is None:
                by_parent = _children_by_parent()
            children = by_parent.get(current, [])
        pending += children
    return total / _TICKS


def listen_overflows() -> int | None:
    """TcpExt ListenOverflows of this machine (/proc/net/netstat): connections dropped
    because a listening socket's accept queue was full (the client's kernel sends its
    SYN again after a second). System-wide: the difference over a run counts ours."""
    try:
        lines = Path("/proc/net/netstat").read_text().splitlines()
    except OSError:
        return None
    for names, values in zip(lines[::2], lines[1::2], strict=False):
        if names.startswith("TcpExt:") and values.startswith("TcpExt:"):
            table = dict(zip(names.split()[1:], values.split()[1:], strict=False))
            value = table.get("ListenOverflows")
            return int(value) if value is not None else None
    return None
