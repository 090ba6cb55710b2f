"""Cutting a TCP byte stream into whole PDUs (PS3.8 9.3.1).

The stream is fed in chunks of any size; `next_pdu()` returns one whole decoded PDU
when its last byte has arrived, else None. A PDU is refused from its 6-byte header
alone, before a byte of its body is kept, when:

- its PDU-type is not one of the seven (A-ABORT reason 1, unrecognized PDU);
- it is a P-DATA-TF longer than the maximum length we advertised (PS3.8 D.1);
- it is an association PDU longer than `max_association_length` (1 MiB by default);
- it is a fixed-size PDU (RJ, release, abort) whose PDU-length is not 4.

After a refusal the framer is spent: every later call raises the same error, since
the stream can no longer be cut into PDUs.
"""

from __future__ import annotations

from dul.errors import AbortReason, PduError
from dul.fields import Buffer
from dul.pdu import HEADER, PDU_NAMES, Pdu, decode_pdu

DEFAULT_MAX_ASSOCIATION_LENGTH = 1 << 20
#: The largest PDU-length a 32-bit field can carry, used when the limit is 0 ("none").
_NO_LIMIT = 0xFFFFFFFF


class Framer:
    """A receive buffer that gives out whole PDUs or nothing."""

    def __init__(
        self,
        max_pdata_length: int = 16384,
        max_association_length: int = DEFAULT_MAX_ASSOCIATION_LENGTH,
    ) -> None:
        self.max_pdata_length = max_pdata_length or _NO_LIMIT
        self.max_association_length = max_association_length
        self._buffer = bytearray()
        self._start = 0  # bytes before this offset are consumed
        self._error: PduError | None = None

    @property
    def buffered(self) -> int:
        """Bytes received and not yet given out as a PDU."""
        return len(self._buffer) - self._start

    def feed(self, data: Buffer) -> None:
        """Append received bytes; nothing is decoded here."""
        if self._error is None:
            self._buffer += data

    def _check_header(self, pdu_type: int, length: int) -> None:
        name = PDU_NAMES.get(pdu_type)
        if name is None:
            raise PduError(
                AbortReason.UNRECOGNIZED_PDU, f"PDU-type {pdu_type:02X}H is not a DICOM PDU"
            )
        if pdu_type == 0x04:
            if length > self.max_pdata_length:
                raise PduError(
                    AbortReason.INVALID_PDU_PARAMETER_VALUE,
                    f"P-DATA-TF PDU-length {length} exceeds the {self.max_pdata_length} we accept",
                )
        elif pdu_type <= 0x02:
            if length > self.max_association_length:
                raise PduError(
                    AbortReason.INVALID_PDU_PARAMETER_VALUE,
                    f"{name} PDU-length {length} exceeds the {self.max_association_length} we accept",
                )
        elif length != 4:
            raise PduError(
                AbortReason.INVALID_PDU_PARAMETER_VALUE, f"{name} PDU-length is {length}, not 4"
            )

    def next_raw(self) -> bytes | None:
        """The bytes of the next whole PDU, header included, or None if incomplete."""
        if self._error is not None:
            raise self._error
        available = len(self._buffer) - self._start
        try:
            if available < HEADER.size:
                if available and self._buffer[self._start] not in PDU_NAMES:
                    # An unknown PDU-type is refused from its first byte ("GET " too).
                    self._check_header(self._buffer[self._start], 0)
                self._compact()
                return None
            pdu_type, _, length = HEADER.unpack_from(self._buffer, self._start)
            self._check_header(pdu_type, length)
        except PduError as exc:
            self._error = exc
            self._buffer = bytearray()
            self._start = 0
            raise
        total = HEADER.size + length
        if available < total:
            self._compact()
            return None
        with memoryview(self._buffer) as view:  # one copy, not two; released at once
            raw = bytes(view[self._start : self._start + total])
        self._start += total
        return raw

    def next_pdu(self) -> Pdu | None:
        """The next whole PDU, decoded, or None if it has not all arrived."""
        raw = self.next_raw()
        if raw is None:
            return None
        try:
            return decode_pdu(raw)
        except PduError as exc:
            self._error = exc
            self._buffer = bytearray()
            self._start = 0
            raise

    def _compact(self) -> None:
        # Drop consumed bytes only when waiting for more, so that a burst of small
        # PDUs costs one move rather than one per PDU.
        if self._start:
            del self._buffer[: self._start]
            self._start = 0
