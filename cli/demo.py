"""dicom-ul-demo: the whole stack in one command, on a fresh machine.

Starts `dicomscp` on a free port with a temporary archive, stores pydicom's bundled
test instances into it with `dicomscu`, then runs C-ECHO, C-FIND at each level,
C-MOVE and C-GET, saying what each step does, and stops the server. Every step runs
the real command lines, as a user would type them.
"""

from __future__ import annotations

import os
import queue
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from pydicom.data import get_testdata_file

from dimse.files import NotDicomFile, read_part10_info

#: Bundled instances of several modalities (CT, MR, US, SEG, SR, ECG).
DEMO_FILES = (
    "CT_small.dcm",
    "MR_small.dcm",
    "examples_overlay.dcm",
    "examples_palette.dcm",
    "examples_rgb_color.dcm",
    "liver_1frame.dcm",
    "reportsi.dcm",
    "waveform_ecg.dcm",
)

STARTUP_SECONDS = 20.0


def _say(text: str) -> None:
    print(f"\n=== {text}", flush=True)


def _files() -> list[str]:
    found = []
    for name in DEMO_FILES:
        path = get_testdata_file(name, download=False)
        if path is None:
            continue
        try:
            read_part10_info(path)
        except NotDicomFile:
            continue
        found.append(str(path))
    return found


def _start_server(workdir: Path, port_scp: int) -> tuple[subprocess.Popen[str], int]:
    config = workdir / "dicomscp.toml"
    config.write_text(
        f'aetitle = "DICOMSCP"\narchive = "archive"\n\n[destinations]\nDEMO = "127.0.0.1:{port_scp}"\n',
        encoding="utf-8",
    )
    command = [
        sys.executable,
        "-m",
        "cli.dicomscp",
        "--config",
        str(config),
        "--host",
        "127.0.0.1",
        "0",
    ]
    print("$", shlex.join(command[2:]).replace("cli.dicomscp", "dicomscp", 1), flush=True)
    server = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=_environment())
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert server.stderr is not None
        for line in server.stderr:
            lines.put(line)
            if "--verbose-demo" in sys.argv:
                sys.stderr.write(line)

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + STARTUP_SECONDS
    while True:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            server.kill()
            raise RuntimeError("dicomscp did not start within 20 s") from None
        print("  " + line.rstrip(), flush=True)
        match = re.search(r"listening on \S+:(\d+)", line)
        if match:
            return server, int(match.group(1))


def _environment() -> dict[str, str]:
    """Our packages importable from any folder, installed or run from a checkout."""
    env = dict(os.environ)
    project = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (project, env.get("PYTHONPATH", "")) if p)
    return env


def _dicomscu(*args: str, cwd: Path) -> int:
    shown = "dicomscu " + shlex.join(args)
    print(f"$ {shown}", flush=True)
    result = subprocess.run(
        [sys.executable, "-m", "cli", *args], cwd=cwd, env=_environment(), check=False
    )
    if result.returncode != 0:
        print(f"  (exit status {result.returncode})", flush=True)
    return result.returncode


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> int:
    started = time.monotonic()
    files = _files()
    failures = 0
    with tempfile.TemporaryDirectory(prefix="dicom-ul-demo-") as tmp:
        workdir = Path(tmp)
        port_scp = _free_port()
        _say("Start dicomscp, our DICOM server, with an empty archive")
        server, port = _start_server(workdir, port_scp)
        host = ["127.0.0.1", str(port), "--call", "DICOMSCP"]
        try:
            _say("C-ECHO: is the server there?")
            failures += _dicomscu("--echo", "-V", *host, cwd=workdir) != 0
            _say(f"C-STORE: send {len(files)} of pydicom's test instances over one association")
            failures += _dicomscu("--store", *host, *files, cwd=workdir) != 0
            for level, extra in (
                ("--patient", ["-k", "10,10", "-k", "10,20"]),
                ("--study", ["-k", "10,10", "-k", "8,20", "-k", "8,1030"]),
                ("--series", ["-k", "8,60", "-k", "20,11"]),
                ("--image", ["-k", "8,16", "-k", "20,13"]),
            ):
                _say(f"C-FIND, patient root, {level[2:]} level")
                failures += (
                    _dicomscu("--find", "--patientroot", level, *extra, *host, cwd=workdir) != 0
                )
            _say("C-FIND, study root, series level, only MR (wildcard-free key 8,60=MR)")
            failures += (
                _dicomscu(
                    "--find",
                    "--studyroot",
                    "--series",
                    "-k",
                    "8,60=MR",
                    "-k",
                    "20,e",
                    *host,
                    cwd=workdir,
                )
                != 0
            )
            patient_id = "1CT1"
            out_move = workdir / "moved"
            _say(
                f"C-MOVE: the server sends patient {patient_id}'s instances to us (AE DEMO, port {port_scp})"
            )
            failures += (
                _dicomscu(
                    "--move",
                    "--patientroot",
                    "--patient",
                    "-k",
                    f"10,20={patient_id}",
                    "--aetitle",
                    "DEMO",
                    "--port-scp",
                    str(port_scp),
                    "-o",
                    str(out_move),
                    *host,
                    cwd=workdir,
                )
                != 0
            )
            print(f"  received: {sorted(p.name for p in out_move.glob('*.dcm'))}")
            out_get = workdir / "got"
            _say("C-GET: every study, on the same association")
            for study in _study_uids(files):
                failures += (
                    _dicomscu(
                        "--get",
                        "--studyroot",
                        "--study",
                        "-k",
                        f"20,d={study}",
                        "-o",
                        str(out_get),
                        *host,
                        cwd=workdir,
                    )
                    != 0
                )
            print(f"  received {len(list(out_get.glob('*.dcm')))} instances in {out_get.name}/")
        finally:
            _say("Stop the server (SIGINT): it finishes what is in flight and exits")
            server.send_signal(signal.SIGINT)
            try:
                code = server.wait(timeout=40)
            except subprocess.TimeoutExpired:
                server.kill()
                code = -1
            print(f"  dicomscp exit status {code}")
            failures += code != 0
    _say(f"Done in {time.monotonic() - started:.1f} s, {failures} step(s) failed")
    return 1 if failures else 0


def _study_uids(files: list[str]) -> list[str]:
    from pydicom import dcmread

    uids = {str(dcmread(path, stop_before_pixels=True).StudyInstanceUID) for path in files}
    return sorted(uids)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
