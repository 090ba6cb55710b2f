"""The service provider's side of one association, written once for every driver:
each request read, the handler's hook called, the responses sent (PS3.7 9.1, 9.3;
PS3.4 B, C, K), as a flow of effects (`dimse.effects`) over its `Engine`.

The protocol lives here, the work in `dimse.handlers.Handlers`: status responses;
C-FIND's pending responses with a look for C-CANCEL between them (PS3.7 9.3.2.3);
C-MOVE and C-GET with their sub-operations and counts (`dimse.serve_retrieve`);
0211H for a request we do not know (the engine answers that one). A hook that
fails is logged and answered with a failure status; the association goes on.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dimse.commands import Command
from dimse.datasets import decode_dataset, encode_dataset
from dimse.effects import END, Call, Flow, Next, Poll, Wait
from dimse.engine import Engine
from dimse.errors import DimseError
from dimse.handlers import Caller, Handlers, HandlerStatus, StoreSink
from dimse.message_base import CommandField, DimseMessage, Request
from dimse.messages import (
    C_ECHO_RQ,
    C_ECHO_RSP,
    C_FIND_RQ,
    C_FIND_RSP,
    C_GET_RQ,
    C_MOVE_RQ,
    C_STORE_RQ,
    C_STORE_RSP,
    message_from_command,
)
from dimse.reassembly import ReceivedMessage, Sink
from dimse.received import fit
from dimse.status import FindStatus, General, StoreStatus
from dimse.transfer.convert import Decompress
from dul.connection import Timeouts
from dul.errors import AssociationError, AssociationReleased

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

log = logging.getLogger("dimse.scp")

#: C-FIND pending responses between two looks for a C-CANCEL.
CANCEL_POLL = 8


class Settings:
    """What a provider's sessions share: the hooks and the limits of the work."""

    def __init__(
        self,
        handlers: Handlers,
        *,
        ae_title: str,
        timeouts: Timeouts,
        decompress: Decompress,
        spool_dir: Path | None,
        max_identifier: int,
    ) -> None:
        self.handlers = handlers
        self.ae_title = ae_title
        self.timeouts = timeouts
        self.decompress = decompress
        self.spool_dir = spool_dir
        self.max_identifier = max_identifier


def hook_status(exc: BaseException) -> tuple[int, str | None]:
    """The status for a hook that raised: its own (`HandlerStatus`), or 0110H, a
    failure whatever the service (PS3.7 C.5)."""
    if isinstance(exc, HandlerStatus):
        return exc.status, exc.comment
    log.error("handler failed", exc_info=exc)
    return General.PROCESSING_FAILURE, None


