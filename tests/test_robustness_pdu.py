"""docs/robustness.md cases 1-17: the PDU and item layer, against our server.

Each test sends exact bytes from a raw peer (tests/rawpeer.py) to our `Provider`
serving a temporary archive with ARTIM 0.5 s, checks the answer byte for byte (the
A-ABORT's source and reason, the A-ASSOCIATE-RJ's result, source and reason), that
the connection is closed, and that the server then serves a normal association.
"""

from __future__ import annotations

import dataclasses
import select
import struct
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from dimse.fragments import fragment_message
from dimse.messages import C_ECHO_RQ, C_ECHO_RSP
from dimse.scp import DEFAULT_MAX_PDU, Provider
from dul import A_ASSOCIATE_AC, A_ASSOCIATE_RJ, A_RELEASE_RP
from dul.drivers.server import Server
from dul.errors import AssociationRejected
from dul.fields import RawItem
from dul.items import PresentationContextRQItem
from dul.negotiation import AcceptorPolicy, ProposedContext, build_request, negotiate
from dul.pdu import encode_pdu
from tests.peers import HOST, wait_until
from tests.rawpeer import (
    CT_IMAGE_STORAGE,
    EXPLICIT_LE,
    SHORT,
    VERIFICATION,
    WAIT_S,
    RawClient,
    archive_server,
    connect,
    ct_instance,
    echo_status,
    files_under,
    item_of,
    no_unexpected_exception,  # noqa: F401  (autouse fixture)
    patched,
    request,
    rq_bytes,
    serving_thread_gone,
    with_item_length,
    with_reserved_bytes,
    with_sub_item,
)

ARTIM = SHORT.artim


pytestmark = pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Provider]:
    with archive_server(tmp_path / "archive") as provider:
        yield provider


def header(pdu_type: int, length: int) -> bytes:
    """The 6-byte header of a PDU, without its body."""
    return struct.pack(">BBI", pdu_type, 0, length)


def peak_memory(action: Callable[[], None]) -> int:
    """The peak of the memory that Python allocated (every thread) while `action` ran."""
    tracemalloc.start()
    try:
        action()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def echo_over(peer: RawClient) -> int:
    """A C-ECHO on the raw peer's association; the response's status."""
    peer.send_message(C_ECHO_RQ(message_id=7))
    _, response = peer.recv_message()
    assert isinstance(response, C_ECHO_RSP) and response.message_id_being_responded_to == 7
    return response.status


# --- 1-3: silence and slowness


def test_01_a_silent_connection_is_closed_when_artim_expires(server: Provider) -> None:
    """ROBUSTNESS 1: a connection that sends nothing is closed when ARTIM expires (no PDU,
    PS3.8 AA-2), and its thread and socket are freed."""
    with RawClient(HOST, server.port) as peer:
        start = time.monotonic()
        assert peer.closed_within(WAIT_S)
        elapsed = time.monotonic() - start
        assert not peer.raw, "closed without a PDU (AA-2)"
        wait_until(lambda: serving_thread_gone(peer), WAIT_S, "the connection's thread ended")
    assert ARTIM * 0.9 <= elapsed < ARTIM + 1.0
    assert echo_status(server.port) == 0


def test_02_hundreds_of_silent_connections_leave_room_for_a_normal_one(tmp_path: Path) -> None:
    """ROBUSTNESS 2: 300 silent connections at once, over a limit of 8 associations:
    a normal association still succeeds (only established associations count). Room
    is made for all 300 (max_pending): here every one must stay open; past that limit
    the longest waiting goes (ROBUSTNESS 48, tests/test_robustness_round2.py)."""
    timeouts = dataclasses.replace(SHORT, artim=10.0)  # they all stay open meanwhile
    with archive_server(
        tmp_path / "archive", timeouts=timeouts, max_associations=8, max_pending=400
    ) as server:
        silent = [RawClient(HOST, server.port) for _ in range(300)]
        try:
            assert echo_status(server.port) == 0
            poller = select.poll()
            for peer in silent:
                poller.register(peer.sock, select.POLLIN)
            assert not poller.poll(0), "every silent connection was still open"
        finally:
            for peer in silent:
                peer.close()


