"""Writing received instances to disk so that an acknowledged one is never lost.

Each instance goes to a temporary file in the destination directory, is flushed
and fsynced, renamed to its final name, and the directory is fsynced; only then may
its C-STORE be answered with success. The final name comes from `dimse.naming`,
never from raw text, so nothing is written outside the directory. A failed write
(a full disk) removes the temporary file and is reported as A700H, Out of
Resources, by the caller.

The instance is kept as received: a file meta group (PS3.10) in front of the data
set bytes exactly as they came, in the transfer syntax of their context. Before the
rename, an `InstanceWriter`'s instance is checked (dimse/received.py: the data set
reads to its end, and holds the command's SOP Class and Instance UIDs); one that
fails is discarded and `commit` raises `InvalidInstance`, whose refusal the caller
answers with (C000H or A900H and an Error Comment).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

from dimse.files import part10_bytes_header
from dimse.naming import instance_file_name
from dimse.received import Refusal, check_file_data_set

TEMP_PREFIX = ".incoming-"
#: Numbers the temporary files of this process; `next()` on it is atomic in CPython.
_TEMP_NUMBERS = itertools.count()


def _create_temp(directory: str, mode: int = 0o600, owner: str = "") -> tuple[int, str]:
    """A new, empty temporary file in `directory` (mode 0600 by default, as
    `tempfile.mkstemp` makes them; the umask applies to another), opened for writing. Named by process and counter rather than by
    `mkstemp`'s random letters, which cost as much again as the file's creation; the
    O_EXCL open still refuses any name that exists (one left by an earlier process of
    the same number), and the next number is tried. `owner`, when given, starts the
    name (`.incoming-<owner>@<pid>-<n>.part`): in a folder shared by several machines,
    whose process numbers may coincide, it tells whose file it is."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0)
    tag = f"{owner}@" if owner else ""
    for _ in range(1000):
        path = f"{directory}/{TEMP_PREFIX}{tag}{os.getpid()}-{next(_TEMP_NUMBERS)}.part"
        try:
            return os.open(path, flags, mode), path
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary file name in {directory}")


def fsync_directory(directory: Path) -> None:
    """Make a rename in `directory` durable (POSIX: fsync the directory itself)."""
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class InvalidInstance(Exception):
    """A received instance failed its check; `refusal` says how to answer."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.reason)
        self.refusal = refusal


class PendingInstance:
    """A file being received: write the data set bytes, then `commit()` or `discard()`.
    `check`, when given, is asked once the bytes are synced and before the rename;
    `owner` names the temporary file's owner (`_create_temp`).

    Written with `os.write` on the descriptor, unbuffered: the data comes in PDV-sized
    pieces already, and a buffered file object costs more to make than the writes it
    saves (thousands of instances a second). The file meta header waits for the
    first piece, so that a small instance is written in one call."""

    def __init__(
        self,
        directory: Path,
        final_name: str,
        header: bytes,
        fsync: bool,
        check: Callable[[PendingInstance], Refusal | None] | None = None,
        mode: int = 0o600,
        owner: str = "",
    ) -> None:
        self.directory = directory
        self._final = f"{directory}/{final_name}"
        self._fsync = fsync
        self._check = check
        self._fd, self._temp = _create_temp(str(directory), mode, owner)
        self._temp_path: Path | None = None
        self._header: bytes | None = header
        self.size = len(header)
        self.committed = False
        self._synced = False

    @property
    def final_path(self) -> Path:
        return Path(self._final)

    @property
    def temp_path(self) -> Path:
        if self._temp_path is None:  # made once, when asked (a path object costs ~1 us)
            self._temp_path = Path(self._temp)
        return self._temp_path

    def write(self, data: ReadableBuffer) -> int:
        view = memoryview(data)
        size = len(view)
        if self._header is not None:  # the header and the first piece in one write
            view = memoryview(self._header + view)
            self._header = None
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        self.size += size
        return size

    def flush(self) -> None:
        if self._header is not None:
            self.write(b"")

    def sync(self) -> None:
        """Write what waits, and (with fsync) make the bytes durable, ahead of
        `commit()`: a caller that commits under a lock can leave the slow part outside it."""
        self.flush()
        if self._fsync:
            os.fsync(self._fd)
        self._synced = True

    def _close_file(self) -> None:
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)

    def close(self) -> None:
        """Closing what was not committed gives it up (the reassembler closes a sink
        when its message is lost)."""
        if not self.committed:
            self.discard()

    def commit(self, replace: bool = True, sync_directory: bool = True) -> Path:
        """Make the file durable under its final name. With `replace=False` an
        existing file of that name is kept and this one discarded (FileExistsError).
        `sync_directory=False`: the caller fsyncs the directory (once for several)."""
        try:
            if not self._synced:
                self.sync()
            self._close_file()
            refusal = self._check(self) if self._check is not None else None
            if refusal is not None:
                raise InvalidInstance(refusal)
            if replace:
                os.replace(self._temp, self._final)
            else:
                os.link(self._temp, self._final)  # fails if it exists: atomic
                os.unlink(self._temp)
        except BaseException:
            self.discard()
            raise
        self.committed = True
        if self._fsync and sync_directory:
            fsync_directory(self.directory)
        return self.final_path

    def discard(self) -> None:
        try:
            self._close_file()
        except OSError:
            pass
        try:
            os.unlink(self._temp)
        except FileNotFoundError:
            pass


class InstanceWriter:
    """Writes instances as `<directory>/<SOP Instance UID>.dcm`, the folder made with
    the first one (a retrieve that brings nothing leaves nothing behind), each file
    with the permissions the umask gives (0666 less the umask), as other tools do."""

    def __init__(self, directory: str | os.PathLike[str], *, fsync: bool = True) -> None:
        self.directory = Path(directory)
        self.fsync = fsync
        self._made = False

    def open(
        self, sop_class_uid: str, sop_instance_uid: str, transfer_syntax: str
    ) -> PendingInstance:
        header = part10_bytes_header(sop_class_uid, sop_instance_uid, transfer_syntax)
        if not self._made:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._made = True

        def check(pending: PendingInstance) -> Refusal | None:
            return check_file_data_set(
                pending.temp_path, len(header), transfer_syntax, sop_class_uid, sop_instance_uid
            )

        return PendingInstance(
            self.directory, instance_file_name(sop_instance_uid), header, self.fsync, check, 0o666
        )

    def write(
        self,
        sop_class_uid: str,
        sop_instance_uid: str,
        transfer_syntax: str,
        data: bytes | BinaryIO,
    ) -> Path:
        """Write one whole instance from bytes or a readable stream; returns its path
        (`InvalidInstance` when it fails its check)."""
        pending = self.open(sop_class_uid, sop_instance_uid, transfer_syntax)
        try:
            if isinstance(data, (bytes, bytearray, memoryview)):
                pending.write(data)
            else:
                while chunk := data.read(1 << 20):
                    pending.write(chunk)
        except BaseException:
            pending.discard()
            raise
        return pending.commit()
