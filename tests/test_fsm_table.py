"""PS3.8 Table 9-10, cell by cell, against a real `Machine` and a fake clock.

The grid itself (`dul.fsm.TABLE`) is checked for its shape, for its agreement with an
independent transcription (pynetdicom's `TRANSITION_TABLE`), and for every action
having its next states (Tables 9-6..9-9) and its function. Then each of the 247 cells
is exercised: a machine is brought into the cell's state by real inputs
(`tests.machines.machine_in_state`), in each role that can reach that state, the
cell's event is injected the way a driver would inject it, and the transition, the
outputs and the ARTIM timer are compared with what the standard's action says.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest

from dul.actions import ACTIONS
from dul.errors import AbortReason, LocalProtocolError
from dul.fsm import LOCAL_EVENTS, NEXT_STATES, TABLE, Action, Event, State, cells, lookup
from dul.machine import Machine, Transition
from dul.pdu import A_ABORT, A_RELEASE_RP, A_RELEASE_RQ, decode_pdu, encode_pdu
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
from tests.machines import (
    ARTIM_TIMEOUT,
    ROLES,
    Clock,
    machine_in_state,
    make_accept,
    make_pdata,
    make_reject,
    make_request,
    role_name,
)

# --------------------------------------------------------------------------------------
# The grid as data

#: The events that are PDUs received on the transport connection (or bytes that are not one).
PDU_EVENTS = frozenset(
    {
        Event.Evt3,
        Event.Evt4,
        Event.Evt6,
        Event.Evt10,
        Event.Evt12,
        Event.Evt13,
        Event.Evt16,
        Event.Evt19,
    }
)


def test_grid_is_19_events_by_13_states() -> None:
    assert list(TABLE) == list(Event)
    assert len(TABLE) == 19
    assert all(len(row) == 13 for row in TABLE.values())
    assert len(State) == 13
    assert len(cells()) == 247
    assert len({(event, state) for event, state, _ in cells()}) == 247
    assert [(e, s) for e, s, _ in cells()] == [(e, s) for e in Event for s in State]


def test_every_action_is_a_distinct_member() -> None:
    # An Enum member whose value repeats an earlier one's is an alias: AA-5 and AR-5
    # have the same wording in the standard, and once were one member.
    assert len(Action) == 28
    assert len({action.label for action in Action}) == 28
    for action in Action:
        assert re.fullmatch(r"(AE-[1-8]|DT-[12]|AR-(10|[1-9])|AA-[1-8])", action.label)
    assert Action.AA_5.name == "AA_5"  # not an alias of AR_5


def test_states_and_events_carry_the_standards_wording() -> None:
    assert State.Sta1.value == "Idle"
    assert State.Sta13.value.startswith("Awaiting Transport Connection Close Indication")
    assert Event.Evt19.value == "Unrecognized or invalid PDU received"
    assert Action.AR_8.value.startswith("Issue A-RELEASE indication (release collision)")


def test_grid_equals_pynetdicom_transition_table() -> None:
    """Cell for cell, empty cells included.

    pynetdicom's table has AA-5 in Evt17/Sta2 and AR-5 in Evt17/Sta13, as the
    standard does (both are "Stop ARTIM timer"; next state Sta1). So has ours.
    """
    fsm = pytest.importorskip("pynetdicom.fsm")
    theirs = fsm.TRANSITION_TABLE
    assert set(theirs) <= {(event.name, state.name) for event in Event for state in State}
    differences = []
    for event, state, action in cells():
        ours = action.label if action else None
        if theirs.get((event.name, state.name)) != ours:
            differences.append((event.name, state.name, ours, theirs.get((event.name, state.name))))
    assert differences == []
    assert lookup(Event.Evt17, State.Sta2) is Action.AA_5
    assert lookup(Event.Evt17, State.Sta13) is Action.AR_5


def test_next_states_equal_pynetdicom() -> None:
    fsm = pytest.importorskip("pynetdicom.fsm")
    for action in Action:
        _, _, theirs = fsm.ACTIONS[action.label]
        names = {theirs} if isinstance(theirs, str) else set(theirs)
        assert {state.name for state in NEXT_STATES[action]} == names, action.label


def test_every_action_in_the_grid_has_next_states_and_a_function() -> None:
    used = {action for _, _, action in cells() if action is not None}
    assert used == set(Action)  # and no action is dead
    for action in used:
        assert NEXT_STATES[action], action.label
        assert ACTIONS[action].__name__ == action.name, action.label
        assert callable(ACTIONS[action])
    assert set(NEXT_STATES) == set(Action)
    assert set(ACTIONS) == set(Action)


def test_blank_cells_for_received_pdus_are_only_where_there_is_no_connection() -> None:
    for event, state, action in cells():
        if event in PDU_EVENTS and action is None:
            assert state in (State.Sta1, State.Sta4), (event.name, state.name)


def test_local_events_are_the_users_primitives() -> None:
    assert {
        Event.Evt1,
        Event.Evt7,
        Event.Evt8,
        Event.Evt9,
        Event.Evt11,
        Event.Evt14,
        Event.Evt15,
    } == LOCAL_EVENTS


def test_a_transition_prints_as_in_the_design() -> None:
    transition = Transition(State.Sta6, Event.Evt12, Action.AR_2, State.Sta8)
    assert str(transition) == "Sta6 + Evt12 -> AR-2 -> Sta8"
    assert str(Transition(State.Sta10, Event.Evt13, Action.AR_10, State.Sta12)) == (
        "Sta10 + Evt13 -> AR-10 -> Sta12"
    )


# --------------------------------------------------------------------------------------
# Every cell, on a real machine

REQUEST = make_request()
ACCEPT = make_accept(REQUEST)
REJECT = make_reject(1, 1, 3)
PDATA = make_pdata(b"\x02\x00\x00\x00\x10\x00\x00\x00" + b"1.2.840.10008.1.1\x00")
USER_ABORT = A_ABORT(source=0, reason=0)
#: What a web browser sends to a DICOM port: PDU-type 47H ("G"), not a DICOM PDU.
GARBAGE = b"GET / HTTP/1.1\r\nHost: pacs.example\r\n\r\n"


def inject(machine: Machine, event: Event, clock: Clock) -> list[Output]:
    """Make `event` happen to `machine` at `clock.now`, as a driver would."""
    now = clock.now
    match event:
        case Event.Evt1:
            return machine.associate_request(REQUEST, now)
        case Event.Evt2:
            return machine.transport_confirm(now)
        case Event.Evt3:
            return machine.receive_data(encode_pdu(ACCEPT), now)
        case Event.Evt4:
            return machine.receive_data(encode_pdu(REJECT), now)
        case Event.Evt5:
            return machine.transport_indication(now)
        case Event.Evt6:
            return machine.receive_data(encode_pdu(REQUEST), now)
        case Event.Evt7:
            return machine.associate_response(ACCEPT, now)
        case Event.Evt8:
            return machine.associate_response(REJECT, now)
        case Event.Evt9:
            return machine.pdata_request(encode_pdu(PDATA), now)
        case Event.Evt10:
            return machine.receive_data(encode_pdu(PDATA), now)
        case Event.Evt11:
            return machine.release_request(now)
        case Event.Evt12:
            return machine.receive_data(encode_pdu(A_RELEASE_RQ()), now)
        case Event.Evt13:
            return machine.receive_data(encode_pdu(A_RELEASE_RP()), now)
        case Event.Evt14:
            return machine.release_response(now)
        case Event.Evt15:
            return machine.abort_request(now)
        case Event.Evt16:
            return machine.receive_data(encode_pdu(USER_ABORT), now)
        case Event.Evt17:
            return machine.transport_closed(now)
        case Event.Evt18:
            deadline = machine.next_deadline()
            # Wake the machine at its deadline; where ARTIM does not run, much later.
            clock.now = deadline if deadline is not None else now + 100 * ARTIM_TIMEOUT
            return machine.handle_timer(clock.now)
        case Event.Evt19:
            return machine.receive_data(GARBAGE, now)
    raise AssertionError(event)


@dataclass(frozen=True)
class PAbort:
    """An A-P-ABORT indication, compared by its reason (the message is for people)."""

    reason: int


@dataclass(frozen=True)
class Sent:
    """A `Send`, compared by the PDU its bytes decode to."""

    pdu: object


def normalize(outputs: list[Output]) -> list[object]:
    result: list[object] = []
    for output in outputs:
        if isinstance(output, Send):
            pdu = decode_pdu(output.data)
            if output.pdu is not None:
                assert output.pdu == pdu, "Send.pdu is not what its bytes say"
            result.append(Sent(pdu))
        elif isinstance(output, ProviderAbortIndication):
            assert output.message, "an A-P-ABORT indication must say why"
            result.append(PAbort(int(output.reason)))
        else:
            result.append(output)
    return result


def provider_reason(event: Event) -> int:
    """The A-ABORT reason for a PDU refused in this cell: the HTTP request of Evt19 is an
    unrecognized PDU (1); any other PDU is valid but out of place (2, unexpected PDU)."""
    return AbortReason.UNRECOGNIZED_PDU if event is Event.Evt19 else AbortReason.UNEXPECTED_PDU


def expected_outputs(action: Action, event: Event) -> list[object]:
    """What the standard's action (Tables 9-6..9-9) hands out, in order."""
    match action:
        case Action.AE_1:  # Issue TRANSPORT CONNECT request primitive
            return [OpenTransport()]
        case Action.AE_2:  # Send A-ASSOCIATE-RQ-PDU
            return [Sent(REQUEST)]
        case Action.AE_3:  # Issue A-ASSOCIATE confirmation (accept) primitive
            return [AssociateAccepted(ACCEPT)]
        case Action.AE_4:  # Issue A-ASSOCIATE confirmation (reject), close transport
            return [AssociateRejected(REJECT), CloseTransport()]
        case Action.AE_5:  # Issue Transport connection response; start ARTIM
            return []
        case Action.AE_6:  # Stop ARTIM; acceptable: issue A-ASSOCIATE indication
            return [AssociateIndication(REQUEST)]
        case Action.AE_7:  # Send A-ASSOCIATE-AC PDU
            return [Sent(ACCEPT)]
        case Action.AE_8:  # Send A-ASSOCIATE-RJ PDU and start ARTIM
            return [Sent(REJECT)]
        case Action.DT_1 | Action.AR_7:  # Send / Issue P-DATA-TF PDU
            return [Sent(PDATA)]
        case Action.DT_2 | Action.AR_6:  # Send / Issue P-DATA indication
            return [PDataIndication(PDATA)]
        case Action.AR_1:  # Send A-RELEASE-RQ PDU
            return [Sent(A_RELEASE_RQ())]
        case Action.AR_2:  # Issue A-RELEASE indication primitive
            return [ReleaseIndication()]
        case Action.AR_3:  # Issue A-RELEASE confirmation, close transport
            return [ReleaseConfirmation(), CloseTransport()]
        case Action.AR_4 | Action.AR_9:  # Issue / Send A-RELEASE-RP PDU
            return [Sent(A_RELEASE_RP())]
        case Action.AR_5 | Action.AA_5:  # Stop ARTIM timer
            return []
        case Action.AR_8:  # Issue A-RELEASE indication (release collision)
            return [ReleaseIndication(collision=True)]
        case Action.AR_10:  # Issue A-RELEASE confirmation primitive
            return [ReleaseConfirmation()]
        case Action.AA_1:  # Send A-ABORT PDU, start (or restart) ARTIM
            if event is Event.Evt15:
                return [Sent(A_ABORT(source=0, reason=0))]
            # Reached by a received PDU in Sta2: the provider's abort (see dul.actions).
            return [Sent(A_ABORT(source=2, reason=provider_reason(event)))]
        case Action.AA_2:  # Stop ARTIM if running; close transport
            return [CloseTransport()]
        case Action.AA_3:  # service-user initiated: A-ABORT indication; close transport
            return [AbortIndication(source=0, reason=0), CloseTransport()]
        case Action.AA_4:  # Issue A-P-ABORT indication primitive
            return [PAbort(AbortReason.NOT_SPECIFIED)]
        case Action.AA_6:  # Ignore PDU
            return []
        case Action.AA_7:  # Send A-ABORT PDU
            return [Sent(A_ABORT(source=2, reason=provider_reason(event)))]
        case Action.AA_8:  # Send A-ABORT (service-provider), A-P-ABORT indication, start ARTIM
            reason = provider_reason(event)
            return [Sent(A_ABORT(source=2, reason=reason)), PAbort(reason)]
    raise AssertionError(action)


