"""Whole associations between two `Machine`s wired back to back, and the machine's
behaviour towards a broken or silent peer, with a fake clock (no sockets, no sleeps)."""

from __future__ import annotations

import logging
import re

import pytest

from dul.errors import AbortReason, LocalProtocolError
from dul.fsm import State
from dul.machine import Machine
from dul.pdu import A_ABORT, A_RELEASE_RP, A_RELEASE_RQ, decode_pdu, encode_pdu
from dul.primitives import (
    AbortIndication,
    AssociateAccepted,
    AssociateIndication,
    AssociateRejected,
    CloseTransport,
    Output,
    PDataIndication,
    ProviderAbortIndication,
    ReleaseConfirmation,
    ReleaseIndication,
    Send,
)
from tests.machines import (
    ARTIM_TIMEOUT,
    Clock,
    Endpoint,
    Wire,
    machine_in_state,
    make_accept,
    make_pdata,
    make_reject,
    make_request,
    pdata_bytes,
    wire,
)

ESTABLISH_REQUESTOR = [
    "Sta1 + Evt1 -> AE-1 -> Sta4",
    "Sta4 + Evt2 -> AE-2 -> Sta5",
    "Sta5 + Evt3 -> AE-3 -> Sta6",
]
ESTABLISH_ACCEPTOR = [
    "Sta1 + Evt5 -> AE-5 -> Sta2",
    "Sta2 + Evt6 -> AE-6 -> Sta3",
    "Sta3 + Evt7 -> AE-7 -> Sta6",
]


def state_of(side: Machine | Endpoint) -> State:
    """The state, read through a call (so that a type checker does not pin it down)."""
    return side.state


def pair(**acceptor_options: object) -> Wire:
    clock = Clock()
    return wire(
        Machine(requestor=True, artim_timeout=ARTIM_TIMEOUT),
        Machine(requestor=False, artim_timeout=ARTIM_TIMEOUT, **acceptor_options),  # type: ignore[arg-type]
        clock,
    )


def established() -> Wire:
    w = pair()
    w.associate()
    assert w.requestor.state is State.Sta6 and w.acceptor.state is State.Sta6
    w.requestor.primitives.clear()
    w.acceptor.primitives.clear()
    return w


def both_idle_and_closed(w: Wire) -> None:
    for end in (w.requestor, w.acceptor):
        assert end.state is State.Sta1, end.machine.name
        assert end.machine.next_deadline() is None, end.machine.name
    assert w.requestor.closed or w.acceptor.closed
    assert not w.requestor.lost and not w.acceptor.lost


# --------------------------------------------------------------------------------------
# Establishment


def test_accept() -> None:
    w = pair()
    request = make_request("STORESCP", "STORESCU", max_length=32768)
    accept = make_accept(request, max_length=65536)
    w.associate(request, accept)

    assert w.transitions(w.requestor) == ESTABLISH_REQUESTOR
    assert w.transitions(w.acceptor) == ESTABLISH_ACCEPTOR
    assert w.acceptor.primitives == [AssociateIndication(request)]
    assert w.requestor.primitives == [AssociateAccepted(accept)]
    assert w.requestor.sent == [request]
    assert w.acceptor.sent == [accept]
    for end in (w.requestor, w.acceptor):
        assert end.machine.established
        assert end.machine.next_deadline() is None
    assert w.requestor.machine.peer_max_pdata_length == 65536
    assert w.acceptor.machine.peer_max_pdata_length == 32768


def test_reject_by_the_user() -> None:
    w = pair()
    rejection = make_reject(result=1, source=1, reason=3)  # calling AE title not recognized
    w.associate(make_request(calling="STRANGER"), rejection)

    assert w.requestor.primitives == [AssociateRejected(rejection)]
    assert [type(p) for p in w.acceptor.primitives] == [AssociateIndication]
    assert w.acceptor.sent == [rejection]
    assert w.transitions(w.requestor) == [*ESTABLISH_REQUESTOR[:2], "Sta5 + Evt4 -> AE-4 -> Sta1"]
    assert w.transitions(w.acceptor) == [
        *ESTABLISH_ACCEPTOR[:2],
        "Sta3 + Evt8 -> AE-8 -> Sta13",
        "Sta13 + Evt17 -> AR-5 -> Sta1",  # the requestor closed, as AE-4 says
    ]
    assert w.requestor.closed and w.acceptor.saw_close
    both_idle_and_closed(w)


