"""Status codes: class by the table of PS3.7 Annex C, names from PS3.4 and PS3.7 C.

pynetdicom's status tables serve as an independent reference for the class of every
code they list (reference only; the library does not use them).
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dimse.status import (
    UNREADABLE,
    Category,
    EchoStatus,
    FindStatus,
    General,
    GetStatus,
    MoveStatus,
    Service,
    Status,
    StoreStatus,
    is_valid_status,
    status_category,
    status_name,
)

#: Each per-service enum with the service whose table names its codes.
SERVICE_ENUMS = [
    (EchoStatus, Service.C_ECHO),
    (StoreStatus, Service.C_STORE),
    (FindStatus, Service.C_FIND),
    (MoveStatus, Service.C_MOVE),
    (GetStatus, Service.C_GET),
]


def _annex_c_class(code: int) -> str | None:
    """PS3.7 Annex C's table, written a second way: by the four hex digits."""
    digits = f"{code:04X}"
    if digits == "0000":
        return "Success"
    if digits in ("0001", "0107", "0116") or digits[0] == "B":
        return "Warning"
    if digits[0] in "AC" or digits[:2] in ("01", "02"):
        return "Failure"
    if digits == "FE00":
        return "Cancel"
    if digits in ("FF00", "FF01"):
        return "Pending"
    return None  # not allowed by Annex C at all


def test_every_code_has_the_class_of_annex_c() -> None:
    for code in range(0x10000):
        expected = _annex_c_class(code)
        assert is_valid_status(code) == (expected is not None), hex(code)
        assert status_category(code).value == (expected or "Failure"), hex(code)


@pytest.mark.parametrize(
    ("code", "category"),
    [
        (0x0000, Category.SUCCESS),
        (0xFF00, Category.PENDING),
        (0xFF01, Category.PENDING),
        (0xFE00, Category.CANCEL),
        (0x0001, Category.WARNING),
        (0x0107, Category.WARNING),
        (0x0116, Category.WARNING),
        (0xB000, Category.WARNING),
        (0xB006, Category.WARNING),
        (0xB007, Category.WARNING),
        (0xA700, Category.FAILURE),
        (0xA701, Category.FAILURE),
        (0xA702, Category.FAILURE),
        (0xA801, Category.FAILURE),
        (0xA900, Category.FAILURE),
        (0xC000, Category.FAILURE),
        (0xCFFF, Category.FAILURE),
        (0x0211, Category.FAILURE),
        (0x0122, Category.FAILURE),
        (0x0110, Category.FAILURE),
        (0x0124, Category.FAILURE),
        (0x0105, Category.FAILURE),
        # outside the table: not success, so failure
        (0x1234, Category.FAILURE),
        (0xD000, Category.FAILURE),
        (0xFF02, Category.FAILURE),
        (0xFE01, Category.FAILURE),
    ],
)
def test_category(code: int, category: Category) -> None:
    assert status_category(code) is category


@pytest.mark.parametrize(
    ("code", "service", "name"),
    [
        (0x0000, None, "Success"),
        (0x0000, Service.C_STORE, "Success"),
        (0x0000, Service.C_FIND, "Matching is complete - No final Identifier is supplied"),
        (0x0000, Service.C_MOVE, "Sub-operations Complete - No Failures"),
        (0xFF00, None, "Pending"),
        (0xFF00, Service.C_MOVE, "Sub-operations are continuing"),
        (0xFF00, Service.C_GET, "Sub-operations are continuing"),
        (0xFE00, None, "Cancel"),
        (0xFE00, Service.C_FIND, "Matching terminated due to Cancel request"),
        (0xFE00, Service.WORKLIST, "Matching terminated due to Cancel request"),
        (0xFE00, Service.C_MOVE, "Sub-operations terminated due to Cancel Indication"),
        (0xA700, None, "Refused: Out of Resources"),
        (0xA700, Service.C_FIND, "Refused: Out of Resources"),
        (0xA7FF, Service.C_STORE, "Refused: Out of Resources"),
        (
            0xA701,
            Service.C_MOVE,
            "Refused: Out of Resources - Unable to calculate number of matches",
        ),
        (0xA702, Service.C_GET, "Refused: Out of Resources - Unable to perform sub-operations"),
        (0xA801, None, "Refused: Move Destination unknown"),
        (0xA801, Service.C_MOVE, "Refused: Move Destination unknown"),
        (0xA900, None, "Error: Data Set does not match SOP Class"),
        (0xA9AB, Service.C_STORE, "Error: Data Set does not match SOP Class"),
        (0xA900, Service.C_FIND, "Identifier does not match SOP Class"),
        (0xC000, None, "Error: Cannot understand"),
        (0xC123, Service.C_STORE, "Error: Cannot understand"),
        (0xC123, Service.C_FIND, "Unable to process"),
        (0xCFFF, Service.C_MOVE, "Unable to process"),
        (0xB000, Service.C_STORE, "Coercion of Data Elements"),
        (0xB000, "C-MOVE", "Sub-operations Complete - One or more Failures or Warnings"),
        (0xB006, Service.C_STORE, "Elements Discarded"),
        (0xB007, Service.C_STORE, "Data Set does not match SOP Class"),
        (0x0211, None, "Unrecognized Operation"),
        (0x0211, Service.C_ECHO, "Unrecognized Operation"),
        (0x0122, Service.C_FIND, "Refused: SOP Class not supported"),
        (0x0110, None, "Processing failure"),
        (0x0124, Service.C_MOVE, "Refused: Not Authorized"),
        (0x0107, None, "Attribute list error"),
        (0x0001, None, "Requested optional Attributes are not supported"),
        (0xB123, None, "Warning"),
        (0x01FF, None, "Failure"),
        (0x1234, None, "Unknown status"),
    ],
)
def test_name(code: int, service: Service | str | None, name: str) -> None:
    assert status_name(code, service) == name


