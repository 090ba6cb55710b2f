"""The DIMSE messages (PS3.7 9.3 for DIMSE-C, 10.3 for DIMSE-N) as frozen dataclasses.

Each message class holds the fields of its table in PS3.7 (Table 9.3-1 ... 9.3-14,
10.3-1 ... 10.3-12) under snake_case names, plus the status fields of Annex C on the
responses. `to_command()` gives the mapping that `encode_command` writes;
`message_from_command(command)` finds the class by Command Field (0000,0100) and
builds the message.

Rules where the tables leave a choice:

- A field without a default in the class is mandatory: if the command lacks it,
  `message_from_command` raises `DimseError`. For a request that carries a Message
  ID the error has `status` C000H ("cannot understand") and `message_id`, so that
  the service layer can still answer. Fields with a default (Priority MEDIUM, the
  Command Data Set Type) take the default when absent.
- Command elements that the message's table does not list (a retired element, a
  Priority in a response, a tag unknown to PS3.7 E) are kept in `extra`, in the
  order received, and written back by `to_command()`: nothing the peer sent is lost.
- An unknown Command Field raises `DimseError` with status 0211H "Unrecognized
  Operation" when bit 15 is clear (a request) and a Message ID is present.
- `data_set_type` is the raw (0000,0800) value: 0101H means no data set, anything
  else that one follows (PS3.7 E.1). Requests that always carry a data set default
  to `DATA_SET_PRESENT` (0001H); the rest default to `NO_DATA_SET`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import IntEnum
from typing import ClassVar, Self, TypeVar

from dimse.commands import (
    BY_KEYWORD,
    DATA_SET_PRESENT,
    NO_DATA_SET,
    Value,
    encode_command,
)
from dimse.errors import DimseError
from dimse.status import Service, Status

#: The Verification SOP Class (PS3.4 A.4), the Affected SOP Class of every C-ECHO.
VERIFICATION_SOP_CLASS = "1.2.840.10008.1.1"


class Priority(IntEnum):
    """Priority (0000,0700) of C-STORE, C-FIND, C-GET and C-MOVE requests (PS3.7 9.1.1.1.5)."""

    MEDIUM = 0x0000
    HIGH = 0x0001
    LOW = 0x0002


class CommandField(IntEnum):
    """Command Field (0000,0100) values (PS3.7 E.1). Bit 15 set marks a response."""

    C_STORE_RQ = 0x0001
    C_STORE_RSP = 0x8001
    C_GET_RQ = 0x0010
    C_GET_RSP = 0x8010
    C_FIND_RQ = 0x0020
    C_FIND_RSP = 0x8020
    C_MOVE_RQ = 0x0021
    C_MOVE_RSP = 0x8021
    C_ECHO_RQ = 0x0030
    C_ECHO_RSP = 0x8030
    N_EVENT_REPORT_RQ = 0x0100
    N_EVENT_REPORT_RSP = 0x8100
    N_GET_RQ = 0x0110
    N_GET_RSP = 0x8110
    N_SET_RQ = 0x0120
    N_SET_RSP = 0x8120
    N_ACTION_RQ = 0x0130
    N_ACTION_RSP = 0x8130
    N_CREATE_RQ = 0x0140
    N_CREATE_RSP = 0x8140
    N_DELETE_RQ = 0x0150
    N_DELETE_RSP = 0x8150
    C_CANCEL_RQ = 0x0FFF


#: Attribute name of a message class -> keyword of its command element (PS3.7 E.1).
FIELD_KEYWORDS: dict[str, str] = {
    "affected_sop_class_uid": "AffectedSOPClassUID",
    "requested_sop_class_uid": "RequestedSOPClassUID",
    "message_id": "MessageID",
    "message_id_being_responded_to": "MessageIDBeingRespondedTo",
    "move_destination": "MoveDestination",
    "priority": "Priority",
    "data_set_type": "CommandDataSetType",
    "status": "Status",
    "offending_element": "OffendingElement",
    "error_comment": "ErrorComment",
    "error_id": "ErrorID",
    "affected_sop_instance_uid": "AffectedSOPInstanceUID",
    "requested_sop_instance_uid": "RequestedSOPInstanceUID",
    "event_type_id": "EventTypeID",
    "attribute_identifier_list": "AttributeIdentifierList",
    "action_type_id": "ActionTypeID",
    "number_of_remaining_suboperations": "NumberOfRemainingSuboperations",
    "number_of_completed_suboperations": "NumberOfCompletedSuboperations",
    "number_of_failed_suboperations": "NumberOfFailedSuboperations",
    "number_of_warning_suboperations": "NumberOfWarningSuboperations",
    "move_originator_aet": "MoveOriginatorApplicationEntityTitle",
    "move_originator_message_id": "MoveOriginatorMessageID",
}

_IGNORED = frozenset(("CommandGroupLength", "CommandField"))


def _python_type(keyword: str) -> type:
    vr = BY_KEYWORD[keyword].vr
    if vr in ("US", "UL"):
        return int
    if vr == "AT":
        return tuple
    return str


# --------------------------------------------------------------------------------------
# Bases


@dataclass(frozen=True, slots=True, kw_only=True)
class DimseMessage:
    """Fields shared by every message. Subclasses set COMMAND_FIELD and NAME."""

    COMMAND_FIELD: ClassVar[int]
    NAME: ClassVar[str]
    #: (attribute, keyword, python type) of each command field, in declaration order.
    _FIELDS: ClassVar[tuple[tuple[str, str, type], ...]]
    _BY_KEYWORD: ClassVar[dict[str, tuple[str, type]]]
    _REQUIRED: ClassVar[frozenset[str]]

    data_set_type: int = NO_DATA_SET
    extra: tuple[tuple[str, Value], ...] = ()

    @property
    def has_data_set(self) -> bool:
        """Whether a data set follows this command (PS3.7 E.1)."""
        return self.data_set_type != NO_DATA_SET

    def to_command(self) -> dict[str, Value]:
        """The command elements of this message, for `encode_command`."""
        command: dict[str, Value] = {"CommandField": self.COMMAND_FIELD}
        for attribute, keyword, _ in self._FIELDS:
            value = getattr(self, attribute)
            if value is not None:
                command[keyword] = value
        for keyword, value in self.extra:
            command.setdefault(keyword, value)
        return command

    def encode(self) -> bytes:
        """The encoded command set of this message (Implicit VR Little Endian)."""
        return encode_command(self.to_command())

    def with_data_set(self, present: bool = True) -> Self:
        """A copy whose Command Data Set Type says that a data set does (not) follow."""
        if not present:
            wanted = NO_DATA_SET
        elif self.has_data_set:
            wanted = self.data_set_type
        else:
            wanted = DATA_SET_PRESENT
        if wanted == self.data_set_type:
            return self  # frozen: sharing is safe, and a copy costs more than the send
        return dataclasses.replace(self, data_set_type=wanted)


_M = TypeVar("_M", bound=DimseMessage)


@dataclass(frozen=True, slots=True, kw_only=True)
class Request(DimseMessage):
    """A request (or indication): identified by its Message ID (0000,0110)."""

    message_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Response(DimseMessage):
    """A response (or confirmation), with the status fields of PS3.7 Annex C."""

    SERVICE: ClassVar[Service | None] = None

    message_id_being_responded_to: int
    status: int
    error_comment: str | None = None
    offending_element: tuple[int, ...] | None = None
    error_id: int | None = None

    def get_status(self) -> Status:
        """The status with its class and its name in this message's service."""
        return Status(
            self.status,
            self.SERVICE,
            self.error_comment,
            self.offending_element or (),
            self.error_id,
        )


