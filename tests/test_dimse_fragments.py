"""PDV fragmentation and reassembly (dimse.fragments; PS3.8 Annex E, D.1; PS3.7 6.3.1).

- every maximum length from 7 to the message's length + 20, and hypothesis-chosen
  ones, with the PDVs regrouped into P-DATA-TFs at random: the message comes back
  identical, and no PDU is longer than the peer's limit (docs/robustness.md 25);
- `fragment_stream` yields the same bytes as `fragment_message`, reads a large file
  one PDU at a time, and refuses a short file;
- each broken sequence of PDVs raises DimseError (docs/robustness.md 18, 20, 21, 24);
- data sets spool to a file past the threshold or go to the caller's sink, and a
  local write error is reported on the message without ending the association.
"""

from __future__ import annotations

import io
import itertools
import struct
import tracemalloc
from collections.abc import Iterable, Iterator
from typing import BinaryIO

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dimse.commands import Command, decode_command, encode_command
from dimse.errors import DimseError
from dimse.fragments import (
    RUN_BYTES,
    UNLIMITED_CHUNK,
    fragment_message,
    fragment_size,
    fragment_stream,
    stream_runs,
)
from dimse.messages import C_ECHO_RQ, C_FIND_RSP, C_STORE_RQ, C_STORE_RSP
from dimse.reassembly import Reassembler, ReceivedMessage
from dul import P_DATA_TF, PresentationDataValue, decode_pdu

PROPERTY = settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])

STORE = C_STORE_RQ(
    message_id=1,
    affected_sop_class_uid="1.2.840.10008.5.1.4.1.1.2",
    affected_sop_instance_uid="1.2.826.0.1.3680043.2.1125.1.12345678901234567890",
    move_originator_aet="MOVESCU",
    move_originator_message_id=9,
).encode()
ECHO = C_ECHO_RQ(message_id=2).encode()
STORE_RSP = C_STORE_RSP(message_id_being_responded_to=1, status=0).encode()
DATA = bytes(range(256)) + b"DICOM data set bytes " * 7 + b"\xff"


def pdus_of(chunks: Iterable[bytes | bytearray]) -> list[P_DATA_TF]:
    out = []
    for chunk in chunks:
        pdu = decode_pdu(bytes(chunk))
        assert isinstance(pdu, P_DATA_TF)
        out.append(pdu)
    return out


def reassemble(pdus: Iterable[P_DATA_TF], contexts: Iterable[int] = (1,)) -> list[ReceivedMessage]:
    reassembler = Reassembler(list(contexts))
    messages: list[ReceivedMessage] = []
    for pdu in pdus:
        messages.extend(reassembler.feed(pdu))
    assert not reassembler.in_progress
    return messages


def data_of(message: ReceivedMessage) -> bytes | None:
    data = message.data_set
    if data is None or isinstance(data, bytes):
        return data
    return data.read()


def check_pdus(
    chunks: list[bytes | bytearray], max_pdu_length: int, command: bytes, data: bytes | None
) -> None:
    """Every PDU within the limit; command fragments first; the right control bits."""
    limit = max_pdu_length or UNLIMITED_CHUNK + 6
    pdvs: list[PresentationDataValue] = []
    for chunk in chunks:
        (length,) = struct.unpack_from(">I", chunk, 2)
        assert length == len(chunk) - 6
        assert length <= limit
        pdu = decode_pdu(bytes(chunk))
        assert isinstance(pdu, P_DATA_TF)
        if len(pdu.pdvs) > 1:  # only the whole message in one PDU
            assert len(chunks) == 1 and len(pdu.pdvs) == 2
        pdvs.extend(pdu.pdvs)
    kinds = [(p.is_command, p.is_last) for p in pdvs]
    commands = [k for k in kinds if k[0]]
    assert kinds[: len(commands)] == commands  # all command fragments come first
    assert [last for _, last in commands] == [False] * (len(commands) - 1) + [True]
    assert b"".join(p.data for p in pdvs if p.is_command) == command
    datas = [last for is_command, last in kinds if not is_command]
    if data is None:
        assert not datas
    else:
        assert datas == [False] * (len(datas) - 1) + [True]
        assert b"".join(p.data for p in pdvs if not p.is_command) == data
    assert all(p.context_id == 1 and p.control in (0, 1, 2, 3) for p in pdvs)


# --------------------------------------------------------------------------------------
# Sizes


