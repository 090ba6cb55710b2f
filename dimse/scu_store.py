"""C-STORE as service user, written once for every driver (PS3.4 B.2, PS3.7 9.1.1):
one instance, or many with the asynchronous operations window the peer granted.

A file goes as it is when a context with its transfer syntax was accepted (streamed
from disk), else converted exactly to one that was (`dimse.transfer.convert`), or
not at all: `NoPresentationContext` says why, and nothing of it was sent. These are
the flows behind `dimse.scu.Requestor.store` and `store_many`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from dimse.commands import DATA_SET_PRESENT
from dimse.datasets import EXPLICIT_VR_BIG_ENDIAN, EXPLICIT_VR_LITTLE_ENDIAN, encode_dataset
from dimse.effects import FLUSH, Emit, Flow, Wait
from dimse.engine import Engine
from dimse.file_check import check_file
from dimse.files import Part10Info
from dimse.message_base import Priority
from dimse.messages import C_STORE_RQ, C_STORE_RSP
from dimse.operations import Operation
from dimse.outgoing import message_units, prepare_instance
from dimse.results import StoreResult
from dimse.transfer.convert import Decompress, Unconvertible, choose, convert_bytes
from dul.errors import AssociationError
from dul.negotiation import NegotiatedContext

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

    from dimse.scu import Requestor

log = logging.getLogger("dimse.client")


class NoPresentationContext(Exception):
    """The association has no accepted presentation context for what was asked."""


def store_request(
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


def store_context(
    engine: Engine,
    sop_class: str,
    syntax: str,
    encoding: str = "",
    decompress: Decompress = Decompress.LOSSLESS,
    *,
    scp: bool = False,
) -> NegotiatedContext | None:
    """The context on which to send an instance of `sop_class` held in `syntax`
    (`encoding`: see `Part10Info`): one with that very syntax, sent as it is, else
    one whose syntax it converts to exactly (`dimse.transfer.convert.choose`).
    None when no context of `sop_class` was accepted (with the SCP role, for `scp`);
    `Unconvertible` when none takes the instance."""
    by_syntax: dict[str, NegotiatedContext] = {}
    for context in engine.contexts.values():
        if (
            context.abstract_syntax == sop_class
            and context.transfer_syntax is not None
            and (context.scp_role or not scp)
        ):
            by_syntax.setdefault(context.transfer_syntax, context)
    if not by_syntax:
        return None
    return by_syntax[choose(syntax, encoding, list(by_syntax), decompress)]


def cannot_send(info: Part10Info, exc: Exception) -> NoPresentationContext:
    refusal = NoPresentationContext(
        f"{info.path} (SOP Class {info.sop_class_uid}, SOP Instance "
        f"{info.sop_instance_uid}) cannot be sent: {exc}"
    )
    refusal.__cause__ = exc
    return refusal


def _any_ready(operations: list[Operation], engine: Engine) -> Callable[[], bool]:
    def ready() -> bool:
        return any(op.ready for op in operations) or bool(engine.requests)

    return ready


def store(
    requestor: Requestor,
    source: str | os.PathLike[str] | Part10Info | Dataset,
    priority: int = Priority.LOW,
    progress: Callable[[int], None] | None = None,
    move_originator: tuple[str, int] | None = None,
) -> Flow[StoreResult]:
    """C-STORE one instance: a DICOM file (checked first, `dimse.file_check`; then
    streamed from disk when its transfer syntax was accepted, else converted), a
    file already checked (`Part10Info`) or a Dataset. Raises `NotDicomFile` for a
    file that cannot be read exactly (nothing is sent), `NoPresentationContext`.
    `move_originator` is (AE title, Message ID) of the C-MOVE this serves."""
    if isinstance(source, Part10Info):
        info = source
    elif isinstance(source, str | os.PathLike):
        info = check_file(source)  # NotDicomFile: nothing is sent
        for note in info.notes:
            log.warning("%s", note)
    else:  # a Dataset
        return (yield from _store_dataset(requestor, source, priority, move_originator))
    context = context_for(requestor, info)
    message_id = requestor.engine.next_message_id()
    request = store_request(
        message_id, info.sop_class_uid, info.sop_instance_uid, priority, move_originator
    )
    try:
        outgoing = prepare_instance(
            context,
            request,
            info,
            requestor.engine.max_pdu,
            spool_dir=requestor.engine.spool_dir,
            progress=progress,
        )
    except Unconvertible as exc:  # nothing was sent
        raise cannot_send(info, exc) from exc
    operation = requestor.engine.request(C_STORE_RSP, message_id, outgoing)
    response, _ = yield from requestor.response(operation)
    return StoreResult(response.get_status(), info.sop_class_uid, info.sop_instance_uid, info.path)


def store_many(
    requestor: Requestor, infos: Iterable[Part10Info], priority: int = Priority.LOW
) -> Flow[None]:
    """C-STORE many files, keeping up to `window` requests outstanding (the
    asynchronous operations window the peer granted; one at a time without it).
    Emits each file with its result, in the order the responses come: a
    `NoPresentationContext` or the `OSError` of a file that could not be read
    (then nothing of it was sent) in place of a result.

    Each request is made ready (its file opened and read, its first writes built)
    before the response to the previous one is awaited, so that our reading
    overlaps the peer's storing even with a window of 1."""
    engine = requestor.engine
    outstanding: dict[int, tuple[Part10Info, Operation]] = {}
    window = engine.window
    try:
        for info in infos:
            if engine.over:  # nothing more can go: the files left are not sent
                raise engine.error
            try:
                context = context_for(requestor, info)
            except NoPresentationContext as exc:
                yield Emit((info, exc))
                continue
            message_id = engine.next_message_id()
            request = store_request(message_id, info.sop_class_uid, info.sop_instance_uid, priority)
            try:
                outgoing = prepare_instance(
                    context, request, info, engine.max_pdu, spool_dir=engine.spool_dir
                )
            except Unconvertible as exc:
                yield Emit((info, cannot_send(info, exc)))
                continue
            except (OSError, EOFError) as exc:
                yield Emit((info, exc if isinstance(exc, OSError) else OSError(str(exc))))
                continue
            try:
                while len(outstanding) >= window:
                    yield Emit((yield from _collect(requestor, outstanding)))
                if engine.over:  # ended while we waited: this one is not sent
                    raise engine.error
            except BaseException:
                outgoing.close()  # made ready, never queued
                raise
            outstanding[message_id] = (info, engine.request(C_STORE_RSP, message_id, outgoing))
            # Written now, not at the next wait: the peer stores this one while we
            # read the next file.
            yield FLUSH
        while outstanding:
            yield Emit((yield from _collect(requestor, outstanding)))
    except AssociationError as exc:
        # Name what was on its way: those files' fate is not known.
        exc.in_flight = tuple(info.path for info, _ in outstanding.values())  # type: ignore[attr-defined]
        raise


