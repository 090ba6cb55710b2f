"""DICOM files (PS3.10) as the store operation needs them: where the data set starts.

To send a file without loading it, we read only its preamble and file meta
information: the SOP Class and Instance UIDs, the transfer syntax, and the offset of
the first byte of the data set. When the transfer syntax is the one accepted, the
bytes from that offset on are sent as they are.

Writing goes the other way: `write_part10` puts a file meta group in front of data
set bytes received in some transfer syntax, so the instance is kept as received.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from pydicom.dataset import Dataset
from pydicom.filereader import read_file_meta_info

from dul.negotiation import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME


class NotDicomFile(ValueError):
    """The file is not a DICOM file we can send."""


@dataclass(frozen=True, slots=True)
class Part10Info:
    path: Path
    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax: str
    dataset_offset: int
    size: int

    @property
    def dataset_length(self) -> int:
        return self.size - self.dataset_offset


def _meta_end(fp: BinaryIO) -> int:
    """Offset just past the file meta group, read element by element (group 0002 is
    always Explicit VR Little Endian, PS3.10 7.1)."""
    fp.seek(132)
    while True:
        start = fp.tell()
        head = fp.read(8)
        if len(head) < 8:
            return start
        group, _element, vr = struct.unpack("<HH2s", head[:6])
        if group != 0x0002:
            return start
        if vr in (b"OB", b"OW", b"OF", b"SQ", b"UT", b"UN", b"UC", b"UR", b"OD", b"OL", b"OV"):
            extra = fp.read(4)
            if len(extra) < 4:
                return start
            length = struct.unpack("<I", extra)[0]
        else:
            length = struct.unpack("<H", head[6:8])[0]
        fp.seek(length, os.SEEK_CUR)


def read_part10_info(path: str | os.PathLike[str]) -> Part10Info:
    """The facts needed to send a file; raises `NotDicomFile` with the reason."""
    path = Path(path)
    try:
        with path.open("rb") as fp:
            preamble = fp.read(132)
            if len(preamble) < 132 or preamble[128:132] != b"DICM":
                raise NotDicomFile(
                    f"{path}: no DICM prefix after the 128-byte preamble (not a DICOM Part 10 file)"
                )
            meta = read_file_meta_info(path)
            offset = _meta_end(fp)
            size = os.fstat(fp.fileno()).st_size
    except OSError as exc:
        raise NotDicomFile(f"{path}: {exc.strerror or exc}") from exc
    except NotDicomFile:
        raise
    except Exception as exc:
        raise NotDicomFile(f"{path}: the file meta information cannot be read: {exc}") from exc
    try:
        sop_class = str(meta.MediaStorageSOPClassUID)
        sop_instance = str(meta.MediaStorageSOPInstanceUID)
        syntax = str(meta.TransferSyntaxUID)
    except AttributeError as exc:
        raise NotDicomFile(f"{path}: the file meta information lacks {exc.name or exc}") from exc
    return Part10Info(path, sop_class, sop_instance, syntax, offset, size)


def _meta_element(element: int, vr: bytes, value: bytes) -> bytes:
    if vr == b"OB":
        return struct.pack("<HH2sHI", 0x0002, element, vr, 0, len(value)) + value
    return struct.pack("<HH2sH", 0x0002, element, vr, len(value)) + value


def _ui(text: str) -> bytes:
    data = text.encode("ascii", "replace")
    return data + b"\x00" if len(data) % 2 else data


def part10_bytes_header(sop_class_uid: str, sop_instance_uid: str, transfer_syntax: str) -> bytes:
    """Preamble, DICM and a file meta group (PS3.10 7.1) for a data set in
    `transfer_syntax`, written by hand: it is on the path of every stored instance."""
    version = _IMPLEMENTATION_VERSION
    body = b"".join(
        (
            _meta_element(0x0001, b"OB", b"\x00\x01"),
            _meta_element(0x0002, b"UI", _ui(sop_class_uid)),
            _meta_element(0x0003, b"UI", _ui(sop_instance_uid)),
            _meta_element(0x0010, b"UI", _ui(transfer_syntax)),
            _meta_element(0x0012, b"UI", _ui(IMPLEMENTATION_CLASS_UID)),
            _meta_element(0x0013, b"SH", version),
        )
    )
    group_length = _meta_element(0x0000, b"UL", struct.pack("<I", len(body)))
    return _PREAMBLE + group_length + body


_PREAMBLE = b"\x00" * 128 + b"DICM"
_IMPLEMENTATION_VERSION = (
    IMPLEMENTATION_VERSION_NAME + (" " if len(IMPLEMENTATION_VERSION_NAME) % 2 else "")
).encode("ascii")


def sop_uids(dataset: Dataset) -> tuple[str, str]:
    """(SOP Class UID, SOP Instance UID) of a data set, '' where absent."""
    return str(dataset.get("SOPClassUID", "") or ""), str(dataset.get("SOPInstanceUID", "") or "")