def test_03_a_trickled_request_is_closed_at_the_read_deadline(server: Provider) -> None:
    """ROBUSTNESS 3: an A-ASSOCIATE-RQ trickled a byte at a time is closed when ARTIM
    expires: bytes arriving do not restart it."""
    data = rq_bytes()
    with RawClient(HOST, server.port) as peer:
        start = time.monotonic()
        peer.trickle(data, interval=0.05)
        assert peer.closed_within(WAIT_S)
        elapsed = time.monotonic() - start
    assert ARTIM * 0.9 <= elapsed < ARTIM + 1.0
    assert 0 < peer.sent < len(data)
    assert not peer.received
    assert echo_status(server.port) == 0


# --- 4-8: PDU headers and lengths


@pytest.mark.parametrize(
    "data",
    [
        header(0x00, 0xFFFFFFFF),
        header(0x08, 0xFFFFFFFF),
        header(0xFF, 0xFFFFFFFF),
        b"GET / HTTP/1.1\r\n",
    ],
    ids=["type-00", "type-08", "type-FF", "http"],
)
def test_04_an_unknown_pdu_type_is_aborted_reason_1(server: Provider, data: bytes) -> None:
    """ROBUSTNESS 4: unknown PDU types (and an HTTP request): A-ABORT (2, 1), nothing
    allocated from the length field (the header alone is sent: 4 GiB declared)."""

    def run() -> None:
        with RawClient(HOST, server.port) as peer:
            peer.send(data)
            peer.expect_abort(reason=1)

    assert peak_memory(run) < 2 << 20
    assert echo_status(server.port) == 0


def test_04_an_unknown_pdu_type_on_an_established_association(server: Provider) -> None:
    """ROBUSTNESS 4: the same once the association is established (PS3.8 AA-8)."""
    with RawClient(HOST, server.port) as peer:
        peer.associate()
        peer.send(header(0x08, 4) + b"junk")
        peer.expect_abort(reason=1)
    assert echo_status(server.port) == 0


@pytest.mark.parametrize("length", [0xFFFFFFFF, (1 << 20) + 1])
def test_05_a_huge_a_associate_rq_is_refused_from_its_header(server: Provider, length: int) -> None:
    """ROBUSTNESS 5: an A-ASSOCIATE-RQ longer than the 1 MiB cap is refused from its
    6-byte header, before its body is sent or buffered: A-ABORT (2, 6)."""

    def run() -> None:
        with RawClient(HOST, server.port) as peer:
            peer.send(header(0x01, length))
            peer.expect_abort(reason=6)

    assert peak_memory(run) < 2 << 20
    assert echo_status(server.port) == 0


def test_05_the_association_pdu_cap_is_configurable() -> None:
    """ROBUSTNESS 5: the cap is a setting of the server (here 4 KiB)."""
    policy = AcceptorPolicy("OURSCP", {VERIFICATION: (EXPLICIT_LE,)})
    server = Server(
        HOST,
        0,
        lambda rq: negotiate(rq, policy),
        lambda ch: None,
        timeouts=SHORT,
        max_association_length=4096,
    )
    with server:
        with RawClient(HOST, server.port) as peer:
            peer.send(header(0x01, 4097))
            peer.expect_abort(reason=6)
        with RawClient(HOST, server.port) as peer:
            peer.send(rq_bytes())  # under 4 KiB
            peer.expect(A_ASSOCIATE_AC)


def test_06_a_p_data_tf_over_our_maximum_is_aborted_reason_6(server: Provider) -> None:
    """ROBUSTNESS 6: a P-DATA-TF longer than the maximum we advertised: A-ABORT (2, 6)
    from its header alone."""
    with RawClient(HOST, server.port) as peer:
        ac = peer.associate()
        ours = ac.user_information.maximum_length
        assert ours == DEFAULT_MAX_PDU
        peer.send(header(0x04, ours + 1))
        peer.expect_abort(reason=6)
    assert echo_status(server.port) == 0


