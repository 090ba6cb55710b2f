"""The command set codec (dimse.commands) and the DIMSE messages (dimse.messages).

- golden bytes for the command set of every DIMSE-C message, written from PS3.7
  Table E.1-1 and the message tables of PS3.7 9.3, and checked against pynetdicom
  (`pynetdicom.dimse_messages`, which encodes with `pydicom.filewriter`) in both
  directions: pynetdicom writes the same bytes, and reads our bytes back to the same
  fields. pynetdicom and pydicom are references here only; the library uses neither;
- hypothesis round trips for every message type: message -> bytes -> message, and
  bytes -> command -> bytes; our bytes against pydicom's writer and reader;
- arbitrary and mutated bytes raise nothing but DimseError;
- each decoding rule of the module docstring, and each DimseError of the messages.
"""

from __future__ import annotations

import dataclasses
import functools
import struct
from io import BytesIO
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dimse.commands import (
    BY_KEYWORD,
    BY_TAG,
    COMMAND_ELEMENTS,
    DATA_SET_PRESENT,
    NO_DATA_SET,
    Command,
    Value,
    decode_command,
    encode_command,
    raw_key,
)
from dimse.errors import DimseError
from dimse.message_base import (
    FIELD_KEYWORDS,
    CommandField,
    DimseMessage,
    Priority,
    Request,
    Response,
)
from dimse.messages import (
    C_CANCEL_RQ,
    C_ECHO_RQ,
    C_ECHO_RSP,
    C_FIND_RQ,
    C_FIND_RSP,
    C_GET_RQ,
    C_GET_RSP,
    C_MOVE_RQ,
    C_MOVE_RSP,
    C_STORE_RQ,
    C_STORE_RSP,
    all_message_types,
    message_from_command,
)
from dimse.n_messages import N_ACTION_RQ, N_GET_RQ
from dimse.status import Category, Service

PROPERTY = settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])

VERIFICATION = "1.2.840.10008.1.1"
CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
STUDY_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
STUDY_MOVE = "1.2.840.10008.5.1.4.1.2.2.2"
STUDY_GET = "1.2.840.10008.5.1.4.1.2.2.3"


def el(element: int, value: bytes) -> bytes:
    """One element of PS3.7 E.1 in Implicit VR Little Endian: (0000,element), length, value."""
    return struct.pack("<HHI", 0x0000, element, len(value)) + value


def us(value: int) -> bytes:
    return struct.pack("<H", value)


def group(length: int, *elements: bytes) -> bytes:
    """(0000,0000) UL, then the elements; `length` is written by hand and checked."""
    body = b"".join(elements)
    assert len(body) == length, f"hand-counted group length {length} != {len(body)}"
    return el(0x0000, struct.pack("<I", length)) + body


# --------------------------------------------------------------------------------------
# Golden bytes, PS3.7 9.3 / E.1


#: C-ECHO-RQ, Message ID 1, written out byte by byte.
ECHO_RQ_HEX = (
    "00000000" "04000000" "38000000"  # (0000,0000) UL len 4: 56
    "00000200" "12000000" "312e322e3834302e31303030382e312e3100"  # (0000,0002) UI 1.2.840.10008.1.1\0
    "00000001" "02000000" "3000"  # (0000,0100) US 0030H C-ECHO-RQ
    "00001001" "02000000" "0100"  # (0000,0110) US Message ID 1
    "00000008" "02000000" "0101"  # (0000,0800) US 0101H no data set
)  # fmt: skip

