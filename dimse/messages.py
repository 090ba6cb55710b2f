"""The DIMSE-C messages (PS3.7 9.3) as frozen dataclasses, and the decoding of any
command set into its message, DIMSE-C or DIMSE-N (`dimse.n_messages`).

Each message class holds the fields of its table in PS3.7 (Table 9.3-1 ... 9.3-14;
10.3-1 ... 10.3-12 for DIMSE-N) under snake_case names, plus the status fields of
Annex C on the responses (the base classes are `dimse.message_base`'s).
`to_command()` gives the mapping that `encode_command` writes;
`message_from_command(command)` finds the class by Command Field (0000,0100) and
builds the message.

Rules where the tables leave a choice:

- A field without a default in the class is mandatory: if the command lacks it,
  `message_from_command` raises `DimseError`. For a request that carries a Message
  ID the error has `status` C000H (its service's "Cannot understand" or "Unable to
  process") and `message_id`, so that the service layer can still answer. Fields
  with a default (Priority MEDIUM, the Command Data Set Type) take the default when
  absent.
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

from collections.abc import Mapping
from dataclasses import dataclass

from dimse.commands import DATA_SET_PRESENT, Value
from dimse.errors import DimseError
from dimse.message_base import (
    FIELD_KEYWORDS,
    CommandField,
    DimseMessage,
    Priority,
    Request,
    Response,
    message,
)
from dimse.status import (
    UNREADABLE,
    FindStatus,
    General,
    GetStatus,
    MoveStatus,
    Service,
    StoreStatus,
)

#: The Verification SOP Class (PS3.4 A.4), the Affected SOP Class of every C-ECHO.
VERIFICATION_SOP_CLASS = "1.2.840.10008.1.1"


# --------------------------------------------------------------------------------------
# DIMSE-C (PS3.7 9.3)


@message(CommandField.C_STORE_RQ, "C-STORE-RQ")
@dataclass(frozen=True, slots=True, kw_only=True)
class C_STORE_RQ(Request):
    """C-STORE-RQ (PS3.7 9.3.1.1, Table 9.3-1)."""

    affected_sop_class_uid: str
    affected_sop_instance_uid: str
    priority: int = Priority.MEDIUM
    data_set_type: int = DATA_SET_PRESENT
    move_originator_aet: str | None = None
    move_originator_message_id: int | None = None


@message(CommandField.C_STORE_RSP, "C-STORE-RSP")
@dataclass(frozen=True, slots=True, kw_only=True)
class C_STORE_RSP(Response):
    """C-STORE-RSP (PS3.7 9.3.1.2, Table 9.3-2)."""

    SERVICE = Service.C_STORE
    affected_sop_class_uid: str | None = None
    affected_sop_instance_uid: str | None = None


@message(CommandField.C_FIND_RQ, "C-FIND-RQ")
@dataclass(frozen=True, slots=True, kw_only=True)
class C_FIND_RQ(Request):
    """C-FIND-RQ (PS3.7 9.3.2.1, Table 9.3-3); the data set is the Identifier."""

    affected_sop_class_uid: str
    priority: int = Priority.MEDIUM
    data_set_type: int = DATA_SET_PRESENT


@message(CommandField.C_FIND_RSP, "C-FIND-RSP")
@dataclass(frozen=True, slots=True, kw_only=True)
class C_FIND_RSP(Response):
    """C-FIND-RSP (PS3.7 9.3.2.2, Table 9.3-4); a pending response carries a match."""

    SERVICE = Service.C_FIND
    affected_sop_class_uid: str | None = None


@message(CommandField.C_GET_RQ, "C-GET-RQ")
@dataclass(frozen=True, slots=True, kw_only=True)
class C_GET_RQ(Request):
    """C-GET-RQ (PS3.7 9.3.3.1, Table 9.3-6)."""

    affected_sop_class_uid: str
    priority: int = Priority.MEDIUM
    data_set_type: int = DATA_SET_PRESENT


@message(CommandField.C_GET_RSP, "C-GET-RSP")
@dataclass(frozen=True, slots=True, kw_only=True)
class C_GET_RSP(Response):
    """C-GET-RSP (PS3.7 9.3.3.2, Table 9.3-7); the counts are conditional (PS3.4 C.4.3)."""

    SERVICE = Service.C_GET
    affected_sop_class_uid: str | None = None
    number_of_remaining_suboperations: int | None = None
    number_of_completed_suboperations: int | None = None
    number_of_failed_suboperations: int | None = None
    number_of_warning_suboperations: int | None = None


@message(CommandField.C_MOVE_RQ, "C-MOVE-RQ")
@dataclass(frozen=True, slots=True, kw_only=True)
class C_MOVE_RQ(Request):
    """C-MOVE-RQ (PS3.7 9.3.4.1, Table 9.3-9)."""

    affected_sop_class_uid: str
    move_destination: str
    priority: int = Priority.MEDIUM
    data_set_type: int = DATA_SET_PRESENT


@message(CommandField.C_MOVE_RSP, "C-MOVE-RSP")
@dataclass(frozen=True, slots=True, kw_only=True)
class C_MOVE_RSP(Response):
    """C-MOVE-RSP (PS3.7 9.3.4.2, Table 9.3-10); the counts are conditional (PS3.4 C.4.2)."""

    SERVICE = Service.C_MOVE
    affected_sop_class_uid: str | None = None
    number_of_remaining_suboperations: int | None = None
    number_of_completed_suboperations: int | None = None
    number_of_failed_suboperations: int | None = None
    number_of_warning_suboperations: int | None = None


@message(CommandField.C_ECHO_RQ, "C-ECHO-RQ")
@dataclass(frozen=True, slots=True, kw_only=True)
class C_ECHO_RQ(Request):
    """C-ECHO-RQ (PS3.7 9.3.5.1, Table 9.3-12)."""

    affected_sop_class_uid: str = VERIFICATION_SOP_CLASS


@message(CommandField.C_ECHO_RSP, "C-ECHO-RSP")
@dataclass(frozen=True, slots=True, kw_only=True)
class C_ECHO_RSP(Response):
    """C-ECHO-RSP (PS3.7 9.3.5.2, Table 9.3-13)."""

    SERVICE = Service.C_ECHO
    affected_sop_class_uid: str | None = None


@message(CommandField.C_CANCEL_RQ, "C-CANCEL-RQ")
@dataclass(frozen=True, slots=True, kw_only=True)
class C_CANCEL_RQ(DimseMessage):
    """C-CANCEL-RQ (PS3.7 9.3.2.3, 9.3.3.3, 9.3.4.3; Table 9.3-5): cancels the C-FIND,
    C-GET or C-MOVE whose Message ID it names. It has no Message ID of its own and
    is never answered."""

    message_id_being_responded_to: int


#: Command Field (0000,0100) -> message class, for every message of PS3.7 9.3 and 10.3.
#: The DIMSE-N classes join it when one is first asked for (`message_type`): no
#: service of ours uses them, and their dozen classes cost a program's start-up
#: about 8 ms to define.
MESSAGE_TYPES: dict[int, type[DimseMessage]] = {
    cls.COMMAND_FIELD: cls
    for cls in (
        C_STORE_RQ,
        C_STORE_RSP,
        C_FIND_RQ,
        C_FIND_RSP,
        C_GET_RQ,
        C_GET_RSP,
        C_MOVE_RQ,
        C_MOVE_RSP,
        C_ECHO_RQ,
        C_ECHO_RSP,
        C_CANCEL_RQ,
    )
}


def message_type(field: int) -> type[DimseMessage] | None:
    """The message class of Command Field `field`, or None for none of PS3.7's."""
    cls = MESSAGE_TYPES.get(field)
    if cls is None and not _dimse_n_loaded:
        cls = all_message_types().get(field)
    return cls


