"""Helpers for testing the upper-layer state machine (`dul.machine.Machine`) without I/O.

- `Clock`: a fake clock. The machine never reads a clock; every input carries `now`,
  and a test moves `clock.now` by hand to reach (or not reach) an ARTIM deadline.
- Sample PDUs with realistic contents: `make_request`, `make_accept`, `make_reject`,
  `make_pdata`, and `pdata_bytes`.
- `machine_in_state(state, requestor=...)`: a real `Machine` driven into any of Sta1..Sta13
  by real inputs only, the way a peer and a user would drive it (never by assigning
  `.state`). `PATHS` says which inputs lead to which state, for each role; `ROLES` says
  in which role(s) each state can be reached.
- `wire(requestor, acceptor)`: two machines back to back. The `Send` outputs of one are
  delivered, in order, to `receive_data` of the other; a `CloseTransport` becomes the
  other's `transport_closed` once what was sent before it has arrived; `OpenTransport`
  connects the two. The primitives each side's user gets are collected.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from dul.fsm import State
from dul.items import ApplicationContextItem, PresentationContextACItem, PresentationContextRQItem
from dul.machine import Machine
from dul.pdu import (
    A_ASSOCIATE_AC,
    A_ASSOCIATE_RJ,
    A_ASSOCIATE_RQ,
    A_RELEASE_RP,
    A_RELEASE_RQ,
    DICOM_APPLICATION_CONTEXT,
    P_DATA_TF,
    Pdu,
    PresentationDataValue,
    encode_pdu,
)
from dul.primitives import CloseTransport, OpenTransport, Output, Send
from dul.user_information import (
    ImplementationClassUIDSubItem,
    ImplementationVersionNameSubItem,
    MaximumLengthSubItem,
    UserInformationItem,
)

VERIFICATION_SOP_CLASS = "1.2.840.10008.1.1"
IMPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2"
IMPLEMENTATION_CLASS_UID = "1.2.826.0.1.3680043.9.7433.1"
ARTIM_TIMEOUT = 30.0


# --------------------------------------------------------------------------------------
# The fake clock


@dataclass
class Clock:
    """Seconds on an arbitrary monotonic scale; only ever moved by the test."""

    now: float = 1000.0

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


# --------------------------------------------------------------------------------------
# Sample PDUs


def _ae(title: str) -> str:
    return title.ljust(16)  # as decoded from the wire: 16 characters, padding kept


def make_request(
    called: str = "ANY-SCP",
    calling: str = "ECHOSCU",
    *,
    max_length: int = 16384,
    protocol_version: int = 1,
) -> A_ASSOCIATE_RQ:
    """An A-ASSOCIATE-RQ for Verification, as echoscu would send it."""
    return A_ASSOCIATE_RQ(
        _ae(called),
        _ae(calling),
        (
            ApplicationContextItem(DICOM_APPLICATION_CONTEXT),
            PresentationContextRQItem(1, VERIFICATION_SOP_CLASS, (IMPLICIT_VR_LITTLE_ENDIAN,)),
            UserInformationItem(
                (
                    MaximumLengthSubItem(max_length),
                    ImplementationClassUIDSubItem(IMPLEMENTATION_CLASS_UID),
                    ImplementationVersionNameSubItem("DICOM_UL_TEST"),
                )
            ),
        ),
        protocol_version,
    )


def make_accept(
    request: A_ASSOCIATE_RQ | None = None, *, max_length: int = 16384
) -> A_ASSOCIATE_AC:
    """The A-ASSOCIATE-AC accepting `request`'s first presentation context."""
    request = request or make_request()
    return A_ASSOCIATE_AC(
        request.called_ae_title,
        request.calling_ae_title,
        (
            ApplicationContextItem(DICOM_APPLICATION_CONTEXT),
            PresentationContextACItem(1, 0, IMPLICIT_VR_LITTLE_ENDIAN),
            UserInformationItem(
                (
                    MaximumLengthSubItem(max_length),
                    ImplementationClassUIDSubItem(IMPLEMENTATION_CLASS_UID),
                )
            ),
        ),
    )


def make_reject(result: int = 1, source: int = 1, reason: int = 3) -> A_ASSOCIATE_RJ:
    """An A-ASSOCIATE-RJ; by default rejected-permanent, service-user, calling AE
    title not recognized (PS3.8 9.3.4)."""
    return A_ASSOCIATE_RJ(result, source, reason)


def make_pdata(
    data: bytes = b"\x08\x00\x00\x00", *, context_id: int = 1, control: int = 0x03
) -> P_DATA_TF:
    """A P-DATA-TF with one PDV (by default the last fragment of a command)."""
    return P_DATA_TF((PresentationDataValue(context_id, control, data),))


def pdata_bytes(data: bytes = b"\x08\x00\x00\x00", **kwargs: int) -> bytes:
    """`make_pdata(...)` encoded, as `Machine.pdata_request` takes it."""
    return encode_pdu(make_pdata(data, **kwargs))


