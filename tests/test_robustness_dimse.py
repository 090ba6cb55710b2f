"""docs/robustness.md cases 18-28: P-DATA and DIMSE, against our server.

A raw peer (tests/rawpeer.py) makes a normal association with our `Provider` and then
sends PDVs and command sets that break PS3.8 Annex E or PS3.7: each must end in an
A-ABORT from the service provider (source 2, reason 6) or a failure status, never an
exception in the server, and the server must go on serving.
"""

from __future__ import annotations

import struct
import time
import tracemalloc
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydicom.dataset import Dataset

from dimse import datasets
from dimse.archive.instance_header import UnreadableInstance, read_header
from dimse.commands import decode_command, encode_command
from dimse.datasets import encode_dataset
from dimse.errors import DimseError
from dimse.files import part10_bytes_header, read_part10_info
from dimse.fragments import fragment_message
from dimse.messages import (
    C_ECHO_RQ,
    C_ECHO_RSP,
    C_FIND_RQ,
    C_FIND_RSP,
    C_STORE_RQ,
    C_STORE_RSP,
)
from dimse.reassembly import Reassembler
from dimse.scp import Provider
from dul import A_ABORT, P_DATA_TF, decode_pdu
from dul.errors import PduError
from tests.peers import HOST
from tests.rawpeer import (
    CT_IMAGE_STORAGE,
    DEFLATED_LE,
    EXPLICIT_LE,
    IMPLICIT_LE,
    STUDY_ROOT_FIND,
    VERIFICATION,
    EndlessFind,
    RawClient,
    archive_server,
    ct_instance,
    echo_status,
    no_unexpected_exception,  # noqa: F401  (autouse fixture)
    pdata,
    request,
)

COMMAND, LAST = 0x01, 0x02
ECHO = C_ECHO_RQ(message_id=1).encode()
BOTH = [(VERIFICATION, (EXPLICIT_LE,)), (CT_IMAGE_STORAGE, (EXPLICIT_LE,))]  # contexts 1 and 3


pytestmark = pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Provider]:
    with archive_server(tmp_path / "archive") as provider:
        yield provider


@pytest.fixture
def peer(server: Provider) -> Iterator[RawClient]:
    """A raw peer associated with our server: Verification on context 1, CT Image
    Storage on context 3, both Explicit VR Little Endian."""
    with RawClient(HOST, server.port) as raw:
        raw.associate(request(BOTH))
        yield raw
    assert echo_status(server.port) == 0, "the server still serves the next association"


def store_rq(uid: str, sop_class: str = CT_IMAGE_STORAGE, message_id: int = 1) -> C_STORE_RQ:
    return C_STORE_RQ(
        message_id=message_id, affected_sop_class_uid=sop_class, affected_sop_instance_uid=uid
    )


def store_status(peer: RawClient, message: C_STORE_RQ, data: bytes, context_id: int = 3) -> int:
    peer.send_message(message, data, context_id)
    _, response = peer.recv_message()
    assert isinstance(response, C_STORE_RSP)
    return response.status


# --- 18-21: PDVs


@pytest.mark.parametrize(
    "data",
    [
        struct.pack(">BBI", 4, 0, 0),  # no PDV at all
        struct.pack(">BBIIBB", 4, 0, 6, 1, 1, 3),  # PDV item-length 1 (under 2)
        struct.pack(">BBIIBB", 4, 0, 6, 0, 1, 3),  # PDV item-length 0
        struct.pack(">BBIIBB", 4, 0, 10, 4, 1, 3) + b"ab" + b"xyzw",  # 4 stray bytes after
        # A PDV longer than the PDU, whose bytes in the PDU are a whole C-ECHO-RQ: cut
        # short at the PDU's end, it would be answered.
        struct.pack(">BBIIBB", 4, 0, 6 + len(ECHO), len(ECHO) + 32, 1, 3) + ECHO,
    ],
    ids=["no-pdv", "pdv-length-1", "pdv-length-0", "stray-bytes", "pdv-past-pdu"],
)
def test_18_pdvs_that_do_not_fill_the_pdu_are_aborted(peer: RawClient, data: bytes) -> None:
    """ROBUSTNESS 18: a P-DATA-TF with no PDV, a PDV length under 2, PDV lengths that do
    not add up to the PDU-length: A-ABORT (2, 6)."""
    peer.send(data)
    peer.expect_abort(reason=6)


