"""The service user's operations, written once for every driver: C-ECHO, C-STORE,
C-FIND, C-MOVE, C-GET and C-CANCEL as flows of effects (`dimse.effects`) over one
`dimse.engine.Engine`.

`Requestor` holds what a client association knows beyond the engine (how far it may
decompress, the instances a C-GET brought). Each public method returns a flow; a
driver runs it: `dimse.client.Association` blocking, `dimse.aio.Association` with
asyncio. A failure status is a result, not an exception; exceptions are for the
association itself (`dul.errors.AssociationError`) and for asking what it cannot
carry (`NoPresentationContext`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from dimse import scu_store
from dimse.datasets import (
    decode_dataset,
    encode_dataset,
)
from dimse.effects import Abandoned, Emit, Flow, Wait
from dimse.engine import Engine
from dimse.errors import DimseError
from dimse.files import Part10Info
from dimse.get_store import GetStore
from dimse.message_base import Priority, Response
from dimse.messages import (
    C_ECHO_RQ,
    C_ECHO_RSP,
    C_FIND_RQ,
    C_FIND_RSP,
    C_GET_RQ,
    C_GET_RSP,
    C_MOVE_RQ,
    C_MOVE_RSP,
)
from dimse.models import MODELS, VERIFICATION, Root
from dimse.operations import Operation
from dimse.outgoing import message_units
from dimse.reassembly import ReceivedMessage
from dimse.results import FindResponse, ReceivedInstance, RetrieveResponse, StoreResult
from dimse.scu_store import NoPresentationContext as NoPresentationContext
from dimse.status import Status
from dimse.storage import InstanceWriter
from dimse.transfer.convert import Decompress
from dul.negotiation import NegotiatedContext

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

log = logging.getLogger("dimse.client")

#: Failed SOP Instance UID List (0008,0058), in the identifier of a final C-MOVE/C-GET response.
FAILED_SOP_INSTANCE_UID_LIST = 0x00080058


def check_ae(title: str, what: str) -> None:
    """An AE title we send: 1 to 16 characters, not all spaces (PS3.5 6.2, AE)."""
    if not title.strip(" "):
        raise ValueError(f"the {what} AE title is empty")
    if len(title) > 16:
        raise ValueError(f"the {what} AE title {title!r} is longer than 16 characters")


class Requestor:
    """The operations of one association, as service user."""

    def __init__(self, engine: Engine, decompress: Decompress = Decompress.LOSSLESS) -> None:
        self.engine = engine
        self.decompress = decompress
        self.get_store = GetStore(engine)

    @property
    def peer(self) -> str:
        return self.engine.peer

    @property
    def received(self) -> list[ReceivedInstance]:
        """Instances received by C-GET on this association."""
        return list(self.get_store.received)

    @property
    def refused(self) -> list[tuple[str, str]]:
        """Instances a C-GET brought that failed their check: (SOP Instance UID, why)."""
        return self.get_store.refused

    # -- plumbing ---------------------------------------------------------------------

    def context(self, abstract_syntax: str, what: str) -> NegotiatedContext:
        context = find_context(self.engine.contexts, abstract_syntax)
        if context is None:
            raise NoPresentationContext(
                f"{self.peer} accepted no presentation context for {what} ({abstract_syntax}); "
                f"it accepted: {self.describe_accepted()}"
            )
        return context

    def describe_accepted(self) -> str:
        contexts = self.engine.contexts.values()
        accepted = [f"{c.abstract_syntax} in {c.transfer_syntax}" for c in contexts]
        return "; ".join(accepted) if accepted else "nothing"

    def response(self, operation: Operation) -> Flow[tuple[Response, ReceivedMessage]]:
        """The next response to `operation`; meanwhile the C-STORE sub-operations of
        our C-GET are served (they count as progress for the DIMSE timeout). Any
        other request is none of ours and ends the association (ROBUSTNESS 52)."""
        engine = self.engine
        while True:
            got = operation.take()
            if got is not None:
                return got
            if engine.requests:
                self.get_store.serve_requests()
                continue
            if operation.done or engine.over:
                raise engine.error
            yield Wait(engine, lambda: operation.ready or bool(engine.requests))

    def _send_query(
        self,
        context: NegotiatedContext,
        request: C_FIND_RQ | C_MOVE_RQ | C_GET_RQ,
        identifier: Dataset,
        kind: type[Response],
    ) -> Operation:
        assert context.transfer_syntax is not None
        data = encode_dataset(identifier, context.transfer_syntax)
        units = message_units(context.context_id, request, data, self.engine.max_pdu)
        return self.engine.request(kind, request.message_id, units)

    def decode_identifier(self, received: ReceivedMessage) -> Dataset | None:
        """The response's identifier (None when it has none); DimseError when it
        cannot be read exactly or was over `max_identifier`."""
        if received.too_long:
            raise DimseError(f"the identifier was not kept: {received.too_long}")
        data = received.data_set
        if data is None:
            return None
        syntax = self.engine.contexts[received.context_id].transfer_syntax or ""
        if not isinstance(data, bytes):
            data = data.read()
        return decode_dataset(data, syntax)

    # -- C-ECHO -----------------------------------------------------------------------

    def echo(self) -> Flow[Status]:
        """C-ECHO (PS3.7 9.1.5): the status of the peer's answer."""
        context = self.context(VERIFICATION, "Verification")
        message_id = self.engine.next_message_id()
        request = C_ECHO_RQ(message_id=message_id)
        units = message_units(context.context_id, request, None, self.engine.max_pdu)
        operation = self.engine.request(C_ECHO_RSP, message_id, units)
        response, _ = yield from self.response(operation)
        return response.get_status()

    # -- C-STORE ----------------------------------------------------------------------

    def store(
        self,
        source: str | os.PathLike[str] | Part10Info | Dataset,
        priority: int = Priority.LOW,
        progress: Callable[[int], None] | None = None,
        move_originator: tuple[str, int] | None = None,
    ) -> Flow[StoreResult]:
        """C-STORE one instance (`dimse.scu_store.store`)."""
        return scu_store.store(self, source, priority, progress, move_originator)

    def store_many(self, infos: Iterable[Part10Info], priority: int = Priority.LOW) -> Flow[None]:
        """C-STORE many files, emitting each with its result (`dimse.scu_store.store_many`)."""
        return scu_store.store_many(self, infos, priority)

    # -- C-FIND -----------------------------------------------------------------------

    def find(self, identifier: Dataset, root: Root, priority: int = Priority.MEDIUM) -> Flow[None]:
        """C-FIND: emits each response; pending ones carry a match. A user who stops
        early (`Abandoned`) gets a C-CANCEL sent and the rest read."""
        abstract = MODELS[root].find
        context = self.context(abstract, f"{root.value} root C-FIND")
        message_id = self.engine.next_message_id()
        request = C_FIND_RQ(
            message_id=message_id, affected_sop_class_uid=abstract, priority=priority
        )
        operation = self._send_query(context, request, identifier, C_FIND_RSP)
        final = False
        try:
            while not final:
                response, received = yield from self.response(operation)
                status = response.get_status()
                final = status.is_final
                try:
                    match = self.decode_identifier(received)
                except DimseError as exc:  # reported with the response, not raised
                    yield Emit(FindResponse(status, None, message_id, str(exc)))
                    continue
                yield Emit(FindResponse(status, match, message_id))
        except Abandoned:
            yield from self.cancel_and_drain(operation)

    def cancel_and_drain(self, operation: Operation) -> Flow[None]:
        """C-CANCEL-RQ, then read the responses until the final one, at most the
        DIMSE timeout; an association that ends meanwhile is no error here."""
        engine = self.engine
        if engine.over or operation.done:
            return
        engine.cancel(operation)
        while True:
            if operation.ready or engine.over:
                return  # cancelled operations keep no responses: ready means done
            if engine.requests:
                self.get_store.serve_requests()
                continue
            yield Wait(engine, lambda: operation.done or bool(engine.requests))

    # -- C-MOVE and C-GET ---------------------------------------------------------------

    def move(
        self, identifier: Dataset, root: Root, destination: str, priority: int = Priority.MEDIUM
    ) -> Flow[None]:
        """C-MOVE to `destination` (an AE title the server knows): emits each response."""
        check_ae(destination, "move destination")
        abstract = MODELS[root].move
        assert abstract is not None
        context = self.context(abstract, f"{root.value} root C-MOVE")
        message_id = self.engine.next_message_id()
        request = C_MOVE_RQ(
            message_id=message_id,
            affected_sop_class_uid=abstract,
            move_destination=destination,
            priority=priority,
        )
        operation = self._send_query(context, request, identifier, C_MOVE_RSP)
        yield from self._retrieve_responses(operation)

    def get(
        self,
        identifier: Dataset,
        root: Root,
        writer: InstanceWriter,
        priority: int = Priority.MEDIUM,
    ) -> Flow[None]:
        """C-GET: the instances arrive on this association and `writer` keeps them
        (`received` lists them afterwards); emits each response."""
        abstract = MODELS[root].get
        assert abstract is not None
        context = self.context(abstract, f"{root.value} root C-GET")
        message_id = self.engine.next_message_id()
        request = C_GET_RQ(
            message_id=message_id, affected_sop_class_uid=abstract, priority=priority
        )
        with self.get_store.writing(writer):
            operation = self._send_query(context, request, identifier, C_GET_RSP)
            yield from self._retrieve_responses(operation)

    def _retrieve_responses(self, operation: Operation) -> Flow[None]:
        final = False
        try:
            while not final:
                response, received = yield from self.response(operation)
                status = response.get_status()
                final = status.is_final
                yield Emit(
                    RetrieveResponse(
                        status,
                        getattr(response, "number_of_remaining_suboperations", None),
                        getattr(response, "number_of_completed_suboperations", None),
                        getattr(response, "number_of_failed_suboperations", None),
                        getattr(response, "number_of_warning_suboperations", None),
                        self._failed_list(received),
                        operation.message_id,
                        getattr(response, "error_comment", None) or "",
                    )
                )
        except Abandoned:
            yield from self.cancel_and_drain(operation)

    def _failed_list(self, received: ReceivedMessage) -> tuple[str, ...]:
        """The Failed SOP Instance UID List (0008,0058) of a C-MOVE/C-GET response: in
        its identifier (PS3.4 C.4.2.1.4), or, from a peer that puts it in the command
        set by mistake (Orthanc), there."""
        values: list[str] = []
        if received.data_set is not None:
            try:
                identifier = self.decode_identifier(received)
            except DimseError:
                identifier = None
            if identifier is not None and FAILED_SOP_INSTANCE_UID_LIST in identifier:
                value = identifier[FAILED_SOP_INSTANCE_UID_LIST].value
                # One UID is a str; several are a pydicom MultiValue, not a list
                # (ROBUSTNESS 34: the list must reach the caller UID by UID).
                values = [value] if isinstance(value, str) else [str(v) for v in value or ()]
        stray = received.command.stray.get(FAILED_SOP_INSTANCE_UID_LIST)
        if not values and stray:
            log.warning(
                "%s put the Failed SOP Instance UID List in the command set; read from there",
                self.peer,
            )
            values = stray.decode("ascii", "replace").split("\\")
        uids = (value.strip("\x00 ") for value in values)
        return tuple(uid for uid in uids if uid)

    # -- ending -----------------------------------------------------------------------

    def release(self) -> Flow[None]:
        """A-RELEASE; returns when the connection is closed (the ACSE timeout bounds
        the wait: then the association is aborted, and DulTimeout raised)."""
        engine = self.engine
        connection = engine.connection
        live = connection.established and connection.error is None
        engine.release()
        yield Wait(engine, lambda: engine.closed)
        engine.close()
        # An association already over is let go quietly; one that fails now is said.
        if live and connection.error is not None and not connection.released:
            raise connection.error

    def abort(self) -> Flow[None]:
        """A-ABORT, and close."""
        engine = self.engine
        engine.abort()
        yield Wait(engine, lambda: engine.closed)
        engine.close()


def find_context(
    contexts: dict[int, NegotiatedContext], abstract_syntax: str
) -> NegotiatedContext | None:
    """An accepted context for `abstract_syntax`."""
    for context in contexts.values():
        if context.abstract_syntax == abstract_syntax:
            return context
    return None
