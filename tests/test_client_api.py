"""The Python client API (dimse.client) end to end against real servers: DCMTK storescp
and dcmqrscp, Orthanc, and pynetdicom.

What the servers did is read from the servers themselves: the files storescp wrote,
Orthanc's REST API, pynetdicom's event handlers, DCMTK findscu's answers to the same
query. Nothing of ours is mocked.
"""

from __future__ import annotations

import contextlib
import threading
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from dimse import client
from dimse.client import NoPresentationContext
from dimse.datasets import IMPLICIT_VR_LITTLE_ENDIAN, UNCOMPRESSED, encode_dataset
from dimse.files import read_part10_info
from dimse.models import VERIFICATION, Root
from dimse.status import Category
from dimse.storage import InstanceWriter
from dimse.storage_scp import StorageSCP
from dul.connection import Timeouts
from dul.errors import AssociationRejected
from dul.negotiation import ProposedContext
from tests import peers
from tests.peers import HOST, findscu, wait_until

SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
JPEG2000 = "1.2.840.10008.1.2.4.91"
TIMEOUTS = Timeouts(connect=10.0, acse=10.0, dimse=30.0, idle=30.0, artim=10.0)
WAIT_S = 10.0


def pydicom_file(name: str) -> Path:
    path = get_testdata_file(name)
    assert isinstance(path, str), f"pydicom's test file {name} is missing"
    return Path(path)


@pytest.fixture(scope="session")
def sample_files() -> list[Path]:
    """CT_small and MR_small (Explicit VR Little Endian) and JPEG2000 (SC, J2K)."""
    return [
        pydicom_file("CT_small.dcm"),
        pydicom_file("MR_small.dcm"),
        pydicom_file("JPEG2000.dcm"),
    ]


def memory_dataset() -> Dataset:
    """A Secondary Capture instance built in memory (no file, no file meta)."""
    ds = Dataset()
    ds.SOPClassUID = SECONDARY_CAPTURE
    ds.SOPInstanceUID = generate_uid()
    ds.PatientName = "Memory^Dataset"
    ds.PatientID = "MEM1"
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality = "OT"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = ds.Columns = 8
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.PixelData = bytes(range(64))
    return ds


def dataset_part(path: Path) -> bytes:
    """The bytes of a Part 10 file after its file meta group."""
    info = read_part10_info(path)
    return path.read_bytes()[info.dataset_offset :]


def connect(
    peer: peers.Peer, contexts: list[ProposedContext], **options: Any
) -> client.Association:
    return client.connect(
        peer.host,
        peer.port,
        calling_ae="OURSCU",
        called_ae=peer.ae_title,
        contexts=contexts,
        timeouts=TIMEOUTS,
        **options,
    )


def storage_contexts(files: list[Path]) -> list[ProposedContext]:
    """For the files, and for an in-memory Secondary Capture data set."""
    infos = [read_part10_info(p) for p in files]
    return [*client.store_contexts(infos), ProposedContext(SECONDARY_CAPTURE, UNCOMPRESSED)]


# --- a small archive: 2 patients, 3 studies, 4 series, 8 images


@dataclass(frozen=True)
class Instance:
    path: Path
    patient_id: str
    study: str
    series: str
    sop_instance: str


@dataclass(frozen=True)
class Archive:
    instances: tuple[Instance, ...]

    @property
    def paths(self) -> list[Path]:
        return [i.path for i in self.instances]

    def where(self, **match: str) -> list[Instance]:
        return [i for i in self.instances if all(getattr(i, k) == v for k, v in match.items())]


def _write_instance(
    source: Path, directory: Path, patient: tuple[str, str], study: str, series: str, number: int
) -> Instance:
    ds = dcmread(source)
    ds.PatientID, ds.PatientName = patient
    ds.StudyInstanceUID = study
    ds.SeriesInstanceUID = series
    ds.SOPInstanceUID = f"{series}.{number}"
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.InstanceNumber = number
    if 0xFFFCFFFC in ds:  # Data Set Trailing Padding: archives drop it
        del ds[0xFFFCFFFC]
    path = directory / f"{ds.SOPInstanceUID}.dcm"
    ds.save_as(path)
    return Instance(path, patient[0], study, series, ds.SOPInstanceUID)