#: What each action does to ARTIM, from the wording of Tables 9-6..9-9; any other action
#: leaves it as it was.
ARTIM_STARTED = frozenset({Action.AE_5, Action.AE_8, Action.AR_4, Action.AA_1, Action.AA_8})
ARTIM_STOPPED = frozenset({Action.AE_6, Action.AR_5, Action.AA_2, Action.AA_5})


def expected_next_state(action: Action, requestor: bool) -> State:
    if action is Action.AE_6:
        return State.Sta3  # the request is acceptable to the provider (version 1)
    if action is Action.AR_8:
        return State.Sta9 if requestor else State.Sta10
    (state,) = NEXT_STATES[action]
    return state


CELL_CASES = [
    pytest.param(
        event, state, action, requestor, id=f"{event.name}-{state.name}-{role_name(requestor)}"
    )
    for event, state, action in cells()
    for requestor in ROLES[state]
]


def test_every_cell_is_tested_in_some_role() -> None:
    assert {(case.values[0], case.values[1]) for case in CELL_CASES} == {
        (event, state) for event, state, _ in cells()
    }
    assert all(ROLES[state] for state in State)


@pytest.mark.parametrize(("event", "state", "action", "requestor"), CELL_CASES)
def test_cell(event: Event, state: State, action: Action | None, requestor: bool) -> None:
    clock = Clock()
    machine = machine_in_state(state, requestor=requestor, clock=clock)
    history_before = list(machine.history)
    deadline_before = machine.next_deadline()
    clock.advance(1.0)  # so that a restarted ARTIM differs from one left running

    if action is None and event in LOCAL_EVENTS:
        with pytest.raises(LocalProtocolError, match=rf"{event.name}\b.*\b{state.name}\b"):
            inject(machine, event, clock)
        assert machine.state is state
        assert list(machine.history) == history_before
        assert machine.next_deadline() == deadline_before
        return

    outputs = inject(machine, event, clock)

    if action is None:
        # A transport, timer or PDU event where the table has no cell: nothing happens.
        assert outputs == []
        assert machine.state is state
        assert list(machine.history) == history_before
        assert machine.next_deadline() == deadline_before
        return

    next_state = expected_next_state(action, requestor)
    assert len(machine.history) == len(history_before) + 1
    transition = machine.history[-1]
    assert (transition.state, transition.event, transition.action, transition.next_state) == (
        state,
        event,
        action,
        next_state,
    )
    assert next_state in NEXT_STATES[action]
    assert str(transition) == f"{state.name} + {event.name} -> {action.label} -> {next_state.name}"
    assert machine.state is next_state

    assert normalize(outputs) == expected_outputs(action, event)

    if action in ARTIM_STARTED:
        assert machine.next_deadline() == clock.now + ARTIM_TIMEOUT
    elif action in ARTIM_STOPPED or event is Event.Evt18:
        assert machine.next_deadline() is None
    else:
        assert machine.next_deadline() == deadline_before
    # ARTIM runs exactly while awaiting an A-ASSOCIATE-RQ or the transport's closing.
    assert (machine.next_deadline() is not None) == (machine.state in (State.Sta2, State.Sta13))


