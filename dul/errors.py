"""Errors of the upper layer, split by whose fault they are.

- `PduError`: the peer sent bytes that are not a valid PDU. It carries the PS3.8
  A-ABORT provider reason (PS3.8 9.3.8) that our answer must give, so the state
  machine turns it into Evt19 and an A-ABORT instead of raising it further.
- `LocalProtocolError`: our own caller asked for something the state table has no
  cell for (a P-DATA request in Sta1). It is a bug in the calling code; the state
  is left as it was.
"""

from __future__ import annotations

from enum import IntEnum


class AbortReason(IntEnum):
    """A-ABORT reason/diag when the source is the service provider (PS3.8 9.3.8)."""

    NOT_SPECIFIED = 0
    UNRECOGNIZED_PDU = 1
    UNEXPECTED_PDU = 2
    RESERVED = 3
    UNRECOGNIZED_PDU_PARAMETER = 4
    UNEXPECTED_PDU_PARAMETER = 5
    INVALID_PDU_PARAMETER_VALUE = 6

    @property
    def text(self) -> str:
        return self.name.lower().replace("_", "-").replace("pdu", "PDU")


class PduError(Exception):
    """The bytes received are not a valid PDU.

    `reason` is the provider reason to send in the A-ABORT (0, 1, 2, 4, 5 or 6).
    """

    def __init__(self, reason: int, message: str) -> None:
        super().__init__(message)
        self.reason = AbortReason(reason)
        self.message = message

    def __str__(self) -> str:
        return f"{self.message} (A-ABORT reason {int(self.reason)}, {self.reason.text})"


class LocalProtocolError(Exception):
    """The local user issued a primitive that is not allowed in the current state."""


class StateTableError(AssertionError):
    """An action ended in a state that PS3.8 Tables 9-6..9-9 do not allow: a bug here."""


class AssociationError(Exception):
    """The association could not be made, or ended before its work was done."""


class ConnectionFailed(AssociationError):
    """The TCP connection could not be opened (refused, unreachable, timed out)."""


class AssociationRejected(AssociationError):
    """The peer answered A-ASSOCIATE-RJ (PS3.8 9.3.4)."""

    def __init__(self, result: int, source: int, reason: int) -> None:
        from dul.reasons import describe_rejection

        super().__init__(describe_rejection(result, source, reason))
        self.result = result
        self.source = source
        self.reason = reason


class AssociationAborted(AssociationError):
    """A-ABORT or A-P-ABORT: the association ended abruptly."""

    def __init__(self, message: str, source: int | None = None, reason: int | None = None) -> None:
        super().__init__(message)
        self.source = source
        self.reason = reason


class AssociationReleased(AssociationError):
    """The peer released the association while we were waiting for data."""


class DulTimeout(AssociationError):
    """A timeout of the service layer expired (ACSE, DIMSE, idle or a send)."""
