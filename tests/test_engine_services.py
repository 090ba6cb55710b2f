"""C-FIND, C-GET and C-MOVE between engines back to back (tests/engines.py): pending
responses and their counts, C-CANCEL between responses, the sub-operations of C-GET
on the same association and of C-MOVE on a third association."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pydicom.dataset import Dataset

from dimse.handlers import Caller, HandlerStatus
from dimse.messages import (
    C_CANCEL_RQ,
    C_ECHO_RQ,
    C_FIND_RQ,
    C_FIND_RSP,
    C_GET_RSP,
    C_MOVE_RSP,
    C_STORE_RQ,
    C_STORE_RSP,
)
from dimse.models import Root
from dimse.proposals import get_roles, query_contexts
from dimse.received import Refusal
from dimse.results import RetrieveResponse
from dimse.scu import Requestor
from dimse.serve import CANCEL_POLL
from dimse.storage import InstanceWriter, PendingInstance
from dul.fsm import State
from dul.pdu import A_RELEASE_RQ
from tests.engines import (
    CT_IMAGE_STORAGE,
    BackToBack,
    Clock,
    Link,
    MemoryHandlers,
    pair,
    write_instances,
)


def query(level: str = "STUDY") -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = level
    ds.StudyInstanceUID = "1.2.3.4"
    ds.PatientID = ""
    return ds


def match(n: int) -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    ds.StudyInstanceUID = f"1.2.3.{n}"
    ds.PatientID = f"P{n}"
    return ds


def find_pair(handlers: MemoryHandlers) -> tuple[Link, BackToBack, Requestor]:
    link = pair(Clock(), query_contexts(Root.STUDY, "find"), handlers)
    return link, BackToBack(link), Requestor(link.requestor.engine)


def statuses(link: Link, kind: type) -> list[int]:
    return [m.status for m in link.acceptor.messages(kind)]


# --------------------------------------------------------------------------------------
# C-FIND


def test_find_pending_responses_then_the_final_one() -> None:
    handlers = MemoryHandlers(matches=[match(n) for n in (1, 2, 3)])
    link, b, requestor = find_pair(handlers)
    responses = b.collect(requestor.find(query(), Root.STUDY))

    assert [r.status.code for r in responses] == [0xFF00, 0xFF00, 0xFF00, 0x0000]
    assert [r.identifier.PatientID for r in responses[:3]] == ["P1", "P2", "P3"]
    assert responses[3].identifier is None
    assert {r.message_id for r in responses} == {1}
    [request] = handlers.queries
    assert isinstance(request, C_FIND_RQ) and request.message_id == 1
    assert statuses(link, C_FIND_RSP) == [0xFF00] * 3 + [0x0000]
    assert handlers.find_closed == 1
    assert link.requestor.engine.operations == {} and link.acceptor.engine.served == {}


def test_leaving_a_find_early_cancels_it_between_responses() -> None:
    handlers = MemoryHandlers(matches=[match(n) for n in range(100)])
    link, b, requestor = find_pair(handlers)
    task = b.start(requestor.find(query(), Root.STUDY), stop_after=2)
    b.settle()

    assert task.done and task.error is None
    assert [r.status.code for r in task.emitted] == [0xFF00, 0xFF00]
    assert task.dropped == []  # the later pending responses reach nobody
    [cancel] = link.requestor.messages(C_CANCEL_RQ)
    assert cancel.message_id_being_responded_to == 1
    # The server looks for a C-CANCEL every CANCEL_POLL responses, then answers FE00.
    assert statuses(link, C_FIND_RSP) == [0xFF00] * CANCEL_POLL + [0xFE00]
    assert handlers.yielded == CANCEL_POLL and handlers.find_closed == 1
    assert link.requestor.engine.operations == {} and link.acceptor.engine.served == {}
    # The association goes on.
    assert b.run(requestor.echo()).is_success
    assert [m.message_id for m in link.requestor.messages(C_ECHO_RQ)] == [2]


@pytest.mark.parametrize(
    ("failure", "status", "comment"),
    [
        (HandlerStatus(0xA900, "no such key"), 0xA900, "no such key"),
        (ValueError("the index is broken"), 0xC001, "the index is broken"),
    ],
)
def test_a_find_hook_that_fails_is_answered_with_its_status(
    failure: Exception, status: int, comment: str
) -> None:
    handlers = MemoryHandlers()

    def fail() -> None:
        raise failure

    handlers.before["find"] = fail
    link, b, requestor = find_pair(handlers)
    [response] = b.collect(requestor.find(query(), Root.STUDY))

    assert (response.status.code, response.status.error_comment) == (status, comment)
    assert statuses(link, C_FIND_RSP) == [status]
    assert b.run(requestor.echo()).is_success


def test_a_find_iterator_that_fails_midway_ends_with_c001_after_its_matches() -> None:
    class Failing(MemoryHandlers):
        def find_matches(self) -> Iterator[Dataset]:
            yield match(1)
            yield match(2)
            raise OSError("the disk went away")

    link, b, requestor = find_pair(Failing())
    responses = b.collect(requestor.find(query(), Root.STUDY))
    assert [r.status.code for r in responses] == [0xFF00, 0xFF00, 0xC001]
    assert responses[-1].status.error_comment == "the disk went away"
    assert statuses(link, C_FIND_RSP) == [0xFF00, 0xFF00, 0xC001]


# --------------------------------------------------------------------------------------
# C-GET: the sub-operations on the same association


def counts(
    response: RetrieveResponse,
) -> tuple[int, int | None, int | None, int | None, int | None]:
    return (
        response.status.code,
        response.remaining,
        response.completed,
        response.failed,
        response.warning,
    )


class RefusingWriter(InstanceWriter):
    """Writes instances, and refuses those named, as a failed check would (A900H)."""

    def __init__(self, directory: Path, refuse: set[str]) -> None:
        super().__init__(directory, fsync=False)
        self.refuse = refuse

    def open(
        self, sop_class_uid: str, sop_instance_uid: str, transfer_syntax: str
    ) -> PendingInstance:
        pending = super().open(sop_class_uid, sop_instance_uid, transfer_syntax)
        if sop_instance_uid not in self.refuse:
            return pending
        pending.discard()
        refusal = Refusal(0xA900, "refused by the test", "refused by the test")
        return PendingInstance(
            self.directory, f"{sop_instance_uid}.dcm", b"", False, lambda _: refusal
        )


def get_pair(handlers: MemoryHandlers) -> tuple[Link, BackToBack, Requestor]:
    contexts = query_contexts(Root.STUDY, "get", [CT_IMAGE_STORAGE])
    link = pair(Clock(), contexts, handlers, roles=get_roles(contexts))
    return link, BackToBack(link), Requestor(link.requestor.engine)


def test_get_sends_each_instance_on_the_same_association_with_counts(tmp_path: Path) -> None:
    files = write_instances(tmp_path / "archive", 3)
    handlers = MemoryHandlers(files=files)
    link, b, requestor = get_pair(handlers)
    writer = RefusingWriter(tmp_path / "got", set())
    responses = b.collect(requestor.get(query(), Root.STUDY, writer))

    assert [counts(r) for r in responses] == [
        (0xFF00, 2, 1, 0, 0),
        (0xFF00, 1, 2, 0, 0),
        (0x0000, None, 3, 0, 0),
    ]
    assert {r.message_id for r in responses} == {1}
    assert responses[-1].failed_sop_instances == ()
    uids = [f"1.2.3.4.5.{n}" for n in (1, 2, 3)]
    assert [i.sop_instance_uid for i in requestor.received] == uids
    assert sorted(p.name for p in (tmp_path / "got").iterdir()) == [f"{u}.dcm" for u in uids]
    # The server's own requests on this association count their Message IDs from 1.
    stores = link.acceptor.messages(C_STORE_RQ)
    assert [m.message_id for m in stores] == [1, 2, 3]
    assert [m.status for m in link.requestor.messages(C_STORE_RSP)] == [0, 0, 0]
    assert link.acceptor.engine.operations == {} and link.requestor.engine.operations == {}


def test_get_a_refused_instance_is_failed_and_listed(tmp_path: Path) -> None:
    files = write_instances(tmp_path / "archive", 3)
    handlers = MemoryHandlers(files=files)
    link, b, requestor = get_pair(handlers)
    writer = RefusingWriter(tmp_path / "got", {"1.2.3.4.5.2"})
    responses = b.collect(requestor.get(query(), Root.STUDY, writer))

    assert [counts(r) for r in responses] == [
        (0xFF00, 2, 1, 0, 0),
        (0xFF00, 1, 1, 1, 0),
        (0xB000, None, 2, 1, 0),
    ]
    assert responses[-1].failed_sop_instances == ("1.2.3.4.5.2",)
    assert responses[-1].comment == "the requestor answered A900H: refused by the test"
    [refused] = [m for m in link.requestor.messages(C_STORE_RSP) if m.status]
    assert (refused.status, refused.error_comment) == (0xA900, "refused by the test")
    assert requestor.refused == [("1.2.3.4.5.2", "refused by the test")]
    assert [i.sop_instance_uid for i in requestor.received] == ["1.2.3.4.5.1", "1.2.3.4.5.3"]


def test_get_cancelled_in_the_middle_ends_with_fe00_and_its_counts(tmp_path: Path) -> None:
    files = write_instances(tmp_path / "archive", 5)
    handlers = MemoryHandlers(files=files)
    link, b, requestor = get_pair(handlers)
    task = b.start(
        requestor.get(query(), Root.STUDY, RefusingWriter(tmp_path / "got", set())), stop_after=1
    )
    b.settle()

    assert task.done and task.error is None
    assert [counts(r) for r in task.emitted] == [(0xFF00, 4, 1, 0, 0)]
    [cancel] = link.requestor.messages(C_CANCEL_RQ)
    assert cancel.message_id_being_responded_to == 1
    # The C-CANCEL-RQ crosses the second sub-operation: the server stops before the third.
    assert [
        (m.status, m.number_of_remaining_suboperations, m.number_of_completed_suboperations)
        for m in link.acceptor.messages(C_GET_RSP)
    ] == [(0xFF00, 4, 1), (0xFF00, 3, 2), (0xFE00, 3, 2)]
    [final] = link.acceptor.messages(C_GET_RSP)[-1:]
    assert (final.number_of_failed_suboperations, final.number_of_warning_suboperations) == (0, 0)
    assert len(link.acceptor.messages(C_STORE_RQ)) == 2 == len(requestor.received)
    assert link.requestor.engine.operations == {} and link.acceptor.engine.served == {}
    assert b.run(requestor.echo()).is_success


# --------------------------------------------------------------------------------------
# C-MOVE: the sub-operations on a third association


def move_pair(
    handlers: MemoryHandlers, destination: MemoryHandlers | None
) -> tuple[Link, BackToBack, Requestor]:
    link = pair(Clock(), query_contexts(Root.STUDY, "move"), handlers)
    known = {("dest.test", 104): destination} if destination is not None else {}
    return link, BackToBack(link, destinations=known), Requestor(link.requestor.engine)


def test_move_stores_each_instance_at_the_destination(tmp_path: Path) -> None:
    files = write_instances(tmp_path, 3)
    handlers = MemoryHandlers(files=files, destinations={"DEST": ("dest.test", 104)})
    destination = MemoryHandlers()
    link, b, requestor = move_pair(handlers, destination)
    responses = b.collect(requestor.move(query(), Root.STUDY, "DEST"))

    assert [counts(r) for r in responses] == [
        (0xFF00, 2, 1, 0, 0),
        (0xFF00, 1, 2, 0, 0),
        (0x0000, None, 3, 0, 0),
    ]
    assert [request.affected_sop_instance_uid for request, _, _ in destination.stored] == [
        "1.2.3.4.5.1",
        "1.2.3.4.5.2",
        "1.2.3.4.5.3",
    ]
    [sub] = b.opened
    stores = sub.requestor.messages(C_STORE_RQ)
    assert [m.message_id for m in stores] == [1, 2, 3]
    assert {(m.move_originator_aet.strip(), m.move_originator_message_id) for m in stores} == {
        ("SCU", 1)
    }
    assert sub.acceptor.connection.request.calling_ae == "SCP"
    assert sub.acceptor.connection.request.called_ae == "DEST"
    # The server releases the sub-association once the sub-operations are done.
    assert isinstance(sub.requestor.sent[-1], A_RELEASE_RQ)
    assert sub.requestor.state is State.Sta1 and sub.acceptor.state is State.Sta1
    assert sub.requestor.connection.error is None
    assert link.requestor.state is State.Sta6  # the C-MOVE's own association goes on


def test_move_to_an_unreachable_destination_fails_every_instance(tmp_path: Path) -> None:
    files = write_instances(tmp_path, 3)
    handlers = MemoryHandlers(files=files, destinations={"DEST": ("nowhere.test", 104)})
    link, b, requestor = move_pair(handlers, None)
    responses = b.collect(requestor.move(query(), Root.STUDY, "DEST"))

    assert [counts(r) for r in responses] == [
        (0xFF00, 2, 0, 1, 0),
        (0xFF00, 1, 0, 2, 0),
        (0xA702, None, 0, 3, 0),
    ]
    final = responses[-1]
    assert final.failed_sop_instances == ("1.2.3.4.5.1", "1.2.3.4.5.2", "1.2.3.4.5.3")
    assert final.comment == "move destination unreachable"
    assert b.opened == []
    assert statuses(link, C_MOVE_RSP) == [0xFF00, 0xFF00, 0xA702]
    assert b.run(requestor.echo()).is_success


def test_move_to_an_unknown_destination_is_a801(tmp_path: Path) -> None:
    handlers = MemoryHandlers(files=write_instances(tmp_path, 2))
    link, b, requestor = move_pair(handlers, None)
    [final] = b.collect(requestor.move(query(), Root.STUDY, "NOWHERE"))
    assert counts(final) == (0xA801, None, 0, 0, 0)
    assert final.comment == "unknown move destination NOWHERE"
    assert statuses(link, C_MOVE_RSP) == [0xA801]


def test_caller_of_a_hook_is_the_requestor() -> None:
    seen: list[Caller] = []

    class Recording(MemoryHandlers):
        def echo(self, caller: Caller) -> int:
            seen.append(caller)
            return 0

    _, b, requestor = find_pair(Recording())
    b.run(requestor.echo())
    assert [(c.calling_ae, c.called_ae, c.address) for c in seen] == [("SCU", "SCP", "scu")]
