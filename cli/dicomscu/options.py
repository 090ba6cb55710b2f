"""What dicomscu's command line means: `resolve()` turns the arguments parsed by
`cli.dicomscu.parser` into `Settings`, applying gdcmscu's rules:

- positionals: HOSTNAME, or HOSTNAME PORT, or HOSTNAME PORT FILE...; the files replace
  any -i files, and the positionals win over -H and -p (gdcmscu reads them last);
- several operations: the first in gdcmscu's order runs (echo, store, find, move, get,
  worklist), and we say which;
- AE titles are checked (at most 16 characters, PS3.5 AE) before anything connects;
- dicomscu's own security options: `--tls*` make the TLS context (any of them implies
  --tls; the port is then 2762, DICOM over TLS, when none is given); `--username`,
  `--password` (or $DICOMSCU_PASSWORD), `--token-file`/`--token-type` make the user
  identity (PS3.7 D.3.3.7). A file that cannot be used is a usage error.
- `--dump-pdus FILE`: the `PduRecorder` that writes the PDUs of every association
  opened to FILE; FILE is created (emptied) here, and one that cannot be written is
  a usage error.

`UsageError` is a command line that cannot run as written (exit status 2).
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from cli.dicomscu.parser import DEFAULT_MAX_PDU, PRIORITIES, port_number
from dimse.limits import DEFAULT_MAX_IDENTIFIER
from dimse.models import Root
from dimse.transfer.convert import Decompress
from dimse.upper_layer import PduRecorder, Timeouts, UserIdentityRQSubItem

if TYPE_CHECKING:
    import ssl

DEFAULT_PORT = 104
PASSWORD_VARIABLE = "DICOMSCU_PASSWORD"
OPERATION_ORDER = ("echo", "store", "find", "move", "get", "worklist")
MAX_AE_LENGTH = 16


class UsageError(ValueError):
    """The command line cannot run as written; the message says what to change."""


@dataclass(frozen=True)
class Settings:
    """What to do, resolved from the command line."""

    operation: str
    host: str
    port: int
    calling_ae: str
    called_ae: str
    files: tuple[Path, ...] = ()
    recursive: bool = False
    roots: tuple[Root, ...] = ()
    levels: tuple[str, ...] = ()
    key_arguments: tuple[str, ...] = ()
    store_query: Path | None = None
    json: bool = False
    output: Path = field(default_factory=Path)
    port_scp: int | None = None
    move_destination: str | None = None
    timeouts: Timeouts = field(default_factory=Timeouts)
    max_pdu: int = DEFAULT_MAX_PDU
    priority: int = PRIORITIES["low"]
    async_window: int | None = None  # --store: asynchronous operations window to propose
    associations: int = 1  # --store: associations at once
    decompress: Decompress = Decompress.LOSSLESS  # --store: what may be decompressed
    max_identifier: int | None = DEFAULT_MAX_IDENTIFIER  # a response's identifier, at most
    accept_compressed: bool = True  # --move/--get: take compressed instances as they come
    notes: tuple[str, ...] = ()  # warnings about the command line, to print
    ssl_context: ssl.SSLContext | None = None
    user_identity: UserIdentityRQSubItem | None = None
    identity_response: bool = False  # the server must confirm the identity
    pdu_recorder: PduRecorder | None = None  # --dump-pdus: records every PDU to a file


def check_ae_title(title: str, option: str) -> str:
    """`title` if it is a valid AE title (PS3.5 AE); else UsageError."""
    if not title.strip(" "):
        raise UsageError(f"{option}: an AE title cannot be empty")
    if len(title) > MAX_AE_LENGTH:
        raise UsageError(
            f"{option} {title!r}: an AE title has at most {MAX_AE_LENGTH} characters "
            f"(PS3.5, VR AE); this one has {len(title)}"
        )
    if "\\" in title or any(ord(c) < 0x20 or ord(c) > 0x7E for c in title):
        raise UsageError(
            f"{option} {title!r}: an AE title holds printable ASCII characters only, "
            "without backslash (PS3.5, VR AE)"
        )
    return title


def _timeouts(args: argparse.Namespace) -> Timeouts:
    def pick(specific: float | None, default: float | None) -> float | None:
        value = specific if specific is not None else args.timeout
        if value is None:
            return default
        return None if value == 0 else value

    base = Timeouts()
    return Timeouts(
        connect=pick(args.connect_timeout, base.connect),
        acse=pick(args.acse_timeout, base.acse),
        dimse=pick(args.dimse_timeout, base.dimse),
        idle=base.idle,
        artim=base.artim,
    )


def _tls_context(args: argparse.Namespace) -> ssl.SSLContext | None:
    """The TLS context the --tls options ask for (None: no TLS)."""
    given = (args.tls_ca, args.tls_cert, args.tls_key)
    if not (args.tls or args.tls_no_verify or any(given)):
        return None
    if args.tls_no_verify and args.tls_ca is not None:
        raise UsageError("--tls-no-verify and --tls-ca contradict each other: give one")
    from dimse import tls  # imports ssl: only when TLS is asked for

    try:
        return tls.client_context(
            args.tls_ca, args.tls_cert, args.tls_key, verify=not args.tls_no_verify
        )
    except tls.TlsConfigError as exc:
        raise UsageError(f"TLS: {exc}") from None


def _user_identity(
    args: argparse.Namespace, secure: bool, notes: list[str]
) -> UserIdentityRQSubItem | None:
    """The User Identity sub-item the options ask for (None: none)."""
    password = args.password
    if password is None and args.username is not None:
        password = os.environ.get(PASSWORD_VARIABLE) or None
    if args.password is not None and args.username is None:
        raise UsageError("--password goes with --username")
    if args.username is not None and args.token_file is not None:
        raise UsageError("--username and --token-file are two identities: give one")
    if args.identity_response and args.username is None and args.token_file is None:
        raise UsageError("--identity-response needs an identity: --username or --token-file")
    wants_response = bool(args.identity_response)
    token: bytes | None = None
    if args.token_file is not None:
        try:
            token = args.token_file.read_bytes()
        except OSError as exc:
            raise UsageError(f"--token-file {args.token_file}: {exc.strerror or exc}") from None
        if args.token_type == "jwt":
            token = token.strip()  # a JWT is text; a final newline is not part of it
    elif args.username is None:
        return None
    elif password is not None:
        if args.password is not None:
            notes.append(
                "--password can be seen by other users of this computer; prefer the "
                f"environment variable {PASSWORD_VARIABLE}"
            )
        if not secure:
            notes.append(
                "the password is sent without TLS, readable by anyone on the network; "
                "use --tls (many servers refuse a password without it)"
            )
    from dimse import identity  # its hashing is for servers; here only when asked for

    try:
        if token is not None:
            return identity.token(
                args.token_type, token, positive_response_requested=wants_response
            )
        if password is None:
            return identity.username(args.username, positive_response_requested=wants_response)
        return identity.username_password(
            args.username, password, positive_response_requested=wants_response
        )
    except ValueError as exc:
        raise UsageError(f"user identity: {exc}") from None


def _pdu_recorder(path: Path | None) -> PduRecorder | None:
    """The recorder of --dump-pdus (None: not asked for); FILE is created now."""
    if path is None:
        return None
    try:
        return PduRecorder(path)
    except OSError as exc:
        raise UsageError(f"--dump-pdus {path}: {exc.strerror or exc}") from None


def choose_operation(given: list[str]) -> tuple[str, str | None]:
    """The operation to run and, when several were given, a note saying which runs."""
    distinct = list(dict.fromkeys(given))
    if not distinct:
        return "echo", None
    chosen = min(distinct, key=OPERATION_ORDER.index)
    if len(distinct) == 1:
        return chosen, None
    given_text = " ".join(f"--{name}" for name in distinct)
    return chosen, (
        f"several operations were given ({given_text}); running --{chosen}, the first "
        f"in gdcmscu's order ({', '.join(OPERATION_ORDER)})"
    )


def resolve(args: argparse.Namespace) -> Settings:
    """Settings from parsed arguments, by gdcmscu's rules; UsageError if they cannot run."""
    notes: list[str] = []
    operation, note = choose_operation(args.operations or [])
    if note:
        notes.append(note)

    ssl_context = _tls_context(args)
    user_identity = _user_identity(args, ssl_context is not None, notes)
    host: str | None = args.hostname
    default_port = DEFAULT_PORT
    if ssl_context is not None:
        from dimse.tls import DICOM_TLS_PORT  # loaded already, by _tls_context

        default_port = DICOM_TLS_PORT
    port: int = args.port if args.port is not None else default_port
    files = [Path(p) for p in args.input]
    positionals: list[str] = args.positionals
    if positionals:
        host = positionals[0]
    if len(positionals) >= 2:
        try:
            port = port_number(positionals[1])
        except argparse.ArgumentTypeError as exc:
            raise UsageError(f"PORT (the second positional argument): {exc}") from None
    if len(positionals) >= 3:
        files = [Path(p) for p in positionals[2:]]
    if not host:
        raise UsageError("a HOSTNAME is needed: dicomscu [OPTION]... HOSTNAME [PORT] [FILE]...")

    calling = check_ae_title(args.aetitle, "--aetitle")
    called = check_ae_title(args.call, "--call")
    destination = args.move_destination
    if destination is not None:
        check_ae_title(destination, "--move-destination")

    if operation == "store" and not files:
        raise UsageError("--store needs files: give them after HOSTNAME PORT, or with -i FILE")
    if operation != "store" and files:
        notes.append(f"files are only sent by --store; --{operation} ignores them")
    if operation in ("echo", "store") and args.store_query is not None:
        notes.append(f"--store-query writes a query; --{operation} has none, so no file is written")
    if operation == "move":
        third_party = destination is not None and destination != calling
        if args.port_scp is None and not third_party:
            raise UsageError(
                "--move needs --port-scp PORT: the server sends the instances to our AE title "
                f"{calling!r} on that port, which the server must know (its configuration maps "
                "the AE title to this host and port); or --move-destination AE to send them "
                "to another AE"
            )
        if third_party and args.port_scp is not None:
            notes.append(f"--port-scp is not used: the instances go to {destination!r}, not to us")
    if operation != "move" and destination is not None:
        notes.append(f"--move-destination is only used by --move; --{operation} ignores it")
    pdu_recorder = _pdu_recorder(args.dump_pdus)

    return Settings(
        operation=operation,
        host=host,
        port=port,
        calling_ae=calling,
        called_ae=called,
        files=tuple(files),
        recursive=args.recursive,
        roots=tuple(args.roots or ()),
        levels=tuple(args.levels or ()),
        key_arguments=tuple(args.keys),
        store_query=args.store_query,
        json=args.json,
        output=args.output if args.output is not None else Path.cwd(),
        port_scp=args.port_scp,
        move_destination=destination,
        timeouts=_timeouts(args),
        max_pdu=args.max_pdu,
        priority=PRIORITIES[args.priority],
        async_window=args.async_window,
        associations=args.associations,
        decompress=Decompress(args.decompress),
        max_identifier=args.max_identifier or None,
        accept_compressed=args.accept == "any",
        notes=tuple(notes),
        ssl_context=ssl_context,
        user_identity=user_identity,
        identity_response=args.identity_response,
        pdu_recorder=pdu_recorder,
    )
