"""Is a received instance the instance that was sent? Element by element, pixel by pixel.

`differences(source, received)` lists every way the two files' data sets differ (an
empty list: none). It compares what pydicom reads, as a person would, but strictly:

- every element of either data set, nested sequences included, must be in the other
  with the same value bytes, once binary values are put in one byte order (OW, OF,
  US... are reversed by word when one file is big endian: PS3.5 7.3). Text is compared
  as bytes, so a changed padding or character counts. Group lengths (gggg,0000) are
  left out: they are retired and depend on the encoding (PS3.5 7.2); so is Data Set
  Trailing Padding, which has no meaning and may be removed (PS3.10 7.2);
- Pixel Data is compared by pydicom's decoding of each file (`pixel_array`), so an
  instance sent compressed and received decompressed compares by its pixels;
- when the received instance was decompressed (`decompressed=True`), the attributes
  that decompression must change are left to `decompression_problems`: Photometric
  Interpretation and Planar Configuration may change with the colour space, and a
  lossy source must be marked Lossy Image Compression "01" (PS3.3 C.7.6.1.1.5).

Used by the fidelity tests over pydicom's test files and by nothing in the library:
it is the independent judge, so it does not reuse the library's own walking code.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from pydicom import dcmread
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset

_WORD = {"US": "u2", "SS": "u2", "OW": "u2", "AT": "u2", "UL": "u4", "SL": "u4", "FL": "u4"}
_WORD |= {"OF": "u4", "OL": "u4", "FD": "u8", "OD": "u8", "SV": "u8", "UV": "u8", "OV": "u8"}
PIXEL_DATA = 0x7FE00010
#: Data Set Trailing Padding: no meaning, and any application may remove or change it
#: (PS3.10 7.2); DCMTK's storescp does not write it.
TRAILING_PADDING = 0xFFFCFFFC
#: Changed by decompression, on purpose (checked by `decompression_problems`).
DECOMPRESSION_CHANGES = frozenset(
    {0x00280004, 0x00280006, 0x00282110, 0x00282112, 0x00282114, PIXEL_DATA}
)


def read(path: Path) -> Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return dcmread(path, force=True)


def _little(dataset: Dataset) -> bool:
    meta = getattr(dataset, "file_meta", None)
    syntax = str(getattr(meta, "TransferSyntaxUID", "") or "")
    if syntax:
        return syntax != "1.2.840.10008.1.2.2"
    return bool(getattr(dataset, "original_encoding", (True, True))[1])


def _vr(raw: DataElement | RawDataElement, other: DataElement | RawDataElement) -> str:
    for element in (raw, other):
        if element.VR and element.VR not in ("UN",) and " or " not in element.VR:
            return str(element.VR)
    try:
        return str(dictionary_VR(raw.tag)).split(" or ")[0]
    except KeyError:
        return "UN"


def _encoded(element: DataElement, vr: str, little: bool) -> bytes:
    """The value bytes of an element pydicom has already converted (it converts some
    while reading, e.g. Pixel Representation), written back by pydicom's writer."""
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_data_element

    buffer = DicomBytesIO()
    buffer.is_little_endian = little
    buffer.is_implicit_VR = True  # header: tag and 4-byte length, then the value
    write_data_element(buffer, DataElement(element.tag, vr, element.value))
    return buffer.getvalue()[8:]


def _value_bytes(element: DataElement | RawDataElement, vr: str, little: bool) -> bytes:
    value = element.value
    if value is None or value == "":
        return b""  # an empty value: None or b"" raw, "" once converted
    if isinstance(element, DataElement) and not isinstance(value, bytes | bytearray):
        value = _encoded(element, vr, little)
    if not isinstance(value, bytes | bytearray):
        return repr(value).encode()
    data = bytes(value)
    if not little and vr in _WORD and element.VR != "UN":
        width = int(_WORD[vr][1])
        if len(data) % width == 0:
            data = np.frombuffer(data, dtype=">" + _WORD[vr]).astype("<" + _WORD[vr]).tobytes()
    return data


#: Text VRs whose leading spaces are padding too (PS3.5 Table 6.2-1); for the other
#: text VRs only trailing spaces (and NUL for UI) are.
_BOTH_ENDS = frozenset({"AE", "CS", "DS", "IS", "LO", "PN", "SH"})
_TEXT = _BOTH_ENDS | {"AS", "DA", "DT", "TM", "LT", "ST", "UT", "UC", "UR", "UI"}