@pytest.fixture(scope="session")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Archive:
    directory = tmp_path_factory.mktemp("archive")
    ct, mr = pydicom_file("CT_small.dcm"), pydicom_file("MR_small.dcm")
    root = "1.2.826.0.1.3680043.10.1138"  # an example root; the rest is generated
    layout = [
        # source, patient, study, series, images
        (ct, ("PAT1", "Alpha^One"), f"{root}.1", f"{root}.1.1", 3),
        (ct, ("PAT1", "Alpha^One"), f"{root}.1", f"{root}.1.2", 2),
        (mr, ("PAT2", "Beta^Two"), f"{root}.2", f"{root}.2.1", 2),
        (mr, ("PAT2", "Beta^Two"), f"{root}.3", f"{root}.3.1", 1),
    ]
    instances = [
        _write_instance(source, directory, patient, study, series, n)
        for source, patient, study, series, count in layout
        for n in range(1, count + 1)
    ]
    return Archive(tuple(instances))


STUDY_1 = "1.2.826.0.1.3680043.10.1138.1"
SERIES_1_1 = "1.2.826.0.1.3680043.10.1138.1.1"

# (root, keys, the key whose values identify the matches, expected matches)
FIND_CASES = {
    "patient-root-PATIENT": (
        Root.PATIENT,
        {"QueryRetrieveLevel": "PATIENT", "PatientID": "", "PatientName": ""},
        "PatientID",
        {"PAT1", "PAT2"},
    ),
    "patient-root-STUDY": (
        Root.PATIENT,
        {"QueryRetrieveLevel": "STUDY", "PatientID": "PAT2", "StudyInstanceUID": ""},
        "StudyInstanceUID",
        {"1.2.826.0.1.3680043.10.1138.2", "1.2.826.0.1.3680043.10.1138.3"},
    ),
    "patient-root-SERIES": (
        Root.PATIENT,
        {
            "QueryRetrieveLevel": "SERIES",
            "PatientID": "PAT1",
            "StudyInstanceUID": STUDY_1,
            "SeriesInstanceUID": "",
            "Modality": "",
        },
        "SeriesInstanceUID",
        {SERIES_1_1, "1.2.826.0.1.3680043.10.1138.1.2"},
    ),
    "patient-root-IMAGE": (
        Root.PATIENT,
        {
            "QueryRetrieveLevel": "IMAGE",
            "PatientID": "PAT1",
            "StudyInstanceUID": STUDY_1,
            "SeriesInstanceUID": SERIES_1_1,
            "SOPInstanceUID": "",
        },
        "SOPInstanceUID",
        {f"{SERIES_1_1}.{n}" for n in (1, 2, 3)},
    ),
    "study-root-STUDY": (
        Root.STUDY,
        {"QueryRetrieveLevel": "STUDY", "StudyInstanceUID": "", "PatientID": ""},
        "StudyInstanceUID",
        {STUDY_1, "1.2.826.0.1.3680043.10.1138.2", "1.2.826.0.1.3680043.10.1138.3"},
    ),
    "study-root-SERIES": (
        Root.STUDY,
        {
            "QueryRetrieveLevel": "SERIES",
            "StudyInstanceUID": STUDY_1,
            "SeriesInstanceUID": "",
            "Modality": "",
        },
        "SeriesInstanceUID",
        {SERIES_1_1, "1.2.826.0.1.3680043.10.1138.1.2"},
    ),
    "study-root-IMAGE": (
        Root.STUDY,
        {
            "QueryRetrieveLevel": "IMAGE",
            "StudyInstanceUID": STUDY_1,
            "SeriesInstanceUID": SERIES_1_1,
            "SOPInstanceUID": "",
        },
        "SOPInstanceUID",
        {f"{SERIES_1_1}.{n}" for n in (1, 2, 3)},
    ),
}


