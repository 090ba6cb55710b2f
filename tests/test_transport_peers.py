"""An association with DCMTK and with pynetdicom opens, carries a P-DATA and releases,
in both roles, at the upper-layer level (`dul.transport`).

What travels is a C-ECHO built by hand from `dimse.messages` and cut into P-DATA-TF
PDUs by `dimse.fragments.fragment_message`; nothing above `dul` is used to carry it.
Each test checks that the association opened, that one P-DATA went each way, that the
release completed, and that both sides ended cleanly: our machine is in Sta1 with its
socket closed, and the peer says so (its exit status, its log or its events).

Release collision (both sides sending A-RELEASE-RQ at once) cannot be provoked with
these peers: none of them releases as acceptor. It is tested sans-I/O, with two
machines wired back to back (tests/test_machine.py).
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from dimse.commands import decode_command
from dimse.fragments import fragment_message
from dimse.message_base import DimseMessage
from dimse.messages import C_ECHO_RQ, C_ECHO_RSP, VERIFICATION_SOP_CLASS, message_from_command
from dul.connection import Timeouts
from dul.drivers.server import Server
from dul.drivers.sockets import Channel, request_association
from dul.errors import AssociationReleased
from dul.fsm import State
from dul.negotiation import AcceptorPolicy, ProposedContext, build_request, negotiate
from dul.pdu import A_ASSOCIATE_RQ
from tests import peers
from tests.peers import HOST, run_dcmtk, wait_until

IMPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2"
EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"
SHORT = Timeouts(connect=5.0, acse=5.0, dimse=5.0, idle=5.0, artim=5.0)
WAIT_S = 10.0


def state_of(channel: Channel) -> State:
    """The machine's state, read through a call (a type checker would pin it down)."""
    return channel.machine.state


# --- a C-ECHO by hand, at the upper-layer level


def send_message(channel: Channel, context_id: int, message: DimseMessage) -> int:
    """Send a message without data set; returns how many P-DATA-TF PDUs it took."""
    pdus = list(fragment_message(context_id, message.encode(), None, channel.peer_max_pdata_length))
    for pdu in pdus:
        channel.send_pdata(pdu)
    return len(pdus)


def receive_message(channel: Channel, timeout: float = WAIT_S) -> tuple[int, DimseMessage]:
    """The next command-only message: (presentation context ID, message)."""
    parts: list[bytes] = []
    while True:
        pdu = channel.receive(timeout)
        for pdv in pdu.pdvs:
            assert pdv.is_command, "a C-ECHO has no data set"
            parts.append(pdv.data)
            if pdv.is_last:
                return pdv.context_id, message_from_command(decode_command(b"".join(parts)))


def echo_request(calling_ae: str, called_ae: str) -> A_ASSOCIATE_RQ:
    return build_request(
        calling_ae,
        called_ae,
        [
            ProposedContext(
                VERIFICATION_SOP_CLASS, (EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN)
            )
        ],
    )


def echo_as_requestor(host: str, port: int, called_ae: str) -> Channel:
    """Open, C-ECHO (one P-DATA each way), release; returns the released channel."""
    channel = request_association(host, port, echo_request("OURSCU", called_ae), timeouts=SHORT)
    assert state_of(channel) is State.Sta6
    [context] = channel.contexts.values()
    assert context.accepted, context
    assert send_message(channel, context.context_id, C_ECHO_RQ(message_id=7)) == 1
    context_id, response = receive_message(channel)
    assert context_id == context.context_id
    assert isinstance(response, C_ECHO_RSP)
    assert response.message_id_being_responded_to == 7
    assert response.status == 0x0000
    channel.release()
    assert state_of(channel) is State.Sta1
    assert channel.sock is None
    return channel


# --- our Server as an echo SCP, at the upper-layer level


@dataclass
class EchoRecord:
    channels: list[Channel] = field(default_factory=list)
    requests: list[C_ECHO_RQ] = field(default_factory=list)
    released: int = 0
    errors: list[BaseException] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)