@pytest.mark.parametrize(
    ("max_pdu_length", "size"),
    [(0, UNLIMITED_CHUNK), (7, 1), (8, 2), (16384, 16378), (0xFFFFFFFF, UNLIMITED_CHUNK)],
)
def test_fragment_size(max_pdu_length: int, size: int) -> None:
    assert fragment_size(max_pdu_length) == size


@pytest.mark.parametrize("max_pdu_length", [1, 6, -1, 1 << 32])
def test_fragment_size_without_room(max_pdu_length: int) -> None:
    with pytest.raises(ValueError):
        fragment_size(max_pdu_length)
    with pytest.raises(ValueError):
        list(fragment_message(1, ECHO, None, max_pdu_length))


def test_fragment_size_cap() -> None:
    assert fragment_size(16384, max_chunk=100) == 100
    assert fragment_size(0, max_chunk=100) == 100
    with pytest.raises(ValueError):
        fragment_size(0, max_chunk=0)


# --------------------------------------------------------------------------------------
# Every fragment size reassembles identically (docs/robustness.md 25)


@pytest.mark.parametrize(
    ("command", "data"),
    [(STORE, DATA), (ECHO, None), (STORE, b""), (STORE, b"x")],
    ids=["store", "echo", "empty-data-set", "one-byte"],
)
def test_every_fragment_size_reassembles(command: bytes, data: bytes | None) -> None:
    whole = len(command) + len(data or b"") + 12
    for max_pdu_length in [*range(7, whole + 21), 0]:
        chunks: list[bytes | bytearray] = list(fragment_message(1, command, data, max_pdu_length))
        check_pdus(chunks, max_pdu_length, command, data)
        if data is not None:
            streamed = list(
                fragment_stream(1, command, io.BytesIO(data), len(data), max_pdu_length)
            )
            assert [bytes(c) for c in streamed] == [bytes(c) for c in chunks]
        [message] = reassemble(pdus_of(chunks))
        assert message.context_id == 1
        assert message.command == decode_command(command)
        assert data_of(message) == data
        assert message.error is None


def test_small_message_goes_in_one_pdu_with_two_pdvs() -> None:
    [chunk] = fragment_message(3, STORE, b"abcd", 16384)
    pdu = decode_pdu(chunk)
    assert isinstance(pdu, P_DATA_TF)
    assert [(p.context_id, p.control, len(p.data)) for p in pdu.pdvs] == [
        (3, 3, len(STORE)),
        (3, 2, 4),
    ]
    # one byte less room: command and data set travel apart
    limit = len(STORE) + 4 + 12
    assert len(list(fragment_message(3, STORE, b"abcd", limit))) == 1
    assert len(list(fragment_message(3, STORE, b"abcd", limit - 1))) == 2


def test_unlimited_peer_gets_one_mebibyte_pdvs() -> None:
    data = bytes(2 * UNLIMITED_CHUNK + 10)
    chunks = list(fragment_message(1, STORE, data, 0))
    assert [len(c) - 12 for c in chunks] == [len(STORE), UNLIMITED_CHUNK, UNLIMITED_CHUNK, 10]


def test_data_set_views_are_accepted() -> None:
    for view in (bytearray(DATA), memoryview(DATA), memoryview(bytearray(DATA))[10:]):
        [message] = reassemble(pdus_of(fragment_message(1, STORE, view, 64)))
        assert data_of(message) == bytes(view)


def _regroup(pdvs: list[PresentationDataValue], cuts: list[int]) -> list[P_DATA_TF]:
    """The same PDVs in other P-DATA-TFs: the reassembly must not care."""
    bounds = sorted({0, len(pdvs), *(c % (len(pdvs) + 1) for c in cuts)})
    return [P_DATA_TF(tuple(pdvs[a:b])) for a, b in itertools.pairwise(bounds) if b > a]


