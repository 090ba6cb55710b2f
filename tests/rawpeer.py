"""A scripted raw DICOM peer, and our server under test, for the robustness tests.

`RawClient(host, port)` connects and sends exact bytes: whole PDUs built with
`dul.encode_pdu` (see `request()` and `rq_bytes()`), or those bytes mutated
(`patched`, `items`, `with_reserved_bytes`), trickled on a schedule (`trickle`), or
nothing at all; it can half-close (`half_close`). Everything it receives is recorded,
cut into PDUs by `dul.framing.Framer` (`recv_pdu`, `closed_within`, `received`).

`RawServer(script)` listens on a free loopback port and runs `script(peer)` for each
connection it accepts, in a thread: e.g. `accept_association(peer)` and then
misbehave (never read, send a malicious C-STORE-RQ, hang after the TCP accept).

Both sides can speak DIMSE over the association they made (`send_message`,
`recv_message`), so that a case reads as a few lines. Nothing here sleeps to wait
for something: every wait is a blocking read with a deadline, or `wait_until`.

The second half of the file starts our own server on a temporary archive
(`archive_server`) and checks that it still serves (`echo_status`).
"""

from __future__ import annotations

import contextlib
import itertools
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import generate_uid

from dimse import client
from dimse.archive.archive import Archive
from dimse.archive.handlers import ArchiveHandlers
from dimse.fragments import fragment_message
from dimse.message_base import DimseMessage
from dimse.messages import C_STORE_RQ, C_STORE_RSP, message_from_command
from dimse.reassembly import Reassembler, ReceivedMessage
from dimse.scp import Handlers, Provider
from dul import (
    A_ABORT,
    A_ASSOCIATE_AC,
    A_ASSOCIATE_RQ,
    A_RELEASE_RP,
    A_RELEASE_RQ,
    P_DATA_TF,
    Pdu,
    encode_pdu,
)
from dul.connection import Timeouts
from dul.fields import uid_text
from dul.framing import Framer
from dul.items import ApplicationContextItem, PresentationContextACItem
from dul.negotiation import ProposedContext, build_request
from dul.pdu import DICOM_APPLICATION_CONTEXT, PresentationDataValue
from dul.user_information import (
    ImplementationClassUIDSubItem,
    MaximumLengthSubItem,
    RoleSelectionSubItem,
    UserInformationItem,
)
from tests.peers import HOST, wait_until

VERIFICATION = "1.2.840.10008.1.1"
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
IMPLICIT_LE = "1.2.840.10008.1.2"
DEFLATED_LE = "1.2.840.10008.1.2.1.99"
STUDY_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
STUDY_ROOT_MOVE = "1.2.840.10008.5.1.4.1.2.2.2"
STUDY_ROOT_GET = "1.2.840.10008.5.1.4.1.2.2.3"

#: Short timeouts for every server and client under test (ARTIM 0.5 s).
SHORT = Timeouts(connect=2.0, acse=2.0, dimse=2.0, idle=10.0, artim=0.5)
WAIT_S = 5.0  # the most any expected answer may take


# --------------------------------------------------------------------------------------
# Bytes to send


def request(
    contexts: Sequence[tuple[str, Sequence[str]]] = ((VERIFICATION, (EXPLICIT_LE,)),),
    *,
    calling: str = "RAWSCU",
    called: str = "OURSCP",
    max_pdu: int = 16384,
    extra_items: Sequence[object] = (),
    **options: Any,
) -> A_ASSOCIATE_RQ:
    """An A-ASSOCIATE-RQ proposing `contexts` (abstract syntax, transfer syntaxes),
    numbered 1, 3, 5...; `extra_items` are added at the end of the PDU."""
    proposed = [ProposedContext(a, tuple(ts)) for a, ts in contexts]
    rq = build_request(calling, called, proposed, max_pdata_length=max_pdu, **options)
    return A_ASSOCIATE_RQ(rq.called_ae_title, rq.calling_ae_title, rq.items + tuple(extra_items))


def rq_bytes(*args: Any, **kwargs: Any) -> bytes:
    """The encoded `request(...)`."""
    return encode_pdu(request(*args, **kwargs))


def patched(data: bytes, offset: int, value: bytes) -> bytes:
    """`data` with `value` written over it at `offset`."""
    return data[:offset] + value + data[offset + len(value) :]


