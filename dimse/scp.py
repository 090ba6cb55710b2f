"""The service provider (SCP) side, with hooks for the work itself.

A `Provider` accepts associations (through `dul.server.Server`), reads each
request and answers it by calling the methods of a `Handlers` object, which is the
hook API: subclass `Handlers` and override what your server does.

    class MyHandlers(Handlers):
        def store(self, request, data, transfer_syntax):    # -> status
            ...
    with Provider(MyHandlers(), ae_title="MYSCP", port=11112) as provider:
        provider.wait()

The provider does the protocol: status responses, C-CANCEL between pending
responses (PS3.7 9.3.2.3), the C-MOVE and C-GET sub-operations and their counts
(PS3.4 C.4.2.3, C.4.3.3), and 0211H for a request it does not know.
"""

from __future__ import annotations

import logging
import ssl
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

from pydicom.dataset import Dataset

from dimse import client
from dimse.channel import MessageChannel
from dimse.commands import Command, encode_command
from dimse.datasets import UNCOMPRESSED, decode_dataset, encode_dataset
from dimse.errors import DimseError
from dimse.file_check import check_file
from dimse.files import NotDicomFile, Part10Info, read_part10_info
from dimse.fragments import DEFAULT_MAX_IDENTIFIER, ReceivedMessage, fragment_message
from dimse.messages import (
    C_CANCEL_RQ,
    C_ECHO_RQ,
    C_ECHO_RSP,
    C_FIND_RQ,
    C_FIND_RSP,
    C_GET_RQ,
    C_GET_RSP,
    C_MOVE_RQ,
    C_MOVE_RSP,
    C_STORE_RQ,
    C_STORE_RSP,
    DimseMessage,
    Request,
)
from dimse.models import MODELS, VERIFICATION
from dimse.proposals import plan_store
from dimse.received import fit
from dimse.storage_classes import STORAGE_SOP_CLASSES
from dimse.transfer.convert import Decompress, Unconvertible
from dimse.transfer.syntaxes import KNOWN
from dul.errors import AssociationError, AssociationReleased
from dul.negotiation import AcceptorPolicy, IdentityCheck, RequestorsChoice, negotiate
from dul.pdu import A_ASSOCIATE_AC, A_ASSOCIATE_RJ, A_ASSOCIATE_RQ
from dul.server import Server
from dul.transport import Channel, Timeouts

log = logging.getLogger("dimse.scp")

#: C-FIND pending responses between two looks for a C-CANCEL (each look is a read).
CANCEL_POLL = 8
#: The largest P-DATA-TF a provider accepts unless told otherwise (PS3.8 D.1).
DEFAULT_MAX_PDU = 1 << 20

SUCCESS = 0x0000
PENDING = 0xFF00
CANCEL = 0xFE00
SUB_OPERATIONS_FAILED = 0xB000
UNABLE_TO_PERFORM_SUB_OPERATIONS = 0xA702
MOVE_DESTINATION_UNKNOWN = 0xA801
OUT_OF_RESOURCES = 0xA700
OUT_OF_RESOURCES_MATCHES = 0xA701
CANNOT_UNDERSTAND = 0xC000
UNRECOGNIZED_OPERATION = 0x0211
SOP_CLASS_NOT_SUPPORTED = 0x0122
PROCESSING_FAILURE = 0x0110
FAILED_SOP_INSTANCE_UID_LIST = 0x00080058

#: For storage, the requestor's first offered syntax that we can check and keep as
#: received (`dimse.transfer.syntaxes.KNOWN`): the instance is then stored as it is.
ANY_TRANSFER_SYNTAX = RequestorsChoice(frozenset(KNOWN))


@dataclass(frozen=True)
class Caller:
    """Who is asking: for handlers that log, or allow by AE title."""

    calling_ae: str
    called_ae: str
    address: str


