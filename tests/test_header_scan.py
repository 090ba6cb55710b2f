"""The hand-written header scanner (dimse/archive/header_scan.py) against pydicom.

Wherever the scanner answers, its text for every indexed attribute must be pydicom's
(through `attribute_texts`, the path it replaces); where it does not cover a file it
must say so (`Unsupported`), never guess. Random bytes may only end in `Unsupported`
or `Short`.
"""

from __future__ import annotations

import os
from pathlib import Path

import pydicom.data
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from dimse.archive import header_scan
from dimse.archive.instance_header import (
    _LAST_INDEXED_TAG,
    _WANTED,
    SCAN_FIRST,
    _scanned,
    ascii_text_allowed,
    attribute_texts,
    read_header,
    read_texts,
)
from dimse.archive.query_keys import COLUMNS_BY_TAG
from dimse.files import NotDicomFile, read_part10_info
from tests.test_archive_data import make_instance

PYDICOM_FILES = sorted(
    Path(pydicom.data.__file__).parent.joinpath("test_files").glob("*.dcm"), key=lambda p: p.name
)


def pydicom_texts(path: Path) -> dict[int, list[str]]:
    header, _ = read_header(path)
    ascii_ok = ascii_text_allowed(header)
    return {tag: attribute_texts(header, tag, c.vr, ascii_ok) for tag, c in COLUMNS_BY_TAG.items()}


def scanner_texts(path: Path) -> dict[int, list[str]] | None:
    """The scanner's texts, read from the file; the same from the data set's first
    bytes as the archive keeps them while receiving (asserted here)."""
    try:
        info = read_part10_info(path)
    except NotDicomFile:  # no file meta: the archive always writes one
        return None
    texts_of = _scanned(path, info.dataset_offset, info.transfer_syntax, None)
    head = path.read_bytes()[info.dataset_offset :][:SCAN_FIRST]
    from_head = _scanned(path, info.dataset_offset, info.transfer_syntax, head)
    if texts_of is None:
        assert from_head is None
        return None
    assert from_head is not None
    found = {tag: texts_of(tag, c.vr) for tag, c in COLUMNS_BY_TAG.items()}
    assert found == {tag: from_head(tag, c.vr) for tag, c in COLUMNS_BY_TAG.items()}
    return found


def write(tmp_path: Path, ds: Dataset, syntax: str, name: str = "x.dcm") -> Path:
    ds.file_meta = pydicom.dataset.FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = syntax
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    path = tmp_path / name
    ds.save_as(path, enforce_file_format=True)
    return path


@pytest.mark.parametrize("path", PYDICOM_FILES, ids=lambda p: p.name)
def test_pydicom_test_files_read_alike(path: Path) -> None:
    try:
        expected = pydicom_texts(path)
    except Exception:
        pytest.skip("pydicom cannot read this file's header either")
    got = scanner_texts(path)
    if got is not None:
        assert got == expected


def test_the_scanner_covers_most_pydicom_test_files() -> None:
    covered = [p.name for p in PYDICOM_FILES if scanner_texts(p) is not None]
    assert "CT_small.dcm" in covered and "MR_small.dcm" in covered
    assert len(covered) >= len(PYDICOM_FILES) // 2, covered
    print(f"the scanner reads {len(covered)} of {len(PYDICOM_FILES)} pydicom test files")


def _with_sequences(ds: Dataset, undefined: bool) -> Dataset:
    """Sequences before, between and after the indexed attributes, nested twice."""
    inner = Dataset()
    inner.CodeValue = "X"
    inner.CodeMeaning = "inner"
    item = Dataset()
    item.ReferencedSOPClassUID = "1.2.3"
    item.ReferencedSOPInstanceUID = "1.2.3.4"
    item.ConceptNameCodeSequence = Sequence([inner])
    for keyword in ("ReferencedStudySequence", "ReferencedImageSequence", "SourceImageSequence"):
        setattr(ds, keyword, Sequence([item, Dataset()]))
        ds[keyword].is_undefined_length = undefined
        for each in ds[keyword].value:
            each.is_undefined_length_sequence_item = undefined  # type: ignore[attr-defined]
    ds.ReferencedImageSequence[0].ConceptNameCodeSequence.is_undefined_length = undefined
    return ds


