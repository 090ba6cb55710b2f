"""The DICOM upper layer state machine as data (PS3.8 9.2).

Read this file beside PS3.8 Table 9-10. Its rules:

1. `State`, `Event` and `Action` carry the standard's names (Sta1, Evt12, AR-2) and,
   as their docstring values, the standard's wording.
2. `TABLE` is Table 9-10: one row per event, one column per state, `__` where the
   standard's cell is empty. Nothing else decides which action runs.
3. `NEXT_STATES` is Tables 9-6 to 9-9: the states each action may lead to. The machine
   checks the state an action returns against it after every action.
4. An empty cell reached by a local request (a P-DATA request in Sta1) is the caller's
   bug: `LocalProtocolError`, state unchanged. Empty cells for network events occur
   only in Sta1 and Sta4, where there is no connection to receive from.

Two cells are not in every printing of the table and are kept here because a real
transport needs them: Evt17 in Sta4 (the TCP connect failed) is AA-4, an A-P-ABORT
indication, as in DCMTK and pynetdicom.
"""

from __future__ import annotations

from enum import Enum, unique


@unique
class State(Enum):
    """The states of PS3.8 Table 9-10, with their definitions."""

    # Members are singletons: hash them by identity, in C. (Enum's own __hash__
    # is Python code, and the table is looked up on every event.)
    __hash__ = object.__hash__

    Sta1 = "Idle"
    Sta2 = "Transport connection open (Awaiting A-ASSOCIATE-RQ PDU)"
    Sta3 = "Awaiting local A-ASSOCIATE response primitive (from local user)"
    Sta4 = "Awaiting transport connection opening to complete (from local transport service)"
    Sta5 = "Awaiting A-ASSOCIATE-AC or A-ASSOCIATE-RJ PDU"
    Sta6 = "Association established and ready for data transfer"
    Sta7 = "Awaiting A-RELEASE-RP PDU"
    Sta8 = "Awaiting local A-RELEASE response primitive (from local user)"
    Sta9 = "Release collision requestor side; awaiting A-RELEASE response (from local user)"
    Sta10 = "Release collision acceptor side; awaiting A-RELEASE-RP PDU"
    Sta11 = "Release collision requestor side; awaiting A-RELEASE-RP PDU"
    Sta12 = (
        "Release collision acceptor side; awaiting A-RELEASE response primitive (from local user)"
    )
    Sta13 = "Awaiting Transport Connection Close Indication (Association no longer exists)"


@unique
class Event(Enum):
    """The events of PS3.8 Table 9-10."""

    __hash__ = object.__hash__

    Evt1 = "A-ASSOCIATE Request (local user)"
    Evt2 = "Transport Connect Confirm (local transport service)"
    Evt3 = "A-ASSOCIATE-AC PDU (received on transport connection)"
    Evt4 = "A-ASSOCIATE-RJ PDU (received on transport connection)"
    Evt5 = "Transport Connection Indication (local transport service)"
    Evt6 = "A-ASSOCIATE-RQ PDU (received on transport connection)"
    Evt7 = "A-ASSOCIATE response primitive (accept)"
    Evt8 = "A-ASSOCIATE response primitive (reject)"
    Evt9 = "P-DATA request primitive"
    Evt10 = "P-DATA-TF PDU"
    Evt11 = "A-RELEASE Request primitive"
    Evt12 = "A-RELEASE-RQ PDU (received on open transport connection)"
    Evt13 = "A-RELEASE-RP PDU (received on transport connection)"
    Evt14 = "A-RELEASE response primitive"
    Evt15 = "A-ABORT Request primitive"
    Evt16 = "A-ABORT PDU (received on open transport connection)"
    Evt17 = "Transport connection closed indication (local transport service)"
    Evt18 = "ARTIM timer expired (Association reject/release timer)"
    Evt19 = "Unrecognized or invalid PDU received"


