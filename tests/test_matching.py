"""The matching rules of C-FIND (PS3.4 C.2.2.2) in dimse/archive/conditions.py and
matching.py, one by one, and their SQL translation in dimse/archive/query_sql.py checked
against the Python rules on a real SQLite database."""

from __future__ import annotations

import sqlite3
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from dimse.archive.conditions import (
    AnyOf,
    Key,
    QueryError,
    Range,
    Single,
    UidList,
    Universal,
    Wildcard,
    compile_condition,
    compile_keys,
    normalize,
    range_key,
)
from dimse.archive.matching import dataset_matches, response_element, values_match, wildcard_match
from dimse.archive.query_sql import sql_condition
from dimse.archive.response_charset import UTF8, choose_character_set
from dimse.datasets import EXPLICIT_VR_LITTLE_ENDIAN, decode_dataset, encode_dataset

# --- normalization (PS3.5 6.2: which spaces and separators are significant)


@pytest.mark.parametrize(
    ("vr", "text", "expected"),
    [
        ("UI", "1.2.3\x00", "1.2.3"),
        ("PN", "Doe^John^^^", "Doe^John"),
        ("PN", "Yamada^Tarou==", "Yamada^Tarou"),
        ("PN", " Doe^John ", "Doe^John"),
        ("LO", "  ACC 1  ", "ACC 1"),
        ("LT", "  indented text  ", "  indented text"),
        ("DA", "2020.01.31", "20200131"),
        ("TM", "12:30:00", "123000"),
        ("IS", " 007", "7"),
        ("DS", "1.50", "1.5"),
        ("IS", "not a number", "not a number"),
    ],
)
def test_normalize(vr: str, text: str, expected: str) -> None:
    assert normalize(vr, text) == expected


@pytest.mark.parametrize(
    ("vr", "value", "upper", "expected"),
    [
        ("DA", "20200131", False, "20200131"),
        ("DA", "2020013", False, None),
        ("TM", "12", False, "120000.000000"),
        ("TM", "12", True, "125959.999999"),
        ("TM", "1230", True, "123059.999999"),
        ("TM", "123015.5", True, "123015.599999"),
        ("TM", "1230xx", False, None),
        ("DT", "2020", False, "20200101000000.000000"),
        ("DT", "2020", True, "20201231235959.999999"),
        ("DT", "20200115103000+0100", False, "20200115103000.000000"),
    ],
)
def test_range_key_fills_the_precision_not_written(
    vr: str, value: str, upper: bool, expected: str | None
) -> None:
    assert range_key(vr, value, upper=upper) == expected


# --- compiling keys into conditions


@pytest.mark.parametrize(
    ("vr", "value", "expected"),
    [
        # C.2.2.2.3 Universal Matching: zero length; C.2.2.2.4 Note: "*" alone
        ("PN", "", Universal()),
        ("PN", None, Universal()),
        ("LO", "*", Universal()),
        ("LO", "**", Universal()),
        ("UI", "*", Universal()),  # SCUs send it; it can only mean "any"
        ("DA", "-", Universal()),
        # C.2.2.2.1 Single Value Matching
        ("LO", "ACC1", Single("ACC1")),
        ("UI", "1.2.3", Single("1.2.3")),
        ("IS", "007", Single("7")),
        # wild cards only for AE, CS, LO, LT, PN, SH, ST, UC, UR, UT (C.2.2.2.4)
        ("CS", "C?", Wildcard("C?")),
        ("PN", "Doe*", Wildcard("Doe*")),
        ("IS", "1*", Single("1*")),
        ("UI", "1.2.*", Single("1.2.*")),
        # C.2.2.2.2 List of UID Matching
        ("UI", ["1.2.3", "1.2.4", "1.2.3"], UidList(("1.2.3", "1.2.4"))),
        # C.2.2.2.5 Range Matching
        ("DA", "20200101-20201231", Range("20200101", "20201231")),
        ("DA", "20200101-", Range("20200101", None)),
        ("DA", "-20201231", Range(None, "20201231")),
        ("DA", "20200101", Single("20200101")),
        ("TM", "1000-1030", Range("100000.000000", "103059.999999")),
        ("TM", "1000", Range("100000.000000", "100059.999999")),
        ("DT", "2020-2021", Range("20200101000000.000000", "20211231235959.999999")),
        ("DT", "2020011510-0500", Range("20200115100000.000000", "20200115105959.999999")),
        (
            "DT",
            "20200115-20200116103000-0500",
            Range("20200115000000.000000", "20200116103000.999999"),
        ),
        # several values that are not UIDs: any of them (module docstring)
        ("CS", ["CT", "MR"], AnyOf((Single("CT"), Single("MR")))),
        ("CS", ["CT", "*"], Universal()),
    ],
)
def test_compile_condition(vr: str, value: object, expected: object) -> None:
    assert compile_condition(vr, value) == expected


