"""The DIMSE engine and the service flows, two engines back to back with a fake clock
(no sockets, threads or sleeps; tests/engines.py): message IDs, C-ECHO, C-STORE, the
asynchronous operations window, and what the engine does with a peer's messages that
are none of ours or break PS3.7/PS3.8."""

from __future__ import annotations

from pathlib import Path

import pytest

from dimse.datasets import decode_dataset, encode_dataset
from dimse.file_check import check_file
from dimse.handlers import HandlerStatus
from dimse.messages import C_ECHO_RQ, C_ECHO_RSP, C_STORE_RQ, C_STORE_RSP
from dimse.n_messages import N_GET_RQ, N_GET_RSP
from dimse.outgoing import message_units
from dimse.provider_options import ProviderOptions
from dimse.scu import Requestor
from dul.errors import AbortReason, AssociationAborted
from dul.fsm import State
from dul.pdu import (
    A_ABORT,
    A_ASSOCIATE_AC,
    A_ASSOCIATE_RQ,
    A_RELEASE_RP,
    A_RELEASE_RQ,
    P_DATA_TF,
    PresentationDataValue,
    encode_pdu,
)
from tests.engines import (
    CT_IMAGE_STORAGE,
    EXPLICIT_VR_LITTLE_ENDIAN,
    VERIFICATION,
    BackToBack,
    Clock,
    Link,
    MemoryHandlers,
    ct_dataset,
    pair,
    store_contexts,
    write_instances,
)

COMMAND_LAST = 0x03
DATA = 0x00
DATA_LAST = 0x02


def served(
    handlers: MemoryHandlers | None = None, **pair_options: object
) -> tuple[Link, BackToBack, Requestor]:
    """An established pair whose acceptor is our server, and the requestor's operations."""
    link = pair(Clock(), store_contexts(), handlers or MemoryHandlers(), **pair_options)  # type: ignore[arg-type]
    assert link.established
    return link, BackToBack(link), Requestor(link.requestor.engine)


def both_closed(link: Link) -> None:
    for side in link.sides:
        assert side.state is State.Sta1, side.name
        assert side.endpoint.next_deadline() is None, side.name


# --------------------------------------------------------------------------------------
# Message IDs


def test_message_ids_count_from_one_and_each_response_answers_its_request() -> None:
    link, b, requestor = served()
    for _ in range(3):
        assert b.run(requestor.echo()).is_success
    assert [m.message_id for m in link.requestor.messages(C_ECHO_RQ)] == [1, 2, 3]
    answered = [m.message_id_being_responded_to for m in link.acceptor.messages(C_ECHO_RSP)]
    assert answered == [1, 2, 3]
    assert link.requestor.engine.operations == {}


def test_message_ids_wrap_from_65535_to_1() -> None:
    link, b, requestor = served()
    engine = link.requestor.engine
    for _ in range(65533):
        engine.next_message_id()
    for _ in range(3):
        assert b.run(requestor.echo()).is_success
    assert [m.message_id for m in link.requestor.messages(C_ECHO_RQ)] == [65534, 65535, 1]
    answered = [m.message_id_being_responded_to for m in link.acceptor.messages(C_ECHO_RSP)]
    assert answered == [65534, 65535, 1]


# --------------------------------------------------------------------------------------
# C-ECHO, C-STORE


def test_echo_round_trip() -> None:
    handlers = MemoryHandlers()
    link, b, requestor = served(handlers)
    status = b.run(requestor.echo())

    assert status.is_success and handlers.echoes == 1
    assert [type(p) for p in link.requestor.sent] == [A_ASSOCIATE_RQ, P_DATA_TF]
    assert [type(p) for p in link.acceptor.sent] == [A_ASSOCIATE_AC, P_DATA_TF]
    assert [(sender, m.NAME) for sender, m in link.dimse()] == [
        ("requestor", "C-ECHO-RQ"),
        ("acceptor", "C-ECHO-RSP"),
    ]
    b.run(requestor.release())
    assert isinstance(link.requestor.sent[-1], A_RELEASE_RQ)
    assert isinstance(link.acceptor.sent[-1], A_RELEASE_RP)
    both_closed(link)
    assert b.server is not None and b.server.done and b.server.error is None
    assert link.requestor.connection.error is None


