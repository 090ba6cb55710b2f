"""The upper layer in the standard's words: what a PDU, a transition, a dump says.

Pure: a PDU (or its bytes) in, lines of text out. The live debug log (`dul.machine`,
`dul.connection`) and the reader of a PDU dump (`python -m dul.explain FILE`, or
`python -m dimse.explain FILE`, which adds the DIMSE messages and the names of the
UIDs) print the same lines, so that what a student reads after the fact is what the
log showed.

- `explain_pdu(pdu, uid_name=..., request=...)`: an A-ASSOCIATE-RQ, -AC, -RJ, an
  A-ABORT, a release or a P-DATA-TF (its PDV headers), item by item, in the words of
  PS3.8 9.3 and PS3.7 D.3.3. The first line names the PDU; the others are indented.
  The log writes each line as a record of its own: no record holds a line break
  (ROBUSTNESS 15), and each starts with its machine's name.
- `explain_transition(...)`: `Sta6 + Evt12 -> AR-2 -> Sta8`, and the definitions
  (PS3.8 9.2, the values of `dul.fsm`'s enums, their one owner) of the states, event
  and action that the association has not shown before; the machine logs them on the
  next line, indented: `Evt12: A-RELEASE-RQ PDU (received on open transport
  connection); AR-2: Issue A-RELEASE indication primitive; Sta8: ...`.
- `python -m dul.explain FILE`: a PDU dump in words (`dul.dump.explain_dump`).

Names of UIDs. `dul` never imports pydicom, so the functions here take an optional
`uid_name: Callable[[str], str]` (a UID in, its name out; "" or the UID itself when it
has none) and print the bare UID without one. The layer above lends its namer for the
live log with `use_uid_names` (`dimse.engine` does, with pydicom's dictionary).

Secrets. A user identity (PS3.7 D.3.3.7) is shown by its type, whether a positive
response was asked for and, for types 1 and 2, the username (not a secret: PS3.7
sends it as the name of the user, and `dicomscu -V` says it already; it is what one
needs to read a refusal). A passcode, a Kerberos ticket, a SAML assertion, a JSON
Web Token and the Server-response of the AC are never shown, not even their length.
An item of unknown type is shown by its type and length only: its bytes could be a
misplaced passcode.

The PDU dump (`dicomscu --dump-pdus FILE`), its format and its words a record at a
time, are `dul.dump`'s.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from dul.errors import AbortReason, PduError
from dul.fields import Buffer, RawItem, uid_text
from dul.fsm import Action, Event, State
from dul.items import ApplicationContextItem, PresentationContextACItem, PresentationContextRQItem
from dul.negotiation import RESULT_NAMES
from dul.pdu import (
    A_ABORT,
    A_ASSOCIATE_AC,
    A_ASSOCIATE_RJ,
    A_ASSOCIATE_RQ,
    A_RELEASE_RP,
    A_RELEASE_RQ,
    HEADER,
    P_DATA_TF,
    PDU_NAMES,
    Pdu,
    PresentationDataValue,
    decode_pdu,
)
from dul.reasons import ABORT_SOURCES, RJ_REASONS, RJ_RESULTS, RJ_SOURCES
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

#: A UID in, its name out ("" or the UID itself when it has none).
UidName = Callable[[str], str]

INDENT = "  "

# --------------------------------------------------------------------------------------
# The namer lent by the layer above, for the live log


_lent_uid_names: UidName | None = None


def use_uid_names(uid_name: UidName | None) -> None:
    """Lend the live debug log a namer of UIDs (None: bare UIDs again). Names are the
    same for every association, so there is one for the process; the explaining
    functions themselves never read it: they take `uid_name` as an argument."""
    global _lent_uid_names
    _lent_uid_names = uid_name


def lent_uid_names() -> UidName | None:
    """The namer `use_uid_names` lent, for the log's call sites to pass on."""
    return _lent_uid_names


# --------------------------------------------------------------------------------------
# Words


def _shown(text: str) -> str:
    """A peer's text as it may be printed: as is when it is plain printable ASCII,
    else escaped (repr), so that a control character cannot forge a log line."""
    if text and all(" " <= ch <= "~" for ch in text):
        return text
    return repr(text)


