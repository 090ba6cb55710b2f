"""The asyncio client (`dimse.aio.connect`) end to end against real servers: DCMTK
storescp and dcmqrscp, Orthanc, and our dicomscp (a subprocess), and pynetdicom for
C-CANCEL.

Each test is a plain function that runs its coroutine with `asyncio.run` (under a
deadline: a hang fails instead of waiting for pytest's timeout). What the servers did
is read from the servers: the files storescp wrote, Orthanc's REST API, dicomscp's
archive (opened once the server has stopped), DCMTK findscu's answers to the same
query. The archive of tests/test_client_api.py (2 patients, 3 studies, 4 series, 8
images) is the data; its C-FIND cases are asked again here.

The load test holds 200 associations to one dicomscp in one event loop, all open at
once (a barrier after connecting; dicomscp's log says the same), each storing 10
instances of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset

import tests.test_client_api as api
from dimse import aio, client
from dimse.archive.archive import Archive as DiskArchive
from dimse.datasets import UNCOMPRESSED, encode_dataset
from dimse.files import read_part10_info
from dimse.models import VERIFICATION, Root
from dimse.results import RetrieveResponse
from dimse.status import Category
from dimse.storage import InstanceWriter
from dul.connection import Timeouts
from dul.errors import AssociationRejected, ConnectionFailed
from dul.negotiation import ProposedContext
from tests import peers
from tests.fidelity import differences
from tests.peers import HOST, findscu, wait_until

if TYPE_CHECKING:
    from tests.ourserver import DicomSCP

pytest_plugins = ["tests.ourserver"]  # dicomscp_factory; dicomscp's log with a failure

T = TypeVar("T")
TIMEOUTS = api.TIMEOUTS
RUN_S = 60.0  # the longest any test's coroutine may run
WAIT_S = 10.0
ECHO = [ProposedContext(VERIFICATION, UNCOMPRESSED)]
SECONDARY_CAPTURE = api.SECONDARY_CAPTURE
STUDY_1 = api.STUDY_1

# The session archive of tests/test_client_api.py (a fixture, shared by name).
archive = api.archive
sample_files = api.sample_files


def run(coroutine: Coroutine[Any, Any, T], timeout: float = RUN_S) -> T:
    """Run a test's coroutine in a new event loop, at most `timeout` seconds."""
    return asyncio.run(asyncio.wait_for(coroutine, timeout))


def connect(peer: peers.Peer, contexts: list[ProposedContext], **options: Any) -> aio.Connecting:
    return aio.connect(
        peer.host,
        peer.port,
        calling_ae="OURSCU",
        called_ae=peer.ae_title,
        contexts=contexts,
        timeouts=TIMEOUTS,
        **options,
    )


def study_query() -> Dataset:
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.StudyInstanceUID = STUDY_1
    return query


# --- the servers: each holding the archive's eight instances (when asked to)


def storescu_into(peer: peers.Peer, paths: list[Path]) -> None:
    """DCMTK storescu of the files into `peer`; every response must be a success."""
    result = peers.run_dcmtk(
        "storescu", "-v", "-aet", "LOADER", "-aec", peer.ae_title,
        peer.host, str(peer.port), *paths,
    )  # fmt: skip
    log = result.stdout + result.stderr
    assert log.count("Received Store Response (Success)") == len(paths), log


def dicomscp(request: pytest.FixtureRequest, *args: str | Path) -> DicomSCP:
    made: DicomSCP = request.getfixturevalue("dicomscp_factory")("--no-fsync", *args)
    return made