def test_reject_by_the_provider_protocol_version() -> None:
    w = pair()
    w.associate(make_request(protocol_version=2))

    # AE-6: not acceptable to the service-provider; the acceptor's user never hears of it.
    assert w.acceptor.primitives == []
    rejection = make_reject(result=1, source=2, reason=2)  # protocol-version-not-supported
    assert w.acceptor.sent == [rejection]
    assert w.requestor.primitives == [AssociateRejected(rejection)]
    assert w.transitions(w.acceptor) == [
        "Sta1 + Evt5 -> AE-5 -> Sta2",
        "Sta2 + Evt6 -> AE-6 -> Sta13",
        "Sta13 + Evt17 -> AR-5 -> Sta1",
    ]
    assert w.transitions(w.requestor)[-1] == "Sta5 + Evt4 -> AE-4 -> Sta1"
    both_idle_and_closed(w)


def test_a_provider_check_can_refuse_on_other_grounds() -> None:
    refusal = make_reject(result=2, source=3, reason=1)  # transient, presentation: congestion
    w = pair(provider_check=lambda request: refusal)
    w.associate()
    assert w.requestor.primitives == [AssociateRejected(refusal)]
    assert w.acceptor.primitives == []
    both_idle_and_closed(w)


# --------------------------------------------------------------------------------------
# Data transfer, release, abort


def test_pdata_both_ways() -> None:
    w = established()
    to_acceptor = [pdata_bytes(bytes([n]) * (n + 1), control=n % 4) for n in range(5)]
    to_requestor = [pdata_bytes(bytes([0x80 + n]) * 7) for n in range(3)]
    for data in to_acceptor:
        w.push(w.requestor, w.requestor.machine.pdata_request(data, w.now))
    for data in to_requestor:
        w.push(w.acceptor, w.acceptor.machine.pdata_request(data, w.now))
    w.pump()

    assert w.acceptor.primitives == [PDataIndication(decode_pdu(d)) for d in to_acceptor]  # type: ignore[arg-type]
    assert w.requestor.primitives == [PDataIndication(decode_pdu(d)) for d in to_requestor]  # type: ignore[arg-type]
    assert (
        w.transitions(w.requestor)[3:]
        == ["Sta6 + Evt9 -> DT-1 -> Sta6"] * 5 + ["Sta6 + Evt10 -> DT-2 -> Sta6"] * 3
    )
    assert w.requestor.state is State.Sta6 and w.acceptor.state is State.Sta6


@pytest.mark.parametrize("releaser", ["requestor", "acceptor"])
def test_release(releaser: str) -> None:
    w = established()
    asker = getattr(w, releaser)
    answerer = w.peer(asker)
    w.run(asker, asker.machine.release_request(w.now))
    assert asker.state is State.Sta7
    assert answerer.primitives == [ReleaseIndication()]
    assert answerer.state is State.Sta8

    w.run(answerer, answerer.machine.release_response(w.now))
    assert asker.primitives == [ReleaseConfirmation()]
    assert w.transitions(asker)[3:] == [
        "Sta6 + Evt11 -> AR-1 -> Sta7",
        "Sta7 + Evt13 -> AR-3 -> Sta1",
    ]
    assert w.transitions(answerer)[3:] == [
        "Sta6 + Evt12 -> AR-2 -> Sta8",
        "Sta8 + Evt14 -> AR-4 -> Sta13",
        "Sta13 + Evt17 -> AR-5 -> Sta1",
    ]
    assert asker.closed and answerer.saw_close
    both_idle_and_closed(w)


