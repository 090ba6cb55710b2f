"""The hook API of a service provider: what a server does, apart from the protocol.

Subclass `Handlers` and override what your server serves; a provider
(`dimse.scp.Provider` blocking, `dimse.aio.Provider` with asyncio) calls the hooks
and does the protocol around them (`dimse.serve`). Under asyncio a hook may be a
coroutine function (`async def echo`), `find` an async generator; plain hooks run
in a thread there, so that a slow one does not hold the other associations.
`contexts`, `accept` and `open_store` are called where the bytes are read, and must
not block (under asyncio too).

    class MyHandlers(Handlers):
        def store(self, caller, request, data, transfer_syntax):    # -> status
            ...
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from dimse.datasets import UNCOMPRESSED
from dimse.messages import C_FIND_RQ, C_GET_RQ, C_MOVE_RQ, C_STORE_RQ
from dimse.models import MODELS, VERIFICATION
from dimse.status import EchoStatus, FindStatus, General, StoreStatus
from dimse.storage_classes import STORAGE_SOP_CLASSES
from dimse.transfer.syntaxes import KNOWN
from dul.negotiation import AcceptorPolicy, RequestorsChoice, negotiate
from dul.pdu import A_ASSOCIATE_AC, A_ASSOCIATE_RJ, A_ASSOCIATE_RQ

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer
    from pydicom.dataset import Dataset

#: For storage, the requestor's first offered syntax that we can check and keep as
#: received (`dimse.transfer.syntaxes.KNOWN`): the instance is then stored as it is.
ANY_TRANSFER_SYNTAX = RequestorsChoice(frozenset(KNOWN))


@dataclass(frozen=True)
class Caller:
    """Who is asking: for handlers that log, or allow by AE title."""

    calling_ae: str
    called_ae: str
    address: str


class StoreSink:
    """Where a handler writes a C-STORE data set as it arrives (a
    `dimse.reassembly.Sink`: write, flush, close) and how it finishes:
    `commit() -> status`."""

    def write(self, data: ReadableBuffer) -> int:  # pragma: no cover - interface
        raise NotImplementedError

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def commit(self) -> int:  # pragma: no cover - interface
        """The C-STORE status; raise `HandlerStatus(status, comment)` to give the
        reason too (sent as the Error Comment, 64 characters at most)."""
        raise NotImplementedError


class Handlers:
    """The hook API. Every method has a safe default; override what you serve."""

    #: SOP classes and transfer syntaxes accepted (None: built from the flags below).
    def contexts(self) -> Mapping[str, Sequence[str] | RequestorsChoice]:
        supported: dict[str, Sequence[str] | RequestorsChoice] = {VERIFICATION: UNCOMPRESSED}
        if self.serves_storage:
            supported.update({uid: ANY_TRANSFER_SYNTAX for uid in STORAGE_SOP_CLASSES})
        if self.serves_query:
            for uids in MODELS.values():
                for uid in (uids.find, uids.move, uids.get):
                    if uid is not None:
                        supported[uid] = UNCOMPRESSED
        return supported

    serves_storage = False
    serves_query = False

    def accept(
        self, request: A_ASSOCIATE_RQ, policy: AcceptorPolicy
    ) -> A_ASSOCIATE_AC | A_ASSOCIATE_RJ:
        """Decide an association; by default the policy's negotiation."""
        return negotiate(request, policy)

    def echo(self, caller: Caller) -> int:
        return EchoStatus.SUCCESS

    def open_store(
        self, caller: Caller, request: C_STORE_RQ, transfer_syntax: str
    ) -> StoreSink | None:
        """Return a sink to receive the data set as it arrives (streaming to disk), or
        None to get it whole in `store`."""
        return None

    def store(
        self, caller: Caller, request: C_STORE_RQ, data: bytes | BinaryIO, transfer_syntax: str
    ) -> int:
        return StoreStatus.SOP_CLASS_NOT_SUPPORTED

    def find(self, caller: Caller, request: C_FIND_RQ, identifier: Dataset) -> Iterator[Dataset]:
        """Yield the matches. Raise `HandlerStatus` to answer with a failure."""
        raise HandlerStatus(FindStatus.SOP_CLASS_NOT_SUPPORTED)

    def retrieve(
        self, caller: Caller, request: C_MOVE_RQ | C_GET_RQ, identifier: Dataset
    ) -> list[Path]:
        """The files a C-MOVE or C-GET sends."""
        raise HandlerStatus(General.SOP_CLASS_NOT_SUPPORTED)  # 0122H in both

    def destination(self, caller: Caller, ae_title: str) -> tuple[str, int] | None:
        """Host and port of a C-MOVE destination, from configuration only."""
        return None

    def store_failed(self, caller: Caller, request: C_STORE_RQ, why: str) -> None:
        """Told when a C-STORE's data set could not be kept here (a full disk): the
        provider answers A700H; a handler may want to report it too."""


class HandlerStatus(Exception):
    """Raised by a handler to answer with `status` (and an error comment)."""

    def __init__(self, status: int, comment: str | None = None) -> None:
        super().__init__(comment or f"status {status:04X}H")
        self.status = status
        self.comment = comment
