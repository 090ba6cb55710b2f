"""The explainers: PDUs, transitions and DIMSE messages in the standard's words, and the
PDU dump format (dul/explain.py, dimse/explain.py).

Golden PDUs are built with dul.negotiation (build_request, negotiate) and dul.pdu; the
expected lines are written from PS3.8 9.3 and PS3.7 D.3.3. UID names come from a small
table here (a `uid_name` of the caller's), except where pydicom's own is the subject.
"""

from __future__ import annotations

import io
import struct

import pytest

from dimse import identity
from dimse.commands import decode_command
from dimse.explain import DumpMessages, Tally, describe_message, message_words, uid_name
from dimse.fragments import fragment_message, stream_runs
from dimse.messages import C_ECHO_RSP, C_STORE_RQ, C_STORE_RSP
from dul.dump import (
    ENDED,
    MAGIC,
    RECEIVED,
    SENT,
    STARTED,
    DumpError,
    Record,
    encode_record,
    explain_dump,
    read_dump,
)
from dul.explain import explain_bytes, explain_pdu, explain_transition
from dul.fields import RawItem
from dul.fsm import Action, Event, State
from dul.items import PresentationContextACItem
from dul.negotiation import AcceptorPolicy, ProposedContext, build_request, negotiate
from dul.pdu import (
    A_ABORT,
    A_ASSOCIATE_AC,
    A_ASSOCIATE_RJ,
    A_RELEASE_RQ,
    P_DATA_TF,
    PresentationDataValue,
    encode_pdu,
)
from dul.user_information import UserInformationItem

VERIFICATION = "1.2.840.10008.1.1"
CT = "1.2.840.10008.5.1.4.1.1.2"
MR = "1.2.840.10008.5.1.4.1.1.4"
IMPLICIT = "1.2.840.10008.1.2"
EXPLICIT = "1.2.840.10008.1.2.1"
JPEG_LOSSLESS = "1.2.840.10008.1.2.4.70"
CONTEXT_NAME = "1.2.840.10008.3.1.1.1"
PASSCODE = "pa55-W0RD-never-shown"

NAMES = {
    VERIFICATION: "Verification SOP Class",
    CT: "CT Image Storage",
    MR: "MR Image Storage",
    IMPLICIT: "Implicit VR Little Endian",
    EXPLICIT: "Explicit VR Little Endian",
    CONTEXT_NAME: "DICOM Application Context Name",
}


def names(uid: str) -> str:
    return NAMES.get(uid, "")


def golden_request(**options: object) -> object:
    return build_request(
        "STUDENT",
        "ARCHIVE",
        [
            ProposedContext(VERIFICATION, (IMPLICIT,)),
            ProposedContext(CT, (EXPLICIT, IMPLICIT)),
            ProposedContext(MR, (JPEG_LOSSLESS,)),
        ],
        max_pdata_length=32768,
        roles={CT: (True, True)},
        async_window=(4, 1),
        user_identity=identity.username_password("alice", PASSCODE),
        implementation_class_uid="1.2.3.4",
        implementation_version_name="TEST_1",
        **options,  # type: ignore[arg-type]
    )


def test_an_associate_rq_is_explained_item_by_item() -> None:
    request = golden_request()
    assert explain_pdu(request, uid_name=names) == [  # type: ignore[arg-type]
        "A-ASSOCIATE-RQ PDU (PS3.8 9.3.2)",
        "  called AE title 'ARCHIVE', calling AE title 'STUDENT', protocol version 1",
        "  application context: 1.2.840.10008.3.1.1.1 (DICOM Application Context Name)",
        "  presentation context 1: abstract syntax 1.2.840.10008.1.1 (Verification SOP Class)",
        "    transfer syntax 1.2.840.10008.1.2 (Implicit VR Little Endian)",
        "  presentation context 3: abstract syntax 1.2.840.10008.5.1.4.1.1.2 (CT Image Storage)",
        "    transfer syntax 1.2.840.10008.1.2.1 (Explicit VR Little Endian)",
        "    transfer syntax 1.2.840.10008.1.2 (Implicit VR Little Endian)",
        "  presentation context 5: abstract syntax 1.2.840.10008.5.1.4.1.1.4 (MR Image Storage)",
        "    transfer syntax 1.2.840.10008.1.2.4.70",  # not in our table: the bare UID
        "  maximum length: 32768 (PS3.8 D.1: the largest P-DATA-TF PDU-length the "
        "requestor receives)",
        "  implementation class UID: 1.2.3.4",
        "  asynchronous operations window (PS3.7 D.3.3.3): 4 invoked, 1 performed at once "
        "(0: unlimited)",
        "  SCP/SCU role selection (PS3.7 D.3.3.4) for 1.2.840.10008.5.1.4.1.1.2 (CT Image "
        "Storage): SCU role proposed yes, SCP role proposed yes",
        "  implementation version name: TEST_1",
        "  user identity: username and passcode (type 2), username alice, passcode not shown; "
        "positive response not asked for",
    ]