MESSAGE_TYPES: dict[int, type[DimseMessage]] = {}


def _message(command_field: int, name: str) -> Callable[[type[_M]], type[_M]]:
    """Register a message class under its Command Field and index its fields."""

    def register(cls: type[_M]) -> type[_M]:
        fields = []
        required = set()
        for f in dataclasses.fields(cls):
            keyword = FIELD_KEYWORDS.get(f.name)
            if keyword is None:
                continue
            fields.append((f.name, keyword, _python_type(keyword)))
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                required.add(f.name)
        cls.COMMAND_FIELD = command_field
        cls.NAME = name
        cls._FIELDS = tuple(fields)
        cls._BY_KEYWORD = {keyword: (attr, kind) for attr, keyword, kind in fields}
        cls._REQUIRED = frozenset(required)
        MESSAGE_TYPES[command_field] = cls
        return cls

    return register


# --------------------------------------------------------------------------------------
# DIMSE-C (PS3.7 9.3)


@_message(CommandField.C_STORE_RQ, "C-STORE-RQ")
@dataclass(frozen=True, slots=True, kw_only=True)
class C_STORE_RQ(Request):
    """C-STORE-RQ (PS3.7 9.3.1.1, Table 9.3-1)."""

    affected_sop_class_uid: str
    affected_sop_instance_uid: str
    priority: int = Priority.MEDIUM
    data_set_type: int = DATA_SET_PRESENT
    move_originator_aet: str | None = None
    move_originator_message_id: int | None = None


