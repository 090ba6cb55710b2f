"""The engine's timeouts as deadlines, with a fake clock (tests/engines.py): nothing
sleeps. The DIMSE timeout while a response is awaited, a server's silent and idle
timeouts, none while the server's own work is in progress, and the ACSE timeout."""

from __future__ import annotations

from pathlib import Path

from pydicom.dataset import Dataset

from dimse.datasets import encode_dataset
from dimse.messages import C_FIND_RSP, C_STORE_RQ
from dimse.models import STUDY_ROOT_FIND, Root
from dimse.proposals import get_roles, query_contexts
from dimse.provider_options import ProviderOptions
from dimse.scu import Requestor
from dimse.storage import InstanceWriter
from dul.connection import Timeouts
from dul.errors import AssociationAborted, DulTimeout
from dul.fsm import State
from dul.pdu import A_ABORT
from tests.engines import (
    CT_IMAGE_STORAGE,
    EXPLICIT_VR_LITTLE_ENDIAN,
    BackToBack,
    Clock,
    Link,
    MemoryHandlers,
    Side,
    ct_dataset,
    pair,
    store_contexts,
    write_instances,
)

LONGER = Timeouts(dimse=120.0)
SERVER = ProviderOptions(ae_title="SCP", timeouts=Timeouts(silent=5.0, idle=20.0))


def aborted_by(side_error: object, peer_error: object) -> None:
    """The side that timed out says why; its peer was told of an A-ABORT from the user."""
    assert isinstance(side_error, DulTimeout)
    assert isinstance(peer_error, AssociationAborted) and peer_error.source == 0


def state(side: Side) -> State:
    return side.state


def both_closed(link: Link) -> None:
    for side in link.sides:
        assert side.state is State.Sta1, side.name


# --------------------------------------------------------------------------------------
# The DIMSE timeout (the requestor's)


def test_dimse_timeout_while_a_response_is_awaited() -> None:
    clock = Clock()
    link = pair(clock, store_contexts(), timeouts=Timeouts(dimse=60.0))
    b = BackToBack(link, serve=False)  # nobody answers
    start = clock.now
    task = b.start(Requestor(link.requestor.engine).echo())
    b.settle()
    assert link.requestor.engine.next_deadline() == start + 60.0

    b.advance(59.9)
    assert task.waiting is not None and state(link.requestor) is State.Sta6
    b.advance(0.2)

    assert isinstance(task.error, DulTimeout)
    assert str(task.error) == (
        "no C-ECHO-RSP to message 1 from scp within 60.0 s (the DIMSE timeout); association aborted"
    )
    assert link.requestor.engine.error is task.error
    assert link.requestor.sent[-1] == A_ABORT(source=0, reason=0)
    aborted_by(task.error, link.acceptor.connection.error)
    both_closed(link)


def find_response(status: int, patient: str | None = None) -> tuple[C_FIND_RSP, bytes | None]:
    response = C_FIND_RSP(
        message_id_being_responded_to=1, status=status, affected_sop_class_uid=STUDY_ROOT_FIND
    )
    if patient is None:
        return response, None
    ds = Dataset()
    ds.PatientID = patient
    return response, encode_dataset(ds, EXPLICIT_VR_LITTLE_ENDIAN)


def find_by_hand() -> tuple[Link, BackToBack, Requestor, int]:
    """A C-FIND whose responses the test sends by hand; the context ID of its model."""
    link = pair(
        Clock(), query_contexts(Root.STUDY, "find"), MemoryHandlers(), timeouts=Timeouts(dimse=60.0)
    )
    context = next(
        c for c in link.acceptor.engine.contexts.values() if c.abstract_syntax == STUDY_ROOT_FIND
    )
    return link, BackToBack(link, serve=False), Requestor(link.requestor.engine), context.context_id


def test_each_response_restarts_the_dimse_timeout() -> None:
    link, b, requestor, context = find_by_hand()
    task = b.start(requestor.find(Dataset(), Root.STUDY))
    b.settle()
    for n in range(3):
        b.advance(50.0)
        link.acceptor.engine.send(context, *find_response(0xFF00, f"P{n}"))
        b.settle()
    assert [r.identifier.PatientID for r in task.emitted] == ["P0", "P1", "P2"]
    b.advance(59.0)
    assert not task.done
    b.advance(2.0)
    assert isinstance(task.error, DulTimeout) and "C-FIND-RSP to message 1" in str(task.error)


def test_the_wait_for_the_final_response_after_a_cancel_is_bounded() -> None:
    link, b, requestor, context = find_by_hand()
    task = b.start(requestor.find(Dataset(), Root.STUDY), stop_after=1)
    b.settle()
    link.acceptor.engine.send(context, *find_response(0xFF00, "P0"))
    b.settle()
    assert [r.status.code for r in task.emitted] == [0xFF00]
    assert link.requestor.engine.operations[1].cancelled and task.waiting is not None

    assert link.requestor.engine.next_deadline() is not None
    b.advance(61.0)
    assert task.done and task.error is None  # the association ending is no error there
    assert isinstance(link.requestor.engine.error, DulTimeout)
    assert link.requestor.sent[-1] == A_ABORT(source=0, reason=0)


# --------------------------------------------------------------------------------------
# The server's silent and idle timeouts


def server_pair() -> tuple[Link, BackToBack, Requestor, MemoryHandlers]:
    handlers = MemoryHandlers(matches=[Dataset()])
    link = pair(
        Clock(), query_contexts(Root.STUDY, "find") + store_contexts(), handlers, options=SERVER
    )
    return link, BackToBack(link), Requestor(link.requestor.engine), handlers