def loaded_archive(
    kind: str, request: pytest.FixtureRequest, archive: Archive, **options: Any
) -> Any:
    """A dcmqrscp or an Orthanc holding the archive's instances."""
    if kind == "dcmqrscp":
        qr = request.getfixturevalue("dcmqrscp_factory")(**options)
        qr.load(*archive.paths)
        return qr
    orthanc = request.getfixturevalue("orthanc_factory")(**options)
    for path in archive.paths:
        orthanc.upload(path)
    return orthanc


SERVERS = [pytest.param(k, marks=pytest.mark.peers) for k in ("dcmqrscp", "orthanc")]


# --- C-ECHO


@pytest.mark.parametrize(
    "server",
    [
        pytest.param("storescp", marks=pytest.mark.peers),
        pytest.param("orthanc", marks=pytest.mark.peers),
        "pynetdicom_scp",
    ],
)
def test_echo(server: str, request: pytest.FixtureRequest) -> None:
    peer: peers.Peer = request.getfixturevalue(server)
    with connect(peer, [ProposedContext(VERIFICATION, UNCOMPRESSED)]) as association:
        status = association.echo()
        assert status.code == 0x0000
        assert status.category is Category.SUCCESS
        assert association.echo().is_success, "the association serves a second echo"


# --- C-STORE


@pytest.mark.peers
def test_store_to_storescp_arrives_byte_for_byte(
    storescp_factory: Callable[..., peers.StoreSCP], sample_files: list[Path]
) -> None:
    scp = storescp_factory(extra_args=["+B"])  # bit-preserving: the data set as received
    memory = memory_dataset()
    with connect(scp, storage_contexts(sample_files)) as association:
        results = [association.store(path) for path in sample_files]
        results.append(association.store(memory))
    assert [r.status.code for r in results] == [0, 0, 0, 0]

    received = {read_part10_info(p).sop_instance_uid: p for p in scp.received_files()}
    sources = {read_part10_info(p).sop_instance_uid: p for p in sample_files}
    assert set(received) == {*sources, memory.SOPInstanceUID}
    for uid, source in sources.items():
        assert (
            read_part10_info(received[uid]).transfer_syntax
            == read_part10_info(source).transfer_syntax
        )
        assert dataset_part(received[uid]) == dataset_part(source), uid
    memory_file = received[memory.SOPInstanceUID]
    syntax = read_part10_info(memory_file).transfer_syntax
    assert syntax in UNCOMPRESSED
    assert dataset_part(memory_file) == encode_dataset(memory, syntax)


@pytest.mark.peers
def test_store_to_orthanc(orthanc: peers.Orthanc, sample_files: list[Path]) -> None:
    memory = memory_dataset()
    with connect(orthanc, storage_contexts(sample_files)) as association:
        results = [association.store(path) for path in sample_files]
        results.append(association.store(memory))
    assert all(r.status.is_success for r in results), results
    sources = {read_part10_info(p).sop_instance_uid: p for p in sample_files}
    assert orthanc.sop_instance_uids() == {*sources, memory.SOPInstanceUID}
    for instance in orthanc.instances():
        tags = orthanc.rest("GET", f"/instances/{instance}/simplified-tags")
        uid = tags["SOPInstanceUID"]
        if uid in sources:
            original = dcmread(sources[uid], stop_before_pixels=True)
            assert tags["PatientID"] == original.PatientID
            assert tags["StudyInstanceUID"] == original.StudyInstanceUID
            kept = orthanc_file(orthanc, instance)
            assert dcmread(kept) == dcmread(sources[uid]), "Orthanc has the data set sent"
        else:
            assert tags["PatientName"] == "Memory^Dataset"
            assert dcmread(orthanc_file(orthanc, instance)) == memory


def orthanc_file(orthanc: peers.Orthanc, instance: str) -> Path:
    """The DICOM file Orthanc keeps for an instance, fetched through its REST API."""
    request = urllib.request.Request(f"{orthanc.url}/instances/{instance}/file")
    with urllib.request.urlopen(request, timeout=WAIT_S) as response:
        data = response.read()
    path = orthanc.workdir / f"{instance}.dcm"
    path.write_bytes(data)
    return path


