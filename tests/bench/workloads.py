"""The workloads of the speed issue, each a function returning table rows, and their
registry (WORKLOADS, in the order of the table):

- W1, W2: the client (here): small instances, then 2 MiB ones, to DCMTK storescp;
- W3: the server (tests/bench/server_store.py): DCMTK storescu into dicomscp, DCMTK
  storescp, pynetdicom's storescp and Orthanc, with each server's CPU time;
- W4: the query (tests/bench/query.py): C-FIND to dicomscp, dcmqrscp and Orthanc;
- W5: associations; W6: memory; W7: our client with our server; W8: the asyncio
  client's many associations at once (here);
- W9: every core (tests/bench/scaling.py): 8 DCMTK storescu at once into dicomscp
  with one worker process, then with its default (one per core);
- W10: several machines (tests/bench/scaling.py): the same 8 clients into two dicomscp
  nodes sharing a PostgreSQL index and a folder, against one dicomscp on SQLite.

Conventions, the same in every workload:

- Every peer is started here on a free loopback port and stopped at the end
  (tests/bench/peers.py). DCMTK programs get TCP_NODELAY=1 in their environment
  ("tuned") unless a row says "default" (the variable unset: DCMTK 3.6.7 then leaves
  Nagle's algorithm on).
- A client's time runs from just before its process is started to its exit: process
  start (for Python: interpreter start and imports) is included. Rows marked "API"
  time only the work inside an already started interpreter (tests/bench/api.py).
- Each pairing runs `repeat` times, the pairings interleaved (run 1 of each, then run
  2...), so that a slow spell of the machine falls on all of them; the figure is the
  median. A pairing whose first run takes over SLOW_S seconds runs once.
- A server's CPU time (W3, W9, W10) is user + system time of its process and of every
  process under it (tests/bench/procfs.py), read just before the client starts and
  just after it exits, before the server is stopped.
- MB is 10**6 bytes; MB/s counts the bytes of the files sent (the data sets and their
  file meta groups). MiB is 2**20 bytes.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable

from tests.bench import launchers, peers, procfs
from tests.bench.api import groups
from tests.bench.common import (
    SLOW_S,
    Bench,
    Pairing,
    Row,
    api_argv,
    api_result,
    count_stored,
    dicomscu_argv,
    median,
    pynetdicom_storescu_argv,
    ratio,
    run_interleaved,
    storescu_argv,
    storescu_files_argv,
    verdict,
)
from tests.bench.peers import BenchError, ClientRun, environment, run_client
from tests.bench.query import w4
from tests.bench.scaling import w9, w10
from tests.bench.server_store import w3

# ---------------------------------------------------------------------------------------
# W1, W2: the client.


def client_store(bench: Bench, workload: str) -> list[Row]:
    """W1 (small instances, instances/s) or W2 (2 MiB instances, MB/s): every client
    sends the same files over one association to one DCMTK `storescp --ignore`
    (TCP_NODELAY=1), which reads every byte, answers, and writes nothing."""
    small = workload == "W1"
    files = bench.data.small(bench.sizes.small) if small else bench.data.large(bench.sizes.large)
    unit = "inst/s" if small else "MB/s"

    def rate(seconds: float) -> float:
        return files.count / seconds if small else files.total_bytes / 1e6 / seconds

    with peers.dcmtk_storescp(bench.dir(f"{workload}-storescp"), ignore=True) as server:
        pairings = [
            Pairing("dicomscu", "dicomscu (command)", dicomscu_argv(server, files), environment()),
            Pairing(
                "api", "dicomscu (Python API, store only)",
                api_argv("store", server.host, server.port, server.ae_title, str(files.directory)),
                environment(), api=True,
            ),
            Pairing("dcmtk", "DCMTK storescu, TCP_NODELAY=1", storescu_argv(server, files), environment(nodelay=True)),
            Pairing("dcmtk-default", "DCMTK storescu, default", storescu_argv(server, files), environment(nodelay=None)),
            Pairing("pynetdicom", "pynetdicom storescu", pynetdicom_storescu_argv(server, files), environment()),
        ]  # fmt: skip
        if small:
            pairings.append(
                Pairing(
                    "startup",
                    "dicomscu start-up only (--version)",
                    [sys.executable, "-m", "cli", "--version"],
                    environment(),
                )
            )
        run_interleaved(bench, pairings, workload, expect_ok=files.count)

    by_key = {p.key: p for p in pairings}
    dcmtk_rate = rate(median(by_key["dcmtk"].seconds))
    py_rate = rate(median(by_key["pynetdicom"].seconds))
    what = (
        f"{files.count} x {files.file_bytes / 1000:.1f} KB"
        if small
        else f"{files.count} x {files.file_bytes / 2**20:.2f} MiB"
    )
    rows = []
    for p in pairings:
        if p.key == "startup":
            continue
        value = rate(median(p.seconds))
        row = Row(
            workload, p.label, value, unit, p.seconds,
            vs_dcmtk=ratio(value, dcmtk_rate),
            vs_pynetdicom=ratio(value, py_rate) if p.key != "pynetdicom" else None,
            extra={"files": what, "peak_rss_kib": max(p.peak_rss_kib, default=None), "details": p.details},
        )  # fmt: skip
        if p.key in ("dicomscu", "api"):
            if small:
                row.target = ">=1.0x DCMTK, >=20x pynetdicom"
                row.verdict = verdict(
                    (row.vs_dcmtk or 0) >= 1.0 and (row.vs_pynetdicom or 0) >= 20.0
                )
            else:
                row.target = ">=0.8x DCMTK"
                row.verdict = verdict((row.vs_dcmtk or 0) >= 0.8)
        if p.key == "api" and p.details:
            prepare = median([d["prepare_s"] for d in p.details])
            row.note = f"+{prepare:.3f} s reading file meta of {files.count} files before connect (not in the figure)"
        rows.append(row)
    if small:
        startup = by_key["startup"]
        rows.append(
            Row(
                workload, "dicomscu start-up only (--version)", median(startup.seconds), "s",
                startup.seconds, note="interpreter start and imports, in every 'command' row",
                extra={"peak_rss_kib": max(startup.peak_rss_kib, default=None)},
            )
        )  # fmt: skip
    bench.notes.append(
        f"{workload}: {what} over one association to DCMTK storescp --ignore (TCP_NODELAY=1)."
    )
    return rows


def w1(bench: Bench) -> list[Row]:
    return client_store(bench, "W1")


def w2(bench: Bench) -> list[Row]:
    return client_store(bench, "W2")


# ---------------------------------------------------------------------------------------
# W5: associations.


def w5(bench: Bench) -> list[Row]:
    """Open, C-ECHO, release, N times, from a Python API in a fresh interpreter (the
    loop is timed inside it): ours vs pynetdicom's, both to the same DCMTK storescp
    (TCP_NODELAY=1): a C++ server that neither library wrote."""
    n = bench.sizes.associations
    with peers.dcmtk_storescp(bench.dir("W5-storescp"), ignore=True, ae_title="ECHOSCP") as server:
        pairings = [
            Pairing("ours", "dimse.client connect/echo/release", api_argv("echo", server.host, server.port, server.ae_title, n), environment(), api=True),
            Pairing("pynetdicom", "pynetdicom associate/echo/release", api_argv("pyecho", server.host, server.port, server.ae_title, n), environment(), api=True),
        ]  # fmt: skip
        run_interleaved(bench, pairings, "W5", expect_ok=n)
    ours, theirs = (n / median(p.seconds) for p in pairings)
    bench.notes.append(
        f"W5: {n} associations to DCMTK storescp (TCP_NODELAY=1), the same server for both."
    )
    return [
        Row(
            "W5",
            pairings[0].label,
            ours,
            "assoc/s",
            pairings[0].seconds,
            vs_pynetdicom=ours / theirs,
        ),
        Row("W5", pairings[1].label, theirs, "assoc/s", pairings[1].seconds),
    ]


# ---------------------------------------------------------------------------------------
# W6: memory.


def w6(bench: Bench) -> list[Row]:
    """One instance of `huge` bytes of pixel data: dicomscu sends it to DCMTK storescp
    --ignore; DCMTK storescu (TCP_NODELAY=1) sends it to dicomscp (fsync on, archive on
    disk). Peak RSS: the client's own ru_maxrss (tests/bench/peers.py LAUNCHER); the
    server's VmHWM read from /proc after the instance is stored, before it is stopped.
    DCMTK's figures for the same transfers are shown for scale."""
    files = bench.data.huge(bench.sizes.huge)
    size = f"{files.file_bytes / 2**20:.0f} MiB"
    rows: list[Row] = []
    limit_kib = 100 * 1024

    def mb_s(seconds: float) -> float:
        return files.total_bytes / 1e6 / seconds

    with peers.dcmtk_storescp(bench.dir("W6-storescp"), ignore=True) as server:
        ours = run_client(
            "W6-dicomscu", dicomscu_argv(server, files), bench.logs, environment(), timeout_s=1800
        )
        dcmtk = run_client(
            "W6-storescu",
            storescu_argv(server, files),
            bench.logs,
            environment(nodelay=True),
            timeout_s=1800,
        )
    for label, run, target in (
        ("dicomscu sending", ours, True),
        ("DCMTK storescu sending", dcmtk, False),
    ):
        rss = run.peak_rss_kib or 0
        row = Row(
            "W6", f"{label} {size}", rss / 1024, "MiB peak RSS", [run.seconds],
            note=f"{mb_s(run.seconds):.0f} MB/s", extra={"peak_rss_kib": rss},
        )  # fmt: skip
        if target:
            row.target, row.verdict = "<100 MiB", verdict(rss < limit_kib)
        rows.append(row)

    for key in ("dicomscp", "dcmtk"):
        workdir = bench.dir(f"W6-{key}")
        start = (
            peers.dicomscp(workdir, fsync=True, workers=1)  # one process: its RSS is all
            if key == "dicomscp"
            else peers.dcmtk_storescp(workdir, ignore=False)
        )
        with start as receiver:
            idle = procfs.vm_hwm_kib(receiver.process.pid) or 0
            run = run_client(
                f"W6-to-{key}",
                storescu_argv(receiver, files),
                bench.logs,
                environment(nodelay=True),
                timeout_s=1800,
            )
            peak = procfs.vm_hwm_kib(receiver.process.pid) or 0
            stored = count_stored(receiver)
        if stored != 1:
            raise BenchError(f"W6: {key} did not store the {size} instance")
        label = "dicomscp receiving" if key == "dicomscp" else "DCMTK storescp -od receiving"
        row = Row(
            "W6", f"{label} {size}", peak / 1024, "MiB peak RSS", [run.seconds],
            note=f"{idle / 1024:.0f} MiB before; {mb_s(run.seconds):.0f} MB/s",
            extra={"peak_rss_kib": peak, "idle_rss_kib": idle},
        )  # fmt: skip
        if key == "dicomscp":
            row.target, row.verdict = "<100 MiB", verdict(peak < limit_kib)
        rows.append(row)
    return rows


