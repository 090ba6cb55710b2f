"""The identifier dicomscu sends, read back from the `--store-query` file.

`--store-query FILE` writes the query before anything is sent, so these tests point
dicomscu at a port where nothing listens: the file is written, then the connection
fails (exit 1), and the file is read with pydicom and with DCMTK's dcmdump.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset

from cli.dicomscu import main
from cli.dicomscu.charset import charset_for_codeset
from cli.dicomscu.keys import parse_keys
from cli.dicomscu.query import QueryError, build_query
from cli.dicomscu.queryhelp import query_help
from dimse.datasets import encode_dataset
from dimse.models import (
    MODALITY_WORKLIST_FIND,
    PATIENT_ROOT_FIND,
    PATIENT_ROOT_GET,
    PATIENT_ROOT_MOVE,
    STUDY_ROOT_FIND,
    Root,
)
from tests import peers
from tests.dicomscu_support import run_dicomscu

EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"


def stored_query(tmp_path: Path, *argv: str, expect: int = 1) -> Dataset:
    """Run dicomscu with --store-query against a closed port; the file read back."""
    path = tmp_path / "query.dcm"
    status = main([*argv, "--store-query", str(path), "127.0.0.1", str(peers.free_port())])
    assert status == expect
    return dcmread(path)


def tags(dataset: Dataset) -> list[int]:
    return [int(element.tag) for element in dataset]


# -- levels and unique keys (GDCMSCU.md's table) -----------------------------------------------


@pytest.mark.parametrize(
    ("root", "level", "value", "unique_keys"),
    [
        ("--patientroot", "--patient", "PATIENT", []),
        ("--patientroot", "--study", "STUDY", [0x00100020]),
        ("--patientroot", "--series", "SERIES", [0x00100020, 0x0020000D]),
        ("--patientroot", "--image", "IMAGE", [0x00100020, 0x0020000D, 0x0020000E]),
        ("--studyroot", "--study", "STUDY", []),
        ("--studyroot", "--series", "SERIES", [0x0020000D]),
        ("--studyroot", "--image", "IMAGE", [0x0020000D, 0x0020000E]),
    ],
)
def test_level_and_the_unique_keys_of_the_levels_above(
    tmp_path: Path, root: str, level: str, value: str, unique_keys: list[int]
) -> None:
    query = stored_query(tmp_path, "--find", root, level)
    assert query.QueryRetrieveLevel == value
    assert tags(query) == [0x00080005, 0x00080052, *unique_keys]
    for tag in unique_keys:
        assert query[tag].value in ("", None)


def test_the_level_is_study_by_default(tmp_path: Path) -> None:
    assert stored_query(tmp_path, "--find", "--patientroot").QueryRetrieveLevel == "STUDY"


def test_user_keys_are_added_and_replace_automatic_ones(tmp_path: Path) -> None:
    query = stored_query(
        tmp_path, "--find", "--patientroot", "--series", "-k", "10,20=PID-7", "-k", "8,60="
    )
    assert query.PatientID == "PID-7"
    assert query.Modality == ""
    assert tags(query) == [0x00080005, 0x00080052, 0x00080060, 0x00100020, 0x0020000D]


def test_a_user_key_can_replace_the_level(tmp_path: Path) -> None:
    query = stored_query(tmp_path, "--find", "--patientroot", "-k", "8,52=PATIENT")
    assert query.QueryRetrieveLevel == "PATIENT"


def test_a_root_is_needed_and_dicomscu_says_so(tmp_path: Path, capsys) -> None:
    path = tmp_path / "q.dcm"
    assert main(["--find", "--store-query", str(path), "127.0.0.1", str(peers.free_port())]) == 2
    err = capsys.readouterr().err
    assert "--find needs an information model: add --patientroot" in err
    assert "--studyroot" in err


def test_study_root_with_patient_level_is_refused_clearly(capsys) -> None:
    assert (
        main(
            [
                "--move",
                "--studyroot",
                "--patient",
                "--port-scp",
                "11113",
                "127.0.0.1",
                str(peers.free_port()),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "the Study Root model has no PATIENT level" in err
    assert "--patientroot --patient" in err


def test_two_roots_or_two_levels_are_refused(capsys) -> None:
    assert (
        main(["--find", "--patientroot", "--studyroot", "127.0.0.1", str(peers.free_port())]) == 2
    )
    assert "choose one model" in capsys.readouterr().err
    assert (
        main(
            ["--find", "--patientroot", "--series", "--image", "127.0.0.1", str(peers.free_port())]
        )
        == 2
    )
    assert "several query levels were given (--series, --image)" in capsys.readouterr().err


# -- the file itself: a proper Part 10 file --------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "sop_class"),
    [
        (["--find", "--patientroot"], PATIENT_ROOT_FIND),
        (["--find", "--studyroot"], STUDY_ROOT_FIND),
        (["--move", "--patientroot", "--port-scp", "11113"], PATIENT_ROOT_MOVE),
        (["--get", "--patientroot"], PATIENT_ROOT_GET),
        (["--worklist"], MODALITY_WORKLIST_FIND),
    ],
)
def test_the_query_file_has_a_file_meta_group(
    tmp_path: Path, argv: list[str], sop_class: str
) -> None:
    query = stored_query(tmp_path, *argv)
    meta = query.file_meta
    assert meta.MediaStorageSOPClassUID == sop_class
    assert meta.TransferSyntaxUID == EXPLICIT_VR_LITTLE_ENDIAN
    assert meta.MediaStorageSOPInstanceUID.is_valid
    assert (tmp_path / "query.dcm").read_bytes()[128:132] == b"DICM"


def test_dcmdump_reads_the_query_file(tmp_path: Path) -> None:
    stored_query(tmp_path, "--find", "--patientroot", "--patient", "-k", "10,10=DOE*")
    dump = peers.run_dcmtk("dcmdump", tmp_path / "query.dcm").stdout
    assert "(0002,0010) UI =LittleEndianExplicit" in dump
    assert "(0008,0052) CS [PATIENT]" in dump
    assert "(0010,0010) PN [DOE*]" in dump


def test_the_query_is_written_even_when_it_is_then_refused(tmp_path: Path, capsys) -> None:
    path = tmp_path / "q.dcm"
    argv = ["--move", "--patientroot", "--port-scp", "11113", "-k", "10,10=DOE*"]
    assert main([*argv, "--store-query", str(path), "127.0.0.1", str(peers.free_port())]) == 2
    assert "wildcards (* and ?) are not allowed in C-MOVE keys" in capsys.readouterr().err
    assert dcmread(path).PatientName == "DOE*"


@pytest.mark.parametrize(("operation", "value"), [("--move", "1.2.*"), ("--get", "DOE?")])
def test_wildcards_are_refused_in_retrieve_keys(operation: str, value: str, capsys) -> None:
    port = peers.free_port()
    argv = [operation, "--studyroot", "--port-scp", "11113", "-k", f"10,20={value}"]
    assert main([*argv, "127.0.0.1", str(port)]) == 2
    err = capsys.readouterr().err
    assert f"C-{operation[2:].upper()} keys" in err
    assert "--find first" in err
    assert "cannot connect" not in err


def test_worklist_query_has_the_user_keys_and_the_character_set_only(tmp_path: Path) -> None:
    query = stored_query(tmp_path, "--worklist", "-k", "10,10=DOE*", "-k", "40,100=")
    assert tags(query) == [0x00080005, 0x00100010, 0x00400100]
    assert "QueryRetrieveLevel" not in query


# -- root UID ---------------------------------------------------------------------------------


def test_root_uid_is_the_root_of_the_uids_made(tmp_path: Path) -> None:
    query = stored_query(
        tmp_path, "--find", "--patientroot", "--root-uid", "1.2.826.0.1.3680043.2.1143"
    )
    assert query.file_meta.MediaStorageSOPInstanceUID.startswith("1.2.826.0.1.3680043.2.1143.")


def test_gdcm_root_uid_environment_variable(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("GDCM_ROOT_UID", "1.2.3.4")
    query = stored_query(tmp_path, "--find", "--patientroot")
    assert query.file_meta.MediaStorageSOPInstanceUID.startswith("1.2.3.4.")
    query = stored_query(tmp_path, "--find", "--patientroot", "--root-uid", "1.2.5")
    assert query.file_meta.MediaStorageSOPInstanceUID.startswith("1.2.5.")


def test_without_a_root_uids_are_made_under_2_25(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("GDCM_ROOT_UID", raising=False)
    query = stored_query(tmp_path, "--find", "--patientroot")
    assert query.file_meta.MediaStorageSOPInstanceUID.startswith("2.25.")


@pytest.mark.parametrize("root", ["1.02.3", "1..2", "abc", "1.2.", "1." + "2" * 60])
def test_an_invalid_root_uid_is_an_error_before_anything_else(
    root: str, monkeypatch, capsys
) -> None:
    monkeypatch.setenv("GDCM_ROOT_UID", root)
    assert main(["--echo", "127.0.0.1", str(peers.free_port())]) == 1
    err = capsys.readouterr().err
    assert f"specified Root UID is not valid: {root}" in err
    assert "cannot connect" not in err


# -- character set --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("codeset", "term"),
    [
        ("UTF-8", "ISO_IR 192"),
        ("utf8", "ISO_IR 192"),
        ("ANSI_X3.4-1968", "ISO_IR 100"),  # the C locale
        ("ASCII", "ISO_IR 100"),
        ("ISO-8859-1", "ISO_IR 100"),
        ("ISO-8859-2", "ISO_IR 101"),
        ("ISO-8859-5", "ISO_IR 144"),
        ("ISO8859-7", "ISO_IR 126"),
        ("iso88598", "ISO_IR 138"),
        ("ISO-8859-9", "ISO_IR 148"),
        ("ISO-8859-15", "ISO_IR 203"),
        ("GB18030", "GB18030"),
        ("KOI8-R", "ISO_IR 192"),  # no DICOM term: UTF-8 carries any text
    ],
)
def test_character_set_from_the_locale_codeset(codeset: str, term: str) -> None:
    assert charset_for_codeset(codeset) == term


def test_a_utf8_locale_sends_utf8(tmp_path: Path) -> None:
    result = run_dicomscu(
        "--find", "--patientroot", "--patient", "--key", "10,10=*Jérôme*",
        "--store-query", tmp_path / "q.dcm", "127.0.0.1", peers.free_port(),
        env={"LC_ALL": "C.UTF-8"},
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    query = dcmread(tmp_path / "q.dcm")
    assert query.SpecificCharacterSet == "ISO_IR 192"
    assert query.PatientName == "*Jérôme*"
    assert "*Jérôme*".encode() in (tmp_path / "q.dcm").read_bytes()


def test_the_c_locale_sends_iso_ir_100(tmp_path: Path) -> None:
    result = run_dicomscu(
        "--find", "--patientroot", "--patient", "--key", "10,10=*Jérôme*",
        "--store-query", tmp_path / "q.dcm", "127.0.0.1", peers.free_port(),
        env={"LC_ALL": "C"},
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    query = dcmread(tmp_path / "q.dcm")
    assert query.SpecificCharacterSet == "ISO_IR 100"
    assert query.PatientName == "*Jérôme*"
    assert "*Jérôme*".encode("latin-1") in (tmp_path / "q.dcm").read_bytes()


def test_text_the_locale_cannot_carry_is_refused(tmp_path: Path) -> None:
    result = run_dicomscu(
        "--find", "--patientroot", "--key", "10,10=Пётр", "127.0.0.1", peers.free_port(),
        env={"LC_ALL": "C"},
    )  # fmt: skip
    assert result.returncode == 2
    assert "cannot be written in ISO_IR 100" in result.stderr
    assert "UTF-8 locale" in result.stderr


def user_warnings(recwarn: pytest.WarningsRecorder) -> list[str]:
    return [str(w.message) for w in recwarn if issubclass(w.category, UserWarning)]


def test_a_value_the_declared_character_set_cannot_carry_is_refused_before_connecting(
    capsys, recwarn
) -> None:
    """The key 8,5 replaces the locale's character set, and the values are checked
    against it: pydicom would write the Greek letters as `?`, a wildcard."""
    port = peers.free_port()
    argv = ["--find", "--studyroot", "-k", "10,10=Διον*", "-k", "8,5=ISO_IR 100"]
    assert main([*argv, "127.0.0.1", str(port)]) == 2
    err = capsys.readouterr().err
    assert (
        "the value of Patient's Name (0010,0010): 'Διον' cannot be written in ISO_IR 100 "
        "(latin_1), the character set of the key 8,5 (Specific Character Set)"
    ) in err
    assert "cannot connect" not in err  # refused before any network activity
    assert "UserWarning" not in err
    assert user_warnings(recwarn) == []


@pytest.mark.parametrize(
    ("charset", "words"),
    [
        ("ISO_IR 999", "'ISO_IR 999' is not a Defined Term of PS3.3 C.12.1.1.2"),
        ("ISO_IR100", "did you mean 'ISO_IR 100'?"),
        ("ISO_IR 192\\ISO 2022 IR 87", "ISO_IR 192 allows no code extensions"),
        ("ISO_IR 100\\ISO 2022 IR 87", "each is an ISO 2022 term"),
        ("ISO 2022 IR 6\\", "value 2 is empty"),
    ],
)
def test_a_character_set_key_pydicom_cannot_use_is_a_usage_error(
    charset: str, words: str, capsys, recwarn
) -> None:
    port = peers.free_port()
    argv = ["--find", "--studyroot", "-k", "10,10=DOE*", "-k", f"8,5={charset}"]
    assert main([*argv, "127.0.0.1", str(port)]) == 2
    err = capsys.readouterr().err
    assert "the value of Specific Character Set (0008,0005): " in err
    assert words in err
    assert "cannot connect" not in err
    assert "UserWarning" not in err
    assert user_warnings(recwarn) == []


def identifier_bytes(*keys: str) -> bytes:
    """The identifier of a Study Root C-FIND with these keys, in a UTF-8 locale."""
    query = build_query("find", [Root.STUDY], [], parse_keys(list(keys)), "ISO_IR 192")
    return encode_dataset(query.identifier, EXPLICIT_VR_LITTLE_ENDIAN)


def test_greek_text_with_the_greek_character_set_is_sent_in_iso_8859_7(recwarn) -> None:
    data = identifier_bytes("10,10=Διον*", "8,5=ISO_IR 126")
    assert b"ISO_IR 126" in data
    assert "Διον*".encode("iso8859_7") == b"\xc4\xe9\xef\xed*"
    assert b"\xc4\xe9\xef\xed*" in data
    assert b"?" not in data
    assert user_warnings(recwarn) == []


@pytest.mark.parametrize(
    ("charset", "name", "encoded"),
    [
        ("\\ISO 2022 IR 87", "山田*", b"\x1b$B;3ED"),  # JIS X 0208 after its escape sequence
        (  # Latin-1 from value 1, then ISO-IR 126 designated to G1 by ESC - F
            "ISO 2022 IR 100\\ISO 2022 IR 126",
            "Jérôme^Διον*",
            b"J\xe9r\xf4me^\x1b-F\xc4\xe9\xef\xed",
        ),
        ("", "DOE*", b"DOE*"),  # the default repertoire
    ],
)
def test_values_the_code_extensions_can_write_are_accepted(
    charset: str, name: str, encoded: bytes, recwarn
) -> None:
    assert encoded in identifier_bytes(f"10,10={name}", f"8,5={charset}")
    assert user_warnings(recwarn) == []


@pytest.mark.parametrize(
    ("keys", "words"),
    [
        (
            ["10,10=é*", "8,5=\\ISO 2022 IR 87"],
            "'é' cannot be written in \\ISO 2022 IR 87 (ascii, iso2022_jp)",
        ),
        (["10,10=é*", "8,5="], "'é' cannot be written in the default repertoire (ascii)"),
        (["10,10=Διον*", "8,5=ISO_IR 144"], "'Διον' cannot be written in ISO_IR 144"),
        (["8,60=É"], "a value of VR CS uses the default repertoire"),  # PS3.5 6.1.2.3
    ],
)
def test_values_the_declared_character_set_cannot_write_are_refused(
    keys: list[str], words: str, recwarn
) -> None:
    with pytest.raises(QueryError) as caught:
        identifier_bytes(*keys)
    assert words in str(caught.value)
    assert user_warnings(recwarn) == []


# -- --queryhelp ------------------------------------------------------------------------------


def test_queryhelp_lists_the_keys_of_each_level_of_each_model(capsys) -> None:
    assert main(["--queryhelp"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    for title in ("Patient Root", "Study Root", "Modality Worklist"):
        assert f"{title} Query/Retrieve Information Model" in out or title in out
    assert " PATIENT level (--patient), PS3.4 Table C.6-1:" in out
    assert " IMAGE level (--image), PS3.4 Table C.6-7:" in out
    patient_id = next(line for line in out.splitlines() if "(0010,0020)" in line)
    assert " U " in patient_id and "--key 10,20=" in patient_id


def test_queryhelp_for_one_root(capsys) -> None:
    assert main(["--queryhelp", "--studyroot"]) == 0
    out = capsys.readouterr().out
    assert "Study Root Query/Retrieve Information Model" in out
    assert "Patient Root" not in out
    assert "PATIENT level" not in out


def test_queryhelp_study_root_study_level_has_patient_keys_as_required() -> None:
    text = query_help([Root.STUDY])
    study = text.split(" STUDY level")[1].split(" SERIES level")[0]
    name = next(line for line in study.splitlines() if "(0010,0010)" in line)
    assert " R " in name


def worklist_help_rows() -> list[str]:
    text = query_help([Root.WORKLIST])
    return text.split(" no levels, PS3.4 Table K.6-1:\n")[1].splitlines()


def test_queryhelp_lists_the_worklist_keys_that_go_inside_the_step_sequence() -> None:
    from cli.dicomscu.worklist_keys import STEP_KEYS

    rows = worklist_help_rows()
    start = next(i for i, row in enumerate(rows) if row.startswith("  (0040,0100)"))
    inside = []
    for row in rows[start + 1 :]:
        if not row.startswith("  >"):
            break
        inside.append(row)
    assert [row[3:14] for row in inside] == [
        f"({tag >> 16:04X},{tag & 0xFFFF:04X})" for tag, _ in STEP_KEYS
    ]
    aet = next(row for row in inside if "(0040,0001)" in row)
    assert " AE  R  Scheduled Station AE Title" in aet and aet.endswith("--key 40,1=")
    note = "\n".join(rows[:start])
    assert "--key 40,1=AA32 is" in note and "sent as --key 40,100[0].40,1=AA32" in note
    # keys of the other entities are at the top level
    assert any(row.startswith("  (0010,0020)") for row in rows)
    assert any(row.startswith("  (0040,1001)") for row in rows)


def test_queryhelp_shows_the_sequence_form_for_keys_inside_a_sequence() -> None:
    text = query_help([Root.PATIENT])
    assert "A key inside a sequence (marked >) is SQ[0].GGGG,EEEE=VALUE" in text
    patient = text.split(" PATIENT level")[1].split(" STUDY level")[0]
    row = next(line for line in patient.splitlines() if line.startswith("  >(0008,1150)"))
    assert row.endswith("--key 8,1120[0].8,1150=")


def test_the_key_help_documents_the_sequence_form(capsys) -> None:
    assert main(["--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "40,100[0].40,1=AA32" in out
    assert "40,100= asks for the whole sequence" in out
    assert "--worklist puts the Scheduled Procedure Step's keys" in out
