"""Golden bytes for every PDU, item and sub-item, written by hand from the standard.

Sources, field by field:

- PS3.8 9.3.2 (Tables 9-11..9-17): A-ASSOCIATE-RQ and its items 10H, 20H, 30H, 40H, 50H
- PS3.8 9.3.3 (Tables 9-17..9-20): A-ASSOCIATE-AC and its items 10H, 21H, 40H, 50H
- PS3.8 9.3.4 (Table 9-21): A-ASSOCIATE-RJ
- PS3.8 9.3.5 (Tables 9-22, 9-23) and Annex E.2: P-DATA-TF and its PDV items
- PS3.8 9.3.6-9.3.8 (Tables 9-24..9-26): A-RELEASE-RQ, A-RELEASE-RP, A-ABORT
- PS3.8 D.1 (Table D.1-1): Maximum Length Sub-Item 51H
- PS3.7 D.3.3.2-D.3.3.7 (Tables D.3-1..D.3-15): sub-items 52H..59H

Each golden is written in a small notation: hex bytes, with ASCII text in single
quotes and comments after `#`; `h()` turns it into bytes. Each is decoded to the
object the table describes and encoded back to the same bytes. The same values are
then built with pynetdicom's PDU classes, an independent encoder, and must give the
same bytes.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from dul import (
    A_ABORT,
    A_ASSOCIATE_AC,
    A_ASSOCIATE_RJ,
    A_ASSOCIATE_RQ,
    A_RELEASE_RP,
    A_RELEASE_RQ,
    P_DATA_TF,
    PduError,
    PresentationDataValue,
    decode_pdu,
    encode_pdu,
)
from dul.fields import RawItem
from dul.items import (
    AbstractSyntaxSubItem,
    ApplicationContextItem,
    PresentationContextACItem,
    PresentationContextRQItem,
    TransferSyntaxSubItem,
    encode_item,
    iter_items,
)
from dul.pdu import describe
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

_TOKEN = re.compile(r"'([^']*)'|([0-9a-fA-F]+)|(\S)")


def h(text: str) -> bytes:
    """Bytes from hex digits (any grouping), 'ASCII text' and # comments."""
    out = bytearray()
    for line in text.splitlines():
        line = line.split("#", 1)[0]
        for quoted, digits, other in _TOKEN.findall(line):
            if other:
                raise ValueError(f"bad golden token {other!r}")
            if digits:
                out += bytes.fromhex(digits)
            else:
                out += quoted.encode("ascii")
    return bytes(out)


APP = "1.2.840.10008.3.1.1.1"
VERIFICATION = "1.2.840.10008.1.1"
IMPLICIT = "1.2.840.10008.1.2"
EXPLICIT = "1.2.840.10008.1.2.1"
CT = "1.2.840.10008.5.1.4.1.1.2"
FIND = "1.2.840.10008.5.1.4.1.2.1.1"
PROC_LOG = "1.2.840.10008.5.1.4.1.1.88.40"
STORAGE_SERVICE = "1.2.840.10008.4.2"
ENHANCED_SR = "1.2.840.10008.5.1.4.1.1.88.22"
BASIC_SR = "1.2.840.10008.5.1.4.1.1.88.11"
IMPL_UID = "1.2.826.0.1.3680043.8.498.1"

# --------------------------------------------------------------------------------------
# Items and sub-items: (name, golden, parent context, decoded object)

PDU_LEVEL = "PDU"
IN_20H = "Presentation Context Item (20H)"
IN_21H = "Presentation Context Item (21H)"
IN_50H = "User Information Item (50H)"

