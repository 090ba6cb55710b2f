"""The debug log as a teaching tool (issue 13), end to end: our client and our server
in this process, the log captured at DEBUG; `dicomscu --dump-pdus FILE` and the
explanation of FILE by `python -m dimse.explain` (and `python -m dul.explain`).

What is checked is what a student reads: the A-ASSOCIATE-RQ and -AC item by item, with
the names of the UIDs; one line per DIMSE message with its status in words and how it
travelled; each state, event and action defined once per association; no passcode
anywhere but in the dump's bytes, as the option's help says.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cli import dicomscu
from dimse import client
from dimse.models import VERIFICATION
from dimse.scp import Handlers, Provider
from dul.connection import Timeouts
from dul.errors import AssociationRejected
from dul.negotiation import ProposedContext
from tests.dicomscu_support import make_instances
from tests.peers import HOST
from tests.rawpeer import archive_server, connect

REPOSITORY = Path(__file__).resolve().parent.parent
TIMEOUTS = Timeouts(connect=10.0, acse=10.0, dimse=10.0, idle=10.0, artim=10.0)
PASSCODE = "Tr0ub4dor-and-3"
VERIFICATION_NAMED = "1.2.840.10008.1.1 (Verification SOP Class)"
IMPLICIT_NAMED = "1.2.840.10008.1.2 (Implicit VR Little Endian)"


@contextlib.contextmanager
def our_server(**options: Any) -> Iterator[Provider]:
    """Our Provider (C-ECHO only) on a free loopback port, AE title OURSCP."""
    provider = Provider(
        Handlers(), ae_title="OURSCP", host=HOST, port=0, timeouts=TIMEOUTS, **options
    )
    with provider:
        yield provider


def echo_association(port: int, times: int = 1) -> None:
    with client.connect(
        HOST,
        port,
        called_ae="OURSCP",
        calling_ae="STUDENT",
        contexts=[ProposedContext(VERIFICATION, ("1.2.840.10008.1.2",))],
        timeouts=TIMEOUTS,
    ) as association:
        for _ in range(times):
            assert association.echo().is_success


def messages(caplog: pytest.LogCaptureFixture, logger: str, prefix: str = "") -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == logger and r.getMessage().startswith(prefix)
    ]


def dimse_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The DIMSE message lines, without the association's name that begins each
    (`requestor: ` or `acceptor HOST:PORT: `, as the upper layer's lines)."""
    lines = []
    for message in messages(caplog, "dimse"):
        name, _, text = message.partition(": ")
        assert name == "requestor" or name.startswith("acceptor "), message
        lines.append(text)
    return lines


@pytest.fixture
def debug_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    for name in ("dul", "dimse"):
        caplog.set_level(logging.DEBUG, logger=name)
    return caplog


def block(caplog: pytest.LogCaptureFixture, logger: str, name: str, headline: str) -> list[str]:
    """The lines of one PDU's explanation: the record of `name` (a machine) that starts
    with `headline`, and the indented records of the same machine that follow it."""
    own = [m for m in messages(caplog, logger, f"{name}: ")]
    (start,) = [i for i, m in enumerate(own) if m.startswith(f"{name}: {headline}")]
    lines = [own[start]]
    for line in own[start + 1 :]:
        if not line.startswith(f"{name}:   "):
            break
        lines.append(line)
    return lines


