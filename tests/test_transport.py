"""Our requestor against our Server over real loopback sockets (dul/transport.py).

Every server listens on a port the OS chose; every wait is a poll with a deadline or a
blocking call with a timeout. Timeouts under test are short (0.3-0.5 s) and each test
checks both that the thing happened and that it did not happen too early.
"""

from __future__ import annotations

import dataclasses
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from dimse import client
from dimse.datasets import UNCOMPRESSED
from dimse.files import read_part10_info
from dimse.fragments import fragment_message
from dimse.messages import C_STORE_RQ, C_STORE_RSP, message_from_command
from dimse.models import VERIFICATION
from dimse.reassembly import Reassembler
from dimse.scp import Handlers, Provider
from dul.connection import Timeouts
from dul.drivers.server import Server
from dul.drivers.sockets import Channel, request_association
from dul.errors import (
    AssociationAborted,
    AssociationRejected,
    AssociationReleased,
    ConnectionFailed,
    DulTimeout,
)
from dul.fsm import State
from dul.negotiation import AcceptorPolicy, ProposedContext, build_request, negotiate
from dul.pdu import A_ABORT, A_ASSOCIATE_RQ, P_DATA_TF, encode_pdu
from tests import peers
from tests.peers import HOST, wait_until

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
SHORT = Timeouts(connect=5.0, acse=5.0, dimse=5.0, idle=5.0, artim=5.0)
WAIT_S = 10.0
A_ABORT_BYTES = encode_pdu(A_ABORT(source=0, reason=0))


# --- a server whose handler the test chooses


@dataclass
class Served:
    """What the server's handler saw, one entry per association."""

    channels: list[Channel] = field(default_factory=list)
    nodelay: list[int] = field(default_factory=list)
    pdata_lengths: list[int] = field(default_factory=list)
    ended: list[BaseException | None] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def ended_count(self) -> int:
        with self.lock:
            return len(self.ended)


Handler = Callable[[Channel, Served], None]


def echo_pdata(channel: Channel, served: Served) -> None:
    """Send every P-DATA-TF back as it came, until the peer releases."""
    while True:
        pdu = channel.receive(WAIT_S)
        channel.send_pdata(encode_pdu(pdu))


def hold(channel: Channel, served: Served) -> None:
    """Wait without sending anything until the association ends."""
    channel.receive(None)


def policy(**options: object) -> AcceptorPolicy:
    return AcceptorPolicy(
        "OURSCP",
        {VERIFICATION: UNCOMPRESSED, CT_IMAGE_STORAGE: UNCOMPRESSED},
        **options,  # type: ignore[arg-type]
    )


@pytest.fixture
def make_server() -> Iterator[Callable[..., tuple[Server, Served]]]:
    servers: list[Server] = []

    def make(
        handler: Handler = echo_pdata,
        *,
        host: str = HOST,
        acceptor: AcceptorPolicy | None = None,
        timeouts: Timeouts = SHORT,
        **options: Any,
    ) -> tuple[Server, Served]:
        served = Served()
        chosen = acceptor or policy()

        def handle(channel: Channel) -> None:
            assert channel.sock is not None
            with served.lock:
                served.channels.append(channel)
                served.nodelay.append(
                    channel.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
                )
            outcome: BaseException | None = None
            try:
                handler(channel, served)
            except BaseException as exc:
                outcome = exc
            finally:
                with served.lock:
                    served.ended.append(outcome)

        server = Server(
            host, 0, lambda rq: negotiate(rq, chosen), handle, timeouts=timeouts, **options
        )
        servers.append(server.start())
        return server, served

    yield make
    for server in servers:
        server.shutdown(5.0)


def verification_request(
    calling_ae: str = "OURSCU", called_ae: str = "OURSCP", **options: object
) -> A_ASSOCIATE_RQ:
    return build_request(
        calling_ae,
        called_ae,
        [ProposedContext(VERIFICATION, UNCOMPRESSED)],
        **options,  # type: ignore[arg-type]
    )


def state_of(channel: Channel) -> State:
    """The machine's state, read through a call (a type checker would pin it down)."""
    return channel.machine.state


def socket_closed(channel: Channel) -> bool:
    return channel.sock is None


def one_pdata(channel: Channel, payload: bytes) -> bytes:
    [context_id] = channel.contexts
    [pdu] = fragment_message(context_id, payload, None, channel.peer_max_pdata_length)
    return pdu


