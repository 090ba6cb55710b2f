"""What a person sees of `dicomscu --store` (issue 13): one summary line that adds up,
always; the same as JSON with --json; a Ctrl-C that releases, reports and exits 130;
and a folder of folders that says -r would look inside.

The interruption runs dicomscu as a process, as a person would, and sends it SIGINT
once it has stored some files: it must release the association (storescp logs the
release), print the summary with the count stored before the interruption, and exit
130, with no traceback.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pydicom

from cli.dicomscu import main
from tests import peers
from tests.dicomscu_support import REPOSITORY, make_instances

pytest_plugins = ["tests.ourserver"]

DATA = Path(pydicom.data.__file__).parent / "test_files"


def at(peer: peers.Peer) -> list[str]:
    return ["--call", peer.ae_title, peer.host, str(peer.port)]


def summary_line(err: str) -> str:
    (line,) = [line for line in err.splitlines() if " stored" in line and " of " in line]
    return line


def test_the_summary_adds_up_over_pydicoms_test_files(storescp, capsys) -> None:
    code = main(["--store", "-r", *at(storescp), str(DATA)])
    err = capsys.readouterr().err
    line = summary_line(err)
    # "N of T stored (...); F failed: ...; S skipped: ..."
    stored, total = (int(x) for x in line.split(": ", 1)[1].split(" stored")[0].split(" of "))
    failed = int(line.split("; ")[1].split(" failed")[0]) if " failed: " in line else 0
    skipped = int(line.split("skipped")[0].rsplit("; ", 1)[1]) if " skipped: " in line else 0
    assert stored + failed + skipped == total, line
    assert "DICOMDIR" in line and "unreadable" in line
    assert code == 1  # some files cannot be sent
    assert storescp.received_files()  # (files sharing a SOP Instance UID overwrite)


def test_json_gives_the_same_summary_as_an_object(storescp, tmp_path: Path, capsys) -> None:
    instances = make_instances(tmp_path, 2)
    (tmp_path / "junk.txt").write_text("not DICOM")
    code = main(["--store", "--json", *at(storescp), str(tmp_path)])
    out, err = capsys.readouterr()
    summary = json.loads(out)
    assert summary["total"] == 3 and summary["stored"] == 2
    assert summary["failed"] == {"unreadable": 1} and summary["skipped"] == {}
    assert summary_line(err) == "dicomscu: 2 of 3 stored; 1 failed: 1 unreadable"
    assert code == 1
    assert len(instances) == 2


def test_a_folder_of_folders_without_r_says_r_would_look_inside(tmp_path: Path, capsys) -> None:
    make_instances(tmp_path / "top" / "series1", 1)
    make_instances(tmp_path / "top" / "series2", 1)
    code = main(["--store", "--call", "X", "127.0.0.1", "9", str(tmp_path / "top")])
    err = capsys.readouterr().err
    assert code == 1
    assert "holds 2 folder(s): -r would look inside them" in err, err


def test_ctrl_c_releases_reports_and_exits_130(storescp_factory, tmp_path: Path) -> None:
    scp = storescp_factory(extra_args=["-v"])
    assert scp.process is not None
    make_instances(tmp_path / "in", 300)
    env = {**os.environ, "PYTHONPATH": str(REPOSITORY)}
    process = subprocess.Popen(
        [sys.executable, "-m", "cli", "--store", *at(scp), str(tmp_path / "in")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        peers.wait_until(lambda: len(scp.received_files()) >= 5, 30, "some files stored")
        process.send_signal(signal.SIGINT)
        _out, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 130, err
    assert "Traceback" not in err
    line = summary_line(err)
    stored = int(line.split(": ", 1)[1].split(" of ")[0])
    assert 5 <= stored < 300, line
    assert f"{300 - stored} skipped: {300 - stored} interrupted" in line, line
    assert len(scp.received_files()) == stored
    peers.wait_until(
        lambda: "Association Release" in scp.process.log_text(), 10, "storescp sees the release"
    )


def test_find_into_a_pipe_closed_early_ends_quietly(dicomscp_factory, tmp_path: Path) -> None:
    """`dicomscu --find ... | head -1`: no Broken pipe message, the status of a tool
    ended by SIGPIPE (141), and the association released (the server logs it)."""
    server = dicomscp_factory("--no-fsync")
    make_instances(tmp_path / "in", 40)
    assert main(["--store", *at(server), str(tmp_path / "in")]) == 0
    env = {**os.environ, "PYTHONPATH": str(REPOSITORY)}
    mark = server.mark()
    find = subprocess.Popen(
        [sys.executable, "-m", "cli", "--find", "--studyroot", "--image", "-k", "8,18",
         *at(server)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )  # fmt: skip
    assert find.stdout is not None
    find.stdout.readline()  # one line, then the reader goes, as head -1 does
    find.stdout.close()
    _, err = find.communicate(timeout=60)
    assert find.returncode == 141, err
    assert b"Broken pipe" not in err and b"Traceback" not in err, err
    server.wait_for_log("released", 10, mark)
