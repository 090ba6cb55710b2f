"""Write the seed corpora of the fuzz targets, from two encoders: ours and pynetdicom's.

    python fuzz/make_corpus.py          # rewrites every folder under fuzz/corpus/

- `pdu/`: every PDU type twice, once from `dul.encode_pdu` and once from pynetdicom's
  PDU classes, plus hand-made oddities the decoder must accept (nonzero reserved
  bytes, unknown items).
- `framing/`: `k | k chunk sizes | stream` (the layout of `fuzz_framing.py`): whole
  conversations, cut around their PDU boundaries.
- `command/`: the command set of every DIMSE-C and DIMSE-N message, from
  `dimse.messages` and from pynetdicom's messages, plus oddities (no group length,
  elements out of order, retired and unknown elements).
- `reassembly/`: the PDV records of `fuzz_reassembly.py` for real messages (echo,
  store with a data set, find with an identifier, back to back), fragmented as our
  `fragment_message` and pynetdicom's `encode_msg` cut them, and a few faults.
- `negotiation/`: A-ASSOCIATE-RQ bodies (without the 6-byte header) from our
  `build_request` (echo, store, query/retrieve, C-GET roles, user identity,
  asynchronous window) and pynetdicom, and the refusals of negotiation.py (even or
  repeated context IDs, no transfer syntax, protocol version 2, bad AE titles,
  another application context, 129 contexts, a Maximum Length of 6, repeated role
  selections).

The files are small (at most a few KiB), so the corpora live in the repository.
"""

from __future__ import annotations

