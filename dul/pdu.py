"""The seven PDUs of the DICOM upper layer (PS3.8 9.3).

Every PDU starts with the same 6-byte header:

    PDU-type (1) | reserved (1) | PDU-length (4, big endian) | variable field

`decode_pdu(data)` takes exactly one whole PDU, header included, and returns a frozen
dataclass; `encode_pdu(pdu)` is its inverse. For any input at all, `decode_pdu` raises
nothing but `PduError`, carrying the A-ABORT reason to send back. Reserved fields are
ignored on receipt and sent as zero. The variable fields are laid out by `dul.items`
(the items of the association PDUs) and `dul.pdata` (the PDV items of a P-DATA-TF).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import TypeAlias

from dul.errors import AbortReason, PduError
from dul.fields import Buffer, text_bytes, text_of
from dul.items import (
    ApplicationContextItem,
    Item,
    PresentationContextACItem,
    PresentationContextRQItem,
    encode_items,
    iter_items,
)
from dul.pdata import COMMAND, LAST, decode_pdvs, encode_pdvs
from dul.pdata import PDU_TYPE as PDATA_TF_TYPE
from dul.user_information import UserInformationItem

HEADER = struct.Struct(">BBI")
_ASSOC_FIXED = struct.Struct(">HH16s16s32s")  # version, reserved, called, calling, reserved

#: The DICOM Application Context Name (PS3.7 A.2.1).
DICOM_APPLICATION_CONTEXT = "1.2.840.10008.3.1.1.1"


def _ae(raw: bytes) -> str:
    return text_of(raw)


def _ae_raw(title: str, what: str) -> bytes:
    data = text_bytes(title, what)
    if len(data) > 16:
        raise ValueError(f"{what} {title!r} is longer than 16 characters")
    return data.ljust(16, b" ")


class _AssociateMixin:
    """Accessors shared by A-ASSOCIATE-RQ and -AC, over their ordered item list."""

    items: tuple[Item, ...]

    @property
    def application_context_name(self) -> str | None:
        for item in self.items:
            if isinstance(item, ApplicationContextItem):
                return item.name
        return None

    @property
    def user_information(self) -> UserInformationItem:
        for item in self.items:
            if isinstance(item, UserInformationItem):
                return item
        return UserInformationItem()


@dataclass(frozen=True, slots=True)
class A_ASSOCIATE_RQ(_AssociateMixin):
    """A-ASSOCIATE-RQ PDU (PS3.8 9.3.2), type 01H.

    AE titles are kept as the 16 characters received, padding included; the
    properties `called_ae` and `calling_ae` give them trimmed.
    """

    PDU_TYPE = 0x01
    called_ae_title: str
    calling_ae_title: str
    items: tuple[Item, ...] = ()
    protocol_version: int = 1

    @property
    def called_ae(self) -> str:
        return self.called_ae_title.strip(" ")

    @property
    def calling_ae(self) -> str:
        return self.calling_ae_title.strip(" ")

    @property
    def presentation_contexts(self) -> tuple[PresentationContextRQItem, ...]:
        return tuple(i for i in self.items if isinstance(i, PresentationContextRQItem))


@dataclass(frozen=True, slots=True)
class A_ASSOCIATE_AC(_AssociateMixin):
    """A-ASSOCIATE-AC PDU (PS3.8 9.3.3), type 02H.

    The AE title fields are reserved in the AC: sent back as received in the RQ,
    never tested on receipt.
    """

    PDU_TYPE = 0x02
    called_ae_title: str
    calling_ae_title: str
    items: tuple[Item, ...] = ()
    protocol_version: int = 1

    @property
    def presentation_contexts(self) -> tuple[PresentationContextACItem, ...]:
        return tuple(i for i in self.items if isinstance(i, PresentationContextACItem))


@dataclass(frozen=True, slots=True)
class A_ASSOCIATE_RJ:
    """A-ASSOCIATE-RJ PDU (PS3.8 9.3.4), type 03H: result, source, reason/diag."""

    PDU_TYPE = 0x03
    result: int
    source: int
    reason: int


@dataclass(frozen=True, slots=True)
class PresentationDataValue:
    """One PDV item of a P-DATA-TF (PS3.8 9.3.5.1, Annex E.2); its bytes are laid out
    by `dul.pdata`.

    `control` is the message control header: bit 0 set for a command fragment
    (clear for a data set), bit 1 set for the last fragment.
    """

    context_id: int
    control: int
    data: bytes

    @property
    def is_command(self) -> bool:
        return bool(self.control & COMMAND)

    @property
    def is_last(self) -> bool:
        return bool(self.control & LAST)


@dataclass(frozen=True, slots=True)
class P_DATA_TF:
    """P-DATA-TF PDU (PS3.8 9.3.5), type 04H: one or more PDVs."""

    PDU_TYPE = PDATA_TF_TYPE
    pdvs: tuple[PresentationDataValue, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class A_RELEASE_RQ:
    """A-RELEASE-RQ PDU (PS3.8 9.3.6), type 05H."""

    PDU_TYPE = 0x05


@dataclass(frozen=True, slots=True)
class A_RELEASE_RP:
    """A-RELEASE-RP PDU (PS3.8 9.3.7), type 06H."""

    PDU_TYPE = 0x06


@dataclass(frozen=True, slots=True)
class A_ABORT:
    """A-ABORT PDU (PS3.8 9.3.8), type 07H.

    `source`: 0 service-user, 2 service-provider. `reason` is significant only for
    source 2 (see `AbortReason`).
    """

    PDU_TYPE = 0x07
    source: int = 0
    reason: int = 0


Pdu: TypeAlias = (
    A_ASSOCIATE_RQ
    | A_ASSOCIATE_AC
    | A_ASSOCIATE_RJ
    | P_DATA_TF
    | A_RELEASE_RQ
    | A_RELEASE_RP
    | A_ABORT
)

PDU_NAMES = {
    0x01: "A-ASSOCIATE-RQ",
    0x02: "A-ASSOCIATE-AC",
    0x03: "A-ASSOCIATE-RJ",
    0x04: "P-DATA-TF",
    0x05: "A-RELEASE-RQ",
    0x06: "A-RELEASE-RP",
    0x07: "A-ABORT",
}


# --------------------------------------------------------------------------------------
# Decoding


def _decode_associate(pdu_type: int, body: memoryview) -> Pdu:
    name = PDU_NAMES[pdu_type]
    if len(body) < _ASSOC_FIXED.size:
        raise PduError(
            AbortReason.INVALID_PDU_PARAMETER_VALUE,
            f"{name} PDU-length {len(body)} is under the 68 bytes of its fixed fields",
        )
    version, _, called, calling, _ = _ASSOC_FIXED.unpack_from(body, 0)
    items = tuple(iter_items(body, _ASSOC_FIXED.size, f"{name} PDU", "PDU"))
    kind = A_ASSOCIATE_RQ if pdu_type == 0x01 else A_ASSOCIATE_AC
    return kind(_ae(called), _ae(calling), items, version)


def _decode_fixed(pdu_type: int, body: memoryview) -> Pdu:
    if len(body) != 4:
        raise PduError(
            AbortReason.INVALID_PDU_PARAMETER_VALUE,
            f"{PDU_NAMES[pdu_type]} PDU-length is {len(body)}, not 4",
        )
    if pdu_type == 0x03:
        return A_ASSOCIATE_RJ(body[1], body[2], body[3])
    if pdu_type == 0x05:
        return A_RELEASE_RQ()
    if pdu_type == 0x06:
        return A_RELEASE_RP()
    return A_ABORT(body[2], body[3])


def decode_pdu(data: Buffer) -> Pdu:
    """Decode exactly one whole PDU, header included. Raises only `PduError`."""
    view = memoryview(data).cast("B") if not isinstance(data, bytes) else memoryview(data)
    if len(view) < HEADER.size:
        raise PduError(
            AbortReason.INVALID_PDU_PARAMETER_VALUE,
            f"{len(view)} bytes are too few for a PDU header (6)",
        )
    pdu_type, _, length = HEADER.unpack_from(view, 0)
    if pdu_type not in PDU_NAMES:
        raise PduError(AbortReason.UNRECOGNIZED_PDU, f"PDU-type {pdu_type:02X}H is not a DICOM PDU")
    if length != len(view) - HEADER.size:
        raise PduError(
            AbortReason.INVALID_PDU_PARAMETER_VALUE,
            f"{PDU_NAMES[pdu_type]} PDU-length {length} does not match the "
            f"{len(view) - HEADER.size} bytes that follow the header",
        )
    body = view[HEADER.size :]
    if pdu_type == PDATA_TF_TYPE:  # the PDU received most: no call more than needed
        return P_DATA_TF(tuple(decode_pdvs(body, PresentationDataValue)))
    if pdu_type <= 0x02:
        return _decode_associate(pdu_type, body)
    return _decode_fixed(pdu_type, body)


# --------------------------------------------------------------------------------------
# Encoding


def _with_header(pdu_type: int, body: bytes) -> bytes:
    if len(body) > 0xFFFFFFFF:
        raise ValueError(
            f"{PDU_NAMES[pdu_type]} would be {len(body)} bytes; a PDU-length is 32-bit"
        )
    return HEADER.pack(pdu_type, 0, len(body)) + body


def encode_pdu(pdu: Pdu) -> bytes:
    """Encode one PDU, header included; reserved fields are zero."""
    if isinstance(pdu, P_DATA_TF):
        return _with_header(PDATA_TF_TYPE, encode_pdvs(pdu.pdvs))
    if isinstance(pdu, (A_ASSOCIATE_RQ, A_ASSOCIATE_AC)):
        fixed = _ASSOC_FIXED.pack(
            pdu.protocol_version,
            0,
            _ae_raw(pdu.called_ae_title, "Called AE Title"),
            _ae_raw(pdu.calling_ae_title, "Calling AE Title"),
            b"",
        )
        return _with_header(pdu.PDU_TYPE, fixed + encode_items(pdu.items))
    if isinstance(pdu, A_ASSOCIATE_RJ):
        return _with_header(0x03, bytes((0, pdu.result, pdu.source, pdu.reason)))
    if isinstance(pdu, A_ABORT):
        return _with_header(0x07, bytes((0, 0, pdu.source, pdu.reason)))
    if isinstance(pdu, (A_RELEASE_RQ, A_RELEASE_RP)):
        return _with_header(pdu.PDU_TYPE, bytes(4))
    raise TypeError(f"{type(pdu).__name__} is not a PDU")


def describe(pdu: Pdu) -> str:
    """A one-line summary of a PDU for logs (no passwords, no data bytes)."""
    if isinstance(pdu, P_DATA_TF):
        parts = ", ".join(
            f"PDV ctx {p.context_id} {'cmd' if p.is_command else 'data'}"
            f"{' last' if p.is_last else ''} {len(p.data)} B"
            for p in pdu.pdvs[:4]
        )
        more = f", +{len(pdu.pdvs) - 4} more" if len(pdu.pdvs) > 4 else ""
        return f"P-DATA-TF [{parts}{more}]"
    if isinstance(pdu, A_ASSOCIATE_RQ):
        return (
            f"A-ASSOCIATE-RQ {pdu.calling_ae!r} -> {pdu.called_ae!r}, "
            f"{len(pdu.presentation_contexts)} presentation contexts, "
            f"max PDU {pdu.user_information.maximum_length}"
        )
    if isinstance(pdu, A_ASSOCIATE_AC):
        accepted = sum(1 for pc in pdu.presentation_contexts if pc.result == 0)
        return (
            f"A-ASSOCIATE-AC, {accepted}/{len(pdu.presentation_contexts)} presentation "
            f"contexts accepted, max PDU {pdu.user_information.maximum_length}"
        )
    if isinstance(pdu, A_ASSOCIATE_RJ):
        return f"A-ASSOCIATE-RJ result {pdu.result} source {pdu.source} reason {pdu.reason}"
    if isinstance(pdu, A_ABORT):
        return f"A-ABORT source {pdu.source} reason {pdu.reason}"
    return PDU_NAMES[pdu.PDU_TYPE]