def test_without_a_namer_the_uids_are_bare_and_the_bytes_say_their_length() -> None:
    request = golden_request()
    data = encode_pdu(request)  # type: ignore[arg-type]
    lines = explain_pdu(data)
    assert lines[0] == f"A-ASSOCIATE-RQ PDU (PS3.8 9.3.2, PDU-length {len(data) - 6})"
    assert "  presentation context 1: abstract syntax 1.2.840.10008.1.1" in lines
    assert not any("(Verification SOP Class)" in line for line in lines)


def test_no_passcode_nor_token_is_ever_shown() -> None:
    for user in (
        identity.username_password("alice", PASSCODE),
        identity.token("jwt", PASSCODE.encode(), positive_response_requested=True),
        identity.token("kerberos", PASSCODE.encode()),
    ):
        request = build_request(
            "A", "B", [ProposedContext(VERIFICATION, (IMPLICIT,))], user_identity=user
        )
        lines = explain_pdu(encode_pdu(request), uid_name=names)
        assert PASSCODE not in "\n".join(lines)
        (said,) = [line for line in lines if line.startswith("  user identity")]
        assert str(len(PASSCODE)) not in said  # not even its length
    jwt = identity.token("jwt", PASSCODE.encode(), positive_response_requested=True)
    request = build_request("A", "B", [], user_identity=jwt)
    assert (
        "  user identity: JSON Web Token (type 5), not shown; positive response asked for"
    ) in explain_pdu(request)


def test_an_associate_ac_says_each_result_in_words_and_the_syntax_accepted() -> None:
    request = golden_request()
    policy = AcceptorPolicy(
        "ARCHIVE",
        {VERIFICATION: [IMPLICIT], CT: [IMPLICIT, EXPLICIT], MR: [EXPLICIT]},
        async_window=(2, 2),
    )
    accept = negotiate(request, policy)  # type: ignore[arg-type]
    assert isinstance(accept, A_ASSOCIATE_AC)
    # a user-rejection (1) and a no-reason (2), which negotiate() gives otherwise
    extra = (PresentationContextACItem(7, 1, None), PresentationContextACItem(9, 2, None))
    items = (*accept.items[:-1], *extra, accept.items[-1])
    accept = A_ASSOCIATE_AC(accept.called_ae_title, accept.calling_ae_title, items)
    lines = explain_pdu(accept, uid_name=names, request=request)  # type: ignore[arg-type]
    assert lines[:13] == [
        "A-ASSOCIATE-AC PDU (PS3.8 9.3.3)",
        "  called AE title 'ARCHIVE', calling AE title 'STUDENT' (returned as sent, not "
        "tested), protocol version 1",
        "  application context: 1.2.840.10008.3.1.1.1 (DICOM Application Context Name)",
        "  2 of 5 presentation contexts accepted",
        "  presentation context 1: acceptance (result 0), abstract syntax 1.2.840.10008.1.1 "
        "(Verification SOP Class)",
        "    transfer syntax 1.2.840.10008.1.2 (Implicit VR Little Endian)",
        "  presentation context 3: acceptance (result 0), abstract syntax "
        "1.2.840.10008.5.1.4.1.1.2 (CT Image Storage)",
        # our preference (IMPLICIT first) wins over the requestor's order
        "    transfer syntax 1.2.840.10008.1.2 (Implicit VR Little Endian)",
        "  presentation context 5: transfer-syntaxes-not-supported (provider rejection) "
        "(result 4), abstract syntax 1.2.840.10008.5.1.4.1.1.4 (MR Image Storage)",
        "  presentation context 7: user-rejection (result 1), which the A-ASSOCIATE-RQ did "
        "not propose",
        "  presentation context 9: no-reason (provider rejection) (result 2), which the "
        "A-ASSOCIATE-RQ did not propose",
        "  maximum length: 16384 (PS3.8 D.1: the largest P-DATA-TF PDU-length the acceptor "
        "receives)",
        "  implementation class UID: 2.25.308092614656787327937334279252522491514",
    ]
    assert (
        "  asynchronous operations window (PS3.7 D.3.3.3): 1 invoked, 2 performed at once "
        "(0: unlimited)"
    ) in lines
    assert (
        "  SCP/SCU role selection (PS3.7 D.3.3.4) for 1.2.840.10008.5.1.4.1.1.2 (CT Image "
        "Storage): SCU role accepted yes, SCP role accepted yes"
    ) in lines


