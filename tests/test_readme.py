"""The README's examples, run as a reader would run them (issue 13): none ends in a
traceback or a raw warning.

Each fenced block of README.md is found by its first line and run with the reader's
names replaced by a real server on loopback: `pacs 104` becomes our dicomscp on a free
port, `11112` and `11113` free ports, `/data/study` and `a.dcm` files made here.
Blocks that are not run here, and where they are: the first two commands (test_demo.py
and CI run them), the benchmark (test_bench_smoke.py), the TOML configuration
(test_dicomscp_config.py reads it).
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from pydicom import dcmread

from tests import peers
from tests.certs import make_pki
from tests.dicomscu_support import REPOSITORY, make_instances, run_dicomscu
from tests.ourserver import DicomSCP, environment

pytest_plugins = ["tests.ourserver"]

README = (REPOSITORY / "README.md").read_text(encoding="utf-8")
RAW = ("Traceback", "UserWarning", "DeprecationWarning")


def block(first_line_start: str) -> str:
    """The fenced block whose first line starts with `first_line_start`."""
    for match in re.finditer(r"```(\w+)\n(.*?)```", README, re.DOTALL):
        if match[2].startswith(first_line_start):
            return match[2]
    raise AssertionError(f"no README block starting {first_line_start!r}")


def commands(text: str) -> list[str]:
    """The command lines of a shell block, comments removed."""
    return [line.split("  #")[0].strip() for line in text.splitlines() if line.strip()]


def clean(output: str) -> None:
    for word in RAW:
        assert word not in output, output


def test_the_readme_shows_no_traceback_and_no_raw_warning() -> None:
    for word in RAW:
        assert word not in README


def test_the_library_client_example(dicomscp_factory, storescp, tmp_path: Path) -> None:
    server = dicomscp_factory(
        "--no-fsync", "--destination", f"STORESCP={storescp.host}:{storescp.port}"
    )
    for name, instance in zip(
        ("a.dcm", "b.dcm"), make_instances(tmp_path / "made", 2, study_uid="1.2.3.4"), strict=True
    ):
        instance.path.rename(tmp_path / name)
    code = block("from pydicom import Dataset").replace("11112", str(server.port))
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=environment(), capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    clean(result.stdout + result.stderr)
    assert "0000H Success" in result.stdout
    assert "a.dcm Success" in result.stdout and "b.dcm Success" in result.stdout
    assert len(storescp.received_files()) == 2  # the C-MOVE
    assert len(list((tmp_path / "out").iterdir())) == 2  # the C-GET


def test_the_asyncio_example(tmp_path: Path) -> None:
    for name, instance in zip(
        ("a.dcm", "b.dcm"), make_instances(tmp_path / "made", 2), strict=True
    ):
        instance.path.rename(tmp_path / name)
    code = block("import asyncio").replace("11114", str(peers.free_port()))
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=environment(), capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    clean(result.stdout + result.stderr)
    assert "['Success', 'Success'] 2" in result.stdout


def test_the_library_server_example_stops_on_ctrl_c(tmp_path: Path) -> None:
    port = peers.free_port()
    code = block("from dimse.scp import").replace("11113", str(port))
    process = subprocess.Popen(
        [sys.executable, "-c", code], cwd=tmp_path, env=environment(),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        peers.wait_for_port(peers.HOST, port, 30)
        instance = make_instances(tmp_path / "in", 1)[0]
        result = run_dicomscu("--store", "--call", "PRINTER", peers.HOST, port, instance.path)
        assert result.returncode == 0, result.stderr
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 0, err
    clean(out + err)
    assert instance.sop_instance_uid in out  # Printer printed what it got


def test_the_dicomscu_examples(dicomscp_factory, tmp_path: Path) -> None:
    port_scp = peers.free_port()
    server: DicomSCP = dicomscp_factory(
        "--no-fsync", "--destination", f"GDCMSCU=127.0.0.1:{port_scp}"
    )
    study = make_instances(tmp_path / "study", 2, study_uid="1.2.3", patient_name="Doe^John")
    make_instances(tmp_path / "study" / "more", 1, study_uid="1.2.3", patient_name="Doe^John")
    lines = commands(block("dicomscu --echo pacs 104"))
    assert len(lines) == 7
    for line in lines:
        line = line.replace("--call PACS", "--call DICOMSCP").replace(
            "/data/study", str(tmp_path / "study")
        )
        line = line.replace("pacs 104", f"127.0.0.1 {server.port}").replace("11113", str(port_scp))
        argv = [part.strip('"') for part in line.split()[1:]]
        result = run_dicomscu(*argv, cwd=tmp_path)
        assert result.returncode == 0, (line, result.stderr)
        clean(result.stdout + result.stderr)
    assert len(list((tmp_path / "out").iterdir())) == len(study) + 1


def test_the_dicomscp_example_starts_and_stops_cleanly(tmp_path: Path) -> None:
    (line,) = [c for c in commands(block("dicomscp [--aetitle")) if "[" not in c]
    argv = line.split()[1:]
    argv[-1] = "0"  # the port: a free one
    (tmp_path / "worklist").mkdir()
    process = subprocess.Popen(
        [sys.executable, "-m", "cli.dicomscp", "--host", "127.0.0.1", *argv], cwd=tmp_path,
        env=environment(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    try:
        started = process.stdout.readline()
        assert "listening" in started, started
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 0, rest
    clean(started + rest)


def test_the_tls_examples(tmp_path: Path, dicomscp_factory: Callable[..., DicomSCP]) -> None:
    pki = make_pki(tmp_path / "pki")
    lines = commands(block("dicomscp --tls-cert server.pem"))
    names = {
        "server.pem": pki.server_cert, "server.key": pki.server_key, "ca.pem": pki.ca,
        "me.pem": pki.client_cert, "me.key": pki.client_key,
    }  # fmt: skip

    def files(text: str) -> str:
        for name, path in names.items():
            text = text.replace(name, str(path))
        return text

    server_argv = files(lines[0]).split()[1:-1]
    server = dicomscp_factory("--no-fsync", *server_argv)
    for line in lines[1:]:
        env = {}
        if line.startswith("DICOMSCU_PASSWORD="):
            assignment, line = line.split(" ", 1)
            env["DICOMSCU_PASSWORD"] = assignment.split("=", 1)[1]
        line = files(line).replace("pacs 2762", f"{server.host} {server.port}")
        argv = line.split()[1:]
        if argv[-1] == "pacs":  # the last one names no port: TLS's 2762
            argv[-1:] = ["--tls-ca", str(pki.ca), server.host, str(server.port)]
        result = run_dicomscu(*argv, env=env, cwd=tmp_path)
        clean(result.stdout + result.stderr)
        if "--identity-response" in line:  # dicomscp has no [users] here: not confirmed
            assert "without confirming the user identity" in result.stderr, result.stderr
        else:
            assert result.returncode == 0, (line, result.stderr)


def test_the_example_files_are_read_back(tmp_path: Path) -> None:
    # make_instances writes what the examples send: each reads to its end.
    (instance,) = make_instances(tmp_path, 1)
    assert dcmread(instance.path).SOPInstanceUID == instance.sop_instance_uid


@pytest.fixture(autouse=True)
def _repository_on_path() -> None:
    assert str(REPOSITORY) in environment()["PYTHONPATH"]
