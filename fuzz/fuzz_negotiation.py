"""atheris target: acceptor-side association negotiation, and the acceptor's machine.

    python fuzz/fuzz_negotiation.py CORPUS_DIR [libFuzzer flags]

The input is the body of an A-ASSOCIATE-RQ (what follows the 6-byte PDU header);
the header is put in front of it, and then:

1. `decode_pdu` (a `PduError` ends the input there);
2. `negotiate(rq, policy)` with a realistic policy, that of `dicomscp`:
   verification, every storage class (any transfer syntax) and query/retrieve.
   Bit 0 of the reserved field after the protocol version (ignored by the decoder)
   chooses between an open policy and a strict one: a calling AE allow-list (a
   callable), the called AE title checked, SCP roles limited, an asynchronous
   window and a user table (`dimse.identity.users_check`), so that one bit moves
   an input from one to the other. The answer must be an A-ASSOCIATE-AC or -RJ,
   without raising; `encode_pdu` of it must succeed and decode back equal; an AC
   must answer each distinct proposed context ID once, in order, accept only
   contexts whose abstract syntax the policy lists with a transfer syntax the
   requestor offered, answer one role selection per accepted SOP class at most,
   never accept a Maximum Length (1-6) with no room for a PDV, and survive
   `negotiated_contexts`; an RJ must carry a
   result/source/reason of PS3.8 9.3.4;
3. the acceptor `Machine` over the same PDU bytes (also when `decode_pdu` refused
   them): `Machine(requestor=False)`, `transport_indication`, `receive_data`. Bytes
   that do not decode must give an A-ABORT; an RQ that decodes, an
   `AssociateIndication` carrying the same RQ (or, for a protocol version without
   bit 0, an A-ASSOCIATE-RJ); then `associate_response` with the answer of step 2,
   whose bytes must be those sent, and for an AC an A-RELEASE-RQ. Nothing may
   raise: bad bytes from the peer become Evt19 and an A-ABORT, never an exception
   (docs/design.md, "The state machine as data").

Per input: the RQ decoded twice (by `decode_pdu`, by the machine), one negotiation,
the answer encoded twice (here, by the machine) and decoded once.
"""

from __future__ import annotations

import hashlib
import logging
import struct
import sys
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pydicom  # noqa: F401  (loaded first, so that only our code is instrumented)

#: Instrumented: the negotiation, the machine (actions, table, framer) and the
#: identity check. The PDU codec runs plain, at full speed: it is fuzz_pdu.py's, and
#: instrumented it was 4/5 of the time per input here.
UNINSTRUMENTED = ["dul.pdu", "dul.pdata", "dul.items", "dul.user_information", "dul.fields"]

with atheris.instrument_imports(include=["dul", "dimse"], exclude=UNINSTRUMENTED):
    from dimse.identity import users_check
    from dul import A_ABORT, A_ASSOCIATE_AC, A_ASSOCIATE_RJ, PduError, decode_pdu, encode_pdu
    from dul.fields import uid_text
    from dul.items import PresentationContextRQItem
    from dul.machine import Machine
    from dul.negotiation import (
        AcceptorPolicy,
        RequestorsChoice,
        negotiate,
        negotiated_contexts,
    )
    from dul.pdu import A_ASSOCIATE_RQ, A_RELEASE_RQ
    from dul.primitives import AssociateIndication, Send

from dimse.scp import Handlers  # noqa: E402

logging.disable(logging.CRITICAL)  # the negotiation logs every refusal: not here


class _Server(Handlers):
    serves_storage = True
    serves_query = True


CONTEXTS = _Server().contexts()
_STORED = "sha256:" + hashlib.sha256(b"secret").hexdigest()
OPEN = AcceptorPolicy(ae_title="DICOMSCP", contexts=CONTEXTS, async_window=(1, 32))
STRICT = AcceptorPolicy(
    ae_title="DICOMSCP",
    contexts=CONTEXTS,
    check_called_ae=True,
    calling_ae_allowed=lambda ae: ae in ("ECHOSCU", "STORESCU", "PYNETDICOM", "FINDSCU"),
    scp_roles=frozenset({"1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.5.1.4.1.1.7"}),
    async_window=(1, 32),
    identity_check=users_check({"alice": _STORED, "carol": ""}),
    allow_password_without_tls=True,
    max_pdata_length=32768,
)
_HEADER = struct.Struct(">BBI")
#: PS3.8 9.3.4: (result, source) -> the reasons that source may give.
RJ_REASONS = {1: {1, 2, 3, 7}, 2: {1, 2}, 3: {1, 2}}
RELEASE_RQ = encode_pdu(A_RELEASE_RQ())


