"""Messages on their way out: the P-DATA-TF PDUs of one DIMSE message, made lazily.

A message is a sequence of writes (`Sendable`: one P-DATA-TF, or a run of them as
buffers for one gathering write). `Outgoing` holds that sequence for the engine's
queue; `prepare_instance` makes the one of a C-STORE-RQ whose data set is a file's,
streamed from disk or converted first (`dimse.transfer.convert`), with its first
writes already built: a client makes the next request ready while the peer is
still storing the previous one, so that reading and encoding overlap the peer's
work.

At debug level each message sent is one line (`dimse.explain`), counted from the
writes as they go; nothing is counted otherwise.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path

from dimse.explain import Tally, describe_message
from dimse.files import Part10Info
from dimse.fragments import fragment_message, stream_runs
from dimse.message_base import DimseMessage
from dimse.transfer.convert import Converted, convert, needs_conversion
from dul.fields import Buffer
from dul.negotiation import NegotiatedContext

log = logging.getLogger("dimse")

Sendable = bytes | bytearray | list[Buffer]


class Outgoing:
    """One message's writes, in order, with what the debug log says of it.

    `command` is the command set's elements (for the log), `message_id` the request's
    (0 for a response), `progress` is told the bytes of each write. Close it (or let
    the engine send it) to release the file behind it."""

    def __init__(
        self,
        units: Iterator[Sendable],
        context_id: int,
        message: DimseMessage | None,
        *,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        self._units = units
        self._first: Sendable | None = next(units)  # read now: OSError before anything is sent
        self.context_id = context_id
        self.message = message
        self.progress = progress
        self.tally = Tally() if log.isEnabledFor(logging.DEBUG) else None

    def __iter__(self) -> Iterator[Sendable]:
        if self._first is not None:
            first, self._first = self._first, None
            yield first
        yield from self._units

    def sent(self, unit: Sendable) -> None:
        """Count one write that went (before the next one reuses the run's buffer)."""
        if self.tally is not None:
            self.tally.add_unit(unit)
        if self.progress is not None:
            self.progress(len(unit) if not isinstance(unit, list) else sum(map(len, unit)))

    def finished(self, name: str) -> None:
        """The message has gone: its debug line, prefixed with the association's `name`."""
        if self.tally is not None and self.message is not None:
            command = self.message.to_command()
            text = describe_message("sent", command, self.context_id, self.tally)
            log.debug("%s: %s", name, text)

    def close(self) -> None:
        self._first = None
        close = getattr(self._units, "close", None)
        if close is not None:
            close()

    def __enter__(self) -> Outgoing:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def message_units(
    context_id: int,
    message: DimseMessage,
    data_set: bytes | None,
    max_pdu: int,
    *,
    command: bytes | None = None,
) -> Outgoing:
    """A message whose data set (if any) is in memory, already encoded in the
    context's transfer syntax; `command`, when given, is its command set already
    encoded (the pending responses of a C-FIND share one)."""
    message = message.with_data_set(data_set is not None)
    encoded = message.encode() if command is None else command
    return Outgoing(
        iter(fragment_message(context_id, encoded, data_set, max_pdu)), context_id, message
    )


def prepare_instance(
    context: NegotiatedContext,
    message: DimseMessage,
    info: Part10Info,
    max_pdu: int,
    *,
    spool_dir: Path | None = None,
    progress: Callable[[int], None] | None = None,
) -> Outgoing:
    """A C-STORE-RQ with a file's data set, its first writes built and the file's
    first bytes read (OSError, or `Unconvertible`, here: nothing was sent). The data
    set goes as it is when the context's transfer syntax is the file's, else it is
    converted first, spooled in `spool_dir` when large."""
    message = message.with_data_set(True)
    assert context.transfer_syntax is not None
    cid = context.context_id
    if not needs_conversion(info, context.transfer_syntax):
        units = _file_runs(cid, message, info, max_pdu)
    else:
        converted = convert(info, context.transfer_syntax, spool_dir=spool_dir)
        units = _converted_runs(cid, message, converted, max_pdu)
    return Outgoing(units, cid, message, progress=progress)


def _file_runs(
    context_id: int, message: DimseMessage, info: Part10Info, max_pdu: int
) -> Iterator[Sendable]:
    with info.path.open("rb", buffering=0) as stream:
        stream.seek(info.dataset_offset)
        yield from stream_runs(context_id, message.encode(), stream, info.dataset_length, max_pdu)


def _converted_runs(
    context_id: int, message: DimseMessage, converted: Converted, max_pdu: int
) -> Iterator[Sendable]:
    try:
        yield from stream_runs(
            context_id, message.encode(), converted.stream, converted.length, max_pdu
        )
    finally:
        converted.close()
