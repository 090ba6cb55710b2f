"""`-k/--key gggg,eeee[=VALUE]`: every form gdcmscu reads, and the errors it gives; the
sequence form `SQ[0].gggg,eeee=VALUE`; and the values checked against their VR before
anything is sent (cli/dicomscu/key_values.py)."""

from __future__ import annotations

import pytest
from pydicom.sequence import Sequence

from cli.dicomscu import main
from cli.dicomscu.key_values import RULES, value_problem
from cli.dicomscu.keys import KeySyntaxError, parse_key, parse_keys
from cli.dicomscu.query import QueryError, build_query
from dimse.models import Root
from tests import peers


@pytest.mark.parametrize(
    ("argument", "tag", "vr", "text"),
    [
        ("10,10=A*", 0x00100010, "PN", "A*"),  # --key 10,10="A*": the shell removed the quotes
        ("10,10,A*", 0x00100010, "PN", "A*"),
        ("0010,0010=A*", 0x00100010, "PN", "A*"),
        ("10,20=", 0x00100020, "LO", ""),
        ("10,20", 0x00100020, "LO", ""),
        ("8,60=CT", 0x00080060, "CS", "CT"),
        ("20,D=1.2.3", 0x0020000D, "UI", "1.2.3"),
        ("0020,000d=1.2.3", 0x0020000D, "UI", "1.2.3"),
        ("10,10=Doe^John Q", 0x00100010, "PN", "Doe^John Q"),  # spaces kept
        ("10,10=A,B=C", 0x00100010, "PN", "A,B=C"),  # the value runs to the end
        ("10,10= A ", 0x00100010, "PN", " A "),
        ("8,61=CT\\MR", 0x00080061, "CS", "CT\\MR"),
    ],
)
def test_key_forms(argument: str, tag: int, vr: str, text: str) -> None:
    key = parse_key(argument)
    assert (key.tag, key.vr, key.text) == (tag, vr, text)


@pytest.mark.parametrize(
    "argument",
    ["10", "10;10=A", "xyz,10=A", "12345,10=A", "10,10X", "10,,10", ",10=A", "", "10 ,10=A"],
)
def test_a_key_that_cannot_be_read(argument: str) -> None:
    with pytest.raises(KeySyntaxError) as exc:
        parse_key(argument)
    assert str(exc.value).startswith(f"Could not read Tag: {argument} (")


@pytest.mark.parametrize(
    ("argument", "why"),
    [
        ("9,1234=A", "not in the DICOM data dictionary"),
        ("10,0=A", "group length"),
        ("2,10=1.2", "file meta"),
        ("0,100=1", "command"),
        ("28,10=abc", "must be an integer"),
        ("8,1032=X", "can only be asked for"),
    ],
)
def test_keys_that_read_but_cannot_be_sent_say_why(argument: str, why: str) -> None:
    with pytest.raises(KeySyntaxError, match=why):
        parse_key(argument)


def test_the_vr_comes_from_the_dictionary_and_values_are_converted() -> None:
    assert parse_key("28,10=512").value() == 512  # Rows, US
    assert parse_key("28,30=0.5\\0.5").value() == "0.5\\0.5"  # Pixel Spacing, DS: text
    assert parse_key("18,9087=1.5").value() == 1.5  # Diffusion b-value, FD
    assert parse_key("8,1032=").value() == Sequence([])  # a sequence can be asked for


def test_a_later_key_replaces_an_earlier_one_with_the_same_tag() -> None:
    keys = parse_keys(["10,10=A", "10,20=1", "0010,0010=B"])
    assert [(k.tag, k.text) for k in keys] == [(0x00100020, "1"), (0x00100010, "B")]


@pytest.mark.parametrize("argument", ["10x10", "9,1234=A"])
def test_main_exits_1_with_gdcmscus_message_before_connecting(argument: str, capsys) -> None:
    port = peers.free_port()
    assert main(["--find", "--patientroot", "--key", argument, "127.0.0.1", str(port)]) == 1
    err = capsys.readouterr().err
    assert f"Could not read Tag: {argument}" in err
    assert "cannot connect" not in err


# -- keys inside a sequence: SQ[0].GGGG,EEEE=VALUE ---------------------------------------------


