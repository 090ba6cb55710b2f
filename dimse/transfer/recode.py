"""Writing a data set in another uncompressed encoding, value for value (PS3.5 7.3, A.1-A.3).

The three uncompressed encodings differ in two ways: the element header (Implicit VR:
tag and 4-byte length; Explicit VR: tag, VR, and a 2- or 4-byte length, 7.1.2) and
the byte order of numbers (7.3). `recode` rewrites every header for the target and
reverses the bytes of every binary value by its word size when the byte order
changes (`vrs.WORD_SIZE`). Text, OB and UN values are copied as they are. Nothing is
decoded to Python values and written back, so no text, number or private element can
come out changed.

Where the rules need more than the VR:

- Pixel Data (7FE0,0010) in a native format is a run of pixel cells of Bits Allocated
  (0028,0100) bits. With more than 16 bits allocated, each cell is reversed whole
  (4 or 8 bytes), as pydicom reads such data; DCMTK reverses each 16-bit word of an
  OW value instead. The retired Big Endian syntax's text (PS3.5 2016 A.3) allows
  either reading; we follow pydicom's, which the instances we compare against use.
  With 16 or fewer, an OW value is reversed by 16-bit word and an OB value not at all.
- From Implicit VR, the VR comes from the data dictionary (PS3.6). Where the
  dictionary gives a choice: "US or SS" by Pixel Representation (0028,0103) of the
  same data set; "OB or OW" by Bits Allocated (Pixel Data) or Waveform Bits Allocated
  (5400,1004), OW otherwise; "US or OW" (LUT Data) is US when the value fits a 2-byte
  length. An attribute the dictionary does not know (a private one) becomes UN, its
  bytes kept as they are: still Implicit VR Little Endian inside, as PS3.5 6.2.2
  wants of UN. Private Creator elements are LO (7.8.1); group lengths UL.
- A value too long for a 2-byte Value Length (over 65,534 bytes) goes as UN (6.2.2).
- Sequences and items keep the form of their length: undefined stays undefined, and a
  defined length is computed again for the new encoding. So is a Group Length
  (gggg,0000), a retired element whose value depends on the encoding (7.2).

Encapsulated pixel data (fragments) is copied as it is; `recode` is also what turns a
data set that is in Implicit VR by mistake into the Explicit VR its encapsulated
syntax needs.
"""

from __future__ import annotations

import array
import struct
from collections.abc import Callable
from dataclasses import dataclass

from dimse.transfer.vrs import LONG, SHORT_MAX, WORD_SIZE
from dimse.transfer.walk import (
    PIXEL_DATA,
    UNDEFINED,
    Element,
    MalformedDataSet,
    describe,
    walk,
)

Write = Callable[[bytes | bytearray | memoryview], object]

_BITS_ALLOCATED = 0x00280100
_PIXEL_REPRESENTATION = 0x00280103
_WAVEFORM_BITS_ALLOCATED = 0x54001004
_WAVEFORM_DATA = 0x54001010
_LUT_DATA = 0x00283006
#: "US or SS" attributes that are unsigned whatever the Pixel Representation: the LUT
#: descriptors (PS3.3 C.7.6.3.1.5, C.11.1.1).
_DESCRIPTORS = frozenset({0x00281101, 0x00281102, 0x00281103, 0x00283002})
#: Bytes swapped at a time in a long value (cut to a multiple of the word size).
_CHUNK = 1 << 20
#: array typecodes of 2, 4 and 8 bytes (checked below: they are on every platform
#: CPython builds for, but the C types behind them are not fixed by the language).
_ARRAY_CODES = {size: code for code in "HIQ" if (size := array.array(code).itemsize) in (2, 4, 8)}


@dataclass(frozen=True, slots=True)
class Encoding:
    implicit: bool
    little: bool


class _Level:
    """What the VR rules need to know of one data set (top level or item)."""

    __slots__ = ("bits_allocated", "pixel_representation", "waveform_bits")

    def __init__(self, parent: _Level | None) -> None:
        self.bits_allocated: int = parent.bits_allocated if parent else 0
        self.pixel_representation: int = parent.pixel_representation if parent else 0
        self.waveform_bits: int = parent.waveform_bits if parent else 0