@pytest.mark.parametrize("aborter", ["requestor", "acceptor"])
def test_abort(aborter: str) -> None:
    w = established()
    end = getattr(w, aborter)
    peer = w.peer(end)
    w.run(end, end.machine.abort_request(w.now))

    assert end.sent[-1] == A_ABORT(source=0, reason=0)
    assert peer.primitives == [AbortIndication(source=0, reason=0)]
    assert end.primitives == []
    assert w.transitions(end)[3:] == [
        "Sta6 + Evt15 -> AA-1 -> Sta13",
        "Sta13 + Evt17 -> AR-5 -> Sta1",
    ]
    assert w.transitions(peer)[3:] == ["Sta6 + Evt16 -> AA-3 -> Sta1"]
    assert peer.closed and end.saw_close
    both_idle_and_closed(w)


def test_abort_while_connecting_closes_the_connection() -> None:
    machine = machine_in_state(State.Sta4, requestor=True)
    assert machine.abort_request(0.0) == [CloseTransport()]
    assert str(machine.history[-1]) == "Sta4 + Evt15 -> AA-2 -> Sta1"


def test_abort_while_answering_the_request() -> None:
    w = pair()
    w.run(w.requestor, w.requestor.machine.associate_request(make_request(), w.now))
    assert w.acceptor.state is State.Sta3
    w.run(w.acceptor, w.acceptor.machine.abort_request(w.now))
    assert w.requestor.primitives == [AbortIndication(source=0, reason=0)]
    assert w.transitions(w.requestor)[-1] == "Sta5 + Evt16 -> AA-3 -> Sta1"
    assert w.transitions(w.acceptor)[-2:] == [
        "Sta3 + Evt15 -> AA-1 -> Sta13",
        "Sta13 + Evt17 -> AR-5 -> Sta1",
    ]
    both_idle_and_closed(w)


def test_release_collision() -> None:
    w = established()
    # Both users ask at once: the two A-RELEASE-RQ PDUs cross on the wire.
    w.push(w.requestor, w.requestor.machine.release_request(w.now))
    w.push(w.acceptor, w.acceptor.machine.release_request(w.now))
    w.pump()
    assert w.requestor.state is State.Sta9
    assert w.acceptor.state is State.Sta10
    assert w.requestor.primitives == [ReleaseIndication(collision=True)]
    assert w.acceptor.primitives == [ReleaseIndication(collision=True)]

    # Table 9-10: in a collision the requestor answers first (Sta9, AR-9); the
    # acceptor waits for that A-RELEASE-RP (Sta10) before its user may answer (Sta12).
    w.run(w.requestor, w.requestor.machine.release_response(w.now))
    assert state_of(w.requestor) is State.Sta11
    assert state_of(w.acceptor) is State.Sta12
    assert w.acceptor.primitives[-1] == ReleaseConfirmation()

    w.run(w.acceptor, w.acceptor.machine.release_response(w.now))
    assert w.requestor.primitives[-1] == ReleaseConfirmation()
    assert w.transitions(w.requestor)[3:] == [
        "Sta6 + Evt11 -> AR-1 -> Sta7",
        "Sta7 + Evt12 -> AR-8 -> Sta9",
        "Sta9 + Evt14 -> AR-9 -> Sta11",
        "Sta11 + Evt13 -> AR-3 -> Sta1",
    ]
    assert w.transitions(w.acceptor)[3:] == [
        "Sta6 + Evt11 -> AR-1 -> Sta7",
        "Sta7 + Evt12 -> AR-8 -> Sta10",
        "Sta10 + Evt13 -> AR-10 -> Sta12",
        "Sta12 + Evt14 -> AR-4 -> Sta13",
        "Sta13 + Evt17 -> AR-5 -> Sta1",
    ]
    assert w.requestor.sent[-2:] == [A_RELEASE_RQ(), A_RELEASE_RP()]
    assert w.acceptor.sent[-2:] == [A_RELEASE_RQ(), A_RELEASE_RP()]
    both_idle_and_closed(w)


def test_the_acceptor_cannot_answer_a_collision_first() -> None:
    w = established()
    w.push(w.requestor, w.requestor.machine.release_request(w.now))
    w.push(w.acceptor, w.acceptor.machine.release_request(w.now))
    w.pump()
    with pytest.raises(LocalProtocolError):
        w.acceptor.machine.release_response(w.now)  # Evt14 in Sta10: no cell
    assert w.acceptor.state is State.Sta10


