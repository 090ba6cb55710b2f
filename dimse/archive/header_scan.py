"""The indexed attributes of a stored instance, read by hand (PS3.5 7.1, 7.5).

The archive indexes every instance it stores, and pydicom's general reader was most
of the cost of a small C-STORE. This scanner covers the common case in a few
struct calls per element: a little endian data set (implicit or explicit VR), whose
wanted attributes are ASCII text or binary integers. It walks the top-level
elements in order up to the last wanted tag, skipping the values it does not want
and the items of sequences (of defined or undefined length, nested at most
`MAX_DEPTH` deep).

Whatever it does not cover it refuses with `Unsupported`, and the caller reads the
instance with pydicom instead: big endian or deflated data, other character sets
than ASCII's, a VR in the file that is not the attribute's, a wanted sequence, bytes
it cannot walk. It never decides that an instance is bad; that is pydicom's call.
"""

from __future__ import annotations

import struct
from collections.abc import Container

MAX_DEPTH = 16
_UNDEFINED = 0xFFFFFFFF
_ITEM = 0xFFFEE000
_ITEM_END = 0xFFFEE00D
_SEQUENCE_END = 0xFFFEE0DD
_TAG = struct.Struct("<HH")
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
#: An explicit VR element header read at once: group, element, VR, and the 2-byte
#: length of a short VR (for a long VR, the reserved bytes; its length follows).
_EXPLICIT = struct.Struct("<HH2sH")
#: Explicit VRs with a 2-byte reserved field and a 4-byte length (PS3.5 Table 7.1-1).
_LONG_VRS = frozenset(
    {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"UC", b"UN", b"UR", b"UT", b"SV", b"UV"}
)
_SHORT_VRS = frozenset(
    {b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FL", b"FD", b"IS", b"LO", b"LT"}
    | {b"PN", b"SH", b"SL", b"SS", b"ST", b"TM", b"UI", b"UL", b"US"}
)
#: Binary integer VRs read here: struct format and size of one value.
_INTEGERS = {"US": ("H", 2), "SS": ("h", 2), "UL": ("I", 4), "SL": ("i", 4)}
#: VRs whose values are not text (and not one of the integers above).
_OTHER_BINARY = frozenset({"AT", "FL", "FD", "OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UV"})
#: Character sets whose single-byte G0 is not ASCII (JIS X 0201: 5CH is the yen sign).
_NOT_ASCII_G0 = ("ISO_IR 13", "ISO 2022 IR 13")
SPECIFIC_CHARACTER_SET = 0x00080005


class Unsupported(Exception):
    """Not a case this scanner covers: read the instance with pydicom."""


class Short(Exception):
    """The bytes end before the last wanted attribute: read more of the file."""


Element = tuple[bytes | None, bytes]  # (explicit VR or None, value)


def _header(data: bytes, pos: int, implicit: bool) -> tuple[int, bytes | None, int, int]:
    """(tag, VR or None, value length, offset of the value) of the element at `pos`."""
    if pos + 8 > len(data):
        raise Short
    group, element = _TAG.unpack_from(data, pos)
    tag = group << 16 | element
    if implicit or group == 0xFFFE:  # item and delimitation tags never have a VR
        return tag, None, _U32.unpack_from(data, pos + 4)[0], pos + 8
    vr = data[pos + 4 : pos + 6]
    if vr in _LONG_VRS:
        if pos + 12 > len(data):
            raise Short
        return tag, vr, _U32.unpack_from(data, pos + 8)[0], pos + 12
    if vr not in _SHORT_VRS:
        raise Unsupported(f"VR {vr!r} of ({group:04X},{element:04X})")
    return tag, vr, _U16.unpack_from(data, pos + 6)[0], pos + 8


def _skip_items(data: bytes, pos: int, implicit: bool, depth: int) -> int:
    """Skip the items of a sequence of undefined length; returns the offset after its
    Sequence Delimitation Item."""
    if depth > MAX_DEPTH:
        raise Unsupported("sequences nested too deep")
    while True:
        tag, _, length, pos = _header(data, pos, True)
        if tag == _SEQUENCE_END:
            return pos
        if tag != _ITEM:
            raise Unsupported(f"({tag >> 16:04X},{tag & 0xFFFF:04X}) where an item belongs")
        if length != _UNDEFINED:
            pos += length
            continue
        while True:  # the elements of an item of undefined length
            tag, vr, length, pos = _header(data, pos, implicit)
            if tag == _ITEM_END:
                break
            if length == _UNDEFINED:
                pos = _skip_items(data, pos, implicit or vr == b"UN", depth + 1)
            else:
                pos += length


def scan(
    data: bytes, implicit: bool, wanted: Container[int], last: int, whole: bool
) -> dict[int, Element]:
    """The wanted top-level elements of a little endian data set held in `data`, up to
    the first tag after `last`. `whole` says that `data` runs to the end of the data
    set; if not, `Short` means that more of it is needed."""
    found: dict[int, Element] = {}
    pos = 0
    end = len(data)
    explicit = _EXPLICIT.unpack_from
    try:
        while pos < end:
            # `_header`, unrolled for the common case: this loop runs for every
            # top-level element of every stored instance.
            if implicit or pos + 8 > end:
                tag, vr, length, start = _header(data, pos, implicit)
            else:
                group, element, vr, length = explicit(data, pos)
                tag = group << 16 | element
                if vr in _SHORT_VRS and group != 0xFFFE:
                    start = pos + 8
                else:
                    tag, vr, length, start = _header(data, pos, implicit)
            if tag > last:
                return found
            if length == _UNDEFINED:
                if tag in wanted:
                    raise Unsupported("a wanted attribute of undefined length")
                pos = _skip_items(data, start, implicit or vr == b"UN", 1)
                continue
            pos = start + length
            if pos > len(data):
                raise Short
            if tag in wanted:
                found[tag] = (vr, data[start:pos])
    except Short:
        if whole:
            raise Unsupported("the data set ends inside an element") from None
        raise
    if pos > len(data) or not whole:
        raise Short
    return found


def ascii_allowed(found: dict[int, Element]) -> bool:
    """Whether ASCII bytes (without ISO 2022 escapes) mean ASCII characters under the
    data set's Specific Character Set (PS3.5 6.1.2.5)."""
    element = found.get(SPECIFIC_CHARACTER_SET)
    if element is None:
        return True
    terms = element[1].decode("ascii", "replace").split("\\")
    return not any(term.strip(" \x00") in _NOT_ASCII_G0 for term in terms)


def texts(element: Element | None, vr: str, ascii_ok: bool) -> list[str]:
    """The values of an attribute of dictionary VR `vr` as text, one per value, as
    pydicom would give them; `Unsupported` where this module does not decide."""
    if element is None:
        return []
    found_vr, value = element
    if found_vr is not None and found_vr != vr.encode("ascii"):
        raise Unsupported(f"VR {found_vr!r} where {vr} is expected")
    integer = _INTEGERS.get(vr)
    if integer is not None:
        code, size = integer
        if len(value) % size:
            raise Unsupported(f"{vr} value of {len(value)} bytes")
        return [str(v) for v in struct.unpack(f"<{len(value) // size}{code}", value)]
    if vr in _OTHER_BINARY:
        raise Unsupported(f"{vr} is not read here")
    if not ascii_ok or not value.isascii() or b"\x1b" in value:
        raise Unsupported("text that is not plain ASCII")
    text = value.decode("ascii")
    return text.split("\\") if text.strip(" \x00") else []