class StoreSink:
    """Where a handler writes a C-STORE data set as it arrives (a file-like object
    with write/flush/close) and how it finishes: `commit() -> status`."""

    def write(self, data: ReadableBuffer) -> int:  # pragma: no cover - interface
        raise NotImplementedError

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def commit(self) -> int:  # pragma: no cover - interface
        """The C-STORE status; raise `HandlerStatus(status, comment)` to give the
        reason too (sent as the Error Comment, 64 characters at most)."""
        raise NotImplementedError


class Handlers:
    """The hook API. Every method has a safe default; override what you serve."""

    #: SOP classes and transfer syntaxes accepted (None: built from the flags below).
    def contexts(self) -> Mapping[str, Sequence[str] | RequestorsChoice]:
        supported: dict[str, Sequence[str] | RequestorsChoice] = {VERIFICATION: UNCOMPRESSED}
        if self.serves_storage:
            supported.update({uid: ANY_TRANSFER_SYNTAX for uid in STORAGE_SOP_CLASSES})
        if self.serves_query:
            for uids in MODELS.values():
                for uid in (uids.find, uids.move, uids.get):
                    if uid is not None:
                        supported[uid] = UNCOMPRESSED
        return supported

    serves_storage = False
    serves_query = False

    def accept(
        self, request: A_ASSOCIATE_RQ, policy: AcceptorPolicy
    ) -> A_ASSOCIATE_AC | A_ASSOCIATE_RJ:
        """Decide an association; by default the policy's negotiation."""
        return negotiate(request, policy)

    def echo(self, caller: Caller) -> int:
        return SUCCESS

    def open_store(
        self, caller: Caller, request: C_STORE_RQ, transfer_syntax: str
    ) -> StoreSink | None:
        """Return a sink to receive the data set as it arrives (streaming to disk), or
        None to get it whole in `store`."""
        return None

    def store(
        self, caller: Caller, request: C_STORE_RQ, data: bytes | BinaryIO, transfer_syntax: str
    ) -> int:
        return SOP_CLASS_NOT_SUPPORTED

    def find(self, caller: Caller, request: C_FIND_RQ, identifier: Dataset) -> Iterator[Dataset]:
        """Yield the matches. Raise `HandlerStatus` to answer with a failure."""
        raise HandlerStatus(SOP_CLASS_NOT_SUPPORTED)

    def retrieve(
        self, caller: Caller, request: C_MOVE_RQ | C_GET_RQ, identifier: Dataset
    ) -> list[Path]:
        """The files a C-MOVE or C-GET sends."""
        raise HandlerStatus(SOP_CLASS_NOT_SUPPORTED)

    def destination(self, caller: Caller, ae_title: str) -> tuple[str, int] | None:
        """Host and port of a C-MOVE destination, from configuration only."""
        return None

    def store_failed(self, caller: Caller, request: C_STORE_RQ, why: str) -> None:
        """Told when a C-STORE's data set could not be kept here (a full disk): the
        provider answers A700H; a handler may want to report it too."""


class HandlerStatus(Exception):
    """Raised by a handler to answer with `status` (and an error comment)."""

    def __init__(self, status: int, comment: str | None = None) -> None:
        super().__init__(comment or f"status {status:04X}H")
        self.status = status
        self.comment = comment


