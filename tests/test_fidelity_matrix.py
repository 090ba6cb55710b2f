"""Issue 11's "done when": every file of pydicom's test data, through every path, exactly.

Every file in pydicom's test files and charset files is stored with dicomscu into
dicomscp, DCMTK storescp and Orthanc, then retrieved from dicomscp and Orthanc with
dicomscu --get and --move and with DCMTK getscu and movescu, into receivers that take
(a) every transfer syntax and (b) uncompressed syntaxes only. For each instance, on
each path, one of two things must be seen:

- it arrived, and `tests.fidelity.differences` finds nothing: every element equal,
  the pixel arrays equal to pydicom's decoding of the source (decompressed copies
  compare by their pixels; a lossy source decompressed only where that was allowed,
  and marked so, PS3.3 C.7.6.1.1.5);
- or the command failed (exit status not 0) and named the instance (its file or SOP
  Instance UID) in its output.

Anything else, an instance that arrived changed or that went missing without a word,
is a silent difference, and the test lists them all.

Files that share a SOP Instance UID (MR_small.dcm in nine transfer syntaxes...) go in
rounds, each into new servers, so that every file is checked as itself.

What the peers do is taken as it is, and said here:

- DCMTK's getscu and movescu retrieve from dicomscp (our server is what they test);
  from Orthanc, dicomscu retrieves (our client is what that tests). getscu cannot
  take every transfer syntax at once (it proposes one preferred syntax and the
  uncompressed ones): it runs as receiver (b) only. getscu exits 0 when
  sub-operations failed, and neither tool prints the Failed SOP Instance UID List of
  the final response: for them, a failure is their failed count, and "named" is
  dicomscp's log, which names each instance that failed and why (the final response
  carries the same list and the reason in its Error Comment).
- A copy that a DCMTK-based program wrote (storescp's files, Orthanc's storage) may
  have text padding rewritten: an odd-length value made even, an all-space one made
  empty. PS3.5 6.2 gives that padding no meaning; those paths compare without it.
- Orthanc converts 32-bit Pixel Data of the retired Explicit VR Big Endian as DCMTK
  reads it, by 16-bit words; pydicom reads it by pixel cell, and so do we (see
  dimse/transfer/recode.py). Such a copy compares without its pixels, and only there.
- Orthanc decompresses lossy images for a receiver that takes uncompressed syntaxes
  only (its default TranscodeDicomProtocol): there, lossy decompression is allowed
  by the server's configuration, and is checked as such. Where it cannot transcode
  (JPEG 2000 in Orthanc 1.10), it ends the whole C-GET or C-MOVE: dicomscu then names
  every instance that did not arrive, from the IMAGE-level C-FIND it asks first.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pydicom
import pytest

from cli.dicomscu import main
from dimse.file_check import DicomDirectory, check_file
from dimse.files import NotDicomFile, Part10Info
from dimse.transfer.syntaxes import EXPLICIT_VR_BIG_ENDIAN, lookup
from tests import peers
from tests.fidelity import decompression_problems, differences
from tests.ourserver import DicomSCP

pytest_plugins = ["tests.ourserver"]
pytestmark = [pytest.mark.peers, pytest.mark.slow, pytest.mark.timeout(1200)]

DATA = Path(pydicom.data.__file__).parent
FOLDERS = (DATA / "test_files", DATA / "charset_files")
#: Not DICOM at all (dumps, JSON, text): dicomscu names them and sends the rest.
NOT_DICOM = frozenset({".py", ".pyc", ".json", ".txt", ".dump", ".icc", ".gz", ".md"})


@dataclass
class Source:
    path: Path
    info: Part10Info | None = None
    refused: str = ""  # check_file's reason
    directory: bool = False  # a DICOMDIR

    @property
    def uid(self) -> str:
        return self.info.sop_instance_uid if self.info else ""

    @property
    def lossy(self) -> bool:
        syntax = lookup(self.info.transfer_syntax) if self.info else None
        return bool(syntax and syntax.lossy)

    @property
    def study(self) -> str:
        dataset = pydicom.dcmread(self.path, stop_before_pixels=True, force=True)
        return str(dataset.get("StudyInstanceUID", "") or "")


def sources() -> list[Source]:
    found = []
    for folder in FOLDERS:
        for path in sorted(folder.rglob("*")):
            if not path.is_file() or "README" in path.name:
                continue
            source = Source(path)
            try:
                source.info = check_file(path)
            except DicomDirectory:
                source.directory = True
            except NotDicomFile as exc:
                source.refused = str(exc)
            found.append(source)
    return found


def rounds(instances: list[Source]) -> list[list[Source]]:
    """The instances in rounds where no two share a SOP Instance UID."""
    result: list[list[Source]] = []
    for source in instances:
        for members in result:
            if all(m.uid != source.uid for m in members):
                members.append(source)
                break
        else:
            result.append([source])
    return result


@dataclass
class Judge:
    """Collects what every path did with every instance; `silent` must stay empty."""

    silent: list[str] = field(default_factory=list)
    seen: dict[str, int] = field(default_factory=dict)

    def outcome(
        self,
        path: str,
        source: Source,
        received: Path | None,
        code: int,
        output: str,
        *,
        lossy_allowed: bool = False,
        padding: bool = False,
        dcmtk_converts: bool = False,
    ) -> None:
        where = f"{path}: {source.path.relative_to(DATA)}"
        if received is None:
            named = source.uid in output or str(source.path) in output or source.path.name in output
            if code != 0 and named:
                self.seen["refused, named"] = self.seen.get("refused, named", 0) + 1
            else:
                self.silent.append(f"{where}: missing, exit status {code}, named: {named}")
            return
        decompressed = bool(
            source.info
            and lookup(source.info.transfer_syntax).encapsulated  # type: ignore[union-attr]
            and not lookup(check_file(received).transfer_syntax).encapsulated  # type: ignore[union-attr]
        )
        if decompressed and source.lossy and not lossy_allowed:
            self.silent.append(f"{where}: lossy source decompressed without leave")
            return
        # DCMTK reads OW Pixel Data of more than 16 bits allocated in the retired big
        # endian syntax by 16-bit words, pydicom (and we) by pixel cell: when Orthanc
        # converts such an instance, its pixels follow DCMTK's reading.
        dcmtk_reading = dcmtk_converts and _wide_big_endian(source, received)
        problems = differences(
            source.path,
            received,
            decompressed=decompressed,
            pixels=not (decompressed and source.lossy) and not dcmtk_reading,
            padding=padding,
        )
        if decompressed:
            problems += decompression_problems(source.path, received, source.lossy)
        if problems:
            self.silent.append(f"{where}: arrived changed: {problems[:4]}")
        else:
            self.seen["exact"] = self.seen.get("exact", 0) + 1


def _wide_big_endian(source: Source, received: Path) -> bool:
    if source.info is None or source.info.transfer_syntax != EXPLICIT_VR_BIG_ENDIAN:
        return False
    bits = pydicom.dcmread(source.path, stop_before_pixels=True, force=True).get("BitsAllocated", 0)
    return int(bits) > 16 and check_file(received).transfer_syntax != EXPLICIT_VR_BIG_ENDIAN


def received_by_uid(directory: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in directory.rglob("*"):
        if path.is_file():
            with contextlib.suppress(NotDicomFile):
                found[check_file(path).sop_instance_uid] = path
    return found


def at(peer: peers.Peer) -> list[str]:
    return ["--call", peer.ae_title, peer.host, str(peer.port)]


@contextlib.contextmanager
def fresh(directory: Path) -> Iterator[Path]:
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    yield directory


class Run:
    """One round against one archive: store, then every retrieve path."""

    def __init__(
        self,
        judge: Judge,
        capsys: pytest.CaptureFixture[str],
        work: Path,
        receivers: dict[str, peers.StoreSCP],
        ports: dict[str, int],
    ) -> None:
        self.judge, self.capsys, self.work = judge, capsys, work
        self.receivers, self.ports = receivers, ports

    def dicomscu(self, *argv: str) -> tuple[int, str]:
        self.capsys.readouterr()
        code = main(list(argv))
        out = self.capsys.readouterr()
        return code, out.out + out.err

    def store(self, name: str, peer: peers.Peer, members: list[Source]) -> list[Source]:
        """Store the round's files; those stored (the others must be named)."""
        code, output = self.dicomscu("--store", *at(peer), *(str(m.path) for m in members))
        errors = "\n".join(line for line in output.splitlines() if "error:" in line)
        stored = []
        for source in members:
            named = str(source.path) in errors
            if named and code != 0:
                self.judge.seen["refused, named"] = self.judge.seen.get("refused, named", 0) + 1
            elif named:
                self.judge.silent.append(f"{name} store: {source.path.name} named, exit 0")
            else:
                stored.append(source)
        return stored

    def retrieve_all(
        self, name: str, archive: peers.Peer, stored: list[Source], *, orthanc: bool
    ) -> None:
        studies = sorted({s.study for s in stored} - {""})
        keys = "\\".join(studies)
        lossy_ok = padding = orthanc
        for accept in ("any", "uncompressed"):
            out = self.work / f"get-{accept}"
            with fresh(out):
                code, text = self.dicomscu(
                    "--get",
                    "--accept",
                    accept,
                    "--studyroot",
                    "-k",
                    f"20,d={keys}",
                    "-o",
                    str(out),
                    *at(archive),
                )
                self.judge_all(
                    f"{name} dicomscu --get --accept {accept}",
                    stored,
                    out,
                    code,
                    text,
                    lossy_ok,
                    padding,
                )
            out = self.work / f"move-{accept}"
            with fresh(out):
                aetitle = "GDCMSCU" if accept == "any" else "GDCMSCUPLAIN"
                code, text = self.dicomscu(
                    "--move", "--accept", accept, "--aetitle", aetitle, "--port-scp",
                    str(self.ports[aetitle]), "--studyroot", "-k", f"20,d={keys}", "-o", str(out),
                    *at(archive),
                )  # fmt: skip
                self.judge_all(
                    f"{name} dicomscu --move --accept {accept}",
                    stored,
                    out,
                    code,
                    text,
                    lossy_ok,
                    padding,
                )
        if orthanc:
            return
        assert isinstance(archive, DicomSCP)
        for destination, receiver in self.receivers.items():
            with fresh(receiver.output_dir):
                mark = archive.mark()
                result = peers.run_dcmtk(
                    "movescu", "-d", "-S", "-aec", archive.ae_title, "-aem", destination,
                    "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={keys}",
                    archive.host, str(archive.port), check=False, timeout_s=300,
                )  # fmt: skip
                self.judge_all(
                    f"{name} movescu -> storescp {destination}", stored, receiver.output_dir,
                    result.returncode or _failed(result),
                    result.stdout + result.stderr + _server_says(archive, mark),
                    lossy_ok, padding=True,
                )  # fmt: skip
        out = self.work / "getscu"
        with fresh(out):
            mark = archive.mark()
            result = peers.run_dcmtk(
                "getscu", "-d", "-S", "-od", str(out), "-aec", archive.ae_title,
                "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={keys}",
                archive.host, str(archive.port), check=False, timeout_s=300,
            )  # fmt: skip
            self.judge_all(
                f"{name} getscu", stored, out, result.returncode or _failed(result),
                result.stdout + result.stderr + _server_says(archive, mark),
                lossy_ok, padding=True,
            )  # fmt: skip

    def judge_all(
        self,
        path: str,
        stored: list[Source],
        out: Path,
        code: int,
        text: str,
        lossy_ok: bool,
        padding: bool,
    ) -> None:
        """`lossy_ok` is true of the Orthanc paths only: Orthanc converts what it sends,
        as DCMTK does (see the module docstring)."""
        received = received_by_uid(out)
        for source in stored:
            if not source.study:
                continue  # no study to retrieve it by (dicomscp refused it, named)
            self.judge.outcome(
                path,
                source,
                received.get(source.uid),
                code,
                text,
                lossy_allowed=lossy_ok,
                padding=padding,
                dcmtk_converts=lossy_ok,
            )


