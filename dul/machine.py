"""One association's upper-layer state machine, free of I/O (PS3.8 9.2).

Inputs go in as method calls, each with the current time `now` (seconds on any
monotonic scale: the machine never reads a clock); outputs come back as a list of
`dul.primitives` values for the driver to carry out in order. The machine asks to
be woken at `next_deadline()` (the ARTIM timer, PS3.8 9.1.4) and is told the time
again through `handle_timer(now)`.

Every transition is recorded in `history` (the last few hundred) and logged at
debug level as `Sta6 + Evt12 -> AR-2 -> Sta8`, followed on the next line, the first
time each of its states, event and action appears in the association, by its
definition in PS3.8 (`dul.explain.explain_transition`). Each PDU received but
P-DATA-TF is logged item by item (`dul.explain.explain_pdu`); the DIMSE layer says
what the P-DATA-TF carried.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from typing import NamedTuple

from dul.actions import ACTIONS, Context, Timer
from dul.errors import LocalProtocolError, PduError, StateTableError
from dul.explain import INDENT, explain_pdu, explain_transition, lent_uid_names
from dul.fields import Buffer
from dul.framing import DEFAULT_MAX_ASSOCIATION_LENGTH, Framer
from dul.fsm import LOCAL_EVENTS, NEXT_STATES, Action, Event, State, lookup
from dul.pdu import (
    A_ABORT,
    A_ASSOCIATE_AC,
    A_ASSOCIATE_RJ,
    A_ASSOCIATE_RQ,
    P_DATA_TF,
    Pdu,
)
from dul.primitives import Output

log = logging.getLogger("dul.machine")

#: Which event a received PDU is (PS3.8 Table 9-10 rows), by PDU-type.
PDU_EVENTS = {
    0x01: Event.Evt6,
    0x02: Event.Evt3,
    0x03: Event.Evt4,
    0x04: Event.Evt10,
    0x05: Event.Evt12,
    0x06: Event.Evt13,
    0x07: Event.Evt16,
}

DEFAULT_ARTIM_TIMEOUT = 30.0


class Transition(NamedTuple):
    """One step of the machine, as recorded: `Sta6 + Evt12 -> AR-2 -> Sta8`."""

    state: State
    event: Event
    action: Action
    next_state: State

    def __str__(self) -> str:
        return f"{self.state.name} + {self.event.name} -> {self.action.label} -> {self.next_state.name}"


def check_protocol_version(request: A_ASSOCIATE_RQ) -> A_ASSOCIATE_RJ | None:
    """The service-provider's own test of AE-6: protocol version 1 (bit 0) supported.

    Refused with result 1 (rejected-permanent), source 2 (service-provider, ACSE),
    reason 2 (protocol-version-not-supported), PS3.8 9.3.4.
    """
    if request.protocol_version & 1:
        return None
    return A_ASSOCIATE_RJ(result=1, source=2, reason=2)


class Machine:
    """The upper-layer protocol machine of one association, requestor or acceptor."""

    def __init__(
        self,
        *,
        requestor: bool,
        artim_timeout: float = DEFAULT_ARTIM_TIMEOUT,
        max_pdata_length: int = 16384,
        max_association_length: int = DEFAULT_MAX_ASSOCIATION_LENGTH,
        provider_check: Callable[[A_ASSOCIATE_RQ], A_ASSOCIATE_RJ | None] = check_protocol_version,
        history_size: int = 256,
        name: str = "",
    ) -> None:
        self.requestor = requestor
        self.state = State.Sta1
        self.artim_timeout = artim_timeout
        self.provider_check = provider_check
        self.framer = Framer(max_pdata_length, max_association_length)
        self.history: deque[Transition] = deque(maxlen=history_size)
        self.request: A_ASSOCIATE_RQ | None = None
        self.accept: A_ASSOCIATE_AC | None = None
        self.name = name or ("requestor" if requestor else "acceptor")
        self._artim_deadline: float | None = None
        self._stream_broken = False  # a framing error was answered (Evt19): read no more
        self._limit_source: A_ASSOCIATE_RQ | A_ASSOCIATE_AC | None = None
        self._peer_limit = 0
        #: the states, events and actions whose definitions the debug log has given
        self._defined: set[str] = set()

    # -- the table, in one place ----------------------------------------------------

    def _fire(self, event: Event, payload: object, now: float) -> list[Output]:
        action = lookup(event, self.state)
        if action is None:
            if event in LOCAL_EVENTS:
                raise LocalProtocolError(
                    f"{event.name} ({event.value}) is not allowed in {self.state.name} "
                    f"({self.state.value})"
                )
            # A network event where there is no connection: nothing can be done.
            log.debug("%s: %s in %s has no cell; ignored", self.name, event.name, self.state.name)
            return []
        ctx = Context(self.state, event, self.requestor, self.request, self.provider_check)
        step = ACTIONS[action](ctx, payload)
        if step.next_state not in NEXT_STATES[action]:
            raise StateTableError(f"{action.label} led to {step.next_state.name}")
        if step.timer is Timer.START:
            self._artim_deadline = now + self.artim_timeout
        elif step.timer is Timer.STOP:
            self._artim_deadline = None
        transition = Transition(self.state, event, action, step.next_state)
        self.history.append(transition)
        if log.isEnabledFor(logging.DEBUG):
            text, words = explain_transition(*transition, self._defined)
            log.debug("%s: %s", self.name, text)
            if words:  # a line of its own: the transition's line stays what `history` holds
                log.debug("%s: %s%s", self.name, INDENT, words)
        self.state = step.next_state
        return list(step.outputs)

    # -- timers ---------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        """When `handle_timer` must be called next (None: no timer is running)."""
        return self._artim_deadline

    def handle_timer(self, now: float) -> list[Output]:
        """Evt18 if ARTIM has expired by `now`, else nothing."""
        if self._artim_deadline is None or now < self._artim_deadline:
            return []
        self._artim_deadline = None
        return self._fire(Event.Evt18, None, now)

    # -- the local user's primitives ------------------------------------------------

    def associate_request(self, request: A_ASSOCIATE_RQ, now: float) -> list[Output]:
        """Evt1: A-ASSOCIATE request. The driver then opens the connection."""
        if self.state is State.Sta1:
            self.request = request
        return self._fire(Event.Evt1, request, now)

    def associate_response(
        self, response: A_ASSOCIATE_AC | A_ASSOCIATE_RJ, now: float
    ) -> list[Output]:
        """Evt7 (accept, an A-ASSOCIATE-AC) or Evt8 (reject, an A-ASSOCIATE-RJ)."""
        if isinstance(response, A_ASSOCIATE_AC):
            outputs = self._fire(Event.Evt7, response, now)
            self.accept = response
            return outputs
        return self._fire(Event.Evt8, response, now)

    def pdata_request(self, data: bytes | bytearray | list[Buffer], now: float) -> list[Output]:
        """Evt9: send one P-DATA-TF PDU, already encoded (header included), or a run of
        them as a list of buffers. A run goes through the table once: every cell of
        Evt9 (DT-1 in Sta6, AR-7 in Sta8) sends and stays in its state, so n events in
        a row end where one does."""
        return self._fire(Event.Evt9, data, now)

    def release_request(self, now: float) -> list[Output]:
        """Evt11: A-RELEASE request."""
        return self._fire(Event.Evt11, None, now)

    def release_response(self, now: float) -> list[Output]:
        """Evt14: A-RELEASE response (always affirmative, PS3.8 7.2)."""
        return self._fire(Event.Evt14, None, now)

    def abort_request(self, now: float) -> list[Output]:
        """Evt15: A-ABORT request from the local user (source 0)."""
        return self._fire(Event.Evt15, A_ABORT(source=0, reason=0), now)

    # -- the transport's indications ------------------------------------------------

    def transport_confirm(self, now: float) -> list[Output]:
        """Evt2: our TCP connection is open."""
        return self._fire(Event.Evt2, None, now)

    def transport_indication(self, now: float) -> list[Output]:
        """Evt5: a peer has connected to us."""
        return self._fire(Event.Evt5, None, now)

    def transport_closed(self, now: float) -> list[Output]:
        """Evt17: the TCP connection closed (or the connect failed, in Sta4)."""
        return self._fire(Event.Evt17, None, now)

    def receive_data(self, data: Buffer, now: float) -> list[Output]:
        """Bytes from the connection: each whole PDU becomes its event (or Evt19)."""
        self.framer.feed(data)
        return self.receive_pending(now)

    def receive_pending(self, now: float) -> list[Output]:
        """Fire the events of the whole PDUs already buffered."""
        outputs: list[Output] = []
        while self.state not in (State.Sta1, State.Sta4):
            try:
                pdu = self.framer.next_pdu()
            except PduError as error:
                if self._stream_broken:
                    break  # the stream is already known to be broken: wait for the close
                self._stream_broken = True
                outputs += self._fire(Event.Evt19, error, now)
                break
            if pdu is None:
                break
            outputs += self.receive_pdu(pdu, now)
        return outputs

    def invalid_pdu(self, error: PduError, now: float) -> list[Output]:
        """Evt19 for a P-DATA-TF that was framed and decoded, but whose PDVs the layer
        above found invalid (PS3.8 9.3.5, Annex E: a PDV on a context not accepted, a
        fragment out of sequence; ROBUSTNESS 18-21). In Sta6 this is AA-8: A-ABORT
        with source 2 and `error.reason`, an A-P-ABORT indication, ARTIM started."""
        if self._stream_broken:
            return []
        self._stream_broken = True
        return self._fire(Event.Evt19, error, now)

    def receive_pdu(self, pdu: Pdu, now: float) -> list[Output]:
        """One decoded PDU received (the event of its type)."""
        event = PDU_EVENTS[pdu.PDU_TYPE]
        if event is Event.Evt6:
            assert isinstance(pdu, A_ASSOCIATE_RQ)
            if self.state is State.Sta2:
                self.request = pdu  # the acceptor's record of the request (its max length)
        elif event is Event.Evt3:
            assert isinstance(pdu, A_ASSOCIATE_AC)
            if self.state is State.Sta5:
                self.accept = pdu
        if log.isEnabledFor(logging.DEBUG) and not isinstance(pdu, P_DATA_TF):
            lines = explain_pdu(pdu, uid_name=lent_uid_names(), request=self.request)
            log.debug("%s: received %s", self.name, lines[0])
            for line in lines[1:]:  # a record each: no log record holds a line break
                log.debug("%s: %s", self.name, line)
        return self._fire(event, pdu, now)

    # -- derived facts -----------------------------------------------------------

    @property
    def established(self) -> bool:
        """Data may be sent: Sta6, or Sta8 (a released peer may still want answers)."""
        return self.state in (State.Sta6, State.Sta8)

    @property
    def peer_max_pdata_length(self) -> int:
        """The largest P-DATA-TF PDU-length the peer accepts (0: no limit)."""
        source = self.accept if self.requestor else self.request
        if source is None:
            return 0
        if source is not self._limit_source:  # read once: an RQ may hold 128 items
            self._limit_source = source
            self._peer_limit = source.user_information.maximum_length or 0
        return self._peer_limit