import io
import shutil
import struct
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dul import (  # noqa: E402
    A_ABORT,
    A_ASSOCIATE_AC,
    A_ASSOCIATE_RJ,
    A_ASSOCIATE_RQ,
    A_RELEASE_RP,
    A_RELEASE_RQ,
    P_DATA_TF,
    PresentationDataValue,
    encode_pdu,
)
from dul.fields import RawItem  # noqa: E402
from dul.items import (  # noqa: E402
    ApplicationContextItem,
    PresentationContextACItem,
    PresentationContextRQItem,
)
from dul.user_information import (  # noqa: E402
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

CORPUS = Path(__file__).resolve().parent / "corpus"

APP_CONTEXT = "1.2.840.10008.3.1.1.1"
VERIFICATION = "1.2.840.10008.1.1"
CT_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
FIND = "1.2.840.10008.5.1.4.1.2.1.1"
IMPLICIT = "1.2.840.10008.1.2"
EXPLICIT = "1.2.840.10008.1.2.1"
IMPL_UID = "1.2.826.0.1.3680043.8.498.1"

#: C-ECHO-RQ command set, implicit VR little endian (PS3.7 9.3.5), message ID 1.
ECHO_RQ_COMMAND = bytes.fromhex(
    "0000 0000 04000000 38000000"  # (0000,0000) UL 56
    "0000 0200 12000000" + "312e322e3834302e31303030382e312e3100"  # (0000,0002) UI
    "0000 0001 02000000 3000"  # (0000,0100) US 0030H C-ECHO-RQ
    "0000 1001 02000000 0100"  # (0000,0110) US message ID 1
    "0000 0008 02000000 0101"  # (0000,0800) US 0101H no data set
)


# --------------------------------------------------------------------------------------
# Ours


def _user_info_rq() -> UserInformationItem:
    return UserInformationItem(
        (
            MaximumLengthSubItem(16384),
            ImplementationClassUIDSubItem(IMPL_UID),
            ImplementationVersionNameSubItem("DICOM_UL_0.1"),
            AsynchronousOperationsWindowSubItem(5, 3),
            RoleSelectionSubItem(CT_STORAGE, 1, 1),
            SOPClassExtendedNegotiationSubItem(FIND, b"\x01\x01\x00"),
            SOPClassCommonExtendedNegotiationSubItem(
                "1.2.840.10008.5.1.4.1.1.88.40",
                "1.2.840.10008.4.2",
                ("1.2.840.10008.5.1.4.1.1.88.22", "1.2.840.10008.5.1.4.1.1.88.11"),
            ),
            UserIdentityRQSubItem(2, 1, b"alice", b"s3cret"),
            RawItem(0x70, b"\xde\xad"),
        )
    )


def ours() -> dict[str, bytes]:
    rq = A_ASSOCIATE_RQ(
        "ANY-SCP".ljust(16),
        "ECHOSCU".ljust(16),
        (
            ApplicationContextItem(APP_CONTEXT),
            PresentationContextRQItem(1, VERIFICATION, (IMPLICIT,)),
            PresentationContextRQItem(
                3, CT_STORAGE, (EXPLICIT, IMPLICIT, "1.2.840.10008.1.2.4.50")
            ),
            PresentationContextRQItem(5, FIND, (IMPLICIT,)),
            _user_info_rq(),
        ),
    )
    ac = A_ASSOCIATE_AC(
        "ANY-SCP".ljust(16),
        "ECHOSCU".ljust(16),
        (
            ApplicationContextItem(APP_CONTEXT),
            PresentationContextACItem(1, 0, IMPLICIT),
            PresentationContextACItem(3, 4, None),
            PresentationContextACItem(5, 3, IMPLICIT),
            UserInformationItem(
                (
                    MaximumLengthSubItem(32768),
                    ImplementationClassUIDSubItem(IMPL_UID),
                    ImplementationVersionNameSubItem("DICOM_UL_0.1"),
                    AsynchronousOperationsWindowSubItem(1, 1),
                    RoleSelectionSubItem(CT_STORAGE, 0, 1),
                    SOPClassExtendedNegotiationSubItem(FIND, b"\x01"),
                    UserIdentityACSubItem(b"server-token"),
                )
            ),
        ),
    )
    echo = P_DATA_TF((PresentationDataValue(1, 0x03, ECHO_RQ_COMMAND),))
    two_pdvs = P_DATA_TF(
        (
            PresentationDataValue(3, 0x01, ECHO_RQ_COMMAND[:20]),
            PresentationDataValue(3, 0x03, ECHO_RQ_COMMAND[20:]),
            PresentationDataValue(3, 0x00, b"\x08\x00\x16\x00" + b"\x00" * 12),
            PresentationDataValue(3, 0x02, b"\x10\x00\x10\x00\x04\x00\x00\x00DOE^"),
        )
    )
    return {
        "ours-associate-rq": encode_pdu(rq),
        "ours-associate-ac": encode_pdu(ac),
        "ours-associate-rj-1-1-3": encode_pdu(A_ASSOCIATE_RJ(1, 1, 3)),
        "ours-associate-rj-2-3-2": encode_pdu(A_ASSOCIATE_RJ(2, 3, 2)),
        "ours-pdata-echo-rq": encode_pdu(echo),
        "ours-pdata-four-pdvs": encode_pdu(two_pdvs),
        "ours-release-rq": encode_pdu(A_RELEASE_RQ()),
        "ours-release-rp": encode_pdu(A_RELEASE_RP()),
        "ours-abort-user": encode_pdu(A_ABORT(0, 0)),
        "ours-abort-provider-6": encode_pdu(A_ABORT(2, 6)),
    }


def oddities() -> dict[str, bytes]:
    """Valid PDUs our encoder would not write: nonzero reserved bytes, unknown items."""
    rq = bytearray(ours()["ours-associate-rq"])
    rq[1] = 0xFF  # PDU reserved byte
    rq[9] = 0xFF  # reserved after the protocol version
    rq[42:74] = b"\xaa" * 32  # 32 reserved bytes
    unknown_top = bytes.fromhex("60 00 0003 616263")  # unknown item type 60H
    unknown_rq = bytes(rq) + unknown_top
    unknown_rq = unknown_rq[:2] + struct.pack(">I", len(unknown_rq) - 6) + unknown_rq[6:]
    return {
        "odd-associate-rq-reserved-and-unknown": unknown_rq,
        "odd-abort-reserved": bytes.fromhex("07 ff 00000004 ffff 0201"),
        "odd-rj-reserved": bytes.fromhex("03 01 00000004 ee 010107"),
        "odd-associate-rq-no-items": bytes.fromhex("01 00 00000044 0001 0000")
        + b"ANY-SCP".ljust(16)
        + b"ECHOSCU".ljust(16)
        + bytes(32),
    }


# --------------------------------------------------------------------------------------
# pynetdicom, as an independent encoder


def pynetdicom_pdus() -> dict[str, bytes]:
    from pynetdicom import pdu as P
    from pynetdicom import pdu_primitives as PP
    from pynetdicom.dimse_messages import C_ECHO_RQ, C_ECHO_RSP
    from pynetdicom.dimse_primitives import C_ECHO
    from pynetdicom.presentation import PresentationContext

    def user_info(ac: bool) -> list[Any]:
        ml = PP.MaximumLengthNotification()
        ml.maximum_length_received = 16384
        ic = PP.ImplementationClassUIDNotification()
        ic.implementation_class_uid = IMPL_UID
        iv = PP.ImplementationVersionNameNotification()
        iv.implementation_version_name = "PYNETDICOM_304"
        aw = PP.AsynchronousOperationsWindowNegotiation()
        aw.maximum_number_operations_invoked = 2
        aw.maximum_number_operations_performed = 4
        rs = PP.SCP_SCU_RoleSelectionNegotiation()
        rs.sop_class_uid = CT_STORAGE
        rs.scu_role = True
        rs.scp_role = True
        ex = PP.SOPClassExtendedNegotiation()
        ex.sop_class_uid = FIND
        ex.service_class_application_information = b"\x01\x00\x01"
        items: list[Any] = [ml, ic, iv, aw, rs, ex]
        ident = PP.UserIdentityNegotiation()
        if ac:
            ident.server_response = b"welcome"
        else:
            ce = PP.SOPClassCommonExtendedNegotiation()
            ce.sop_class_uid = "1.2.840.10008.5.1.4.1.1.88.40"
            ce.service_class_uid = "1.2.840.10008.4.2"
            ce.related_general_sop_class_identification = ["1.2.840.10008.5.1.4.1.1.88.22"]
            items.append(ce)
            ident.user_identity_type = 2
            ident.positive_response_requested = True
            ident.primary_field = b"bob"
            ident.secondary_field = b"hunter2"
        items.append(ident)
        return items

    contexts: list[Any] = []
    for context_id, abstract, transfers in (
        (1, VERIFICATION, [IMPLICIT]),
        (3, CT_STORAGE, [EXPLICIT, IMPLICIT]),
        (5, FIND, [IMPLICIT, EXPLICIT]),
    ):
        pc = PresentationContext()
        pc.context_id = context_id
        pc.abstract_syntax = abstract
        pc.transfer_syntax = list(transfers)
        contexts.append(pc)

    assoc = PP.A_ASSOCIATE()
    assoc.application_context_name = APP_CONTEXT
    assoc.calling_ae_title = "PYNETDICOM"
    assoc.called_ae_title = "ANY-SCP"
    assoc.presentation_context_definition_list = contexts
    assoc.user_information = user_info(ac=False)
    rq = P.A_ASSOCIATE_RQ(assoc).encode()

    results = []
    for context_id, result, transfer in ((1, 0, IMPLICIT), (3, 0, EXPLICIT), (5, 3, IMPLICIT)):
        pc = PresentationContext()
        pc.context_id = context_id
        pc.result = result
        pc.transfer_syntax = [transfer]
        results.append(pc)
    assoc.result = 0
    assoc.presentation_context_definition_results_list = results
    assoc.user_information = user_info(ac=True)
    ac = P.A_ASSOCIATE_AC(assoc).encode()

    rj = PP.A_ASSOCIATE()
    rj.result = 1
    rj.result_source = 1
    rj.diagnostic = 7
    rj_bytes = P.A_ASSOCIATE_RJ(rj).encode()

    abort = PP.A_ABORT()
    abort.abort_source = 0
    abort_bytes = P.A_ABORT_RQ(abort).encode()
    p_abort = PP.A_P_ABORT()
    p_abort.provider_reason = 4
    p_abort_bytes = P.A_ABORT_RQ(p_abort).encode()

    def echo(message: object, **fields: object) -> bytes:
        primitive = C_ECHO()
        for name, value in fields.items():
            setattr(primitive, name, value)
        message.primitive_to_message(primitive)  # type: ignore[attr-defined]
        p_data = next(message.encode_msg(1, 16384))  # type: ignore[attr-defined]
        return P.P_DATA_TF(p_data).encode()

    echo_rq = echo(C_ECHO_RQ(), MessageID=1, AffectedSOPClassUID=VERIFICATION)
    echo_rsp = echo(
        C_ECHO_RSP(), MessageIDBeingRespondedTo=1, AffectedSOPClassUID=VERIFICATION, Status=0
    )
    return {
        "pynetdicom-associate-rq": rq,
        "pynetdicom-associate-ac": ac,
        "pynetdicom-associate-rj": rj_bytes,
        "pynetdicom-abort-user": abort_bytes,
        "pynetdicom-abort-provider": p_abort_bytes,
        "pynetdicom-release-rq": P.A_RELEASE_RQ().encode(),
        "pynetdicom-release-rp": P.A_RELEASE_RP().encode(),
        "pynetdicom-pdata-echo-rq": echo_rq,
        "pynetdicom-pdata-echo-rsp": echo_rsp,
    }


# --------------------------------------------------------------------------------------
# Framing seeds: whole conversations, cut around their PDU boundaries


def _gaps(cuts: list[int]) -> list[int]:
    """Chunk sizes (each at most 255) that cut a stream at these offsets."""
    sizes: list[int] = []
    position = 0
    for cut in sorted(cuts):
        gap = cut - position
        while gap > 255:
            sizes.append(255)
            gap -= 255
        sizes.append(gap)
        position = cut
    return sizes


def framing_seed(pieces: list[bytes], cuts: list[int] | None = None, bytewise: int = 0) -> bytes:
    """`k | sizes | stream`: cut at `cuts` (default: 3 bytes into each PDU header and
    at each boundary), or fed one byte at a time for the first `bytewise` bytes."""
    stream = b"".join(pieces)
    if bytewise:
        sizes = [1] * bytewise
    else:
        if cuts is None:
            cuts = []
            position = 0
            for piece in pieces:
                cuts += [position, position + 3]
                position += len(piece)
        sizes = _gaps([c for c in cuts if 0 < c < len(stream)])
    sizes = sizes[:31]
    return bytes([len(sizes)]) + bytes(sizes) + stream


def framing_seeds(pdus: dict[str, bytes]) -> dict[str, bytes]:
    def get(names: list[str]) -> list[bytes]:
        return [pdus[n] for n in names]

    requestor = get(["ours-associate-rq", "ours-pdata-echo-rq", "ours-release-rq"])
    acceptor = get(
        ["pynetdicom-associate-ac", "pynetdicom-pdata-echo-rsp", "pynetdicom-release-rp"]
    )
    pyn = get(["pynetdicom-associate-rq", "pynetdicom-pdata-echo-rq", "pynetdicom-release-rq"])
    many = get(["ours-pdata-four-pdvs"] * 4 + ["ours-release-rp"])
    return {
        "requestor-whole": framing_seed(requestor, cuts=[]),
        "requestor-headers": framing_seed(requestor),
        "requestor-bytewise": framing_seed(requestor, bytewise=31),
        "requestor-odd-chunks": framing_seed(requestor, cuts=[7, 10, 260, 261, 325]),
        "acceptor-headers": framing_seed(acceptor),
        "acceptor-then-abort": framing_seed([*acceptor[:2], pdus["ours-abort-provider-6"]]),
        "pynetdicom-requestor": framing_seed(pyn),
        "rejected": framing_seed(get(["pynetdicom-associate-rq", "pynetdicom-associate-rj"])),
        "many-pdata": framing_seed(many),
        "many-pdata-empty-feeds": bytes([4, 0, 6, 0, 0]) + b"".join(many),
        "odd-reserved": framing_seed(
            get(["odd-associate-rq-reserved-and-unknown", "odd-abort-reserved"])
        ),
        "truncated": framing_seed(get(["ours-associate-ac"]))[:-10],
        "http-get": bytes([2, 1, 3]) + b"GET / HTTP/1.1\r\n\r\n",
        "pdata-too-long": bytes([1, 3]) + bytes.fromhex("04 00 00010000 00000002 01 03"),
    }


# --------------------------------------------------------------------------------------
# Command sets (fuzz_command.py)

STORE_UID = "1.2.826.0.1.3680043.8.498.12345678901234567890"


def our_messages() -> dict[str, Any]:
    from dimse import messages as m

    ct = CT_STORAGE
    return {
        "c-store-rq": m.C_STORE_RQ(
            message_id=7, affected_sop_class_uid=ct, affected_sop_instance_uid=STORE_UID
        ),
        "c-store-rq-move": m.C_STORE_RQ(
            message_id=8,
            affected_sop_class_uid=ct,
            affected_sop_instance_uid=STORE_UID,
            priority=m.Priority.HIGH,
            move_originator_aet="MOVESCU",
            move_originator_message_id=3,
        ),
        "c-store-rsp": m.C_STORE_RSP(
            message_id_being_responded_to=7,
            status=0,
            affected_sop_class_uid=ct,
            affected_sop_instance_uid=STORE_UID,
        ),
        "c-store-rsp-warning": m.C_STORE_RSP(
            message_id_being_responded_to=7,
            status=0xB000,
            error_comment="coerced",
            offending_element=(0x00100010, 0x00100020),
        ),
        "c-find-rq": m.C_FIND_RQ(message_id=2, affected_sop_class_uid=FIND),
        "c-find-rsp-pending": m.C_FIND_RSP(
            message_id_being_responded_to=2, status=0xFF00, affected_sop_class_uid=FIND
        ).with_data_set(),
        "c-find-rsp-final": m.C_FIND_RSP(message_id_being_responded_to=2, status=0),
        "c-get-rq": m.C_GET_RQ(message_id=4, affected_sop_class_uid="1.2.840.10008.5.1.4.1.2.2.3"),
        "c-get-rsp": m.C_GET_RSP(
            message_id_being_responded_to=4,
            status=0xFF00,
            number_of_remaining_suboperations=3,
            number_of_completed_suboperations=1,
            number_of_failed_suboperations=0,
            number_of_warning_suboperations=0,
        ),
        "c-move-rq": m.C_MOVE_RQ(
            message_id=5,
            affected_sop_class_uid="1.2.840.10008.5.1.4.1.2.2.2",
            move_destination="STORESCP",
        ),
        "c-move-rsp-failed": m.C_MOVE_RSP(
            message_id_being_responded_to=5,
            status=0xA801,
            error_comment="unknown destination",
            number_of_completed_suboperations=0,
            number_of_failed_suboperations=2,
        ),
        "c-echo-rq": m.C_ECHO_RQ(message_id=1),
        "c-echo-rsp": m.C_ECHO_RSP(
            message_id_being_responded_to=1, status=0, affected_sop_class_uid=VERIFICATION
        ),
        "c-cancel-rq": m.C_CANCEL_RQ(message_id_being_responded_to=2),
        "n-event-report-rq": m.N_EVENT_REPORT_RQ(
            message_id=9,
            affected_sop_class_uid="1.2.840.10008.1.20.1",
            affected_sop_instance_uid="1.2.840.10008.1.20.1.1",
            event_type_id=1,
        ),
        "n-event-report-rsp": m.N_EVENT_REPORT_RSP(
            message_id_being_responded_to=9, status=0, event_type_id=1
        ),
        "n-get-rq": m.N_GET_RQ(
            message_id=10,
            requested_sop_class_uid="1.2.840.10008.5.1.1.16",
            requested_sop_instance_uid="1.2.840.10008.5.1.1.17",
            attribute_identifier_list=(0x21100010, 0x21100020),
        ),
        "n-get-rsp": m.N_GET_RSP(message_id_being_responded_to=10, status=0x0107, error_id=3),
        "n-set-rq": m.N_SET_RQ(
            message_id=11,
            requested_sop_class_uid="1.2.840.10008.3.1.2.3.3",
            requested_sop_instance_uid=STORE_UID,
        ),
        "n-set-rsp": m.N_SET_RSP(message_id_being_responded_to=11, status=0x0106),
        "n-action-rq": m.N_ACTION_RQ(
            message_id=12,
            requested_sop_class_uid="1.2.840.10008.1.20.1",
            requested_sop_instance_uid="1.2.840.10008.1.20.1.1",
            action_type_id=1,
        ).with_data_set(),
        "n-action-rsp": m.N_ACTION_RSP(message_id_being_responded_to=12, status=0),
        "n-create-rq": m.N_CREATE_RQ(
            message_id=13, affected_sop_class_uid="1.2.840.10008.3.1.2.3.3"
        ).with_data_set(),
        "n-create-rsp": m.N_CREATE_RSP(
            message_id_being_responded_to=13, status=0, affected_sop_instance_uid=STORE_UID
        ),
        "n-delete-rq": m.N_DELETE_RQ(
            message_id=14,
            requested_sop_class_uid="1.2.840.10008.5.1.1.1",
            requested_sop_instance_uid=STORE_UID,
        ),
        "n-delete-rsp": m.N_DELETE_RSP(message_id_being_responded_to=14, status=0x0112),
    }


def pynetdicom_commands() -> dict[str, bytes]:
    from pydicom.dataset import Dataset
    from pynetdicom import dimse_messages as M
    from pynetdicom import dimse_primitives as P
    from pynetdicom.dsutils import encode

    def command(message_class: Any, primitive_class: Any, **fields: Any) -> bytes:
        primitive = primitive_class()
        for name, value in fields.items():
            setattr(primitive, name, value)
        message = message_class()
        message.primitive_to_message(primitive)
        data = encode(message.command_set, True, True)
        assert data is not None
        return data

    def identifier() -> io.BytesIO:
        query = Dataset()
        query.QueryRetrieveLevel = "STUDY"
        return io.BytesIO(encode(query, True, True) or b"")

    def store() -> io.BytesIO:
        instance = Dataset()
        instance.SOPClassUID = CT_STORAGE
        instance.SOPInstanceUID = STORE_UID
        return io.BytesIO(encode(instance, True, True) or b"")

    qr_get = "1.2.840.10008.5.1.4.1.2.1.3"
    qr_move = "1.2.840.10008.5.1.4.1.2.1.2"
    return {
        "pynetdicom-c-store-rq": command(
            M.C_STORE_RQ,
            P.C_STORE,
            MessageID=3,
            AffectedSOPClassUID=CT_STORAGE,
            AffectedSOPInstanceUID=STORE_UID,
            Priority=2,
            DataSet=store(),
            MoveOriginatorApplicationEntityTitle="MOVER",
            MoveOriginatorMessageID=9,
        ),
        "pynetdicom-c-store-rsp": command(
            M.C_STORE_RSP,
            P.C_STORE,
            MessageIDBeingRespondedTo=3,
            Status=0xA700,
            AffectedSOPClassUID=CT_STORAGE,
            AffectedSOPInstanceUID=STORE_UID,
            ErrorComment="out of resources",
        ),
        "pynetdicom-c-find-rq": command(
            M.C_FIND_RQ,
            P.C_FIND,
            MessageID=5,
            AffectedSOPClassUID=FIND,
            Priority=0,
            Identifier=identifier(),
        ),
        "pynetdicom-c-find-rsp": command(
            M.C_FIND_RSP,
            P.C_FIND,
            MessageIDBeingRespondedTo=5,
            Status=0xFF00,
            AffectedSOPClassUID=FIND,
            Identifier=identifier(),
        ),
        "pynetdicom-c-get-rq": command(
            M.C_GET_RQ,
            P.C_GET,
            MessageID=6,
            AffectedSOPClassUID=qr_get,
            Priority=1,
            Identifier=identifier(),
        ),
        "pynetdicom-c-get-rsp": command(
            M.C_GET_RSP,
            P.C_GET,
            MessageIDBeingRespondedTo=6,
            Status=0xB000,
            AffectedSOPClassUID=qr_get,
            NumberOfRemainingSuboperations=0,
            NumberOfCompletedSuboperations=4,
            NumberOfFailedSuboperations=1,
            NumberOfWarningSuboperations=0,
        ),
        "pynetdicom-c-move-rq": command(
            M.C_MOVE_RQ,
            P.C_MOVE,
            MessageID=7,
            AffectedSOPClassUID=qr_move,
            Priority=0,
            MoveDestination="STORESCP",
            Identifier=identifier(),
        ),
        "pynetdicom-c-move-rsp": command(
            M.C_MOVE_RSP,
            P.C_MOVE,
            MessageIDBeingRespondedTo=7,
            Status=0,
            AffectedSOPClassUID=qr_move,
            NumberOfCompletedSuboperations=2,
            NumberOfFailedSuboperations=0,
            NumberOfWarningSuboperations=0,
        ),
        "pynetdicom-c-echo-rq": command(
            M.C_ECHO_RQ, P.C_ECHO, MessageID=1, AffectedSOPClassUID=VERIFICATION
        ),
        "pynetdicom-c-echo-rsp": command(
            M.C_ECHO_RSP,
            P.C_ECHO,
            MessageIDBeingRespondedTo=1,
            Status=0,
            AffectedSOPClassUID=VERIFICATION,
        ),
        "pynetdicom-c-cancel-rq": command(M.C_CANCEL_RQ, P.C_CANCEL, MessageIDBeingRespondedTo=5),
        "pynetdicom-n-get-rq": command(
            M.N_GET_RQ,
            P.N_GET,
            MessageID=8,
            RequestedSOPClassUID="1.2.840.10008.5.1.1.16",
            RequestedSOPInstanceUID="1.2.840.10008.5.1.1.17",
            AttributeIdentifierList=[0x21100010, 0x00100010],
        ),
        "pynetdicom-n-event-report-rq": command(
            M.N_EVENT_REPORT_RQ,
            P.N_EVENT_REPORT,
            MessageID=9,
            AffectedSOPClassUID="1.2.840.10008.1.20.1",
            AffectedSOPInstanceUID="1.2.840.10008.1.20.1.1",
            EventTypeID=2,
        ),
    }


def _element(element: int, value: bytes) -> bytes:
    return struct.pack("<HHI", 0, element, len(value)) + value


def command_seeds() -> dict[str, bytes]:
    seeds = {f"ours-{name}": message.encode() for name, message in our_messages().items()}
    seeds.update(pynetdicom_commands())
    echo = ECHO_RQ_COMMAND
    body = echo[12:]
    elements = [body[0:26], body[26:36], body[36:46], body[46:56]]
    seeds.update(
        {
            "odd-no-group-length": body,
            "odd-out-of-order": b"".join(reversed(elements)),
            "odd-unknown-element": body + _element(0x0999, b"\x01\x02\x03\x04"),
            "odd-retired-elements": echo
            + _element(0x0200, b"INITIATOR ")
            + _element(0x51B0, b"\x01\x00\x02\x00"),
            "odd-ui-space-padded": _element(0x0002, b"1.2.840.10008.1.1 ") + body[26:],
            "odd-empty": b"",
        }
    )
    return seeds


# --------------------------------------------------------------------------------------
# PDV records (fuzz_reassembly.py): context | control | flags | n | n bytes


def pdv_records(pdus: list[list[tuple[int, int, bytes]]]) -> bytes:
    """Records for P-DATA-TFs given as lists of (context, control, data) PDVs; data
    over 255 bytes is cut into several fragments of the same kind."""
    out = bytearray()
    for pdvs in pdus:
        records: list[tuple[int, int, bytes]] = []
        for context, control, data in pdvs:
            while len(data) > 255:
                records.append((context, control & ~0x02, data[:255]))
                data = data[255:]
            records.append((context, control, data))
        for index, (context, control, data) in enumerate(records):
            end = 0x01 if index == len(records) - 1 else 0x00
            out += bytes((context, control, end, len(data))) + data
    return bytes(out)


def _pdus_of(stream: list[bytes]) -> list[list[tuple[int, int, bytes]]]:
    from dul import decode_pdu

    result = []
    for raw in stream:
        pdu = decode_pdu(raw)
        assert isinstance(pdu, P_DATA_TF)
        result.append([(p.context_id, p.control, p.data) for p in pdu.pdvs])
    return result


def reassembly_seeds() -> dict[str, bytes]:
    from pydicom.dataset import Dataset
    from pynetdicom import dimse_messages as M
    from pynetdicom import dimse_primitives as P

    from dimse.datasets import EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN, encode_dataset
    from dimse.fragments import fragment_message
    from dimse.messages import C_ECHO_RQ, C_FIND_RQ, C_STORE_RQ

    instance = Dataset()
    instance.SOPClassUID = CT_STORAGE
    instance.SOPInstanceUID = STORE_UID
    instance.PatientName = "DOE^JOHN"
    instance.PatientID = "12345"
    instance.Modality = "CT"
    small = encode_dataset(instance, EXPLICIT_VR_LITTLE_ENDIAN)
    big_instance = Dataset()
    big_instance.update(instance)
    big_instance.ImageComments = "x" * 1400  # over the 1 KiB spool threshold
    big = encode_dataset(big_instance, EXPLICIT_VR_LITTLE_ENDIAN)
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.PatientName = "DOE*"
    query.StudyInstanceUID = ""
    identifier = encode_dataset(query, IMPLICIT_VR_LITTLE_ENDIAN)

    echo = C_ECHO_RQ(message_id=1).encode()
    store = C_STORE_RQ(
        message_id=2, affected_sop_class_uid=CT_STORAGE, affected_sop_instance_uid=STORE_UID
    ).encode()
    find = C_FIND_RQ(message_id=3, affected_sop_class_uid=FIND).encode()

    def ours(context: int, command: bytes, data: bytes | None, max_pdu: int) -> list[bytes]:
        return list(fragment_message(context, command, data, max_pdu))

    def pyn(
        context: int, message: Any, primitive: Any, max_pdu: int
    ) -> list[list[tuple[int, int, bytes]]]:
        message.primitive_to_message(primitive)
        pdus = []
        for p_data in message.encode_msg(context, max_pdu):
            pdus.append([(c, v[0], v[1:]) for c, v in p_data.presentation_data_value_list])
        return pdus

    store_primitive = P.C_STORE()
    store_primitive.MessageID = 4
    store_primitive.AffectedSOPClassUID = CT_STORAGE
    store_primitive.AffectedSOPInstanceUID = STORE_UID
    store_primitive.Priority = 0
    store_primitive.DataSet = io.BytesIO(small)
    find_primitive = P.C_FIND()
    find_primitive.MessageID = 5
    find_primitive.AffectedSOPClassUID = FIND
    find_primitive.Priority = 0
    find_primitive.Identifier = io.BytesIO(identifier)

    return {
        "ours-echo": pdv_records(_pdus_of(ours(1, echo, None, 16384))),
        "ours-store-one-pdu": pdv_records(_pdus_of(ours(3, store, small, 16384))),
        "ours-store-fragmented": pdv_records(_pdus_of(ours(3, store, small, 64))),
        "ours-store-spooled": pdv_records(_pdus_of(ours(3, store, big, 16384))),
        "ours-find": pdv_records(_pdus_of(ours(1, find, identifier, 100))),
        "ours-echo-then-find": pdv_records(
            _pdus_of(ours(1, echo, None, 16384) + ours(1, find, identifier, 16384))
        ),
        "ours-store-then-echo": pdv_records(
            _pdus_of(ours(3, store, small, 200) + ours(1, echo, None, 16384))
        ),
        "pynetdicom-store": pdv_records(pyn(3, M.C_STORE_RQ(), store_primitive, 128)),
        "pynetdicom-find": pdv_records(pyn(1, M.C_FIND_RQ(), find_primitive, 16384)),
        "fault-data-first": pdv_records([[(1, 0x02, small[:40])]]),
        "fault-context-5": pdv_records([[(5, 0x03, echo)]]),
        "fault-context-change": pdv_records([[(3, 0x01, store[:50])], [(1, 0x03, store[50:])]]),
        "fault-command-in-data": pdv_records(
            [[(3, 0x03, store), (3, 0x00, small[:20]), (3, 0x03, echo)]]
        ),
        "fault-empty-pdu": bytes((1, 0x03, 0x03, len(echo))) + echo,
    }


# --------------------------------------------------------------------------------------
# A-ASSOCIATE-RQ bodies (fuzz_negotiation.py)


def negotiation_seeds(pdus: dict[str, bytes]) -> dict[str, bytes]:
    from dimse.client import get_roles, query_contexts
    from dimse.models import Root
    from dul.negotiation import ProposedContext, build_request

    def body(rq: A_ASSOCIATE_RQ) -> bytes:
        return encode_pdu(rq)[6:]

    echo = build_request("ECHOSCU", "DICOMSCP", [ProposedContext(VERIFICATION, (IMPLICIT,))])
    store = build_request(
        "STORESCU",
        "DICOMSCP",
        [
            ProposedContext(CT_STORAGE, (EXPLICIT, IMPLICIT)),
            ProposedContext("1.2.840.10008.5.1.4.1.1.4", ("1.2.840.10008.1.2.4.90",)),
            ProposedContext("1.2.840.10008.5.1.4.1.1.7", ("1.2.840.10008.1.2.2",)),
        ],
        async_window=(8, 1),
    )
    find = build_request(
        "FINDSCU",
        "DICOMSCP",
        query_contexts(Root.STUDY, "find") + query_contexts(Root.WORKLIST, "find"),
        user_identity=UserIdentityRQSubItem(2, 1, b"alice", b"secret"),
    )
    get_contexts = [
        *query_contexts(Root.PATIENT, "get", [CT_STORAGE]),
        ProposedContext("1.2.840.10008.5.1.4.1.1.7", (EXPLICIT,)),
    ]
    get = build_request(
        "PYNETDICOM",
        "DICOMSCP",
        get_contexts,
        roles=get_roles(get_contexts),
        user_identity=UserIdentityRQSubItem(1, 1, b"carol"),
        max_pdata_length=0,
    )
    odd_items = (
        ApplicationContextItem(APP_CONTEXT),
        PresentationContextRQItem(2, VERIFICATION, (IMPLICIT,)),  # even ID
        PresentationContextRQItem(1, VERIFICATION, (IMPLICIT,)),
        PresentationContextRQItem(1, CT_STORAGE, (IMPLICIT,)),  # repeated ID
        PresentationContextRQItem(3, CT_STORAGE, ()),  # no transfer syntax
        PresentationContextRQItem(5, None, (IMPLICIT,)),  # no abstract syntax
        PresentationContextRQItem(7, "1.2.3.4", (IMPLICIT,)),  # not ours
        PresentationContextRQItem(9, FIND + "\x00", (IMPLICIT + "\x00",)),  # NUL-padded
        UserInformationItem(
            (
                MaximumLengthSubItem(16384),
                RoleSelectionSubItem(CT_STORAGE, 1, 1),
                RoleSelectionSubItem("1.2.840.10008.5.1.4.1.1.4", 0, 1),  # not proposed
                RawItem(0x5F, b"\x00"),
            )
        ),
        RawItem(0x60, b"abc"),
    )
    # 129 contexts of 8 bytes each (no sub-items): over the 128 of PS3.8 9.3.2.2
    minimal_contexts = tuple(
        PresentationContextRQItem((2 * i + 1) % 256, None, ()) for i in range(129)
    )
    version_2 = bytearray(body(echo))
    version_2[0:2] = b"\x00\x02"
    seeds = {
        "ours-echo": body(echo),
        "ours-store-async": body(store),
        "ours-find-identity": body(find),
        "ours-get-roles": body(get),
        "pynetdicom-rq": pdus["pynetdicom-associate-rq"][6:],
        "ours-associate-rq-all-items": pdus["ours-associate-rq"][6:],
        "odd-contexts": body(A_ASSOCIATE_RQ("DICOMSCP", "ECHOSCU", odd_items)),
        "odd-129-contexts": body(
            A_ASSOCIATE_RQ(
                "DICOMSCP", "ECHOSCU", (ApplicationContextItem(APP_CONTEXT), *minimal_contexts)
            )
        ),
        "odd-protocol-version-2": bytes(version_2),
        "odd-blank-calling": body(A_ASSOCIATE_RQ("DICOMSCP", " " * 16, echo.items)),
        "odd-backslash-calling": body(A_ASSOCIATE_RQ("DICOMSCP", "A\\B", echo.items)),
        "odd-wrong-called": body(A_ASSOCIATE_RQ("OTHER", "ECHOSCU", echo.items)),
        "odd-other-application-context": body(
            A_ASSOCIATE_RQ(
                "DICOMSCP", "ECHOSCU", (ApplicationContextItem("1.2.3"), *echo.items[1:])
            )
        ),
        "odd-no-items": pdus["odd-associate-rq-no-items"][6:],
        "odd-reserved-and-unknown": pdus["odd-associate-rq-reserved-and-unknown"][6:],
        "odd-max-length-6": body(
            A_ASSOCIATE_RQ(
                "DICOMSCP",
                "ECHOSCU",
                (*echo.items[:-1], UserInformationItem((MaximumLengthSubItem(6),))),
            )
        ),
        "odd-repeated-roles": body(
            A_ASSOCIATE_RQ(
                "DICOMSCP",
                "STORESCU",
                (
                    *store.items[:-1],
                    UserInformationItem(
                        (MaximumLengthSubItem(16384), *[RoleSelectionSubItem(CT_STORAGE, 1, 1)] * 8)
                    ),
                ),
            )
        ),
        "odd-identity-jwt": body(
            build_request(
                "ECHOSCU",
                "DICOMSCP",
                [ProposedContext(VERIFICATION, (IMPLICIT,))],
                user_identity=UserIdentityRQSubItem(5, 1, b"eyJhbGciOiJub25lIn0.e30."),
            )
        ),
    }
    return seeds


def build() -> dict[str, dict[str, bytes]]:
    pdus = {**ours(), **oddities(), **pynetdicom_pdus()}
    return {
        "pdu": pdus,
        "framing": framing_seeds(pdus),
        "command": command_seeds(),
        "reassembly": reassembly_seeds(),
        "negotiation": negotiation_seeds(pdus),
    }


def main() -> None:
    for name, files in build().items():
        folder = CORPUS / name
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        for stem, data in sorted(files.items()):
            (folder / f"{stem}.bin").write_bytes(data)
        print(f"{folder.relative_to(ROOT)}: {len(files)} files")


if __name__ == "__main__":
    main()
