"""dicomscp: a DICOM server with an embedded archive.

    dicomscp [--aetitle AE] [--archive DIR] [--index URI] [--workers N] [--config FILE]
             [--tls-cert FILE ...] [PORT]

Serves verification, storage of every storage SOP class (kept as received),
query/retrieve (C-FIND, C-MOVE, C-GET; patient and study root, every level) and,
with --worklist, Modality Worklist C-FIND. Logs one line per association and per
operation on stderr. SIGINT or SIGTERM stops it cleanly: no new associations, and
the ones in progress are given time to finish what they are storing.

It serves from as many processes as it has cores (--workers N): a supervisor hands
each connection to the worker with the fewest (cli/dicomscp/workers.py).

The index is SQLite in the archive folder unless --index names a PostgreSQL database
(postgresql://USER@HOST:PORT/DB, any libpq URI): then several dicomscp nodes, each with
its own --node name, sharing that database and one archive folder act as one archive.

With --tls-cert/--tls-key (or [tls] in the configuration) every connection is TLS 1.2
or newer (PS3.15 B.9; 2762 is DICOM over TLS's registered port); with --tls-ca too,
clients need a certificate signed by that CA. With [users] (or require_identity), the
user identity of each association (PS3.7 D.3.3.7) is checked; `--hash-password` prints
the stored form of a password for [users].
"""

from __future__ import annotations

import argparse
import getpass
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from cli.dicomscp.config import (
    ConfigError,
    ServerConfig,
    check_index,
    check_node_name,
    check_workers,
    load_config,
    parse_address,
)
from cli.dicomscp.serving import identity_hook as identity_hook
from cli.dicomscp.serving import serve as serve
from cli.dicomscp.serving import tls_context as tls_context
from cli.dicomscp.workers import cores, serve_workers
from cli.logs import warnings_as_log_lines
from dimse.identity import hash_password
from dimse.upper_layer import valid_ae_title

