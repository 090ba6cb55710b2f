"""atheris target: the DIMSE command set decoder and the message built from it.

    python fuzz/fuzz_command.py CORPUS_DIR [libFuzzer flags, e.g. -runs=1000000]

The input is one whole command set (all command PDVs joined), as `Reassembler`
hands it to `dimse.commands.decode_command`. A finding is:

- any exception but `DimseError` from `decode_command` or `message_from_command`;
- a `DimseError` from `message_from_command` whose status is not one of None,
  0211H (unknown command field of a request) or C000H (a request lacking a field or
  carrying one of the wrong type), or that names a Message ID it should not;
- a command that does not survive its own encoding: `encode_command(dict(cmd))`
  must succeed and decode back to the same elements (but (0000,0000), which the
  encoder writes itself), whose group length is that of the bytes after it;
- a message whose `to_command()` loses or changes an element received, adds one
  that is not a default of its class (Priority, Command Data Set Type, ...), or is
  refused by the encoder; for a response, a status that cannot be named
  (`str(message.get_status())`).
"""

from __future__ import annotations

import dataclasses
import logging
import sys
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

with atheris.instrument_imports(include=["dimse"]):
    from dimse.commands import Command, Value, decode_command, encode_command
    from dimse.errors import DimseError
    from dimse.message_base import FIELD_KEYWORDS, DimseMessage, Request, Response
    from dimse.messages import all_message_types, message_from_command

# decode_command warns of each command set holding elements outside group 0000
# (it skips them): a log line per input. Not here.
logging.disable(logging.CRITICAL)

_STATUSES = (None, 0x0211, 0xC000)
_MISSING = object()


def _defaulted(cls: type[DimseMessage]) -> frozenset[str]:
    """The keywords `to_command()` may add to what was received: those of the
    fields of the class with a default other than None (Priority, Command Data Set
    Type, the Affected SOP Class UID of a C-ECHO-RQ)."""
    attributes = {
        f.name for f in dataclasses.fields(cls) if f.default not in (None, dataclasses.MISSING)
    }
    return frozenset(FIELD_KEYWORDS[a] for a in attributes if a in FIELD_KEYWORDS)


_DEFAULTED = {field: _defaulted(cls) for field, cls in all_message_types().items()}


def _elements(command: Command) -> dict[str, Value]:
    values = dict(command)
    values.pop("CommandGroupLength", None)
    return values


def check_command(data: bytes) -> None:
    try:
        command = decode_command(data)
    except DimseError:
        return
    elements = _elements(command)
    encoded = encode_command(elements)
    again = decode_command(encoded)
    if _elements(again) != elements:
        raise AssertionError(
            f"decode(encode(c)) != c\n c     = {elements!r}\n again = {_elements(again)!r}"
        )
    if again.group_length != len(encoded) - 12:
        raise AssertionError(f"group length {again.group_length} for {len(encoded) - 12} bytes")

    try:
        message = message_from_command(command)
    except DimseError as exc:
        if exc.status not in _STATUSES:
            raise AssertionError(f"DimseError with status {exc.status!r}: {exc}") from exc
        message_id = command.message_id
        if exc.status is not None and (exc.message_id is None or exc.message_id != message_id):
            raise AssertionError(
                f"status {exc.status:04X}H but message_id {exc.message_id!r} "
                f"(the command's is {message_id!r})"
            ) from exc
        field = command.command_field
        if exc.status is not None and (field is None or field & 0x8000):
            raise AssertionError(f"a response status {exc.status:04X}H for a non-request") from exc
        return
    if message.COMMAND_FIELD != command.command_field:
        raise AssertionError(f"{message.NAME} built from command field {command.command_field!r}")
    if message.has_data_set != command.has_data_set and "CommandDataSetType" in command:
        raise AssertionError(f"{message.NAME}.has_data_set differs from the command's")
    if isinstance(message, Request) and message.message_id != command.message_id:
        raise AssertionError("the request lost its Message ID")
    if isinstance(message, Response):
        str(message.get_status())
    # Nothing the peer sent is lost or changed; what is added is a default of the class.
    written = message.to_command()
    for keyword, value in elements.items():
        if written.get(keyword, _MISSING) != value:
            raise AssertionError(
                f"{message.NAME}.to_command() has {keyword}={written.get(keyword)!r}, not {value!r}"
            )
    for keyword in written.keys() - elements.keys():
        if keyword not in _DEFAULTED[message.COMMAND_FIELD]:
            raise AssertionError(f"{message.NAME}.to_command() adds {keyword}")
    encode_command(written)


def TestOneInput(data: bytes) -> None:
    check_command(data)


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