def test_ambiguous_code_without_service_names_both_meanings() -> None:
    name = status_name(0xB000)
    assert "Coercion of Data Elements" in name
    assert "Sub-operations Complete" in name


def test_ff01_pending_names() -> None:
    assert "Optional Keys" in status_name(0xFF01)
    assert status_name(0xFF01, Service.C_FIND).startswith("Matches are continuing - Warning")


def test_unknown_service_string_is_a_caller_error() -> None:
    with pytest.raises(ValueError):
        status_name(0, "C-FROB")


@settings(max_examples=1000, deadline=None)
@given(
    st.integers(min_value=0, max_value=0xFFFF),
    st.sampled_from([None, *Service]),
)
def test_every_code_has_a_name(code: int, service: Service | None) -> None:
    name = status_name(code, service)
    assert name


def test_status_dataclass() -> None:
    status = Status(0xA700, Service.C_STORE, error_comment="disk full")
    assert status.category is Category.FAILURE
    assert status.name == "Refused: Out of Resources"
    assert status.is_failure and status.is_final
    assert not (status.is_success or status.is_pending or status.is_warning or status.is_cancel)
    assert str(status) == "A700H Failure: Refused: Out of Resources (disk full)"
    pending = Status(FindStatus.PENDING, Service.C_FIND)
    assert pending.is_pending and not pending.is_final
    assert Status(0).is_success and str(Status(0)) == "0000H Success: Success"
    assert Status(0xFE00).is_cancel
    assert Status(0xB000, Service.C_MOVE).is_warning
    with pytest.raises(AttributeError):
        status.code = 0  # type: ignore[misc]


def test_status_code_constants() -> None:
    assert General.UNRECOGNIZED_OPERATION == 0x0211
    assert MoveStatus.MOVE_DESTINATION_UNKNOWN == 0xA801
    assert StoreStatus.OUT_OF_RESOURCES == FindStatus.OUT_OF_RESOURCES == 0xA700
    assert StoreStatus.DATA_SET_DOES_NOT_MATCH_SOP_CLASS == 0xA900
    assert FindStatus.IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS == 0xA900
    assert General.SOP_CLASS_NOT_SUPPORTED == 0x0122
    assert General.NOT_AUTHORIZED == StoreStatus.NOT_AUTHORIZED == 0x0124
    assert General.PROCESSING_FAILURE == StoreStatus.PROCESSING_FAILURE == 0x0110
    assert UNREADABLE == StoreStatus.CANNOT_UNDERSTAND == FindStatus.UNABLE_TO_PROCESS == 0xC000
    for codes in (General, EchoStatus, StoreStatus, FindStatus, MoveStatus, GetStatus):
        for code in codes:
            assert is_valid_status(code), code


def test_b000_is_a_different_member_in_c_store_and_c_move() -> None:
    """B000H: Coercion of Data Elements in C-STORE, Sub-operations Complete - One or
    more Failures or Warnings in C-MOVE (PS3.4 B.2.3, C.4.2.1.5): two members, two
    names, one value on the wire."""
    store = StoreStatus(0xB000)
    move = MoveStatus(0xB000)
    assert store is StoreStatus.COERCION_OF_DATA_ELEMENTS
    assert move is MoveStatus.SUB_OPERATIONS_FAILURES_OR_WARNINGS
    assert store.name != move.name and type(store) is not type(move)
    assert store == move == 0xB000  # the same code on the wire
    assert status_name(store, Service.C_STORE) == "Coercion of Data Elements"
    assert status_name(move, Service.C_MOVE) == (
        "Sub-operations Complete - One or more Failures or Warnings"
    )


@pytest.mark.parametrize("codes", [General] + [codes for codes, _ in SERVICE_ENUMS])
def test_no_two_members_of_one_enum_alias_each_other(codes: type[General]) -> None:
    """An alias (two names, one value) would hide a name, as B000H once hid C-MOVE's
    behind C-STORE's in a single enum of every code."""
    assert len(codes.__members__) == len(list(codes)), [
        name for name, member in codes.__members__.items() if member.name != name
    ]


@pytest.mark.parametrize(("codes", "service"), SERVICE_ENUMS)
def test_every_member_is_allowed_and_named_in_its_service(
    codes: type[StoreStatus], service: Service
) -> None:
    for code in codes:
        assert is_valid_status(code), code
        assert status_name(code, service) not in ("Unknown status", "Failure", "Warning"), code


def test_categories_agree_with_pynetdicom() -> None:
    """pynetdicom's tables as an independent reference for the class of each code."""
    reference = pytest.importorskip("pynetdicom.status")
    tables = [
        reference.GENERAL_STATUS,
        reference.VERIFICATION_SERVICE_CLASS_STATUS,
        reference.STORAGE_SERVICE_CLASS_STATUS,
        reference.QR_FIND_SERVICE_CLASS_STATUS,
        reference.QR_MOVE_SERVICE_CLASS_STATUS,
        reference.QR_GET_SERVICE_CLASS_STATUS,
        reference.MODALITY_WORKLIST_SERVICE_CLASS_STATUS,
    ]
    checked = 0
    for table in tables:
        for code, (category, _) in table.items():
            assert status_category(code).value == category, hex(code)
            checked += 1
    assert checked > 100
