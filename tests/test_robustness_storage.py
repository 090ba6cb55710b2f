"""docs/robustness.md cases 29-40: storage, retrieve, release and slow peers.

Our server (`Provider` over a temporary archive, or `python -m cli.dicomscp` where it
must be killed) and our client (`dimse.client`, `StorageSCP`, `dul.transport`) against
raw peers (tests/rawpeer.py) that misbehave on purpose: hostile UIDs, a full disk, a
kill in the middle of a write, a destination that hangs, a flood of C-CANCEL, release
collisions, a peer that stops reading, a server that answers a C-GET with paths.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from dimse import client
from dimse.archive.handlers import ArchiveHandlers
from dimse.datasets import encode_dataset
from dimse.fragments import fragment_message
from dimse.messages import (
    C_CANCEL_RQ,
    C_ECHO_RQ,
    C_ECHO_RSP,
    C_FIND_RQ,
    C_FIND_RSP,
    C_GET_RQ,
    C_GET_RSP,
    C_MOVE_RQ,
    C_MOVE_RSP,
    C_STORE_RQ,
    C_STORE_RSP,
)
from dimse.models import Root
from dimse.scp import Provider
from dimse.storage import InstanceWriter
from dimse.storage_scp import StorageSCP
from dul import A_ABORT, A_ASSOCIATE_RJ, A_RELEASE_RP, A_RELEASE_RQ
from dul.drivers.server import Server
from dul.drivers.sockets import Channel, request_association
from dul.errors import AssociationError, DulTimeout
from dul.fsm import State
from dul.negotiation import AcceptorPolicy, negotiate
from tests.peers import HOST, PeerProcess, in_ci, wait_until
from tests.rawpeer import (
    CT_IMAGE_STORAGE,
    EXPLICIT_LE,
    SHORT,
    STUDY_ROOT_FIND,
    STUDY_ROOT_MOVE,
    VERIFICATION,
    WAIT_S,
    EndlessFind,
    RawClient,
    RawPeer,
    RawServer,
    accept_association,
    archive_server,
    connect,
    ct_instance,
    echo_status,
    files_under,
    hang,
    hang_after_accepting,
    no_unexpected_exception,  # noqa: F401  (autouse fixture)
    patched,
    request,
    rq_bytes,
    store_response,
    store_scp,
)

pytestmark = [
    pytest.mark.filterwarnings("ignore:Invalid value for VR UI"),  # the hostile UIDs
    pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning"),
]

REPOSITORY = Path(__file__).resolve().parent.parent
ARTIM = SHORT.artim
HOSTILE_UIDS = ["../../x", "/etc/x", "..", "a;b", "x/../../y", "$(touch p)"]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Provider]:
    with archive_server(tmp_path / "archive") as provider:
        yield provider


def study_query(study_uid: str) -> Dataset:
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.StudyInstanceUID = study_uid
    return query


def store_study(port: int, count: int) -> tuple[str, list[str]]:
    """Store `count` instances of one new study; (study UID, instance UIDs)."""
    study = generate_uid()
    uids = [generate_uid() for _ in range(count)]
    with connect(port) as association:
        for uid in uids:
            assert association.store(ct_instance(uid, StudyInstanceUID=study)).status.code == 0
    return study, uids


def assert_all_inside(tmp_path: Path, inside: Path) -> None:
    for path in files_under(tmp_path):
        assert path.is_relative_to(inside), f"{path} is outside {inside}"
    assert not Path("/etc/x.dcm").exists() and not Path("/etc/x").exists()


# --- 29-32: storing


def test_29_uids_that_are_paths_stay_inside_the_archive(tmp_path: Path) -> None:
    """ROBUSTNESS 29: SOP Instance UIDs `../../x`, `/etc/x`, `..`, `a;b`...: each stored
    inside the archive under a name made from a hash (or refused with C000H); nothing
    is written elsewhere and nothing reaches a shell."""
    root = tmp_path / "a" / "b" / "archive"
    with archive_server(root) as server, connect(server.port) as association:
        for uid in HOSTILE_UIDS:
            status = association.store(ct_instance(uid)).status.code
            assert status in (0x0000, 0xC000), (uid, hex(status))
    stored = [p for p in files_under(root / "instances") if p.suffix == ".dcm"]
    assert stored and all(p.name.startswith("invalid-uid-") for p in stored)
    assert_all_inside(tmp_path, root)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs: a real file system that fills up."""
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    try:
        mounted = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount_point)],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except OSError as exc:
        mounted = subprocess.CompletedProcess([], 1, "", str(exc))
    if mounted.returncode:
        reason = (
            f"cannot mount a 2 MiB tmpfs here (root and CAP_SYS_ADMIN needed): {mounted.stderr}"
        )
        if in_ci():
            pytest.fail(reason)
        pytest.skip(reason)
    try:
        yield mount_point
    finally:
        if subprocess.run(["umount", str(mount_point)], check=False, timeout=30).returncode:
            subprocess.run(["umount", "-l", str(mount_point)], check=False, timeout=30)


