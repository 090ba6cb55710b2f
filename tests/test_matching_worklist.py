"""Modality Worklist C-FIND (PS3.4 K) from a folder of worklist files (dimse/archive/worklist.py),
and the same queries answered by DCMTK's wlmscpfs from the same files."""

from __future__ import annotations

import copy
import logging
import os
import time
from pathlib import Path
from typing import Any

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

from dimse.archive.conditions import QueryError
from dimse.archive.worklist import Worklist
from tests import peers


def step(**attrs: str) -> Dataset:
    item = Dataset()
    defaults = {
        "ScheduledStationAETitle": "CT1",
        "ScheduledProcedureStepStartDate": "20240101",
        "ScheduledProcedureStepStartTime": "080000",
        "Modality": "CT",
        "ScheduledPerformingPhysicianName": "Tech^One",
        "ScheduledProcedureStepDescription": "CT chest",
        "ScheduledProcedureStepID": "SPS1",
    }
    for keyword, value in {**defaults, **attrs}.items():
        setattr(item, keyword, value)
    return item


def entry(steps: list[Dataset], charset: str = "ISO_IR 100", **attrs: str) -> Dataset:
    ds = Dataset()
    ds.SpecificCharacterSet = charset
    ds.AccessionNumber = "A1"
    ds.PatientName = "Doe^John"
    ds.PatientID = "P1"
    ds.PatientBirthDate = "19600101"
    ds.PatientSex = "M"
    ds.StudyInstanceUID = generate_uid()
    ds.RequestedProcedureID = "RP1"
    ds.RequestedProcedureDescription = "Chest"
    ds.ReferringPhysicianName = "Ref^One"
    ds.ScheduledProcedureStepSequence = Sequence(steps)
    for keyword, value in attrs.items():
        setattr(ds, keyword, value)
    return ds


def write(ds: Dataset, path: Path, *, meta: bool = True) -> Path:
    if meta:
        ds.file_meta = FileMetaDataset()
        # DCMTK's private SOP class of worklist files
        ds.file_meta.MediaStorageSOPClassUID = UID("1.2.276.0.7230010.3.1.0.1")
        ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.save_as(path, enforce_file_format=True)
    else:  # a bare data set in Implicit VR Little Endian, as older tools write them
        ds.save_as(path, implicit_vr=True, little_endian=True)
    return path


def nested_sequences(depth: int) -> bytes:
    data = b""
    for _ in range(depth):
        item = b"\xfe\xff\x00\xe0\xff\xff\xff\xff" + data + b"\xfe\xff\x0d\xe0\x00\x00\x00\x00"
        data = (
            b"\x08\x00\x15\x11SQ\x00\x00\xff\xff\xff\xff"
            + item
            + b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"
        )
    return data


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    folder = tmp_path / "WLM"
    folder.mkdir()
    write(entry([step()]), folder / "w1.wl")
    write(
        entry(
            [
                step(
                    ScheduledStationAETitle="MR1",
                    ScheduledProcedureStepStartDate="20240102",
                    Modality="MR",
                    ScheduledProcedureStepID="SPS2A",
                ),
                step(
                    ScheduledStationAETitle="CT1",
                    ScheduledProcedureStepStartDate="20240103",
                    Modality="CT",
                    ScheduledProcedureStepID="SPS2B",
                ),
            ],
            AccessionNumber="A2",
            PatientName="Roe^Jane",
            PatientID="P2",
            PatientSex="F",
            RequestedProcedureID="RP2",
        ),
        folder / "w2.dcm",
        meta=False,
    )
    write(
        entry(
            [
                step(
                    ScheduledStationAETitle="US1",
                    ScheduledProcedureStepStartDate="20240201",
                    Modality="US",
                    ScheduledProcedureStepID="SPS3",
                )
            ],
            AccessionNumber="A3",
            PatientName="Müller^Jürgen",
            PatientID="P3",
            RequestedProcedureID="RP3",
        ),
        folder / "w3.wl",
    )
    return folder


def query(steps: dict[str, str] | None = None, **keys: Any) -> Dataset:
    ds = Dataset()
    for keyword, value in keys.items():
        setattr(ds, keyword, value)
    if steps is not None:
        item = Dataset()
        for keyword, value in steps.items():
            setattr(item, keyword, value)
        ds.ScheduledProcedureStepSequence = Sequence([item])
    return ds