class _Session:
    """One association being served."""

    def __init__(self, provider: Provider, channel: Channel) -> None:
        self.provider = provider
        self.handlers = provider.handlers
        request = channel.request
        self.caller = Caller(request.calling_ae, request.called_ae, channel.peer)
        self.messages = MessageChannel(
            channel,
            data_sink=self._open_sink,
            max_identifier=provider.max_identifier,
            spool_dir=provider.spool_dir,
        )
        self._sinks: dict[int, StoreSink] = {}
        # The C-STORE-RQ decoded to open its sink, kept for `_dispatch` (decoded once)
        self._decoded: tuple[Command, DimseMessage] | None = None

    def _syntax(self, context_id: int) -> str:
        return self.messages.contexts[context_id].transfer_syntax or ""

    def _open_sink(self, context_id: int, command: Command) -> BinaryIO | None:
        if command.command_field != 0x0001:  # only C-STORE data sets are streamed
            return None
        try:
            request = self.messages.message_of(ReceivedMessage(context_id, command))
        except DimseError:
            return None
        if not isinstance(request, C_STORE_RQ):
            return None
        self._decoded = (command, request)
        sink = self.handlers.open_store(self.caller, request, self._syntax(context_id))
        return sink  # type: ignore[return-value]

    def run(self) -> None:
        timeouts = self.provider.timeouts
        # AE titles and UIDs are the peer's text: logged escaped (%r), so that control
        # bytes cannot forge log lines (ROBUSTNESS 15; the called AE title is not checked).
        log.info(
            "association from %s (%r -> %r)",
            self.caller.address,
            self.caller.calling_ae,
            self.caller.called_ae,
        )
        try:
            # The first message within the shorter `silent` timeout: an association
            # that says nothing holds a place in the limits (ROBUSTNESS 48).
            first = [t for t in (timeouts.idle, timeouts.silent) if t is not None]
            received = self.messages.receive(min(first) if first else None)
            while True:
                self._dispatch(received)
                received = self.messages.receive(timeouts.idle)
        except AssociationReleased:
            log.info("association from %s released", self.caller.address)
        except AssociationError as exc:
            log.info("association from %s ended: %s", self.caller.address, exc)
        finally:
            self.messages.close()

    def _send(self, context_id: int, message: DimseMessage, data: Dataset | None = None) -> None:
        encoded = None if data is None else encode_dataset(data, self._syntax(context_id))
        self.messages.send(context_id, message, encoded)

    def _dispatch(self, received: ReceivedMessage) -> None:
        decoded, self._decoded = self._decoded, None
        try:
            if decoded is not None and decoded[0] is received.command:
                message = decoded[1]
            else:
                message = self.messages.message_of(received)
        except DimseError as exc:
            if exc.status is not None and exc.message_id is not None:
                field = received.command.command_field or 0
                self._answer_unknown(
                    received.context_id, field, exc.message_id, exc.status, str(exc)
                )
                return
            raise
        if isinstance(message, C_ECHO_RQ):
            status = self._call(lambda: self.handlers.echo(self.caller))
            log.info("C-ECHO from %r: %04X", self.caller.calling_ae, status)
            self._send(
                received.context_id,
                C_ECHO_RSP(message_id_being_responded_to=message.message_id, status=status),
            )
        elif isinstance(message, C_STORE_RQ):
            self._store(received, message)
        elif isinstance(message, C_FIND_RQ):
            self._find(received, message)
        elif isinstance(message, (C_MOVE_RQ, C_GET_RQ)):
            self._retrieve(received, message)
        elif isinstance(message, C_CANCEL_RQ):
            log.debug(
                "C-CANCEL for message %d, which is not in progress",
                message.message_id_being_responded_to,
            )
        elif isinstance(message, Request):
            self._answer_unknown(
                received.context_id,
                message.COMMAND_FIELD,
                message.message_id,
                UNRECOGNIZED_OPERATION,
                None,
            )
        else:
            log.warning(
                "%s sent %s, which a provider does not expect", self.caller.address, message.NAME
            )

    def _answer_unknown(
        self, context_id: int, field: int, message_id: int, status: int, comment: str | None
    ) -> None:
        # The response of an unknown request: its command field with bit 15 set.
        command = encode_command(
            {
                "CommandField": (field | 0x8000) & 0xFFFF,
                "MessageIDBeingRespondedTo": message_id,
                "CommandDataSetType": 0x0101,
                "Status": status,
                "ErrorComment": comment[:64] if comment else None,
            }
        )
        for pdu in fragment_message(context_id, command, None, self.messages.max_pdu):
            self.messages.channel.send_pdata(pdu)

    @staticmethod
    def _call(action: Callable[[], int]) -> int:
        return _Session._call_with_comment(action)[0]

    @staticmethod
    def _call_with_comment(action: Callable[[], int]) -> tuple[int, str | None]:
        """The status a hook gives (a return, or a `HandlerStatus` with its comment)."""
        try:
            return action(), None
        except HandlerStatus as exc:
            return exc.status, exc.comment
        except Exception:
            log.exception("handler failed")
            return PROCESSING_FAILURE, None

    # -- C-STORE ----------------------------------------------------------------------

    def _store(self, received: ReceivedMessage, request: C_STORE_RQ) -> None:
        data = received.data_set
        # A data set streamed into a handler's sink comes back as that sink.
        handed_back: object = data
        comment: str | None = None
        if received.error is not None:
            why = f"could not be written: {received.error.strerror or received.error}"
            log.error("storing %s failed: %s", request.affected_sop_instance_uid, why)
            self.handlers.store_failed(self.caller, request, why)
            status, comment = OUT_OF_RESOURCES, why
        elif isinstance(handed_back, StoreSink):
            status, comment = self._call_with_comment(handed_back.commit)
        elif data is None:
            status, comment = CANNOT_UNDERSTAND, "the C-STORE-RQ came without a data set"
        else:
            payload = data
            status, comment = self._call_with_comment(
                lambda: self.handlers.store(
                    self.caller, request, payload, self._syntax(received.context_id)
                )
            )
        log.info(
            "C-STORE %r from %r: %04X%s",
            request.affected_sop_instance_uid,
            self.caller.calling_ae,
            status,
            f" ({comment})" if comment else "",
        )
        self._send(
            received.context_id,
            C_STORE_RSP(
                message_id_being_responded_to=request.message_id,
                status=status,
                affected_sop_class_uid=request.affected_sop_class_uid,
                affected_sop_instance_uid=request.affected_sop_instance_uid,
                error_comment=fit(comment) if comment and status != SUCCESS else None,
            ),
        )

    # -- C-FIND -----------------------------------------------------------------------

    def _identifier(
        self, received: ReceivedMessage, too_long_status: int = OUT_OF_RESOURCES
    ) -> Dataset:
        if received.too_long:  # ROBUSTNESS 49: read and dropped past the limit
            limit = self.provider.max_identifier
            raise HandlerStatus(too_long_status, fit(f"identifier over the {limit} bytes allowed"))
        if received.error is not None:  # it could not be kept (ROBUSTNESS 49)
            why = received.error.strerror or str(received.error)
            raise HandlerStatus(OUT_OF_RESOURCES, fit(f"the identifier could not be kept: {why}"))
        data = received.data_set
        if data is None:
            raise HandlerStatus(CANNOT_UNDERSTAND, "the request has no identifier")
        if not isinstance(data, bytes):
            data = data.read()
        try:
            return decode_dataset(data, self._syntax(received.context_id))
        except DimseError as exc:
            raise HandlerStatus(CANNOT_UNDERSTAND, str(exc)[:64]) from exc

    def _cancelled(self, message_id: int) -> bool:
        """Whether a C-CANCEL for `message_id` has arrived (never waits)."""
        while True:
            received = self.messages.poll()  # a PDV that breaks PS3.8 aborts (ROBUSTNESS 21)
            if not received:
                return False
            for message in received:
                try:
                    parsed = self.messages.message_of(message)
                except DimseError:
                    continue
                if (
                    isinstance(parsed, C_CANCEL_RQ)
                    and parsed.message_id_being_responded_to == message_id
                ):
                    return True
                log.warning(
                    "%s sent %s during an operation; ignored", self.caller.address, parsed.NAME
                )

    def _find(self, received: ReceivedMessage, request: C_FIND_RQ) -> None:
        context_id = received.context_id

        def respond(
            status: int, identifier: Dataset | None = None, comment: str | None = None
        ) -> None:
            self._send(
                context_id,
                C_FIND_RSP(
                    message_id_being_responded_to=request.message_id,
                    status=status,
                    affected_sop_class_uid=request.affected_sop_class_uid,
                    error_comment=comment,
                ),
                identifier,
            )

        # Pending responses differ only in their identifiers: one command set for all.
        # Each goes as soon as its match is there (a hook may be slow to yield the
        # next); a C-CANCEL is looked for before the first and then every CANCEL_POLL
        # responses (PS3.7 C.4.1.3: it takes effect between responses).
        pending = C_FIND_RSP(
            message_id_being_responded_to=request.message_id,
            status=PENDING,
            affected_sop_class_uid=request.affected_sop_class_uid,
        ).with_data_set(True)
        command = pending.encode()
        syntax = self._syntax(context_id)
        count = 0
        try:
            identifier = self._identifier(received)
            matches = self.handlers.find(self.caller, request, identifier)
            try:
                for match in matches:
                    if count % CANCEL_POLL == 0 and self._cancelled(request.message_id):
                        respond(CANCEL)
                        return
                    self.messages.send_encoded(context_id, command, encode_dataset(match, syntax))
                    count += 1
            finally:
                close = getattr(matches, "close", None)
                if close is not None:
                    close()  # a cancelled hook's cleanup runs now, not when collected
        except HandlerStatus as exc:
            log.info(
                "C-FIND from %r: %04X %s", self.caller.calling_ae, exc.status, exc.comment or ""
            )
            respond(exc.status, comment=exc.comment)
            return
        except AssociationError:
            raise  # aborted or released while we polled for a C-CANCEL: nothing to answer
        except Exception as exc:
            log.exception("C-FIND handler failed")
            respond(0xC001, comment=str(exc)[:64])
            return
        log.info("C-FIND from %r: %d matches", self.caller.calling_ae, count)
        respond(SUCCESS)

    # -- C-MOVE and C-GET ---------------------------------------------------------------

    def _retrieve(self, received: ReceivedMessage, request: C_MOVE_RQ | C_GET_RQ) -> None:
        context_id = received.context_id
        kind = C_MOVE_RSP if isinstance(request, C_MOVE_RQ) else C_GET_RSP
        counts = {"remaining": 0, "completed": 0, "failed": 0, "warning": 0}
        failed: list[str] = []
        reasons: list[str] = []  # why sub-operations failed, in brief for the Error Comment

        def respond(status: int, comment: str | None = None, final: bool = False) -> None:
            identifier = None
            if final and failed:
                identifier = Dataset()
                identifier.FailedSOPInstanceUIDList = failed
            pending = status == PENDING
            self._send(
                context_id,
                kind(
                    message_id_being_responded_to=request.message_id,
                    status=status,
                    affected_sop_class_uid=request.affected_sop_class_uid,
                    error_comment=comment,
                    number_of_remaining_suboperations=counts["remaining"]
                    if pending or status == CANCEL
                    else None,
                    number_of_completed_suboperations=counts["completed"],
                    number_of_failed_suboperations=counts["failed"],
                    number_of_warning_suboperations=counts["warning"],
                ),
                identifier,
            )

        def fail(uid: str, reason: str, brief: str = "") -> None:
            counts["failed"] += 1
            if uid:
                failed.append(uid)
            reasons.append(brief or reason)
            log.error("%s sub-operation for %r failed: %s", service, uid, reason)

        service = "C-MOVE" if kind is C_MOVE_RSP else "C-GET"
        try:
            identifier = self._identifier(received, OUT_OF_RESOURCES_MATCHES)
            files = self.handlers.retrieve(self.caller, request, identifier)
            infos = []
            for path in files:
                try:
                    infos.append(check_file(path))
                except NotDicomFile as exc:  # changed or damaged since it was stored
                    fail(_meta_uid(path), str(exc), "a stored file cannot be read")
            counts["remaining"] = len(infos)
            if isinstance(request, C_MOVE_RQ):
                sender = self._move_sender(request)
            else:
                sender = self._get_sender()
            cancelled = False
            with sender(infos) as send:
                for info in infos:
                    if self._cancelled(request.message_id):
                        cancelled = True
                        break
                    status, reason, brief = send(info)
                    counts["remaining"] -= 1
                    if status == SUCCESS:
                        counts["completed"] += 1
                    elif 0xB000 <= status <= 0xBFFF or status in (0x0001, 0x0107, 0x0116):
                        counts["warning"] += 1
                    else:
                        fail(
                            info.sop_instance_uid,
                            reason or f"the destination answered {status:04X}H",
                            brief,
                        )
                    if counts["remaining"]:
                        respond(PENDING)
            if cancelled:
                respond(CANCEL, final=True)
                return
        except HandlerStatus as exc:
            log.info(
                "%s from %r: %04X %s",
                service,
                self.caller.calling_ae,
                exc.status,
                exc.comment or "",
            )
            respond(exc.status, exc.comment, final=True)
            return
        except AssociationError:
            raise
        except Exception as exc:
            log.exception("retrieve failed")
            respond(UNABLE_TO_PERFORM_SUB_OPERATIONS, str(exc)[:64], final=True)
            return
        if counts["failed"] and not counts["completed"] and not counts["warning"]:
            final_status = UNABLE_TO_PERFORM_SUB_OPERATIONS
        elif counts["failed"] or counts["warning"]:
            final_status = SUB_OPERATIONS_FAILED
        else:
            final_status = SUCCESS
        log.info(
            "%s from %r: %d completed, %d failed, %d warning",
            service,
            self.caller.calling_ae,
            counts["completed"],
            counts["failed"],
            counts["warning"],
        )
        # The first reason travels in the Error Comment, so that the requestor can say
        # why without reading our log (PS3.7 C.4).
        respond(final_status, fit(reasons[0]) if reasons else None, final=True)

    def _move_sender(self, request: C_MOVE_RQ) -> Callable[[list[Part10Info]], _SubOperations]:
        address = self.handlers.destination(self.caller, request.move_destination.strip())
        if address is None:
            raise HandlerStatus(
                MOVE_DESTINATION_UNKNOWN,
                f"unknown move destination {request.move_destination.strip()}",
            )
        provider = self.provider

        def open_sender(infos: list[Part10Info]) -> _SubOperations:
            return _MoveSubOperations(provider, address, request, self.caller, infos)

        return open_sender

    def _get_sender(self) -> Callable[[list[Part10Info]], _SubOperations]:
        def open_sender(infos: list[Part10Info]) -> _SubOperations:
            return _GetSubOperations(self)

        return open_sender


