"""The service user (SCU) side: C-ECHO, C-STORE, C-FIND, C-MOVE, C-GET, C-CANCEL.

    from dimse import client
    from dimse.models import Root
    with client.connect("pacs", 104, called_ae="PACS",
                        contexts=client.query_contexts(Root.STUDY, "find")) as assoc:
        for response in assoc.find(query, Root.STUDY):
            print(response.status, response.identifier)

A failure status is a result, not an exception: read `result.status.category`.
Exceptions are for the association itself (`dul.errors.AssociationError` and its
kinds) and for asking what the association cannot carry (`NoPresentationContext`).

pydicom is imported where a data set is handled, not at import: storing files as they
are (`dicomscu --store`) and C-ECHO never need it.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from dimse.channel import MessageChannel, PreparedMessage
from dimse.commands import DATA_SET_PRESENT, Command
from dimse.datasets import (
    EXPLICIT_VR_BIG_ENDIAN,
    EXPLICIT_VR_LITTLE_ENDIAN,
    UNCOMPRESSED,
    decode_dataset,
    encode_dataset,
)
from dimse.errors import DimseError
from dimse.file_check import check_file
from dimse.files import Part10Info
from dimse.fragments import DEFAULT_MAX_IDENTIFIER, ReceivedMessage
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
    CommandField,
    Priority,
    Response,
)
from dimse.models import MODELS, VERIFICATION, Root
from dimse.proposals import MAX_CONTEXTS, get_storage_contexts
from dimse.proposals import store_contexts as store_contexts
from dimse.received import fit
from dimse.results import FindResponse, ReceivedInstance, RetrieveResponse, StoreResult
from dimse.status import Status
from dimse.storage import InstanceWriter, InvalidInstance, PendingInstance
from dimse.storage_classes import (
    COMMON_STORAGE_SOP_CLASSES,
    storage_sop_class_set,
    storage_sop_classes,
)
from dimse.transfer.convert import Decompress, Unconvertible, convert_bytes
from dul.errors import AssociationAborted, AssociationError, ConnectionFailed, DulTimeout
from dul.items import UserIdentityRQSubItem
from dul.negotiation import NegotiatedContext, ProposedContext, build_request
from dul.transport import Timeouts, request_association

if TYPE_CHECKING:
    import ssl

    from pydicom.dataset import Dataset

log = logging.getLogger("dimse.client")

#: Failed SOP Instance UID List (0008,0058), in the identifier of a final C-MOVE/C-GET response.
FAILED_SOP_INSTANCE_UID_LIST = 0x00080058


class NoPresentationContext(Exception):
    """The association has no accepted presentation context for what was asked."""


def _check_ae(title: str, what: str) -> None:
    if not title.strip(" "):
        raise ValueError(f"the {what} AE title is empty")
    if len(title) > 16:
        raise ValueError(f"the {what} AE title {title!r} is longer than 16 characters")


def connect(
    host: str,
    port: int,
    *,
    calling_ae: str = "DICOMSCU",
    called_ae: str = "ANY-SCP",
    contexts: Sequence[ProposedContext],
    roles: Mapping[str, tuple[bool, bool]] | None = None,
    timeouts: Timeouts = Timeouts(),
    max_pdu: int = 16384,
    ssl_context: ssl.SSLContext | None = None,
    user_identity: UserIdentityRQSubItem | None = None,
    async_window: int | None = None,
    decompress: Decompress = Decompress.LOSSLESS,
    max_identifier: int | None = DEFAULT_MAX_IDENTIFIER,
) -> Association:
    """Open an association; use it as a context manager (released on exit).

    `async_window` proposes the Asynchronous Operations Window (PS3.7 D.3.3.3): up
    to that many requests outstanding at once (`store_many` uses what the peer grants).
    `decompress`: which compressed instances `store` may decompress for a peer that
    did not accept their syntax (`dimse.transfer.convert`). `max_identifier`: the
    longest response identifier kept (a hostile server's is dropped past it).
    """
    _check_ae(calling_ae, "calling")
    _check_ae(called_ae, "called")
    window = None if async_window is None else (async_window, 1)
    request = build_request(
        calling_ae,
        called_ae,
        contexts,
        max_pdata_length=max_pdu,
        roles=roles,
        user_identity=user_identity,
        async_window=window,
    )
    try:
        channel = request_association(
            host, port, request, timeouts=timeouts, ssl_context=ssl_context
        )
    except (AssociationAborted, DulTimeout) as exc:
        if ssl_context is None or not _tls_refusal(exc):
            raise
        # TLS 1.3: the server checks our certificate after our handshake is over, and
        # its refusal arrives as a closed connection when we send the A-ASSOCIATE-RQ.
        raise ConnectionFailed(
            f"the TLS connection to {host}:{port} was closed before the association was "
            f"answered ({exc}); the server may require a client certificate, or refuse ours"
        ) from exc
    return Association(MessageChannel(channel, max_identifier=max_identifier), timeouts, decompress)


def _store_request(
    message_id: int,
    sop_class_uid: str,
    sop_instance_uid: str,
    priority: int,
    move_originator: tuple[str, int] | None = None,
) -> C_STORE_RQ:
    """A C-STORE-RQ (PS3.7 9.3.1.1) that says its data set follows; `move_originator`
    is (AE title, Message ID) of the C-MOVE it serves."""
    originator_ae, originator_id = move_originator or (None, None)
    return C_STORE_RQ(
        message_id=message_id,
        affected_sop_class_uid=sop_class_uid,
        affected_sop_instance_uid=sop_instance_uid,
        priority=priority,
        move_originator_aet=originator_ae,
        move_originator_message_id=originator_id,
        data_set_type=DATA_SET_PRESENT,
    )


def _tls_refusal(exc: AssociationAborted | DulTimeout) -> bool:
    """The connection ended, not for lack of time, before the A-ASSOCIATE-AC."""
    if isinstance(exc, DulTimeout):  # a send that failed: timed out, or the peer closed
        import ssl  # imported already: this is a TLS association

        return isinstance(exc.__cause__, ssl.SSLError | ConnectionError)
    return True


def query_contexts(
    root: Root,
    operation: str,
    storage_classes: Sequence[str] | None = None,
    *,
    compressed: bool = True,
) -> list[ProposedContext]:
    """The contexts for a query ("find"), a retrieve ("move", "get") and echo.

    For "get" the storage classes are proposed too, since the instances come back
    on the same association (see `get_roles`): `storage_classes` when the caller
    knows which to expect, else the common classes and as many others as fit; each
    uncompressed and, unless `compressed` is False, in every compressed syntax."""
    uids = MODELS[root]
    abstract = {"find": uids.find, "move": uids.move, "get": uids.get}[operation]
    if abstract is None:
        raise ValueError(f"the {root.value} model has no {operation.upper()} SOP class")
    contexts = [
        ProposedContext(abstract, UNCOMPRESSED),
        ProposedContext(VERIFICATION, UNCOMPRESSED),
    ]
    if operation == "get":
        # One context per compressed syntax and class (dimse.proposals): the server
        # then finds one for every instance as it is stored.
        classes = list(storage_classes or COMMON_STORAGE_SOP_CLASSES)
        planned = get_storage_contexts(classes, MAX_CONTEXTS - len(contexts), compressed=compressed)
        if planned.dropped:
            log.warning(
                "C-GET: %d compressed presentation context(s) did not fit in %d; instances "
                "of the last SOP classes can come back uncompressed only",
                planned.dropped,
                MAX_CONTEXTS,
            )
        if planned.dropped_classes:
            log.warning(
                "C-GET: %d SOP class(es) did not fit in %d presentation contexts; their "
                "instances cannot come back on this association",
                planned.dropped_classes,
                MAX_CONTEXTS,
            )
        contexts += planned.contexts
        if not storage_classes:
            rest = [uid for uid in storage_sop_classes() if uid not in COMMON_STORAGE_SOP_CLASSES]
            contexts += [
                ProposedContext(uid, UNCOMPRESSED) for uid in rest[: MAX_CONTEXTS - len(contexts)]
            ]
    return contexts


def get_roles(contexts: Sequence[ProposedContext]) -> dict[str, tuple[bool, bool]]:
    """SCP/SCU role selection for C-GET: we act as SCP for the storage classes."""
    storage = storage_sop_class_set()
    return {c.abstract_syntax: (False, True) for c in contexts if c.abstract_syntax in storage}


class Association:
    """An open association, as service user. Not for use by several threads at once."""

    def __init__(
        self,
        messages: MessageChannel,
        timeouts: Timeouts,
        decompress: Decompress = Decompress.LOSSLESS,
    ) -> None:
        self.messages = messages
        self.timeouts = timeouts
        self.decompress = decompress
        self._get_writer: InstanceWriter | None = None
        self._received: list[ReceivedInstance] = []
        #: instances a C-GET brought that failed their check: (SOP Instance UID, why)
        self.refused: list[tuple[str, str]] = []

    @property
    def contexts(self) -> dict[int, NegotiatedContext]:
        return self.messages.contexts

    @property
    def peer(self) -> str:
        return self.messages.channel.peer

    @property
    def identity_response(self) -> bytes | None:
        """The acceptor's User Identity Server-response (59H sub-item, PS3.7 D.3.3.7.2):
        None when the A-ASSOCIATE-AC has none (the identity was not confirmed), b"" for
        a confirmed username."""
        item = self.messages.channel.accept.user_information.user_identity_response
        return None if item is None else item.server_response

    # -- plumbing ---------------------------------------------------------------------

    def _context(self, abstract_syntax: str, what: str) -> NegotiatedContext:
        context = self.messages.find_context(abstract_syntax)
        if context is None:
            raise NoPresentationContext(
                f"{self.peer} accepted no presentation context for {what} ({abstract_syntax}); "
                f"it accepted: {self.describe_accepted()}"
            )
        return context

    def describe_accepted(self) -> str:
        accepted = [f"{c.abstract_syntax} in {c.transfer_syntax}" for c in self.contexts.values()]
        return "; ".join(accepted) if accepted else "nothing"

    @property
    def window(self) -> int:
        """How many requests may be outstanding at once: the Maximum Number of
        Operations Performed that the peer granted (PS3.7 D.3.3.3); 1 when it
        granted no window; 0 (unlimited) is taken as 64."""
        granted = self.messages.channel.accept.user_information.asynchronous_operations_window
        if granted is None:
            return 1
        return granted.max_operations_performed or 64

    def _response(self, message_id: int, kind: type[Response]) -> tuple[Response, ReceivedMessage]:
        """Wait for the response to `message_id`, serving C-STORE sub-operations of a
        C-GET in between."""
        return self._response_to({message_id}, kind)

    def _response_to(
        self, message_ids: set[int], kind: type[Response]
    ) -> tuple[Response, ReceivedMessage]:
        """Wait for a response to one of `message_ids`, at most the DIMSE timeout: a
        C-STORE sub-operation of our C-GET is served, and counts as progress; any other
        message is none of ours, and ends the association (ROBUSTNESS 52)."""
        limit = self.timeouts.dimse
        deadline = None if limit is None else time.monotonic() + limit
        while True:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                received = self.messages.receive(remaining)
            except DulTimeout as exc:
                ids = ", ".join(map(str, sorted(message_ids)))
                raise DulTimeout(
                    f"no {kind.NAME} to message {ids} from {self.peer} within {limit} s "
                    "(the DIMSE timeout); association aborted"
                ) from exc
            try:
                message = self.messages.message_of(received)
            except DimseError as exc:
                self.abort()
                raise AssociationAborted(
                    f"{self.peer} sent a message we cannot read: {exc}"
                ) from exc
            if isinstance(message, C_STORE_RQ):
                self._serve_get_store(received, message)
                if deadline is not None and limit is not None:
                    deadline = time.monotonic() + limit
                continue
            if isinstance(message, kind) and message.message_id_being_responded_to in message_ids:
                return message, received
            responded = getattr(message, "message_id_being_responded_to", None)
            about = f" to message {responded}" if responded is not None else ""
            self.abort()
            raise AssociationAborted(
                f"{self.peer} sent {message.NAME}{about} while we waited for {kind.NAME} to "
                f"message {', '.join(map(str, sorted(message_ids)))}: none of ours; association aborted"
            )

    def _decode_identifier(self, received: ReceivedMessage) -> Dataset | None:
        """The response's identifier (None when it has none); DimseError when it
        cannot be read exactly or was over `max_identifier`."""
        if received.too_long:
            raise DimseError(f"the identifier was not kept: {received.too_long}")
        data = received.data_set
        if data is None:
            return None
        syntax = self.contexts[received.context_id].transfer_syntax or ""
        if not isinstance(data, bytes):
            data = data.read()
        return decode_dataset(data, syntax)

    # -- C-ECHO -----------------------------------------------------------------------

    def echo(self) -> Status:
        """C-ECHO (PS3.7 9.1.5): the status of the peer's answer."""
        context = self._context(VERIFICATION, "Verification")
        message_id = self.messages.next_message_id()
        self.messages.send(context.context_id, C_ECHO_RQ(message_id=message_id))
        response, _ = self._response(message_id, C_ECHO_RSP)
        return response.get_status()

    # -- C-STORE ----------------------------------------------------------------------

    def store(
        self,
        source: str | Path | Part10Info | Dataset,
        priority: int = Priority.LOW,
        progress: Callable[[int], None] | None = None,
        move_originator: tuple[str, int] | None = None,
    ) -> StoreResult:
        """C-STORE one instance: a DICOM file (checked first, `dimse.file_check`; then
        streamed from disk when its transfer syntax was accepted, else converted), a
        file already checked (`Part10Info`) or a Dataset. Raises `NotDicomFile` for a
        file that cannot be read exactly (nothing is sent), `NoPresentationContext`.
        `move_originator` is (AE title, Message ID) of the C-MOVE this serves."""
        message_id = self.messages.next_message_id()
        if isinstance(source, Part10Info):
            info = source
        elif isinstance(source, str | os.PathLike):
            info = check_file(source)  # NotDicomFile: nothing is sent
            for note in info.notes:
                log.warning("%s", note)
        else:  # a Dataset
            return self._store_dataset(source, message_id, priority, move_originator)
        context = self._store_context(info)
        request = _store_request(
            message_id, info.sop_class_uid, info.sop_instance_uid, priority, move_originator
        )
        try:
            prepared = self.messages.prepare_instance(context, request, info)
        except Unconvertible as exc:  # nothing was sent
            raise NoPresentationContext(
                f"{info.path} (SOP Class {info.sop_class_uid}, SOP Instance {info.sop_instance_uid}) cannot be sent: {exc}"
            ) from exc
        self.messages.send_prepared(prepared, progress)
        response, _ = self._response(message_id, C_STORE_RSP)
        return StoreResult(
            response.get_status(), info.sop_class_uid, info.sop_instance_uid, info.path
        )

    def store_many(
        self, infos: Iterable[Part10Info], priority: int = Priority.LOW
    ) -> Iterator[tuple[Part10Info, StoreResult | NoPresentationContext | OSError]]:
        """C-STORE many files, keeping up to `window` requests outstanding (the
        asynchronous operations window the peer granted; one at a time without it).
        Yields each file with its result, in the order the responses come: a
        `NoPresentationContext` or the `OSError` of a file that could not be read (then
        nothing of it was sent) in place of a result.

        Each request is made ready (`MessageChannel.prepare_instance`: the file opened
        and read, the PDUs built) before the response to the previous one is awaited,
        so that our reading overlaps the peer's storing even with a window of 1."""
        outstanding: dict[int, Part10Info] = {}
        prepared: PreparedMessage | None = None
        window = self.window  # fixed by the A-ASSOCIATE-AC: read it once, not per file
        try:
            for info in infos:
                try:
                    context = self._store_context(info)
                except NoPresentationContext as exc:
                    yield info, exc
                    continue
                message_id = self.messages.next_message_id()
                request = _store_request(
                    message_id, info.sop_class_uid, info.sop_instance_uid, priority
                )
                try:
                    prepared = self.messages.prepare_instance(context, request, info)
                except Unconvertible as exc:
                    refusal = NoPresentationContext(
                        f"{info.path} (SOP Class {info.sop_class_uid}, SOP Instance {info.sop_instance_uid}) cannot be sent: {exc}"
                    )
                    refusal.__cause__ = exc
                    yield info, refusal
                    continue
                except (OSError, EOFError) as exc:
                    yield info, exc if isinstance(exc, OSError) else OSError(str(exc))
                    continue
                while len(outstanding) >= window:
                    yield self._collect(outstanding)
                self.messages.send_prepared(prepared)
                prepared = None
                outstanding[message_id] = info
            while outstanding:
                yield self._collect(outstanding)
        except AssociationError as exc:
            # Name what was on its way: those files' fate is not known.
            exc.in_flight = tuple(info.path for info in outstanding.values())  # type: ignore[attr-defined]
            raise
        finally:
            if prepared is not None:
                prepared.close()

    def _collect(self, outstanding: dict[int, Part10Info]) -> tuple[Part10Info, StoreResult]:
        response, _ = self._response_to(set(outstanding), C_STORE_RSP)
        info = outstanding.pop(response.message_id_being_responded_to)
        return info, StoreResult(
            response.get_status(), info.sop_class_uid, info.sop_instance_uid, info.path
        )

    def _store_context(self, info: Part10Info) -> NegotiatedContext:
        """The context to send `info` on; NoPresentationContext saying why there is none."""
        try:
            context = self.messages.store_context(
                info.sop_class_uid, info.transfer_syntax, info.encoding, self.decompress
            )
        except Unconvertible as exc:
            raise NoPresentationContext(
                f"{info.path} (SOP Class {info.sop_class_uid}, SOP Instance {info.sop_instance_uid}) cannot be sent: {exc}"
            ) from exc
        if context is None:
            raise self._refused(info.sop_class_uid, info.transfer_syntax)
        return context

    def _refused(self, sop_class: str, syntax: str) -> NoPresentationContext:
        offered = [
            c.transfer_syntax for c in self.contexts.values() if c.abstract_syntax == sop_class
        ]
        instead = (
            f"for that SOP class it accepted {', '.join(t for t in offered if t)}"
            if offered
            else f"it accepted no context for that SOP class; it accepted: {self.describe_accepted()}"
        )
        return NoPresentationContext(
            f"{self.peer} did not accept SOP class {sop_class} in transfer syntax {syntax}; {instead}"
        )

    def _store_dataset(
        self,
        dataset: Dataset,
        message_id: int,
        priority: int,
        move_originator: tuple[str, int] | None = None,
    ) -> StoreResult:
        sop_class = str(dataset.get("SOPClassUID", ""))
        sop_instance = str(dataset.get("SOPInstanceUID", ""))
        meta = getattr(dataset, "file_meta", None)
        syntax = str(getattr(meta, "TransferSyntaxUID", "") or "")
        if not syntax:
            # Binary values of a data set read from a file are in that file's byte order.
            little = (getattr(dataset, "original_encoding", None) or (None, True))[1] is not False
            syntax = EXPLICIT_VR_LITTLE_ENDIAN if little else EXPLICIT_VR_BIG_ENDIAN
        try:
            context = self.messages.store_context(sop_class, syntax, "", self.decompress)
            if context is None or context.transfer_syntax is None:
                raise self._refused(sop_class, syntax)
            # pydicom writes it in its own syntax; our code makes any conversion.
            data = encode_dataset(dataset, syntax)
            if context.transfer_syntax != syntax:
                data = convert_bytes(data, syntax, context.transfer_syntax)
        except Unconvertible as exc:
            raise NoPresentationContext(
                f"SOP Instance {sop_instance} cannot be sent: {exc}"
            ) from None
        request = _store_request(message_id, sop_class, sop_instance, priority, move_originator)
        self.messages.send(context.context_id, request, data)
        response, _ = self._response(message_id, C_STORE_RSP)
        return StoreResult(response.get_status(), sop_class, sop_instance, None)

    # -- C-FIND -----------------------------------------------------------------------

    def find(
        self, identifier: Dataset, root: Root, priority: int = Priority.MEDIUM
    ) -> Iterator[FindResponse]:
        """C-FIND: yields each response; pending ones carry a match. Leaving the loop
        early sends C-CANCEL and reads the remaining responses."""
        abstract = MODELS[root].find
        context = self._context(abstract, f"{root.value} root C-FIND")
        assert context.transfer_syntax is not None
        message_id = self.messages.next_message_id()
        request = C_FIND_RQ(
            message_id=message_id, affected_sop_class_uid=abstract, priority=priority
        )
        self.messages.send(
            context.context_id, request, encode_dataset(identifier, context.transfer_syntax)
        )
        final = False
        try:
            while not final:
                response, received = self._response(message_id, C_FIND_RSP)
                status = response.get_status()
                final = status.is_final
                try:
                    match = self._decode_identifier(received)
                except DimseError as exc:  # reported with the response, not raised
                    yield FindResponse(status, None, message_id, str(exc))
                    continue
                yield FindResponse(status, match, message_id)
        finally:
            if not final:
                self._cancel_and_drain(context.context_id, message_id, C_FIND_RSP)

    def cancel(self, message_id: int, context_id: int | None = None) -> None:
        """C-CANCEL the operation `message_id` (PS3.7 9.3.2.3)."""
        if context_id is None:
            context_id = next(iter(self.contexts))
        self.messages.send(context_id, C_CANCEL_RQ(message_id_being_responded_to=message_id))

    def _cancel_and_drain(self, context_id: int, message_id: int, kind: type[Response]) -> None:
        if not self.messages.channel.established:
            return
        try:
            self.cancel(message_id, context_id)
            while True:
                response, _ = self._response(message_id, kind)
                if response.get_status().is_final:
                    return
        except (AssociationAborted, DulTimeout):
            return

    # -- C-MOVE and C-GET ---------------------------------------------------------------

    def move(
        self, identifier: Dataset, root: Root, destination: str, priority: int = Priority.MEDIUM
    ) -> Iterator[RetrieveResponse]:
        """C-MOVE to `destination` (an AE title the server knows)."""
        _check_ae(destination, "move destination")
        abstract = MODELS[root].move
        assert abstract is not None
        context = self._context(abstract, f"{root.value} root C-MOVE")
        assert context.transfer_syntax is not None
        message_id = self.messages.next_message_id()
        request = C_MOVE_RQ(
            message_id=message_id,
            affected_sop_class_uid=abstract,
            move_destination=destination,
            priority=priority,
        )
        self.messages.send(
            context.context_id, request, encode_dataset(identifier, context.transfer_syntax)
        )
        yield from self._retrieve_responses(context.context_id, message_id, C_MOVE_RSP)

    def get(
        self,
        identifier: Dataset,
        root: Root,
        writer: InstanceWriter,
        priority: int = Priority.MEDIUM,
    ) -> Iterator[RetrieveResponse]:
        """C-GET: the instances arrive on this association and `writer` keeps them.
        `received` lists them afterwards."""
        abstract = MODELS[root].get
        assert abstract is not None
        context = self._context(abstract, f"{root.value} root C-GET")
        assert context.transfer_syntax is not None
        message_id = self.messages.next_message_id()
        request = C_GET_RQ(
            message_id=message_id, affected_sop_class_uid=abstract, priority=priority
        )
        self._get_writer = writer
        self.messages.set_data_sink(self._open_get_sink)
        try:
            self.messages.send(
                context.context_id, request, encode_dataset(identifier, context.transfer_syntax)
            )
            yield from self._retrieve_responses(context.context_id, message_id, C_GET_RSP)
        finally:
            self.messages.set_data_sink(None)
            self._get_writer = None

    @property
    def received(self) -> list[ReceivedInstance]:
        """Instances received by C-GET on this association."""
        return list(self._received)

    def _retrieve_responses(
        self, context_id: int, message_id: int, kind: type[Response]
    ) -> Iterator[RetrieveResponse]:
        final = False
        try:
            while not final:
                response, received = self._response(message_id, kind)
                status = response.get_status()
                final = status.is_final
                failed = self._failed_list(received)
                yield RetrieveResponse(
                    status,
                    getattr(response, "number_of_remaining_suboperations", None),
                    getattr(response, "number_of_completed_suboperations", None),
                    getattr(response, "number_of_failed_suboperations", None),
                    getattr(response, "number_of_warning_suboperations", None),
                    failed,
                    message_id,
                    getattr(response, "error_comment", None) or "",
                )
        finally:
            if not final:
                self._cancel_and_drain(context_id, message_id, kind)

    def _failed_list(self, received: ReceivedMessage) -> tuple[str, ...]:
        """The Failed SOP Instance UID List (0008,0058) of a C-MOVE/C-GET response: in
        its identifier (PS3.4 C.4.2.1.4), or, from a peer that puts it in the command
        set by mistake (Orthanc), there."""
        values: list[str] = []
        if received.data_set is not None:
            try:
                identifier = self._decode_identifier(received)
            except DimseError:
                identifier = None
            if identifier is not None and FAILED_SOP_INSTANCE_UID_LIST in identifier:
                value = identifier[FAILED_SOP_INSTANCE_UID_LIST].value
                # One UID is a str; several are a pydicom MultiValue, not a list
                # (ROBUSTNESS 34: the list must reach the caller UID by UID).
                values = [value] if isinstance(value, str) else [str(v) for v in value or ()]
        stray = received.command.stray.get(FAILED_SOP_INSTANCE_UID_LIST)
        if not values and stray:
            log.warning(
                "%s put the Failed SOP Instance UID List in the command set; read from there",
                self.peer,
            )
            values = stray.decode("ascii", "replace").split("\\")
        uids = (value.strip("\x00 ") for value in values)
        return tuple(uid for uid in uids if uid)

    def _open_get_sink(self, context_id: int, command: Command) -> BinaryIO | None:
        if command.command_field != CommandField.C_STORE_RQ:
            return None  # a response's identifier: kept in memory as usual
        writer = self._get_writer
        context = self.contexts.get(context_id)
        if writer is None or context is None or context.transfer_syntax is None:
            return None
        sop_class = str(command.get("AffectedSOPClassUID", ""))
        sop_instance = str(command.get("AffectedSOPInstanceUID", ""))
        return writer.open(sop_class, sop_instance, context.transfer_syntax)  # type: ignore[return-value]

    def _serve_get_store(self, received: ReceivedMessage, request: C_STORE_RQ) -> None:
        """A C-STORE sub-operation of our C-GET: keep the instance, answer it."""
        context = self.contexts[received.context_id]
        status = 0x0000
        comment: str | None = None
        path: Path | None = None
        data = received.data_set
        handed_back: object = data  # our sink, when the data set was streamed to disk
        try:
            if received.error is not None:
                raise received.error  # the sink failed as the data came: said below
            elif isinstance(handed_back, PendingInstance):
                path = handed_back.commit()
            elif data is not None and self._get_writer is not None and context.transfer_syntax:
                path = self._get_writer.write(
                    request.affected_sop_class_uid,
                    request.affected_sop_instance_uid,
                    context.transfer_syntax,
                    data,
                )
            elif data is None:
                status = 0xA900
            else:
                status = 0x0124
        except InvalidInstance as exc:  # checked before acknowledging: refused, not kept
            log.error(
                "C-GET: instance %s refused: %s",
                request.affected_sop_instance_uid,
                exc.refusal.reason,
            )
            self.refused.append((request.affected_sop_instance_uid, exc.refusal.reason))
            status, comment = exc.refusal.status, exc.refusal.comment
        except OSError as exc:  # ROBUSTNESS 54: a full disk is said as such
            why = f"could not be written: {exc.strerror or exc}"
            log.error("C-GET: instance %s %s", request.affected_sop_instance_uid, why)
            self.refused.append((request.affected_sop_instance_uid, why))
            status, comment = 0xA700, fit(why)
        if status == 0:
            self._received.append(
                ReceivedInstance(
                    request.affected_sop_class_uid,
                    request.affected_sop_instance_uid,
                    context.transfer_syntax or "",
                    path,
                )
            )
        response = C_STORE_RSP(
            message_id_being_responded_to=request.message_id,
            status=status,
            affected_sop_class_uid=request.affected_sop_class_uid,
            affected_sop_instance_uid=request.affected_sop_instance_uid,
            error_comment=comment,
        )
        self.messages.send(received.context_id, response)

    # -- ending -----------------------------------------------------------------------

    def release(self) -> None:
        self.messages.close()
        self.messages.channel.release()

    def abort(self) -> None:
        self.messages.close()
        self.messages.channel.abort()

    def __enter__(self) -> Association:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            self.release()
        else:
            self.abort()
