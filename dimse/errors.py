"""Errors of the DIMSE layer (PS3.7).

`DimseError` is the one exception that the pure DIMSE code raises for bytes or
messages received from the peer that break PS3.7: a command set that cannot be
decoded (PS3.7 6.3.1, Annex E), a message whose command field is unknown
(PS3.7 9.3, 10.3), or PDV fragments that do not follow the rules of PS3.8 Annex E
and PS3.7 6.3.1 (wrong context, fragments out of order).

What to do with it depends on where it came from, and the exception says so:

- `status` is the status a service provider can still answer with when the
  request's Message ID is known (`message_id`): 0211H "Unrecognized operation" for
  an unknown command field, C000H "Cannot understand" for a request that lacks a
  mandatory field. It is None when no response can be sent, and then the
  association must be aborted (A-ABORT, source 2).

Errors made by our own caller (a US value over 65535, an unknown keyword given to
`encode_command`) are ordinary `ValueError`/`TypeError`: they are bugs here, not
the peer's fault.
"""

from __future__ import annotations


class DimseError(Exception):
    """A DIMSE message, command set or fragment sequence received from the peer is
    not valid according to PS3.7 / PS3.8 Annex E."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        message_id: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.message_id = message_id

    def __str__(self) -> str:
        if self.status is None:
            return self.message
        return f"{self.message} (status {self.status:04X}H)"
