"""W9 and W10: dicomscp under many clients at once, on every core and on several nodes.

Both send the W1/W3 small instances, shared out among CLIENTS DCMTK storescu processes
(TCP_NODELAY=1, one association each) started at once by tests/bench/launchers.py
FLEET, timed from the start of the first to the exit of the last; each run into fresh
servers (an empty archive; for W10 a new database too), whose every instance is then
counted. The servers' CPU time (their processes and those under them) is read just
before the clients start and just after the last ends.

- W9, every core: into one dicomscp --no-fsync with `--workers 1`, and with no
  --workers (its default: one worker per core), its archive in RAM (tmpfs) where
  there is one, so that CPU is what is measured: on this VM's ext4, the kernel's work
  creating and renaming files grew from 0.95 to 1.26 ms per instance with two
  writers, and two workers were no faster than one (scripts/measure_workers.sh).
- W10, several machines: fsync on, into two dicomscp nodes (`--node a`, `--node b`)
  on one PostgreSQL index (`--index postgresql://...`, a throw-away cluster from
  tests/postgres.py) sharing one archive folder, half the clients to each, against one
  dicomscp on its default SQLite index taking them all; both with `--workers 1`. Then
  one dicomscp with its default workers, and Orthanc, taking them all: durable
  archives under several associations at once (target: dicomscp >= 2x Orthanc).
"""

from __future__ import annotations

import contextlib
import functools
import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests import peers as test_peers
from tests import postgres
from tests.bench import launchers, peers, procfs
from tests.bench.api import groups
from tests.bench.common import (
    SLOW_S,
    Bench,
    Row,
    api_result,
    count_stored,
    median,
    ratio,
    storescu_files_argv,
    verdict,
)
from tests.bench.data import InstanceSet
from tests.bench.peers import BenchError, environment, run_client

CLIENTS = 8  # storescu processes at once


@dataclass
class Setup:
    """Servers running for one run: the clients are dealt out among `servers` in
    turn; `stored()` says how many instances they hold, by where it looked."""

    servers: list[Any]  # peers.Server, or tests/peers.py's Orthanc
    stored: Callable[[], dict[str, int]]
    database_pid: int | None = None  # PostgreSQL's postmaster: its CPU is told apart


@dataclass
class Kind:
    key: str
    label: str
    start: Callable[[Path], contextlib.AbstractContextManager[Setup]]
    seconds: list[float] = field(default_factory=list)
    cpu_s: list[float] = field(default_factory=list)  # the dicomscp processes
    database_cpu_s: list[float] = field(default_factory=list)
    details: list[dict[str, Any]] = field(default_factory=list)

    def cpu_ms_per_instance(self, count: int, database: bool = False) -> float | None:
        samples = self.database_cpu_s if database else self.cpu_s
        return median(samples) / count * 1000 if samples else None


@functools.cache
def dicomscp_has_workers() -> bool:
    """Whether this checkout's dicomscp takes --workers (in its --help)."""
    result = subprocess.run(
        [sys.executable, "-m", "cli.dicomscp", "--help"], capture_output=True, text=True,
        env=environment(), cwd=peers.REPOSITORY, timeout=60, check=False,
    )  # fmt: skip
    return "--workers" in result.stdout


def _files_only(servers: Sequence[peers.Server]) -> Callable[[], dict[str, int]]:
    return lambda: {"files": count_stored(servers[0])}


def _run_fleet(bench: Bench, workload: str, kind: Kind, files: InstanceSet, run: int) -> None:
    """One run of `kind`: fresh servers, CLIENTS storescu at once, every file counted."""
    shares = groups(files.files, CLIENTS)
    # W9 measures CPU: its archive goes to RAM where there is one, since on this VM's
    # disk two writers' file creations cost more kernel time than one's.
    workdir = bench.dir(f"{workload}-{kind.key}", scratch=workload == "W9")
    with kind.start(workdir) as setup:
        servers = setup.servers
        commands = [storescu_files_argv(servers[i % len(servers)], s) for i, s in enumerate(shares)]
        fleet = launchers.fleet_argv(commands, workdir / "commands.json")
        pids = [s.process.pid for s in servers]

        def cpu() -> tuple[float, float]:
            ours = sum(procfs.tree_cpu_seconds(pid) for pid in pids)
            pg = setup.database_pid
            return ours, procfs.tree_cpu_seconds(pg) if pg is not None else 0.0

        before = cpu()
        client = run_client(
            f"{workload}-{kind.key}-{run}", fleet, bench.logs, environment(nodelay=True)
        )
        after = cpu()
        result = api_result(client, expect_ok=len(commands))
        stored = setup.stored()
    wrong = {where: n for where, n in stored.items() if n != files.count}
    if wrong:
        raise BenchError(
            f"{workload}: {kind.label} holds {wrong} of the {files.count} instances sent"
        )
    kind.seconds.append(float(result["seconds"]))
    kind.cpu_s.append(after[0] - before[0])
    if setup.database_pid is not None:
        kind.database_cpu_s.append(after[1] - before[1])
    kind.details.append({**result, "process_s": client.seconds})
    bench.log(
        f"  {workload} {kind.label}: run {run}: {kind.seconds[-1]:.3f} s, "
        f"dicomscp CPU {kind.cpu_s[-1] * 1000 / files.count:.3f} ms/instance"
    )


