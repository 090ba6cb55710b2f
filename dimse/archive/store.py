"""One instance being received into the archive: its temporary file, the first bytes
of its data set, and what went wrong (steps 1 and 4 of storing in
dimse/archive/archive.py; the checks and the commit are the `Archive`'s).
"""

from __future__ import annotations

import errno
import logging
from enum import Enum
from types import TracebackType
from typing import TYPE_CHECKING

from dimse.archive.backend import IndexFull
from dimse.archive.instance_header import SCAN_FIRST
from dimse.files import part10_bytes_header
from dimse.received import Refusal
from dimse.status import StoreStatus
from dimse.storage import PendingInstance

if TYPE_CHECKING:
    from dimse.archive.archive import Archive

# The archive's logger: a store's failures are the archive's to report, under one name.
log = logging.getLogger("dimse.archive.archive")

#: errno values that mean "no room": A700 Out of Resources (PS3.4 B.2.3).
_NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


def status_for(exc: BaseException) -> StoreStatus:
    """The C-STORE failure for a local error: A700H when the disk or the index is full
    (PS3.4 B.2.3), else 0110H."""
    if isinstance(exc, IndexFull) or (isinstance(exc, OSError) and exc.errno in _NO_SPACE):
        return StoreStatus.OUT_OF_RESOURCES
    return StoreStatus.PROCESSING_FAILURE


class _State(Enum):
    OPEN = "open"
    FAILED = "failed"  # a write failed: the rest of the data is dropped, commit gives the status
    DONE = "done"


class PendingStore:
    """An instance being received (see dimse/archive/archive.py): `write` each fragment of
    the data set, then `commit()` for the C-STORE status, or `discard()`.

    A write that fails for lack of space does not raise: the temporary file is removed
    at once, later fragments are dropped, and `commit()` answers A700, so the receiving
    code needs no special path for a full disk.
    """

    def __init__(
        self,
        archive: Archive,
        sop_class_uid: str,
        sop_instance_uid: str,
        transfer_syntax: str,
        relative_path: str,
    ) -> None:
        self.sop_class_uid = sop_class_uid
        self.sop_instance_uid = sop_instance_uid
        self.transfer_syntax = transfer_syntax
        self.relative_path = relative_path
        self._archive = archive
        self._pending: PendingInstance | None = None
        self._head = bytearray()  # the data set's first bytes, to index without a re-read
        self._status = StoreStatus.SUCCESS
        #: why the instance was refused, when it was (for the C-STORE's Error Comment)
        self.refusal: Refusal | None = None
        self._state = _State.OPEN
        shard, _, name = relative_path.rpartition("/")
        header = part10_bytes_header(sop_class_uid, sop_instance_uid, transfer_syntax)
        #: where the data set starts in the file, and its transfer syntax
        self.layout = (len(header), transfer_syntax)
        try:
            directory = archive._shard(shard)
            try:
                self._pending = PendingInstance(
                    directory, name, header, archive.fsync, owner=archive.temp_owner
                )
            except FileNotFoundError:  # the directory was removed behind our back
                del archive._shards[shard]
                directory = archive._shard(shard)
                self._pending = PendingInstance(
                    directory, name, header, archive.fsync, owner=archive.temp_owner
                )
        except OSError as exc:  # PendingInstance removed its own temporary file
            self._fail(exc)

    @property
    def pending(self) -> PendingInstance | None:
        """The temporary file, None once it is gone."""
        return self._pending

    def _fail(self, exc: OSError) -> None:
        log.error("C-STORE %s: %s; refused with %04XH", self.sop_instance_uid, exc, status_for(exc))
        self._status = status_for(exc)
        self._state = _State.FAILED
        self._drop()

    def _drop(self) -> None:
        if self._pending is not None:
            self._pending.discard()
            self._pending = None

    def write(self, data: bytes | bytearray | memoryview) -> int:
        """Append data set bytes; returns len(data) (also when they were dropped)."""
        if self._state is _State.DONE:
            raise ValueError("write to a PendingStore that was committed or discarded")
        if self._pending is not None:
            if len(self._head) < SCAN_FIRST:
                self._head += data[: SCAN_FIRST - len(self._head)]
            try:
                self._pending.write(data)
            except OSError as exc:
                self._fail(exc)
        return len(data)

    def commit(self) -> StoreStatus:
        """Store the instance; returns the C-STORE status (PS3.4 B.2.3)."""
        if self._state is _State.DONE:
            raise ValueError("commit of a PendingStore that was committed or discarded")
        state, self._state = self._state, _State.DONE
        if state is _State.FAILED or self._pending is None:
            return self._status
        return self._archive._commit(self, self._pending)

    def discard(self) -> None:
        """Give the instance up (e.g. the association was aborted): nothing is kept."""
        self._state = _State.DONE
        self._drop()

    def __enter__(self) -> PendingStore:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._state is not _State.DONE:
            self.discard()
