"""Properties of the PDU codec (`dul.decode_pdu`, `dul.encode_pdu`), with hypothesis.

- every PDU and every item survives encode then decode;
- bytes of a PDU survive decode then encode, whether written by our encoder or
  assembled field by field from the standard's tables;
- arbitrary bytes, garbage inside correct framing and mutations of valid PDUs raise
  nothing but `PduError`, and whatever does decode is stable;
- a length field is never trusted for an allocation.

Regression inputs found by fuzzing (fuzz/) are at the end of this file.
"""

from __future__ import annotations

import time
import tracemalloc

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dul import PduError, decode_pdu, encode_pdu
from dul.framing import Framer
from dul.items import encode_item, iter_items
from tests import strategies as S

PROPERTY = settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])

#: The parent context in which each item type is known (dul.items.WHERE).
_CONTEXT = {
    0x10: "PDU",
    0x20: "PDU",
    0x21: "PDU",
    0x50: "PDU",
    0x30: "Presentation Context Item (20H)",
    0x40: "Presentation Context Item (20H)",
}


def _decodes_or_pdu_error(data: bytes) -> None:
    """decode_pdu either raises PduError or gives a PDU that round-trips stably."""
    try:
        pdu = decode_pdu(data)
    except PduError as exc:
        assert int(exc.reason) in (0, 1, 2, 4, 5, 6)
        return
    encoded = encode_pdu(pdu)
    assert decode_pdu(encoded) == pdu
    assert len(encoded) <= len(data)


# --------------------------------------------------------------------------------------
# Round trips


@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted(S.PDU_STRATEGIES))
@PROPERTY
@given(data=st.data())
def test_every_pdu_type_round_trips(kind: str, data: st.DataObject) -> None:
    pdu = data.draw(S.PDU_STRATEGIES[kind])
    encoded = encode_pdu(pdu)
    assert decode_pdu(encoded) == pdu
    assert encode_pdu(decode_pdu(encoded)) == encoded


@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted(S.ITEM_STRATEGIES))
@PROPERTY
@given(data=st.data())
def test_every_item_type_round_trips(kind: str, data: st.DataObject) -> None:
    item = data.draw(S.ITEM_STRATEGIES[kind])
    encoded = encode_item(item)
    item_type = encoded[0]
    assert item_type == int(kind[:2], 16)
    assert int.from_bytes(encoded[2:4], "big") == len(encoded) - 4
    context = _CONTEXT.get(item_type, "User Information Item (50H)")
    assert iter_items(encoded, 0, context) == [item]


@pytest.mark.slow
@PROPERTY
@given(S.pdu_bytes)
def test_encoded_bytes_survive_decode_then_encode(data: bytes) -> None:
    assert encode_pdu(decode_pdu(data)) == data


@pytest.mark.slow
@PROPERTY
@given(S.wellformed_pdu_bytes)
def test_wellformed_bytes_from_the_tables_survive_decode_then_encode(data: bytes) -> None:
    assert encode_pdu(decode_pdu(data)) == data


@pytest.mark.slow
@PROPERTY
@given(S.wellformed_pdu_bytes, st.data())
def test_nonzero_reserved_bytes_are_ignored(data: bytes, draw: st.DataObject) -> None:
    """PS3.8 9.3.1: reserved fields are not tested on receipt."""
    noisy = bytearray(data)
    noisy[1] = draw.draw(S.u8)  # the PDU header's reserved byte
    pdu_type = data[0]
    if pdu_type in (0x01, 0x02):
        noisy[8:10] = draw.draw(st.binary(min_size=2, max_size=2))
        noisy[42:74] = draw.draw(st.binary(min_size=32, max_size=32))
    elif pdu_type in (0x03,):
        noisy[6] = draw.draw(S.u8)
    elif pdu_type in (0x05, 0x06):
        noisy[6:10] = draw.draw(st.binary(min_size=4, max_size=4))
    elif pdu_type == 0x07:
        noisy[6:8] = draw.draw(st.binary(min_size=2, max_size=2))
    assert decode_pdu(bytes(noisy)) == decode_pdu(data)
    assert encode_pdu(decode_pdu(bytes(noisy))) == data


# --------------------------------------------------------------------------------------
# Bad input: nothing but PduError


@PROPERTY
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_raise_only_pdu_error(data: bytes) -> None:
    _decodes_or_pdu_error(data)


@pytest.mark.slow
@PROPERTY
@given(S.garbage_inside_pdu_bytes)
def test_garbage_inside_correct_framing_raises_only_pdu_error(data: bytes) -> None:
    _decodes_or_pdu_error(data)


