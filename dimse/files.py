"""DICOM files (PS3.10) as the store operation needs them: where the data set starts.

To send a file without loading it, we read only its preamble and file meta
information: the SOP Class and Instance UIDs, the transfer syntax, and the offset of
the first byte of the data set. When the transfer syntax is the one accepted, the
bytes from that offset on are sent as they are.

Writing goes the other way: `write_part10` puts a file meta group in front of data
set bytes received in some transfer syntax, so the instance is kept as received.
"""

from __future__ import annotations

import contextlib
import functools
import mmap
import os
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from dimse.transfer.vrs import LONG
from dul.negotiation import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME

if TYPE_CHECKING:
    from pydicom.dataset import Dataset


class NotDicomFile(ValueError):
    """The file is not a DICOM file we can send."""


@dataclass(frozen=True, slots=True)
class Part10Info:
    """Where a file's data set is and what it is. From `read_part10_info`, the UIDs are
    the file meta group's (for files this program wrote itself); from
    `dimse.file_check.check_file`, the data set's own, its structure checked.
    `encoding` is '' when the data set is encoded as `transfer_syntax` says, else the
    uncompressed syntax whose encoding it really has (a file that says Explicit VR
    but holds Implicit VR, which is then recoded before it is sent)."""

    path: Path
    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax: str
    dataset_offset: int
    size: int
    encoding: str = ""
    #: harmless mistakes found in the file (meta and data set disagree...), to warn of
    notes: tuple[str, ...] = ()

    @property
    def dataset_length(self) -> int:
        return self.size - self.dataset_offset


_WANTED = {0x0002: "sop_class", 0x0003: "sop_instance", 0x0010: "syntax"}
#: Enough for any real file meta group; a longer one is read on.
_HEAD = 4096
#: An Explicit VR Little Endian element header: tag, VR, and the 2-byte length of the
#: short VRs (for the long ones, 2 reserved bytes, then a 4-byte length).
_ELEMENT = struct.Struct("<HH2sH")
_LONG_LENGTH = struct.Struct("<I")


def _parse_meta(
    read: Callable[[int], bytes], path: Path, data: bytes | None = None, offset: int = 132
) -> tuple[dict[str, str], int]:
    """The UIDs of the file meta group (PS3.10 7.1: always Explicit VR Little Endian)
    and the offset of the data set after it, read by hand: this runs once per file
    sent, and pydicom's general reader costs ten times as much. `read(n)` gives up to
    n more bytes of the file (b"" at its end); `data`, the first bytes if the caller
    has read them; `offset`, where the group starts (132, after preamble and DICM)."""
    if data is None:
        data = read(_HEAD)
    if offset == 132 and (len(data) < 132 or data[128:132] != b"DICM"):
        raise NotDicomFile(
            f"{path}: no DICM prefix after the 128-byte preamble (not a DICOM Part 10 file)"
        )
    found: dict[str, str] = {}
    while True:
        if offset + 8 > len(data):
            more = read(_HEAD)
            if not more:
                return found, offset
            data += more
            continue
        group, element, vr, short_length = _ELEMENT.unpack_from(data, offset)
        if group != 0x0002:
            return found, offset
        if vr in LONG:
            if offset + 12 > len(data):
                more = read(_HEAD)
                if not more:
                    raise NotDicomFile(f"{path}: the file meta information is cut short")
                data += more
                continue
            (length,) = _LONG_LENGTH.unpack_from(data, offset + 8)
            start = offset + 12
        else:
            length = short_length
            start = offset + 8
        end = start + length
        name = _WANTED.get(element)
        if name is not None:
            while end > len(data):
                more = read(_HEAD)
                if not more:
                    raise NotDicomFile(f"{path}: the file meta information is cut short")
                data += more
            found[name] = data[start:end].decode("latin-1").rstrip("\x00 ")
        offset = end


def read_part10_info(path: str | os.PathLike[str]) -> Part10Info:
    """The facts needed to send a file; raises `NotDicomFile` with the reason."""
    path = Path(path)
    try:
        # A bare descriptor, not a file object: listing a thousand small files before
        # an association is started, the objects cost more than the reading.
        fd = os.open(path, os.O_RDONLY)
        try:
            found, offset = _parse_meta(functools.partial(os.read, fd), path)
            size = os.fstat(fd).st_size
        finally:
            os.close(fd)
    except OSError as exc:
        raise NotDicomFile(f"{path}: {exc.strerror or exc}") from exc
    missing = [
        label
        for key, label in (
            ("sop_class", "Media Storage SOP Class UID (0002,0002)"),
            ("sop_instance", "Media Storage SOP Instance UID (0002,0003)"),
            ("syntax", "Transfer Syntax UID (0002,0010)"),
        )
        if not found.get(key)
    ]
    if missing:
        raise NotDicomFile(f"{path}: the file meta information lacks {', '.join(missing)}")
    if offset > size:
        raise NotDicomFile(f"{path}: the file meta information runs past the end of the file")
    return Part10Info(
        path, found["sop_class"], found["sop_instance"], found["syntax"], offset, size
    )


@contextlib.contextmanager
def mapped(path: Path, offset: int) -> Iterator[memoryview]:
    """The bytes of `path` from `offset` on, mapped read-only."""
    with path.open("rb") as file:
        size = os.fstat(file.fileno()).st_size
        if size <= offset:
            yield memoryview(b"")
            return
        with mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as whole:
            view = memoryview(whole)
            part = view[offset:]
            try:
                yield part
            finally:  # the map closes only once no view of it is left
                part.release()
                view.release()


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
