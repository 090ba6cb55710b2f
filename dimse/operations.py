"""The operations of one association, as the engine keeps them (PS3.7 9.3, 9.3.2.3).

An `Operation` is a request we sent, until its final response; a `Served` one a
request we perform, until we send ours. A C-FIND, C-MOVE or C-GET answers with
pending responses first; a C-CANCEL-RQ asks the performer to stop between two.
"""

from __future__ import annotations

from collections import deque

from dimse.message_base import Response
from dimse.reassembly import ReceivedMessage


class Operation:
    """A request we sent, until its final response (PS3.7 9.3: C-FIND, C-MOVE and
    C-GET answer with pending responses first)."""

    __slots__ = ("cancelled", "context_id", "done", "kind", "message_id", "responses")

    def __init__(self, message_id: int, context_id: int, kind: type[Response]) -> None:
        self.message_id = message_id
        self.context_id = context_id
        self.kind = kind
        #: responses received and not yet taken, in order
        self.responses: deque[tuple[Response, ReceivedMessage]] = deque()
        self.done = False  # the final response came, or the association ended
        self.cancelled = False  # we sent C-CANCEL-RQ; later responses are dropped

    @property
    def ready(self) -> bool:
        """A response waits to be taken, or none will come any more."""
        return bool(self.responses) or self.done

    def take(self) -> tuple[Response, ReceivedMessage] | None:
        return self.responses.popleft() if self.responses else None


class Served:
    """A request we perform, until we send its final response."""

    __slots__ = ("cancelled", "context_id", "message_id")

    def __init__(self, message_id: int, context_id: int) -> None:
        self.message_id = message_id
        self.context_id = context_id
        self.cancelled = False  # a C-CANCEL-RQ for it came (PS3.7 9.3.2.3)
