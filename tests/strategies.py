"""hypothesis strategies for every PDU, item and sub-item of `dul` (PS3.8 9.3, Annex D;
PS3.7 D.3.3), for any test that needs valid upper-layer objects or their bytes.

    from tests.strategies import pdus, a_associate_rq, p_data_tf, pdu_streams

Every strategy draws objects that `dul.encode_pdu` accepts and that come back equal
from `dul.decode_pdu`: text fields are Latin-1, AE titles are the 16 characters the
decoder keeps (padding included), every length fits its field, and a P-DATA-TF has at
least one PDV. Sizes are kept small so that a thousand examples run in seconds.

The UIDs are mostly UID-shaped (`uids`), and sometimes any Latin-1 text (`latin1`),
because the codec keeps text exactly as received, padding and all.
"""

from __future__ import annotations

from hypothesis import strategies as st

from dul import (
    A_ABORT,
    A_ASSOCIATE_AC,
    A_ASSOCIATE_RJ,
    A_ASSOCIATE_RQ,
    A_RELEASE_RP,
    A_RELEASE_RQ,
    P_DATA_TF,
    Pdu,
    PresentationDataValue,
    encode_pdu,
)
from dul.fields import RawItem
from dul.items import (
    AbstractSyntaxSubItem,
    ApplicationContextItem,
    PresentationContextACItem,
    PresentationContextRQItem,
    TransferSyntaxSubItem,
)
from dul.user_information import (
    AsynchronousOperationsWindowSubItem,
    ImplementationClassUIDSubItem,
    ImplementationVersionNameSubItem,
    MaximumLengthSubItem,
    RoleSelectionSubItem,
    SOPClassCommonExtendedNegotiationSubItem,
    SOPClassExtendedNegotiationSubItem,
    UserIdentityACSubItem,
    UserIdentityRQSubItem,
    UserInformationItem,
)

# --------------------------------------------------------------------------------------
# Field values

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)

#: Any Latin-1 text: the codec decodes text as Latin-1 and keeps it as received.
latin1 = st.text(st.characters(min_codepoint=0, max_codepoint=0xFF), max_size=24)

#: UID-shaped text (PS3.5 9.1: digits and dots), sometimes with the trailing NUL or
#: space some peers add.
uid_shaped = st.builds(
    lambda text, pad: text + pad,
    st.text("0123456789.", min_size=1, max_size=40),
    st.sampled_from(["", "", "", "\x00", " "]),
)
#: Well-known UIDs, so that examples look like real traffic.
known_uids = st.sampled_from(
    [
        "1.2.840.10008.3.1.1.1",
        "1.2.840.10008.1.1",
        "1.2.840.10008.1.2",
        "1.2.840.10008.1.2.1",
        "1.2.840.10008.1.2.4.50",
        "1.2.840.10008.5.1.4.1.1.2",
        "1.2.840.10008.5.1.4.1.2.1.1",
        "1.2.840.10008.4.2",
    ]
)
uids = st.one_of(known_uids, uid_shaped, latin1)

#: An AE title as the decoder keeps it: exactly 16 Latin-1 characters.
ae_titles = st.one_of(
    st.sampled_from(["ANY-SCP", "ECHOSCU", "STORESCP", "", "A" * 16]),
    st.text(st.characters(min_codepoint=0, max_codepoint=0xFF), max_size=16),
).map(lambda title: title.ljust(16))

short_bytes = st.binary(max_size=32)

# --------------------------------------------------------------------------------------
# Items (PS3.8 9.3.2-9.3.3) and sub-items


application_context_items = st.builds(
    ApplicationContextItem, st.one_of(st.just("1.2.840.10008.3.1.1.1"), uids)
)
abstract_syntax_sub_items = st.builds(AbstractSyntaxSubItem, uids)
transfer_syntax_sub_items = st.builds(TransferSyntaxSubItem, uids)

presentation_context_rq_items = st.builds(
    PresentationContextRQItem,
    u8,
    st.one_of(st.none(), uids),
    st.lists(uids, max_size=4).map(tuple),
)
presentation_context_ac_items = st.builds(
    PresentationContextACItem, u8, u8, st.one_of(st.none(), uids)
)

