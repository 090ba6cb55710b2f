"""The asyncio provider (`dimse.aio.Provider`) against real service users: DCMTK's
echoscu, storescu, findscu, movescu and getscu, pynetdicom, and TLS.

The provider runs in an event loop of its own thread (tests/aio_support.py), so that
the peers, which block, can be run from the test. Its hooks come in two kinds, with
the same behaviour: coroutine functions (`async def store`, `find` an async
generator) that run in the loop's thread, and plain functions that the provider runs
in worker threads; each hook notes the thread it ran in. What the hooks were given
is compared with what the peers sent (the files, byte for byte); what the peers got
back (their output, the files they wrote) with what the hooks answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset

from dimse import aio
from dimse.datasets import UNCOMPRESSED
from dimse.files import read_part10_info
from dimse.handlers import Caller, Handlers, HandlerStatus, StoreSink
from dimse.messages import C_FIND_RQ, C_GET_RQ, C_MOVE_RQ, C_STORE_RQ
from dimse.models import STUDY_ROOT_FIND, VERIFICATION
from dul import tls
from dul.connection import Timeouts
from dul.errors import ConnectionFailed
from dul.negotiation import ProposedContext
from tests import peers
from tests.aio_support import KINDS, AioProviderThread, make_provider
from tests.certs import Pki, make_pki
from tests.fidelity import differences
from tests.peers import HOST, findscu, run_dcmtk, wait_until
from tests.test_scp_api import dataset_part, pydicom_file, without_trailing_padding

TIMEOUTS = Timeouts(connect=10.0, acse=10.0, dimse=30.0, idle=30.0, artim=10.0)
WAIT_S = 10.0
EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"
IMPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2"
STUDY_ROOT_MOVE = "1.2.840.10008.5.1.4.1.2.2.2"
STUDY_ROOT_GET = "1.2.840.10008.5.1.4.1.2.2.3"
STUDIES = [
    ("1.2.826.0.1.3680043.10.1138.75.1", "Alpha^One"),
    ("1.2.826.0.1.3680043.10.1138.75.2", "Beta^Two"),
    ("1.2.826.0.1.3680043.10.1138.75.3", "Gamma^Three"),
]
MANY = 10_000  # matches of a find that is meant to be cancelled


def study(uid: str, name: str) -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    ds.StudyInstanceUID = uid
    ds.PatientName = name
    return ds


@pytest.fixture(scope="module")
def files() -> list[Path]:
    """What C-MOVE and C-GET send: CT_small and MR_small as they are."""
    return [pydicom_file("CT_small.dcm"), pydicom_file("MR_small.dcm")]


# --- the hooks: the same work, async or plain


@dataclass
class Stored:
    sop_instance_uid: str
    transfer_syntax: str
    data: bytes
    caller: Caller


@dataclass
class Work:
    """What both kinds of hooks do, and what they were given."""

    files: list[Path] = field(default_factory=list)
    destinations: dict[str, tuple[str, int]] = field(default_factory=dict)
    many: bool = False  # find: MANY generated matches instead of STUDIES
    echo_status: int = 0x0000
    echoes: list[Caller] = field(default_factory=list)
    stored: list[Stored] = field(default_factory=list)
    queries: list[Dataset] = field(default_factory=list)
    retrieved: list[str] = field(default_factory=list)  # "C-MOVE" / "C-GET"
    threads: set[str] = field(default_factory=set)  # where the hooks ran
    yielded: int = 0
    find_closed: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def ran(self) -> None:
        with self.lock:
            self.threads.add(threading.current_thread().name)

    def echo(self, caller: Caller) -> int:
        self.ran()
        self.echoes.append(caller)
        return self.echo_status

    def store(self, caller: Caller, request: C_STORE_RQ, data: bytes, syntax: str) -> int:
        self.ran()
        with self.lock:
            self.stored.append(Stored(request.affected_sop_instance_uid, syntax, data, caller))
        return 0x0000

    def matches(self, identifier: Dataset) -> Iterator[Dataset]:
        self.ran()
        self.queries.append(identifier)
        if not self.many:
            for uid, name in STUDIES:
                yield study(uid, name)
            return
        for n in range(MANY):
            yield study(f"1.2.826.0.1.3680043.10.1138.76.{n + 1}", f"Many^{n + 1}")
            self.yielded += 1

    def retrieve(self, request: C_MOVE_RQ | C_GET_RQ, identifier: Dataset) -> list[Path]:
        self.ran()
        self.retrieved.append("C-MOVE" if isinstance(request, C_MOVE_RQ) else "C-GET")
        if identifier.get("StudyInstanceUID") != STUDIES[0][0]:
            raise HandlerStatus(0xA900, "no such study here")
        return list(self.files)

    def destination(self, ae_title: str) -> tuple[str, int] | None:
        self.ran()
        return self.destinations.get(ae_title)


class AsyncHooks(Handlers):
    """Every hook a coroutine function; `find` an async generator."""

    serves_storage = True
    serves_query = True

    def __init__(self, work: Work) -> None:
        self.work = work

    async def echo(self, caller: Caller) -> int:
        await asyncio.sleep(0)  # a real await: the hook is awaited, not called
        return self.work.echo(caller)

    async def store(
        self, caller: Caller, request: C_STORE_RQ, data: bytes | BinaryIO, transfer_syntax: str
    ) -> int:
        payload = data if isinstance(data, bytes) else data.read()
        await asyncio.sleep(0)
        return self.work.store(caller, request, payload, transfer_syntax)

    async def find(  # type: ignore[override]
        self, caller: Caller, request: C_FIND_RQ, identifier: Dataset
    ) -> AsyncIterator[Dataset]:
        try:
            for match in self.work.matches(identifier):
                await asyncio.sleep(0)
                yield match
        finally:
            self.work.find_closed.set()

    async def retrieve(  # type: ignore[override]
        self, caller: Caller, request: C_MOVE_RQ | C_GET_RQ, identifier: Dataset
    ) -> list[Path]:
        await asyncio.sleep(0)
        return self.work.retrieve(request, identifier)

    async def destination(  # type: ignore[override]
        self, caller: Caller, ae_title: str
    ) -> tuple[str, int] | None:
        await asyncio.sleep(0)
        return self.work.destination(ae_title)


class PlainHooks(Handlers):
    """Every hook a plain function; `find` a generator."""

    serves_storage = True
    serves_query = True

    def __init__(self, work: Work) -> None:
        self.work = work

    def echo(self, caller: Caller) -> int:
        return self.work.echo(caller)

    def store(
        self, caller: Caller, request: C_STORE_RQ, data: bytes | BinaryIO, transfer_syntax: str
    ) -> int:
        payload = data if isinstance(data, bytes) else data.read()
        return self.work.store(caller, request, payload, transfer_syntax)

    def find(self, caller: Caller, request: C_FIND_RQ, identifier: Dataset) -> Iterator[Dataset]:
        try:
            yield from self.work.matches(identifier)
        finally:
            self.work.find_closed.set()

    def retrieve(
        self, caller: Caller, request: C_MOVE_RQ | C_GET_RQ, identifier: Dataset
    ) -> list[Path]:
        return self.work.retrieve(request, identifier)

    def destination(self, caller: Caller, ae_title: str) -> tuple[str, int] | None:
        return self.work.destination(ae_title)


class MemorySink(StoreSink):
    """A streamed C-STORE kept in memory; its `commit` is a coroutine function."""

    def __init__(self, work: Work, caller: Caller, request: C_STORE_RQ, syntax: str) -> None:
        self.work, self.caller, self.request, self.syntax = work, caller, request, syntax
        self.buffer = bytearray()

    def write(self, data: Any) -> int:
        self.buffer += bytes(data)
        return len(data)

    async def commit(self) -> int:  # type: ignore[override]
        await asyncio.sleep(0)
        return self.work.store(self.caller, self.request, bytes(self.buffer), self.syntax)


class StreamingHooks(AsyncHooks):
    """C-STORE streamed into a sink (`open_store`), committed by a coroutine."""

    def open_store(self, caller: Caller, request: C_STORE_RQ, transfer_syntax: str) -> StoreSink:
        return MemorySink(self.work, caller, request, transfer_syntax)


HOOKS = {"async": AsyncHooks, "plain": PlainHooks}


def check_threads(work: Work, kind: str, provider: AioProviderThread) -> None:
    """Async hooks ran in the loop's thread, plain ones elsewhere (worker threads)."""
    assert work.threads, "no hook ran"
    loop_thread = provider.thread_name
    if kind == "plain":
        assert loop_thread not in work.threads, work.threads
    else:
        assert work.threads == {loop_thread}