def test_store_to_pynetdicom(pynetdicom_scp: peers.PynetdicomSCP, sample_files: list[Path]) -> None:
    uncompressed = sample_files[:2]  # pynetdicom's default contexts refuse JPEG 2000
    memory = memory_dataset()
    with connect(pynetdicom_scp, storage_contexts(uncompressed)) as association:
        results = [association.store(path) for path in uncompressed]
        results.append(association.store(memory))
    assert all(r.status.code == 0 for r in results), results
    received = {str(ds.SOPInstanceUID): ds for ds in pynetdicom_scp.wait_for_datasets(3)}
    for path in uncompressed:
        original = dcmread(path)
        got = received[str(original.SOPInstanceUID)]
        assert got.file_meta.TransferSyntaxUID == original.file_meta.TransferSyntaxUID
        assert got == original
    assert received[memory.SOPInstanceUID].PixelData == memory.PixelData
    assert pynetdicom_scp.calling_ae_titles == ["OURSCU"] * 3


@pytest.mark.peers
def test_store_converts_an_uncompressed_file_and_refuses_a_compressed_one(
    storescp_factory: Callable[..., peers.StoreSCP], sample_files: list[Path]
) -> None:
    scp = storescp_factory(extra_args=["+xi", "+B"])  # accepts Implicit VR Little Endian only
    ct, _, jpeg2000 = sample_files
    assert read_part10_info(ct).transfer_syntax != IMPLICIT_VR_LITTLE_ENDIAN
    with connect(scp, storage_contexts([ct, jpeg2000])) as association:
        result = association.store(ct)
        assert result.status.is_success
        with pytest.raises(NoPresentationContext) as caught:
            association.store(jpeg2000)
    message = str(caught.value)
    assert SECONDARY_CAPTURE in message
    assert JPEG2000 in message

    [received] = scp.received_files()
    assert read_part10_info(received).transfer_syntax == IMPLICIT_VR_LITTLE_ENDIAN
    assert dcmread(received) == dcmread(ct), "the same data set, in another transfer syntax"


def test_a_failure_status_is_a_result_not_an_exception(
    pynetdicom_scp: peers.PynetdicomSCP, ct_small: Path
) -> None:
    pynetdicom_scp.status = 0xA700
    with connect(pynetdicom_scp, storage_contexts([ct_small])) as association:
        result = association.store(ct_small)
        assert association.store(memory_dataset()).status.code == 0xA700
    assert result.status.code == 0xA700
    assert result.status.category is Category.FAILURE
    assert "resources" in result.status.name.lower()
    assert result.sop_instance_uid == read_part10_info(ct_small).sop_instance_uid
    assert len(pynetdicom_scp.wait_for_datasets(2)) == 2


def test_store_many_sends_each_file_as_it_is_and_reports_one_gone_missing(
    storescp_factory: Callable[..., peers.StoreSCP], ct_small: Path, tmp_path: Path
) -> None:
    """store_many makes each request ready (the file read) before the previous
    response comes: the files still arrive byte for byte, in order, and a file removed
    after its meta was read is reported (at once) as an OSError, nothing of it sent."""
    scp = storescp_factory(extra_args=["+B"])
    template = dcmread(ct_small)
    files = []
    for n in range(20):
        template.SOPInstanceUID = f"1.2.826.0.1.3680043.10.1138.7.{n + 1}"
        template.file_meta.MediaStorageSOPInstanceUID = template.SOPInstanceUID
        template.InstanceNumber = n
        path = tmp_path / f"{n:02}.dcm"
        template.save_as(path)
        files.append(path)
    infos = [read_part10_info(path) for path in files]
    files[7].unlink()
    with connect(scp, storage_contexts(files[:1])) as association:
        results = list(association.store_many(infos))
    assert sorted(info.path for info, _ in results) == files  # each file once
    stored = [info.path for info, r in results if not isinstance(r, Exception)]
    assert stored == [path for path in files if path != files[7]]  # in order
    missing = [(info, r) for info, r in results if isinstance(r, Exception)]
    assert [(info.path, type(r)) for info, r in missing] == [(files[7], FileNotFoundError)]
    assert all(r.status.is_success for _, r in results if not isinstance(r, Exception))
    received = {read_part10_info(p).sop_instance_uid: p for p in scp.received_files()}
    assert len(received) == 19
    for info in infos:
        if info.path != files[7]:
            assert dataset_part(received[info.sop_instance_uid]) == dataset_part(info.path)


