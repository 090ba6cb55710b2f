"""dicomscp in one process: its archive, its provider, and the line that says it listens.

The parts (`open_archive`, `make_provider`, `listening_line`) are also those of each
worker of `dicomscp --workers N` (cli/dicomscp/workers.py).
"""

from __future__ import annotations

import logging
import ssl
import sys
import threading
from collections.abc import Callable

from cli.dicomscp.config import ConfigError, ServerConfig
from dimse.archive.archive import Archive, ArchiveLocked, IndexUnavailable
from dimse.archive.backend import describe_index
from dimse.archive.handlers import ArchiveHandlers
from dimse.identity import IdentityHook, users_check
from dimse.scp import Provider
from dimse.tls import TlsConfigError, server_context
from dimse.transfer.convert import Decompress
from dimse.upper_layer import HandOff, Tally

log = logging.getLogger("dicomscp")

STOP_GRACE_SECONDS = 30.0


def tls_context(config: ServerConfig) -> ssl.SSLContext | None:
    """The server's TLS context (None without a certificate); ConfigError if unusable."""
    if config.tls_cert is None:
        if config.tls_key is not None or config.tls_ca is not None:
            raise ConfigError("TLS needs our certificate: --tls-cert (or cert in [tls])")
        return None
    try:
        return server_context(
            config.tls_cert,
            config.tls_key,
            config.tls_ca,
            require_client_cert=config.tls_ca is not None,
        )
    except TlsConfigError as exc:
        raise ConfigError(f"TLS: {exc}") from exc


def identity_hook(config: ServerConfig) -> IdentityHook | None:
    """The user identity check that [users] and require_identity ask for (None: none)."""
    if not config.users and not config.require_identity:
        return None
    return users_check(config.users, require_identity=config.require_identity)


def open_archive(config: ServerConfig, worker: int | None = None) -> Archive | None:
    """The archive, or None when it cannot be opened (the reason logged)."""
    try:
        return Archive(
            config.archive,
            fsync=config.fsync,
            duplicate_policy=config.duplicates,  # type: ignore[arg-type]
            index=config.index,
            node=config.node,
            worker=worker,
        )
    except Exception as exc:
        archive_error(config, exc)
        return None


def archive_error(config: ServerConfig, exc: Exception) -> None:
    """Log why the archive cannot be opened; re-raise what is not an expected reason."""
    if isinstance(exc, ArchiveLocked):
        log.error("%s; is another dicomscp using this archive?", exc)
    elif isinstance(exc, IndexUnavailable):
        log.error("%s", exc)
    elif isinstance(exc, OSError):
        log.error("cannot open the archive %s: %s", config.archive, exc.strerror or exc)
    else:
        raise exc


def _share(total: int, workers: int) -> int:
    """A worker's part of a limit (rounded up)."""
    return max(1, -(-total // workers))


def make_provider(
    config: ServerConfig,
    archive: Archive,
    ssl_context: ssl.SSLContext | None,
    *,
    workers: int = 1,
    handoff: HandOff | None = None,
    on_orphaned: Callable[[], None] | None = None,
    port: int | None = None,
    tally: Tally | None = None,
) -> Provider:
    """The provider serving `archive`. With several `workers`, the association
    limits hold for them all (`tally`); the connections waiting for their
    A-ASSOCIATE-RQ are shared out. Raises OSError when it cannot listen."""
    allowed = config.allowed_calling_aes
    movers = config.move_allowed_aes
    handlers = ArchiveHandlers(
        archive,
        destinations=config.destinations,
        worklist=config.worklist,
        move_allowed=(lambda ae: ae in movers) if movers else None,
    )
    return Provider(
        handlers,
        ae_title=config.aetitle,
        host=config.host,
        port=config.port if port is None else port,
        timeouts=config.timeouts,
        max_associations=config.max_associations,
        max_pending=_share(config.max_pending, workers),
        max_per_caller=config.max_per_caller or None,
        max_identifier=config.max_identifier,
        max_pdu=config.max_pdu,
        check_called_ae=config.check_called_ae,
        calling_ae_allowed=(lambda ae: ae in allowed) if allowed else None,
        ssl_context=ssl_context,
        identity_check=identity_hook(config),
        allow_password_without_tls=config.allow_password_without_tls,
        decompress=Decompress(config.decompress),
        spool_dir=archive.spool_dir,
        handoff=handoff,
        on_orphaned=on_orphaned,
        tally=tally,
    )


def listening_line(
    config: ServerConfig, port: int, count: int, ssl_context: ssl.SSLContext | None, extra: str = ""
) -> None:
    """The first line a script can wait for; it names the port actually bound."""
    print(
        f"dicomscp: {config.aetitle} listening on {config.host}:{port}, "
        f"archive {config.archive} ({count} instances)"
        + _index_note(config)
        + extra
        + _security_note(config, ssl_context),
        file=sys.stderr,
        flush=True,
    )


def serve(config: ServerConfig, stop: threading.Event) -> int:
    """Run the server in this process until `stop` is set; returns the exit status."""
    try:
        ssl_context = tls_context(config)
    except ConfigError as exc:
        log.error("%s", exc)
        return 2
    archive = open_archive(config)
    if archive is None:
        return 1
    try:
        provider = make_provider(config, archive, ssl_context)
    except OSError as exc:
        archive.close()
        log.error("cannot listen on %s:%s: %s", config.host, config.port, exc.strerror or exc)
        return 1
    provider.start()
    listening_line(
        config,
        provider.port,
        archive.count(),
        ssl_context,
        f", node {archive.node}" if archive.node else "",
    )
    stop.wait()
    log.info(
        "stopping: no new associations; waiting up to %.0f s for those in progress",
        STOP_GRACE_SECONDS,
    )
    provider.stop(STOP_GRACE_SECONDS)
    archive.close()
    log.info("stopped")
    return 0


def _index_note(config: ServerConfig) -> str:
    if config.index is None:
        return ""
    return f"; index {describe_index(config.index)}"


def _security_note(config: ServerConfig, ssl_context: ssl.SSLContext | None) -> str:
    parts = []
    if ssl_context is not None:
        parts.append("TLS" + (", client certificates required" if config.tls_ca else ""))
    if config.users or config.require_identity:
        parts.append(
            f"user identity checked ({len(config.users)} users"
            + (", required" if config.require_identity else "")
            + ")"
        )
    return "; " + "; ".join(parts) if parts else ""
