"""Cutting a byte stream into PDUs (`dul.framing.Framer`, PS3.8 9.3.1).

- any split of a stream of PDUs into chunks gives the same PDUs, in order;
- a PDU is refused from its 6-byte header, before its body is kept: an unknown type
  (reason 1), a P-DATA-TF over our maximum or an association PDU over the cap, a
  fixed-size PDU whose length is not 4 (reason 6);
- after a refusal the framer is spent: it keeps raising and holds nothing;
- a stream that stops short leaves `next_pdu()` returning None.
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dul import (
    A_ABORT,
    A_ASSOCIATE_RQ,
    A_RELEASE_RP,
    A_RELEASE_RQ,
    P_DATA_TF,
    Pdu,
    PduError,
    PresentationDataValue,
    encode_pdu,
)
from dul.framing import DEFAULT_MAX_ASSOCIATION_LENGTH, Framer
from dul.items import ApplicationContextItem, PresentationContextRQItem
from tests import strategies as S

PROPERTY = settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])

RQ = A_ASSOCIATE_RQ(
    "ANY-SCP".ljust(16),
    "ECHOSCU".ljust(16),
    (
        ApplicationContextItem("1.2.840.10008.3.1.1.1"),
        PresentationContextRQItem(1, "1.2.840.10008.1.1", ("1.2.840.10008.1.2",)),
    ),
)
ECHO = P_DATA_TF((PresentationDataValue(1, 3, b"\x00" * 68),))
CONVERSATION: list[Pdu] = [RQ, ECHO, ECHO, A_RELEASE_RQ(), A_RELEASE_RP(), A_ABORT(2, 6)]


def _drain(framer: Framer) -> list[Pdu]:
    out = []
    while (pdu := framer.next_pdu()) is not None:
        out.append(pdu)
    return out


def _frame_in_chunks(stream: bytes, cuts: list[int], **limits: int) -> list[Pdu]:
    framer = Framer(**limits)
    out: list[Pdu] = []
    bounds = [0, *sorted(set(cuts)), len(stream)]
    for start, stop in itertools.pairwise(bounds):
        framer.feed(stream[start:stop])
        out.extend(_drain(framer))
    assert framer.buffered == 0
    assert framer.next_pdu() is None
    return out


def _refused(framer: Framer) -> PduError:
    with pytest.raises(PduError) as exc:
        framer.next_pdu()
    return exc.value


# --------------------------------------------------------------------------------------
# Any chunking frames identically


@st.composite
def streams_and_cuts(draw: st.DrawFn) -> tuple[list[Pdu], bytes, list[int]]:
    pdus = draw(S.pdu_streams)
    stream = b"".join(encode_pdu(p) for p in pdus)
    cuts = draw(st.lists(st.integers(0, len(stream)), max_size=min(len(stream), 40)))
    return pdus, stream, cuts


@pytest.mark.slow
@PROPERTY
@given(streams_and_cuts())
def test_any_chunking_frames_to_the_same_pdus(case: tuple[list[Pdu], bytes, list[int]]) -> None:
    pdus, stream, cuts = case
    assert _frame_in_chunks(stream, cuts, max_pdata_length=0) == pdus


@pytest.mark.slow
@PROPERTY
@given(streams_and_cuts())
def test_next_raw_gives_each_pdus_bytes(case: tuple[list[Pdu], bytes, list[int]]) -> None:
    pdus, stream, cuts = case
    framer = Framer(max_pdata_length=0)
    raws: list[bytes] = []
    bounds = [0, *sorted(set(cuts)), len(stream)]
    for start, stop in itertools.pairwise(bounds):
        framer.feed(memoryview(stream)[start:stop])
        while (raw := framer.next_raw()) is not None:
            raws.append(raw)
    assert raws == [encode_pdu(p) for p in pdus]


def test_byte_by_byte_feeding() -> None:
    stream = b"".join(encode_pdu(p) for p in CONVERSATION)
    framer = Framer()
    out: list[Pdu] = []
    for i in range(len(stream)):
        framer.feed(stream[i : i + 1])
        out.extend(_drain(framer))
        assert framer.buffered <= i + 1
    assert out == CONVERSATION
    assert framer.buffered == 0


def test_the_whole_stream_at_once() -> None:
    stream = b"".join(encode_pdu(p) for p in CONVERSATION)
    framer = Framer()
    framer.feed(bytearray(stream))
    assert _drain(framer) == CONVERSATION


def test_a_pdu_is_given_out_only_when_its_last_byte_arrives() -> None:
    data = encode_pdu(ECHO)
    framer = Framer()
    framer.feed(data[:-1])
    assert framer.next_pdu() is None
    assert framer.next_raw() is None
    assert framer.buffered == len(data) - 1
    framer.feed(data[-1:])
    assert framer.next_pdu() == ECHO
    assert framer.next_pdu() is None


# --------------------------------------------------------------------------------------
# Refused from the header, nothing buffered


@pytest.mark.parametrize("limit", [16384, 4096, 1])
def test_oversized_p_data_tf_is_refused_from_its_header(limit: int) -> None:
    framer = Framer(max_pdata_length=limit)
    framer.feed(bytes((0x04, 0)) + (limit + 1).to_bytes(4, "big"))
    assert framer.buffered == 6
    error = _refused(framer)
    assert error.reason == 6
    assert str(limit + 1) in str(error) and str(limit) in str(error)
    assert framer.buffered == 0


def test_oversized_p_data_tf_is_refused_with_its_body_dropped() -> None:
    framer = Framer(max_pdata_length=16384)
    framer.feed(b"\x04\x00\xff\xff\xff\xff" + bytes(60000))
    error = _refused(framer)
    assert error.reason == 6
    assert "4294967295" in str(error)
    assert framer.buffered == 0
    framer.feed(bytes(60000))  # the rest of the body: not kept
    assert framer.buffered == 0


def test_p_data_tf_at_the_limit_is_accepted() -> None:
    pdu = P_DATA_TF((PresentationDataValue(1, 0, bytes(16384 - 6)),))
    data = encode_pdu(pdu)
    assert int.from_bytes(data[2:6], "big") == 16384
    framer = Framer(max_pdata_length=16384)
    framer.feed(data)
    assert framer.next_pdu() == pdu


def test_max_pdata_length_0_means_no_limit() -> None:
    framer = Framer(max_pdata_length=0)
    framer.feed(b"\x04\x00\xff\xff\xff\xff")
    assert framer.next_pdu() is None
    assert framer.buffered == 6


@pytest.mark.parametrize("pdu_type", [0x01, 0x02])
def test_association_pdu_over_the_cap_is_refused(pdu_type: int) -> None:
    framer = Framer()
    framer.feed(bytes((pdu_type, 0)) + (DEFAULT_MAX_ASSOCIATION_LENGTH + 1).to_bytes(4, "big"))
    error = _refused(framer)
    assert error.reason == 6
    assert framer.buffered == 0
    small = Framer(max_association_length=100)
    small.feed(b"\x01\x00\xff\xff\xff\xff" + bytes(100))
    assert _refused(small).reason == 6
    assert small.buffered == 0


def test_association_pdu_at_the_cap_is_waited_for() -> None:
    framer = Framer(max_association_length=1000)
    framer.feed(b"\x01\x00" + (1000).to_bytes(4, "big"))
    assert framer.next_pdu() is None


@pytest.mark.parametrize(
    "first",
    [b"\x00", b"\x08", b"\xff", b"GET / HTTP/1.1\r\n", b"\x16\x03\x01\x02\x00\x01"],
)
def test_unknown_type_is_refused_at_the_first_header(first: bytes) -> None:
    framer = Framer()
    framer.feed((first + b"\x00\x00\x00\x00\x04\x00\x00\x00\x00")[: max(6, len(first))])
    error = _refused(framer)
    assert error.reason == 1
    assert framer.buffered == 0


def test_unknown_type_after_valid_pdus() -> None:
    framer = Framer()
    framer.feed(encode_pdu(A_RELEASE_RQ()) + b"GET / HTTP/1.1\r\n")
    assert framer.next_pdu() == A_RELEASE_RQ()
    assert _refused(framer).reason == 1


@pytest.mark.parametrize("pdu_type", [0x03, 0x05, 0x06, 0x07])
@pytest.mark.parametrize("length", [0, 3, 5, 6, 0xFFFF, 0xFFFFFFFF])
def test_fixed_size_pdu_with_length_not_4_is_refused(pdu_type: int, length: int) -> None:
    framer = Framer()
    framer.feed(bytes((pdu_type, 0)) + length.to_bytes(4, "big"))
    error = _refused(framer)
    assert error.reason == 6
    assert "not 4" in str(error)
    assert framer.buffered == 0


# --------------------------------------------------------------------------------------
# A spent framer


@pytest.mark.parametrize(
    "bad",
    [
        b"\xff\x00\x00\x00\x00\x04\x00\x00\x00\x00",  # refused from the header
        b"\x04\x00\x00\x00\x00\x05\x00\x00\x00\x01\x01",  # refused by the decoder
    ],
)
def test_after_an_error_the_framer_keeps_raising(bad: bytes) -> None:
    framer = Framer()
    framer.feed(encode_pdu(A_RELEASE_RQ()) + bad)
    assert framer.next_pdu() == A_RELEASE_RQ()
    first = _refused(framer)
    assert framer.buffered == 0
    for _ in range(3):
        framer.feed(encode_pdu(A_RELEASE_RP()))
        assert framer.buffered == 0
        assert _refused(framer) is first
        with pytest.raises(PduError) as again:
            framer.next_raw()
        assert again.value is first


# --------------------------------------------------------------------------------------
# A stream that stops short


@pytest.mark.slow
@PROPERTY
@given(S.pdu_streams, st.data())
def test_truncated_stream_leaves_next_pdu_none(pdus: list[Pdu], data: st.DataObject) -> None:
    stream = b"".join(encode_pdu(p) for p in pdus)
    cut = data.draw(st.integers(0, len(stream) - 1))
    framer = Framer(max_pdata_length=0)
    framer.feed(stream[:cut])
    out = _drain(framer)
    assert out == pdus[: len(out)]
    assert len(out) < len(pdus)
    assert framer.next_pdu() is None
    assert framer.next_pdu() is None
    consumed = sum(len(encode_pdu(p)) for p in out)
    assert framer.buffered == cut - consumed


def test_an_empty_framer_gives_none() -> None:
    framer = Framer()
    assert framer.next_pdu() is None
    assert framer.next_raw() is None
    framer.feed(b"")
    assert framer.next_pdu() is None
    assert framer.buffered == 0