def _collect(
    requestor: Requestor, outstanding: dict[int, tuple[Part10Info, Operation]]
) -> Flow[tuple[Part10Info, StoreResult]]:
    """The next response to any of the outstanding C-STORE-RQs."""
    engine = requestor.engine
    while True:
        for message_id, (info, operation) in outstanding.items():
            got = operation.take()
            if got is not None:
                del outstanding[message_id]
                status = got[0].get_status()
                return info, StoreResult(
                    status, info.sop_class_uid, info.sop_instance_uid, info.path
                )
        if engine.requests:
            requestor.get_store.serve_requests()
            continue
        if engine.over:
            raise engine.error
        operations = [operation for _, operation in outstanding.values()]
        yield Wait(engine, _any_ready(operations, engine))


def context_for(requestor: Requestor, info: Part10Info) -> NegotiatedContext:
    """The context to send `info` on; NoPresentationContext saying why there is none."""
    try:
        context = store_context(
            requestor.engine,
            info.sop_class_uid,
            info.transfer_syntax,
            info.encoding,
            requestor.decompress,
        )
    except Unconvertible as exc:
        raise cannot_send(info, exc) from exc
    if context is None:
        raise refused_context(requestor, info.sop_class_uid, info.transfer_syntax)
    return context


def refused_context(requestor: Requestor, sop_class: str, syntax: str) -> NoPresentationContext:
    offered = [
        c.transfer_syntax
        for c in requestor.engine.contexts.values()
        if c.abstract_syntax == sop_class
    ]
    instead = (
        f"for that SOP class it accepted {', '.join(t for t in offered if t)}"
        if offered
        else f"it accepted no context for that SOP class; it accepted: {requestor.describe_accepted()}"
    )
    return NoPresentationContext(
        f"{requestor.peer} did not accept SOP class {sop_class} in transfer syntax {syntax}; {instead}"
    )


def _store_dataset(
    requestor: Requestor, dataset: Dataset, priority: int, move_originator: tuple[str, int] | None
) -> Flow[StoreResult]:
    sop_class = str(dataset.get("SOPClassUID", ""))
    sop_instance = str(dataset.get("SOPInstanceUID", ""))
    meta = getattr(dataset, "file_meta", None)
    syntax = str(getattr(meta, "TransferSyntaxUID", "") or "")
    if not syntax:
        # Binary values of a data set read from a file are in that file's byte order.
        little = (getattr(dataset, "original_encoding", None) or (None, True))[1] is not False
        syntax = EXPLICIT_VR_LITTLE_ENDIAN if little else EXPLICIT_VR_BIG_ENDIAN
    try:
        context = store_context(requestor.engine, sop_class, syntax, "", requestor.decompress)
        if context is None or context.transfer_syntax is None:
            raise refused_context(requestor, sop_class, syntax)
        # pydicom writes it in its own syntax; our code makes any conversion.
        data = encode_dataset(dataset, syntax)
        if context.transfer_syntax != syntax:
            data = convert_bytes(data, syntax, context.transfer_syntax)
    except Unconvertible as exc:
        raise NoPresentationContext(f"SOP Instance {sop_instance} cannot be sent: {exc}") from None
    message_id = requestor.engine.next_message_id()
    request = store_request(message_id, sop_class, sop_instance, priority, move_originator)
    units = message_units(context.context_id, request, data, requestor.engine.max_pdu)
    operation = requestor.engine.request(C_STORE_RSP, message_id, units)
    response, _ = yield from requestor.response(operation)
    return StoreResult(response.get_status(), sop_class, sop_instance, None)
