"""DIMSE messages over an established association (PS3.7 6.3, 8).

`MessageChannel` joins the upper layer and the DIMSE codecs: it sends a message as
its command set and optional data set, cut to the peer's maximum PDU, and hands
back whole received messages. A peer whose P-DATA breaks PS3.7/PS3.8 Annex E is
aborted (A-ABORT, source 2), and the caller gets `AssociationAborted`.

At debug level each message sent or received is one line (`dimse.explain`): its
command, status, data set size and how it was cut into PDUs and PDVs. The counting
is done only when that line will be written. Importing this module lends the upper
layer's log pydicom's names of UIDs (`dul.explain.use_uid_names`): the A-ASSOCIATE-RQ
is logged before any `MessageChannel` exists, and names are the same for all.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from dimse.commands import Command, decode_command
from dimse.errors import DimseError
from dimse.explain import Tally, describe_message, uid_name
from dimse.files import Part10Info
from dimse.fragments import (
    DEFAULT_MAX_IDENTIFIER,
    Reassembler,
    ReceivedMessage,
    fragment_message,
    stream_runs,
)
from dimse.messages import DimseMessage, message_from_command
from dimse.transfer.convert import Converted, Decompress, choose, convert, needs_conversion
from dul.errors import AbortReason, AssociationAborted
from dul.explain import use_uid_names
from dul.items import Buffer
from dul.negotiation import NegotiatedContext
from dul.pdu import P_DATA_TF
from dul.transport import Channel

log = logging.getLogger("dimse")

use_uid_names(uid_name)


class _SinkHolder:
    """The data sink in use, called by the reassembler with the message's context."""

    def __init__(self, sink: Callable[[int, Command], BinaryIO | None] | None) -> None:
        self.sink = sink

    def open(self, context_id: int, command: Command) -> BinaryIO | None:
        return None if self.sink is None else self.sink(context_id, command)


Sendable = bytes | bytearray | list[Buffer]


