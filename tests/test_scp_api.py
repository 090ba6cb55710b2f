"""Our service provider (dimse.scp.Provider) with a `Handlers` subclass, the hook API,
against real service users: DCMTK echoscu, storescu, findscu, and pynetdicom.

The handlers record what they were given; the SCUs report what they got back. Each
provider listens on a port the OS chose, on loopback.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset

from dimse.commands import decode_command
from dimse.datasets import decode_dataset
from dimse.files import read_part10_info
from dimse.fragments import fragment_message
from dimse.messages import C_FIND_RQ, C_STORE_RQ
from dimse.models import STUDY_ROOT_FIND, VERIFICATION
from dimse.n_messages import N_GET_RQ
from dimse.scp import Caller, Handlers, Provider, StoreSink
from dul.connection import Timeouts
from dul.drivers.sockets import request_association
from dul.negotiation import ProposedContext, build_request
from tests import peers
from tests.aio_support import active_associations
from tests.peers import HOST, findscu, run_dcmtk, wait_until

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

pytest_plugins = ["tests.aio_support"]  # provider_factory: blocking and asyncio providers

TIMEOUTS = Timeouts(connect=10.0, acse=10.0, dimse=30.0, idle=30.0, artim=10.0)
WAIT_S = 10.0
EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"
IMPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2"
STUDIES = [
    ("1.2.826.0.1.3680043.10.1138.5.1", "Alpha^One"),
    ("1.2.826.0.1.3680043.10.1138.5.2", "Beta^Two"),
    ("1.2.826.0.1.3680043.10.1138.5.3", "Gamma^Three"),
]


def pydicom_file(name: str) -> Path:
    path = get_testdata_file(name)
    assert isinstance(path, str), f"pydicom's test file {name} is missing"
    return Path(path)


def dataset_part(path: Path) -> bytes:
    info = read_part10_info(path)
    return path.read_bytes()[info.dataset_offset :]


def without_trailing_padding(data: bytes) -> bytes:
    """The data set bytes without a last (FFFC,FFFC) Data Set Trailing Padding element
    (Explicit VR Little Endian), which storescu leaves out when it sends a file."""
    at = data.rfind(b"\xfc\xff\xfc\xffOB\x00\x00")
    if at < 0:
        return data
    length = int.from_bytes(data[at + 8 : at + 12], "little")
    assert at + 12 + length == len(data), "the padding is the last element"
    return data[:at]


# --- the hooks under test


@dataclass
class Stored:
    sop_instance_uid: str
    transfer_syntax: str
    data: bytes
    via: str  # "open_store" (streamed into our sink) or "store" (handed over whole)
    caller: Caller


class MemorySink(StoreSink):
    """Keeps the streamed data set in memory; `commit` records it."""

    def __init__(self, handlers: Recording, caller: Caller, request: C_STORE_RQ, syntax: str):
        self.handlers = handlers
        self.caller = caller
        self.request = request
        self.syntax = syntax
        self.buffer = bytearray()
        self.writes = 0

    def write(self, data: ReadableBuffer) -> int:
        chunk = bytes(data)
        self.buffer += chunk
        self.writes += 1
        return len(chunk)

    def commit(self) -> int:
        self.handlers.record(
            Stored(
                self.request.affected_sop_instance_uid,
                self.syntax,
                bytes(self.buffer),
                "open_store",
                self.caller,
            )
        )
        return 0x0000


@dataclass
class Recording(Handlers):
    """Echo, store (streamed or whole) and find (yielding STUDIES), recording each call."""

    streaming: bool = True
    find_limit: int | None = None  # None: the STUDIES; else that many generated matches
    echo_status: int = 0x0000
    echoes: list[Caller] = field(default_factory=list)
    stored: list[Stored] = field(default_factory=list)
    queries: list[Dataset] = field(default_factory=list)
    yielded: int = 0
    find_closed: threading.Event = field(default_factory=threading.Event)
    first_match_sent: threading.Event = field(default_factory=threading.Event)
    may_go_on: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    serves_storage = True
    serves_query = True

    def record(self, stored: Stored) -> None:
        with self.lock:
            self.stored.append(stored)

    def echo(self, caller: Caller) -> int:
        self.echoes.append(caller)
        return self.echo_status

    def open_store(
        self, caller: Caller, request: C_STORE_RQ, transfer_syntax: str
    ) -> StoreSink | None:
        return MemorySink(self, caller, request, transfer_syntax) if self.streaming else None

    def store(
        self, caller: Caller, request: C_STORE_RQ, data: bytes | BinaryIO, transfer_syntax: str
    ) -> int:
        payload = data if isinstance(data, bytes) else data.read()
        self.record(
            Stored(request.affected_sop_instance_uid, transfer_syntax, payload, "store", caller)
        )
        return 0x0000

    def find(self, caller: Caller, request: C_FIND_RQ, identifier: Dataset) -> Iterator[Dataset]:
        self.queries.append(identifier)
        try:
            if self.find_limit is None:
                for uid, name in STUDIES:
                    yield study(uid, name)
                return
            for n in range(self.find_limit):
                yield study(f"1.2.826.0.1.3680043.10.1138.6.{n + 1}", f"Many^{n + 1}")
                self.yielded += 1
                if n == 0:
                    self.first_match_sent.set()
                    self.may_go_on.wait(WAIT_S)
        finally:
            self.find_closed.set()


def study(uid: str, name: str) -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    ds.StudyInstanceUID = uid
    ds.PatientName = name
    return ds


@contextlib.contextmanager
def serving(
    handlers: Handlers, make: Callable[..., Any] = Provider, **options: Any
) -> Iterator[Any]:
    provider = make(handlers, ae_title="OURSCP", host=HOST, port=0, timeouts=TIMEOUTS, **options)
    with provider:
        yield provider
    assert active_associations(provider) == 0


# --- DCMTK service users


@pytest.mark.peers
def test_echoscu_calls_the_echo_hook(provider_factory: Callable[..., Any]) -> None:
    handlers = Recording()
    with serving(handlers, provider_factory) as provider:
        result = run_dcmtk(
            "echoscu", "-v", "-aet", "ECHOSCU", "-aec", "OURSCP", HOST, str(provider.port)
        )
    assert "Received Echo Response (Success)" in result.stdout + result.stderr
    [caller] = handlers.echoes
    assert (caller.calling_ae, caller.called_ae) == ("ECHOSCU", "OURSCP")
    assert caller.address.startswith(HOST)


@pytest.mark.peers
def test_the_echo_hooks_status_is_what_echoscu_gets(provider_factory: Callable[..., Any]) -> None:
    handlers = Recording(echo_status=0x0110)
    with serving(handlers, provider_factory) as provider:
        result = run_dcmtk("echoscu", "-v", "-aec", "OURSCP", HOST, str(provider.port), check=False)
    assert "Received Echo Response (Unknown Status: 0x110)" in result.stderr, result
    assert len(handlers.echoes) == 1


@pytest.mark.peers
@pytest.mark.parametrize("streaming", [True, False], ids=["open_store", "store"])
def test_storescu_to_the_store_hooks(streaming: bool, provider_factory: Callable[..., Any]) -> None:
    files = [pydicom_file("CT_small.dcm"), pydicom_file("MR_small.dcm")]
    handlers = Recording(streaming=streaming)
    with serving(handlers, provider_factory) as provider:
        result = run_dcmtk(
            "storescu", "-v", "-aet", "STORESCU", "-aec", "OURSCP", HOST, str(provider.port),
            *files,
        )  # fmt: skip
    assert (
        result.stdout.count("Received Store Response (Success)")
        + result.stderr.count("Received Store Response (Success)")
        == 2
    ), result
    stored = {s.sop_instance_uid: s for s in handlers.stored}
    assert set(stored) == {read_part10_info(p).sop_instance_uid for p in files}
    for path in files:
        got = stored[read_part10_info(path).sop_instance_uid]
        assert got.via == ("open_store" if streaming else "store")
        assert got.transfer_syntax == read_part10_info(path).transfer_syntax
        assert got.data == without_trailing_padding(dataset_part(path)), "as in the file"
        assert got.caller.calling_ae == "STORESCU"


@pytest.mark.peers
def test_findscu_gets_what_the_find_hook_yields(
    tmp_path: Path, provider_factory: Callable[..., Any]
) -> None:
    handlers = Recording()
    with serving(handlers, provider_factory) as provider:
        peer = peers.Peer(HOST, provider.port, "OURSCP")
        keys = {"QueryRetrieveLevel": "STUDY", "StudyInstanceUID": "", "PatientName": ""}
        answers = findscu(peer, tmp_path, keys, model="-S")
    assert [(a.StudyInstanceUID, str(a.PatientName)) for a in answers] == STUDIES
    [query] = handlers.queries
    assert query.QueryRetrieveLevel == "STUDY"
    assert "StudyInstanceUID" in query and "PatientName" in query


# --- pynetdicom service users


@contextlib.contextmanager
def pynetdicom_association(
    provider: Provider, contexts: list[tuple[str, list[str]]]
) -> Iterator[Any]:
    peers.require_pynetdicom()
    from pynetdicom import AE

    ae = AE(ae_title="PYNETSCU")
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = WAIT_S
    for abstract, syntaxes in contexts:
        ae.add_requested_context(abstract, syntaxes)
    assoc = ae.associate(HOST, provider.port, ae_title="OURSCP")
    assert assoc.is_established
    try:
        yield assoc
    finally:
        if assoc.is_established:
            assoc.release()
        assert assoc.is_released and not assoc.is_aborted
        ae.shutdown()


@pytest.mark.parametrize("streaming", [True, False], ids=["open_store", "store"])
def test_pynetdicom_echo_store_and_find(
    streaming: bool, provider_factory: Callable[..., Any]
) -> None:
    ct = pydicom_file("CT_small.dcm")
    ct_class = read_part10_info(ct).sop_class_uid
    handlers = Recording(streaming=streaming)
    with serving(handlers, provider_factory) as provider:
        contexts = [
            (VERIFICATION, [IMPLICIT_VR_LITTLE_ENDIAN]),
            (ct_class, [EXPLICIT_VR_LITTLE_ENDIAN]),
            (STUDY_ROOT_FIND, [IMPLICIT_VR_LITTLE_ENDIAN]),
        ]
        with pynetdicom_association(provider, contexts) as assoc:
            assert assoc.send_c_echo().Status == 0x0000
            assert assoc.send_c_store(str(ct)).Status == 0x0000  # sent from the file
            query = study("", "")
            responses = list(assoc.send_c_find(query, STUDY_ROOT_FIND))
    [caller] = handlers.echoes
    assert caller.calling_ae == "PYNETSCU"

    [stored] = handlers.stored
    assert stored.via == ("open_store" if streaming else "store")
    assert stored.data == dataset_part(ct), "pynetdicom sends the file's data set as it is"
    assert stored.caller.calling_ae == "PYNETSCU"

    *pending, (final, _) = responses
    assert final.Status == 0x0000
    assert [(s.Status, i.StudyInstanceUID, str(i.PatientName)) for s, i in pending] == [
        (0xFF00, uid, name) for uid, name in STUDIES
    ]


# --- an unknown request: 0211H


def test_n_get_from_pynetdicom_is_answered_unrecognized_operation(
    provider_factory: Callable[..., Any],
) -> None:
    with serving(Recording(), provider_factory) as provider:
        contexts = [(VERIFICATION, [IMPLICIT_VR_LITTLE_ENDIAN])]
        with pynetdicom_association(provider, contexts) as assoc:
            status, attributes = assoc.send_n_get([0x00100010], VERIFICATION, "1.2.3.4")
            assert status is not None and status.Status == 0x0211
            assert attributes is None
            assert assoc.send_c_echo().Status == 0x0000, "the association goes on"


def test_n_get_by_hand_is_answered_unrecognized_operation() -> None:
    with serving(Recording()) as provider:
        request = build_request(
            "BYHAND", "OURSCP", [ProposedContext(VERIFICATION, (IMPLICIT_VR_LITTLE_ENDIAN,))]
        )
        with request_association(HOST, provider.port, request, timeouts=TIMEOUTS) as channel:
            [context_id] = channel.contexts
            n_get = N_GET_RQ(
                message_id=42,
                requested_sop_class_uid=VERIFICATION,
                requested_sop_instance_uid="1.2.3.4",
            )
            for pdu in fragment_message(
                context_id, n_get.encode(), None, channel.peer_max_pdata_length
            ):
                channel.send_pdata(pdu)
            answer = channel.receive(WAIT_S)
    [pdv] = answer.pdvs
    assert pdv.is_command and pdv.is_last
    command = decode_command(pdv.data)
    assert command["CommandField"] == 0x8110  # N-GET-RSP
    assert command["MessageIDBeingRespondedTo"] == 42
    assert command["Status"] == 0x0211
    assert command["CommandDataSetType"] == 0x0101


# --- C-CANCEL during a long C-FIND


def test_c_cancel_from_pynetdicom_ends_a_long_find_with_fe00(
    provider_factory: Callable[..., Any],
) -> None:
    peers.require_pynetdicom()
    from pynetdicom.sop_class import (  # type: ignore[attr-defined]
        StudyRootQueryRetrieveInformationModelFind,
    )

    limit = 10_000
    handlers = Recording(find_limit=limit)
    with serving(handlers, provider_factory) as provider:
        contexts = [
            (STUDY_ROOT_FIND, [IMPLICIT_VR_LITTLE_ENDIAN]),
            (VERIFICATION, [IMPLICIT_VR_LITTLE_ENDIAN]),
        ]
        with pynetdicom_association(provider, contexts) as assoc:
            responses = assoc.send_c_find(
                study("", ""), StudyRootQueryRetrieveInformationModelFind, msg_id=9
            )
            status, identifier = next(responses)
            assert status.Status == 0xFF00
            assert identifier.StudyInstanceUID == "1.2.826.0.1.3680043.10.1138.6.1"
            # The hook sets it when asked for the second match, which may come just
            # after the first response reached us: waited for, not assumed.
            wait_until(handlers.first_match_sent.is_set, WAIT_S, "the hook past its first match")
            assoc.send_c_cancel(9, query_model=StudyRootQueryRetrieveInformationModelFind)
            handlers.may_go_on.set()  # the hook goes on yielding until the provider stops
            rest = [(s.Status, i) for s, i in responses]
            assert assoc.send_c_echo().Status == 0x0000, "the association goes on"
    statuses = [s for s, _ in rest]
    assert statuses[-1] == 0xFE00, statuses[-5:]
    assert set(statuses[:-1]) <= {0xFF00}
    assert rest[-1][1] is None
    assert len(rest) < limit
    wait_until(handlers.find_closed.is_set, WAIT_S, "the find hook is closed")
    assert handlers.yielded < limit, "the provider stopped asking the hook for matches"


@pytest.mark.peers
def test_the_decoded_store_equals_the_file(provider_factory: Callable[..., Any]) -> None:
    """What the store hook gets decodes to the instance that was sent."""
    ct = pydicom_file("CT_small.dcm")
    handlers = Recording(streaming=False)
    with serving(handlers, provider_factory) as provider:
        run_dcmtk("storescu", "-aec", "OURSCP", HOST, str(provider.port), ct)
    [stored] = handlers.stored
    original = dcmread(ct)
    del original[0xFFFCFFFC]  # Data Set Trailing Padding: storescu does not send it
    assert decode_dataset(stored.data, stored.transfer_syntax) == original