def test_30_a_full_disk_is_a700_and_the_association_goes_on(small_disk: Path) -> None:
    """ROBUSTNESS 30: an instance larger than the free space: A700H, no partial or
    temporary file left, and the same association goes on (echo, a small store)."""
    root = small_disk / "archive"
    with archive_server(root) as server, connect(server.port) as association:
        big = ct_instance(pixels=3 << 20)
        assert association.store(big).status.code == 0xA700
        assert not list(root.rglob(".incoming-*")), "no temporary file left"
        assert not list(root.rglob(f"{big.SOPInstanceUID}*")), "no partial file"
        assert association.echo().code == 0
        small = ct_instance(pixels=1024)
        assert association.store(small).status.code == 0
        assert server.handlers.archive.count() == 1  # type: ignore[attr-defined]


@contextlib.contextmanager
def dicomscp(
    archive: Path, log_path: Path, index: str | None = None
) -> Iterator[tuple[PeerProcess, int]]:
    """`python -m cli.dicomscp 0 --archive ARCHIVE [--index URI]` in its own process
    group (its workers with it); its port."""
    argv = [sys.executable, "-m", "cli.dicomscp", "0", "--host", HOST, "--archive", str(archive)]
    if index is not None:
        argv += ["--index", index, "--node", "crash"]
    log_path.write_text("")
    process = PeerProcess("dicomscp", argv, log_path, cwd=REPOSITORY)
    try:
        listening = re.compile(r"listening on \S+:(\d+)")
        wait_until(
            lambda: listening.search(log_path.read_text()) is not None,
            30.0,
            "dicomscp listening",
            process.popen,
        )
        match = listening.search(log_path.read_text())
        assert match is not None
        yield process, int(match.group(1))
    finally:
        process.stop(grace_s=WAIT_S)


def test_31_a_server_killed_in_the_middle_of_a_write_leaves_no_truncated_file(
    tmp_path: Path, index_spec: str | None
) -> None:
    """ROBUSTNESS 31: dicomscp (its supervisor and workers) is SIGKILLed while it
    writes a 16 MiB instance: after a restart on the same archive, no file under a
    final name is truncated, the temporary file is gone, the instance acknowledged
    before is there, and the index agrees with the files. With SQLite and with a
    PostgreSQL index."""
    root = tmp_path / "archive"
    big_file = tmp_path / "big.dcm"
    big = ct_instance(pixels=16 << 20)
    big.save_as(big_file, enforce_file_format=True)
    kept = ct_instance(pixels=4096)
    with dicomscp(root, tmp_path / "first.log", index_spec) as (process, port):
        with connect(port) as association:
            assert association.store(kept).status.code == 0

        def temp_bytes() -> int:
            return sum(p.stat().st_size for p in root.rglob(".incoming-*.part"))

        sent = 0

        def kill_in_the_middle(count: int) -> None:
            nonlocal sent
            sent += count
            if sent >= 4 << 20 and not process.exited():
                wait_until(lambda: temp_bytes() >= 1 << 20, WAIT_S, "the server writing")
                process.stop(sig=signal.SIGKILL)

        with pytest.raises(AssociationError), connect(port) as association:
            association.store(big_file, progress=kill_in_the_middle)
        assert process.popen.returncode == -signal.SIGKILL
        assert list(root.rglob(".incoming-*.part")), "the kill left a temporary file"
    with dicomscp(root, tmp_path / "second.log", index_spec) as (_, port):
        assert not list(root.rglob(".incoming-*")), "removed at start"
        finals = sorted((root / "instances").rglob("*.dcm"))
        assert [p.name for p in finals] == [f"{kept.SOPInstanceUID}.dcm"]
        for path in finals:
            ds = dcmread(path)  # the whole file, pixel data included
            assert len(ds.PixelData) == ds.Rows * ds.Columns * 2
        with connect(port, [(STUDY_ROOT_FIND, (EXPLICIT_LE,))]) as association:
            query = study_query(kept.StudyInstanceUID)
            query.NumberOfStudyRelatedInstances = ""
            (match, final) = list(association.find(query, Root.STUDY))
            assert final.status.code == 0
            assert match.identifier is not None
            assert int(match.identifier.NumberOfStudyRelatedInstances) == 1


