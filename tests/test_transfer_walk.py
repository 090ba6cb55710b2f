"""`dimse.transfer.walk`: a data set's structure checked, every length and every sequence.

The data sets are built by hand from PS3.5 7.1.2 (Explicit VR: tag, VR, 2-byte length,
or 2 reserved bytes and a 4-byte length for the VRs of Table 7.1-1), 7.1.3 (Implicit
VR: tag and 4-byte length), 7.3 (byte order) and 7.5 (sequences and items, of defined
or undefined length), and A.4 (encapsulated Pixel Data). The helpers here are also
used by tests/test_transfer_recode.py.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pydicom
import pydicom.data
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dimse.datasets import inflate
from dimse.file_check import check_file
from dimse.files import NotDicomFile, Part10Info
from dimse.transfer.syntaxes import lookup
from dimse.transfer.walk import MAX_DEPTH, MalformedDataSet, Shape, walk

#: PS3.5 Table 7.1-1: the VRs whose Explicit VR header has 2 reserved bytes and a
#: 4-byte Value Length (written here from the standard, not taken from the library).
LONG_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"})
UNDEFINED = 0xFFFFFFFF

CT_IMAGE_STORAGE = b"1.2.840.10008.5.1.4.1.1.2\x00"  # 25 characters, NUL padded (9.1)
INSTANCE = b"1.2.3.4\x00"

# (encoding name, implicit, little): the three uncompressed encodings of Annex A.
ENCODINGS = [
    ("explicit-le", False, True),
    ("implicit-le", True, True),
    ("explicit-be", False, False),
]


def element(
    tag: int,
    vr: str,
    value: bytes,
    *,
    implicit: bool = False,
    little: bool = True,
    length: int | None = None,
) -> bytes:
    """One data element (PS3.5 7.1.2 / 7.1.3); `length` overrides the Value Length."""
    order = "<" if little else ">"
    n = len(value) if length is None else length
    group, number = tag >> 16, tag & 0xFFFF
    if implicit:
        return struct.pack(order + "HHI", group, number, n) + value
    if vr in LONG_VRS:
        return struct.pack(order + "HH2sHI", group, number, vr.encode(), 0, n) + value
    return struct.pack(order + "HH2sH", group, number, vr.encode(), n) + value


def delimiter(number: int, little: bool = True) -> bytes:
    """(FFFE,number) with a zero length: an item or a delimitation item header (7.5)."""
    return struct.pack("<HHI" if little else ">HHI", 0xFFFE, number, 0)


def item_end(little: bool = True) -> bytes:
    return delimiter(0xE00D, little)


def sequence_end(little: bool = True) -> bytes:
    return delimiter(0xE0DD, little)


def item(body: bytes, *, little: bool = True, undefined: bool = False) -> bytes:
    """An Item (FFFE,E000) holding `body`; of undefined length, closed by (FFFE,E00D)."""
    order = "<" if little else ">"
    if undefined:
        return struct.pack(order + "HHI", 0xFFFE, 0xE000, UNDEFINED) + body + item_end(little)
    return struct.pack(order + "HHI", 0xFFFE, 0xE000, len(body)) + body


def sequence(
    tag: int, *items: bytes, implicit: bool = False, little: bool = True, undefined: bool = False
) -> bytes:
    """A sequence (VR SQ) of the given items, its length defined or undefined."""
    value = b"".join(items) + (sequence_end(little) if undefined else b"")
    return element(
        tag, "SQ", value, implicit=implicit, little=little, length=UNDEFINED if undefined else None
    )


def uid_pair(implicit: bool = False, little: bool = True) -> bytes:
    return element(0x00080016, "UI", CT_IMAGE_STORAGE, implicit=implicit, little=little) + element(
        0x00080018, "UI", INSTANCE, implicit=implicit, little=little
    )


def failure(data: bytes, *, implicit: bool = False, little: bool = True) -> MalformedDataSet:
    with pytest.raises(MalformedDataSet) as caught:
        walk(data, implicit=implicit, little=little)
    return caught.value


# -- golden data sets -------------------------------------------------------------------


def test_the_helper_writes_the_standards_layout() -> None:
    """The helper checked against bytes written out from PS3.5 Tables 7.1-1..7.1-3."""
    assert element(0x00080018, "UI", INSTANCE) == b"\x08\x00\x18\x00UI\x08\x001.2.3.4\x00"
    assert element(0x00080018, "UI", INSTANCE, little=False) == (
        b"\x00\x08\x00\x18UI\x00\x081.2.3.4\x00"
    )
    assert element(0x00080018, "", INSTANCE, implicit=True) == (
        b"\x08\x00\x18\x00\x08\x00\x00\x001.2.3.4\x00"
    )
    assert element(0x7FE00010, "OW", b"\x01\x02") == (
        b"\xe0\x7f\x10\x00OW\x00\x00\x02\x00\x00\x00\x01\x02"
    )


@pytest.mark.parametrize(("name", "implicit", "little"), ENCODINGS)
def test_the_sop_uids_are_read_without_their_padding(
    name: str, implicit: bool, little: bool
) -> None:
    data = uid_pair(implicit, little) + element(
        0x00100010, "PN", b"DOE^JOHN", implicit=implicit, little=little
    )
    shape = walk(data, implicit=implicit, little=little)
    assert shape == Shape("1.2.840.10008.5.1.4.1.1.2", "1.2.3.4", False, None)


@pytest.mark.parametrize(("name", "implicit", "little"), ENCODINGS)
def test_keep_gives_every_offset(name: str, implicit: bool, little: bool) -> None:
    data = uid_pair(implicit, little)
    shape = walk(data, implicit=implicit, little=little, keep=True)
    assert shape.elements is not None
    first, second = shape.elements
    assert (first.tag, first.offset, first.start, first.length, first.end) == (
        0x00080016,
        0,
        8,
        26,
        34,
    )
    assert (second.tag, second.offset, second.start, second.length, second.end) == (
        0x00080018,
        34,
        42,
        8,
        50,
    )
    assert first.vr == (None if implicit else b"UI")


def test_an_encapsulated_pixel_data_is_walked_by_fragment() -> None:
    fragments = item(b"") + item(b"\xff\xd8\xff\xd9") + sequence_end()
    data = uid_pair() + element(0x7FE00010, "OB", fragments, length=UNDEFINED)
    shape = walk(data, implicit=False, little=True, keep=True)
    assert shape.encapsulated
    assert shape.elements is not None
    start = len(uid_pair()) + 12
    assert shape.elements[-1].fragments == [(start + 8, 0), (start + 16, 4)]
    assert shape.elements[-1].end == len(data)


# -- malformations ----------------------------------------------------------------------


@pytest.mark.parametrize(("name", "implicit", "little"), ENCODINGS)
def test_a_value_length_past_the_end(name: str, implicit: bool, little: bool) -> None:
    data = uid_pair(implicit, little) + element(
        0x00100010, "PN", b"DOE^", implicit=implicit, little=little, length=100
    )
    error = failure(data, implicit=implicit, little=little)
    assert error.where == "(0010,0010) Patient's Name"
    assert "(0010,0010)" in str(error) and "runs past" in str(error)


def test_an_item_overrunning_its_sequence() -> None:
    inner = element(0x00081150, "UI", b"1.2\x00")
    bad_item = struct.pack("<HHI", 0xFFFE, 0xE000, 100) + inner
    data = element(0x00081115, "SQ", bad_item) + uid_pair()
    error = failure(data)
    assert error.where == "(0008,1115) Referenced Series Sequence"
    assert "runs past the end of the sequence" in error.why


def test_an_undefined_length_sequence_without_its_delimiter() -> None:
    data = uid_pair() + element(0x00081115, "SQ", item(uid_pair()), length=UNDEFINED)
    error = failure(data)
    assert error.where.startswith("(0008,1115)")
    assert "Sequence Delimitation Item" in error.why


def test_an_undefined_length_item_without_its_delimiter() -> None:
    open_item = struct.pack("<HHI", 0xFFFE, 0xE000, UNDEFINED) + uid_pair()
    data = element(0x00081115, "SQ", open_item, length=UNDEFINED)
    error = failure(data)
    assert error.where.startswith("(0008,1115)")
    assert "Item Delimitation Item" in error.why


@pytest.mark.parametrize("little", [True, False])
@pytest.mark.parametrize("vr", ["UT", "UC", "UR"])
def test_an_undefined_length_on_a_text_vr(vr: str, little: bool) -> None:
    """PS3.5 7.1.2: UC, UR and UT shall not have an undefined length. (LO has a 2-byte
    length, which cannot say "undefined": FFFFH is a length of 65535 there.)"""
    value = item(b"", little=little) + sequence_end(little)
    data = uid_pair(little=little) + element(0x00100020, vr, value, little=little, length=UNDEFINED)
    error = failure(data, little=little)
    assert error.where == "(0010,0020) Patient ID"
    assert "undefined length" in error.why and vr in error.why


def test_an_unknown_explicit_vr() -> None:
    data = uid_pair() + struct.pack("<HH2sH", 0x0010, 0x0010, b"ZZ", 4) + b"DOE^"
    error = failure(data)
    assert error.where == "(0010,0010) Patient's Name"
    assert "ZZ" in error.why


@pytest.mark.parametrize(("name", "implicit", "little"), ENCODINGS)
def test_stray_bytes_at_the_end(name: str, implicit: bool, little: bool) -> None:
    error = failure(uid_pair(implicit, little) + b"\x00\x01\x02", implicit=implicit, little=little)
    assert "3 stray byte(s)" in error.why


@pytest.mark.parametrize(("name", "implicit", "little"), ENCODINGS)
def test_an_item_at_the_top_level(name: str, implicit: bool, little: bool) -> None:
    data = uid_pair(implicit, little) + item(b"", little=little)
    error = failure(data, implicit=implicit, little=little)
    assert error.where.startswith("(FFFE,E000)")


def test_a_sequence_holding_an_element_instead_of_an_item() -> None:
    data = element(0x00081115, "SQ", element(0x00100010, "PN", b"DOE^")) + uid_pair()
    error = failure(data)
    assert error.where.startswith("(0008,1115)")
    assert "(0010,0010) where an Item (FFFE,E000) belongs" in error.why


def nested(depth: int, *, implicit: bool = False, undefined: bool = True) -> bytes:
    inner = uid_pair(implicit)
    for _ in range(depth):
        inner = sequence(
            0x00081115, item(inner, undefined=undefined), implicit=implicit, undefined=undefined
        )
    return inner


@pytest.mark.parametrize("implicit", [False, True])
@pytest.mark.parametrize("undefined", [False, True])
def test_nesting_up_to_max_depth_is_walked(implicit: bool, undefined: bool) -> None:
    walk(nested(MAX_DEPTH, implicit=implicit, undefined=undefined), implicit=implicit, little=True)


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 70, 5000])
@pytest.mark.parametrize("implicit", [False, True])
def test_nesting_deeper_than_max_depth_is_refused(depth: int, implicit: bool) -> None:
    error = failure(nested(depth, implicit=implicit), implicit=implicit)
    assert error.where.startswith("(0008,1115)")
    assert f"deeper than {MAX_DEPTH}" in error.why


def test_a_fragment_of_undefined_length() -> None:
    fragments = item(b"") + struct.pack("<HHI", 0xFFFE, 0xE000, UNDEFINED) + b"\xff\xd8"
    data = uid_pair() + element(0x7FE00010, "OB", fragments + sequence_end(), length=UNDEFINED)
    error = failure(data)
    assert error.where == "(7FE0,0010) Pixel Data"
    assert "undefined length" in error.why


def test_encapsulated_pixel_data_without_its_delimiter() -> None:
    fragments = item(b"") + item(b"\xff\xd8\xff\xd9")
    data = uid_pair() + element(0x7FE00010, "OB", fragments, length=UNDEFINED)
    error = failure(data)
    assert error.where == "(7FE0,0010) Pixel Data"
    assert "Sequence Delimitation Item" in error.why


@pytest.mark.parametrize(("name", "implicit", "little"), ENCODINGS)
def test_a_nested_element_is_named_by_its_path(name: str, implicit: bool, little: bool) -> None:
    bad = element(0x0020000E, "UI", b"1.2", implicit=implicit, little=little, length=40)
    body = element(0x00081150, "UI", b"1.2\x00", implicit=implicit, little=little) + bad
    data = uid_pair(implicit, little) + sequence(
        0x00081115,
        item(body, little=little, undefined=True),
        implicit=implicit,
        little=little,
        undefined=True,
    )
    error = failure(data, implicit=implicit, little=little)
    assert error.where.startswith("(0008,1115)")
    assert error.where == "(0008,1115) > (0020,000E) Series Instance UID"
    assert "runs past the end of the item" in error.why


# -- UN, and guessing sequences in Implicit VR ---------------------------------------------


@pytest.mark.parametrize("little", [True, False])
def test_un_of_undefined_length_holds_implicit_little_endian_items(little: bool) -> None:
    """PS3.5 6.2.2: whatever the transfer syntax, the items are Implicit VR LE."""
    inner = element(0x00100020, "", b"ID01", implicit=True)
    value = item(inner, undefined=True) + item(inner) + sequence_end()
    data = (
        uid_pair(little=little)
        + element(0x00090010, "LO", b"ACME", little=little)
        + element(0x00091001, "UN", value, little=little, length=UNDEFINED)
        + element(0x00100010, "PN", b"DOE^", little=little)
    )
    shape = walk(data, implicit=False, little=little, keep=True)
    assert shape.elements is not None
    un = shape.elements[3]
    assert un.tag == 0x00091001 and un.implicit_items
    assert un.items is not None and len(un.items) == 2
    assert [e.tag for e in un.items[0].elements] == [0x00100020]
    assert un.items[0].undefined and not un.items[1].undefined
    assert shape.elements[4].tag == 0x00100010


def test_implicit_private_value_starting_with_an_item_is_a_sequence() -> None:
    inner = element(0x00100020, "", b"ID01", implicit=True)
    data = (
        uid_pair(implicit=True)
        + element(0x00090010, "", b"ACME", implicit=True)
        + element(0x00091001, "", item(inner), implicit=True)
    )
    shape = walk(data, implicit=True, little=True, keep=True)
    assert shape.elements is not None
    private = shape.elements[-1]
    assert private.items is not None and len(private.items) == 1
    assert [e.tag for e in private.items[0].elements] == [0x00100020]


def test_implicit_private_value_that_looks_like_items_but_is_not() -> None:
    """A private attribute the dictionary does not know: items it must be."""
    value = struct.pack("<HHI", 0xFFFE, 0xE000, 0x1000) + b"\x01\x02\x03\x04"
    data = uid_pair(implicit=True) + element(0x00091001, "", value, implicit=True)
    error = failure(data, implicit=True)
    assert error.where.startswith("(0009,1001)")


def test_implicit_lut_data_starting_like_an_item_is_opaque() -> None:
    """(0028,1201) Red Palette Color LUT Data is OW: bytes FE FF 00 E0 are data."""
    value = struct.pack("<HHI", 0xFFFE, 0xE000, 0x1000) + b"\x01\x02\x03\x04"
    data = uid_pair(implicit=True) + element(0x00281201, "", value, implicit=True)
    shape = walk(data, implicit=True, little=True, keep=True)
    assert shape.elements is not None
    lut = shape.elements[-1]
    assert lut.tag == 0x00281201 and lut.items is None
    assert (lut.start, lut.end) == (len(data) - len(value), len(data))


# -- arbitrary bytes ----------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=300), implicit=st.booleans(), little=st.booleans())
def test_arbitrary_bytes_raise_only_malformed_data_set(
    data: bytes, implicit: bool, little: bool
) -> None:
    for keep in (False, True):
        try:
            walk(data, implicit=implicit, little=little, keep=keep)
        except MalformedDataSet:
            pass


_SEED = (
    uid_pair()
    + sequence(0x00081115, item(uid_pair(), undefined=True), item(uid_pair()), undefined=True)
    + element(0x00090010, "LO", b"ACME")
    + element(0x00091001, "UN", item(uid_pair(True)) + sequence_end(), length=UNDEFINED)
    + element(0x7FE00010, "OB", item(b"") + item(b"\xff\xd8") + sequence_end(), length=UNDEFINED)
)


@settings(max_examples=300, deadline=None)
@given(
    edits=st.lists(st.tuples(st.integers(0, len(_SEED) - 1), st.integers(0, 255)), max_size=6),
    cut=st.integers(0, len(_SEED)),
)
def test_a_damaged_data_set_raises_only_malformed_data_set(
    edits: list[tuple[int, int]], cut: int
) -> None:
    data = bytearray(_SEED)
    for index, value in edits:
        data[index] = value
    for implicit in (False, True):
        try:
            walk(bytes(data[:cut]), implicit=implicit, little=True, keep=True)
        except MalformedDataSet:
            pass


# -- pydicom's test files -----------------------------------------------------------------

DATA_ROOT = Path(os.path.dirname(pydicom.data.__file__))


def instances() -> list[tuple[str, Part10Info]]:
    found = []
    for path in sorted(DATA_ROOT.rglob("*")):
        if not path.is_file():
            continue
        try:
            found.append((str(path.relative_to(DATA_ROOT)), check_file(path)))
        except NotDicomFile:
            continue
    return found


INSTANCES = instances()


def data_set(info: Part10Info) -> tuple[bytes, bool, bool]:
    """(bytes, implicit, little) of a file's data set as it is really encoded."""
    syntax = lookup(info.transfer_syntax)
    assert syntax is not None
    data = info.path.read_bytes()[info.dataset_offset :]
    if syntax.deflated:
        data = inflate(data)
    own = lookup(info.encoding) if info.encoding else syntax
    assert own is not None
    return data, own.implicit, own.little


