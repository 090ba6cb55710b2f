"""The P-DATA-TF PDU and its PDV items, byte by byte (PS3.8 9.3.5, 9.3.5.1, Annex E).

    P-DATA-TF   PDU-type 04H (1) | reserved (1) | PDU-length (4) | PDV items
    PDV item    item-length (4) | presentation context ID (1) | message control header (1) | data

All lengths are big endian. The item-length counts the context ID and the control
byte, so it is the data's length + 2, and a PDV takes 6 bytes more than its data. The
message control header (PS3.8 E.2) has bit 0 set for a command fragment (clear for a
data set) and bit 1 set for the last fragment of its command or data set.

This module is the one place that lays those bytes out. `dul.pdu` decodes and encodes
a `P_DATA_TF` with it; `dimse.fragments` builds whole PDUs around the data without a
second copy (its fast paths: a header packed in one call, the data joined once, or
not at all when a run of PDUs goes as a list of buffers to one gathering write);
`dimse.explain` reads the headers of what went.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator, Sequence
from typing import Protocol, TypeVar

from dul.errors import AbortReason, PduError
from dul.fields import Buffer

PDU_TYPE = 0x04
#: Message control header (PS3.8 E.2), bit 0: a command fragment (clear: data set).
COMMAND = 0x01
#: Message control header (PS3.8 E.2), bit 1: the last fragment.
LAST = 0x02

#: The PDU header of a P-DATA-TF (PS3.8 9.3.1: the reserved byte sent as zero).
PDU_HEADER = struct.Struct(">BxI")
#: A PDV item's header: item-length, presentation context ID, message control header.
PDV_HEADER = struct.Struct(">IBB")
#: Bytes of a PDV item before its data.
PDV_OVERHEAD = PDV_HEADER.size
#: The PDU header and the header of the PDU's one PDV, packed in one call: the 12
#: bytes before the data of a fragment that travels alone.
_LONE_PDV = struct.Struct(">BxIIBB")
#: Bound once: the two functions that use it run once per PDU sent.
_pack_lone = _LONE_PDV.pack

_T = TypeVar("_T")


def pdu_header(pdvs_length: int) -> bytes:
    """The header of a P-DATA-TF whose PDV items take `pdvs_length` bytes."""
    return PDU_HEADER.pack(PDU_TYPE, pdvs_length)


def pdv_header(context_id: int, control: int, data_length: int) -> bytes:
    """The 6-byte header of one PDV item carrying `data_length` bytes."""
    return PDV_HEADER.pack(data_length + 2, context_id, control)


def lone_pdv_header(context_id: int, control: int, data_length: int) -> bytes:
    """The 12 bytes before the data of a P-DATA-TF that holds one PDV."""
    return _pack_lone(PDU_TYPE, data_length + PDV_OVERHEAD, data_length + 2, context_id, control)


def encode_lone_pdv(context_id: int, control: int, data: Buffer) -> bytes:
    """A whole P-DATA-TF holding one PDV; the data is copied once, into it."""
    length = len(data)
    return _pack_lone(PDU_TYPE, length + PDV_OVERHEAD, length + 2, context_id, control) + data


def command_and_data_head(context_id: int, command: Buffer, data_length: int) -> bytes:
    """A P-DATA-TF holding a whole command (one PDV) and a whole data set of
    `data_length` bytes (a second PDV; PS3.8 9.3.5 allows several in one PDU): all
    of it but the data set's bytes, which follow."""
    return b"".join(
        (
            _LONE_PDV.pack(
                PDU_TYPE,
                len(command) + data_length + 2 * PDV_OVERHEAD,
                len(command) + 2,
                context_id,
                COMMAND | LAST,
            ),
            command,
            PDV_HEADER.pack(data_length + 2, context_id, LAST),
        )
    )


def encode_command_and_data(context_id: int, command: Buffer, data: Buffer) -> bytes:
    """`command_and_data_head` with the data set's bytes: the whole PDU."""
    return b"".join(
        (
            _LONE_PDV.pack(
                PDU_TYPE,
                len(command) + len(data) + 2 * PDV_OVERHEAD,
                len(command) + 2,
                context_id,
                COMMAND | LAST,
            ),
            command,
            PDV_HEADER.pack(len(data) + 2, context_id, LAST),
            data,
        )
    )


