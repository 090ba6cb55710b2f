"""`dicomscu --move` and `--get`: retrieve instances into OUTPUT/<SOP Instance UID>.dcm.

C-MOVE: a storage SCP of ours listens on --port-scp under our calling AE title while
the server sends the instances to that AE title on a second association (PS3.4
C.4.2). With --move-destination naming another AE, nothing listens here: the server
sends to that AE, and we only report the counts.

C-GET: the instances come back on the same association; the storage SOP classes are
proposed with the SCP role (PS3.7 D.3.3.4), as `client.query_contexts` and
`client.get_roles` arrange: uncompressed, and in each compressed syntax alone, so
that every instance can come as it is stored (`--accept uncompressed`: uncompressed
only, for the server to decompress).

Every instance received is checked before it is acknowledged (dimse/received.py);
one that fails is refused, named, and makes the exit status 1.

Exit status 1 when the final status is a failure, or when a sub-operation failed
(status B000H with failures counted: some instances did not arrive).
"""

from __future__ import annotations

import contextlib
import copy
import logging
from collections.abc import Callable, Iterator

from cli.association import implicit_only, open_association
from cli.failures import Context, explain_exception, explain_status
from cli.options import Settings
from cli.query import Query
from dimse import client
from dimse.errors import DimseError
from dimse.models import LEVELS, UNIQUE_KEYS
from dimse.results import RetrieveResponse
from dimse.storage import InstanceWriter
from dimse.storage_scp import StorageSCP
from dul.errors import AssociationError
from dul.negotiation import ProposedContext

log = logging.getLogger("dicomscu")


def _counts(response: RetrieveResponse) -> str:
    parts = [
        f"{name} {value}"
        for name, value in (
            ("remaining", response.remaining),
            ("completed", response.completed),
            ("failed", response.failed),
            ("warning", response.warning),
        )
        if value is not None
    ]
    return ", ".join(parts) if parts else "no counts"


def _follow(responses: Iterator[RetrieveResponse], service: str) -> RetrieveResponse:
    """Report the pending responses (-V); return the final one."""
    for response in responses:
        if response.status.is_pending:
            log.info("%s: %s", service, _counts(response))
            continue
        return response
    raise AssertionError("the responses ended without a final one")


def _conclude(
    final: RetrieveResponse,
    received: int,
    settings: Settings,
    context: Context,
    refused: list[tuple[str, str]] | None = None,
) -> int:
    """Report the final response; the exit status. `refused`: instances that arrived
    and failed our check (SOP Instance UID, why): each named, and a failure."""
    service = "C-MOVE" if settings.operation == "move" else "C-GET"
    status = final.status
    for uid, why in refused or ():
        log.error("%s: instance %s arrived and was refused (not kept): %s", service, uid, why)
    if status.is_failure or status.is_cancel:
        log.error("%s", explain_status(status, context))  # the status holds its comment
        if final.failed_sop_instances:
            log.error(
                "%s: failed SOP Instance UIDs: %s", service, ", ".join(final.failed_sop_instances)
            )
        return 1
    where = f" into {settings.output}" if received else ""
    log.info(
        "%s finished (%s): %s; %d instance(s) received%s",
        service,
        status,
        _counts(final),
        received,
        where,
    )
    if final.failed:
        failed_uids = ", ".join(final.failed_sop_instances) or "not listed"
        log.error(
            "%s: %d sub-operation(s) failed (status %s); failed SOP Instance UIDs: %s",
            service,
            final.failed,
            status,
            failed_uids,
        )
        return 1
    if refused:
        return 1
    if status.is_warning:
        log.warning("%s ended with a warning: %s", service, status)
    if not final.completed and not received and not final.warning:
        log.warning(
            "%s retrieved nothing: no instance matched the keys; run them with --find "
            "to see what the server has",
            service,
        )
    return 0