ITEMS = [
    (
        "10H application context",
        """10 00 0015  '1.2.840.10008.3.1.1.1'   # type, reserved, length 21, name""",
        PDU_LEVEL,
        ApplicationContextItem(APP),
    ),
    (
        "30H abstract syntax",
        """30 00 0011  '1.2.840.10008.1.1'       # length 17""",
        IN_20H,
        AbstractSyntaxSubItem(VERIFICATION),
    ),
    (
        "40H transfer syntax",
        """40 00 0013  '1.2.840.10008.1.2.1'     # length 19""",
        IN_20H,
        TransferSyntaxSubItem(EXPLICIT),
    ),
    (
        "20H presentation context, one transfer syntax",
        """
        20 00 002e                            # length 4 + 21 + 21 = 46
        01 00 00 00                           # context ID 1, three reserved bytes
        30 00 0011 '1.2.840.10008.1.1'        # abstract syntax: Verification
        40 00 0011 '1.2.840.10008.1.2'        # transfer syntax: implicit VR LE
        """,
        PDU_LEVEL,
        PresentationContextRQItem(1, VERIFICATION, (IMPLICIT,)),
    ),
    (
        "20H presentation context, two transfer syntaxes",
        """
        20 00 004d                            # length 4 + 29 + 23 + 21 = 77
        03 00 00 00
        30 00 0019 '1.2.840.10008.5.1.4.1.1.2'
        40 00 0013 '1.2.840.10008.1.2.1'
        40 00 0011 '1.2.840.10008.1.2'
        """,
        PDU_LEVEL,
        PresentationContextRQItem(3, CT, (EXPLICIT, IMPLICIT)),
    ),
    (
        "20H presentation context with no sub-item (refused later, by the negotiation)",
        """20 00 0004  09 00 00 00""",
        PDU_LEVEL,
        PresentationContextRQItem(9, None, ()),
    ),
    (
        "21H presentation context, acceptance",
        """
        21 00 0019                            # length 4 + 21 = 25
        01 00 00 00                           # context ID 1, reserved, result 0, reserved
        40 00 0011 '1.2.840.10008.1.2'
        """,
        PDU_LEVEL,
        PresentationContextACItem(1, 0, IMPLICIT),
    ),
    (
        "21H presentation context, transfer syntaxes not supported, no sub-item",
        """21 00 0004  05 00 04 00              # context ID 5, result 4""",
        PDU_LEVEL,
        PresentationContextACItem(5, 4, None),
    ),
    (
        "51H maximum length",
        """51 00 0004  00004000                 # 16384""",
        IN_50H,
        MaximumLengthSubItem(16384),
    ),
    (
        "51H maximum length 0 (no limit)",
        """51 00 0004  00000000""",
        IN_50H,
        MaximumLengthSubItem(0),
    ),
    (
        "52H implementation class UID",
        """52 00 001b  '1.2.826.0.1.3680043.8.498.1'   # length 27""",
        IN_50H,
        ImplementationClassUIDSubItem(IMPL_UID),
    ),
    (
        "53H asynchronous operations window",
        """53 00 0004  0005 0003                # invoked 5, performed 3""",
        IN_50H,
        AsynchronousOperationsWindowSubItem(5, 3),
    ),
    (
        "54H SCP/SCU role selection",
        """
        54 00 001d                            # length 2 + 25 + 2 = 29
        0019 '1.2.840.10008.5.1.4.1.1.2'      # UID-length 25, SOP class UID
        01 00                                 # SCU-role 1, SCP-role 0
        """,
        IN_50H,
        RoleSelectionSubItem(CT, 1, 0),
    ),
    (
        "55H implementation version name",
        """55 00 000c  'DICOM_UL_0.1'""",
        IN_50H,
        ImplementationVersionNameSubItem("DICOM_UL_0.1"),
    ),
    (
        "56H SOP class extended negotiation",
        """
        56 00 001f                            # length 2 + 27 + 2 = 31
        001b '1.2.840.10008.5.1.4.1.2.1.1'    # SOP-class-uid-length 27, UID
        01 01                                 # service-class-application-information
        """,
        IN_50H,
        SOPClassExtendedNegotiationSubItem(FIND, b"\x01\x01"),
    ),
    (
        "57H SOP class common extended negotiation, one related class",
        """
        57 00 0053                            # sub-item version 0; length 83
        001d '1.2.840.10008.5.1.4.1.1.88.40'  # SOP class UID
        0011 '1.2.840.10008.4.2'              # service class UID
        001f                                  # related-general-sop-class-identification length 31
          001d '1.2.840.10008.5.1.4.1.1.88.22'
        """,
        IN_50H,
        SOPClassCommonExtendedNegotiationSubItem(PROC_LOG, STORAGE_SERVICE, (ENHANCED_SR,)),
    ),
    (
        "57H SOP class common extended negotiation, two related classes",
        """
        57 00 0072                            # length 2+29 + 2+17 + 2+62 = 114
        001d '1.2.840.10008.5.1.4.1.1.88.40'
        0011 '1.2.840.10008.4.2'
        003e
          001d '1.2.840.10008.5.1.4.1.1.88.22'
          001d '1.2.840.10008.5.1.4.1.1.88.11'
        """,
        IN_50H,
        SOPClassCommonExtendedNegotiationSubItem(
            PROC_LOG, STORAGE_SERVICE, (ENHANCED_SR, BASIC_SR)
        ),
    ),
    (
        "57H SOP class common extended negotiation, no related class",
        """
        57 00 0034                            # length 2+29 + 2+17 + 2 = 52
        001d '1.2.840.10008.5.1.4.1.1.88.40'
        0011 '1.2.840.10008.4.2'
        0000
        """,
        IN_50H,
        SOPClassCommonExtendedNegotiationSubItem(PROC_LOG, STORAGE_SERVICE, ()),
    ),
    (
        "58H user identity, username and passcode",
        """
        58 00 0012                            # length 2 + 2+5 + 2+7 = 18
        02 01                                 # type 2, positive response requested
        0005 'alice'                          # primary field
        0007 's3cret!'                        # secondary field (the passcode)
        """,
        IN_50H,
        UserIdentityRQSubItem(2, 1, b"alice", b"s3cret!"),
    ),
    (
        "58H user identity, username only",
        """58 00 000b  01 00  0005 'alice'  0000""",
        IN_50H,
        UserIdentityRQSubItem(1, 0, b"alice", b""),
    ),
    (
        "59H user identity server response",
        """59 00 0004  0002 'OK'""",
        IN_50H,
        UserIdentityACSubItem(b"OK"),
    ),
    (
        "59H user identity, empty server response",
        """59 00 0002  0000""",
        IN_50H,
        UserIdentityACSubItem(b""),
    ),
    (
        "unknown sub-item 5AH in user information, kept raw",
        """5a 00 0003  aa bb cc""",
        IN_50H,
        RawItem(0x5A, b"\xaa\xbb\xcc"),
    ),
    (
        "unknown item 60H at the top level, kept raw",
        """60 00 0002  ab cd""",
        PDU_LEVEL,
        RawItem(0x60, b"\xab\xcd"),
    ),
    (
        "unknown item of length 0",
        """ff 00 0000""",
        PDU_LEVEL,
        RawItem(0xFF, b""),
    ),
    (
        "50H user information: maximum length and implementation class UID",
        """
        50 00 0027                            # length 8 + 31 = 39
        51 00 0004 00004000
        52 00 001b '1.2.826.0.1.3680043.8.498.1'
        """,
        PDU_LEVEL,
        UserInformationItem((MaximumLengthSubItem(16384), ImplementationClassUIDSubItem(IMPL_UID))),
    ),
    (
        "50H user information, empty",
        """50 00 0000""",
        PDU_LEVEL,
        UserInformationItem(()),
    ),
]


