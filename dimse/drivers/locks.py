"""Locks for state that hooks share: the one thing of the drivers' threads that the
code above them needs.

A provider calls its hooks from several threads at once (the blocking one, a thread
per association; the asyncio one, plain hooks in worker threads), so a `Handlers`
that keeps state (the archive's index, a list of what was received) guards it with a
lock. It asks for one here, rather than importing `threading` itself: threads are
the drivers' business.
"""

from __future__ import annotations

import threading
from contextlib import AbstractContextManager


def new_lock() -> AbstractContextManager[bool]:
    """A mutual-exclusion lock, for a `with` block."""
    return threading.Lock()