def test_an_abstract_syntax_not_supported_is_said() -> None:
    request = build_request("A", "B", [ProposedContext(MR, (IMPLICIT,))])
    answer = negotiate(request, AcceptorPolicy("B", {CT: [IMPLICIT]}))
    lines = explain_pdu(answer, uid_name=names, request=request)
    assert (
        "  presentation context 1: abstract-syntax-not-supported (provider rejection) "
        "(result 3), abstract syntax 1.2.840.10008.5.1.4.1.1.4 (MR Image Storage)"
    ) in lines
    assert "  0 of 1 presentation context accepted" in lines
    assert not any("transfer syntax" in line for line in lines)


def test_rejections_aborts_and_releases_in_the_standards_words() -> None:
    assert explain_pdu(A_ASSOCIATE_RJ(1, 1, 3)) == [
        "A-ASSOCIATE-RJ PDU (PS3.8 9.3.4): rejected-permanent (result 1) by the DICOM UL "
        "service-user (source 1): calling-AE-title-not-recognized (reason 3)"
    ]
    assert explain_pdu(encode_pdu(A_ASSOCIATE_RJ(2, 3, 2))) == [
        "A-ASSOCIATE-RJ PDU (PS3.8 9.3.4, PDU-length 4): rejected-transient (result 2) by the "
        "DICOM UL service-provider (Presentation related function) (source 3): "
        "local-limit-exceeded (reason 2)"
    ]
    assert explain_pdu(A_ABORT(2, 6)) == [
        "A-ABORT PDU (PS3.8 9.3.8): source 2, DICOM UL service-provider; reason 6, "
        "invalid-PDU-parameter-value"
    ]
    assert explain_pdu(A_ABORT(0, 0)) == [
        "A-ABORT PDU (PS3.8 9.3.8): source 0, DICOM UL service-user (the reason is not significant)"
    ]
    assert explain_pdu(A_RELEASE_RQ()) == ["A-RELEASE-RQ PDU (PS3.8 9.3.6)"]


def test_a_pdata_tf_shows_its_pdv_headers() -> None:
    pdu = P_DATA_TF(
        (PresentationDataValue(3, 0x03, b"c" * 70), PresentationDataValue(3, 0x00, b"d" * 9))
    )
    assert explain_pdu(encode_pdu(pdu)) == [
        "P-DATA-TF PDU (PS3.8 9.3.5, PDU-length 91), 2 PDVs",
        "  PDV 1: presentation context 3, command, last fragment, 70 bytes",
        "  PDV 2: presentation context 3, data set, not the last fragment, 9 bytes",
    ]


def test_bytes_that_are_no_pdu_say_why_and_unknown_items_show_no_bytes() -> None:
    pdu, lines = explain_bytes(b"\x09\x00\x00\x00\x00\x00")
    assert pdu is None
    assert lines == [
        "not a PDU (PDU-type 09H, 6 bytes): PDU-type 09H is not a DICOM PDU "
        "(A-ABORT reason 1, unrecognized-PDU)"
    ]
    request = build_request("A", "B", [], extra_user_items=[RawItem(0x5F, PASSCODE.encode())])
    lines = explain_pdu(encode_pdu(request))
    assert "  item 5FH of 21 bytes: not known here, skipped (PS3.8 9.3.1)" in lines
    assert PASSCODE not in "\n".join(lines)