@pytest.mark.parametrize(
    ("golden", "context", "item"), [i[1:] for i in ITEMS], ids=[i[0] for i in ITEMS]
)
def test_item_golden_bytes(golden: str, context: str, item: object) -> None:
    data = h(golden)
    assert iter_items(data, 0, context) == [item]
    assert encode_item(item) == data


def test_every_item_type_has_a_golden() -> None:
    covered = {h(golden)[0] for _, golden, _, _ in ITEMS}
    assert {0x10, 0x20, 0x21, 0x30, 0x40, 0x50, *range(0x51, 0x5A)} <= covered


# --------------------------------------------------------------------------------------
# PDUs

RQ = """
01 00 00000183                            # A-ASSOCIATE-RQ, PDU-length 68 + 25 + 50 + 244 = 387
0001 0000                                 # protocol-version 1, reserved
'ANY-SCP         '                        # called AE title, 16 bytes, space padded
'ECHOSCU         '                        # calling AE title
0000000000000000 0000000000000000 0000000000000000 0000000000000000   # 32 reserved
10 00 0015 '1.2.840.10008.3.1.1.1'        # application context
20 00 002e 01 00 00 00                    # presentation context 1
  30 00 0011 '1.2.840.10008.1.1'
  40 00 0011 '1.2.840.10008.1.2'
50 00 00f0                                # user information, 240 bytes of sub-items
  51 00 0004 00004000
  52 00 001b '1.2.826.0.1.3680043.8.498.1'
  55 00 000c 'DICOM_UL_0.1'
  53 00 0004 0005 0003
  54 00 001d 0019 '1.2.840.10008.5.1.4.1.1.2' 01 00
  56 00 001f 001b '1.2.840.10008.5.1.4.1.2.1.1' 01 01
  57 00 0053 001d '1.2.840.10008.5.1.4.1.1.88.40' 0011 '1.2.840.10008.4.2'
             001f 001d '1.2.840.10008.5.1.4.1.1.88.22'
  58 00 0012 02 01 0005 'alice' 0007 's3cret!'
"""
RQ_USER_INFO = UserInformationItem(
    (
        MaximumLengthSubItem(16384),
        ImplementationClassUIDSubItem(IMPL_UID),
        ImplementationVersionNameSubItem("DICOM_UL_0.1"),
        AsynchronousOperationsWindowSubItem(5, 3),
        RoleSelectionSubItem(CT, 1, 0),
        SOPClassExtendedNegotiationSubItem(FIND, b"\x01\x01"),
        SOPClassCommonExtendedNegotiationSubItem(PROC_LOG, STORAGE_SERVICE, (ENHANCED_SR,)),
        UserIdentityRQSubItem(2, 1, b"alice", b"s3cret!"),
    )
)
RQ_PDU = A_ASSOCIATE_RQ(
    "ANY-SCP         ",
    "ECHOSCU         ",
    (
        ApplicationContextItem(APP),
        PresentationContextRQItem(1, VERIFICATION, (IMPLICIT,)),
        RQ_USER_INFO,
    ),
    1,
)

AC = """
02 00 000000da                            # A-ASSOCIATE-AC, PDU-length 68 + 25 + 29 + 29 + 67 = 218
0001 0000
'ANY-SCP         '                        # reserved: the called AE title sent back
'ECHOSCU         '                        # reserved: the calling AE title sent back
0000000000000000 0000000000000000 0000000000000000 0000000000000000
10 00 0015 '1.2.840.10008.3.1.1.1'
21 00 0019 01 00 00 00                    # context 1: acceptance
  40 00 0011 '1.2.840.10008.1.2'
21 00 0019 03 00 03 00                    # context 3: abstract-syntax-not-supported
  40 00 0011 '1.2.840.10008.1.2'
50 00 003f                                # user information, 8 + 31 + 16 + 8 = 63
  51 00 0004 00008000
  52 00 001b '1.2.826.0.1.3680043.8.498.1'
  55 00 000c 'DICOM_UL_0.1'
  59 00 0004 0002 'OK'
"""
AC_PDU = A_ASSOCIATE_AC(
    "ANY-SCP         ",
    "ECHOSCU         ",
    (
        ApplicationContextItem(APP),
        PresentationContextACItem(1, 0, IMPLICIT),
        PresentationContextACItem(3, 3, IMPLICIT),
        UserInformationItem(
            (
                MaximumLengthSubItem(32768),
                ImplementationClassUIDSubItem(IMPL_UID),
                ImplementationVersionNameSubItem("DICOM_UL_0.1"),
                UserIdentityACSubItem(b"OK"),
            )
        ),
    ),
    1,
)