def test_pn_case_folding_is_an_option() -> None:
    assert compile_condition("PN", "DOE^John", fold_pn=True) == Single("doe^john", fold=True)
    assert compile_condition("LO", "DOE", fold_pn=True) == Single("DOE")  # only PN


@pytest.mark.parametrize(
    ("vr", "value"), [("DA", "2020"), ("DA", "2020-01-01"), ("TM", "25xx-"), ("DA", "202001*")]
)
def test_a_malformed_date_or_time_is_refused_with_a900(vr: str, value: str) -> None:
    with pytest.raises(QueryError) as caught:
        compile_condition(vr, value)
    assert caught.value.status == 0xA900


def test_a_sequence_key_with_two_items_is_refused() -> None:
    with pytest.raises(QueryError, match="more than one item"):
        compile_condition("SQ", Sequence([Dataset(), Dataset()]))


def test_an_empty_sequence_or_item_is_universal() -> None:
    assert compile_condition("SQ", Sequence()) == Universal()
    assert compile_condition("SQ", Sequence([Dataset()])) == Universal()


# --- testing stored values


def t(vr: str, key: object, *stored: str, fold_pn: bool = False) -> bool:
    return values_match(
        compile_condition(vr, key, fold_pn=fold_pn), vr, [normalize(vr, s) for s in stored]
    )


def test_single_value_matching_is_exact_and_case_sensitive() -> None:
    assert t("LO", "ACC1", "ACC1")
    assert not t("LO", "ACC1", "acc1")
    assert not t("LO", "ACC1", "ACC10")
    assert t("LO", "ACC1", "ACC1  ")  # padding is not significant
    assert not t("LO", "ACC1")  # no value stored
    assert t("IS", "7", "007")


def test_wildcards() -> None:
    assert t("LO", "AC*", "ACC1")
    assert t("LO", "A*1", "A1")  # "*" matches a zero-length run
    assert t("LO", "AC?1", "ACC1")
    assert not t("LO", "AC?1", "AC1")  # "?" is exactly one character
    assert not t("LO", "ac*", "ACC1")
    assert t("LO", "a.c*", "a.cd") and not t("LO", "a.c*", "abcd")  # regex characters are literal
    assert t("LO", "[x]*", "[x]y")
    assert t("SH", "?", "é")  # one character, not one byte


def reference_match(pattern: str, text: str) -> bool:
    """C.2.2.2.4 read literally, by recursion (exponential: short inputs only)."""
    if not pattern:
        return not text
    if pattern[0] == "*":
        return any(reference_match(pattern[1:], text[i:]) for i in range(len(text) + 1))
    return bool(text) and pattern[0] in ("?", text[0]) and reference_match(pattern[1:], text[1:])


@settings(max_examples=500, deadline=None)
@given(pattern=st.text(alphabet="ab*?.", max_size=8), text=st.text(alphabet="ab.", max_size=8))
def test_wildcard_matching_agrees_with_the_definition(pattern: str, text: str) -> None:
    assert wildcard_match(pattern, text) is reference_match(pattern, text)


def test_a_pathological_wildcard_key_is_matched_in_linear_time() -> None:
    # With a backtracking regular expression this key takes hours against 64 "a"s.
    started = time.perf_counter()
    assert not t("LO", "*a" * 30 + "b", "a" * 64)
    assert not t("PN", "*a" * 30 + "b", "a" * 64)
    assert not wildcard_match("*a" * 2000 + "b", "a" * 10000)
    assert time.perf_counter() - started < 2.0


def test_pn_matching_is_case_sensitive_unless_folded() -> None:
    assert not t("PN", "DOE^JOHN", "Doe^John")
    assert t("PN", "DOE^JOHN", "Doe^John", fold_pn=True)
    assert t("PN", "doe*", "Doe^John", fold_pn=True)
    assert t("PN", "Doe^John", "Doe^John^^^")


def test_pn_component_groups() -> None:
    name = "Yamada^Tarou=山田^太郎=やまだ^たろう"
    assert t("PN", "Yamada^Tarou", name)
    assert t("PN", "山田*", name)
    assert t("PN", "=山田^太郎", name)
    assert t("PN", "Yamada*=山田*", name)
    assert not t("PN", "Yamada*=鈴木*", name)
    assert not t("PN", "Tarou*", name)


