"""What the disk under the archive allows: the time to make one new file durable.

A server that answers a C-STORE only once the instance would survive a power cut must,
for each instance, at least write a new file, fsync it, and fsync its directory: the
new name lives in the directory, and fsync(2) on the file "does not necessarily ensure
that the entry in the directory containing the file has also reached disk". On one
association the peer waits for each answer, so these flushes cannot overlap: their
latency bounds the rate from above, before a single instruction of DICOM work. W3
prints that bound next to the figures, so that a miss can be told apart from a limit
of the disk.
"""

from __future__ import annotations

import os
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path


def durable_write_seconds(directory: Path, size: int, count: int) -> float:
    """Median seconds to create a file of `size` bytes in `directory`, write it, fsync
    it and fsync the directory (`count` files, removed afterwards)."""
    return _write_seconds(directory, size, count, durable=True)


def write_seconds(directory: Path, size: int, count: int) -> float:
    """Median seconds to create a file of `size` bytes in `directory` and write it, no
    fsync: what every receiver pays per instance. On a busy ext4 volume this varies by
    a factor of 30 from one directory to another (inode allocation after much creating
    and deleting), so W3 prints it beside the figures."""
    return _write_seconds(directory, size, count, durable=False)


def _write_seconds(directory: Path, size: int, count: int, *, durable: bool) -> float:
    data = os.urandom(size)
    times: list[float] = []
    with tempfile.TemporaryDirectory(dir=directory, prefix="disk-probe-") as where:
        folder = os.open(where, os.O_RDONLY | os.O_DIRECTORY)
        try:
            for index in range(count):
                started = time.perf_counter()
                fd = os.open(
                    os.path.join(where, f"{index}.dcm"), os.O_CREAT | os.O_EXCL | os.O_WRONLY
                )
                try:
                    view = memoryview(data)
                    while view:
                        view = view[os.write(fd, view) :]
                    if durable:
                        os.fsync(fd)
                finally:
                    os.close(fd)
                if durable:
                    os.fsync(folder)
                times.append(time.perf_counter() - started)
        finally:
            os.close(folder)
    return statistics.median(times)


def durable_commit_seconds(directory: Path, count: int) -> float:
    """Median seconds of one durable SQLite commit (WAL, synchronous=FULL) of a row
    naming a file: what an archive adds to `durable_write_seconds` for each instance
    when its index must find every instance it acknowledged after a power cut."""
    times: list[float] = []
    with tempfile.TemporaryDirectory(dir=directory, prefix="disk-probe-") as where:
        db = sqlite3.connect(os.path.join(where, "index.sqlite"), isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute("CREATE TABLE files (path TEXT)")
            for index in range(count):
                started = time.perf_counter()
                db.execute("INSERT INTO files VALUES (?)", (f"{index}.dcm",))
                times.append(time.perf_counter() - started)
        finally:
            db.close()
    return statistics.median(times)