# ---------------------------------------------------------------------------------------
# W7: beyond the peers: our client and our server together.


def w7(bench: Bench) -> list[Row]:
    """dicomscu sends the W1 files to dicomscp (a fresh archive for every run): one
    request at a time as DCMTK does, then pipelined in the asynchronous operations
    window (PS3.7 D.3.3.3: `--async 16`, which dicomscp grants), then over several
    associations at once (`--associations 4`), then both; with the archive's fsync
    off, and on. The reference is DCMTK storescu sending to DCMTK storescp -od (both
    TCP_NODELAY=1), which writes every file (without fsync)."""
    files = bench.data.small(bench.sizes.small)
    both = ["--async", "16", "--associations", "4"]
    kinds: list[tuple[str, str, list[str], bool]] = [
        ("plain", "dicomscu -> dicomscp --no-fsync", [], False),
        ("async", "dicomscu --async 16 -> dicomscp --no-fsync", ["--async", "16"], False),
        ("assoc", "dicomscu --associations 4 -> dicomscp --no-fsync", ["--associations", "4"], False),
        ("both", "dicomscu --async 16 --associations 4 -> dicomscp --no-fsync", both, False),
        ("fsync", "dicomscu -> dicomscp (fsync)", [], True),
        ("fsync-both", "dicomscu --async 16 --associations 4 -> dicomscp (fsync)", both, True),
        ("dcmtk", "DCMTK storescu -> DCMTK storescp -od", [], False),
    ]  # fmt: skip
    seconds: dict[str, list[float]] = {key: [] for key, *_ in kinds}
    for round_ in range(bench.repeat):
        for key, name, extra, fsync in kinds:
            if round_ > 0 and seconds[key] and seconds[key][0] > SLOW_S:
                continue
            workdir = bench.dir(f"W7-{key}")
            if key == "dcmtk":
                start = peers.dcmtk_storescp(workdir, ignore=False, nodelay=True)
            else:
                start = peers.dicomscp(workdir, fsync=fsync)
            with start as server:
                if key == "dcmtk":
                    argv, env = storescu_argv(server, files), environment(nodelay=True)
                else:
                    argv, env = dicomscu_argv(server, files) + extra, environment()
                run = run_client(f"W7-{key}-{round_ + 1}", argv, bench.logs, env)
                stored = count_stored(server)
            if stored != files.count:
                raise BenchError(f"W7: {name} holds {stored} of the {files.count} files sent")
            seconds[key].append(run.seconds)
            bench.log(f"  W7 {name}: run {round_ + 1}: {run.seconds:.3f} s")
    dcmtk_rate = files.count / median(seconds["dcmtk"])
    rows = []
    for key, name, _, fsync in kinds:
        value = files.count / median(seconds[key])
        row = Row("W7", name, value, "inst/s", seconds[key], vs_dcmtk=ratio(value, dcmtk_rate))
        if key not in ("plain", "dcmtk", "fsync"):
            base = median(seconds["fsync" if fsync else "plain"])
            row.note = f"{base / median(seconds[key]):.2f}x dicomscu one at a time, same fsync"
        rows.append(row)
    bench.notes.append(
        f"W7: {files.count} x {files.file_bytes / 1000:.1f} KB from dicomscu (command, start-up "
        "included) to dicomscp, each run into a fresh archive; 'vs DCMTK' is against DCMTK "
        "storescu -> storescp -od."
    )
    return rows