@pytest.mark.parametrize(
    ("argument", "path", "tag", "vr", "text", "where"),
    [
        (
            "40,100[0].40,1=AA32",
            ((0x00400100, 0),),
            0x00400001,
            "AE",
            "AA32",
            "(0040,0100)[0].(0040,0001)",
        ),
        (
            "0040,0100[0].0040,0001,AA32",
            ((0x00400100, 0),),
            0x00400001,
            "AE",
            "AA32",
            "(0040,0100)[0].(0040,0001)",
        ),
        (
            "8,1110[0].8,1150",
            ((0x00081110, 0),),
            0x00081150,
            "UI",
            "",
            "(0008,1110)[0].(0008,1150)",
        ),
        (
            "40,100[0].40,8[0].8,100=P[1].x",  # the value runs to the end, brackets and all
            ((0x00400100, 0), (0x00400008, 0)),
            0x00080100,
            "SH",
            "P[1].x",
            "(0040,0100)[0].(0040,0008)[0].(0008,0100)",
        ),
        (
            "40,100[7].40,1=A",
            ((0x00400100, 7),),
            0x00400001,
            "AE",
            "A",
            "(0040,0100)[7].(0040,0001)",
        ),
        ("10,10=A[0].B", (), 0x00100010, "PN", "A[0].B", "(0010,0010)"),
    ],
)
def test_keys_inside_a_sequence(
    argument: str, path: tuple[tuple[int, int], ...], tag: int, vr: str, text: str, where: str
) -> None:
    """An index other than 0 is read here and refused when the query is built (a usage
    error, tests/test_dicomscu_worklist_keys.py)."""
    key = parse_key(argument)
    assert (key.path, key.tag, key.vr, key.text, key.where) == (path, tag, vr, text, where)


@pytest.mark.parametrize(
    "argument",
    ["40,100[0]", "40,100[0]=A", "40,100[x].40,1=A", "40,100[0]40,1=A", "40,100[0].", "[0].40,1=A"],
)
def test_a_sequence_key_that_cannot_be_read(argument: str) -> None:
    with pytest.raises(KeySyntaxError) as exc:
        parse_key(argument)
    assert str(exc.value).startswith(f"Could not read Tag: {argument} (")


def test_a_sequence_of_a_key_must_be_in_the_dictionary_too() -> None:
    with pytest.raises(KeySyntaxError, match=r"\(0009,1234\) is not in the DICOM data dictionary"):
        parse_key("9,1234[0].10,10=A")


def test_keys_at_different_places_do_not_replace_each_other() -> None:
    keys = parse_keys(["8,1150=1.2", "8,1110[0].8,1150=1.3", "8,1120[0].8,1150=1.4", "8,1150=1.5"])
    assert [(k.where, k.text) for k in keys] == [
        ("(0008,1110)[0].(0008,1150)", "1.3"),
        ("(0008,1120)[0].(0008,1150)", "1.4"),
        ("(0008,1150)", "1.5"),
    ]


# -- key values checked against their VR (cli/dicomscu/key_values.py) ----------------------------------


GOOD_VALUES = {
    "DA": ["20040101", "20040229", "20040101-20041231", "-20041231", "20040101-", "20040101-20040101"],
    "TM": ["12", "1230", "123059", "123059.5", "123059.123456", "235960", "1200-1300", "-0800", "1700-", "12-1200"],
    "DT": [
        "2004", "200401", "20040101", "2004010112", "20040101123059.123456",
        "20040101120000+0100", "2004010112-0500", "2004-2005", "20040101-20040102",
        "2004010112-0500-", "-20040101120000+1400",
    ],
    "AS": ["045Y", "012M", "003W", "001D"],
    "UI": ["1.2.840.10008.1.2", "1.2.3\\1.2.4", "2.25." + "1" * 59, "1.02.3"],
    "IS": ["12", "-12", "+7", " 42 ", "2147483647", "-2147483648", "1\\2\\3"],
    "DS": ["0.5", "-1.25E3", ".5", "5.", "1e-7", " 3.14 ", "0.5\\0.5", "1234567890.12345"],
    "AE": ["AA32", "STORE SCP", "A*", "?B*", "*", "A" * 16, "a-b_c.d"],
    "CS": ["CT", "CT\\MR", "ISO_IR 100", "C*", "ORIGINAL", "A" * 16],
    "PN": ["Doe^J*", "anything at all"],
    "LO": ["P*", "1.2.*"],
}  # fmt: skip

BAD_VALUES = {
    "DA": ["2004-01-01", "20040230", "2004010", "200401011", "2004.01.01", "2004*", "20041231-20040101", "-", "20040101-2004"],
    "TM": ["2400", "1260", "12:30", "1200.5", "12000", "12*", "1300-1200", "120000.1234567"],
    "DT": ["2004013", "20041301", "2004010124", "20040101120000+1500", "2004*", "20050101-20040101", "2004-0500"],
    "AS": ["45Y", "045y", "045", "045YY", "04*Y", "045Y-050Y"],
    "UI": ["1.2.*", "1..2", "1.2.", ".1.2", "1.2a", "1." + "2" * 63, "1.2.3\\x"],
    "IS": ["1.5", "12a", "2147483648", "1234567890123", "1*", "1-2"],
    "DS": ["1,5", "abc", "1.2.3", "12345678901234567", "1*", "e5"],
    "AE": ["A\\B", "A" * 17, "   ", "é", "A\tB"],
    "CS": ["ct", "CT-1", "A" * 17, "CT\\mr"],
}  # fmt: skip


@pytest.mark.parametrize(
    ("vr", "value"), [(vr, value) for vr, values in GOOD_VALUES.items() for value in values]
)
def test_good_values_pass(vr: str, value: str) -> None:
    assert value_problem(vr, value) is None