def with_pdu_length(data: bytes, length: int) -> bytes:
    """A PDU whose PDU-length field says `length`, whatever follows."""
    return patched(data, 2, struct.pack(">I", length))


@dataclass(frozen=True)
class ItemAt:
    """Where an item of an association PDU starts, for mutating it."""

    offset: int
    item_type: int
    length: int
    parent: int  # 0 for an item of the PDU itself


_CONTAINERS = {0x20: 4, 0x21: 4, 0x50: 0}  # item type -> bytes before its sub-items


def items(pdu: bytes) -> list[ItemAt]:
    """Every item and sub-item of an (unmutated) A-ASSOCIATE-RQ/AC, in order."""
    found: list[ItemAt] = []

    def walk(start: int, end: int, parent: int) -> None:
        while start + 4 <= end:
            item_type, length = pdu[start], struct.unpack_from(">H", pdu, start + 2)[0]
            found.append(ItemAt(start, item_type, length, parent))
            if item_type in _CONTAINERS:
                walk(start + 4 + _CONTAINERS[item_type], start + 4 + length, item_type)
            start += 4 + length

    walk(6 + 68, len(pdu), 0)
    return found


def item_of(pdu: bytes, item_type: int, parent: int | None = None) -> ItemAt:
    """The first item of `item_type` (under `parent`, if given)."""
    return next(i for i in items(pdu) if i.item_type == item_type and parent in (None, i.parent))


def with_item_length(pdu: bytes, item: ItemAt, length: int) -> bytes:
    """`pdu` with the item-length of `item` replaced (the bytes are left as they are)."""
    return patched(pdu, item.offset + 2, struct.pack(">H", length))


def with_reserved_bytes(pdu: bytes, value: int = 0xFF) -> bytes:
    """An A-ASSOCIATE-RQ with every reserved byte of PS3.8 9.3.2 set to `value`: the
    PDU header's, the fixed fields', each item's, and a presentation context's three."""
    fill = bytes([value])
    data = patched(pdu, 1, fill)
    data = patched(data, 8, fill * 2)  # after the protocol version
    data = patched(data, 42, fill * 32)  # after the calling AE title
    for item in items(pdu):
        data = patched(data, item.offset + 1, fill)
        if item.item_type == 0x20:
            data = patched(data, item.offset + 5, fill * 3)
    return data


def command_bytes(message: DimseMessage, *, has_data_set: bool = False) -> bytes:
    """The command set of `message`, saying whether a data set follows."""
    return message.with_data_set(has_data_set).encode()


def pdata(context_id: int, control: int, data: bytes) -> bytes:
    """One P-DATA-TF with one PDV (control: bit 0 command, bit 1 last)."""
    return encode_pdu(P_DATA_TF((PresentationDataValue(context_id, control, data),)))


# --------------------------------------------------------------------------------------
# A connection whose every received byte is recorded


