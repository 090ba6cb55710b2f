"""The peer fixtures work: each peer is exercised with the peers' own tools only.

If these fail, no test of ours that talks to a real peer can be trusted.
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file

from tests import peers
from tests.peers import Peer, dcmtk, findscu, run_dcmtk

CT_STUDY_UID = "1.3.6.1.4.1.5962.1.2.1.20040119072730.12322"
CT_SOP_INSTANCE_UID = "1.3.6.1.4.1.5962.1.1.1.1.1.20040119072730.12322"


def echo(peer: Peer) -> None:
    run_dcmtk("echoscu", "-aet", "ECHOSCU", "-aec", peer.ae_title, peer.host, str(peer.port))


def study_keys(study_uid: str = "") -> dict[str, str]:
    return {
        "QueryRetrieveLevel": "STUDY",
        "StudyInstanceUID": study_uid,
        "PatientName": "",
        "PatientID": "",
    }


# --- the helpers themselves


def test_dcmtk_resolves_to_the_debian_binary_not_pynetdicoms_script() -> None:
    for tool in ("storescp", "echoscu", "findscu", "movescu", "getscu", "storescu"):
        path = Path(dcmtk(tool))
        assert path.read_bytes()[:4] == b"\x7fELF", path


def test_free_port_is_not_listening() -> None:
    port = peers.free_port()
    assert not peers.port_accepts(peers.HOST, port)


def test_wait_for_port_gives_up_at_its_deadline() -> None:
    port = peers.free_port()
    start = time.monotonic()
    with pytest.raises(peers.PeerError, match="not within"):
        peers.wait_for_port(peers.HOST, port, deadline_s=0.2)
    assert time.monotonic() - start < 2


def test_a_peer_that_cannot_start_fails_fast_with_its_log(tmp_path: Path) -> None:
    port = peers.free_port()
    argv = [dcmtk("storescp"), "--no-such-option", str(port)]
    start = time.monotonic()
    with (
        pytest.raises(peers.PeerError, match=r"(?s)exited with status.*no-such-option"),
        peers.run_peer("storescp", argv, log_path=tmp_path / "log", port=port),
    ):
        pass
    assert time.monotonic() - start < 5


def test_a_peer_that_dies_during_the_test_is_reported(tmp_path: Path) -> None:
    with pytest.raises(peers.PeerError, match="during the test"):
        with peers.start_storescp(tmp_path) as scp:
            assert scp.process is not None
            scp.process.popen.send_signal(signal.SIGKILL)
            scp.process.popen.wait(timeout=10)


def test_a_peer_stopped_by_the_test_is_not_a_crash(tmp_path: Path) -> None:
    with peers.start_storescp(tmp_path) as scp:
        assert scp.process is not None
        scp.process.stop()
        assert not peers.port_accepts(scp.host, scp.port)


# --- DCMTK storescp


def test_echoscu_to_storescp(storescp: peers.StoreSCP) -> None:
    echo(storescp)


def test_storescu_to_storescp(storescp: peers.StoreSCP, ct_small: Path) -> None:
    run_dcmtk("storescu", "-aec", storescp.ae_title, storescp.host, str(storescp.port), ct_small)
    [received] = storescp.received_files()
    assert dcmread(received).SOPInstanceUID == CT_SOP_INSTANCE_UID


# --- DCMTK dcmqrscp


def test_echoscu_to_dcmqrscp(dcmqrscp: peers.QRSCP) -> None:
    echo(dcmqrscp)


def test_storescu_then_findscu_on_dcmqrscp(
    dcmqrscp: peers.QRSCP, ct_small: Path, tmp_path: Path
) -> None:
    assert findscu(dcmqrscp, tmp_path, study_keys()) == []
    dcmqrscp.load(ct_small)
    [found] = findscu(dcmqrscp, tmp_path, study_keys())
    assert found.StudyInstanceUID == CT_STUDY_UID
    assert str(found.PatientName) == "CompressedSamples^CT1"


def test_dcmqrscp_moves_to_its_destination(
    storescp: peers.StoreSCP, dcmqrscp_factory, ct_small: Path
) -> None:
    qr = dcmqrscp_factory(move_destinations=[storescp])
    qr.load(ct_small)
    run_dcmtk(
        "movescu", "-S", "-aec", qr.ae_title, "-aem", storescp.ae_title,
        "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={CT_STUDY_UID}",
        qr.host, str(qr.port),
    )  # fmt: skip
    [received] = storescp.received_files()
    assert dcmread(received).SOPInstanceUID == CT_SOP_INSTANCE_UID


def test_getscu_from_dcmqrscp(dcmqrscp: peers.QRSCP, ct_small: Path, tmp_path: Path) -> None:
    dcmqrscp.load(ct_small)
    run_dcmtk(
        "getscu", "-S", "-aec", dcmqrscp.ae_title, "-od", tmp_path,
        "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={CT_STUDY_UID}",
        dcmqrscp.host, str(dcmqrscp.port),
    )  # fmt: skip
    [received] = [p for p in tmp_path.iterdir() if p.name.startswith("CT.")]
    assert dcmread(received).SOPInstanceUID == CT_SOP_INSTANCE_UID


# --- Orthanc


def test_echoscu_to_orthanc(orthanc: peers.Orthanc) -> None:
    echo(orthanc)
    assert orthanc.rest("GET", "/system")["DicomAet"] == "ORTHANC"


def test_storescu_then_findscu_on_orthanc(
    orthanc: peers.Orthanc, ct_small: Path, tmp_path: Path
) -> None:
    run_dcmtk("storescu", "-aec", orthanc.ae_title, orthanc.host, str(orthanc.port), ct_small)
    assert orthanc.sop_instance_uids() == {CT_SOP_INSTANCE_UID}
    [found] = findscu(orthanc, tmp_path, study_keys(CT_STUDY_UID))
    assert found.StudyInstanceUID == CT_STUDY_UID


def test_upload_to_orthanc_then_findscu(orthanc: peers.Orthanc, tmp_path: Path) -> None:
    mr = get_testdata_file("MR_small.dcm")
    assert isinstance(mr, str)
    orthanc.upload(mr)
    orthanc.upload(mr)  # AlreadyStored is fine
    [found] = findscu(orthanc, tmp_path, study_keys())
    assert found.StudyInstanceUID == dcmread(mr).StudyInstanceUID


def test_orthanc_moves_to_its_destination(
    storescp: peers.StoreSCP, orthanc_factory, ct_small: Path
) -> None:
    server = orthanc_factory(move_destinations=[storescp])
    server.upload(ct_small)
    run_dcmtk(
        "movescu", "-S", "-aec", server.ae_title, "-aem", storescp.ae_title,
        "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={CT_STUDY_UID}",
        server.host, str(server.port),
    )  # fmt: skip
    [received] = storescp.received_files()  # Orthanc's C-MOVE is synchronous
    assert dcmread(received).SOPInstanceUID == CT_SOP_INSTANCE_UID


def test_getscu_from_orthanc(orthanc: peers.Orthanc, ct_small: Path, tmp_path: Path) -> None:
    orthanc.upload(ct_small)
    run_dcmtk(
        "getscu", "-S", "-aec", orthanc.ae_title, "-od", tmp_path,
        "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={CT_STUDY_UID}",
        orthanc.host, str(orthanc.port),
    )  # fmt: skip
    [received] = [p for p in tmp_path.iterdir() if p.name.startswith("CT.")]
    assert dcmread(received).SOPInstanceUID == CT_SOP_INSTANCE_UID


# --- pynetdicom


def test_pynetdicom_echo_to_pynetdicom_scp(pynetdicom_scp: peers.PynetdicomSCP) -> None:
    from pynetdicom import AE
    from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

    ae = AE(ae_title="PYNETSCU")
    ae.add_requested_context(Verification)
    assoc = ae.associate(pynetdicom_scp.host, pynetdicom_scp.port, ae_title="PYNETDICOM")
    assert assoc.is_established
    try:
        assert assoc.send_c_echo().Status == 0x0000
    finally:
        assoc.release()


def test_storescu_to_pynetdicom_scp(pynetdicom_scp: peers.PynetdicomSCP, ct_small: Path) -> None:
    run_dcmtk(
        "storescu", "-aet", "STORESCU", "-aec", pynetdicom_scp.ae_title,
        pynetdicom_scp.host, str(pynetdicom_scp.port), ct_small,
    )  # fmt: skip
    [dataset] = pynetdicom_scp.wait_for_datasets(1)
    assert dataset.SOPInstanceUID == CT_SOP_INSTANCE_UID
    assert pynetdicom_scp.calling_ae_titles == ["STORESCU"]


def test_run_dcmtk_reports_the_tools_output(tmp_path: Path) -> None:
    port = peers.free_port()
    with pytest.raises(peers.PeerError, match="Connection refused"):
        run_dcmtk("echoscu", peers.HOST, str(port))
    result = run_dcmtk("echoscu", peers.HOST, str(port), check=False)
    assert isinstance(result, subprocess.CompletedProcess)
    assert result.returncode != 0
