"""How associations end, between engines back to back (tests/engines.py): an abort in
every phase (before the A-ASSOCIATE-AC, in the middle of a C-STORE data set, during
C-FIND pending responses, during a release), release collision, and a peer's release
while one of our operations is outstanding."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from pydicom.dataset import Dataset

from dimse.file_check import check_file
from dimse.handlers import Caller, StoreSink
from dimse.messages import C_FIND_RSP, C_STORE_RQ
from dimse.models import Root
from dimse.proposals import query_contexts
from dimse.provider_options import ProviderOptions
from dimse.scu import Requestor
from dul.errors import AssociationAborted, AssociationReleased
from dul.fsm import State
from dul.negotiation import ProposedContext
from dul.pdu import A_ABORT, A_RELEASE_RP, A_RELEASE_RQ, P_DATA_TF
from tests.engines import (
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

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

USER_ABORT = A_ABORT(source=0, reason=0)


def both_closed(link: Link) -> None:
    for side in link.sides:
        assert side.state is State.Sta1, side.name
        assert side.endpoint.next_deadline() is None, side.name


def transitions(side: Side) -> list[str]:
    return [str(t) for t in side.connection.machine.history]


def told_of_user_abort(error: object) -> None:
    assert isinstance(error, AssociationAborted)
    assert (error.source, error.reason) == (0, 0)
    assert "aborted the association (A-ABORT, source 0)" in str(error)


def data_bytes(side: Side) -> int:
    """The data set bytes (not command) that `side` sent."""
    return sum(len(v.data) for p in side.pdus(P_DATA_TF) for v in p.pdvs if not v.is_command)


def served(
    handlers: MemoryHandlers, contexts: list[ProposedContext] | None = None, **options: object
) -> tuple[Link, BackToBack, Requestor]:
    link = pair(Clock(), contexts or store_contexts(), handlers, **options)  # type: ignore[arg-type]
    return link, BackToBack(link), Requestor(link.requestor.engine)


# --------------------------------------------------------------------------------------
# Abort


@pytest.mark.parametrize("who", ["requestor", "acceptor"])
def test_abort_while_the_requestor_awaits_the_associate_answer(who: str) -> None:
    link = pair(Clock(), store_contexts(), answer=False)
    assert link.requestor.state is State.Sta5 and link.acceptor.state is State.Sta3
    side: Side = getattr(link, who)
    peer = link.peer(side)
    side.connection.abort(link.clock.now)
    link.settle()

    assert side.sent[-1] == USER_ABORT
    told_of_user_abort(peer.connection.error)
    expected = (
        "Sta5 + Evt16 -> AA-3 -> Sta1" if who == "acceptor" else "Sta3 + Evt16 -> AA-3 -> Sta1"
    )
    assert transitions(peer)[-1] == expected
    assert side.connection.error is None  # our own abort: nothing to tell ourselves
    both_closed(link)


class Sink(StoreSink):
    def __init__(self) -> None:
        self.data = bytearray()
        self.closed = self.committed = False

    def write(self, data: ReadableBuffer) -> int:
        self.data += data
        return memoryview(data).nbytes

    def close(self) -> None:
        self.closed = True

    def commit(self) -> int:
        self.committed = True
        return 0


class SinkHandlers(MemoryHandlers):
    """Streams each C-STORE data set into a `Sink`, as it arrives."""

    def __init__(self) -> None:
        super().__init__()
        self.sinks: list[Sink] = []

    def open_store(self, caller: Caller, request: C_STORE_RQ, transfer_syntax: str) -> Sink:
        self.sinks.append(Sink())
        return self.sinks[-1]


def test_server_aborts_in_the_middle_of_a_store_data_set() -> None:
    handlers = SinkHandlers()
    link, b, requestor = served(handlers, options=ProviderOptions(ae_title="SCP", max_pdu=4096))
    link.acceptor.held = True
    task = b.start(requestor.store(ct_dataset(pixels=40000)))
    b.settle()
    assert len(link.acceptor.inbox) > 5  # the command and the data set, PDU by PDU
    link.acceptor.held = False
    for _ in range(3):  # the command, then two fragments of the data set
        link.deliver_one(link.acceptor)
    link.acceptor.engine.abort()
    b.settle()

    told_of_user_abort(task.error)
    assert link.acceptor.sent[-1] == USER_ABORT
    [sink] = handlers.sinks
    assert 0 < len(sink.data) < data_bytes(link.requestor)
    assert sink.closed and not sink.committed  # the partial data set is given up
    assert handlers.stored == []
    assert b.server is not None and b.server.done and b.server.error is None
    both_closed(link)


def test_requestor_aborts_in_the_middle_of_sending_a_data_set(tmp_path: Path) -> None:
    handlers = SinkHandlers()
    link, b, requestor = served(handlers)
    [path] = write_instances(tmp_path, 1, pixels=3 << 20)
    engine = link.requestor.engine

    def progress(count: int) -> None:
        engine.abort()  # asked while the data set is being written

    task = b.start(requestor.store(path, progress=progress))
    b.settle()

    assert isinstance(task.error, AssociationAborted)
    assert link.requestor.sent[-1] == USER_ABORT
    assert 0 < data_bytes(link.requestor) < 3 << 20  # the first write of the data set only
    told_of_user_abort(link.acceptor.connection.error)
    [sink] = handlers.sinks
    assert sink.closed and not sink.committed
    assert b.server is not None and b.server.done and b.server.error is None
    both_closed(link)


def numbered(count: int) -> list[Dataset]:
    matches = []
    for n in range(count):
        ds = Dataset()
        ds.PatientID = f"P{n}"
        matches.append(ds)
    return matches


def find_statuses(link: Link) -> list[int]:
    return [m.status for m in link.acceptor.messages(C_FIND_RSP)]


def test_requestor_aborts_during_find_pending_responses() -> None:
    handlers = MemoryHandlers(matches=numbered(100))
    link, b, requestor = served(handlers, query_contexts(Root.STUDY, "find"))
    task = b.start(requestor.find(Dataset(), Root.STUDY), stop_after=2, abandon=False)
    b.settle(until=lambda: task.held)  # the user reads two, and stops reading
    b.run(requestor.abort())

    assert link.requestor.sent[-1] == USER_ABORT
    told_of_user_abort(link.acceptor.connection.error)
    # The server stops at its next look (no final response to an aborted association).
    statuses = find_statuses(link)
    assert 2 <= len(statuses) <= 8 and set(statuses) == {0xFF00}
    assert handlers.find_closed == 1
    assert b.server is not None and b.server.done and b.server.error is None
    # A user who reads on gets what had come before the abort, then the abort.
    task.held, task.stop_after = False, None
    b.settle()
    assert 2 < len(task.emitted) <= len(statuses)
    assert {r.status.code for r in task.emitted} == {0xFF00}
    assert isinstance(task.error, AssociationAborted)
    both_closed(link)


def test_server_aborts_during_find_pending_responses() -> None:
    class Aborting(MemoryHandlers):
        def find_matches(self) -> Iterator[Dataset]:
            yield from numbered(3)
            link.acceptor.engine.abort()
            yield from numbered(5)

    handlers = Aborting()
    link, b, requestor = served(handlers, query_contexts(Root.STUDY, "find"))
    task = b.start(requestor.find(Dataset(), Root.STUDY))
    b.settle()

    told_of_user_abort(task.error)
    assert [r.status.code for r in task.emitted] == [0xFF00] * 3
    assert find_statuses(link) == [0xFF00] * 3  # what was queued after the abort never went
    assert link.acceptor.sent[-1] == USER_ABORT
    assert b.server is not None and b.server.done and b.server.error is None
    both_closed(link)


def test_peer_aborts_during_our_release() -> None:
    link, b, requestor = served(MemoryHandlers())
    link.acceptor.held = True
    task = b.start(requestor.release())
    b.settle()
    assert link.requestor.state is State.Sta7
    link.acceptor.engine.abort()
    link.acceptor.held = False
    b.settle()

    told_of_user_abort(task.error)
    assert transitions(link.requestor)[-1] == "Sta7 + Evt16 -> AA-3 -> Sta1"
    assert link.requestor.connection.released is False
    both_closed(link)


# --------------------------------------------------------------------------------------
# Release


def test_release_collision_ends_both_sides_without_error() -> None:
    link, b, requestor = served(MemoryHandlers())
    task = b.start(requestor.release())
    link.acceptor.engine.release()  # both at once: the two A-RELEASE-RQs cross
    b.settle()

    assert task.done and task.error is None
    for side in link.sides:
        assert [type(p) for p in side.sent[1:]] == [A_RELEASE_RQ, A_RELEASE_RP], side.name
        assert side.connection.error is None and side.connection.released, side.name
    assert transitions(link.requestor)[-3:] == [
        "Sta7 + Evt12 -> AR-8 -> Sta9",
        "Sta9 + Evt14 -> AR-9 -> Sta11",
        "Sta11 + Evt13 -> AR-3 -> Sta1",
    ]
    assert transitions(link.acceptor)[-4:] == [
        "Sta7 + Evt12 -> AR-8 -> Sta10",
        "Sta10 + Evt13 -> AR-10 -> Sta12",
        "Sta12 + Evt14 -> AR-4 -> Sta13",
        "Sta13 + Evt17 -> AR-5 -> Sta1",
    ]
    assert b.server is not None and b.server.done and b.server.error is None
    both_closed(link)


def test_a_peer_release_while_our_echo_is_outstanding_raises_released() -> None:
    link = pair(Clock(), store_contexts())
    b = BackToBack(link, serve=False)
    task = b.start(Requestor(link.requestor.engine).echo())
    b.settle()
    assert link.requestor.engine.operations
    link.acceptor.engine.release()  # the acceptor releases instead of answering
    b.settle()

    assert isinstance(task.error, AssociationReleased)
    assert str(task.error) == "scp released the association"
    assert link.requestor.engine.operations == {}
    assert link.acceptor.sent[-1] == A_RELEASE_RQ() and link.requestor.sent[-1] == A_RELEASE_RP()
    assert link.acceptor.connection.error is None
    both_closed(link)


def test_a_server_release_during_find_pending_responses_raises_released() -> None:
    class Releasing(MemoryHandlers):
        def find_matches(self) -> Iterator[Dataset]:
            yield from numbered(2)
            link.acceptor.engine.release()
            yield from numbered(50)

    link, b, requestor = served(Releasing(), query_contexts(Root.STUDY, "find"))
    task = b.start(requestor.find(Dataset(), Root.STUDY))
    b.settle()

    assert isinstance(task.error, AssociationReleased)
    assert [r.status.code for r in task.emitted] == [0xFF00, 0xFF00]
    assert 0x0000 not in find_statuses(link)
    assert b.server is not None and b.server.done and b.server.error is None
    both_closed(link)


def test_store_many_names_in_flight_only_the_files_sent(tmp_path: Path) -> None:
    handlers = MemoryHandlers()
    link, b, requestor = served(handlers, async_window=(3, 1))
    hooks: list[int] = []

    def abort_at_the_second() -> None:
        hooks.append(1)
        if len(hooks) == 2:
            link.acceptor.engine.abort()

    handlers.before["store"] = abort_at_the_second
    paths = write_instances(tmp_path, 5)
    task = b.start(requestor.store_many(check_file(p) for p in paths))
    b.settle()

    told_of_user_abort(task.error)
    assert [info.path.name for info, _ in task.emitted] == ["1.dcm"]
    sent = [m.affected_sop_instance_uid for m in link.requestor.messages(C_STORE_RQ)]
    assert sent == ["1.2.3.4.5.1", "1.2.3.4.5.2", "1.2.3.4.5.3"]
    in_flight = getattr(task.error, "in_flight", ())
    assert [path.name for path in in_flight] == ["2.dcm", "3.dcm"]