#: A C-ECHO-RQ command set, implicit VR little endian (PS3.7 9.3.5, E.1): 68 bytes.
ECHO_RQ_COMMAND = """
0000 0000 04000000 38000000               # (0000,0000) UL command group length 56
0000 0200 12000000 '1.2.840.10008.1.1' 00 # (0000,0002) UI affected SOP class, NUL padded
0000 0001 02000000 3000                   # (0000,0100) US command field 0030H C-ECHO-RQ
0000 1001 02000000 0100                   # (0000,0110) US message ID 1
0000 0008 02000000 0101                   # (0000,0800) US command data set type 0101H
"""

PDUS = [
    ("A-ASSOCIATE-RQ", RQ, RQ_PDU),
    ("A-ASSOCIATE-AC", AC, AC_PDU),
    (
        "A-ASSOCIATE-RJ",
        """03 00 00000004  00 01 01 03   # reserved, result 1, source 1, reason 3""",
        A_ASSOCIATE_RJ(1, 1, 3),
    ),
    (
        "A-ASSOCIATE-RJ transient, provider presentation",
        """03 00 00000004  00 02 03 02""",
        A_ASSOCIATE_RJ(2, 3, 2),
    ),
    (
        "P-DATA-TF C-ECHO-RQ",
        """
        04 00 0000004a                    # P-DATA-TF, PDU-length 4 + 70 = 74
        00000046 01 03                    # PDV item-length 70, context 1, command + last
        """
        + ECHO_RQ_COMMAND,
        P_DATA_TF((PresentationDataValue(1, 0x03, h(ECHO_RQ_COMMAND)),)),
    ),
    (
        "P-DATA-TF two PDVs",
        """
        04 00 00000011
        00000004 03 00 abcd               # data set fragment, not last
        00000005 03 02 ef0123             # data set fragment, last
        """,
        P_DATA_TF(
            (
                PresentationDataValue(3, 0x00, b"\xab\xcd"),
                PresentationDataValue(3, 0x02, b"\xef\x01\x23"),
            )
        ),
    ),
    (
        "P-DATA-TF an empty PDV",
        """04 00 00000006  00000002 01 03""",
        P_DATA_TF((PresentationDataValue(1, 0x03, b""),)),
    ),
    ("A-RELEASE-RQ", """05 00 00000004 00000000""", A_RELEASE_RQ()),
    ("A-RELEASE-RP", """06 00 00000004 00000000""", A_RELEASE_RP()),
    (
        "A-ABORT by the service user",
        """07 00 00000004 0000 00 00   # reserved, reserved, source 0, reason 0""",
        A_ABORT(0, 0),
    ),
    (
        "A-ABORT by the provider, invalid parameter value",
        """07 00 00000004 0000 02 06""",
        A_ABORT(2, 6),
    ),
]


@pytest.mark.parametrize(("golden", "pdu"), [p[1:] for p in PDUS], ids=[p[0] for p in PDUS])
def test_pdu_golden_bytes(golden: str, pdu: object) -> None:
    data = h(golden)
    assert decode_pdu(data) == pdu
    assert encode_pdu(pdu) == data
    assert decode_pdu(bytearray(data)) == pdu
    assert decode_pdu(memoryview(data)) == pdu


def test_rq_accessors() -> None:
    pdu = decode_pdu(h(RQ))
    assert isinstance(pdu, A_ASSOCIATE_RQ)
    assert pdu.called_ae == "ANY-SCP"
    assert pdu.calling_ae == "ECHOSCU"
    assert pdu.application_context_name == APP
    assert pdu.presentation_contexts == (PresentationContextRQItem(1, VERIFICATION, (IMPLICIT,)),)
    info = pdu.user_information
    assert info.maximum_length == 16384
    assert info.implementation_class_uid == IMPL_UID
    assert info.implementation_version_name == "DICOM_UL_0.1"
    assert info.asynchronous_operations_window == AsynchronousOperationsWindowSubItem(5, 3)
    assert info.role_selections == (RoleSelectionSubItem(CT, 1, 0),)
    assert info.user_identity == UserIdentityRQSubItem(2, 1, b"alice", b"s3cret!")


# --------------------------------------------------------------------------------------
# Reserved fields: nonzero on receipt, ignored (PS3.8 9.3.1)

NOISY_RQ = """
01 ff 000000f2                            # reserved byte of the PDU header set; 68+25+50+99 = 242
0001 ffff                                 # reserved after the protocol version
'ANY-SCP         ' 'ECHOSCU         '
ffffffffffffffff ffffffffffffffff ffffffffffffffff ffffffffffffffff   # 32 reserved
10 7f 0015 '1.2.840.10008.3.1.1.1'        # item reserved byte
20 01 002e 01 aa bb cc                    # context item reserved bytes
  30 02 0011 '1.2.840.10008.1.1'
  40 03 0011 '1.2.840.10008.1.2'
50 04 005f                                # 8 + 31 + 56 = 95
  51 05 0004 00004000
  52 06 001b '1.2.826.0.1.3680043.8.498.1'
  57 07 0034 001d '1.2.840.10008.5.1.4.1.1.88.40' 0011 '1.2.840.10008.4.2' 0000
"""
ZERO_RQ = """
01 00 000000f2
0001 0000
'ANY-SCP         ' 'ECHOSCU         '
0000000000000000 0000000000000000 0000000000000000 0000000000000000
10 00 0015 '1.2.840.10008.3.1.1.1'
20 00 002e 01 00 00 00
  30 00 0011 '1.2.840.10008.1.1'
  40 00 0011 '1.2.840.10008.1.2'
50 00 005f
  51 00 0004 00004000
  52 00 001b '1.2.826.0.1.3680043.8.498.1'
  57 00 0034 001d '1.2.840.10008.5.1.4.1.1.88.40' 0011 '1.2.840.10008.4.2' 0000
"""