def server_with(
    kind: str,
    request: pytest.FixtureRequest,
    archive: api.Archive | None,
    destinations: list[peers.Peer] | None = None,
) -> peers.Peer:
    """A dcmqrscp, an Orthanc or a dicomscp, loaded with `archive`'s instances, that
    knows `destinations` for C-MOVE."""
    destinations = destinations or []
    server: peers.Peer
    if kind == "dcmqrscp":
        qr: peers.QRSCP = request.getfixturevalue("dcmqrscp_factory")(
            move_destinations=destinations
        )
        if archive is not None:
            qr.load(*archive.paths)
        return qr
    if kind == "orthanc":
        orthanc: peers.Orthanc = request.getfixturevalue("orthanc_factory")(
            move_destinations=destinations
        )
        if archive is not None:
            for path in archive.paths:
                orthanc.upload(path)
        return orthanc
    assert kind == "dicomscp", kind
    args = [f"--destination={d.ae_title}={d.host}:{d.port}" for d in destinations]
    server = dicomscp(request, *args)
    if archive is not None:
        storescu_into(server, archive.paths)
    return server


EXTERNAL = pytest.mark.peers
ARCHIVES = [
    pytest.param("dcmqrscp", marks=EXTERNAL),
    pytest.param("orthanc", marks=EXTERNAL),
    pytest.param("dicomscp", marks=EXTERNAL),  # loaded with DCMTK's storescu
]


# --- C-ECHO


@pytest.mark.parametrize("kind", [pytest.param("storescp", marks=EXTERNAL), *ARCHIVES])
def test_echo(kind: str, request: pytest.FixtureRequest) -> None:
    if kind == "storescp":
        peer: peers.Peer = request.getfixturevalue("storescp")
    else:
        peer = server_with(kind, request, None)

    async def echo() -> list[Any]:
        async with connect(peer, ECHO) as association:
            first = await association.echo()
            second = await association.echo()  # the association serves a second one
            return [first, second]

    statuses = run(echo())
    assert [(s.code, s.category) for s in statuses] == [(0x0000, Category.SUCCESS)] * 2


# --- C-STORE


@pytest.mark.peers
def test_store_to_storescp_arrives_byte_for_byte(
    storescp_factory: Callable[..., peers.StoreSCP], sample_files: list[Path]
) -> None:
    """Files (one JPEG 2000) and a pydicom Dataset; storescp +B keeps what it got."""
    scp = storescp_factory(extra_args=["+B"])
    memory = api.memory_dataset()

    async def store() -> list[Any]:
        async with connect(scp, api.storage_contexts(sample_files)) as association:
            results = [await association.store(path) for path in sample_files]
            results.append(await association.store(memory))
            return results

    results = run(store())
    assert [r.status.code for r in results] == [0, 0, 0, 0]
    sources = {read_part10_info(p).sop_instance_uid: p for p in sample_files}
    assert [r.sop_instance_uid for r in results] == [*sources, memory.SOPInstanceUID]
    received = {read_part10_info(p).sop_instance_uid: p for p in scp.received_files()}
    assert set(received) == {*sources, memory.SOPInstanceUID}
    for uid, source in sources.items():
        got = read_part10_info(received[uid])
        assert got.transfer_syntax == read_part10_info(source).transfer_syntax
        assert api.dataset_part(received[uid]) == api.dataset_part(source), uid
    memory_file = received[memory.SOPInstanceUID]
    syntax = read_part10_info(memory_file).transfer_syntax
    assert syntax in UNCOMPRESSED
    assert api.dataset_part(memory_file) == encode_dataset(memory, syntax)


@pytest.mark.peers
def test_store_many_to_storescp_in_order_byte_for_byte(
    storescp_factory: Callable[..., peers.StoreSCP], ct_small: Path, tmp_path: Path
) -> None:
    scp = storescp_factory(extra_args=["+B"])
    template = dcmread(ct_small)
    files = []
    for n in range(20):
        template.SOPInstanceUID = f"1.2.826.0.1.3680043.10.1138.71.{n + 1}"
        template.file_meta.MediaStorageSOPInstanceUID = template.SOPInstanceUID
        path = tmp_path / f"{n:02}.dcm"
        template.save_as(path)
        files.append(path)
    infos = [read_part10_info(path) for path in files]

    async def store_many() -> list[Any]:
        async with connect(scp, api.storage_contexts(files[:1]), async_window=8) as association:
            return [pair async for pair in association.store_many(infos)]

    results = run(store_many())
    assert [info.path for info, _ in results] == files
    assert all(not isinstance(r, Exception) and r.status.code == 0 for _, r in results), results
    received = {read_part10_info(p).sop_instance_uid: p for p in scp.received_files()}
    assert set(received) == {info.sop_instance_uid for info in infos}
    for info in infos:
        assert api.dataset_part(received[info.sop_instance_uid]) == api.dataset_part(info.path)


