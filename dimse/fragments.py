"""Cutting a DIMSE message into PDVs, and joining received PDVs back (PS3.8 Annex E,
PS3.7 6.3.1). No sockets and no clocks here: bytes in, PDUs or messages out.

Sending. A message is its command set, then (if the command says so) its data set.
Each is cut into fragments; each fragment travels in one PDV whose message control
header (PS3.8 E.2) says command (bit 0 set) or data set (clear), and last fragment
(bit 1 set) or not. The command's fragments all go before the data set's.

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

Receiving. `Reassembler` is fed the PDVs of each received P-DATA-TF and gives back
whole messages. The rules it enforces, each a `DimseError` that ends in an A-ABORT
(ROBUSTNESS.md 18-21, 24):

- a P-DATA-TF without PDV; a PDV on a presentation context not accepted;
- a PDV on another context than the message it continues (PS3.7 6.3.1: the
  fragments of one message are not interleaved with others');
- a data set fragment when no command is complete before it, or after a command
  that says no data set follows (CommandDataSetType 0101H);
- a command fragment before the last fragment of a data set that was announced;
- a command set longer than `max_command_length` (64 KiB by default), refused
  before it is kept; a command set that `decode_command` refuses.

A command that announces a data set which has not come yet is simply pending.
"""

from __future__ import annotations

import contextlib
import struct
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from typing import BinaryIO, NoReturn, Protocol

from dimse.commands import Command, decode_command
from dimse.errors import DimseError
from dul.items import Buffer
from dul.pdu import P_DATA_TF, PresentationDataValue, encode_pdata_header, encode_pdv_header

#: Data bytes per PDV when the peer sets no limit, and the default cap in any case.
UNLIMITED_CHUNK = 1 << 20
#: Bytes of a PDV item before its data: item-length (4), context ID (1), control (1).
PDV_OVERHEAD = 6
#: The largest command set we accept (a real one is under 300 bytes).
DEFAULT_MAX_COMMAND_LENGTH = 64 * 1024
#: Data set bytes kept in memory before the rest is spooled to a temporary file.
DEFAULT_SPOOL_THRESHOLD = 4 * 1024 * 1024
#: The longest identifier kept (a query's or a response's data set): 1 MiB holds a
#: C-MOVE of 10,000 SOP Instance UIDs; a query has no business being larger.
DEFAULT_MAX_IDENTIFIER = 1 << 20
_C_STORE_RQ = 0x0001

COMMAND = 0x01  #: message control header bit 0: command information
LAST = 0x02  #: message control header bit 1: last fragment

_PDATA_AND_PDV_HEADER = 12


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


def _pdu(context_id: int, control: int, data: bytes | memoryview) -> bytes:
    length = len(data)
    return b"".join(
        (
            encode_pdata_header(length + PDV_OVERHEAD),
            encode_pdv_header(context_id, control, length),
            data,
        )
    )


def _both_pdu(context_id: int, command: bytes, data: bytes | memoryview) -> bytes:
    return b"".join(
        (
            encode_pdata_header(len(command) + len(data) + 2 * PDV_OVERHEAD),
            encode_pdv_header(context_id, COMMAND | LAST, len(command)),
            command,
            encode_pdv_header(context_id, LAST, len(data)),
            data,
        )
    )


def _fragments(context_id: int, kind: int, data: bytes | memoryview, size: int) -> Iterator[bytes]:
    """One PDU per fragment of `data`; at least one (empty) fragment."""
    length = len(data)
    start = 0
    while True:
        stop = start + size
        if stop >= length:
            yield _pdu(context_id, kind | LAST, data[start:])
            return
        yield _pdu(context_id, kind, data[start:stop])
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
        yield _both_pdu(context_id, command, data)
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
_PDATA_PDV_HEADER = struct.Struct(">BxIIBB")


def _data_header(context_id: int, control: int, count: int) -> bytes:
    """The 12 bytes before a data fragment: P-DATA-TF header and PDV header."""
    return _PDATA_PDV_HEADER.pack(0x04, count + PDV_OVERHEAD, count + 2, context_id, control)


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
        head = b"".join(
            (
                encode_pdata_header(len(command) + length + 2 * PDV_OVERHEAD),
                encode_pdv_header(context_id, COMMAND | LAST, len(command)),
                command,
                encode_pdv_header(context_id, LAST, length),
            )
        )
        yield [head, data]
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
            run += (_data_header(context_id, LAST if last else 0, stop - start), view[start:stop])
        if length == 0:  # an empty data set is still one (empty, last) fragment
            run += (_data_header(context_id, LAST, 0), b"")
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


# --------------------------------------------------------------------------------------
# Reassembly