def answers(worklist: Worklist, ds: Dataset) -> set[tuple[str, str]]:
    """(Accession Number, Scheduled Procedure Step ID) of each response."""
    out = set()
    for response in worklist.find(ds):
        steps = response.get("ScheduledProcedureStepSequence") or [Dataset()]
        for item in steps:
            out.add(
                (
                    str(response.get("AccessionNumber", "")),
                    str(item.get("ScheduledProcedureStepID", "")),
                )
            )
    return out


STEP_KEYS = {
    "ScheduledStationAETitle": "",
    "ScheduledProcedureStepStartDate": "",
    "Modality": "",
    "ScheduledProcedureStepID": "",
}

CASES = [
    (
        {"PatientName": ""},
        STEP_KEYS,
        {("A1", "SPS1"), ("A2", "SPS2A"), ("A2", "SPS2B"), ("A3", "SPS3")},
    ),
    ({}, {**STEP_KEYS, "ScheduledStationAETitle": "CT1"}, {("A1", "SPS1"), ("A2", "SPS2B")}),
    ({}, {**STEP_KEYS, "Modality": "MR"}, {("A2", "SPS2A")}),
    (
        {},
        {**STEP_KEYS, "ScheduledProcedureStepStartDate": "20240102-20240131"},
        {("A2", "SPS2A"), ("A2", "SPS2B")},
    ),
    ({}, {**STEP_KEYS, "ScheduledProcedureStepStartDate": "-20240101"}, {("A1", "SPS1")}),
    (
        {},
        {**STEP_KEYS, "ScheduledProcedureStepStartDate": "20240103-", "Modality": "CT"},
        {("A2", "SPS2B")},
    ),
    (
        {},
        {**STEP_KEYS, "ScheduledStationAETitle": "CT1", "Modality": "MR"},
        set(),
    ),  # not in one item
    ({"PatientName": "R*"}, STEP_KEYS, {("A2", "SPS2A"), ("A2", "SPS2B")}),
    ({"PatientID": "P1"}, STEP_KEYS, {("A1", "SPS1")}),
    ({"AccessionNumber": "A?"}, {**STEP_KEYS, "Modality": "US"}, {("A3", "SPS3")}),
    ({"PatientSex": "F", "PatientName": ""}, STEP_KEYS, {("A2", "SPS2A"), ("A2", "SPS2B")}),
]


@pytest.mark.parametrize(("keys", "steps", "expected"), CASES)
def test_worklist_matching(
    folder: Path, keys: dict[str, str], steps: dict[str, str], expected: set[tuple[str, str]]
) -> None:
    assert answers(Worklist(folder), query(steps, **{"AccessionNumber": "", **keys})) == expected


def test_a_response_holds_exactly_the_requested_keys_and_one_step(folder: Path) -> None:
    ds = query(
        {"Modality": "MR", "ScheduledProcedureStepStartDate": ""},
        PatientName="",
        AccessionNumber="",
        PatientComments="",
    )
    (response,) = Worklist(folder).find(ds)
    assert [e.keyword for e in response] == [
        "AccessionNumber",
        "PatientName",
        "PatientComments",
        "ScheduledProcedureStepSequence",
    ]
    (item,) = response.ScheduledProcedureStepSequence
    assert [e.keyword for e in item] == ["Modality", "ScheduledProcedureStepStartDate"]
    assert (item.Modality, item.ScheduledProcedureStepStartDate) == ("MR", "20240102")
    assert response["PatientComments"].is_empty  # requested, not in the file


def test_an_empty_step_sequence_returns_each_whole_step(folder: Path) -> None:
    ds = query(AccessionNumber="A2", ScheduledProcedureStepSequence=Sequence())
    responses = list(Worklist(folder).find(ds))
    assert len(responses) == 2
    for response in responses:
        (item,) = response.ScheduledProcedureStepSequence
        assert (
            item.ScheduledPerformingPhysicianName == "Tech^One"
            and item.ScheduledProcedureStepDescription == "CT chest"
        )


def test_without_the_step_sequence_one_response_per_file(folder: Path) -> None:
    responses = list(Worklist(folder).find(query(AccessionNumber="", PatientID="")))
    assert sorted(r.AccessionNumber for r in responses) == ["A1", "A2", "A3"]


def test_names_in_another_character_set(folder: Path) -> None:
    ds = query(PatientName="Müller*", AccessionNumber="")
    ds.SpecificCharacterSet = "ISO_IR 100"
    (response,) = Worklist(folder).find(ds)
    assert (
        str(response.PatientName) == "Müller^Jürgen"
        and response.SpecificCharacterSet == "ISO_IR 100"
    )
    (response,) = Worklist(folder).find(query(PatientName="Müller*", AccessionNumber=""))
    assert response.SpecificCharacterSet == "ISO_IR 192"


