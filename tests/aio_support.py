"""The asyncio provider (`dimse.aio.Provider`) for tests written with threads: served
by an event loop in a thread of its own, with the face of the blocking
`dimse.scp.Provider` (`.port`, `start()`, `stop()`, a context manager).

    with AioProviderThread(handlers, ae_title="OURSCP", host=HOST, port=0) as provider:
        run_dcmtk("echoscu", "-aec", "OURSCP", HOST, str(provider.port))

`provider_factory` (a fixture: `pytest_plugins = ["tests.aio_support"]` in a test
module) is the provider class of one kind or the other, params "blocking" and
"asyncio": a test that takes it runs once with each, with the same constructor
arguments. `active_associations(provider)` reads the count of either kind.

Nothing here sleeps: start waits for the loop to say the provider listens (or why it
could not), stop waits for the loop to have stopped the provider, then joins the
thread.

PYTEST_DONT_REWRITE: test modules import this file before pytest loads it as their
plugin; its asserts are plain ones, so pytest need not rewrite it (nor warn that it
cannot).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

import pytest

from dimse import aio, scp
from dimse.handlers import Handlers

T = TypeVar("T")

#: How long the loop thread may take to start or stop the provider (the provider's
#: own stop timeout comes on top of the latter).
THREAD_S = 30.0
KINDS = ("blocking", "asyncio")


class AioProviderThread:
    """`dimse.aio.Provider(handlers, **options)`, served by `asyncio.run` in a thread."""

    def __init__(self, handlers: Handlers, **options: Any) -> None:
        self.handlers = handlers
        self.options = options
        self.provider: aio.Provider | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._started: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._stop: asyncio.Event | None = None
        self._stop_timeout: float | None = 10.0
        #: what `asyncio.run` raised in the thread, if anything
        self.error: BaseException | None = None

    # -- the face of dimse.scp.Provider

    @property
    def port(self) -> int:
        assert self.provider is not None, "not started"
        return self.provider.port

    @property
    def active_associations(self) -> int:
        """Associations holding a place in the limits now (`dul.admission`)."""
        assert self.provider is not None, "not started"
        return self.provider.server.admission.active

    @property
    def thread_name(self) -> str:
        """The name of the loop's thread: where async hooks run (plain ones do not)."""
        assert self._thread is not None, "not started"
        return self._thread.name

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> AioProviderThread:
        """Start the loop thread; return once the provider listens (or raise why not)."""
        assert self._thread is None, "started twice"
        self._thread = threading.Thread(target=self._run, name="aio-provider", daemon=True)
        self._thread.start()
        try:
            self._started.result(THREAD_S)
        except BaseException:
            self._thread.join(THREAD_S)
            raise
        return self

    def stop(self, timeout: float | None = 10.0) -> None:
        """Stop the provider (its associations get `timeout`), end the loop, join."""
        thread, loop, stop = self._thread, self.loop, self._stop
        if thread is None or not thread.is_alive() or loop is None or stop is None:
            return
        self._stop_timeout = timeout
        with contextlib.suppress(RuntimeError):  # the loop has just closed
            loop.call_soon_threadsafe(stop.set)
        thread.join((timeout or 0.0) + THREAD_S)
        if thread.is_alive():
            raise RuntimeError("the asyncio provider's thread did not end")
        if self.error is not None:
            raise RuntimeError("the asyncio provider's loop failed") from self.error

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = THREAD_S) -> T:
        """Run a coroutine in the provider's loop (to look at its state there)."""
        assert self.loop is not None, "not started"
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def __enter__(self) -> AioProviderThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the thread

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # told to start() or stop(), not lost in the thread
            self.error = exc
            if not self._started.done():
                self._started.set_exception(exc)

    async def _serve(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        try:
            self.provider = aio.Provider(self.handlers, **self.options)
            await self.provider.start()
        except BaseException as exc:
            self._started.set_exception(exc)
            return
        self._started.set_result(None)
        try:
            await self._stop.wait()
        finally:
            await self.provider.stop(self._stop_timeout)


ProviderFactory = Callable[..., Any]


def make_provider(kind: str, handlers: Handlers, **options: Any) -> Any:
    """A provider of `kind` ("blocking" or "asyncio"), not started yet."""
    if kind == "blocking":
        return scp.Provider(handlers, **options)
    if kind == "asyncio":
        return AioProviderThread(handlers, **options)
    raise ValueError(f"no provider of kind {kind!r}; known: {', '.join(KINDS)}")


def active_associations(provider: Any) -> int:
    """The associations a provider of either kind counts as open now."""
    if isinstance(provider, AioProviderThread):
        return provider.active_associations
    count: int = provider.server.active_associations
    return count


@pytest.fixture(params=KINDS)
def provider_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


@pytest.fixture
def provider_factory(provider_kind: str) -> Iterator[ProviderFactory]:
    """make(handlers, **options) -> a provider of this run's kind, with the arguments of
    `dimse.scp.Provider`; not started (use it as a context manager, or `start()`).
    An asyncio one still running at the end of the test is stopped then."""
    made: list[AioProviderThread] = []

    def make(handlers: Handlers, **options: Any) -> Any:
        provider = make_provider(provider_kind, handlers, **options)
        if isinstance(provider, AioProviderThread):
            made.append(provider)
        return provider

    yield make
    for provider in made:
        provider.stop()