@pytest.mark.parametrize("established", [False, True], ids=["request", "p-data"])
def test_07_a_pdu_cut_short_by_the_end_of_the_stream_is_a_clean_teardown(
    server: Provider, established: bool
) -> None:
    """ROBUSTNESS 7: fewer bytes than declared, then end of stream: the server closes
    the connection (PS3.8 Evt17: AA-5, AA-4), raises nothing, frees the thread."""
    with RawClient(HOST, server.port) as peer:
        if established:
            peer.associate()
            peer.send(header(0x04, 100) + b"\x00\x00\x00\x60\x01\x03" + b"x" * 20)
        else:
            data = rq_bytes()
            peer.send(data[: len(data) // 2])
        peer.half_close()
        start = time.monotonic()
        assert peer.closed_within(WAIT_S)
        assert time.monotonic() - start < ARTIM, "closed at the end of stream, not by a timer"
        assert not [p for p in peer.received if not isinstance(p, A_ASSOCIATE_AC)]
        wait_until(lambda: serving_thread_gone(peer), WAIT_S, "the connection's thread ended")
    assert echo_status(server.port) == 0


@pytest.mark.parametrize(
    ("item_type", "parent", "length"),
    [
        (0x30, 0x20, 0xFFFF),  # abstract syntax sub-item past its presentation context
        (0x20, 0, 0xFFFF),  # presentation context past the PDU (0xFFFF + 4 wraps in 16 bits)
        (0x50, 0, 0xFFFD),  # user information past the PDU
        (0x51, 0x50, 0xFFFE),  # maximum length sub-item past its user information
        (0x20, 0, 2),  # a presentation context shorter than its fixed fields
    ],
    ids=["sub-item", "item-FFFF", "user-info-FFFD", "max-length-FFFE", "item-too-short"],
)
def test_08_an_item_length_past_its_parent_is_aborted(
    server: Provider, item_type: int, parent: int, length: int
) -> None:
    """ROBUSTNESS 8: an item or sub-item whose length runs past its parent, or wraps
    when 4 is added: A-ABORT (2, 6), invalid PDU parameter value."""
    data = rq_bytes()
    data = with_item_length(data, item_of(data, item_type, parent), length)
    with RawClient(HOST, server.port) as peer:
        peer.send(data)
        peer.expect_abort(reason=6)
    assert echo_status(server.port) == 0


def test_08_a_presentation_context_shorter_than_its_fixed_fields_is_aborted(
    server: Provider,
) -> None:
    """ROBUSTNESS 8: a whole presentation context item 2 bytes long (its ID and a
    reserved byte; the fixed fields are 4): A-ABORT (2, 6). Unlike `item-too-short`
    above, nothing follows it that fails to parse, so only the item's own check
    refuses it."""
    with RawClient(HOST, server.port) as peer:
        peer.send(rq_bytes(extra_items=[RawItem(0x20, b"\x05\x00")]))
        peer.expect_abort(reason=6)
    assert echo_status(server.port) == 0


# --- 9-14: the content of the A-ASSOCIATE-RQ


def test_09_unknown_items_are_skipped_and_the_association_succeeds(server: Provider) -> None:
    """ROBUSTNESS 9: unknown items in the PDU, in a presentation context and in the user
    information are skipped; the association succeeds and serves."""
    data = rq_bytes(extra_items=[RawItem(0x99, b"unknown item")])
    data = with_sub_item(data, item_of(data, 0x20), bytes([0x77, 0, 0, 3]) + b"abc")
    data = with_sub_item(data, item_of(data, 0x50), bytes([0x5F, 0, 0, 2]) + b"xy")
    with RawClient(HOST, server.port) as peer:
        peer.send(data)
        ac = peer.expect(A_ASSOCIATE_AC)
        assert [pc.result for pc in ac.presentation_contexts] == [0]
        peer.set_contexts({1: VERIFICATION})
        assert echo_over(peer) == 0


def test_10_nonzero_reserved_bytes_are_ignored(server: Provider) -> None:
    """ROBUSTNESS 10: every reserved byte set to FFH, in the A-ASSOCIATE-RQ, a P-DATA-TF
    and the A-RELEASE-RQ: all ignored, the association works and releases."""
    rq = request()
    with RawClient(HOST, server.port) as peer:
        peer.send(with_reserved_bytes(encode_pdu(rq)))
        ac = peer.expect(A_ASSOCIATE_AC)
        assert [pc.result for pc in ac.presentation_contexts] == [0]
        peer.set_contexts({1: VERIFICATION})
        (pdu,) = fragment_message(1, C_ECHO_RQ(message_id=3).encode(), None, 16384)
        peer.send(patched(pdu, 1, b"\xff"))
        _, response = peer.recv_message()
        assert isinstance(response, C_ECHO_RSP) and response.status == 0
        peer.send(b"\x05\xff\x00\x00\x00\x04\xff\xff\xff\xff")
        peer.expect(A_RELEASE_RP)
        assert peer.closed_within(WAIT_S)


@pytest.mark.parametrize(
    ("version", "accepted"), [(0x0002, False), (0x0000, False), (0x0003, True)]
)
def test_11_a_protocol_version_without_bit_0_is_rejected(
    server: Provider, version: int, accepted: bool
) -> None:
    """ROBUSTNESS 11: protocol version without bit 0 set: A-ASSOCIATE-RJ (1, 2, 2);
    with bit 0 set (and others too) the association is accepted."""
    with RawClient(HOST, server.port) as peer:
        peer.send(patched(rq_bytes(), 6, struct.pack(">H", version)))
        answer = peer.recv_pdu()
        if accepted:
            assert isinstance(answer, A_ASSOCIATE_AC)
        else:
            assert answer == A_ASSOCIATE_RJ(result=1, source=2, reason=2)
    assert echo_status(server.port) == 0


def test_12_presentation_context_ids_zero_even_or_repeated(server: Provider) -> None:
    """ROBUSTNESS 12: IDs 0 and 2 are answered with result 2 (no-reason, provider
    rejection); a repeated ID is answered once, for its first proposal (as documented
    in dul/negotiation.py)."""
    contexts = [
        PresentationContextRQItem(0, VERIFICATION, (EXPLICIT_LE,)),
        PresentationContextRQItem(2, VERIFICATION, (EXPLICIT_LE,)),
        PresentationContextRQItem(1, VERIFICATION, (EXPLICIT_LE,)),
        PresentationContextRQItem(1, CT_IMAGE_STORAGE, (EXPLICIT_LE,)),
    ]
    rq = request(contexts=())
    rq = dataclasses.replace(rq, items=(rq.items[0], *contexts, *rq.items[1:]))
    with RawClient(HOST, server.port) as peer:
        peer.send_pdu(rq)
        ac = peer.expect(A_ASSOCIATE_AC)
        answers = [(pc.context_id, pc.result) for pc in ac.presentation_contexts]
        assert answers == [(0, 2), (2, 2), (1, 0)]
        peer.set_contexts({1: VERIFICATION})
        assert echo_over(peer) == 0  # context 1 is the first proposal: Verification


@pytest.mark.parametrize("count", [129, 10_000])
def test_13_too_many_presentation_contexts_are_refused_quickly(
    server: Provider, count: int
) -> None:
    """ROBUSTNESS 13: more than 128 presentation contexts, or 10,000 in one 520 kB
    request: A-ASSOCIATE-RJ (1, 2, 1) within 2 s and a bounded amount of memory."""
    contexts = [
        ProposedContext(VERIFICATION, (EXPLICIT_LE,), context_id=(2 * i + 1) % 256)
        for i in range(count)
    ]
    data = encode_pdu(build_request("RAWSCU", "OURSCP", contexts))

    def run() -> None:
        with RawClient(HOST, server.port) as peer:
            start = time.monotonic()
            peer.send(data)
            assert peer.recv_pdu() == A_ASSOCIATE_RJ(result=1, source=2, reason=1)
            assert time.monotonic() - start < 2.0

    assert peak_memory(run) < 20 * len(data) + (2 << 20)
    assert echo_status(server.port) == 0


@pytest.mark.parametrize(
    "extra",
    [
        RawItem(0x51, b"\x00\x40"),  # maximum length sub-item 2 bytes long
        RawItem(0x51, b"\x00\x00\x40\x00\x00"),  # ... and 5 bytes long
        RawItem(0x54, b"\x00\x40" + b"1.2.3" + b"\x01\x00"),  # role UID length 64 > 5 left
        RawItem(0x54, b"\x00\x03" + b"1.2.3" + b"\x01\x00"),  # role UID length 3: 4 bytes left
        RawItem(0x56, b"\x00\x40" + b"1.2.3" + b"\x01\x00"),  # extended negotiation: the same
    ],
    ids=["max-length-2", "max-length-5", "role-uid-overrun", "role-uid-short", "ext-uid-overrun"],
)
def test_14_malformed_sub_items_are_aborted(server: Provider, extra: RawItem) -> None:
    """ROBUSTNESS 14: a maximum-length sub-item whose length is not 4, a role selection
    whose UID length overruns it or leaves more than its two role bytes, an extended
    negotiation sub-item whose UID length overruns it: A-ABORT (2, 6), never a crash.
    (A role UID that overruns is refused twice over: by the UID's bound and by the
    count of bytes after it; the other two sub-items test each check alone.)"""
    with RawClient(HOST, server.port) as peer:
        peer.send(rq_bytes(extra_user_items=[extra]))
        peer.expect_abort(reason=6)
    assert echo_status(server.port) == 0


def test_14_a_presentation_context_without_transfer_syntax_is_refused(server: Provider) -> None:
    """ROBUSTNESS 14: a presentation context with no transfer syntax is refused with
    result 4 (transfer-syntaxes-not-supported); the others are negotiated."""
    rq = request(contexts=[(CT_IMAGE_STORAGE, ()), (VERIFICATION, (EXPLICIT_LE,))])
    with RawClient(HOST, server.port) as peer:
        ac = peer.associate(rq)
        answers = [(pc.context_id, pc.result) for pc in ac.presentation_contexts]
        assert answers == [(1, 4), (3, 0)]
        assert echo_over(peer) == 0


# --- 15-17: who may associate


HOSTILE_AE_TITLES = ["                ", "EVIL\x1b[2J\n", "A\\B", "../..", "a/b", "\x00\x07"]


def raw_control_bytes_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if any(ord(c) < 32 for c in r.getMessage())]


@pytest.mark.parametrize("calling", HOSTILE_AE_TITLES)
def test_15_hostile_calling_ae_titles_are_rejected_by_an_allow_list(
    tmp_path: Path, calling: str, caplog: pytest.LogCaptureFixture
) -> None:
    """ROBUSTNESS 15: a calling AE title all spaces, with control bytes, '/', '\\' or
    '..': rejected (1, 1, 3) where an allow-list applies, and logged escaped."""
    caplog.set_level("DEBUG")
    allowed = {"GOODSCU"}.__contains__
    with archive_server(tmp_path / "archive", calling_ae_allowed=allowed) as server:
        with RawClient(HOST, server.port) as peer:
            peer.send(rq_bytes(calling=calling))
            assert peer.recv_pdu() == A_ASSOCIATE_RJ(result=1, source=1, reason=3)
        assert echo_status_as(server.port, "GOODSCU") == 0
    rejections = [r.getMessage() for r in caplog.records if "rejected" in r.getMessage()]
    assert any(repr(calling.ljust(16)) in m for m in rejections), rejections
    assert not raw_control_bytes_logged(caplog)


def test_15_a_called_ae_title_with_control_bytes_is_logged_escaped(
    server: Provider, caplog: pytest.LogCaptureFixture
) -> None:
    """ROBUSTNESS 15: the called AE title is not checked here, so a hostile one is
    accepted; it is logged escaped, never raw."""
    caplog.set_level("INFO")
    called = "US\x1b[2J\nFAKE"
    with RawClient(HOST, server.port) as peer:
        peer.associate(request(called=called))
        assert echo_over(peer) == 0
    wait_until(lambda: serving_thread_gone(peer), WAIT_S, "the association ended")
    assert any(repr(called) in r.getMessage() for r in caplog.records)
    assert not raw_control_bytes_logged(caplog)


@pytest.mark.parametrize(
    ("calling", "accepted"),
    [
        ("                ", False),
        ("EVIL\x1b[2J\n", False),
        ("A\\B", False),
        ("../..", True),
        ("a/b", True),
    ],
)
def test_15_without_an_allow_list_only_invalid_titles_are_rejected_and_none_is_a_path(
    tmp_path: Path, calling: str, accepted: bool
) -> None:
    """ROBUSTNESS 15: with no allow-list, a title that is no AE title (PS3.5: blank,
    control bytes, backslash) is rejected (1, 1, 3); '/' and '..' are valid characters,
    accepted, and never used in a path: what the caller stores stays in the archive."""
    root = tmp_path / "a" / "b" / "archive"
    with archive_server(root) as server:
        with RawClient(HOST, server.port) as peer:
            peer.send(rq_bytes(calling=calling, contexts=[(CT_IMAGE_STORAGE, (EXPLICIT_LE,))]))
            answer = peer.recv_pdu()
            if not accepted:
                assert answer == A_ASSOCIATE_RJ(result=1, source=1, reason=3)
                return
            assert isinstance(answer, A_ASSOCIATE_AC)
        with connect(server.port, calling_ae=calling) as association:
            assert association.store(ct_instance()).status.code == 0
    for path in files_under(tmp_path):
        assert path.is_relative_to(root), path


def echo_status_as(port: int, calling: str, called: str = "OURSCP") -> int:
    with connect(port, calling_ae=calling, called_ae=called) as association:
        return association.echo().code


def test_16_ae_titles_not_allowed_are_rejected(tmp_path: Path) -> None:
    """ROBUSTNESS 16: a calling AE title not on the allow-list: A-ASSOCIATE-RJ (1, 1, 3);
    a wrong called AE title while it is checked: (1, 1, 7)."""
    options = {"calling_ae_allowed": {"GOODSCU"}.__contains__, "check_called_ae": True}
    with archive_server(tmp_path / "archive", **options) as server:
        with pytest.raises(AssociationRejected) as stranger:
            echo_status_as(server.port, "STRANGER")
        assert (stranger.value.result, stranger.value.source, stranger.value.reason) == (1, 1, 3)
        with pytest.raises(AssociationRejected) as wrong:
            echo_status_as(server.port, "GOODSCU", called="NOTUS")
        assert (wrong.value.result, wrong.value.source, wrong.value.reason) == (1, 1, 7)
        assert echo_status_as(server.port, "GOODSCU") == 0


def test_17_over_the_association_limit_is_accepted_at_tcp_then_rejected(tmp_path: Path) -> None:
    """ROBUSTNESS 17: over the association limit the connection is accepted at TCP and
    answered A-ASSOCIATE-RJ (2, 3, 2); once a place is free, a new one succeeds."""
    with archive_server(tmp_path / "archive", max_associations=1) as server:
        with connect(server.port) as first:
            with RawClient(HOST, server.port) as peer:
                peer.send(rq_bytes())
                assert peer.recv_pdu() == A_ASSOCIATE_RJ(result=2, source=3, reason=2)
            assert first.echo().code == 0
        wait_until(lambda: server.server.active_associations == 0, WAIT_S, "the first ended")
        assert echo_status(server.port) == 0
