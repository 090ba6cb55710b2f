"""The command set codec: group 0000 in Implicit VR Little Endian (PS3.7 6.3.1, Annex E).

A DIMSE message starts with its command set: data elements of group 0000 only,
always encoded Implicit VR Little Endian whatever transfer syntax the presentation
context uses (PS3.7 6.3.1). Each element is

    group (2, LE) | element (2, LE) | value length (4, LE) | value

and the elements come in increasing tag order, (0000,0000) Command Group Length
first, holding the number of bytes that follow it.

The codec is written by hand over `struct` (no pydicom): it runs for every message
and every C-FIND match, and `decode_command` must fail in exactly one way.

Encoding (`encode_command`): always writes (0000,0000) itself, whatever the mapping
holds under "CommandGroupLength"; elements in tag order; UI values padded to even
length with NUL, other text with a space (PS3.5 6.2). A value of None is left out.

Decoding (`decode_command`) raises only `DimseError`, for any input. What it accepts
and refuses where PS3.7 leaves a choice:

- (0000,0000) may be missing (DCMTK accepts such command sets, and so do we); when
  present it must be 4 bytes long, but its value is not checked against the bytes
  that follow: the end of the command set is the end of its last PDV (PS3.8 E.2),
  and the value is kept in `Command.group_length` for the log.
- an element outside group 0000 (PS3.7 6.3.1 allows none), with a defined length
  that fits in the bytes: skipped, its value not kept, and logged once per command
  set as a warning on the logger "dimse.commands". Orthanc sends C-GET responses
  holding (0008,0000) and (0008,0058); pynetdicom reads past them too. Such an
  element is still read like any other: its length must fit, and it may not appear
  twice. `encode_command` never writes one.
- an element whose value length runs past the end of the bytes (undefined length
  FFFFFFFFH included), whatever its group, fewer than 8 stray bytes at the end, a
  US value that is not 2 bytes, a UL that is not 4, an AT or a multi-valued US
  whose length is not a multiple of 4 or 2, or the same tag twice: refused.
- elements out of tag order: accepted (PS3.5 7.1 orders them, but nothing is
  ambiguous); `encode_command` writes them back in order.
- a tag of group 0000 that PS3.7 E.1/E.2 does not define: kept, with its raw value
  bytes, under the key "(0000,xxxx)", so that it can be logged and written back
  unchanged. `encode_command` accepts the same keys with `bytes` values.
- text is decoded as Latin-1 (which cannot fail; PS3.7 command sets use the default
  repertoire, a subset), then the padding is removed: trailing NUL and spaces for UI,
  spaces on both ends for AE, trailing spaces and NUL for the other text VRs.

Values are `int` (US, UL), `str` (UI, AE, LO, SH, LT, CS, IS), `tuple[int, ...]` (AT,
each tag as group << 16 | element; and US of VM 1-n), or `bytes` (unknown tags).
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TypeAlias

from dimse.errors import DimseError

log = logging.getLogger("dimse.commands")

Value: TypeAlias = int | str | tuple[int, ...] | bytes
Buffer: TypeAlias = bytes | bytearray | memoryview

_ELEMENT_HEADER = struct.Struct("<HHI")
_US = struct.Struct("<H")
_UL = struct.Struct("<I")
_GROUP_LENGTH_PREFIX = _ELEMENT_HEADER.pack(0, 0, 4)

#: CommandDataSetType (0000,0800) value meaning "no data set" (PS3.7 E.1).
NO_DATA_SET = 0x0101
#: The value we send when a data set follows; any value but 0101H means one does.
DATA_SET_PRESENT = 0x0001


@dataclass(frozen=True, slots=True)
class CommandElement:
    """One row of PS3.7 Table E.1-1 (or of the retired Table E.2-1)."""

    tag: int
    keyword: str
    vr: str
    vm: str
    retired: bool = False

    @property
    def multi(self) -> bool:
        return self.vm != "1"


_E = CommandElement

#: PS3.7 Table E.1-1 (command fields) and Table E.2-1 (retired command fields).
COMMAND_ELEMENTS: tuple[CommandElement, ...] = (
    _E(0x0000, "CommandGroupLength", "UL", "1"),
    _E(0x0001, "CommandLengthToEnd", "UL", "1", retired=True),
    _E(0x0002, "AffectedSOPClassUID", "UI", "1"),
    _E(0x0003, "RequestedSOPClassUID", "UI", "1"),
    _E(0x0010, "CommandRecognitionCode", "SH", "1", retired=True),
    _E(0x0100, "CommandField", "US", "1"),
    _E(0x0110, "MessageID", "US", "1"),
    _E(0x0120, "MessageIDBeingRespondedTo", "US", "1"),
    _E(0x0200, "Initiator", "AE", "1", retired=True),
    _E(0x0300, "Receiver", "AE", "1", retired=True),
    _E(0x0400, "FindLocation", "AE", "1", retired=True),
    _E(0x0600, "MoveDestination", "AE", "1"),
    _E(0x0700, "Priority", "US", "1"),
    _E(0x0800, "CommandDataSetType", "US", "1"),
    _E(0x0850, "NumberOfMatches", "US", "1", retired=True),
    _E(0x0860, "ResponseSequenceNumber", "US", "1", retired=True),
    _E(0x0900, "Status", "US", "1"),
    _E(0x0901, "OffendingElement", "AT", "1-n"),
    _E(0x0902, "ErrorComment", "LO", "1"),
    _E(0x0903, "ErrorID", "US", "1"),
    _E(0x1000, "AffectedSOPInstanceUID", "UI", "1"),
    _E(0x1001, "RequestedSOPInstanceUID", "UI", "1"),
    _E(0x1002, "EventTypeID", "US", "1"),
    _E(0x1005, "AttributeIdentifierList", "AT", "1-n"),
    _E(0x1008, "ActionTypeID", "US", "1"),
    _E(0x1020, "NumberOfRemainingSuboperations", "US", "1"),
    _E(0x1021, "NumberOfCompletedSuboperations", "US", "1"),
    _E(0x1022, "NumberOfFailedSuboperations", "US", "1"),
    _E(0x1023, "NumberOfWarningSuboperations", "US", "1"),
    _E(0x1030, "MoveOriginatorApplicationEntityTitle", "AE", "1"),
    _E(0x1031, "MoveOriginatorMessageID", "US", "1"),
    _E(0x4000, "DialogReceiver", "LT", "1", retired=True),
    _E(0x4010, "TerminalType", "LT", "1", retired=True),
    _E(0x5010, "MessageSetID", "SH", "1", retired=True),
    _E(0x5020, "EndMessageID", "SH", "1", retired=True),
    _E(0x5110, "DisplayFormat", "LT", "1", retired=True),
    _E(0x5120, "PagePositionID", "LT", "1", retired=True),
    _E(0x5130, "TextFormatID", "CS", "1", retired=True),
    _E(0x5140, "NormalReverse", "CS", "1", retired=True),
    _E(0x5150, "AddGrayScale", "CS", "1", retired=True),
    _E(0x5160, "Borders", "CS", "1", retired=True),
    _E(0x5170, "Copies", "IS", "1", retired=True),
    _E(0x5180, "CommandMagnificationType", "CS", "1", retired=True),
    _E(0x5190, "Erase", "CS", "1", retired=True),
    _E(0x51A0, "Print", "CS", "1", retired=True),
    _E(0x51B0, "Overlays", "US", "1-n", retired=True),
)

BY_TAG: dict[int, CommandElement] = {e.tag: e for e in COMMAND_ELEMENTS}
BY_KEYWORD: dict[str, CommandElement] = {e.keyword: e for e in COMMAND_ELEMENTS}


def raw_key(element: int) -> str:
    """The key under which an element (0000,`element`) unknown to PS3.7 E is kept."""
    return f"(0000,{element:04X})"


def _parse_raw_key(key: str) -> int:
    if len(key) == 11 and key.startswith("(0000,") and key.endswith(")"):
        try:
            element = int(key[6:10], 16)
        except ValueError:
            pass
        else:
            if element in BY_TAG:
                keyword = BY_TAG[element].keyword
                raise ValueError(f"{key} is {keyword}: give it by its keyword")
            return element
    raise ValueError(f"{key!r} is not a command element keyword of PS3.7 E.1/E.2")


# --------------------------------------------------------------------------------------
# Values, by VR


def _text_bytes(value: Value, keyword: str, pad: bytes) -> bytes:
    if not isinstance(value, str):
        raise TypeError(f"{keyword} takes a str, not {type(value).__name__}")
    try:
        data = value.encode("latin-1")
    except UnicodeEncodeError:
        raise ValueError(f"{keyword} {value!r} has characters outside Latin-1") from None
    return data + pad if len(data) & 1 else data


def _encode_ui(value: Value, keyword: str) -> bytes:
    return _text_bytes(value, keyword, b"\x00")


def _encode_text(value: Value, keyword: str) -> bytes:
    return _text_bytes(value, keyword, b" ")


def _encode_us(value: Value, keyword: str) -> bytes:
    if not isinstance(value, int) or not 0 <= value <= 0xFFFF:
        raise ValueError(f"{keyword} (US) must be an int from 0 to 65535, not {value!r}")
    return _US.pack(value)


def _encode_ul(value: Value, keyword: str) -> bytes:
    if not isinstance(value, int) or not 0 <= value <= 0xFFFFFFFF:
        raise ValueError(f"{keyword} (UL) must be an int from 0 to 2**32-1, not {value!r}")
    return _UL.pack(value)


def _as_ints(value: Value, keyword: str) -> tuple[int, ...]:
    if isinstance(value, int):
        return (value,)
    if isinstance(value, (tuple, list)) and all(isinstance(v, int) for v in value):
        return tuple(value)
    raise TypeError(f"{keyword} takes an int or a tuple of ints, not {value!r}")


def _encode_at(value: Value, keyword: str) -> bytes:
    tags = _as_ints(value, keyword)
    if any(not 0 <= t <= 0xFFFFFFFF for t in tags):
        raise ValueError(f"{keyword} (AT) tags must be 32-bit, not {tags!r}")
    return b"".join(struct.pack("<HH", t >> 16, t & 0xFFFF) for t in tags)


def _encode_us_multi(value: Value, keyword: str) -> bytes:
    return b"".join(_encode_us(v, keyword) for v in _as_ints(value, keyword))


def _bad_length(spec: CommandElement, length: int, expected: str) -> DimseError:
    return DimseError(
        f"command element {spec.keyword} (0000,{spec.tag:04X}) {spec.vr} has value "
        f"length {length}, not {expected}"
    )


def _decode_us(raw: bytes, spec: CommandElement) -> Value:
    if len(raw) != 2:
        raise _bad_length(spec, len(raw), "2")
    return raw[0] | raw[1] << 8


def _decode_ul(raw: bytes, spec: CommandElement) -> Value:
    if len(raw) != 4:
        raise _bad_length(spec, len(raw), "4")
    return int.from_bytes(raw, "little")


def _decode_at(raw: bytes, spec: CommandElement) -> Value:
    if len(raw) & 3:
        raise _bad_length(spec, len(raw), "a multiple of 4")
    words = struct.unpack(f"<{len(raw) // 2}H", raw)
    return tuple((words[i] << 16) | words[i + 1] for i in range(0, len(words), 2))


def _decode_us_multi(raw: bytes, spec: CommandElement) -> Value:
    if len(raw) & 1:
        raise _bad_length(spec, len(raw), "a multiple of 2")
    return tuple(struct.unpack(f"<{len(raw) // 2}H", raw))


def _decode_ui(raw: bytes, spec: CommandElement) -> Value:
    return raw.decode("latin-1").rstrip("\x00 ")


def _decode_ae(raw: bytes, spec: CommandElement) -> Value:
    return raw.decode("latin-1").rstrip("\x00 ").lstrip(" ")


def _decode_text(raw: bytes, spec: CommandElement) -> Value:
    return raw.decode("latin-1").rstrip(" \x00")


_Encoder = Callable[[Value, str], bytes]
_Decoder = Callable[[bytes, CommandElement], Value]


def _codec(spec: CommandElement) -> tuple[_Encoder, _Decoder]:
    if spec.vr == "US":
        return (_encode_us_multi, _decode_us_multi) if spec.multi else (_encode_us, _decode_us)
    if spec.vr == "UL":
        return _encode_ul, _decode_ul
    if spec.vr == "AT":
        return _encode_at, _decode_at
    if spec.vr == "UI":
        return _encode_ui, _decode_ui
    if spec.vr == "AE":
        return _encode_text, _decode_ae
    return _encode_text, _decode_text


#: keyword -> (element number, encoder); element number -> (keyword, decoder, row).
_ENCODERS: dict[str, tuple[int, _Encoder]] = {}
_DECODERS: dict[int, tuple[str, _Decoder, CommandElement]] = {}
for _spec in COMMAND_ELEMENTS:
    _enc, _dec = _codec(_spec)
    _ENCODERS[_spec.keyword] = (_spec.tag, _enc)
    _DECODERS[_spec.tag] = (_spec.keyword, _dec, _spec)
del _spec, _enc, _dec


# --------------------------------------------------------------------------------------
# The decoded command set


class Command(Mapping[str, Value]):
    """A decoded command set: keyword -> value, in the order received.

    Unknown elements are kept under "(0000,xxxx)" with their raw bytes. The typed
    properties give the few fields every layer needs, or None when absent or of the
    wrong type. `stray` holds, by tag and raw, the elements of other groups a peer put
    in by mistake, which are not part of the command (Orthanc's Failed SOP Instance
    UID List, read by the C-GET requestor when no identifier carries one).
    """

    __slots__ = ("_elements", "stray")

    def __init__(
        self, elements: Mapping[str, Value] | None = None, stray: Mapping[int, bytes] | None = None
    ) -> None:
        self._elements: dict[str, Value] = dict(elements) if elements else {}
        self.stray: dict[int, bytes] = dict(stray) if stray else {}

    def __getitem__(self, key: str) -> Value:
        return self._elements[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._elements)

    def __len__(self) -> int:
        return len(self._elements)

    def __repr__(self) -> str:
        return f"Command({self._elements!r})"

    def _int(self, keyword: str) -> int | None:
        value = self._elements.get(keyword)
        return value if isinstance(value, int) else None

    @property
    def command_field(self) -> int | None:
        return self._int("CommandField")

    @property
    def message_id(self) -> int | None:
        return self._int("MessageID")

    @property
    def message_id_being_responded_to(self) -> int | None:
        return self._int("MessageIDBeingRespondedTo")

    @property
    def data_set_type(self) -> int | None:
        return self._int("CommandDataSetType")

    @property
    def group_length(self) -> int | None:
        """The Command Group Length (0000,0000) as received; None when absent."""
        return self._int("CommandGroupLength")

    @property
    def has_data_set(self) -> bool:
        """Whether a data set follows (PS3.7 E.1: any CommandDataSetType but 0101H).

        A command set without CommandDataSetType says nothing of a data set, and is
        taken to have none.
        """
        kind = self.data_set_type
        return kind is not None and kind != NO_DATA_SET


# --------------------------------------------------------------------------------------
# Encoding and decoding


def encode_command(elements: Mapping[str, Value | None]) -> bytes:
    """Encode a command set, (0000,0000) first and the rest in tag order.

    Keys are the keywords of PS3.7 E.1/E.2 or "(0000,xxxx)" for raw elements (with
    `bytes` values, written as given). None values are left out. A bad keyword or
    value is the caller's bug: ValueError or TypeError.
    """
    parts: list[tuple[int, bytes]] = []
    for keyword, value in elements.items():
        if value is None:
            continue
        entry = _ENCODERS.get(keyword)
        if entry is None:
            element = _parse_raw_key(keyword)
            if not isinstance(value, (bytes, bytearray, memoryview)):
                raise TypeError(f"raw element {keyword} takes bytes, not {type(value).__name__}")
            parts.append((element, bytes(value)))
        elif entry[0] != 0x0000:
            parts.append((entry[0], entry[1](value, keyword)))
    parts.sort(key=_first)
    pack = _ELEMENT_HEADER.pack
    body = b"".join([pack(0, element, len(data)) + data for element, data in parts])
    if len(body) > 0xFFFFFFFF:
        raise ValueError(f"a command set of {len(body)} bytes does not fit a UL group length")
    return _GROUP_LENGTH_PREFIX + _UL.pack(len(body)) + body


def _first(item: tuple[int, bytes]) -> int:
    return item[0]


def decode_command(data: Buffer) -> Command:
    """Decode a whole command set (all command PDVs joined). Raises only DimseError.

    Elements outside group 0000 are skipped with one warning (see the module notes)."""
    if not isinstance(data, bytes):  # a command set is small: one copy, then plain bytes
        try:
            data = bytes(memoryview(data))
        except TypeError as exc:  # not a buffer at all: our caller's bug, said plainly
            raise DimseError(f"a command set must be bytes, not {type(data).__name__}") from exc
    end = len(data)
    offset = 0
    values: dict[str, Value] = {}
    stray: dict[int, bytes] = {}  # elements outside group 0000: kept apart, raw
    unpack = _ELEMENT_HEADER.unpack_from
    while offset < end:
        if end - offset < 8:
            raise DimseError(
                f"command set: {end - offset} stray bytes at offset {offset} where an "
                "element header (8 bytes, Implicit VR Little Endian) should be"
            )
        group, element, length = unpack(data, offset)
        offset += 8
        if length > end - offset:
            what = "undefined length" if length == 0xFFFFFFFF else f"value length {length}"
            raise DimseError(
                f"command set: element ({group:04X},{element:04X}) has {what}, but only "
                f"{end - offset} bytes are left"
            )
        raw = data[offset : offset + length]
        offset += length
        if group != 0x0000:
            # PS3.7 6.3.1 allows group 0000 only; a peer's stray element (Orthanc's
            # (0008,0058) in a C-GET-RSP) is read past, as pynetdicom does.
            tag = group << 16 | element
            if tag in stray:
                raise DimseError(f"command set: element ({group:04X},{element:04X}) appears twice")
            stray[tag] = raw
            continue
        decoder = _DECODERS.get(element)
        if decoder is None:
            key: str = raw_key(element)
            value: Value = raw
        else:
            key = decoder[0]
            value = decoder[1](raw, decoder[2])
        if key in values:
            raise DimseError(f"command set: element (0000,{element:04X}) appears twice")
        values[key] = value
    if stray:  # one line per command set, naming every element skipped
        tags = ", ".join(f"({t >> 16:04X},{t & 0xFFFF:04X})" for t in sorted(stray))
        log.warning(
            "command set: ignoring element%s %s outside the command group 0000 "
            "(PS3.7 6.3.1), as a peer's harmless mistake",
            "s" if len(stray) > 1 else "",
            tags,
        )
    return Command(values, stray)
