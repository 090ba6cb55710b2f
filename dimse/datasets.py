"""Data sets on the wire: pydicom Datasets to and from the bytes of a transfer syntax.

A data set travels in the transfer syntax accepted for its presentation context
(PS3.7 6.3.1; PS3.5 Annex A): Implicit or Explicit VR, little or big endian, and for
Deflated Explicit VR Little Endian a raw deflate stream. Encapsulated (compressed)
syntaxes encode the data set itself as Explicit VR Little Endian.

Decoding never lets the peer's bytes escape as an arbitrary exception: anything
pydicom cannot read, a data set nested too deep, or a deflate stream that would
inflate past `MAX_INFLATED` becomes a `DimseError` with status C000H.

pydicom is imported by the functions that encode or decode, not at import: the
constants here are all that `dicomscu --store` and C-ECHO need.
"""

from __future__ import annotations

import io
import struct
import zlib
from typing import TYPE_CHECKING, BinaryIO

from dimse.errors import DimseError
from dimse.status import UNREADABLE

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

IMPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2"
EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"
DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1.99"
EXPLICIT_VR_BIG_ENDIAN = "1.2.840.10008.1.2.2"

#: The uncompressed syntaxes, in the order we prefer them.
UNCOMPRESSED = (EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN, EXPLICIT_VR_BIG_ENDIAN)

#: The compressed syntaxes an archive meets most (PS3.5 A.4, A.6, A.8).
COMPRESSED = (
    "1.2.840.10008.1.2.4.50",  # JPEG Baseline (Process 1)
    "1.2.840.10008.1.2.4.51",  # JPEG Extended (Process 2 & 4)
    "1.2.840.10008.1.2.4.57",  # JPEG Lossless, Non-Hierarchical (Process 14)
    "1.2.840.10008.1.2.4.70",  # JPEG Lossless, First-Order Prediction
    "1.2.840.10008.1.2.4.80",  # JPEG-LS Lossless
    "1.2.840.10008.1.2.4.81",  # JPEG-LS Lossy (Near-Lossless)
    "1.2.840.10008.1.2.4.90",  # JPEG 2000 (Lossless Only)
    "1.2.840.10008.1.2.4.91",  # JPEG 2000
    "1.2.840.10008.1.2.5",  # RLE Lossless
    DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN,
)

#: A deflated data set may not inflate beyond this (a zlib bomb is refused,
#: ROBUSTNESS 27). A setting: read at each call, so a site (or a test) may lower it.
MAX_INFLATED = 256 << 20

#: Sequences nested deeper than this are refused (no RecursionError).
MAX_DEPTH = 64


def _layout(transfer_syntax: str) -> tuple[bool, bool, bool]:
    """(implicit VR, little endian, deflated) for a transfer syntax UID."""
    from pydicom.uid import UID

    uid = UID(transfer_syntax)
    if uid == IMPLICIT_VR_LITTLE_ENDIAN:
        return True, True, False
    if uid == EXPLICIT_VR_BIG_ENDIAN:
        return False, False, False
    return False, True, uid == DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN or uid.is_deflated


#: VRs whose value is text, and which of them have a 4-byte length in Explicit VR.
_TEXT_VRS = frozenset(
    (
        "AE",
        "AS",
        "CS",
        "DA",
        "DS",
        "DT",
        "IS",
        "LO",
        "LT",
        "PN",
        "SH",
        "ST",
        "TM",
        "UI",
        "UC",
        "UR",
        "UT",
    )
)
_LONG_TEXT_VRS = frozenset(("UC", "UR", "UT"))
_IMPLICIT_HEADER = struct.Struct("<HHI")
_EXPLICIT_HEADER = struct.Struct("<HH2sH")
_EXPLICIT_LONG_HEADER = struct.Struct("<HH2sHI")


