"""Reading a stored instance's attributes without reading the whole file.

On commit the archive reads each new instance once, up to the last attribute the index
keeps (`dimse.archive.query_keys.INDEXED`): stopping there skips the pixel data and, in
enhanced multi-frame objects, the functional group sequences that can be most of the
file. A C-FIND that asks for an attribute the index does not keep reads just that
attribute from a stored instance (`read_attributes`).

`read_texts` gives the indexed attributes as text: read by hand (dimse/archive/header_scan.py)
when the scanner covers the instance, else by pydicom (`read_header`), with the same
results.

Any failure to read becomes `UnreadableInstance`: nothing a peer sent may escape as
another exception. A deflated data set is inflated with the cap of
`dimse.datasets.inflate`, never by pydicom's unbounded reader (ROBUSTNESS 27).
"""

from __future__ import annotations

import functools
import io
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import BinaryIO

from pydicom import dcmread
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.filereader import read_dataset
from pydicom.tag import BaseTag
from pydicom.uid import UID

from dimse.archive import header_scan
from dimse.archive.conditions import texts
from dimse.archive.query_keys import COLUMNS_BY_TAG
from dimse.datasets import (
    DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN,
    EXPLICIT_VR_BIG_ENDIAN,
    IMPLICIT_VR_LITTLE_ENDIAN,
    inflate,
)
from dimse.errors import DimseError
from dimse.files import NotDicomFile, read_part10_info

#: Values longer than this are not read into memory unless asked for.
DEFER_SIZE = 64 << 10
_LAST_INDEXED_TAG = max(COLUMNS_BY_TAG)
_SPECIFIC_CHARACTER_SET = 0x00080005


#: Character sets whose single-byte G0 is not ASCII (JIS X 0201: 5CH is the yen sign).
_NOT_ASCII_G0 = ("ISO_IR 13", "ISO 2022 IR 13")
#: VRs whose values are not text.
_BINARY_VRS = frozenset(
    {
        "US",
        "SS",
        "UL",
        "SL",
        "UV",
        "SV",
        "FL",
        "FD",
        "AT",
        "OB",
        "OW",
        "OF",
        "OD",
        "OL",
        "OV",
        "UN",
        "SQ",
    }
)


class UnreadableInstance(Exception):
    """The file does not hold a data set we can read."""


def _past_index(tag: BaseTag, vr: str | None, length: int) -> bool:
    return bool(tag > _LAST_INDEXED_TAG)


@functools.lru_cache(maxsize=64)  # pydicom's UID costs more than the scan of a small header
def _is_deflated(transfer_syntax: str) -> bool:
    if transfer_syntax == DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN:
        return True
    try:
        return bool(UID(transfer_syntax).is_deflated)
    except ValueError:  # not a transfer syntax pydicom knows: read as explicit VR LE
        return False


def _layout(path: Path, layout: tuple[int, str] | None) -> tuple[int, str]:
    if layout is None:
        try:
            info = read_part10_info(path)
        except NotDicomFile as exc:
            raise UnreadableInstance(str(exc)) from None
        layout = (info.dataset_offset, info.transfer_syntax)
    return layout[0], layout[1].rstrip("\x00 ")


def read_header(path: Path, layout: tuple[int, str] | None = None) -> tuple[Dataset, str]:
    """(the data set up to the last indexed attribute, its transfer syntax UID) of a
    Part 10 file. `layout` is (offset of the data set, transfer syntax) when the caller
    wrote the file meta group itself and need not have it read back."""
    offset, syntax = _layout(path, layout)
    implicit = syntax == IMPLICIT_VR_LITTLE_ENDIAN
    little = syntax != EXPLICIT_VR_BIG_ENDIAN
    try:
        with path.open("rb") as fp:
            fp.seek(offset)
            stream: BinaryIO = fp
            if _is_deflated(syntax):
                stream = io.BytesIO(inflate(fp.read()))
            dataset = read_dataset(
                stream, implicit, little, stop_when=_past_index, defer_size=DEFER_SIZE
            )
    except DimseError as exc:
        raise UnreadableInstance(f"{path.name}: {exc}") from None
    except Exception as exc:  # pydicom raises many kinds for bad bytes; RecursionError too
        raise UnreadableInstance(f"{path.name}: the data set cannot be read: {exc}") from None
    return dataset, syntax


#: Bytes of the data set read first by the scanner; all of it if the attributes run on.
SCAN_FIRST = 64 << 10
#: Larger data sets whose indexed attributes are not in the first bytes go to pydicom.
_SCAN_MOST = 16 << 20
_WANTED = frozenset(COLUMNS_BY_TAG) | {_SPECIFIC_CHARACTER_SET}