# User information sub-items (PS3.8 D.1, PS3.7 D.3.3)
maximum_length_sub_items = st.builds(MaximumLengthSubItem, u32)
implementation_class_uid_sub_items = st.builds(ImplementationClassUIDSubItem, uids)
asynchronous_operations_window_sub_items = st.builds(AsynchronousOperationsWindowSubItem, u16, u16)
role_selection_sub_items = st.builds(RoleSelectionSubItem, uids, u8, u8)
implementation_version_name_sub_items = st.builds(ImplementationVersionNameSubItem, latin1)
sop_class_extended_sub_items = st.builds(SOPClassExtendedNegotiationSubItem, uids, short_bytes)
sop_class_common_extended_sub_items = st.builds(
    SOPClassCommonExtendedNegotiationSubItem,
    uids,
    uids,
    st.lists(uids, max_size=4).map(tuple),
)
user_identity_rq_sub_items = st.builds(UserIdentityRQSubItem, u8, u8, short_bytes, short_bytes)
user_identity_ac_sub_items = st.builds(UserIdentityACSubItem, short_bytes)

#: Item types known at the top level of an A-ASSOCIATE PDU; others decode as RawItem.
_PDU_ITEM_TYPES = frozenset({0x10, 0x20, 0x21, 0x50})
#: Sub-item types known inside a User Information Item.
_USER_INFO_TYPES = frozenset(range(0x51, 0x5A))


def raw_items(excluding: frozenset[int]) -> st.SearchStrategy[RawItem]:
    """An item of a type unknown where it stands, kept raw by the decoder."""
    return st.builds(
        RawItem, st.sampled_from([t for t in range(256) if t not in excluding]), short_bytes
    )


user_information_sub_items = st.one_of(
    maximum_length_sub_items,
    implementation_class_uid_sub_items,
    asynchronous_operations_window_sub_items,
    role_selection_sub_items,
    implementation_version_name_sub_items,
    sop_class_extended_sub_items,
    sop_class_common_extended_sub_items,
    user_identity_rq_sub_items,
    user_identity_ac_sub_items,
    raw_items(_USER_INFO_TYPES),
)
user_information_items = st.builds(
    UserInformationItem, st.lists(user_information_sub_items, max_size=6).map(tuple)
)

#: Any item that may stand at the top level of an A-ASSOCIATE-RQ or -AC.
association_items = st.one_of(
    application_context_items,
    presentation_context_rq_items,
    presentation_context_ac_items,
    user_information_items,
    raw_items(_PDU_ITEM_TYPES),
)

# --------------------------------------------------------------------------------------
# PDUs (PS3.8 9.3.2-9.3.8)


def _realistic_items(context: st.SearchStrategy[object]) -> st.SearchStrategy[tuple[object, ...]]:
    """Items in the usual order: application context, contexts, user information."""
    return st.builds(
        lambda app, contexts, info: (app, *contexts, info),
        application_context_items,
        st.lists(context, min_size=1, max_size=3),
        user_information_items,
    )


def _associate(
    kind: type[A_ASSOCIATE_RQ] | type[A_ASSOCIATE_AC], context: st.SearchStrategy[object]
) -> st.SearchStrategy[Pdu]:
    items = st.one_of(
        _realistic_items(context),
        st.lists(association_items, max_size=4).map(tuple),
    )
    return st.builds(kind, ae_titles, ae_titles, items, st.one_of(st.just(1), u16))


a_associate_rq = _associate(A_ASSOCIATE_RQ, presentation_context_rq_items)
a_associate_ac = _associate(A_ASSOCIATE_AC, presentation_context_ac_items)
a_associate_rj = st.builds(A_ASSOCIATE_RJ, u8, u8, u8)

presentation_data_values = st.builds(PresentationDataValue, u8, u8, st.binary(max_size=64))
p_data_tf = st.builds(
    P_DATA_TF, st.lists(presentation_data_values, min_size=1, max_size=5).map(tuple)
)
a_release_rq = st.just(A_RELEASE_RQ())
a_release_rp = st.just(A_RELEASE_RP())
a_abort = st.builds(A_ABORT, u8, u8)