@pytest.mark.peers
def test_store_to_orthanc(orthanc: peers.Orthanc, sample_files: list[Path]) -> None:
    memory = api.memory_dataset()

    async def store() -> list[Any]:
        async with connect(orthanc, api.storage_contexts(sample_files)) as association:
            results = [await association.store(path) for path in sample_files]
            results.append(await association.store(memory))
            return results

    results = run(store())
    assert [r.status.code for r in results] == [0, 0, 0, 0]
    sources = {read_part10_info(p).sop_instance_uid: p for p in sample_files}
    assert orthanc.sop_instance_uids() == {*sources, memory.SOPInstanceUID}
    for instance in orthanc.instances():
        kept = dcmread(api.orthanc_file(orthanc, instance))
        uid = str(kept.SOPInstanceUID)
        assert kept == (dcmread(sources[uid]) if uid in sources else memory), uid


@pytest.mark.peers
def test_store_to_dicomscp_is_archived_byte_for_byte(
    request: pytest.FixtureRequest, sample_files: list[Path]
) -> None:
    server = dicomscp(request)
    memory = api.memory_dataset()

    async def store() -> list[Any]:
        async with connect(server, api.storage_contexts(sample_files)) as association:
            results = [await association.store(path) for path in sample_files]
            results.append(await association.store(memory))
            return results

    results = run(store())
    assert [r.status.code for r in results] == [0, 0, 0, 0]
    assert server.stop() == 0
    sources = {read_part10_info(p).sop_instance_uid: p for p in sample_files}
    with DiskArchive(server.archive, fsync=False) as disk:
        assert disk.count() == 4
        for uid, source in [*sources.items(), (memory.SOPInstanceUID, None)]:
            query = Dataset()
            query.SOPInstanceUID = uid
            [stored] = disk.instances(query, Root.STUDY, "IMAGE")
            if source is None:
                data = encode_dataset(memory, stored.transfer_syntax)
                assert api.dataset_part(stored.path) == data
            else:
                assert stored.transfer_syntax == read_part10_info(source).transfer_syntax
                assert api.dataset_part(stored.path) == api.dataset_part(source), uid


# --- C-FIND


@pytest.mark.parametrize("kind", ARCHIVES)
def test_find_answers_as_findscu_does(
    kind: str, request: pytest.FixtureRequest, archive: api.Archive, tmp_path: Path
) -> None:
    """Every C-FIND case of tests/test_client_api.py, one after the other over one
    association; the matches are the expected ones and findscu's."""
    server = server_with(kind, request, archive)
    cases = list(api.FIND_CASES.values())

    def query_of(keys: dict[str, str]) -> Dataset:
        query = Dataset()
        for keyword, value in keys.items():
            setattr(query, keyword, value)
        return query

    async def find_all() -> list[list[Any]]:
        answers = []
        for root in (Root.PATIENT, Root.STUDY):
            contexts = client.query_contexts(root, "find")
            async with connect(server, contexts) as association:
                for case_root, keys, _, _ in cases:
                    if case_root is root:
                        answers.append([r async for r in association.find(query_of(keys), root)])
        return answers

    answers = run(find_all())
    ordered = [c for root in (Root.PATIENT, Root.STUDY) for c in cases if c[0] is root]
    for (root, keys, unique, expected), responses in zip(ordered, answers, strict=True):
        *pending, final = responses
        assert final.status.code == 0x0000, (keys, final)
        assert final.identifier is None
        assert all(r.status.code in (0xFF00, 0xFF01) for r in pending), keys
        ours = [r.identifier for r in pending]
        assert all(ds is not None for ds in ours)
        assert {str(ds.get(unique)) for ds in ours} == expected, keys
        theirs = findscu(server, tmp_path, keys, model="-P" if root is Root.PATIENT else "-S")

        def rows(datasets: list[Any], keys: dict[str, str] = keys) -> list[tuple[str, ...]]:
            return sorted(tuple(str(ds.get(k, "")) for k in keys) for ds in datasets)

        assert rows(ours) == rows(theirs), keys