class RawPeer:
    """One TCP connection: send exact bytes, record and frame what comes back."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.local_port: int = sock.getsockname()[1]
        self.framer = Framer(0, 0xFFFFFFFF)  # no limit: record whatever the peer sends
        self.received: list[Pdu] = []
        self.raw = bytearray()
        self.eof = False
        self.sent = 0
        self.contexts: dict[int, str] = {}  # accepted context ID -> abstract syntax
        self.max_pdu = 16384  # the peer's maximum P-DATA-TF length
        self.stop = threading.Event()  # set when the test ends the connection
        self._reassembler: Reassembler | None = None

    # -- sending ----------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)
        self.sent += len(data)

    def send_pdu(self, pdu: Pdu) -> None:
        self.send(encode_pdu(pdu))

    def trickle(self, data: bytes, interval: float) -> threading.Thread:
        """Send `data` one byte every `interval` seconds, in a thread, until it is all
        sent or the connection fails; `sent` counts the bytes that went."""

        def run() -> None:
            for i in range(len(data)):
                try:
                    self.send(data[i : i + 1])
                except OSError:
                    return
                time.sleep(interval)  # the schedule of the trickle, not a wait

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        return thread

    def half_close(self) -> None:
        """No more bytes from us (shutdown(SHUT_WR)); we still read."""
        self.sock.shutdown(socket.SHUT_WR)

    # -- receiving --------------------------------------------------------------------

    def _fill(self, deadline: float) -> bool:
        """Read once; False if the deadline passed first."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(1 << 16)
        except TimeoutError:
            return False
        except OSError:  # reset by the peer
            data = b""
        if not data:
            self.eof = True
        self.raw += data
        self.framer.feed(data)
        return True

    def recv_pdu(self, timeout: float = WAIT_S) -> Pdu | None:
        """The next PDU received, or None if the peer closed first; TimeoutError if
        neither happens within `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            pdu = self.framer.next_pdu()
            if pdu is not None:
                self.received.append(pdu)
                return pdu
            if self.eof:
                return None
            if not self._fill(deadline):
                raise TimeoutError(f"no PDU within {timeout} s; received {bytes(self.raw)!r:.200}")

    def expect(self, kind: type[Any], timeout: float = WAIT_S) -> Any:
        """The next PDU, which must be of `kind`."""
        pdu = self.recv_pdu(timeout)
        assert isinstance(pdu, kind), f"expected {kind.__name__}, got {pdu!r}"
        return pdu

    def expect_abort(self, reason: int, timeout: float = WAIT_S) -> None:
        """An A-ABORT from the service provider (source 2) with `reason`, then the close."""
        assert self.expect(A_ABORT, timeout) == A_ABORT(source=2, reason=reason)
        assert self.closed_within(timeout), "the connection stayed open after the A-ABORT"

    def closed_within(self, timeout: float) -> bool:
        """Whether the peer closes the connection within `timeout` (what arrives
        meanwhile is recorded in `received`)."""
        deadline = time.monotonic() + timeout
        while not self.eof:
            if not self._fill(deadline):
                return False
        while (pdu := self.framer.next_pdu()) is not None:
            self.received.append(pdu)
        return True

    # -- DIMSE over the association -----------------------------------------------------

    def set_contexts(self, contexts: dict[int, str]) -> None:
        """The accepted contexts (ID -> abstract syntax), when the test negotiated
        them itself; `associate` and `accept_association` set them."""
        self.contexts = contexts
        self._reassembler = Reassembler(contexts)

    def send_message(
        self, message: DimseMessage, data: bytes | None = None, context_id: int | None = None
    ) -> None:
        """One DIMSE message, cut to the peer's maximum PDU as we would."""
        if context_id is None:
            context_id = next(iter(self.contexts))
        command = command_bytes(message, has_data_set=data is not None)
        for pdu in fragment_message(context_id, command, data, self.max_pdu):
            self.send(pdu)

    def recv_message(self, timeout: float = WAIT_S) -> tuple[ReceivedMessage, DimseMessage]:
        """The next whole DIMSE message (and its typed form)."""
        assert self._reassembler is not None, "no association yet"
        deadline = time.monotonic() + timeout
        while True:
            pdu = self.recv_pdu(max(0.0, deadline - time.monotonic()))
            assert isinstance(pdu, P_DATA_TF), f"expected a P-DATA-TF, got {pdu!r}"
            for message in self._reassembler.feed(pdu):
                return message, message_from_command(message.command)

    def messages(self, timeout: float = WAIT_S) -> Iterator[tuple[ReceivedMessage, DimseMessage]]:
        """The DIMSE messages received until the peer releases (answered with an
        A-RELEASE-RP), aborts or closes."""
        assert self._reassembler is not None, "no association yet"
        while True:
            pdu = self.recv_pdu(timeout)
            if isinstance(pdu, A_RELEASE_RQ):
                self.send_pdu(A_RELEASE_RP())
                return
            if not isinstance(pdu, P_DATA_TF):
                return
            for message in self._reassembler.feed(pdu):
                yield message, message_from_command(message.command)

    def close(self) -> None:
        self.stop.set()
        with contextlib.suppress(OSError):
            self.sock.close()


class RawClient(RawPeer):
    """`RawClient(host, port)`: a raw connection to a server."""

    def __init__(self, host: str, port: int, timeout: float = WAIT_S) -> None:
        super().__init__(socket.create_connection((host, port), timeout=timeout))

    def associate(self, rq: A_ASSOCIATE_RQ | None = None) -> A_ASSOCIATE_AC:
        """Send `rq` (default: `request()`), expect the A-ASSOCIATE-AC."""
        rq = rq or request()
        self.send_pdu(rq)
        ac: A_ASSOCIATE_AC = self.expect(A_ASSOCIATE_AC)
        proposed = {
            pc.context_id: uid_text(pc.abstract_syntax or "") for pc in rq.presentation_contexts
        }
        self.set_contexts(
            {
                pc.context_id: proposed[pc.context_id]
                for pc in ac.presentation_contexts
                if pc.result == 0
            }
        )
        self.max_pdu = ac.user_information.maximum_length or 0
        return ac

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --------------------------------------------------------------------------------------
# A server that runs a script