def test_18_a_pdv_length_under_2_is_aborted_when_the_next_bytes_parse(peer: RawClient) -> None:
    """ROBUSTNESS 18: a PDV item-length of 1 leaves the PDV's message control header
    outside the item; here that byte and the ones after it read as a valid last data
    set fragment of the C-ECHO-RQ before, so only the length check can refuse it:
    A-ABORT (2, 6), no C-ECHO-RSP."""
    announcing = C_ECHO_RQ(message_id=1).with_data_set(True).encode()
    peer.send(pdata(1, COMMAND | LAST, announcing))
    data = implicit(PatientID="P")
    # PDV 1: item-length 1, context 1; its control header (00H: a data set fragment,
    # not the last) is the first byte of PDV 2's item-length.
    body = struct.pack(">IB", 1, 1) + struct.pack(">IBB", len(data) + 2, 1, LAST) + data
    peer.send(struct.pack(">BBI", 4, 0, len(body)) + body)
    peer.expect_abort(reason=6)


def test_18_each_layer_refuses_a_p_data_tf_without_pdv() -> None:
    """ROBUSTNESS 18 (sans-I/O): a P-DATA-TF with no PDV is refused by the PDU decoder
    (reason 6) and, should one reach it, by the reassembler."""
    with pytest.raises(PduError) as decoded:
        decode_pdu(struct.pack(">BBI", 4, 0, 0))
    assert decoded.value.reason == 6
    with pytest.raises(DimseError, match="no PDV"):
        Reassembler({1}).feed(P_DATA_TF(()))


@pytest.mark.parametrize("pdv_length", [0xFFFFFFFF, 0xFFFFFFFE, 0xFFFFFFFA])
def test_19_a_pdv_length_near_2_to_the_32_is_aborted(peer: RawClient, pdv_length: int) -> None:
    """ROBUSTNESS 19: a PDV item-length near 2^32 (which wraps a 32-bit `+ 4` or `+ 6`):
    A-ABORT (2, 6), nothing allocated from it. The PDU holds a whole C-ECHO-RQ after
    the PDV header: a decoder that cut the PDV short at the PDU's end would answer it."""
    tracemalloc.start()
    try:
        peer.send(struct.pack(">BBIIBB", 4, 0, 6 + len(ECHO), pdv_length, 1, 3) + ECHO)
        peer.expect_abort(reason=6)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2 << 20


def test_20_a_pdv_on_a_context_not_accepted_is_aborted(peer: RawClient) -> None:
    """ROBUSTNESS 20: a PDV on presentation context 5, never proposed: A-ABORT (2, 6)."""
    peer.send(pdata(5, COMMAND | LAST, ECHO))
    peer.expect_abort(reason=6)


def test_20_a_context_that_changes_in_the_middle_of_a_message_is_aborted(peer: RawClient) -> None:
    """ROBUSTNESS 20: the first command fragment on context 1, the last on context 3
    (both accepted): A-ABORT (2, 6)."""
    peer.send(pdata(1, COMMAND, ECHO[:20]) + pdata(3, COMMAND | LAST, ECHO[20:]))
    peer.expect_abort(reason=6)


def test_21_a_data_set_fragment_before_the_command_is_complete_is_aborted(peer: RawClient) -> None:
    """ROBUSTNESS 21: a data set fragment after a command fragment that is not the last:
    A-ABORT (2, 6). The data set fragment holds the rest of the command, so that taken
    as a command fragment it would complete a valid C-STORE-RQ."""
    command = store_rq("1.2.3").with_data_set(True).encode()
    peer.send(pdata(3, COMMAND, command[:30]) + pdata(3, LAST, command[30:]))
    peer.expect_abort(reason=6)


def test_21_a_new_command_before_the_last_data_fragment_is_aborted(peer: RawClient) -> None:
    """ROBUSTNESS 21: a C-STORE command, one data set fragment that is not the last, and
    a new command on the same context (on another, the context check would refuse it
    first): A-ABORT (2, 6)."""
    command = store_rq("1.2.3").with_data_set(True).encode()
    peer.send(pdata(3, COMMAND | LAST, command) + pdata(3, 0, b"\x08\x00\x18\x00"))
    peer.send(pdata(3, COMMAND | LAST, store_rq("1.2.4", message_id=2).encode()))
    peer.expect_abort(reason=6)