# --- C-MOVE and C-GET


def check_counts(responses: list[RetrieveResponse], expected: int) -> None:
    """A pending response after each sub-operation (dcmqrscp and Orthanc's C-GET send
    one after the last too), its counts adding up (PS3.4 C.4.2.1.6), then a final
    success with `expected` completed, nothing failed or warned."""
    *pending, final = responses
    counts = [(r.status.code, r.remaining, r.completed, r.failed, r.warning) for r in pending]
    steps = [(0xFF00, expected - n, n, 0, 0) for n in range(1, expected + 1)]
    assert counts in (steps, steps[:-1]), counts
    assert (final.status.code, final.completed, final.failed, final.warning) == (
        0x0000,
        expected,
        0,
        0,
    ), final
    assert final.remaining in (None, 0)
    assert not final.failed_sop_instances


def check_same(source: Path, received: Path) -> None:
    """The data set arrived byte for byte, in its transfer syntax; and (an independent
    judge) element by element and pixel by pixel."""
    assert read_part10_info(received).transfer_syntax == read_part10_info(source).transfer_syntax
    assert api.dataset_part(received) == api.dataset_part(source), received.name
    assert differences(source, received) == []


@pytest.mark.parametrize("kind", ARCHIVES)
def test_move_to_storescp(
    kind: str,
    request: pytest.FixtureRequest,
    archive: api.Archive,
    storescp_factory: Callable[..., peers.StoreSCP],
) -> None:
    scp = storescp_factory(extra_args=["+B"])
    server = server_with(kind, request, archive, destinations=[scp])
    expected = archive.where(study=STUDY_1)

    async def move() -> list[RetrieveResponse]:
        contexts = client.query_contexts(Root.STUDY, "move")
        async with connect(server, contexts) as association:
            moved = [r async for r in association.move(study_query(), Root.STUDY, "STORESCP")]
            assert (await association.echo()).is_success
            return moved

    responses = run(move())
    check_counts(responses, len(expected))
    received = {read_part10_info(p).sop_instance_uid: p for p in scp.received_files()}
    assert set(received) == {i.sop_instance for i in expected}
    for instance in expected:
        check_same(instance.path, received[instance.sop_instance])


@pytest.mark.parametrize("kind", ARCHIVES)
def test_get_into_an_instance_writer(
    kind: str, request: pytest.FixtureRequest, archive: api.Archive, tmp_path: Path
) -> None:
    server = server_with(kind, request, archive)
    output = tmp_path / "got"
    expected = archive.where(study=STUDY_1)

    async def get() -> tuple[list[RetrieveResponse], list[Any]]:
        contexts = client.query_contexts(Root.STUDY, "get")
        roles = client.get_roles(contexts)
        async with connect(server, contexts, roles=roles) as association:
            writer = InstanceWriter(output)
            responses = [r async for r in association.get(study_query(), Root.STUDY, writer)]
            assert not association.refused
            return responses, association.received

    responses, received = run(get())
    check_counts(responses, len(expected))
    assert sorted(r.sop_instance_uid for r in received) == sorted(i.sop_instance for i in expected)
    assert sorted(p.name for p in output.iterdir()) == sorted(
        f"{i.sop_instance}.dcm" for i in expected
    )
    for instance in expected:
        written = output / f"{instance.sop_instance}.dcm"
        assert [r.path for r in received if r.sop_instance_uid == instance.sop_instance] == [
            written
        ]
        check_same(instance.path, written)


