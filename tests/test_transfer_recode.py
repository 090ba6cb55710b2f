"""`dimse.transfer.recode`: a data set between Implicit VR LE, Explicit VR LE and BE.

Golden bytes are written from PS3.5 7.1.2 and 7.1.3 (the element headers), 7.3 (byte
order: every binary number reversed by its own size, OB and UN untouched), 6.2.2 (a
UN value is Implicit VR Little Endian whatever the syntax) and PS3.6 (the VRs an
Implicit VR source leaves to the dictionary). The round trips over pydicom's test
files are judged by tests/fidelity.py, which does not share the library's code.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dimse.files import Part10Info, part10_bytes_header
from dimse.transfer.recode import Encoding, recode_bytes
from dimse.transfer.syntaxes import UNCOMPRESSED, TransferSyntax, lookup
from dimse.transfer.walk import Element, MalformedDataSet, walk
from tests.fidelity import differences, read
from tests.test_transfer_walk import (
    _SEED,
    INSTANCES,
    UNDEFINED,
    data_set,
    element,
    item,
    sequence,
    sequence_end,
    uid_pair,
)

LE = Encoding(implicit=False, little=True)
BE = Encoding(implicit=False, little=False)
IMPLICIT = Encoding(implicit=True, little=True)


def us(value: int, little: bool = True) -> bytes:
    return struct.pack("<H" if little else ">H", value)


# -- byte order (PS3.5 7.3) -------------------------------------------------------------


def test_us_rows_goes_big_endian() -> None:
    source = b"\x28\x00\x10\x00US\x02\x00\x00\x02"  # (0028,0010) US 512, Explicit VR LE
    golden = b"\x00\x28\x00\x10US\x00\x02\x02\x00"
    assert recode_bytes(source, LE, BE) == golden
    assert recode_bytes(golden, BE, LE) == source


def test_at_is_swapped_per_16_bit_number() -> None:
    """(0028,0009) Frame Increment Pointer = (0018,1063) Frame Time."""
    source = b"\x28\x00\x09\x00AT\x04\x00\x18\x00\x63\x10"
    golden = b"\x00\x28\x00\x09AT\x00\x04\x00\x18\x10\x63"
    assert recode_bytes(source, LE, BE) == golden


@pytest.mark.parametrize(
    ("bits", "big"),
    [
        (16, b"\x02\x01\x04\x03\x06\x05\x08\x07"),  # OW: 16-bit words
        (32, b"\x04\x03\x02\x01\x08\x07\x06\x05"),  # a 32-bit cell whole, as pydicom reads it
        (64, b"\x08\x07\x06\x05\x04\x03\x02\x01"),
    ],
)
def test_pixel_data_ow_is_swapped_by_cell(bits: int, big: bytes) -> None:
    source = element(0x00280100, "US", us(bits)) + element(0x7FE00010, "OW", bytes(range(1, 9)))
    golden = element(0x00280100, "US", us(bits, False), little=False) + element(
        0x7FE00010, "OW", big, little=False
    )
    assert recode_bytes(source, LE, BE) == golden
    assert recode_bytes(golden, BE, LE) == source


def test_pixel_data_of_24_bits_allocated() -> None:
    """PS3.5 8.1.1 allows any multiple of 8: a 24-bit cell is reversed whole, or the
    data set refused; never a KeyError."""
    source = element(0x00280100, "US", us(24)) + element(0x7FE00010, "OW", bytes(range(1, 7)))
    try:
        out = recode_bytes(source, LE, BE)
    except MalformedDataSet as exc:
        assert "(7FE0,0010)" in str(exc)
    else:
        assert out.endswith(b"\x03\x02\x01\x06\x05\x04")


@pytest.mark.parametrize(
    ("vr", "code", "values"),
    [
        ("US", "H", (1, 0xFFFE)),
        ("SS", "h", (-2, 300)),
        ("UL", "I", (0x01020304,)),
        ("SL", "i", (-5, 7)),
        ("FL", "f", (1.5, -0.25)),
        ("FD", "d", (1.5, 1e-300)),
        ("OF", "f", (2.5,)),
        ("OD", "d", (-3.75,)),
        ("OL", "I", (0xDEADBEEF,)),
        ("OW", "H", (0x0102, 0x0304)),
        ("SV", "q", (-(1 << 40),)),
        ("UV", "Q", (1 << 60,)),
        ("OV", "Q", (7,)),
    ],
)
def test_binary_values_are_swapped_by_their_word(
    vr: str, code: str, values: tuple[float, ...]
) -> None:
    tag = 0x00091001  # a private element: in Explicit VR only the VR counts
    creator = element(0x00090010, "LO", b"ACME")
    source = creator + element(tag, vr, struct.pack(f"<{len(values)}{code}", *values))
    golden = element(0x00090010, "LO", b"ACME", little=False) + element(
        tag, vr, struct.pack(f">{len(values)}{code}", *values), little=False
    )
    assert recode_bytes(source, LE, BE) == golden
    assert recode_bytes(golden, BE, LE) == source


@pytest.mark.parametrize(
    ("tag", "vr"), [(0x00420011, "OB"), (0x00091001, "UN"), (0x00100020, "LO")]
)
def test_bytes_and_text_are_not_swapped(tag: int, vr: str) -> None:
    value = b"\x01\x02\x03\x04"
    source = element(0x00090010, "LO", b"ACME") + element(tag, vr, value)
    golden = element(0x00090010, "LO", b"ACME", little=False) + element(
        tag, vr, value, little=False
    )
    assert recode_bytes(source, LE, BE) == golden


def test_a_un_value_stays_little_endian_in_big_endian() -> None:
    """PS3.5 6.2.2: a value longer than a 2-byte length becomes UN, whose value is
    Implicit VR Little Endian whatever the transfer syntax: not swapped."""
    value = struct.pack("<8750d", *range(8750))  # 70000 bytes of FD (0018,9087)
    source = element(0x00189087, "", value, implicit=True)
    out = recode_bytes(source, IMPLICIT, BE)
    assert out == struct.pack(">HH2sHI", 0x0018, 0x9087, b"UN", 0, len(value)) + value


# -- Explicit and Implicit VR (PS3.5 7.1.2, 7.1.3) -------------------------------------------


def test_explicit_to_implicit_drops_the_vr() -> None:
    source = element(0x00100010, "PN", b"DOE^JOHN") + element(0x00420011, "OB", b"\x01\x02")
    golden = (
        b"\x10\x00\x10\x00\x08\x00\x00\x00DOE^JOHN" + b"\x42\x00\x11\x00\x02\x00\x00\x00\x01\x02"
    )
    assert recode_bytes(source, LE, IMPLICIT) == golden
    assert recode_bytes(recode_bytes(source, LE, BE), BE, IMPLICIT) == golden


def test_implicit_to_explicit_takes_the_vr_from_the_dictionary() -> None:
    group8 = uid_pair(implicit=True) + element(0x00081115, "", b"", implicit=True)
    source = (
        element(0x00080000, "", struct.pack("<I", len(group8)), implicit=True)
        + group8
        + element(0x00090010, "", b"ACME", implicit=True)
        + element(0x00091001, "", b"\x01\x02\x03\x04", implicit=True)
        + element(0x00100010, "", b"DOE^JOHN", implicit=True)
    )
    explicit8 = uid_pair() + element(0x00081115, "SQ", b"")
    golden = (
        element(0x00080000, "UL", struct.pack("<I", len(explicit8)))  # 50 + 12, not 58
        + explicit8
        + element(0x00090010, "LO", b"ACME")
        + element(0x00091001, "UN", b"\x01\x02\x03\x04")
        + element(0x00100010, "PN", b"DOE^JOHN")
    )
    assert len(explicit8) == len(group8) + 4
    assert recode_bytes(source, IMPLICIT, LE) == golden


@pytest.mark.parametrize(("representation", "vr"), [(0, "US"), (1, "SS")])
def test_us_or_ss_follows_pixel_representation(representation: int, vr: str) -> None:
    """(0028,0106) Smallest Image Pixel Value is "US or SS" in PS3.6."""
    source = element(0x00280103, "", us(representation), implicit=True) + element(
        0x00280106, "", us(0xFFFE), implicit=True
    )
    golden = element(0x00280103, "US", us(representation)) + element(0x00280106, vr, us(0xFFFE))
    assert recode_bytes(source, IMPLICIT, LE) == golden


@pytest.mark.parametrize(("bits", "vr"), [(8, "OB"), (16, "OW")])
def test_pixel_data_ob_or_ow_follows_bits_allocated(bits: int, vr: str) -> None:
    source = element(0x00280100, "", us(bits), implicit=True) + element(
        0x7FE00010, "", b"\x01\x02\x03\x04", implicit=True
    )
    golden = element(0x00280100, "US", us(bits)) + element(0x7FE00010, vr, b"\x01\x02\x03\x04")
    assert recode_bytes(source, IMPLICIT, LE) == golden


@pytest.mark.parametrize("bits", [8, 16])
def test_encapsulated_pixel_data_from_implicit_is_ob(bits: int) -> None:
    """PS3.5 A.4: encapsulated Pixel Data has the VR OB, whatever Bits Allocated (a
    compressed data set held in Implicit VR by mistake, put right before it is sent)."""
    fragments = item(b"") + item(b"\xff\xd8\xff\xd9") + sequence_end()
    source = element(0x00280100, "", us(bits), implicit=True) + element(
        0x7FE00010, "", fragments, implicit=True, length=UNDEFINED
    )
    golden = element(0x00280100, "US", us(bits)) + element(
        0x7FE00010, "OB", fragments, length=UNDEFINED
    )
    assert recode_bytes(source, IMPLICIT, LE) == golden


def test_a_long_text_value_becomes_un() -> None:
    value = b"A" * 70000
    source = element(0x00080080, "", value, implicit=True)  # Institution Name, LO
    golden = struct.pack("<HH2sHI", 0x0008, 0x0080, b"UN", 0, 70000) + value
    assert recode_bytes(source, IMPLICIT, LE) == golden
    assert recode_bytes(golden, LE, IMPLICIT) == source


def test_an_undefined_length_on_a_non_sequence_attribute_in_implicit_vr() -> None:
    """Implicit VR: (0010,0010) Patient's Name (PN) of undefined length, holding items.
    The walk accepts it; converting it must give a readable data set or name the
    element (MalformedDataSet), not crash on a 2-byte length field."""
    value = item(element(0x00100020, "", b"ID", implicit=True), undefined=True) + sequence_end()
    source = element(0x00100010, "", value, implicit=True, length=UNDEFINED)
    walk(source, implicit=True, little=True)
    for target in (LE, BE):
        try:
            out = recode_bytes(source, IMPLICIT, target)
        except MalformedDataSet as exc:
            assert "(0010,0010)" in str(exc)
        else:
            walk(out, implicit=False, little=target.little)


# -- sequences: their length form kept, defined lengths recomputed ------------------------


def referenced_series(*, implicit: bool, undefined: bool) -> bytes:
    body = element(0x00081150, "UI", b"1.2.840.10008.5.1.4.1.1.2\x00", implicit=implicit)
    body += element(0x00081155, "UI", b"1.2.3\x00", implicit=implicit)
    inner = sequence(
        0x00081199, item(body, undefined=undefined), implicit=implicit, undefined=undefined
    )
    return uid_pair(implicit) + sequence(
        0x00081115,
        item(inner + element(0x0020000E, "UI", b"1.2.3.4.5\x00", implicit=implicit)),
        item(b"", undefined=undefined),
        implicit=implicit,
        undefined=undefined,
    )


@pytest.mark.parametrize("undefined", [False, True])
def test_sequences_round_trip_through_implicit(undefined: bool) -> None:
    explicit = referenced_series(implicit=False, undefined=undefined)
    implicit = referenced_series(implicit=True, undefined=undefined)
    if not undefined:
        assert len(explicit) != len(implicit)  # the SQ headers differ in size
    assert recode_bytes(explicit, LE, IMPLICIT) == implicit
    assert recode_bytes(implicit, IMPLICIT, LE) == explicit
    big = recode_bytes(explicit, LE, BE)
    assert recode_bytes(big, BE, LE) == explicit
    assert recode_bytes(big, BE, IMPLICIT) == implicit


# -- damaged bytes -------------------------------------------------------------------------


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    edits=st.lists(st.tuples(st.integers(0, len(_SEED) - 1), st.integers(0, 255)), max_size=6),
    source=st.sampled_from([LE, IMPLICIT, BE]),
    target=st.sampled_from([LE, IMPLICIT, BE]),
)
def test_damaged_bytes_raise_only_malformed_data_set(
    edits: list[tuple[int, int]], source: Encoding, target: Encoding
) -> None:
    data = bytearray(_SEED)
    for index, value in edits:
        data[index] = value
    try:
        recode_bytes(bytes(data), source, target)
    except MalformedDataSet:
        pass


# -- pydicom's test files ------------------------------------------------------------------


def syntax_of(uid: str) -> TransferSyntax:
    syntax = lookup(uid)
    assert syntax is not None
    return syntax


def encoding_of(uid: str) -> Encoding:
    syntax = syntax_of(uid)
    return Encoding(syntax.implicit, syntax.little)


UNCOMPRESSED_FILES = [
    (name, info) for name, info in INSTANCES if not syntax_of(info.transfer_syntax).encapsulated
]


def _normalised_pixels_equal(source: Path, received: Path) -> bool:
    """Pixel Data bytes compared once put in little endian, by Bits Allocated cell."""
    a, b = read(source), read(received)
    width = max(a.BitsAllocated // 8, 2)
    code = {2: "u2", 4: "u4", 8: "u8"}[width]
    swapped = np.frombuffer(b.PixelData, dtype=">" + code).astype("<" + code).tobytes()
    return bool(swapped == bytes(a.PixelData))


@pytest.mark.parametrize("target", UNCOMPRESSED)
@pytest.mark.parametrize(
    ("name", "info"), UNCOMPRESSED_FILES, ids=[name for name, _ in UNCOMPRESSED_FILES]
)
def test_round_trip_is_exact(name: str, info: Part10Info, target: str, tmp_path: Path) -> None:
    data, implicit, little = data_set(info)
    out = recode_bytes(data, Encoding(implicit, little), encoding_of(target))
    received = tmp_path / "received.dcm"
    header = part10_bytes_header(info.sop_class_uid, info.sop_instance_uid, target)
    received.write_bytes(header + out)
    found = differences(info.path, received)
    if name.endswith("badVR.dcm") and not encoding_of(target).little:
        # badVR.dcm's Number of Frames is '1A': pydicom cannot decode its pixels, so
        # fidelity compares the raw Pixel Data, which big endian rightly reverses.
        assert len(found) == 1 and "cannot be decoded" in found[0]
        assert _normalised_pixels_equal(info.path, received)
    else:
        assert found == []


def _group_lengths(elements: list[Element], out: list[Element]) -> list[Element]:
    for e in elements:
        if e.tag & 0xFFFF == 0:
            out.append(e)
        for it in e.items or []:
            _group_lengths(it.elements, out)
    return out


def _siblings(elements: list[Element]) -> list[list[Element]]:
    lists = [elements]
    for e in elements:
        for it in e.items or []:
            lists += _siblings(it.elements)
    return lists


EXPLICIT_FILES = [
    (name, info)
    for name, info in UNCOMPRESSED_FILES
    if not data_set(info)[1]  # explicit VR, either byte order
]


@pytest.mark.parametrize(("name", "info"), EXPLICIT_FILES, ids=[name for name, _ in EXPLICIT_FILES])
def test_byte_order_there_and_back_gives_the_bytes_back(name: str, info: Part10Info) -> None:
    data, _, little = data_set(info)
    own, other = (LE, BE) if little else (BE, LE)
    back = recode_bytes(recode_bytes(data, own, other), other, own)
    tree = walk(data, implicit=False, little=little, keep=True).elements
    assert tree is not None
    lengths = _group_lengths(tree, [])
    if not lengths:
        assert back == data
        return
    # Group lengths (7.2) are recomputed: the rest is unchanged, and each is right.
    assert len(back) == len(data)
    masked_a, masked_b = bytearray(data), bytearray(back)
    for e in lengths:
        masked_a[e.start : e.end] = masked_b[e.start : e.end] = b"\x00" * (e.end - e.start)
    assert masked_a == masked_b
    back_tree = walk(back, implicit=False, little=little, keep=True).elements
    assert back_tree is not None
    for siblings in _siblings(back_tree):
        for index, e in enumerate(siblings):
            if e.tag & 0xFFFF == 0 and e.length == 4:
                rest = [x for x in siblings[index + 1 :] if x.tag >> 16 == e.tag >> 16]
                value = struct.unpack_from("<I" if little else ">I", back, e.start)[0]
                assert value == sum(x.end - x.offset for x in rest)