def test_a_hundred_files_over_one_association(
    pynetdicom_scp: peers.PynetdicomSCP, ct_small: Path, tmp_path: Path
) -> None:
    from pynetdicom import evt

    accepted: list[str] = []
    pynetdicom_scp.server.bind(
        evt.EVT_ACCEPTED, lambda event: accepted.append(event.assoc.requestor.ae_title)
    )
    files = []
    template = dcmread(ct_small)
    for n in range(100):
        template.SOPInstanceUID = f"1.2.826.0.1.3680043.10.1138.9.{n + 1}"
        template.file_meta.MediaStorageSOPInstanceUID = template.SOPInstanceUID
        path = tmp_path / f"{n}.dcm"
        template.save_as(path)
        files.append(path)
    with connect(pynetdicom_scp, storage_contexts(files)) as association:
        results = [association.store(path) for path in files]
    assert all(r.status.is_success for r in results)
    received = pynetdicom_scp.wait_for_datasets(100)
    assert {str(ds.SOPInstanceUID) for ds in received} == {
        read_part10_info(p).sop_instance_uid for p in files
    }
    assert accepted == ["OURSCU"], "one association for the hundred files"


# --- C-FIND


@pytest.mark.parametrize("kind", SERVERS)
@pytest.mark.parametrize("case", list(FIND_CASES))
def test_find_matches_findscu(
    kind: str, case: str, request: pytest.FixtureRequest, archive: Archive, tmp_path: Path
) -> None:
    root, keys, unique, expected = FIND_CASES[case]
    server = loaded_archive(kind, request, archive)
    query = Dataset()
    for keyword, value in keys.items():
        setattr(query, keyword, value)
    with connect(server, client.query_contexts(root, "find")) as association:
        responses = list(association.find(query, root))
    *pending, final = responses
    assert final.status.code == 0x0000
    assert all(r.status.is_pending for r in pending)
    ours = [r.identifier for r in pending if r.identifier is not None]
    assert len(ours) == len(pending), "every pending response carries a match"

    model = "-P" if root is Root.PATIENT else "-S"
    theirs = findscu(server, tmp_path, keys, model=model)

    def answers(datasets: list[Any]) -> list[tuple[str, ...]]:
        return sorted(tuple(str(ds.get(k, "")) for k in keys) for ds in datasets)

    assert {str(ds.get(unique)) for ds in ours} == expected
    assert answers(ours) == answers(theirs)


# --- C-MOVE and C-GET


@pytest.mark.parametrize("kind", SERVERS)
def test_move_to_our_storage_scp(
    kind: str, request: pytest.FixtureRequest, archive: Archive, tmp_path: Path
) -> None:
    output = tmp_path / "moved"
    expected = archive.where(study=STUDY_1)
    with StorageSCP(output, ae_title="OURSCP", host=HOST, port=0, timeouts=TIMEOUTS) as scp:
        destination = peers.Peer(HOST, scp.port, "OURSCP")
        server = loaded_archive(kind, request, archive, move_destinations=[destination])
        query = Dataset()
        query.QueryRetrieveLevel = "STUDY"
        query.StudyInstanceUID = STUDY_1
        with connect(server, client.query_contexts(Root.STUDY, "move")) as association:
            responses = list(association.move(query, Root.STUDY, "OURSCP"))
        received = scp.received
    final = responses[-1]
    assert final.status.code == 0x0000, final
    assert final.completed == len(expected)
    assert not final.failed
    assert sorted(p.name for p in output.iterdir()) == sorted(
        f"{i.sop_instance}.dcm" for i in expected
    )
    assert {r.sop_instance_uid for r in received} == {i.sop_instance for i in expected}
    for instance in expected:
        moved = dcmread(output / f"{instance.sop_instance}.dcm")
        assert moved == dcmread(instance.path)