def _server_says(server: DicomSCP, mark: int) -> str:
    """dicomscp's log of the retrieve that began at `mark`, once its summary is in."""
    server.wait_for_log(
        r"C-(MOVE|GET) from .*: \d+ completed|C-(MOVE|GET) from .*: [0-9A-F]{4}", 30, mark
    )
    return "\n".join(server.log_lines_since(mark))


_FAILED_COUNT = re.compile(r"Failed Suboperations\s*:\s*(\d+)")


def _failed(result: subprocess.CompletedProcess[str]) -> int:
    """DCMTK's getscu exits 0 when sub-operations failed: 1 when a response it prints
    (-d) counts failures."""
    counts = _FAILED_COUNT.findall(result.stdout + result.stderr)
    return 1 if any(int(count) for count in counts) else 0


def test_every_test_file_arrives_exact_or_is_named(
    dicomscp_factory: Callable[..., DicomSCP],
    orthanc_factory: Callable[..., peers.Orthanc],
    storescp_factory: Callable[..., peers.StoreSCP],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    judge = Judge()
    all_sources = sources()
    files = [s for s in all_sources if s.path.suffix not in NOT_DICOM]
    instances = [s for s in files if s.info is not None]
    assert len(instances) > 150, len(instances)
    receivers = {
        "STOREALL": storescp_factory(ae_title="STOREALL"),
        "STOREPLAIN": storescp_factory(ae_title="STOREPLAIN", extra_args=["+x="]),
    }
    ports = {"GDCMSCU": peers.free_port(), "GDCMSCUPLAIN": peers.free_port()}
    destinations = [*receivers.values()]
    destinations += [peers.Peer(peers.HOST, port, ae) for ae, port in ports.items()]
    run = Run(judge, capsys, tmp_path / "work", receivers, ports)

    # The files dicomscu cannot read are named, and the others go (one run over all).
    code, output = run.dicomscu(
        "--store", *at(receivers["STOREALL"]), *(str(f.path) for f in files)
    )
    assert code == 1
    for source in files:
        if source.refused:
            assert str(source.path) in output, source.path
    shutil.rmtree(receivers["STOREALL"].output_dir)
    receivers["STOREALL"].output_dir.mkdir()

    for number, members in enumerate(rounds(instances)):
        # Into DCMTK storescp, both kinds: what arrives is what was sent.
        for ae, receiver in receivers.items():
            with fresh(receiver.output_dir):
                stored = run.store(f"round {number} storescp {ae}", receiver, members)
                arrived = received_by_uid(receiver.output_dir)
                for source in stored:
                    judge.outcome(
                        f"round {number} dicomscu --store -> storescp {ae}",
                        source, arrived.get(source.uid), 0, "", padding=True,
                    )  # fmt: skip
        server = dicomscp_factory(
            *(
                a
                for d in destinations
                for a in ("--destination", f"{d.ae_title}={d.host}:{d.port}")
            ),
            name=f"dicomscp-{number}",
        )
        stored = run.store(f"round {number} dicomscp", server, members)
        run.retrieve_all(f"round {number} dicomscp", server, stored, orthanc=False)
        orthanc = orthanc_factory(move_destinations=destinations)
        stored = run.store(f"round {number} Orthanc", orthanc, members)
        run.retrieve_all(f"round {number} Orthanc", orthanc, stored, orthanc=True)

    report = "\n".join(judge.silent)
    assert not judge.silent, (
        f"{len(judge.silent)} silent difference(s):\n{report}\nseen: {judge.seen}"
    )
    assert judge.seen.get("exact", 0) > 1000, judge.seen
