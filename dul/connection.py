"""One association as its user sees it, free of I/O (PS3.8 7, 9.2).

`Machine` is PS3.8 Table 9-10 and nothing else: each event in, the outputs its cell
names out. `Connection` is the user of the upper layer that every driver would
otherwise have to be: it sorts those outputs into bytes to write, "close the
connection", and what the association's user must know; it answers the primitives
that need no decision (an A-RELEASE indication is always answered, PS3.8 7.2; the
collisions of Sta9 and Sta12 included); and it keeps the ACSE timeout as a deadline
beside ARTIM's, so that a driver only reads, writes, closes and keeps the time.

A driver's whole job, blocking or asyncio:

    connection.connected(now)                  # or accepted_transport(now)
    loop:
        write every `take_sends()`; close the socket if `close_wanted`
        wait for bytes, at most until `next_deadline()`
        receive_data(data, now) / receive_closed(now) / handle_timer(now)

What the user reads: `established`, `request_pending` (acceptor: an A-ASSOCIATE-RQ
waits for `answer`), `received` (P-DATA-TF PDUs, in order), and once it is over,
`error` (None after a release we asked for). Nothing here reads a clock or raises
for the peer's bytes: time comes in as `now`, bad bytes end in an A-ABORT.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from dul.errors import (
    AbortReason,
    AssociationAborted,
    AssociationError,
    AssociationRejected,
    AssociationReleased,
    ConnectionFailed,
    DulTimeout,
    PduError,
)
from dul.explain import explain_pdu, lent_uid_names
from dul.fields import Buffer
from dul.fsm import State
from dul.machine import Machine
from dul.negotiation import MIN_PDV_ROOM, NegotiatedContext, negotiated_contexts
from dul.pdu import A_ASSOCIATE_AC, A_ASSOCIATE_RJ, A_ASSOCIATE_RQ, P_DATA_TF, Pdu
from dul.primitives import (
    AbortIndication,
    AssociateAccepted,
    AssociateIndication,
    AssociateRejected,
    CloseTransport,
    OpenTransport,
    Output,
    PDataIndication,
    ProviderAbortIndication,
    ReleaseConfirmation,
    ReleaseIndication,
    Send,
)

log = logging.getLogger("dul.connection")


@dataclass(frozen=True)
class Timeouts:
    """Seconds; None waits for ever (not advised on a server).

    connect: TCP connect.  acse: waiting for A-ASSOCIATE-AC/RJ and A-RELEASE-RP.
    dimse: waiting for a DIMSE message, and for a send to complete.  idle: a server's
    established association with no traffic.  silent: a server's association that
    has sent no message yet (shorter than idle: an association taken only to hold a
    place in the limit is let go sooner, ROBUSTNESS 48).  artim: PS3.8 9.1.4.
    """

    connect: float | None = 30.0
    acse: float | None = 30.0
    dimse: float | None = 60.0
    idle: float | None = 300.0
    artim: float = 30.0
    silent: float | None = 30.0


class Endpoint(Protocol):
    """What a driver drives: a `Connection`, or the layer above that owns one (the
    DIMSE engine). Every input carries the driver's time `now`."""

    @property
    def close_wanted(self) -> bool: ...

    @property
    def closed(self) -> bool: ...

    @property
    def over(self) -> bool: ...

    @property
    def has_output(self) -> bool:
        """Whether `take_output` would give anything: a driver's cheap check, made
        before every wait."""
        ...

    def take_output(self, now: float) -> Iterable[Send]: ...

    def written(self, now: float) -> None: ...

    def receive_data(self, data: Buffer, now: float) -> None: ...

    def receive_closed(
        self, now: float, why: str = "", error: AssociationError | None = None
    ) -> None: ...

    def next_deadline(self) -> float | None: ...

    def handle_timer(self, now: float) -> None: ...


#: States in which P-DATA may still arrive for the user (PS3.8 Table 9-10: DT-2 in
#: Sta6, AR-6 in Sta7 while our A-RELEASE-RQ is on its way).
_RECEIVING = frozenset({State.Sta6, State.Sta7})