def test_21_a_bad_pdv_while_the_server_looks_for_a_c_cancel_is_aborted(tmp_path: Path) -> None:
    """ROBUSTNESS 21: the same, arriving while the server is sending C-FIND responses
    and polls for a C-CANCEL between them: A-ABORT (2, 6), no exception."""
    with archive_server(tmp_path / "archive", handlers=EndlessFind) as server:
        with RawClient(HOST, server.port) as raw:
            raw.associate(request([(STUDY_ROOT_FIND, (EXPLICIT_LE,))]))
            query = Dataset()
            query.QueryRetrieveLevel = "STUDY"
            raw.send_message(
                C_FIND_RQ(message_id=1, affected_sop_class_uid=STUDY_ROOT_FIND),
                encode_dataset(query, EXPLICIT_LE),
            )
            _, first = raw.recv_message()
            assert isinstance(first, C_FIND_RSP) and first.status == 0xFF00
            raw.send(pdata(1, LAST, b"a data set with no command"))
            while isinstance(answer := raw.recv_pdu(), P_DATA_TF):
                pass  # the responses already on their way
            assert answer == A_ABORT(source=2, reason=6)
            assert raw.closed_within(5.0)
        assert echo_status(server.port) == 0


# --- 22-24: command sets


def test_22_a_command_set_without_group_length_is_accepted(peer: RawClient) -> None:
    """ROBUSTNESS 22: a C-ECHO-RQ without (0000,0000) is answered (as DCMTK does); our
    response has its (0000,0000)."""
    assert ECHO[:4] == b"\x00\x00\x00\x00"
    peer.send(pdata(1, COMMAND | LAST, ECHO[12:]))
    received, response = peer.recv_message()
    assert isinstance(response, C_ECHO_RSP) and response.status == 0
    assert received.command.group_length is not None


@pytest.mark.parametrize("length", [0x1000, 0xFFFFFFFF])
def test_23_a_command_element_longer_than_the_bytes_left_is_aborted(
    peer: RawClient, length: int
) -> None:
    """ROBUSTNESS 23: the last element of the command set says it is longer than the
    bytes left (undefined length too): A-ABORT (2, 6), no crash."""
    command = ECHO + struct.pack("<HHI", 0x0000, 0x5010, length) + b"ab"
    peer.send(pdata(1, COMMAND | LAST, command))
    peer.expect_abort(reason=6)


def test_24_an_unknown_command_field_is_answered_0211_and_the_association_goes_on(
    peer: RawClient,
) -> None:
    """ROBUSTNESS 24: an unknown Command Field with a Message ID: a response with bit 15
    set and status 0211H (Unrecognized Operation); the next C-ECHO is answered."""
    unknown = encode_command({"CommandField": 0x0FF0, "MessageID": 9, "CommandDataSetType": 0x0101})
    peer.send(pdata(1, COMMAND | LAST, unknown))
    pdu = peer.recv_pdu()
    assert isinstance(pdu, P_DATA_TF)
    command = decode_command(b"".join(p.data for p in pdu.pdvs))
    assert (command.command_field, command["Status"]) == (0x8FF0, 0x0211)
    assert command.message_id_being_responded_to == 9
    peer.send_message(C_ECHO_RQ(message_id=10), context_id=1)
    _, response = peer.recv_message()
    assert isinstance(response, C_ECHO_RSP) and response.status == 0


def test_24_a_data_set_after_a_command_that_announced_none_is_aborted(peer: RawClient) -> None:
    """ROBUSTNESS 24: a C-ECHO-RQ saying no data set follows (0101H), then a data set
    fragment: A-ABORT (2, 6)."""
    peer.send(pdata(1, COMMAND | LAST, ECHO) + pdata(1, LAST, b"\x08\x00\x18\x00"))
    while isinstance(answer := peer.recv_pdu(), P_DATA_TF):
        pass  # the C-ECHO-RSP may come first
    assert answer == A_ABORT(source=2, reason=6)


