"""DIMSE messages in words, for the debug log and for a PDU dump (PS3.7 9, 10, E).

One line a message, sent or received:

    sent C-ECHO-RQ: Message ID 1, Affected SOP Class 1.2.840.10008.1.1 (Verification
    SOP Class); no data set; presentation context 1, in 1 P-DATA-TF PDU, 1 PDV

    received C-STORE-RSP: responding to Message ID 3, Affected SOP Class ... (CT Image
    Storage), status B000H (Warning: Coercion of Data Elements); ...

`describe_message` makes it from a command set (`dimse.commands`) and a `Tally` of
how the message was cut into P-DATA-TF PDUs and PDVs (PS3.8 9.3.5, Annex E; their
headers read by `dul.pdata`); the status is named by `dimse.status`, the UIDs by
pydicom (`uid_name`).

`uid_name` is pydicom's dictionary, imported at its first call (so only when a debug
line or a dump explanation is written: `dicomscu --echo` without -D never imports
pydicom). `dimse.engine` lends it to the upper layer's log (`dul.explain`).

`python -m dimse.explain FILE` prints a dump of `dicomscu --dump-pdus FILE`: each
PDU as `dul.explain` says it (the live log's words), and after each P-DATA-TF the
DIMSE messages it completes, command sets decoded. It lives here rather than in
`dul` because decoding a command set is DIMSE's business: `dul` never imports
`dimse` (`python -m dul.explain FILE` shows the same PDUs without them).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence

from dimse.commands import Value, decode_command
from dimse.errors import DimseError
from dimse.message_base import CommandField
from dimse.messages import message_type
from dimse.models import MODALITY_WORKLIST_FIND
from dimse.status import Service, Status
from dul.dump import RECEIVED, Record, run
from dul.explain import UidName
from dul.fields import Buffer
from dul.pdata import COMMAND, pdv_headers
from dul.pdu import P_DATA_TF, Pdu

_UID = re.compile(r"[0-9]+(\.[0-9]+)*")


@functools.lru_cache(maxsize=512)
def uid_name(uid: str) -> str:
    """The name pydicom's dictionary gives `uid` ("" when it has none)."""
    if len(uid) > 64 or not _UID.fullmatch(uid):
        return ""  # not a UID: pydicom would warn, and has no name for it anyway
    from pydicom.uid import UID  # here: only a debug line or a dump pays for pydicom

    name = str(UID(uid).name)
    return "" if name == uid else name


def _uid(uid: str, names: UidName | None) -> str:
    name = names(uid) if names is not None else ""
    return f"{uid} ({name})" if name and name != uid else uid


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


class Tally:
    """How one message went: P-DATA-TF PDUs, PDVs, command and data set bytes."""

    __slots__ = ("command_bytes", "data_bytes", "pdus", "pdvs")

    def __init__(self) -> None:
        self.pdus = 0
        self.pdvs = 0
        self.command_bytes = 0
        self.data_bytes = 0

    def add_pdv(self, is_command: bool, length: int) -> None:
        self.pdvs += 1
        if is_command:
            self.command_bytes += length
        else:
            self.data_bytes += length

    def add_unit(self, unit: bytes | bytearray | list[Buffer]) -> None:
        """Count what one write carried: a whole P-DATA-TF, or a run of them given
        as buffers (`dimse.fragments.stream_runs`), read by their headers only."""
        for pdvs in pdv_headers([unit] if not isinstance(unit, list) else unit):
            self.pdus += 1
            for control, length in pdvs:
                self.add_pdv(bool(control & COMMAND), length)


def _service(field: int, sop_class: Value | None) -> Service | None:
    if field == CommandField.C_FIND_RSP and sop_class == MODALITY_WORKLIST_FIND:
        return Service.WORKLIST
    kind = message_type(field)
    return getattr(kind, "SERVICE", None)


def _status(code: int, service: Service | None) -> str:
    status = Status(code, service)
    category = status.category.value
    name = status.name
    return f"status {code:04X}H ({category if name == category else f'{category}: {name}'})"


def _tags(value: Value) -> str:
    tags = value if isinstance(value, tuple) else ()
    return ", ".join(f"({t >> 16:04X},{t & 0xFFFF:04X})" for t in tags)