@_message(CommandField.C_STORE_RSP, "C-STORE-RSP")
@dataclass(frozen=True, slots=True, kw_only=True)
class C_STORE_RSP(Response):
    """C-STORE-RSP (PS3.7 9.3.1.2, Table 9.3-2)."""

    SERVICE = Service.C_STORE
    affected_sop_class_uid: str | None = None
    affected_sop_instance_uid: str | None = None


@_message(CommandField.C_FIND_RQ, "C-FIND-RQ")
@dataclass(frozen=True, slots=True, kw_only=True)
class C_FIND_RQ(Request):
    """C-FIND-RQ (PS3.7 9.3.2.1, Table 9.3-3); the data set is the Identifier."""

    affected_sop_class_uid: str
    priority: int = Priority.MEDIUM
    data_set_type: int = DATA_SET_PRESENT


@_message(CommandField.C_FIND_RSP, "C-FIND-RSP")
@dataclass(frozen=True, slots=True, kw_only=True)
class C_FIND_RSP(Response):
    """C-FIND-RSP (PS3.7 9.3.2.2, Table 9.3-4); a pending response carries a match."""

    SERVICE = Service.C_FIND
    affected_sop_class_uid: str | None = None


@_message(CommandField.C_GET_RQ, "C-GET-RQ")
@dataclass(frozen=True, slots=True, kw_only=True)
class C_GET_RQ(Request):
    """C-GET-RQ (PS3.7 9.3.3.1, Table 9.3-6)."""

    affected_sop_class_uid: str
    priority: int = Priority.MEDIUM
    data_set_type: int = DATA_SET_PRESENT


@_message(CommandField.C_GET_RSP, "C-GET-RSP")
@dataclass(frozen=True, slots=True, kw_only=True)
class C_GET_RSP(Response):
    """C-GET-RSP (PS3.7 9.3.3.2, Table 9.3-7); the counts are conditional (PS3.4 C.4.3)."""

    SERVICE = Service.C_GET
    affected_sop_class_uid: str | None = None
    number_of_remaining_suboperations: int | None = None
    number_of_completed_suboperations: int | None = None
    number_of_failed_suboperations: int | None = None
    number_of_warning_suboperations: int | None = None


@_message(CommandField.C_MOVE_RQ, "C-MOVE-RQ")
@dataclass(frozen=True, slots=True, kw_only=True)
class C_MOVE_RQ(Request):
    """C-MOVE-RQ (PS3.7 9.3.4.1, Table 9.3-9)."""

    affected_sop_class_uid: str
    move_destination: str
    priority: int = Priority.MEDIUM
    data_set_type: int = DATA_SET_PRESENT


@_message(CommandField.C_MOVE_RSP, "C-MOVE-RSP")
@dataclass(frozen=True, slots=True, kw_only=True)
class C_MOVE_RSP(Response):
    """C-MOVE-RSP (PS3.7 9.3.4.2, Table 9.3-10); the counts are conditional (PS3.4 C.4.2)."""

    SERVICE = Service.C_MOVE
    affected_sop_class_uid: str | None = None
    number_of_remaining_suboperations: int | None = None
    number_of_completed_suboperations: int | None = None
    number_of_failed_suboperations: int | None = None
    number_of_warning_suboperations: int | None = None