class Pdv(Protocol):
    """What the encoder reads of a PDV item (`dul.pdu.PresentationDataValue` has it)."""

    @property
    def context_id(self) -> int: ...
    @property
    def control(self) -> int: ...
    @property
    def data(self) -> bytes: ...


def encode_pdvs(pdvs: Sequence[Pdv]) -> bytes:
    """The PDV items of a P-DATA-TF, headers included; its PDU header is the caller's."""
    if not pdvs:
        raise ValueError("a P-DATA-TF holds one or more PDV items (PS3.8 9.3.5)")
    parts: list[bytes] = []
    for pdv in pdvs:
        parts.append(PDV_HEADER.pack(len(pdv.data) + 2, pdv.context_id, pdv.control))
        parts.append(pdv.data)
    return b"".join(parts)


def decode_pdvs(body: memoryview, pdv: Callable[[int, int, bytes], _T]) -> list[_T]:
    """The PDV items that fill a P-DATA-TF's variable field `body`, each made by
    `pdv(context_id, control, data)`. PduError when there is none, when one is
    shorter than its fixed fields, or when the items do not fill `body` exactly."""
    pdvs: list[_T] = []
    unpack = PDV_HEADER.unpack_from  # once per PDV received: a local, not an attribute
    offset = 0
    end = len(body)
    if end == 0:
        raise PduError(AbortReason.INVALID_PDU_PARAMETER_VALUE, "P-DATA-TF PDU holds no PDV item")
    while offset < end:
        if offset + 6 > end:
            raise PduError(
                AbortReason.INVALID_PDU_PARAMETER_VALUE,
                f"P-DATA-TF PDU: {end - offset} stray bytes where a PDV item header (6) should be",
            )
        length, context_id, control = unpack(body, offset)
        if length < 2:
            raise PduError(
                AbortReason.INVALID_PDU_PARAMETER_VALUE,
                f"P-DATA-TF PDU: PDV item-length {length} is under 2",
            )
        stop = offset + 4 + length
        if stop > end:
            raise PduError(
                AbortReason.INVALID_PDU_PARAMETER_VALUE,
                f"P-DATA-TF PDU: PDV item-length {length} runs past the PDU "
                f"({end - offset - 4} bytes left)",
            )
        pdvs.append(pdv(context_id, control, bytes(body[offset + 6 : stop])))
        offset = stop
    return pdvs


# --------------------------------------------------------------------------------------
# Reading the headers of what was sent


def pdv_headers(buffers: Sequence[Buffer]) -> Iterator[list[tuple[int, int]]]:
    """For each P-DATA-TF in `buffers` (whole PDUs taken end to end, as one write
    carries them), the (control, data length) of its PDVs, read from their headers
    alone: the data is skipped, never copied. A PDU cut short gives what was read of
    it, and ends the walk."""
    reader = _Reader(buffers)
    while (head := reader.read(PDU_HEADER.size)) is not None:
        _, remaining = PDU_HEADER.unpack(head)
        pdvs: list[tuple[int, int]] = []
        while remaining >= PDV_OVERHEAD:
            item = reader.read(PDV_OVERHEAD)
            if item is None:
                yield pdvs
                return
            length, _, control = PDV_HEADER.unpack(item)
            pdvs.append((control, max(0, length - 2)))
            reader.skip(length - 2)
            remaining -= 4 + length
        if remaining > 0:
            reader.skip(remaining)
        yield pdvs


class _Reader:
    """Reads headers from a list of buffers taken end to end, and skips the rest."""

    def __init__(self, buffers: Sequence[Buffer]) -> None:
        self.views = [memoryview(b).cast("B") for b in buffers if len(b)]
        self.index = 0
        self.offset = 0

    def read(self, count: int) -> bytes | None:
        parts: list[bytes] = []
        needed = count
        while needed:
            if self.index >= len(self.views):
                return None
            view = self.views[self.index]
            take = min(needed, len(view) - self.offset)
            parts.append(bytes(view[self.offset : self.offset + take]))
            needed -= take
            self._advance(take)
        return b"".join(parts)

    def skip(self, count: int) -> None:
        while count > 0 and self.index < len(self.views):
            take = min(count, len(self.views[self.index]) - self.offset)
            count -= take
            self._advance(take)

    def _advance(self, count: int) -> None:
        self.offset += count
        if self.offset == len(self.views[self.index]):
            self.index += 1
            self.offset = 0
