"""Association negotiation, as requestor and as acceptor (PS3.8 9.3.2-9.3.4, PS3.7 D.3.3).

Pure functions over PDUs:

- `build_request(...)` makes an A-ASSOCIATE-RQ from what a requestor wants;
- `negotiate(request, policy)` is the acceptor's decision: an A-ASSOCIATE-AC, or an
  A-ASSOCIATE-RJ with the result, source and reason of PS3.8 9.3.4;
- `negotiated_contexts(request, accept)` tells either side what was agreed.

Decisions where the standard leaves room, so that a peer knows what to expect:

- A presentation context ID that is even or 0 (PS3.8 9.3.2.2 wants odd 1-255) is
  answered with result 2, provider rejection. A repeated ID is answered once, for
  its first occurrence; the repeats are ignored.
- More than 128 presentation contexts: A-ASSOCIATE-RJ (1, 2, 1), rejected-permanent,
  service-provider (ACSE), no-reason-given; nothing is negotiated.
- A context without an abstract syntax: result 3; without a transfer syntax: 4.
- The transfer syntax is the first of *our* preference list that the requestor
  offered; "*" in our list stands for any offered syntax, in the requestor's order.
  A `RequestorsChoice` instead takes the requestor's first offered syntax among a set:
  a storage SCP that keeps instances as received lets the requestor's order win.
- A calling AE title that is blank or holds control characters or a backslash is
  never valid (PS3.5 AE): rejected as "calling AE title not recognized" (1, 1, 3).
- User identity (PS3.7 D.3.3.7) is checked only when the policy has an
  `identity_check`; without one the sub-item is ignored, as the standard lets an
  acceptor that does not support it do. With one: a username and passcode (type 2)
  over a connection without TLS is refused before the check is called, unless
  `allow_password_without_tls`; the check gets the identity (None if none was sent)
  and whether the connection is TLS. A refusal, or a check that raises, is
  A-ASSOCIATE-RJ (1, 2, 1): rejected-permanent, service-provider (ACSE), no-reason-given,
  as PS3.7 D.3.3.7.3 "User Identity Rejection" prescribes. When a positive response was
  requested and the identity accepted, the AC holds the 59H sub-item: with the bytes the
  check returned, zero-length for types 1 and 2 (PS3.7 D.3.3.7.2).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from dul.fields import uid_text
from dul.items import (
    ApplicationContextItem,
    Item,
    PresentationContextACItem,
    PresentationContextRQItem,
)
from dul.pdata import PDV_OVERHEAD
from dul.pdu import A_ASSOCIATE_AC, A_ASSOCIATE_RJ, A_ASSOCIATE_RQ, DICOM_APPLICATION_CONTEXT
from dul.user_information import (
    AsynchronousOperationsWindowSubItem,
    ImplementationClassUIDSubItem,
    ImplementationVersionNameSubItem,
    MaximumLengthSubItem,
    RoleSelectionSubItem,
    SubItem,
    UserIdentityACSubItem,
    UserIdentityRQSubItem,
    UserInformationItem,
)

log = logging.getLogger("dul.negotiation")

#: Our implementation's identity, sent in every association (PS3.7 D.3.3.2).
# A UUID-derived UID (PS3.5 B.2, ISO/IEC 9834-8): needs no registered root.
IMPLEMENTATION_CLASS_UID = "2.25.308092614656787327937334279252522491514"
IMPLEMENTATION_VERSION_NAME = "DICOM-UL_010"

MAX_PRESENTATION_CONTEXTS = 128
#: A requestor's Maximum Length must leave room for a PDV header (6) and data.
MIN_PDV_ROOM = PDV_OVERHEAD

# Presentation context results (PS3.8 9.3.3.2)
ACCEPTANCE = 0
USER_REJECTION = 1
NO_REASON = 2
ABSTRACT_SYNTAX_NOT_SUPPORTED = 3
TRANSFER_SYNTAXES_NOT_SUPPORTED = 4

RESULT_NAMES = {
    ACCEPTANCE: "acceptance",
    USER_REJECTION: "user-rejection",
    NO_REASON: "no-reason (provider rejection)",
    ABSTRACT_SYNTAX_NOT_SUPPORTED: "abstract-syntax-not-supported (provider rejection)",
    TRANSFER_SYNTAXES_NOT_SUPPORTED: "transfer-syntaxes-not-supported (provider rejection)",
}


@dataclass(frozen=True, slots=True)
class ProposedContext:
    """One presentation context a requestor proposes."""

    abstract_syntax: str
    transfer_syntaxes: tuple[str, ...]
    context_id: int | None = None  # None: numbered 1, 3, 5... in order


@dataclass(frozen=True, slots=True)
class NegotiatedContext:
    """What was agreed for one presentation context."""

    context_id: int
    abstract_syntax: str
    transfer_syntax: str | None
    result: int
    scu_role: bool  # may the requestor act as SCU on it
    scp_role: bool  # may the requestor act as SCP on it

    @property
    def accepted(self) -> bool:
        return self.result == ACCEPTANCE


def build_request(
    calling_ae: str,
    called_ae: str,
    contexts: Sequence[ProposedContext],
    *,
    max_pdata_length: int = 16384,
    roles: Mapping[str, tuple[bool, bool]] | None = None,
    user_identity: UserIdentityRQSubItem | None = None,
    async_window: tuple[int, int] | None = None,
    extra_user_items: Sequence[SubItem] = (),
    implementation_class_uid: str = IMPLEMENTATION_CLASS_UID,
    implementation_version_name: str = IMPLEMENTATION_VERSION_NAME,
) -> A_ASSOCIATE_RQ:
    """An A-ASSOCIATE-RQ. `roles` maps a SOP Class UID to (scu, scp) for D.3.3.4."""
    items: list[Item] = [ApplicationContextItem(DICOM_APPLICATION_CONTEXT)]
    next_id = 1
    for context in contexts:
        context_id = context.context_id if context.context_id is not None else next_id
        next_id = context_id + 2
        items.append(
            PresentationContextRQItem(
                context_id, context.abstract_syntax, context.transfer_syntaxes
            )
        )
    user: list[SubItem] = [
        MaximumLengthSubItem(max_pdata_length),
        ImplementationClassUIDSubItem(implementation_class_uid),
    ]
    if async_window is not None:
        user.append(AsynchronousOperationsWindowSubItem(*async_window))
    for uid, (scu, scp) in (roles or {}).items():
        user.append(RoleSelectionSubItem(uid, int(scu), int(scp)))
    user.append(ImplementationVersionNameSubItem(implementation_version_name))
    user.extend(extra_user_items)
    if user_identity is not None:
        user.append(user_identity)
    items.append(UserInformationItem(tuple(user)))
    return A_ASSOCIATE_RQ(called_ae, calling_ae, tuple(items))


IdentityCheck = Callable[[UserIdentityRQSubItem | None, bool], "bytes | bool"]
"""Takes the requestor's user identity (or None) and whether the connection is TLS;
returns False to reject the association, True to accept, or bytes to accept with that
server response (sent when the requestor asked for a positive response)."""

#: Username and passcode (PS3.7 D.3.3.7.1, User-Identity-Type 2).
USERNAME_AND_PASSCODE = 2


@dataclass(frozen=True)
class RequestorsChoice:
    """Accept the first transfer syntax the requestor offers that is in `syntaxes`
    (PS3.8 9.3.2.2 lists them in the requestor's order of preference)."""

    syntaxes: frozenset[str]


@dataclass
class AcceptorPolicy:
    """What an acceptor agrees to.

    `contexts` maps an abstract syntax to the transfer syntaxes we accept for it, in
    our order of preference ("*" = any the requestor offers), or to a
    `RequestorsChoice`. `scp_roles` lists the
    SOP classes on which the requestor may act as SCP (C-GET's storage classes).
    """

    ae_title: str
    contexts: Mapping[str, Sequence[str] | RequestorsChoice]
    check_called_ae: bool = False
    calling_ae_allowed: Callable[[str], bool] | None = None
    max_pdata_length: int = 16384
    scp_roles: frozenset[str] | None = None  # None: any
    async_window: tuple[int, int] | None = None
    identity_check: IdentityCheck | None = None
    tls: bool = False  # the connections are TLS (the Server has an ssl_context)
    allow_password_without_tls: bool = False
    implementation_class_uid: str = IMPLEMENTATION_CLASS_UID
    implementation_version_name: str = IMPLEMENTATION_VERSION_NAME
    extra: dict[str, object] = field(default_factory=dict)


def valid_ae_title(title: str) -> bool:
    """PS3.5 AE: 1-16 characters of the default repertoire, no backslash or control
    character, not all spaces."""
    stripped = title.strip(" ")
    return (
        0 < len(stripped) <= 16
        and all(32 <= ord(ch) < 127 for ch in stripped)
        and "\\" not in stripped
    )


def _choose(offered: Sequence[str], ours: Sequence[str] | RequestorsChoice) -> str | None:
    offered_clean = [uid_text(ts) for ts in offered]
    if isinstance(ours, RequestorsChoice):
        return next((ts for ts in offered_clean if ts in ours.syntaxes), None)
    for preference in ours:
        if preference == "*":
            return offered_clean[0] if offered_clean else None
        if preference in offered_clean:
            return preference
    return None


def negotiate(request: A_ASSOCIATE_RQ, policy: AcceptorPolicy) -> A_ASSOCIATE_AC | A_ASSOCIATE_RJ:
    """The acceptor's answer to an A-ASSOCIATE-RQ."""
    context_name = request.application_context_name
    if context_name is None or uid_text(context_name) != DICOM_APPLICATION_CONTEXT:
        return A_ASSOCIATE_RJ(
            result=1, source=1, reason=2
        )  # application-context-name-not-supported
    if not valid_ae_title(request.calling_ae_title):
        return A_ASSOCIATE_RJ(result=1, source=1, reason=3)  # calling-AE-title-not-recognized
    if policy.calling_ae_allowed is not None and not policy.calling_ae_allowed(request.calling_ae):
        return A_ASSOCIATE_RJ(result=1, source=1, reason=3)
    if policy.check_called_ae and request.called_ae != policy.ae_title:
        return A_ASSOCIATE_RJ(result=1, source=1, reason=7)  # called-AE-title-not-recognized
    user = request.user_information
    if user.maximum_length is not None and 0 < user.maximum_length <= MIN_PDV_ROOM:
        # A P-DATA-TF of that length cannot hold a PDV with one byte of data (PS3.8 D.1).
        return A_ASSOCIATE_RJ(result=1, source=2, reason=1)
    proposals = request.presentation_contexts
    if len(proposals) > MAX_PRESENTATION_CONTEXTS:
        return A_ASSOCIATE_RJ(result=1, source=2, reason=1)

    identity_response: bytes | None = None
    if policy.identity_check is not None:
        accepted, identity_response = _check_identity(user.user_identity, policy)
        if not accepted:
            return A_ASSOCIATE_RJ(result=1, source=2, reason=1)  # PS3.7 D.3.3.7.3

    answers: list[PresentationContextACItem] = []
    seen: set[int] = set()
    accepted_abstracts: set[str] = set()
    for pc in proposals:
        if pc.context_id in seen:
            continue
        seen.add(pc.context_id)
        result, chosen = _decide(pc, policy)
        if result == ACCEPTANCE and pc.abstract_syntax is not None:
            accepted_abstracts.add(uid_text(pc.abstract_syntax))
        answers.append(PresentationContextACItem(pc.context_id, result, chosen))

    reply: list[SubItem] = [
        MaximumLengthSubItem(policy.max_pdata_length),
        ImplementationClassUIDSubItem(policy.implementation_class_uid),
    ]
    if policy.async_window is not None and user.asynchronous_operations_window is not None:
        asked = user.asynchronous_operations_window
        reply.append(
            AsynchronousOperationsWindowSubItem(
                # PS3.7 D.3.3.3: what we may invoke is bounded by what the requestor
                # performs, and what we perform bounds what it may invoke.
                _window(asked.max_operations_performed, policy.async_window[0]),
                _window(asked.max_operations_invoked, policy.async_window[1]),
            )
        )
    answered: set[str] = set()
    for role in user.role_selections:
        uid = uid_text(role.sop_class_uid)
        if uid not in accepted_abstracts or uid in answered:
            continue  # one answer per SOP class: repeats would only grow the AC
        answered.add(uid)
        scp_ok = policy.scp_roles is None or uid in policy.scp_roles
        reply.append(
            RoleSelectionSubItem(uid, int(bool(role.scu_role)), int(bool(role.scp_role) and scp_ok))
        )
    reply.append(ImplementationVersionNameSubItem(policy.implementation_version_name))
    if identity_response is not None:
        reply.append(UserIdentityACSubItem(identity_response))
    items: list[Item] = [ApplicationContextItem(DICOM_APPLICATION_CONTEXT), *answers]
    items.append(UserInformationItem(tuple(reply)))
    return A_ASSOCIATE_AC(request.called_ae_title, request.calling_ae_title, tuple(items))


def _check_identity(
    identity: UserIdentityRQSubItem | None, policy: AcceptorPolicy
) -> tuple[bool, bytes | None]:
    """(accepted, the Server-response of a 59H sub-item to send or None), PS3.7 D.3.3.7."""
    assert policy.identity_check is not None
    if (
        identity is not None
        and identity.identity_type == USERNAME_AND_PASSCODE
        and not policy.tls
        and not policy.allow_password_without_tls
    ):
        log.warning(
            "user identity refused: a username and passcode came over a connection "
            "without TLS (allow_password_without_tls is off)"
        )
        return False, None
    try:
        verdict = policy.identity_check(identity, policy.tls)
    except Exception:
        log.exception("the user identity check failed; association rejected")
        return False, None
    if verdict is not True and not isinstance(verdict, bytes):
        return False, None
    if identity is None or not identity.positive_response_requested:
        return True, None
    if verdict is True or identity.identity_type in (1, USERNAME_AND_PASSCODE):
        return True, b""  # D.3.3.7.2: zero length for types 1 and 2
    return True, bytes(verdict)


def _window(asked: int, ours: int) -> int:
    """The smaller of two operation windows, where 0 means unlimited (PS3.7 D.3.3.3)."""
    if asked == 0:
        return ours
    if ours == 0:
        return asked
    return min(asked, ours)


def _decide(pc: PresentationContextRQItem, policy: AcceptorPolicy) -> tuple[int, str | None]:
    if pc.context_id == 0 or pc.context_id % 2 == 0:
        return NO_REASON, None
    if pc.abstract_syntax is None:
        return ABSTRACT_SYNTAX_NOT_SUPPORTED, None
    ours = policy.contexts.get(uid_text(pc.abstract_syntax))
    if ours is None:
        return ABSTRACT_SYNTAX_NOT_SUPPORTED, None
    chosen = _choose(pc.transfer_syntaxes, ours)
    if chosen is None:
        return TRANSFER_SYNTAXES_NOT_SUPPORTED, None
    return ACCEPTANCE, chosen


def negotiated_contexts(
    request: A_ASSOCIATE_RQ, accept: A_ASSOCIATE_AC
) -> dict[int, NegotiatedContext]:
    """What the two sides agreed, by context ID (PS3.7 D.3.3.4 for the roles)."""
    asked_roles = {uid_text(r.sop_class_uid): r for r in request.user_information.role_selections}
    given_roles = {uid_text(r.sop_class_uid): r for r in accept.user_information.role_selections}
    proposals: dict[int, PresentationContextRQItem] = {}
    for pc in request.presentation_contexts:
        proposals.setdefault(pc.context_id, pc)
    agreed: dict[int, NegotiatedContext] = {}
    for answer in accept.presentation_contexts:
        proposal = proposals.get(answer.context_id)
        if proposal is None or proposal.abstract_syntax is None:
            continue  # an answer to nothing we asked: ignored
        abstract = uid_text(proposal.abstract_syntax)
        asked, given = asked_roles.get(abstract), given_roles.get(abstract)
        if asked is not None and given is not None:
            scu = bool(asked.scu_role and given.scu_role)
            scp = bool(asked.scp_role and given.scp_role)
        else:
            scu, scp = True, False  # default: requestor is SCU, acceptor SCP
        accepted = answer.result == ACCEPTANCE
        transfer = uid_text(answer.transfer_syntax) if accepted and answer.transfer_syntax else None
        agreed[answer.context_id] = NegotiatedContext(
            answer.context_id,
            abstract,
            transfer,
            answer.result if transfer or not accepted else NO_REASON,
            scu,
            scp,
        )
    return agreed