def connection_threads(port: int) -> list[threading.Thread]:
    """The server's threads serving the connection from our local `port`."""
    return [t for t in threading.enumerate() if t.name == f"dul-{HOST}:{port}"]


def have_ipv6_loopback() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


# --- an association over IPv4 and IPv6


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"], ids=["ipv4", "ipv6"])
def test_association_carries_pdata_both_ways_and_releases(
    host: str, make_server: Callable[..., tuple[Server, Served]]
) -> None:
    if host == "::1" and not have_ipv6_loopback():
        peers.missing("this machine has no IPv6 loopback (::1)")
    server, served = make_server(host=host)
    channel = request_association(host, server.port, verification_request(), timeouts=SHORT)
    assert state_of(channel) is State.Sta6
    assert channel.sock is not None
    assert channel.sock.family == (socket.AF_INET6 if ":" in host else socket.AF_INET)

    sent = one_pdata(channel, b"\x00\x00\x00\x00\x04\x00\x00\x00\x00\x00\x00\x00")
    channel.send_pdata(sent)
    back = channel.receive(WAIT_S)
    assert encode_pdu(back) == sent
    channel.release()

    assert state_of(channel) is State.Sta1
    assert socket_closed(channel)
    wait_until(lambda: served.ended_count() == 1, WAIT_S, "the server's handler ends")
    [server_channel] = served.channels
    assert isinstance(served.ended[0], AssociationReleased)
    assert state_of(server_channel) is State.Sta1
    # An IPv6 peer is written in brackets, [::1]:port, so that its port stands apart.
    assert server_channel.peer.startswith(f"[{host}]:" if ":" in host else f"{host}:")
    assert server.active_associations == 0


def test_tcp_nodelay_is_set_on_both_sides(
    make_server: Callable[..., tuple[Server, Served]],
) -> None:
    server, served = make_server()
    with request_association(HOST, server.port, verification_request(), timeouts=SHORT) as channel:
        assert channel.sock is not None
        assert channel.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        wait_until(lambda: len(served.nodelay) == 1, WAIT_S, "the server serves it")
    assert served.nodelay[0] != 0


# --- failures to connect


def test_connection_refused_names_host_and_port() -> None:
    port = peers.free_port()
    with pytest.raises(ConnectionFailed) as caught:
        request_association(HOST, port, verification_request(), timeouts=SHORT)
    assert f"{HOST}:{port}" in str(caught.value)
    assert "refused" in str(caught.value).lower()


def test_a_listener_that_never_answers_times_out_after_the_acse_timeout() -> None:
    timeouts = dataclasses.replace(SHORT, acse=0.5)
    with socket.create_server((HOST, 0)) as listener:
        port = listener.getsockname()[1]
        start = time.monotonic()
        with pytest.raises(DulTimeout, match=re.escape(f"{HOST}:{port}") + r".*0\.5 s"):
            request_association(HOST, port, verification_request(), timeouts=timeouts)
        elapsed = time.monotonic() - start
        assert 0.5 <= elapsed < 3.0, elapsed

        # What the silent listener got: the A-ASSOCIATE-RQ, our A-ABORT, then the close.
        conn, _ = listener.accept()
        with conn:
            conn.settimeout(WAIT_S)
            received = bytearray()
            while chunk := conn.recv(65536):
                received += chunk
    assert received[0] == 0x01, "an A-ASSOCIATE-RQ first"
    assert received.endswith(A_ABORT_BYTES)


# --- a silent connection to our server


def test_server_closes_a_silent_connection_when_artim_expires(
    make_server: Callable[..., tuple[Server, Served]],
) -> None:
    server, served = make_server(timeouts=dataclasses.replace(SHORT, artim=0.5))
    with socket.create_connection((HOST, server.port), timeout=WAIT_S) as sock:
        start = time.monotonic()
        local_port = sock.getsockname()[1]
        wait_until(lambda: server.waiting_connections == 1, WAIT_S, "the server holds it")
        assert not connection_threads(local_port), "no thread before the A-ASSOCIATE-RQ"
        assert sock.recv(100) == b"", "the server closes without sending anything"
        elapsed = time.monotonic() - start
    assert 0.45 <= elapsed < 3.0, elapsed
    assert server.waiting_connections == 0
    assert served.channels == [], "no association was ever handed to the handler"
    assert server.active_associations == 0


