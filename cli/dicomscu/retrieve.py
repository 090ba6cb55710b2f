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
from dataclasses import dataclass, field

from cli.dicomscu.association import implicit_only, open_association
from cli.dicomscu.failures import Context, explain_exception, explain_status
from cli.dicomscu.options import Settings
from cli.dicomscu.query import Query
from dimse import client
from dimse.errors import DimseError
from dimse.models import LEVELS, UNIQUE_KEYS
from dimse.results import RetrieveResponse
from dimse.storage import InstanceWriter
from dimse.storage_scp import StorageSCP
from dimse.upper_layer import AssociationError, ProposedContext

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


@dataclass
class Arrivals:
    """What a retrieve brought here: the instances kept, and those refused by our check
    (SOP Instance UID, why); `expected`, the instances an IMAGE-level C-FIND said match
    the keys (None when it could not be asked)."""

    kept: set[str] = field(default_factory=set)
    refused: list[tuple[str, str]] = field(default_factory=list)
    expected: set[str] | None = None


def _conclude(
    final: RetrieveResponse, arrivals: Arrivals, settings: Settings, context: Context
) -> int:
    """Report the final response and every instance that did not arrive; the exit
    status (1 when one failed, was refused, or is missing without a word)."""
    service = "C-MOVE" if settings.operation == "move" else "C-GET"
    status = final.status
    code = 0
    for uid, why in arrivals.refused:
        log.error("%s: instance %s arrived and was refused (not kept): %s", service, uid, why)
        code = 1
    named = set(final.failed_sop_instances) | {uid for uid, _ in arrivals.refused}
    if status.is_failure or status.is_cancel:
        log.error("%s", explain_status(status, context))  # the status holds its comment
        if final.failed_sop_instances:
            log.error(
                "%s: failed SOP Instance UIDs: %s", service, ", ".join(final.failed_sop_instances)
            )
        code = 1
    else:
        where = f" into {settings.output}" if arrivals.kept else ""
        log.info(
            "%s finished (%s): %s; %d instance(s) received%s",
            service,
            status,
            _counts(final),
            len(arrivals.kept),
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
            code = 1
    if arrivals.expected is not None:
        missing = sorted(arrivals.expected - arrivals.kept - named)
        if missing:
            log.error(
                "%s: %d instance(s) that match the keys did not arrive, and the server did "
                "not name them as failed: %s",
                service,
                len(missing),
                ", ".join(missing),
            )
            code = 1
    if code:
        return code
    if status.is_warning:
        log.warning("%s ended with a warning: %s", service, status)
    if not final.completed and not arrivals.kept and not final.warning:
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
) -> tuple[RetrieveResponse | None, Arrivals]:
    """Run one retrieve; (final response or None when refused, what arrived on the
    association: C-GET's instances)."""
    service = "C-MOVE" if settings.operation == "move" else "C-GET"
    with open_association(settings, contexts, roles) as association:
        try:
            final = _follow(start(association), service)
        except client.NoPresentationContext as exc:  # released normally, then reported
            log.error("%s", explain_exception(exc, context))
            return None, Arrivals()
        kept = {instance.sop_instance_uid for instance in association.received}
        return final, Arrivals(kept, association.refused)


def run_move(settings: Settings, context: Context, query: Query) -> int:
    destination = settings.move_destination or settings.calling_ae
    contexts = implicit_only(query.sop_class_uid)

    def start(association: client.Association) -> Iterator[RetrieveResponse]:
        return association.move(query.identifier, query.root, destination, settings.priority)

    if destination != settings.calling_ae:  # a third party receives: nothing listens here
        final, arrivals = _retrieve(settings, context, contexts, start)
        return 1 if final is None else _conclude(final, arrivals, settings, context)

    expected = _expected(settings, query)

    assert settings.port_scp is not None
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
        final, _ = _retrieve(settings, context, contexts, start)
    if final is None:
        return 1
    kept = {instance.sop_instance_uid for instance in listener.received}
    arrivals = Arrivals(kept, listener.refused, expected.instances if expected else None)
    return _conclude(final, arrivals, settings, context)


@dataclass(frozen=True)
class Expected:
    """What an IMAGE-level C-FIND says a retrieve will bring."""

    sop_classes: list[str]
    instances: set[str]


def _expected(settings: Settings, query: Query) -> Expected | None:
    """The SOP classes and instances a retrieve will bring, from an IMAGE-level C-FIND
    asking for (0008,0016) and (0008,0018): a C-GET proposes exactly those classes with
    the SCP role, and both name each instance that does not arrive. None when the
    server does not say: then the common storage classes are proposed, and only what
    the server names as failed is named."""
    identifier = copy.deepcopy(query.identifier)  # the C-GET itself sends the original
    identifier.QueryRetrieveLevel = "IMAGE"
    for level in LEVELS[LEVELS.index(query.level or "IMAGE") + 1 :]:
        keyword = UNIQUE_KEYS[level]
        if keyword not in identifier:
            setattr(identifier, keyword, "")
    identifier.SOPClassUID = ""
    classes: set[str] = set()
    instances: set[str] = set()
    try:
        with open_association(settings, client.query_contexts(query.root, "find")) as association:
            for response in association.find(identifier, query.root):
                match = response.identifier
                if response.status.is_failure:
                    return None  # not an answer to count on
                if match is not None and match.get("SOPClassUID"):
                    classes.add(str(match.SOPClassUID))
                if match is not None and match.get("SOPInstanceUID"):
                    instances.add(str(match.SOPInstanceUID))
    except (AssociationError, client.NoPresentationContext, DimseError) as exc:
        log.debug("no IMAGE-level C-FIND before the retrieve (%s)", exc)
        return None
    if not classes:
        return None
    return Expected(sorted(classes), instances)


def run_get(settings: Settings, context: Context, query: Query) -> int:
    writer = InstanceWriter(settings.output)
    expected = _expected(settings, query)
    contexts = client.query_contexts(
        query.root,
        "get",
        expected.sop_classes if expected else None,
        compressed=settings.accept_compressed,
    )

    def start(association: client.Association) -> Iterator[RetrieveResponse]:
        return association.get(query.identifier, query.root, writer, settings.priority)

    final, arrivals = _retrieve(settings, context, contexts, start, client.get_roles(contexts))
    if final is None:
        return 1
    arrivals.expected = expected.instances if expected else None
    return _conclude(final, arrivals, settings, context)