# --------------------------------------------------------------------------------------
# A machine in any state


Step = Callable[[Machine, float], list[Output]]

#: The inputs used to reach the states, by the name that `PATHS` gives them.
STEPS: dict[str, Step] = {
    "A-ASSOCIATE request": lambda m, now: m.associate_request(make_request(), now),
    "transport connect confirm": lambda m, now: m.transport_confirm(now),
    "transport connect indication": lambda m, now: m.transport_indication(now),
    "A-ASSOCIATE-RQ PDU": lambda m, now: m.receive_data(encode_pdu(make_request()), now),
    "A-ASSOCIATE-AC PDU": lambda m, now: m.receive_data(encode_pdu(make_accept()), now),
    "A-ASSOCIATE response (accept)": lambda m, now: m.associate_response(make_accept(), now),
    "A-ASSOCIATE response (reject)": lambda m, now: m.associate_response(make_reject(), now),
    "A-RELEASE request": lambda m, now: m.release_request(now),
    "A-RELEASE-RQ PDU": lambda m, now: m.receive_data(encode_pdu(A_RELEASE_RQ()), now),
    "A-RELEASE-RP PDU": lambda m, now: m.receive_data(encode_pdu(A_RELEASE_RP()), now),
    "A-RELEASE response": lambda m, now: m.release_response(now),
    "A-ABORT request": lambda m, now: m.abort_request(now),
}

_REQUESTOR_TO_STA6 = ("A-ASSOCIATE request", "transport connect confirm", "A-ASSOCIATE-AC PDU")
_ACCEPTOR_TO_STA6 = (
    "transport connect indication",
    "A-ASSOCIATE-RQ PDU",
    "A-ASSOCIATE response (accept)",
)

#: role (True: requestor) -> state -> the inputs that lead there from Sta1.
PATHS: dict[bool, dict[State, tuple[str, ...]]] = {
    True: {
        State.Sta1: (),
        State.Sta4: _REQUESTOR_TO_STA6[:1],  # AE-1
        State.Sta5: _REQUESTOR_TO_STA6[:2],  # AE-2
        State.Sta6: _REQUESTOR_TO_STA6,  # AE-3
        State.Sta7: (*_REQUESTOR_TO_STA6, "A-RELEASE request"),  # AR-1
        State.Sta8: (*_REQUESTOR_TO_STA6, "A-RELEASE-RQ PDU"),  # AR-2
        State.Sta9: (*_REQUESTOR_TO_STA6, "A-RELEASE request", "A-RELEASE-RQ PDU"),  # AR-8
        State.Sta11: (
            *_REQUESTOR_TO_STA6,
            "A-RELEASE request",
            "A-RELEASE-RQ PDU",
            "A-RELEASE response",
        ),  # AR-9
        State.Sta13: (*_REQUESTOR_TO_STA6, "A-ABORT request"),  # AA-1
    },
    False: {
        State.Sta1: (),
        State.Sta2: _ACCEPTOR_TO_STA6[:1],  # AE-5
        State.Sta3: _ACCEPTOR_TO_STA6[:2],  # AE-6
        State.Sta6: _ACCEPTOR_TO_STA6,  # AE-7
        State.Sta7: (*_ACCEPTOR_TO_STA6, "A-RELEASE request"),  # AR-1
        State.Sta8: (*_ACCEPTOR_TO_STA6, "A-RELEASE-RQ PDU"),  # AR-2
        State.Sta10: (*_ACCEPTOR_TO_STA6, "A-RELEASE request", "A-RELEASE-RQ PDU"),  # AR-8
        State.Sta12: (
            *_ACCEPTOR_TO_STA6,
            "A-RELEASE request",
            "A-RELEASE-RQ PDU",
            "A-RELEASE-RP PDU",
        ),  # AR-10
        State.Sta13: (*_ACCEPTOR_TO_STA6[:2], "A-ASSOCIATE response (reject)"),  # AE-8
    },
}

#: state -> the roles (True: requestor) in which it can be reached.
ROLES: dict[State, tuple[bool, ...]] = {
    state: tuple(role for role in (True, False) if state in PATHS[role]) for state in State
}


def role_name(requestor: bool) -> str:
    return "requestor" if requestor else "acceptor"


def machine_in_state(
    state: State,
    *,
    requestor: bool,
    clock: Clock | None = None,
    artim_timeout: float = ARTIM_TIMEOUT,
    **machine_options: object,
) -> Machine:
    """A new `Machine` brought from Sta1 into `state` by the inputs of `PATHS`.

    Every input must make one transition (it is checked), so that the machine is in
    that state exactly as after a real exchange: its `request` (and `accept`) are set,
    ARTIM runs where the standard's actions started it.
    """
    if state not in PATHS[requestor]:
        raise ValueError(f"{state.name} cannot be reached by an association {role_name(requestor)}")
    clock = clock or Clock()
    machine = Machine(
        requestor=requestor,
        artim_timeout=artim_timeout,
        **machine_options,  # type: ignore[arg-type]
    )
    for name in PATHS[requestor][state]:
        before = len(machine.history)
        STEPS[name](machine, clock.now)
        if len(machine.history) != before + 1:
            raise AssertionError(f"{name} in {machine.state.name} made no single transition")
    if machine.state is not state:
        raise AssertionError(
            f"{PATHS[requestor][state]} led to {machine.state.name}, not {state.name}"
        )
    return machine