@pytest.mark.parametrize("syntax", [ImplicitVRLittleEndian, ExplicitVRLittleEndian])
@pytest.mark.parametrize("undefined", [False, True], ids=["defined", "undefined"])
def test_sequences_are_skipped(tmp_path: Path, syntax: str, undefined: bool) -> None:
    path = write(tmp_path, _with_sequences(make_instance(), undefined), syntax)
    got = scanner_texts(path)
    assert got is not None
    assert got == pydicom_texts(path)
    assert got[0x0020000D] and got[0x00280010]  # read past the sequences


@pytest.mark.parametrize("syntax", [ImplicitVRLittleEndian, ExplicitVRLittleEndian])
def test_text_that_is_not_ascii_goes_to_pydicom(tmp_path: Path, syntax: str) -> None:
    ds = make_instance(PatientName="Müller^Jürgen")
    path = write(tmp_path, ds, syntax)
    assert scanner_texts(path) is None
    texts_of, _ = read_texts(path)
    assert texts_of(0x00100010, "PN") == ["Müller^Jürgen"]


def test_japanese_g0_goes_to_pydicom(tmp_path: Path) -> None:
    ds = make_instance()
    ds.SpecificCharacterSet = "ISO_IR 13"
    assert scanner_texts(write(tmp_path, ds, ExplicitVRLittleEndian)) is None


def test_multiple_values_and_integers(tmp_path: Path) -> None:
    ds = make_instance(Rows=512, Columns=256, InstanceNumber=7)
    ds.NameOfPhysiciansReadingStudy = ["Doe^John", "Roe^Jane"]
    for syntax in (ImplicitVRLittleEndian, ExplicitVRLittleEndian):
        path = write(tmp_path, ds, syntax, f"{syntax}.dcm")
        got = scanner_texts(path)
        assert got is not None and got == pydicom_texts(path)
        assert got[0x00280010] == ["512"] and got[0x00280011] == ["256"]
        assert [t.rstrip() for t in got[0x00081060]] == ["Doe^John", "Roe^Jane"]  # padded


def test_a_cut_data_set_is_not_guessed() -> None:
    ds = make_instance()
    ds.is_little_endian, ds.is_implicit_VR = True, False
    from dimse.datasets import encode_dataset

    data = encode_dataset(ds, ExplicitVRLittleEndian)
    whole = header_scan.scan(data, False, _WANTED, _LAST_INDEXED_TAG, True)
    assert whole
    for keep in (1, 7, 9, 13):  # inside the first element, (0008,0005)
        with pytest.raises(header_scan.Short):
            header_scan.scan(data[:keep], False, _WANTED, _LAST_INDEXED_TAG, False)
        with pytest.raises(header_scan.Unsupported):  # cut inside an element: pydicom's call
            header_scan.scan(data[:keep], False, _WANTED, _LAST_INDEXED_TAG, True)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=600), implicit=st.booleans(), whole=st.booleans())
def test_random_bytes_end_in_a_refusal_or_an_answer(
    data: bytes, implicit: bool, whole: bool
) -> None:
    try:
        found = header_scan.scan(data, implicit, _WANTED, _LAST_INDEXED_TAG, whole)
    except (header_scan.Unsupported, header_scan.Short):
        return
    ascii_ok = header_scan.ascii_allowed(found)
    for tag, column in COLUMNS_BY_TAG.items():
        try:
            header_scan.texts(found.get(tag), column.vr, ascii_ok)
        except header_scan.Unsupported:
            pass


def test_deep_nesting_is_refused_not_recursed() -> None:
    # (0008,1140) SQ of undefined length, whose item holds another, 1,000 deep
    opening = b"\x08\x00\x40\x11\xff\xff\xff\xff" + b"\xfe\xff\x00\xe0\xff\xff\xff\xff"
    data = opening * 1000
    with pytest.raises(header_scan.Unsupported):
        header_scan.scan(data, True, _WANTED, _LAST_INDEXED_TAG, True)


def test_env_has_test_files() -> None:
    assert len(PYDICOM_FILES) > 20, os.fspath(Path(pydicom.data.__file__).parent)