GOLDEN: list[tuple[str, DimseMessage, bytes]] = [
    ("C-ECHO-RQ", C_ECHO_RQ(message_id=1), bytes.fromhex(ECHO_RQ_HEX)),
    (
        "C-ECHO-RSP",
        C_ECHO_RSP(message_id_being_responded_to=1, status=0, affected_sop_class_uid=VERIFICATION),
        group(
            66,
            el(0x0002, b"1.2.840.10008.1.1\x00"),
            el(0x0100, us(0x8030)),
            el(0x0120, us(1)),
            el(0x0800, us(0x0101)),
            el(0x0900, us(0x0000)),
        ),
    ),
    (
        "C-STORE-RQ",
        C_STORE_RQ(
            message_id=7,
            affected_sop_class_uid=CT_IMAGE,
            affected_sop_instance_uid="1.2.3.4.5.6",
            priority=Priority.MEDIUM,
            move_originator_aet="MOVER",
            move_originator_message_id=3,
        ),
        group(
            118,
            el(0x0002, b"1.2.840.10008.5.1.4.1.1.2\x00"),
            el(0x0100, us(0x0001)),
            el(0x0110, us(7)),
            el(0x0700, us(0)),
            el(0x0800, us(0x0001)),
            el(0x1000, b"1.2.3.4.5.6\x00"),
            el(0x1030, b"MOVER "),
            el(0x1031, us(3)),
        ),
    ),
    (
        "C-STORE-RSP",
        C_STORE_RSP(
            message_id_being_responded_to=7,
            status=0,
            affected_sop_class_uid=CT_IMAGE,
            affected_sop_instance_uid="1.2.3.4.5.6",
        ),
        group(
            94,
            el(0x0002, b"1.2.840.10008.5.1.4.1.1.2\x00"),
            el(0x0100, us(0x8001)),
            el(0x0120, us(7)),
            el(0x0800, us(0x0101)),
            el(0x0900, us(0x0000)),
            el(0x1000, b"1.2.3.4.5.6\x00"),
        ),
    ),
    (
        "C-FIND-RQ",
        C_FIND_RQ(message_id=5, affected_sop_class_uid=STUDY_FIND, priority=Priority.LOW),
        group(
            76,
            el(0x0002, b"1.2.840.10008.5.1.4.1.2.2.1\x00"),
            el(0x0100, us(0x0020)),
            el(0x0110, us(5)),
            el(0x0700, us(2)),
            el(0x0800, us(0x0001)),
        ),
    ),
    (
        "C-FIND-RSP",
        C_FIND_RSP(
            message_id_being_responded_to=5,
            status=0xFF00,
            affected_sop_class_uid=STUDY_FIND,
            data_set_type=DATA_SET_PRESENT,
        ),
        group(
            76,
            el(0x0002, b"1.2.840.10008.5.1.4.1.2.2.1\x00"),
            el(0x0100, us(0x8020)),
            el(0x0120, us(5)),
            el(0x0800, us(0x0001)),
            el(0x0900, us(0xFF00)),
        ),
    ),
    (
        "C-GET-RQ",
        C_GET_RQ(message_id=9, affected_sop_class_uid=STUDY_GET, priority=Priority.HIGH),
        group(
            76,
            el(0x0002, b"1.2.840.10008.5.1.4.1.2.2.3\x00"),
            el(0x0100, us(0x0010)),
            el(0x0110, us(9)),
            el(0x0700, us(1)),
            el(0x0800, us(0x0001)),
        ),
    ),
    (
        "C-GET-RSP",
        C_GET_RSP(
            message_id_being_responded_to=9,
            status=0xB000,
            affected_sop_class_uid=STUDY_GET,
            number_of_remaining_suboperations=0,
            number_of_completed_suboperations=3,
            number_of_failed_suboperations=1,
            number_of_warning_suboperations=0,
        ),
        group(
            116,
            el(0x0002, b"1.2.840.10008.5.1.4.1.2.2.3\x00"),
            el(0x0100, us(0x8010)),
            el(0x0120, us(9)),
            el(0x0800, us(0x0101)),
            el(0x0900, us(0xB000)),
            el(0x1020, us(0)),
            el(0x1021, us(3)),
            el(0x1022, us(1)),
            el(0x1023, us(0)),
        ),
    ),
    (
        "C-MOVE-RQ",
        C_MOVE_RQ(message_id=11, affected_sop_class_uid=STUDY_MOVE, move_destination="STORESCP"),
        group(
            92,
            el(0x0002, b"1.2.840.10008.5.1.4.1.2.2.2\x00"),
            el(0x0100, us(0x0021)),
            el(0x0110, us(11)),
            el(0x0600, b"STORESCP"),
            el(0x0700, us(0)),
            el(0x0800, us(0x0001)),
        ),
    ),
    (
        "C-MOVE-RSP",
        C_MOVE_RSP(
            message_id_being_responded_to=11,
            status=0xA801,
            affected_sop_class_uid=STUDY_MOVE,
            error_comment="Unknown AE",
        ),
        group(
            94,
            el(0x0002, b"1.2.840.10008.5.1.4.1.2.2.2\x00"),
            el(0x0100, us(0x8021)),
            el(0x0120, us(11)),
            el(0x0800, us(0x0101)),
            el(0x0900, us(0xA801)),
            el(0x0902, b"Unknown AE"),
        ),
    ),
    (
        "C-CANCEL-RQ",
        C_CANCEL_RQ(message_id_being_responded_to=5),
        group(
            30,
            el(0x0100, us(0x0FFF)),
            el(0x0120, us(5)),
            el(0x0800, us(0x0101)),
        ),
    ),
]
GOLDEN_IDS = [name for name, _, _ in GOLDEN]


@pytest.mark.parametrize(("name", "message", "golden"), GOLDEN, ids=GOLDEN_IDS)
def test_golden_encode(name: str, message: DimseMessage, golden: bytes) -> None:
    assert message.NAME == name
    assert message.encode() == golden
    assert encode_command(message.to_command()) == golden


@pytest.mark.parametrize(("name", "message", "golden"), GOLDEN, ids=GOLDEN_IDS)
def test_golden_decode(name: str, message: DimseMessage, golden: bytes) -> None:
    command = decode_command(golden)
    assert command.group_length == len(golden) - 12
    assert message_from_command(command) == message
    assert encode_command(command) == golden


# -- pynetdicom as the independent reference -------------------------------------------