# --------------------------------------------------------------------------------------
# Two machines back to back


@dataclass
class Endpoint:
    """One side of a wired association, and what its user and its socket saw."""

    machine: Machine
    primitives: list[Output] = field(default_factory=list)  # for the local user
    sent: list[Pdu | bytes] = field(default_factory=list)  # each Send, as a PDU if known
    lost: list[bytes] = field(default_factory=list)  # sent after the connection closed
    closed: bool = False  # this side closed its end (CloseTransport)
    saw_close: bool = False  # the transport told it the peer closed (Evt17)

    @property
    def state(self) -> State:
        return self.machine.state


@dataclass
class Wire:
    """Two machines on one (simulated) TCP connection, and a fake clock.

    Outputs are queued with `push` and delivered by `pump`, in the order they were
    produced, until nothing is left to deliver; `run(side, outputs)` does both. Holding
    back `pump` lets a test make two requests cross on the wire (release collision).
    """

    requestor: Endpoint
    acceptor: Endpoint
    clock: Clock
    connected: bool = False
    _queue: deque[tuple[Endpoint, bytes | None]] = field(default_factory=deque)

    def endpoint(self, side: Machine | Endpoint) -> Endpoint:
        if isinstance(side, Endpoint):
            return side
        if side is self.requestor.machine:
            return self.requestor
        if side is self.acceptor.machine:
            return self.acceptor
        raise ValueError("this machine is not on this wire")

    def peer(self, side: Endpoint) -> Endpoint:
        return self.acceptor if side is self.requestor else self.requestor

    @property
    def now(self) -> float:
        return self.clock.now

    def push(self, side: Machine | Endpoint, outputs: Iterable[Output]) -> None:
        """Carry out the outputs of `side`'s machine: queue what it sends, note the rest."""
        end = self.endpoint(side)
        peer = self.peer(end)
        for output in outputs:
            if isinstance(output, Send):
                data = bytes(output.data)
                end.sent.append(output.pdu if output.pdu is not None else data)
                if end.closed or not self.connected:
                    end.lost.append(data)
                else:
                    self._queue.append((peer, data))
            elif isinstance(output, CloseTransport):
                if not end.closed:
                    end.closed = True
                    if not peer.closed:
                        self._queue.append((peer, None))  # EOF, after what was sent
            elif isinstance(output, OpenTransport):
                self.connected = True
                # The acceptor's listener accepts, then the requestor's connect completes.
                self.push(self.acceptor, self.acceptor.machine.transport_indication(self.now))
                self.push(self.requestor, self.requestor.machine.transport_confirm(self.now))
            else:
                end.primitives.append(output)

    def pump(self) -> None:
        """Deliver everything queued, and whatever that makes the machines send."""
        while self._queue:
            end, data = self._queue.popleft()
            if end.closed:
                continue  # it closed its socket: nothing more reaches it
            if data is None:
                end.saw_close = True
                self.push(end, end.machine.transport_closed(self.now))
            else:
                self.push(end, end.machine.receive_data(data, self.now))

    def run(self, side: Machine | Endpoint, outputs: Iterable[Output]) -> None:
        self.push(side, outputs)
        self.pump()

    def advance(self, seconds: float) -> None:
        """Move the clock, and wake each machine whose deadline has come."""
        self.clock.advance(seconds)
        for end in (self.requestor, self.acceptor):
            deadline = end.machine.next_deadline()
            if deadline is not None and deadline <= self.now:
                self.push(end, end.machine.handle_timer(self.now))
        self.pump()

    def associate(
        self,
        request: A_ASSOCIATE_RQ | None = None,
        response: A_ASSOCIATE_AC | A_ASSOCIATE_RJ | None = None,
    ) -> None:
        """A-ASSOCIATE request by the requestor; the acceptor's user answers `response`
        (by default, accepts) if the acceptor's provider passed the request up."""
        request = request or make_request()
        self.run(self.requestor, self.requestor.machine.associate_request(request, self.now))
        if self.acceptor.state is State.Sta3:
            answer = response or make_accept(request)
            self.run(self.acceptor, self.acceptor.machine.associate_response(answer, self.now))

    def transitions(self, side: Machine | Endpoint) -> list[str]:
        return [str(t) for t in self.endpoint(side).machine.history]


def wire(requestor: Machine, acceptor: Machine, clock: Clock | None = None) -> Wire:
    """Put two machines back to back (see `Wire`)."""
    if not requestor.requestor or acceptor.requestor:
        raise ValueError("wire(requestor, acceptor): the roles are the other way round")
    return Wire(Endpoint(requestor), Endpoint(acceptor), clock or Clock())