def _uid(raw: str | None, uid_name: UidName | None) -> str:
    """`1.2.840.10008.1.1 (Verification SOP Class)`, or the bare UID."""
    if raw is None:
        return "(none)"
    uid = uid_text(raw)
    shown = _shown(uid)
    if uid_name is None or shown != uid:
        return shown
    try:
        name = uid_name(uid)
    except Exception:  # a namer's failure must never cost the log line
        name = ""
    if not name or name == uid:
        return shown
    return f"{uid} ({name})"


def _ae(raw: str) -> str:
    return repr(raw.strip(" "))


def _yes(flag: int) -> str:
    return "yes" if flag else "no"


def plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


#: PS3.7 Table D.3-14, User-Identity-Type.
IDENTITY_TYPES = {
    1: "username",
    2: "username and passcode",
    3: "Kerberos service ticket",
    4: "SAML assertion",
    5: "JSON Web Token",
}


def _identity(item: UserIdentityRQSubItem) -> str:
    kind = IDENTITY_TYPES.get(item.identity_type, "unknown type")
    text = f"user identity: {kind} (type {item.identity_type})"
    if item.identity_type in (1, 2):
        text += f", username {_shown(item.primary_field.decode('utf-8', 'replace'))}"
        if item.identity_type == 2:
            text += ", passcode not shown"
    else:
        text += ", not shown"
    asked = "asked for" if item.positive_response_requested else "not asked for"
    return f"{text}; positive response {asked}"


def _user_information(
    user: UserInformationItem, requestor: bool, uid_name: UidName | None
) -> list[str]:
    sender = "requestor" if requestor else "acceptor"
    lines: list[str] = []
    for sub in user.sub_items:
        if isinstance(sub, MaximumLengthSubItem):
            limit = sub.maximum_length
            lines.append(
                f"maximum length: {limit} (PS3.8 D.1: the largest P-DATA-TF PDU-length the "
                f"{sender} receives{'; 0: no limit' if limit == 0 else ''})"
            )
        elif isinstance(sub, ImplementationClassUIDSubItem):
            lines.append(f"implementation class UID: {_uid(sub.uid, uid_name)}")
        elif isinstance(sub, ImplementationVersionNameSubItem):
            lines.append(f"implementation version name: {_shown(sub.name)}")
        elif isinstance(sub, AsynchronousOperationsWindowSubItem):
            lines.append(
                "asynchronous operations window (PS3.7 D.3.3.3): "
                f"{sub.max_operations_invoked} invoked, {sub.max_operations_performed} "
                "performed at once (0: unlimited)"
            )
        elif isinstance(sub, RoleSelectionSubItem):
            verb = "proposed" if requestor else "accepted"
            lines.append(
                f"SCP/SCU role selection (PS3.7 D.3.3.4) for {_uid(sub.sop_class_uid, uid_name)}: "
                f"SCU role {verb} {_yes(sub.scu_role)}, SCP role {verb} {_yes(sub.scp_role)}"
            )
        elif isinstance(sub, SOPClassExtendedNegotiationSubItem):
            lines.append(
                "SOP class extended negotiation (PS3.7 D.3.3.5) for "
                f"{_uid(sub.sop_class_uid, uid_name)}: "
                f"{plural(len(sub.application_information), 'byte')} of application information"
            )
        elif isinstance(sub, SOPClassCommonExtendedNegotiationSubItem):
            related = ", ".join(_uid(u, uid_name) for u in sub.related_general_sop_classes)
            lines.append(
                "SOP class common extended negotiation (PS3.7 D.3.3.6) for "
                f"{_uid(sub.sop_class_uid, uid_name)}: service class "
                f"{_uid(sub.service_class_uid, uid_name)}"
                + (f", related general SOP classes {related}" if related else "")
            )
        elif isinstance(sub, UserIdentityRQSubItem):
            lines.append(_identity(sub))
        elif isinstance(sub, UserIdentityACSubItem):
            lines.append(
                "user identity (PS3.7 D.3.3.7.2): positive response"
                + (", server response not shown" if sub.server_response else "")
            )
        elif isinstance(sub, RawItem):
            lines.append(_raw(sub))
    if not user.role_selections and user.sub_items:
        lines.append("SCP/SCU roles: the default (the requestor is SCU, the acceptor SCP)")
    return lines


def _raw(item: RawItem) -> str:
    return (
        f"item {item.item_type:02X}H of {plural(len(item.value), 'byte')}: not known here, "
        "skipped (PS3.8 9.3.1)"
    )