def accept_association(peer: RawPeer, max_pdu: int = 16384) -> A_ASSOCIATE_RQ:
    """Receive an A-ASSOCIATE-RQ and accept every context in its first transfer
    syntax, granting every role asked for; returns the RQ."""
    rq: A_ASSOCIATE_RQ = peer.expect(A_ASSOCIATE_RQ)
    answers = [
        PresentationContextACItem(pc.context_id, 0, pc.transfer_syntaxes[0])
        for pc in rq.presentation_contexts
    ]
    roles = [
        RoleSelectionSubItem(r.sop_class_uid, r.scu_role, r.scp_role)
        for r in rq.user_information.role_selections
    ]
    user = UserInformationItem(
        (MaximumLengthSubItem(max_pdu), ImplementationClassUIDSubItem("1.2.3.4"), *roles)
    )
    peer.send_pdu(
        A_ASSOCIATE_AC(
            rq.called_ae_title,
            rq.calling_ae_title,
            (ApplicationContextItem(DICOM_APPLICATION_CONTEXT), *answers, user),
        )
    )
    peer.set_contexts(
        {pc.context_id: uid_text(pc.abstract_syntax or "") for pc in rq.presentation_contexts}
    )
    peer.max_pdu = rq.user_information.maximum_length or 0
    return rq


Script = Callable[[RawPeer], None]


class RawServer:
    """Listens on a free loopback port; runs `script(peer)` for each connection, in a
    thread. `rcvbuf` makes the receive buffer small (for a peer that stops reading).
    The script's exceptions are kept in `errors`; `close()` ends every connection."""

    def __init__(self, script: Script, *, rcvbuf: int | None = None) -> None:
        self.script = script
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.listener.bind((HOST, 0))
        self.listener.listen(16)
        self.port: int = self.listener.getsockname()[1]
        self.peers: list[RawPeer] = []
        self.errors: list[BaseException] = []
        self.finished = 0
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._accepter = threading.Thread(target=self._accept, daemon=True)

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            peer = RawPeer(sock)
            thread = threading.Thread(target=self._run, args=(peer,), daemon=True)
            with self._lock:
                self.peers.append(peer)
                self._threads.append(thread)
            thread.start()

    def _run(self, peer: RawPeer) -> None:
        try:
            self.script(peer)
        except BaseException as exc:  # reported by the test through `errors`
            if not self._closed.is_set():
                self.errors.append(exc)
        finally:
            with self._lock:
                self.finished += 1

    def wait_for_connections(self, count: int = 1, timeout: float = WAIT_S) -> list[RawPeer]:
        wait_until(lambda: len(self.peers) >= count, timeout, f"{count} connections")
        return list(self.peers)

    def __enter__(self) -> RawServer:
        self._accepter.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
        if exc[0] is None:
            assert not self.errors, f"the raw server's script failed: {self.errors!r}"

    def close(self) -> None:
        self._closed.set()
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept() (Linux)
        self.listener.close()
        with self._lock:
            peers, threads = list(self.peers), list(self._threads)
        for peer in peers:
            with contextlib.suppress(OSError):
                peer.sock.shutdown(socket.SHUT_RDWR)
            peer.close()
        for thread in threads:
            thread.join(WAIT_S)
        self._accepter.join(WAIT_S)


def hang(peer: RawPeer) -> None:
    """Accept at TCP, then neither read nor write until the test ends."""
    peer.stop.wait()


def hang_after_accepting(peer: RawPeer) -> None:
    """Accept the association, then neither read nor write until the test ends."""
    accept_association(peer)
    peer.stop.wait()


def store_scp(peer: RawPeer) -> None:
    """A storage SCP: accept the association, answer every C-STORE-RQ with success."""
    accept_association(peer)
    for received, message in peer.messages(timeout=30.0):
        if isinstance(message, C_STORE_RQ):
            peer.send_message(store_response(message), context_id=received.context_id)


def store_response(request: C_STORE_RQ, status: int = 0) -> C_STORE_RSP:
    return C_STORE_RSP(
        message_id_being_responded_to=request.message_id,
        status=status,
        affected_sop_class_uid=request.affected_sop_class_uid,
        affected_sop_instance_uid=request.affected_sop_instance_uid,
    )