def test_the_association_is_decoded_item_by_item_with_names(
    debug_log: pytest.LogCaptureFixture,
) -> None:
    with our_server() as server:
        echo_association(server.port)
    rq = block(debug_log, "dul.connection", "requestor", "sending A-ASSOCIATE-RQ")
    assert rq[0] == "requestor: sending A-ASSOCIATE-RQ PDU (PS3.8 9.3.2)"
    assert (
        "requestor:   called AE title 'OURSCP', calling AE title 'STUDENT', protocol version 1"
        in rq
    )
    assert f"requestor:   presentation context 1: abstract syntax {VERIFICATION_NAMED}" in rq
    assert f"requestor:     transfer syntax {IMPLICIT_NAMED}" in rq
    assert any(line.startswith("requestor:   maximum length: 16384") for line in rq)
    ac = block(debug_log, "dul.machine", "requestor", "received A-ASSOCIATE-AC")
    assert (
        "requestor:   presentation context 1: acceptance (result 0), abstract syntax "
        f"{VERIFICATION_NAMED}"
    ) in ac
    assert f"requestor:     transfer syntax {IMPLICIT_NAMED}" in ac
    # the acceptor's side says the same, from its end
    (acceptor,) = {m.split(": ", 1)[0] for m in messages(debug_log, "dul.machine", "acceptor ")}
    received = block(debug_log, "dul.machine", acceptor, "received A-ASSOCIATE-RQ")
    assert [line.split(": ", 1)[1] for line in received] == [
        line.split(": ", 1)[1].replace("sending", "received") for line in rq
    ]
    sent = block(debug_log, "dul.connection", acceptor, "sending A-ASSOCIATE-AC")
    assert [line.split(": ", 1)[1] for line in sent] == [
        line.split(": ", 1)[1].replace("received", "sending") for line in ac
    ]
    # ROBUSTNESS 15: no record holds a control character, a line break included
    assert not [r for r in debug_log.records if any(c < " " for c in r.getMessage())]


def test_each_dimse_message_is_one_line_with_its_status_in_words(
    debug_log: pytest.LogCaptureFixture,
) -> None:
    with our_server() as server:
        echo_association(server.port)
    lines = dimse_lines(debug_log)
    via = "; no data set; presentation context 1, in 1 P-DATA-TF PDU, 1 PDV"
    rq = f"C-ECHO-RQ: Message ID 1, Affected SOP Class {VERIFICATION_NAMED}{via}"
    rsp = f"C-ECHO-RSP: responding to Message ID 1, status 0000H (Success){via}"  # no SOP class
    assert f"sent {rq}" in lines  # the client
    assert f"received {rq}" in lines  # the server
    assert f"sent {rsp}" in lines
    assert f"received {rsp}" in lines