def test_24_a_command_after_one_that_announced_a_data_set_is_aborted(peer: RawClient) -> None:
    """ROBUSTNESS 24: a C-ECHO-RQ announcing a data set, then a command instead of it:
    A-ABORT (2, 6)."""
    announcing = C_ECHO_RQ(message_id=1).with_data_set(True).encode()
    peer.send(pdata(1, COMMAND | LAST, announcing) + pdata(1, COMMAND | LAST, ECHO))
    peer.expect_abort(reason=6)


# --- 25: fragmentation


def store_message(uid: str) -> tuple[bytes, bytes]:
    """(command set, data set) of a C-STORE of a small CT image."""
    data = encode_dataset(ct_instance(uid, pixels=200), EXPLICIT_LE)
    return store_rq(uid).with_data_set(True).encode(), data


def test_25_every_fragment_size_reassembles_identically() -> None:
    """ROBUSTNESS 25 (sans-I/O): command and data set cut at every fragment size from 1
    byte to more than the whole, one PDV per PDU or all PDVs in one PDU: the same
    message every time."""
    command, data = store_message("1.2.3.25")
    for size in range(1, len(command) + len(data) + 8):
        pdus = [decode_pdu(p) for p in fragment_message(3, command, data, size + 6)]
        assert all(isinstance(p, P_DATA_TF) for p in pdus)
        packed = P_DATA_TF(tuple(pdv for p in pdus for pdv in p.pdvs))  # type: ignore[union-attr]
        for feed in (pdus, [packed]):
            reassembler = Reassembler({3})
            messages = [m for p in feed for m in reassembler.feed(p)]  # type: ignore[arg-type]
            assert len(messages) == 1, size
            assert messages[0].command == decode_command(command)
            assert messages[0].data_set == data, size


def test_25_fragment_sizes_over_the_wire_store_the_same_bytes(
    server: Provider, peer: RawClient
) -> None:
    """ROBUSTNESS 25: the same C-STORE cut at many fragment sizes (1 byte, the command's
    length and its neighbours, the data set's...) over one association: each is
    stored with exactly the data set bytes sent."""
    uid = "1.2.3.2525"
    command, data = store_message(uid)
    edges = {len(command) + d for d in (-1, 0, 1)} | {len(data) + d for d in (-1, 0, 1)}
    sizes = sorted({*range(1, 18), *range(18, len(data) + 40, 37), *edges})
    stored = server.handlers.archive.root / server.handlers.archive.relative_path(uid)  # type: ignore[attr-defined]
    for size in sizes:
        for pdu in fragment_message(3, command, data, size + 6):
            peer.send(pdu)
        _, response = peer.recv_message()
        assert isinstance(response, C_STORE_RSP) and response.status == 0, size
        info = read_part10_info(stored)
        assert stored.read_bytes()[info.dataset_offset :] == data, size


# --- 26-28: data sets


def nested_sequences(depth: int) -> bytes:
    """Referenced Series Sequence (0008,1115) nested `depth` deep, Implicit VR Little
    Endian, undefined lengths: a few bytes a level, written by hand."""
    sequence = struct.pack("<HHI", 0x0008, 0x1115, 0xFFFFFFFF)
    item = struct.pack("<HHI", 0xFFFE, 0xE000, 0xFFFFFFFF)
    ends = struct.pack("<HHI", 0xFFFE, 0xE00D, 0) + struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)
    return (sequence + item) * depth + ends * depth


def implicit(**attributes: str) -> bytes:
    ds = Dataset()
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    return encode_dataset(ds, IMPLICIT_LE)


@pytest.mark.parametrize("depth", [1000, 100])
def test_26_a_query_nested_1000_deep_is_c000(server: Provider, depth: int) -> None:
    """ROBUSTNESS 26: a C-FIND identifier with sequences nested 1,000 deep: C000H,
    no RecursionError, and the association goes on. 1,000 levels exceed the
    interpreter's recursion limit while pydicom reads them (the RecursionError is
    turned into C000H); 100 levels do not, and are refused by the nesting cap
    (dimse.datasets.MAX_DEPTH, 64)."""
    with RawClient(HOST, server.port) as raw:
        raw.associate(request([(STUDY_ROOT_FIND, (IMPLICIT_LE,))]))
        identifier = implicit(QueryRetrieveLevel="STUDY") + nested_sequences(depth)
        for message_id in (1, 2):
            raw.send_message(
                C_FIND_RQ(message_id=message_id, affected_sop_class_uid=STUDY_ROOT_FIND),
                identifier,
            )
            _, response = raw.recv_message()
            assert isinstance(response, C_FIND_RSP) and response.status == 0xC000
    assert echo_status(server.port) == 0