def test_a_multi_valued_stored_attribute_matches_when_any_value_does() -> None:
    # C.2.2.3
    assert t("CS", "PRIMARY", "ORIGINAL", "PRIMARY", "AXIAL")
    assert not t("CS", "SECONDARY", "ORIGINAL", "PRIMARY")


def test_a_key_with_several_values_matches_any_of_them() -> None:
    assert t("CS", ["CT", "MR"], "MR")
    assert t("CS", ["C*", "PT"], "CR")
    assert not t("CS", ["CT", "MR"], "US")


def test_list_of_uid_matching() -> None:
    assert t("UI", ["1.2.3", "1.2.4"], "1.2.4")
    assert not t("UI", ["1.2.3", "1.2.4"], "1.2.5")
    assert not t("UI", "1.2.*", "1.2.3")  # no wild cards for UIDs


@pytest.mark.parametrize(
    ("vr", "key", "stored", "expected"),
    [
        ("DA", "20200101-20201231", "20200101", True),
        ("DA", "20200101-20201231", "20201231", True),
        ("DA", "20200101-20201231", "20210101", False),
        ("DA", "-20201231", "19000101", True),
        ("DA", "20200101-", "29991231", True),
        ("DA", "20200101-", "20191231", False),
        ("DA", "20200101-", "", False),  # no value: in no range
        ("DA", "20200101-20201231", "2020.06.01", True),
        ("TM", "1000-1030", "103059", True),  # 1030 is the whole minute
        ("TM", "1000-1030", "1031", False),
        ("TM", "-1200", "120030.5", True),
        ("TM", "1200", "120030", True),
        ("TM", "1200", "1201", False),
        ("DT", "20200115-20200116", "20200116235959", True),
        ("DT", "20200115-20200116", "20200117", False),
    ],
)
def test_range_matching(vr: str, key: str, stored: str, expected: bool) -> None:
    assert t(vr, key, stored) is expected


# --- sequence matching (C.2.2.2.6) and the values returned


def code(value: str, scheme: str = "DCM", meaning: str = "") -> Dataset:
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = scheme
    item.CodeMeaning = meaning or value
    return item


def stored_instance() -> Dataset:
    ds = Dataset()
    ds.PatientName = "Doe^John"
    ds.ProcedureCodeSequence = Sequence([code("A1", meaning="first"), code("B2", "LN", "second")])
    return ds


def test_sequence_matching_needs_one_item_matching_every_key() -> None:
    stored = stored_instance()

    def keys(**item: str) -> list[Key]:
        query = Dataset()
        query.ProcedureCodeSequence = Sequence([Dataset()])
        for keyword, value in item.items():
            setattr(query.ProcedureCodeSequence[0], keyword, value)
        return compile_keys(query)

    assert dataset_matches(keys(CodeValue="B2", CodingSchemeDesignator="LN"), stored)
    assert dataset_matches(keys(CodeValue="?2"), stored)
    assert not dataset_matches(
        keys(CodeValue="A1", CodingSchemeDesignator="LN"), stored
    )  # not in one item
    assert dataset_matches(keys(CodeValue=""), stored)
    assert not dataset_matches(keys(CodeValue="A1"), Dataset())  # no sequence stored


def test_a_matched_sequence_returns_the_matching_items_with_the_requested_attributes() -> None:
    query = Dataset()
    query.ProcedureCodeSequence = Sequence([Dataset()])
    query.ProcedureCodeSequence[0].CodeValue = "B*"
    query.ProcedureCodeSequence[0].CodeMeaning = ""
    (key,) = compile_keys(query)
    element = response_element(key, stored_instance())
    assert len(element.value) == 1
    item = element.value[0]
    assert item.CodeValue == "B2" and item.CodeMeaning == "second"
    assert "CodingSchemeDesignator" not in item  # not requested


def test_an_empty_sequence_key_returns_the_whole_sequence() -> None:
    query = Dataset()
    query.ProcedureCodeSequence = Sequence()
    (key,) = compile_keys(query)
    element = response_element(key, stored_instance())
    assert [i.CodeValue for i in element.value] == ["A1", "B2"]
    assert element.value[1].CodingSchemeDesignator == "LN"


def test_nested_sequences_are_matched_recursively() -> None:
    inner = Dataset()
    inner.ProcedureCodeSequence = Sequence([code("X9")])
    stored = Dataset()
    stored.RequestAttributesSequence = Sequence([Dataset(), inner])
    query = Dataset()
    query.RequestAttributesSequence = Sequence([Dataset()])
    query.RequestAttributesSequence[0].ProcedureCodeSequence = Sequence([Dataset()])
    query.RequestAttributesSequence[0].ProcedureCodeSequence[0].CodeValue = "X9"
    assert dataset_matches(compile_keys(query), stored)
    query.RequestAttributesSequence[0].ProcedureCodeSequence[0].CodeValue = "X8"
    assert not dataset_matches(compile_keys(query), stored)