def _pynetdicom_primitive(message: DimseMessage) -> tuple[Any, Any]:
    """The pynetdicom primitive and message class for one of our DIMSE-C messages."""
    primitives = pytest.importorskip("pynetdicom.dimse_primitives")
    messages = pytest.importorskip("pynetdicom.dimse_messages")
    kind = {
        CommandField.C_ECHO_RQ: primitives.C_ECHO,
        CommandField.C_ECHO_RSP: primitives.C_ECHO,
        CommandField.C_STORE_RQ: primitives.C_STORE,
        CommandField.C_STORE_RSP: primitives.C_STORE,
        CommandField.C_FIND_RQ: primitives.C_FIND,
        CommandField.C_FIND_RSP: primitives.C_FIND,
        CommandField.C_GET_RQ: primitives.C_GET,
        CommandField.C_GET_RSP: primitives.C_GET,
        CommandField.C_MOVE_RQ: primitives.C_MOVE,
        CommandField.C_MOVE_RSP: primitives.C_MOVE,
        CommandField.C_CANCEL_RQ: primitives.C_CANCEL,
    }[CommandField(message.COMMAND_FIELD)]
    return kind(), getattr(messages, message.NAME.replace("-", "_"))()


_PRIMITIVE_FIELDS = {
    "message_id": "MessageID",
    "message_id_being_responded_to": "MessageIDBeingRespondedTo",
    "affected_sop_class_uid": "AffectedSOPClassUID",
    "affected_sop_instance_uid": "AffectedSOPInstanceUID",
    "priority": "Priority",
    "move_destination": "MoveDestination",
    "move_originator_aet": "MoveOriginatorApplicationEntityTitle",
    "move_originator_message_id": "MoveOriginatorMessageID",
    "status": "Status",
    "error_comment": "ErrorComment",
    "number_of_remaining_suboperations": "NumberOfRemainingSuboperations",
    "number_of_completed_suboperations": "NumberOfCompletedSuboperations",
    "number_of_failed_suboperations": "NumberOfFailedSuboperations",
    "number_of_warning_suboperations": "NumberOfWarningSuboperations",
}


@pytest.mark.parametrize(("name", "message", "golden"), GOLDEN, ids=GOLDEN_IDS)
def test_golden_matches_pynetdicom_encoder(name: str, message: DimseMessage, golden: bytes) -> None:
    dsutils = pytest.importorskip("pynetdicom.dsutils")
    primitive, reference = _pynetdicom_primitive(message)
    for attribute, keyword in _PRIMITIVE_FIELDS.items():
        value = getattr(message, attribute, None)
        if value is not None:
            setattr(primitive, keyword, value)
    if message.has_data_set:  # pynetdicom sets 0001H when the primitive has a data set
        for keyword in ("DataSet", "Identifier"):
            if hasattr(primitive, keyword):
                setattr(primitive, keyword, BytesIO(b"\x08\x00\x52\x00\x00\x00\x00\x00"))
                break
    reference.primitive_to_message(primitive)
    assert dsutils.encode(reference.command_set, True, True) == golden


@pytest.mark.parametrize(("name", "message", "golden"), GOLDEN, ids=GOLDEN_IDS)
def test_golden_read_by_pynetdicom(name: str, message: DimseMessage, golden: bytes) -> None:
    dsutils = pytest.importorskip("pynetdicom.dsutils")
    _, reference = _pynetdicom_primitive(message)
    reference.command_set = dsutils.decode(BytesIO(golden), True, True)
    primitive = reference.message_to_primitive()
    for attribute, keyword in _PRIMITIVE_FIELDS.items():
        ours = getattr(message, attribute, None)
        if ours is not None:
            assert getattr(primitive, keyword) == ours, keyword
    assert reference.command_set.CommandDataSetType == message.data_set_type


# --------------------------------------------------------------------------------------
# hypothesis: every message type


_UID = st.lists(st.integers(min_value=0, max_value=99999).map(str), min_size=1, max_size=8).map(
    ".".join
)
_AE = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_ -", min_size=1, max_size=16).map(
    str.strip
)
_PRINTABLE = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) != "\\")
_LO = st.text(alphabet=_PRINTABLE, max_size=64).map(str.rstrip)
_CS = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_", max_size=16)
_US = st.integers(min_value=0, max_value=0xFFFF)
_UL = st.integers(min_value=0, max_value=0xFFFFFFFF)
_TAGS = st.lists(st.integers(min_value=0, max_value=0xFFFFFFFF), max_size=4).map(tuple)


@functools.cache
def _value_strategy(keyword: str) -> st.SearchStrategy[Any]:
    spec = BY_KEYWORD[keyword]
    if spec.vr == "US":
        return st.lists(_US, max_size=4).map(tuple) if spec.multi else _US
    if spec.vr == "UL":
        return _UL
    if spec.vr == "AT":
        return _TAGS
    if spec.vr == "UI":
        return _UID
    if spec.vr == "AE":
        return _AE
    if spec.vr == "IS":
        return st.integers(min_value=0, max_value=999).map(str)
    if spec.vr == "CS":
        return _CS
    if spec.vr == "SH":
        return st.text(alphabet=_PRINTABLE, max_size=16).map(str.rstrip)
    return _LO