def _unpadded(data: bytes, vr: str) -> bytes:
    """A text value without the padding PS3.5 6.2 says has no meaning, value by value."""
    values = data.split(b"\\") if vr not in ("LT", "ST", "UT") else [data]
    stripped = [v.strip(b" \x00") if vr in _BOTH_ENDS else v.rstrip(b" \x00") for v in values]
    return b"\\".join(stripped)


def _compare(
    a: Dataset,
    b: Dataset,
    la: bool,
    lb: bool,
    where: str,
    skip: frozenset[int],
    padding: bool = False,
) -> list[str]:
    problems: list[str] = []
    skip = skip | {TRAILING_PADDING}
    tags_a = {int(t) for t in a.keys() if t.element != 0 and int(t) not in skip}
    tags_b = {int(t) for t in b.keys() if t.element != 0 and int(t) not in skip}
    for tag in sorted(tags_a - tags_b):
        problems.append(
            f"{where}({tag >> 16:04X},{tag & 0xFFFF:04X}) missing from the received instance"
        )
    for tag in sorted(tags_b - tags_a):
        problems.append(
            f"{where}({tag >> 16:04X},{tag & 0xFFFF:04X}) added in the received instance"
        )
    for tag in sorted(tags_a & tags_b):
        name = f"{where}({tag >> 16:04X},{tag & 0xFFFF:04X})"
        if tag == PIXEL_DATA:
            continue
        ra, rb = a.get_item(tag), b.get_item(tag)
        vr = _vr(ra, rb)
        if vr == "SQ":
            sa, sb = a[tag].value, b[tag].value
            if len(sa) != len(sb):
                problems.append(f"{name}: {len(sa)} item(s) sent, {len(sb)} received")
                continue
            for index, (ia, ib) in enumerate(zip(sa, sb, strict=True)):
                problems += _compare(ia, ib, la, lb, f"{name}[{index}] > ", frozenset(), padding)
            continue
        va, vb = _value_bytes(ra, vr, la), _value_bytes(rb, vr, lb)
        if padding and vr in _TEXT:
            va, vb = _unpadded(va, vr), _unpadded(vb, vr)
        if va != vb:
            problems.append(f"{name}: {va[:40]!r} sent, {vb[:40]!r} received")
    return problems


def _pixels(dataset: Dataset) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return dataset.pixel_array


def differences(
    source: Path,
    received: Path,
    *,
    decompressed: bool = False,
    pixels: bool = True,
    padding: bool = False,
) -> list[str]:
    """What differs (see the module docstring); `pixels=False` leaves the pixel arrays
    out: a lossy source decompressed by another decoder may differ by rounding.
    `padding=True` compares text values without the padding that PS3.5 6.2 says has no
    meaning: for a copy that a DCMTK-based receiver wrote (storescp, Orthanc), which
    makes an odd-length value even and an all-space one empty."""
    a, b = read(source), read(received)
    skip = DECOMPRESSION_CHANGES if decompressed else frozenset({PIXEL_DATA})
    problems = _compare(a, b, _little(a), _little(b), "", skip, padding)
    if ("PixelData" in a) != ("PixelData" in b):
        problems.append("Pixel Data is in only one of the two")
    elif "PixelData" in a and pixels:
        try:
            pa = _pixels(a)
        except Exception as exc:  # pydicom cannot decode the source: compare the bytes
            if a.PixelData != b.PixelData:
                problems.append(f"Pixel Data differs (the source's cannot be decoded: {exc})")
        else:
            pb = _pixels(b)
            if pa.shape != pb.shape or not np.array_equal(pa, pb):
                problems.append("the pixel arrays differ")
    return problems


def decompression_problems(source: Path, received: Path, lossy: bool) -> list[str]:
    """What a decompressed copy must say of itself (PS3.3 C.7.6.1.1.5)."""
    a, b = read(source), read(received)
    problems: list[str] = []
    if a.get("LossyImageCompression") == "01":
        return problems  # marked before: kept as it was
    if lossy and b.get("LossyImageCompression") != "01":
        problems.append("a lossy source decompressed without Lossy Image Compression 01")
    if lossy and not b.get("LossyImageCompressionMethod"):
        problems.append("a lossy source decompressed without Lossy Image Compression Method")
    return problems