def _run_kinds(bench: Bench, workload: str, kinds: Sequence[Kind], files: InstanceSet) -> None:
    for round_ in range(bench.repeat):
        for kind in kinds:
            if round_ > 0 and kind.seconds and kind.seconds[0] > SLOW_S:
                continue
            _run_fleet(bench, workload, kind, files, round_ + 1)


def _row(workload: str, kind: Kind, files: InstanceSet) -> Row:
    value = files.count / median(kind.seconds)
    cpu_ms = kind.cpu_ms_per_instance(files.count)
    return Row(
        workload, kind.label, value, "inst/s", kind.seconds,
        note=f"dicomscp CPU {cpu_ms or 0:.3f} ms/instance",
        extra={
            "server_cpu_ms_per_instance": cpu_ms, "server_cpu_s": kind.cpu_s,
            "clients": CLIENTS, "details": kind.details,
        },
    )  # fmt: skip


def _what(files: InstanceSet) -> str:
    return (
        f"{files.count} x {files.file_bytes / 1000:.1f} KB from {CLIENTS} DCMTK storescu at "
        "once (TCP_NODELAY=1, one association each)"
    )


# ---------------------------------------------------------------------------------------
# W9: every core.


def w9(bench: Bench) -> list[Row]:
    files = bench.data.small(bench.sizes.small)

    def start(workers: int | None) -> Callable[[Path], contextlib.AbstractContextManager[Setup]]:
        @contextlib.contextmanager
        def started(workdir: Path) -> Iterator[Setup]:
            with peers.dicomscp(workdir, fsync=False, workers=workers) as server:
                yield Setup([server], _files_only([server]))

        return started

    one = Kind("one", "dicomscp --no-fsync --workers 1", start(1))
    default = Kind("default", "dicomscp --no-fsync (default workers: one per core)", start(None))
    _run_kinds(bench, "W9", [one, default], files)
    base = files.count / median(one.seconds)
    rows = [_row("W9", one, files), _row("W9", default, files)]
    speedup = ratio(rows[1].value, base)
    rows[1].target = ">=1.7x --workers 1"
    rows[1].verdict = verdict((speedup or 0) >= 1.7)
    rows[1].note = f"{speedup or 0:.2f}x --workers 1; {rows[1].note}"
    rows[1].extra["vs_one_worker"] = speedup
    bench.notes.append(
        f"W9: {_what(files)} into one dicomscp --no-fsync, a fresh archive each run, every "
        f"file counted after; with --workers 1, then with its default on these "
        f"{os.cpu_count()} CPUs. dicomscp CPU: its processes and those under them."
    )
    return rows


# ---------------------------------------------------------------------------------------
# W10: several machines.


@contextlib.contextmanager
def _postgres() -> Iterator[Any]:
    """tests/postgres.py's throw-away cluster; BenchError if PostgreSQL or psycopg is
    missing (tests.peers skips, or fails under CI, when a peer is missing)."""
    try:
        manager = postgres.start_cluster()
        cluster = manager.__enter__()
    except (test_peers.PeerError, pytest.skip.Exception, pytest.fail.Exception) as exc:
        raise BenchError(f"W10: no PostgreSQL cluster: {exc}") from None
    import psycopg

    try:
        yield cluster
    except psycopg.Error as exc:
        raise BenchError(f"W10: PostgreSQL: {exc}") from exc
    finally:
        manager.__exit__(None, None, None)