_EXTRA_KEYWORDS: dict[type[DimseMessage], st.SearchStrategy[list[str]]] = {}


def _extra_keywords(cls: type[DimseMessage]) -> st.SearchStrategy[list[str]]:
    if cls in _EXTRA_KEYWORDS:
        return _EXTRA_KEYWORDS[cls]
    pool = [
        e.keyword
        for e in COMMAND_ELEMENTS
        if e.keyword not in ("CommandGroupLength", "CommandField")
        and e.keyword not in cls._BY_KEYWORD
    ]
    _EXTRA_KEYWORDS[cls] = st.lists(st.sampled_from(pool), max_size=3, unique=True)
    return _EXTRA_KEYWORDS[cls]


_RAW_CHOICE = st.lists(
    st.sampled_from([*range(0x0004, 0x0010), 0x2000, 0x6000, 0xFFFE]), max_size=2, unique=True
)
_RAW_VALUE = st.binary(max_size=10)


@st.composite
def _extras(draw: st.DrawFn, cls: type[DimseMessage]) -> tuple[tuple[str, Value], ...]:
    chosen = draw(_extra_keywords(cls))
    items: list[tuple[int, str, Value]] = [
        (BY_KEYWORD[k].tag, k, draw(_value_strategy(k))) for k in chosen
    ]
    for element in draw(_RAW_CHOICE):
        items.append((element, raw_key(element), draw(_RAW_VALUE)))
    return tuple((key, value) for _, key, value in sorted(items))


@functools.cache
def _or_none(keyword: str) -> st.SearchStrategy[Any]:
    return st.none() | _value_strategy(keyword)


_MESSAGE_CLASSES = st.sampled_from(
    sorted(all_message_types().values(), key=lambda c: c.COMMAND_FIELD)
)
_OPTIONAL = st.booleans()


@st.composite
def messages(draw: st.DrawFn, cls: type[DimseMessage] | None = None) -> DimseMessage:
    if cls is None:
        cls = draw(_MESSAGE_CLASSES)
    kwargs: dict[str, Any] = {}
    defaults = {f.name: f.default for f in dataclasses.fields(cls)}
    for attribute, keyword, _ in cls._FIELDS:
        strategy = _value_strategy(keyword)
        if attribute in cls._REQUIRED:
            kwargs[attribute] = draw(strategy)
        elif draw(_OPTIONAL):
            optional = defaults[attribute] is None
            kwargs[attribute] = draw(_or_none(keyword) if optional else strategy)
    return cls(extra=draw(_extras(cls)), **kwargs)


@PROPERTY
@given(messages())
def test_message_round_trip(message: DimseMessage) -> None:
    data = message.encode()
    command = decode_command(data)
    assert message_from_command(command) == message
    assert encode_command(command) == data
    assert message_from_command(command).encode() == data


ALL_TYPES = sorted(all_message_types().values(), key=lambda c: c.COMMAND_FIELD)


@pytest.mark.parametrize("cls", ALL_TYPES, ids=[c.NAME for c in ALL_TYPES])
@settings(max_examples=50, deadline=None)
@given(data=st.data())
def test_each_message_type_round_trips(cls: type[DimseMessage], data: st.DataObject) -> None:
    message = data.draw(messages(cls))
    assert message_from_command(decode_command(message.encode())) == message


def _pydicom_dataset(command: dict[str, Value]) -> Any:
    dataset_module = pytest.importorskip("pydicom.dataset")
    ds = dataset_module.Dataset()
    for keyword, value in command.items():
        spec = BY_KEYWORD.get(keyword)
        if spec is None:
            ds.add_new(0x0000_0000 | int(keyword[6:10], 16), "UN", value)
        elif isinstance(value, tuple):
            ds.add_new(spec.tag, spec.vr, list(value))
        else:
            ds.add_new(spec.tag, spec.vr, value)
    return ds


@pytest.mark.filterwarnings("ignore:VR lookup failed")  # raw elements pydicom cannot name
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages())
def test_encoding_matches_pydicom_writer(message: DimseMessage) -> None:
    """pydicom.filewriter (through pynetdicom.dsutils) writes the same elements."""
    dsutils = pytest.importorskip("pynetdicom.dsutils")
    ours = message.encode()
    reference = dsutils.encode(_pydicom_dataset(message.to_command()), True, True)
    assert ours[12:] == reference
    assert struct.unpack_from("<I", ours, 8)[0] == len(reference)


def _plain(value: Any) -> Any:
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return tuple(int(v) for v in value)
    return value