# --------------------------------------------------------------------------------------
# The other branches of some cells

AA_3_CELLS = [
    pytest.param(state, requestor, id=f"{state.name}-{role_name(requestor)}")
    for event, state, action in cells()
    if action is Action.AA_3
    for requestor in ROLES[state][:1]
]


@pytest.mark.parametrize(("state", "requestor"), AA_3_CELLS)
@pytest.mark.parametrize("reason", [0, 1, 2, 4, 5, 6])
def test_aa_3_provider_abort_gives_a_p_abort_indication(
    state: State, requestor: bool, reason: int
) -> None:
    clock = Clock()
    machine = machine_in_state(state, requestor=requestor, clock=clock)
    outputs = machine.receive_data(encode_pdu(A_ABORT(source=2, reason=reason)), clock.now)
    assert str(machine.history[-1]) == f"{state.name} + Evt16 -> AA-3 -> Sta1"
    assert normalize(outputs) == [PAbort(reason), CloseTransport()]
    assert machine.next_deadline() is None


def test_aa_3_user_abort_keeps_the_users_reason() -> None:
    machine = machine_in_state(State.Sta6, requestor=True)
    outputs = machine.receive_data(encode_pdu(A_ABORT(source=0, reason=0)), 0.0)
    assert outputs == [AbortIndication(source=0, reason=0), CloseTransport()]