def test_reserved_fields_of_an_associate_rq_are_ignored() -> None:
    noisy = decode_pdu(h(NOISY_RQ))
    assert isinstance(noisy, A_ASSOCIATE_RQ)
    assert noisy == decode_pdu(h(ZERO_RQ))
    assert encode_pdu(noisy) == h(ZERO_RQ)
    info = noisy.user_information
    assert info.maximum_length == 16384
    assert info.common_extended_negotiations[0].related_general_sop_classes == ()


@pytest.mark.parametrize(
    ("noisy", "zero"),
    [
        ("03 ee 00000004 ff 01 01 03", "03 00 00000004 00 01 01 03"),
        ("05 01 00000004 deadbeef", "05 00 00000004 00000000"),
        ("06 80 00000004 ffffffff", "06 00 00000004 00000000"),
        ("07 10 00000004 aabb 02 06", "07 00 00000004 0000 02 06"),
        ("04 ff 00000007 00000003 01 03 99", "04 00 00000007 00000003 01 03 99"),
        (
            "02 99 0000004c 0001 5555 '                ' '                '"
            + " 77" * 32
            + " 21 42 0004 01 ab 00 cd",
            "02 00 0000004c 0001 0000 '                ' '                '"
            + " 00" * 32
            + " 21 00 0004 01 00 00 00",
        ),
    ],
)
def test_reserved_fields_are_ignored(noisy: str, zero: str) -> None:
    assert decode_pdu(h(noisy)) == decode_pdu(h(zero))
    assert encode_pdu(decode_pdu(h(noisy))) == h(zero)


# --------------------------------------------------------------------------------------
# Unknown items: kept raw, the rest decodes (PS3.8 9.3.1; docs/robustness.md 9)

RQ_WITH_UNKNOWN = """
01 00 0000009f                            # 68 + 25 + 6 + 50 + 10 = 159
0001 0000 'ANY-SCP         ' 'ECHOSCU         '
0000000000000000 0000000000000000 0000000000000000 0000000000000000
10 00 0015 '1.2.840.10008.3.1.1.1'
60 00 0002 abcd                           # unknown item type 60H
20 00 002e 01 00 00 00
  30 00 0011 '1.2.840.10008.1.1'
  40 00 0011 '1.2.840.10008.1.2'
50 00 0006
  5a 00 0002 0102                         # unknown sub-item type 5AH
"""


def test_unknown_items_inside_an_associate_rq_are_kept_raw() -> None:
    data = h(RQ_WITH_UNKNOWN)
    pdu = decode_pdu(data)
    assert isinstance(pdu, A_ASSOCIATE_RQ)
    assert pdu.items == (
        ApplicationContextItem(APP),
        RawItem(0x60, b"\xab\xcd"),
        PresentationContextRQItem(1, VERIFICATION, (IMPLICIT,)),
        UserInformationItem((RawItem(0x5A, b"\x01\x02"),)),
    )
    assert pdu.presentation_contexts == (PresentationContextRQItem(1, VERIFICATION, (IMPLICIT,)),)
    assert pdu.user_information.maximum_length is None
    assert encode_pdu(pdu) == data


def test_unknown_sub_item_in_user_information_beside_known_ones() -> None:
    data = h("50 00 0015  51 00 0004 00001000  7f 00 0001 ee  53 00 0004 0001 0001")
    (info,) = iter_items(data, 0, PDU_LEVEL)
    assert info == UserInformationItem(
        (
            MaximumLengthSubItem(4096),
            RawItem(0x7F, b"\xee"),
            AsynchronousOperationsWindowSubItem(1, 1),
        )
    )
    assert encode_item(info) == data


def test_unknown_sub_item_inside_a_presentation_context_is_skipped() -> None:
    """The context still decodes with its abstract and transfer syntaxes."""
    data = h(
        """
        20 00 0033 07 00 00 00                # 4 + 21 + 5 + 21 = 51
          30 00 0011 '1.2.840.10008.1.1'
          77 00 0001 ff                       # unknown sub-item type 77H
          40 00 0011 '1.2.840.10008.1.2'
        """
    )
    assert iter_items(data, 0, PDU_LEVEL) == [
        PresentationContextRQItem(7, VERIFICATION, (IMPLICIT,))
    ]