def test_a_peers_control_characters_are_escaped() -> None:
    request = build_request("A", "B", [ProposedContext("1.2\nforged line", (IMPLICIT,))])
    lines = explain_pdu(request, uid_name=names)
    assert "  presentation context 1: abstract syntax '1.2\\nforged line'" in lines
    assert all("\n" not in line for line in lines)


def test_a_failing_namer_costs_only_the_name() -> None:
    def broken(uid: str) -> str:
        raise KeyError(uid)

    request = build_request("A", "B", [ProposedContext(VERIFICATION, (IMPLICIT,))])
    assert "  presentation context 1: abstract syntax 1.2.840.10008.1.1" in explain_pdu(
        request, uid_name=broken
    )


def test_each_transition_defines_only_what_the_association_has_not_shown() -> None:
    seen: set[str] = set()
    first = explain_transition(State.Sta6, Event.Evt12, Action.AR_2, State.Sta8, seen)
    assert first == (
        "Sta6 + Evt12 -> AR-2 -> Sta8",
        "Sta6: Association established and ready for data transfer; "
        "Evt12: A-RELEASE-RQ PDU (received on open transport connection); "
        "AR-2: Issue A-RELEASE indication primitive; "
        "Sta8: Awaiting local A-RELEASE response primitive (from local user)",
    )
    again = explain_transition(State.Sta6, Event.Evt12, Action.AR_2, State.Sta8, seen)
    assert again == ("Sta6 + Evt12 -> AR-2 -> Sta8", "")
    nxt = explain_transition(State.Sta8, Event.Evt14, Action.AR_4, State.Sta13, seen)
    assert nxt[1] == (
        "Evt14: A-RELEASE response primitive; AR-4: Issue A-RELEASE-RP PDU and start ARTIM "
        "timer; Sta13: Awaiting Transport Connection Close Indication (Association no "
        "longer exists)"
    )


# --------------------------------------------------------------------------------------
# The dump format


def test_the_dump_format_reads_back_what_was_written() -> None:
    rq = encode_pdu(golden_request())  # type: ignore[arg-type]
    data = (
        MAGIC
        + encode_record(STARTED, 1, 0.0, b"requestor, peer 127.0.0.1:104")
        + encode_record(SENT, 1, 0.25, rq)
        + encode_record(ENDED, 1, 0.5, b"")
    )
    # the documented layout: kind, association (u16), seconds (f64), length (u32), data
    assert data[len(MAGIC) : len(MAGIC) + 15] == struct.pack(">cHdI", b"A", 1, 0.0, 29)
    assert list(read_dump(io.BytesIO(data))) == [
        Record(STARTED, 1, 0.0, b"requestor, peer 127.0.0.1:104"),
        Record(SENT, 1, 0.25, rq),
        Record(ENDED, 1, 0.5, b""),
    ]
    with pytest.raises(DumpError, match="not a PDU dump"):
        list(read_dump(io.BytesIO(b"GIF89a" + data)))
    with pytest.raises(DumpError, match="in the middle of a record"):
        list(read_dump(io.BytesIO(data[:-3] + encode_record(SENT, 1, 1.0, rq)[:-1])))