def test_the_test_files_are_found() -> None:
    assert len(INSTANCES) > 100
    names = {name.rsplit("/", 1)[-1] for name, _ in INSTANCES}
    assert {"CT_small.dcm", "MR_small_bigendian.dcm", "rtplan.dcm", "image_dfl.dcm"} <= names


@pytest.mark.filterwarnings("ignore::UserWarning")  # pydicom on a file's VR form
@pytest.mark.parametrize(("name", "info"), INSTANCES, ids=[name for name, _ in INSTANCES])
def test_every_test_file_walks(name: str, info: Part10Info) -> None:
    data, implicit, little = data_set(info)
    plain = walk(data, implicit=implicit, little=little)
    kept = walk(data, implicit=implicit, little=little, keep=True)
    assert (plain.sop_class_uid, plain.sop_instance_uid, plain.encapsulated) == (
        kept.sop_class_uid,
        kept.sop_instance_uid,
        kept.encapsulated,
    )
    assert (plain.sop_class_uid, plain.sop_instance_uid) == (
        info.sop_class_uid,
        info.sop_instance_uid,
    )
    # The elements tile the data set, and are those pydicom reads at the top level
    # (pydicom sorts them and keeps one of a repeated tag: palettes/winter.dcm holds its
    # SOP Instance UID twice).
    assert kept.elements is not None
    offsets = [e.offset for e in kept.elements] + [len(data)]
    assert offsets[0] == 0
    assert [e.end for e in kept.elements] == offsets[1:]
    dataset = pydicom.dcmread(info.path, force=True)
    assert sorted({e.tag for e in kept.elements}) == [
        int(t) for t in dataset.keys() if t.group != 2
    ]
    assert plain.sop_class_uid == dataset.SOPClassUID
    assert plain.sop_instance_uid == dataset.SOPInstanceUID


