"""dicomscp on every core (`--workers N`, TOML `workers`; default: the cores it may use).

A supervisor process listens and hands each connection to the worker process that
has the fewest in progress (dimse.upper_layer.Prefork, which says why this way).
Every worker serves associations as the one-process dicomscp does, with the same
archive:

- SQLite (the default): the supervisor opens the archive first, as its one process:
  it rolls every journal entry forward and removes every temporary file, then keeps
  the folder's lock, which the workers it forks share. The workers commit into the
  one index in turn, each batch under one lock from journaling to indexing, so that
  two workers storing the same SOP Instance UID leave one file and one row
  (dimse/archive/index.py).
- PostgreSQL: each worker is a node of the shared index, named `<node>-<n>`.

The limits on associations (`max_associations`, `max_per_caller`) hold for the
server as a whole: the workers count them together in shared memory
(dimse.upper_layer.Tally). The connections still waiting for their A-ASSOCIATE-RQ
(`max_pending`) are shared out among the workers.

What holds, as for one process: a store is acknowledged only once its file and its
index row are durable, so a SIGKILL of a worker, or of the whole server, loses
nothing acknowledged; a worker started again after a crash rolls forward what the
dead one left half done. SIGINT or SIGTERM to the supervisor stops every worker as
one dicomscp stops: no new associations, those in progress finish.
"""

from __future__ import annotations

import logging
import os
import signal
import ssl
import threading
from types import FrameType

from cli.dicomscp.config import ConfigError, ServerConfig
from cli.dicomscp.serving import (
    STOP_GRACE_SECONDS,
    archive_error,
    listening_line,
    make_provider,
    open_archive,
    tls_context,
)
from dimse.archive.archive import Archive
from dimse.archive.backend import default_node
from dimse.upper_layer import HandOff, Prefork, listen, tell_ready

log = logging.getLogger("dicomscp")


def cores() -> int:
    """The cores this process may run on (its CPU affinity, which a container or
    `taskset` may narrow)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def serve_workers(config: ServerConfig, workers: int) -> int:
    """Run the supervisor and its `workers` until SIGINT or SIGTERM; the exit status."""
    try:
        ssl_context = tls_context(config)
    except ConfigError as exc:
        log.error("%s", exc)
        return 2
    try:
        claim, count = Archive.hold_for_workers(
            config.archive, fsync=config.fsync, index=config.index, node=config.node
        )
    except Exception as exc:
        archive_error(config, exc)
        return 1
    try:
        try:
            listener = listen(config.host, config.port)
        except OSError as exc:
            log.error("cannot listen on %s:%s: %s", config.host, config.port, exc.strerror or exc)
            return 1
        port = listener.getsockname()[1]

        def worker(number: int, handoff: HandOff) -> int:
            return _worker(config, ssl_context, prefork, port, number, handoff)

        prefork = Prefork(listener, workers, worker, grace=STOP_GRACE_SECONDS + 10)

        def on_signal(signum: int, frame: FrameType | None) -> None:
            prefork.stop()

        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)
        if not prefork.start():
            if prefork.stop_asked:  # SIGINT or SIGTERM while the workers started
                log.info("stopped")
                return 0
            log.error("dicomscp stopped: a worker could not start (its reason is above)")
            return 1
        node = f", node {config.node or default_node()}" if config.index else ""
        listening_line(config, port, count, ssl_context, f"{node}; {workers} workers")
        status = prefork.run()
        log.info("stopped")
        return status
    finally:
        if claim is not None:
            claim.release()


def _name_in_log(number: int) -> None:
    """Each line a worker logs says which worker: `... INFO w2 dimse.scp: ...`."""
    for handler in logging.getLogger().handlers:
        handler.setFormatter(
            logging.Formatter(f"%(asctime)s %(levelname)s w{number} %(name)s: %(message)s")
        )


def _worker(
    config: ServerConfig,
    ssl_context: ssl.SSLContext | None,
    prefork: Prefork,
    port: int,
    number: int,
    handoff: HandOff,
) -> int:
    """Worker `number`'s life (in its own process): open the archive, serve the
    connections the supervisor hands over, stop on SIGTERM or when the supervisor
    is gone."""
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    _name_in_log(number)
    archive = open_archive(config, worker=number)
    if archive is None:
        return 1
    try:
        provider = make_provider(
            config,
            archive,
            ssl_context,
            workers=len(prefork.workers),
            handoff=handoff,
            on_orphaned=stop.set,
            port=port,
            tally=prefork.tally,
        )
        provider.start()
        tell_ready(handoff)
        log.debug("worker %d serving (pid %d)", number, os.getpid())
        stop.wait()
        log.info(
            "worker %d stopping: waiting up to %.0f s for the associations in progress",
            number,
            STOP_GRACE_SECONDS,
        )
        provider.stop(STOP_GRACE_SECONDS)
    finally:
        archive.close()
    return 0
