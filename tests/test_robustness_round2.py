"""Hostile peers, round 2 (issue 12): ROBUSTNESS 47-55, each as it was seen.

Server: descriptors exhausted (47), idle connections before association and the
limits (48), an identifier of any size (49). Client: malformed response identifiers
(50, 51), a DIMSE timeout that unrelated messages reset (52), an unreadable folder
(53), a full output folder (54), a hostile server's huge identifier (55, the client
side of 49).
"""

from __future__ import annotations

import os
import resource
import socket
import struct
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from pydicom.dataset import Dataset

from cli.dicomscu import main
from dimse import client
from dimse.messages import C_ECHO_RQ, C_ECHO_RSP, C_FIND_RQ, C_FIND_RSP
from dimse.models import Root
from dimse.reassembly import DEFAULT_MAX_IDENTIFIER
from dul import A_RELEASE_RP, A_RELEASE_RQ
from dul.errors import AssociationError, AssociationRejected
from dul.negotiation import ProposedContext
from tests.ourserver import DicomSCP
from tests.peers import HOST, wait_until
from tests.rawpeer import (
    IMPLICIT_LE,
    SHORT,
    STUDY_ROOT_FIND,
    VERIFICATION,
    RawPeer,
    RawServer,
    accept_association,
    archive_server,
    ct_instance,
    echo_status,
)

pytest_plugins = ["tests.ourserver"]

REPOSITORY = Path(__file__).resolve().parent.parent


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def connect_idle(port: int, count: int) -> list[socket.socket]:
    """`count` TCP connections that say nothing."""
    return [socket.create_connection((HOST, port), timeout=5) for _ in range(count)]


# -- 47. Descriptors exhausted -----------------------------------------------------------


def _limit_descriptors() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (96, 96))


def _cpu_of_server(server: DicomSCP) -> float:
    """CPU seconds of dicomscp: the process and its workers."""
    pid = server.pid
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return sum(cpu_seconds(p) for p in [pid, *map(int, children)])


@pytest.mark.parametrize(("workers", "connections"), [(1, 120), (2, 250)])
def test_47_out_of_descriptors_the_server_backs_off_logs_once_and_recovers(
    dicomscp_factory: Callable[..., DicomSCP], workers: int, connections: int
) -> None:
    """dicomscp under a descriptor limit of 96 (each process), with more idle
    connections than it can hold: it logs the exhaustion once (once per worker), uses
    little CPU, and serves again when they go. One process pauses its accept loop; a
    worker whose descriptors are all taken has the connections handed to it closed."""
    server = dicomscp_factory("--no-fsync", "--workers", str(workers), preexec=_limit_descriptors)
    sockets = connect_idle(server.port, connections)  # more than the server can hold open
    server.wait_for_log("out of file descriptors", 10)
    before = _cpu_of_server(server)
    # A window of measure, not a wait for something: what the loop costs meanwhile.
    threading.Event().wait(2.0)
    used = _cpu_of_server(server) - before
    assert used < 0.2, f"{used:.2f} s of CPU in 2 s with descriptors exhausted"
    assert 1 <= server.log_text().count("out of file descriptors") <= workers
    for sock in sockets:
        sock.close()
    wait_until(lambda: echo_status(server.port) == 0, 15, "an echo once descriptors are free")


# -- 48. Idle connections before the A-ASSOCIATE-RQ; the limits ---------------------------


def test_48_idle_connections_cost_little_and_their_memory_comes_back(
    dicomscp_factory: Callable[..., DicomSCP],
) -> None:
    server = dicomscp_factory("--no-fsync")
    start = rss_kib(server.pid)
    sockets = connect_idle(server.port, 250)  # under max_pending: all kept
    wait_until(lambda: echo_status(server.port) == 0, 10, "an echo among them")
    held = rss_kib(server.pid) - start
    assert held < 250 * 32, f"{held} KiB for 250 idle connections"
    for sock in sockets:
        sock.close()
    # Closed connections are noticed at once (end of stream): memory back near the start.
    wait_until(lambda: rss_kib(server.pid) - start < 20 << 10, 10, "RSS back within 20 MiB")


def test_48_past_max_pending_the_longest_waiting_is_closed(tmp_path: Path) -> None:
    # ARTIM far off: only the limit can close them within the test.
    timeouts = type(SHORT)(connect=2.0, acse=2.0, dimse=2.0, idle=60.0, artim=60.0)
    with archive_server(tmp_path, max_pending=8, timeouts=timeouts) as provider:
        first = connect_idle(provider.port, 8)
        wait_until(lambda: provider.server.waiting_connections == 8, 5, "eight waiting")
        later = connect_idle(provider.port, 4)
        # the four oldest make room for the four newest
        for sock in first[:4]:
            sock.settimeout(5)
            assert sock.recv(1) == b""
        # The last of the newest may still be in the listen queue when the oldest go.
        wait_until(lambda: provider.server.waiting_connections == 8, 5, "eight waiting again")
        assert echo_status(provider.port) == 0
        for sock in first + later:
            sock.close()