def test_an_item_known_elsewhere_is_raw_where_it_does_not_belong() -> None:
    """A 51H at the top level, or a 10H inside user information, is unknown there."""
    rq = h(
        """01 00 0000004c 0001 0000 'A               ' 'B               '"""
        + " 00" * 32
        + " 51 00 0004 00004000"
    )
    decoded = decode_pdu(rq)
    assert isinstance(decoded, A_ASSOCIATE_RQ)
    assert decoded.items == (RawItem(0x51, b"\x00\x00\x40\x00"),)
    (info,) = iter_items(h("50 00 0007 10 00 0003 '1.2'"), 0, PDU_LEVEL)
    assert info == UserInformationItem((RawItem(0x10, b"1.2"),))


# --------------------------------------------------------------------------------------
# Bad bytes: PduError with the reason the code defines


def _rq_with_items(items: str) -> bytes:
    body = h("0001 0000 'ANY-SCP         ' 'ECHOSCU         '") + bytes(32) + h(items)
    return h("01 00") + len(body).to_bytes(4, "big") + body


@pytest.mark.parametrize(
    ("items", "what"),
    [
        # an item whose length runs past the PDU
        ("10 00 0016 '1.2.840.10008.3.1.1.1'", "runs past its parent"),
        # a 16-bit length that wraps when 4 is added
        ("50 00 ffff 51 00 0004 00004000", "runs past its parent"),
        # a sub-item running past its 20H parent, though the PDU goes on
        (
            "20 00 0015 01000000 30 00 0011 '1.2.840.10008' '.1.1' 40 00 0011 '1.2.840.10008.1.2'",
            "runs past its parent",
        ),
        # a sub-item running past its 50H parent, though the PDU goes on
        ("50 00 0008 52 00 0010 '1.2.' 52 00 0004 '1.2.'", "runs past its parent"),
        # a sub-item's 16-bit field running past the sub-item
        ("50 00 000a 54 00 0006 0019 '1.2' 01 00", "runs past its sub-item"),
        ("50 00 000c 58 00 0008 02 01 0005 'al' 0000", "runs past its sub-item"),
        ("50 00 0008 59 00 0004 0003 'OK'", "runs past its sub-item"),
        ("50 00 000a 56 00 0006 0010 '1.2.'", "runs past its sub-item"),
        # a sub-item cut before its last 16-bit length field
        ("50 00 000c 57 00 0008 0002 '1.' 0002 '2.'", "cut short"),
        ("50 00 0011 57 00 000d 0002 '1.' 0002 '2.' 0003 0005 '3'", "runs past its sub-item"),
        # a fixed-size sub-item of the wrong size (docs/robustness.md 14)
        ("50 00 0007 51 00 0003 004000", "not 4"),
        ("50 00 0009 51 00 0005 0000400000", "not 4"),
        ("50 00 0006 53 00 0002 0001", "not 4"),
        # a header cut short
        ("10 00 00", "stray bytes where an item header"),
        # a presentation context under 4 bytes
        ("20 00 0002 0100", "is under 4"),
        ("21 00 0003 010000", "is under 4"),
        # stray bytes after the user identity's secondary field
        ("50 00 000d 58 00 0009 01 00 0001 'a' 0000 ffff", "stray bytes after its Secondary Field"),
    ],
)
def test_an_item_running_past_its_parent_gives_reason_6(items: str, what: str) -> None:
    with pytest.raises(PduError) as exc:
        decode_pdu(_rq_with_items(items))
    assert exc.value.reason == 6
    assert what in str(exc.value)


def test_two_abstract_syntaxes_in_one_context_give_reason_5() -> None:
    items = "20 00 0030 01000000 30 00 0011 '1.2.840.10008.1.1' 30 00 0013 '1.2.840.10008.1.2.1'"
    with pytest.raises(PduError) as exc:
        decode_pdu(_rq_with_items(items))
    assert exc.value.reason == 5


@pytest.mark.parametrize(
    "data",
    [
        "01 00 00000044" + " 00" * 67,  # 67 bytes follow, 68 declared
        "01 00 00000043" + " 00" * 68,  # 68 follow, 67 declared (both under the fixed 68)
        "01 00 00000045" + " 00" * 68,
        "05 00 00000004 000000",
        "05 00 00000004 0000000000",
        "05 00 00000003 000000",  # consistent, but not 4
        "07 00 00000005 0000000000",
        "03 00 00000000",
        "04 00 00000000",  # a P-DATA-TF with no PDV
        "04 00 00000005 00000001 01",  # PDV item-length 1, under 2
        "04 00 00000006 00000003 01 03",  # PDV item-length runs past the PDU
        "04 00 00000009 00000002 01 03 000000",  # stray bytes after the last PDV
        "04 00 0000000a 00000002 01 03 ffffffff",  # a PDV declaring 0xFFFFFFFF...
        "04 00 00000006 ffffffff 01 03",
        "",
        "01",
        "01 00 0000",
    ],
)
def test_wrong_lengths_give_reason_6(data: str) -> None:
    with pytest.raises(PduError) as exc:
        decode_pdu(h(data))
    assert exc.value.reason == 6


@pytest.mark.parametrize(
    "data",
    [
        h("00 00 00000004 00000000"),
        h("08 00 00000004 00000000"),
        h("ff 00 00000004 00000000"),
        h("ff 00 ffffffff"),
        b"GET / HTTP/1.1\r\nHost: pacs\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",  # a TLS ClientHello
    ],
)
def test_unknown_pdu_types_give_reason_1(data: bytes) -> None:
    with pytest.raises(PduError) as exc:
        decode_pdu(data)
    assert exc.value.reason == 1
    assert "not a DICOM PDU" in str(exc.value)