def test_silent_timeout_before_the_first_message() -> None:
    link, b, _, _ = server_pair()
    b.settle()
    b.advance(4.9)
    assert link.acceptor.state is State.Sta6
    b.advance(0.2)

    error = link.acceptor.engine.error
    assert str(error) == "no message from scu within 5.0 s; association aborted"
    assert link.acceptor.sent[-1] == A_ABORT(source=0, reason=0)
    aborted_by(error, link.requestor.connection.error)
    assert b.server is not None and b.server.done and b.server.error is None
    both_closed(link)


def test_idle_timeout_after_a_message_counts_from_the_last_one() -> None:
    link, b, requestor, _ = server_pair()
    b.advance(4.0)
    assert b.run(requestor.echo()).is_success  # heard: idle (20 s) from now on
    b.advance(15.0)
    assert b.run(requestor.echo()).is_success
    b.advance(19.9)
    assert link.acceptor.state is State.Sta6
    b.advance(0.2)

    error = link.acceptor.engine.error
    assert str(error) == "no message from scu within 20.0 s; association aborted"
    aborted_by(error, link.requestor.connection.error)
    both_closed(link)


def hold_server(b: BackToBack) -> None:
    assert b.server is not None
    b.server.held = True  # the hook is still working


def test_no_idle_timeout_while_the_server_performs_a_find() -> None:
    link, b, requestor, handlers = server_pair()
    handlers.before["find"] = lambda: hold_server(b)
    task = b.start(requestor.find(Dataset(), Root.STUDY))
    b.settle()
    assert b.server is not None and b.server.held
    assert link.acceptor.engine.served  # the C-FIND is in progress

    assert link.acceptor.engine.next_deadline() is None
    b.advance(50.0)  # past silent and idle, within the requestor's DIMSE timeout
    assert link.acceptor.state is State.Sta6 and not task.done

    b.server.held = False
    b.settle()
    assert [r.status.code for r in task.outcome() or task.emitted] == [0xFF00, 0x0000]
    b.advance(20.1)  # and idle again once it is answered
    assert isinstance(link.acceptor.engine.error, DulTimeout)


def test_no_idle_timeout_while_the_server_performs_a_store() -> None:
    link, b, requestor, handlers = server_pair()
    handlers.before["store"] = lambda: hold_server(b)
    task = b.start(requestor.store(ct_dataset()))
    b.settle()
    assert b.server is not None and b.server.held and not task.done

    assert link.acceptor.engine.next_deadline() is None
    b.advance(50.0)
    assert link.acceptor.state is State.Sta6


# --------------------------------------------------------------------------------------
# The ACSE timeout


def test_acse_timeout_on_an_unanswered_release() -> None:
    clock = Clock()
    link = pair(clock, store_contexts(), timeouts=Timeouts(acse=30.0))
    b = BackToBack(link)
    link.acceptor.held = True  # it reads nothing: the A-RELEASE-RQ stays unanswered
    task = b.start(Requestor(link.requestor.engine).release())
    b.settle()
    assert link.requestor.state is State.Sta7
    b.advance(29.9)
    assert task.waiting is not None and state(link.requestor) is State.Sta7
    b.advance(0.2)

    assert isinstance(task.error, DulTimeout)
    assert str(task.error) == (
        "scp did not answer the A-RELEASE-RQ within 30.0 s; association aborted"
    )
    assert link.requestor.sent[-1] == A_ABORT(source=0, reason=0)
    assert state(link.requestor) is State.Sta1


def test_acse_timeout_on_an_unanswered_associate_request() -> None:
    link = pair(Clock(), store_contexts(), timeouts=Timeouts(acse=30.0), answer=False)
    assert link.requestor.state is State.Sta5 and link.acceptor.state is State.Sta3
    link.advance(29.9)
    assert link.requestor.state is State.Sta5
    link.advance(0.2)

    error = link.requestor.connection.error
    assert isinstance(error, DulTimeout)
    assert "did not answer the A-ASSOCIATE-RQ within 30.0 s" in str(error)
    assert link.requestor.sent[-1] == A_ABORT(source=0, reason=0)
    told = link.acceptor.connection.error
    assert isinstance(told, AssociationAborted) and told.source == 0
    both_closed(link)


def test_the_servers_own_sub_operation_has_the_dimse_timeout(tmp_path: Path) -> None:
    handlers = MemoryHandlers(files=write_instances(tmp_path / "archive", 2))
    contexts = query_contexts(Root.STUDY, "get", [CT_IMAGE_STORAGE])
    options = ProviderOptions(ae_title="SCP", timeouts=Timeouts(dimse=60.0, idle=20.0))
    roles = get_roles(contexts)
    link = pair(Clock(), contexts, handlers, options=options, roles=roles, timeouts=LONGER)
    b = BackToBack(link)
    link.requestor.held = True  # the requestor answers no C-STORE-RQ
    requestor = Requestor(link.requestor.engine)
    task = b.start(requestor.get(Dataset(), Root.STUDY, InstanceWriter(tmp_path / "got")))
    b.settle()
    assert len(link.acceptor.messages(C_STORE_RQ)) == 1
    b.advance(59.9)  # the server's idle timeout (20 s) does not run meanwhile
    assert state(link.acceptor) is State.Sta6
    b.advance(0.2)

    error = link.acceptor.engine.error
    assert str(error) == (
        "no C-STORE-RSP to message 1 from scu within 60.0 s (the DIMSE timeout); "
        "association aborted"
    )
    assert link.acceptor.sent[-1] == A_ABORT(source=0, reason=0)
    assert b.server is not None and b.server.error is error  # the session ends with it
    link.requestor.held = False
    b.settle()
    assert isinstance(task.error, AssociationAborted) and task.error.source == 0
    both_closed(link)