# --- C-CANCEL: leaving a C-FIND early


@contextlib.contextmanager
def pynetdicom_find_scp(limit: int = 1000) -> Iterator[tuple[peers.Peer, FindRecord]]:
    """pynetdicom as C-FIND SCP: up to `limit` matches, and after the fifth it waits
    (at most WAIT_S) for a C-CANCEL. Records the DIMSE messages it receives, in order."""
    record = FindRecord()

    def on_find(event: Any) -> Iterator[tuple[int, Dataset | None]]:
        def cancel_seen() -> bool:
            if event.is_cancelled:  # true once per C-CANCEL: pynetdicom forgets it then
                record.cancelled.set()
            return record.cancelled.is_set()

        for n in range(limit):
            if cancel_seen():
                yield 0xFE00, None
                return
            match = Dataset()
            match.QueryRetrieveLevel = "STUDY"
            match.StudyInstanceUID = f"1.2.826.0.1.3680043.10.1138.72.{n + 1}"
            record.sent += 1
            yield 0xFF00, match
            if n == 4:  # the client leaves after 3: wait for its C-CANCEL
                with contextlib.suppress(peers.PeerError):
                    wait_until(cancel_seen, WAIT_S, "C-CANCEL received")

    def on_message(event: Any) -> None:
        record.messages.append(type(event.message).__name__)

    peers.require_pynetdicom()
    from pynetdicom import AE, evt
    from pynetdicom.sop_class import (  # type: ignore[attr-defined]
        StudyRootQueryRetrieveInformationModelFind,
        Verification,
    )

    ae = AE(ae_title="PYFIND")
    ae.add_supported_context(StudyRootQueryRetrieveInformationModelFind)
    ae.add_supported_context(Verification)
    handlers = [(evt.EVT_C_FIND, on_find), (evt.EVT_DIMSE_RECV, on_message)]
    server = ae.start_server((HOST, 0), block=False, evt_handlers=handlers)
    assert server is not None
    try:
        yield peers.Peer(HOST, server.server_address[1], "PYFIND"), record
    finally:
        server.shutdown()
        ae.shutdown()


class FindRecord:
    """What the pynetdicom C-FIND SCP saw."""

    def __init__(self) -> None:
        self.cancelled = threading.Event()
        self.sent = 0
        self.messages: list[str] = []  # the DIMSE messages received, by class name


def first_three_studies(association: aio.Association) -> Any:
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.StudyInstanceUID = ""
    return association.find(query, Root.STUDY)


FIND_AND_ECHO = [*client.query_contexts(Root.STUDY, "find"), *ECHO]
THREE = [f"1.2.826.0.1.3680043.10.1138.72.{n}" for n in (1, 2, 3)]


def test_leaving_a_find_early_sends_c_cancel_and_the_association_goes_on() -> None:
    with pynetdicom_find_scp() as (peer, record):

        async def leave_early() -> tuple[list[str], bool]:
            async with connect(peer, FIND_AND_ECHO) as association:
                seen = []
                async for response in first_three_studies(association):
                    assert response.identifier is not None
                    seen.append(response.identifier.StudyInstanceUID)
                    if len(seen) == 3:
                        break
                echoed = (await association.echo()).is_success
                return seen, echoed

        seen, echoed = run(leave_early())
    assert seen == THREE
    assert echoed, "the association is still usable"
    assert record.cancelled.is_set(), "pynetdicom received the C-CANCEL"
    assert record.sent < 1000
    assert record.messages.count("C_CANCEL_RQ") == 1