@contextlib.contextmanager
def serving(handlers: Handlers, **options: Any) -> Iterator[AioProviderThread]:
    with AioProviderThread(
        handlers, ae_title="OURSCP", host=HOST, port=0, timeouts=TIMEOUTS, **options
    ) as provider:
        yield provider
        wait_until(lambda: provider.active_associations == 0, WAIT_S, "associations ended")


def dcmtk_says(result: Any) -> str:
    return str(result.stdout) + str(result.stderr)


# --- DCMTK service users


@pytest.mark.peers
@pytest.mark.parametrize("kind", HOOKS)
def test_echoscu_gets_the_echo_hooks_status(kind: str) -> None:
    work = Work(echo_status=0x0000)
    with serving(HOOKS[kind](work)) as provider:
        ok = run_dcmtk(
            "echoscu", "-v", "-aet", "ECHOSCU", "-aec", "OURSCP", HOST, str(provider.port)
        )
        work.echo_status = 0x0110
        odd = run_dcmtk("echoscu", "-v", "-aec", "OURSCP", HOST, str(provider.port), check=False)
        check_threads(work, kind, provider)
    assert "Received Echo Response (Success)" in dcmtk_says(ok)
    assert "Received Echo Response (Unknown Status: 0x110)" in dcmtk_says(odd)
    first, _ = work.echoes
    assert (first.calling_ae, first.called_ae) == ("ECHOSCU", "OURSCP")
    assert first.address.startswith(HOST)


