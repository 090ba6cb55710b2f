"""The measurable promises of dicomscu, each against a real server:

- `dicomscu --find` and DCMTK `findscu` return the same matches from the same Orthanc,
  for the same query, at each level of each root;
- `--move` and `--get` from Orthanc write exactly the instances that match (others
  are on the server too), named `<SOP Instance UID>.dcm`, under `-o`;
- a store of 1,000 files goes over one association.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
from pydicom.dataset import Dataset

from cli.dicomscu import main
from dimse.messages import C_STORE_RQ
from dimse.scp import Caller, Handlers, Provider
from dimse.status import StoreStatus
from dul.negotiation import AcceptorPolicy
from dul.pdu import A_ASSOCIATE_AC, A_ASSOCIATE_RJ, A_ASSOCIATE_RQ
from tests import peers
from tests.dicomscu_support import Instance, make_instances

pytestmark = pytest.mark.peers

#: (root option, findscu model, level, the keyword of the level's unique key)
LEVELS = [
    ("--patientroot", "-P", "PATIENT", "PatientID"),
    ("--patientroot", "-P", "STUDY", "StudyInstanceUID"),
    ("--patientroot", "-P", "SERIES", "SeriesInstanceUID"),
    ("--patientroot", "-P", "IMAGE", "SOPInstanceUID"),
    ("--studyroot", "-S", "STUDY", "StudyInstanceUID"),
    ("--studyroot", "-S", "SERIES", "SeriesInstanceUID"),
    ("--studyroot", "-S", "IMAGE", "SOPInstanceUID"),
]


def at(peer: peers.Peer) -> list[str]:
    return ["--call", peer.ae_title, peer.host, str(peer.port)]


@pytest.fixture(scope="module")
def loaded_orthanc(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Orthanc holding 2 patients x 2 studies x 2 series x 2 instances."""
    root = tmp_path_factory.mktemp("loaded")
    port_scp = peers.free_port()
    destination = peers.Peer(peers.HOST, port_scp, "GDCMSCU")
    with peers.start_orthanc(root / "orthanc", move_destinations=[destination]) as orthanc:
        instances: list[Instance] = []
        for p in ("DW-PAT-A", "DW-PAT-B"):
            for s in range(2):
                study = None
                for r in range(2):
                    # make_instances names files by patient and number: a folder each
                    made = make_instances(
                        root / "in" / f"{p}-{s}-{r}",
                        2,
                        patient_id=p,
                        patient_name=f"Done^{p[-1]}",
                        study_uid=study,
                    )
                    study = made[0].study_uid
                    instances += made
        for instance in instances:
            orthanc.upload(instance.path)
        yield orthanc, instances, port_scp


def dicomscu_matches(
    orthanc: Any, root: str, level: str, keys: list[str], capsys: Any
) -> list[Dataset]:
    level_option = "--" + {"IMAGE": "image"}.get(level, level.lower())
    argv = ["--find", root, level_option, "--json", *keys, *at(orthanc)]
    assert main(argv) == 0
    return [Dataset.from_json(item) for item in json.loads(capsys.readouterr().out)]


@pytest.mark.parametrize(("root", "model", "level", "unique"), LEVELS, ids=lambda v: str(v))
def test_find_matches_findscu_from_the_same_orthanc(
    loaded_orthanc: Any, tmp_path: Path, capsys: Any, root: str, model: str, level: str, unique: str
) -> None:
    orthanc, instances, _ = loaded_orthanc
    # A filter that keeps one patient's half of the archive, plus the level's key.
    extra = [] if unique == "PatientID" else ["-k", _tag(unique)]
    ours = dicomscu_matches(orthanc, root, level, ["-k", "10,20=DW-PAT-A", *extra], capsys)
    keys = {"QueryRetrieveLevel": level, unique: "", "PatientID": "DW-PAT-A"}
    for above in ("StudyInstanceUID", "SeriesInstanceUID"):
        if _depth(above) < _depth(unique):
            keys[above] = ""
    theirs = peers.findscu(orthanc, tmp_path, keys, model)
    our_keys = sorted(str(d.get(unique, "")) for d in ours)
    their_keys = sorted(str(d.get(unique, "")) for d in theirs)
    assert our_keys == their_keys
    expected = {getattr(i, _attribute(unique)) for i in instances if i.patient_id == "DW-PAT-A"}
    assert set(our_keys) == expected


def _depth(keyword: str) -> int:
    return ["PatientID", "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"].index(keyword)


def _tag(keyword: str) -> str:
    return {
        "PatientID": "10,20",
        "StudyInstanceUID": "20,d",
        "SeriesInstanceUID": "20,e",
        "SOPInstanceUID": "8,18",
    }[keyword]


def _attribute(keyword: str) -> str:
    return {
        "PatientID": "patient_id",
        "StudyInstanceUID": "study_uid",
        "SeriesInstanceUID": "series_uid",
        "SOPInstanceUID": "sop_instance_uid",
    }[keyword]


def _expected_files(instances: list[Instance]) -> set[str]:
    return {f"{i.sop_instance_uid}.dcm" for i in instances}


def test_move_writes_exactly_the_matching_instances(loaded_orthanc: Any, tmp_path: Path) -> None:
    orthanc, instances, port_scp = loaded_orthanc
    study = instances[0].study_uid
    argv = ["--move", "--studyroot", "-k", f"20,d={study}", "--port-scp", str(port_scp)]
    assert main([*argv, "-o", str(tmp_path / "out"), *at(orthanc)]) == 0
    written = {p.name for p in (tmp_path / "out").iterdir()}
    assert written == _expected_files([i for i in instances if i.study_uid == study])


def test_get_writes_exactly_the_matching_instances(loaded_orthanc: Any, tmp_path: Path) -> None:
    orthanc, instances, _ = loaded_orthanc
    series = instances[-1].series_uid
    study = instances[-1].study_uid
    argv = ["--get", "--studyroot", "--series", "-k", f"20,d={study}", "-k", f"20,e={series}"]
    assert main([*argv, "-o", str(tmp_path / "out"), *at(orthanc)]) == 0
    written = {p.name for p in (tmp_path / "out").iterdir()}
    assert written == _expected_files([i for i in instances if i.series_uid == series])


class _Counting(Handlers):
    """Our own server, counting associations and instances."""

    serves_storage = True

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.associations = 0
        self.stored: set[str] = set()

    def accept(
        self, request: A_ASSOCIATE_RQ, policy: AcceptorPolicy
    ) -> A_ASSOCIATE_AC | A_ASSOCIATE_RJ:
        with self.lock:
            self.associations += 1
        return super().accept(request, policy)

    def store(self, caller: Caller, request: C_STORE_RQ, data: object, transfer_syntax: str) -> int:
        with self.lock:
            self.stored.add(request.affected_sop_instance_uid)
        return StoreStatus.SUCCESS


def test_a_thousand_files_go_over_one_association(tmp_path: Path) -> None:
    instances = make_instances(tmp_path / "many", 1000, patient_id="MANY")
    handlers = _Counting()
    with Provider(handlers, ae_title="COUNTER", host=peers.HOST, port=0) as provider:
        argv = [
            "--store",
            "--call",
            "COUNTER",
            peers.HOST,
            str(provider.port),
            "-i",
            str(tmp_path / "many"),
        ]
        assert main(argv) == 0
    assert handlers.associations == 1
    assert handlers.stored == {i.sop_instance_uid for i in instances}
