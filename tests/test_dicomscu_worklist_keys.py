"""Worklist keys where a server looks for them, and the sequence key form.

`dicomscu --worklist -k 40,1=AA32` must put Scheduled Station AE Title inside the
Scheduled Procedure Step Sequence (0040,0100), as PS3.4 Table K.6-1 has it: sent at the
top level it matches no worklist item. `-k 40,100[0].40,1=AA32` writes the same key in
the sequence form, which reaches any nested key, for --find too (sent as typed there).

The identifiers are built with cli.dicomscu.query's functions and read back; then dicomscu asks
real servers: our own dicomscp serving a folder of worklist files, and DCMTK's
wlmscpfs, whose answers are also compared with DCMTK findscu's.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

from cli.dicomscu import main
from cli.dicomscu.keys import parse_keys
from cli.dicomscu.query import QueryError, build_query
from cli.dicomscu.worklist_keys import STEP_KEYS
from dimse.datasets import encode_dataset
from dimse.models import Root
from tests import peers

pytest_plugins = ["tests.ourserver"]

SPS = 0x00400100
EXPLICIT = "1.2.840.10008.1.2.1"


def worklist_identifier(*keys: str) -> Dataset:
    return build_query("worklist", [], [], parse_keys(list(keys)), "ISO_IR 100").identifier


def tags(dataset: Dataset) -> list[int]:
    return [int(element.tag) for element in dataset]


def the_item(identifier: Dataset, tag: int = SPS) -> Dataset:
    (item,) = identifier[tag].value
    assert isinstance(item, Dataset)
    return item


# -- where each key goes ----------------------------------------------------------------------


def test_the_steps_keys_go_into_one_item_of_its_sequence_the_others_stay() -> None:
    identifier = worklist_identifier(
        "10,10", "40,1=AA32", "40,2=20240101-20240131", "8,60=CT", "8,50=A1", "40,1001="
    )
    assert tags(identifier) == [0x00080005, 0x00080050, 0x00100010, SPS, 0x00401001]
    item = the_item(identifier)
    assert tags(item) == [0x00080060, 0x00400001, 0x00400002]
    assert (item.ScheduledStationAETitle, item.Modality) == ("AA32", "CT")
    assert item.ScheduledProcedureStepStartDate == "20240101-20240131"
    assert identifier.AccessionNumber == "A1"


@pytest.mark.parametrize("tag", [tag for tag, _ in STEP_KEYS])
def test_every_attribute_of_the_step_in_table_k6_1_is_moved(tag: int) -> None:
    identifier = worklist_identifier(f"{tag >> 16:x},{tag & 0xFFFF:x}=")
    assert tags(identifier) == [0x00080005, SPS]
    assert tags(the_item(identifier)) == [tag]


@pytest.mark.parametrize(
    "key",
    [
        "10,20=P1",  # Patient ID (Patient)
        "8,20=20240101",  # Study Date (Requested Procedure)
        "40,1001=RP1",  # Requested Procedure ID
        "40,500=",  # Scheduled Specimen Sequence: of the step, but outside its sequence
        "2200,5=X",  # Barcode Value: likewise
    ],
)
def test_keys_of_the_other_entities_stay_at_the_top(key: str) -> None:
    identifier = worklist_identifier(key)
    assert SPS not in identifier
    assert len(identifier) == 2


def test_the_sequence_form_gives_the_same_identifier() -> None:
    moved = worklist_identifier("10,10", "40,1=AA32", "8,60=CT")
    typed = worklist_identifier("10,10", "40,100[0].40,1=AA32", "40,100[0].8,60=CT")
    mixed = worklist_identifier("10,10", "40,100[0].40,1=AA32", "8,60=CT")
    data = encode_dataset(moved, EXPLICIT)
    assert data == encode_dataset(typed, EXPLICIT) == encode_dataset(mixed, EXPLICIT)


def test_a_key_inside_a_sequence_of_the_step_moves_with_it() -> None:
    identifier = worklist_identifier("40,8[0].8,100=P-1", "40,8[0].8,102=")
    protocol = the_item(the_item(identifier), 0x00400008)
    assert tags(protocol) == [0x00080100, 0x00080102]
    assert protocol.CodeValue == "P-1"


@pytest.mark.parametrize(
    ("keys", "value"),
    [
        (["40,1=OLD", "40,100[0].40,1=NEW"], "NEW"),
        (["40,100[0].40,1=OLD", "40,1=NEW"], "NEW"),
    ],
)
def test_the_later_of_two_keys_for_one_attribute_wins(keys: list[str], value: str) -> None:
    item = the_item(worklist_identifier(*keys))
    assert tags(item) == [0x00400001]
    assert item.ScheduledStationAETitle == value


def test_the_sequence_alone_is_sent_empty_and_asks_for_all_of_it() -> None:
    """`-k 40,100` is a zero-length sequence: PS3.4 K.2.2.1.2 Note 4 allows it or one
    empty item, and C.2.2.2.6 makes it Universal Matching of the whole sequence."""
    identifier = worklist_identifier("40,100")
    assert len(identifier[SPS].value) == 0
    assert b"\x40\x00\x00\x01SQ\x00\x00\x00\x00\x00\x00" in encode_dataset(identifier, EXPLICIT)


@pytest.mark.parametrize(
    ("operation", "keys", "sequence"),
    [
        ("worklist", ["40,100", "40,1=AA32"], 0x00400100),
        ("worklist", ["40,1=AA32", "40,100"], 0x00400100),
        ("find", ["8,1110", "8,1110[0].8,1150=1.2.3"], 0x00081110),
    ],
)
def test_a_sequence_asked_whole_that_also_holds_keys_warns(
    operation: str, keys: list[str], sequence: int, caplog: pytest.LogCaptureFixture
) -> None:
    """Keys inside a sequence are what a server returns of its items (PS3.4 C.2.2.2.6):
    the sequence gets its item, and dicomscu says that the rest will not come back."""
    roots = [] if operation == "worklist" else [Root.STUDY]
    with caplog.at_level(logging.INFO, logger="dicomscu"):
        identifier = build_query(operation, roots, [], parse_keys(keys), "ISO_IR 100").identifier
    assert len(the_item(identifier, sequence)) == 1
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "was asked for whole, but keys inside it were given too" in warnings[0]


def test_find_keys_are_sent_as_typed_none_moved() -> None:
    keys = parse_keys(["40,1=AA32", "8,1110[0].8,1150=1.2.3", "8,1110[0].8,1155="])
    identifier = build_query("find", [Root.STUDY], [], keys, "ISO_IR 100").identifier
    assert tags(identifier) == [0x00080005, 0x00080052, 0x00081110, 0x00400001]
    assert tags(the_item(identifier, 0x00081110)) == [0x00081150, 0x00081155]
    assert the_item(identifier, 0x00081110).ReferencedSOPClassUID == "1.2.3"


def test_the_form_nests() -> None:
    keys = parse_keys(["40,275[0].40,8[0].8,100=P-1"])  # in Request Attributes Sequence
    identifier = build_query("find", [Root.STUDY], ["SERIES"], keys, "ISO_IR 100").identifier
    code = the_item(the_item(identifier, 0x00400275), 0x00400008)
    assert tags(code) == [0x00080100] and code.CodeValue == "P-1"


# -- what the sequence form refuses -------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "words"),
    [
        (
            "40,100[1].40,1=AA32",
            "(0040,0100)[1] Scheduled Procedure Step Sequence: a sequence key of a C-FIND "
            "identifier holds exactly one item (PS3.4 C.2.2.2.6), so the index is always 0",
        ),
        ("40,100[0].8,1110[3].8,1150=", "(0040,0100)[0].(0008,1110)[3] Referenced Study Sequence"),
        ("10,10[0].10,20=X", "(0010,0010) Patient's Name has VR PN, not SQ"),
        (
            "40,100[0].40,2[0].8,100=X",
            "(0040,0100)[0].(0040,0002) Scheduled Procedure Step Start Date has VR DA, not SQ",
        ),
    ],
)
def test_an_index_other_than_0_or_a_tag_that_is_no_sequence_is_a_usage_error(
    key: str, words: str, capsys
) -> None:
    with pytest.raises(QueryError) as caught:
        build_query("find", [Root.STUDY], [], parse_keys([key]), "ISO_IR 100")
    assert str(caught.value).startswith(words)
    assert main(["--worklist", "-k", key, "127.0.0.1", str(peers.free_port())]) == 2
    err = capsys.readouterr().err
    assert words in err
    assert "cannot connect" not in err  # refused before any network activity


def test_the_moved_keys_are_said_at_verbose_level_in_one_line(capsys) -> None:
    argv = ["--worklist", "-k", "10,10", "-k", "40,1=AA32", "-k", "8,60=CT"]
    port = str(peers.free_port())
    assert main([*argv, "127.0.0.1", port]) == 1  # nothing listens there
    assert "Scheduled Procedure Step Sequence" not in capsys.readouterr().err
    assert main([*argv, "-V", "127.0.0.1", port]) == 1
    lines = [
        line
        for line in capsys.readouterr().err.splitlines()
        if "into the Scheduled Procedure Step Sequence (0040,0100)" in line
    ]
    assert len(lines) == 1
    assert "(0040,0001) Scheduled Station AE Title, (0008,0060) Modality" in lines[0]
    assert "Patient's Name" not in lines[0]


# -- end to end: our dicomscp serving worklist files ------------------------------------------

#: (Scheduled Procedure Step ID, Scheduled Station AE Title) of each step, by file.
FILES: dict[str, list[tuple[str, str]]] = {
    "w1.wl": [("S1", "AA32")],
    "w2.wl": [("S2", "AA32")],
    "w3.wl": [("S3", "AA32"), ("S4", "BB7")],  # two steps, one for each AE title
    "w4.wl": [("S5", "AA32")],
    "w5.wl": [("S6", "BB7")],
}
AA32_STEPS = {"S1", "S2", "S3", "S5"}
BB7_STEPS = {"S4", "S6"}


def step(step_id: str, station: str) -> Dataset:
    item = Dataset()
    item.ScheduledStationAETitle = station
    item.ScheduledProcedureStepStartDate = "20240101"
    item.ScheduledProcedureStepStartTime = "080000"
    item.Modality = "CT"
    item.ScheduledPerformingPhysicianName = "Tech^One"
    item.ScheduledProcedureStepDescription = "CT chest"
    item.ScheduledProcedureStepID = step_id
    return item


def write_entry(path: Path, number: int, steps: list[Dataset]) -> None:
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.AccessionNumber = f"A{number}"
    ds.PatientName = f"Patient^{number}"
    ds.PatientID = f"P{number}"
    ds.StudyInstanceUID = generate_uid()
    ds.RequestedProcedureID = f"RP{number}"
    ds.RequestedProcedureDescription = "Chest"
    ds.ReferringPhysicianName = "Ref^One"
    ds.PatientBirthDate = "19600101"
    ds.PatientSex = "O"
    ds.ScheduledProcedureStepSequence = Sequence(steps)
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = UID("1.2.276.0.7230010.3.1.0.1")  # DCMTK's
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.save_as(path, enforce_file_format=True)


@pytest.fixture
def worklist_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "WLM"
    folder.mkdir()
    for number, (name, steps) in enumerate(FILES.items(), 1):
        write_entry(folder / name, number, [step(*s) for s in steps])
    return folder


@pytest.fixture
def our_worklist_server(dicomscp_factory: Any, worklist_folder: Path) -> peers.Peer:
    return dicomscp_factory("--worklist", str(worklist_folder))  # type: ignore[no-any-return]


def at(peer: peers.Peer) -> list[str]:
    return ["--call", peer.ae_title, peer.host, str(peer.port)]


def found_steps(out: str) -> list[tuple[str, str]]:
    """(Scheduled Procedure Step ID or '', Scheduled Station AE Title) of each response
    of dicomscu --json, in the order received; one step per response."""
    found = []
    for response in json.loads(out):
        (item,) = response["00400100"]["Value"]
        ids = item.get("00400009", {}).get("Value", [""])
        found.append((ids[0], item["00400001"]["Value"][0]))
    return found


@pytest.mark.parametrize(
    "key",
    ["40,1=AA32", "40,100[0].40,1=AA32"],
    ids=["as-gdcmscu-users-type-it", "sequence-form"],
)
def test_dicomscu_finds_the_four_steps_scheduled_for_aa32_on_our_server(
    our_worklist_server: peers.Peer, key: str, capsys
) -> None:
    argv = ["--worklist", "--json", "-k", "10,10", "-k", key, "-k", "40,9="]
    assert main([*argv, *at(our_worklist_server)]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    found = found_steps(out)
    assert len(found) == 4
    assert {step_id for step_id, _ in found} == AA32_STEPS
    assert {station for _, station in found} == {"AA32"}


def test_the_other_ae_title_and_the_whole_worklist(our_worklist_server: peers.Peer, capsys) -> None:
    base = ["--worklist", "--json", "-k", "10,10"]
    assert main([*base, "-k", "40,1=BB7", "-k", "40,9=", *at(our_worklist_server)]) == 0
    assert {s for s, _ in found_steps(capsys.readouterr().out)} == BB7_STEPS
    assert main([*base, "-k", "40,100", *at(our_worklist_server)]) == 0  # one per step
    assert {s for s, _ in found_steps(capsys.readouterr().out)} == AA32_STEPS | BB7_STEPS


def test_the_key_at_the_top_level_as_it_was_sent_before_finds_nothing(
    our_worklist_server: peers.Peer, tmp_path: Path
) -> None:
    """What the move fixes: (0040,0001) at the top level of the identifier (here sent
    by DCMTK findscu) matches no worklist item; in the sequence it matches four."""
    top = {"PatientName": "", "ScheduledStationAETitle": "AA32"}
    assert peers.findscu(our_worklist_server, tmp_path, top, model="-W") == []
    nested = {
        "PatientName": "",
        "ScheduledProcedureStepSequence[0].ScheduledStationAETitle": "AA32",
    }
    assert len(peers.findscu(our_worklist_server, tmp_path, nested, model="-W")) == 4


# -- end to end: DCMTK's wlmscpfs, and DCMTK's findscu as the reference ------------------------


@pytest.fixture
def wlmscpfs(worklist_folder: Path, tmp_path: Path) -> Iterator[peers.Peer]:
    """wlmscpfs serving the same steps. It takes one step per file (it ignores a file
    with two) and *.wl files from <data files path>/<called AE title>/ with a
    "lockfile": each step gets a file of its own there."""
    binary = peers.dcmtk("wlmscpfs")
    ae_folder = tmp_path / "dcmtk" / "WLM"
    ae_folder.mkdir(parents=True)
    (ae_folder / "lockfile").touch()
    number = 0
    for steps in FILES.values():
        for s in steps:
            number += 1
            write_entry(ae_folder / f"e{number}.wl", number, [step(*s)])
    port = peers.free_port()
    argv = [binary, "-dfp", str(ae_folder.parent), "-csk", "--single-process", str(port)]
    with peers.run_peer("wlmscpfs", argv, log_path=tmp_path / "wlmscpfs.log", port=port):
        yield peers.Peer(peers.HOST, port, ae_folder.name)


def test_dicomscu_and_findscu_find_the_same_four_steps_on_wlmscpfs(
    wlmscpfs: peers.Peer, tmp_path: Path, capsys
) -> None:
    theirs = peers.findscu(
        wlmscpfs,
        tmp_path,
        {
            "PatientName": "",
            "ScheduledProcedureStepSequence[0].ScheduledStationAETitle": "AA32",
            "ScheduledProcedureStepSequence[0].ScheduledProcedureStepID": "",
        },
        model="-W",
    )
    their_steps = {r.ScheduledProcedureStepSequence[0].ScheduledProcedureStepID for r in theirs}
    assert their_steps == AA32_STEPS
    for key in ("40,1=AA32", "40,100[0].40,1=AA32"):
        argv = ["--worklist", "--json", "-k", "10,10", "-k", key, "-k", "40,9="]
        assert main([*argv, *at(wlmscpfs)]) == 0
        out, err = capsys.readouterr()
        assert err == ""
        found = found_steps(out)
        assert len(found) == 4 and {s for s, _ in found} == their_steps
