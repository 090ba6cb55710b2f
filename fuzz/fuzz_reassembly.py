"""atheris target: P-DATA reassembly into DIMSE messages (`dimse.reassembly.Reassembler`).

    python fuzz/fuzz_reassembly.py CORPUS_DIR [libFuzzer flags]

The input is cut into a sequence of PDVs, each written as

    context ID (1) | message control header (1) | flags (1) | n (1) | n data bytes

(a last record shorter than its n takes what is left). Flags bit 0 closes the
P-DATA-TF after this PDV; bit 1 feeds an empty P-DATA-TF before it (which must be
refused). The PDVs go, P-DATA-TF by P-DATA-TF, into `Reassembler({1, 3})`, with a
command set cap of 512 bytes and a spool threshold of 1 KiB so that both limits are
within reach of a small input, and a data sink that takes the data set of a command
whose Message ID is odd (an in-memory file, as `dicomscp` gives a file of its
archive) and leaves the others to the reassembler's memory and spool. Context 1
carries Implicit VR Little Endian, context 3 Explicit VR Little Endian.

Alongside runs a model of the rules that `dimse/reassembly.py` states (ROBUSTNESS
18-21, 24): contexts {1, 3} only; a message starts with a command fragment; no
context change inside a message; no data fragment before the last command fragment;
a data set only when the command announces one, and no command fragment inside it;
a command set under the cap that `decode_command` accepts. A finding is:

- any exception but `DimseError` from `feed` or `close`;
- a P-DATA-TF refused where the model sees no fault, or accepted where it does;
- messages that differ from the model's: context, command elements, data set bytes
  (a spooled data set is read back; a sink's must be the sink itself); a sink asked
  for with another context or command than the model's; `in_progress` or
  `context_id` (0 between messages) wrong between PDUs;
- a reassembler that, once it has refused, takes another PDU;
- any exception but `DimseError` from `message_from_command` on a message given
  out, or from `decode_dataset` on its data set (in its context's transfer syntax).
"""

from __future__ import annotations

import io
import logging
import sys
import warnings
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pydicom  # noqa: F401  (imported first, so that only our code is instrumented)

# Instrumented: the reassembler and the data set decoder. The command set codec and
# the PDU classes are left plain (fuzz_command.py and fuzz_pdu.py are theirs).
UNINSTRUMENTED = [
    "dimse.commands",
    "dimse.messages",
    "dimse.message_base",
    "dimse.n_messages",
    "dimse.status",
    "dul.pdu",
    "dul.pdata",
    "dul.items",
    "dul.user_information",
    "dul.fields",
]
with atheris.instrument_imports(include=["dimse", "dul"], exclude=UNINSTRUMENTED):
    from dimse.commands import Command, Value, decode_command
    from dimse.datasets import (
        EXPLICIT_VR_LITTLE_ENDIAN,
        IMPLICIT_VR_LITTLE_ENDIAN,
        decode_dataset,
    )
    from dimse.errors import DimseError
    from dimse.messages import message_from_command
    from dimse.reassembly import Reassembler, ReceivedMessage
    from dul.pdu import P_DATA_TF, PresentationDataValue

# pydicom warns (and logs) about odd data sets, each message different: a warning
# registry that grows with every input, and a log of millions of lines. Not here.
warnings.simplefilter("ignore")
logging.disable(logging.CRITICAL)

ACCEPTED = {1: IMPLICIT_VR_LITTLE_ENDIAN, 3: EXPLICIT_VR_LITTLE_ENDIAN}
MAX_COMMAND = 512
SPOOL_THRESHOLD = 1024
END_PDU = 0x01
EMPTY_PDU_BEFORE = 0x02

Expected = tuple[int, dict[str, Value], bytes | None]


class ModelFault(Exception):
    """The model says the reassembler must refuse this PDV."""


