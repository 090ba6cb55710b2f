"""The standard's words for A-ASSOCIATE-RJ and A-ABORT parameters (PS3.8 9.3.4, 9.3.8)."""

from __future__ import annotations

RJ_RESULTS = {1: "rejected-permanent", 2: "rejected-transient"}

RJ_SOURCES = {
    1: "DICOM UL service-user",
    2: "DICOM UL service-provider (ACSE related function)",
    3: "DICOM UL service-provider (Presentation related function)",
}

#: (source, reason) -> the standard's wording.
RJ_REASONS = {
    (1, 1): "no-reason-given",
    (1, 2): "application-context-name-not-supported",
    (1, 3): "calling-AE-title-not-recognized",
    (1, 7): "called-AE-title-not-recognized",
    (2, 1): "no-reason-given",
    (2, 2): "protocol-version-not-supported",
    (3, 1): "temporary-congestion",
    (3, 2): "local-limit-exceeded",
}

#: What a person can do about each rejection.
RJ_ADVICE = {
    (1, 3): "the server does not know our AE title (--aetitle); ask its administrator to add it",
    (1, 7): "the server's AE title is not the one we called (--call); check its configuration",
    (1, 2): "the server does not speak the DICOM application context",
    (2, 2): "the server does not support upper-layer protocol version 1",
    (3, 1): "the server is busy; try again later",
    (3, 2): "the server has reached its limit of associations; try again later",
}

ABORT_SOURCES = {0: "DICOM UL service-user", 1: "reserved", 2: "DICOM UL service-provider"}


def describe_rejection(result: int, source: int, reason: int) -> str:
    """A sentence for an A-ASSOCIATE-RJ, e.g. 'rejected-permanent by the DICOM UL
    service-user: calling-AE-title-not-recognized'."""
    words = RJ_REASONS.get((source, reason), f"reason {reason}")
    text = (
        f"association rejected ({RJ_RESULTS.get(result, f'result {result}')}) by the "
        f"{RJ_SOURCES.get(source, f'source {source}')}: {words}"
    )
    advice = RJ_ADVICE.get((source, reason))
    return f"{text}; {advice}" if advice else text