@pytest.mark.parametrize(("max_pdu", "pdus"), [(1 << 20, 1), (1024, 6)])
def test_store_a_dataset(max_pdu: int, pdus: int) -> None:
    handlers = MemoryHandlers()
    link, b, requestor = served(handlers, options=ProviderOptions(ae_title="SCP", max_pdu=max_pdu))
    dataset = ct_dataset("1.2.3.9", pixels=4096)
    result = b.run(requestor.store(dataset))

    assert result.status.is_success
    assert (result.sop_class_uid, result.sop_instance_uid) == (CT_IMAGE_STORAGE, "1.2.3.9")
    [(request, data, syntax)] = handlers.stored
    assert request.affected_sop_instance_uid == "1.2.3.9"
    assert request.message_id == 1 and request.priority == 2  # LOW
    assert syntax == EXPLICIT_VR_LITTLE_ENDIAN
    assert decode_dataset(data, syntax).PixelData == dataset.PixelData
    # One P-DATA-TF with command and data set, or the data set cut to the peer's limit.
    assert len(link.requestor.pdus(P_DATA_TF)) == pdus
    assert all(len(encode_pdu(p)) <= max_pdu + 6 for p in link.requestor.pdus(P_DATA_TF))


def test_store_a_part10_file_sends_its_data_set_bytes_as_they_are(tmp_path: Path) -> None:
    handlers = MemoryHandlers()
    _, b, requestor = served(handlers)
    [path] = write_instances(tmp_path, 1, pixels=30000)
    result = b.run(requestor.store(path))

    assert result.status.is_success and result.source == path
    info = check_file(path)
    [(request, data, _)] = handlers.stored
    assert data == path.read_bytes()[info.dataset_offset :]
    assert request.affected_sop_instance_uid == info.sop_instance_uid == "1.2.3.4.5.1"


@pytest.mark.parametrize(
    ("answer", "status", "comment"),
    [
        (HandlerStatus(0xA700, "the disk is full"), 0xA700, "the disk is full"),
        (HandlerStatus(0xC000), 0xC000, None),
        (RuntimeError("a bug in the hook"), 0x0110, None),  # logged, not sent
        (0xB000, 0xB000, None),  # a warning returned
    ],
)
def test_store_status_and_error_comment_of_the_hook(
    answer: int | Exception, status: int, comment: str | None
) -> None:
    handlers = MemoryHandlers()
    handlers.store_answers["1.2.3.9"] = answer
    link, b, requestor = served(handlers)
    result = b.run(requestor.store(ct_dataset("1.2.3.9")))

    assert result.status.code == status
    assert result.status.error_comment == comment
    [response] = link.acceptor.messages(C_STORE_RSP)
    assert (response.status, response.error_comment) == (status, comment)
    assert response.affected_sop_instance_uid == "1.2.3.9"
    # A failure is the operation's, not the association's.
    assert b.run(requestor.echo()).is_success


# --------------------------------------------------------------------------------------
# The asynchronous operations window (PS3.7 D.3.3.3)


def most_outstanding(link: Link) -> int:
    """The most C-STORE-RQs on the wire with no response yet, read from the wire."""
    outstanding, most = set(), 0
    for _, message in link.dimse():
        if isinstance(message, C_STORE_RQ):
            outstanding.add(message.message_id)
            most = max(most, len(outstanding))
        elif isinstance(message, C_STORE_RSP):
            outstanding.remove(message.message_id_being_responded_to)
    assert not outstanding
    return most


@pytest.mark.parametrize(("proposed", "granted"), [(None, 1), (1, 1), (3, 3), (50, 32)])
def test_store_many_keeps_the_granted_window_full_and_never_more(
    tmp_path: Path, proposed: int | None, granted: int
) -> None:
    handlers = MemoryHandlers()
    window = None if proposed is None else (proposed, 1)
    link, b, requestor = served(handlers, async_window=window)
    engine = link.requestor.engine
    assert engine.window == granted
    seen: list[int] = []
    handlers.before["store"] = lambda: seen.append(len(engine.operations))
    paths = write_instances(tmp_path, granted + 4)

    results = b.collect(requestor.store_many(check_file(p) for p in paths))

    assert [info.path for info, _ in results] == paths  # answered in order, one at a time
    assert all(result.status.is_success for _, result in results)
    assert len(handlers.stored) == len(paths)
    # While the server stores, the client has the whole window outstanding.
    assert max(seen) == granted and seen[0] == granted
    assert most_outstanding(link) == granted
    assert engine.operations == {}


