"""The handlers of `dicomscp`: verification, storage, query/retrieve and worklist
(PS3.4 A, B, C, K) over an `Archive` and a worklist folder.

Storage streams each data set into the archive as it arrives (`open_store`), so a
large instance is never held in memory. C-FIND at every level of the Patient Root
and Study Root models, and Modality Worklist C-FIND when a folder is configured.
C-MOVE sends to destinations from configuration only: an AE title the
configuration does not name is answered A801H, whatever address the caller has.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pydicom.dataset import Dataset

from dimse.archive.archive import Archive
from dimse.archive.conditions import QueryError
from dimse.archive.store import PendingStore
from dimse.archive.worklist import Worklist
from dimse.messages import C_FIND_RQ, C_GET_RQ, C_MOVE_RQ, C_STORE_RQ
from dimse.models import LEVELS, MODALITY_WORKLIST_FIND, Root, levels_of, root_of
from dimse.scp import Caller, Handlers, HandlerStatus, StoreSink
from dimse.status import FindStatus, GetStatus, MoveStatus
from dul.negotiation import RequestorsChoice

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

log = logging.getLogger("dimse.archive.handlers")

#: The codes of a service whose identifier has a Query/Retrieve Level (PS3.4 C.4).
QueryCodes = type[FindStatus] | type[MoveStatus] | type[GetStatus]


class _ArchiveSink(StoreSink):
    """A C-STORE data set streamed into the archive."""

    def __init__(self, pending: PendingStore) -> None:
        self.pending = pending

    def write(self, data: ReadableBuffer) -> int:
        return self.pending.write(memoryview(data))

    def close(self) -> None:
        self.pending.discard()  # a no-op once committed

    def commit(self) -> int:
        status = int(self.pending.commit())
        refusal = self.pending.refusal
        if refusal is not None and status == refusal.status:
            raise HandlerStatus(status, refusal.comment)
        return status


class ArchiveHandlers(Handlers):
    """What `dicomscp` serves."""

    serves_storage = True
    serves_query = True

    def __init__(
        self,
        archive: Archive,
        *,
        destinations: Mapping[str, tuple[str, int]] | None = None,
        worklist: Path | None = None,
        move_allowed: Callable[[str], bool] | None = None,
    ) -> None:
        self.archive = archive
        self.destinations = dict(destinations or {})
        self.worklist = Worklist(worklist) if worklist is not None else None
        self.move_allowed = move_allowed

    def contexts(self) -> Mapping[str, Sequence[str] | RequestorsChoice]:
        supported = dict(super().contexts())
        if self.worklist is None:
            supported.pop(MODALITY_WORKLIST_FIND, None)  # refused at negotiation
        return supported

    # -- storage ------------------------------------------------------------------

    def open_store(
        self, caller: Caller, request: C_STORE_RQ, transfer_syntax: str
    ) -> StoreSink | None:
        pending = self.archive.begin_store(
            request.affected_sop_class_uid, request.affected_sop_instance_uid, transfer_syntax
        )
        return _ArchiveSink(pending)

    # -- query ------------------------------------------------------------------------

    @staticmethod
    def _level(root: Root, identifier: Dataset, codes: QueryCodes) -> str:
        level = str(identifier.get("QueryRetrieveLevel", "") or "").strip().upper()
        if level not in LEVELS:
            raise HandlerStatus(
                codes.UNABLE_TO_PROCESS,
                f"Query/Retrieve Level {level or '(none)'} is not one of {', '.join(LEVELS)}",
            )
        if level not in levels_of(root):
            raise HandlerStatus(
                codes.IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS,
                f"the {root.value} root model has no {level} level",
            )
        return level

    def find(self, caller: Caller, request: C_FIND_RQ, identifier: Dataset) -> Iterator[Dataset]:
        root = root_of(request.affected_sop_class_uid)
        try:
            if root is Root.WORKLIST:
                if self.worklist is None:
                    raise HandlerStatus(
                        FindStatus.SOP_CLASS_NOT_SUPPORTED, "no worklist is configured"
                    )
                return self.worklist.find(identifier)
            if root is None:
                raise HandlerStatus(FindStatus.SOP_CLASS_NOT_SUPPORTED)
            level = self._level(root, identifier, FindStatus)
            return self.archive.find(identifier, root, level)
        except QueryError as exc:  # an identifier that cannot be answered: its status
            raise HandlerStatus(exc.status_in(FindStatus), str(exc)[:64]) from exc

    # -- retrieve -----------------------------------------------------------------------

    def retrieve(
        self, caller: Caller, request: C_MOVE_RQ | C_GET_RQ, identifier: Dataset
    ) -> list[Path]:
        codes: type[MoveStatus] | type[GetStatus] = (
            MoveStatus if isinstance(request, C_MOVE_RQ) else GetStatus
        )
        root = root_of(request.affected_sop_class_uid)
        if root is None or root is Root.WORKLIST:
            raise HandlerStatus(codes.SOP_CLASS_NOT_SUPPORTED)
        level = self._level(root, identifier, codes)
        try:
            instances = self.archive.instances(identifier, root, level)
        except QueryError as exc:  # e.g. no Unique Key of the level: its status
            raise HandlerStatus(exc.status_in(codes), str(exc)[:64]) from exc
        return [instance.path for instance in instances]

    def destination(self, caller: Caller, ae_title: str) -> tuple[str, int] | None:
        if self.move_allowed is not None and not self.move_allowed(caller.calling_ae):
            log.warning("C-MOVE from %r refused: not allowed to move", caller.calling_ae)
            return None
        return self.destinations.get(ae_title)
