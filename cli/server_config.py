"""The configuration of `dicomscp`: a TOML file, overridden by the command line.

    aetitle = "DICOMSCP"
    port = 11112
    host = "0.0.0.0"                 # address to listen on ("::" for IPv6)
    archive = "./dicom-archive"
    worklist = "./worklist"          # optional: folder of worklist files (*.wl, *.dcm)
    max_associations = 64
    max_pdu = 16384
    check_called_ae = false          # refuse a called AE title other than ours (1, 1, 7)
    allowed_calling_aes = []         # empty: anyone; else an allow-list (1, 1, 3)
    move_allowed_aes = []            # empty: any allowed caller may C-MOVE
    duplicates = "replace"           # replace | keep | reject
    fsync = true

    [destinations]                   # C-MOVE destinations: AE title -> "host:port"
    STORESCP = "127.0.0.1:11113"

    [timeouts]                       # seconds
    artim = 30
    acse = 30
    dimse = 60
    idle = 300

Relative paths are taken from the configuration file's folder.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dul.negotiation import valid_ae_title
from dul.transport import Timeouts


class ConfigError(ValueError):
    """The configuration cannot be used; the message says where and why."""


@dataclass
class ServerConfig:
    aetitle: str = "DICOMSCP"
    port: int = 11112
    host: str = "0.0.0.0"
    archive: Path = Path("dicom-archive")
    worklist: Path | None = None
    max_associations: int = 64
    max_pdu: int = 16384
    check_called_ae: bool = False
    allowed_calling_aes: frozenset[str] = frozenset()
    move_allowed_aes: frozenset[str] = frozenset()
    duplicates: str = "replace"
    fsync: bool = True
    destinations: dict[str, tuple[str, int]] = field(default_factory=dict)
    timeouts: Timeouts = field(default_factory=Timeouts)


def parse_address(text: str, where: str) -> tuple[str, int]:
    """`host:port` or `[v6 address]:port`."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"{where}: {text!r} is not host:port")
    return host.strip("[]"), int(port)


def _ae(value: Any, where: str) -> str:
    if not isinstance(value, str) or not valid_ae_title(value):
        raise ConfigError(f"{where}: {value!r} is not an AE title (1 to 16 characters, no backslash)")
    return value.strip()


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
    known = set(ServerConfig.__dataclass_fields__)
    unknown = set(data) - known
    if unknown:
        raise ConfigError(f"{path}: unknown settings {', '.join(sorted(unknown))}")
    try:
        if "aetitle" in data:
            config.aetitle = _ae(data["aetitle"], "aetitle")
        if "port" in data:
            config.port = int(data["port"])
        if "host" in data:
            config.host = str(data["host"])
        if "archive" in data:
            config.archive = base / str(data["archive"])
        if "worklist" in data:
            config.worklist = base / str(data["worklist"])
        for key in ("max_associations", "max_pdu"):
            if key in data:
                setattr(config, key, int(data[key]))
        for key in ("check_called_ae", "fsync"):
            if key in data:
                if not isinstance(data[key], bool):
                    raise ConfigError(f"{key} must be true or false")
                setattr(config, key, data[key])
        for key in ("allowed_calling_aes", "move_allowed_aes"):
            if key in data:
                setattr(config, key, frozenset(_ae(v, key) for v in data[key]))
        if "duplicates" in data:
            if data["duplicates"] not in ("replace", "keep", "reject"):
                raise ConfigError("duplicates must be replace, keep or reject")
            config.duplicates = data["duplicates"]
        for ae, address in dict(data.get("destinations", {})).items():
            config.destinations[_ae(ae, "destinations")] = parse_address(str(address), f"destinations.{ae}")
        if "timeouts" in data:
            values = {k: float(v) for k, v in dict(data["timeouts"]).items()}
            config.timeouts = Timeouts(**values)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"{path}: {exc}") from exc
    return config