@PROPERTY
@given(
    command=st.sampled_from([STORE, ECHO, STORE_RSP]),
    data=st.binary(max_size=1500),
    max_pdu_length=st.integers(min_value=7, max_value=2000) | st.just(0),
    cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=6),
    stream=st.booleans(),
)
def test_any_fragmentation_and_grouping_reassembles(
    command: bytes, data: bytes | None, max_pdu_length: int, cuts: list[int], stream: bool
) -> None:
    if command is not STORE:  # ECHO-RQ and STORE-RSP say 0101H: no data set
        data = None
    if stream and data is not None:
        chunks = list(fragment_stream(1, command, io.BytesIO(data), len(data), max_pdu_length))
    else:
        chunks = list(fragment_message(1, command, data, max_pdu_length))
    check_pdus(chunks, max_pdu_length, command, data)
    pdvs = [pdv for pdu in pdus_of(chunks) for pdv in pdu.pdvs]
    [message] = reassemble(_regroup(pdvs, cuts))
    assert message.command == decode_command(command)
    assert data_of(message) == data


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([1, 3, 5]), st.sampled_from([STORE, ECHO]), st.binary(max_size=300)
        ),
        min_size=1,
        max_size=5,
    ),
    st.integers(min_value=7, max_value=400),
    st.lists(st.integers(min_value=0, max_value=10_000), max_size=8),
)
def test_messages_back_to_back(
    sent: list[tuple[int, bytes, bytes]], max_pdu_length: int, cuts: list[int]
) -> None:
    pdvs: list[PresentationDataValue] = []
    for context_id, command, data in sent:
        payload = data if command is STORE else None
        for chunk in fragment_message(context_id, command, payload, max_pdu_length):
            pdu = decode_pdu(chunk)
            assert isinstance(pdu, P_DATA_TF)
            pdvs.extend(pdu.pdvs)
    received = reassemble(_regroup(pdvs, cuts), contexts=(1, 3, 5))
    assert [(m.context_id, m.command, data_of(m)) for m in received] == [
        (context_id, decode_command(command), data if command is STORE else None)
        for context_id, command, data in sent
    ]


# --------------------------------------------------------------------------------------
# Streaming from a file


class ZeroFile:
    """A file of `size` zero bytes that hands out at most `step` bytes per read."""

    def __init__(self, size: int, step: int = 1 << 30) -> None:
        self.left = size
        self.step = step

    def readinto(self, buffer: memoryview, /) -> int:
        count = min(len(buffer), self.left, self.step)
        buffer[:count] = bytes(count)
        self.left -= count
        return count


