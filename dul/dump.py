"""The PDU dump (`dicomscu --dump-pdus FILE`): its format, one record's encoding (for
the writer, `dul.drivers.recorder`), its reader, and the dump in words, each PDU as
`dul.explain` says it in the live log (`run`: `python -m dul.explain FILE`, and
`python -m dimse.explain FILE`, which adds the DIMSE messages).

The file is binary:

    magic      15 bytes   b"DUL-PDU-DUMP 1\\n"
    records, each:
      kind          1 byte   b"A" an association starts (data: UTF-8 text, e.g.
                             "requestor, peer 127.0.0.1:104"), b"S" a PDU we sent,
                             b"R" a PDU we received, b"X" received bytes that never
                             made a whole PDU (the connection ended in its middle),
                             b"E" the association's connection closed (data: UTF-8,
                             why, may be empty)
      association   2 bytes  big endian: 1, 2, ... in the order they started
      time          8 bytes  big-endian IEEE double: seconds since the dump began
      length        4 bytes  big endian: the bytes of data that follow
      data          `length` bytes: for S and R one whole PDU, header included

A dump holds the PDUs as they went: a passcode sent in the A-ASSOCIATE-RQ is in it,
readable by whoever can read the file (the explanation of it never prints it). It
holds the associations `dul.drivers.sockets.request_association` opens (dicomscu's), not
those a server accepts (the C-MOVE destination of `dicomscu --move --port-scp`).
"""

from __future__ import annotations

import argparse
import struct
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import BinaryIO, NamedTuple

from dul.explain import INDENT, UidName, explain_bytes, plural
from dul.fields import Buffer
from dul.pdu import A_ASSOCIATE_RQ, Pdu

MAGIC = b"DUL-PDU-DUMP 1\n"
RECORD = struct.Struct(">cHdI")

STARTED, SENT, RECEIVED, PARTIAL, ENDED = b"A", b"S", b"R", b"X", b"E"
_KINDS = frozenset({STARTED, SENT, RECEIVED, PARTIAL, ENDED})


class Record(NamedTuple):
    """One record of a PDU dump."""

    kind: bytes
    association: int
    time: float
    data: bytes


class DumpError(ValueError):
    """A file that is not a PDU dump, or one cut short."""


def encode_record(kind: bytes, association: int, time: float, data: Buffer) -> bytes:
    """One record of the dump format (the module notes), header and data."""
    return RECORD.pack(kind, association & 0xFFFF, time, len(data)) + bytes(data)


def read_dump(stream: BinaryIO) -> Iterator[Record]:
    """The records of a dump, in order. DumpError for a file that is not one, or
    that ends in the middle of a record."""
    if stream.read(len(MAGIC)) != MAGIC:
        raise DumpError(f"not a PDU dump: it does not start with {MAGIC!r}")
    while True:
        header = stream.read(RECORD.size)
        if not header:
            return
        if len(header) < RECORD.size:
            raise DumpError("the dump ends in the middle of a record header")
        kind, association, time, length = RECORD.unpack(header)
        if kind not in _KINDS:
            raise DumpError(f"unknown record kind {kind!r}")
        data = stream.read(length)
        if len(data) < length:
            raise DumpError(f"the dump ends in the middle of a record of {length} bytes")
        yield Record(kind, association, time, data)


# --------------------------------------------------------------------------------------
# The dump in words

#: The PDU just explained, for a caller that says more about it (the DIMSE layer).
MoreLines = Callable[[Record, Pdu], Sequence[str]]


def explain_dump(
    records: Iterable[Record],
    *,
    uid_name: UidName | None = None,
    more: MoreLines | None = None,
) -> Iterator[str]:
    """The dump in words, a record at a time, as the live log says it: each PDU with
    its direction, association and time; `more(record, pdu)` may add lines after a
    PDU (the DIMSE messages a P-DATA-TF completes)."""
    requests: dict[int, A_ASSOCIATE_RQ] = {}
    for record in records:
        stamp = f"[{record.association}] +{record.time:.6f} s"
        if record.kind == STARTED:
            text = record.data.decode("utf-8", "replace")
            yield f"{stamp} association {record.association} starts: {text}"
            continue
        if record.kind == ENDED:
            why = record.data.decode("utf-8", "replace")
            yield f"{stamp} connection closed" + (f": {why}" if why else "")
            continue
        if record.kind == PARTIAL:
            yield (
                f"{stamp} received {plural(len(record.data), 'byte')} that never made a "
                "whole PDU (the connection ended)"
            )
            continue
        verb = "sent" if record.kind == SENT else "received"
        pdu, lines = explain_bytes(
            record.data, uid_name=uid_name, request=requests.get(record.association)
        )
        if isinstance(pdu, A_ASSOCIATE_RQ):
            requests[record.association] = pdu
        yield f"{stamp} {verb} {lines[0]}"
        for line in lines[1:]:
            yield INDENT + line
        if pdu is not None and more is not None:
            for line in more(record, pdu):
                yield INDENT + line


def run(
    argv: Sequence[str] | None,
    *,
    prog: str,
    uid_name: UidName | None = None,
    more: MoreLines | None = None,
) -> int:
    """The command `prog FILE`: print the dump FILE in words. 0, or 1 with a
    sentence on stderr when FILE cannot be read or is not a dump."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Print a PDU dump (dicomscu --dump-pdus FILE) in the words of PS3.8.",
    )
    parser.add_argument("file", metavar="FILE", help="the dump written by --dump-pdus")
    args = parser.parse_args(None if argv is None else list(argv))
    try:
        with open(args.file, "rb") as stream:
            for line in explain_dump(read_dump(stream), uid_name=uid_name, more=more):
                print(line)
    except BrokenPipeError:  # `| head`
        return 0
    except (OSError, DumpError) as exc:
        print(f"{prog}: error: {args.file}: {exc}", file=sys.stderr)
        return 1
    return 0