# --- rejections


def test_over_the_association_limit_is_rejected_transient_local_limit(
    make_server: Callable[..., tuple[Server, Served]],
) -> None:
    server, _ = make_server(hold, max_associations=1)
    first = request_association(HOST, server.port, verification_request(), timeouts=SHORT)
    wait_until(lambda: server.active_associations == 1, WAIT_S, "the first one is counted")

    with pytest.raises(AssociationRejected) as caught:
        request_association(HOST, server.port, verification_request(), timeouts=SHORT)
    rejection = caught.value
    assert (rejection.result, rejection.source, rejection.reason) == (2, 3, 2)
    assert "local-limit-exceeded" in str(rejection)
    assert "rejected-transient" in str(rejection)
    assert state_of(first) is State.Sta6, "the first association is untouched"

    first.release()
    wait_until(lambda: server.active_associations == 0, WAIT_S, "the first one is counted out")
    with request_association(HOST, server.port, verification_request(), timeouts=SHORT):
        pass  # there is room again


@pytest.mark.parametrize(
    ("acceptor", "calling", "called", "expected", "words"),
    [
        (
            policy(calling_ae_allowed=lambda ae: ae == "FRIEND"),
            "STRANGER",
            "OURSCP",
            (1, 1, 3),
            "calling-AE-title-not-recognized",
        ),
        (policy(check_called_ae=True), "FRIEND", "SOMEONEELSE", (1, 1, 7), "called-AE-title"),
    ],
    ids=["calling-ae-not-allowed", "called-ae-wrong"],
)
def test_ae_title_rejections(
    make_server: Callable[..., tuple[Server, Served]],
    acceptor: AcceptorPolicy,
    calling: str,
    called: str,
    expected: tuple[int, int, int],
    words: str,
) -> None:
    server, served = make_server(acceptor=acceptor)
    with pytest.raises(AssociationRejected) as caught:
        request_association(
            HOST, server.port, verification_request(calling, called), timeouts=SHORT
        )
    rejection = caught.value
    assert (rejection.result, rejection.source, rejection.reason) == expected
    assert words in str(rejection)
    # The same server accepts the right titles.
    with request_association(
        HOST, server.port, verification_request("FRIEND", "OURSCP"), timeouts=SHORT
    ):
        pass
    wait_until(lambda: served.ended_count() == 1, WAIT_S, "the accepted one is served")
    assert len(served.channels) == 1, "the rejected association never reached the handler"


def test_protocol_version_2_is_rejected(
    make_server: Callable[..., tuple[Server, Served]],
) -> None:
    server, _ = make_server()
    request = dataclasses.replace(verification_request(), protocol_version=2)
    with pytest.raises(AssociationRejected) as caught:
        request_association(HOST, server.port, request, timeouts=SHORT)
    rejection = caught.value
    assert (rejection.result, rejection.source, rejection.reason) == (1, 2, 2)
    assert "protocol-version-not-supported" in str(rejection)


# --- the peer's maximum PDU length


def store_and_record(channel: Channel, served: Served) -> None:
    """A C-STORE SCP that records the PDU-length of every P-DATA-TF received."""
    reassembler = Reassembler(channel.contexts)
    while True:
        pdu = channel.receive(WAIT_S)
        with served.lock:
            served.pdata_lengths.append(sum(6 + len(pdv.data) for pdv in pdu.pdvs))
        for message in reassembler.feed(pdu):
            request = message_from_command(message.command)
            assert isinstance(request, C_STORE_RQ)
            response = C_STORE_RSP(
                message_id_being_responded_to=request.message_id,
                status=0x0000,
                affected_sop_class_uid=request.affected_sop_class_uid,
                affected_sop_instance_uid=request.affected_sop_instance_uid,
            )
            for out in fragment_message(
                message.context_id, response.encode(), None, channel.peer_max_pdata_length
            ):
                channel.send_pdata(out)


