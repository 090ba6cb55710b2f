"""Regressions from fuzzing at depth (fuzz/): one test per finding, with its input.

Each test states what must hold, in the words of the target that checks it
(fuzz/fuzz_*.py), and fails until the bug it records is fixed. Targets and what
they found, with the number of inputs each ran, are in fuzz/README.md.
"""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from dimse import client
from dimse.engine import Engine
from dimse.messages import C_ECHO_RQ
from dimse.models import VERIFICATION
from dimse.reassembly import Reassembler
from dimse.scp import Handlers, Provider
from dul import A_ASSOCIATE_AC, decode_pdu, encode_pdu
from dul.connection import Connection
from dul.errors import AssociationError
from dul.items import ApplicationContextItem, PresentationContextRQItem
from dul.machine import Machine
from dul.negotiation import AcceptorPolicy, ProposedContext, negotiate
from dul.pdu import A_ASSOCIATE_RQ, P_DATA_TF, PresentationDataValue
from dul.primitives import AssociateIndication, Send
from dul.user_information import MaximumLengthSubItem, RoleSelectionSubItem, UserInformationItem
from tests.peers import HOST
from tests.rawpeer import SHORT, WAIT_S, RawPeer, RawServer, accept_association

CT_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
IMPLICIT = "1.2.840.10008.1.2"
APP_CONTEXT = "1.2.840.10008.3.1.1.1"


class _Server(Handlers):
    serves_storage = True
    serves_query = True


def _policy() -> AcceptorPolicy:
    """The policy fuzz/fuzz_negotiation.py uses: dicomscp's contexts."""
    return AcceptorPolicy(ae_title="DICOMSCP", contexts=_Server().contexts(), async_window=(1, 32))


# --------------------------------------------------------------------------------------
# Negotiation (fuzz/fuzz_negotiation.py): "encode_pdu of the answer must succeed"


def _rq_with_repeated_roles(count: int) -> bytes:
    """An A-ASSOCIATE-RQ (65,641 bytes, under the 1 MiB cap) whose User Information
    item (65,484 bytes, within its 16-bit length) repeats one SCP/SCU Role Selection
    sub-item for the one proposed SOP class `count` times."""
    roles = tuple(RoleSelectionSubItem(CT_STORAGE, 1, 1) for _ in range(count))
    rq = A_ASSOCIATE_RQ(
        "DICOMSCP",
        "STORESCU",
        (
            ApplicationContextItem(APP_CONTEXT),
            PresentationContextRQItem(1, CT_STORAGE, (IMPLICIT,)),
            UserInformationItem((MaximumLengthSubItem(16384), *roles)),
        ),
    )
    return encode_pdu(rq)


def test_repeated_role_selections_give_an_ac_that_can_be_encoded() -> None:
    """negotiate() answers every Role Selection sub-item of the RQ, repeats included,
    so an RQ whose User Information item is nearly full of one repeated sub-item gets
    an AC whose User Information item is over 65,535 bytes: encode_pdu raises
    ValueError ("item 50H would be 65544 bytes"), in the server from
    Machine.associate_response, which then logs a traceback and drops the
    connection with no A-ASSOCIATE-AC, -RJ or A-ABORT. PS3.7 D.3.3.4 has one Role
    Selection sub-item per SOP class: the AC should answer each SOP class once."""
    raw = _rq_with_repeated_roles(1984)
    request = decode_pdu(raw)
    assert isinstance(request, A_ASSOCIATE_RQ)
    answer = negotiate(request, _policy())
    assert isinstance(answer, A_ASSOCIATE_AC)
    assert decode_pdu(encode_pdu(answer)) == answer
    uids = [r.sop_class_uid for r in answer.user_information.role_selections]
    assert len(uids) == len(set(uids))


def test_repeated_role_selections_do_not_break_the_acceptor_machine() -> None:
    raw = _rq_with_repeated_roles(1984)
    machine = Machine(requestor=False)
    machine.transport_indication(0.0)
    outputs = machine.receive_data(raw, 0.0)
    assert isinstance(outputs[-1], AssociateIndication)
    sent = machine.associate_response(negotiate(outputs[-1].request, _policy()), 0.0)
    assert any(isinstance(output, Send) for output in sent)
    assert machine.established


@pytest.mark.parametrize("maximum_length", [1, 2, 6])
def test_a_maximum_length_with_no_room_for_a_pdv_is_not_accepted(maximum_length: int) -> None:
    """A requestor's Maximum Length Sub-Item of 1 to 6 leaves no room for a PDV (6
    bytes of header plus data, PS3.8 D.1). dimse/fragments.py says such a limit is
    a ValueError "which the association layer should have refused earlier", but
    negotiate() accepts it: dicomscp then answers the first request, fragment_size
    raises ValueError in the session, the server logs a traceback and drops the
    connection without an A-ABORT (the client sees the association "released").
    (Found while checking what the negotiation target's ACs lead to.)"""
    rq = A_ASSOCIATE_RQ(
        "DICOMSCP",
        "ECHOSCU",
        (
            ApplicationContextItem(APP_CONTEXT),
            PresentationContextRQItem(1, "1.2.840.10008.1.1", (IMPLICIT,)),
            UserInformationItem((MaximumLengthSubItem(maximum_length),)),
        ),
    )
    answer = negotiate(decode_pdu(encode_pdu(rq)), _policy())  # type: ignore[arg-type]
    assert not isinstance(answer, A_ASSOCIATE_AC)


