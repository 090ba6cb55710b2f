"""The items of the association PDUs, and the one registry of item codecs.

Every item of PS3.8 9.3.2-9.3.4 is a frozen dataclass; the User Information Item and
its sub-items (PS3.8 Annex D, PS3.7 D.3.3) are in `dul.user_information`, and what
they are all built from (the 4-byte item header, text fields, `RawItem`) in
`dul.fields`. Each item class knows its type code; one registry, `REGISTRY`, maps a
type code to the codec (decoder and encoder) of the item's *value*, the bytes after
its header.

An item type that the registry does not know where it stands (`WHERE`) is kept as a
`RawItem`, so that it can be logged and re-encoded unchanged; the negotiation simply
ignores it (PS3.8 9.3.1: unknown items are skipped).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeAlias, TypeVar

from dul.errors import AbortReason, PduError
from dul.fields import (
    ITEM_HEADER,
    AnyCodec,
    Buffer,
    Codec,
    RawItem,
    invalid,
    text_bytes,
    text_of,
)
from dul.user_information import SUB_ITEM_CODECS, SubItem, UserInformationItem

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class ApplicationContextItem:
    """Application Context Item (PS3.8 9.3.2.1), type 10H."""

    ITEM_TYPE = 0x10
    name: str


@dataclass(frozen=True, slots=True)
class AbstractSyntaxSubItem:
    """Abstract Syntax Sub-Item (PS3.8 9.3.2.2.1), type 30H."""

    ITEM_TYPE = 0x30
    name: str


@dataclass(frozen=True, slots=True)
class TransferSyntaxSubItem:
    """Transfer Syntax Sub-Item (PS3.8 9.3.2.2.2), type 40H."""

    ITEM_TYPE = 0x40
    name: str


@dataclass(frozen=True, slots=True)
class PresentationContextRQItem:
    """Presentation Context Item of an A-ASSOCIATE-RQ (PS3.8 9.3.2.2), type 20H.

    `abstract_syntax` is None when the peer sent no abstract syntax sub-item; such a
    context is refused by the negotiation, not by the decoder.
    """

    ITEM_TYPE = 0x20
    context_id: int
    abstract_syntax: str | None
    transfer_syntaxes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PresentationContextACItem:
    """Presentation Context Item of an A-ASSOCIATE-AC (PS3.8 9.3.3.2), type 21H.

    `result`: 0 acceptance, 1 user-rejection, 2 no-reason (provider rejection),
    3 abstract-syntax-not-supported, 4 transfer-syntaxes-not-supported. When the
    context is refused the transfer syntax "shall not be tested", and may be absent.
    """

    ITEM_TYPE = 0x21
    context_id: int
    result: int
    transfer_syntax: str | None


#: Any item or sub-item, of any level: those of PS3.8 9.3.2-9.3.4 and Annex D and of
#: PS3.7 D.3.3, and `RawItem` for a type not known where it stood.
Item: TypeAlias = (
    ApplicationContextItem
    | PresentationContextRQItem
    | PresentationContextACItem
    | AbstractSyntaxSubItem
    | TransferSyntaxSubItem
    | UserInformationItem
    | SubItem
)

# --------------------------------------------------------------------------------------
# Value decoders and encoders, one pair per item type


class _Named(Protocol):
    @property
    def name(self) -> str: ...


def _dec_name(kind: Callable[[str], _T]) -> Callable[[Buffer], _T]:
    return lambda value: kind(text_of(value))


def _enc_name(item: _Named) -> bytes:
    return text_bytes(item.name, type(item).__name__)


def _dec_pc_rq(value: Buffer) -> PresentationContextRQItem:
    if len(value) < 4:
        raise invalid(f"Presentation Context Item (20H) length {len(value)} is under 4")
    abstract: str | None = None
    transfers: list[str] = []
    for sub in iter_items(value, 4, "Presentation Context Item (20H)"):
        if isinstance(sub, AbstractSyntaxSubItem):
            if abstract is not None:
                raise PduError(
                    AbortReason.UNEXPECTED_PDU_PARAMETER,
                    "Presentation Context Item (20H) has more than one Abstract Syntax Sub-Item",
                )
            abstract = sub.name
        elif isinstance(sub, TransferSyntaxSubItem):
            transfers.append(sub.name)
        # other sub-items: skipped (PS3.8 9.3.1)
    return PresentationContextRQItem(value[0], abstract, tuple(transfers))


def _enc_pc_rq(pc: PresentationContextRQItem) -> bytes:
    subs: list[Item] = []
    if pc.abstract_syntax is not None:
        subs.append(AbstractSyntaxSubItem(pc.abstract_syntax))
    subs.extend(TransferSyntaxSubItem(ts) for ts in pc.transfer_syntaxes)
    return bytes((pc.context_id, 0, 0, 0)) + encode_items(subs)


def _dec_pc_ac(value: Buffer) -> PresentationContextACItem:
    if len(value) < 4:
        raise invalid(f"Presentation Context Item (21H) length {len(value)} is under 4")
    transfer: str | None = None
    for sub in iter_items(value, 4, "Presentation Context Item (21H)"):
        if isinstance(sub, TransferSyntaxSubItem):
            if transfer is not None:
                raise PduError(
                    AbortReason.UNEXPECTED_PDU_PARAMETER,
                    "Presentation Context Item (21H) has more than one Transfer Syntax Sub-Item",
                )
            transfer = sub.name
    return PresentationContextACItem(value[0], value[2], transfer)


def _enc_pc_ac(pc: PresentationContextACItem) -> bytes:
    subs = [] if pc.transfer_syntax is None else [TransferSyntaxSubItem(pc.transfer_syntax)]
    return bytes((pc.context_id, 0, pc.result, 0)) + encode_items(subs)


def _dec_user_info(value: Buffer) -> UserInformationItem:
    subs: list[SubItem] = []
    for sub in iter_items(value, 0, "User Information Item (50H)"):
        # Only sub-items stand there (WHERE): anything else was kept raw.
        assert not isinstance(sub, _NOT_SUB_ITEMS)
        subs.append(sub)
    return UserInformationItem(tuple(subs))


def _enc_user_info(item: UserInformationItem) -> bytes:
    return encode_items(item.sub_items)


_NOT_SUB_ITEMS = (
    ApplicationContextItem,
    PresentationContextRQItem,
    PresentationContextACItem,
    AbstractSyntaxSubItem,
    TransferSyntaxSubItem,
    UserInformationItem,
)

_CODECS: tuple[AnyCodec, ...] = (
    Codec(ApplicationContextItem, _dec_name(ApplicationContextItem), _enc_name),
    Codec(PresentationContextRQItem, _dec_pc_rq, _enc_pc_rq),
    Codec(PresentationContextACItem, _dec_pc_ac, _enc_pc_ac),
    Codec(AbstractSyntaxSubItem, _dec_name(AbstractSyntaxSubItem), _enc_name),
    Codec(TransferSyntaxSubItem, _dec_name(TransferSyntaxSubItem), _enc_name),
    Codec(UserInformationItem, _dec_user_info, _enc_user_info),
)

#: The one registry: item type -> the codec of its value and its item class.
REGISTRY: dict[int, AnyCodec] = {codec.item_type: codec for codec in (*_CODECS, *SUB_ITEM_CODECS)}

_BY_CLASS: dict[type, AnyCodec] = {codec.cls: codec for codec in REGISTRY.values()}

#: Where each item type may stand; anywhere else it is kept raw, as unknown.
WHERE: dict[str, frozenset[int]] = {
    "PDU": frozenset({0x10, 0x20, 0x21, 0x50}),
    "Presentation Context Item (20H)": frozenset({0x30, 0x40}),
    "Presentation Context Item (21H)": frozenset({0x40}),
    "User Information Item (50H)": frozenset(range(0x51, 0x5A)),
}


def iter_items(data: Buffer, offset: int, parent: str, allowed: str | None = None) -> list[Item]:
    """Decode the items that fill `data[offset:]`, each inside its parent's bounds."""
    known = WHERE[allowed or parent]
    items: list[Item] = []
    end = len(data)
    while offset < end:
        if offset + 4 > end:
            raise invalid(
                f"{parent}: {end - offset} stray bytes where an item header (4) should be"
            )
        item_type, _reserved, length = ITEM_HEADER.unpack_from(data, offset)
        start = offset + 4
        stop = start + length
        if stop > end:
            raise invalid(
                f"{parent}: item {item_type:02X}H length {length} runs past its parent "
                f"({end - start} bytes left)"
            )
        value = data[start:stop]
        if item_type in known:
            items.append(REGISTRY[item_type].decode(value))
        else:
            items.append(RawItem(item_type, bytes(value)))
        offset = stop
    return items


def encode_item(item: Item) -> bytes:
    """One item with its header; reserved bytes are sent as zero."""
    if isinstance(item, RawItem):
        item_type, value = item.item_type, item.value
    else:
        codec = _BY_CLASS.get(type(item))
        if codec is None:
            raise TypeError(f"{type(item).__name__} is not a PS3.8 item")
        item_type, value = codec.item_type, codec.encode(item)
    if len(value) > 0xFFFF:
        raise ValueError(f"item {item_type:02X}H would be {len(value)} bytes; at most 65535 fit")
    return ITEM_HEADER.pack(item_type, 0, len(value)) + value


def encode_items(items: Sequence[Item]) -> bytes:
    return b"".join(encode_item(item) for item in items)
