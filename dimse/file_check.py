"""Checking a file before it is sent: can its data set be read exactly, and what is it?

A C-STORE must not send what the receiver could not read: a file cut short would
be acknowledged by some servers and abort the association with others, taking the
rest of a batch with it. So before a file is sent, `check_file`:

1. finds the data set: after the preamble, DICM and file meta group of PS3.10 7.1; or
   after a file meta group with no preamble; or, in a file with no meta at all (an
   old ACR-NEMA style file), from the first byte, its encoding told by its first
   element (PS3.5 7.1.2: an explicit VR is two upper-case letters);
2. walks the whole data set (`dimse.transfer.walk`): every length within the data,
   every sequence and item closed. A deflated data set is inflated first, with the
   cap of `dimse.datasets.inflate`;
3. takes the SOP Class and Instance UIDs from the data set itself, which is what a
   receiver compares with the command (PS3.4 B.2.3); where the file meta group says
   otherwise, a note in `Part10Info.notes` says so, for the caller to warn of.

Harmless mistakes are tolerated with a warning: a data set in Implicit VR whose file
meta says Explicit VR (or the reverse), as pydicom and DCMTK read it, is recoded
before it goes out; a missing Transfer Syntax UID is guessed from the bytes.
Anything else is a `NotDicomFile` whose message names the file, the element and
what is wrong, and nothing of the file is sent.

The cost is a read of the file (it is read again to send it, from the page cache)
and a few struct calls per element: no pydicom, so `dicomscu --store` still starts
without it. Files over `MAP_OVER` bytes are mapped rather than read.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from dimse.datasets import inflate
from dimse.errors import DimseError
from dimse.files import NotDicomFile, Part10Info, _parse_meta, mapped
from dimse.transfer.syntaxes import (
    EXPLICIT_VR_BIG_ENDIAN,
    EXPLICIT_VR_LITTLE_ENDIAN,
    IMPLICIT_VR_LITTLE_ENDIAN,
    TransferSyntax,
    lookup,
    name_of,
)
from dimse.transfer.vrs import ALL
from dimse.transfer.walk import MalformedDataSet, Shape, walk

#: Files up to this size are read whole at once; larger ones are mapped.
MAP_OVER = 256 << 10
#: What is read of a larger file before its data set is mapped: its file meta group.
_META_HEAD = 4096
#: Media Storage Directory Storage (PS3.10 7.3): a DICOMDIR, not an instance.
MEDIA_STORAGE_DIRECTORY = "1.2.840.10008.1.3.10"


class DicomDirectory(NotDicomFile):
    """A DICOMDIR: it describes the files of a medium and is no instance to store."""


def _meta_without_preamble(head: bytes) -> bool:
    """A file meta group at the very start (a preamble-less file, PS3.10 7.1 omitted)."""
    return len(head) >= 8 and head[0:2] == b"\x02\x00" and head[4:6] in (b"UL", b"OB", b"UI")


def _guess_syntax(data: bytes | memoryview) -> str | None:
    """The uncompressed encoding of a data set with no file meta, from its first
    element, which must be of group 0008 (Identifying, where every instance starts):
    little or big endian by how the group reads, explicit VR if two letters of a VR
    follow the tag. None when the bytes do not start a data set."""
    if len(data) < 8:
        return None
    explicit = bytes(data[4:6]) in ALL
    if bytes(data[0:2]) == b"\x08\x00":
        return EXPLICIT_VR_LITTLE_ENDIAN if explicit else IMPLICIT_VR_LITTLE_ENDIAN
    if bytes(data[0:2]) == b"\x00\x08" and explicit:
        return EXPLICIT_VR_BIG_ENDIAN
    return None


@contextlib.contextmanager
def _data_set(path: Path, size: int, head: bytes, offset: int) -> Iterator[bytes | memoryview]:
    """The data set's bytes: from what was read if that is all of it, else mapped."""
    if len(head) >= size:
        yield memoryview(head)[offset:]
        return
    with mapped(path, offset) as data:
        yield data