def _rq_lines(pdu: A_ASSOCIATE_RQ, uid_name: UidName | None) -> list[str]:
    lines = [
        f"called AE title {_ae(pdu.called_ae_title)}, calling AE title "
        f"{_ae(pdu.calling_ae_title)}, protocol version {pdu.protocol_version}"
    ]
    for item in pdu.items:
        if isinstance(item, ApplicationContextItem):
            lines.append(f"application context: {_uid(item.name, uid_name)}")
        elif isinstance(item, PresentationContextRQItem):
            lines.append(
                f"presentation context {item.context_id}: abstract syntax "
                f"{_uid(item.abstract_syntax, uid_name)}"
            )
            if not item.transfer_syntaxes:
                lines.append(f"{INDENT}no transfer syntax proposed")
            for syntax in item.transfer_syntaxes:
                lines.append(f"{INDENT}transfer syntax {_uid(syntax, uid_name)}")
        elif isinstance(item, UserInformationItem):
            lines += _user_information(item, True, uid_name)
        elif isinstance(item, RawItem):
            lines.append(_raw(item))
    return lines


def _ac_lines(
    pdu: A_ASSOCIATE_AC, uid_name: UidName | None, request: A_ASSOCIATE_RQ | None
) -> list[str]:
    proposed: dict[int, str | None] = {}
    if request is not None:
        for pc in request.presentation_contexts:
            proposed.setdefault(pc.context_id, pc.abstract_syntax)
    lines = [
        f"called AE title {_ae(pdu.called_ae_title)}, calling AE title "
        f"{_ae(pdu.calling_ae_title)} (returned as sent, not tested), protocol version "
        f"{pdu.protocol_version}"
    ]
    contexts = pdu.presentation_contexts
    accepted = sum(1 for pc in contexts if pc.result == 0)
    for item in pdu.items:
        if isinstance(item, ApplicationContextItem):
            lines.append(f"application context: {_uid(item.name, uid_name)}")
            lines.append(f"{accepted} of {plural(len(contexts), 'presentation context')} accepted")
        elif isinstance(item, PresentationContextACItem):
            lines += _ac_context(item, proposed, request is not None, uid_name)
        elif isinstance(item, UserInformationItem):
            lines += _user_information(item, False, uid_name)
        elif isinstance(item, RawItem):
            lines.append(_raw(item))
    return lines


def _ac_context(
    item: PresentationContextACItem,
    proposed: dict[int, str | None],
    known: bool,
    uid_name: UidName | None,
) -> list[str]:
    words = RESULT_NAMES.get(item.result, "an unknown result")
    line = f"presentation context {item.context_id}: {words} (result {item.result})"
    if item.context_id in proposed:
        line += f", abstract syntax {_uid(proposed[item.context_id], uid_name)}"
    elif known:
        line += ", which the A-ASSOCIATE-RQ did not propose"
    lines = [line]
    if item.result == 0:
        lines.append(f"{INDENT}transfer syntax {_uid(item.transfer_syntax, uid_name)}")
    return lines


def _rj_line(pdu: A_ASSOCIATE_RJ) -> str:
    result = RJ_RESULTS.get(pdu.result, "an unknown result")
    source = RJ_SOURCES.get(pdu.source, "an unknown source")
    reason = RJ_REASONS.get((pdu.source, pdu.reason), "an unknown reason")
    return (
        f"{result} (result {pdu.result}) by the {source} (source {pdu.source}): "
        f"{reason} (reason {pdu.reason})"
    )


def _abort_line(pdu: A_ABORT) -> str:
    source = ABORT_SOURCES.get(pdu.source, "an unknown source")
    text = f"source {pdu.source}, {source}"
    if pdu.source != 2:
        return f"{text} (the reason is not significant)"
    try:
        reason = AbortReason(pdu.reason).text
    except ValueError:
        reason = "an unknown reason"
    return f"{text}; reason {pdu.reason}, {reason}"


#: PS3.8 E.2, the message control header of a PDV.
def pdv_words(pdv: PresentationDataValue) -> str:
    """`presentation context 1, command, last fragment, 72 bytes`."""
    kind = "command" if pdv.is_command else "data set"
    last = "last fragment" if pdv.is_last else "not the last fragment"
    return f"presentation context {pdv.context_id}, {kind}, {last}, {plural(len(pdv.data), 'byte')}"