def _encode_text_only(dataset: Dataset, implicit: bool) -> bytes | None:
    """The little-endian encoding of a data set of plain ASCII text elements (a C-FIND
    response, most often), written directly: pydicom's general writer costs ten
    times as much per response. None when the data set has anything else."""
    from pydicom.multival import MultiValue
    from pydicom.valuerep import IS, DSdecimal, DSfloat, PersonName

    number_types = (IS, DSfloat, DSdecimal)
    text_types = (str, PersonName, *number_types)
    parts: list[bytes] = []
    for element in dataset:
        vr = element.VR
        if vr not in _TEXT_VRS:
            return None
        value = element.value
        values = (
            value if isinstance(value, (list, MultiValue)) else [] if value is None else [value]
        )
        if not all(isinstance(v, text_types) for v in values):
            return None  # bytes, sequences, dates as objects...: the general writer
        # Numbers as text (IS, DS) keep the string they were read from, as pydicom does.
        text = "\\".join(
            v.original_string
            if isinstance(v, number_types) and getattr(v, "original_string", None)
            else str(v)
            for v in values
        )
        try:
            data = text.encode("ascii")
        except UnicodeEncodeError:
            return None  # a character set to apply: the general writer
        if len(data) % 2:
            data += b"\x00" if vr == "UI" else b" "
        tag = element.tag
        if implicit:
            parts.append(_IMPLICIT_HEADER.pack(tag >> 16, tag & 0xFFFF, len(data)))
        elif vr in _LONG_TEXT_VRS:
            parts.append(
                _EXPLICIT_LONG_HEADER.pack(tag >> 16, tag & 0xFFFF, vr.encode(), 0, len(data))
            )
        elif len(data) > 0xFFFF:
            return None
        else:
            parts.append(_EXPLICIT_HEADER.pack(tag >> 16, tag & 0xFFFF, vr.encode(), len(data)))
        parts.append(data)
    return b"".join(parts)


def encode_dataset(dataset: Dataset, transfer_syntax: str) -> bytes:
    """The bytes of `dataset` in `transfer_syntax` (no preamble, no file meta)."""
    implicit, little, deflated = _layout(transfer_syntax)
    if little and not deflated:
        fast = _encode_text_only(dataset, implicit)
        if fast is not None:
            return fast
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset

    buffer = DicomBytesIO()
    buffer.is_little_endian = little
    buffer.is_implicit_VR = implicit
    write_dataset(buffer, dataset)
    data = buffer.getvalue()
    if deflated:
        compressor = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -zlib.MAX_WBITS)
        data = compressor.compress(data) + compressor.flush()
        if len(data) % 2:  # even, as DCMTK wants every fragment; inflating ignores it
            data += b"\x00"
    return data


def inflate(data: bytes, limit: int | None = None) -> bytes:
    """Raw-inflate a deflated data set, refusing to produce more than `limit` bytes
    (default: `MAX_INFLATED` as it is when called)."""
    if limit is None:
        limit = MAX_INFLATED
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error as exc:
        raise DimseError(
            f"the deflated data set is not a valid deflate stream: {exc}", status=UNREADABLE
        ) from None
    if len(out) > limit:
        raise DimseError(
            f"the deflated data set inflates past {limit} bytes; refused", status=UNREADABLE
        )
    return out


def _check_depth(dataset: Dataset, depth: int) -> None:
    """Touch every element (pydicom parses lazily) and bound the nesting."""
    from pydicom.sequence import Sequence

    if depth > MAX_DEPTH:
        raise DimseError(f"the data set nests sequences deeper than {MAX_DEPTH}", status=UNREADABLE)
    for element in dataset:
        value = element.value
        if isinstance(value, Sequence):
            for item in value:
                _check_depth(item, depth + 1)


def decode_dataset(data: bytes | BinaryIO, transfer_syntax: str) -> Dataset:
    """A Dataset from the bytes of a data set in `transfer_syntax`.

    The structure is walked first (`dimse.transfer.walk`): pydicom reads a value cut
    short as far as it goes, or guesses past a bad length, and a query answered from
    that would be answered wrong. Raises only `DimseError` (status C000H) for bytes
    that are not a whole data set, naming the element.
    """
    from pydicom.filereader import read_dataset

    from dimse.transfer.walk import MalformedDataSet, walk

    implicit, little, deflated = _layout(transfer_syntax)
    raw = data if isinstance(data, bytes) else data.read()
    if deflated:
        raw = inflate(raw)
    try:
        walk(raw, implicit=implicit, little=little)
    except MalformedDataSet as exc:
        raise DimseError(f"the data set cannot be read: {exc}", status=UNREADABLE) from None
    stream: BinaryIO = io.BytesIO(raw)
    try:
        dataset = read_dataset(stream, implicit, little)
        _check_depth(dataset, 0)
    except DimseError:
        raise
    except RecursionError:
        raise DimseError("the data set nests too deep to be read", status=UNREADABLE) from None
    except Exception as exc:  # pydicom raises many kinds; none may reach the peer's handler
        raise DimseError(f"the data set cannot be read: {exc}", status=UNREADABLE) from None
    return dataset