@pytest.mark.parametrize(
    ("vr", "value"), [(vr, value) for vr, values in BAD_VALUES.items() for value in values]
)
def test_bad_values_are_refused_saying_what_to_write(vr: str, value: str) -> None:
    problem = value_problem(vr, value)
    assert problem is not None
    assert f" is not a {vr}" in problem or f" is not an {vr}" in problem
    assert "write" in problem or "leave the value empty" in problem
    assert "\n" not in problem


@pytest.mark.parametrize("vr", [*RULES, "PN", "SQ", "US", "OB"])
def test_an_empty_value_always_passes(vr: str) -> None:
    assert value_problem(vr, "") is None


@pytest.mark.parametrize(
    ("vr", "value"),
    [
        ("DA", "2004*"),
        ("TM", "12?"),
        ("DT", "2004*"),
        ("UI", "1.2.*"),
        ("IS", "1?"),
        ("DS", "*"),
        ("AS", "0*"),
    ],
)
def test_wildcards_are_refused_where_c_2_2_2_4_does_not_define_them(vr: str, value: str) -> None:
    problem = value_problem(vr, value)
    assert problem is not None and "PS3.4 C.2.2.2.4" in problem


def test_a_reversed_range_says_which_bound_is_after_the_other() -> None:
    assert value_problem("DA", "20241231-20240101") == (
        "20241231-20240101 is not a DA range: 20241231 is after 20240101 (PS3.4 C.2.2.2.5: "
        "the first bound comes first); write the earlier one first"
    )


def identifier_of(operation: str, *keys: str) -> None:
    roots = [] if operation == "worklist" else [Root.STUDY]
    build_query(operation, roots, [], parse_keys(list(keys)), "ISO_IR 100")


def test_the_message_names_the_key_its_value_and_what_to_write() -> None:
    with pytest.raises(QueryError) as caught:
        identifier_of("find", "8,20=2004-01-01")
    assert str(caught.value) == (
        "(0008,0020) Study Date 2004-01-01 is not a DA: write YYYYMMDD, or a range "
        "YYYYMMDD-YYYYMMDD (either side may be empty)"
    )
    with pytest.raises(QueryError) as caught:
        identifier_of("worklist", "40,100[0].40,2=2024-01-01")
    assert str(caught.value).startswith(
        "(0040,0100)[0].(0040,0002) Scheduled Procedure Step Start Date 2024-01-01 is not a DA"
    )
    with pytest.raises(QueryError) as caught:
        identifier_of("worklist", "40,1=THIS-AE-TITLE-IS-LONG")  # checked where it was typed
    assert str(caught.value).startswith(
        "(0040,0001) Scheduled Station AE Title THIS-AE-TITLE-IS-LONG is not an AE: write at "
        "most 16 characters"
    )


def user_warnings(recwarn: pytest.WarningsRecorder) -> list[str]:
    return [str(w.message) for w in recwarn if issubclass(w.category, UserWarning)]


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (
            ["--find", "--studyroot", "-k", "8,20=2004-01-01"],
            "(0008,0020) Study Date 2004-01-01 is not a DA: write YYYYMMDD, or a range "
            "YYYYMMDD-YYYYMMDD (either side may be empty)",
        ),
        (["--find", "--studyroot", "-k", "8,30=12:30"], "(0008,0030) Study Time 12:30 is not a TM"),
        (
            ["--find", "--studyroot", "-k", "20,d=1.2.*"],
            "(0020,000D) Study Instance UID 1.2.* is not a UI",
        ),
        (
            ["--find", "--patientroot", "-k", "10,1010=45"],
            "(0010,1010) Patient's Age 45 is not an AS",
        ),
        (["--worklist", "-k", "40,2=2024-01-01"], "Scheduled Procedure Step Start Date 2024-01-01"),
        (
            ["--move", "--studyroot", "--port-scp", "11113", "-k", "20,d=1.2.3.x"],
            "(0020,000D) Study Instance UID 1.2.3.x is not a UI",
        ),
    ],
)
def test_a_bad_value_is_a_usage_error_before_any_network_activity(
    argv: list[str], line: str, capsys, recwarn
) -> None:
    assert main([*argv, "127.0.0.1", str(peers.free_port())]) == 2  # nothing listens there
    err = capsys.readouterr().err
    assert line in err
    assert "cannot connect" not in err and "refused" not in err
    assert "UserWarning" not in err and "pydicom" not in err
    assert user_warnings(recwarn) == []


def test_a_wildcard_inside_a_sequence_is_refused_for_c_move(capsys) -> None:
    """C-MOVE takes no wildcard anywhere in its identifier, sequences included."""
    argv = ["--move", "--studyroot", "--series", "--port-scp", "11113"]
    argv += ["-k", "20,d=1.2.3", "-k", "40,275[0].40,1001=RP*"]
    assert main([*argv, "127.0.0.1", str(peers.free_port())]) == 2
    err = capsys.readouterr().err
    assert "Requested Procedure ID (0040,1001) = 'RP*': wildcards (* and ?) are not allowed" in err