#: A sub-operation's outcome: its status, why it failed, and that in a few words.
Outcome = tuple[int, str, str]


class _SubOperations:
    """A context manager that sends one instance per call and gives its `Outcome`."""

    def __enter__(self) -> Callable[[Part10Info], Outcome]:
        return self.send

    def __exit__(self, *exc: object) -> None:
        pass

    def send(self, info: Part10Info) -> Outcome:  # pragma: no cover - interface
        raise NotImplementedError


class _MoveSubOperations(_SubOperations):
    """C-STORE sub-operations on new associations to the move destination: one, or
    several in turn when the instances need more than 128 presentation contexts
    (`dimse.proposals.plan_store`)."""

    def __init__(
        self,
        provider: Provider,
        address: tuple[str, int],
        request: C_MOVE_RQ,
        caller: Caller,
        infos: list[Part10Info],
    ) -> None:
        self.provider = provider
        self.address = address
        self.request = request
        self.caller = caller
        self.association: client.Association | None = None
        self.unreachable = ""
        # Each file's group; its association is opened when its first file comes.
        self.groups = plan_store(infos, provider.decompress)
        self.group_of = {id(info): n for n, group in enumerate(self.groups) for info in group.infos}
        self.current = -1

    def _open(self, group: int) -> None:
        self._close()
        self.current = group
        try:
            self.association = client.connect(
                self.address[0],
                self.address[1],
                calling_ae=self.provider.ae_title,
                called_ae=self.request.move_destination.strip(),
                contexts=self.groups[group].contexts,
                timeouts=self.provider.timeouts,
                decompress=self.provider.decompress,
            )
            self.association.messages.spool_dir = self.provider.spool_dir
        except (AssociationError, OSError) as exc:
            # Every instance is then a failed sub-operation, so that the final response
            # carries the failed count and the Failed SOP Instance UID List (PS3.4
            # C.4.2.3.1; ROBUSTNESS 34).
            log.warning("move destination %s unreachable: %s", self.request.move_destination, exc)
            self.unreachable = f"move destination unreachable: {exc}"

    def send(self, info: Part10Info) -> Outcome:
        group = self.group_of.get(id(info), self.current)
        if group != self.current:
            self._open(group)
        if self.association is None:
            why = self.unreachable or "no association"
            return UNABLE_TO_PERFORM_SUB_OPERATIONS, why, "move destination unreachable"
        try:
            result = self.association.store(
                info, move_originator=(self.caller.calling_ae, self.request.message_id)
            )
        except client.NoPresentationContext as exc:
            brief = getattr(exc.__cause__, "brief", "") or "no presentation context for it"
            return SOP_CLASS_NOT_SUPPORTED, str(exc), brief
        except AssociationError as exc:
            log.warning("move sub-operation failed: %s", exc)
            self.association = None
            self.unreachable = f"the association to the destination ended: {exc}"
            return UNABLE_TO_PERFORM_SUB_OPERATIONS, self.unreachable, "the destination aborted"
        status = result.status
        if status.is_success:
            return status.code, "", ""
        return (
            status.code,
            f"the destination answered {status}",
            f"the destination answered {status.code:04X}H",
        )

    def _close(self) -> None:
        if self.association is not None:
            try:
                self.association.release()
            except AssociationError:
                pass
            self.association = None

    def __exit__(self, *exc: object) -> None:
        self._close()