@pytest.mark.peers
@pytest.mark.parametrize("kind", [*HOOKS, "streaming"])
def test_storescu_to_the_store_hooks(kind: str, files: list[Path]) -> None:
    work = Work()
    handlers = StreamingHooks(work) if kind == "streaming" else HOOKS[kind](work)
    with serving(handlers) as provider:
        result = run_dcmtk(
            "storescu", "-v", "-aet", "STORESCU", "-aec", "OURSCP", HOST, str(provider.port),
            *files,
        )  # fmt: skip
        check_threads(work, "plain" if kind == "plain" else "async", provider)
    assert dcmtk_says(result).count("Received Store Response (Success)") == 2
    stored = {s.sop_instance_uid: s for s in work.stored}
    assert set(stored) == {read_part10_info(p).sop_instance_uid for p in files}
    for path in files:
        got = stored[read_part10_info(path).sop_instance_uid]
        assert got.transfer_syntax == read_part10_info(path).transfer_syntax
        assert got.data == without_trailing_padding(dataset_part(path)), "as in the file"
        assert got.caller.calling_ae == "STORESCU"


@pytest.mark.peers
@pytest.mark.parametrize("kind", HOOKS)
def test_findscu_gets_what_the_find_hook_yields(kind: str, tmp_path: Path) -> None:
    work = Work()
    with serving(HOOKS[kind](work)) as provider:
        peer = peers.Peer(HOST, provider.port, "OURSCP")
        keys = {"QueryRetrieveLevel": "STUDY", "StudyInstanceUID": "", "PatientName": ""}
        answers = findscu(peer, tmp_path, keys, model="-S")
        check_threads(work, kind, provider)
    assert [(a.StudyInstanceUID, str(a.PatientName)) for a in answers] == STUDIES
    [query] = work.queries
    assert query.QueryRetrieveLevel == "STUDY"
    assert "StudyInstanceUID" in query and "PatientName" in query
    assert work.find_closed.is_set()


