"""`dicomscu --find` and `--worklist` against real servers: what is asked, what is
printed, and how a failure reads."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import UID

from cli.dicomscu import main
from dimse.models import MODALITY_WORKLIST_FIND, PATIENT_ROOT_FIND, STUDY_ROOT_FIND
from tests import peers
from tests.dicomscu_support import Instance, make_instances, run_dicomscu


@pytest.fixture
def archive(dcmqrscp: peers.QRSCP, tmp_path: Path) -> tuple[peers.QRSCP, list[Instance]]:
    """dcmqrscp holding two patients: DOE (one study, two instances) and ROE (one)."""
    doe = make_instances(tmp_path / "doe", 2, patient_id="PID-DOE", patient_name="Doe^Jane")
    roe = make_instances(tmp_path / "roe", 1, patient_id="PID-ROE", patient_name="Roe^Richard")
    dcmqrscp.load(tmp_path / "doe", tmp_path / "roe")
    return dcmqrscp, doe + roe


def at(peer: peers.Peer) -> list[str]:
    return ["--call", peer.ae_title, peer.host, str(peer.port)]


def responses(out: str) -> list[list[str]]:
    """The printed responses: each a list of element lines."""
    blocks = [block for block in out.split("\n\n") if block.strip()]
    for n, block in enumerate(blocks, 1):
        assert block.splitlines()[0] in (f"Find Response: {n}", f"WL Find Response: {n}")
    return [block.splitlines()[1:] for block in blocks]


def test_patient_level_find_prints_each_match(archive, capsys) -> None:
    qr, _ = archive
    argv = ["--find", "--patientroot", "--patient", "--key", "10,10=Doe*", "--key", "10,20"]
    assert main([*argv, *at(qr)]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    (match,) = responses(out)
    assert (
        "(0008,0052) ?? (CS) [PATIENT ]".ljust(57) + " " * 9 + "# 8,1 Query/Retrieve Level" in match
    )
    assert "(0010,0010) ?? (PN) [Doe^Jane]".ljust(57) + " " * 9 + "# 8,1 Patient's Name" in match
    assert "(0010,0020) ?? (LO) [PID-DOE ]".ljust(57) + " " * 9 + "# 8,1 Patient ID" in match
    assert out.endswith("\n\n")


def test_study_root_series_level_returns_the_study_uid_it_asked_for(archive, capsys) -> None:
    qr, instances = archive
    argv = ["--find", "--studyroot", "--series", "-k", "8,60", "-k", "20,e"]
    assert main([*argv, *at(qr)]) == 0
    matches = responses(capsys.readouterr().out)
    assert len(matches) == 2  # one series per patient
    study_lines = [line for match in matches for line in match if line.startswith("(0020,000d)")]
    assert {line.split("[")[1].split("]")[0].rstrip("\x00") for line in study_lines} == {
        i.study_uid for i in instances
    }


def test_image_level_finds_every_instance_of_a_series(archive, capsys) -> None:
    qr, instances = archive
    doe = [i for i in instances if i.patient_id == "PID-DOE"]
    argv = [
        "--find",
        "--patientroot",
        "--image",
        "-k",
        "10,20=PID-DOE",
        "-k",
        f"20,d={doe[0].study_uid}",
    ]
    argv += ["-k", f"20,e={doe[0].series_uid}", "-k", "8,18"]
    assert main([*argv, *at(qr)]) == 0
    assert len(responses(capsys.readouterr().out)) == 2


def test_no_match_prints_nothing_and_succeeds(archive, capsys) -> None:
    qr, _ = archive
    assert main(["--find", "--patientroot", "--patient", "-k", "10,20=NOBODY", *at(qr)]) == 0
    assert capsys.readouterr() == ("", "")


def test_json_output(archive, capsys) -> None:
    qr, _ = archive
    argv = ["--find", "--json", "--patientroot", "--patient", "-k", "10,10", "-k", "10,20"]
    assert main([*argv, *at(qr)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert sorted(d["00100020"]["Value"][0] for d in data) == ["PID-DOE", "PID-ROE"]
    assert all(d["00080052"] == {"vr": "CS", "Value": ["PATIENT"]} for d in data)


def test_verbose_says_find_was_successful(archive, capsys) -> None:
    qr, _ = archive
    assert main(["-V", "--find", "--patientroot", "--patient", "-k", "10,20", *at(qr)]) == 0
    assert "Find was successful: 2 match(es)." in capsys.readouterr().err


def test_find_in_orthanc(orthanc, tmp_path: Path, capsys) -> None:
    (instance,) = make_instances(tmp_path, 1, patient_id="PID-ORTHANC")
    orthanc.upload(instance.path)
    argv = ["--find", "--studyroot", "-k", "10,20=PID-ORTHANC", "-k", "20,d"]
    assert main([*argv, *at(orthanc)]) == 0
    (match,) = responses(capsys.readouterr().out)
    assert any(instance.study_uid in line for line in match)


def test_find_as_a_command(archive) -> None:
    qr, _ = archive
    result = run_dicomscu("--find", "--patientroot", "--patient", "-k", "10,20=PID-ROE", *at(qr))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Find Response: 1\n")
    assert result.stderr == ""


# -- pynetdicom as the server: what it received, and failure statuses ---------------------


@contextlib.contextmanager
def find_scp(
    sop_class: str, answer: Callable[[Dataset], Iterator[tuple[int, Dataset | None]]]
) -> Iterator[tuple[peers.Peer, list[Dataset]]]:
    """A pynetdicom C-FIND SCP for `sop_class`; yields (where, identifiers received)."""
    peers.require_pynetdicom()
    from pynetdicom import AE, evt

    received: list[Dataset] = []

    def on_find(event: Any) -> Iterator[tuple[int, Dataset | None]]:
        received.append(event.identifier)
        yield from answer(event.identifier)

    ae = AE(ae_title="FINDSCP")
    ae.add_supported_context(sop_class, ["1.2.840.10008.1.2"])
    server = ae.start_server(
        ("127.0.0.1", 0), block=False, evt_handlers=[(evt.EVT_C_FIND, on_find)]
    )
    assert server is not None
    try:
        yield peers.Peer("127.0.0.1", server.server_address[1], "FINDSCP"), received
    finally:
        server.shutdown()


def test_a_failure_status_is_explained_and_exits_1(capsys) -> None:
    def fail(_: Dataset) -> Iterator[tuple[int, Dataset | None]]:
        yield 0xC001, None

    with find_scp(PATIENT_ROOT_FIND, fail) as (scp, _):
        assert main(["--find", "--patientroot", *at(scp)]) == 1
    err = capsys.readouterr().err
    assert "C-FIND failed with status C001H Failure: Unable to process" in err


def test_matches_before_a_failure_are_printed(capsys) -> None:
    def one_then_fail(_: Dataset) -> Iterator[tuple[int, Dataset | None]]:
        match = Dataset()
        match.QueryRetrieveLevel = "STUDY"
        match.StudyInstanceUID = "1.2.3"
        yield 0xFF00, match
        yield 0xA700, None

    with find_scp(STUDY_ROOT_FIND, one_then_fail) as (scp, _):
        assert main(["--find", "--studyroot", *at(scp)]) == 1
    out, err = capsys.readouterr()
    assert len(responses(out)) == 1
    assert "A700H" in err and "Out of Resources" in err


def test_the_server_receives_utf8_from_a_utf8_locale() -> None:
    def none(_: Dataset) -> Iterator[tuple[int, Dataset | None]]:
        yield from ()

    with find_scp(PATIENT_ROOT_FIND, none) as (scp, received):
        argv = ["--find", "--patientroot", "--patient", "-k", "10,10=*Jérôme*"]
        result = run_dicomscu(*argv, *at(scp), env={"LC_ALL": "C.UTF-8"})
    assert result.returncode == 0, result.stderr
    (identifier,) = received
    assert identifier.SpecificCharacterSet == "ISO_IR 192"
    assert identifier.PatientName == "*Jérôme*"


def test_a_server_without_the_model_refuses_it_clearly(storescp, capsys) -> None:
    assert main(["--find", "--patientroot", *at(storescp)]) == 1
    err = capsys.readouterr().err
    assert "does not accept this query model (C-FIND)" in err
    assert "try --studyroot" in err


# -- Modality Worklist ----------------------------------------------------------------------


def worklist_item() -> Dataset:
    step = Dataset()
    step.ScheduledStationAETitle = "CT1"
    step.ScheduledProcedureStepStartDate = "20240101"
    step.ScheduledProcedureStepStartTime = "1000"
    step.Modality = "CT"
    step.ScheduledPerformingPhysicianName = "Doc^Tor"
    step.ScheduledProcedureStepID = "SPS1"
    step.ScheduledProcedureStepDescription = "scan"
    item = Dataset()
    item.SpecificCharacterSet = "ISO_IR 100"
    item.PatientName = "Wl^Patient"
    item.PatientID = "WL-1"
    item.AccessionNumber = "ACC1"
    item.StudyInstanceUID = "1.2.3.4.5"
    item.RequestedProcedureID = "RP1"
    item.RequestedProcedureDescription = "CT head"
    item.ScheduledProcedureStepSequence = Sequence([step])
    return item


@pytest.fixture
def wlmscpfs(tmp_path: Path) -> Iterator[peers.Peer]:
    """DCMTK's worklist server, wlmscpfs, with one worklist item for AE title WLSCP."""
    from pydicom.dataset import FileMetaDataset

    ae_dir = tmp_path / "worklists" / "WLSCP"
    ae_dir.mkdir(parents=True)
    (ae_dir / "lockfile").touch()
    item = worklist_item()
    item.file_meta = FileMetaDataset()
    item.file_meta.MediaStorageSOPClassUID = UID(MODALITY_WORKLIST_FIND)
    item.file_meta.MediaStorageSOPInstanceUID = UID("1.2.3.9")
    item.file_meta.TransferSyntaxUID = UID("1.2.840.10008.1.2.1")
    item.save_as(ae_dir / "item.wl", enforce_file_format=True)
    binary = peers.dcmtk("wlmscpfs")
    port = peers.free_port()
    argv = [binary, "-dfp", str(tmp_path / "worklists"), str(port)]
    with peers.run_peer("wlmscpfs", argv, log_path=tmp_path / "wlmscpfs.log", port=port):
        yield peers.Peer(peers.HOST, port, "WLSCP")