def test_pdata_received_while_awaiting_the_release_reply_is_delivered() -> None:
    w = established()
    answers = [pdata_bytes(b"C-ECHO-RSP"), pdata_bytes(b"late data", control=0)]
    # The acceptor's answer is on its way when the requestor asks for the release.
    w.push(w.requestor, w.requestor.machine.release_request(w.now))
    w.push(w.acceptor, w.acceptor.machine.pdata_request(answers[0], w.now))
    w.pump()
    assert w.acceptor.state is State.Sta8
    # A released peer may still send what it owes (AR-7) before it answers.
    w.run(w.acceptor, w.acceptor.machine.pdata_request(answers[1], w.now))
    w.run(w.acceptor, w.acceptor.machine.release_response(w.now))

    assert w.requestor.primitives == [
        PDataIndication(decode_pdu(answers[0])),  # type: ignore[arg-type]
        PDataIndication(decode_pdu(answers[1])),  # type: ignore[arg-type]
        ReleaseConfirmation(),
    ]
    assert w.transitions(w.requestor)[3:] == [
        "Sta6 + Evt11 -> AR-1 -> Sta7",
        "Sta7 + Evt10 -> AR-6 -> Sta7",
        "Sta7 + Evt10 -> AR-6 -> Sta7",
        "Sta7 + Evt13 -> AR-3 -> Sta1",
    ]
    assert w.transitions(w.acceptor)[3:] == [
        "Sta6 + Evt9 -> DT-1 -> Sta6",
        "Sta6 + Evt12 -> AR-2 -> Sta8",
        "Sta8 + Evt9 -> AR-7 -> Sta8",
        "Sta8 + Evt14 -> AR-4 -> Sta13",
        "Sta13 + Evt17 -> AR-5 -> Sta1",
    ]
    both_idle_and_closed(w)


def test_a_whole_association_fed_one_byte_at_a_time() -> None:
    clock = Clock()
    machine = machine_in_state(State.Sta5, requestor=True, clock=clock)
    stream = b"".join(
        [
            encode_pdu(make_accept()),
            pdata_bytes(b"x" * 300),
            pdata_bytes(b"y"),
            encode_pdu(A_RELEASE_RQ()),
        ]
    )
    outputs = []
    for i in range(len(stream)):
        outputs += machine.receive_data(stream[i : i + 1], clock.now)
    assert [str(t) for t in machine.history][-4:] == [
        "Sta5 + Evt3 -> AE-3 -> Sta6",
        "Sta6 + Evt10 -> DT-2 -> Sta6",
        "Sta6 + Evt10 -> DT-2 -> Sta6",
        "Sta6 + Evt12 -> AR-2 -> Sta8",
    ]
    assert outputs == [
        AssociateAccepted(make_accept()),
        PDataIndication(make_pdata(b"x" * 300)),
        PDataIndication(make_pdata(b"y")),
        ReleaseIndication(),
    ]


# --------------------------------------------------------------------------------------
# ARTIM, with the fake clock


def test_a_silent_connection_is_closed_at_the_artim_deadline_not_before() -> None:
    clock = Clock(now=500.0)
    machine = Machine(requestor=False, artim_timeout=ARTIM_TIMEOUT)
    assert machine.transport_indication(clock.now) == []
    assert machine.next_deadline() == 530.0

    assert machine.handle_timer(529.999) == []
    assert machine.state is State.Sta2
    assert machine.next_deadline() == 530.0

    assert machine.handle_timer(530.0) == [CloseTransport()]
    assert state_of(machine) is State.Sta1
    assert machine.next_deadline() is None
    assert str(machine.history[-1]) == "Sta2 + Evt18 -> AA-2 -> Sta1"
    assert machine.handle_timer(10_000.0) == []  # expires once