def test_a_dump_is_explained_with_its_dimse_messages() -> None:
    request = build_request("ME", "YOU", [ProposedContext(VERIFICATION, (IMPLICIT,))])
    response = C_ECHO_RSP(
        message_id_being_responded_to=7, status=0, affected_sop_class_uid=VERIFICATION
    )
    command = response.encode()
    half = len(command) // 2
    records = [
        Record(STARTED, 1, 0.0, b"requestor, peer 127.0.0.1:104"),
        Record(SENT, 1, 0.001, encode_pdu(request)),
        # a command set cut in two PDVs of two PDUs
        Record(
            RECEIVED,
            1,
            0.002,
            encode_pdu(P_DATA_TF((PresentationDataValue(1, 1, command[:half]),))),
        ),
        Record(
            RECEIVED,
            1,
            0.003,
            encode_pdu(P_DATA_TF((PresentationDataValue(1, 3, command[half:]),))),
        ),
        Record(ENDED, 1, 0.004, b""),
    ]
    lines = list(explain_dump(records, uid_name=names, more=DumpMessages(names)))
    assert lines[0] == "[1] +0.000000 s association 1 starts: requestor, peer 127.0.0.1:104"
    assert lines[1].startswith("[1] +0.001000 s sent A-ASSOCIATE-RQ PDU (PS3.8 9.3.2, PDU-length")
    assert (
        "    presentation context 1: abstract syntax 1.2.840.10008.1.1 (Verification SOP Class)"
        in lines
    )
    assert lines[-2] == (
        "  DIMSE received C-ECHO-RSP: responding to Message ID 7, Affected SOP Class "
        "1.2.840.10008.1.1 (Verification SOP Class), status 0000H (Success); no data set; "
        "presentation context 1, in 2 P-DATA-TF PDUs, 2 PDVs"
    )
    assert lines[-1] == "[1] +0.004000 s connection closed"
    assert sum(line.startswith("  DIMSE") for line in lines) == 1


# --------------------------------------------------------------------------------------
# DIMSE messages


def test_a_message_line_names_command_status_and_sop_class() -> None:
    response = C_STORE_RSP(
        message_id_being_responded_to=3,
        status=0xB000,
        affected_sop_class_uid=CT,
        affected_sop_instance_uid="1.2.3",
    )
    assert message_words(response.to_command(), names) == (
        "C-STORE-RSP: responding to Message ID 3, Affected SOP Class 1.2.840.10008.5.1.4.1.1.2 "
        "(CT Image Storage), Affected SOP Instance 1.2.3, status B000H (Warning: Coercion of "
        "Data Elements)"
    )
    failure = C_STORE_RSP(message_id_being_responded_to=3, status=0xA700, error_comment="disk")
    assert message_words(failure.to_command(), None) == (
        "C-STORE-RSP: responding to Message ID 3, status A700H (Failure: Refused: Out of "
        "Resources), error comment 'disk'"
    )


def test_the_tally_counts_pdus_and_pdvs_of_every_way_of_sending() -> None:
    command = (
        C_STORE_RQ(message_id=1, affected_sop_class_uid=CT, affected_sop_instance_uid="1.2.3")
        .with_data_set(True)
        .encode()
    )
    data = bytes(range(256)) * 40  # 10240 bytes
    small = Tally()
    for pdu in fragment_message(1, command, b"x" * 10, 16384):
        small.add_unit(pdu)
    assert (small.pdus, small.pdvs, small.command_bytes, small.data_bytes) == (
        1,
        2,
        len(command),
        10,
    )
    cut = Tally()
    for pdu in fragment_message(1, command, data, 4096):
        cut.add_unit(pdu)
    assert (cut.pdus, cut.pdvs, cut.data_bytes) == (4, 4, 10240)  # 1 command + 3 data
    runs = Tally()
    for run in stream_runs(1, command, io.BytesIO(data), len(data), 1000, run_bytes=3000):
        runs.add_unit(run)
    assert (runs.pdus, runs.pdvs, runs.data_bytes) == (12, 12, 10240)  # 1 + ceil(10240/994)
    line = describe_message("sent", decode_command(command), 1, cut, names)
    assert line.endswith(
        "; data set of 10240 bytes; presentation context 1, in 4 P-DATA-TF PDUs, 4 PDVs"
    )


def test_pydicoms_names_are_used_and_a_non_uid_is_not_looked_up() -> None:
    assert uid_name(VERIFICATION) == "Verification SOP Class"
    assert uid_name("2.25.1") == ""
    assert uid_name("not a uid\x00") == ""


def test_an_empty_user_information_says_nothing_of_roles() -> None:
    accept = A_ASSOCIATE_AC("A", "B", (UserInformationItem(()),))
    assert explain_pdu(accept) == [
        "A-ASSOCIATE-AC PDU (PS3.8 9.3.3)",
        "  called AE title 'A', calling AE title 'B' (returned as sent, not tested), "
        "protocol version 1",
    ]
