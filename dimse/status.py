"""DIMSE status codes: their class and their meaning (PS3.7 Annex C, PS3.4).

Every DIMSE response carries a Status (0000,0900). PS3.7 Annex C sorts each code into
one of five status classes by its value alone:

    Success   0000
    Warning   0001, Bxxx, 0107, 0116
    Failure   Axxx, Cxxx, 01xx (except 0107 and 0116), 02xx
    Cancel    FE00
    Pending   FF00, FF01

`status_category(code)` applies exactly that table. A code outside it ("Implementations
shall not use Status Codes with values not listed", PS3.7 C) is classed as a failure:
a peer that sends one has not told us that anything succeeded.

The *meaning* of a code is partly general (01xx and 02xx keep the meaning PS3.7 C
gives them in every service) and partly service-specific (Axxx, Bxxx, Cxxx, PS3.4):
B000 is "Coercion of Data Elements" in a C-STORE response but "Sub-operations Complete
- One or more Failures or Warnings" in a C-MOVE response. `status_name(code, service)`
looks in the table of the service first (PS3.4 B.2.3 C-STORE, C.4.1.1.4 C-FIND,
C.4.2.1.5 C-MOVE, C.4.3.1.4 C-GET, K.4.1.1.4 Modality Worklist C-FIND), then in the
general table of PS3.7 C, then in the service-specific tables of the others.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, IntEnum


class Category(Enum):
    """The five status classes of PS3.7 Annex C."""

    SUCCESS = "Success"
    PENDING = "Pending"
    WARNING = "Warning"
    FAILURE = "Failure"
    CANCEL = "Cancel"


class Service(Enum):
    """The DIMSE services whose status codes PS3.4 defines and this module names.

    `WORKLIST` is the C-FIND of the Modality Worklist Information Model (PS3.4 K);
    its Table K.4-1 gives the same codes and meanings as the Query/Retrieve C-FIND.
    """

    C_ECHO = "C-ECHO"
    C_STORE = "C-STORE"
    C_FIND = "C-FIND"
    C_GET = "C-GET"
    C_MOVE = "C-MOVE"
    WORKLIST = "Worklist C-FIND"


class General(IntEnum):
    """The codes whose meaning is the same in every service (PS3.7 Annex C): a service
    uses those its PS3.4 table or PS3.7 9.1 / 10.1 lists. A service's own enum below
    repeats the ones it sends, under the same name."""

    SUCCESS = 0x0000
    # PS3.7 C.4: warnings
    OPTIONAL_ATTRIBUTES_NOT_SUPPORTED = 0x0001
    ATTRIBUTE_LIST_ERROR = 0x0107
    ATTRIBUTE_VALUE_OUT_OF_RANGE = 0x0116
    # PS3.7 C.5: failures
    NO_SUCH_ATTRIBUTE = 0x0105
    INVALID_ATTRIBUTE_VALUE = 0x0106
    PROCESSING_FAILURE = 0x0110
    DUPLICATE_SOP_INSTANCE = 0x0111
    NO_SUCH_SOP_INSTANCE = 0x0112
    NO_SUCH_EVENT_TYPE = 0x0113
    NO_SUCH_ARGUMENT = 0x0114
    INVALID_ARGUMENT_VALUE = 0x0115
    INVALID_SOP_INSTANCE = 0x0117
    NO_SUCH_SOP_CLASS = 0x0118
    CLASS_INSTANCE_CONFLICT = 0x0119
    MISSING_ATTRIBUTE = 0x0120
    MISSING_ATTRIBUTE_VALUE = 0x0121
    SOP_CLASS_NOT_SUPPORTED = 0x0122
    NO_SUCH_ACTION = 0x0123
    NOT_AUTHORIZED = 0x0124
    DUPLICATE_INVOCATION = 0x0210
    UNRECOGNIZED_OPERATION = 0x0211
    MISTYPED_ARGUMENT = 0x0212
    RESOURCE_LIMITATION = 0x0213
    # PS3.7 C.3 and C.2: cancel, pending
    CANCEL = 0xFE00
    PENDING = 0xFF00
    PENDING_OPTIONAL_KEYS_NOT_SUPPORTED = 0xFF01


class EchoStatus(IntEnum):
    """C-ECHO response status (PS3.7 9.1.5.1.4: the general codes only)."""

    SUCCESS = 0x0000
    PROCESSING_FAILURE = 0x0110
    SOP_CLASS_NOT_SUPPORTED = 0x0122
    DUPLICATE_INVOCATION = 0x0210
    UNRECOGNIZED_OPERATION = 0x0211
    MISTYPED_ARGUMENT = 0x0212


class StoreStatus(IntEnum):
    """C-STORE response status (PS3.4 Table B.2-1, and the general codes used)."""

    SUCCESS = 0x0000
    OUT_OF_RESOURCES = 0xA700
    DATA_SET_DOES_NOT_MATCH_SOP_CLASS = 0xA900
    CANNOT_UNDERSTAND = 0xC000
    COERCION_OF_DATA_ELEMENTS = 0xB000
    ELEMENTS_DISCARDED = 0xB006
    DATA_SET_DOES_NOT_MATCH_SOP_CLASS_WARNING = 0xB007
    PROCESSING_FAILURE = 0x0110
    DUPLICATE_SOP_INSTANCE = 0x0111
    SOP_CLASS_NOT_SUPPORTED = 0x0122
    NOT_AUTHORIZED = 0x0124


class FindStatus(IntEnum):
    """C-FIND response status (PS3.4 Table C.4-1; Modality Worklist: Table K.4-1)."""

    SUCCESS = 0x0000
    PENDING = 0xFF00
    PENDING_OPTIONAL_KEYS_NOT_SUPPORTED = 0xFF01
    CANCEL = 0xFE00
    OUT_OF_RESOURCES = 0xA700
    IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS = 0xA900
    UNABLE_TO_PROCESS = 0xC000
    #: Cxxx too: our own code for "the handler failed", within Unable to process
    HANDLER_FAILED = 0xC001
    SOP_CLASS_NOT_SUPPORTED = 0x0122


class MoveStatus(IntEnum):
    """C-MOVE response status (PS3.4 Table C.4-2)."""

    SUCCESS = 0x0000
    PENDING = 0xFF00
    CANCEL = 0xFE00
    SUB_OPERATIONS_FAILURES_OR_WARNINGS = 0xB000
    OUT_OF_RESOURCES_MATCHES = 0xA701
    OUT_OF_RESOURCES_SUB_OPERATIONS = 0xA702
    MOVE_DESTINATION_UNKNOWN = 0xA801
    IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS = 0xA900
    UNABLE_TO_PROCESS = 0xC000
    SOP_CLASS_NOT_SUPPORTED = 0x0122


class GetStatus(IntEnum):
    """C-GET response status (PS3.4 Table C.4-3)."""

    SUCCESS = 0x0000
    PENDING = 0xFF00
    CANCEL = 0xFE00
    SUB_OPERATIONS_FAILURES_OR_WARNINGS = 0xB000
    OUT_OF_RESOURCES_MATCHES = 0xA701
    OUT_OF_RESOURCES_SUB_OPERATIONS = 0xA702
    IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS = 0xA900
    UNABLE_TO_PROCESS = 0xC000
    SOP_CLASS_NOT_SUPPORTED = 0x0122


#: C000H, for a message or a data set that cannot be read where the service does not
#: say otherwise: the first code of C-STORE's "Cannot understand" (PS3.4 B.2.3) and
#: of "Unable to process" of C-FIND, C-GET and C-MOVE (C.4); a failure in every
#: service by PS3.7 C's classes.
UNREADABLE = StoreStatus.CANNOT_UNDERSTAND

#: The codes of the status classes that PS3.7 Annex C lists one by one.
_PENDING = frozenset({General.PENDING, General.PENDING_OPTIONAL_KEYS_NOT_SUPPORTED})
_WARNINGS = frozenset(
    {
        General.OPTIONAL_ATTRIBUTES_NOT_SUPPORTED,
        General.ATTRIBUTE_LIST_ERROR,
        General.ATTRIBUTE_VALUE_OUT_OF_RANGE,
    }
)
_SINGLE_CODES = frozenset({General.SUCCESS, General.CANCEL, *_PENDING, *_WARNINGS})


def status_category(code: int) -> Category:
    """The status class of `code` by the table of PS3.7 Annex C.

    Codes the table does not list (e.g. 1234H, D000H, FF02H) are FAILURE.
    """
    if code == General.SUCCESS:
        return Category.SUCCESS
    if code in _PENDING:
        return Category.PENDING
    if code == General.CANCEL:
        return Category.CANCEL
    if code in _WARNINGS or 0xB000 <= code <= 0xBFFF:
        return Category.WARNING
    return Category.FAILURE


def is_valid_status(code: int) -> bool:
    """Whether `code` is one of the values PS3.7 Annex C allows at all."""
    return code in _SINGLE_CODES or 0x0100 <= code <= 0x02FF or 0xA000 <= code <= 0xCFFF


# --------------------------------------------------------------------------------------
# Names. Each table: exact codes, then ranges (low, high, name), as printed in the
# standard. Where PS3.4 writes "A7xx" the range is given; "Cxxx" is C000-CFFF.

#: PS3.7 Annex C: the codes whose meaning is the same in every service.
_GENERAL: dict[int, str] = {
    General.SUCCESS: "Success",
    General.OPTIONAL_ATTRIBUTES_NOT_SUPPORTED: "Requested optional Attributes are not supported",
    General.NO_SUCH_ATTRIBUTE: "No such Attribute",
    General.INVALID_ATTRIBUTE_VALUE: "Invalid Attribute Value",
    General.ATTRIBUTE_LIST_ERROR: "Attribute list error",
    General.PROCESSING_FAILURE: "Processing failure",
    General.DUPLICATE_SOP_INSTANCE: "Duplicate SOP Instance",
    General.NO_SUCH_SOP_INSTANCE: "No such SOP Instance",
    General.NO_SUCH_EVENT_TYPE: "No such event type",
    General.NO_SUCH_ARGUMENT: "No such argument",
    General.INVALID_ARGUMENT_VALUE: "Invalid argument value",
    General.ATTRIBUTE_VALUE_OUT_OF_RANGE: "Attribute Value out of range",
    General.INVALID_SOP_INSTANCE: "Invalid SOP Instance",
    General.NO_SUCH_SOP_CLASS: "No such SOP Class",
    General.CLASS_INSTANCE_CONFLICT: "Class-Instance conflict",
    General.MISSING_ATTRIBUTE: "Missing Attribute",
    General.MISSING_ATTRIBUTE_VALUE: "Missing Attribute Value",
    General.SOP_CLASS_NOT_SUPPORTED: "Refused: SOP Class not supported",
    General.NO_SUCH_ACTION: "No such action",
    General.NOT_AUTHORIZED: "Refused: Not Authorized",
    General.DUPLICATE_INVOCATION: "Duplicate invocation",
    General.UNRECOGNIZED_OPERATION: "Unrecognized Operation",
    General.MISTYPED_ARGUMENT: "Mistyped argument",
    General.RESOURCE_LIMITATION: "Resource limitation",
    General.CANCEL: "Cancel",
    General.PENDING: "Pending",
    General.PENDING_OPTIONAL_KEYS_NOT_SUPPORTED: (
        "Pending: one or more Optional Keys were not supported"
    ),
}

_Range = tuple[int, int, str]
_Table = tuple[dict[int, str], tuple[_Range, ...]]

#: The ranges of PS3.4 Table B.2-1, from the first code of each (A7xx, A9xx, Cxxx).
_STORE_RANGES: tuple[_Range, ...] = (
    (StoreStatus.OUT_OF_RESOURCES, 0xA7FF, "Refused: Out of Resources"),
    (
        StoreStatus.DATA_SET_DOES_NOT_MATCH_SOP_CLASS,
        0xA9FF,
        "Error: Data Set does not match SOP Class",
    ),
    (StoreStatus.CANNOT_UNDERSTAND, 0xCFFF, "Error: Cannot understand"),
)

#: PS3.4 Table B.2-1, C-STORE status.
_C_STORE: _Table = (
    {
        StoreStatus.COERCION_OF_DATA_ELEMENTS: "Coercion of Data Elements",
        StoreStatus.ELEMENTS_DISCARDED: "Elements Discarded",
        StoreStatus.DATA_SET_DOES_NOT_MATCH_SOP_CLASS_WARNING: "Data Set does not match SOP Class",
    },
    _STORE_RANGES,
)

_MATCHING_FIND: dict[int, str] = {
    FindStatus.OUT_OF_RESOURCES: "Refused: Out of Resources",
    FindStatus.IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS: "Identifier does not match SOP Class",
    FindStatus.CANCEL: "Matching terminated due to Cancel request",
    FindStatus.SUCCESS: "Matching is complete - No final Identifier is supplied",
    FindStatus.PENDING: (
        "Matches are continuing - Current Match is supplied and any Optional Keys "
        "were supported in the same manner as Required Keys"
    ),
    FindStatus.PENDING_OPTIONAL_KEYS_NOT_SUPPORTED: (
        "Matches are continuing - Warning that one or more Optional Keys were not "
        "supported for existence for this Identifier"
    ),
}
_UNABLE_TO_PROCESS: tuple[_Range, ...] = (
    (FindStatus.UNABLE_TO_PROCESS, 0xCFFF, "Unable to process"),
)

#: PS3.4 Table C.4-1, C-FIND response status (Query/Retrieve).
_C_FIND: _Table = (_MATCHING_FIND, _UNABLE_TO_PROCESS)

#: PS3.4 Table K.4-1, Modality Worklist C-FIND response status.
_WORKLIST: _Table = (_MATCHING_FIND, _UNABLE_TO_PROCESS)


def _retrieve(codes: type[MoveStatus] | type[GetStatus]) -> dict[int, str]:
    """The names that PS3.4 Tables C.4-2 (C-MOVE) and C.4-3 (C-GET) share."""
    return {
        codes.OUT_OF_RESOURCES_MATCHES: (
            "Refused: Out of Resources - Unable to calculate number of matches"
        ),
        codes.OUT_OF_RESOURCES_SUB_OPERATIONS: (
            "Refused: Out of Resources - Unable to perform sub-operations"
        ),
        codes.IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS: "Identifier does not match SOP Class",
        codes.CANCEL: "Sub-operations terminated due to Cancel Indication",
        codes.SUB_OPERATIONS_FAILURES_OR_WARNINGS: (
            "Sub-operations Complete - One or more Failures or Warnings"
        ),
        codes.SUCCESS: "Sub-operations Complete - No Failures",
        codes.PENDING: "Sub-operations are continuing",
    }


_MOVE_DESTINATION_UNKNOWN = "Refused: Move Destination unknown"

#: PS3.4 Table C.4-2, C-MOVE response status.
_C_MOVE: _Table = (
    {
        **_retrieve(MoveStatus),
        MoveStatus.MOVE_DESTINATION_UNKNOWN: _MOVE_DESTINATION_UNKNOWN,
    },
    _UNABLE_TO_PROCESS,
)

#: PS3.4 Table C.4-3, C-GET response status.
_C_GET: _Table = (_retrieve(GetStatus), _UNABLE_TO_PROCESS)

#: PS3.7 9.1.5: C-ECHO has only the general codes.
_C_ECHO: _Table = ({}, ())

_SERVICES: dict[Service, _Table] = {
    Service.C_ECHO: _C_ECHO,
    Service.C_STORE: _C_STORE,
    Service.C_FIND: _C_FIND,
    Service.C_GET: _C_GET,
    Service.C_MOVE: _C_MOVE,
    Service.WORKLIST: _WORKLIST,
}

#: Names used when the service is not known: each service-specific code once, with
#: both meanings where two services disagree.
_ANY_SERVICE: _Table = (
    {
        StoreStatus.OUT_OF_RESOURCES: "Refused: Out of Resources",
        MoveStatus.OUT_OF_RESOURCES_MATCHES: _C_MOVE[0][MoveStatus.OUT_OF_RESOURCES_MATCHES],
        MoveStatus.OUT_OF_RESOURCES_SUB_OPERATIONS: _C_MOVE[0][
            MoveStatus.OUT_OF_RESOURCES_SUB_OPERATIONS
        ],
        MoveStatus.MOVE_DESTINATION_UNKNOWN: _MOVE_DESTINATION_UNKNOWN,
        StoreStatus.DATA_SET_DOES_NOT_MATCH_SOP_CLASS: "Error: Data Set does not match SOP Class",
        # B000H: the one code two services name differently (C-STORE vs C-GET, C-MOVE)
        StoreStatus.COERCION_OF_DATA_ELEMENTS: (
            "Coercion of Data Elements (C-STORE); Sub-operations Complete - "
            "One or more Failures or Warnings (C-GET, C-MOVE)"
        ),
        StoreStatus.ELEMENTS_DISCARDED: "Elements Discarded",
        StoreStatus.DATA_SET_DOES_NOT_MATCH_SOP_CLASS_WARNING: "Data Set does not match SOP Class",
    },
    _STORE_RANGES,
)


def _lookup(table: _Table, code: int) -> str | None:
    exact, ranges = table
    name = exact.get(code)
    if name is not None:
        return name
    for low, high, range_name in ranges:
        if low <= code <= high:
            return range_name
    return None


def _service(service: Service | str | None) -> Service | None:
    if service is None or isinstance(service, Service):
        return service
    return Service(service)


def status_name(code: int, service: Service | str | None = None) -> str:
    """The meaning of `code` in the words of PS3.4 / PS3.7 Annex C.

    `service` is a `Service` or its value ("C-STORE", "C-FIND", ...); an unknown
    string raises ValueError. A code no table names gets its class name ("Warning",
    "Failure"), or "Unknown status" when PS3.7 Annex C does not allow it at all.
    """
    kind = _service(service)
    if kind is not None:
        name = _lookup(_SERVICES[kind], code)
        if name is not None:
            return name
    name = _GENERAL.get(code)
    if name is not None:
        return name
    name = _lookup(_ANY_SERVICE, code)
    if name is not None:
        return name
    if not is_valid_status(code):
        return "Unknown status"
    return status_category(code).value


@dataclass(frozen=True, slots=True)
class Status:
    """A status as a response carries it: the code and the optional fields of
    PS3.7 C.4 and C.5 (Error Comment (0000,0902), Offending Element (0000,0901),
    Error ID (0000,0903)). `category` and `name` follow from the code."""

    code: int
    service: Service | None = None
    error_comment: str | None = None
    offending_element: tuple[int, ...] = ()
    error_id: int | None = None

    @property
    def category(self) -> Category:
        return status_category(self.code)

    @property
    def name(self) -> str:
        return status_name(self.code, self.service)

    @property
    def is_success(self) -> bool:
        return self.code == General.SUCCESS

    @property
    def is_pending(self) -> bool:
        return self.category is Category.PENDING

    @property
    def is_warning(self) -> bool:
        return self.category is Category.WARNING

    @property
    def is_failure(self) -> bool:
        return self.category is Category.FAILURE

    @property
    def is_cancel(self) -> bool:
        return self.category is Category.CANCEL

    @property
    def is_final(self) -> bool:
        """Whether this status ends the operation (every class but Pending)."""
        return not self.is_pending

    def __str__(self) -> str:
        text = f"{self.code:04X}H {self.category.value}: {self.name}"
        if self.error_comment:
            text += f" ({self.error_comment})"
        return text