@pytest.mark.peers
@pytest.mark.parametrize("kind", HOOKS)
def test_findscu_cancel_ends_the_find_with_fe00_and_closes_the_hook(kind: str) -> None:
    """findscu --cancel 1: a C-CANCEL-RQ after the first response; the provider looks
    for it every few responses, answers FE00 and closes the hook's iterator."""
    work = Work(many=True)
    with serving(HOOKS[kind](work)) as provider:
        result = run_dcmtk(
            "findscu", "-v", "-S", "-aec", "OURSCP", "--cancel", "1",
            "-k", "QueryRetrieveLevel=STUDY", "-k", "StudyInstanceUID=", HOST, str(provider.port),
        )  # fmt: skip
        wait_until(work.find_closed.is_set, WAIT_S, "the find hook is closed")
    said = dcmtk_says(result)
    assert "Sending Cancel Request" in said, said
    assert "Received Final Find Response (Cancel: MatchingTerminatedDueToCancelRequest)" in said
    pending = len(re.findall(r"Find Response: \d+ \(Pending\)", said))
    assert 1 <= pending < MANY, said
    assert work.yielded < MANY, "the provider stopped asking the hook for matches"


@pytest.mark.peers
@pytest.mark.parametrize("kind", HOOKS)
def test_movescu_to_storescp_through_the_retrieve_and_destination_hooks(
    kind: str, files: list[Path], storescp_factory: Any
) -> None:
    scp: peers.StoreSCP = storescp_factory(extra_args=["+B"])
    work = Work(files=files, destinations={"STORESCP": (scp.host, scp.port)})
    with serving(HOOKS[kind](work)) as provider:
        moved = run_dcmtk(
            "movescu", "-v", "-S", "-aet", "MOVESCU", "-aec", "OURSCP", "-aem", "STORESCP",
            "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={STUDIES[0][0]}",
            HOST, str(provider.port),
        )  # fmt: skip
        unknown = run_dcmtk(
            "movescu", "-v", "-S", "-aec", "OURSCP", "-aem", "NOWHERE",
            "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={STUDIES[0][0]}",
            HOST, str(provider.port), check=False,
        )  # fmt: skip
        check_threads(work, kind, provider)
    said = dcmtk_says(moved)
    assert "Received Move Response 1 (Pending)" in said, said  # after the first of two
    assert "Received Final Move Response (Success)" in said, said
    assert "Received Final Move Response (Refused: MoveDestinationUnknown)" in dcmtk_says(unknown)
    received = {read_part10_info(p).sop_instance_uid: p for p in scp.received_files()}
    assert set(received) == {read_part10_info(p).sop_instance_uid for p in files}
    for path in files:
        copy = received[read_part10_info(path).sop_instance_uid]
        assert dataset_part(copy) == dataset_part(path), "storescp +B: as the provider sent it"
    assert work.retrieved == ["C-MOVE", "C-MOVE"]


@pytest.mark.peers
@pytest.mark.parametrize("kind", HOOKS)
def test_getscu_receives_what_the_retrieve_hook_names(
    kind: str, files: list[Path], tmp_path: Path
) -> None:
    work = Work(files=files)
    output = tmp_path / "got"
    output.mkdir()
    with serving(HOOKS[kind](work)) as provider:
        got = run_dcmtk(
            "getscu", "-v", "-S", "+B", "-aec", "OURSCP", "-od", output,
            "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={STUDIES[0][0]}",
            HOST, str(provider.port),
        )  # fmt: skip
        check_threads(work, kind, provider)
    said = dcmtk_says(got)
    assert "Received C-GET Response (Success)" in said, said
    assert re.search(r"Number of Completed Suboperations : 2\n", said), said
    assert re.search(r"Number of Failed Suboperations +: 0\n", said), said
    written = {read_part10_info(p).sop_instance_uid: p for p in output.iterdir()}
    assert set(written) == {read_part10_info(p).sop_instance_uid for p in files}
    for path in files:
        copy = written[read_part10_info(path).sop_instance_uid]
        assert dataset_part(copy) == dataset_part(path), "getscu +B: as the provider sent it"
        assert differences(path, copy) == []
    assert work.retrieved == ["C-GET"]


# --- pynetdicom service users


@contextlib.contextmanager
def pynetdicom_association(
    provider: AioProviderThread, contexts: list[tuple[str, list[str]]], **options: Any
) -> Iterator[Any]:
    peers.require_pynetdicom()
    from pynetdicom import AE

    ae = AE(ae_title="PYNETSCU")
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = WAIT_S
    for abstract, syntaxes in contexts:
        ae.add_requested_context(abstract, syntaxes)
    assoc = ae.associate(HOST, provider.port, ae_title="OURSCP", **options)
    assert assoc.is_established
    try:
        yield assoc
    finally:
        if assoc.is_established:
            assoc.release()
        assert assoc.is_released and not assoc.is_aborted
        ae.shutdown()