_dimse_n_loaded = False


def all_message_types() -> dict[int, type[DimseMessage]]:
    """`MESSAGE_TYPES` with the DIMSE-N messages loaded: every message of PS3.7."""
    global _dimse_n_loaded
    if not _dimse_n_loaded:
        from dimse.n_messages import N_MESSAGES

        for cls in N_MESSAGES:
            MESSAGE_TYPES[cls.COMMAND_FIELD] = cls
        _dimse_n_loaded = True
    return MESSAGE_TYPES


#: The failure that answers a request whose command set cannot be read (a mandatory
#: field missing or mistyped), by service: C-STORE's "Cannot understand" (PS3.4
#: B.2.3), "Unable to process" of the C-FIND, C-GET, C-MOVE tables (C.4). C-ECHO and
#: DIMSE-N have no such code of their own: they get the same C000H (`UNREADABLE`).
_UNREADABLE: dict[type[DimseMessage], int] = {
    C_STORE_RQ: StoreStatus.CANNOT_UNDERSTAND,
    C_FIND_RQ: FindStatus.UNABLE_TO_PROCESS,
    C_GET_RQ: GetStatus.UNABLE_TO_PROCESS,
    C_MOVE_RQ: MoveStatus.UNABLE_TO_PROCESS,
}


def _unreadable(cls: type[DimseMessage], known_id: int | None) -> int | None:
    """The status that answers an unreadable message of `cls`; None when it gets no
    answer (a response, or a request without a Message ID to answer)."""
    if known_id is None or not issubclass(cls, Request):
        return None
    return _UNREADABLE.get(cls, UNREADABLE)


_IGNORED = frozenset(("CommandGroupLength", "CommandField"))


# --------------------------------------------------------------------------------------
# From a decoded command set


def message_from_command(command: Mapping[str, Value]) -> DimseMessage:
    """Build the message that a decoded command set carries. Raises only DimseError."""
    field = command.get("CommandField")
    message_id = command.get("MessageID")
    known_id = message_id if isinstance(message_id, int) else None
    if not isinstance(field, int):
        raise DimseError("the command set has no Command Field (0000,0100)", message_id=known_id)
    cls = message_type(field)
    if cls is None:
        is_request = not field & 0x8000
        raise DimseError(
            f"Command Field {field:04X}H is not a DIMSE message of PS3.7 9.3 or 10.3",
            status=General.UNRECOGNIZED_OPERATION if is_request and known_id is not None else None,
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
                status=_unreadable(cls, known_id),
                message_id=known_id if is_request else None,
            )
        kwargs[attribute] = value
    missing = [FIELD_KEYWORDS[a] for a in cls._REQUIRED if a not in kwargs]
    if missing:
        raise DimseError(
            f"{cls.NAME} lacks the mandatory {', '.join(sorted(missing))} (PS3.7 9.3/10.3)",
            status=_unreadable(cls, known_id),
            message_id=known_id if is_request else None,
        )
    return cls(extra=tuple(extra), **kwargs)  # type: ignore[arg-type]