def test_48_one_caller_holds_at_most_max_per_caller(tmp_path: Path) -> None:
    contexts = [ProposedContext(VERIFICATION, (IMPLICIT_LE,))]
    with archive_server(tmp_path, max_per_caller=2) as provider:

        def open_as(ae: str) -> client.Association:
            return client.connect(HOST, provider.port, calling_ae=ae, called_ae="OURSCP",
                                  contexts=contexts, timeouts=SHORT)  # fmt: skip

        held = [open_as("GREEDY"), open_as("GREEDY")]
        with pytest.raises(AssociationRejected) as caught:
            open_as("GREEDY")
        assert (caught.value.result, caught.value.source, caught.value.reason) == (2, 3, 2)
        other = open_as("POLITE")  # another caller still gets in
        assert other.echo().is_success
        other.release()
        for association in held:
            association.release()


def test_48_an_association_that_says_nothing_goes_at_the_silent_timeout(tmp_path: Path) -> None:
    timeouts = type(SHORT)(connect=2.0, acse=2.0, dimse=2.0, idle=60.0, artim=0.5, silent=0.5)
    contexts = [ProposedContext(VERIFICATION, (IMPLICIT_LE,))]
    with archive_server(tmp_path, timeouts=timeouts) as provider:
        association = client.connect(HOST, provider.port, called_ae="OURSCP",
                                     contexts=contexts, timeouts=SHORT)  # fmt: skip
        wait_until(lambda: provider.server.active_associations == 0, 10, "the silent one let go")
        with pytest.raises(AssociationError):
            association.echo()  # the server aborted it


# -- 49. A request identifier of any size --------------------------------------------------


def test_49_an_identifier_over_the_limit_is_refused_and_not_spooled(tmp_path: Path) -> None:
    big = Dataset()
    big.QueryRetrieveLevel = "STUDY"
    big.PatientName = "A" * (DEFAULT_MAX_IDENTIFIER + 1024)
    spool = tmp_path / "spool"
    spool.mkdir()
    with archive_server(tmp_path / "archive", spool_dir=spool) as provider:
        contexts = client.query_contexts(Root.STUDY, "find")
        with client.connect(HOST, provider.port, called_ae="OURSCP", contexts=contexts,
                            timeouts=SHORT) as association:  # fmt: skip
            (response,) = list(association.find(big, Root.STUDY))
        assert response.status.code == 0xA700, response.status
        assert "identifier over" in (response.status.error_comment or "")
        assert list(spool.iterdir()) == []
        assert echo_status(provider.port) == 0


# -- a raw server answering a C-FIND with `identifier` bytes --------------------------------


def _find_server(identifier: bytes, *, syntax: str = IMPLICIT_LE) -> Callable[[RawPeer], None]:
    def script(peer: RawPeer) -> None:
        accept_association(peer)
        _received, request = peer.recv_message()
        assert isinstance(request, C_FIND_RQ)
        pending = C_FIND_RSP(message_id_being_responded_to=request.message_id, status=0xFF00,
                             affected_sop_class_uid=STUDY_ROOT_FIND)  # fmt: skip
        peer.send_message(pending, identifier)
        final = C_FIND_RSP(message_id_being_responded_to=request.message_id, status=0x0000,
                           affected_sop_class_uid=STUDY_ROOT_FIND)  # fmt: skip
        peer.send_message(final)
        peer.expect(A_RELEASE_RQ)
        peer.send_pdu(A_RELEASE_RP())

    return script


def _implicit(tag: int, value: bytes, length: int | None = None) -> bytes:
    n = len(value) if length is None else length
    return struct.pack("<HHI", tag >> 16, tag & 0xFFFF, n) + value


def _find(server: RawServer, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["--find", "--studyroot", "-k", "10,10", "--call", "RAW", HOST, str(server.port)])
    out = capsys.readouterr()
    return code, out.err