class Session:
    """One association being served."""

    def __init__(self, settings: Settings, engine: Engine) -> None:
        self.settings = settings
        self.handlers = settings.handlers
        self.engine = engine
        request = engine.connection.request
        self.caller = Caller(request.calling_ae, request.called_ae, engine.peer)
        # The C-STORE-RQ decoded to open its sink, kept for dispatch (decoded once)
        self._decoded: tuple[Command, DimseMessage] | None = None
        engine.set_data_sink(_SinkOpener(self))

    def syntax(self, context_id: int) -> str:
        return self.engine.contexts[context_id].transfer_syntax or ""

    def open_sink(self, context_id: int, command: Command) -> Sink | None:
        if command.command_field != CommandField.C_STORE_RQ:
            return None  # only C-STORE data sets are streamed
        try:
            request = message_from_command(command)
        except DimseError:
            return None
        if not isinstance(request, C_STORE_RQ):
            return None
        self._decoded = (command, request)
        return self.handlers.open_store(self.caller, request, self.syntax(context_id))

    def run(self) -> Flow[None]:
        """Serve requests until the association ends."""
        engine = self.engine
        # AE titles and UIDs are the peer's text: logged escaped (%r), so that control
        # bytes cannot forge log lines (ROBUSTNESS 15; the called AE title is not checked).
        log.info(
            "association from %s (%r -> %r)",
            self.caller.address,
            self.caller.calling_ae,
            self.caller.called_ae,
        )
        try:
            while True:
                taken = engine.take_request()
                if taken is None:
                    if engine.over:
                        break
                    yield Wait(engine, lambda: bool(engine.requests))
                    continue
                yield from self.dispatch(*taken)
        finally:
            engine.close()
        error = engine.error
        if isinstance(error, AssociationReleased):
            log.info("association from %s released", self.caller.address)
        else:
            log.info("association from %s ended: %s", self.caller.address, error)

    def send(self, context_id: int, message: DimseMessage, data: Dataset | None = None) -> None:
        encoded = None if data is None else encode_dataset(data, self.syntax(context_id))
        self.engine.send(context_id, message, encoded)

    def dispatch(self, request: Request, received: ReceivedMessage) -> Flow[None]:
        decoded, self._decoded = self._decoded, None
        if decoded is not None and decoded[0] is received.command:
            request = decoded[1]  # type: ignore[assignment]
        # In progress until its final response: no idle timeout meanwhile, and a
        # C-CANCEL-RQ for it is noted (PS3.7 9.3.2.3).
        self.engine.serve(request, received.context_id)
        if isinstance(request, C_ECHO_RQ):
            yield from self.echo(request, received)
        elif isinstance(request, C_STORE_RQ):
            yield from self.store(request, received)
        elif isinstance(request, C_FIND_RQ):
            yield from self.find(request, received)
        elif isinstance(request, C_MOVE_RQ | C_GET_RQ):
            from dimse.serve_retrieve import retrieve

            yield from retrieve(self, request, received)
        else:
            self.engine.answer_unknown(
                received.context_id,
                request.COMMAND_FIELD,
                request.message_id,
                General.UNRECOGNIZED_OPERATION,
                None,
            )

    def call(self, function: Any, *args: Any) -> Flow[tuple[int, str | None]]:
        """A hook that answers with a status (a return, or `HandlerStatus`)."""
        try:
            return int((yield Call(function, args))), None
        except AssociationError:
            raise
        except Exception as exc:
            return hook_status(exc)

    # -- C-ECHO -----------------------------------------------------------------------

    def echo(self, request: C_ECHO_RQ, received: ReceivedMessage) -> Flow[None]:
        status, _ = yield from self.call(self.handlers.echo, self.caller)
        log.info("C-ECHO from %r: %04X", self.caller.calling_ae, status)
        self.send(
            received.context_id,
            C_ECHO_RSP(message_id_being_responded_to=request.message_id, status=status),
        )

    # -- C-STORE ----------------------------------------------------------------------

    def store(self, request: C_STORE_RQ, received: ReceivedMessage) -> Flow[None]:
        data = received.data_set
        status: int
        comment: str | None = None
        if received.error is not None:
            why = f"could not be written: {received.error.strerror or received.error}"
            log.error("storing %s failed: %s", request.affected_sop_instance_uid, why)
            yield Call(self.handlers.store_failed, (self.caller, request, why))
            status, comment = StoreStatus.OUT_OF_RESOURCES, why
        elif isinstance(received.sink, StoreSink):  # streamed into the handler's sink
            status, comment = yield from self.call(received.sink.commit)
        elif data is None:
            status = StoreStatus.CANNOT_UNDERSTAND
            comment = "the C-STORE-RQ came without a data set"
        else:
            syntax = self.syntax(received.context_id)
            status, comment = yield from self.call(
                self.handlers.store, self.caller, request, data, syntax
            )
        log.info(
            "C-STORE %r from %r: %04X%s",
            request.affected_sop_instance_uid,
            self.caller.calling_ae,
            status,
            f" ({comment})" if comment else "",
        )
        self.send(
            received.context_id,
            C_STORE_RSP(
                message_id_being_responded_to=request.message_id,
                status=status,
                affected_sop_class_uid=request.affected_sop_class_uid,
                affected_sop_instance_uid=request.affected_sop_instance_uid,
                error_comment=fit(comment) if comment and status != StoreStatus.SUCCESS else None,
            ),
        )

    # -- C-FIND -----------------------------------------------------------------------

    def identifier(
        self, received: ReceivedMessage, out_of_resources: int, unable_to_process: int
    ) -> Dataset:
        """The request's identifier; `HandlerStatus` saying why when there is none to
        read, with the service's codes for "out of resources" and "unable to process"."""
        if received.too_long:  # ROBUSTNESS 49: read and dropped past the limit
            limit = self.settings.max_identifier
            raise HandlerStatus(out_of_resources, fit(f"identifier over the {limit} bytes allowed"))
        if received.error is not None:  # it could not be kept (ROBUSTNESS 49)
            why = received.error.strerror or str(received.error)
            raise HandlerStatus(out_of_resources, fit(f"the identifier could not be kept: {why}"))
        data = received.data_set
        if data is None:
            raise HandlerStatus(unable_to_process, "the request has no identifier")
        if not isinstance(data, bytes):
            data = data.read()
        try:
            return decode_dataset(data, self.syntax(received.context_id))
        except DimseError as exc:
            raise HandlerStatus(unable_to_process, str(exc)[:64]) from exc

    def find(self, request: C_FIND_RQ, received: ReceivedMessage) -> Flow[None]:
        context_id = received.context_id
        engine = self.engine
        served = engine.served[request.message_id]

        def respond(status: int, comment: str | None = None) -> None:
            self.send(
                context_id,
                C_FIND_RSP(
                    message_id_being_responded_to=request.message_id,
                    status=status,
                    affected_sop_class_uid=request.affected_sop_class_uid,
                    error_comment=comment,
                ),
            )

        # Pending responses differ only in their identifiers: one command set for all.
        # Each goes as soon as its match is there (a hook may be slow to yield the
        # next); a C-CANCEL is looked for before the first and then every CANCEL_POLL
        # responses (PS3.7 C.4.1.3: it takes effect between responses).
        pending = C_FIND_RSP(
            message_id_being_responded_to=request.message_id,
            status=FindStatus.PENDING,
            affected_sop_class_uid=request.affected_sop_class_uid,
        ).with_data_set(True)
        command = pending.encode()
        syntax = self.syntax(context_id)
        count = 0
        try:
            identifier = self.identifier(
                received, FindStatus.OUT_OF_RESOURCES, FindStatus.UNABLE_TO_PROCESS
            )
            matches = yield Call(self.handlers.find, (self.caller, request, identifier))
            try:
                while True:
                    if count % CANCEL_POLL == 0:
                        yield Poll(engine)
                        if served.cancelled or engine.over:
                            break
                    match = yield Next(matches)
                    if match is END:
                        break
                    engine.send_encoded(context_id, pending, command, encode_dataset(match, syntax))
                    count += 1
            finally:
                yield from _close_iterator(matches)
        except HandlerStatus as exc:
            log.info(
                "C-FIND from %r: %04X %s", self.caller.calling_ae, exc.status, exc.comment or ""
            )
            respond(exc.status, exc.comment)
            return
        except AssociationError:
            raise  # the association ended while we answered: nothing to answer
        except Exception as exc:
            log.error("C-FIND handler failed", exc_info=exc)
            respond(FindStatus.HANDLER_FAILED, str(exc)[:64])
            return
        if engine.over:
            return  # aborted or released while we answered: nothing to answer
        if served.cancelled:
            respond(FindStatus.CANCEL)
            return
        log.info("C-FIND from %r: %d matches", self.caller.calling_ae, count)
        respond(FindStatus.SUCCESS)


def _close_iterator(iterator: object) -> Flow[None]:
    """Close a hook's iterator now (a cancelled hook's clean-up runs at once, not
    when it is collected): `close()` of a generator, `aclose()` of an async one."""
    close = getattr(iterator, "close", None)
    if close is not None:
        yield Call(close)
        return
    aclose = getattr(iterator, "aclose", None)
    if aclose is not None:
        yield Call(aclose)


class _SinkOpener:
    """The engine's data sink: the session's `open_sink`, held weakly enough (the
    session is reached through this object, not the engine's bound method)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def __call__(self, context_id: int, command: Command) -> Sink | None:
        return self.session.open_sink(context_id, command)
