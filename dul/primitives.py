"""What the state machine hands out: things to do and primitives for the user.

The machine never performs I/O. Each input returns a list of outputs, in order:

- `Send`: write these bytes (one whole PDU), or these buffers in order (a run of
  P-DATA-TF PDUs), to the transport connection;
- `OpenTransport` / `CloseTransport`: the TRANSPORT CONNECT request (AE-1) and the
  closing of the connection;
- the indication and confirmation primitives of PS3.8 7.1-7.4, for the local user.
"""

from __future__ import annotations

from dataclasses import dataclass

from dul.errors import AbortReason
from dul.fields import Buffer
from dul.pdu import A_ASSOCIATE_AC, A_ASSOCIATE_RJ, A_ASSOCIATE_RQ, P_DATA_TF, Pdu


@dataclass(frozen=True, slots=True)
class Send:
    """Write one PDU, or a run of P-DATA-TF PDUs given as a list of buffers to write
    in order (one gathering write). `pdu` is kept for logging (None for pre-encoded
    P-DATA)."""

    data: bytes | bytearray | list[Buffer]
    pdu: Pdu | None = None


@dataclass(frozen=True, slots=True)
class OpenTransport:
    """TRANSPORT CONNECT request (AE-1): the driver opens the TCP connection."""


@dataclass(frozen=True, slots=True)
class CloseTransport:
    """Close the transport connection."""


@dataclass(frozen=True, slots=True)
class AssociateIndication:
    """A-ASSOCIATE indication (acceptor): the peer asks; the user must respond."""

    request: A_ASSOCIATE_RQ


@dataclass(frozen=True, slots=True)
class AssociateAccepted:
    """A-ASSOCIATE confirmation, accepted (requestor)."""

    accept: A_ASSOCIATE_AC


@dataclass(frozen=True, slots=True)
class AssociateRejected:
    """A-ASSOCIATE confirmation, rejected (requestor)."""

    reject: A_ASSOCIATE_RJ


@dataclass(frozen=True, slots=True)
class PDataIndication:
    """P-DATA indication: PDVs received."""

    pdu: P_DATA_TF


@dataclass(frozen=True, slots=True)
class ReleaseIndication:
    """A-RELEASE indication; `collision` when both sides asked at once (AR-8)."""

    collision: bool = False


@dataclass(frozen=True, slots=True)
class ReleaseConfirmation:
    """A-RELEASE confirmation: the association is released."""


@dataclass(frozen=True, slots=True)
class AbortIndication:
    """A-ABORT indication: the peer's user aborted (source 0)."""

    source: int
    reason: int


@dataclass(frozen=True, slots=True)
class ProviderAbortIndication:
    """A-P-ABORT indication: the association ended for a protocol reason."""

    reason: AbortReason
    message: str


Output = (
    Send
    | OpenTransport
    | CloseTransport
    | AssociateIndication
    | AssociateAccepted
    | AssociateRejected
    | PDataIndication
    | ReleaseIndication
    | ReleaseConfirmation
    | AbortIndication
    | ProviderAbortIndication
)