def test_an_a_associate_rq_in_time_stops_artim() -> None:
    clock = Clock()
    machine = machine_in_state(State.Sta2, requestor=False, clock=clock)
    clock.advance(ARTIM_TIMEOUT - 0.001)
    machine.receive_data(encode_pdu(make_request()), clock.now)
    assert machine.state is State.Sta3
    assert machine.next_deadline() is None
    assert machine.handle_timer(clock.advance(3600.0)) == []
    assert machine.state is State.Sta3  # the user's answer is not ARTIM's business


def test_aa_1_restarts_artim() -> None:
    clock = Clock(now=0.0)
    machine = machine_in_state(State.Sta2, requestor=False, clock=clock)
    assert machine.next_deadline() == ARTIM_TIMEOUT
    clock.advance(20.0)
    outputs = machine.receive_data(pdata_bytes(), clock.now)  # a P-DATA before any request
    assert [decode_pdu(o.data) for o in outputs if isinstance(o, Send)] == [
        A_ABORT(source=2, reason=AbortReason.UNEXPECTED_PDU)
    ]
    assert str(machine.history[-1]) == "Sta2 + Evt10 -> AA-1 -> Sta13"
    assert machine.next_deadline() == 20.0 + ARTIM_TIMEOUT


def _reject(machine: Machine, now: float) -> list[Output]:
    return machine.associate_response(make_reject(), now)


def _release_reply(machine: Machine, now: float) -> list[Output]:
    machine.receive_data(encode_pdu(A_RELEASE_RQ()), now)
    return machine.release_response(now)


def _abort(machine: Machine, now: float) -> list[Output]:
    return machine.abort_request(now)


@pytest.mark.parametrize(
    ("state", "requestor", "last_word", "sent"),
    [
        pytest.param(State.Sta3, False, _reject, make_reject(), id="after-our-RJ"),
        pytest.param(State.Sta6, False, _release_reply, A_RELEASE_RP(), id="after-our-RP"),
        pytest.param(State.Sta6, True, _abort, A_ABORT(0, 0), id="after-our-A-ABORT"),
    ],
)
def test_a_peer_that_never_closes_is_closed_when_artim_expires(
    state, requestor, last_word, sent
) -> None:
    clock = Clock()
    machine = machine_in_state(state, requestor=requestor, clock=clock)
    clock.advance(5.0)
    outputs = last_word(machine, clock.now)
    assert [decode_pdu(o.data) for o in outputs if isinstance(o, Send)] == [sent]
    assert machine.state is State.Sta13
    deadline = machine.next_deadline()
    assert deadline == clock.now + ARTIM_TIMEOUT

    # The peer sends more and never closes: Sta13 ignores it (AA-6) and waits.
    assert machine.receive_data(pdata_bytes(), clock.advance(1.0)) == []
    assert str(machine.history[-1]) == "Sta13 + Evt10 -> AA-6 -> Sta13"
    assert machine.next_deadline() == deadline
    assert machine.handle_timer(deadline - 0.001) == []
    assert machine.state is State.Sta13

    assert machine.handle_timer(deadline) == [CloseTransport()]
    assert str(machine.history[-1]) == "Sta13 + Evt18 -> AA-2 -> Sta1"
    assert machine.next_deadline() is None


def test_wired_artim_closes_for_a_peer_that_has_gone_deaf() -> None:
    w = established()
    # The acceptor's process hangs: it will neither answer nor close.
    w.acceptor.closed = True  # its socket swallows everything (a test-only trick of Wire)
    w.run(w.requestor, w.requestor.machine.abort_request(w.now))
    assert w.requestor.state is State.Sta13
    w.advance(ARTIM_TIMEOUT - 1)
    assert w.requestor.state is State.Sta13
    w.advance(1)
    assert state_of(w.requestor) is State.Sta1
    assert w.transitions(w.requestor)[-1] == "Sta13 + Evt18 -> AA-2 -> Sta1"


# --------------------------------------------------------------------------------------
# A broken peer