def test_the_acceptors_maximum_pdu_length_is_honoured(
    make_server: Callable[..., tuple[Server, Served]], ct_small: Path
) -> None:
    server, served = make_server(
        store_and_record, acceptor=policy(max_pdata_length=4096), max_pdata_length=4096
    )
    info = read_part10_info(ct_small)
    contexts = [ProposedContext(CT_IMAGE_STORAGE, (info.transfer_syntax,))]
    with client.connect(
        HOST, server.port, called_ae="OURSCP", contexts=contexts, timeouts=SHORT, max_pdu=65536
    ) as association:
        assert association.engine.max_pdu == 4096
        result = association.store(ct_small)
        assert result.status.is_success
    wait_until(lambda: served.ended_count() == 1, WAIT_S, "the server's handler ends")
    lengths = served.pdata_lengths
    assert len(lengths) >= info.dataset_length // 4090 + 1
    assert max(lengths) == 4096, "fragments fill the peer's maximum exactly"
    assert all(length <= 4096 for length in lengths)
    assert isinstance(served.ended[0], AssociationReleased), "not aborted for an oversized PDU"


# --- service-layer timeouts


def test_an_idle_association_is_aborted_by_the_server() -> None:
    timeouts = dataclasses.replace(SHORT, idle=0.5)
    with Provider(Handlers(), ae_title="OURSCP", host=HOST, port=0, timeouts=timeouts) as provider:
        channel = request_association(HOST, provider.port, verification_request(), timeouts=SHORT)
        start = time.monotonic()
        with pytest.raises(AssociationAborted) as caught:
            channel.receive(WAIT_S)
        elapsed = time.monotonic() - start
        assert 0.45 <= elapsed < 3.0, elapsed
        assert caught.value.source == 0, "an A-ABORT from the server's service user"
        assert state_of(channel) is State.Sta1
        wait_until(
            lambda: provider.server.active_associations == 0, WAIT_S, "the server counts it out"
        )


def test_receive_timeout_raises_and_aborts(
    make_server: Callable[..., tuple[Server, Served]],
) -> None:
    server, served = make_server(hold)
    channel = request_association(HOST, server.port, verification_request(), timeouts=SHORT)
    start = time.monotonic()
    with pytest.raises(DulTimeout, match=r"0\.3 s"):
        channel.receive(0.3)
    elapsed = time.monotonic() - start
    assert 0.3 <= elapsed < 3.0, elapsed
    assert state_of(channel) is State.Sta1
    assert socket_closed(channel)

    wait_until(lambda: served.ended_count() == 1, WAIT_S, "the server's handler ends")
    ended = served.ended[0]
    assert isinstance(ended, AssociationAborted), ended
    assert ended.source == 0, "the server received our A-ABORT (source: service user)"
    assert state_of(served.channels[0]) is State.Sta1


def test_channel_receive_returns_pdata_sent_by_the_server(
    make_server: Callable[..., tuple[Server, Served]],
) -> None:
    """The server can speak first (a P-DATA from the acceptor reaches the requestor)."""

    def speak_first(channel: Channel, served: Served) -> None:
        [context_id] = channel.contexts
        [pdu] = fragment_message(context_id, b"\x01\x02", None, channel.peer_max_pdata_length)
        channel.send_pdata(pdu)
        channel.receive(WAIT_S)

    server, served = make_server(speak_first)
    with request_association(HOST, server.port, verification_request(), timeouts=SHORT) as channel:
        pdu = channel.receive(WAIT_S)
        assert isinstance(pdu, P_DATA_TF)
        assert [pdv.data for pdv in pdu.pdvs] == [b"\x01\x02"]
    wait_until(lambda: served.ended_count() == 1, WAIT_S, "the server's handler ends")
    assert isinstance(served.ended[0], AssociationReleased)


def test_a_run_of_buffers_survives_partial_writes() -> None:
    """A run (a list of buffers, as `stream_runs` makes) is written whole and in order
    though the socket takes it in pieces that end mid-buffer: the reader is slow and
    the send buffer small."""
    from dul.drivers.sockets import send_all as _send

    writer, reader = socket.socketpair()
    writer.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    parts: list[bytes | bytearray | memoryview] = []
    for index in range(1500):  # more buffers than one sendmsg takes (1,024)
        size = (index * 7919) % 5000
        parts.append(bytes([index % 251]) * size if index % 3 else memoryview(bytearray(size)))
    expected = b"".join(bytes(part) for part in parts)
    received = bytearray()

    def read_all() -> None:
        while chunk := reader.recv(3000):
            received.extend(chunk)

    thread = threading.Thread(target=read_all)
    thread.start()
    writer.settimeout(10.0)
    _send(writer, parts)
    writer.close()
    thread.join(10.0)
    reader.close()
    assert bytes(received) == expected