@pytest.mark.parametrize("kind", HOOKS)
def test_pynetdicom_echo_store_and_find(kind: str, files: list[Path]) -> None:
    ct = files[0]
    work = Work()
    with serving(HOOKS[kind](work)) as provider:
        contexts = [
            (VERIFICATION, [IMPLICIT_VR_LITTLE_ENDIAN]),
            (read_part10_info(ct).sop_class_uid, [EXPLICIT_VR_LITTLE_ENDIAN]),
            (STUDY_ROOT_FIND, [IMPLICIT_VR_LITTLE_ENDIAN]),
        ]
        with pynetdicom_association(provider, contexts) as assoc:
            assert assoc.send_c_echo().Status == 0x0000
            assert assoc.send_c_store(str(ct)).Status == 0x0000
            responses = list(assoc.send_c_find(study("", ""), STUDY_ROOT_FIND))
        check_threads(work, kind, provider)
    [caller] = work.echoes
    assert caller.calling_ae == "PYNETSCU"
    [stored] = work.stored
    assert stored.data == dataset_part(ct), "pynetdicom sends the file's data set as it is"
    *pending, (final, _) = responses
    assert final.Status == 0x0000
    assert [(s.Status, i.StudyInstanceUID, str(i.PatientName)) for s, i in pending] == [
        (0xFF00, uid, name) for uid, name in STUDIES
    ]


@pytest.mark.parametrize("kind", HOOKS)
def test_pynetdicom_move_and_get(kind: str, files: list[Path]) -> None:
    """C-MOVE to a pynetdicom storage SCP, and C-GET into pynetdicom's C-STORE handler."""
    peers.require_pynetdicom()
    from pynetdicom import build_role, evt

    classes = sorted({read_part10_info(p).sop_class_uid for p in files})
    with peers.start_pynetdicom_scp("PYSTORE") as destination:
        work = Work(files=files, destinations={"PYSTORE": (destination.host, destination.port)})
        got: list[Dataset] = []

        def on_store(event: Any) -> int:
            dataset = event.dataset
            dataset.file_meta = event.file_meta
            got.append(dataset)
            return 0x0000

        with serving(HOOKS[kind](work)) as provider:
            contexts = [
                (STUDY_ROOT_MOVE, [IMPLICIT_VR_LITTLE_ENDIAN]),
                (STUDY_ROOT_GET, [IMPLICIT_VR_LITTLE_ENDIAN]),
                *[(uid, [EXPLICIT_VR_LITTLE_ENDIAN]) for uid in classes],
            ]
            query = Dataset()
            query.QueryRetrieveLevel = "STUDY"
            query.StudyInstanceUID = STUDIES[0][0]
            with pynetdicom_association(
                provider,
                contexts,
                ext_neg=[build_role(uid, scp_role=True) for uid in classes],
                evt_handlers=[(evt.EVT_C_STORE, on_store)],
            ) as assoc:
                moved = [s for s, _ in assoc.send_c_move(query, "PYSTORE", STUDY_ROOT_MOVE)]
                gotten = [s for s, _ in assoc.send_c_get(query, STUDY_ROOT_GET)]
            check_threads(work, kind, provider)
        arrived = destination.wait_for_datasets(len(files))
    for statuses in (moved, gotten):
        final = statuses[-1]
        assert (final.Status, final.NumberOfCompletedSuboperations) == (0x0000, len(files))
        assert final.NumberOfFailedSuboperations == 0
    expected = {read_part10_info(p).sop_instance_uid: p for p in files}
    for datasets in (arrived, got):
        assert {str(ds.SOPInstanceUID) for ds in datasets} == set(expected)
        for ds in datasets:
            assert ds == dcmread(expected[str(ds.SOPInstanceUID)])
    assert work.retrieved == ["C-MOVE", "C-GET"]