@_message(CommandField.C_ECHO_RQ, "C-ECHO-RQ")
@dataclass(frozen=True, slots=True, kw_only=True)
class C_ECHO_RQ(Request):
    """C-ECHO-RQ (PS3.7 9.3.5.1, Table 9.3-12)."""

    affected_sop_class_uid: str = VERIFICATION_SOP_CLASS


@_message(CommandField.C_ECHO_RSP, "C-ECHO-RSP")
@dataclass(frozen=True, slots=True, kw_only=True)
class C_ECHO_RSP(Response):
    """C-ECHO-RSP (PS3.7 9.3.5.2, Table 9.3-13)."""

    SERVICE = Service.C_ECHO
    affected_sop_class_uid: str | None = None


@_message(CommandField.C_CANCEL_RQ, "C-CANCEL-RQ")
@dataclass(frozen=True, slots=True, kw_only=True)
class C_CANCEL_RQ(DimseMessage):
    """C-CANCEL-RQ (PS3.7 9.3.2.3, 9.3.3.3, 9.3.4.3; Table 9.3-5): cancels the C-FIND,
    C-GET or C-MOVE whose Message ID it names. It has no Message ID of its own and
    is never answered."""

    message_id_being_responded_to: int


# --------------------------------------------------------------------------------------
# DIMSE-N (PS3.7 10.3)


@_message(CommandField.N_EVENT_REPORT_RQ, "N-EVENT-REPORT-RQ")
@dataclass(frozen=True, slots=True, kw_only=True)
class N_EVENT_REPORT_RQ(Request):
    """N-EVENT-REPORT-RQ (PS3.7 10.3.1.1, Table 10.3-1); the data set is the Event
    Information, if any."""

    affected_sop_class_uid: str
    affected_sop_instance_uid: str
    event_type_id: int


@_message(CommandField.N_EVENT_REPORT_RSP, "N-EVENT-REPORT-RSP")
@dataclass(frozen=True, slots=True, kw_only=True)
class N_EVENT_REPORT_RSP(Response):
    """N-EVENT-REPORT-RSP (PS3.7 10.3.1.2, Table 10.3-2)."""

    affected_sop_class_uid: str | None = None
    affected_sop_instance_uid: str | None = None
    event_type_id: int | None = None


@_message(CommandField.N_GET_RQ, "N-GET-RQ")
@dataclass(frozen=True, slots=True, kw_only=True)
class N_GET_RQ(Request):
    """N-GET-RQ (PS3.7 10.3.2.1, Table 10.3-3)."""

    requested_sop_class_uid: str
    requested_sop_instance_uid: str
    attribute_identifier_list: tuple[int, ...] | None = None


@_message(CommandField.N_GET_RSP, "N-GET-RSP")
@dataclass(frozen=True, slots=True, kw_only=True)
class N_GET_RSP(Response):
    """N-GET-RSP (PS3.7 10.3.2.2, Table 10.3-4); the data set is the Attribute List."""

    affected_sop_class_uid: str | None = None
    affected_sop_instance_uid: str | None = None
    attribute_identifier_list: tuple[int, ...] | None = None


@_message(CommandField.N_SET_RQ, "N-SET-RQ")
@dataclass(frozen=True, slots=True, kw_only=True)
class N_SET_RQ(Request):
    """N-SET-RQ (PS3.7 10.3.3.1, Table 10.3-5); the data set is the Modification List."""

    requested_sop_class_uid: str
    requested_sop_instance_uid: str
    data_set_type: int = DATA_SET_PRESENT


@_message(CommandField.N_SET_RSP, "N-SET-RSP")
@dataclass(frozen=True, slots=True, kw_only=True)
class N_SET_RSP(Response):
    """N-SET-RSP (PS3.7 10.3.3.2, Table 10.3-6)."""

    affected_sop_class_uid: str | None = None
    affected_sop_instance_uid: str | None = None
    attribute_identifier_list: tuple[int, ...] | None = None


@_message(CommandField.N_ACTION_RQ, "N-ACTION-RQ")
@dataclass(frozen=True, slots=True, kw_only=True)
class N_ACTION_RQ(Request):
    """N-ACTION-RQ (PS3.7 10.3.4.1, Table 10.3-7); the data set is the Action
    Information, if any."""

    requested_sop_class_uid: str
    requested_sop_instance_uid: str
    action_type_id: int