@pytest.mark.parametrize(
    ("policy", "second_status", "kept_version"),
    [("replace", 0x0000, 2), ("keep", 0x0000, 1), ("reject", 0x0111, 1)],
)
def test_32_the_same_uid_twice_follows_the_policy(
    tmp_path: Path, policy: str, second_status: int, kept_version: int, index_spec: str | None
) -> None:
    """ROBUSTNESS 32: the same SOP Instance UID stored twice: the archive's documented
    policy (dimse/archive/archive.py: replace, keep or reject with 0111H); one file, and the
    index describes the version in it."""
    uid, study, series = generate_uid(), generate_uid(), generate_uid()
    versions = [
        ct_instance(uid, InstanceNumber=n, StudyInstanceUID=study, SeriesInstanceUID=series)
        for n in (1, 2)
    ]
    with archive_server(tmp_path / "archive", duplicate_policy=policy, index=index_spec) as server:
        with connect(server.port) as association:
            assert association.store(versions[0]).status.code == 0
            assert association.store(versions[1]).status.code == second_status
        assert_one_version(server, uid, study, series, kept_version)


def assert_one_version(
    server: Provider, uid: str, study: str, series: str, version: int | None = None
) -> None:
    """One file for `uid`, the index's row describing it (and `version` if given)."""
    archive = server.handlers.archive  # type: ignore[attr-defined]
    (stored,) = [p for p in (archive.root / "instances").rglob("*.dcm") if uid in p.name]
    in_file = int(dcmread(stored).InstanceNumber)
    query = Dataset()
    query.QueryRetrieveLevel = "IMAGE"
    query.StudyInstanceUID, query.SeriesInstanceUID, query.SOPInstanceUID = study, series, uid
    query.InstanceNumber = ""
    (row,) = archive.find(query, Root.STUDY, "IMAGE")
    assert int(row.InstanceNumber) == in_file, "the index describes the file"
    assert version is None or in_file == version
    assert not list(archive.root.rglob(".incoming-*"))


def test_32_concurrent_stores_of_one_uid_are_atomic(tmp_path: Path, index_spec: str | None) -> None:
    """ROBUSTNESS 32: two associations store 15 versions each of the same UID at once
    (policy replace): every store succeeds, and in the end there is one complete file
    that the index describes."""
    uid, study, series = generate_uid(), generate_uid(), generate_uid()
    statuses: list[int] = []
    with archive_server(tmp_path / "archive", index=index_spec) as server:

        def store_versions(first: int) -> None:
            with connect(server.port) as association:
                for n in range(first, first + 15):
                    version = ct_instance(
                        uid,
                        pixels=8192,
                        InstanceNumber=n,
                        StudyInstanceUID=study,
                        SeriesInstanceUID=series,
                    )
                    statuses.append(association.store(version).status.code)

        threads = [threading.Thread(target=store_versions, args=(n,)) for n in (1, 100)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30.0)
        assert statuses == [0] * 30
        assert_one_version(server, uid, study, series)


# --- 33-35: retrieve


def move_handlers(destinations: dict[str, tuple[str, int]]) -> object:
    def make(archive: object) -> ArchiveHandlers:
        return ArchiveHandlers(
            archive,  # type: ignore[arg-type]
            destinations=destinations,
            move_allowed={"MOVER"}.__contains__,
        )

    return make