def test_an_ac_whose_maximum_length_leaves_no_room_for_a_pdv_ends_the_association() -> None:
    """The requestor's side of the case above, not fixed by 5750373: an
    A-ASSOCIATE-AC whose Maximum Length is 6 is taken, and the first request sent
    raises ValueError from fragment_size ("which the association layer should have
    refused earlier") out of `Association.echo()`. Any AssociationError will do
    (an A-ABORT on receipt of such an AC, say); a ValueError is our bug."""

    def acceptor(peer: RawPeer) -> None:
        accept_association(peer, max_pdu=6)
        peer.closed_within(WAIT_S)

    with RawServer(acceptor) as server:
        with pytest.raises(AssociationError):
            with client.connect(
                HOST,
                server.port,
                calling_ae="REGRESSION",
                called_ae="RAW",
                contexts=[ProposedContext(VERIFICATION, ("1.2.840.10008.1.2",))],
                timeouts=SHORT,
            ) as association:
                association.echo()


# --------------------------------------------------------------------------------------
# Reassembly (fuzz/fuzz_reassembly.py)


def test_reassembler_context_id_is_zero_between_messages() -> None:
    """`Reassembler.context_id` is documented as "the presentation context of the
    message being received (0 between messages)", but `_reset` leaves the last
    message's context in place, so it still reads 3 after the message is given out.
    (Found reading the code for the target's model; the target checks context_id
    only while a message is in progress, so that this does not stop its runs.)"""
    reassembler = Reassembler({1, 3})
    command = C_ECHO_RQ(message_id=1).encode()
    messages = reassembler.feed(P_DATA_TF((PresentationDataValue(3, 0x03, command),)))
    assert [m.context_id for m in messages] == [3]
    assert not reassembler.in_progress
    assert reassembler.context_id == 0


@pytest.mark.parametrize("count", [1, 2, 100])
def test_repeated_role_selections_small_counts_stay_encodable(count: int) -> None:
    """The same RQ with a few repeats: already fine, kept as the baseline."""
    request = decode_pdu(_rq_with_repeated_roles(count))
    assert isinstance(request, A_ASSOCIATE_RQ)
    answer = negotiate(request, _policy())
    assert decode_pdu(encode_pdu(answer)) == answer


# --------------------------------------------------------------------------------------
# Soak (scripts/soak.py): "no growth in memory" over 10,000 associations


@pytest.fixture
def cycle_collector_off() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@pytest.mark.usefixtures("cycle_collector_off")
def test_an_engine_is_freed_when_its_last_reference_goes() -> None:
    """An engine gives its Reassembler a data sink. Were it the engine's own bound
    method, engine -> reassembler -> bound method -> engine would be a reference cycle,
    and each association's Engine, Connection, Machine (with its history of
    transitions and both association PDUs), Framer and buffers would be freed only by
    the cyclic garbage collector. In dicomscp that showed as a resident size growing
    by 1-2 KiB per association until a full collection: scripts/soak.py measured 62
    MiB after 1,000 associations, 80.6 MiB after 10,000, 91.9 MiB after 20,000, then
    73 MiB once a full collection ran."""
    engine = Engine(Connection(Machine(requestor=True), "peer"))
    alive = weakref.ref(engine)
    del engine
    assert alive() is None


class _Echo(Handlers):
    pass


@pytest.mark.usefixtures("cycle_collector_off")
def test_associations_leave_no_garbage_for_the_cycle_collector() -> None:
    """End to end, in one process: with the cycle collector off, 20 echo associations
    (client and server sides) must leave none of their Machines, Channels or
    Engines behind."""

    def count() -> dict[str, int]:
        kinds = ("Machine", "Connection", "Channel", "Engine", "Reassembler", "Framer")
        found = dict.fromkeys(kinds, 0)
        for obj in gc.get_objects():
            name = type(obj).__name__
            if name in found and type(obj).__module__.split(".")[0] in ("dul", "dimse"):
                found[name] += 1
        return found

    provider = Provider(_Echo(), ae_title="DICOMSCP", host="127.0.0.1", port=0).start()
    try:

        def echo() -> None:
            with client.connect(
                "127.0.0.1",
                provider.port,
                calling_ae="REGRESSION",
                called_ae="DICOMSCP",
                contexts=[ProposedContext(VERIFICATION, ("1.2.840.10008.1.2",))],
            ) as association:
                assert association.echo().is_success

        echo()
        before = count()
        for _ in range(20):
            echo()
        provider.server.shutdown(10)  # the server's threads are done with theirs too
        after = count()
    finally:
        provider.stop()
    # `before` may still hold the first association's server side, whose thread
    # was finishing: nothing may be added, and the leak was 2 of each per association.
    assert all(after[kind] <= before[kind] for kind in after), (
        f"left for the cycle collector: {after} (before: {before})"
    )