@pytest.mark.filterwarnings("ignore:VR lookup failed")  # raw elements pydicom cannot name
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages())
def test_decoding_matches_pydicom_reader(message: DimseMessage) -> None:
    dsutils = pytest.importorskip("pynetdicom.dsutils")
    ds = dsutils.decode(BytesIO(message.encode()), True, True)
    for keyword, value in message.to_command().items():
        spec = BY_KEYWORD.get(keyword)
        if spec is None:
            assert (ds[int(keyword[6:10], 16)].value or b"") == value
            continue
        theirs = ds[spec.tag].value
        if spec.vr == "AT" or spec.multi:
            theirs = () if theirs in (None, "", b"") else theirs
            theirs = _plain(theirs if not isinstance(theirs, int) else [theirs])
        elif spec.vr in ("US", "UL"):
            theirs = int(theirs)
        else:
            theirs = "" if theirs is None else str(theirs)
        assert theirs == value, keyword


# --------------------------------------------------------------------------------------
# Anything in: DimseError out


def _decode_message(data: bytes) -> None:
    try:
        command = decode_command(data)
    except DimseError:
        return
    try:
        message_from_command(command)
    except DimseError:
        return


@PROPERTY
@given(st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_dimse_error(data: bytes) -> None:
    _decode_message(data)


_element_bytes = st.builds(
    lambda element, body, declared: struct.pack("<HHI", 0, element, declared(len(body))) + body,
    st.sampled_from([e.tag for e in COMMAND_ELEMENTS] + [0x0005, 0xFFFF]),
    st.binary(max_size=12),
    st.sampled_from([lambda n: n, lambda n: n, lambda n: n + 1, lambda n: 0xFFFFFFFF]),
)


@PROPERTY
@given(st.lists(_element_bytes, max_size=12).map(b"".join), st.binary(max_size=9))
def test_element_shaped_garbage_raises_only_dimse_error(body: bytes, tail: bytes) -> None:
    _decode_message(body)
    _decode_message(body + tail)


_MUTATIONS = st.lists(
    st.tuples(
        st.sampled_from(["flip", "insert", "delete", "cut"]),
        st.floats(min_value=0, max_value=1),
        st.binary(min_size=1, max_size=4),
    ),
    min_size=1,
    max_size=4,
)


@PROPERTY
@given(messages(), _MUTATIONS)
def test_mutated_messages_raise_only_dimse_error(
    message: DimseMessage, mutations: list[tuple[str, float, bytes]]
) -> None:
    raw = bytearray(message.encode())
    for action, where, noise in mutations:
        position = int(where * len(raw))
        if action == "flip" and position < len(raw):
            raw[position] ^= noise[0] or 0xFF
        elif action == "insert":
            raw[position:position] = noise
        elif action == "delete" and position < len(raw):
            del raw[position]
        elif action == "cut":
            del raw[position:]
    _decode_message(bytes(raw))


# --------------------------------------------------------------------------------------
# Decoding rules


ECHO = bytes.fromhex(ECHO_RQ_HEX)


def test_command_without_group_length_is_accepted() -> None:
    command = decode_command(ECHO[12:])
    assert command.group_length is None
    assert "CommandGroupLength" not in command
    assert message_from_command(command) == C_ECHO_RQ(message_id=1)
    assert encode_command(command) == ECHO  # and we always send it


def test_group_length_value_is_kept_not_trusted() -> None:
    data = el(0x0000, struct.pack("<I", 9999)) + ECHO[12:]
    command = decode_command(data)
    assert command.group_length == 9999
    assert message_from_command(command) == C_ECHO_RQ(message_id=1)
    assert encode_command(command) == ECHO


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (el(0x0000, b"\x38\x00"), "value length 2, not 4"),
        (ECHO[:-1], "only 1 bytes are left"),
        (ECHO + b"\x00\x00\x00", "3 stray bytes"),
        (ECHO + struct.pack("<HHI", 0, 0x0902, 0xFFFFFFFF), "undefined length"),
        (ECHO + struct.pack("<HHI", 0, 0x0902, 100) + b"x" * 10, "value length 100"),
        (
            ECHO + struct.pack("<HHI", 0x0008, 0x0058, 100) + b"1.2",
            r"\(0008,0058\) has value length 100",
        ),
        (
            ECHO + struct.pack("<HHI", 0x0008, 0x1115, 0xFFFFFFFF),
            r"\(0008,1115\) has undefined length",
        ),
        (ECHO + struct.pack("<HHI", 0x0008, 0x0058, 8) + b"1.2", "only 3 bytes are left"),
        (ECHO + struct.pack("<HHI", 0x0008, 0x0016, 0) + b"\x00", "1 stray bytes"),
        (ECHO + struct.pack("<HHI", 0x0008, 0x0016, 0) * 2, r"\(0008,0016\) appears twice"),
        (ECHO + struct.pack("<HHI", 0x0000, 0x0900, 4) + b"\x00" * 4, "value length 4, not 2"),
        (ECHO + el(0x0900, b""), "value length 0, not 2"),
        (ECHO + el(0x0901, b"\x08\x00"), "multiple of 4"),
        (ECHO + el(0x51B0, b"\x01"), "multiple of 2"),
        (ECHO + el(0x0110, us(2)), "appears twice"),
        (ECHO + el(0x0005, b"ab") + el(0x0005, b"cd"), "appears twice"),
    ],
)
def test_refused_command_sets(data: bytes, words: str) -> None:
    with pytest.raises(DimseError, match=words) as caught:
        decode_command(data)
    assert caught.value.status is None