def test_pdu_error_names_the_length() -> None:
    with pytest.raises(PduError) as exc:
        decode_pdu(h("04 00 ffffffff 00000002 01 03"))
    assert "4294967295" in str(exc.value)


# --------------------------------------------------------------------------------------
# Secrets never printed


def test_user_identity_repr_never_shows_the_passcode() -> None:
    pdu = decode_pdu(h(RQ))
    assert isinstance(pdu, A_ASSOCIATE_RQ)
    secret = "s3cret!"
    identity = pdu.user_information.user_identity
    assert identity is not None and identity.secondary_field == secret.encode()
    for text in (
        repr(identity),
        str(identity),
        repr(pdu.user_information),
        repr(pdu),
        str(pdu),
        describe(pdu),
    ):
        assert secret not in text
        assert secret.encode().hex() not in text
        assert "alice" not in text
    assert "secondary_field=<7 bytes>" in repr(identity)


# --------------------------------------------------------------------------------------
# Cross-checks against pynetdicom's PDU classes, an independent encoder

pn_pdu = pytest.importorskip("pynetdicom.pdu")
pn_items = pytest.importorskip("pynetdicom.pdu_items")
pn_prim = pytest.importorskip("pynetdicom.pdu_primitives")


def _pn_user_info_rq() -> list[object]:
    ml = pn_prim.MaximumLengthNotification()
    ml.maximum_length_received = 16384
    ic = pn_prim.ImplementationClassUIDNotification()
    ic.implementation_class_uid = IMPL_UID
    iv = pn_prim.ImplementationVersionNameNotification()
    iv.implementation_version_name = "DICOM_UL_0.1"
    aw = pn_prim.AsynchronousOperationsWindowNegotiation()
    aw.maximum_number_operations_invoked = 5
    aw.maximum_number_operations_performed = 3
    rs = pn_prim.SCP_SCU_RoleSelectionNegotiation()
    rs.sop_class_uid = CT
    rs.scu_role = True
    rs.scp_role = False
    ex = pn_prim.SOPClassExtendedNegotiation()
    ex.sop_class_uid = FIND
    ex.service_class_application_information = b"\x01\x01"
    ce = pn_prim.SOPClassCommonExtendedNegotiation()
    ce.sop_class_uid = PROC_LOG
    ce.service_class_uid = STORAGE_SERVICE
    ce.related_general_sop_class_identification = [ENHANCED_SR]
    ui = pn_prim.UserIdentityNegotiation()
    ui.user_identity_type = 2
    ui.positive_response_requested = True
    ui.primary_field = b"alice"
    ui.secondary_field = b"s3cret!"
    return [ml, ic, iv, aw, rs, ex, ce, ui]


def _pn_context(
    context_id: int, abstract: str | None, transfers: list[Any], result: int | None = None
) -> Any:
    from pynetdicom.presentation import PresentationContext

    pc = PresentationContext()
    pc.context_id = context_id
    if abstract is not None:
        pc.abstract_syntax = abstract
    pc.transfer_syntax = transfers
    if result is not None:
        pc.result = result
    return pc


def _pn_associate_rq() -> bytes:
    primitive = pn_prim.A_ASSOCIATE()
    primitive.application_context_name = APP
    primitive.called_ae_title = "ANY-SCP"
    primitive.calling_ae_title = "ECHOSCU"
    primitive.presentation_context_definition_list = [_pn_context(1, VERIFICATION, [IMPLICIT])]
    primitive.user_information = _pn_user_info_rq()
    return bytes(pn_pdu.A_ASSOCIATE_RQ(primitive).encode())


def _pn_associate_ac() -> bytes:
    primitive = pn_prim.A_ASSOCIATE()
    primitive.application_context_name = APP
    primitive.called_ae_title = "ANY-SCP"
    primitive.calling_ae_title = "ECHOSCU"
    primitive.result = 0
    primitive.presentation_context_definition_results_list = [
        _pn_context(1, None, [IMPLICIT], 0),
        _pn_context(3, None, [IMPLICIT], 3),
    ]
    ml = pn_prim.MaximumLengthNotification()
    ml.maximum_length_received = 32768
    ic = pn_prim.ImplementationClassUIDNotification()
    ic.implementation_class_uid = IMPL_UID
    iv = pn_prim.ImplementationVersionNameNotification()
    iv.implementation_version_name = "DICOM_UL_0.1"
    ui = pn_prim.UserIdentityNegotiation()
    ui.server_response = b"OK"
    primitive.user_information = [ml, ic, iv, ui]
    return bytes(pn_pdu.A_ASSOCIATE_AC(primitive).encode())


def _pn_rj() -> bytes:
    primitive = pn_prim.A_ASSOCIATE()
    primitive.result = 1
    primitive.result_source = 1
    primitive.diagnostic = 3
    return bytes(pn_pdu.A_ASSOCIATE_RJ(primitive).encode())