#: One strategy per PDU type, by the standard's name.
PDU_STRATEGIES: dict[str, st.SearchStrategy[Pdu]] = {
    "A-ASSOCIATE-RQ": a_associate_rq,
    "A-ASSOCIATE-AC": a_associate_ac,
    "A-ASSOCIATE-RJ": a_associate_rj,
    "P-DATA-TF": p_data_tf,
    "A-RELEASE-RQ": a_release_rq,
    "A-RELEASE-RP": a_release_rp,
    "A-ABORT": a_abort,
}

#: One strategy per item or sub-item type (PS3.8 9.3, Annex D; PS3.7 D.3.3).
ITEM_STRATEGIES: dict[str, st.SearchStrategy[object]] = {
    "10H application context": application_context_items,
    "20H presentation context (RQ)": presentation_context_rq_items,
    "21H presentation context (AC)": presentation_context_ac_items,
    "30H abstract syntax": abstract_syntax_sub_items,
    "40H transfer syntax": transfer_syntax_sub_items,
    "50H user information": user_information_items,
    "51H maximum length": maximum_length_sub_items,
    "52H implementation class UID": implementation_class_uid_sub_items,
    "53H asynchronous operations window": asynchronous_operations_window_sub_items,
    "54H SCP/SCU role selection": role_selection_sub_items,
    "55H implementation version name": implementation_version_name_sub_items,
    "56H SOP class extended negotiation": sop_class_extended_sub_items,
    "57H SOP class common extended negotiation": sop_class_common_extended_sub_items,
    "58H user identity (RQ)": user_identity_rq_sub_items,
    "59H user identity (AC)": user_identity_ac_sub_items,
}

#: Any PDU.
pdus: st.SearchStrategy[Pdu] = st.one_of(*PDU_STRATEGIES.values())

#: The bytes of any PDU, as our encoder writes them.
pdu_bytes = pdus.map(encode_pdu)

#: Several PDUs, as a list, for stream and framing tests.
pdu_streams: st.SearchStrategy[list[Pdu]] = st.lists(pdus, min_size=1, max_size=5)

# --------------------------------------------------------------------------------------
# Well-formed bytes, assembled field by field from the standard's tables without our
# encoder: an independent source for `encode_pdu(decode_pdu(b)) == b`. Reserved fields
# are zero; text is any bytes (decoded as Latin-1); known items are in the order and
# number our model keeps (one abstract syntax, first, in a 20H; at most one transfer
# syntax in a 21H; no unknown sub-item inside a presentation context).


def item_bytes(item_type: int, value: bytes) -> bytes:
    """item-type | 00 | item-length (16 bits) | value."""
    return bytes((item_type, 0)) + len(value).to_bytes(2, "big") + value


def field_bytes(value: bytes) -> bytes:
    """A 16-bit length-prefixed field of a sub-item (PS3.7 D.3.3)."""
    return len(value).to_bytes(2, "big") + value


def pdu_header(pdu_type: int, body: bytes) -> bytes:
    """PDU-type | 00 | PDU-length (32 bits) | body."""
    return bytes((pdu_type, 0)) + len(body).to_bytes(4, "big") + body


_text_bytes = st.binary(max_size=40)
_UNKNOWN_IN_PDU = [t for t in range(256) if t not in _PDU_ITEM_TYPES]
_UNKNOWN_IN_USER_INFO = [t for t in range(256) if t not in _USER_INFO_TYPES]
_b16 = st.binary(min_size=2, max_size=2)
_b32 = st.binary(min_size=4, max_size=4)