def test_a_find_closed_with_aclosing_cancels_before_the_next_request() -> None:
    """`contextlib.aclosing` closes the iterator when the block is left: the C-CANCEL
    goes (and the rest is read) before the next operation's request."""
    with pynetdicom_find_scp() as (peer, record):

        async def leave_early() -> list[str]:
            async with connect(peer, FIND_AND_ECHO) as association:
                seen = []
                async with contextlib.aclosing(first_three_studies(association)) as responses:
                    async for response in responses:
                        seen.append(response.identifier.StudyInstanceUID)
                        if len(seen) == 3:
                            break
                assert (await association.echo()).is_success
                return seen

        assert run(leave_early()) == THREE
    assert record.messages == ["C_FIND_RQ", "C_CANCEL_RQ", "C_ECHO_RQ"]


@pytest.mark.parametrize(
    "driver",
    ["blocking", "asyncio"],
)
def test_leaving_a_find_early_cancels_before_the_next_request(driver: str) -> None:
    with pynetdicom_find_scp() as (peer, record):
        if driver == "blocking":
            with api.connect(peer, FIND_AND_ECHO) as blocking:
                query = Dataset()
                query.QueryRetrieveLevel = "STUDY"
                query.StudyInstanceUID = ""
                for n, _ in enumerate(blocking.find(query, Root.STUDY), 1):
                    if n == 3:
                        break
                assert blocking.echo().is_success
        else:

            async def leave_early() -> None:
                async with connect(peer, FIND_AND_ECHO) as association:
                    n = 0
                    async for _ in first_three_studies(association):
                        n += 1
                        if n == 3:
                            break
                    assert (await association.echo()).is_success

            run(leave_early())
    assert record.messages == ["C_FIND_RQ", "C_CANCEL_RQ", "C_ECHO_RQ"]


ORTHANC_MATCHES = 1000  # Orthanc takes ~0.2 s to send them: the echo comes before the end


@pytest.fixture(scope="module")
def orthanc_with_many(tmp_path_factory: pytest.TempPathFactory) -> Iterator[peers.Orthanc]:
    """Orthanc holding ORTHANC_MATCHES small instances of one series (REST upload)."""
    from pydicom.dataset import FileMetaDataset
    from pydicom.filebase import DicomBytesIO
    from pydicom.uid import ExplicitVRLittleEndian

    with peers.start_orthanc(tmp_path_factory.mktemp("orthanc-many")) as orthanc:
        for n in range(ORTHANC_MATCHES):
            ds = api.memory_dataset()
            ds.StudyInstanceUID = MANY_STUDY
            ds.SeriesInstanceUID = f"{MANY_STUDY}.1"
            ds.SOPInstanceUID = f"{MANY_STUDY}.1.{n + 1}"
            ds.file_meta = FileMetaDataset()
            ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
            ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            buffer = DicomBytesIO()
            ds.save_as(buffer, enforce_file_format=True)
            orthanc.rest("POST", "/instances", buffer.getvalue())
        yield orthanc


MANY_STUDY = "1.2.826.0.1.3680043.10.1138.73"
SHORT_DIMSE = Timeouts(connect=10.0, acse=10.0, dimse=5.0, idle=30.0, artim=10.0)


def many_query() -> Dataset:
    query = Dataset()
    query.QueryRetrieveLevel = "IMAGE"
    query.StudyInstanceUID = MANY_STUDY
    query.SeriesInstanceUID = f"{MANY_STUDY}.1"
    query.SOPInstanceUID = ""
    return query