class Connection:
    """The user side of one `Machine`: bytes out, decisions made, facts for the user."""

    def __init__(self, machine: Machine, peer: str, timeouts: Timeouts = Timeouts()) -> None:
        self.machine = machine
        self.peer = peer
        self.timeouts = timeouts
        self.contexts: dict[int, NegotiatedContext] = {}
        #: P-DATA-TF PDUs received and not yet taken by the user, in order.
        self.received: deque[P_DATA_TF] = deque()
        #: Why the association ended (None while it lasts, and after our own release).
        self.error: AssociationError | None = None
        #: The driver must close the transport connection (then call `receive_closed`).
        self.close_wanted = False
        self._sends: deque[Send] = deque()
        self._acse_deadline: float | None = None
        self._acse_what = ""
        self.released = False  # the association ended by A-RELEASE, either side's

    # -- facts ------------------------------------------------------------------------

    @property
    def state(self) -> State:
        return self.machine.state

    @property
    def request(self) -> A_ASSOCIATE_RQ:
        assert self.machine.request is not None
        return self.machine.request

    @property
    def accept(self) -> A_ASSOCIATE_AC:
        assert self.machine.accept is not None
        return self.machine.accept

    @property
    def established(self) -> bool:
        """The association exists and data may be sent (Sta6, or Sta8 answering)."""
        return self.machine.established

    @property
    def request_pending(self) -> bool:
        """Acceptor: the A-ASSOCIATE-RQ has come and waits for `answer` (Sta3)."""
        return self.machine.state is State.Sta3

    @property
    def receiving(self) -> bool:
        """More P-DATA can still come (Sta6, Sta7)."""
        return self.machine.state in _RECEIVING

    @property
    def over(self) -> bool:
        """The association is over for its user: nothing more will be received."""
        return (
            self.error is not None
            or self.released
            or self.machine.state
            in (
                State.Sta1,
                State.Sta13,
            )
        )

    @property
    def closed(self) -> bool:
        """The transport connection is closed (Sta1): the driver is done."""
        return self.machine.state is State.Sta1

    @property
    def peer_max_pdata_length(self) -> int:
        return self.machine.peer_max_pdata_length

    @property
    def name(self) -> str:
        return self.machine.name

    # -- what the driver writes -------------------------------------------------------

    def take_sends(self) -> list[Send]:
        """The writes to make, in order (each one PDU, or a run of P-DATA-TF PDUs)."""
        sends = list(self._sends)
        self._sends.clear()
        return sends

    @property
    def has_sends(self) -> bool:
        return bool(self._sends)

    @property
    def has_output(self) -> bool:
        """`Endpoint.has_output`."""
        return bool(self._sends)

    def take_output(self, now: float) -> list[Send]:
        """`Endpoint.take_output`: the sends."""
        return self.take_sends()

    def written(self, now: float) -> None:
        """`Endpoint.written`: nothing to note at this layer."""

    def next_deadline(self) -> float | None:
        """When `handle_timer` must be called next: ARTIM or the ACSE timeout."""
        artim = self.machine.next_deadline()
        acse = self._acse_deadline
        if artim is None:
            return acse
        return artim if acse is None else min(artim, acse)

    # -- the driver's inputs ----------------------------------------------------------

    @classmethod
    def requesting(
        cls,
        peer: str,
        request: A_ASSOCIATE_RQ,
        timeouts: Timeouts,
        max_pdata_length: int | None,
        now: float,
    ) -> Connection:
        """A requestor's connection with the A-ASSOCIATE request issued (Evt1, AE-1:
        the driver now opens the transport). `max_pdata_length` is what we receive;
        None takes the request's Maximum Length."""
        if max_pdata_length is None:
            max_pdata_length = request.user_information.maximum_length or 0
        machine = Machine(
            requestor=True, artim_timeout=timeouts.artim, max_pdata_length=max_pdata_length
        )
        connection = cls(machine, peer, timeouts)
        connection.open(request, now)
        return connection

    def open(self, request: A_ASSOCIATE_RQ, now: float) -> None:
        """Requestor: A-ASSOCIATE request (Evt1); the driver then opens the connection."""
        self._perform(self.machine.associate_request(request, now), now)

    def connect_failed(self, why: str, now: float, *, tls: bool = False) -> ConnectionFailed:
        """Requestor: the TCP connection (or, `tls`, its TLS handshake) could not be
        made, for the reason `why`; the error to raise, which says so and what to check."""
        if tls:
            text = f"TLS handshake with {self.peer} failed: {why}"
        else:
            text = (
                f"cannot connect to {self.peer}: {why}; check the host name and port, "
                "and that the DICOM server is running"
            )
        error = self.error = ConnectionFailed(text)
        self._perform(self.machine.transport_closed(now), now)  # Evt17 in Sta4: AA-4
        return error

    def connected(self, now: float) -> None:
        """Requestor: the connection is open (Evt2): the A-ASSOCIATE-RQ goes out."""
        self._perform(self.machine.transport_confirm(now), now)
        self._wait_acse(now, "the A-ASSOCIATE-RQ")

    def accepted_transport(self, now: float) -> None:
        """Acceptor: a peer connected (Evt5); ARTIM runs until its A-ASSOCIATE-RQ."""
        self._perform(self.machine.transport_indication(now), now)

    def receive_data(self, data: Buffer, now: float) -> None:
        """Bytes from the connection (each whole PDU becomes its event)."""
        self._perform(self.machine.receive_data(data, now), now)

    def receive_closed(
        self, now: float, why: str = "", error: AssociationError | None = None
    ) -> None:
        """The connection closed, by the peer or by us (Evt17); `why` if it failed,
        or the `error` to tell the user (a write that failed: `DulTimeout`)."""
        if self.machine.state is State.Sta1:
            return
        if error is not None and self.error is None and not self.released:
            self.error = error
        if self.error is None and not self.released and self.machine.state is not State.Sta13:
            text = why or f"{self.peer} closed the connection"
            if self.machine.state in (State.Sta2, State.Sta5):
                text = (
                    why or f"{self.peer} closed the connection without answering the A-ASSOCIATE-RQ"
                )
            self.error = AssociationAborted(text)
        self.close_wanted = False
        self._acse_deadline = None
        self._perform(self.machine.transport_closed(now), now)

    def handle_timer(self, now: float) -> None:
        """ARTIM (Evt18) or the ACSE timeout, if either has expired by `now`."""
        if self._acse_deadline is not None and now >= self._acse_deadline:
            limit = self.timeouts.acse
            self._acse_deadline = None
            self.abort(
                now,
                DulTimeout(
                    f"{self.peer} did not answer {self._acse_what} within {limit} s; association aborted"
                ),
            )
            return
        self._perform(self.machine.handle_timer(now), now)

    # -- the user's requests ----------------------------------------------------------

    def answer(self, response: A_ASSOCIATE_AC | A_ASSOCIATE_RJ, now: float) -> None:
        """Acceptor: the A-ASSOCIATE response (Evt7 accept, Evt8 reject)."""
        self._perform(self.machine.associate_response(response, now), now)
        if isinstance(response, A_ASSOCIATE_AC):
            self.contexts = negotiated_contexts(self.request, response)
        else:
            self.error = AssociationRejected(response.result, response.source, response.reason)

    def send_pdata(self, data: bytes | bytearray | list[Buffer], now: float) -> None:
        """One encoded P-DATA-TF PDU, or a run of them as a list of buffers (Evt9)."""
        self._perform(self.machine.pdata_request(data, now), now)

    def release(self, now: float) -> None:
        """A-RELEASE request (Evt11); anything but an established association is
        aborted instead. Done when `closed`; the ACSE timeout bounds the wait."""
        state = self.machine.state
        if state is not State.Sta6:
            if state not in (State.Sta1, State.Sta7, State.Sta13):
                self.abort(now)
            return
        self._perform(self.machine.release_request(now), now)
        self._wait_acse(now, "the A-RELEASE-RQ")

    def abort(self, now: float, error: AssociationError | None = None) -> None:
        """A-ABORT (Evt15) and close; `error` is what the user is told, if anything."""
        if error is not None and self.error is None:
            self.error = error
        self._acse_deadline = None
        if self.machine.state in (State.Sta1, State.Sta2, State.Sta13):
            self.close_wanted = self.machine.state is not State.Sta1
            return
        self._perform(self.machine.abort_request(now), now)
        self.close_wanted = True  # without waiting for the peer to close (AA-1's ARTIM)

    def abort_invalid(self, reason: AbortReason, message: str, now: float) -> None:
        """The peer's P-DATA broke PS3.8 in a way only the layer above can see (its
        PDVs, ROBUSTNESS 18-21): A-ABORT with source 2 (service-provider) and
        `reason` (Evt19, AA-8), then close."""
        log.warning("%s: aborting the association with %s: %s", self.name, self.peer, message)
        error = AssociationAborted(f"{self.peer} broke PS3.7/PS3.8: {message}", 2, int(reason))
        if self.machine.state in (State.Sta1, State.Sta2, State.Sta13):
            self.abort(now, error)
            return
        if self.error is None:
            self.error = error
        self._perform(self.machine.invalid_pdu(PduError(reason, message), now), now)
        self.close_wanted = True

    # -- carrying out the machine's outputs -------------------------------------------

    def _wait_acse(self, now: float, what: str) -> None:
        limit = self.timeouts.acse
        if limit is not None and self.machine.state in (State.Sta5, State.Sta7):
            self._acse_deadline = now + limit
            self._acse_what = what

    def _perform(self, outputs: list[Output], now: float) -> None:
        for output in outputs:
            if type(output) is Send:
                if output.pdu is not None and log.isEnabledFor(logging.DEBUG):
                    self._log_sending(output.pdu)
                self._sends.append(output)
            elif type(output) is PDataIndication:
                self.received.append(output.pdu)
            else:
                self._primitive(output, now)

    def _log_sending(self, pdu: Pdu) -> None:
        lines = explain_pdu(pdu, uid_name=lent_uid_names(), request=self.machine.request)
        log.debug("%s: sending %s", self.name, lines[0])
        for line in lines[1:]:  # a record each: no log record holds a line break
            log.debug("%s: %s", self.name, line)

    def _primitive(self, output: Output, now: float) -> None:
        if isinstance(output, CloseTransport):
            self.close_wanted = True
        elif isinstance(output, OpenTransport | AssociateIndication):
            pass  # the driver connects; `request_pending` says an RQ waits
        elif isinstance(output, AssociateAccepted):
            self._acse_deadline = None
            self._established(output.accept, now)
        elif isinstance(output, AssociateRejected):
            self._acse_deadline = None
            rj = output.reject
            self.error = AssociationRejected(rj.result, rj.source, rj.reason)
        elif isinstance(output, ReleaseIndication):
            self._release_indication(now)
        elif isinstance(output, ReleaseConfirmation):
            self._acse_deadline = None
            if self.machine.state is State.Sta12:  # acceptor side of a collision
                self._perform(self.machine.release_response(now), now)
            self.released = True
        elif isinstance(output, AbortIndication):
            self._acse_deadline = None
            self._ended(
                AssociationAborted(
                    f"{self.peer} aborted the association (A-ABORT, source {output.source})",
                    output.source,
                    output.reason,
                )
            )
        elif isinstance(output, ProviderAbortIndication):
            self._acse_deadline = None
            self._ended(
                AssociationAborted(
                    f"association with {self.peer} aborted: {output.message}",
                    2,
                    int(output.reason),
                )
            )

    def _ended(self, error: AssociationError) -> None:
        if self.error is None:
            self.error = error

    def _established(self, accept: A_ASSOCIATE_AC, now: float) -> None:
        granted = accept.user_information.maximum_length
        if granted is not None and 0 < granted <= MIN_PDV_ROOM:
            # No P-DATA-TF of that length can hold a PDV with data (PS3.8 D.1).
            self.abort(
                now,
                AssociationAborted(
                    f"{self.peer} accepted with a Maximum Length of {granted}, which leaves "
                    "no room for a PDV (PS3.8 D.1); association aborted"
                ),
            )
            return
        self.contexts = negotiated_contexts(self.request, accept)

    def _release_indication(self, now: float) -> None:
        """A-RELEASE indication: always answered (PS3.8 7.2 has no refusal). In Sta8
        the peer released; in Sta9 both asked at once and we, the requestor, answer
        first (AR-8 then AR-9); in Sta10 we wait for the peer's answer (Sta12)."""
        state = self.machine.state
        if state is State.Sta8:
            self._ended(AssociationReleased(f"{self.peer} released the association"))
            self.released = True
            self._perform(self.machine.release_response(now), now)
        elif state is State.Sta9:
            self._perform(self.machine.release_response(now), now)