_abstract_bytes = _text_bytes.map(lambda v: item_bytes(0x30, v))
_transfer_bytes = _text_bytes.map(lambda v: item_bytes(0x40, v))
_pc_rq_bytes = st.builds(
    lambda cid, abstract, transfers: item_bytes(
        0x20, bytes((cid, 0, 0, 0)) + abstract + b"".join(transfers)
    ),
    u8,
    st.one_of(st.just(b""), _abstract_bytes),
    st.lists(_transfer_bytes, max_size=3),
)
_pc_ac_bytes = st.builds(
    lambda cid, result, transfer: item_bytes(0x21, bytes((cid, 0, result, 0)) + transfer),
    u8,
    u8,
    st.one_of(st.just(b""), _transfer_bytes),
)
_user_sub_bytes = st.one_of(
    _b32.map(lambda v: item_bytes(0x51, v)),
    _text_bytes.map(lambda v: item_bytes(0x52, v)),
    _b32.map(lambda v: item_bytes(0x53, v)),
    st.builds(lambda uid, roles: item_bytes(0x54, field_bytes(uid) + roles), _text_bytes, _b16),
    _text_bytes.map(lambda v: item_bytes(0x55, v)),
    st.builds(
        lambda uid, info: item_bytes(0x56, field_bytes(uid) + info), _text_bytes, short_bytes
    ),
    st.builds(
        lambda sop, service, related: item_bytes(
            0x57,
            field_bytes(sop)
            + field_bytes(service)
            + field_bytes(b"".join(field_bytes(r) for r in related)),
        ),
        _text_bytes,
        _text_bytes,
        st.lists(_text_bytes, max_size=3),
    ),
    st.builds(
        lambda kind, primary, secondary: item_bytes(
            0x58, kind + field_bytes(primary) + field_bytes(secondary)
        ),
        _b16,
        short_bytes,
        short_bytes,
    ),
    short_bytes.map(lambda v: item_bytes(0x59, field_bytes(v))),
    st.builds(item_bytes, st.sampled_from(_UNKNOWN_IN_USER_INFO), short_bytes),
)
_user_info_bytes = st.lists(_user_sub_bytes, max_size=8).map(
    lambda subs: item_bytes(0x50, b"".join(subs))
)
_top_item_bytes = st.one_of(
    _text_bytes.map(lambda v: item_bytes(0x10, v)),
    _pc_rq_bytes,
    _pc_ac_bytes,
    _user_info_bytes,
    st.builds(item_bytes, st.sampled_from(_UNKNOWN_IN_PDU), short_bytes),
)
_associate_bytes = st.builds(
    lambda pdu_type, version, called, calling, items: pdu_header(
        pdu_type, version + b"\x00\x00" + called + calling + bytes(32) + b"".join(items)
    ),
    st.sampled_from([0x01, 0x02]),
    _b16,
    st.binary(min_size=16, max_size=16),
    st.binary(min_size=16, max_size=16),
    st.lists(_top_item_bytes, max_size=6),
)
_pdv_bytes = st.builds(
    lambda cid, control, data: (len(data) + 2).to_bytes(4, "big") + bytes((cid, control)) + data,
    u8,
    u8,
    st.binary(max_size=96),
)

#: Well-formed PDU bytes with zero reserved fields, built without `dul.encode_pdu`.
wellformed_pdu_bytes = st.one_of(
    _associate_bytes,
    st.builds(lambda r, s, d: pdu_header(0x03, bytes((0, r, s, d))), u8, u8, u8),
    st.lists(_pdv_bytes, min_size=1, max_size=5).map(lambda pdvs: pdu_header(0x04, b"".join(pdvs))),
    st.sampled_from([0x05, 0x06]).map(lambda t: pdu_header(t, bytes(4))),
    st.builds(lambda s, r: pdu_header(0x07, bytes((0, 0, s, r))), u8, u8),
)

#: Structurally framed PDUs whose item values are random bytes: every item decoder
#: gets garbage inside correct framing (a valid header and item lengths that fit).
_garbage_item_bytes = st.builds(
    item_bytes, st.sampled_from([0x10, 0x20, 0x21, 0x50, 0x30, 0x40, 0x60]), short_bytes
)
_garbage_sub_bytes = st.builds(item_bytes, st.integers(0x30, 0x5A), st.binary(max_size=24))
garbage_inside_pdu_bytes = st.one_of(
    st.builds(
        lambda pdu_type, fixed, items: pdu_header(pdu_type, fixed + b"".join(items)),
        st.sampled_from([0x01, 0x02]),
        st.binary(min_size=68, max_size=68),
        st.lists(
            st.one_of(
                _garbage_item_bytes,
                st.builds(
                    lambda t, head, subs: item_bytes(t, head + b"".join(subs)),
                    st.sampled_from([0x20, 0x21, 0x50]),
                    st.binary(max_size=4),
                    st.lists(_garbage_sub_bytes, max_size=4),
                ),
            ),
            max_size=5,
        ),
    ),
    st.builds(pdu_header, st.integers(1, 7), st.binary(max_size=200)),
)