class PreparedMessage:
    """A message whose first PDU (or run of PDUs) is already built, and the file
    behind it open and read that far. A client makes the next C-STORE-RQ ready while
    the peer is still working on the previous one, so that reading the file and
    encoding overlap the peer's work; the requests still go one at a time. Close it
    (or send it) to release the file."""

    def __init__(
        self,
        units: Iterator[Sendable],
        context_id: int = 0,
        message: DimseMessage | None = None,
    ) -> None:
        self._units = units
        self._first: Sendable | None = next(units)
        self.context_id = context_id
        self.message = message  # for the debug log

    def __iter__(self) -> Iterator[Sendable]:
        if self._first is not None:
            first, self._first = self._first, None
            yield first
        yield from self._units

    def close(self) -> None:
        self._first = None
        close = getattr(self._units, "close", None)
        if close is not None:
            close()

    def __enter__(self) -> PreparedMessage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class MessageChannel:
    """Send and receive whole DIMSE messages on one association."""

    def __init__(
        self,
        channel: Channel,
        *,
        data_sink: Callable[[int, Command], BinaryIO | None] | None = None,
        max_identifier: int | None = DEFAULT_MAX_IDENTIFIER,
        spool_dir: Path | None = None,
    ) -> None:
        """`max_identifier`: the longest data set kept for a message that is not a
        C-STORE (`Reassembler`); `spool_dir`: where data sets too big for memory go
        (None: the system's temporary folder)."""
        self.channel = channel
        self.contexts: dict[int, NegotiatedContext] = {
            cid: ctx for cid, ctx in channel.contexts.items() if ctx.accepted
        }
        # The reassembler calls a holder that knows only the sink, not this channel:
        # a bound method of ours there would make a reference cycle, and every
        # association would wait for the cycle collector to be freed.
        self._sinks = _SinkHolder(data_sink)
        self.reassembler = Reassembler(
            self.contexts,
            data_sink=self._sinks.open,
            max_identifier=max_identifier,
            spool_dir=None if spool_dir is None else str(spool_dir),
        )
        self._ready: deque[ReceivedMessage] = deque()
        self._incoming: Tally | None = None  # the message being received, counted at debug level
        self._message_id = 0
        #: where converted data sets bigger than memory allows are spooled (None: tmp)
        self.spool_dir: Path | None = spool_dir

    def set_data_sink(self, sink: Callable[[int, Command], BinaryIO | None] | None) -> None:
        """Where the data sets of the next messages go (None: memory, then a spool)."""
        self._sinks.sink = sink

    @property
    def max_pdu(self) -> int:
        """The peer's maximum P-DATA-TF length (0: no limit)."""
        return self.channel.peer_max_pdata_length

    def next_message_id(self) -> int:
        """Message IDs count from 1 and wrap within US (PS3.7 E.1)."""
        self._message_id = self._message_id % 0xFFFF + 1
        return self._message_id

    def find_context(
        self, abstract_syntax: str, transfer_syntax: str | None = None, *, scp: bool = False
    ) -> NegotiatedContext | None:
        """An accepted context for `abstract_syntax` (and `transfer_syntax`, if given);
        with `scp`, one on which we, the requestor, may act as SCP (C-GET)."""
        for context in self.contexts.values():
            if context.abstract_syntax != abstract_syntax:
                continue
            if transfer_syntax is not None and context.transfer_syntax != transfer_syntax:
                continue
            if scp and not context.scp_role:
                continue
            return context
        return None

    def store_context(
        self,
        sop_class: str,
        syntax: str,
        encoding: str = "",
        decompress: Decompress = Decompress.LOSSLESS,
        *,
        scp: bool = False,
    ) -> NegotiatedContext | None:
        """The context on which to send an instance of `sop_class` held in `syntax`
        (`encoding`: see `Part10Info`): one with that very syntax, sent as it is, else
        one whose syntax it converts to exactly (`dimse.transfer.convert.choose`).
        None when no context of `sop_class` was accepted (with the SCP role, for
        `scp`); `Unconvertible` when none takes the instance."""
        by_syntax: dict[str, NegotiatedContext] = {}
        for context in self.contexts.values():
            if (
                context.abstract_syntax == sop_class
                and context.transfer_syntax is not None
                and (context.scp_role or not scp)
            ):
                by_syntax.setdefault(context.transfer_syntax, context)
        if not by_syntax:
            return None
        return by_syntax[choose(syntax, encoding, list(by_syntax), decompress)]

    # -- sending ----------------------------------------------------------------------

    def send(self, context_id: int, message: DimseMessage, data_set: bytes | None = None) -> None:
        """One message; `data_set` already encoded in the context's transfer syntax."""
        message = message.with_data_set(data_set is not None)
        pdus = fragment_message(context_id, message.encode(), data_set, self.max_pdu)
        if not log.isEnabledFor(logging.DEBUG):
            for pdu in pdus:
                self.channel.send_pdata(pdu)
            return
        tally = Tally()
        for pdu in pdus:
            self.channel.send_pdata(pdu)
            tally.add_unit(pdu)
        log.debug("%s", describe_message("sent", message.to_command(), context_id, tally))

    def send_encoded(self, context_id: int, command: bytes, data_set: bytes) -> None:
        """One message whose command set is already encoded (and says a data set
        follows): the pending responses of a C-FIND share one."""
        pdus = fragment_message(context_id, command, data_set, self.max_pdu)
        if not log.isEnabledFor(logging.DEBUG):
            for pdu in pdus:
                self.channel.send_pdata(pdu)
            return
        tally = Tally()
        for pdu in pdus:
            self.channel.send_pdata(pdu)
            tally.add_unit(pdu)
        log.debug("%s", describe_message("sent", decode_command(command), context_id, tally))

    def prepare_instance(
        self, context: NegotiatedContext, message: DimseMessage, info: Part10Info
    ) -> PreparedMessage:
        """A C-STORE-RQ with a file's data set, ready to send: its first PDUs built and
        the file's first bytes read (OSError, or `Unconvertible`, here: nothing was
        sent). The data set goes as it is when the context's transfer syntax is the
        file's, else it is converted first (`dimse.transfer.convert`)."""
        message = message.with_data_set(True)
        assert context.transfer_syntax is not None
        cid = context.context_id
        if not needs_conversion(info, context.transfer_syntax):
            return PreparedMessage(self._file_runs(cid, message, info), cid, message)
        converted = convert(info, context.transfer_syntax, spool_dir=self.spool_dir)
        return PreparedMessage(self._converted_runs(cid, message, converted), cid, message)

    def _file_runs(
        self, context_id: int, message: DimseMessage, info: Part10Info
    ) -> Iterator[Sendable]:
        with info.path.open("rb", buffering=0) as stream:
            stream.seek(info.dataset_offset)
            yield from stream_runs(
                context_id, message.encode(), stream, info.dataset_length, self.max_pdu
            )

    def _converted_runs(
        self, context_id: int, message: DimseMessage, converted: Converted
    ) -> Iterator[Sendable]:
        try:
            yield from stream_runs(
                context_id, message.encode(), converted.stream, converted.length, self.max_pdu
            )
        finally:
            converted.close()

    def send_prepared(
        self, prepared: PreparedMessage, progress: Callable[[int], None] | None = None
    ) -> None:
        """Send a prepared message; `progress` is told the bytes of each write."""
        tally = Tally() if log.isEnabledFor(logging.DEBUG) else None
        with prepared:
            for unit in prepared:
                self.channel.send_pdata(unit)
                if tally is not None:
                    tally.add_unit(unit)  # before the next unit reuses the run's buffer
                if progress is not None:
                    progress(len(unit) if not isinstance(unit, list) else sum(map(len, unit)))
        if tally is not None and prepared.message is not None:
            command = prepared.message.to_command()
            log.debug("%s", describe_message("sent", command, prepared.context_id, tally))

    def send_instance(
        self,
        context: NegotiatedContext,
        message: DimseMessage,
        info: Part10Info,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        """A C-STORE-RQ with a file's data set (`prepare_instance`, then sent)."""
        self.send_prepared(self.prepare_instance(context, message, info), progress)

    # -- receiving --------------------------------------------------------------------

    def receive(self, timeout: float | None) -> ReceivedMessage:
        """The next whole message. Raises `AssociationReleased`, `AssociationAborted`
        (also after aborting a peer that broke the protocol) or `DulTimeout`."""
        while not self._ready:
            self._feed(self.channel.receive(timeout))
        return self._ready.popleft()

    def poll(self) -> list[ReceivedMessage]:
        """The whole messages already received or arriving now (never waits): how a
        provider looks for a C-CANCEL between responses. Raises as `receive` does."""
        while (pdu := self.channel.poll()) is not None:
            self._feed(pdu)
        ready = list(self._ready)
        self._ready.clear()
        return ready

    def _feed(self, pdu: P_DATA_TF) -> None:
        """Reassemble one P-DATA-TF. PDVs that break PS3.8 9.3.5/Annex E or PS3.7 6.3.1
        (ROBUSTNESS 18-24) end the association with an A-ABORT from the service
        provider (source 2), reason 6: the PDVs are an invalid value of the PDU."""
        try:
            if pdu.pdvs and log.isEnabledFor(logging.DEBUG):
                self._feed_counted(pdu)
            else:
                self._ready.extend(self.reassembler.feed(pdu))
        except DimseError as exc:
            self.channel.abort_invalid(AbortReason.INVALID_PDU_PARAMETER_VALUE, str(exc))
            raise AssociationAborted(f"{self.channel.peer} broke PS3.7/PS3.8: {exc}") from exc

    def _feed_counted(self, pdu: P_DATA_TF) -> None:
        """`_feed` at debug level: PDV by PDV, counted, a line for each message (and,
        as `Reassembler.feed`, no message of a PDU with an invalid PDV)."""
        tally = self._incoming
        if tally is None:
            self._incoming = tally = Tally()
        tally.pdus += 1
        last = len(pdu.pdvs) - 1
        done: list[ReceivedMessage] = []
        for index, pdv in enumerate(pdu.pdvs):
            tally.add_pdv(pdv.is_command, len(pdv.data))
            message = self.reassembler.feed_pdv(pdv)
            if message is None:
                continue
            done.append(message)
            log.debug(
                "%s", describe_message("received", message.command, message.context_id, tally)
            )
            self._incoming = tally = Tally()
            if index < last:
                tally.pdus = 1  # the rest of this PDU begins the next message
        self._ready.extend(done)

    def push_back(self, received: ReceivedMessage) -> None:
        """Put a message back, to be the next `receive()`."""
        self._ready.appendleft(received)

    @staticmethod
    def message_of(received: ReceivedMessage) -> DimseMessage:
        """The typed message of a received command (DimseError if unknown)."""
        return message_from_command(received.command)

    def close(self) -> None:
        self.reassembler.close()
        self._sinks.sink = None  # a handler's bound method: let its owner go