@_message(CommandField.N_ACTION_RSP, "N-ACTION-RSP")
@dataclass(frozen=True, slots=True, kw_only=True)
class N_ACTION_RSP(Response):
    """N-ACTION-RSP (PS3.7 10.3.4.2, Table 10.3-8)."""

    affected_sop_class_uid: str | None = None
    affected_sop_instance_uid: str | None = None
    action_type_id: int | None = None


@_message(CommandField.N_CREATE_RQ, "N-CREATE-RQ")
@dataclass(frozen=True, slots=True, kw_only=True)
class N_CREATE_RQ(Request):
    """N-CREATE-RQ (PS3.7 10.3.5.1, Table 10.3-9); the data set is the Attribute List,
    if any; the SOP Instance UID may be left to the SCP."""

    affected_sop_class_uid: str
    affected_sop_instance_uid: str | None = None


@_message(CommandField.N_CREATE_RSP, "N-CREATE-RSP")
@dataclass(frozen=True, slots=True, kw_only=True)
class N_CREATE_RSP(Response):
    """N-CREATE-RSP (PS3.7 10.3.5.2, Table 10.3-10)."""

    affected_sop_class_uid: str | None = None
    affected_sop_instance_uid: str | None = None
    attribute_identifier_list: tuple[int, ...] | None = None


@_message(CommandField.N_DELETE_RQ, "N-DELETE-RQ")
@dataclass(frozen=True, slots=True, kw_only=True)
class N_DELETE_RQ(Request):
    """N-DELETE-RQ (PS3.7 10.3.6.1, Table 10.3-11)."""

    requested_sop_class_uid: str
    requested_sop_instance_uid: str


@_message(CommandField.N_DELETE_RSP, "N-DELETE-RSP")
@dataclass(frozen=True, slots=True, kw_only=True)
class N_DELETE_RSP(Response):
    """N-DELETE-RSP (PS3.7 10.3.6.2, Table 10.3-12)."""

    affected_sop_class_uid: str | None = None
    affected_sop_instance_uid: str | None = None


# --------------------------------------------------------------------------------------
# From a decoded command set


def message_from_command(command: Mapping[str, Value]) -> DimseMessage:
    """Build the message that a decoded command set carries. Raises only DimseError."""
    field = command.get("CommandField")
    message_id = command.get("MessageID")
    known_id = message_id if isinstance(message_id, int) else None
    if not isinstance(field, int):
        raise DimseError("the command set has no Command Field (0000,0100)", message_id=known_id)
    cls = MESSAGE_TYPES.get(field)
    if cls is None:
        is_request = not field & 0x8000
        raise DimseError(
            f"Command Field {field:04X}H is not a DIMSE message of PS3.7 9.3 or 10.3",
            status=0x0211 if is_request and known_id is not None else None,
            message_id=known_id if is_request else None,
        )
    is_request = issubclass(cls, Request)
    kwargs: dict[str, Value] = {}
    extra: list[tuple[str, Value]] = []
    for keyword, value in command.items():
        if keyword in _IGNORED:
            continue
        entry = cls._BY_KEYWORD.get(keyword)
        if entry is None:
            extra.append((keyword, value))
            continue
        attribute, kind = entry
        if not isinstance(value, kind):
            raise DimseError(
                f"{cls.NAME}: {keyword} is a {type(value).__name__}, not a {kind.__name__}",
                status=0xC000 if is_request and known_id is not None else None,
                message_id=known_id if is_request else None,
            )
        kwargs[attribute] = value
    missing = [FIELD_KEYWORDS[a] for a in cls._REQUIRED if a not in kwargs]
    if missing:
        raise DimseError(
            f"{cls.NAME} lacks the mandatory {', '.join(sorted(missing))} (PS3.7 9.3/10.3)",
            status=0xC000 if is_request and known_id is not None else None,
            message_id=known_id if is_request else None,
        )
    return cls(extra=tuple(extra), **kwargs)  # type: ignore[arg-type]
