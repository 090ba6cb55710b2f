"""Where --get and --move put what they bring (issue 13): files with the permissions
the umask gives, as other tools make them, and the -o folder made only when an
instance arrives."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from cli.dicomscu import main
from tests import peers
from tests.dicomscu_support import make_instances

pytest_plugins = ["tests.ourserver"]


def at(peer: peers.Peer) -> list[str]:
    return ["--call", peer.ae_title, peer.host, str(peer.port)]


def test_received_files_follow_the_umask(dicomscp_factory, tmp_path: Path) -> None:
    server = dicomscp_factory("--no-fsync")
    (instance,) = make_instances(tmp_path / "in", 1)
    assert main(["--store", *at(server), str(instance.path)]) == 0
    old = os.umask(0o022)
    try:
        out = tmp_path / "out"
        keys = ["--studyroot", "-k", f"20,d={instance.study_uid}"]
        assert main(["--get", *keys, "-o", str(out), *at(server)]) == 0
    finally:
        os.umask(old)
    (received,) = out.iterdir()
    assert stat.S_IMODE(received.stat().st_mode) == 0o644


def test_the_output_folder_is_made_only_when_an_instance_arrives(
    dicomscp_factory, tmp_path: Path
) -> None:
    server = dicomscp_factory("--no-fsync")
    out = tmp_path / "nothing" / "here"
    keys = ["--studyroot", "-k", "20,d=1.2.3.4.5.6.7"]  # no such study
    assert main(["--get", *keys, "-o", str(out), *at(server)]) == 0
    assert not out.exists() and not out.parent.exists()
    port = peers.free_port()
    mover = dicomscp_factory("--no-fsync", "--destination", f"GDCMSCU=127.0.0.1:{port}", name="m")
    assert main(["--move", *keys, "--port-scp", str(port), "-o", str(out), *at(mover)]) == 0
    assert not out.exists()


def test_the_servers_reason_for_a_refusal_is_printed(
    dicomscp_factory, tmp_path: Path, capsys
) -> None:
    """dicomscp refuses an instance it cannot file, and says why in the Error Comment;
    dicomscu prints it (it printed a bare A900H Data Set does not match SOP Class)."""
    from pydicom import dcmread

    server = dicomscp_factory("--no-fsync")
    (instance,) = make_instances(tmp_path / "in", 1)
    dataset = dcmread(instance.path)
    del dataset.StudyInstanceUID
    dataset.save_as(instance.path)
    assert main(["--store", *at(server), str(instance.path)]) == 1
    err = capsys.readouterr().err
    assert "C000H" in err and "no Study Instance UID (0020,000D)" in err, err