# --------------------------------------------------------------------------------------
# A peer's message that is none of ours


@pytest.mark.parametrize(
    ("stray", "named"),
    [
        (C_ECHO_RSP(message_id_being_responded_to=99, status=0), "C-ECHO-RSP to message 99"),
        (
            C_STORE_RSP(message_id_being_responded_to=1, status=0),  # the echo's ID, not its kind
            "C-STORE-RSP to message 1",
        ),
    ],
)
def test_a_response_to_no_request_of_ours_aborts(
    stray: C_ECHO_RSP | C_STORE_RSP, named: str
) -> None:
    handlers = MemoryHandlers()
    link, b, requestor = served(handlers)
    handlers.before["echo"] = lambda: link.acceptor.engine.send(1, stray)

    with pytest.raises(AssociationAborted) as caught:
        b.run(requestor.echo())

    text = str(caught.value)
    assert named in text and "awaiting an answer were: 1" in text and "none of ours" in text
    assert link.requestor.engine.error is caught.value
    # The DIMSE user gives up: A-ABORT with source 0 (service-user), as Connection.abort sends.
    assert link.requestor.sent[-1] == A_ABORT(source=0, reason=0)
    peer_error = link.acceptor.connection.error
    assert isinstance(peer_error, AssociationAborted) and peer_error.source == 0
    both_closed(link)
    assert b.server is not None and b.server.done and b.server.error is None


# --------------------------------------------------------------------------------------
# PDVs that break PS3.8 9.3.5 / Annex E: A-ABORT source 2, reason 6


def pdata(*pdvs: tuple[int, int, bytes]) -> bytes:
    return encode_pdu(P_DATA_TF(tuple(PresentationDataValue(*pdv) for pdv in pdvs)))


STORE_COMMAND = C_STORE_RQ(
    message_id=1,
    affected_sop_class_uid=CT_IMAGE_STORAGE,
    affected_sop_instance_uid="1.2.3.9",
    priority=0,
    data_set_type=0x0000,
).encode()

BAD_PDVS = {
    "a PDV on a context that was not accepted": (
        [pdata((99, COMMAND_LAST, C_ECHO_RQ(message_id=1).encode()))],
        "presentation context 99, which was not accepted",
    ),
    "a command fragment after a data fragment": (
        [
            pdata((3, COMMAND_LAST, STORE_COMMAND)),
            pdata((3, DATA, b"\x08\x00\x16\x00UI\x00\x00")),
            pdata((3, COMMAND_LAST, C_ECHO_RQ(message_id=2).encode())),
        ],
        "command fragment before the last fragment of the data set",
    ),
    "a data fragment with no command before it": (
        [pdata((3, DATA_LAST, b"\x08\x00\x16\x00UI\x00\x00"))],
        "no command before it",
    ),
}


@pytest.mark.parametrize("case", list(BAD_PDVS))
def test_bad_pdvs_from_the_requestor_abort_with_source_2_reason_6(case: str) -> None:
    handlers = MemoryHandlers()
    link, b, _ = served(handlers)
    writes, named = BAD_PDVS[case]
    for data in writes:
        link.requestor.connection.send_pdata(data, link.clock.now)
    b.settle()

    assert link.acceptor.sent[-1] == A_ABORT(
        source=2, reason=AbortReason.INVALID_PDU_PARAMETER_VALUE
    )
    error = link.acceptor.engine.error
    assert isinstance(error, AssociationAborted) and (error.source, error.reason) == (2, 6)
    assert "broke PS3.7/PS3.8" in str(error) and named in str(error)
    # The requestor is told of the provider's abort with its source and reason.
    told = link.requestor.connection.error
    assert isinstance(told, AssociationAborted) and (told.source, told.reason) == (2, 6)
    assert handlers.stored == [] and handlers.echoes == 0
    assert b.server is not None and b.server.done and b.server.error is None
    both_closed(link)