def _walk(data: bytes | memoryview, syntax: TransferSyntax) -> tuple[Shape, str]:
    """Walk in the syntax's encoding; failing that, for a little endian syntax, in the
    other VR form (files that say Explicit VR and hold Implicit, or the reverse).
    Returns the shape and '' or the syntax whose encoding the bytes really have."""
    if syntax.deflated:
        try:
            data = inflate(bytes(data))
        except DimseError as exc:
            raise MalformedDataSet("", str(exc)) from None
    try:
        return walk(data, implicit=syntax.implicit, little=syntax.little), ""
    except MalformedDataSet as first:
        if not syntax.little or syntax.deflated:
            raise
        try:
            shape = walk(data, implicit=not syntax.implicit, little=True)
        except MalformedDataSet:
            raise first from None
        other = EXPLICIT_VR_LITTLE_ENDIAN if syntax.implicit else IMPLICIT_VR_LITTLE_ENDIAN
        return shape, other


def check_file(path: str | os.PathLike[str]) -> Part10Info:
    """The facts needed to send a file, its data set checked to the end; raises
    `NotDicomFile` with the reason (the file, the element, what is wrong)."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        raise NotDicomFile(f"{path}: {exc.strerror or exc}") from exc
    try:
        size = os.fstat(fd).st_size
        # A small file is read whole at once; a large one, its meta, and mapped.
        head = os.read(fd, (size if size <= MAP_OVER else _META_HEAD) or 1)
        info = _check(path, fd, size, head)
    except OSError as exc:
        raise NotDicomFile(f"{path}: {exc.strerror or exc}") from exc
    finally:
        os.close(fd)
    return info


def _check(path: Path, fd: int, size: int, head: bytes) -> Part10Info:
    def read_on(n: int) -> bytes:
        return os.read(fd, n)

    meta: dict[str, str] = {}
    notes: list[str] = []
    if len(head) >= 132 and head[128:132] == b"DICM":
        meta, offset = _parse_meta(read_on, path, head, 132)
    elif _meta_without_preamble(head):
        meta, offset = _parse_meta(read_on, path, head, 0)
        notes.append(f"{path} has no preamble (PS3.10 7.1); read from its file meta group")
    else:
        offset = 0
    if offset > size:
        raise NotDicomFile(f"{path}: the file meta information runs past the end of the file")
    if meta.get("sop_class") == MEDIA_STORAGE_DIRECTORY:
        raise DicomDirectory(f"{path} is a DICOMDIR (a media directory, not an instance)")
    with _data_set(path, size, head, offset) as data:
        syntax_uid = meta.get("syntax") or _guess_syntax(data)
        if syntax_uid is None:
            if not meta:
                raise NotDicomFile(
                    f"{path}: no DICM prefix after a 128-byte preamble, and no data set at the start "
                    "(not a DICOM file)"
                )
            raise NotDicomFile(
                f"{path}: the file meta information has no Transfer Syntax UID (0002,0010), and the data set's encoding cannot be told"
            )
        syntax = lookup(syntax_uid)
        if syntax is None:
            raise NotDicomFile(
                f"{path}: transfer syntax {syntax_uid} is not one we know, so its data set "
                "cannot be checked or converted; not sent"
            )
        try:
            shape, encoding = _walk(data, syntax)
        except MalformedDataSet as exc:
            raise NotDicomFile(f"{path}: the data set cannot be read: {exc}") from None
    if not meta:
        notes.append(
            f"{path} has no file meta information (PS3.10 7.1); its data set reads as {syntax.name}"
        )
    elif "syntax" not in meta:
        notes.append(
            f"{path}: the file meta information has no Transfer Syntax UID (0002,0010); "
            f"the data set reads as {syntax.name}"
        )
    if encoding:
        notes.append(
            f"{path}: the file says {syntax.name}, but its data set is encoded as "
            f"{name_of(encoding)}; it is recoded before it is sent"
        )
    missing = [
        label
        for value, label in (
            (shape.sop_class_uid, "SOP Class UID (0008,0016)"),
            (shape.sop_instance_uid, "SOP Instance UID (0008,0018)"),
        )
        if not value
    ]
    if missing:
        raise NotDicomFile(
            f"{path}: the data set has no {' and no '.join(missing)}: not an instance to store"
        )
    for key, value, label in (
        ("sop_class", shape.sop_class_uid, "SOP Class UID"),
        ("sop_instance", shape.sop_instance_uid, "SOP Instance UID"),
    ):
        if meta.get(key, value) != value:
            notes.append(
                f"{path}: the file meta information says {label} {meta[key]}, the data set "
                f"{value}; the data set's is sent"
            )
    return Part10Info(
        path,
        shape.sop_class_uid,
        shape.sop_instance_uid,
        syntax.uid,
        offset,
        size,
        encoding,
        tuple(notes),
    )
