"""Cutting a DIMSE message into PDVs, the P-DATA-TF PDUs that carry them
(PS3.8 Annex E, PS3.7 6.3.1). No sockets and no clocks here: bytes in, PDUs out. The
bytes of each PDU are laid out by `dul.pdata`; joining received PDVs back into
messages is `dimse.reassembly`'s.

A message is its command set, then (if the command says so) its data set. Each is
cut into fragments; each fragment travels in one PDV whose message control header
(PS3.8 E.2) says command (bit 0 set) or data set (clear), and last fragment (bit 1
set) or not. The command's fragments all go before the data set's.

The peer's Maximum Length L (PS3.8 D.1) is the largest PDU-length field of a
P-DATA-TF it accepts; a P-DATA-TF with one PDV then carries at most L - 6 data bytes
(4 for the PDV item-length, 1 for the context ID, 1 for the control header). L = 0
means no limit. Whatever L, we put at most `max_chunk` (1 MiB by default) data bytes
in one PDV: PS3.8 sets only an upper bound, and a bounded PDU keeps the memory used
by one send bounded too.

`fragment_message` yields whole encoded P-DATA-TF PDUs, header included, as `bytes`,
each meant for one write. `stream_runs` sends a data set from a file: it reads up to
1 MiB at a time and yields runs of PDUs as lists of buffers (headers, and views of
what was read) for one gathering write each: no copy of the data after the read, and
one system call per megabyte rather than one per PDU. When the whole message fits
in one PDU under L, it goes as one P-DATA-TF holding two PDVs (command, data set):
one write instead of two, as PS3.8 9.3.5 allows; otherwise each PDU holds one PDV.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from dul.fields import Buffer
from dul.pdata import (
    COMMAND,
    LAST,
    PDV_OVERHEAD,
    command_and_data_head,
    encode_command_and_data,
    encode_lone_pdv,
    lone_pdv_header,
)

#: Data bytes per PDV when the peer sets no limit, and the default cap in any case.
UNLIMITED_CHUNK = 1 << 20


def fragment_size(max_pdu_length: int, max_chunk: int = UNLIMITED_CHUNK) -> int:
    """The data bytes to put in one PDV for a peer whose Maximum Length is
    `max_pdu_length` (0: no limit). A limit under 7 leaves no room for data:
    ValueError, which the association layer should have refused earlier."""
    if max_chunk < 1:
        raise ValueError(f"max_chunk must be at least 1, not {max_chunk}")
    if max_pdu_length == 0:
        return max_chunk
    if not PDV_OVERHEAD < max_pdu_length <= 0xFFFFFFFF:
        raise ValueError(
            f"a maximum PDU length of {max_pdu_length} leaves no room for PDV data "
            "(PS3.8 D.1: one PDV needs 6 bytes plus its data)"
        )
    return min(max_pdu_length - PDV_OVERHEAD, max_chunk)


def _fragments(context_id: int, kind: int, data: bytes | memoryview, size: int) -> Iterator[bytes]:
    """One PDU per fragment of `data`; at least one (empty) fragment."""
    length = len(data)
    start = 0
    while True:
        stop = start + size
        if stop >= length:
            yield encode_lone_pdv(context_id, kind | LAST, data[start:])
            return
        yield encode_lone_pdv(context_id, kind, data[start:stop])
        start = stop


def fragment_message(
    context_id: int,
    command: bytes,
    dataset: bytes | bytearray | memoryview | None,
    max_pdu_length: int,
    *,
    max_chunk: int = UNLIMITED_CHUNK,
) -> Iterator[bytes]:
    """Yield the P-DATA-TF PDUs of one message: command fragments, then data set
    fragments. `dataset` None means no data set (then the command must say 0101H);
    an empty data set still goes as one empty last fragment. Each data byte is
    copied once, into the PDU that carries it."""
    size = fragment_size(max_pdu_length, max_chunk)
    if dataset is None:
        yield from _fragments(context_id, COMMAND, command, size)
        return
    data = memoryview(dataset)
    if data.format != "B" or data.ndim != 1:
        data = data.cast("B")
    if len(command) + len(data) + PDV_OVERHEAD <= size:
        yield encode_command_and_data(context_id, command, data)
        return
    yield from _fragments(context_id, COMMAND, command, size)
    yield from _fragments(context_id, 0, data, size)


class Readable(Protocol):
    """What `fragment_stream` needs of a file: an open binary file has it."""

    def readinto(self, buffer: memoryview, /) -> int | None: ...


def _read_exactly(stream: Readable, target: memoryview, done: int, total: int) -> None:
    """Fill `target` from `stream`; EOFError if the stream ends first."""
    filled = 0
    while filled < len(target):
        count = stream.readinto(target[filled:])
        if not count:
            raise EOFError(
                f"the data set stream ended after {done + filled} of the {total} bytes announced"
            )
        filled += count


#: Data bytes read from a file per run of PDUs (`stream_runs`): one read, one write.
RUN_BYTES = 1 << 20


def stream_runs(
    context_id: int,
    command: bytes,
    stream: Readable,
    length: int,
    max_pdu_length: int,
    *,
    max_chunk: int = UNLIMITED_CHUNK,
    run_bytes: int = RUN_BYTES,
) -> Iterator[list[Buffer]]:
    """Yield the P-DATA-TF PDUs of one message whose data set is the next `length`
    bytes of `stream` (an open binary file positioned at the data set's first byte),
    in runs: lists of buffers to write one after the other, each PDU as two of them
    (the bytes before its data, and the data). A run is meant for one gathering write
    (`socket.sendmsg`), so a 2 MiB data set cut into 16 KiB PDUs costs two system
    calls rather than 130, and the data is never copied after it is read.

    Up to `run_bytes` of the file are read at once, into one buffer that the next run
    reuses: a run's buffers are valid until the next run is asked for. EOFError if the
    stream holds fewer than `length` bytes: the message is then half-sent, and the
    association must be aborted.
    """
    if length < 0:
        raise ValueError(f"a data set length cannot be negative ({length})")
    size = fragment_size(max_pdu_length, max_chunk)
    if len(command) + length + PDV_OVERHEAD <= size:
        # The whole message in one P-DATA-TF holding two PDVs (PS3.8 9.3.5).
        data = bytearray(length)
        _read_exactly(stream, memoryview(data), 0, length)
        yield [command_and_data_head(context_id, command, length), data]
        return
    run: list[Buffer] = []
    for pdu in _fragments(context_id, COMMAND, command, size):
        run += (pdu, b"")
    fragments_per_run = max(1, run_bytes // size)
    buffer = bytearray(min(length, fragments_per_run * size))
    view = memoryview(buffer)
    done = 0
    while True:
        count = min(len(buffer), length - done)
        _read_exactly(stream, view[:count], done, length)
        for start in range(0, count, size):
            stop = min(start + size, count)
            last = done + stop == length
            run += (
                lone_pdv_header(context_id, LAST if last else 0, stop - start),
                view[start:stop],
            )
        if length == 0:  # an empty data set is still one (empty, last) fragment
            run += (lone_pdv_header(context_id, LAST, 0), b"")
        yield run
        done += count
        if done == length:
            return
        run = []


def fragment_stream(
    context_id: int,
    command: bytes,
    stream: Readable,
    length: int,
    max_pdu_length: int,
    *,
    max_chunk: int = UNLIMITED_CHUNK,
) -> Iterator[bytes]:
    """The PDUs of `stream_runs`, each joined into one `bytes` (for a writer that
    cannot gather, and for tests)."""
    for run in stream_runs(
        context_id, command, stream, length, max_pdu_length, max_chunk=max_chunk
    ):
        for index in range(0, len(run), 2):
            yield bytes(run[index]) + bytes(run[index + 1])