class Model:
    """The reassembly rules of dimse/reassembly.py, written again, plainly."""

    def __init__(self) -> None:
        self.context = 0
        self.state = "idle"
        self.command_parts: list[bytes] = []
        self.command: Command | None = None
        self.data_parts: list[bytes] = []
        self.sinks = 0  # data sinks the reassembler must have asked for

    def _reset(self) -> None:
        self.state = "idle"
        self.command_parts = []
        self.command = None
        self.data_parts = []

    def pdv(self, context: int, control: int, data: bytes) -> Expected | None:
        is_command = bool(control & 1)
        is_last = bool(control & 2)
        if context not in ACCEPTED:
            raise ModelFault("context not accepted")
        if self.state == "idle":
            if not is_command:
                raise ModelFault("data before a command")
            self.state = "command"
            self.context = context
        elif context != self.context:
            raise ModelFault("context changed inside a message")
        if self.state == "command":
            if not is_command:
                raise ModelFault("data fragment inside the command")
            self.command_parts.append(data)
            if sum(map(len, self.command_parts)) > MAX_COMMAND:
                raise ModelFault("command set over the cap")
            if not is_last:
                return None
            try:
                command = decode_command(b"".join(self.command_parts))
            except DimseError:
                raise ModelFault("command set refused") from None
            if not command.has_data_set:
                self._reset()
                return (context, dict(command), None)
            self.command = command
            self.command_parts = []
            self.state = "data"
            if (command.message_id or 0) & 1:
                self.sinks += 1
            return None
        if is_command:
            raise ModelFault("command fragment inside a data set")
        self.data_parts.append(data)
        if not is_last:
            return None
        assert self.command is not None
        message = (context, dict(self.command), b"".join(self.data_parts))
        self._reset()
        return message


def parse(data: bytes) -> list[tuple[bool, list[PresentationDataValue]]]:
    """The P-DATA-TFs to feed: (empty PDU first?, PDVs) each."""
    pdus: list[tuple[bool, list[PresentationDataValue]]] = []
    pending: list[PresentationDataValue] = []
    empty_first = False
    offset = 0
    end = len(data)
    while offset + 4 <= end:
        context, control, flags, size = (
            data[offset],
            data[offset + 1],
            data[offset + 2],
            data[offset + 3],
        )
        chunk = data[offset + 4 : offset + 4 + size]
        offset += 4 + size
        if flags & EMPTY_PDU_BEFORE:
            if pending:
                pdus.append((empty_first, pending))
                pending = []
            empty_first = True
        pending.append(PresentationDataValue(context, control, chunk))
        if flags & END_PDU:
            pdus.append((empty_first, pending))
            pending, empty_first = [], False
    if pending:
        pdus.append((empty_first, pending))
    return pdus


class Sinks:
    """The data sink: an in-memory file for a command whose Message ID is odd."""

    def __init__(self) -> None:
        self.opened: list[tuple[int, Command, io.BytesIO]] = []

    def __call__(self, context_id: int, command: Command) -> io.BytesIO | None:
        if not (command.message_id or 0) & 1:
            return None
        sink = io.BytesIO()
        self.opened.append((context_id, command, sink))
        return sink


def _data_bytes(message: ReceivedMessage, sinks: Sinks) -> bytes | None:
    if message.sink is not None:
        if message.data_set is not None:
            raise AssertionError(f"a data set both in a sink and kept: {message!r}")
        mine = [entry for entry in sinks.opened if entry[2] is message.sink]
        if not mine:
            raise AssertionError(f"a sink that is none of ours came back on {message!r}")
        context, command, sink = mine[0]
        if context != message.context_id or command != message.command:
            raise AssertionError(f"the sink of context {context} came back on {message!r}")
        if sink.closed:
            raise AssertionError("the reassembler closed a sink it handed over")
        return sink.getvalue()
    data_set = message.data_set
    if data_set is None or isinstance(data_set, bytes):
        return data_set
    try:
        return data_set.read()
    finally:
        data_set.close()


