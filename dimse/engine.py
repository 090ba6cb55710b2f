"""The DIMSE engine of one association, free of I/O (PS3.7 6.3, 8, 9.3, D.3.3.3).

`dul.connection.Connection` carries P-DATA-TF PDUs; this engine makes them DIMSE
messages and keeps what PS3.7 says about them on one association:

- Message IDs (PS3.7 E.1: from 1, wrapping within US);
- the operations we invoked (`Operation`): each response routed to its request by
  Message ID Being Responded To, pending ones queued, the final one ending it; a
  response to no request of ours ends the association (ROBUSTNESS 52);
- the operations we perform (`Served`): a C-CANCEL-RQ marks its operation
  cancelled (PS3.7 9.3.2.3) for the service to see between responses;
- requests received (`requests`), in order, for the service that performs them;
- the asynchronous operations window the peer granted (`window`, PS3.7 D.3.3.3);
- the DIMSE timeout while an answer is awaited, and a server's idle timeout, as
  deadlines (`next_deadline`, `handle_timer`): an expired one aborts.

A driver feeds it as it feeds a `Connection` (`receive_data(data, now)`,
`receive_closed`, `handle_timer`) and writes what `take_output(now)` gives; the
services (`dimse.scu`, `dimse.serve`) read and queue messages through the rest.
Bad PDVs from the peer are answered with an A-ABORT (source 2, reason 6), never
raised; what the user must know is in `error` once the association is `over`.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterator
from pathlib import Path

from dimse.commands import Command, encode_command
from dimse.errors import DimseError
from dimse.explain import Tally, describe_message, uid_name
from dimse.fragments import fragment_message
from dimse.message_base import DimseMessage, Request, Response
from dimse.messages import C_CANCEL_RQ, message_from_command
from dimse.operations import Operation, Served
from dimse.outgoing import Outgoing, message_units
from dimse.reassembly import (
    DEFAULT_MAX_IDENTIFIER,
    DataSink,
    Reassembler,
    ReceivedMessage,
    Sink,
)
from dul.connection import Connection
from dul.errors import AbortReason, AssociationAborted, AssociationError, DulTimeout
from dul.explain import use_uid_names
from dul.negotiation import NegotiatedContext
from dul.pdu import P_DATA_TF
from dul.primitives import Send

log = logging.getLogger("dimse")

# The upper layer's debug log names UIDs with pydicom's dictionary once DIMSE is in
# use: the A-ASSOCIATE-RQ is logged before any engine exists (`dul.explain`).
use_uid_names(uid_name)


class _SinkHolder:
    """The data sink in use, called by the reassembler. Not a bound method of the
    engine: that would be a reference cycle, and every association would wait for
    the cycle collector to be freed."""

    def __init__(self, sink: DataSink | None) -> None:
        self.sink = sink

    def open(self, context_id: int, command: Command) -> Sink | None:
        return None if self.sink is None else self.sink(context_id, command)


class Engine:
    """Whole DIMSE messages over one established association's `Connection`."""

    def __init__(
        self,
        connection: Connection,
        *,
        data_sink: DataSink | None = None,
        max_identifier: int | None = DEFAULT_MAX_IDENTIFIER,
        spool_dir: Path | None = None,
        idle: float | None = None,
        silent: float | None = None,
        now: float | None = None,
    ) -> None:
        """`max_identifier`: the longest data set kept for a message that is not a
        C-STORE (`Reassembler`); `spool_dir`: where data sets too big for memory go;
        `idle`, `silent`: a server's timeouts for an association with nothing in
        progress (after its first message, and before it: `Timeouts`), counted from
        `now`, when the association was established."""
        self.connection = connection
        self.contexts: dict[int, NegotiatedContext] = {
            cid: ctx for cid, ctx in connection.contexts.items() if ctx.accepted
        }
        self._sinks = _SinkHolder(data_sink)
        self.reassembler = Reassembler(
            self.contexts,
            data_sink=self._sinks.open,
            max_identifier=max_identifier,
            spool_dir=None if spool_dir is None else str(spool_dir),
        )
        self.spool_dir = spool_dir
        self.max_identifier = max_identifier
        #: requests received and not yet taken by the service that performs them
        self.requests: deque[tuple[Request, ReceivedMessage]] = deque()
        self.operations: dict[int, Operation] = {}
        self.served: dict[int, Served] = {}
        self._cancel_early: set[int] = set()  # C-CANCEL-RQs of requests not yet begun
        self._outbox: deque[Outgoing] = deque()
        self._message_id = 0
        self._incoming: Tally | None = None
        self._idle = idle
        self._silent = silent
        self._quiet_since = now  # last message in or out (for the timeouts)
        self._heard = False  # a message has come
        self._wants_release = False
        self._wants_abort = False
        self._timeout_error: AssociationError | None = None
        self._abort_error: AssociationError | None = None

    # -- facts ------------------------------------------------------------------------

    @property
    def peer(self) -> str:
        return self.connection.peer

    @property
    def max_pdu(self) -> int:
        """The peer's maximum P-DATA-TF length (0: no limit)."""
        return self.connection.peer_max_pdata_length

    @property
    def over(self) -> bool:
        """Nothing more will be received: released, aborted or closed."""
        return self.connection.over

    @property
    def closed(self) -> bool:
        return self.connection.closed

    @property
    def close_wanted(self) -> bool:
        return self.connection.close_wanted

    @property
    def error(self) -> AssociationError:
        """Why the association is over, for a user who still expected something."""
        if self._timeout_error is not None:
            return self._timeout_error
        if self._abort_error is not None:
            return self._abort_error
        if self.connection.error is not None:
            return self.connection.error
        return AssociationAborted(f"the association with {self.peer} has ended")

    @property
    def window(self) -> int:
        """How many requests may be outstanding at once: the Maximum Number of
        Operations Invoked that the peer granted (PS3.7 D.3.3.3) as acceptor; 1 when
        it granted no window; 0 (unlimited) is taken as 64."""
        if not self.connection.machine.requestor:
            return 1
        granted = self.connection.accept.user_information.asynchronous_operations_window
        if granted is None:
            return 1
        return granted.max_operations_performed or 64

    def set_data_sink(self, sink: DataSink | None) -> None:
        """Where the data sets of the next messages go (None: memory, then a spool)."""
        self._sinks.sink = sink

    def next_message_id(self) -> int:
        """Message IDs count from 1 and wrap within US (PS3.7 E.1)."""
        self._message_id = self._message_id % 0xFFFF + 1
        return self._message_id

    @property
    def has_output(self) -> bool:
        """`Endpoint.has_output`: sends queued below, or work for `take_output`."""
        return (
            bool(self._outbox)
            or self.connection.has_sends
            or self._wants_release
            or self._wants_abort
        )

    # -- what the services ask --------------------------------------------------------

    def request(self, kind: type[Response], message_id: int, outgoing: Outgoing) -> Operation:
        """Queue a request (its writes made by `outgoing`) whose responses are of
        `kind`; the returned operation collects them."""
        operation = Operation(message_id, outgoing.context_id, kind)
        self.operations[message_id] = operation
        self._outbox.append(outgoing)
        return operation

    def send(self, context_id: int, message: DimseMessage, data_set: bytes | None = None) -> None:
        """Queue one message whose data set (if any) is encoded already. A final
        response ends the `Served` operation it answers."""
        self._outbox.append(message_units(context_id, message, data_set, self.max_pdu))
        if isinstance(message, Response) and message.get_status().is_final:
            self.served.pop(message.message_id_being_responded_to, None)

    def send_encoded(
        self, context_id: int, message: Response, command: bytes, data_set: bytes
    ) -> None:
        """A pending response whose command set is encoded once for all (C-FIND)."""
        self._outbox.append(
            message_units(context_id, message, data_set, self.max_pdu, command=command)
        )

    def answer_unknown(
        self, context_id: int, field: int, message_id: int, status: int, comment: str | None
    ) -> None:
        """The response to a request we cannot perform or read: its command field with
        bit 15 set, and `status` (PS3.7 9.1: 0211H unrecognized operation)."""
        command = encode_command(
            {
                "CommandField": (field | 0x8000) & 0xFFFF,
                "MessageIDBeingRespondedTo": message_id,
                "CommandDataSetType": 0x0101,
                "Status": status,
                "ErrorComment": comment[:64] if comment else None,
            }
        )
        units = iter(fragment_message(context_id, command, None, self.max_pdu))
        self._outbox.append(Outgoing(units, context_id, None))
        self.served.pop(message_id, None)

    def cancel(self, operation: Operation) -> None:
        """C-CANCEL-RQ for `operation` (PS3.7 9.3.2.3); its later responses are
        dropped as they come, until the final one."""
        if operation.done or operation.cancelled:
            return
        operation.cancelled = True
        operation.responses.clear()
        self.send(
            operation.context_id, C_CANCEL_RQ(message_id_being_responded_to=operation.message_id)
        )

    def serve(self, request: Request, context_id: int) -> Served:
        """Begin performing `request` (its C-CANCEL-RQ is then noted)."""
        served = Served(request.message_id, context_id)
        self.served[request.message_id] = served
        if request.message_id in self._cancel_early:
            self._cancel_early.discard(request.message_id)
            served.cancelled = True
        return served

    def take_request(self) -> tuple[Request, ReceivedMessage] | None:
        return self.requests.popleft() if self.requests else None

    def release(self) -> None:
        """A-RELEASE, once what is queued has gone (`closed` when done)."""
        self._wants_release = True

    def abort(self, error: AssociationError | None = None) -> None:
        """A-ABORT, at the next write; `error`: why, for the user."""
        self._wants_abort = True
        if error is not None and self._abort_error is None:
            self._abort_error = error
        for outgoing in self._outbox:
            outgoing.close()
        self._outbox.clear()

    # -- the driver's side ------------------------------------------------------------

    def take_output(self, now: float) -> Iterator[Send]:
        """The writes to make, in order. Lazy: a large data set is read from disk
        write by write, as the driver asks."""
        connection = self.connection
        yield from connection.take_sends()
        if self._wants_abort:
            self._wants_abort = False
            connection.abort(now, self._abort_error)
            yield from connection.take_sends()
            return
        while self._outbox and connection.established:
            outgoing = self._outbox[0]
            with outgoing:
                for unit in outgoing:
                    if not self._can_send():
                        break  # a write failed and the connection closed
                    connection.send_pdata(unit, now)
                    yield from connection.take_sends()
                    outgoing.sent(unit)
                    if self._aborting():
                        break
            if self._outbox and self._outbox[0] is outgoing:  # abort() may have emptied it
                self._outbox.popleft()
            outgoing.finished(connection.name)
            if self._aborting():
                yield from self.take_output(now)
                return
        if not connection.established:
            while self._outbox:
                self._outbox.popleft().close()
        if self._wants_release and not self._outbox:
            self._wants_release = False
            connection.release(now)
            yield from connection.take_sends()

    def _can_send(self) -> bool:
        """Read afresh: a write that failed closes the connection while we send."""
        return self.connection.established

    def _aborting(self) -> bool:
        """An abort was asked while we wrote (read afresh: a send may have asked it)."""
        return self._wants_abort

    def written(self, now: float) -> None:
        """The driver wrote what `take_output` gave: the DIMSE timeout counts from now."""
        self._quiet_since = now

    def receive_data(self, data: bytes | bytearray | memoryview, now: float) -> None:
        self.connection.receive_data(data, now)
        self._take_pdus(now)

    def receive_closed(
        self, now: float, why: str = "", error: AssociationError | None = None
    ) -> None:
        self.connection.receive_closed(now, why, error)
        self._take_pdus(now)
        self._check_over()

    def next_deadline(self) -> float | None:
        """The nearest of ARTIM, the ACSE timeout, the DIMSE timeout while a response
        is awaited, and a server's idle timeout while nothing is in progress."""
        deadlines = [self.connection.next_deadline(), self._service_deadline()]
        present = [d for d in deadlines if d is not None]
        return min(present) if present else None

    def handle_timer(self, now: float) -> None:
        self.connection.handle_timer(now)
        deadline = self._service_deadline()
        if deadline is not None and now >= deadline and not self.over:
            self._timeout_error = self._timed_out()
            self.connection.abort(now, self._timeout_error)
        self._check_over()

    def close(self) -> None:
        """Free what is held: a partial data set, queued files, the sink."""
        self.reassembler.close()
        for outgoing in self._outbox:
            outgoing.close()
        self._outbox.clear()
        self._sinks.sink = None  # a handler's bound method: let its owner go

    # -- deadlines --------------------------------------------------------------------

    def _service_deadline(self) -> float | None:
        if self._quiet_since is None or self.over:
            return None
        if self.operations:  # a response is awaited, a cancelled operation's final too
            limit = self.connection.timeouts.dimse
        elif self.operations or self.served or self.requests:
            return None  # our own work in progress: no timeout on ourselves
        else:
            limit = (
                self._idle
                if self._heard or self._silent is None
                else min(t for t in (self._idle, self._silent) if t is not None)
            )
        return None if limit is None else self._quiet_since + limit

    def _timed_out(self) -> AssociationError:
        waiting = list(self.operations.values())
        if waiting:
            limit = self.connection.timeouts.dimse
            ids = ", ".join(str(op.message_id) for op in waiting)
            return DulTimeout(
                f"no {waiting[0].kind.NAME} to message {ids} from {self.peer} within {limit} s "
                "(the DIMSE timeout); association aborted"
            )
        limit = (
            self._idle
            if self._heard
            else min(t for t in (self._idle, self._silent) if t is not None)
        )
        return DulTimeout(f"no message from {self.peer} within {limit} s; association aborted")

    # -- receiving --------------------------------------------------------------------

    def _take_pdus(self, now: float) -> None:
        received = self.connection.received
        while received:
            pdu = received.popleft()
            try:
                if pdu.pdvs and log.isEnabledFor(logging.DEBUG):
                    messages = self._feed_counted(pdu)
                else:
                    messages = self.reassembler.feed(pdu)
            except DimseError as exc:
                # PDVs that break PS3.8 9.3.5/Annex E or PS3.7 6.3.1 (ROBUSTNESS 18-24):
                # an invalid value of the PDU (A-ABORT source 2, reason 6).
                received.clear()
                self.connection.abort_invalid(
                    AbortReason.INVALID_PDU_PARAMETER_VALUE, str(exc), now
                )
                break
            for message in messages:
                self._quiet_since = now
                self._heard = True
                self._route(message, now)
        self._check_over()

    def _feed_counted(self, pdu: P_DATA_TF) -> list[ReceivedMessage]:
        """`Reassembler.feed` at debug level: PDV by PDV, counted, a line for each
        message (and, as `feed`, no message of a PDU with an invalid PDV)."""
        tally = self._incoming or Tally()
        tally.pdus += 1
        last = len(pdu.pdvs) - 1
        done: list[ReceivedMessage] = []
        for index, pdv in enumerate(pdu.pdvs):
            tally.add_pdv(pdv.is_command, len(pdv.data))
            message = self.reassembler.feed_pdv(pdv)
            if message is None:
                continue
            done.append(message)
            text = describe_message("received", message.command, message.context_id, tally)
            log.debug("%s: %s", self.connection.name, text)
            tally = Tally()
            if index < last:
                tally.pdus = 1  # the rest of this PDU begins the next message
        self._incoming = tally
        return done

    def _route(self, received: ReceivedMessage, now: float) -> None:
        try:
            message = message_from_command(received.command)
        except DimseError as exc:
            if exc.status is not None and exc.message_id is not None:
                field = received.command.command_field or 0
                self.answer_unknown(
                    received.context_id, field, exc.message_id, exc.status, str(exc)
                )
                return
            self._abort_for(f"{self.peer} sent a message we cannot read: {exc}", now)
            return
        if isinstance(message, Response):
            self._response(message, received, now)
        elif isinstance(message, C_CANCEL_RQ):
            target = message.message_id_being_responded_to
            served = self.served.get(target)
            if served is not None:
                served.cancelled = True
            elif any(request.message_id == target for request, _ in self.requests):
                # It came in the same read as its request, before we began it.
                self._cancel_early.add(target)
            else:
                log.debug(
                    "C-CANCEL for message %d, which is not in progress",
                    message.message_id_being_responded_to,
                )
        elif isinstance(message, Request):
            self.requests.append((message, received))
        else:  # pragma: no cover - every message class is a request or a response
            log.warning("%s sent %s, which is not expected", self.peer, message.NAME)

    def _response(self, message: Response, received: ReceivedMessage, now: float) -> None:
        responded = message.message_id_being_responded_to
        operation = self.operations.get(responded)
        if operation is None or not isinstance(message, operation.kind):
            waiting = ", ".join(str(op.message_id) for op in self.operations.values()) or "none"
            self._abort_for(
                f"{self.peer} sent {message.NAME} to message {responded} while the requests "
                f"awaiting an answer were: {waiting}; none of ours; association aborted",
                now,
            )
            return
        final = message.get_status().is_final
        if not operation.cancelled:
            operation.responses.append((message, received))
        if final:
            operation.done = True
            del self.operations[responded]

    def _abort_for(self, text: str, now: float) -> None:
        log.warning("%s", text)
        self.connection.abort(now, AssociationAborted(text))
        self._check_over()

    def _check_over(self) -> None:
        """Once nothing more can come, every operation still awaited is done."""
        if not self.connection.over:
            return
        for operation in self.operations.values():
            operation.done = True
        self.operations.clear()
