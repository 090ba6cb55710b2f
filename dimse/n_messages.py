"""The DIMSE-N messages (PS3.7 10.3) as frozen dataclasses: the fields of Tables
10.3-1 ... 10.3-12 under snake_case names, as `dimse.message_base` describes. They are
decoded like the DIMSE-C ones (`dimse.messages.message_from_command`); no service of
ours sends or serves them yet.
"""

from __future__ import annotations

from dataclasses import dataclass

from dimse.commands import DATA_SET_PRESENT
from dimse.message_base import CommandField, Request, Response, message


@message(CommandField.N_EVENT_REPORT_RQ, "N-EVENT-REPORT-RQ")
@dataclass(frozen=True, slots=True, kw_only=True)
class N_EVENT_REPORT_RQ(Request):
    """N-EVENT-REPORT-RQ (PS3.7 10.3.1.1, Table 10.3-1); the data set is the Event
    Information, if any."""

    affected_sop_class_uid: str
    affected_sop_instance_uid: str
    event_type_id: int


@message(CommandField.N_EVENT_REPORT_RSP, "N-EVENT-REPORT-RSP")
@dataclass(frozen=True, slots=True, kw_only=True)
class N_EVENT_REPORT_RSP(Response):
    """N-EVENT-REPORT-RSP (PS3.7 10.3.1.2, Table 10.3-2)."""

    affected_sop_class_uid: str | None = None
    affected_sop_instance_uid: str | None = None
    event_type_id: int | None = None


@message(CommandField.N_GET_RQ, "N-GET-RQ")
@dataclass(frozen=True, slots=True, kw_only=True)
class N_GET_RQ(Request):
    """N-GET-RQ (PS3.7 10.3.2.1, Table 10.3-3)."""

    requested_sop_class_uid: str
    requested_sop_instance_uid: str
    attribute_identifier_list: tuple[int, ...] | None = None


@message(CommandField.N_GET_RSP, "N-GET-RSP")
@dataclass(frozen=True, slots=True, kw_only=True)
class N_GET_RSP(Response):
    """N-GET-RSP (PS3.7 10.3.2.2, Table 10.3-4); the data set is the Attribute List."""

    affected_sop_class_uid: str | None = None
    affected_sop_instance_uid: str | None = None
    attribute_identifier_list: tuple[int, ...] | None = None


@message(CommandField.N_SET_RQ, "N-SET-RQ")
@dataclass(frozen=True, slots=True, kw_only=True)
class N_SET_RQ(Request):
    """N-SET-RQ (PS3.7 10.3.3.1, Table 10.3-5); the data set is the Modification List."""

    requested_sop_class_uid: str
    requested_sop_instance_uid: str
    data_set_type: int = DATA_SET_PRESENT


@message(CommandField.N_SET_RSP, "N-SET-RSP")
@dataclass(frozen=True, slots=True, kw_only=True)
class N_SET_RSP(Response):
    """N-SET-RSP (PS3.7 10.3.3.2, Table 10.3-6)."""

    affected_sop_class_uid: str | None = None
    affected_sop_instance_uid: str | None = None
    attribute_identifier_list: tuple[int, ...] | None = None


@message(CommandField.N_ACTION_RQ, "N-ACTION-RQ")
@dataclass(frozen=True, slots=True, kw_only=True)
class N_ACTION_RQ(Request):
    """N-ACTION-RQ (PS3.7 10.3.4.1, Table 10.3-7); the data set is the Action
    Information, if any."""

    requested_sop_class_uid: str
    requested_sop_instance_uid: str
    action_type_id: int


@message(CommandField.N_ACTION_RSP, "N-ACTION-RSP")
@dataclass(frozen=True, slots=True, kw_only=True)
class N_ACTION_RSP(Response):
    """N-ACTION-RSP (PS3.7 10.3.4.2, Table 10.3-8)."""

    affected_sop_class_uid: str | None = None
    affected_sop_instance_uid: str | None = None
    action_type_id: int | None = None


@message(CommandField.N_CREATE_RQ, "N-CREATE-RQ")
@dataclass(frozen=True, slots=True, kw_only=True)
class N_CREATE_RQ(Request):
    """N-CREATE-RQ (PS3.7 10.3.5.1, Table 10.3-9); the data set is the Attribute List,
    if any; the SOP Instance UID may be left to the SCP."""

    affected_sop_class_uid: str
    affected_sop_instance_uid: str | None = None


@message(CommandField.N_CREATE_RSP, "N-CREATE-RSP")
@dataclass(frozen=True, slots=True, kw_only=True)
class N_CREATE_RSP(Response):
    """N-CREATE-RSP (PS3.7 10.3.5.2, Table 10.3-10)."""

    affected_sop_class_uid: str | None = None
    affected_sop_instance_uid: str | None = None
    attribute_identifier_list: tuple[int, ...] | None = None


@message(CommandField.N_DELETE_RQ, "N-DELETE-RQ")
@dataclass(frozen=True, slots=True, kw_only=True)
class N_DELETE_RQ(Request):
    """N-DELETE-RQ (PS3.7 10.3.6.1, Table 10.3-11)."""

    requested_sop_class_uid: str
    requested_sop_instance_uid: str


@message(CommandField.N_DELETE_RSP, "N-DELETE-RSP")
@dataclass(frozen=True, slots=True, kw_only=True)
class N_DELETE_RSP(Response):
    """N-DELETE-RSP (PS3.7 10.3.6.2, Table 10.3-12)."""

    affected_sop_class_uid: str | None = None
    affected_sop_instance_uid: str | None = None


#: Every DIMSE-N message class, for the registry of `dimse.messages`.
N_MESSAGES = (
    N_EVENT_REPORT_RQ,
    N_EVENT_REPORT_RSP,
    N_GET_RQ,
    N_GET_RSP,
    N_SET_RQ,
    N_SET_RSP,
    N_ACTION_RQ,
    N_ACTION_RSP,
    N_CREATE_RQ,
    N_CREATE_RSP,
    N_DELETE_RQ,
    N_DELETE_RSP,
)
