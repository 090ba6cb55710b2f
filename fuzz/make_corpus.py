"""Write the seed corpora of the fuzz targets: real PDUs, from two encoders.

    python fuzz/make_corpus.py          # rewrites fuzz/corpus/pdu/ and fuzz/corpus/framing/

Every PDU type comes twice: once from our own encoder (`dul.encode_pdu`) and once
from pynetdicom's PDU classes, an independent encoder. A few seeds are hand-made
oddities the decoder must accept (nonzero reserved bytes, unknown items). The files
are small (a few hundred bytes each), so the corpora can live in the repository.

A framing seed is `k | k chunk-size bytes | stream`, the layout `fuzz_framing.py`
reads: the stream is several whole PDUs back to back, cut in chunks of those sizes.
"""

from __future__ import annotations

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
from dul.items import (  # noqa: E402
    ApplicationContextItem,
    AsynchronousOperationsWindowSubItem,
    ImplementationClassUIDSubItem,
    ImplementationVersionNameSubItem,
    MaximumLengthSubItem,
    PresentationContextACItem,
    PresentationContextRQItem,
    RawItem,
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
# Framing seeds: whole conversations, cut in chunks


def framing_seeds(pdus: dict[str, bytes]) -> dict[str, bytes]:
    def seed(chunks: list[int], names: list[str]) -> bytes:
        return bytes([len(chunks)]) + bytes(chunks) + b"".join(pdus[n] for n in names)

    requestor = ["ours-associate-rq", "ours-pdata-echo-rq", "ours-release-rq"]
    acceptor = ["pynetdicom-associate-ac", "pynetdicom-pdata-echo-rsp", "pynetdicom-release-rp"]
    return {
        "requestor-whole": seed([], requestor),
        "requestor-bytewise": seed([1], requestor),
        "requestor-odd-chunks": seed([7, 3, 250, 1, 64], requestor),
        "acceptor-chunks": seed([5, 6, 100], acceptor),
        "acceptor-then-abort": seed([13], [*acceptor[:2], "ours-abort-provider-6"]),
        "pynetdicom-requestor": seed(
            [31, 2],
            ["pynetdicom-associate-rq", "pynetdicom-pdata-echo-rq", "pynetdicom-release-rq"],
        ),
        "rejected": seed([3], ["pynetdicom-associate-rq", "pynetdicom-associate-rj"]),
        "many-pdata": seed([255, 17], ["ours-pdata-four-pdvs"] * 4 + ["ours-release-rp"]),
        "odd-reserved": seed([9], ["odd-associate-rq-reserved-and-unknown", "odd-abort-reserved"]),
        "truncated": seed([4], ["ours-associate-ac"])[:-10],
    }


def build() -> tuple[dict[str, bytes], dict[str, bytes]]:
    pdus = {**ours(), **oddities(), **pynetdicom_pdus()}
    return pdus, framing_seeds(pdus)


def main() -> None:
    pdus, framing = build()
    for name, files in (("pdu", pdus), ("framing", framing)):
        folder = CORPUS / name
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        for stem, data in sorted(files.items()):
            (folder / f"{stem}.bin").write_bytes(data)
        print(f"{folder.relative_to(ROOT)}: {len(files)} files")


if __name__ == "__main__":
    main()
