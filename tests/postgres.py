"""A throw-away PostgreSQL for the tests of the shared index (dimse/archive/index_pg.py).

`start_cluster()` makes a cluster in a new temporary folder with the Debian package's
`initdb` and starts it with `pg_ctl` on a free loopback port (its Unix socket inside
the folder, trust authentication, durability off: a test's data need not survive a
power cut), and at the end stops it and removes the folder. `Cluster.database()`
makes an empty database and drops it afterwards. The fixtures built on them are in
conftest.py: one cluster per test session, started only when a test asks for it.

initdb refuses to run as root: as root the folder is given to the `postgres` user
and the server's programs run as that user (`runuser`). PostgreSQL or psycopg
missing skips the test, or fails it where CI is set (tests/peers.py).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.peers import HOST, PORT_ATTEMPTS, PeerError, free_port, missing

#: The index back ends an archive test runs against (the `index_spec` fixture).
INDEXES = ["sqlite", "postgresql"]
SUPERUSER = "postgres"
START_S = 60  # pg_ctl -w waits (and polls) at most this long for the server to accept
_NAMES = itertools.count(1)
#: Settings of the test server: durability off (the tests' crashes are of dicomscp,
#: never of PostgreSQL), and enough connections for several archives and threads.
_SETTINGS = (
    "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    " -c max_connections=200 -c shared_buffers=32MB"
)


def postgres_bin() -> Path:
    """The folder of the newest installed PostgreSQL's programs; missing() when none."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if found:
        return found[-1].parent
    on_path = shutil.which("initdb")
    if on_path is None:
        missing("PostgreSQL is not installed (apt-get install postgresql)")
    return Path(on_path).parent


def require_psycopg() -> None:
    try:
        import psycopg  # noqa: F401
    except ImportError:
        missing("psycopg is not installed (pip install -e '.[postgresql]')")


@dataclass
class Cluster:
    """A running test cluster; `uri(db)` is a libpq URI to one of its databases."""

    base: Path
    bin_dir: Path
    port: int
    host: str = HOST

    def uri(self, dbname: str) -> str:
        return f"postgresql://{SUPERUSER}@{self.host}:{self.port}/{dbname}"

    def admin(self) -> Any:
        import psycopg

        return psycopg.connect(self.uri("postgres"), autocommit=True)

    @contextlib.contextmanager
    def database(self) -> Iterator[str]:
        """A new empty database, dropped at the end (its connections closed first:
        a test may leave a killed process's session behind)."""
        name = f"t{os.getpid()}_{next(_NAMES)}"
        with self.admin() as conn:
            conn.execute(f"CREATE DATABASE {name}")
        try:
            yield self.uri(name)
        finally:
            with self.admin() as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _as_postgres(argv: list[str]) -> list[str]:
    return ["runuser", "-u", SUPERUSER, "--", *argv] if os.geteuid() == 0 else argv


def _run(argv: list[str], what: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        _as_postgres(argv),
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=START_S + 30,
        check=False,
    )
    if result.returncode:
        raise PeerError(f"{what} failed ({result.returncode}):\n{result.stdout}{result.stderr}")
    return result


@contextlib.contextmanager
def start_cluster() -> Iterator[Cluster]:
    require_psycopg()
    bin_dir = postgres_bin()
    base = Path(tempfile.mkdtemp(prefix="dicom-ul-pg-"))
    try:
        if os.geteuid() == 0:
            user = pwd.getpwnam(SUPERUSER)
            os.chown(base, user.pw_uid, user.pw_gid)
        data = base / "data"
        _run(
            [str(bin_dir / "initdb"), "-D", str(data), "-U", SUPERUSER, "-A", "trust",
             "-E", "UTF8", "--locale=C", "--no-sync"],
            "initdb",
        )  # fmt: skip
        cluster = None
        for attempt in range(1, PORT_ATTEMPTS + 1):
            port = free_port()
            options = f"-p {port} -k {base} -c listen_addresses={HOST} {_SETTINGS}"
            log = base / f"server-{attempt}.log"
            try:
                _run(
                    [str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w",
                     "-t", str(START_S), "-o", options, "start"],
                    "pg_ctl start",
                )  # fmt: skip
            except PeerError as exc:
                text = log.read_text(errors="replace") if log.exists() else ""
                if "already in use" in text and attempt < PORT_ATTEMPTS:
                    continue  # the free port was taken meanwhile
                raise PeerError(f"{exc}\n{text}") from None
            cluster = Cluster(base, bin_dir, port)
            break
        assert cluster is not None
        try:
            yield cluster
        finally:
            _run(
                [str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                "pg_ctl stop",
            )
    finally:
        shutil.rmtree(base, ignore_errors=True)