@pytest.mark.parametrize("kind", HOOKS)
def test_c_cancel_from_pynetdicom_ends_a_long_find_with_fe00(kind: str) -> None:
    peers.require_pynetdicom()
    work = Work(many=True)
    with serving(HOOKS[kind](work)) as provider:
        contexts = [
            (STUDY_ROOT_FIND, [IMPLICIT_VR_LITTLE_ENDIAN]),
            (VERIFICATION, [IMPLICIT_VR_LITTLE_ENDIAN]),
        ]
        with pynetdicom_association(provider, contexts) as assoc:
            responses = assoc.send_c_find(study("", ""), STUDY_ROOT_FIND, msg_id=9)
            status, identifier = next(responses)
            assert status.Status == 0xFF00
            assert identifier.StudyInstanceUID == "1.2.826.0.1.3680043.10.1138.76.1"
            assoc.send_c_cancel(9, query_model=STUDY_ROOT_FIND)
            rest = [(s.Status, i) for s, i in responses]
            assert assoc.send_c_echo().Status == 0x0000, "the association goes on"
        wait_until(work.find_closed.is_set, WAIT_S, "the find hook is closed")
    statuses = [s for s, _ in rest]
    assert statuses[-1] == 0xFE00, statuses[-5:]
    assert set(statuses[:-1]) <= {0xFF00}
    assert rest[-1][1] is None
    assert work.yielded < MANY, "the provider stopped asking the hook for matches"


# --- TLS


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def dcmtk_tls(pki: Pki) -> list[str]:
    """DCMTK's client TLS options: our client certificate, our CA; -pw: no password."""
    return ["+tls", str(pki.client_key), str(pki.client_cert), "-pw", "+cf", str(pki.ca)]


@pytest.mark.peers
def test_dcmtk_over_mutual_tls(pki: Pki, files: list[Path]) -> None:
    work = Work()
    server = tls.server_context(pki.server_cert, pki.server_key, pki.ca, require_client_cert=True)
    with serving(AsyncHooks(work), ssl_context=server) as provider:
        port = str(provider.port)
        echoed = run_dcmtk("echoscu", "-v", *dcmtk_tls(pki), "-aec", "OURSCP", HOST, port)
        stored = run_dcmtk("storescu", "-v", *dcmtk_tls(pki), "-aec", "OURSCP", HOST, port, *files)
        plain = run_dcmtk("echoscu", "-to", "10", "-aec", "OURSCP", HOST, port, check=False)
        wrong_ca = run_dcmtk(
            "echoscu", "+tla", "+cf", str(pki.other_ca), "-aec", "OURSCP", HOST, port, check=False
        )
        again = run_dcmtk("echoscu", "-v", *dcmtk_tls(pki), "-aec", "OURSCP", HOST, port)
    assert "Received Echo Response (Success)" in dcmtk_says(echoed)
    assert dcmtk_says(stored).count("Received Store Response (Success)") == 2
    assert plain.returncode != 0, "a plaintext echoscu is refused"
    assert wrong_ca.returncode != 0, "our certificate is not from that CA"
    assert "Received Echo Response (Success)" in dcmtk_says(again), "still serving"
    assert len(work.echoes) == 2
    assert {s.sop_instance_uid for s in work.stored} == {
        read_part10_info(p).sop_instance_uid for p in files
    }


def test_pynetdicom_over_mutual_tls(pki: Pki) -> None:
    work = Work()
    server = tls.server_context(pki.server_cert, pki.server_key, pki.ca, require_client_cert=True)
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(pki.ca))
    context.load_cert_chain(str(pki.client_cert), str(pki.client_key))
    with serving(AsyncHooks(work), ssl_context=server) as provider:
        contexts = [(VERIFICATION, [IMPLICIT_VR_LITTLE_ENDIAN])]
        with pynetdicom_association(provider, contexts, tls_args=(context, HOST)) as assoc:
            assert assoc.send_c_echo().Status == 0x0000
    [caller] = work.echoes
    assert caller.calling_ae == "PYNETSCU"