def test_worklist_from_dcmtk_wlmscpfs(wlmscpfs: peers.Peer, capsys) -> None:
    argv = ["--worklist", "-k", "10,10", "-k", "10,20", "-k", "40,100"]
    assert main([*argv, *at(wlmscpfs)]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    (match,) = responses(out)
    assert out.startswith("WL Find Response: 1\n")
    assert any(line.startswith("(0010,0020) ?? (LO) [WL-1]") for line in match)
    assert any(line.startswith("    (0040,0009) ?? (SH) [SPS1]") for line in match)


def test_worklist_query_sent_is_the_user_keys_and_the_character_set() -> None:
    def one(_: Dataset) -> Iterator[tuple[int, Dataset | None]]:
        yield 0xFF00, worklist_item()

    with find_scp(MODALITY_WORKLIST_FIND, one) as (scp, received):
        result = run_dicomscu("--worklist", "--json", "-k", "10,20=WL-1", *at(scp))
    assert result.returncode == 0, result.stderr
    (identifier,) = received
    assert [int(e.tag) for e in identifier] == [0x00080005, 0x00100020]
    (match,) = json.loads(result.stdout)
    assert match["00100020"]["Value"] == ["WL-1"]


def test_worklist_refused_by_a_storage_server(storescp, capsys) -> None:
    assert main(["--worklist", *at(storescp)]) == 1
    assert "does not accept Modality Worklist queries" in capsys.readouterr().err


def test_the_query_file_of_a_find_matches_what_was_sent(tmp_path: Path) -> None:
    def none(_: Dataset) -> Iterator[tuple[int, Dataset | None]]:
        yield from ()

    with find_scp(PATIENT_ROOT_FIND, none) as (scp, received):
        argv = ["--find", "--patientroot", "--series", "-k", "10,20=P1"]
        assert main([*argv, "--store-query", str(tmp_path / "q.dcm"), *at(scp)]) == 0
    stored = dcmread(tmp_path / "q.dcm")
    (identifier,) = received
    assert [(e.tag, e.value) for e in stored] == [(e.tag, e.value) for e in identifier]
