"""What every DIMSE message is (PS3.7 9.3, 10.3, E.1): the Command Field and Priority
codes, the table from a message's fields to the keywords of its command elements, and
the base classes `DimseMessage`, `Request` and `Response`. The messages themselves
are in `dimse.messages` (DIMSE-C, and the decoding of a command set into a message)
and `dimse.n_messages` (DIMSE-N).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import ClassVar, Self, TypeVar

from dimse.commands import BY_KEYWORD, DATA_SET_PRESENT, NO_DATA_SET, Value, encode_command
from dimse.status import Service, Status


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


def message(command_field: int, name: str) -> Callable[[type[_M]], type[_M]]:
    """Give a message class its Command Field and name, and index its fields."""

    def index(cls: type[_M]) -> type[_M]:
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
        return cls

    return index