def stray(group: int, element: int, value: bytes) -> bytes:
    """One element outside group 0000, Implicit VR Little Endian, as some peers send."""
    return struct.pack("<HHI", group, element, len(value)) + value


def test_elements_outside_group_0000_are_skipped_with_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Orthanc's C-GET failure response also holds (0008,0000) and (0008,0058) in its
    command set: read past them (PS3.7 6.3.1 allows group 0000 only), warn once."""
    sent = encode_command(
        {
            "AffectedSOPClassUID": STUDY_GET,
            "CommandField": 0x8010,
            "MessageIDBeingRespondedTo": 7,
            "CommandDataSetType": NO_DATA_SET,
            "Status": 0xA702,
            "NumberOfRemainingSuboperations": 0,
            "NumberOfCompletedSuboperations": 0,
            "NumberOfFailedSuboperations": 1,
            "NumberOfWarningSuboperations": 0,
        }
    )
    failed_uid = b"1.2.826.0.1.3680043.2.1125.1\x00"  # UI, NUL-padded to even length
    received = (
        sent
        + stray(0x0008, 0x0000, struct.pack("<I", 8 + len(failed_uid)))
        + stray(0x0008, 0x0058, failed_uid)
    )
    with caplog.at_level("WARNING", logger="dimse.commands"):
        command = decode_command(received)
    assert command.command_field == 0x8010
    assert command["Status"] == 0xA702
    assert command.message_id_being_responded_to == 7
    assert not command.has_data_set
    assert all(key in BY_KEYWORD for key in command)  # nothing of group 0008 kept
    assert message_from_command(command) == C_GET_RSP(
        message_id_being_responded_to=7,
        status=0xA702,
        affected_sop_class_uid=STUDY_GET,
        number_of_remaining_suboperations=0,
        number_of_completed_suboperations=0,
        number_of_failed_suboperations=1,
        number_of_warning_suboperations=0,
    )
    assert encode_command(command) == sent  # the encoder never writes them back
    records = [r for r in caplog.records if r.name == "dimse.commands"]
    assert len(records) == 1
    assert records[0].levelname == "WARNING"
    assert records[0].getMessage() == (
        "command set: ignoring elements (0008,0000), (0008,0058) outside the command "
        "group 0000 (PS3.7 6.3.1), as a peer's harmless mistake"
    )


def test_a_refused_stray_element_logs_no_warning(caplog: pytest.LogCaptureFixture) -> None:
    data = ECHO + struct.pack("<HHI", 0x0008, 0x0058, 100) + b"1.2"
    with caplog.at_level("WARNING", logger="dimse.commands"):
        with pytest.raises(DimseError, match="value length 100, but only 3 bytes are left"):
            decode_command(data)
    assert not [r for r in caplog.records if r.name == "dimse.commands"]


def test_not_a_buffer_is_a_dimse_error() -> None:
    with pytest.raises(DimseError):
        decode_command("not bytes")  # type: ignore[arg-type]


def test_empty_command_set_decodes_to_nothing() -> None:
    command = decode_command(b"")
    assert len(command) == 0 and not command.has_data_set
    with pytest.raises(DimseError, match="no Command Field"):
        message_from_command(command)


def test_elements_out_of_order_are_accepted_and_rewritten_in_order() -> None:
    elements = [ECHO[12 + 26 : 12 + 36], ECHO[12:38], ECHO[48:58], ECHO[58:]]
    command = decode_command(b"".join(elements))
    assert message_from_command(command) == C_ECHO_RQ(message_id=1)
    assert encode_command(command) == ECHO


def test_unknown_elements_are_kept_raw() -> None:
    data = ECHO + el(0x0005, b"\x01\x02\x03") + el(0x7777, b"")
    command = decode_command(data)
    assert command["(0000,0005)"] == b"\x01\x02\x03"
    assert command["(0000,7777)"] == b""
    message = message_from_command(command)
    assert message.extra == (("(0000,0005)", b"\x01\x02\x03"), ("(0000,7777)", b""))
    again = decode_command(message.encode())  # written back, in tag order
    assert list(again) == [
        "CommandGroupLength",
        "AffectedSOPClassUID",
        "(0000,0005)",
        "CommandField",
        "MessageID",
        "CommandDataSetType",
        "(0000,7777)",
    ]
    assert {k: v for k, v in again.items() if k != "CommandGroupLength"} == {
        k: v for k, v in command.items() if k != "CommandGroupLength"
    }


def test_padding_is_removed() -> None:
    data = group(
        73,
        el(0x0002, b"1.2.3 "),  # space-padded UI, as some peers send
        el(0x0100, us(0x0021)),
        el(0x0110, us(3)),
        el(0x0600, b"  DEST  "),  # AE: spaces on both ends are not significant
        el(0x0800, us(0x0001)),
        el(0x0902, b"oops\x00"),  # odd length, NUL-padded text
    )
    command = decode_command(data)
    assert command["AffectedSOPClassUID"] == "1.2.3"
    assert command["MoveDestination"] == "DEST"
    assert command["ErrorComment"] == "oops"
    message = message_from_command(command)
    assert isinstance(message, C_MOVE_RQ) and message.move_destination == "DEST"


def test_latin1_text_round_trips() -> None:
    message = C_STORE_RSP(message_id_being_responded_to=1, status=0xC000, error_comment="café")
    assert message_from_command(decode_command(message.encode())) == message


def test_at_values_are_tags() -> None:
    message = C_STORE_RSP(
        message_id_being_responded_to=1, status=0xA900, offending_element=(0x00080016, 0x00080018)
    )
    data = message.encode()
    assert el(0x0901, bytes.fromhex("0800 1600 0800 1800".replace(" ", ""))) in data
    assert message_from_command(decode_command(data)) == message


# --------------------------------------------------------------------------------------
# Encoding rules


def test_encoder_writes_group_length_first_and_ignores_a_given_one() -> None:
    data = encode_command({"MessageID": 1, "CommandGroupLength": 5, "CommandField": 0x30})
    assert data[:12] == el(0x0000, struct.pack("<I", 20))
    assert data[12:] == el(0x0100, us(0x30)) + el(0x0110, us(1))


def test_encoder_pads_to_even_length() -> None:
    data = encode_command(
        {"AffectedSOPClassUID": "1.2.3", "MoveDestination": "ABC", "ErrorComment": "x"}
    )
    assert el(0x0002, b"1.2.3\x00") in data
    assert el(0x0600, b"ABC ") in data
    assert el(0x0902, b"x ") in data


def test_encoder_leaves_out_none() -> None:
    assert encode_command({"MessageID": None}) == el(0x0000, struct.pack("<I", 0))


@pytest.mark.parametrize(
    ("elements", "error"),
    [
        ({"MessageId": 1}, ValueError),
        ({"(0000,0110)": b"\x01\x00"}, ValueError),
        ({"(0000,zzzz)": b""}, ValueError),
        ({"(0000,0005)": "text"}, TypeError),
        ({"MessageID": 0x10000}, ValueError),
        ({"MessageID": -1}, ValueError),
        ({"MessageID": "1"}, ValueError),
        ({"CommandLengthToEnd": 1 << 32}, ValueError),
        ({"AffectedSOPClassUID": 1}, TypeError),
        ({"ErrorComment": "snow ☃"}, ValueError),
        ({"OffendingElement": "x"}, TypeError),
        ({"OffendingElement": (1 << 32,)}, ValueError),
    ],
)
def test_encoder_refuses_bad_values(elements: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        encode_command(elements)


def test_element_table_matches_the_pydicom_dictionary() -> None:
    datadict = pytest.importorskip("pydicom.datadict")
    group_0000 = {t: v for t, v in datadict.DicomDictionary.items() if t >> 16 == 0}
    assert set(group_0000) == set(BY_TAG)
    for tag, (vr, vm, _, retired, keyword) in group_0000.items():
        spec = BY_TAG[tag]
        assert (spec.keyword, spec.vr, spec.vm, spec.retired) == (keyword, vr, vm, bool(retired))


# --------------------------------------------------------------------------------------
# Messages


def test_registry_holds_every_command_field() -> None:
    assert set(all_message_types()) == {int(f) for f in CommandField}
    for field, cls in all_message_types().items():
        assert cls.COMMAND_FIELD == field
        assert cls.NAME.replace("-", "_") == cls.__name__
        assert issubclass(cls, Response) == bool(field & 0x8000)
        assert set(cls._BY_KEYWORD) <= set(FIELD_KEYWORDS.values())


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("C_STORE_RQ", 0x0001),
        ("C_STORE_RSP", 0x8001),
        ("C_FIND_RQ", 0x0020),
        ("C_GET_RQ", 0x0010),
        ("C_MOVE_RQ", 0x0021),
        ("C_ECHO_RQ", 0x0030),
        ("C_CANCEL_RQ", 0x0FFF),
        ("N_EVENT_REPORT_RQ", 0x0100),
        ("N_GET_RQ", 0x0110),
        ("N_SET_RQ", 0x0120),
        ("N_ACTION_RQ", 0x0130),
        ("N_CREATE_RQ", 0x0140),
        ("N_DELETE_RQ", 0x0150),
        ("N_DELETE_RSP", 0x8150),
    ],
)
def test_command_field_values(field: str, value: int) -> None:
    assert CommandField[field] == value


def test_priority_values() -> None:
    assert (Priority.LOW, Priority.MEDIUM, Priority.HIGH) == (2, 0, 1)


def test_unknown_request_command_field_answers_0211() -> None:
    command = decode_command(encode_command({"CommandField": 0x0042, "MessageID": 12}))
    with pytest.raises(DimseError, match="0042H is not a DIMSE message") as caught:
        message_from_command(command)
    assert caught.value.status == 0x0211
    assert caught.value.message_id == 12


def test_unknown_response_command_field_has_no_answer() -> None:
    command = decode_command(
        encode_command({"CommandField": 0x8042, "MessageIDBeingRespondedTo": 1})
    )
    with pytest.raises(DimseError) as caught:
        message_from_command(command)
    assert caught.value.status is None and caught.value.message_id is None


def test_missing_mandatory_field_of_a_request_answers_c000() -> None:
    command = decode_command(
        encode_command({"CommandField": 0x0001, "MessageID": 4, "AffectedSOPClassUID": CT_IMAGE})
    )
    with pytest.raises(DimseError, match="AffectedSOPInstanceUID") as caught:
        message_from_command(command)
    assert caught.value.status == 0xC000 and caught.value.message_id == 4
    assert "C000H" in str(caught.value)


def test_missing_message_id_has_no_answer() -> None:
    command = decode_command(encode_command({"CommandField": 0x0030}))
    with pytest.raises(DimseError, match="MessageID") as caught:
        message_from_command(command)
    assert caught.value.status is None


def test_response_without_status_is_refused() -> None:
    command = decode_command(
        encode_command({"CommandField": 0x8030, "MessageIDBeingRespondedTo": 1})
    )
    with pytest.raises(DimseError, match="Status"):
        message_from_command(command)


def test_mistyped_field_is_refused() -> None:
    find: dict[str, Value] = {
        "CommandField": 0x0020,
        "MessageID": 1,
        "AffectedSOPClassUID": STUDY_FIND,
    }
    with pytest.raises(DimseError, match="Priority is a str, not a int") as caught:
        message_from_command(Command({**find, "Priority": "HIGH"}))
    assert caught.value.status == 0xC000 and caught.value.message_id == 1
    # Priority is no field of a C-ECHO-RQ: whatever it holds is kept, not judged
    echo = message_from_command(Command({"CommandField": 0x0030, "MessageID": 2, "Priority": "x"}))
    assert echo == C_ECHO_RQ(message_id=2, extra=(("Priority", "x"),))


def test_defaults_fill_optional_mandatory_fields() -> None:
    command = decode_command(
        encode_command({"CommandField": 0x0020, "MessageID": 3, "AffectedSOPClassUID": STUDY_FIND})
    )
    message = message_from_command(command)
    assert isinstance(message, C_FIND_RQ)
    assert message.priority == Priority.MEDIUM
    assert message.data_set_type == DATA_SET_PRESENT


def test_data_set_type() -> None:
    echo = C_ECHO_RQ(message_id=1)
    assert not echo.has_data_set and echo.data_set_type == NO_DATA_SET
    store = C_STORE_RQ(
        message_id=1, affected_sop_class_uid=CT_IMAGE, affected_sop_instance_uid="1.2"
    )
    assert store.has_data_set
    assert not store.with_data_set(False).has_data_set
    assert store.with_data_set(False).with_data_set().data_set_type == DATA_SET_PRESENT
    odd = C_FIND_RSP(message_id_being_responded_to=1, status=0xFF00, data_set_type=0xFEFE)
    assert odd.has_data_set and odd.with_data_set().data_set_type == 0xFEFE
    assert decode_command(odd.encode()).has_data_set
    assert not decode_command(ECHO).has_data_set
    assert not Command({"CommandField": 1}).has_data_set  # no (0000,0800): no data set


def test_response_status() -> None:
    response = C_MOVE_RSP(
        message_id_being_responded_to=1,
        status=0xA801,
        error_comment="who?",
        offending_element=(0x00000600,),
    )
    status = response.get_status()
    assert status.service is Service.C_MOVE
    assert status.category is Category.FAILURE
    assert status.name == "Refused: Move Destination unknown"
    assert status.offending_element == (0x00000600,)
    assert str(status) == "A801H Failure: Refused: Move Destination unknown (who?)"


def test_n_messages() -> None:
    get = N_GET_RQ(
        message_id=3,
        requested_sop_class_uid="1.2.840.10008.5.1.1.16",
        requested_sop_instance_uid="1.2.840.10008.5.1.1.17",
        attribute_identifier_list=(0x21100010, 0x21100020),
    )
    assert get.to_command()["RequestedSOPClassUID"] == "1.2.840.10008.5.1.1.16"
    assert message_from_command(decode_command(get.encode())) == get
    action = N_ACTION_RQ(
        message_id=4,
        requested_sop_class_uid="1.2.840.10008.1.20.1",
        requested_sop_instance_uid="1.2.840.10008.1.20.1.1",
        action_type_id=1,
        data_set_type=DATA_SET_PRESENT,
    )
    assert isinstance(action, Request)
    assert message_from_command(decode_command(action.encode())) == action


def test_messages_are_frozen() -> None:
    message = C_ECHO_RQ(message_id=1)
    with pytest.raises(AttributeError):
        message.message_id = 2  # type: ignore[misc]
    assert hash(message) == hash(C_ECHO_RQ(message_id=1))