def test_an_http_request_in_sta2_is_aborted_as_an_unrecognized_pdu() -> None:
    clock = Clock()
    machine = machine_in_state(State.Sta2, requestor=False, clock=clock)
    outputs = machine.receive_data(
        b"GET / HTTP/1.1\r\nHost: pacs.example:104\r\nAccept: */*\r\n\r\n", clock.now
    )
    assert len(outputs) == 1 and isinstance(outputs[0], Send)
    assert decode_pdu(outputs[0].data) == A_ABORT(source=2, reason=1)
    assert outputs[0].data == b"\x07\x00\x00\x00\x00\x04\x00\x00\x02\x01"
    assert machine.state is State.Sta13
    assert str(machine.history[-1]) == "Sta2 + Evt19 -> AA-1 -> Sta13"
    assert machine.next_deadline() == clock.now + ARTIM_TIMEOUT


@pytest.mark.parametrize("declared", [1025, 0xFFFFFFFF])
def test_a_pdata_over_our_maximum_is_aborted_with_reason_6(declared: int) -> None:
    clock = Clock()
    machine = machine_in_state(State.Sta6, requestor=False, clock=clock, max_pdata_length=1024)
    # The header alone is enough: not a byte of the body is waited for.
    outputs = machine.receive_data(b"\x04\x00" + declared.to_bytes(4, "big"), clock.now)
    assert len(outputs) == 2
    assert decode_pdu(outputs[0].data) == A_ABORT(source=2, reason=6)  # type: ignore[union-attr]
    indication = outputs[1]
    assert isinstance(indication, ProviderAbortIndication)
    assert indication.reason == AbortReason.INVALID_PDU_PARAMETER_VALUE
    assert f"P-DATA-TF PDU-length {declared} exceeds the 1024 we accept" in indication.message
    assert str(machine.history[-1]) == "Sta6 + Evt19 -> AA-8 -> Sta13"


def test_a_pdata_at_our_maximum_is_accepted() -> None:
    machine = machine_in_state(State.Sta6, requestor=False, max_pdata_length=1024)
    data = pdata_bytes(b"z" * (1024 - 6))  # PDU-length = PDV item (4 + 2 + data) = 1024
    assert int.from_bytes(data[2:6], "big") == 1024
    assert machine.receive_data(data, 0.0) == [PDataIndication(make_pdata(b"z" * 1018))]


def test_after_a_framing_error_further_bytes_are_ignored() -> None:
    clock = Clock()
    machine = machine_in_state(State.Sta6, requestor=False, clock=clock, max_pdata_length=1024)
    first = machine.receive_data(b"\x04\x00\xff\xff\xff\xff" + b"\x00" * 100, clock.now)
    assert [type(o) for o in first] == [Send, ProviderAbortIndication]
    history = list(machine.history)

    # The rest of the oversized PDU, then what looks like more PDUs: the stream can no
    # longer be cut into PDUs, so nothing of it is read, and no second A-ABORT is sent.
    for chunk in (b"\x00" * 5000, encode_pdu(A_RELEASE_RQ()), encode_pdu(A_ABORT(0, 0)), b"junk"):
        assert machine.receive_data(chunk, clock.advance(1.0)) == []
    assert list(machine.history) == history
    assert machine.state is State.Sta13

    assert machine.transport_closed(clock.now) == []
    assert str(machine.history[-1]) == "Sta13 + Evt17 -> AR-5 -> Sta1"


def test_one_abort_only_even_without_a_history() -> None:
    # The rule must not depend on the debug history (which may be switched off).
    machine = Machine(requestor=False, history_size=0)
    machine.transport_indication(0.0)
    first = machine.receive_data(b"\xff" * 6, 0.0)
    assert [decode_pdu(o.data) for o in first if isinstance(o, Send)] == [A_ABORT(2, 1)]
    assert machine.receive_data(b"\xff" * 6, 1.0) == []
    assert machine.receive_data(encode_pdu(A_RELEASE_RQ()), 2.0) == []
    assert not machine.history


def test_after_garbage_in_sta13_one_abort_only() -> None:
    clock = Clock()
    machine = machine_in_state(State.Sta13, requestor=True, clock=clock)
    outputs = machine.receive_data(b"\xff" * 10, clock.now)
    assert [decode_pdu(o.data) for o in outputs if isinstance(o, Send)] == [A_ABORT(2, 1)]
    assert str(machine.history[-1]) == "Sta13 + Evt19 -> AA-7 -> Sta13"
    assert machine.receive_data(b"\xff" * 10, clock.now) == []
    assert len([t for t in machine.history if t.event.name == "Evt19"]) == 1


