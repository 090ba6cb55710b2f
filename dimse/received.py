"""Checking a received instance before it is acknowledged (PS3.4 B.2.3).

A storage SCP answers success only for what it can give back exactly. Before
anything is renamed into place (so an invalid instance never replaces a stored one),
the data set that arrived is checked:

- it must parse to its end in the transfer syntax of its presentation context
  (`dimse.transfer.walk`: every length within the data, every sequence and item
  closed; a deflated one is inflated with the cap of `dimse.datasets.inflate`);
  otherwise C000H, Cannot understand;
- its own SOP Class and Instance UIDs must be those of the C-STORE-RQ's Affected
  SOP Class and Instance UIDs (PS3.4 B.2.3); otherwise A900H, Data Set does not match
  SOP Class.

A `Refusal` carries the status, the reason for the log, and an Error Comment of at
most 64 characters (LO, PS3.7 C.4) for the C-STORE response.

The check reads a small data set from memory (the bytes the receiver kept as they
came) and maps a large one from its temporary file: a walk over the element headers,
no decoding.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dimse.datasets import inflate
from dimse.errors import DimseError
from dimse.files import mapped
from dimse.status import StoreStatus
from dimse.transfer.syntaxes import lookup, name_of
from dimse.transfer.walk import MalformedDataSet, tag_text, walk

#: Error Comment (0000,0902) is LO: 64 characters at most.
COMMENT_LENGTH = 64


@dataclass(frozen=True, slots=True)
class Refusal:
    status: StoreStatus
    reason: str  # for the log: whole
    comment: str  # for the peer: 64 characters at most


def fit(text: str, limit: int = COMMENT_LENGTH) -> str:
    """`text` cut to `limit` characters, an ellipsis marking the cut."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check_data_set(
    data: bytes | bytearray | memoryview, transfer_syntax: str, sop_class: str, sop_instance: str
) -> Refusal | None:
    """None when `data` is a whole data set in `transfer_syntax` of the SOP Class and
    Instance UIDs given (the command's); else why it is refused."""
    syntax = lookup(transfer_syntax)
    if syntax is None:
        why = f"transfer syntax {transfer_syntax} is not one we can check"
        return Refusal(StoreStatus.CANNOT_UNDERSTAND, why, fit(why))
    try:
        if syntax.deflated:
            data = inflate(bytes(data))
        shape = walk(data, implicit=syntax.implicit, little=syntax.little)
    except (MalformedDataSet, DimseError) as exc:
        reason = f"the data set cannot be read as {name_of(transfer_syntax)}: {exc}"
        where = getattr(exc, "where", "")
        comment = f"{where.split(' ')[0]} {getattr(exc, 'why', exc)}" if where else str(exc)
        return Refusal(StoreStatus.CANNOT_UNDERSTAND, reason, fit(comment))
    for label, tag, found, expected in (
        ("SOP Class UID", 0x00080016, shape.sop_class_uid, sop_class.strip("\x00 ")),
        ("SOP Instance UID", 0x00080018, shape.sop_instance_uid, sop_instance.strip("\x00 ")),
    ):
        if found != expected:
            reason = (
                f"the data set's {label} {tag_text(tag)} is {found or '(absent)'!r}, "
                f"the command's Affected {label} {expected!r}"
            )
            comment = f"{tag_text(tag)} {label} is not the command's"
            return Refusal(StoreStatus.DATA_SET_DOES_NOT_MATCH_SOP_CLASS, reason, comment)
    return None


def check_file_data_set(
    path: Path, offset: int, transfer_syntax: str, sop_class: str, sop_instance: str
) -> Refusal | None:
    """`check_data_set` over the data set that starts at `offset` in `path`."""
    try:
        with mapped(path, offset) as data:
            return check_data_set(data, transfer_syntax, sop_class, sop_instance)
    except OSError as exc:
        why = f"the received data cannot be read back: {exc.strerror or exc}"
        return Refusal(StoreStatus.PROCESSING_FAILURE, why, fit(why))
