"""Walking a data set's structure: every length checked, every sequence closed.

PS3.5 7.1 (data elements), 7.5 (nesting: sequences and items, of defined or undefined
length) and A.4 (encapsulated Pixel Data: fragments in items, ended by a Sequence
Delimitation Item). `walk` reads every element header of a data set and skips every
value, checking that:

- each header is whole, and each Value Length stays inside what holds it (the data
  set, an item of defined length, a sequence of defined length);
- an undefined length belongs to a sequence (SQ, or UN whose value is then Implicit VR
  Little Endian, PS3.5 6.2.2) or to encapsulated Pixel Data, and is closed by its
  delimitation item;
- items hold whole elements and nothing else; sequences hold items only; nesting stops
  at `MAX_DEPTH`;
- no element appears twice in one data set with two values (PS3.5 7.1; the same
  value twice, as in pydicom's palettes/winter.dcm, is let through, and so are
  elements out of tag order: neither leaves a doubt about what the data set holds);
- an explicit VR is one of PS3.5 Table 6.2-1 (any other leaves the length's size
  unknown).

It decodes no value but the SOP Class and Instance UIDs, which both ends of a C-STORE
need from the data set itself (PS3.4 B.2.3: they must match the command). This is the
cheap check made before an instance is sent and before one received is acknowledged:
a few struct calls per element, no pydicom (`dicomscu --store` never imports it).

Implicit VR carries no VR, so a sequence of defined length is known from the data
dictionary (`dictionary.py`), and must then hold items and nothing else; a value of
another attribute that starts with an Item tag is tried as items too (a private
sequence), and taken as opaque bytes if it is not.

With `keep=True` the walk also returns the tree of elements (offsets only), which
`recode.py` follows to write the data set in another encoding.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from dimse.transfer.dictionary import sequence_tags
from dimse.transfer.vrs import LONG, SHORT

UNDEFINED = 0xFFFFFFFF
ITEM = 0xFFFEE000
ITEM_END = 0xFFFEE00D
SEQUENCE_END = 0xFFFEE0DD
PIXEL_DATA = 0x7FE00010
SOP_CLASS_UID = 0x00080016
SOP_INSTANCE_UID = 0x00080018
#: Sequences nested deeper are refused (the same bound as dimse.datasets.MAX_DEPTH).
MAX_DEPTH = 64


class MalformedDataSet(ValueError):
    """The bytes are not a data set in the encoding given; `where` names the element
    (a path through sequences for a nested one), `why` says what is wrong."""

    def __init__(self, where: str, why: str) -> None:
        super().__init__(f"{where}: {why}" if where else why)
        self.where = where
        self.why = why


@dataclass(slots=True)
class Element:
    """Where one element lies in the buffer: `offset` of its header, `start` of its
    value, `length` as encoded (UNDEFINED or a count), `end` after it (delimiter
    included). `vr` is None in Implicit VR."""

    tag: int
    vr: bytes | None
    offset: int
    start: int
    length: int
    end: int
    items: list[Item] | None = None  # a sequence's items
    fragments: list[tuple[int, int]] | None = None  # encapsulated: (start, length) each
    implicit_items: bool = False  # the items are Implicit VR Little Endian (UN, 6.2.2)


@dataclass(slots=True)
class Item:
    start: int  # of the item's first element
    end: int  # after its last element (before an Item Delimitation Item, if any)
    undefined: bool  # its length was undefined (it ends with an Item Delimitation Item)
    elements: list[Element] = field(default_factory=list)


@dataclass(slots=True)
class Shape:
    """What `walk` found: the data set's own SOP UIDs ('' when absent), whether its
    Pixel Data is encapsulated, and the tree of elements when asked for."""

    sop_class_uid: str = ""
    sop_instance_uid: str = ""
    encapsulated: bool = False
    elements: list[Element] | None = None


def tag_text(tag: int) -> str:
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


def describe(tag: int) -> str:
    """`(7FE0,0010) Pixel Data`: the tag and, when the dictionary has it, its name
    (pydicom is imported for this, on the way to an error message only)."""
    try:
        from pydicom.datadict import dictionary_description

        return f"{tag_text(tag)} {dictionary_description(tag)}"
    except (KeyError, ImportError):
        return tag_text(tag)


_LE = (struct.Struct("<HH2sH"), struct.Struct("<I"), struct.Struct("<HHI"))
_BE = (struct.Struct(">HH2sH"), struct.Struct(">I"), struct.Struct(">HHI"))


class _Walker:
    def __init__(self, data: bytes | bytearray | memoryview, keep: bool, implicit: bool) -> None:
        self.data = data
        self.size = len(data)
        self.keep = keep
        self.shape = Shape()
        # Implicit VR does not say which values are sequences: the dictionary does.
        self.sequences = sequence_tags() if implicit else frozenset()

    # -- errors -----------------------------------------------------------------------

    @staticmethod
    def _fail(path: tuple[int, ...], tag: int | None, why: str) -> MalformedDataSet:
        """The error, naming the element by its path through the sequences above it."""
        parts = [tag_text(t) for t in path]
        if tag is not None:
            parts.append(describe(tag))
        elif parts:
            parts[-1] = describe(path[-1])
        return MalformedDataSet(" > ".join(parts), why)

    # -- elements ---------------------------------------------------------------------

    def elements(
        self,
        pos: int,
        end: int | None,
        limit: int,
        implicit: bool,
        little: bool,
        depth: int,
        path: tuple[int, ...],
        out: list[Element] | None,
    ) -> int:
        """Walk elements from `pos` to `end`; for an item of undefined length (`end`
        None), to its Item Delimitation Item, whose end is returned, within `limit`."""
        data = self.data
        if end is not None:
            limit = end
        explicit_header, u32, implicit_header = _LE if little else _BE
        last = -1  # the previous tag: PS3.5 7.1 wants them ascending, each once
        spans: dict[int, tuple[int, int]] = {}
        while True:
            if pos == limit:
                if end is None and depth > 0:
                    raise self._fail(
                        path,
                        None,
                        "an item of undefined length has no Item Delimitation Item before the end of the data",
                    )
                return pos
            if pos + 8 > limit:
                raise self._fail(
                    path,
                    None,
                    f"{limit - pos} stray byte(s) where an element header (8 bytes) belongs",
                )
            if implicit:
                group, number, length = implicit_header.unpack_from(data, pos)
                vr: bytes | None = None
                start = pos + 8
            else:
                group, number, vr, length = explicit_header.unpack_from(data, pos)
                if group == 0xFFFE:  # item tags are never explicit (7.5)
                    group, number, length = implicit_header.unpack_from(data, pos)
                    vr = None
                    start = pos + 8
                elif vr in SHORT:
                    start = pos + 8
                elif vr in LONG:
                    if pos + 12 > limit:
                        raise self._fail(
                            path, group << 16 | number, "the element header is cut short"
                        )
                    (length,) = u32.unpack_from(data, pos + 8)
                    start = pos + 12
                else:
                    raise self._fail(
                        path,
                        group << 16 | number,
                        f"VR {bytes(vr)!r} is not a VR of PS3.5 Table 6.2-1, so its length cannot be read",
                    )
            tag = group << 16 | number
            if group == 0xFFFE:
                if tag == ITEM_END and end is None and depth > 0:
                    return start  # the end of an item of undefined length
                raise self._fail(
                    path, tag, "an item or delimitation tag where a data element belongs"
                )
            element = Element(tag, vr, pos, start, length, 0) if out is not None else None
            if length == UNDEFINED:
                pos = self._undefined(element, tag, vr, start, limit, implicit, little, depth, path)
            else:
                pos = start + length
                if pos > limit:
                    raise self._fail(
                        path,
                        tag,
                        f"its value length {length} runs past the end of the {'data set' if depth == 0 else 'item'} ({limit - start} byte(s) left)",
                    )
                if vr == b"SQ" or (
                    implicit
                    and length
                    and (
                        tag in self.sequences or (length >= 8 and self._starts_item(start, little))
                    )
                ):
                    self._defined_sequence(
                        element, tag, vr, start, pos, implicit, little, depth, path
                    )
                if depth == 0 and (tag == SOP_CLASS_UID or tag == SOP_INSTANCE_UID):
                    text = bytes(data[start:pos]).decode("latin-1").strip("\x00 ")
                    if tag == SOP_CLASS_UID:
                        self.shape.sop_class_uid = text
                    else:
                        self.shape.sop_instance_uid = text
            if tag <= last and tag in spans:
                self._repeated(path, tag, spans[tag], (start, pos))
            spans[tag] = (start, pos)
            last = tag
            if element is not None and out is not None:
                element.end = pos
                out.append(element)

    def _repeated(
        self, path: tuple[int, ...], tag: int, before: tuple[int, int], now: tuple[int, int]
    ) -> None:
        """An element that appears twice in one data set (PS3.5 7.1 allows once): the
        same value again is harmless; another value leaves the data set ambiguous."""
        if bytes(self.data[before[0] : before[1]]) != bytes(self.data[now[0] : now[1]]):
            raise self._fail(path, tag, "appears twice in the data set, with different values")

    def _starts_item(self, pos: int, little: bool) -> bool:
        first: int = (_LE if little else _BE)[1].unpack_from(self.data, pos)[0]
        return first == (0xE000FFFE if little else 0xFFFEE000)

    def _undefined(
        self,
        element: Element | None,
        tag: int,
        vr: bytes | None,
        start: int,
        limit: int,
        implicit: bool,
        little: bool,
        depth: int,
        path: tuple[int, ...],
    ) -> int:
        """Walk a value of undefined length; returns the offset after its delimiter."""
        if tag == PIXEL_DATA and vr in (None, b"OB", b"OW"):
            if depth == 0:
                self.shape.encapsulated = True
            return self._fragments(element, start, limit, little, (*path, tag))
        if vr is None or vr == b"SQ":
            return self._items(
                element, start, None, limit, implicit, little, depth + 1, (*path, tag)
            )
        if vr == b"UN":  # PS3.5 6.2.2: the value is Implicit VR Little Endian
            if element is not None:
                element.implicit_items = True
            return self._items(element, start, None, limit, True, True, depth + 1, (*path, tag))
        raise self._fail(
            path,
            tag,
            f"VR {vr.decode('latin-1')} with an undefined length, which only SQ, UN and encapsulated Pixel Data may have",
        )

    def _defined_sequence(
        self,
        element: Element | None,
        tag: int,
        vr: bytes | None,
        start: int,
        end: int,
        implicit: bool,
        little: bool,
        depth: int,
        path: tuple[int, ...],
    ) -> None:
        if vr is not None:
            self._items(element, start, end, end, implicit, little, depth + 1, (*path, tag))
            return
        # Implicit VR: a value that starts with an Item tag is most likely a sequence.
        try:
            self._items(element, start, end, end, implicit, little, depth + 1, (*path, tag))
        except MalformedDataSet:
            if _may_be_sequence(tag):
                raise
            if element is not None:
                element.items = None  # opaque bytes after all

    def _items(
        self,
        element: Element | None,
        pos: int,
        end: int | None,
        limit: int,
        implicit: bool,
        little: bool,
        depth: int,
        path: tuple[int, ...],
    ) -> int:
        if depth > MAX_DEPTH:
            raise self._fail(path, None, f"sequences nest deeper than {MAX_DEPTH}")
        items: list[Item] | None = [] if element is not None else None
        if element is not None:
            element.items = items
        header = (_LE if little else _BE)[2]
        while True:
            if end is not None and pos == end:
                return pos
            if pos + 8 > limit:
                why = (
                    "the sequence has no Sequence Delimitation Item"
                    if end is None
                    else f"{limit - pos} stray byte(s) where an item header belongs"
                )
                raise self._fail(path, None, why)
            group, number, length = header.unpack_from(self.data, pos)
            tag = group << 16 | number
            if tag == SEQUENCE_END:
                if end is not None:
                    raise self._fail(
                        path,
                        None,
                        "a Sequence Delimitation Item inside a sequence of defined length",
                    )
                return pos + 8
            if tag != ITEM:
                raise self._fail(path, None, f"{tag_text(tag)} where an Item (FFFE,E000) belongs")
            start = pos + 8
            body: list[Element] | None = [] if items is not None else None
            if length == UNDEFINED:
                pos = self.elements(start, None, limit, implicit, little, depth, path, body)
                item_end = pos - 8
            else:
                item_end = start + length
                if item_end > limit:
                    raise self._fail(
                        path,
                        None,
                        f"an item's length {length} runs past the end of the sequence ({limit - start} byte(s) left)",
                    )
                pos = self.elements(start, item_end, item_end, implicit, little, depth, path, body)
            if items is not None and body is not None:
                items.append(Item(start, item_end, length == UNDEFINED, body))

    def _fragments(
        self, element: Element | None, pos: int, limit: int, little: bool, path: tuple[int, ...]
    ) -> int:
        """PS3.5 A.4: the Basic Offset Table item, then one item per fragment, then a
        Sequence Delimitation Item."""
        header = (_LE if little else _BE)[2]
        fragments: list[tuple[int, int]] | None = [] if element is not None else None
        if element is not None:
            element.fragments = fragments
        while True:
            if pos + 8 > limit:
                raise self._fail(
                    path,
                    None,
                    "the encapsulated pixel data has no Sequence Delimitation Item before the end of the data",
                )
            group, number, length = header.unpack_from(self.data, pos)
            tag = group << 16 | number
            if tag == SEQUENCE_END:
                return pos + 8
            if tag != ITEM:
                raise self._fail(
                    path, None, f"{tag_text(tag)} where a fragment's Item (FFFE,E000) belongs"
                )
            if length == UNDEFINED:
                raise self._fail(path, None, "a fragment of undefined length")
            start = pos + 8
            pos = start + length
            if pos > limit:
                raise self._fail(
                    path,
                    None,
                    f"a fragment's length {length} runs past the end of the data ({limit - start} byte(s) left)",
                )
            if fragments is not None:
                fragments.append((start, length))


def _may_be_sequence(tag: int) -> bool:
    """Whether the dictionary makes `tag` a sequence, or knows nothing of it (a private
    attribute): then a value that looked like items must be items."""
    if (tag >> 16) % 2:
        return True
    from pydicom.datadict import dictionary_has_tag

    return tag in sequence_tags() or not dictionary_has_tag(tag)


def walk(
    data: bytes | bytearray | memoryview, *, implicit: bool, little: bool, keep: bool = False
) -> Shape:
    """Walk a whole data set (no preamble, no file meta) in the given encoding; raises
    `MalformedDataSet` naming the first element that is not right."""
    walker = _Walker(data, keep, implicit)
    out: list[Element] | None = [] if keep else None
    walker.elements(0, len(data), len(data), implicit, little, 0, (), out)
    walker.shape.elements = out
    return walker.shape