def test_a_stored_file_says_its_size_and_how_it_was_cut(
    debug_log: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    (instance,) = make_instances(tmp_path / "in", 1)  # CT_small: Explicit VR LE, streamed
    with archive_server(tmp_path / "archive", max_pdu=4096) as server:
        with connect(server.port) as association:
            assert association.store(instance.path).status.is_success
    (sent,) = [m for m in dimse_lines(debug_log) if m.startswith("sent C-STORE-RQ")]
    (received,) = [m for m in dimse_lines(debug_log) if m.startswith("received C-STORE-RQ")]
    assert "Affected SOP Class 1.2.840.10008.5.1.4.1.1.2 (CT Image Storage)" in sent
    assert f"Affected SOP Instance {instance.sop_instance_uid}" in sent
    size = instance.path.stat().st_size
    data = int(sent.split("data set of ")[1].split(" bytes")[0])
    assert size - 1000 < data < size  # the data set: the file less its preamble and meta
    pdus = -(-data // (4096 - 6)) + 1  # the data set's PDUs and the command's
    tail = f"presentation context 3, in {pdus} P-DATA-TF PDUs, {pdus} PDVs"
    assert sent.endswith(tail)
    assert received.split("; ", 1)[1] == sent.split("; ", 1)[1]  # the peer counted the same
    (response,) = [m for m in dimse_lines(debug_log) if m.startswith("received C-STORE-RSP")]
    assert "status 0000H (Success)" in response


def test_each_state_event_and_action_is_defined_once_per_association(
    debug_log: pytest.LogCaptureFixture,
) -> None:
    with our_server() as server:
        echo_association(server.port, times=3)
        echo_association(server.port, times=1)
    mine = messages(debug_log, "dul.machine", "requestor: ")
    transitions = [m for m in mine if " -> " in m]
    defines = re.compile(r"requestor:   (Sta|Evt|AE-|DT-|AR-|AA-)[0-9]+: ")
    definitions = [m for m in mine if defines.match(m)]
    # DT-1 ran three times then once: the transition each time, its words once each time
    assert transitions.count("requestor: Sta6 + Evt9 -> DT-1 -> Sta6") == 4
    evt9 = [d for d in definitions if "Evt9: P-DATA request primitive" in d]
    assert len(evt9) == 2  # once in each association
    assert evt9[0] == "requestor:   Evt9: P-DATA request primitive; DT-1: Send P-DATA-TF PDU"
    assert sum("Sta1: Idle" in d for d in definitions) == 2
    assert (
        "requestor:   Evt11: A-RELEASE Request primitive; AR-1: Send A-RELEASE-RQ PDU; "
        "Sta7: Awaiting A-RELEASE-RP PDU"
    ) in definitions
    # every definition comes right after the transition that shows it first
    for index, line in enumerate(mine):
        if defines.match(line):
            assert " -> " in mine[index - 1]
    # and the server's machine defines the acceptor's own, once per association too
    theirs = messages(debug_log, "dul.machine", "acceptor ")
    releases = [m for m in theirs if "Evt12: A-RELEASE-RQ PDU (received on open" in m]
    assert len(releases) == 2
    assert releases[0].endswith(
        "Evt12: A-RELEASE-RQ PDU (received on open transport connection); AR-2: Issue "
        "A-RELEASE indication primitive; Sta8: Awaiting local A-RELEASE response primitive "
        "(from local user)"
    )


def test_a_rejection_is_said_in_the_standards_words(debug_log: pytest.LogCaptureFixture) -> None:
    with our_server(calling_ae_allowed=lambda ae: ae != "STUDENT") as server:
        with pytest.raises(AssociationRejected):
            echo_association(server.port)
    (rj,) = messages(debug_log, "dul.machine", "requestor: received A-ASSOCIATE-RJ")
    assert rj == (
        "requestor: received A-ASSOCIATE-RJ PDU (PS3.8 9.3.4): rejected-permanent (result 1) "
        "by the DICOM UL service-user (source 1): calling-AE-title-not-recognized (reason 3)"
    )


def test_an_abort_is_said_by_both_sides(debug_log: pytest.LogCaptureFixture) -> None:
    with our_server() as server:
        association = client.connect(
            HOST,
            server.port,
            called_ae="OURSCP",
            contexts=[ProposedContext(VERIFICATION, ("1.2.840.10008.1.2",))],
            timeouts=TIMEOUTS,
        )
        association.abort()
        words = (
            "A-ABORT PDU (PS3.8 9.3.8): source 0, DICOM UL service-user (the reason is not "
            "significant)"
        )
        assert f"requestor: sending {words}" in messages(debug_log, "dul.connection")
        # the server reads it in its own thread: wait for its line, without sleeping
        seen = threading.Event()

        class Watch(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                if record.getMessage().endswith(f"received {words}"):
                    seen.set()

        watch = Watch()
        logging.getLogger("dul.machine").addHandler(watch)
        try:
            if not any(m.endswith(f"received {words}") for m in messages(debug_log, "dul.machine")):
                assert seen.wait(10.0)
        finally:
            logging.getLogger("dul.machine").removeHandler(watch)


def test_without_debug_nothing_is_explained_nor_counted(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    def forbidden(*args: object, **kwargs: object) -> Any:
        raise AssertionError("explained or counted without -D")

    for target in (
        "dimse.engine.Tally",
        "dimse.engine.describe_message",
        "dimse.outgoing.Tally",
        "dimse.outgoing.describe_message",
        "dul.machine.explain_pdu",
        "dul.machine.explain_transition",
        "dul.connection.explain_pdu",
    ):
        monkeypatch.setattr(target, forbidden)
    for name in ("dul", "dimse"):
        caplog.set_level(logging.INFO, logger=name)
    with our_server() as server:
        # a C-ECHO on a MessageChannel made before the patch would hold the real Tally:
        # the channel is made after it, and only counts when the line will be written
        echo_association(server.port, times=2)


def _explain(module: str, dump: Path) -> str:
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPOSITORY), environment.get("PYTHONPATH", "")) if p
    )
    result = subprocess.run(
        [sys.executable, "-m", module, str(dump)],
        cwd=REPOSITORY,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return result.stdout


def test_dump_pdus_is_written_by_dicomscu_and_explained_again(tmp_path: Path) -> None:
    from dul.dump import ENDED, MAGIC, RECEIVED, SENT, STARTED, read_dump  # the format

    dump = tmp_path / "echo.pdus"
    with our_server() as server:
        status = dicomscu.main(
            ["--echo", "--call", "OURSCP", "--dump-pdus", str(dump), HOST, str(server.port)]
        )
    assert status == 0
    with dump.open("rb") as stream:
        assert stream.read(len(MAGIC)) == MAGIC
        stream.seek(0)
        records = list(read_dump(stream))
    assert [r.kind for r in records] == [
        STARTED,
        SENT,
        RECEIVED,
        SENT,
        RECEIVED,
        SENT,
        RECEIVED,
        ENDED,
    ]
    assert records[0].data == f"requestor, peer {HOST}:{server.port}".encode()
    assert [r.data[0] for r in records[1:-1]] == [1, 2, 4, 4, 5, 6]  # RQ AC P-DATA x2 RQ RP
    assert [r.time for r in records] == sorted(r.time for r in records)

    text = _explain("dimse.explain", dump)
    lines = text.splitlines()
    start = f"association 1 starts: requestor, peer {HOST}:{server.port}"
    assert lines[0] == f"[1] +{records[0].time:.6f} s {start}"
    assert any(
        line.startswith("[1] +") and " s sent A-ASSOCIATE-RQ PDU (PS3.8 9.3.2, PDU-length " in line
        for line in lines
    )
    assert f"    presentation context 1: abstract syntax {VERIFICATION_NAMED}" in lines
    assert f"      transfer syntax {IMPLICIT_NAMED}" in lines
    assert (
        f"    presentation context 1: acceptance (result 0), abstract syntax {VERIFICATION_NAMED}"
        in lines
    )
    assert "    PDV 1: presentation context 1, command, last fragment, 68 bytes" in lines
    assert (
        f"  DIMSE sent C-ECHO-RQ: Message ID 1, Affected SOP Class {VERIFICATION_NAMED}; no "
        "data set; presentation context 1, in 1 P-DATA-TF PDU, 1 PDV"
    ) in lines
    assert any(
        line.startswith("  DIMSE received C-ECHO-RSP: responding to Message ID 1")
        and "status 0000H (Success)" in line
        for line in lines
    )
    assert lines[-1].endswith(" s connection closed")

    bare = _explain("dul.explain", dump)  # the upper layer alone: no names, no DIMSE
    assert "    presentation context 1: abstract syntax 1.2.840.10008.1.1\n" in bare
    assert "DIMSE" not in bare


def test_dump_pdus_to_a_file_that_cannot_be_written_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    where = tmp_path / "no" / "such" / "dir" / "f"
    status = dicomscu.main(["--echo", "--dump-pdus", str(where), HOST, "104"])
    assert status == 2
    error = capsys.readouterr().err
    assert f"dicomscu: error: --dump-pdus {where}: No such file or directory" in error


def test_no_passcode_in_the_debug_log_nor_the_dump_explained(tmp_path: Path) -> None:
    log_file = tmp_path / "debug.log"
    dump = tmp_path / "identity.pdus"
    with our_server(
        identity_check=lambda user, tls: True, allow_password_without_tls=True
    ) as server:
        status = dicomscu.main(
            [
                "-D",
                "-L",
                str(log_file),
                "--echo",
                "--call",
                "OURSCP",
                "--username",
                "alice",
                "--password",
                PASSCODE,
                "--dump-pdus",
                str(dump),
                HOST,
                str(server.port),
            ]
        )
    assert status == 0
    log = log_file.read_text(encoding="utf-8")
    said = (
        "user identity: username and passcode (type 2), username alice, passcode not shown; "
        "positive response not asked for"
    )
    assert said in log  # the client's RQ, and the server's record of it
    assert log.count(said) == 2
    assert PASSCODE not in log
    explained = _explain("dimse.explain", dump)
    assert said in explained
    assert PASSCODE not in explained
    # the dump holds the bytes as they went, as --dump-pdus's help warns
    assert PASSCODE.encode() in dump.read_bytes()