def test_a_bad_pdv_in_a_response_aborts_the_requestors_operation() -> None:
    handlers = MemoryHandlers()
    link, b, requestor = served(handlers)
    bad = pdata((99, COMMAND_LAST, C_ECHO_RSP(message_id_being_responded_to=1, status=0).encode()))
    handlers.before["echo"] = lambda: link.acceptor.connection.send_pdata(bad, link.clock.now)

    with pytest.raises(AssociationAborted) as caught:
        b.run(requestor.echo())

    assert (caught.value.source, caught.value.reason) == (2, 6)
    assert "presentation context 99" in str(caught.value)
    assert link.requestor.sent[-1] == A_ABORT(source=2, reason=6)
    told = link.acceptor.connection.error
    assert isinstance(told, AssociationAborted) and (told.source, told.reason) == (2, 6)
    both_closed(link)


def test_bytes_that_are_no_pdu_abort_with_the_upper_layers_reason() -> None:
    handlers = MemoryHandlers()
    link, b, requestor = served(handlers)
    handlers.before["echo"] = lambda: link.acceptor.connection.send_pdata(
        b"\x09\x00\x00\x00\x00\x00", link.clock.now
    )
    with pytest.raises(AssociationAborted) as caught:
        b.run(requestor.echo())

    assert (caught.value.source, caught.value.reason) == (2, AbortReason.UNRECOGNIZED_PDU)
    assert link.requestor.sent[-1] == A_ABORT(source=2, reason=1)
    both_closed(link)


def test_a_request_while_we_await_a_response_is_none_of_ours() -> None:
    handlers = MemoryHandlers()
    link, b, requestor = served(handlers)
    handlers.before["echo"] = lambda: link.acceptor.engine.send(1, C_ECHO_RQ(message_id=7))

    with pytest.raises(AssociationAborted) as caught:
        b.run(requestor.echo())

    assert str(caught.value) == (
        "scp sent C-ECHO-RQ while we waited for a response: none of ours; association aborted"
    )
    assert link.requestor.sent[-1] == A_ABORT(source=0, reason=0)
    both_closed(link)


def test_a_store_request_with_no_get_of_ours_is_refused_and_the_echo_goes_on() -> None:
    handlers = MemoryHandlers()
    link, b, requestor = served(handlers)
    server = link.acceptor.engine
    request = C_STORE_RQ(
        message_id=7,
        affected_sop_class_uid=CT_IMAGE_STORAGE,
        affected_sop_instance_uid="1.2.3.9",
        priority=0,
    )
    data = encode_dataset(ct_dataset("1.2.3.9"), EXPLICIT_VR_LITTLE_ENDIAN)

    def send_unasked_store() -> None:  # as if the server had a C-GET of ours to serve
        server.request(C_STORE_RSP, 7, message_units(3, request, data, server.max_pdu))

    handlers.before["echo"] = send_unasked_store

    assert b.run(requestor.echo()).is_success
    [response] = link.requestor.messages(C_STORE_RSP)
    assert (response.message_id_being_responded_to, response.status) == (7, 0x0124)
    assert requestor.received == []
    assert link.requestor.state is State.Sta6


def test_a_request_the_server_does_not_perform_is_answered_0211() -> None:
    link, b, requestor = served()
    engine = link.requestor.engine
    request = N_GET_RQ(
        message_id=engine.next_message_id(),
        requested_sop_class_uid=VERIFICATION,
        requested_sop_instance_uid="1.2.3",
    )
    operation = engine.request(
        N_GET_RSP, request.message_id, message_units(1, request, None, engine.max_pdu)
    )
    response, _ = b.run(requestor.response(operation))

    assert isinstance(response, N_GET_RSP)
    assert (response.message_id_being_responded_to, response.status) == (1, 0x0211)
    assert b.run(requestor.echo()).is_success


def test_an_unlimited_window_is_taken_as_64() -> None:
    link = pair(
        Clock(),
        store_contexts(),
        options=ProviderOptions(ae_title="SCP", async_window=(1, 0)),
        async_window=(0, 1),
    )
    window = link.requestor.connection.accept.user_information.asynchronous_operations_window
    assert window is not None
    assert (window.max_operations_invoked, window.max_operations_performed) == (1, 0)
    assert link.requestor.engine.window == 64
    assert link.acceptor.engine.window == 1  # we invoke one at a time as acceptor