def _retrieve(
    settings: Settings,
    context: Context,
    contexts: list[ProposedContext],
    start: Callable[[client.Association], Iterator[RetrieveResponse]],
    roles: dict[str, tuple[bool, bool]] | None = None,
) -> tuple[RetrieveResponse | None, int, list[tuple[str, str]]]:
    """Run one retrieve; (final response or None when refused, instances received on
    the association, instances refused by our check)."""
    service = "C-MOVE" if settings.operation == "move" else "C-GET"
    with open_association(settings, contexts, roles) as association:
        try:
            final = _follow(start(association), service)
        except client.NoPresentationContext as exc:  # released normally, then reported
            log.error("%s", explain_exception(exc, context))
            return None, 0, []
        return final, len(association.received), association.refused


def run_move(settings: Settings, context: Context, query: Query) -> int:
    destination = settings.move_destination or settings.calling_ae
    contexts = implicit_only(query.sop_class_uid)

    def start(association: client.Association) -> Iterator[RetrieveResponse]:
        return association.move(query.identifier, query.root, destination, settings.priority)

    if destination != settings.calling_ae:  # a third party receives: nothing listens here
        final, _, _ = _retrieve(settings, context, contexts, start)
        return 1 if final is None else _conclude(final, 0, settings, context)

    assert settings.port_scp is not None
    settings.output.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        try:
            listener = stack.enter_context(
                StorageSCP(
                    settings.output,
                    ae_title=settings.calling_ae,
                    port=settings.port_scp,
                    accept_compressed=settings.accept_compressed,
                )
            )
        except OSError as exc:
            log.error(
                "cannot listen on --port-scp %d for the C-MOVE's C-STORE sub-operations: %s; "
                "choose a free port (and make the server's configuration point to it)",
                settings.port_scp,
                exc.strerror or exc,
            )
            return 1
        log.info(
            "listening on port %d as %r for the instances; writing them into %s",
            settings.port_scp,
            settings.calling_ae,
            settings.output,
        )
        final, _, _ = _retrieve(settings, context, contexts, start)
    if final is None:
        return 1
    return _conclude(final, len(listener.received), settings, context, listener.refused)


def _expected_sop_classes(settings: Settings, query: Query) -> list[str] | None:
    """The SOP classes of the instances a C-GET will bring, from an IMAGE-level C-FIND
    asking for (0008,0016), so that exactly those are proposed with the SCP role.
    None when the server does not say: then the common storage classes are proposed."""
    identifier = copy.deepcopy(query.identifier)  # the C-GET itself sends the original
    identifier.QueryRetrieveLevel = "IMAGE"
    for level in LEVELS[LEVELS.index(query.level or "IMAGE") + 1 :]:
        keyword = UNIQUE_KEYS[level]
        if keyword not in identifier:
            setattr(identifier, keyword, "")
    identifier.SOPClassUID = ""
    classes: list[str] = []
    try:
        with open_association(settings, client.query_contexts(query.root, "find")) as association:
            for response in association.find(identifier, query.root):
                if response.identifier is not None and response.identifier.get("SOPClassUID"):
                    classes.append(str(response.identifier.SOPClassUID))
    except (AssociationError, client.NoPresentationContext, DimseError) as exc:
        log.debug("no IMAGE-level C-FIND before the C-GET (%s); proposing the common classes", exc)
        return None
    return sorted(set(classes)) or None


def run_get(settings: Settings, context: Context, query: Query) -> int:
    settings.output.mkdir(parents=True, exist_ok=True)
    writer = InstanceWriter(settings.output)
    contexts = client.query_contexts(
        query.root,
        "get",
        _expected_sop_classes(settings, query),
        compressed=settings.accept_compressed,
    )

    def start(association: client.Association) -> Iterator[RetrieveResponse]:
        return association.get(query.identifier, query.root, writer, settings.priority)

    final, received, refused = _retrieve(
        settings, context, contexts, start, client.get_roles(contexts)
    )
    return 1 if final is None else _conclude(final, received, settings, context, refused)