def echo_server(record: EchoRecord) -> Server:
    policy = AcceptorPolicy(
        "OURSCP",
        {VERIFICATION_SOP_CLASS: (EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN)},
        check_called_ae=True,
    )

    def handle(channel: Channel) -> None:
        record.channels.append(channel)
        try:
            while True:
                context_id, request = receive_message(channel)
                assert isinstance(request, C_ECHO_RQ), request
                record.requests.append(request)
                response = C_ECHO_RSP(
                    message_id_being_responded_to=request.message_id,
                    status=0x0000,
                    affected_sop_class_uid=VERIFICATION_SOP_CLASS,
                )
                send_message(channel, context_id, response)
        except AssociationReleased:
            record.released += 1
        except BaseException as exc:
            record.errors.append(exc)
            raise
        finally:
            record.done.set()

    return Server(HOST, 0, lambda rq: negotiate(rq, policy), handle, timeouts=SHORT)


def check_served_and_released(record: EchoRecord, server: Server) -> None:
    assert record.done.wait(WAIT_S), "the association was not served"
    assert not record.errors, record.errors
    [channel] = record.channels
    assert len(record.requests) == 1
    assert record.released == 1
    wait_until(lambda: server.active_associations == 0, WAIT_S, "association counted out")
    assert state_of(channel) is State.Sta1
    assert channel.sock is None


# --- our requestor


@pytest.mark.peers
def test_our_requestor_to_dcmtk_storescp(storescp_factory: Callable[..., peers.StoreSCP]) -> None:
    scp = storescp_factory(extra_args=["-v"])
    echo_as_requestor(scp.host, scp.port, scp.ae_title)
    assert scp.process is not None
    process = scp.process

    def logged(text: str) -> Callable[[], bool]:
        return lambda: text in process.log_text()

    wait_until(logged("Received Echo Request"), WAIT_S, "storescp logs the C-ECHO", process)
    wait_until(logged("Association Release"), WAIT_S, "storescp logs the release", process)
    assert "Abort" not in process.log_text()
    assert not process.exited(), "storescp died"


def test_our_requestor_to_pynetdicom_scp(pynetdicom_scp: peers.PynetdicomSCP) -> None:
    from pynetdicom import evt

    events: list[str] = []

    def on_echo(event: Any) -> int:
        events.append("echo")
        return 0x0000

    server = pynetdicom_scp.server
    server.bind(evt.EVT_C_ECHO, on_echo)
    server.bind(evt.EVT_RELEASED, lambda event: events.append("released"))
    server.bind(evt.EVT_ABORTED, lambda event: events.append("aborted"))

    echo_as_requestor(pynetdicom_scp.host, pynetdicom_scp.port, pynetdicom_scp.ae_title)

    wait_until(lambda: "released" in events, WAIT_S, "pynetdicom sees the release")
    wait_until(lambda: not server.active_associations, WAIT_S, "pynetdicom's association ends")
    assert events == ["echo", "released"]


# --- our Server as acceptor


@pytest.mark.peers
def test_dcmtk_echoscu_to_our_server() -> None:
    record = EchoRecord()
    with echo_server(record) as server:
        result = run_dcmtk(
            "echoscu", "-v", "-aet", "ECHOSCU", "-aec", "OURSCP", HOST, str(server.port)
        )  # raises unless its exit status is 0
        check_served_and_released(record, server)
    assert "Received Echo Response (Success)" in result.stdout + result.stderr
    assert record.channels[0].request.calling_ae == "ECHOSCU"


PYNETDICOM_ECHO_SCU = """
import sys
from pynetdicom import AE
from pynetdicom.sop_class import Verification

host, port, called = sys.argv[1], int(sys.argv[2]), sys.argv[3]
ae = AE(ae_title="PYNETSCU")
ae.add_requested_context(Verification)
ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 10
assoc = ae.associate(host, port, ae_title=called)
if not assoc.is_established:
    print("association not established")
    sys.exit(2)
status = assoc.send_c_echo()
print("status", None if status is None else hex(status.Status))
assoc.release()
clean = assoc.is_released and not assoc.is_aborted
sys.exit(0 if status is not None and status.Status == 0 and clean else 3)
"""


def test_pynetdicom_scu_to_our_server() -> None:
    peers.require_pynetdicom()
    record = EchoRecord()
    with echo_server(record) as server:
        result = subprocess.run(
            [sys.executable, "-c", PYNETDICOM_ECHO_SCU, HOST, str(server.port), "OURSCP"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        check_served_and_released(record, server)
    assert record.channels[0].request.calling_ae == "PYNETSCU"


@pytest.mark.skip(
    reason="release collision cannot be provoked with DCMTK or pynetdicom (neither releases "
    "as acceptor); it is tested sans-I/O with two machines back to back"
)
def test_release_collision_with_a_real_peer() -> None:
    raise AssertionError("not reachable with these peers")