def move(
    port: int, study: str, destination: str, calling: str = "MOVER"
) -> list[client.RetrieveResponse]:  # type: ignore[name-defined]
    with connect(
        port,
        [(STUDY_ROOT_MOVE, (EXPLICIT_LE,))],
        calling_ae=calling,
        timeouts=dataclasses.replace(SHORT, dimse=10.0),
    ) as association:
        return list(association.move(study_query(study), Root.STUDY, destination))


def test_33_c_move_to_an_unknown_destination_or_from_a_stranger_is_a801(tmp_path: Path) -> None:
    """ROBUSTNESS 33: a C-MOVE to an AE title the configuration does not name: A801H;
    from a caller not allowed to move: refused (A801H), and the destination is never
    contacted; the allowed caller's C-MOVE to it succeeds."""
    with RawServer(store_scp) as destination:
        handlers = move_handlers({"DEST": (HOST, destination.port)})
        with archive_server(tmp_path / "archive", handlers=handlers) as server:  # type: ignore[arg-type]
            study, _ = store_study(server.port, 1)
            (unknown,) = move(server.port, study, "NOWHERE")
            assert unknown.status.code == 0xA801
            (stranger,) = move(server.port, study, "DEST", calling="STRANGER")
            assert stranger.status.code == 0xA801
            assert not destination.peers, "the destination was never contacted"
            *_, final = move(server.port, study, "DEST")
            assert (final.status.code, final.completed) == (0x0000, 1)


@pytest.mark.parametrize("script", [hang, hang_after_accepting], ids=["tcp-only", "after-ac"])
def test_34_a_move_destination_that_hangs_is_bounded_by_the_timeouts(
    tmp_path: Path, script: object
) -> None:
    """ROBUSTNESS 34: the C-MOVE destination accepts TCP (or the association) and then
    hangs: the C-MOVE ends within the server's ACSE/DIMSE timeouts (0.5 s), with every
    sub-operation failed: A702H, the failed count and the Failed SOP Instance UID List."""
    timeouts = dataclasses.replace(SHORT, acse=0.5, dimse=0.5)
    with RawServer(script) as destination:  # type: ignore[arg-type]
        handlers = move_handlers({"DEST": (HOST, destination.port)})
        with archive_server(tmp_path / "archive", handlers=handlers, timeouts=timeouts) as server:  # type: ignore[arg-type]
            study, uids = store_study(server.port, 2)
            start = time.monotonic()
            *_, final = move(server.port, study, "DEST")
            elapsed = time.monotonic() - start
            assert destination.peers, "the destination was contacted"
    assert elapsed < 0.5 + 1.5
    assert final.status.code == 0xA702
    assert (final.completed, final.failed, final.warning) == (0, 2, 0)
    assert sorted(final.failed_sop_instances) == sorted(uids)


def test_35_c_cancel_during_c_find_ends_it_promptly_with_fe00(tmp_path: Path) -> None:
    """ROBUSTNESS 35: a C-FIND with endless matches, then C-CANCEL: the final response
    is FE00H, promptly; the association goes on."""
    with archive_server(tmp_path / "archive", handlers=EndlessFind) as server:
        with RawClient(HOST, server.port) as peer:
            peer.associate(
                request([(STUDY_ROOT_FIND, (EXPLICIT_LE,)), (VERIFICATION, (EXPLICIT_LE,))])
            )
            peer.send_message(
                C_FIND_RQ(message_id=1, affected_sop_class_uid=STUDY_ROOT_FIND),
                encode_dataset(study_query("1.2.3"), EXPLICIT_LE),
            )
            _, first = peer.recv_message()
            assert isinstance(first, C_FIND_RSP) and first.status == 0xFF00
            start = time.monotonic()
            peer.send_message(C_CANCEL_RQ(message_id_being_responded_to=1))
            final = wait_for_final(peer, C_FIND_RSP)
            assert final.status == 0xFE00
            assert time.monotonic() - start < 1.0
            peer.send_message(C_ECHO_RQ(message_id=2), context_id=3)
            _, echo = peer.recv_message()
            assert isinstance(echo, C_ECHO_RSP) and echo.status == 0


