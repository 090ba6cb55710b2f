"""The association counts of several worker processes, kept in shared memory, so that
their limits (`max_associations`, `max_per_caller`) hold for the server as a whole.

Made by the supervisor before it forks (`dul.drivers.prefork`): an anonymous shared
mapping of one row per worker, each row its count of associations and its counts by
calling AE title (hashed into `SLOTS` slots: two callers in one slot are counted
together, which can only refuse early, never admit past a limit). A worker writes
only its own row; taking a place reads every row, under flock(2) on a file that each
process opens for itself (a lock the kernel releases if a worker dies holding it;
flock, not a POSIX record lock, whose deadlock check counts processes, not threads,
and refuses waits that are no deadlock). The supervisor empties the row of a worker
that died, before starting another.
"""

from __future__ import annotations

import contextlib
import fcntl
import mmap
import os
import tempfile
import zlib
from collections.abc import Iterator

#: Slots for the counts by calling AE title, in each worker's row.
SLOTS = 4096
_ROW = SLOTS + 1  # the row's first count is the worker's total
#: `take`'s answers.
ADMITTED, FULL, CALLER_FULL = "", "full", "caller"


class SharedTally:
    """The counts of `workers` workers (see the module docstring). After the fork,
    each worker sets `worker` to its number (1 to `workers`)."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.worker = 0
        self._map = mmap.mmap(-1, 8 * workers * _ROW)  # shared with the forked children
        self._counts = memoryview(self._map).cast("q")
        self._lock_file = tempfile.TemporaryFile()
        self._fd = self._lock_file.fileno()
        self._pid = os.getpid()

    def _own_fd(self) -> int:
        """This process's own open file of the lock: one inherited across fork() is
        shared with the supervisor, and flock would not tell them apart."""
        if self._pid != os.getpid():
            self._fd = os.open(f"/proc/self/fd/{self._fd}", os.O_RDWR | os.O_CLOEXEC)
            self._pid = os.getpid()
        return self._fd

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        fd = self._own_fd()
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)

    @staticmethod
    def _slot(caller: str) -> int:
        return 1 + zlib.crc32(caller.encode("utf-8", "surrogateescape")) % SLOTS

    def _sum(self, offset: int) -> int:
        return sum(self._counts[row * _ROW + offset] for row in range(self.workers))

    def take(self, caller: str, most: int, most_per_caller: int | None) -> str:
        """A place for an association of `caller` in this worker: ADMITTED, or FULL
        (`most` open in the server), or CALLER_FULL (`most_per_caller` of its own)."""
        slot = self._slot(caller)
        base = (self.worker - 1) * _ROW
        with self._locked():
            if self._sum(0) >= most:
                return FULL
            if most_per_caller is not None and self._sum(slot) >= most_per_caller:
                return CALLER_FULL
            self._counts[base] += 1
            self._counts[base + slot] += 1
        return ADMITTED

    def give(self, caller: str) -> None:
        """The association of `caller` in this worker ended."""
        base = (self.worker - 1) * _ROW
        with self._locked():
            self._counts[base] -= 1
            self._counts[base + self._slot(caller)] -= 1

    def reset(self, worker: int) -> None:
        """Forget the places of `worker`, which died (the supervisor, before it starts
        another)."""
        base = (worker - 1) * _ROW
        with self._locked():
            self._counts[base : base + _ROW] = memoryview(bytes(8 * _ROW)).cast("q")
