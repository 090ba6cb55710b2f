"""The User Information Item and its sub-items (PS3.8 9.3.2.3, 9.3.3.3, Annex D;
PS3.7 D.3.3): each sub-item a frozen dataclass, with the decoder and the encoder of
its value (`SUB_ITEM_CODECS`, which `dul.items` registers with the other items).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Protocol, TypeAlias, TypeVar

from dul.fields import (
    AnyCodec,
    Buffer,
    Codec,
    RawItem,
    get_field,
    invalid,
    put_field,
    text_bytes,
    text_of,
    uid_text,
)

_U32 = struct.Struct(">I")
_TWO_U16 = struct.Struct(">HH")
_T = TypeVar("_T")


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


#: Any sub-item of a User Information Item: one of PS3.8 Annex D and PS3.7 D.3.3, or
#: one of a type not known there, kept raw.
SubItem: TypeAlias = (
    MaximumLengthSubItem
    | ImplementationClassUIDSubItem
    | AsynchronousOperationsWindowSubItem
    | RoleSelectionSubItem
    | ImplementationVersionNameSubItem
    | SOPClassExtendedNegotiationSubItem
    | SOPClassCommonExtendedNegotiationSubItem
    | UserIdentityRQSubItem
    | UserIdentityACSubItem
    | RawItem
)


@dataclass(frozen=True, slots=True)
class UserInformationItem:
    """User Information Item (PS3.8 9.3.2.3, 9.3.3.3), type 50H.

    The sub-items are kept in the order received; the properties find them.
    """

    ITEM_TYPE = 0x50
    sub_items: tuple[SubItem, ...] = ()

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


# --------------------------------------------------------------------------------------
# Value decoders and encoders, one pair per sub-item type


def _dec_max_length(value: Buffer) -> MaximumLengthSubItem:
    if len(value) != 4:
        raise invalid(f"Maximum Length Sub-Item (51H) length is {len(value)}, not 4")
    return MaximumLengthSubItem(_U32.unpack_from(value, 0)[0])


def _enc_max_length(item: MaximumLengthSubItem) -> bytes:
    return _U32.pack(item.maximum_length)


def _dec_class_uid(value: Buffer) -> ImplementationClassUIDSubItem:
    return ImplementationClassUIDSubItem(text_of(value))


def _enc_class_uid(item: ImplementationClassUIDSubItem) -> bytes:
    return text_bytes(item.uid, "Implementation Class UID")


def _dec_async(value: Buffer) -> AsynchronousOperationsWindowSubItem:
    if len(value) != 4:
        raise invalid(
            f"Asynchronous Operations Window Sub-Item (53H) length is {len(value)}, not 4"
        )
    invoked, performed = _TWO_U16.unpack_from(value, 0)
    return AsynchronousOperationsWindowSubItem(invoked, performed)


def _enc_async(item: AsynchronousOperationsWindowSubItem) -> bytes:
    return _TWO_U16.pack(item.max_operations_invoked, item.max_operations_performed)


def _dec_role(value: Buffer) -> RoleSelectionSubItem:
    what = "SCP/SCU Role Selection Sub-Item (54H)"
    uid, offset = get_field(value, 0, what + " UID")
    if len(value) - offset != 2:
        raise invalid(f"{what} has {len(value) - offset} bytes after its UID, not 2")
    return RoleSelectionSubItem(text_of(uid), value[offset], value[offset + 1])


def _enc_role(item: RoleSelectionSubItem) -> bytes:
    uid = put_field(text_bytes(item.sop_class_uid, "SOP Class UID"), "SOP Class UID")
    return uid + bytes((item.scu_role, item.scp_role))


class _Named(Protocol):
    @property
    def name(self) -> str: ...


def _enc_name(item: _Named) -> bytes:
    return text_bytes(item.name, type(item).__name__)


def _dec_version_name(value: Buffer) -> ImplementationVersionNameSubItem:
    return ImplementationVersionNameSubItem(text_of(value))


def _dec_ext(value: Buffer) -> SOPClassExtendedNegotiationSubItem:
    uid, offset = get_field(value, 0, "SOP Class Extended Negotiation Sub-Item (56H) UID")
    return SOPClassExtendedNegotiationSubItem(text_of(uid), bytes(value[offset:]))


def _enc_ext(item: SOPClassExtendedNegotiationSubItem) -> bytes:
    uid = put_field(text_bytes(item.sop_class_uid, "SOP Class UID"), "SOP Class UID")
    return uid + item.application_information


def _dec_common_ext(value: Buffer) -> SOPClassCommonExtendedNegotiationSubItem:
    what = "SOP Class Common Extended Negotiation Sub-Item (57H)"
    sop, offset = get_field(value, 0, what + " SOP Class UID")
    service, offset = get_field(value, offset, what + " Service Class UID")
    related_block, offset = get_field(value, offset, what + " Related General SOP Class list")
    related: list[str] = []
    pos = 0
    while pos < len(related_block):
        uid, pos = get_field(related_block, pos, what + " Related General SOP Class UID")
        related.append(text_of(uid))
    # bytes after the list are reserved (PS3.7 D.3.3.6): ignored
    return SOPClassCommonExtendedNegotiationSubItem(text_of(sop), text_of(service), tuple(related))


def _enc_common_ext(item: SOPClassCommonExtendedNegotiationSubItem) -> bytes:
    related = b"".join(
        put_field(text_bytes(uid, "Related General SOP Class UID"), "Related General SOP Class UID")
        for uid in item.related_general_sop_classes
    )
    return (
        put_field(text_bytes(item.sop_class_uid, "SOP Class UID"), "SOP Class UID")
        + put_field(text_bytes(item.service_class_uid, "Service Class UID"), "Service Class UID")
        + put_field(related, "Related General SOP Class list")
    )


def _dec_identity_rq(value: Buffer) -> UserIdentityRQSubItem:
    what = "User Identity Negotiation Sub-Item (58H)"
    if len(value) < 2:
        raise invalid(f"{what} is cut short")
    primary, offset = get_field(value, 2, what + " Primary Field")
    secondary, offset = get_field(value, offset, what + " Secondary Field")
    if offset != len(value):
        raise invalid(f"{what} has {len(value) - offset} stray bytes after its Secondary Field")
    return UserIdentityRQSubItem(value[0], value[1], primary, secondary)


def _enc_identity_rq(item: UserIdentityRQSubItem) -> bytes:
    return (
        bytes((item.identity_type, item.positive_response_requested))
        + put_field(item.primary_field, "User Identity Primary Field")
        + put_field(item.secondary_field, "User Identity Secondary Field")
    )


def _dec_identity_ac(value: Buffer) -> UserIdentityACSubItem:
    what = "User Identity Negotiation Sub-Item (59H)"
    response, offset = get_field(value, 0, what + " Server Response")
    if offset != len(value):
        raise invalid(f"{what} has {len(value) - offset} stray bytes after its Server Response")
    return UserIdentityACSubItem(response)


def _enc_identity_ac(item: UserIdentityACSubItem) -> bytes:
    return put_field(item.server_response, "Server Response")


#: The sub-items of PS3.8 Annex D and PS3.7 D.3.3 (51H-59H), each with its codec.
SUB_ITEM_CODECS: tuple[AnyCodec, ...] = (
    Codec(MaximumLengthSubItem, _dec_max_length, _enc_max_length),
    Codec(ImplementationClassUIDSubItem, _dec_class_uid, _enc_class_uid),
    Codec(AsynchronousOperationsWindowSubItem, _dec_async, _enc_async),
    Codec(RoleSelectionSubItem, _dec_role, _enc_role),
    Codec(ImplementationVersionNameSubItem, _dec_version_name, _enc_name),
    Codec(SOPClassExtendedNegotiationSubItem, _dec_ext, _enc_ext),
    Codec(SOPClassCommonExtendedNegotiationSubItem, _dec_common_ext, _enc_common_ext),
    Codec(UserIdentityRQSubItem, _dec_identity_rq, _enc_identity_rq),
    Codec(UserIdentityACSubItem, _dec_identity_ac, _enc_identity_ac),
)
