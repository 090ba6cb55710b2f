"""The actions of PS3.8 Tables 9-6 to 9-9, one small pure function each.

An action takes the machine's `Context` (read only) and the event's payload, and
returns a `Step`: the next state, the outputs, and what to do with the ARTIM timer.
It performs no I/O and reads no clock. Payloads by event:

    Evt1 A_ASSOCIATE_RQ (kept in the context)   Evt9  bytes (or bytearray) of a P-DATA-TF,
                                                      or a list of buffers: a run of them
    Evt3, 4, 6, 10, 12, 13, 16  the PDU received Evt15 the A_ABORT to send
    Evt7 A_ASSOCIATE_AC, Evt8 A_ASSOCIATE_RJ     Evt19 the PduError
    others: None

Where the standard says "Send A-ABORT PDU" without saying why, the reason we give is
the one a peer can act on: the `PduError`'s reason for a PDU we could not decode
(Evt19), "unexpected PDU" (2) for one that is valid but out of place. AA-1 reached
by a received PDU (in Sta2, before any user exists) sends source 2 with that reason
too, since the abort is the provider's, not a user's.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from typing import NamedTuple

from dul.errors import AbortReason, PduError
from dul.fsm import Action, Event, State
from dul.pdu import (
    A_ABORT,
    A_ASSOCIATE_AC,
    A_ASSOCIATE_RJ,
    A_ASSOCIATE_RQ,
    A_RELEASE_RP,
    A_RELEASE_RQ,
    P_DATA_TF,
    PDU_NAMES,
    encode_pdu,
)
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


class Timer(Enum):
    """What an action does to ARTIM (PS3.8 9.1.4)."""

    __hash__ = object.__hash__  # members are singletons: identity hashing, in C

    KEEP = "keep"
    START = "start"  # start, or restart if running
    STOP = "stop"


class Context(NamedTuple):
    """What an action may read of the machine. (NamedTuples here and in `Step`:
    one is made per event, on the path of every P-DATA.)"""

    state: State
    event: Event
    requestor: bool
    request: A_ASSOCIATE_RQ | None
    provider_check: Callable[[A_ASSOCIATE_RQ], A_ASSOCIATE_RJ | None]


class Step(NamedTuple):
    next_state: State
    outputs: tuple[Output, ...] = ()
    timer: Timer = Timer.KEEP


def _send(
    pdu: A_ASSOCIATE_RQ | A_ASSOCIATE_AC | A_ASSOCIATE_RJ | A_ABORT | A_RELEASE_RQ | A_RELEASE_RP,
) -> Send:
    return Send(encode_pdu(pdu), pdu)


def _problem(ctx: Context, payload: object) -> tuple[AbortReason, str]:
    """Why a received PDU ends the association: the decode error, or its being out of place."""
    if isinstance(payload, PduError):
        return payload.reason, payload.message
    name = PDU_NAMES.get(getattr(payload, "PDU_TYPE", 0), type(payload).__name__)
    return (
        AbortReason.UNEXPECTED_PDU,
        f"{name} PDU received in {ctx.state.name} ({ctx.state.value})",
    )


# Association establishment (Table 9-6) ---------------------------------------------


def AE_1(ctx: Context, payload: object) -> Step:
    return Step(State.Sta4, (OpenTransport(),))


def AE_2(ctx: Context, payload: object) -> Step:
    assert ctx.request is not None, "AE-2 without the A-ASSOCIATE request of Evt1"
    return Step(State.Sta5, (_send(ctx.request),))


def AE_3(ctx: Context, payload: object) -> Step:
    assert isinstance(payload, A_ASSOCIATE_AC)
    return Step(State.Sta6, (AssociateAccepted(payload),))


def AE_4(ctx: Context, payload: object) -> Step:
    assert isinstance(payload, A_ASSOCIATE_RJ)
    return Step(State.Sta1, (AssociateRejected(payload), CloseTransport()))


def AE_5(ctx: Context, payload: object) -> Step:
    return Step(State.Sta2, (), Timer.START)


def AE_6(ctx: Context, payload: object) -> Step:
    assert isinstance(payload, A_ASSOCIATE_RQ)
    refusal = ctx.provider_check(payload)
    if refusal is None:
        return Step(State.Sta3, (AssociateIndication(payload),), Timer.STOP)
    return Step(State.Sta13, (_send(refusal),), Timer.START)


def AE_7(ctx: Context, payload: object) -> Step:
    assert isinstance(payload, A_ASSOCIATE_AC)
    return Step(State.Sta6, (_send(payload),))


def AE_8(ctx: Context, payload: object) -> Step:
    assert isinstance(payload, A_ASSOCIATE_RJ)
    return Step(State.Sta13, (_send(payload),), Timer.START)


# Data transfer (Table 9-7) -----------------------------------------------------------


def DT_1(ctx: Context, payload: object) -> Step:
    assert isinstance(payload, (bytes, bytearray, list))
    return Step(State.Sta6, (Send(payload),))


def DT_2(ctx: Context, payload: object) -> Step:
    assert isinstance(payload, P_DATA_TF)
    return Step(State.Sta6, (PDataIndication(payload),))


# Association release (Table 9-8) -----------------------------------------------------


def AR_1(ctx: Context, payload: object) -> Step:
    return Step(State.Sta7, (_send(A_RELEASE_RQ()),))


def AR_2(ctx: Context, payload: object) -> Step:
    return Step(State.Sta8, (ReleaseIndication(),))


def AR_3(ctx: Context, payload: object) -> Step:
    return Step(State.Sta1, (ReleaseConfirmation(), CloseTransport()))


def AR_4(ctx: Context, payload: object) -> Step:
    return Step(State.Sta13, (_send(A_RELEASE_RP()),), Timer.START)


def AR_5(ctx: Context, payload: object) -> Step:
    return Step(State.Sta1, (), Timer.STOP)


def AR_6(ctx: Context, payload: object) -> Step:
    assert isinstance(payload, P_DATA_TF)
    return Step(State.Sta7, (PDataIndication(payload),))


def AR_7(ctx: Context, payload: object) -> Step:
    assert isinstance(payload, (bytes, bytearray, list))
    return Step(State.Sta8, (Send(payload),))


def AR_8(ctx: Context, payload: object) -> Step:
    # Release collision: the requestor answers first (Sta9), the acceptor waits (Sta10).
    return Step(State.Sta9 if ctx.requestor else State.Sta10, (ReleaseIndication(collision=True),))


def AR_9(ctx: Context, payload: object) -> Step:
    return Step(State.Sta11, (_send(A_RELEASE_RP()),))


def AR_10(ctx: Context, payload: object) -> Step:
    return Step(State.Sta12, (ReleaseConfirmation(),))


# Association abort (Table 9-9) -------------------------------------------------------


def AA_1(ctx: Context, payload: object) -> Step:
    if ctx.event is Event.Evt15:
        assert isinstance(payload, A_ABORT)
        pdu = payload
    else:
        reason, _ = _problem(ctx, payload)
        pdu = A_ABORT(source=2, reason=reason)
    return Step(State.Sta13, (_send(pdu),), Timer.START)


def AA_2(ctx: Context, payload: object) -> Step:
    return Step(State.Sta1, (CloseTransport(),), Timer.STOP)


def AA_3(ctx: Context, payload: object) -> Step:
    assert isinstance(payload, A_ABORT)
    indication: Output
    if payload.source == 0:
        indication = AbortIndication(payload.source, payload.reason)
    else:
        reason = (
            AbortReason(payload.reason)
            if payload.reason in AbortReason._value2member_map_
            else AbortReason.NOT_SPECIFIED
        )
        indication = ProviderAbortIndication(
            reason,
            f"the peer's service provider aborted the association (reason {payload.reason}, {reason.text})",
        )
    return Step(State.Sta1, (indication, CloseTransport()))


def AA_4(ctx: Context, payload: object) -> Step:
    return Step(
        State.Sta1,
        (
            ProviderAbortIndication(
                AbortReason.NOT_SPECIFIED,
                f"the transport connection closed in {ctx.state.name} ({ctx.state.value})",
            ),
        ),
    )


def AA_5(ctx: Context, payload: object) -> Step:
    return Step(State.Sta1, (), Timer.STOP)


def AA_6(ctx: Context, payload: object) -> Step:
    return Step(State.Sta13)


def AA_7(ctx: Context, payload: object) -> Step:
    reason, _ = _problem(ctx, payload)
    return Step(State.Sta13, (_send(A_ABORT(source=2, reason=reason)),))


def AA_8(ctx: Context, payload: object) -> Step:
    reason, message = _problem(ctx, payload)
    return Step(
        State.Sta13,
        (_send(A_ABORT(source=2, reason=reason)), ProviderAbortIndication(reason, message)),
        Timer.START,
    )


#: Action -> its function; every Action has one.
ACTIONS: dict[Action, Callable[[Context, object], Step]] = {
    action: globals()[action.name] for action in Action
}