def _pn_echo_rq() -> bytes:
    from pynetdicom.dimse_messages import C_ECHO_RQ
    from pynetdicom.dimse_primitives import C_ECHO

    primitive = C_ECHO()
    primitive.MessageID = 1
    primitive.AffectedSOPClassUID = VERIFICATION
    message = C_ECHO_RQ()
    message.primitive_to_message(primitive)
    (p_data,) = list(message.encode_msg(1, 16384))
    return bytes(pn_pdu.P_DATA_TF(p_data).encode())


def _pn_pdata(pdvs: list[list[object]]) -> bytes:
    primitive = pn_prim.P_DATA()
    primitive.presentation_data_value_list = pdvs
    return bytes(pn_pdu.P_DATA_TF(primitive).encode())


def _pn_abort(source: int, reason: int | None) -> bytes:
    if source == 0:
        primitive = pn_prim.A_ABORT()
        primitive.abort_source = 0
    else:
        primitive = pn_prim.A_P_ABORT()
        primitive.provider_reason = reason
    return bytes(pn_pdu.A_ABORT_RQ(primitive).encode())


@pytest.mark.parametrize(
    ("name", "build"),
    [
        ("A-ASSOCIATE-RQ", _pn_associate_rq),
        ("A-ASSOCIATE-AC", _pn_associate_ac),
        ("A-ASSOCIATE-RJ", _pn_rj),
        ("P-DATA-TF C-ECHO-RQ", _pn_echo_rq),
        ("P-DATA-TF two PDVs", lambda: _pn_pdata([[3, b"\x00\xab\xcd"], [3, b"\x02\xef\x01\x23"]])),
        ("A-RELEASE-RQ", lambda: pn_pdu.A_RELEASE_RQ().encode()),
        ("A-RELEASE-RP", lambda: pn_pdu.A_RELEASE_RP().encode()),
        ("A-ABORT by the service user", lambda: _pn_abort(0, None)),
        ("A-ABORT by the provider, invalid parameter value", lambda: _pn_abort(2, 6)),
    ],
)
def test_pynetdicom_encodes_the_same_bytes(name: str, build) -> None:
    golden, pdu = next((g, p) for n, g, p in PDUS if n == name)
    theirs = build()
    assert theirs == h(golden)
    assert decode_pdu(theirs) == pdu


def _pn_sub_item(primitive: object) -> bytes:
    return bytes(primitive.from_primitive().encode())  # type: ignore[attr-defined]


def test_pynetdicom_encodes_every_user_information_sub_item_the_same() -> None:
    ours = [encode_item(item) for item in RQ_USER_INFO.sub_items]
    theirs = [_pn_sub_item(p) for p in _pn_user_info_rq()]
    assert theirs == ours
    response = pn_prim.UserIdentityNegotiation()
    response.server_response = b"OK"
    assert _pn_sub_item(response) == h("59 00 0004 0002 'OK'")


def test_pynetdicom_encodes_the_context_items_the_same() -> None:
    rq_item = pn_items.PresentationContextItemRQ()
    rq_item.from_primitive(_pn_context(3, CT, [EXPLICIT, IMPLICIT]))
    assert rq_item.encode() == encode_item(PresentationContextRQItem(3, CT, (EXPLICIT, IMPLICIT)))
    ac_item = pn_items.PresentationContextItemAC()
    ac_item.from_primitive(_pn_context(1, None, [IMPLICIT], 0))
    assert ac_item.encode() == encode_item(PresentationContextACItem(1, 0, IMPLICIT))
    app = pn_items.ApplicationContextItem()
    app.application_context_name = APP
    assert app.encode() == encode_item(ApplicationContextItem(APP))


@pytest.mark.parametrize(
    ("cls", "golden"),
    [
        ("A_ASSOCIATE_RQ", RQ),
        ("A_ASSOCIATE_AC", AC),
        ("A_ASSOCIATE_RJ", PDUS[2][1]),
        ("P_DATA_TF", PDUS[4][1]),
        ("A_RELEASE_RQ", PDUS[7][1]),
        ("A_RELEASE_RP", PDUS[8][1]),
        ("A_ABORT_RQ", PDUS[10][1]),
    ],
)
def test_pynetdicom_decodes_our_bytes_and_encodes_them_back(cls: str, golden: str) -> None:
    data = encode_pdu(decode_pdu(h(golden)))
    theirs = getattr(pn_pdu, cls)()
    theirs.decode(data)
    assert theirs.encode() == data


def test_pynetdicom_reads_our_rq_fields() -> None:
    theirs = pn_pdu.A_ASSOCIATE_RQ()
    theirs.decode(encode_pdu(RQ_PDU))
    primitive = theirs.to_primitive()
    assert primitive.called_ae_title == "ANY-SCP"
    assert primitive.calling_ae_title == "ECHOSCU"
    assert primitive.application_context_name == APP
    (context,) = primitive.presentation_context_definition_list
    assert (context.context_id, context.abstract_syntax, context.transfer_syntax) == (
        1,
        VERIFICATION,
        [IMPLICIT],
    )
    kinds = [type(p).__name__ for p in primitive.user_information]
    assert kinds == [
        "MaximumLengthNotification",
        "ImplementationClassUIDNotification",
        "ImplementationVersionNameNotification",
        "AsynchronousOperationsWindowNegotiation",
        "SCP_SCU_RoleSelectionNegotiation",
        "SOPClassExtendedNegotiation",
        "SOPClassCommonExtendedNegotiation",
        "UserIdentityNegotiation",
    ]