def check_answer(
    request: A_ASSOCIATE_RQ, policy: AcceptorPolicy
) -> tuple[A_ASSOCIATE_AC | A_ASSOCIATE_RJ, bytes]:
    """The policy's answer, checked, and its encoding."""
    answer = negotiate(request, policy)
    if not isinstance(answer, (A_ASSOCIATE_AC, A_ASSOCIATE_RJ)):
        raise AssertionError(f"negotiate gave {type(answer).__name__}")
    encoded = encode_pdu(answer)
    if decode_pdu(encoded) != answer:
        raise AssertionError(f"the answer does not decode back equal: {answer!r}")
    if isinstance(answer, A_ASSOCIATE_RJ):
        if answer.result not in (1, 2) or answer.reason not in RJ_REASONS.get(answer.source, ()):
            raise AssertionError(f"A-ASSOCIATE-RJ {answer} is not of PS3.8 9.3.4")
        return answer, encoded
    proposed: dict[int, PresentationContextRQItem] = {}
    for pc in request.presentation_contexts:
        proposed.setdefault(pc.context_id, pc)
    answered = [pc.context_id for pc in answer.presentation_contexts]
    if answered != list(proposed):
        raise AssertionError(f"contexts answered {answered}, proposed {list(proposed)}")
    for item in answer.presentation_contexts:
        pc = proposed[item.context_id]
        if item.result != 0:
            if item.result not in (1, 2, 3, 4) or item.transfer_syntax is not None:
                raise AssertionError(f"refused context answered {item}")
            continue
        abstract = uid_text(pc.abstract_syntax or "")
        offered = [uid_text(ts) for ts in pc.transfer_syntaxes]
        ours = policy.contexts.get(abstract, ())
        chosen = item.transfer_syntax
        if isinstance(ours, RequestorsChoice):
            # PS3.8 9.3.2.2: the requestor's order wins among those we take.
            first = next((ts for ts in offered if ts in ours.syntaxes), None)
            if chosen != first:
                raise AssertionError(f"accepted {abstract!r} with {chosen!r}, not {first!r}")
        elif chosen not in offered or (chosen not in ours and "*" not in ours):
            raise AssertionError(f"accepted {abstract!r} with {chosen!r}")
        if item.context_id % 2 == 0:
            raise AssertionError(f"accepted the even context ID {item.context_id}")
    if answer.user_information.maximum_length != policy.max_pdata_length:
        raise AssertionError("the AC does not carry our maximum length")
    asked = request.user_information.maximum_length
    if asked is not None and 0 < asked <= 6:
        raise AssertionError(f"accepted a Maximum Length of {asked}: no room for a PDV")
    accepted = {
        uid_text(proposed[i.context_id].abstract_syntax or "")
        for i in answer.presentation_contexts
        if i.result == 0
    }
    roles = [uid_text(r.sop_class_uid) for r in answer.user_information.role_selections]
    if len(roles) != len(set(roles)) or not set(roles) <= accepted:
        raise AssertionError(f"role selections answered for {roles}, accepted {accepted}")
    negotiated_contexts(request, answer)
    return answer, encoded


def run_machine(
    pdu_bytes: bytes,
    request: A_ASSOCIATE_RQ | None,
    answer: A_ASSOCIATE_AC | A_ASSOCIATE_RJ | None,
    encoded: bytes,
) -> None:
    """The acceptor machine over the PDU's bytes; `request` is what decode_pdu gave
    (None: it refused the bytes), `answer` and `encoded` the negotiation's answer."""
    machine = Machine(requestor=False)
    machine.transport_indication(0.0)
    outputs = machine.receive_data(pdu_bytes, 1.0)
    indications = [o for o in outputs if isinstance(o, AssociateIndication)]
    if not indications:
        sent = [o.pdu for o in outputs if isinstance(o, Send)]
        if len(sent) != 1 or not isinstance(sent[0], (A_ABORT, A_ASSOCIATE_RJ)):
            raise AssertionError(f"no indication, and the machine sent {sent!r}")
        if isinstance(sent[0], A_ABORT) and request is not None:
            raise AssertionError("the machine aborted on an A-ASSOCIATE-RQ that decodes")
        machine.transport_closed(2.0)
        return
    if len(indications) != 1 or outputs[-1] is not indications[0] or answer is None:
        raise AssertionError(f"outputs {outputs!r} for {request!r}")
    if indications[0].request != request:
        raise AssertionError("the machine's request differs from decode_pdu's")
    replies = machine.associate_response(answer, 2.0)
    sends = [o for o in replies if isinstance(o, Send)]
    if len(sends) != 1 or sends[0].data != encoded:
        raise AssertionError(f"the machine sent {replies!r} for {answer!r}")
    if isinstance(answer, A_ASSOCIATE_AC):
        if not machine.established:
            raise AssertionError(f"not established after an AC: {machine.state}")
        machine.receive_data(RELEASE_RQ, 3.0)
        machine.release_response(4.0)
    machine.transport_closed(5.0)


def TestOneInput(data: bytes) -> None:
    pdu_bytes = _HEADER.pack(0x01, 0, len(data)) + data
    try:
        request = decode_pdu(pdu_bytes)
    except PduError:
        run_machine(pdu_bytes, None, None, b"")  # the machine must answer with an A-ABORT
        return
    assert isinstance(request, A_ASSOCIATE_RQ)
    # The reserved field after the protocol version (ignored on receipt, PS3.8
    # 9.3.2) chooses the policy: the fuzzer flips one bit to try the other.
    policy = STRICT if data[2] & 1 else OPEN
    answer, encoded = check_answer(request, policy)
    run_machine(pdu_bytes, request, answer, encoded)


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