MALFORMED = {
    # 50: a sequence whose item tag is bogus
    "bogus item tag": _implicit(0x00081115, struct.pack("<HHI", 0x1234, 0x5678, 0)),
    # 51: a PN declared 0x1000 bytes with 10 there
    "value past the end": _implicit(0x00100010, b"Short^Name", 0x1000),
    "three bytes": b"\x08\x00\x05",
    "UID of 0x7FFFFFFF bytes": _implicit(0x0020000D, b"1.2", 0x7FFFFFFF),
    "undefined length on a PN": _implicit(0x00100010, b"Doe^J ", 0xFFFFFFFF),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_50_51_a_malformed_response_identifier_is_one_line_and_exit_1(
    case: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with RawServer(_find_server(MALFORMED[case])) as server:
        code, err = _find(server, capsys)
    assert code == 1, err
    assert "Traceback" not in err and "UserWarning" not in err
    lines = [line for line in err.splitlines() if "C-FIND response 1" in line]
    assert len(lines) == 1 and "cannot be read" in lines[0], err


# -- 52. The DIMSE timeout bounds the wait for our response -------------------------------


def _wrong_echo_responses(peer: RawPeer) -> None:
    accept_association(peer)
    _, request = peer.recv_message()
    assert isinstance(request, C_ECHO_RQ)
    for n in range(60):  # answers to messages we never sent, one a second
        peer.send_message(
            C_ECHO_RSP(message_id_being_responded_to=request.message_id + 1 + n, status=0)
        )
        if peer.closed_within(1.0):
            return


def test_52_responses_to_other_messages_end_the_association_at_once(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with RawServer(_wrong_echo_responses) as server:
        code = main(["--echo", "--dimse-timeout", "5", "--call", "RAW", HOST, str(server.port)])
    err = capsys.readouterr().err
    assert code == 1
    assert "none of ours" in err, err


def _silent_after_echo(peer: RawPeer) -> None:
    accept_association(peer)
    peer.recv_message()
    peer.closed_within(30.0)


def test_52_no_response_within_the_dimse_timeout(capsys: pytest.CaptureFixture[str]) -> None:
    with RawServer(_silent_after_echo) as server:
        code = main(["--echo", "--dimse-timeout", "1", "--call", "RAW", HOST, str(server.port)])
    err = capsys.readouterr().err
    assert code == 1
    assert "within 1.0 s" in err and "DIMSE timeout" in err, err


# -- 53. An unreadable folder -----------------------------------------------------------


def test_53_a_folder_that_cannot_be_read_is_said_and_fails_the_run(tmp_path: Path) -> None:
    top = Path(tempfile.mkdtemp(prefix="dicomscu-53-"))
    try:
        top.chmod(0o755)
        (top / "open").mkdir(mode=0o755)
        (top / "open" / "a.dcm").write_bytes(b"x")
        closed = top / "closed"
        closed.mkdir(mode=0o755)
        (closed / "b.dcm").write_bytes(b"x")
        closed.chmod(0o000)
        code = ("import sys\nfrom pathlib import Path\nfrom cli.dicomscu.store import collect_files\n"
                "files, problems = collect_files([Path(sys.argv[1])], True)\n"
                "print([p.name for p in files]); print(problems)")  # fmt: skip
        # Root reads any folder: the walk then runs without the capabilities that let
        # it (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH), as util-linux's setpriv allows.
        prefix = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search"]
        result = subprocess.run(
            [*(prefix if os.geteuid() == 0 else []), sys.executable, "-c", code, str(top)],
            capture_output=True, text=True, timeout=60,
            env={**os.environ, "PYTHONPATH": str(REPOSITORY)},
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        names, problems = result.stdout.splitlines()
        assert names == "['a.dcm']"
        assert "closed" in problems and "Permission denied" in problems
    finally:
        (top / "closed").chmod(0o755)
        subprocess.run(["rm", "-rf", str(top)], check=False)


# -- 54. A full output folder -----------------------------------------------------------


def test_54_a_full_output_folder_is_said_as_such(
    dicomscp_factory: Callable[..., DicomSCP], small_disk: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    server = dicomscp_factory("--no-fsync")
    big = ct_instance(pixels=3 << 20)  # 3 MiB: more than the 1 MiB folder holds
    path = tmp_path / "big.dcm"
    big.save_as(path, enforce_file_format=True)
    assert main(["--store", "--call", server.ae_title, HOST, str(server.port), str(path)]) == 0
    capsys.readouterr()
    keys = ["--studyroot", "-k", f"20,d={big.StudyInstanceUID}", "--call", server.ae_title]
    code = main(["--get", *keys, "-o", str(small_disk), HOST, str(server.port)])
    err = capsys.readouterr().err
    assert code == 1
    assert "No space left on device" in err and big.SOPInstanceUID in err, err


# -- 55. A hostile server's identifier of any size (the client side of 49) -----------------


def test_55_the_client_keeps_no_identifier_over_its_limit(
    capsys: pytest.CaptureFixture[str],
) -> None:
    huge = _implicit(0x00100010, b"A" * (DEFAULT_MAX_IDENTIFIER + 2))
    with RawServer(_find_server(huge)) as server:
        code, err = _find(server, capsys)
    assert code == 1
    assert "over the" in err and "C-FIND response 1" in err, err


def test_55_the_client_limit_is_configurable(capsys: pytest.CaptureFixture[str]) -> None:
    """`--max-identifier`: an identifier of 300 bytes is kept by default and refused
    under a limit of 200; 0 lifts the limit."""
    name = _implicit(0x00100010, b"A" * 300)
    for limit, refused in ((None, False), ("200", True), ("0", False)):
        extra = [] if limit is None else ["--max-identifier", limit]
        with RawServer(_find_server(name)) as server:
            argv = ["--find", "--studyroot", "-k", "10,10", "--call", "RAW", *extra]
            code = main([*argv, HOST, str(server.port)])
        err = capsys.readouterr().err
        assert (code, "over the" in err) == ((1, True) if refused else (0, False)), (limit, err)