@dataclass(frozen=True, slots=True)
class ReceivedMessage:
    """One whole message as received: its presentation context, its decoded command
    set, and its data set.

    `data_set` is None when the command says none follows; `bytes` when it stayed
    under the spool threshold; otherwise a file positioned at its first byte (a
    temporary file of ours, or the sink that `data_sink` returned, flushed and left
    where the last write put it). `error` is set, and `data_set` is None, when
    storing the data set failed locally (disk full: an `OSError`): the message was
    still read to its end, so the association can go on and the service answer
    with a failure status (A700H, ROBUSTNESS.md 30).
    """

    context_id: int
    command: Command
    data_set: bytes | BinaryIO | None = None
    error: OSError | None = None
    #: set, and `data_set` None, when the data set was longer than the reassembler
    #: keeps for a message that is not a C-STORE (an identifier): what it says
    too_long: str = ""


_IDLE, _COMMAND, _DATA = 0, 1, 2

#: Called with the command when a data set is announced; returns the sink to write
#: it to, or None for the default (memory, then a temporary file).
DataSink = Callable[[int, Command], BinaryIO | None]


class Reassembler:
    """Joins the PDVs of received P-DATA-TF PDUs into whole messages.

    `accepted_contexts`: the presentation context IDs accepted on the association.
    `data_sink`: see `DataSink`; a sink of the caller's (an open binary file, or any
    object with `write`, `flush` and `close`) is written to, flushed and handed back
    in `ReceivedMessage.data_set`, but closed by us only when its message is given up
    (protocol error, local write error, `close()`), so a sink that must not leave a
    partial file should remove it on close unless the caller has kept it.
    `spool_threshold`: data set bytes kept in memory before the rest goes to a
    temporary file (in `spool_dir`); `max_command_length`: the command set cap.
    `max_identifier`: the longest data set kept for a message other than a C-STORE-RQ
    (a query's identifier, a response's): past it the bytes are read and dropped, and
    the message comes with `too_long` set, to be refused with a status that says so
    (ROBUSTNESS 49). A C-STORE's data set is an instance: no cap but the disk.

    After a `DimseError` the reassembler is spent: every later call raises the same
    error, since the association is being aborted.
    """

    def __init__(
        self,
        accepted_contexts: Collection[int],
        *,
        max_command_length: int = DEFAULT_MAX_COMMAND_LENGTH,
        spool_threshold: int = DEFAULT_SPOOL_THRESHOLD,
        spool_dir: str | None = None,
        data_sink: DataSink | None = None,
        max_identifier: int | None = DEFAULT_MAX_IDENTIFIER,
    ) -> None:
        self.accepted_contexts = frozenset(accepted_contexts)
        self.max_identifier = max_identifier
        self._cap: int | None = None  # the cap of the data set being received
        self.max_command_length = max_command_length
        self.spool_threshold = spool_threshold
        self.spool_dir = spool_dir
        self.data_sink = data_sink
        self._state = _IDLE
        self._context = 0
        self._command_parts: list[bytes] = []
        self._command_length = 0
        self._command: Command | None = None
        self._chunks: list[bytes] = []
        self._data_length = 0
        self._sink: BinaryIO | None = None  # the caller's, from data_sink
        self._spool: BinaryIO | None = None  # ours, past the spool threshold
        self._write_error: OSError | None = None
        self._error: DimseError | None = None

    @property
    def context_id(self) -> int:
        """The presentation context of the message being received (0 between messages)."""
        return self._context

    @property
    def in_progress(self) -> bool:
        """Whether part of a message has been received and not yet given out."""
        return self._state != _IDLE

    def feed(self, pdu: P_DATA_TF) -> list[ReceivedMessage]:
        """Take the PDVs of one P-DATA-TF; return the messages they complete, in order."""
        if not pdu.pdvs:
            self._fail("P-DATA-TF PDU holds no PDV item (PS3.8 9.3.5)")
        done: list[ReceivedMessage] = []
        for pdv in pdu.pdvs:
            message = self.feed_pdv(pdv)
            if message is not None:
                done.append(message)
        return done

    def feed_pdv(self, pdv: PresentationDataValue) -> ReceivedMessage | None:
        """Take one PDV; return the message it completes, if it does."""
        if self._error is not None:
            raise self._error
        context_id = pdv.context_id
        is_command = pdv.control & COMMAND
        is_last = pdv.control & LAST
        if context_id not in self.accepted_contexts:
            self._fail(
                f"PDV on presentation context {context_id}, which was not accepted "
                "on this association (PS3.8 9.3.5.1)"
            )
        if self._state == _IDLE:
            if not is_command:
                self._fail(
                    f"data set fragment on presentation context {context_id} with no "
                    "command before it (PS3.7 6.3.1: a message starts with its command)"
                )
            self._state = _COMMAND
            self._context = context_id
        elif context_id != self._context:
            self._fail(
                f"PDV on presentation context {context_id} in the middle of a message "
                f"on context {self._context} (PS3.7 6.3.1)"
            )
        if self._state == _COMMAND:
            if not is_command:
                self._fail("data set fragment before the last fragment of the command (PS3.8 E.2)")
            return self._take_command(pdv.data, bool(is_last))
        if is_command:
            self._fail(
                "command fragment before the last fragment of the data set that the "
                "previous command announced (PS3.8 E.2)"
            )
        return self._take_data(pdv.data, bool(is_last))

    def close(self) -> None:
        """Give up any partial message (on abort or release), closing its sink."""
        self._drop_sink()
        self._reset()

    # -- command ----------------------------------------------------------------------

    def _take_command(self, data: bytes, is_last: bool) -> ReceivedMessage | None:
        self._command_length += len(data)
        if self._command_length > self.max_command_length:
            self._fail(f"command set longer than the {self.max_command_length} bytes we accept")
        self._command_parts.append(data)
        if not is_last:
            return None
        raw = (
            self._command_parts[0]
            if len(self._command_parts) == 1
            else b"".join(self._command_parts)
        )
        self._command_parts = []
        try:
            command = decode_command(raw)
        except DimseError as exc:
            self._fail(str(exc))
        if not command.has_data_set:
            message = ReceivedMessage(self._context, command)
            self._reset()
            return message
        self._command = command
        self._state = _DATA
        self._cap = None if command.command_field == _C_STORE_RQ else self.max_identifier
        if self.data_sink is not None:
            try:
                sink = self.data_sink(self._context, command)
            except OSError as exc:
                self._write_error = exc
            else:
                self._sink = sink
        return None

    # -- data set ---------------------------------------------------------------------

    def _take_data(self, data: bytes, is_last: bool) -> ReceivedMessage | None:
        if self._write_error is None and data:
            try:
                self._store(data)
            except OSError as exc:
                self._write_error = exc
                self._drop_sink()
        if not is_last:
            return None
        assert self._command is not None
        message = self._finish(self._command)
        self._reset()
        return message

    def _store(self, data: bytes) -> None:
        self._data_length += len(data)
        if self._cap is not None and self._data_length > self._cap and self._sink is None:
            if self._chunks or self._spool is not None:
                self._drop_sink()  # what was kept goes; the rest is read and dropped
            return
        if self._sink is not None:
            self._sink.write(data)
        elif self._spool is not None:
            self._spool.write(data)
        else:
            self._chunks.append(data)
            if self._data_length > self.spool_threshold:
                import tempfile  # here: a client that never spools does not pay its import

                spool = tempfile.TemporaryFile(dir=self.spool_dir)
                self._spool = spool
                for chunk in self._chunks:
                    spool.write(chunk)
                self._chunks = []

    def _finish(self, command: Command) -> ReceivedMessage:
        if self._write_error is not None:
            return ReceivedMessage(self._context, command, None, self._write_error)
        if self._cap is not None and self._data_length > self._cap and self._sink is None:
            why = f"its data set of {self._data_length} bytes is over the {self._cap} we keep"
            return ReceivedMessage(self._context, command, None, None, why)
        sink, spool = self._sink, self._spool
        try:
            if sink is not None:
                sink.flush()
            elif spool is not None:
                spool.seek(0)
        except OSError as exc:
            self._drop_sink()
            return ReceivedMessage(self._context, command, None, exc)
        self._sink = self._spool = None  # handed over: no longer ours to close
        if sink is not None:
            return ReceivedMessage(self._context, command, sink)
        if spool is not None:
            return ReceivedMessage(self._context, command, spool)
        chunks = self._chunks
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        return ReceivedMessage(self._context, command, data)

    # -- state ------------------------------------------------------------------------

    def _drop_sink(self) -> None:
        sinks = (self._sink, self._spool)
        self._sink = self._spool = None
        self._chunks = []
        for sink in sinks:
            if sink is not None:
                with contextlib.suppress(OSError):
                    sink.close()

    def _reset(self) -> None:
        self._state = _IDLE
        self._context = 0
        self._command_parts = []
        self._command_length = 0
        self._command = None
        self._chunks = []
        self._data_length = 0
        self._sink = None
        self._spool = None
        self._write_error = None
        self._cap = None

    def _fail(self, text: str) -> NoReturn:
        self._drop_sink()
        self._reset()
        self._error = DimseError(text)
        raise self._error