def wait_for_final(peer: RawPeer, kind: type, timeout: float = WAIT_S) -> object:
    """Read responses of `kind` until one is not pending; return it. All within
    `timeout`: a provider that never stops sending pending responses fails here."""
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"no final {kind.__name__} within {timeout} s"
        _, response = peer.recv_message(remaining)
        assert isinstance(response, kind), response
        if response.status not in (0xFF00, 0xFF01):  # type: ignore[attr-defined]
            return response


def test_35_a_flood_of_c_cancel_does_not_grow_memory(tmp_path: Path) -> None:
    """ROBUSTNESS 35: floods of 10,000 C-CANCEL-RQs for no operation in progress leave
    nothing behind (Python's count of allocated blocks does not grow with them); a
    C-FIND hit by 2,000 more for other message IDs, then by its own, ends with FE00H."""
    with archive_server(tmp_path / "archive", handlers=EndlessFind) as server:
        with RawClient(HOST, server.port) as peer:
            peer.associate(
                request([(STUDY_ROOT_FIND, (EXPLICIT_LE,)), (VERIFICATION, (EXPLICIT_LE,))])
            )
            flood = b"".join(cancel_bytes(peer, message_id) for message_id in range(100, 10_100))

            def allocated_blocks_after_a_flood() -> int:
                peer.send(flood)
                peer.send_message(C_ECHO_RQ(message_id=1), context_id=3)
                _, echo = peer.recv_message(timeout=30.0)  # answered after the flood
                assert isinstance(echo, C_ECHO_RSP) and echo.status == 0
                gc.collect()
                return sys.getallocatedblocks()

            first = allocated_blocks_after_a_flood()
            second = allocated_blocks_after_a_flood()
            assert second - first < 1000, "memory kept for each C-CANCEL"
            peer.send_message(
                C_FIND_RQ(message_id=2, affected_sop_class_uid=STUDY_ROOT_FIND),
                encode_dataset(study_query("1.2.3"), EXPLICIT_LE),
            )
            others = flood[: len(flood) // 5] + cancel_bytes(peer, 2)
            sender = threading.Thread(target=peer.send, args=(others,))
            sender.start()  # the responses are read meanwhile
            final = wait_for_final(peer, C_FIND_RSP, timeout=30.0)
            sender.join(WAIT_S)
            assert final.status == 0xFE00  # type: ignore[attr-defined]


def cancel_bytes(peer: RawPeer, message_id: int) -> bytes:
    command = C_CANCEL_RQ(message_id_being_responded_to=message_id).encode()
    return b"".join(fragment_message(1, command, None, peer.max_pdu))


def test_35_c_cancel_during_c_move_ends_it_with_fe00(tmp_path: Path) -> None:
    """ROBUSTNESS 35: a C-CANCEL that arrives while the first of three sub-operations is
    in progress: no more are started, and the final response is FE00H with one
    completed and two remaining."""
    first_store, gate = threading.Event(), threading.Event()

    def slow_destination(peer: RawPeer) -> None:
        accept_association(peer)
        for received, message in peer.messages(timeout=30.0):
            if isinstance(message, C_STORE_RQ):
                first_store.set()
                gate.wait(WAIT_S)
                peer.send_message(store_response(message), context_id=received.context_id)

    with RawServer(slow_destination) as destination:
        handlers = move_handlers({"DEST": (HOST, destination.port)})
        with archive_server(tmp_path / "archive", handlers=handlers) as server:  # type: ignore[arg-type]
            study, _ = store_study(server.port, 3)
            with RawClient(HOST, server.port) as peer:
                peer.associate(request([(STUDY_ROOT_MOVE, (EXPLICIT_LE,))], calling="MOVER"))
                peer.send_message(
                    C_MOVE_RQ(
                        message_id=1,
                        affected_sop_class_uid=STUDY_ROOT_MOVE,
                        move_destination="DEST",
                    ),
                    encode_dataset(study_query(study), EXPLICIT_LE),
                )
                assert first_store.wait(WAIT_S)
                peer.send_message(C_CANCEL_RQ(message_id_being_responded_to=1))
                start = time.monotonic()
                gate.set()
                final = wait_for_final(peer, C_MOVE_RSP)
                assert time.monotonic() - start < 1.0
    assert final.status == 0xFE00  # type: ignore[attr-defined]
    counts = (
        final.number_of_completed_suboperations,  # type: ignore[attr-defined]
        final.number_of_remaining_suboperations,  # type: ignore[attr-defined]
        final.number_of_failed_suboperations,  # type: ignore[attr-defined]
    )
    assert counts == (1, 2, 0)


# --- 36-39: release and slow peers


def transitions(channel: Channel) -> list[str]:
    return [str(t) for t in channel.machine.history]


def test_36_release_collision_as_requestor_over_sockets() -> None:
    """ROBUSTNESS 36: both sides send A-RELEASE-RQ before reading: our requestor goes
    Sta7 -> AR-8 -> Sta9 -> AR-9 -> Sta11 -> AR-3 -> Sta1 (PS3.8 Table 9-10), the
    peer sees our RQ then our RP, and we close. The same is tested sans-I/O in
    tests/test_machine.py::test_release_collision."""
    go = threading.Event()

    def colliding_acceptor(peer: RawPeer) -> None:
        accept_association(peer)
        go.wait(WAIT_S)
        peer.send_pdu(A_RELEASE_RQ())  # before reading ours
        peer.expect(A_RELEASE_RQ)
        peer.expect(A_RELEASE_RP)  # the requestor answers first
        peer.send_pdu(A_RELEASE_RP())
        assert peer.closed_within(WAIT_S), "the requestor closes (AR-3)"

    with RawServer(colliding_acceptor) as acceptor:
        channel = request_association(HOST, acceptor.port, request(), timeouts=SHORT)
        go.set()  # its A-RELEASE-RQ is sent after the association is established
        channel.release()
        wait_until(lambda: acceptor.finished == 1, WAIT_S, "the acceptor's script")
        assert not acceptor.errors, acceptor.errors
    assert channel.machine.state is State.Sta1
    assert transitions(channel)[-4:] == [
        "Sta6 + Evt11 -> AR-1 -> Sta7",
        "Sta7 + Evt12 -> AR-8 -> Sta9",
        "Sta9 + Evt14 -> AR-9 -> Sta11",
        "Sta11 + Evt13 -> AR-3 -> Sta1",
    ]


def test_36_release_collision_as_acceptor_over_sockets() -> None:
    """ROBUSTNESS 36: our acceptor releases while the requestor does: Sta7 -> AR-8 ->
    Sta10 -> AR-10 -> Sta12 -> AR-4 -> Sta13 -> Sta1 (PS3.8 Table 9-10). Sans-I/O:
    tests/test_machine.py::test_release_collision."""
    go = threading.Event()
    channels: list[Channel] = []

    def release_at_once(channel: Channel) -> None:
        channels.append(channel)
        go.wait(WAIT_S)
        channel.release()

    policy = AcceptorPolicy("OURSCP", {VERIFICATION: (EXPLICIT_LE,)})
    server = Server(HOST, 0, lambda rq: negotiate(rq, policy), release_at_once, timeouts=SHORT)
    with server, RawClient(HOST, server.port) as peer:
        peer.associate()
        peer.send_pdu(A_RELEASE_RQ())  # before reading the acceptor's
        go.set()
        peer.expect(A_RELEASE_RQ)
        peer.send_pdu(A_RELEASE_RP())  # the requestor answers first
        peer.expect(A_RELEASE_RP)
        peer.close()  # the requestor closes after AR-3
        wait_until(lambda: channels and channels[0].machine.state is State.Sta1, WAIT_S, "Sta1")
    assert [t for t in transitions(channels[0]) if "AR-" in t] == [
        "Sta6 + Evt11 -> AR-1 -> Sta7",
        "Sta7 + Evt12 -> AR-8 -> Sta10",
        "Sta10 + Evt13 -> AR-10 -> Sta12",
        "Sta12 + Evt14 -> AR-4 -> Sta13",
        "Sta13 + Evt17 -> AR-5 -> Sta1",
    ]


def test_37_p_data_after_our_a_release_rq_is_delivered_not_aborted() -> None:
    """ROBUSTNESS 37: the peer sends a P-DATA-TF after our A-RELEASE-RQ (we are in
    Sta7), then its A-RELEASE-RP: the P-DATA is delivered (AR-6), the release
    completes, no A-ABORT."""

    def late_data(peer: RawPeer) -> None:
        accept_association(peer)
        peer.expect(A_RELEASE_RQ)
        peer.send_message(C_ECHO_RSP(message_id_being_responded_to=1, status=0))
        peer.send_pdu(A_RELEASE_RP())
        assert peer.closed_within(WAIT_S)
        assert not [p for p in peer.received if isinstance(p, A_ABORT)]

    with RawServer(late_data) as acceptor:
        channel = request_association(HOST, acceptor.port, request(), timeouts=SHORT)
        channel.release()
        wait_until(lambda: acceptor.finished == 1, WAIT_S, "the acceptor's script")
        assert not acceptor.errors, acceptor.errors
    assert channel.machine.state is State.Sta1
    assert len(channel.connection.received) == 1  # the C-ECHO-RSP, delivered
    assert transitions(channel)[-3:] == [
        "Sta6 + Evt11 -> AR-1 -> Sta7",
        "Sta7 + Evt10 -> AR-6 -> Sta7",
        "Sta7 + Evt13 -> AR-3 -> Sta1",
    ]


@pytest.mark.parametrize("after", ["rj-version", "rj-calling-ae", "release-rp", "abort"])
def test_38_a_peer_that_never_closes_is_closed_when_artim_expires(
    server: Provider, after: str
) -> None:
    """ROBUSTNESS 38: after our A-ASSOCIATE-RJ (from the provider or the user),
    A-RELEASE-RP or A-ABORT, a peer that keeps the connection open is closed by us no
    later than ARTIM (0.5 s); after an RJ or RP, not before it either (PS3.8 Sta13)."""
    with RawClient(HOST, server.port) as peer:
        if after == "rj-version":
            peer.send(patched(rq_bytes(), 6, b"\x00\x02"))
            assert peer.recv_pdu() == A_ASSOCIATE_RJ(1, 2, 2)
        elif after == "rj-calling-ae":
            peer.send(rq_bytes(calling=" "))
            assert peer.recv_pdu() == A_ASSOCIATE_RJ(1, 1, 3)
        elif after == "release-rp":
            peer.associate()
            peer.send_pdu(A_RELEASE_RQ())
            peer.expect(A_RELEASE_RP)
        else:
            peer.associate()
            peer.send(b"\x08\x00\x00\x00\x00\x00")
            assert peer.recv_pdu() == A_ABORT(2, 1)
        start = time.monotonic()
        assert peer.closed_within(ARTIM + 1.0)
        elapsed = time.monotonic() - start
    if after != "abort":
        assert elapsed >= ARTIM * 0.8, "the peer may close first until ARTIM expires"
    assert echo_status(server.port) == 0


def test_39_a_peer_that_stops_reading_during_our_c_store_is_aborted(tmp_path: Path) -> None:
    """ROBUSTNESS 39: the storage SCP accepts and then stops reading while we send a
    16 MiB instance: our send times out after the DIMSE timeout (0.5 s), we abort and
    close, and the client raises DulTimeout within the bound."""
    path = tmp_path / "big.dcm"
    ct_instance(pixels=16 << 20).save_as(path, enforce_file_format=True)
    timeouts = dataclasses.replace(SHORT, dimse=0.5)
    with RawServer(hang_after_accepting, rcvbuf=4096) as deaf:
        association = connect(deaf.port, called_ae="DEAF", timeouts=timeouts)
        start = time.monotonic()
        with pytest.raises(DulTimeout, match="sending"):
            association.store(path)
        elapsed = time.monotonic() - start
        channel = association.channel
        assert channel.sock is None and channel.machine.state is State.Sta1
    assert elapsed < 0.5 + 2.5


# --- 40: a malicious server's paths


def test_40_a_c_get_answered_with_path_uids_writes_inside_the_output_dir(tmp_path: Path) -> None:
    """ROBUSTNESS 40: a server answers our C-GET with C-STORE-RQs whose Affected SOP
    Instance UID is a path (`../../x`, `/etc/x`...): every file stays inside the output
    directory."""
    output = tmp_path / "a" / "b" / "output"

    def malicious_get(peer: RawPeer) -> None:
        accept_association(peer)
        received, get = peer.recv_message()
        assert isinstance(get, C_GET_RQ)
        storage = next(c for c, uid in peer.contexts.items() if uid == CT_IMAGE_STORAGE)
        for n, uid in enumerate(HOSTILE_UIDS, start=1):
            store = C_STORE_RQ(
                message_id=n, affected_sop_class_uid=CT_IMAGE_STORAGE, affected_sop_instance_uid=uid
            )
            peer.send_message(store, encode_dataset(ct_instance(uid), EXPLICIT_LE), storage)
            _, response = peer.recv_message()
            assert isinstance(response, C_STORE_RSP)
        done = C_GET_RSP(
            message_id_being_responded_to=get.message_id,
            status=0,
            number_of_completed_suboperations=len(HOSTILE_UIDS),
            number_of_failed_suboperations=0,
            number_of_warning_suboperations=0,
        )
        peer.send_message(done, context_id=received.context_id)
        list(peer.messages())  # until the release

    with RawServer(malicious_get) as rogue:
        contexts = client.query_contexts(Root.STUDY, "get", [CT_IMAGE_STORAGE])
        with client.connect(
            HOST,
            rogue.port,
            called_ae="ROGUE",
            contexts=contexts,
            roles=client.get_roles(contexts),
            timeouts=SHORT,
        ) as association:
            responses = list(
                association.get(
                    study_query("1.2.3"), Root.STUDY, InstanceWriter(output, fsync=False)
                )
            )
        assert responses[-1].status.code == 0
        wait_until(lambda: rogue.finished == 1, WAIT_S, "the rogue server's script")
        assert not rogue.errors, rogue.errors
    written = files_under(output)
    assert len(written) == len(HOSTILE_UIDS)
    assert all(p.name.startswith("invalid-uid-") for p in written)
    assert_all_inside(tmp_path, output)


def test_40_a_c_move_answered_with_path_uids_writes_inside_the_output_dir(tmp_path: Path) -> None:
    """ROBUSTNESS 40: a server answers our C-MOVE by sending our storage SCP C-STORE-RQs
    whose Affected SOP Instance UID is a path: every file stays inside its output
    directory."""
    output = tmp_path / "a" / "b" / "output"
    with StorageSCP(output, ae_title="OURSTORE", host=HOST, timeouts=SHORT) as ours:

        def malicious_move(peer: RawPeer) -> None:
            accept_association(peer)
            received, move_rq = peer.recv_message()
            assert isinstance(move_rq, C_MOVE_RQ)
            with RawClient(HOST, ours.port) as sender:
                sender.associate(
                    request(
                        [(CT_IMAGE_STORAGE, (EXPLICIT_LE,))], calling="ROGUE", called="OURSTORE"
                    )
                )
                for n, uid in enumerate(HOSTILE_UIDS, start=1):
                    store = C_STORE_RQ(
                        message_id=n,
                        affected_sop_class_uid=CT_IMAGE_STORAGE,
                        affected_sop_instance_uid=uid,
                    )
                    sender.send_message(store, encode_dataset(ct_instance(uid), EXPLICIT_LE))
                    _, response = sender.recv_message()
                    assert isinstance(response, C_STORE_RSP) and response.status == 0
                sender.send_pdu(A_RELEASE_RQ())
                sender.expect(A_RELEASE_RP)
            done = C_MOVE_RSP(
                message_id_being_responded_to=move_rq.message_id,
                status=0,
                number_of_completed_suboperations=len(HOSTILE_UIDS),
                number_of_failed_suboperations=0,
                number_of_warning_suboperations=0,
            )
            peer.send_message(done, context_id=received.context_id)
            list(peer.messages())

        with RawServer(malicious_move) as rogue:
            with connect(
                rogue.port, [(STUDY_ROOT_MOVE, (EXPLICIT_LE,))], called_ae="ROGUE"
            ) as association:
                *_, final = association.move(study_query("1.2.3"), Root.STUDY, "OURSTORE")
            assert final.status.code == 0
            wait_until(lambda: rogue.finished == 1, WAIT_S, "the rogue server's script")
            assert not rogue.errors, rogue.errors
    written = files_under(output)
    assert len(written) == len(HOSTILE_UIDS)
    assert all(p.name.startswith("invalid-uid-") for p in written)
    assert_all_inside(tmp_path, output)
