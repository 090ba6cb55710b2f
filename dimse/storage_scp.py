"""A storage SCP that writes what it receives to a directory: the receiving end of
`dicomscu --move`, and a small example of the `Handlers` hook API.

Every storage SOP class is accepted, in the requestor's first offered syntax that we
know (or in the uncompressed ones only, `accept_compressed=False`); each instance is
streamed to `OUTPUT/<SOP Instance UID>.dcm` (names from validated UIDs only, see
`dimse.naming`), checked (dimse/received.py) and made durable before success is
answered.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

from dimse.drivers.locks import new_lock
from dimse.handlers import Caller, Handlers, HandlerStatus, StoreSink
from dimse.messages import C_STORE_RQ
from dimse.received import fit
from dimse.results import ReceivedInstance
from dimse.scp import Provider
from dimse.status import StoreStatus
from dimse.storage import InstanceWriter, InvalidInstance, PendingInstance
from dimse.transfer.syntaxes import UNCOMPRESSED
from dul.connection import Timeouts
from dul.negotiation import RequestorsChoice

log = logging.getLogger("dimse.storage_scp")


class _PendingSink(StoreSink):
    def __init__(
        self, pending: PendingInstance, on_commit: _Recorder, record: ReceivedInstance
    ) -> None:
        self.pending = pending
        self.on_commit = on_commit
        self.record = record

    def write(self, data: ReadableBuffer) -> int:
        return self.pending.write(data)

    def flush(self) -> None:
        self.pending.flush()

    def close(self) -> None:
        self.pending.close()

    def commit(self) -> int:
        try:
            path = self.pending.commit()
        except InvalidInstance as exc:
            log.error("C-STORE %s refused: %s", self.record.sop_instance_uid, exc.refusal.reason)
            self.on_commit.refuse(self.record.sop_instance_uid, exc.refusal.reason)
            raise HandlerStatus(exc.refusal.status, exc.refusal.comment) from None
        except OSError as exc:  # ROBUSTNESS 54: said as such, to the requestor too
            why = f"could not be written: {exc.strerror or exc}"
            log.error("C-STORE %s %s", self.record.sop_instance_uid, why)
            self.on_commit.refuse(self.record.sop_instance_uid, why)
            raise HandlerStatus(StoreStatus.OUT_OF_RESOURCES, fit(why)) from None
        self.on_commit(
            ReceivedInstance(
                self.record.sop_class_uid,
                self.record.sop_instance_uid,
                self.record.transfer_syntax,
                path,
            )
        )
        return StoreStatus.SUCCESS


class _Recorder:
    def __init__(self) -> None:
        self.lock = new_lock()
        self.received: list[ReceivedInstance] = []
        self.refused: list[tuple[str, str]] = []  # (SOP Instance UID, why)

    def __call__(self, instance: ReceivedInstance) -> None:
        with self.lock:
            self.received.append(instance)

    def refuse(self, sop_instance_uid: str, why: str) -> None:
        with self.lock:
            self.refused.append((sop_instance_uid, why))


class DirectoryStorage(Handlers):
    """Handlers that keep every instance received in one directory."""

    serves_storage = True

    def __init__(
        self, output: str | os.PathLike[str], *, fsync: bool = True, accept_compressed: bool = True
    ) -> None:
        self.writer = InstanceWriter(output, fsync=fsync)
        self.recorder = _Recorder()
        self.accept_compressed = accept_compressed

    def contexts(self) -> Mapping[str, Sequence[str] | RequestorsChoice]:
        supported = dict(super().contexts())
        if not self.accept_compressed:
            for uid, syntaxes in supported.items():
                if isinstance(syntaxes, RequestorsChoice):
                    supported[uid] = UNCOMPRESSED
        return supported

    def open_store(
        self, caller: Caller, request: C_STORE_RQ, transfer_syntax: str
    ) -> StoreSink | None:
        try:
            pending = self.writer.open(
                request.affected_sop_class_uid, request.affected_sop_instance_uid, transfer_syntax
            )
        except OSError as exc:
            self.store_failed(caller, request, f"could not be written: {exc.strerror or exc}")
            return None  # then `store` answers Out of Resources
        record = ReceivedInstance(
            request.affected_sop_class_uid, request.affected_sop_instance_uid, transfer_syntax, None
        )
        return _PendingSink(pending, self.recorder, record)

    def store(
        self, caller: Caller, request: C_STORE_RQ, data: bytes | object, transfer_syntax: str
    ) -> int:
        return StoreStatus.OUT_OF_RESOURCES  # reached only when open_store could not open a file

    def store_failed(self, caller: Caller, request: C_STORE_RQ, why: str) -> None:
        self.recorder.refuse(request.affected_sop_instance_uid, why)


class StorageSCP:
    """`with StorageSCP(output, ae_title, port) as scp:` ... `scp.received`."""

    def __init__(
        self,
        output: str | os.PathLike[str],
        *,
        ae_title: str = "DICOMSCU",
        port: int = 0,
        host: str = "0.0.0.0",
        timeouts: Timeouts = Timeouts(),
        accept_compressed: bool = True,
    ) -> None:
        self.output = Path(output)
        self.handlers = DirectoryStorage(output, accept_compressed=accept_compressed)
        self.provider = Provider(
            self.handlers, ae_title=ae_title, host=host, port=port, timeouts=timeouts
        )

    @property
    def port(self) -> int:
        return self.provider.port

    @property
    def received(self) -> list[ReceivedInstance]:
        with self.handlers.recorder.lock:
            return list(self.handlers.recorder.received)

    @property
    def refused(self) -> list[tuple[str, str]]:
        """Instances that failed their check: (SOP Instance UID, why)."""
        with self.handlers.recorder.lock:
            return list(self.handlers.recorder.refused)

    def __enter__(self) -> StorageSCP:
        self.provider.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.provider.stop()