def message_words(command: Mapping[str, Value], names: UidName | None = uid_name) -> str:
    """`C-ECHO-RSP: responding to Message ID 1, Affected SOP Class ..., status ...`."""
    field = command.get("CommandField")
    if not isinstance(field, int):
        return "a command set without a Command Field"
    try:
        name = CommandField(field).name.replace("_", "-")
    except ValueError:
        name = f"Command Field {field:04X}H (unknown)"
    parts: list[str] = []
    message_id = command.get("MessageID")
    responded = command.get("MessageIDBeingRespondedTo")
    if isinstance(message_id, int):
        parts.append(f"Message ID {message_id}")
    if isinstance(responded, int):
        verb = "cancelling" if field == CommandField.C_CANCEL_RQ else "responding to"
        parts.append(f"{verb} Message ID {responded}")
    for keyword, words in (
        ("AffectedSOPClassUID", "Affected SOP Class"),
        ("RequestedSOPClassUID", "Requested SOP Class"),
    ):
        value = command.get(keyword)
        if isinstance(value, str):
            parts.append(f"{words} {_uid(value, names)}")
    for keyword, words in (
        ("AffectedSOPInstanceUID", "Affected SOP Instance"),
        ("RequestedSOPInstanceUID", "Requested SOP Instance"),
    ):
        value = command.get(keyword)
        if isinstance(value, str):
            parts.append(f"{words} {value}")
    destination = command.get("MoveDestination")
    if isinstance(destination, str):
        parts.append(f"move destination {destination!r}")
    status = command.get("Status")
    if isinstance(status, int):
        parts.append(_status(status, _service(field, command.get("AffectedSOPClassUID"))))
    counts = [
        f"{value} {words}"
        for keyword, words in (
            ("NumberOfRemainingSuboperations", "remaining"),
            ("NumberOfCompletedSuboperations", "completed"),
            ("NumberOfFailedSuboperations", "failed"),
            ("NumberOfWarningSuboperations", "warning"),
        )
        if isinstance(value := command.get(keyword), int)
    ]
    if counts:
        parts.append(f"sub-operations {', '.join(counts)}")
    comment = command.get("ErrorComment")
    if isinstance(comment, str) and comment:
        parts.append(f"error comment {comment!r}")
    offending = command.get("OffendingElement")
    if offending is not None:
        parts.append(f"offending element {_tags(offending)}")
    return f"{name}: {', '.join(parts)}" if parts else name


def describe_message(
    verb: str,
    command: Mapping[str, Value],
    context_id: int,
    tally: Tally,
    names: UidName | None = uid_name,
) -> str:
    """The log line of one message `verb` ("sent", "received"): its command, its data
    set, and how it travelled."""
    kind = command.get("CommandDataSetType")
    has_data_set = isinstance(kind, int) and kind != 0x0101
    data = f"data set of {_plural(tally.data_bytes, 'byte')}" if has_data_set else "no data set"
    return (
        f"{verb} {message_words(command, names)}; {data}; presentation context {context_id}, "
        f"in {_plural(tally.pdus, 'P-DATA-TF PDU')}, {_plural(tally.pdvs, 'PDV')}"
    )


class DumpMessages:
    """For `dul.dump.explain_dump`: after each P-DATA-TF of a dump, the DIMSE
    messages it completes, one line each (a message per association and direction
    at a time, as PS3.7 6.3.1 has them: fragments of two messages never mix)."""

    def __init__(self, names: UidName | None = uid_name) -> None:
        self.names = names
        self._tallies: dict[tuple[int, bytes], Tally] = {}
        self._commands: dict[tuple[int, bytes], list[bytes]] = {}
        self._waiting: dict[tuple[int, bytes], Mapping[str, Value]] = {}

    def __call__(self, record: Record, pdu: Pdu) -> list[str]:
        if not isinstance(pdu, P_DATA_TF):
            return []
        key = (record.association, record.kind)
        verb = "received" if record.kind == RECEIVED else "sent"
        lines: list[str] = []
        tally = self._tallies.setdefault(key, Tally())
        tally.pdus += 1
        for index, pdv in enumerate(pdu.pdvs):
            tally.add_pdv(pdv.is_command, len(pdv.data))
            command: Mapping[str, Value] | None = None
            if pdv.is_command:
                parts = self._commands.setdefault(key, [])
                parts.append(pdv.data)
                if not pdv.is_last:
                    continue
                del self._commands[key]
                try:
                    decoded = decode_command(b"".join(parts))
                except DimseError as exc:
                    lines.append(f"a command set that cannot be decoded: {exc}")
                    self._tallies[key] = tally = Tally()
                    continue
                if decoded.has_data_set:
                    self._waiting[key] = decoded
                    continue
                command = decoded
            elif pdv.is_last:
                command = self._waiting.pop(key, None)
            if command is None:
                continue
            lines.append(
                "DIMSE " + describe_message(verb, command, pdv.context_id, tally, self.names)
            )
            self._tallies[key] = tally = Tally()
            if index < len(pdu.pdvs) - 1:
                tally.pdus = 1  # the rest of this PDU begins the next message
        return lines


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m dimse.explain FILE`: a PDU dump, with its DIMSE messages and the
    names of its UIDs."""
    return run(argv, prog="python -m dimse.explain", uid_name=uid_name, more=DumpMessages())


if __name__ == "__main__":
    raise SystemExit(main())