@unique
class Action(Enum):
    """The actions of PS3.8 Tables 9-6 to 9-9.

    The values must be distinct: an Enum member whose value equals an earlier one's
    is an alias of it, not a member. AR-5 and AA-5 have the same wording in the
    standard ("Stop ARTIM timer"), so AA-5's value names its table too.
    """

    __hash__ = object.__hash__

    AE_1 = "Issue TRANSPORT CONNECT request primitive to local transport service"
    AE_2 = "Send A-ASSOCIATE-RQ-PDU"
    AE_3 = "Issue A-ASSOCIATE confirmation (accept) primitive"
    AE_4 = "Issue A-ASSOCIATE confirmation (reject) primitive and close transport connection"
    AE_5 = "Issue Transport connection response primitive; start ARTIM timer"
    AE_6 = (
        "Stop ARTIM timer and if A-ASSOCIATE-RQ acceptable by service-provider: issue "
        "A-ASSOCIATE indication primitive; otherwise issue A-ASSOCIATE-RJ-PDU and start "
        "ARTIM timer"
    )
    AE_7 = "Send A-ASSOCIATE-AC PDU"
    AE_8 = "Send A-ASSOCIATE-RJ PDU and start ARTIM timer"
    DT_1 = "Send P-DATA-TF PDU"
    DT_2 = "Send P-DATA indication primitive"
    AR_1 = "Send A-RELEASE-RQ PDU"
    AR_2 = "Issue A-RELEASE indication primitive"
    AR_3 = "Issue A-RELEASE confirmation primitive, and close transport connection"
    AR_4 = "Issue A-RELEASE-RP PDU and start ARTIM timer"
    AR_5 = "Stop ARTIM timer"
    AR_6 = "Issue P-DATA indication"
    AR_7 = "Issue P-DATA-TF PDU"
    AR_8 = "Issue A-RELEASE indication (release collision)"
    AR_9 = "Send A-RELEASE-RP PDU"
    AR_10 = "Issue A-RELEASE confirmation primitive"
    AA_1 = (
        "Send A-ABORT PDU (service-user source) and start (or restart if already started) "
        "ARTIM timer"
    )
    AA_2 = "Stop ARTIM timer if running. Close transport connection"
    AA_3 = (
        "If (service-user initiated abort): issue A-ABORT indication and close transport "
        "connection; otherwise (service-provider initiated abort): issue A-P-ABORT "
        "indication and close transport connection"
    )
    AA_4 = "Issue A-P-ABORT indication primitive"
    AA_5 = "Stop ARTIM timer (Table 9-9, association abort)"
    AA_6 = "Ignore PDU"
    AA_7 = "Send A-ABORT PDU"
    AA_8 = (
        "Send A-ABORT PDU (service-provider source), issue an A-P-ABORT indication, and "
        "start ARTIM timer"
    )

    @property
    def label(self) -> str:
        """The standard's spelling, AE-1 rather than AE_1."""
        return self.name.replace("_", "-")


AE_1, AE_2, AE_3, AE_4, AE_5, AE_6, AE_7, AE_8 = (
    Action.AE_1, Action.AE_2, Action.AE_3, Action.AE_4,
    Action.AE_5, Action.AE_6, Action.AE_7, Action.AE_8,
)  # fmt: skip
DT_1, DT_2 = Action.DT_1, Action.DT_2
AR_1, AR_2, AR_3, AR_4, AR_5, AR_6, AR_7, AR_8, AR_9, AR_10 = (
    Action.AR_1, Action.AR_2, Action.AR_3, Action.AR_4, Action.AR_5,
    Action.AR_6, Action.AR_7, Action.AR_8, Action.AR_9, Action.AR_10,
)  # fmt: skip
AA_1, AA_2, AA_3, AA_4, AA_5, AA_6, AA_7, AA_8 = (
    Action.AA_1, Action.AA_2, Action.AA_3, Action.AA_4,
    Action.AA_5, Action.AA_6, Action.AA_7, Action.AA_8,
)  # fmt: skip
__ = None

STATES = tuple(State)