TextsOf = Callable[[int, str], list[str]]


def _scanned(path: Path, offset: int, syntax: str, head: bytes | None) -> TextsOf | None:
    """The scanner's reading of the file (None where it does not cover it). `head`:
    the data set's first bytes, when the caller has them (all of it if shorter than
    `SCAN_FIRST`): then the file is read only if the attributes run on past them."""
    if syntax == EXPLICIT_VR_BIG_ENDIAN or _is_deflated(syntax):
        return None  # both retired or rare: pydicom reads them
    implicit = syntax == IMPLICIT_VR_LITTLE_ENDIAN
    scan = functools.partial(
        header_scan.scan, implicit=implicit, wanted=_WANTED, last=_LAST_INDEXED_TAG
    )
    try:
        try:
            if head is None:
                raise header_scan.Short
            found = scan(head, whole=len(head) < SCAN_FIRST)
        except header_scan.Short:
            with path.open("rb", buffering=0) as fp:
                fp.seek(offset)
                data = fp.read(SCAN_FIRST + _SCAN_MOST)
            found = scan(data, whole=len(data) < SCAN_FIRST + _SCAN_MOST)
        ascii_ok = header_scan.ascii_allowed(found)
        cache = {
            tag: header_scan.texts(element, COLUMNS_BY_TAG[tag].vr, ascii_ok)
            for tag, element in found.items()
            if tag != _SPECIFIC_CHARACTER_SET
        }
    except (header_scan.Unsupported, header_scan.Short, OSError):
        return None
    absent: list[str] = []
    return lambda tag, vr: cache.get(tag, absent)


def read_texts(
    path: Path, layout: tuple[int, str] | None = None, head: bytes | None = None
) -> tuple[TextsOf, str]:
    """(a function giving the values of an indexed attribute as text by tag and VR,
    the transfer syntax UID) of a Part 10 file; `layout` as for `read_header`; `head`:
    the first `SCAN_FIRST` bytes of its data set (or all of it), if the caller kept
    them as it wrote the file, so that a small instance is not read back."""
    layout = _layout(path, layout)
    texts_of = _scanned(path, layout[0], layout[1], head)
    if texts_of is not None:
        return texts_of, layout[1]
    header, syntax = read_header(path, layout)
    ascii_ok = ascii_text_allowed(header)
    return (lambda tag, vr: attribute_texts(header, tag, vr, ascii_ok)), syntax


def read_attributes(path: Path, tags: Iterable[int]) -> Dataset:
    """Just the attributes `tags` (and the Specific Character Set that decodes them) of
    a stored instance."""
    wanted = sorted({*tags, _SPECIFIC_CHARACTER_SET})
    try:
        return dcmread(path, stop_before_pixels=True, defer_size=DEFER_SIZE, specific_tags=wanted)
    except Exception as exc:  # a file changed or damaged behind our back
        raise UnreadableInstance(f"{path}: {exc}") from None


def ascii_text_allowed(dataset: Dataset) -> bool:
    """Whether text bytes of `dataset` that are all ASCII (and hold no ISO 2022 escape)
    mean those ASCII characters whatever its Specific Character Set."""
    raw: DataElement | RawDataElement | None = dataset.get_item(_SPECIFIC_CHARACTER_SET)
    if raw is None:
        return True
    if isinstance(raw, RawDataElement):
        terms = (raw.value or b"").decode("ascii", "replace").split("\\")
    else:
        terms = texts(raw.value)
    return not any(term.strip() in _NOT_ASCII_G0 for term in terms)


def attribute_texts(dataset: Dataset, tag: int, vr: str, ascii_allowed: bool) -> list[str]:
    """The values of one attribute as text, one per value ([] when empty).

    Plain ASCII text is decoded here from the raw bytes: pydicom's general conversion
    is most of the cost of indexing an instance. Anything else (other characters,
    escape sequences, numbers in binary) goes through pydicom, which applies the
    Specific Character Set."""
    raw: DataElement | RawDataElement | None = dataset.get_item(tag)
    if raw is None:
        return []
    # only when the bytes are of the VR we expect (or implicit VR): anything else is
    # pydicom's to convert, or to refuse
    if (
        ascii_allowed
        and isinstance(raw, RawDataElement)
        and vr not in _BINARY_VRS
        and raw.VR in (None, vr, "UN")
    ):
        data = raw.value
        if isinstance(data, bytes) and data.isascii() and b"\x1b" not in data:
            text = data.decode("ascii")
            return text.split("\\") if text.strip(" \x00") else []
    return texts(dataset[tag].value)
