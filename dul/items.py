"""Items and sub-items of the association PDUs.

Every item of PS3.8 9.3.2-9.3.4 and Annex D, and the user information sub-items of
PS3.7 D.3.3, is a frozen dataclass. Each item class knows its type code; one registry
maps a type code to the pair (decoder, encoder) of the item's *value* (the bytes after
its 4-byte header). The header itself is the same for all of them:

    item-type (1) | reserved (1) | item-length (2, big endian) | value

An item type that a registry does not know is kept as a `RawItem`, so that it can be
logged and re-encoded unchanged; the negotiation simply ignores it (PS3.8 9.3.1:
unknown items are skipped).

Text fields (UIDs, names) are decoded as Latin-1, which cannot fail, and kept exactly
as received, padding included, so that `encode(decode(b)) == b`. Whoever compares a
UID strips the padding (`uid_text`).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeAlias, TypeVar, cast

from dul.errors import AbortReason, PduError

_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_HEADER = struct.Struct(">BBH")

Buffer: TypeAlias = bytes | bytearray | memoryview
_T = TypeVar("_T")


def uid_text(raw: str) -> str:
    """A UID as compared: without the NUL or space padding some peers add."""
    return raw.rstrip("\x00 ")


def _text(data: Buffer) -> str:
    return bytes(data).decode("latin-1")


def _raw(text: str, what: str) -> bytes:
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        raise ValueError(f"{what} {text!r} has characters outside Latin-1") from None


def _bad(what: str) -> PduError:
    return PduError(AbortReason.INVALID_PDU_PARAMETER_VALUE, what)


# --------------------------------------------------------------------------------------
# Items of the A-ASSOCIATE PDUs (PS3.8 9.3.2.1-9.3.3.3)


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


# --------------------------------------------------------------------------------------
# User information sub-items (PS3.8 Annex D, PS3.7 D.3.3)


@dataclass(frozen=True, slots=True)
class MaximumLengthSubItem:
    """Maximum Length Sub-Item (PS3.8 D.1), type 51H: the largest P-DATA-TF
    PDU-length the sender will accept; 0 means no limit."""

    ITEM_TYPE = 0x51
    maximum_length: int


@dataclass(frozen=True, slots=True)
class ImplementationClassUIDSubItem:
    """Implementation Class UID Sub-Item (PS3.7 D.3.3.2), type 52H."""

    ITEM_TYPE = 0x52
    uid: str


@dataclass(frozen=True, slots=True)
class AsynchronousOperationsWindowSubItem:
    """Asynchronous Operations Window Sub-Item (PS3.7 D.3.3.3), type 53H.
    0 means unlimited."""

    ITEM_TYPE = 0x53
    max_operations_invoked: int
    max_operations_performed: int


@dataclass(frozen=True, slots=True)
class RoleSelectionSubItem:
    """SCP/SCU Role Selection Sub-Item (PS3.7 D.3.3.4), type 54H."""

    ITEM_TYPE = 0x54
    sop_class_uid: str
    scu_role: int
    scp_role: int


@dataclass(frozen=True, slots=True)
class ImplementationVersionNameSubItem:
    """Implementation Version Name Sub-Item (PS3.7 D.3.3.2), type 55H."""

    ITEM_TYPE = 0x55
    name: str


@dataclass(frozen=True, slots=True)
class SOPClassExtendedNegotiationSubItem:
    """SOP Class Extended Negotiation Sub-Item (PS3.7 D.3.3.5), type 56H.
    The service-class-application-information is opaque to the upper layer."""

    ITEM_TYPE = 0x56
    sop_class_uid: str
    application_information: bytes


@dataclass(frozen=True, slots=True)
class SOPClassCommonExtendedNegotiationSubItem:
    """SOP Class Common Extended Negotiation Sub-Item (PS3.7 D.3.3.6), type 57H."""

    ITEM_TYPE = 0x57
    sop_class_uid: str
    service_class_uid: str
    related_general_sop_classes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class UserIdentityRQSubItem:
    """User Identity Negotiation Sub-Item, RQ form (PS3.7 D.3.3.7.1), type 58H.

    `identity_type`: 1 username, 2 username and passcode, 3 Kerberos ticket,
    4 SAML assertion, 5 JSON Web Token. The passcode is `secondary_field`.
    """

    ITEM_TYPE = 0x58
    identity_type: int
    positive_response_requested: int
    primary_field: bytes
    secondary_field: bytes = b""

    def __repr__(self) -> str:  # never print a password or a token
        return (
            f"UserIdentityRQSubItem(identity_type={self.identity_type}, "
            f"positive_response_requested={self.positive_response_requested}, "
            f"primary_field=<{len(self.primary_field)} bytes>, "
            f"secondary_field=<{len(self.secondary_field)} bytes>)"
        )


@dataclass(frozen=True, slots=True)
class UserIdentityACSubItem:
    """User Identity Negotiation Sub-Item, AC form (PS3.7 D.3.3.7.2), type 59H."""

    ITEM_TYPE = 0x59
    server_response: bytes


@dataclass(frozen=True, slots=True)
class RawItem:
    """An item whose type is not known where it was found: kept to be logged."""

    item_type: int
    value: bytes

    def __repr__(self) -> str:  # its bytes may be a misplaced passcode: never print them
        return f"RawItem(item_type=0x{self.item_type:02X}, value=<{len(self.value)} bytes>)"


@dataclass(frozen=True, slots=True)
class UserInformationItem:
    """User Information Item (PS3.8 9.3.2.3, 9.3.3.3), type 50H.

    The sub-items are kept in the order received; the properties find them.
    """

    ITEM_TYPE = 0x50
    sub_items: tuple[object, ...] = ()

    def _first(self, kind: type[_T]) -> _T | None:
        for item in self.sub_items:
            if isinstance(item, kind):
                return item
        return None

    def _all(self, kind: type[_T]) -> tuple[_T, ...]:
        return tuple(item for item in self.sub_items if isinstance(item, kind))

    @property
    def maximum_length(self) -> int | None:
        item = self._first(MaximumLengthSubItem)
        return None if item is None else item.maximum_length

    @property
    def implementation_class_uid(self) -> str | None:
        item = self._first(ImplementationClassUIDSubItem)
        return None if item is None else uid_text(item.uid)

    @property
    def implementation_version_name(self) -> str | None:
        item = self._first(ImplementationVersionNameSubItem)
        return None if item is None else item.name

    @property
    def asynchronous_operations_window(self) -> AsynchronousOperationsWindowSubItem | None:
        return self._first(AsynchronousOperationsWindowSubItem)

    @property
    def role_selections(self) -> tuple[RoleSelectionSubItem, ...]:
        return self._all(RoleSelectionSubItem)

    @property
    def extended_negotiations(self) -> tuple[SOPClassExtendedNegotiationSubItem, ...]:
        return self._all(SOPClassExtendedNegotiationSubItem)

    @property
    def common_extended_negotiations(
        self,
    ) -> tuple[SOPClassCommonExtendedNegotiationSubItem, ...]:
        return self._all(SOPClassCommonExtendedNegotiationSubItem)

    @property
    def user_identity(self) -> UserIdentityRQSubItem | None:
        return self._first(UserIdentityRQSubItem)

    @property
    def user_identity_response(self) -> UserIdentityACSubItem | None:
        return self._first(UserIdentityACSubItem)


Item: TypeAlias = object  # any of the dataclasses above

# --------------------------------------------------------------------------------------
# Value decoders and encoders, one pair per item type


def _get_u16(value: Buffer, offset: int, what: str) -> tuple[int, int]:
    """Read a 16-bit length-prefixed field; returns (length, offset after it)."""
    if offset + 2 > len(value):
        raise _bad(f"{what} is cut short")
    return _U16.unpack_from(value, offset)[0], offset + 2


def _get_field(value: Buffer, offset: int, what: str) -> tuple[bytes, int]:
    length, offset = _get_u16(value, offset, what + " length")
    end = offset + length
    if end > len(value):
        raise _bad(
            f"{what} length {length} runs past its sub-item ({len(value) - offset} bytes left)"
        )
    return bytes(value[offset:end]), end


def _put_field(data: bytes, what: str) -> bytes:
    if len(data) > 0xFFFF:
        raise ValueError(f"{what} is {len(data)} bytes; at most 65535 fit")
    return _U16.pack(len(data)) + data


def _dec_name(kind: Callable[[str], Item]) -> Callable[[Buffer], Item]:
    return lambda value: kind(_text(value))


def _enc_name(item: Item) -> bytes:
    if isinstance(item, ImplementationClassUIDSubItem):
        return _raw(item.uid, "Implementation Class UID")
    name = getattr(item, "name", "")
    assert isinstance(name, str)
    return _raw(name, type(item).__name__)


def _dec_pc_rq(value: Buffer) -> Item:
    if len(value) < 4:
        raise _bad(f"Presentation Context Item (20H) length {len(value)} is under 4")
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


def _enc_pc_rq(item: Item) -> bytes:
    pc = cast(PresentationContextRQItem, item)
    subs: list[object] = []
    if pc.abstract_syntax is not None:
        subs.append(AbstractSyntaxSubItem(pc.abstract_syntax))
    subs.extend(TransferSyntaxSubItem(ts) for ts in pc.transfer_syntaxes)
    return bytes((pc.context_id, 0, 0, 0)) + encode_items(subs)


def _dec_pc_ac(value: Buffer) -> Item:
    if len(value) < 4:
        raise _bad(f"Presentation Context Item (21H) length {len(value)} is under 4")
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


def _enc_pc_ac(item: Item) -> bytes:
    pc = cast(PresentationContextACItem, item)
    subs = [] if pc.transfer_syntax is None else [TransferSyntaxSubItem(pc.transfer_syntax)]
    return bytes((pc.context_id, 0, pc.result, 0)) + encode_items(subs)


def _dec_user_info(value: Buffer) -> Item:
    return UserInformationItem(tuple(iter_items(value, 0, "User Information Item (50H)")))


def _enc_user_info(item: Item) -> bytes:
    return encode_items(cast(UserInformationItem, item).sub_items)


def _dec_max_length(value: Buffer) -> Item:
    if len(value) != 4:
        raise _bad(f"Maximum Length Sub-Item (51H) length is {len(value)}, not 4")
    return MaximumLengthSubItem(_U32.unpack_from(value, 0)[0])


def _enc_max_length(item: Item) -> bytes:
    return _U32.pack(cast(MaximumLengthSubItem, item).maximum_length)


def _dec_async(value: Buffer) -> Item:
    if len(value) != 4:
        raise _bad(f"Asynchronous Operations Window Sub-Item (53H) length is {len(value)}, not 4")
    invoked, performed = struct.unpack_from(">HH", value, 0)
    return AsynchronousOperationsWindowSubItem(invoked, performed)


def _enc_async(item: Item) -> bytes:
    win = cast(AsynchronousOperationsWindowSubItem, item)
    return struct.pack(">HH", win.max_operations_invoked, win.max_operations_performed)


def _dec_role(value: Buffer) -> Item:
    what = "SCP/SCU Role Selection Sub-Item (54H)"
    uid, offset = _get_field(value, 0, what + " UID")
    if len(value) - offset != 2:
        raise _bad(f"{what} has {len(value) - offset} bytes after its UID, not 2")
    return RoleSelectionSubItem(_text(uid), value[offset], value[offset + 1])


def _enc_role(item: Item) -> bytes:
    role = cast(RoleSelectionSubItem, item)
    uid = _put_field(_raw(role.sop_class_uid, "SOP Class UID"), "SOP Class UID")
    return uid + bytes((role.scu_role, role.scp_role))


def _dec_ext(value: Buffer) -> Item:
    uid, offset = _get_field(value, 0, "SOP Class Extended Negotiation Sub-Item (56H) UID")
    return SOPClassExtendedNegotiationSubItem(_text(uid), bytes(value[offset:]))


def _enc_ext(item: Item) -> bytes:
    ext = cast(SOPClassExtendedNegotiationSubItem, item)
    uid = _put_field(_raw(ext.sop_class_uid, "SOP Class UID"), "SOP Class UID")
    return uid + ext.application_information


def _dec_common_ext(value: Buffer) -> Item:
    what = "SOP Class Common Extended Negotiation Sub-Item (57H)"
    sop, offset = _get_field(value, 0, what + " SOP Class UID")
    service, offset = _get_field(value, offset, what + " Service Class UID")
    related_block, offset = _get_field(value, offset, what + " Related General SOP Class list")
    related: list[str] = []
    pos = 0
    while pos < len(related_block):
        uid, pos = _get_field(related_block, pos, what + " Related General SOP Class UID")
        related.append(_text(uid))
    # bytes after the list are reserved (PS3.7 D.3.3.6): ignored
    return SOPClassCommonExtendedNegotiationSubItem(_text(sop), _text(service), tuple(related))


def _enc_common_ext(item: Item) -> bytes:
    ext = cast(SOPClassCommonExtendedNegotiationSubItem, item)
    related = b"".join(
        _put_field(_raw(uid, "Related General SOP Class UID"), "Related General SOP Class UID")
        for uid in ext.related_general_sop_classes
    )
    return (
        _put_field(_raw(ext.sop_class_uid, "SOP Class UID"), "SOP Class UID")
        + _put_field(_raw(ext.service_class_uid, "Service Class UID"), "Service Class UID")
        + _put_field(related, "Related General SOP Class list")
    )


def _dec_identity_rq(value: Buffer) -> Item:
    what = "User Identity Negotiation Sub-Item (58H)"
    if len(value) < 2:
        raise _bad(f"{what} is cut short")
    primary, offset = _get_field(value, 2, what + " Primary Field")
    secondary, offset = _get_field(value, offset, what + " Secondary Field")
    if offset != len(value):
        raise _bad(f"{what} has {len(value) - offset} stray bytes after its Secondary Field")
    return UserIdentityRQSubItem(value[0], value[1], primary, secondary)


def _enc_identity_rq(item: Item) -> bytes:
    ident = cast(UserIdentityRQSubItem, item)
    return (
        bytes((ident.identity_type, ident.positive_response_requested))
        + _put_field(ident.primary_field, "User Identity Primary Field")
        + _put_field(ident.secondary_field, "User Identity Secondary Field")
    )


def _dec_identity_ac(value: Buffer) -> Item:
    what = "User Identity Negotiation Sub-Item (59H)"
    response, offset = _get_field(value, 0, what + " Server Response")
    if offset != len(value):
        raise _bad(f"{what} has {len(value) - offset} stray bytes after its Server Response")
    return UserIdentityACSubItem(response)


def _enc_identity_ac(item: Item) -> bytes:
    return _put_field(cast(UserIdentityACSubItem, item).server_response, "Server Response")


Decoder: TypeAlias = Callable[[Buffer], Item]
Encoder: TypeAlias = Callable[[Item], bytes]

#: The one registry: item type -> (value decoder, value encoder, item class).
REGISTRY: dict[int, tuple[Decoder, Encoder, type]] = {
    0x10: (_dec_name(ApplicationContextItem), _enc_name, ApplicationContextItem),
    0x20: (_dec_pc_rq, _enc_pc_rq, PresentationContextRQItem),
    0x21: (_dec_pc_ac, _enc_pc_ac, PresentationContextACItem),
    0x30: (_dec_name(AbstractSyntaxSubItem), _enc_name, AbstractSyntaxSubItem),
    0x40: (_dec_name(TransferSyntaxSubItem), _enc_name, TransferSyntaxSubItem),
    0x50: (_dec_user_info, _enc_user_info, UserInformationItem),
    0x51: (_dec_max_length, _enc_max_length, MaximumLengthSubItem),
    0x52: (_dec_name(ImplementationClassUIDSubItem), _enc_name, ImplementationClassUIDSubItem),
    0x53: (_dec_async, _enc_async, AsynchronousOperationsWindowSubItem),
    0x54: (_dec_role, _enc_role, RoleSelectionSubItem),
    0x55: (
        _dec_name(ImplementationVersionNameSubItem),
        _enc_name,
        ImplementationVersionNameSubItem,
    ),
    0x56: (_dec_ext, _enc_ext, SOPClassExtendedNegotiationSubItem),
    0x57: (_dec_common_ext, _enc_common_ext, SOPClassCommonExtendedNegotiationSubItem),
    0x58: (_dec_identity_rq, _enc_identity_rq, UserIdentityRQSubItem),
    0x59: (_dec_identity_ac, _enc_identity_ac, UserIdentityACSubItem),
}

_ENCODERS: dict[type, tuple[int, Encoder]] = {
    cls: (t, enc) for t, (_, enc, cls) in REGISTRY.items()
}

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
            raise _bad(f"{parent}: {end - offset} stray bytes where an item header (4) should be")
        item_type, _reserved, length = _HEADER.unpack_from(data, offset)
        start = offset + 4
        stop = start + length
        if stop > end:
            raise _bad(
                f"{parent}: item {item_type:02X}H length {length} runs past its parent "
                f"({end - start} bytes left)"
            )
        value = data[start:stop]
        if item_type in known:
            items.append(REGISTRY[item_type][0](value))
        else:
            items.append(RawItem(item_type, bytes(value)))
        offset = stop
    return items


def encode_item(item: Item) -> bytes:
    """One item with its header; reserved bytes are sent as zero."""
    if isinstance(item, RawItem):
        item_type, value = item.item_type, item.value
    else:
        try:
            item_type, encoder = _ENCODERS[type(item)]
        except KeyError:
            raise TypeError(f"{type(item).__name__} is not a PS3.8 item") from None
        value = encoder(item)
    if len(value) > 0xFFFF:
        raise ValueError(f"item {item_type:02X}H would be {len(value)} bytes; at most 65535 fit")
    return _HEADER.pack(item_type, 0, len(value)) + value


def encode_items(items: Sequence[Item]) -> bytes:
    return b"".join(encode_item(item) for item in items)
