"""C-MOVE and C-GET as service provider (PS3.4 C.4.2.3, C.4.3.3), for every driver.

The handler names the files (`Handlers.retrieve`); each becomes a C-STORE
sub-operation: for C-MOVE on new associations to the move destination, for C-GET
on the requestor's own association. After each, a pending response gives the
counts; a C-CANCEL-RQ stops the sub-operations between two of them (PS3.7
9.3.2.3); the final response gives the counts, the Failed SOP Instance UID List
(0008,0058) and, in the Error Comment, the first reason a sub-operation failed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from dimse.effects import Call, Connect, Flow, Poll, Wait
from dimse.engine import Engine
from dimse.file_check import check_file
from dimse.files import NotDicomFile, Part10Info, read_part10_info
from dimse.handlers import HandlerStatus
from dimse.messages import C_GET_RQ, C_GET_RSP, C_MOVE_RQ, C_MOVE_RSP, C_STORE_RSP
from dimse.outgoing import prepare_instance
from dimse.proposals import plan_store
from dimse.reassembly import ReceivedMessage
from dimse.received import fit
from dimse.scu import Requestor
from dimse.scu_store import NoPresentationContext, store_context, store_request
from dimse.status import Category, GetStatus, MoveStatus, StoreStatus, status_category
from dimse.transfer.convert import Unconvertible
from dul.errors import AssociationError

if TYPE_CHECKING:
    from dimse.serve import Session

log = logging.getLogger("dimse.scp")

#: A sub-operation's outcome: its status, why it failed, and that in a few words.
Outcome = tuple[int, str, str]


@dataclass
class _Counts:
    """The sub-operation counts of PS3.4 C.4.2.1.5, and what failed."""

    remaining: int = 0
    completed: int = 0
    failed: int = 0
    warning: int = 0
    failed_uids: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)  # in brief, for the Error Comment


def retrieve(
    session: Session, request: C_MOVE_RQ | C_GET_RQ, received: ReceivedMessage
) -> Flow[None]:
    """Serve one C-MOVE-RQ or C-GET-RQ to its final response."""
    engine = session.engine
    context_id = received.context_id
    move = isinstance(request, C_MOVE_RQ)
    kind = C_MOVE_RSP if move else C_GET_RSP
    codes = MoveStatus if move else GetStatus
    service = "C-MOVE" if move else "C-GET"
    served = engine.served[request.message_id]  # begun by Session.dispatch
    counts = _Counts()

    def respond(status: int, comment: str | None = None, final: bool = False) -> None:
        identifier = None
        if final and counts.failed_uids:
            from pydicom.dataset import Dataset

            identifier = Dataset()
            identifier.FailedSOPInstanceUIDList = counts.failed_uids
        pending = status == codes.PENDING
        session.send(
            context_id,
            kind(
                message_id_being_responded_to=request.message_id,
                status=status,
                affected_sop_class_uid=request.affected_sop_class_uid,
                error_comment=comment,
                number_of_remaining_suboperations=counts.remaining
                if pending or status == codes.CANCEL
                else None,
                number_of_completed_suboperations=counts.completed,
                number_of_failed_suboperations=counts.failed,
                number_of_warning_suboperations=counts.warning,
            ),
            identifier,
        )

    def fail(uid: str, reason: str, brief: str = "") -> None:
        counts.failed += 1
        if uid:
            counts.failed_uids.append(uid)
        counts.reasons.append(brief or reason)
        log.error("%s sub-operation for %r failed: %s", service, uid, reason)

    caller = session.caller
    try:
        identifier = session.identifier(
            received, codes.OUT_OF_RESOURCES_MATCHES, codes.UNABLE_TO_PROCESS
        )
        files = yield Call(session.handlers.retrieve, (caller, request, identifier))
        infos = []
        for path in files:
            try:
                infos.append(check_file(path))
            except NotDicomFile as exc:  # changed or damaged since it was stored
                fail(_meta_uid(path), str(exc), "a stored file cannot be read")
        counts.remaining = len(infos)
        if move:
            assert isinstance(request, C_MOVE_RQ)
            address = yield Call(
                session.handlers.destination, (caller, request.move_destination.strip())
            )
            if address is None:
                raise HandlerStatus(
                    MoveStatus.MOVE_DESTINATION_UNKNOWN,
                    f"unknown move destination {request.move_destination.strip()}",
                )
            sender: _Sender = _MoveSender(session, address, request, infos)
        else:
            sender = _GetSender(session)
        cancelled = False
        try:
            for info in infos:
                # A C-CANCEL-RQ may be waiting on this association while we were busy
                # with the destination's: look (PS3.7 9.3.2.3).
                yield Poll(engine)
                if served.cancelled:
                    cancelled = True
                    break
                status, reason, brief = yield from sender.send(info)
                counts.remaining -= 1
                category = status_category(status)
                if category is Category.SUCCESS:
                    counts.completed += 1
                elif category is Category.WARNING:
                    counts.warning += 1
                else:
                    fail(
                        info.sop_instance_uid,
                        reason or f"the destination answered {status:04X}H",
                        brief,
                    )
                if engine.over:
                    return  # the requestor went: nobody to answer
                if counts.remaining:
                    respond(codes.PENDING)
        finally:
            yield from sender.close()
        if cancelled:
            respond(codes.CANCEL, final=True)
            return
    except HandlerStatus as exc:
        log.info("%s from %r: %04X %s", service, caller.calling_ae, exc.status, exc.comment or "")
        respond(exc.status, exc.comment, final=True)
        return
    except AssociationError:
        raise
    except Exception as exc:
        log.error("retrieve failed", exc_info=exc)
        respond(codes.OUT_OF_RESOURCES_SUB_OPERATIONS, str(exc)[:64], final=True)
        return
    if counts.failed and not counts.completed and not counts.warning:
        final_status: int = codes.OUT_OF_RESOURCES_SUB_OPERATIONS
    elif counts.failed or counts.warning:
        final_status = codes.SUB_OPERATIONS_FAILURES_OR_WARNINGS
    else:
        final_status = codes.SUCCESS
    log.info(
        "%s from %r: %d completed, %d failed, %d warning",
        service,
        caller.calling_ae,
        counts.completed,
        counts.failed,
        counts.warning,
    )
    # The first reason travels in the Error Comment, so that the requestor can say
    # why without reading our log (PS3.7 C.4).
    respond(final_status, fit(counts.reasons[0]) if counts.reasons else None, final=True)


class _Sender:
    """Sends one instance per `send` (a flow giving its `Outcome`)."""

    def send(self, info: Part10Info) -> Flow[Outcome]:  # pragma: no cover - interface
        raise NotImplementedError

    def close(self) -> Flow[None]:
        return
        yield


class _MoveSender(_Sender):
    """C-STORE sub-operations on new associations to the move destination: one, or
    several in turn when the instances need more than 128 presentation contexts
    (`dimse.proposals.plan_store`)."""

    def __init__(
        self,
        session: Session,
        address: tuple[str, int],
        request: C_MOVE_RQ,
        infos: list[Part10Info],
    ) -> None:
        self.session = session
        self.address = address
        self.request = request
        self.engine: Engine | None = None
        self.unreachable = ""
        settings = session.settings
        # Each file's group; its association is opened when its first file comes.
        self.groups = plan_store(infos, settings.decompress)
        self.group_of = {id(info): n for n, group in enumerate(self.groups) for info in group.infos}
        self.current = -1

    def _open(self, group: int) -> Flow[None]:
        yield from self.close()
        self.current = group
        settings = self.session.settings
        try:
            self.engine = yield Connect(
                self.address[0],
                self.address[1],
                {
                    "calling_ae": settings.ae_title,
                    "called_ae": self.request.move_destination.strip(),
                    "contexts": self.groups[group].contexts,
                    "timeouts": settings.timeouts,
                    "decompress": settings.decompress,
                    "spool_dir": settings.spool_dir,
                },
            )
        except (AssociationError, OSError) as exc:
            # Every instance is then a failed sub-operation, so that the final response
            # carries the failed count and the Failed SOP Instance UID List (PS3.4
            # C.4.2.3.1; ROBUSTNESS 34).
            log.warning("move destination %s unreachable: %s", self.request.move_destination, exc)
            self.unreachable = f"move destination unreachable: {exc}"

    def send(self, info: Part10Info) -> Flow[Outcome]:
        group = self.group_of.get(id(info), self.current)
        if group != self.current:
            yield from self._open(group)
        if self.engine is None:
            why = self.unreachable or "no association"
            return MoveStatus.OUT_OF_RESOURCES_SUB_OPERATIONS, why, "move destination unreachable"
        requestor = Requestor(self.engine, self.session.settings.decompress)
        originator = (self.session.caller.calling_ae, self.request.message_id)
        try:
            result = yield from requestor.store(info, move_originator=originator)
        except NoPresentationContext as exc:
            brief = getattr(exc.__cause__, "brief", "") or "no presentation context for it"
            return MoveStatus.SOP_CLASS_NOT_SUPPORTED, str(exc), brief
        except AssociationError as exc:
            log.warning("move sub-operation failed: %s", exc)
            yield from self.close()
            self.unreachable = f"the association to the destination ended: {exc}"
            return (
                MoveStatus.OUT_OF_RESOURCES_SUB_OPERATIONS,
                self.unreachable,
                "the destination aborted",
            )
        status = result.status
        if status.is_success:
            return status.code, "", ""
        return (
            status.code,
            f"the destination answered {status}",
            f"the destination answered {status.code:04X}H",
        )

    def close(self) -> Flow[None]:
        engine, self.engine = self.engine, None
        if engine is not None:
            requestor = Requestor(engine, self.session.settings.decompress)
            try:
                yield from requestor.release() if not engine.over else requestor.abort()
            except AssociationError:
                pass


class _GetSender(_Sender):
    """C-STORE sub-operations on the C-GET's own association (we are SCU of storage)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def send(self, info: Part10Info) -> Flow[Outcome]:
        engine = self.session.engine
        settings = self.session.settings
        try:
            context = store_context(
                engine,
                info.sop_class_uid,
                info.transfer_syntax,
                info.encoding,
                settings.decompress,
                scp=True,
            )
        except Unconvertible as exc:
            return GetStatus.SOP_CLASS_NOT_SUPPORTED, str(exc), exc.brief
        if context is None:
            return (
                GetStatus.SOP_CLASS_NOT_SUPPORTED,
                f"the requestor accepted no context with the SCP role for SOP class {info.sop_class_uid}",
                "no context with the SCP role for its SOP class",
            )
        message_id = engine.next_message_id()
        request = store_request(message_id, info.sop_class_uid, info.sop_instance_uid, 0)
        try:
            outgoing = prepare_instance(
                context, request, info, engine.max_pdu, spool_dir=settings.spool_dir
            )
        except Unconvertible as exc:
            return StoreStatus.PROCESSING_FAILURE, str(exc), exc.brief
        operation = engine.request(C_STORE_RSP, message_id, outgoing)
        yield Wait(engine, lambda: operation.ready)
        got = operation.take()
        if got is None:  # the association ended first
            raise engine.error
        response = got[0]
        status = response.status
        if status_category(status) in (Category.SUCCESS, Category.WARNING):
            return status, "", ""
        said = f": {response.error_comment}" if response.error_comment else ""
        text = f"the requestor answered {status:04X}H{said}"
        return status, text, text


def _meta_uid(path: Path) -> str:
    """The SOP Instance UID a file's meta group gives, for the failed list ('' if none)."""
    try:
        return read_part10_info(path).sop_instance_uid
    except NotDicomFile:
        return ""