def test_a_requested_key_that_is_not_stored_comes_back_zero_length() -> None:
    query = Dataset()
    query.PatientComments = ""
    (key,) = compile_keys(query)
    element = response_element(key, stored_instance())
    assert element.tag == 0x00104000 and element.value in (None, "")


# --- Specific Character Set: the query's values are decoded with it (C.2.2.2)


def test_keys_are_decoded_with_the_identifiers_character_set() -> None:
    query = Dataset()
    query.SpecificCharacterSet = "ISO_IR 100"
    query.PatientName = "Müller*"
    wire = encode_dataset(query, EXPLICIT_VR_LITTLE_ENDIAN)
    assert "Müller".encode("latin-1") in wire
    keys = compile_keys(decode_dataset(wire, EXPLICIT_VR_LITTLE_ENDIAN), skip=(0x00080005,))
    assert keys == [Key(0x00100010, "PN", Wildcard("Müller*"))]


def test_a_response_is_in_the_requests_character_set_when_that_can_encode_it() -> None:
    assert choose_character_set(["Doe^John"], ()) == ()
    assert choose_character_set(["Doe^John"], ("ISO_IR 100",)) == ("ISO_IR 100",)
    assert choose_character_set(["Müller^Jürgen"], ("ISO_IR 100",)) == ("ISO_IR 100",)
    assert choose_character_set(["Müller^Jürgen"], ()) == (UTF8,)
    assert choose_character_set(["Müller"], ("ISO_IR 6",)) == (UTF8,)
    assert choose_character_set(["山田^太郎"], ("ISO_IR 100",)) == (UTF8,)
    assert choose_character_set(["Müller"], ("ISO 2022 IR 6", "ISO 2022 IR 87")) == (UTF8,)


# --- the SQL translation agrees with the Python rules


def sql_matches(vr: str, condition: object, stored: str) -> bool | None:
    clause = sql_condition("v", vr, condition)  # type: ignore[arg-type]
    if clause is None:
        return None
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (v TEXT, v__k TEXT)")
    key = range_key(vr, stored) if vr in ("DA", "TM", "DT") else None
    conn.execute("INSERT INTO t VALUES (?, ?)", (stored, key or ""))
    return bool(
        conn.execute(f"SELECT COUNT(*) FROM t WHERE {clause[0]}", clause[1]).fetchone()[0] == 1
    )


_TEXT = st.text(alphabet="ab[]%_^\\.é", max_size=6)
_PATTERN = st.text(alphabet="ab*?[]%_^.é", min_size=1, max_size=6)


@settings(max_examples=400, deadline=None)
@given(pattern=_PATTERN, stored=_TEXT)
def test_sql_wildcards_agree_with_python(pattern: str, stored: str) -> None:
    condition = compile_condition("LO", pattern)
    stored = normalize("LO", stored)
    expected = values_match(condition, "LO", [stored] if stored else [])
    assert sql_matches("LO", condition, stored) in (expected, None)


_DATES = st.dates().map(lambda d: f"{d.year:04d}{d.month:02d}{d.day:02d}")


@settings(max_examples=200, deadline=None)
@given(low=st.one_of(st.just(""), _DATES), high=st.one_of(st.just(""), _DATES), stored=_DATES)
def test_sql_date_ranges_agree_with_python(low: str, high: str, stored: str) -> None:
    condition = compile_condition("DA", f"{low}-{high}")
    assert sql_matches("DA", condition, stored) is values_match(condition, "DA", [stored])


_TIMES = st.from_regex(
    r"([01][0-9]|2[0-3])([0-5][0-9]([0-5][0-9](\.[0-9]{1,6})?)?)?", fullmatch=True
)


@settings(max_examples=200, deadline=None)
@given(low=_TIMES, high=_TIMES, stored=_TIMES)
def test_sql_time_ranges_agree_with_python(low: str, high: str, stored: str) -> None:
    condition = compile_condition("TM", f"{low}-{high}")
    assert sql_matches("TM", condition, stored) is values_match(condition, "TM", [stored])


def test_sql_leaves_person_names_and_sequences_to_python() -> None:
    assert sql_condition("v", "PN", Single("Doe")) is None
    assert sql_condition("v", "PN", Wildcard("Doe*")) is None
    assert sql_matches("UI", UidList(("1.2", "1.3")), "1.3") is True
    assert sql_matches("CS", AnyOf((Single("CT"), Wildcard("M?"))), "MR") is True