log = logging.getLogger("dicomscp")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dicomscp",
        description="A DICOM server (storage, query/retrieve, worklist) with an embedded archive.",
        epilog="The configuration file is TOML; see README.md ('dicomscp') for every setting. "
        "Command-line options override it.",
    )
    parser.add_argument(
        "port", nargs="?", type=int, help="TCP port (default 11112; 0 picks a free one)"
    )
    parser.add_argument("--aetitle", help="our AE title (default DICOMSCP)")
    parser.add_argument("--archive", type=Path, help="archive folder (default ./dicom-archive)")
    parser.add_argument(
        "--index",
        metavar="URI",
        help="where the archive's index is: 'sqlite' (default, in the archive folder) or "
        "postgresql://USER@HOST:PORT/DB (any libpq URI; its password may come from "
        "~/.pgpass or PGPASSWORD) to share one archive between several dicomscp nodes, "
        "which then also share the archive folder",
    )
    parser.add_argument(
        "--node",
        metavar="NAME",
        help="with a PostgreSQL index: this dicomscp's name among the nodes sharing the "
        "archive (default: the machine's name; give each process its own)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="serve from N processes, to use N cores (default: the cores this machine "
        "gives dicomscp; 1: one process)",
    )
    parser.add_argument("--config", type=Path, help="TOML configuration file")
    parser.add_argument("--host", help="address to listen on (default 0.0.0.0; '::' for IPv6)")
    parser.add_argument(
        "--worklist", type=Path, help="folder of worklist files for Modality Worklist C-FIND"
    )
    parser.add_argument(
        "--destination",
        action="append",
        default=[],
        metavar="AE=HOST:PORT",
        help="a C-MOVE destination (repeatable; adds to the configuration's [destinations])",
    )
    parser.add_argument(
        "--allow",
        action="append",
        default=[],
        metavar="AE",
        help="allow this calling AE title only (repeatable)",
    )
    parser.add_argument(
        "--check-called-ae",
        action="store_true",
        help="refuse associations not addressed to our AE title",
    )
    parser.add_argument(
        "--max-associations", type=int, help="associations served at once (default 64)"
    )
    parser.add_argument(
        "--no-fsync",
        action="store_true",
        help="do not fsync (faster; an acknowledged instance may be lost on power failure)",
    )
    parser.add_argument(
        "--decompress",
        choices=("never", "lossless", "lossy"),
        help="C-MOVE/C-GET to a peer that takes no compressed syntax: decompress lossless "
        "compressions only (default), lossy ones too, or never",
    )
    parser.add_argument(
        "--tls-cert",
        type=Path,
        metavar="FILE",
        help="TLS: our certificate (PEM); every connection is then TLS",
    )
    parser.add_argument(
        "--tls-key", type=Path, metavar="FILE", help="TLS: our private key (PEM, no password)"
    )
    parser.add_argument(
        "--tls-ca",
        type=Path,
        metavar="FILE",
        help="TLS: require client certificates signed by this CA (PEM)",
    )
    parser.add_argument(
        "--hash-password",
        action="store_true",
        help="read a password on stdin (prompted on a terminal), print its stored form for [users], and exit",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="log every operation (default)"
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="log warnings and errors only")
    parser.add_argument(
        "-D", "--debug", action="store_true", help="log every PDU and state transition"
    )
    parser.add_argument("-L", "--log-file", type=Path, help="log to this file instead of stderr")
    return parser


def settings(args: argparse.Namespace) -> ServerConfig:
    config = load_config(args.config) if args.config else ServerConfig()
    if args.port is not None:
        config.port = args.port
    if args.aetitle:
        if not valid_ae_title(args.aetitle) or len(args.aetitle) > 16:
            raise ConfigError(f"--aetitle {args.aetitle!r} is not an AE title (1 to 16 characters)")
        config.aetitle = args.aetitle
    if args.archive:
        config.archive = args.archive
    if args.index:
        config.index = check_index(args.index, "--index")
    if args.node:
        config.node = check_node_name(args.node, "--node")
    if args.workers is not None:
        config.workers = check_workers(args.workers, "--workers")
    if args.host:
        config.host = args.host
    if args.worklist:
        config.worklist = args.worklist
    for entry in args.destination:
        ae, sep, address = entry.partition("=")
        if not sep:
            raise ConfigError(f"--destination {entry!r} is not AE=HOST:PORT")
        config.destinations[ae.strip()] = parse_address(address, f"--destination {entry}")
    if args.allow:
        config.allowed_calling_aes = frozenset(args.allow)
    if args.check_called_ae:
        config.check_called_ae = True
    if args.max_associations is not None:
        config.max_associations = args.max_associations
    if args.no_fsync:
        config.fsync = False
    if args.decompress:
        config.decompress = args.decompress
    for key in ("tls_cert", "tls_key", "tls_ca"):
        if getattr(args, key) is not None:
            setattr(config, key, getattr(args, key))
    return config


def _hash_password() -> int:
    if sys.stdin.isatty():
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            print("dicomscp: the two passwords differ", file=sys.stderr)
            return 2
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        print(
            'dicomscp: an empty password; for a username alone, write "" in [users]',
            file=sys.stderr,
        )
        return 2
    print(hash_password(password))
    return 0


def _configure_logging(args: argparse.Namespace) -> None:
    level = logging.DEBUG if args.debug else logging.WARNING if args.quiet else logging.INFO
    handler: logging.Handler = (
        logging.FileHandler(args.log_file) if args.log_file else logging.StreamHandler(sys.stderr)
    )
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(level)
    # pydicom warns of what it logs: its Python warnings become our log lines (below),
    # and its own records are kept for -D, so that nothing is said twice.
    pydicom_logger = logging.getLogger("pydicom")
    pydicom_logger.propagate = args.debug
    pydicom_logger.addHandler(logging.NullHandler())


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.hash_password:
        return _hash_password()
    _configure_logging(args)
    try:
        config = settings(args)
    except ConfigError as exc:
        print(f"dicomscp: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    workers = config.workers or cores()
    with warnings_as_log_lines(log):  # never a raw warning in the log (any thread)
        if workers > 1:
            return serve_workers(config, workers)
        return serve(config, stop)
