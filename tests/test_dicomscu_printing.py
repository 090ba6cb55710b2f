"""C-FIND responses on stdout: GDCM's layout exactly, and the DICOM JSON model.

The identifiers go through the same path as a response: encoded in a transfer
syntax and decoded by `dimse.datasets.decode_dataset`, which the client uses.
"""

from __future__ import annotations

import io
import json

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from cli.dicomscu.printing import ResponsePrinter
from dimse.datasets import (
    EXPLICIT_VR_LITTLE_ENDIAN,
    IMPLICIT_VR_LITTLE_ENDIAN,
    decode_dataset,
    encode_dataset,
)

# GDCMSCU.md, "C-FIND output", as printed there.
GDCMSCU_EXAMPLE = """\
Find Response: 1
(0008,0005) ?? (CS) [ISO_IR 100]                                  # 10,1 Specific Character Set
(0008,0052) ?? (CS) [PATIENT ]                                    # 8,1 Query/Retrieve Level
(0010,0010) ?? (PN) [Doe^Peter ]                                  # 10,1 Patient's Name
(0010,0020) ?? (LO) [98890234]                                    # 8,1 Patient ID

"""


def received(dataset: Dataset, transfer_syntax: str = IMPLICIT_VR_LITTLE_ENDIAN) -> Dataset:
    """`dataset` as the client hands a response identifier over."""
    return decode_dataset(encode_dataset(dataset, transfer_syntax), transfer_syntax)


def example() -> Dataset:
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.QueryRetrieveLevel = "PATIENT"
    ds.PatientName = "Doe^Peter"
    ds.PatientID = "98890234"
    return ds


def printed(*identifiers: Dataset, **options: bool) -> str:
    out = io.StringIO()
    printer = ResponsePrinter(out, **options)
    for identifier in identifiers:
        printer.response(identifier)
    printer.finish()
    return out.getvalue()


def test_the_layout_is_gdcmscus_exactly() -> None:
    assert printed(received(example())) == GDCMSCU_EXAMPLE


def test_responses_are_numbered_from_1_and_each_ends_with_a_blank_line() -> None:
    text = printed(received(example()), received(example()))
    assert text == GDCMSCU_EXAMPLE + GDCMSCU_EXAMPLE.replace("Response: 1", "Response: 2")


def test_explicit_vr_responses_show_the_vr_received() -> None:
    lines = printed(received(example(), EXPLICIT_VR_LITTLE_ENDIAN)).splitlines()
    assert lines[2] == (
        "(0008,0052) CS [PATIENT ]".ljust(57) + " " * 9 + "# 8,1 Query/Retrieve Level"
    )


def test_an_empty_value_is_no_value() -> None:
    ds = example()
    ds.PatientBirthDate = ""
    line = printed(received(ds)).splitlines()[5]
    assert (
        line == "(0010,0030) ?? (DA) (no value)".ljust(57) + " " * 9 + "# 0,1 Patient's Birth Date"
    )


def test_a_line_longer_than_57_columns_keeps_9_spaces_before_the_comment() -> None:
    ds = example()
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.2.1143.123456789012345678901234567890"
    line = printed(received(ds)).splitlines()[5]
    head = "(0020,000d) ?? (UI) [1.2.826.0.1.3680043.2.1143.123456789012345678901234567890]"
    assert line == head + " " * 9 + "# 58,1 Study Instance UID"


def test_an_odd_uid_counts_its_padding_but_does_not_print_the_nul() -> None:
    ds = example()
    ds.StudyInstanceUID = "1.2.3"
    line = printed(received(ds)).splitlines()[5]
    assert "[1.2.3]" in line and "\x00" not in line and "# 6,1 Study Instance UID" in line


def test_binary_numbers_print_without_brackets_and_multiple_values_with_backslashes() -> None:
    ds = example()
    ds.Rows = 512
    ds.ModalitiesInStudy = ["CT", "MR"]
    lines = printed(received(ds)).splitlines()
    assert any(
        line.startswith("(0028,0010) ?? (US) 512 ") and "# 2,1 Rows" in line for line in lines
    )
    assert any(
        line.startswith("(0008,0061) ?? (CS) [CT\\MR ]") and "# 6,2 Modalities in Study" in line
        for line in lines
    )


def test_sequences_print_their_items_indented() -> None:
    ds = example()
    item = Dataset()
    item.CodeValue = "XR"
    ds.ProcedureCodeSequence = Sequence([item])
    lines = printed(received(ds)).splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("(0008,1032)"))
    assert "?? (SQ) (Sequence with" in lines[start]
    assert "# " in lines[start] and "Procedure Code Sequence" in lines[start]
    assert lines[start + 1].startswith("  (fffe,e000) na (Item with")
    assert lines[start + 2].startswith("    (0008,0100) ?? (SH) [XR]")


def test_utf8_text_is_decoded_with_the_responses_character_set() -> None:
    ds = example()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.PatientName = "Jérôme^Doe"
    line = printed(received(ds)).splitlines()[3]
    assert line.startswith("(0010,0010) ?? (PN) [Jérôme^Doe]")
    assert "# 12,1 Patient's Name" in line  # bytes, not characters


def test_a_worklist_response_is_titled_as_gdcmscu_titles_it() -> None:
    assert printed(received(example()), worklist=True).startswith("WL Find Response: 1\n")


def test_json_is_an_array_in_the_dicom_json_model() -> None:
    identifiers = [received(example()), received(example())]
    data = json.loads(printed(*identifiers, as_json=True))
    assert data == [d.to_json_dict() for d in identifiers]
    assert data[0]["00100010"] == {"vr": "PN", "Value": [{"Alphabetic": "Doe^Peter"}]}


def test_json_with_no_match_is_an_empty_array() -> None:
    assert json.loads(printed(as_json=True)) == []
