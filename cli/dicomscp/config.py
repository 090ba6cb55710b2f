"""The configuration of `dicomscp`: a TOML file, overridden by the command line.

    aetitle = "DICOMSCP"
    port = 11112
    host = "0.0.0.0"                 # address to listen on ("::" for IPv6)
    archive = "./dicom-archive"
    index = "sqlite"                 # or postgresql://USER@HOST:PORT/DB: an index shared
                                     # by several dicomscp nodes (and the archive folder)
    node = "scp-a"                   # with PostgreSQL: this node's name (default: host name)
    workers = 2                      # processes serving associations (default: the
                                     # machine's cores; 1: one process)
    worklist = "./worklist"          # optional: folder of worklist files (*.wl, *.dcm)
    max_associations = 64
    max_pending = 256                # connections not yet associated; past it the oldest goes
    max_per_caller = 16              # associations of one calling AE title (0: no limit)
    max_identifier = 1048576         # the longest C-FIND/C-MOVE/C-GET identifier kept
    max_pdu = 1048576                # the largest P-DATA-TF we accept (PS3.8 D.1)
    check_called_ae = false          # refuse a called AE title other than ours (1, 1, 7)
    allowed_calling_aes = []         # empty: anyone; else an allow-list (1, 1, 3)
    move_allowed_aes = []            # empty: any allowed caller may C-MOVE
    duplicates = "replace"           # replace | keep | reject
    fsync = true
    decompress = "lossless"          # C-MOVE/C-GET to a peer that takes no compressed
                                     # syntax: never | lossless | lossy

    [destinations]                   # C-MOVE destinations: AE title -> "host:port"
    STORESCP = "127.0.0.1:11113"

    [timeouts]                       # seconds
    artim = 30
    acse = 30
    dimse = 60
    idle = 300
    silent = 30                      # an association that has sent no message yet

    [tls]                            # TLS 1.2+ on every connection (PS3.15 B.9)
    cert = "server.pem"              # our certificate (PEM; its chain may follow it)
    key = "server.key"               # its private key (PEM, no password)
    ca = "clients-ca.pem"            # optional: then a client certificate is required

    allow_password_without_tls = false   # a username+passcode without TLS: refused
    require_identity = false         # refuse associations without a user identity

    [users]                          # user identity (PS3.7 D.3.3.7): name -> password
    alice = "pbkdf2:sha256:600000:..."   # dicomscp --hash-password writes this form
    bob = "sha256:<64 hex digits>"   # unsalted SHA-256: prefer pbkdf2
    carol = ""                       # the username alone is enough

With a `[users]` table (or `require_identity`), a requestor's user identity is checked:
username and passcode against the table, a username alone only for a user whose
password is "", a token (Kerberos, SAML, JWT) refused; a refusal is A-ASSOCIATE-RJ
(1, 2, 1), as PS3.7 D.3.3.7.3 prescribes. Without either, the user identity is ignored.

Relative paths are taken from the configuration file's folder.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dimse.archive.backend import check_node, is_postgresql
from dimse.identity import check_stored_password
from dimse.scp import DEFAULT_MAX_PDU
from dimse.upper_layer import Timeouts, valid_ae_title


class ConfigError(ValueError):
    """The configuration cannot be used; the message says where and why."""


@dataclass
class ServerConfig:
    aetitle: str = "DICOMSCP"
    port: int = 11112
    host: str = "0.0.0.0"
    archive: Path = Path("dicom-archive")
    index: str | None = None  # None: SQLite in the archive folder
    node: str | None = None  # None: the machine's name (a shared index only)
    workers: int = 0  # 0: as many as the cores dicomscp may use
    worklist: Path | None = None
    max_associations: int = 64
    max_pending: int = 256
    max_per_caller: int = 16
    max_identifier: int = 1 << 20
    max_pdu: int = DEFAULT_MAX_PDU
    check_called_ae: bool = False
    allowed_calling_aes: frozenset[str] = frozenset()
    move_allowed_aes: frozenset[str] = frozenset()
    duplicates: str = "replace"
    fsync: bool = True
    decompress: str = "lossless"
    destinations: dict[str, tuple[str, int]] = field(default_factory=dict)
    timeouts: Timeouts = field(default_factory=Timeouts)
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_ca: Path | None = None  # client certificates required, signed by this CA
    users: dict[str, str] = field(default_factory=dict)
    allow_password_without_tls: bool = False
    require_identity: bool = False


def parse_address(text: str, where: str) -> tuple[str, int]:
    """`host:port` or `[v6 address]:port`."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"{where}: {text!r} is not host:port")
    return host.strip("[]"), int(port)


def check_index(value: Any, where: str) -> str | None:
    """An index description: "sqlite" (None) or a PostgreSQL URI."""
    if value == "sqlite":
        return None
    if not isinstance(value, str) or not is_postgresql(value):
        raise ConfigError(
            f'{where}: {value!r} is not an index: give "sqlite" (the default) or a '
            "PostgreSQL URI, postgresql://USER@HOST:PORT/DB"
        )
    return value


def check_node_name(value: Any, where: str) -> str:
    try:
        return check_node(value if isinstance(value, str) else repr(value))
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None