#: PS3.8 Table 9-10, DICOM Upper Layer Protocol State Transition Table.
# fmt: off
TABLE: dict[Event, tuple[Action | None, ...]] = {
    #             Sta1  Sta2  Sta3  Sta4  Sta5  Sta6  Sta7  Sta8  Sta9  Sta10  Sta11 Sta12 Sta13
    Event.Evt1:  (AE_1, __,   __,   __,   __,   __,   __,   __,   __,   __,    __,   __,   __  ),
    Event.Evt2:  (__,   __,   __,   AE_2, __,   __,   __,   __,   __,   __,    __,   __,   __  ),
    Event.Evt3:  (__,   AA_1, AA_8, __,   AE_3, AA_8, AA_8, AA_8, AA_8, AA_8,  AA_8, AA_8, AA_6),
    Event.Evt4:  (__,   AA_1, AA_8, __,   AE_4, AA_8, AA_8, AA_8, AA_8, AA_8,  AA_8, AA_8, AA_6),
    Event.Evt5:  (AE_5, __,   __,   __,   __,   __,   __,   __,   __,   __,    __,   __,   __  ),
    Event.Evt6:  (__,   AE_6, AA_8, __,   AA_8, AA_8, AA_8, AA_8, AA_8, AA_8,  AA_8, AA_8, AA_7),
    Event.Evt7:  (__,   __,   AE_7, __,   __,   __,   __,   __,   __,   __,    __,   __,   __  ),
    Event.Evt8:  (__,   __,   AE_8, __,   __,   __,   __,   __,   __,   __,    __,   __,   __  ),
    Event.Evt9:  (__,   __,   __,   __,   __,   DT_1, __,   AR_7, __,   __,    __,   __,   __  ),
    Event.Evt10: (__,   AA_1, AA_8, __,   AA_8, DT_2, AR_6, AA_8, AA_8, AA_8,  AA_8, AA_8, AA_6),
    Event.Evt11: (__,   __,   __,   __,   __,   AR_1, __,   __,   __,   __,    __,   __,   __  ),
    Event.Evt12: (__,   AA_1, AA_8, __,   AA_8, AR_2, AR_8, AA_8, AA_8, AA_8,  AA_8, AA_8, AA_6),
    Event.Evt13: (__,   AA_1, AA_8, __,   AA_8, AA_8, AR_3, AA_8, AA_8, AR_10, AR_3, AA_8, AA_6),
    Event.Evt14: (__,   __,   __,   __,   __,   __,   __,   AR_4, AR_9, __,    __,   AR_4, __  ),
    Event.Evt15: (__,   __,   AA_1, AA_2, AA_1, AA_1, AA_1, AA_1, AA_1, AA_1,  AA_1, AA_1, __  ),
    Event.Evt16: (__,   AA_2, AA_3, __,   AA_3, AA_3, AA_3, AA_3, AA_3, AA_3,  AA_3, AA_3, AA_2),
    Event.Evt17: (__,   AA_5, AA_4, AA_4, AA_4, AA_4, AA_4, AA_4, AA_4, AA_4,  AA_4, AA_4, AR_5),
    Event.Evt18: (__,   AA_2, __,   __,   __,   __,   __,   __,   __,   __,    __,   __,   AA_2),
    Event.Evt19: (__,   AA_1, AA_8, __,   AA_8, AA_8, AA_8, AA_8, AA_8, AA_8,  AA_8, AA_8, AA_7),
}

#: PS3.8 Tables 9-6 to 9-9: the next state(s) each action may lead to.
NEXT_STATES: dict[Action, frozenset[State]] = {
    AE_1: frozenset({State.Sta4}),   AE_2: frozenset({State.Sta5}),
    AE_3: frozenset({State.Sta6}),   AE_4: frozenset({State.Sta1}),
    AE_5: frozenset({State.Sta2}),   AE_6: frozenset({State.Sta3, State.Sta13}),
    AE_7: frozenset({State.Sta6}),   AE_8: frozenset({State.Sta13}),
    DT_1: frozenset({State.Sta6}),   DT_2: frozenset({State.Sta6}),
    AR_1: frozenset({State.Sta7}),   AR_2: frozenset({State.Sta8}),
    AR_3: frozenset({State.Sta1}),   AR_4: frozenset({State.Sta13}),
    AR_5: frozenset({State.Sta1}),   AR_6: frozenset({State.Sta7}),
    AR_7: frozenset({State.Sta8}),   AR_8: frozenset({State.Sta9, State.Sta10}),
    AR_9: frozenset({State.Sta11}),  AR_10: frozenset({State.Sta12}),
    AA_1: frozenset({State.Sta13}),  AA_2: frozenset({State.Sta1}),
    AA_3: frozenset({State.Sta1}),   AA_4: frozenset({State.Sta1}),
    AA_5: frozenset({State.Sta1}),   AA_6: frozenset({State.Sta13}),
    AA_7: frozenset({State.Sta13}),  AA_8: frozenset({State.Sta13}),
}
# fmt: on

#: Events that come from the local user; an empty cell for them is a local error.
LOCAL_EVENTS = frozenset(
    {Event.Evt1, Event.Evt7, Event.Evt8, Event.Evt9, Event.Evt11, Event.Evt14, Event.Evt15}
)


_CELLS: dict[tuple[Event, State], Action | None] = {
    (event, state): TABLE[event][column] for event in Event for column, state in enumerate(STATES)
}


def lookup(event: Event, state: State) -> Action | None:
    """The action in Table 9-10's cell for (event, state), or None if the cell is empty."""
    return _CELLS[(event, state)]


def cells() -> list[tuple[Event, State, Action | None]]:
    """All 247 cells of the table, row by row."""
    return [(event, state, lookup(event, state)) for event in Event for state in State]