SECTIONS = {
    0x01: "PS3.8 9.3.2",
    0x02: "PS3.8 9.3.3",
    0x03: "PS3.8 9.3.4",
    0x04: "PS3.8 9.3.5",
    0x05: "PS3.8 9.3.6",
    0x06: "PS3.8 9.3.7",
    0x07: "PS3.8 9.3.8",
}


def explain_pdu(
    pdu: Pdu | Buffer,
    *,
    uid_name: UidName | None = None,
    request: A_ASSOCIATE_RQ | None = None,
) -> list[str]:
    """The PDU in words: a headline, then indented lines.

    `pdu` is a decoded PDU or its bytes (header included: the PDU-length is said,
    and bytes that are no PDU say why). `request` is the A-ASSOCIATE-RQ an AC
    answers: with it, each answered context names its abstract syntax."""
    if isinstance(pdu, (bytes, bytearray, memoryview)):
        return explain_bytes(pdu, uid_name=uid_name, request=request)[1]
    return _explain(pdu, "", uid_name, request)


def explain_bytes(
    data: Buffer,
    *,
    uid_name: UidName | None = None,
    request: A_ASSOCIATE_RQ | None = None,
) -> tuple[Pdu | None, list[str]]:
    """(the PDU decoded, or None, and its lines) of one whole PDU's bytes."""
    raw = bytes(data)
    try:
        pdu = decode_pdu(raw)
    except PduError as error:
        what = f"PDU-type {raw[0]:02X}H, " if raw else ""
        return None, [f"not a PDU ({what}{plural(len(raw), 'byte')}): {error}"]
    length = f", PDU-length {len(raw) - HEADER.size}"
    return pdu, _explain(pdu, length, uid_name, request)


def _explain(
    pdu: Pdu, length: str, uid_name: UidName | None, request: A_ASSOCIATE_RQ | None
) -> list[str]:
    name = PDU_NAMES[pdu.PDU_TYPE]
    head = f"{name} PDU ({SECTIONS[pdu.PDU_TYPE]}{length})"
    body: list[str]
    if isinstance(pdu, A_ASSOCIATE_RQ):
        body = _rq_lines(pdu, uid_name)
    elif isinstance(pdu, A_ASSOCIATE_AC):
        body = _ac_lines(pdu, uid_name, request)
    elif isinstance(pdu, A_ASSOCIATE_RJ):
        return [f"{head}: {_rj_line(pdu)}"]
    elif isinstance(pdu, A_ABORT):
        return [f"{head}: {_abort_line(pdu)}"]
    elif isinstance(pdu, P_DATA_TF):
        head += f", {plural(len(pdu.pdvs), 'PDV')}"
        body = [f"PDV {n}: {pdv_words(pdv)}" for n, pdv in enumerate(pdu.pdvs, 1)]
    else:
        assert isinstance(pdu, (A_RELEASE_RQ, A_RELEASE_RP))
        return [head]
    return [head, *(INDENT + line for line in body)]


# --------------------------------------------------------------------------------------
# Transitions


def explain_transition(
    state: State, event: Event, action: Action, next_state: State, seen: set[str]
) -> tuple[str, str]:
    """(`Sta6 + Evt12 -> AR-2 -> Sta8`, `Evt12: ...; AR-2: ...; Sta8: ...`): the
    transition, and the definitions of those of its states, event and action whose
    names are not in `seen` yet ("" when there are none). They are added to `seen`:
    keep one set per association, and each is defined once, where it first appears.
    The definitions are the values of `dul.fsm`'s enums, the standard's words."""
    text = f"{state.name} + {event.name} -> {action.label} -> {next_state.name}"
    words: list[str] = []
    for label, meaning in (
        (state.name, state.value),
        (event.name, event.value),
        (action.label, action.value),
        (next_state.name, next_state.value),
    ):
        if label not in seen:
            seen.add(label)
            words.append(f"{label}: {meaning}")
    return text, "; ".join(words)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m dul.explain FILE`: the PDUs of a dump, UIDs bare (the upper layer
    alone; `python -m dimse.explain FILE` adds the DIMSE messages and UID names)."""
    from dul.dump import run  # here: `dul.dump` says its PDUs with this module's words

    return run(argv, prog="python -m dul.explain")


if __name__ == "__main__":
    raise SystemExit(main())