@pytest.mark.parametrize(
    ("file", "tag"),
    [("MR_truncated.dcm", "(7FE0,0010)"), ("rtplan_truncated.dcm", "(300A,00B0)")],
)
def test_truncated_files_are_refused_naming_the_element(file: str, tag: str) -> None:
    with pytest.raises(NotDicomFile) as caught:
        check_file(DATA_ROOT / "test_files" / file)
    assert tag in str(caught.value)
    assert file in str(caught.value)


# -- each element once (PS3.5 7.1) ------------------------------------------------------


def test_an_element_twice_with_two_values_is_refused() -> None:
    data = (
        element(0x00080016, "UI", CT_IMAGE_STORAGE)
        + element(0x00080018, "UI", INSTANCE)
        + element(0x00100010, "PN", b"A^B ")
        + element(0x00080018, "UI", b"1.2.3.5\x00")
    )
    with pytest.raises(MalformedDataSet) as caught:
        walk(data, implicit=False, little=True)
    assert caught.value.where.startswith("(0008,0018)")
    assert "twice" in caught.value.why


def test_an_element_twice_with_one_value_and_tags_out_of_order_are_let_through() -> None:
    # pydicom's palettes/winter.dcm holds (0008,0018) twice, the same both times.
    data = (
        element(0x00100010, "PN", b"A^B ")
        + element(0x00080016, "UI", CT_IMAGE_STORAGE)
        + element(0x00080018, "UI", INSTANCE)
        + element(0x00080018, "UI", INSTANCE)
    )
    shape = walk(data, implicit=False, little=True)
    assert shape.sop_instance_uid == "1.2.3.4"
