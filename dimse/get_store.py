"""The C-STORE sub-operations of our own C-GET (PS3.4 C.4.3): on the association that
asked, the peer sends each instance as a C-STORE-RQ, and we, as storage SCP,
keep it and answer.

Each data set streams into the C-GET's `InstanceWriter` as it arrives (the engine's
data sink), and is checked before it is acknowledged (`dimse.received`): an
instance that cannot be read exactly is refused with the reason, not kept, and
listed in `refused`. A request other than a C-STORE-RQ is none of ours
(ROBUSTNESS 52): the association is aborted.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path

from dimse.commands import Command
from dimse.engine import Engine
from dimse.message_base import CommandField
from dimse.messages import C_STORE_RQ, C_STORE_RSP
from dimse.reassembly import ReceivedMessage, Sink
from dimse.received import fit
from dimse.results import ReceivedInstance
from dimse.status import StoreStatus
from dimse.storage import InstanceWriter, InvalidInstance, PendingInstance
from dul.errors import AssociationAborted

log = logging.getLogger("dimse.client")


class GetStore:
    """Keeps the instances a C-GET brings, and answers each."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.writer: InstanceWriter | None = None
        self.received: list[ReceivedInstance] = []
        #: instances a C-GET brought that failed their check: (SOP Instance UID, why)
        self.refused: list[tuple[str, str]] = []

    @contextlib.contextmanager
    def writing(self, writer: InstanceWriter) -> Iterator[None]:
        """While a C-GET runs: its instances stream into `writer`."""
        self.writer = writer
        self.engine.set_data_sink(_Opener(self))
        try:
            yield
        finally:
            self.engine.set_data_sink(None)
            self.writer = None

    def serve_requests(self) -> None:
        """Answer the requests received so far."""
        engine = self.engine
        while (taken := engine.take_request()) is not None:
            request, received = taken
            if not isinstance(request, C_STORE_RQ):
                text = (
                    f"{engine.peer} sent {request.NAME} while we waited for a response: "
                    "none of ours; association aborted"
                )
                log.warning("%s", text)
                engine.abort(AssociationAborted(text))
                return
            self._store(received, request)

    def _store(self, received: ReceivedMessage, request: C_STORE_RQ) -> None:
        context = self.engine.contexts[received.context_id]
        status = StoreStatus.SUCCESS
        comment: str | None = None
        path: Path | None = None
        data = received.data_set
        uid = request.affected_sop_instance_uid
        try:
            if received.error is not None:
                raise received.error  # the sink failed as the data came: said below
            elif isinstance(received.sink, PendingInstance):  # streamed to disk
                path = received.sink.commit()
            elif data is not None and self.writer is not None and context.transfer_syntax:
                path = self.writer.write(
                    request.affected_sop_class_uid, uid, context.transfer_syntax, data
                )
            elif data is None:
                status = StoreStatus.DATA_SET_DOES_NOT_MATCH_SOP_CLASS
            else:
                status = StoreStatus.NOT_AUTHORIZED  # not asked for: no C-GET of ours is running
        except InvalidInstance as exc:  # checked before acknowledging: refused, not kept
            log.error("C-GET: instance %s refused: %s", uid, exc.refusal.reason)
            self.refused.append((uid, exc.refusal.reason))
            status, comment = exc.refusal.status, exc.refusal.comment
        except OSError as exc:  # ROBUSTNESS 54: a full disk is said as such
            why = f"could not be written: {exc.strerror or exc}"
            log.error("C-GET: instance %s %s", uid, why)
            self.refused.append((uid, why))
            status, comment = StoreStatus.OUT_OF_RESOURCES, fit(why)
        if status == StoreStatus.SUCCESS:
            self.received.append(
                ReceivedInstance(
                    request.affected_sop_class_uid, uid, context.transfer_syntax or "", path
                )
            )
        response = C_STORE_RSP(
            message_id_being_responded_to=request.message_id,
            status=status,
            affected_sop_class_uid=request.affected_sop_class_uid,
            affected_sop_instance_uid=uid,
            error_comment=comment,
        )
        self.engine.send(received.context_id, response)


class _Opener:
    """The engine's data sink during a C-GET (not a bound method: no reference cycle
    from the engine back to its owner)."""

    def __init__(self, store: GetStore) -> None:
        self.writer = store.writer
        self.contexts = store.engine.contexts

    def __call__(self, context_id: int, command: Command) -> Sink | None:
        if command.command_field != CommandField.C_STORE_RQ:
            return None  # a response's identifier: kept in memory as usual
        context = self.contexts.get(context_id)
        if self.writer is None or context is None or context.transfer_syntax is None:
            return None
        sop_class = str(command.get("AffectedSOPClassUID", ""))
        sop_instance = str(command.get("AffectedSOPInstanceUID", ""))
        return self.writer.open(sop_class, sop_instance, context.transfer_syntax)
