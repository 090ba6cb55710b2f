"""Which presentation contexts to propose for storage, so that each instance can go as it is.

PS3.8 9.3.2.2 allows 128 presentation contexts in an A-ASSOCIATE-RQ, and the acceptor
picks one transfer syntax per context (PS3.8 9.3.3.2). So a context that lists
several compressed syntaxes brings back one of them, and an instance held in another
cannot go as it is. Hence:

- **Storing** (`store_contexts`, `plan_store`): one context per (SOP class, transfer
  syntax) of the files, holding that syntax alone, as gdcmscu proposes; and per SOP
  class one more holding the uncompressed syntaxes, when some file of the class could
  be converted to them (`dimse.transfer.convert.choose`): an uncompressed file in
  another byte order or VR form, a deflated one, or a compressed one that the
  decompression policy allows. When the files need more than 128 contexts,
  `plan_store` cuts them, in order, into groups that each fit one association.
- **Receiving by C-GET** (`get_storage_contexts`): per SOP class expected, one context
  with the little endian uncompressed syntaxes, one with Explicit VR Big Endian, and
  one per compressed syntax an archive may hold (`RETRIEVABLE`), each alone, so that
  whatever syntax an instance is stored in, the server finds a context for it (with
  `compressed=False`, one context with the three uncompressed syntaxes). Classes are served in the order given while the 128
  contexts last; the classes after get the uncompressed context only (the server must
  then decompress: dicomscp does), and `dropped` says how many compressed contexts
  were left out.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from dimse.files import Part10Info
from dimse.models import MODELS, VERIFICATION, Root
from dimse.storage_classes import (
    COMMON_STORAGE_SOP_CLASSES,
    storage_sop_class_set,
    storage_sop_classes,
)
from dimse.transfer.convert import Decompress, decompression_refused
from dimse.transfer.syntaxes import (
    EXPLICIT_VR_BIG_ENDIAN,
    EXPLICIT_VR_LITTLE_ENDIAN,
    IMPLICIT_VR_LITTLE_ENDIAN,
    TABLE,
    UNCOMPRESSED,
    lookup,
)
from dul.negotiation import ProposedContext

log = logging.getLogger("dimse.client")

#: PS3.8 9.3.2.2: presentation context IDs are odd numbers 1-255.
MAX_CONTEXTS = 128

#: The compressed syntaxes a C-GET proposes for each storage class: the still image
#: compressions and deflate. Video ones only for the video classes (`VIDEO`).
RETRIEVABLE = tuple(
    uid
    for uid, syntax in TABLE.items()
    if (syntax.encapsulated or syntax.deflated) and not syntax.name.startswith(("MPEG", "HEVC"))
)
VIDEO = tuple(uid for uid, syntax in TABLE.items() if syntax.name.startswith(("MPEG", "HEVC")))
_LITTLE = (EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN)
#: Video Endoscopic, Video Microscopic and Video Photographic Image Storage (PS3.4 B.5).
VIDEO_SOP_CLASSES = frozenset(
    {
        "1.2.840.10008.5.1.4.1.1.77.1.1.1",
        "1.2.840.10008.5.1.4.1.1.77.1.2.1",
        "1.2.840.10008.5.1.4.1.1.77.1.4.1",
    }
)


def _convertible(info: Part10Info, decompress: Decompress) -> bool:
    """Whether the file could be sent in an uncompressed syntax not its own."""
    syntax = lookup(info.transfer_syntax)
    if syntax is None:
        return False
    if syntax.encapsulated:
        return decompression_refused(syntax, decompress) is None
    return True


class _Needs:
    """The contexts a group of files needs, as files are added."""

    def __init__(self) -> None:
        self.pairs: dict[tuple[str, str], None] = {}
        self.fallback: dict[str, None] = {}

    def with_file(
        self, info: Part10Info, decompress: Decompress
    ) -> tuple[set[tuple[str, str]], set[str]]:
        pairs = {(info.sop_class_uid, info.transfer_syntax)} - self.pairs.keys()
        fallback = set()
        if info.sop_class_uid not in self.fallback and _convertible(info, decompress):
            fallback.add(info.sop_class_uid)
        return pairs, fallback

    def count(self) -> int:
        return len(self.pairs) + len(self.fallback)

    def contexts(self) -> list[ProposedContext]:
        contexts: list[ProposedContext] = []
        for sop_class, syntax in self.pairs:
            contexts.append(ProposedContext(sop_class, (syntax,)))
            if sop_class in self.fallback:
                contexts.append(ProposedContext(sop_class, UNCOMPRESSED))
                del self.fallback[sop_class]
        contexts += [ProposedContext(sop_class, UNCOMPRESSED) for sop_class in self.fallback]
        return contexts


@dataclass(frozen=True)
class StoreGroup:
    """Files that go over one association, and the contexts it proposes."""

    contexts: list[ProposedContext]
    infos: list[Part10Info]


def plan_store(
    infos: Iterable[Part10Info],
    decompress: Decompress = Decompress.LOSSLESS,
    max_contexts: int = MAX_CONTEXTS,
) -> list[StoreGroup]:
    """The files cut, in order, into groups of at most `max_contexts` contexts."""
    groups: list[StoreGroup] = []
    needs, members = _Needs(), list[Part10Info]()
    for info in infos:
        pairs, fallback = needs.with_file(info, decompress)
        if members and needs.count() + len(pairs) + len(fallback) > max_contexts:
            groups.append(StoreGroup(needs.contexts(), members))
            needs, members = _Needs(), []
            pairs, fallback = needs.with_file(info, decompress)
        needs.pairs.update(dict.fromkeys(pairs))
        needs.fallback.update(dict.fromkeys(fallback))
        members.append(info)
    if members:
        groups.append(StoreGroup(needs.contexts(), members))
    return groups


def store_contexts(
    infos: Sequence[Part10Info], decompress: Decompress = Decompress.LOSSLESS
) -> list[ProposedContext]:
    """The contexts for storing `infos` over one association; ValueError when they
    need more than 128 (`plan_store` cuts them into groups instead)."""
    groups = plan_store(infos, decompress, max_contexts=1 << 30)
    contexts = groups[0].contexts if groups else []
    if len(contexts) > MAX_CONTEXTS:
        raise ValueError(
            f"these files need {len(contexts)} presentation contexts; one association holds "
            f"{MAX_CONTEXTS} (PS3.8 9.3.2.2): send them in groups (dimse.proposals.plan_store)"
        )
    return contexts


@dataclass(frozen=True)
class GetContexts:
    contexts: list[ProposedContext]
    dropped: int  # compressed contexts that did not fit
    dropped_classes: int = 0  # SOP classes that did not fit at all


def get_storage_contexts(
    sop_classes: Sequence[str], room: int, *, compressed: bool = True
) -> GetContexts:
    """Storage contexts for the instances a C-GET brings (see the module docstring),
    in `room` contexts; `compressed=False`: the uncompressed context only."""
    unique = list(dict.fromkeys(sop_classes))
    classes = unique[:room]
    # Taking every syntax, the little endian ones share a context and big endian has
    # its own, so that an instance kept big endian comes as it is, too.
    first = _LITTLE if compressed else UNCOMPRESSED
    contexts = [ProposedContext(uid, first) for uid in classes]
    room -= len(contexts)
    dropped = 0
    if compressed:
        for uid in classes:
            syntaxes = (EXPLICIT_VR_BIG_ENDIAN, *RETRIEVABLE) + (
                VIDEO if uid in VIDEO_SOP_CLASSES else ()
            )
            if len(syntaxes) <= room:
                contexts += [ProposedContext(uid, (syntax,)) for syntax in syntaxes]
                room -= len(syntaxes)
            else:
                dropped += len(syntaxes)
    return GetContexts(contexts, dropped, len(unique) - len(classes))


def query_contexts(
    root: Root,
    operation: str,
    storage_classes: Sequence[str] | None = None,
    *,
    compressed: bool = True,
) -> list[ProposedContext]:
    """The contexts for a query ("find"), a retrieve ("move", "get") and echo.

    For "get" the storage classes are proposed too, since the instances come back
    on the same association (see `get_roles`): `storage_classes` when the caller
    knows which to expect, else the common classes and as many others as fit; each
    uncompressed and, unless `compressed` is False, in every compressed syntax."""
    uids = MODELS[root]
    abstract = {"find": uids.find, "move": uids.move, "get": uids.get}[operation]
    if abstract is None:
        raise ValueError(f"the {root.value} model has no {operation.upper()} SOP class")
    contexts = [
        ProposedContext(abstract, UNCOMPRESSED),
        ProposedContext(VERIFICATION, UNCOMPRESSED),
    ]
    if operation == "get":
        # One context per compressed syntax and class (dimse.proposals): the server
        # then finds one for every instance as it is stored.
        classes = list(storage_classes or COMMON_STORAGE_SOP_CLASSES)
        planned = get_storage_contexts(classes, MAX_CONTEXTS - len(contexts), compressed=compressed)
        if planned.dropped:
            log.warning(
                "C-GET: %d compressed presentation context(s) did not fit in %d; instances "
                "of the last SOP classes can come back uncompressed only",
                planned.dropped,
                MAX_CONTEXTS,
            )
        if planned.dropped_classes:
            log.warning(
                "C-GET: %d SOP class(es) did not fit in %d presentation contexts; their "
                "instances cannot come back on this association",
                planned.dropped_classes,
                MAX_CONTEXTS,
            )
        contexts += planned.contexts
        if not storage_classes:
            rest = [uid for uid in storage_sop_classes() if uid not in COMMON_STORAGE_SOP_CLASSES]
            contexts += [
                ProposedContext(uid, UNCOMPRESSED) for uid in rest[: MAX_CONTEXTS - len(contexts)]
            ]
    return contexts


def get_roles(contexts: Sequence[ProposedContext]) -> dict[str, tuple[bool, bool]]:
    """SCP/SCU role selection for C-GET: we act as SCP for the storage classes."""
    storage = storage_sop_class_set()
    return {c.abstract_syntax: (False, True) for c in contexts if c.abstract_syntax in storage}