#: Hashes of the data sets already given to `decode_dataset` by this process: the
#: decoding is a pure function of the bytes and the transfer syntax, and pydicom
#: (not instrumented) was 60% of the time per input, mostly on data sets that a
#: mutation elsewhere in the input had left as they were. Emptied when full. A
#: crashing input replayed alone decodes its data set again.
_DECODED: set[int] = set()
_DECODED_MAX = 1 << 18


def _check_message(message: ReceivedMessage, data: bytes | None) -> None:
    try:
        message_from_command(message.command)
    except DimseError:
        pass
    if data is not None:
        key = hash((message.context_id, data))
        if key in _DECODED:
            return
        if len(_DECODED) >= _DECODED_MAX:
            _DECODED.clear()
        _DECODED.add(key)
        try:
            decode_dataset(data, ACCEPTED[message.context_id])
        except DimseError as exc:
            if exc.status != 0xC000:
                raise AssertionError(
                    f"decode_dataset: DimseError with status {exc.status!r}"
                ) from exc


def TestOneInput(data: bytes) -> None:
    sinks = Sinks()
    reassembler = Reassembler(
        set(ACCEPTED),
        max_command_length=MAX_COMMAND,
        spool_threshold=SPOOL_THRESHOLD,
        data_sink=sinks,
    )
    model = Model()
    try:
        for empty_first, pdvs in parse(data):
            if empty_first:
                try:
                    reassembler.feed(P_DATA_TF(()))
                except DimseError:
                    _check_spent(reassembler)
                    return
                raise AssertionError("a P-DATA-TF without PDV was accepted")
            expected: list[Expected] = []
            fault: str | None = None
            for pdv in pdvs:
                try:
                    modelled = model.pdv(pdv.context_id, pdv.control, pdv.data)
                except ModelFault as exc:
                    fault = str(exc)
                    break
                if modelled is not None:
                    expected.append(modelled)
            try:
                received = reassembler.feed(P_DATA_TF(tuple(pdvs)))
            except DimseError as exc:
                if fault is None:
                    raise AssertionError(f"refused where the model sees no fault: {exc}") from exc
                _check_spent(reassembler)
                return
            if fault is not None:
                raise AssertionError(f"accepted where the model refuses: {fault}")
            if len(received) != len(expected):
                raise AssertionError(
                    f"{len(received)} messages given out, the model has {len(expected)}"
                )
            for message, (context, elements, data_set) in zip(received, expected, strict=True):
                got = _data_bytes(message, sinks)
                odd = bool((message.command.message_id or 0) & 1)
                if data_set is not None and odd != (message.sink is not None):
                    raise AssertionError("a data set went to the wrong place (sink or not)")
                if message.context_id != context or dict(message.command) != elements:
                    raise AssertionError(f"message differs from the model's: {message!r}")
                if got != data_set:
                    raise AssertionError("data set differs from the model's")
                if message.error is not None:
                    raise AssertionError(f"a write error without a sink: {message.error!r}")
                _check_message(message, got)
            if reassembler.in_progress != (model.state != "idle"):
                raise AssertionError(f"in_progress {reassembler.in_progress}, model {model.state}")
            if len(sinks.opened) != model.sinks:
                raise AssertionError(
                    f"{len(sinks.opened)} data sinks asked for, model {model.sinks}"
                )
            current = model.command if model.state == "data" else None
            if current is not None and (current.message_id or 0) & 1:
                context, command, _ = sinks.opened[-1]
                if context != model.context or command != current:
                    raise AssertionError(f"data sink asked for with context {context}, {command!r}")
            if reassembler.context_id != (model.context if model.state != "idle" else 0):
                raise AssertionError(f"context_id {reassembler.context_id}, model {model.context}")
    finally:
        reassembler.close()


def _check_spent(reassembler: Reassembler) -> None:
    try:
        reassembler.feed(P_DATA_TF((PresentationDataValue(1, 3, b""),)))
    except DimseError:
        return
    raise AssertionError("a reassembler took a PDU after refusing one")


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