@pytest.mark.parametrize("kind", SERVERS)
def test_get_into_an_instance_writer(
    kind: str, request: pytest.FixtureRequest, archive: Archive, tmp_path: Path
) -> None:
    output = tmp_path / "got"
    expected = archive.where(study=STUDY_1)
    server = loaded_archive(kind, request, archive)
    contexts = client.query_contexts(Root.STUDY, "get")
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.StudyInstanceUID = STUDY_1
    with connect(server, contexts, roles=client.get_roles(contexts)) as association:
        responses = list(association.get(query, Root.STUDY, InstanceWriter(output)))
        received = association.received
    final = responses[-1]
    assert final.status.code == 0x0000, final
    assert final.completed == len(expected)
    assert {r.sop_instance_uid for r in received} == {i.sop_instance for i in expected}
    assert sorted(p.name for p in output.iterdir()) == sorted(
        f"{i.sop_instance}.dcm" for i in expected
    )
    for instance in expected:
        got = output / f"{instance.sop_instance}.dcm"
        assert any(r.path == got for r in received)
        assert dcmread(got) == dcmread(instance.path)


# --- C-CANCEL


@contextlib.contextmanager
def pynetdicom_find_scp(
    on_find: Callable[[Any], Iterator[tuple[int, Dataset | None]]],
) -> Iterator[peers.Peer]:
    peers.require_pynetdicom()
    from pynetdicom import AE, evt
    from pynetdicom.sop_class import (  # type: ignore[attr-defined]
        StudyRootQueryRetrieveInformationModelFind,
        Verification,
    )

    ae = AE(ae_title="PYFIND")
    ae.add_supported_context(StudyRootQueryRetrieveInformationModelFind)
    ae.add_supported_context(Verification)
    server = ae.start_server((HOST, 0), block=False, evt_handlers=[(evt.EVT_C_FIND, on_find)])
    assert server is not None
    try:
        yield peers.Peer(HOST, server.server_address[1], "PYFIND")
    finally:
        server.shutdown()
        ae.shutdown()


def test_leaving_a_find_early_sends_c_cancel_and_the_association_goes_on() -> None:
    cancelled = threading.Event()
    sent: list[int] = []

    def on_find(event: Any) -> Iterator[tuple[int, Dataset | None]]:
        def cancel_seen() -> bool:
            if event.is_cancelled:  # true once per C-CANCEL: pynetdicom forgets it then
                cancelled.set()
            return cancelled.is_set()

        for n in range(1000):
            if cancel_seen():
                yield 0xFE00, None
                return
            match = Dataset()
            match.QueryRetrieveLevel = "STUDY"
            match.StudyInstanceUID = f"1.2.826.0.1.3680043.10.1138.7.{n + 1}"
            sent.append(n)
            yield 0xFF00, match
            if n == 4:  # the client leaves after 3: wait for its C-CANCEL
                with contextlib.suppress(peers.PeerError):
                    wait_until(cancel_seen, WAIT_S, "C-CANCEL received")

    with pynetdicom_find_scp(on_find) as peer:
        query = Dataset()
        query.QueryRetrieveLevel = "STUDY"
        query.StudyInstanceUID = ""
        contexts = client.query_contexts(Root.STUDY, "find")
        with connect(peer, contexts) as association:
            seen = []
            for response in association.find(query, Root.STUDY):
                assert response.identifier is not None
                seen.append(response.identifier.StudyInstanceUID)
                if len(seen) == 3:
                    break
            assert association.echo().is_success, "the association is still usable"
    assert cancelled.is_set(), "pynetdicom received the C-CANCEL"
    assert len(sent) < 1000
    assert seen == [f"1.2.826.0.1.3680043.10.1138.7.{n}" for n in (1, 2, 3)]


# --- a rejected association


@pytest.mark.peers
def test_a_rejected_association_says_why(dcmqrscp: peers.QRSCP) -> None:
    wrong = peers.Peer(dcmqrscp.host, dcmqrscp.port, "NOT-QRSCP")
    with pytest.raises(AssociationRejected) as caught:
        connect(wrong, client.query_contexts(Root.STUDY, "find"))
    rejection = caught.value
    assert (rejection.result, rejection.source, rejection.reason) == (1, 1, 7)
    assert "called-AE-title-not-recognized" in str(rejection)
    assert "rejected-permanent" in str(rejection)