def test_ae_6_refused_by_the_provider_sends_rj_and_starts_artim() -> None:
    clock = Clock()
    machine = machine_in_state(State.Sta2, requestor=False, clock=clock)
    clock.advance(1.0)
    outputs = machine.receive_data(encode_pdu(make_request(protocol_version=2)), clock.now)
    assert str(machine.history[-1]) == "Sta2 + Evt6 -> AE-6 -> Sta13"
    # rejected-permanent, service-provider (ACSE), protocol-version-not-supported
    assert normalize(outputs) == [Sent(make_reject(1, 2, 2))]
    assert machine.next_deadline() == clock.now + ARTIM_TIMEOUT


def test_evt19_reason_comes_from_the_decoder() -> None:
    # A well-framed A-RELEASE-RQ whose PDU-length is not 4: invalid parameter value (6).
    clock = Clock()
    machine = machine_in_state(State.Sta6, requestor=False, clock=clock)
    outputs = machine.receive_data(b"\x05\x00\x00\x00\x00\x05\x00\x00\x00\x00\x00", clock.now)
    assert str(machine.history[-1]) == "Sta6 + Evt19 -> AA-8 -> Sta13"
    assert normalize(outputs) == [Sent(A_ABORT(source=2, reason=6)), PAbort(6)]