def test_large_stream_is_read_one_run_at_a_time() -> None:
    size = 64 * 1024 * 1024
    tracemalloc.start()
    try:
        total = pdus = runs = 0
        for run in stream_runs(1, STORE, ZeroFile(size), size, 65536):
            assert len(run) % 2 == 0  # each PDU: the bytes before its data, its data
            for index in range(0, len(run), 2):
                assert len(run[index]) + len(run[index + 1]) <= 65536 + 6
            assert sum(len(part) for part in run) <= RUN_BYTES + 64 * 12 + len(STORE) + 12
            total += sum(len(part) for part in run)
            pdus += len(run) // 2
            runs += 1
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert pdus == 1 + -(-size // (65536 - 6))
    assert total == size + len(STORE) + 12 * pdus
    assert runs == -(-size // ((RUN_BYTES // (65536 - 6)) * (65536 - 6)))
    # One run buffer, reused, plus ZeroFile's own temporary: never the 64 MiB file.
    assert peak < 3 * RUN_BYTES


def test_short_reads_are_completed() -> None:
    chunks = list(fragment_stream(1, STORE, ZeroFile(5000, step=7), 5000, 1000))
    [message] = reassemble(pdus_of(chunks))
    assert data_of(message) == bytes(5000)


def test_stream_is_read_from_its_position_and_no_further() -> None:
    source = io.BytesIO(b"HEADER" + DATA + b"TRAILER")
    source.seek(6)
    chunks = list(fragment_stream(1, STORE, source, len(DATA), 100))
    assert source.tell() == 6 + len(DATA)
    [message] = reassemble(pdus_of(chunks))
    assert data_of(message) == DATA


@pytest.mark.parametrize("max_pdu_length", [100, 16384])
def test_short_stream_is_an_eof_error(max_pdu_length: int) -> None:
    with pytest.raises(EOFError, match="after 10 of the 500 bytes"):
        list(fragment_stream(1, STORE, io.BytesIO(bytes(10)), 500, max_pdu_length))


def test_real_file(tmp_path: pytest.TempPathFactory) -> None:
    path = tmp_path / "data.bin"  # type: ignore[operator]
    path.write_bytes(DATA * 100)
    with open(path, "rb") as f:
        chunks = list(fragment_stream(1, STORE, f, len(DATA) * 100, 4096))
    [message] = reassemble(pdus_of(chunks))
    assert data_of(message) == DATA * 100


def test_negative_length_is_refused() -> None:
    with pytest.raises(ValueError):
        list(fragment_stream(1, STORE, io.BytesIO(), -1, 100))


# --------------------------------------------------------------------------------------
# What the reassembler refuses (docs/robustness.md 18, 20, 21, 24)


def cmd(data: bytes, last: bool = True, context_id: int = 1) -> PresentationDataValue:
    return PresentationDataValue(context_id, 3 if last else 1, data)


def dat(data: bytes, last: bool = True, context_id: int = 1) -> PresentationDataValue:
    return PresentationDataValue(context_id, 2 if last else 0, data)


def feed_all(reassembler: Reassembler, *pdvs: PresentationDataValue) -> list[ReceivedMessage]:
    out: list[ReceivedMessage] = []
    for pdv in pdvs:
        out.extend(reassembler.feed(P_DATA_TF((pdv,))))
    return out


@pytest.mark.parametrize(
    ("pdvs", "words"),
    [
        ([cmd(ECHO, context_id=2)], "presentation context 2, which was not accepted"),
        (
            [cmd(STORE[:10], last=False), cmd(STORE[10:], context_id=3)],
            "in the middle of a message on context 1",
        ),
        ([cmd(STORE), dat(DATA, context_id=3)], "in the middle of a message on context 1"),
        ([dat(DATA)], "no command before it"),
        ([cmd(STORE[:10], last=False), dat(DATA)], "before the last fragment of the command"),
        (
            [cmd(STORE), dat(DATA[:5], last=False), cmd(ECHO)],
            "before the last fragment of the data set",
        ),
        ([cmd(STORE), cmd(ECHO)], "before the last fragment of the data set"),
        ([cmd(ECHO), dat(DATA)], "no command before it"),  # ECHO says 0101H: no data set
        ([cmd(b"\x08\x00\x16\x00\x10\x00\x00\x00")], "value length 16, but only 0 bytes"),
        ([cmd(ECHO[:-1])], "bytes are left"),
    ],
)
def test_broken_sequences_raise_dimse_error(pdvs: list[PresentationDataValue], words: str) -> None:
    reassembler = Reassembler({1, 3})
    with pytest.raises(DimseError, match=words):
        feed_all(reassembler, *pdvs)
    # spent: the association is being aborted
    with pytest.raises(DimseError, match=words):
        feed_all(reassembler, cmd(ECHO))


def test_p_data_without_pdv() -> None:
    with pytest.raises(DimseError, match="no PDV"):
        Reassembler({1}).feed(P_DATA_TF(()))


def test_command_over_the_cap_is_refused_before_it_is_kept() -> None:
    reassembler = Reassembler({1}, max_command_length=1000)
    feed_all(reassembler, *[cmd(bytes(100), last=False) for _ in range(10)])
    with pytest.raises(DimseError, match="longer than the 1000 bytes"):
        feed_all(reassembler, cmd(b"x", last=False))


def test_command_announcing_a_data_set_is_pending() -> None:
    reassembler = Reassembler({1})
    assert feed_all(reassembler, cmd(STORE)) == []
    assert reassembler.in_progress
    [message] = feed_all(reassembler, dat(DATA[:3], last=False), dat(DATA[3:]))
    assert data_of(message) == DATA and not reassembler.in_progress


def test_empty_fragments_are_accepted() -> None:
    reassembler = Reassembler({1})
    [message] = feed_all(
        reassembler, cmd(b"", last=False), cmd(STORE), dat(b"", last=False), dat(b"")
    )
    assert message.data_set == b""


def test_reserved_control_bits_are_ignored() -> None:
    reassembler = Reassembler({1})
    [message] = feed_all(reassembler, PresentationDataValue(1, 0xFC | 3, ECHO))
    assert message.command == decode_command(ECHO)


def test_command_without_data_set_type_has_no_data_set() -> None:
    command = encode_command({"CommandField": 0x0030, "MessageID": 1})
    [message] = feed_all(Reassembler({1}), cmd(command))
    assert message.data_set is None


# --------------------------------------------------------------------------------------
# Where the data set goes


def test_large_data_set_is_spooled_to_a_temporary_file(tmp_path: object) -> None:
    reassembler = Reassembler({1}, spool_threshold=100, spool_dir=str(tmp_path))
    chunks = list(fragment_message(1, STORE, DATA * 10, 64))
    messages = [m for pdu in pdus_of(chunks) for m in reassembler.feed(pdu)]
    [message] = messages
    assert not isinstance(message.data_set, bytes) and message.data_set is not None
    assert message.data_set.tell() == 0
    assert message.data_set.read() == DATA * 10
    message.data_set.close()


def test_small_data_set_stays_in_memory() -> None:
    [message] = reassemble(pdus_of(fragment_message(1, STORE, DATA, 64)))
    assert isinstance(message.data_set, bytes)


def test_spool_file_is_closed_on_error() -> None:
    reassembler = Reassembler({1}, spool_threshold=10)
    feed_all(reassembler, cmd(STORE), dat(DATA, last=False))
    spool = reassembler._spool
    assert spool is not None and not spool.closed
    with pytest.raises(DimseError):
        feed_all(reassembler, cmd(ECHO))
    assert spool.closed


class Sink(io.BytesIO):
    def __init__(self) -> None:
        super().__init__()
        self.was_closed = False

    def close(self) -> None:
        self.was_closed = True
        super().close()


def test_data_sink_receives_the_data_set() -> None:
    seen: list[Command] = []
    sinks: list[Sink] = []

    def sink_for(context_id: int, command: Command) -> BinaryIO | None:
        seen.append(command)
        if command.command_field != 0x0001:
            return None  # the default: memory
        sinks.append(Sink())
        return sinks[-1]

    reassembler = Reassembler({1}, spool_threshold=0, data_sink=sink_for)
    find_rsp = C_FIND_RSP(message_id_being_responded_to=1, status=0xFF00).with_data_set().encode()
    chunks = [*fragment_message(1, STORE, DATA, 50), *fragment_message(1, find_rsp, b"match", 50)]
    messages = [m for pdu in pdus_of(chunks) for m in reassembler.feed(pdu)]
    assert [c.command_field for c in seen] == [0x0001, 0x8020]
    assert messages[0].sink is sinks[0] and sinks[0].getvalue() == DATA
    assert messages[0].data_set is None  # it went to the sink
    assert not sinks[0].was_closed  # handed over, the caller's to close
    spooled = messages[1].data_set
    assert spooled is not None and not isinstance(spooled, bytes) and spooled.read() == b"match"


class FullDisk(io.BytesIO):
    def __init__(self, room: int) -> None:
        super().__init__()
        self.room = room
        self.was_closed = False

    def write(self, data: bytes) -> int:  # type: ignore[override]
        if self.tell() + len(data) > self.room:
            raise OSError(28, "No space left on device")
        return super().write(data)

    def close(self) -> None:
        self.was_closed = True
        super().close()


def test_local_write_error_is_reported_and_the_association_goes_on() -> None:
    disks: list[FullDisk] = []

    def sink_for(context_id: int, command: Command) -> BinaryIO:
        disks.append(FullDisk(room=100))
        return disks[-1]

    reassembler = Reassembler({1}, data_sink=sink_for)
    chunks = [*fragment_message(1, STORE, DATA, 64), *fragment_message(1, ECHO, None, 64)]
    messages = [m for pdu in pdus_of(chunks) for m in reassembler.feed(pdu)]
    [store, echo] = messages
    assert store.data_set is None
    assert isinstance(store.error, OSError) and store.error.errno == 28
    assert disks[0].was_closed  # the partial file is given up
    assert echo.command == decode_command(ECHO) and echo.error is None


def test_sink_factory_error_is_reported() -> None:
    def sink_for(context_id: int, command: Command) -> BinaryIO:
        raise PermissionError("archive is read-only")

    [message] = reassemble_with(
        Reassembler({1}, data_sink=sink_for), fragment_message(1, STORE, DATA, 64)
    )
    assert isinstance(message.error, PermissionError) and message.data_set is None


def reassemble_with(reassembler: Reassembler, chunks: Iterator[bytes]) -> list[ReceivedMessage]:
    return [m for pdu in pdus_of(chunks) for m in reassembler.feed(pdu)]


def busy(reassembler: Reassembler) -> bool:
    return reassembler.in_progress


def test_close_gives_up_a_partial_message() -> None:
    sink = Sink()
    reassembler = Reassembler({1}, data_sink=lambda context_id, command: sink)
    feed_all(reassembler, cmd(STORE), dat(DATA[:10], last=False))
    assert busy(reassembler)
    reassembler.close()
    assert sink.was_closed and not busy(reassembler)
    [message] = feed_all(reassembler, cmd(ECHO))
    assert message.command == decode_command(ECHO)