# --------------------------------------------------------------------------------------
# Our server under test, and what it must still do


def ct_instance(uid: str | None = None, pixels: int = 16, **attributes: Any) -> Dataset:
    """A small CT image; `pixels` is about its pixel data size in bytes."""
    ds = Dataset()
    ds.SOPClassUID = CT_IMAGE_STORAGE
    ds.SOPInstanceUID = uid or generate_uid()
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.PatientID = "RAW1"
    ds.PatientName = "Raw^Peer"
    ds.Modality = "CT"
    ds.InstanceNumber = 1
    columns = max(1, min(pixels // 2, 512))
    ds.Rows, ds.Columns = max(1, pixels // 2 // columns), columns
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.PixelData = b"\x01\x02" * (ds.Rows * ds.Columns)
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = EXPLICIT_LE
    return ds


class EndlessFind(ArchiveHandlers):
    """The archive's handlers, except that a C-FIND matches for ever: only a C-CANCEL
    (or the end of the association) stops it, so a cancel can never come too late."""

    def find(self, caller: Any, request: Any, identifier: Dataset) -> Iterator[Dataset]:
        return itertools.repeat(identifier)


@contextlib.contextmanager
def archive_server(
    root: Path,
    *,
    timeouts: Timeouts = SHORT,
    duplicate_policy: str = "replace",
    handlers: Callable[[Archive], Handlers] | None = None,
    index: str | None = None,
    **options: Any,
) -> Iterator[Provider]:
    """Our `Provider` serving `ArchiveHandlers` over a new archive at `root`, on a
    free loopback port, with short timeouts; AE title OURSCP. `index`: the archive's
    index (None: SQLite). `options` go to the Provider (max_associations,
    calling_ae_allowed...)."""
    archive = Archive(
        root, fsync=False, duplicate_policy=duplicate_policy, index=index, node="ourscp"
    )  # type: ignore[arg-type]
    made = handlers(archive) if handlers else ArchiveHandlers(archive)
    provider = Provider(made, ae_title="OURSCP", host=HOST, port=0, timeouts=timeouts, **options)
    provider.start()
    try:
        yield provider
    finally:
        provider.stop(WAIT_S)
        archive.close()


def connect(
    port: int, contexts: Sequence[tuple[str, Sequence[str]]] | None = None, **options: Any
) -> client.Association:
    """Our client's association to our server (verification and CT storage)."""
    proposed = [
        ProposedContext(a, tuple(ts))
        for a, ts in (
            contexts or [(VERIFICATION, (EXPLICIT_LE,)), (CT_IMAGE_STORAGE, (EXPLICIT_LE,))]
        )
    ]
    options.setdefault("called_ae", "OURSCP")
    options.setdefault("timeouts", SHORT)
    return client.connect(HOST, port, contexts=proposed, **options)


def echo_status(port: int) -> int:
    """The status of a C-ECHO on a new, normal association (0 when the server serves)."""
    with connect(port) as association:
        return association.echo().code


def files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


def serving_thread_gone(peer: RawPeer) -> bool:
    """Whether the server's thread for this connection has ended (dul.transport
    names it after the peer's address)."""
    return not [t for t in threading.enumerate() if t.name.endswith(f":{peer.local_port}")]


def with_sub_item(pdu: bytes, parent: ItemAt, raw_item: bytes) -> bytes:
    """`pdu` with `raw_item` appended inside the top-level item `parent`; the
    item-length and the PDU-length grow to match."""
    end = parent.offset + 4 + parent.length
    data = pdu[:end] + raw_item + pdu[end:]
    data = with_item_length(data, parent, parent.length + len(raw_item))
    return with_pdu_length(data, len(data) - 6)


@pytest.fixture(autouse=True)
def no_unexpected_exception(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Fails the test if our code logged an exception with its traceback (an
    unexpected exception caught at the top of a thread), in the test's set-up, its
    body, or the teardown so far (where the servers are stopped: this fixture,
    autouse, is torn down last)."""
    yield
    # `caplog.records` holds only the current phase's records (here the teardown's):
    # the body's are in get_records("call").
    records = [*caplog.get_records("setup"), *caplog.get_records("call"), *caplog.records]
    crashes = [r for r in records if r.exc_info and r.name.startswith(("dul", "dimse"))]
    assert not crashes, [f"{r.name}: {r.getMessage()}" for r in crashes]
