"""What went wrong, in words a person can act on.

The library's exceptions already say what happened in the standard's terms
(`AssociationRejected` names the reason of PS3.8 9.3.4, `ConnectionFailed` the
socket's error). Here each is put in the context of the command that was run, with
the debugging advice of gdcmscu's manual: try a C-ECHO first, a C-FIND before a
C-MOVE, and for a C-MOVE make sure the server maps our AE title to this host and
`--port-scp`.
"""

from __future__ import annotations

from dataclasses import dataclass

from dimse.client import NoPresentationContext
from dimse.status import FindStatus, General, GetStatus, MoveStatus, Status
from dimse.upper_layer import (
    AssociationAborted,
    AssociationError,
    AssociationRejected,
    ConnectionFailed,
    DulTimeout,
)

ACCEPTED_SHOWN = 4  # presentation contexts listed when saying what a server accepted
_ACCEPTED = "it accepted: "


@dataclass(frozen=True, slots=True)
class Context:
    """What the command was doing, for the advice."""

    operation: str  # "echo", "store", "find", "move", "get", "worklist"
    host: str
    port: int
    calling_ae: str
    called_ae: str
    port_scp: int | None = None
    move_destination: str | None = None


def _echo_hint(context: Context) -> str:
    return (
        f"try a C-ECHO first: dicomscu --echo --aetitle {context.calling_ae} "
        f"--call {context.called_ae} {context.host} {context.port}"
    )


def explain_exception(exc: BaseException, context: Context) -> str:
    """A message for an exception from connecting or from an operation."""
    if isinstance(exc, ConnectionFailed):
        return str(exc)
    if isinstance(exc, AssociationRejected):
        return (
            f"{context.host}:{context.port} refused the association: {exc} "
            f"(we called AE title {context.called_ae!r} as {context.calling_ae!r})"
        )
    if isinstance(exc, NoPresentationContext):
        what = {
            "echo": "the Verification service (C-ECHO)",
            "store": "this kind of instance",
            "find": "this query model (C-FIND)",
            "worklist": "Modality Worklist queries",
            "move": "this retrieve model (C-MOVE)",
            "get": "this retrieve model (C-GET)",
        }[context.operation]
        advice = ""
        if context.operation in ("find", "move", "get"):
            other = "--studyroot" if "patient" in str(exc) else "--patientroot"
            advice = f"; the server may support the other model: try {other}"
        return f"the server does not accept {what}: {_shortened(str(exc))}{advice}"
    if isinstance(exc, DulTimeout):
        return (
            f"{exc}; the server did not answer in time: raise --timeout (or "
            "--acse-timeout / --dimse-timeout), or check that the server is not stuck"
        )
    if isinstance(exc, AssociationAborted):
        return (
            f"the association was aborted: {exc}; run again with -D to see the last "
            "PDUs exchanged, and look at the server's log"
        )
    if isinstance(exc, AssociationError):
        return f"{exc}"
    return f"{type(exc).__name__}: {exc}"


def _shortened(text: str) -> str:
    """The library lists every accepted context (a C-GET proposes 127): keep a few."""
    head, found, accepted = text.rpartition(_ACCEPTED)
    if not found:
        return text
    items = accepted.split("; ")
    if len(items) <= ACCEPTED_SHOWN:
        return text
    kept = "; ".join(items[:ACCEPTED_SHOWN])
    return f"{head}{_ACCEPTED}{kept}; and {len(items) - ACCEPTED_SHOWN} more (-D lists them)"


#: The status codes of the operations whose identifier names a level (PS3.4 C.4).
_RETRIEVE_CODES: dict[str, type[MoveStatus] | type[GetStatus]] = {
    "move": MoveStatus,
    "get": GetStatus,
}
_QUERY_CODES: dict[str, type[FindStatus] | type[MoveStatus] | type[GetStatus]] = {
    "find": FindStatus,
    "worklist": FindStatus,
    **_RETRIEVE_CODES,
}


def explain_status(status: Status, context: Context) -> str:
    """A message for a final status that is a failure (or a cancel)."""
    text = f"{_service(context)} failed with status {status}"
    code = status.code
    if context.operation == "move" and code == MoveStatus.MOVE_DESTINATION_UNKNOWN:
        destination = context.move_destination or context.calling_ae
        where = (
            f"this host and --port-scp {context.port_scp}"
            if context.port_scp is not None and destination == context.calling_ae
            else "the host and port where that AE listens"
        )
        return (
            f"{text}: the server does not know the move destination {destination!r}. "
            f"For C-MOVE the server sends the instances to an AE title it must know: "
            f"configure the server to map {destination!r} to {where} (its list of DICOM "
            f"nodes, modalities or AE titles); {_echo_hint(context)}, and run the same "
            "query with --find before --move"
        )
    if status.is_cancel:
        return f"{_service(context)} was cancelled ({status})"
    retrieve = _RETRIEVE_CODES.get(context.operation)
    if retrieve is not None and retrieve.UNABLE_TO_PROCESS <= code <= 0xCFFF:  # Cxxx
        return (
            f"{text}: the server could not process the query; run the same keys with "
            "--find first to check that they match, and give the unique keys of the "
            "levels (e.g. --key 20,d=<Study Instance UID>)"
        )
    query = _QUERY_CODES.get(context.operation)
    if query is not None and code == query.IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS:
        return (
            f"{text}: the identifier does not fit the information model; check the "
            "root (--patientroot/--studyroot), the level and the keys (--queryhelp)"
        )
    if code in (General.NOT_AUTHORIZED, General.SOP_CLASS_NOT_SUPPORTED):
        return f"{text}: ask the server's administrator to allow this service for AE title {context.calling_ae!r}"
    return text


def _service(context: Context) -> str:
    return {
        "echo": "C-ECHO",
        "store": "C-STORE",
        "find": "C-FIND",
        "worklist": "C-FIND (Modality Worklist)",
        "move": "C-MOVE",
        "get": "C-GET",
    }[context.operation]