@st.composite
def mutated_pdus(draw: st.DrawFn) -> bytes:
    """A valid PDU with bytes flipped, set, inserted, deleted or cut, or a random value
    written over a 16- or 32-bit field; sometimes the PDU-length is then fixed up so
    that the damage reaches the items."""
    data = bytearray(draw(st.one_of(S.pdu_bytes, S.wellformed_pdu_bytes)))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(
            st.sampled_from(["flip", "set", "insert", "delete", "truncate", "len16", "len32"])
        )
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and data:
            data[at] = draw(S.u8)
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete" and data:
            del data[at : at + draw(st.integers(1, 8))]
        elif op == "truncate":
            del data[at:]
        elif op == "len16" and len(data) >= at + 2:
            value = draw(st.sampled_from([0, 1, 2, 3, 4, 0x7FFF, 0xFFFC, 0xFFFF]) | S.u16)
            data[at : at + 2] = value.to_bytes(2, "big")
        elif op == "len32" and len(data) >= at + 4:
            value = draw(st.sampled_from([0, 1, 2, 0xFFFFFFFF, 0xFFFFFFFE, 0x7FFFFFFF]) | S.u32)
            data[at : at + 4] = value.to_bytes(4, "big")
    if len(data) >= 6 and draw(st.booleans()):
        data[2:6] = (len(data) - 6).to_bytes(4, "big")
    return bytes(data)


@pytest.mark.slow
@PROPERTY
@given(mutated_pdus())
def test_mutated_pdus_raise_only_pdu_error_or_decode_stably(data: bytes) -> None:
    _decodes_or_pdu_error(data)


# --------------------------------------------------------------------------------------
# No allocation from a length field


def _peak_allocation(call: object) -> int:
    tracemalloc.start()
    try:
        call()  # type: ignore[operator]
    except PduError:
        pass
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return peak


@pytest.mark.parametrize("pdu_type", [0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0xFF])
def test_a_header_declaring_0xffffffff_is_refused_quickly(pdu_type: int) -> None:
    header = bytes((pdu_type, 0)) + b"\xff\xff\xff\xff"
    data = header + bytes(64)
    start = time.perf_counter()
    with pytest.raises(PduError) as decoded:
        decode_pdu(data)
    assert decoded.value.reason in (1, 6)
    framer = Framer(16384)
    framer.feed(data)
    with pytest.raises(PduError) as framed:
        framer.next_pdu()
    assert framed.value.reason in (1, 6)
    assert framer.buffered == 0
    assert time.perf_counter() - start < 0.5
    assert _peak_allocation(lambda: decode_pdu(data)) < 64 * 1024
    spent = Framer(16384)
    spent.feed(data)
    assert _peak_allocation(spent.next_pdu) < 64 * 1024


@settings(max_examples=1000, deadline=None)
@given(st.integers(0, 0xFF), S.u32, st.binary(max_size=64))
def test_no_allocation_follows_a_declared_length(pdu_type: int, length: int, body: bytes) -> None:
    """Whatever a header declares, decoding and framing allocate on the order of the
    bytes actually received, never of the length declared."""
    data = bytes((pdu_type, 0)) + length.to_bytes(4, "big") + body
    assert _peak_allocation(lambda: decode_pdu(data)) < 64 * 1024
    framer = Framer(16384)
    framer.feed(data)
    assert _peak_allocation(framer.next_pdu) < 64 * 1024
    assert framer.buffered <= len(data)


@pytest.mark.parametrize(
    "item",
    [
        bytes.fromhex("50 00 ffff"),  # user information declaring 65535 bytes, none sent
        bytes.fromhex("20 00 fffc 01000000"),  # 16-bit length + 4 near the wrap
        bytes.fromhex("50 00 0008 5800 0004 0100 ffff"),  # user identity primary field
        bytes.fromhex("50 00 0008 5400 0004 ffff 0101"),  # role selection UID length
    ],
)
def test_item_lengths_running_past_the_pdu_are_refused_without_allocation(item: bytes) -> None:
    body = b"\x00\x01\x00\x00" + b" " * 32 + bytes(32) + item
    data = bytes((1, 0)) + len(body).to_bytes(4, "big") + body
    with pytest.raises(PduError) as exc:
        decode_pdu(data)
    assert exc.value.reason == 6
    assert _peak_allocation(lambda: decode_pdu(data)) < 64 * 1024


# --------------------------------------------------------------------------------------
# Regressions from fuzzing (fuzz/fuzz_pdu.py, fuzz/fuzz_framing.py)
#
# Each input that a fuzz target found is kept here with what was wrong. None so far:
# 1,000,000 inputs of each target gave no finding (see fuzz/README.md).