def test_26_a_c_store_nested_1000_deep_is_c000(server: Provider) -> None:
    """ROBUSTNESS 26: a C-STORE data set with sequences nested 1,000 deep among the
    attributes the archive reads: C000H, nothing stored."""
    uid = "1.2.3.26"
    data = (
        implicit(SOPClassUID=CT_IMAGE_STORAGE, SOPInstanceUID=uid)
        + nested_sequences(1000)
        + implicit(StudyInstanceUID="1.2.3.26.1", SeriesInstanceUID="1.2.3.26.2", PatientID="P")
    )
    with RawClient(HOST, server.port) as raw:
        raw.associate(request([(CT_IMAGE_STORAGE, (IMPLICIT_LE,))]))
        assert store_status(raw, store_rq(uid), data, context_id=1) == 0xC000
    assert server.handlers.archive.count() == 0  # type: ignore[attr-defined]
    assert echo_status(server.port) == 0


def test_26_the_archive_header_reader_refuses_nesting_1000_deep(tmp_path: Path) -> None:
    """ROBUSTNESS 26 (sans-I/O): the archive's header reader turns the RecursionError
    of sequences nested 1,000 deep into UnreadableInstance. (Over the wire the
    archive's commit also catches what a reader lets out, so the C-STORE test above
    cannot tell whether this layer works.)"""
    uid = "1.2.3.26"
    header = part10_bytes_header(CT_IMAGE_STORAGE, uid, IMPLICIT_LE)
    path = tmp_path / "nested.dcm"
    path.write_bytes(
        header
        + implicit(SOPClassUID=CT_IMAGE_STORAGE, SOPInstanceUID=uid)
        + nested_sequences(1000)
        + implicit(StudyInstanceUID="1.2.3.26.1", SeriesInstanceUID="1.2.3.26.2")
    )
    with pytest.raises(UnreadableInstance, match="cannot be read"):
        read_header(path, (len(header), IMPLICIT_LE))


def test_27_a_deflate_bomb_is_refused_at_the_cap(
    server: Provider, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ROBUSTNESS 27: a deflated data set of 64 kB that inflates to 64 MiB, against a
    cap set to 1 MiB: C000H, and memory stays near the cap (the setting is read at each
    use, dimse.datasets.MAX_INFLATED)."""
    monkeypatch.setattr(datasets, "MAX_INFLATED", 1 << 20)
    uid = "1.2.3.27"
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    head = encode_dataset(ct_instance(uid, pixels=2), EXPLICIT_LE)
    bomb = compressor.compress(head) + compressor.compress(bytes(64 << 20)) + compressor.flush()
    assert len(bomb) < 100_000
    with RawClient(HOST, server.port) as raw:
        raw.associate(request([(CT_IMAGE_STORAGE, (DEFLATED_LE,))]))
        tracemalloc.start()
        try:
            start = time.monotonic()
            assert store_status(raw, store_rq(uid), bomb, context_id=1) == 0xC000
            elapsed = time.monotonic() - start
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert peak < 8 << 20, "inflated past the cap"
    assert elapsed < 2.0
    assert server.handlers.archive.count() == 0  # type: ignore[attr-defined]
    assert echo_status(server.port) == 0


@pytest.mark.parametrize("differs", ["SOPClassUID", "SOPInstanceUID"])
def test_28_a_data_set_whose_uids_differ_from_the_command_is_a900(
    server: Provider, peer: RawClient, differs: str
) -> None:
    """ROBUSTNESS 28: a C-STORE whose data set's SOP Class or Instance UID is not the
    command's: A900H, nothing stored, the association goes on."""
    uid = "1.2.3.28"
    dataset = ct_instance(uid)
    setattr(dataset, differs, "1.2.3.999")
    data = encode_dataset(dataset, EXPLICIT_LE)
    assert store_status(peer, store_rq(uid), data) == 0xA900
    assert server.handlers.archive.count() == 0  # type: ignore[attr-defined]
    data = encode_dataset(ct_instance(uid), EXPLICIT_LE)
    assert store_status(peer, store_rq(uid, message_id=2), data) == 0x0000