class _GetSubOperations(_SubOperations):
    """C-STORE sub-operations on the C-GET's own association (we are SCU of storage)."""

    def __init__(self, session: _Session) -> None:
        self.session = session

    def send(self, info: Part10Info) -> Outcome:
        messages = self.session.messages
        provider = self.session.provider
        try:
            context = messages.store_context(
                info.sop_class_uid,
                info.transfer_syntax,
                info.encoding,
                provider.decompress,
                scp=True,
            )
        except Unconvertible as exc:
            return SOP_CLASS_NOT_SUPPORTED, str(exc), exc.brief
        if context is None:
            return (
                SOP_CLASS_NOT_SUPPORTED,
                f"the requestor accepted no context with the SCP role for SOP class {info.sop_class_uid}",
                "no context with the SCP role for its SOP class",
            )
        message_id = messages.next_message_id()
        request = C_STORE_RQ(
            message_id=message_id,
            affected_sop_class_uid=info.sop_class_uid,
            affected_sop_instance_uid=info.sop_instance_uid,
        )
        messages.spool_dir = provider.spool_dir
        try:
            messages.send_instance(context, request, info)
        except Unconvertible as exc:
            return PROCESSING_FAILURE, str(exc), exc.brief
        while True:
            received = messages.receive(provider.timeouts.dimse)
            try:
                message = messages.message_of(received)
            except DimseError:
                continue
            if (
                isinstance(message, C_STORE_RSP)
                and message.message_id_being_responded_to == message_id
            ):
                status = message.status
                if status in (SUCCESS, 0x0001, 0x0107, 0x0116) or 0xB000 <= status <= 0xBFFF:
                    return status, "", ""
                said = f": {message.error_comment}" if message.error_comment else ""
                return (
                    status,
                    f"the requestor answered {status:04X}H{said}",
                    f"the requestor answered {status:04X}H{said}",
                )
            if isinstance(message, C_CANCEL_RQ):
                messages.push_back(received)  # the retrieve loop sees it at its next check
                continue
            log.warning("ignoring %s during a C-GET sub-operation", message.NAME)