def test_our_asyncio_client_over_tls_to_the_asyncio_provider(pki: Pki) -> None:
    """Both ends asyncio: the client in the test's loop, the provider in its thread."""
    work = Work()
    server = tls.server_context(pki.server_cert, pki.server_key, pki.ca, require_client_cert=True)
    echo = [ProposedContext(VERIFICATION, UNCOMPRESSED)]

    async def echo_with(port: int, context: ssl.SSLContext) -> str:
        async with aio.connect(
            HOST, port, called_ae="OURSCP", contexts=echo, timeouts=TIMEOUTS, ssl_context=context
        ) as association:
            assert (await association.echo()).is_success
            version = association.channel.transport.get_extra_info("ssl_object").version()  # type: ignore[union-attr]
            return str(version)

    with serving(AsyncHooks(work), ssl_context=server) as provider:
        mine = tls.client_context(pki.ca, pki.client_cert, pki.client_key)
        assert asyncio.run(echo_with(provider.port, mine)) in ("TLSv1.2", "TLSv1.3")
        with pytest.raises(ConnectionFailed, match="could not be verified"):
            asyncio.run(echo_with(provider.port, tls.client_context(pki.other_ca)))
    assert len(work.echoes) == 1


NO_ALERT = (
    "CPython gh-98078 (asyncio's SSL transport does not send TLS fatal alerts): "
    "asyncio/sslproto.py "
    "SSLProtocol._do_handshake, on ssl.SSLError, goes to _on_handshake_complete -> "
    "_fatal_error, which force-closes the transport without _process_outgoing(), so "
    "the protocol_version alert OpenSSL left in the outgoing MemoryBIO is never sent. "
    "The asyncio provider inherits it from loop.create_server(ssl=...) "
    "(dul/drivers/aio.py AioServer.start); the blocking one's ssl.SSLSocket sends it: "
    "a TLS 1.1 client sees the connection closed instead of being told why"
)


@pytest.mark.parametrize(
    "kind",
    [
        pytest.param(kind, marks=pytest.mark.xfail(strict=True, reason=NO_ALERT))
        if kind == "asyncio"
        else kind
        for kind in KINDS
    ],
)
def test_a_tls11_client_is_told_protocol_version(kind: str, pki: Pki) -> None:
    """As tests/test_tls.py asks of the blocking provider: a client that offers TLS 1.0
    and 1.1 only gets a protocol_version alert."""
    import warnings

    from dimse import client

    old = tls.client_context(pki.ca)
    with warnings.catch_warnings():  # the ssl module deprecates TLS 1.1, as it should
        warnings.simplefilter("ignore", DeprecationWarning)
        old.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
        old.maximum_version = ssl.TLSVersion.TLSv1_1
    with contextlib.suppress(ssl.SSLError):
        old.set_ciphers("DEFAULT:@SECLEVEL=0")
    server = tls.server_context(pki.server_cert, pki.server_key)
    provider = make_provider(
        kind, Handlers(), ae_title="OURSCP", host=HOST, port=0, timeouts=TIMEOUTS,
        ssl_context=server,
    )  # fmt: skip
    echo = [ProposedContext(VERIFICATION, UNCOMPRESSED)]
    with provider, pytest.raises(ConnectionFailed) as caught:
        port = provider.port
        client.connect(
            HOST, port, called_ae="OURSCP", contexts=echo, timeouts=TIMEOUTS, ssl_context=old
        )
    message = str(caught.value)
    assert f"TLS handshake with {HOST}:{port} failed: no TLS version" in message
    assert "TLSV1_ALERT_PROTOCOL_VERSION" in message


# --- the asyncio API itself, in one loop: serve_forever and stop


@pytest.mark.peers
def test_serve_forever_returns_when_stopped() -> None:
    work = Work()

    async def main() -> tuple[str, bool]:
        async with aio.Provider(
            AsyncHooks(work), ae_title="OURSCP", host=HOST, port=0, timeouts=TIMEOUTS
        ) as provider:
            serving = asyncio.create_task(provider.serve_forever())
            result = await asyncio.to_thread(
                run_dcmtk, "echoscu", "-v", "-aec", "OURSCP", HOST, str(provider.port)
            )
            still = not serving.done()
            await provider.stop()
            await asyncio.wait_for(serving, WAIT_S)
            return dcmtk_says(result), still

    said, still = asyncio.run(asyncio.wait_for(main(), 60))
    assert "Received Echo Response (Success)" in said
    assert still, "serve_forever serves until stop()"
    assert len(work.echoes) == 1
