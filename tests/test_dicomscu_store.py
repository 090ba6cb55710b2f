"""`dicomscu --store`: files and directories to real storage SCPs, one association,
and every way a file can fail to arrive."""

from __future__ import annotations

import contextlib
import fcntl
import os
import pty
import select
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset

from cli.dicomscu import main
from tests import peers
from tests.dicomscu_support import REPOSITORY, make_instances, run_dicomscu

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
IMPLICIT_VR = "1.2.840.10008.1.2"
EXPLICIT_VR = "1.2.840.10008.1.2.1"
MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"


def received_uids(scp: peers.StoreSCP) -> set[str]:
    return {str(dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in scp.received_files()}


def test_files_are_stored_over_one_association(storescp_factory, tmp_path: Path, capsys) -> None:
    scp = storescp_factory(extra_args=["-v"])
    assert scp.process is not None
    instances = make_instances(tmp_path / "in", 3)
    argv = ["--store", "--call", scp.ae_title, scp.host, str(scp.port)]
    assert main([*argv, *[str(i.path) for i in instances]]) == 0
    assert capsys.readouterr() == ("", "dicomscu: 3 of 3 stored\n")  # the summary only
    assert received_uids(scp) == {i.sop_instance_uid for i in instances}
    # the fixture's readiness probe is "Received" too, but never "Acknowledged"
    assert scp.process.log_text().count("Association Acknowledged") == 1


def test_a_directory_sends_the_files_in_it_and_r_recurses(storescp, tmp_path: Path) -> None:
    top = make_instances(tmp_path / "study", 2, patient_id="TOP")
    below = make_instances(tmp_path / "study" / "series2", 2, patient_id="BELOW")
    argv = ["--store", "--call", "STORESCP", storescp.host, str(storescp.port)]
    assert main([*argv, str(tmp_path / "study")]) == 0
    assert received_uids(storescp) == {i.sop_instance_uid for i in top}
    assert main([*argv, "-r", str(tmp_path / "study")]) == 0
    assert received_uids(storescp) == {i.sop_instance_uid for i in top + below}


def test_input_option_and_positional_files(storescp, tmp_path: Path) -> None:
    a, b = make_instances(tmp_path, 2)
    argv = ["--call", "STORESCP", "--store"]
    assert (
        main([*argv, "-i", str(a.path), "--input", str(b.path), storescp.host, str(storescp.port)])
        == 0
    )
    assert received_uids(storescp) == {a.sop_instance_uid, b.sop_instance_uid}


def test_positional_files_replace_input_files(storescp, tmp_path: Path) -> None:
    (a,) = make_instances(tmp_path, 1)
    argv = ["--store", "--call", "STORESCP", "-i", str(tmp_path / "not-there.dcm")]
    assert main([*argv, storescp.host, str(storescp.port), str(a.path)]) == 0
    assert received_uids(storescp) == {a.sop_instance_uid}


def test_an_unreadable_file_is_reported_the_rest_sent_and_the_exit_status_is_1(
    storescp, tmp_path: Path, capsys
) -> None:
    first, second = make_instances(tmp_path, 2)
    junk = tmp_path / "notes.txt"
    junk.write_text("not DICOM")
    missing = tmp_path / "missing.dcm"
    argv = ["--store", "--call", "STORESCP", storescp.host, str(storescp.port)]
    assert main([*argv, str(first.path), str(junk), str(missing), str(second.path)]) == 1
    err = capsys.readouterr().err
    assert f"{junk}: no DICM prefix" in err
    assert f"{missing}: no such file or directory" in err
    assert "dicomscu: 2 of 4 stored; 2 failed: 1 not found, 1 unreadable" in err
    assert received_uids(storescp) == {first.sop_instance_uid, second.sop_instance_uid}


def test_a_failure_status_means_exit_1_at_the_end(pynetdicom_scp, tmp_path: Path, capsys) -> None:
    pynetdicom_scp.status = 0xA700
    instances = make_instances(tmp_path, 2)
    argv = ["--store", "--call", "PYNETDICOM", pynetdicom_scp.host, str(pynetdicom_scp.port)]
    assert main([*argv, *[str(i.path) for i in instances]]) == 1
    err = capsys.readouterr().err
    assert err.count("C-STORE failed: A700H Failure: Refused: Out of Resources") == 2
    assert len(pynetdicom_scp.wait_for_datasets(2)) == 2  # both were sent


def test_a_warning_status_is_reported_and_does_not_fail(
    pynetdicom_scp, tmp_path: Path, capsys
) -> None:
    pynetdicom_scp.status = 0xB000
    (instance,) = make_instances(tmp_path, 1)
    argv = ["--store", "--call", "PYNETDICOM", pynetdicom_scp.host, str(pynetdicom_scp.port)]
    assert main([*argv, str(instance.path)]) == 0
    err = capsys.readouterr().err
    assert "stored with a warning: B000H Warning: Coercion of Data Elements" in err


def test_store_sends_priority_low_and_our_calling_ae(pynetdicom_scp, tmp_path: Path) -> None:
    (instance,) = make_instances(tmp_path, 1)
    argv = ["--store", "--aetitle", "SENDER", "--call", "PYNETDICOM"]
    assert main([*argv, pynetdicom_scp.host, str(pynetdicom_scp.port), str(instance.path)]) == 0
    (dataset,) = pynetdicom_scp.wait_for_datasets(1)
    assert dataset.SOPInstanceUID == instance.sop_instance_uid
    assert pynetdicom_scp.calling_ae_titles == ["SENDER"]


@contextlib.contextmanager
def ct_only_scp(transfer_syntaxes: list[str]) -> Iterator[tuple[peers.Peer, list[Dataset]]]:
    """A pynetdicom storage SCP for CT Image Storage only, in `transfer_syntaxes`;
    yields (where, data sets received)."""
    peers.require_pynetdicom()
    from pynetdicom import AE, evt

    stored: list[Dataset] = []

    def on_store(event: Any) -> int:
        stored.append(event.dataset)
        return 0

    ae = AE(ae_title="CTONLY")
    ae.add_supported_context(CT_IMAGE_STORAGE, transfer_syntaxes)
    handlers: list[Any] = [(evt.EVT_C_STORE, on_store)]
    server = ae.start_server(("127.0.0.1", 0), block=False, evt_handlers=handlers)
    assert server is not None
    try:
        yield peers.Peer("127.0.0.1", server.server_address[1], "CTONLY"), stored
    finally:
        server.shutdown()


def test_a_refused_presentation_context_fails_that_file_only(tmp_path: Path, capsys) -> None:
    (ct,) = make_instances(tmp_path / "ct", 1)
    (mr,) = make_instances(tmp_path / "mr", 1, source="MR_small.dcm")
    with ct_only_scp([IMPLICIT_VR, EXPLICIT_VR]) as (scp, stored):
        argv = ["--store", "--call", "CTONLY", scp.host, str(scp.port), str(mr.path), str(ct.path)]
        assert main(argv) == 1
    err = capsys.readouterr().err
    assert f"{mr.path}: not sent:" in err
    assert f"did not accept SOP class {MR_IMAGE_STORAGE}" in err
    assert [d.SOPInstanceUID for d in stored] == [ct.sop_instance_uid]


def test_a_file_is_converted_to_an_uncompressed_syntax_the_server_accepts(tmp_path: Path) -> None:
    (ct,) = make_instances(tmp_path, 1)  # Explicit VR Little Endian on disk
    with ct_only_scp([IMPLICIT_VR]) as (scp, stored):
        assert main(["--store", "--call", "CTONLY", scp.host, str(scp.port), str(ct.path)]) == 0
    (dataset,) = stored
    assert dataset.SOPInstanceUID == ct.sop_instance_uid
    assert dataset.PixelData == dcmread(ct.path).PixelData


def test_a_compressed_file_keeps_its_transfer_syntax(storescp, tmp_path: Path) -> None:
    source = get_testdata_file("JPEG2000.dcm")
    assert source is not None
    argv = ["--store", "--call", "STORESCP", storescp.host, str(storescp.port), source]
    assert main(argv) == 0
    (received,) = storescp.received_files()
    assert (
        dcmread(received).file_meta.TransferSyntaxUID == dcmread(source).file_meta.TransferSyntaxUID
    )


def test_store_into_orthanc(orthanc, tmp_path: Path) -> None:
    instances = make_instances(tmp_path, 2)
    argv = ["--store", "--call", "ORTHANC", orthanc.host, str(orthanc.port), str(tmp_path)]
    assert main(argv) == 0
    assert orthanc.sop_instance_uids() == {i.sop_instance_uid for i in instances}


def test_store_into_dcmqrscp_then_find_it_there(dcmqrscp, tmp_path: Path) -> None:
    (instance,) = make_instances(tmp_path, 1, patient_id="STORED-1")
    argv = ["--store", "--call", "QRSCP", dcmqrscp.host, str(dcmqrscp.port), str(instance.path)]
    assert main(argv) == 0
    keys = {"QueryRetrieveLevel": "STUDY", "PatientID": "STORED-1", "StudyInstanceUID": ""}
    matches = peers.findscu(dcmqrscp, tmp_path, keys)
    assert [m.StudyInstanceUID for m in matches] == [instance.study_uid]


def test_a_dicomdir_is_skipped_with_a_note(storescp, tmp_path: Path, capsys) -> None:
    dicomdir = get_testdata_file("DICOMDIR")
    (instance,) = make_instances(tmp_path, 1)
    assert isinstance(dicomdir, str)
    argv = ["--store", "--call", "STORESCP", storescp.host, str(storescp.port)]
    assert main([*argv, dicomdir, str(instance.path)]) == 0
    assert "is a DICOMDIR" in capsys.readouterr().err
    assert received_uids(storescp) == {instance.sop_instance_uid}


def test_store_as_a_command_with_verbose(storescp, tmp_path: Path) -> None:
    instances = make_instances(tmp_path, 2)
    result = run_dicomscu(
        "--store", "-V", "--call", "STORESCP", storescp.host, storescp.port, tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert "dicomscu: 2 of 2 stored" in result.stderr
    assert received_uids(storescp) == {i.sop_instance_uid for i in instances}


def test_a_progress_bar_is_drawn_when_stderr_is_a_terminal(storescp, tmp_path: Path) -> None:
    make_instances(tmp_path, 3)
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # 24x100
    environment = dict(os.environ, PYTHONPATH=str(REPOSITORY))
    argv = [sys.executable, "-m", "cli", "--store", "--call", "STORESCP"]
    process = subprocess.Popen(
        [*argv, storescp.host, str(storescp.port), str(tmp_path)],
        cwd=REPOSITORY,
        env=environment,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=slave,
    )
    os.close(slave)
    output = b""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            break
        try:
            chunk = os.read(master, 4096)
        except OSError:  # the terminal closed: the process has ended
            break
        if not chunk:
            break
        output += chunk
    os.close(master)
    assert process.wait(timeout=60) == 0
    assert b"C-STORE" in output and b"3/3" in output