class _Recoder:
    def __init__(
        self, data: bytes | bytearray | memoryview, source: Encoding, target: Encoding
    ) -> None:
        self.data = data
        self.source = source
        self.target = target
        self.swap = source.little != target.little
        endian = "<" if source.little else ">"
        self.read_us = struct.Struct(endian + "H").unpack_from
        out = "<" if target.little else ">"
        self.implicit_header = struct.Struct(out + "HHI").pack
        self.short_header = struct.Struct(out + "HH2sH").pack
        self.long_header = struct.Struct(out + "HH2sHI").pack
        self.u32 = struct.Struct(out + "I").pack
        self._dictionary: Callable[[int], str] | None = None

    # -- VRs ---------------------------------------------------------------------------

    def _dictionary_vr(self, tag: int) -> str:
        if self._dictionary is None:
            from pydicom.datadict import dictionary_VR

            self._dictionary = dictionary_VR
        return self._dictionary(tag)

    def vr_of(self, element: Element, level: _Level) -> bytes:
        """The element's VR: its own in Explicit VR, else the dictionary's, resolved."""
        if element.vr is not None:
            return element.vr
        tag = element.tag
        if tag & 0xFFFF == 0:
            return b"UL"
        if (tag >> 16) % 2:
            return b"LO" if 0x10 <= tag & 0xFFFF <= 0xFF else b"UN"
        try:
            vr = self._dictionary_vr(tag)
        except KeyError:
            return b"UN"
        if element.length == UNDEFINED and element.items is not None:
            return b"SQ"  # in Implicit VR, only a sequence has items of its own
        if element.fragments is not None:
            return b"OB"
        if " or " not in vr:
            return vr.encode("ascii") if vr != "NONE" else b"UN"
        choices = vr.split(" or ")
        if "SS" in choices and "OW" not in choices:
            if tag in _DESCRIPTORS or level.pixel_representation == 0:
                return b"US"
            return b"SS"
        if tag == _LUT_DATA or "US" in choices:
            return b"US" if element.length <= SHORT_MAX else b"OW"
        if tag == PIXEL_DATA:
            return b"OW" if level.bits_allocated > 8 else b"OB"
        if tag == _WAVEFORM_DATA:
            return b"OW" if level.waveform_bits > 8 else b"OB"
        return b"OW"

    def out_vr(self, element: Element, vr: bytes) -> bytes:
        if vr not in LONG and element.length != UNDEFINED and element.length > SHORT_MAX:
            return b"UN"
        return vr

    # -- sizes (for defined lengths written again) ----------------------------------

    def header_size(self, vr: bytes) -> int:
        return 8 if self.target.implicit or vr not in LONG else 12

    def level_of(self, elements: list[Element], parent: _Level | None) -> _Level:
        level = _Level(parent)
        for element in elements:
            tag = element.tag
            if tag > _WAVEFORM_BITS_ALLOCATED:
                break
            if element.length == 2 and tag in (
                _BITS_ALLOCATED,
                _PIXEL_REPRESENTATION,
                _WAVEFORM_BITS_ALLOCATED,
            ):
                (value,) = self.read_us(self.data, element.start)
                if tag == _BITS_ALLOCATED:
                    level.bits_allocated = value
                elif tag == _PIXEL_REPRESENTATION:
                    level.pixel_representation = value
                else:
                    level.waveform_bits = value
        return level

    def value_size(self, element: Element, vr: bytes, level: _Level) -> int:
        if element.fragments is not None:
            return sum(8 + length for _, length in element.fragments) + 8
        if vr == b"SQ" and element.items is not None:
            size = 8 if element.length == UNDEFINED else 0
            for item in element.items:
                size += 8 + self.elements_size(item.elements, self.level_of(item.elements, level))
                if item.undefined:
                    size += 8
            return size
        return element.end - element.start

    def elements_size(self, elements: list[Element], level: _Level) -> int:
        total = 0
        for element in elements:
            vr = self.out_vr(element, self.vr_of(element, level))
            total += self.header_size(vr) + self.value_size(element, vr, level)
        return total

    # -- writing -----------------------------------------------------------------------

    def header(self, tag: int, vr: bytes, length: int) -> bytes:
        if self.target.implicit:
            return self.implicit_header(tag >> 16, tag & 0xFFFF, length)
        if vr in LONG:
            return self.long_header(tag >> 16, tag & 0xFFFF, vr, 0, length)
        return self.short_header(tag >> 16, tag & 0xFFFF, vr, length)

    def write_elements(self, elements: list[Element], level: _Level, out: Write) -> None:
        for index, element in enumerate(elements):
            vr = self.out_vr(element, self.vr_of(element, level))
            tag = element.tag
            if tag & 0xFFFF == 0 and element.length == 4:  # Group Length: again, for the target
                group = tag >> 16
                rest = [e for e in elements[index + 1 :] if e.tag >> 16 == group]
                out(self.header(tag, b"UL", 4))
                out(self.u32(self.elements_size(rest, level)))
                continue
            if element.fragments is not None:  # encapsulated: OB whatever came (PS3.5 A.4)
                out(self.header(tag, b"OB", UNDEFINED))
                for start, length in element.fragments:
                    out(self.implicit_header(0xFFFE, 0xE000, length))
                    out(memoryview(self.data)[start : start + length])
                out(self.implicit_header(0xFFFE, 0xE0DD, 0))
                continue
            if vr == b"SQ" and element.items is not None:
                self.write_sequence(element, level, out)
                continue
            if vr == b"SQ" and element.length != 0:
                raise MalformedDataSet(describe(tag), "a sequence whose value holds no items")
            # Anything else is copied as bytes, items and all: a UN value keeps its
            # Implicit VR Little Endian items (PS3.5 6.2.2).
            out(self.header(tag, vr, element.length))
            value = memoryview(self.data)[element.start : element.end]
            width = self.word_size(tag, vr, level)
            if self.swap and width > 1:
                self.write_swapped(value, width, tag, out)
            else:
                out(value)

    def write_sequence(self, element: Element, level: _Level, out: Write) -> None:
        assert element.items is not None
        undefined = element.length == UNDEFINED
        size = UNDEFINED if undefined else self.value_size(element, b"SQ", level)
        out(self.header(element.tag, b"SQ", size))
        pack = self.implicit_header  # item headers: tag and 4-byte length, no VR
        for item in element.items:
            item_level = self.level_of(item.elements, level)
            if item.undefined:
                out(pack(0xFFFE, 0xE000, UNDEFINED))
                self.write_elements(item.elements, item_level, out)
                out(pack(0xFFFE, 0xE00D, 0))
            else:
                out(pack(0xFFFE, 0xE000, self.elements_size(item.elements, item_level)))
                self.write_elements(item.elements, item_level, out)
        if undefined:
            out(pack(0xFFFE, 0xE0DD, 0))

    def word_size(self, tag: int, vr: bytes, level: _Level) -> int:
        if tag == PIXEL_DATA and vr == b"OW" and level.bits_allocated > 16:
            return level.bits_allocated // 8
        return WORD_SIZE.get(vr, 1)

    @staticmethod
    def write_swapped(value: memoryview, width: int, tag: int, out: Write) -> None:
        """`value` with the bytes of each `width`-byte word reversed: byte k of every
        word moved at once, by a strided copy (any width: 24-bit pixel cells too)."""
        if len(value) % width:
            raise MalformedDataSet(
                describe(tag),
                f"its length {len(value)} is not a multiple of its {width}-byte words",
            )
        step = _CHUNK // width * width
        code = _ARRAY_CODES.get(width)
        for offset in range(0, len(value), step):
            chunk = value[offset : offset + step]
            if code is not None:  # array's byteswap: twenty times a strided copy's speed
                words = array.array(code)
                words.frombytes(chunk)
                words.byteswap()
                out(words.tobytes())
                continue
            swapped = bytearray(len(chunk))
            for k in range(width):
                swapped[k::width] = chunk[width - 1 - k :: width]
            out(swapped)


def recode(
    data: bytes | bytearray | memoryview, source: Encoding, target: Encoding, out: Write
) -> None:
    """Write the data set `data` (in `source`'s encoding) to `out` in `target`'s.
    Raises `MalformedDataSet` for bytes that are not a data set in `source`."""
    shape = walk(data, implicit=source.implicit, little=source.little, keep=True)
    assert shape.elements is not None
    recoder = _Recoder(data, source, target)
    recoder.write_elements(shape.elements, recoder.level_of(shape.elements, None), out)


def recode_bytes(data: bytes | bytearray | memoryview, source: Encoding, target: Encoding) -> bytes:
    """`recode` into bytes in memory."""
    parts: list[bytes] = []
    recode(data, source, target, lambda chunk: parts.append(bytes(chunk)))
    return b"".join(parts)
