"""`dimse.proposals`: the presentation contexts proposed for storage and for C-GET.

PS3.8 9.3.2.2: at most 128 presentation contexts per A-ASSOCIATE-RQ; PS3.8 9.3.3.2:
the acceptor picks one transfer syntax per context. So each (SOP class, syntax) of
the files gets a context holding that syntax alone, and a file that can be converted
gets one more context per class holding the uncompressed syntaxes.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dimse.files import Part10Info
from dimse.proposals import (
    MAX_CONTEXTS,
    RETRIEVABLE,
    VIDEO,
    VIDEO_SOP_CLASSES,
    StoreGroup,
    get_storage_contexts,
    plan_store,
    store_contexts,
)
from dimse.transfer.convert import Decompress
from dimse.transfer.pixels import decoder_available
from dimse.transfer.syntaxes import lookup
from dul.negotiation import ProposedContext

EXPLICIT_LE = "1.2.840.10008.1.2.1"
IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_BE = "1.2.840.10008.1.2.2"
DEFLATED = "1.2.840.10008.1.2.1.99"
JPEG_BASELINE = "1.2.840.10008.1.2.4.50"
JPEG_LOSSLESS_SV1 = "1.2.840.10008.1.2.4.70"
RLE = "1.2.840.10008.1.2.5"
UNCOMPRESSED = {EXPLICIT_LE, IMPLICIT_LE, EXPLICIT_BE}
CT = "1.2.840.10008.5.1.4.1.1.2"
MR = "1.2.840.10008.5.1.4.1.1.4"
VIDEO_ENDOSCOPIC = "1.2.840.10008.5.1.4.1.1.77.1.1.1"


def info(sop_class: str, syntax: str, n: int = 0) -> Part10Info:
    return Part10Info(Path(f"/nowhere/{n}.dcm"), sop_class, f"1.2.3.4.{n}", syntax, 132, 1000)


def fallback(sop_class: str) -> ProposedContext:
    return ProposedContext(sop_class, (EXPLICIT_LE, IMPLICIT_LE, EXPLICIT_BE))


def needs_decoder(uid: str) -> None:
    syntax = lookup(uid)
    assert syntax is not None
    reason = decoder_available(syntax)
    if reason is not None:
        pytest.skip(reason)


# -- plan_store ------------------------------------------------------------------------------


@pytest.mark.parametrize("syntax", [EXPLICIT_LE, IMPLICIT_LE, EXPLICIT_BE, DEFLATED])
def test_an_uncompressed_or_deflated_file_has_a_fallback(syntax: str) -> None:
    (group,) = plan_store([info(CT, syntax)])
    assert group.contexts == [ProposedContext(CT, (syntax,)), fallback(CT)]


def test_a_lossless_compressed_file_has_a_fallback_unless_never() -> None:
    needs_decoder(RLE)
    (group,) = plan_store([info(CT, RLE)], Decompress.LOSSLESS)
    assert group.contexts == [ProposedContext(CT, (RLE,)), fallback(CT)]
    (group,) = plan_store([info(CT, RLE)], Decompress.NEVER)
    assert group.contexts == [ProposedContext(CT, (RLE,))]


def test_a_jpeg_baseline_file_has_a_fallback_only_under_lossy() -> None:
    (group,) = plan_store([info(CT, JPEG_BASELINE)], Decompress.LOSSLESS)
    assert group.contexts == [ProposedContext(CT, (JPEG_BASELINE,))]
    needs_decoder(JPEG_BASELINE)
    (group,) = plan_store([info(CT, JPEG_BASELINE)], Decompress.LOSSY)
    assert group.contexts == [ProposedContext(CT, (JPEG_BASELINE,)), fallback(CT)]


def test_one_context_per_class_and_syntax_one_fallback_per_class() -> None:
    infos = [
        info(CT, JPEG_BASELINE, 0),
        info(CT, EXPLICIT_LE, 1),
        info(CT, EXPLICIT_LE, 2),
        info(MR, JPEG_BASELINE, 3),
        info(CT, IMPLICIT_LE, 4),
    ]
    (group,) = plan_store(infos, Decompress.LOSSLESS)
    assert group.infos == infos
    contexts = group.contexts
    assert len(contexts) == len(set(contexts))
    singles = {(c.abstract_syntax, c.transfer_syntaxes) for c in contexts}
    assert (CT, (JPEG_BASELINE,)) in singles and (MR, (JPEG_BASELINE,)) in singles
    assert (CT, (EXPLICIT_LE,)) in singles and (CT, (IMPLICIT_LE,)) in singles
    assert [c for c in contexts if len(c.transfer_syntaxes) > 1] == [fallback(CT)]
    assert len(contexts) == 5
    assert store_contexts(infos) == contexts


def convertible(uid: str, policy: Decompress) -> bool:
    """PS3.4 B.4.1 as the module docstring states it: uncompressed and deflated always;
    compressed when the policy allows it (lossy ones under LOSSY only) and decodable."""
    syntax = lookup(uid)
    assert syntax is not None
    if not syntax.encapsulated:
        return True
    if policy is Decompress.NEVER or (syntax.lossy and policy is not Decompress.LOSSY):
        return False
    return decoder_available(syntax) is None


def check_groups(
    infos: list[Part10Info], groups: list[StoreGroup], limit: int, policy: Decompress
) -> None:
    """Every invariant of a plan, checked from the contexts themselves."""
    assert [i for g in groups for i in g.infos] == infos  # in order, each once
    for index, group in enumerate(groups):
        contexts = group.contexts
        assert 0 < len(contexts) <= limit
        assert len(contexts) == len(set(contexts))
        assert all(c.context_id is None for c in contexts)
        for i in group.infos:
            assert ProposedContext(i.sop_class_uid, (i.transfer_syntax,)) in contexts
        for c in contexts:
            if len(c.transfer_syntaxes) > 1:
                assert set(c.transfer_syntaxes) == UNCOMPRESSED
            else:
                members = [(i.sop_class_uid, i.transfer_syntax) for i in group.infos]
                assert (c.abstract_syntax, c.transfer_syntaxes[0]) in members
        wanted = {i.sop_class_uid for i in group.infos if convertible(i.transfer_syntax, policy)}
        assert {c.abstract_syntax for c in contexts if len(c.transfer_syntaxes) > 1} == wanted
        if index:  # greedy: the group's first file did not fit in the one before
            before = groups[index - 1].contexts
            first = group.infos[0]
            more = ProposedContext(first.sop_class_uid, (first.transfer_syntax,)) not in before
            has_fallback = fallback(first.sop_class_uid) in before
            wants_fallback = fallback(first.sop_class_uid) in contexts
            assert len(before) + more + (wants_fallback and not has_fallback) > limit


def test_two_hundred_classes_are_cut_into_groups() -> None:
    infos = [info(f"1.2.3.{n}", EXPLICIT_LE if n % 2 else JPEG_BASELINE, n) for n in range(200)]
    groups = plan_store(infos, Decompress.LOSSLESS)
    check_groups(infos, groups, MAX_CONTEXTS, Decompress.LOSSLESS)
    # 100 classes need 1 context, 100 need 2: 300 contexts, so at least 3 groups.
    assert len(groups) == 3
    assert sum(len(g.contexts) for g in groups) == 300
    with pytest.raises(ValueError, match="128"):
        store_contexts(infos)


def test_store_contexts_holds_128_and_refuses_129() -> None:
    fits = [info(f"1.2.3.{n}", EXPLICIT_LE, n) for n in range(64)]
    assert len(store_contexts(fits)) == 128
    too_many = [*fits, info("1.2.3.64", JPEG_BASELINE, 64)]
    with pytest.raises(ValueError, match="129"):
        store_contexts(too_many)
    assert store_contexts([]) == []


_SYNTAXES = [EXPLICIT_LE, IMPLICIT_LE, DEFLATED, JPEG_BASELINE, JPEG_LOSSLESS_SV1, RLE]


@settings(max_examples=300, deadline=None)
@given(
    files=st.lists(st.tuples(st.integers(0, 30), st.sampled_from(_SYNTAXES)), max_size=80),
    limit=st.integers(2, 20),
    policy=st.sampled_from(list(Decompress)),
)
def test_any_files_make_a_valid_plan(
    files: list[tuple[int, str]], limit: int, policy: Decompress
) -> None:
    infos = [info(f"1.2.3.{c}", syntax, n) for n, (c, syntax) in enumerate(files)]
    check_groups(infos, plan_store(infos, policy, max_contexts=limit), limit, policy)


# -- get_storage_contexts ------------------------------------------------------------------


def test_retrievable_is_the_still_image_compressions_and_deflate() -> None:
    assert {JPEG_BASELINE, JPEG_LOSSLESS_SV1, RLE, DEFLATED} <= set(RETRIEVABLE)
    assert "1.2.840.10008.1.2.4.90" in RETRIEVABLE and "1.2.840.10008.1.2.4.80" in RETRIEVABLE
    assert not UNCOMPRESSED & set(RETRIEVABLE)
    assert "1.2.840.10008.1.2.4.100" not in RETRIEVABLE  # MPEG2
    assert "1.2.840.10008.1.2.4.100" in VIDEO
    assert len(set(RETRIEVABLE)) == len(RETRIEVABLE)


def little(sop_class: str) -> ProposedContext:
    """Taking every syntax: the little endian uncompressed ones share a context."""
    return ProposedContext(sop_class, (EXPLICIT_LE, IMPLICIT_LE))


#: The single-syntax contexts of a class when every syntax is taken: big endian apart,
#: and each compressed syntax.
SINGLES = (EXPLICIT_BE, *RETRIEVABLE)


def test_each_class_gets_uncompressed_and_one_context_per_syntax() -> None:
    planned = get_storage_contexts([CT, MR], MAX_CONTEXTS)
    assert planned.dropped == 0
    for sop_class in (CT, MR):
        mine = [c for c in planned.contexts if c.abstract_syntax == sop_class]
        assert [c for c in mine if len(c.transfer_syntaxes) > 1] == [little(sop_class)]
        singles = [c.transfer_syntaxes[0] for c in mine if len(c.transfer_syntaxes) == 1]
        assert sorted(singles) == sorted(SINGLES)
    assert len(planned.contexts) == 2 * (1 + len(SINGLES))


def test_a_video_class_also_gets_the_video_syntaxes() -> None:
    assert VIDEO_ENDOSCOPIC in VIDEO_SOP_CLASSES
    planned = get_storage_contexts([VIDEO_ENDOSCOPIC], MAX_CONTEXTS)
    singles = [c.transfer_syntaxes[0] for c in planned.contexts if len(c.transfer_syntaxes) == 1]
    assert sorted(singles) == sorted(SINGLES + VIDEO)


def test_uncompressed_only() -> None:
    planned = get_storage_contexts([CT, MR, CT], MAX_CONTEXTS, compressed=False)
    assert planned.contexts == [fallback(CT), fallback(MR)]
    assert planned.dropped == 0


def test_later_classes_get_only_the_uncompressed_context() -> None:
    classes = [f"1.2.3.{n}" for n in range(10)]
    per_class = len(SINGLES)
    room = 10 + per_class + per_class // 2  # the first class's syntaxes fit, no more
    planned = get_storage_contexts(classes, room)
    assert len(planned.contexts) <= room
    assert [little(c) for c in classes] == [
        c for c in planned.contexts if len(c.transfer_syntaxes) > 1
    ]
    compressed = [c for c in planned.contexts if len(c.transfer_syntaxes) == 1]
    assert {c.abstract_syntax for c in compressed} == {classes[0]}
    assert len(compressed) == per_class
    assert planned.dropped == 9 * per_class


@settings(max_examples=300, deadline=None)
@given(
    count=st.integers(0, 60),
    video=st.sets(st.integers(0, 59)),
    room=st.integers(0, 200),
    compressed=st.booleans(),
)
def test_the_contexts_never_exceed_the_room(
    count: int, video: set[int], room: int, compressed: bool
) -> None:
    classes = [VIDEO_ENDOSCOPIC if n in video else f"1.2.3.{n}" for n in range(count)]
    unique = list(dict.fromkeys(classes))
    planned = get_storage_contexts(classes, room, compressed=compressed)
    assert len(planned.contexts) <= room
    served = unique[:room]
    assert [c for c in planned.contexts if len(c.transfer_syntaxes) > 1] == [
        little(c) if compressed else fallback(c) for c in served
    ]
    singles = [c for c in planned.contexts if len(c.transfer_syntaxes) == 1]
    if not compressed:
        assert singles == [] and planned.dropped == 0
        return
    wanted = sum(len(SINGLES) + (len(VIDEO) if c in VIDEO_SOP_CLASSES else 0) for c in served)
    assert len(singles) + planned.dropped == wanted
