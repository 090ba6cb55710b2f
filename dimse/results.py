"""What the service operations return: results that carry a status, not exceptions.

A DIMSE failure status is an answer, not an error (docs/design.md, Errors): the caller
reads `status.category` and `status.name`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from dimse.status import Status

if TYPE_CHECKING:
    from pydicom.dataset import Dataset


@dataclass(frozen=True)
class StoreResult:
    """The answer to one C-STORE (PS3.4 B.2.3)."""

    status: Status
    sop_class_uid: str
    sop_instance_uid: str
    source: Path | None = None


@dataclass(frozen=True)
class FindResponse:
    """One C-FIND response: pending ones carry an identifier (a match)."""

    status: Status
    identifier: Dataset | None
    message_id: int
    #: why the identifier that came with this response cannot be read (then
    #: `identifier` is None): a malformed data set, or one over the size limit
    problem: str = ""


@dataclass(frozen=True)
class RetrieveResponse:
    """One C-MOVE or C-GET response with its sub-operation counts (PS3.4 C.4.2.1.5)."""

    status: Status
    remaining: int | None
    completed: int | None
    failed: int | None
    warning: int | None
    failed_sop_instances: tuple[str, ...] = field(default=())
    message_id: int = 0
    comment: str = ""  # the Error Comment (0000,0902), when the peer sent one


@dataclass(frozen=True)
class ReceivedInstance:
    """An instance received by a storage SCP (ours, for C-MOVE or C-GET)."""

    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax: str
    path: Path | None
