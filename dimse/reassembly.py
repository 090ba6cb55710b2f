"""Joining the PDVs of received P-DATA-TF PDUs back into whole DIMSE messages
(PS3.8 Annex E, PS3.7 6.3.1); cutting them is `dimse.fragments`'s. No sockets and no
clocks here: PDVs in, messages out.

`Reassembler` is fed the PDVs of each received P-DATA-TF and gives back whole
messages. The rules it enforces, each a `DimseError` that ends in an A-ABORT
(docs/robustness.md 18-21, 24):

- a P-DATA-TF without PDV; a PDV on a presentation context not accepted;
- a PDV on another context than the message it continues (PS3.7 6.3.1: the
  fragments of one message are not interleaved with others');
- a data set fragment when no command is complete before it, or after a command
  that says no data set follows (CommandDataSetType 0101H);
- a command fragment before the last fragment of a data set that was announced;
- a command set longer than `max_command_length` (64 KiB by default), refused
  before it is kept; a command set that `decode_command` refuses.

A command that announces a data set which has not come yet is simply pending.

A data set goes to memory, then past `spool_threshold` to a temporary file, or
straight to a `Sink` of the caller's (`DataSink` opens it), as it arrives.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import BinaryIO, NoReturn, Protocol

from dimse import limits
from dimse.commands import Command, decode_command
from dimse.errors import DimseError
from dimse.message_base import CommandField
from dul.pdata import COMMAND, LAST
from dul.pdu import P_DATA_TF, PresentationDataValue

#: The largest command set we accept (a real one is under 300 bytes).
DEFAULT_MAX_COMMAND_LENGTH = 64 * 1024
#: Data set bytes kept in memory before the rest is spooled to a temporary file.
DEFAULT_SPOOL_THRESHOLD = 4 * 1024 * 1024
#: The longest identifier kept: `dimse.limits` (re-exported here for the engine).
DEFAULT_MAX_IDENTIFIER = limits.DEFAULT_MAX_IDENTIFIER


class Sink(Protocol):
    """Where the caller has a data set written as it arrives: an open binary file has
    what it takes, and so has any object with these three."""

    def write(self, data: bytes, /) -> int: ...
    def flush(self) -> None: ...
    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class ReceivedMessage:
    """One whole message as received: its presentation context, its decoded command
    set, and its data set.

    `data_set` is None when the command says none follows, or when it went to the
    caller's `sink`; `bytes` when it stayed under the spool threshold; otherwise a
    temporary file of ours positioned at its first byte. `sink` is the sink that
    `data_sink` returned, flushed and left where the last write put it, when it took
    the data set. `error` is set, and both are None, when storing the data set
    failed locally (disk full: an `OSError`): the message was still read to its end,
    so the association can go on and the service answer with a failure status
    (A700H, docs/robustness.md 30).
    """

    context_id: int
    command: Command
    data_set: bytes | BinaryIO | None = None
    error: OSError | None = None
    #: set, and `data_set` None, when the data set was longer than the reassembler
    #: keeps for a message that is not a C-STORE (an identifier): what it says
    too_long: str = ""
    sink: Sink | None = None


_IDLE, _COMMAND, _DATA = 0, 1, 2

#: Called with the command when a data set is announced; returns the sink to write
#: it to, or None for the default (memory, then a temporary file).
DataSink = Callable[[int, Command], Sink | None]


class Reassembler:
    """Joins the PDVs of received P-DATA-TF PDUs into whole messages.

    `accepted_contexts`: the presentation context IDs accepted on the association.
    `data_sink`: see `DataSink`; a `Sink` of the caller's is written to, flushed and
    handed back in `ReceivedMessage.sink`, but closed by us only when its message is
    given up (protocol error, local write error, `close()`), so a sink that must not
    leave a partial file should remove it on close unless the caller has kept it.
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
        self._sink: Sink | None = None  # the caller's, from data_sink
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
        self._cap = (
            None if command.command_field == CommandField.C_STORE_RQ else self.max_identifier
        )
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
            return ReceivedMessage(self._context, command, sink=sink)
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