def _meta_uid(path: Path) -> str:
    """The SOP Instance UID a file's meta group gives, for the failed list ('' if none)."""
    try:
        return read_part10_info(path).sop_instance_uid
    except NotDicomFile:
        return ""


class Provider:
    """A DICOM server: a `Server` whose associations the `handlers` serve."""

    def __init__(
        self,
        handlers: Handlers,
        *,
        ae_title: str = "DICOMSCP",
        host: str = "0.0.0.0",
        port: int = 11112,
        timeouts: Timeouts = Timeouts(),
        max_associations: int = 64,
        max_pending: int = 256,
        max_per_caller: int | None = None,
        max_pdu: int = DEFAULT_MAX_PDU,
        check_called_ae: bool = False,
        calling_ae_allowed: Callable[[str], bool] | None = None,
        ssl_context: ssl.SSLContext | None = None,
        identity_check: IdentityCheck | None = None,
        allow_password_without_tls: bool = False,
        async_window: tuple[int, int] | None = (1, 32),
        decompress: Decompress = Decompress.LOSSLESS,
        spool_dir: Path | None = None,
        max_identifier: int = DEFAULT_MAX_IDENTIFIER,
    ) -> None:
        """`max_associations`, `max_pending` (connections that have not sent their
        A-ASSOCIATE-RQ yet) and `max_per_caller` (associations of one calling AE title):
        the limits of `dul.server.Server`.
        `max_pdu`: the largest P-DATA-TF we receive (PS3.8 D.1); 1 MiB by default,
        so that a 2 MiB instance arrives in 3 PDUs rather than 128 (the receive buffer
        of each association is bounded by it).
        `ssl_context`: TLS on every connection (`dul.tls.server_context`).
        `identity_check`: the user identity hook (`dimse.identity.IdentityHook`); a
        username and passcode without TLS is refused unless `allow_password_without_tls`.
        `decompress`: which compressed instances C-MOVE and C-GET may decompress for a
        peer that takes only uncompressed ones; `spool_dir`: where a data set too large
        for memory is spooled, received or converted (None: the system's temporary
        folder; dicomscp gives its archive's). `max_identifier`: the longest request
        identifier kept; a longer one is read, dropped and refused (A700H, A701H)."""
        self.handlers = handlers
        self.decompress = decompress
        self.spool_dir = spool_dir
        self.max_identifier = max_identifier
        self.ae_title = ae_title
        self.timeouts = timeouts
        self.policy = AcceptorPolicy(
            ae_title=ae_title,
            contexts=handlers.contexts(),
            check_called_ae=check_called_ae,
            calling_ae_allowed=calling_ae_allowed,
            max_pdata_length=max_pdu,
            identity_check=identity_check,
            tls=ssl_context is not None,
            allow_password_without_tls=allow_password_without_tls,
            # We invoke one operation at a time (C-GET sub-operations) and read
            # requests as they come, answering them in order: a requestor may keep
            # up to 32 outstanding (PS3.7 D.3.3.3).
            async_window=async_window,
        )
        self.server = Server(
            host,
            port,
            lambda request: handlers.accept(request, self.policy),
            self._serve,
            max_associations=max_associations,
            max_pending=max_pending,
            max_per_caller=max_per_caller,
            timeouts=timeouts,
            ssl_context=ssl_context,
            max_pdata_length=max_pdu,
        )
        self._stopped = threading.Event()

    @property
    def port(self) -> int:
        return self.server.port

    def _serve(self, channel: Channel) -> None:
        _Session(self, channel).run()

    def start(self) -> Provider:
        self.server.start()
        return self

    def serve_forever(self) -> None:
        self.server.serve_forever()

    def stop(self, timeout: float | None = 10.0) -> None:
        self.server.shutdown(timeout)
        self._stopped.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the provider is stopped (True), or `timeout` passes (False). A
        Ctrl-C while waiting stops it (the associations in progress get 10 s), rather
        than ending the program in a KeyboardInterrupt traceback."""
        try:
            return self._stopped.wait(timeout)
        except KeyboardInterrupt:
            log.info("interrupted: stopping")
            self.stop()
            return True

    def __enter__(self) -> Provider:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