@pytest.mark.peers
@pytest.mark.parametrize(
    "how",
    ["aclosing", "break"],
)
def test_orthanc_serves_the_next_request_after_a_find_left_early(
    how: str, orthanc_with_many: peers.Orthanc
) -> None:
    """Orthanc (DCMTK's DIMSE_findProvider) reads a C-ECHO-RQ that comes during its
    C-FIND as a bad C-CANCEL and answers nothing more: with `break` alone the echo
    waits for the DIMSE timeout (or the association is aborted)."""
    orthanc = orthanc_with_many

    async def leave_early() -> tuple[int, int, int]:
        async with aio.connect(
            orthanc.host,
            orthanc.port,
            called_ae=orthanc.ae_title,
            contexts=FIND_AND_ECHO,
            timeouts=SHORT_DIMSE,
        ) as association:
            seen = 0
            responses = association.find(many_query(), Root.STUDY)
            closing = contextlib.aclosing(responses) if how == "aclosing" else None
            async with closing or contextlib.nullcontext(responses):
                async for _ in responses:
                    seen += 1
                    if seen == 3:
                        break
            echo = await association.echo()
            everything = [r async for r in association.find(many_query(), Root.STUDY)]
            return echo.code, len(everything), everything[-1].status.code

    assert run(leave_early()) == (0x0000, ORTHANC_MATCHES + 1, 0x0000)


# --- errors: the blocking client's, with the same words


def blocking_error(peer: peers.Peer, contexts: list[ProposedContext]) -> BaseException:
    try:
        api.connect(peer, contexts).release()
    except Exception as exc:
        return exc
    raise AssertionError("the blocking client connected")


def aio_error(peer: peers.Peer, contexts: list[ProposedContext]) -> BaseException:
    async def opening() -> None:
        async with connect(peer, contexts):
            pass

    try:
        run(opening())
    except Exception as exc:
        return exc
    raise AssertionError("the asyncio client connected")


def test_connection_refused_is_connection_failed() -> None:
    nobody = peers.Peer(HOST, peers.free_port(), "NOBODY")
    error = aio_error(nobody, ECHO)
    assert type(error) is ConnectionFailed
    assert str(error).startswith(f"cannot connect to {HOST}:{nobody.port}: ")
    assert "check the host name and port, and that the DICOM server is running" in str(error)


def test_connection_refused_says_what_the_blocking_client_says() -> None:
    nobody = peers.Peer(HOST, peers.free_port(), "NOBODY")
    expected = blocking_error(nobody, ECHO)
    error = aio_error(nobody, ECHO)
    assert type(error) is type(expected) is ConnectionFailed
    assert str(error) == str(expected)


@pytest.mark.parametrize("kind", [pytest.param("dcmqrscp", marks=EXTERNAL), "dicomscp"])
def test_a_rejected_association_says_what_the_blocking_client_says(
    kind: str, request: pytest.FixtureRequest
) -> None:
    if kind == "dcmqrscp":
        server: peers.Peer = request.getfixturevalue("dcmqrscp")
    else:
        server = dicomscp(request, "--check-called-ae")
    wrong = peers.Peer(server.host, server.port, "NOT-THEIRS")
    expected = blocking_error(wrong, ECHO)
    error = aio_error(wrong, ECHO)
    assert type(error) is type(expected) is AssociationRejected
    assert isinstance(error, AssociationRejected)
    assert (error.result, error.source, error.reason) == (1, 1, 7)
    assert str(error) == str(expected)
    assert "called-AE-title-not-recognized" in str(error)
    assert "rejected-permanent" in str(error)


# --- the load: 200 associations at once in one event loop, to one dicomscp

ASSOCIATIONS = 200
PER_ASSOCIATION = 10
LOAD_ROOT = "1.2.826.0.1.3680043.10.1138.74"
LOAD_STUDY = f"{LOAD_ROOT}.1"
LOAD_TIMEOUTS = Timeouts(connect=30.0, acse=30.0, dimse=30.0, idle=60.0, artim=30.0)
LOAD_CONFIG = f"""
max_associations = {ASSOCIATIONS + 10}
max_per_caller = 0
"""


def load_instance(association: int, number: int) -> Dataset:
    """A small Secondary Capture instance: series `association`, instance `number`."""
    ds = api.memory_dataset()
    ds.PatientID = "LOAD"
    ds.PatientName = "Load^Test"
    ds.StudyInstanceUID = LOAD_STUDY
    ds.SeriesInstanceUID = f"{LOAD_STUDY}.{association + 1}"
    ds.SOPInstanceUID = f"{LOAD_STUDY}.{association + 1}.{number + 1}"
    ds.InstanceNumber = number + 1
    return ds


