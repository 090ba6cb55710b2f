"""Locks for state that hooks share: the one thing of the drivers' threads that the
code above them needs.

A provider calls its hooks from several threads at once (the blocking one, a thread
per association; the asyncio one, plain hooks in worker threads), so a `Handlers`
that keeps state (the archive's index, a list of what was received) guards it with a
lock, and a thread that waits for another's work (the archive's group commit) a
`Signal`. It asks for them here, rather than importing `threading` itself: threads
are the drivers' business.
"""

from __future__ import annotations

import threading
from contextlib import AbstractContextManager
from typing import Protocol


def new_lock() -> AbstractContextManager[bool]:
    """A mutual-exclusion lock, for a `with` block."""
    return threading.Lock()


class Signal(Protocol):
    """A one-time signal between threads: one `set()`s it, another `wait()`s for it."""

    def set(self) -> None: ...

    def wait(self, timeout: float | None = None) -> bool: ...


def new_signal() -> Signal:
    """A signal, not set yet."""
    return threading.Event()