def test_unreadable_files_are_skipped_with_a_warning(
    folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (folder / "broken.wl").write_bytes(
        b"\x00" * 128
        + b"DICM"
        + b"\x02\x00\x10\x00UI\x14\x001.2.840.10008.1.2.1\x00"
        + nested_sequences(2000)
    )
    (folder / "text.wl").write_text("not DICOM at all\n")
    (folder / "notes.txt").write_text("ignored: not *.wl or *.dcm")
    (folder / "dir.wl").mkdir()
    with caplog.at_level(logging.WARNING, logger="dimse.archive.worklist"):
        got = answers(Worklist(folder), query(STEP_KEYS, AccessionNumber=""))
    assert got == {("A1", "SPS1"), ("A2", "SPS2A"), ("A2", "SPS2B"), ("A3", "SPS3")}
    warned = " ".join(r.getMessage() for r in caplog.records)
    assert "broken.wl" in warned and "text.wl" in warned and "notes.txt" not in warned


def test_a_changed_file_is_read_again(folder: Path) -> None:
    worklist = Worklist(folder)
    assert answers(
        worklist, query({"Modality": "", "ScheduledProcedureStepID": ""}, AccessionNumber="A1")
    ) == {("A1", "SPS1")}
    path = folder / "w1.wl"
    write(entry([step(ScheduledProcedureStepID="SPS1-NEW")]), path)
    stamp = (
        path.stat().st_mtime_ns + 1_000_000_000
    )  # a visibly newer file, whatever the clock's grain
    os.utime(path, ns=(stamp, stamp))
    assert answers(worklist, query({"ScheduledProcedureStepID": ""}, AccessionNumber="A1")) == {
        ("A1", "SPS1-NEW")
    }
    path.unlink()
    assert answers(worklist, query({"ScheduledProcedureStepID": ""}, AccessionNumber="A1")) == set()


def test_a_bad_identifier_is_refused_at_once(folder: Path) -> None:
    with pytest.raises(QueryError):
        Worklist(folder).find(query({"ScheduledProcedureStepStartDate": "2024*"}))


# --- the same files, the same queries, answered by DCMTK's wlmscpfs


@pytest.fixture
def wlmscpfs(folder: Path, tmp_path: Path):
    """wlmscpfs serving the same entries. It takes one Scheduled Procedure Step per file
    (it ignores a file with two as incomplete), reads *.wl only, from
    <data files path>/<called AE title>/, locked through a file named "lockfile"; so
    it gets a copy of each entry per step."""
    binary = peers.dcmtk("wlmscpfs")
    data_path = tmp_path / "dcmtk"
    ae_folder = data_path / "WLM"
    ae_folder.mkdir(parents=True)
    (ae_folder / "lockfile").touch()
    for path in sorted(folder.iterdir()):
        ds = dcmread(path, force=True)
        for n, item in enumerate(ds.ScheduledProcedureStepSequence):
            one = copy.deepcopy(ds)
            one.ScheduledProcedureStepSequence = Sequence([copy.deepcopy(item)])
            write(one, ae_folder / f"{path.stem}-{n}.wl")
    port = peers.free_port()
    argv = [binary, "-dfp", str(data_path), "-csk", "--single-process", str(port)]
    with peers.run_peer("wlmscpfs", argv, log_path=tmp_path / "wlmscpfs.log", port=port):
        yield peers.Peer(peers.HOST, port, ae_folder.name)


@pytest.mark.peers
@pytest.mark.parametrize(("keys", "steps", "expected"), CASES)
def test_wlmscpfs_gives_the_same_answers(
    wlmscpfs: peers.Peer,
    folder: Path,
    tmp_path: Path,
    keys: dict[str, str],
    steps: dict[str, str],
    expected: set[tuple[str, str]],
) -> None:
    find_keys = {"AccessionNumber": "", **keys}
    find_keys["ScheduledProcedureStepSequence"] = ""
    for keyword, value in steps.items():
        find_keys[f"ScheduledProcedureStepSequence[0].{keyword}"] = value
    started = time.monotonic()
    responses = peers.findscu(wlmscpfs, tmp_path, find_keys, model="-W")
    assert time.monotonic() - started < 30
    theirs = set()
    for response in responses:
        for item in response.get("ScheduledProcedureStepSequence") or [Dataset()]:
            theirs.add(
                (
                    str(response.get("AccessionNumber", "")),
                    str(item.get("ScheduledProcedureStepID", "")),
                )
            )
    ours = answers(Worklist(folder), query(steps, **{"AccessionNumber": "", **keys}))
    assert ours == theirs == expected
