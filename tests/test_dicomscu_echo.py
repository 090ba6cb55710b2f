"""`dicomscu --echo` against real servers, and what it says when the server is not there,
refuses the association, or does not answer."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from cli.dicomscu import main
from tests import peers
from tests.dicomscu_support import run_dicomscu


@pytest.mark.parametrize("server", ["storescp", "dcmqrscp", "orthanc", "pynetdicom_scp"])
def test_echo_is_silent_on_success(server: str, request: pytest.FixtureRequest, capsys) -> None:
    peer: peers.Peer = request.getfixturevalue(server)
    assert main(["--call", peer.ae_title, peer.host, str(peer.port)]) == 0
    assert capsys.readouterr() == ("", "")


def test_echo_says_more_with_verbose(storescp: peers.StoreSCP, capsys) -> None:
    assert main(["--echo", "-V", "--call", "STORESCP", storescp.host, str(storescp.port)]) == 0
    out, err = capsys.readouterr()
    assert out == ""
    assert "C-ECHO to" in err and "succeeded" in err


def test_echo_as_a_command(storescp: peers.StoreSCP) -> None:
    result = run_dicomscu("--echo", "--call", "STORESCP", storescp.host, storescp.port)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_the_calling_ae_title_is_sent(pynetdicom_scp_factory) -> None:
    from pynetdicom import evt

    scp = pynetdicom_scp_factory()
    titles: list[str] = []

    def on_echo(event) -> int:
        titles.append(event.assoc.requestor.ae_title)
        return 0

    scp.server.bind(evt.EVT_C_ECHO, on_echo)
    assert main(["--aetitle", "ME-HERE", "--call", scp.ae_title, scp.host, str(scp.port)]) == 0
    assert titles == ["ME-HERE"]


def test_debug_shows_every_pdu_and_state_transition(storescp: peers.StoreSCP, capsys) -> None:
    assert main(["-D", "--call", "STORESCP", storescp.host, str(storescp.port)]) == 0
    err = capsys.readouterr().err
    assert "A-ASSOCIATE-RQ" in err and "A-RELEASE-RP" in err
    assert "Sta1" in err and "Evt" in err and "Sta6" in err


def test_connection_refused(capsys) -> None:
    port = peers.free_port()
    assert main(["127.0.0.1", str(port)]) == 1
    err = capsys.readouterr().err
    assert f"cannot connect to 127.0.0.1:{port}" in err
    assert "refused" in err.lower()
    assert "DICOM server is running" in err


def test_association_rejected_says_why(dcmqrscp: peers.QRSCP, capsys) -> None:
    assert main(["--call", "NOT-QRSCP", dcmqrscp.host, str(dcmqrscp.port)]) == 1
    err = capsys.readouterr().err
    assert "refused the association" in err
    assert "called-AE-title-not-recognized" in err
    assert "(--call)" in err


def test_a_server_that_never_answers_times_out(capsys) -> None:
    # A socket that listens and says nothing: the TCP connection opens, no A-ASSOCIATE-AC comes.
    with socket.create_server(("127.0.0.1", 0)) as silent:
        port = silent.getsockname()[1]
        status = main(["--acse-timeout", "0.5", "127.0.0.1", str(port)])
    assert status == 1
    err = capsys.readouterr().err
    assert "did not answer" in err and "--timeout" in err


def test_echo_refused_by_a_server_without_verification(tmp_path: Path, capsys) -> None:
    peers.require_pynetdicom()
    from pynetdicom import AE

    ae = AE(ae_title="NOECHO")
    ae.add_supported_context("1.2.840.10008.5.1.4.1.1.2")  # CT Image Storage only
    server = ae.start_server(("127.0.0.1", 0), block=False)
    assert server is not None
    try:
        port = server.server_address[1]
        assert main(["--call", "NOECHO", "127.0.0.1", str(port)]) == 1
    finally:
        server.shutdown()
    err = capsys.readouterr().err
    assert "does not accept the Verification service (C-ECHO)" in err