# ---------------------------------------------------------------------------------------
# W8: many associations at once, the asyncio client.


def w8(bench: Bench) -> list[Row]:
    """N associations at once, each storing its k of the same N x k small instances,
    into one DCMTK `storescp --fork -od` (TCP_NODELAY=1): a child process per
    association, so that the server takes them all at once and its C++ children keep
    up; it writes every file (no fsync), into a folder emptied before each run, and
    every file is counted after it. Ours: ONE Python process, one asyncio event loop,
    N `dimse.aio.connect` at once, each `store_many` of its k files (tests/bench/api.py
    `aiostore`), timed from its start to its exit. DCMTK's: N `storescu` processes
    (TCP_NODELAY=1) started at once by one small launcher (peers.FLEET), timed from the
    first start to the last exit. Process start counts on both sides. The files are
    shared out the same way (api.groups) on both sides."""
    n, per = bench.sizes.concurrent, bench.sizes.per_association
    files = bench.data.small(n * per)
    shares = groups(files.files, n)
    overflows: dict[str, list[int]] = {"aio": [], "dcmtk": []}
    with peers.dcmtk_storescp(bench.dir("W8-storescp"), ignore=False, fork=True) as server:
        received = server.directory
        assert received is not None
        mark: list[int | None] = [None]

        def before() -> None:
            shutil.rmtree(received)
            received.mkdir()
            mark[0] = procfs.listen_overflows()

        def after(key: str) -> Callable[[ClientRun], None]:
            def check(run: ClientRun) -> None:
                stored = count_stored(server)
                if stored != files.count:
                    raise BenchError(
                        f"W8: storescp holds {stored} of the {files.count} files sent by {run.name}"
                    )
                now = procfs.listen_overflows()
                if now is not None and mark[0] is not None:
                    overflows[key].append(now - mark[0])
                if key == "aio":  # its figure is the process's; its own report goes in details
                    ours.details.append({**api_result(run, files.count), "process_s": run.seconds})

            return check

        storescu = [storescu_files_argv(server, share) for share in shares]
        fleet = launchers.fleet_argv(storescu, bench.dir("W8-fleet") / "commands.json")
        ours = Pairing(
            "aio", f"dimse.aio: 1 process, {n} associations at once",
            api_argv("aiostore", server.host, server.port, server.ae_title, str(files.directory), n),
            environment(), before=before, after=after("aio"),
        )  # fmt: skip
        theirs = Pairing(
            "dcmtk", f"DCMTK storescu: {n} processes at once, TCP_NODELAY=1", fleet,
            environment(nodelay=True), api=True, before=before, after=after("dcmtk"),
        )  # fmt: skip
        run_interleaved(bench, [ours, theirs], "W8", expect_ok=None)

    def mib(kib: float) -> str:
        return f"{kib / 1024:.0f} MiB"

    def retried(key: str) -> str:
        if not overflows[key]:
            return ""
        count = median(overflows[key])
        return f"; {count:.0f} connect(s) retried (storescp's accept queue full)" if count else ""

    ours_rate = files.count / median(ours.seconds)
    theirs_rate = files.count / median(theirs.seconds)
    what = f"{n} associations x {per} x {files.file_bytes / 1000:.1f} KB"
    loop = median([d["seconds"] for d in ours.details])
    prepare = median([d["prepare_s"] for d in ours.details])
    ours_rss = max(ours.peak_rss_kib, default=0)
    ours_row = Row(
        "W8", ours.label, ours_rate, "inst/s", ours.seconds,
        vs_dcmtk=ratio(ours_rate, theirs_rate),
        note=(
            f"{loop:.3f} s first connect to last release, +{prepare:.3f} s reading file meta; "
            f"CPU {median([d['cpu_s'] for d in ours.details]):.2f} s, peak RSS {mib(ours_rss)}"
            + retried("aio")
        ),
        extra={
            "files": what, "peak_rss_kib": ours_rss, "listen_overflows": overflows["aio"],
            "details": ours.details,
        },
    )  # fmt: skip
    theirs_row = Row(
        "W8", theirs.label, theirs_rate, "inst/s", theirs.seconds, vs_dcmtk=1.0,
        note=(
            f"last started after {median([d['spawn_s'] for d in theirs.details]):.3f} s; "
            f"CPU {median([d['cpu_s'] for d in theirs.details]):.2f} s in all, peak RSS "
            f"{mib(max(d['max_rss_kib'] for d in theirs.details))} each (shared libraries "
            "included)" + retried("dcmtk")
        ),
        extra={"files": what, "listen_overflows": overflows["dcmtk"], "details": theirs.details},
    )  # fmt: skip
    bench.notes.append(
        f"W8: {files.count} x {files.file_bytes / 1000:.1f} KB in {n} associations of {per}, "
        "all at once, into one DCMTK storescp --fork -od (TCP_NODELAY=1; a process per "
        "association, no fsync), its folder emptied before each run and counted after; from "
        "the start of the client process(es) to the last exit, start-up included. A connect "
        "'retried' found storescp's accept queue full (DCMTK's listen backlog is a fixed 50; "
        "TcpExt ListenOverflows, machine-wide): the kernel sends it again a second later."
    )
    return [ours_row, theirs_row]


WORKLOADS: dict[str, Callable[[Bench], list[Row]]] = {
    "W1": w1,
    "W2": w2,
    "W3": w3,
    "W4": w4,
    "W5": w5,
    "W6": w6,
    "W7": w7,
    "W8": w8,
    "W9": w9,
    "W10": w10,
}