@pytest.mark.peers
@pytest.mark.slow
def test_200_associations_at_once_store_2000_instances(
    dicomscp_factory: Callable[..., DicomSCP],
    record_property: Callable[[str, object], None],
    tmp_path: Path,
) -> None:
    server = dicomscp_factory("--no-fsync", config=LOAD_CONFIG, archive=tmp_path / "load")
    contexts = [ProposedContext(SECONDARY_CAPTURE, UNCOMPRESSED)]
    instances = [[load_instance(a, n) for n in range(PER_ASSOCIATION)] for a in range(ASSOCIATIONS)]
    uids = {str(ds.SOPInstanceUID) for batch in instances for ds in batch}
    assert len(uids) == ASSOCIATIONS * PER_ASSOCIATION

    async def load() -> tuple[list[list[Any]], int, list[Any]]:
        all_open = asyncio.Barrier(ASSOCIATIONS)
        peak = 0
        open_now = 0

        async def one(batch: list[Dataset]) -> list[Any]:
            nonlocal peak, open_now
            try:
                association = await aio.connect(
                    server.host,
                    server.port,
                    calling_ae="LOADSCU",
                    called_ae=server.ae_title,
                    contexts=contexts,
                    timeouts=LOAD_TIMEOUTS,
                )
            except BaseException:
                await all_open.abort()  # the others stop waiting
                raise
            async with association:
                open_now += 1
                peak = max(peak, open_now)
                await all_open.wait()  # every association is open before any store
                results = [await association.store(ds) for ds in batch]
                open_now -= 1
                return results

        results = await asyncio.gather(*(one(batch) for batch in instances))
        query = Dataset()
        query.QueryRetrieveLevel = "IMAGE"
        query.StudyInstanceUID = LOAD_STUDY
        query.SeriesInstanceUID = ""
        query.SOPInstanceUID = ""
        async with aio.connect(
            server.host,
            server.port,
            called_ae=server.ae_title,
            contexts=client.query_contexts(Root.STUDY, "find"),
            timeouts=LOAD_TIMEOUTS,
        ) as association:
            found = [r async for r in association.find(query, Root.STUDY)]
        return results, peak, found

    started = time.monotonic()
    results, peak, found = run(load(), timeout=120.0)
    elapsed = time.monotonic() - started
    record_property("seconds", round(elapsed, 1))
    print(f"\n{ASSOCIATIONS} associations x {PER_ASSOCIATION} stores: {elapsed:.1f} s")

    assert peak == ASSOCIATIONS
    for batch, answers in zip(instances, results, strict=True):
        assert [(r.status.code, r.sop_instance_uid) for r in answers] == [
            (0x0000, str(ds.SOPInstanceUID)) for ds in batch
        ]
    *pending, final = found
    assert final.status.code == 0x0000
    assert {str(r.identifier.SOPInstanceUID) for r in pending} == uids
    assert len(pending) == len(uids)

    # dicomscp says so too: its log has them all open at one time.
    open_in_log = most_in_log = 0
    for line in server.log_text().splitlines():
        if re.search(r"association from \S+ \(", line):
            open_in_log += 1
            most_in_log = max(most_in_log, open_in_log)
        elif re.search(r"association from \S+ (released|ended)", line):
            open_in_log -= 1
    assert most_in_log == ASSOCIATIONS

    assert server.stop() == 0
    with DiskArchive(server.archive, fsync=False) as disk:
        assert disk.count() == len(uids)
        everything = Dataset()
        everything.StudyInstanceUID = LOAD_STUDY
        stored = disk.instances(everything, Root.STUDY, "STUDY")
    assert {s.sop_instance_uid for s in stored} == uids
    assert elapsed < 60.0, f"{elapsed:.1f} s"