#: More worker processes than this is a mistake (each holds an index connection).
MAX_WORKERS = 256


def check_workers(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_WORKERS:
        raise ConfigError(f"{where}: {value!r} workers; give a number from 1 to {MAX_WORKERS}")
    return value


def _ae(value: Any, where: str) -> str:
    if not isinstance(value, str) or not valid_ae_title(value):
        raise ConfigError(
            f"{where}: {value!r} is not an AE title (1 to 16 characters, no backslash)"
        )
    return value.strip()


def _integer(data: dict[str, Any], key: str) -> int:
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{key} must be an integer, not {value!r}")
    return value


def _timeouts(table: Any) -> Timeouts:
    """The [timeouts] table: seconds, each a number."""
    known = set(Timeouts.__dataclass_fields__)
    if not isinstance(table, dict):
        raise ConfigError(f"[timeouts] must be a table: {', '.join(sorted(known))} (seconds)")
    unknown = set(table) - known
    if unknown:
        raise ConfigError(
            f"[timeouts]: unknown settings {', '.join(sorted(unknown))} "
            f"(known: {', '.join(sorted(known))})"
        )
    for key, value in table.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise ConfigError(f"timeouts.{key} must be a number of seconds above 0, not {value!r}")
    return Timeouts(**{key: float(value) for key, value in table.items()})


def load_config(path: Path) -> ServerConfig:
    """Read a TOML configuration; raises ConfigError with the key at fault."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from exc
    base = path.parent
    config = ServerConfig()
    known = (set(ServerConfig.__dataclass_fields__) - {"tls_cert", "tls_key", "tls_ca"}) | {"tls"}
    unknown = set(data) - known
    if unknown:
        raise ConfigError(f"{path}: unknown settings {', '.join(sorted(unknown))}")
    try:
        if "aetitle" in data:
            config.aetitle = _ae(data["aetitle"], "aetitle")
        if "port" in data:
            config.port = _integer(data, "port")
        if "host" in data:
            config.host = str(data["host"])
        if "archive" in data:
            config.archive = base / str(data["archive"])
        if "worklist" in data:
            config.worklist = base / str(data["worklist"])
        if "index" in data:
            config.index = check_index(data["index"], "index")
        if "node" in data:
            config.node = check_node_name(data["node"], "node")
        if "workers" in data:
            config.workers = check_workers(data["workers"], "workers")
        for key in (
            "max_associations",
            "max_pending",
            "max_per_caller",
            "max_identifier",
            "max_pdu",
        ):
            if key in data:
                setattr(config, key, _integer(data, key))
        for key in ("check_called_ae", "fsync", "allow_password_without_tls", "require_identity"):
            if key in data:
                if not isinstance(data[key], bool):
                    raise ConfigError(f"{key} must be true or false")
                setattr(config, key, data[key])
        for key in ("allowed_calling_aes", "move_allowed_aes"):
            if key in data:
                if not isinstance(data[key], list):  # a string would be taken letter by letter
                    raise ConfigError(f'{key} must be a list of AE titles: ["AE1", "AE2"]')
                setattr(config, key, frozenset(_ae(v, key) for v in data[key]))
        if "duplicates" in data:
            if data["duplicates"] not in ("replace", "keep", "reject"):
                raise ConfigError("duplicates must be replace, keep or reject")
            config.duplicates = data["duplicates"]
        if "decompress" in data:
            if data["decompress"] not in ("never", "lossless", "lossy"):
                raise ConfigError("decompress must be never, lossless or lossy")
            config.decompress = data["decompress"]
        destinations = data.get("destinations", {})
        if not isinstance(destinations, dict):
            raise ConfigError('[destinations] must be a table: AE = "host:port"')
        for ae, address in destinations.items():
            config.destinations[_ae(ae, "destinations")] = parse_address(
                str(address), f"destinations.{ae}"
            )
        if "timeouts" in data:
            config.timeouts = _timeouts(data["timeouts"])
        _load_security(data, base, config)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"{path}: {exc}") from exc
    return config


def _load_security(data: dict[str, Any], base: Path, config: ServerConfig) -> None:
    """The [tls] and [users] tables."""
    tls = data.get("tls", {})
    if not isinstance(tls, dict):
        raise ConfigError("[tls] must be a table: cert, key and optionally ca")
    unknown = set(tls) - {"cert", "key", "ca"}
    if unknown:
        raise ConfigError(f"[tls]: unknown settings {', '.join(sorted(unknown))}")
    for key in ("cert", "key", "ca"):
        if key in tls:
            if not isinstance(tls[key], str):
                raise ConfigError(f"tls.{key} must be a file name")
            setattr(config, f"tls_{key}", base / tls[key])
    users = data.get("users", {})
    if not isinstance(users, dict):
        raise ConfigError("[users] must be a table: username = password")
    for name, stored in users.items():
        if not isinstance(stored, str):
            raise ConfigError(f"users.{name}: a password is a string")
        try:
            check_stored_password(stored)
        except ValueError as exc:
            raise ConfigError(f"users.{name}: {exc}") from None
        config.users[name] = stored