def test_wired_oversized_pdata_aborts_both_sides() -> None:
    clock = Clock()
    w = wire(
        Machine(requestor=True, artim_timeout=ARTIM_TIMEOUT),
        Machine(requestor=False, artim_timeout=ARTIM_TIMEOUT, max_pdata_length=1024),
        clock,
    )
    w.associate()
    # The requestor's user ignores the acceptor's limit.
    w.run(w.requestor, w.requestor.machine.pdata_request(pdata_bytes(b"!" * 2000), w.now))
    assert [type(p) for p in w.acceptor.primitives[-1:]] == [ProviderAbortIndication]
    assert w.acceptor.sent[-1] == A_ABORT(source=2, reason=6)
    requestor_got = w.requestor.primitives[-1]
    assert isinstance(requestor_got, ProviderAbortIndication)
    assert requestor_got.reason == AbortReason.INVALID_PDU_PARAMETER_VALUE
    assert w.transitions(w.requestor)[-1] == "Sta6 + Evt16 -> AA-3 -> Sta1"
    assert w.transitions(w.acceptor)[-2:] == [
        "Sta6 + Evt19 -> AA-8 -> Sta13",
        "Sta13 + Evt17 -> AR-5 -> Sta1",
    ]
    both_idle_and_closed(w)


# --------------------------------------------------------------------------------------
# The caller's mistakes, history and logging


def test_a_local_request_out_of_place_raises_and_changes_nothing() -> None:
    machine = Machine(requestor=True)
    with pytest.raises(LocalProtocolError, match=r"Evt9 .* Sta1"):
        machine.pdata_request(pdata_bytes(), 0.0)
    assert machine.state is State.Sta1
    assert not machine.history


def test_history_is_bounded() -> None:
    clock = Clock()
    machine = machine_in_state(State.Sta6, requestor=True, clock=clock, history_size=16)
    for _ in range(1000):
        machine.receive_data(pdata_bytes(), clock.now)
    assert len(machine.history) == 16
    assert all(str(t) == "Sta6 + Evt10 -> DT-2 -> Sta6" for t in machine.history)
    machine.release_request(clock.now)
    assert len(machine.history) == 16
    assert str(machine.history[-1]) == "Sta6 + Evt11 -> AR-1 -> Sta7"


def test_debug_log_lines_show_every_transition(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="dul.machine")
    w = established()
    w.run(w.requestor, w.requestor.machine.pdata_request(pdata_bytes(), w.now))
    w.run(w.requestor, w.requestor.machine.release_request(w.now))
    w.run(w.acceptor, w.acceptor.machine.release_response(w.now))

    pattern = re.compile(
        r"Sta(1[0-3]|[1-9]) \+ Evt(1[0-9]|[1-9]) -> (AE|DT|AR|AA)-(10|[1-9]) -> Sta(1[0-3]|[1-9])"
    )
    lines = [r.getMessage() for r in caplog.records if r.name == "dul.machine"]
    transitions = [line for line in lines if pattern.search(line)]
    assert [line.split(": ", 1)[1] for line in transitions if line.startswith("requestor: ")] == (
        w.transitions(w.requestor)
    )
    assert [line.split(": ", 1)[1] for line in transitions if line.startswith("acceptor: ")] == (
        w.transitions(w.acceptor)
    )
    assert all(pattern.fullmatch(line.split(": ", 1)[1]) for line in transitions)
    assert "requestor: Sta7 + Evt13 -> AR-3 -> Sta1" in lines
    assert all(r.levelno == logging.DEBUG for r in caplog.records if r.name == "dul.machine")


def test_no_transition_is_logged_above_debug(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="dul.machine")
    established()
    assert [r for r in caplog.records if r.name == "dul.machine"] == []


def test_wire_refuses_the_roles_the_wrong_way_round() -> None:
    with pytest.raises(ValueError):
        wire(Machine(requestor=False), Machine(requestor=True))