def _postmaster_pid(cluster: Any) -> int | None:
    try:
        return int((Path(cluster.base) / "data" / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _indexed(uri: str) -> int:
    import psycopg

    from dimse.archive.query_keys import IMAGE
    from dimse.archive.schema import TABLES

    with psycopg.connect(uri) as conn:
        row = conn.execute(f"SELECT count(*) FROM {TABLES[IMAGE]}").fetchone()
    return int(row[0]) if row else 0


def w10(bench: Bench) -> list[Row]:
    files = bench.data.small(bench.sizes.small)
    workers = 1 if dicomscp_has_workers() else None
    flag = " --workers 1" if workers else ""
    with _postgres() as cluster:
        database_pid = _postmaster_pid(cluster)

        @contextlib.contextmanager
        def two_nodes(workdir: Path) -> Iterator[Setup]:
            shared = workdir / "shared"
            for name in ("a", "b"):
                (workdir / name).mkdir()
            with contextlib.ExitStack() as stack:
                uri = stack.enter_context(cluster.database())
                nodes = [
                    stack.enter_context(
                        peers.dicomscp(
                            workdir / name, archive=shared, index=uri,
                            node=name, workers=workers,
                        )
                    )
                    for name in ("a", "b")
                ]  # fmt: skip

                def stored() -> dict[str, int]:
                    return {"files": count_stored(nodes[0]), "index": _indexed(uri)}

                yield Setup(nodes, stored, database_pid)

        @contextlib.contextmanager
        def one_node(workdir: Path) -> Iterator[Setup]:
            with peers.dicomscp(workdir, workers=workers) as server:
                yield Setup([server], _files_only([server]))

        @contextlib.contextmanager
        def default_workers(workdir: Path) -> Iterator[Setup]:
            with peers.dicomscp(workdir) as server:
                yield Setup([server], _files_only([server]))

        @contextlib.contextmanager
        def orthanc(workdir: Path) -> Iterator[Setup]:
            with peers.orthanc(workdir) as server:

                def stored() -> dict[str, int]:
                    return {"index": int(server.rest("GET", "/statistics")["CountInstances"])}

                yield Setup([server], stored)

        nodes = Kind("pg", f"2 dicomscp nodes{flag}, PostgreSQL index, one folder", two_nodes)
        single = Kind("sqlite", f"1 dicomscp{flag}, SQLite index", one_node)
        every_core = Kind(
            "sqlite-default", "1 dicomscp (default workers), SQLite index", default_workers
        )
        theirs = Kind("orthanc", "Orthanc, TCP_NODELAY=1 (its default storage)", orthanc)
        _run_kinds(bench, "W10", [nodes, single, every_core, theirs], files)
    rows = [_row("W10", kind, files) for kind in (nodes, single, every_core, theirs)]
    vs_orthanc = ratio(rows[2].value, rows[3].value)
    rows[2].target = ">=2x Orthanc"
    rows[2].verdict = verdict((vs_orthanc or 0) >= 2.0)
    rows[2].note = f"{vs_orthanc or 0:.2f}x Orthanc; {rows[2].note}"
    rows[2].extra["vs_orthanc"] = vs_orthanc
    rows[3].note = rows[3].note.replace("dicomscp CPU", "Orthanc CPU")
    vs_single = ratio(rows[0].value, rows[1].value)
    pg_ms = nodes.cpu_ms_per_instance(files.count, database=True)
    rows[0].note = (
        f"{vs_single or 0:.2f}x one dicomscp on SQLite; {rows[0].note} (both nodes), "
        f"PostgreSQL's {pg_ms or 0:.3f} ms/instance"
    )
    rows[0].extra.update(
        vs_sqlite=vs_single,
        database_cpu_ms_per_instance=pg_ms,
        database_cpu_s=nodes.database_cpu_s,
    )
    bench.notes.append(
        f"W10: {_what(files)}, fsync on, {CLIENTS // 2} clients to each of two dicomscp nodes "
        "on one PostgreSQL index and one archive folder, against one dicomscp on its SQLite "
        "index taking all of them; a fresh archive (and database) each run, every file "
        "counted after, and the PostgreSQL index's rows. "
        + (
            "Both with --workers 1: nodes against one process. "
            if workers
            else "dicomscp has no --workers option yet: both run without it. "
        )
        + "Then the same clients into one dicomscp with its default workers, and into "
        "Orthanc (which fdatasyncs each file): the archives that make each instance "
        "durable before the answer, with several associations at once. "
        "The PostgreSQL cluster is tests/postgres.py's: fsync=off, "
        "synchronous_commit=off, so its commits are not durable, where SQLite's are "
        "(synchronous=FULL with fsync on): this favours the two nodes."
    )
    return rows
