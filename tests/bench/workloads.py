"""The workloads of the speed issue (W1..W6, W7: our client with our server, and W8:
the asyncio client's many associations at once), each a function returning table rows.

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
- MB is 10**6 bytes; MB/s counts the bytes of the files sent (the data sets and their
  file meta groups). MiB is 2**20 bytes.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import hashlib
import json
import os
import shutil
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.bench import disk, peers
from tests.bench.api import groups
from tests.bench.data import DataCache, InstanceSet
from tests.bench.peers import BenchError, ClientRun, environment, run_client

SLOW_S = 10.0


@dataclass(frozen=True)
class Sizes:
    small: int  # W1, W3: instances of about 8 KB
    large: int  # W2, W3: instances of 2 MiB
    query: int  # W4: instances matched by the C-FIND
    associations: int  # W5
    huge: int  # W6: bytes of pixel data of the one instance
    concurrent: int  # W8: associations at once
    per_association: int  # W8: small instances stored on each


FULL = Sizes(
    small=1000, large=100, query=10_000, associations=1000, huge=1 << 30,
    concurrent=100, per_association=10,
)  # fmt: skip
QUICK = Sizes(
    small=50, large=5, query=300, associations=50, huge=64 << 20,
    concurrent=100, per_association=2,
)  # fmt: skip


@dataclass
class Row:
    """One line of the table."""

    workload: str
    pairing: str
    value: float | None
    unit: str
    samples: list[float] = field(default_factory=list)  # seconds of each run
    vs_dcmtk: float | None = None
    vs_pynetdicom: float | None = None
    target: str = ""
    verdict: str = ""  # PASS, MISS, or "" (no target)
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Bench:
    """What every workload needs: where to write, the data, how many runs."""

    root: Path  # on disk: archives that fsync go here
    scratch: Path  # RAM if there is one (W4), else under root
    data: DataCache
    sizes: Sizes
    repeat: int
    log: Callable[[str], None] = print
    notes: list[str] = field(default_factory=list)
    cache: Path | None = None  # --cache: kept between runs (W4's loaded dcmqrscp)

    def dir(self, name: str, *, scratch: bool = False) -> Path:
        """A new directory for one peer or one run."""
        base = self.scratch if scratch else self.root
        for n in range(1, 10_000):
            path = base / (name if n == 1 else f"{name}-{n}")
            try:
                path.mkdir(parents=True)
                return path
            except FileExistsError:
                continue
        raise BenchError(f"too many directories named {name}")

    @property
    def logs(self) -> Path:
        path = self.root / "logs"
        path.mkdir(exist_ok=True)
        return path


# ---------------------------------------------------------------------------------------
# Helpers.


def _api_seconds(run: ClientRun, expect_ok: int | None = None) -> dict[str, Any]:
    """The JSON line that tests/bench/api.py prints last."""
    for line in reversed(run.output.splitlines()):
        if line.startswith("{"):
            result: dict[str, Any] = json.loads(line)
            if result.get("failed"):
                raise BenchError(
                    f"{run.name}: {result['failed']} operation(s) failed\n{run.output[-3000:]}"
                )
            if expect_ok is not None and result.get("ok") != expect_ok:
                raise BenchError(
                    f"{run.name}: {result.get('ok')} of {expect_ok} succeeded\n{run.output[-3000:]}"
                )
            return result
    raise BenchError(f"{run.name} printed no result\n{run.output[-3000:]}")


@dataclass
class Pairing:
    """One client command of a workload, run `repeat` times."""

    key: str
    label: str
    argv: list[str]
    env: dict[str, str]
    api: bool = False  # the figure is the "seconds" that api.py prints
    seconds: list[float] = field(default_factory=list)
    peak_rss_kib: list[int] = field(default_factory=list)
    details: list[dict[str, Any]] = field(default_factory=list)
    before: Callable[[], None] | None = None  # run before each run (not timed)
    after: Callable[[ClientRun], None] | None = None  # checks after each run (not timed)


def run_interleaved(
    bench: Bench, pairings: Sequence[Pairing], what: str, expect_ok: int | None
) -> None:
    """Run every pairing `bench.repeat` times, interleaved."""
    for round_ in range(bench.repeat):
        for p in pairings:
            if round_ > 0 and p.seconds and p.seconds[0] > SLOW_S:
                continue
            if p.before is not None:
                p.before()
            run = run_client(f"{what}-{p.key}-{round_ + 1}", p.argv, bench.logs, p.env)
            if p.after is not None:
                p.after(run)
            if p.api:
                result = _api_seconds(run, expect_ok)
                p.seconds.append(float(result["seconds"]))
                p.details.append({**result, "process_s": run.seconds})
            else:
                p.seconds.append(run.seconds)
            if run.peak_rss_kib is not None:
                p.peak_rss_kib.append(run.peak_rss_kib)
            bench.log(f"  {what} {p.label}: run {round_ + 1}: {p.seconds[-1]:.3f} s")


def _median(values: Sequence[float]) -> float:
    return statistics.median(values)


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def _storescu(server: peers.Server, files: InstanceSet) -> list[str]:
    return [
        peers.dcmtk("storescu"),
        "-aec",
        server.ae_title,
        "+sd",
        server.host,
        str(server.port),
        str(files.directory),
    ]


def _dicomscu(server: peers.Server, files: InstanceSet) -> list[str]:
    return [
        sys.executable,
        "-m",
        "cli",
        "--store",
        server.host,
        str(server.port),
        str(files.directory),
        "--call",
        server.ae_title,
    ]


def _api(command: str, host: str, port: int, ae: str, *args: str | int) -> list[str]:
    return [sys.executable, "-m", "tests.bench.api", command, host, str(port), ae, *map(str, args)]


def _pynetdicom_storescu(server: peers.Server, files: InstanceSet) -> list[str]:
    return [
        sys.executable,
        "-m",
        "pynetdicom",
        "storescu",
        "-aec",
        server.ae_title,
        server.host,
        str(server.port),
        str(files.directory),
    ]


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
            Pairing("dicomscu", "dicomscu (command)", _dicomscu(server, files), environment()),
            Pairing(
                "api", "dicomscu (Python API, store only)",
                _api("store", server.host, server.port, server.ae_title, str(files.directory)),
                environment(), api=True,
            ),
            Pairing("dcmtk", "DCMTK storescu, TCP_NODELAY=1", _storescu(server, files), environment(nodelay=True)),
            Pairing("dcmtk-default", "DCMTK storescu, default", _storescu(server, files), environment(nodelay=None)),
            Pairing("pynetdicom", "pynetdicom storescu", _pynetdicom_storescu(server, files), environment()),
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
    dcmtk_rate = rate(_median(by_key["dcmtk"].seconds))
    py_rate = rate(_median(by_key["pynetdicom"].seconds))
    what = (
        f"{files.count} x {files.file_bytes / 1000:.1f} KB"
        if small
        else f"{files.count} x {files.file_bytes / 2**20:.2f} MiB"
    )
    rows = []
    for p in pairings:
        if p.key == "startup":
            continue
        value = rate(_median(p.seconds))
        row = Row(
            workload, p.label, value, unit, p.seconds,
            vs_dcmtk=_ratio(value, dcmtk_rate),
            vs_pynetdicom=_ratio(value, py_rate) if p.key != "pynetdicom" else None,
            extra={"files": what, "peak_rss_kib": max(p.peak_rss_kib, default=None), "details": p.details},
        )  # fmt: skip
        if p.key in ("dicomscu", "api"):
            if small:
                row.target = ">=1.0x DCMTK, >=20x pynetdicom"
                row.verdict = _verdict(
                    (row.vs_dcmtk or 0) >= 1.0 and (row.vs_pynetdicom or 0) >= 20.0
                )
            else:
                row.target = ">=0.8x DCMTK"
                row.verdict = _verdict((row.vs_dcmtk or 0) >= 0.8)
        if p.key == "api" and p.details:
            prepare = _median([d["prepare_s"] for d in p.details])
            row.note = f"+{prepare:.3f} s reading file meta of {files.count} files before connect (not in the figure)"
        rows.append(row)
    if small:
        startup = by_key["startup"]
        rows.append(
            Row(
                workload, "dicomscu start-up only (--version)", _median(startup.seconds), "s",
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
# W3: the server.


def _count_stored(server: peers.Server) -> int:
    if server.name == "dicomscp":
        assert server.directory is not None
        return sum(1 for _ in server.directory.rglob("*.dcm"))
    return len(server.received_files())


def w3(bench: Bench) -> list[Row]:
    """DCMTK storescu (TCP_NODELAY=1) sends the W1 and the W2 files to each server, a
    fresh one (empty archive or folder, on disk: {root}) for every run; the time is
    storescu's, start to exit (a C-STORE is answered once the instance is written)."""
    rows: list[Row] = []
    kinds = [
        ("dicomscp", "dicomscp (fsync)"),
        ("dicomscp-nofsync", "dicomscp --no-fsync"),
        ("dcmtk", "DCMTK storescp -od, TCP_NODELAY=1"),
        ("pynetdicom", "pynetdicom storescp -od"),
    ]
    for label, files, unit in (
        ("small", bench.data.small(bench.sizes.small), "inst/s"),
        ("large", bench.data.large(bench.sizes.large), "MB/s"),
    ):

        def rate(seconds: float, files: InstanceSet = files, unit: str = unit) -> float:
            return files.count / seconds if unit == "inst/s" else files.total_bytes / 1e6 / seconds

        seconds: dict[str, list[float]] = {k: [] for k, _ in kinds}
        server_rss: dict[str, list[int]] = {k: [] for k, _ in kinds}
        for round_ in range(bench.repeat):
            for key, name in kinds:
                if round_ > 0 and seconds[key] and seconds[key][0] > SLOW_S:
                    continue
                workdir = bench.dir(f"W3-{label}-{key}")
                if key.startswith("dicomscp"):
                    start = peers.dicomscp(workdir, fsync=key == "dicomscp")
                elif key == "dcmtk":
                    start = peers.dcmtk_storescp(workdir, ignore=False, nodelay=True)
                else:
                    start = peers.pynetdicom_storescp(workdir, ignore=False)
                with start as server:
                    run = run_client(
                        f"W3-{label}-{key}-{round_ + 1}", _storescu(server, files), bench.logs,
                        environment(nodelay=True),
                    )  # fmt: skip
                    stored = _count_stored(server)
                    hwm = peers.vm_hwm_kib(server.process.pid)
                    if hwm is not None:
                        server_rss[key].append(hwm)
                if stored != files.count:
                    raise BenchError(f"W3: {name} holds {stored} of the {files.count} files sent")
                seconds[key].append(run.seconds)
                bench.log(f"  W3 {label} {name}: run {round_ + 1}: {run.seconds:.3f} s")
        dcmtk_rate = rate(_median(seconds["dcmtk"]))
        py_rate = rate(_median(seconds["pynetdicom"]))
        for key, name in kinds:
            value = rate(_median(seconds[key]))
            row = Row(
                "W3", f"{name} <- {label}", value, unit, seconds[key],
                vs_dcmtk=_ratio(value, dcmtk_rate),
                vs_pynetdicom=_ratio(value, py_rate) if key != "pynetdicom" else None,
                extra={"server_peak_rss_kib": max(server_rss[key], default=None)},
            )  # fmt: skip
            if key == "dicomscp":
                row.target = ">=0.8x DCMTK"
                row.verdict = _verdict((row.vs_dcmtk or 0) >= 0.8)
            rows.append(row)
        with_fsync, without = _median(seconds["dicomscp"]), _median(seconds["dicomscp-nofsync"])
        cost = (with_fsync - without) / files.count * 1000
        fsync_row = rows[-4]
        fsync_row.note = f"fsync costs {cost:+.2f} ms per instance ({(with_fsync / without - 1) * 100:+.0f}% time)"
        bench.notes.append(
            f"W3 {label}: fsync on costs {cost:+.2f} ms per instance, "
            f"{with_fsync:.2f} s vs {without:.2f} s for {files.count} instances."
        )
        flush = disk.durable_write_seconds(
            bench.root, files.file_bytes, 100 if unit == "inst/s" else 20
        )
        ceiling = rate(flush * files.count)
        plain = disk.write_seconds(bench.root, files.file_bytes, 100 if unit == "inst/s" else 20)
        bench.notes.append(
            f"W3 {label}: this disk makes one new {files.file_bytes / 1000:,.1f} KB file durable "
            f"(write, fsync, fsync of its directory) in {flush * 1000:.2f} ms (median): a server "
            f"that does so before each answer, on one association, cannot pass "
            f"{ceiling:,.0f} {unit} even with no CPU time at all, {_ratio(ceiling, dcmtk_rate) or 0:.2f}x "
            f"DCMTK storescp -od. Without fsync, creating and writing such a file takes "
            f"{plain * 1000:.3f} ms here."
        )
    bench.notes.append(
        f"W3: receivers write under {bench.root} ({_filesystem(bench.root)}); "
        "DCMTK and pynetdicom storescp do not fsync."
    )
    return rows


def _filesystem(path: Path) -> str:
    """The file system type of `path` (from /proc/mounts: the longest matching mount)."""
    best, kind = "", "unknown file system"
    try:
        for line in Path("/proc/mounts").read_text().splitlines():
            fields = line.split()
            if len(fields) >= 3 and str(path).startswith(fields[1]) and len(fields[1]) > len(best):
                best, kind = fields[1], f"{fields[2]} at {fields[1]}"
    except OSError:
        pass
    return kind


# ---------------------------------------------------------------------------------------
# W4: the query.


def _load(bench: Bench, name: str, host: str, port: int, ae: str, files: InstanceSet) -> float:
    started = time.perf_counter()
    argv = [peers.dcmtk("storescu"), "-aec", ae, "+sd", host, str(port), str(files.directory)]
    run_client(f"W4-load-{name}", argv, bench.logs, environment(nodelay=True), timeout_s=3600)
    seconds = time.perf_counter() - started
    bench.log(f"  W4 loaded {files.count} instances into {name} in {seconds:.1f} s")
    return seconds


def _dcmqrscp_cache(bench: Bench, files: InstanceSet) -> Path | None:
    """With --cache: the folder of a dcmqrscp storage area loaded with exactly these
    files by this dcmqrscp binary (kept between runs: dcmqrscp takes minutes to take
    10,000 instances, each insert scanning its whole index file)."""
    if bench.cache is None:
        return None
    binary = os.stat(peers.dcmtk("dcmqrscp"))
    digest = hashlib.sha256()
    for path in (files.files[0], files.files[-1]):
        digest.update(path.read_bytes())
    digest.update(f"{files.count} {binary.st_size} {binary.st_mtime_ns}".encode())
    return bench.cache / f"dcmqrscp-{files.count}-{digest.hexdigest()[:16]}"


def w4(bench: Bench) -> list[Row]:
    """An image-level Study Root C-FIND on the one series of N instances, answered by
    dicomscp, dcmqrscp and Orthanc, each loaded beforehand with the same N instances
    by DCMTK storescu over one association (not timed; the three loads at once). The
    client is DCMTK `findscu -q` (timed from start to exit; C++, its start-up is a few
    ms), and also our Python API (`assoc.find`, in-process time), which counts the
    matches: every server must return all N. With --cache, dcmqrscp's loaded storage
    area is kept and reused by the next runs."""
    files = bench.data.small(bench.sizes.query)
    keys = [
        "-k", "QueryRetrieveLevel=IMAGE", "-k", f"StudyInstanceUID={files.study_uid}",
        "-k", f"SeriesInstanceUID={files.series_uid}", "-k", "SOPInstanceUID", "-k", "InstanceNumber",
    ]  # fmt: skip
    load_seconds: dict[str, float | None] = {}
    results: dict[str, dict[str, list[float]]] = {}
    cached_qr = _dcmqrscp_cache(bench, files)
    qr_loaded = cached_qr is not None and (cached_qr / "loaded").exists()
    with contextlib.ExitStack() as stack:
        servers: dict[str, tuple[str, int, str]] = {}
        scp = stack.enter_context(
            peers.dicomscp(bench.dir("W4-dicomscp", scratch=True), fsync=False)
        )
        servers["dicomscp"] = (scp.host, scp.port, scp.ae_title)
        if cached_qr is not None and not qr_loaded:
            shutil.rmtree(cached_qr, ignore_errors=True)  # a load that did not finish
        if cached_qr is not None:
            cached_qr.mkdir(parents=True, exist_ok=True)
        qr_dir = cached_qr or bench.dir("W4-dcmqrscp", scratch=True)
        qr = stack.enter_context(peers.dcmqrscp(qr_dir))
        servers["dcmqrscp"] = (qr.host, qr.port, qr.ae_title)
        orthanc = stack.enter_context(peers.orthanc(bench.dir("W4-orthanc", scratch=True)))
        servers["Orthanc"] = (orthanc.host, orthanc.port, orthanc.ae_title)
        to_load = {n: a for n, a in servers.items() if not (n == "dcmqrscp" and qr_loaded)}
        if qr_loaded:
            load_seconds["dcmqrscp"] = None
            bench.log(f"  W4 dcmqrscp: storage area loaded by an earlier run ({cached_qr})")
        with concurrent.futures.ThreadPoolExecutor(len(to_load)) as pool:
            futures = {
                name: pool.submit(_load, bench, name, host, port, ae, files)
                for name, (host, port, ae) in to_load.items()
            }
            for name, future in futures.items():
                load_seconds[name] = future.result()
        if cached_qr is not None and not qr_loaded:
            (cached_qr / "loaded").write_text(f"{files.count}\n")
        pairings: list[tuple[str, str, Pairing]] = []
        for name, (host, port, ae) in servers.items():
            findscu = [peers.dcmtk("findscu"), "-q", "-S", "-aec", ae, *keys, host, str(port)]
            label = f"{name} <- findscu"
            pairings.append(
                (
                    name,
                    "findscu",
                    Pairing(f"{name}-findscu", label, findscu, environment(nodelay=True)),
                )
            )
            api = _api("find", host, port, ae, files.study_uid, files.series_uid)
            label = f"{name} <- dimse.client (API)"
            pairings.append(
                (name, "api", Pairing(f"{name}-api", label, api, environment(), api=True))
            )
        run_interleaved(bench, [p for _, _, p in pairings], "W4", expect_ok=files.count)
        for name, client, p in pairings:
            results.setdefault(client, {})[name] = p.seconds

    rows = []
    for client, label in (("findscu", "findscu -q (command)"), ("api", "dimse.client find (API)")):
        reference = files.count / _median(results[client]["dcmqrscp"])
        for name in ("dicomscp", "dcmqrscp", "Orthanc"):
            value = files.count / _median(results[client][name])
            row = Row(
                "W4", f"{name} <- {label}", value, "resp/s", results[client][name],
                vs_dcmtk=_ratio(value, reference),
                extra={"load_s": load_seconds[name], "instances": files.count},
            )  # fmt: skip
            if name == "dicomscp" and client == "findscu":
                row.target = ">=1.0x dcmqrscp"
                row.verdict = _verdict((row.vs_dcmtk or 0) >= 1.0)
            rows.append(row)
    loads = ", ".join(
        f"{n} {'(cached)' if s is None else f'{s:.0f} s'}" for n, s in load_seconds.items()
    )
    bench.notes.append(
        f"W4: {files.count} instances in one series; loading them (DCMTK storescu, one "
        f"association each, the three at once, not timed) took {loads}; archives in "
        f"{bench.scratch} ({_filesystem(bench.scratch)})"
        + (f", dcmqrscp's in {cached_qr}" if cached_qr else "")
        + "; dicomscp with --no-fsync (nothing is stored during a query). "
        "'vs DCMTK' is vs dcmqrscp with the same client."
    )
    return rows


# ---------------------------------------------------------------------------------------
# W5: associations.


def w5(bench: Bench) -> list[Row]:
    """Open, C-ECHO, release, N times, from a Python API in a fresh interpreter (the
    loop is timed inside it): ours vs pynetdicom's, both to the same DCMTK storescp
    (TCP_NODELAY=1): a C++ server that neither library wrote."""
    n = bench.sizes.associations
    with peers.dcmtk_storescp(bench.dir("W5-storescp"), ignore=True, ae_title="ECHOSCP") as server:
        pairings = [
            Pairing("ours", "dimse.client connect/echo/release", _api("echo", server.host, server.port, server.ae_title, n), environment(), api=True),
            Pairing("pynetdicom", "pynetdicom associate/echo/release", _api("pyecho", server.host, server.port, server.ae_title, n), environment(), api=True),
        ]  # fmt: skip
        run_interleaved(bench, pairings, "W5", expect_ok=n)
    ours, theirs = (n / _median(p.seconds) for p in pairings)
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
            "W6-dicomscu", _dicomscu(server, files), bench.logs, environment(), timeout_s=1800
        )
        dcmtk = run_client(
            "W6-storescu",
            _storescu(server, files),
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
            row.target, row.verdict = "<100 MiB", _verdict(rss < limit_kib)
        rows.append(row)

    for key in ("dicomscp", "dcmtk"):
        workdir = bench.dir(f"W6-{key}")
        start = (
            peers.dicomscp(workdir, fsync=True)
            if key == "dicomscp"
            else peers.dcmtk_storescp(workdir, ignore=False)
        )
        with start as receiver:
            idle = peers.vm_hwm_kib(receiver.process.pid) or 0
            run = run_client(
                f"W6-to-{key}",
                _storescu(receiver, files),
                bench.logs,
                environment(nodelay=True),
                timeout_s=1800,
            )
            peak = peers.vm_hwm_kib(receiver.process.pid) or 0
            stored = _count_stored(receiver)
        if stored != 1:
            raise BenchError(f"W6: {key} did not store the {size} instance")
        label = "dicomscp receiving" if key == "dicomscp" else "DCMTK storescp -od receiving"
        row = Row(
            "W6", f"{label} {size}", peak / 1024, "MiB peak RSS", [run.seconds],
            note=f"{idle / 1024:.0f} MiB before; {mb_s(run.seconds):.0f} MB/s",
            extra={"peak_rss_kib": peak, "idle_rss_kib": idle},
        )  # fmt: skip
        if key == "dicomscp":
            row.target, row.verdict = "<100 MiB", _verdict(peak < limit_kib)
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
                    argv, env = _storescu(server, files), environment(nodelay=True)
                else:
                    argv, env = _dicomscu(server, files) + extra, environment()
                run = run_client(f"W7-{key}-{round_ + 1}", argv, bench.logs, env)
                stored = _count_stored(server)
            if stored != files.count:
                raise BenchError(f"W7: {name} holds {stored} of the {files.count} files sent")
            seconds[key].append(run.seconds)
            bench.log(f"  W7 {name}: run {round_ + 1}: {run.seconds:.3f} s")
    dcmtk_rate = files.count / _median(seconds["dcmtk"])
    rows = []
    for key, name, _, fsync in kinds:
        value = files.count / _median(seconds[key])
        row = Row("W7", name, value, "inst/s", seconds[key], vs_dcmtk=_ratio(value, dcmtk_rate))
        if key not in ("plain", "dcmtk", "fsync"):
            base = _median(seconds["fsync" if fsync else "plain"])
            row.note = f"{base / _median(seconds[key]):.2f}x dicomscu one at a time, same fsync"
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
            mark[0] = peers.listen_overflows()

        def after(key: str) -> Callable[[ClientRun], None]:
            def check(run: ClientRun) -> None:
                stored = _count_stored(server)
                if stored != files.count:
                    raise BenchError(
                        f"W8: storescp holds {stored} of the {files.count} files sent by {run.name}"
                    )
                now = peers.listen_overflows()
                if now is not None and mark[0] is not None:
                    overflows[key].append(now - mark[0])
                if key == "aio":  # its figure is the process's; its own report goes in details
                    ours.details.append(
                        {**_api_seconds(run, files.count), "process_s": run.seconds}
                    )

            return check

        storescu = [
            [peers.dcmtk("storescu"), "-aec", server.ae_title, server.host, str(server.port), *map(str, share)]
            for share in shares
        ]  # fmt: skip
        fleet = peers.fleet_argv(storescu, bench.dir("W8-fleet") / "commands.json")
        ours = Pairing(
            "aio", f"dimse.aio: 1 process, {n} associations at once",
            _api("aiostore", server.host, server.port, server.ae_title, str(files.directory), n),
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
        count = _median(overflows[key])
        return f"; {count:.0f} connect(s) retried (storescp's accept queue full)" if count else ""

    ours_rate = files.count / _median(ours.seconds)
    theirs_rate = files.count / _median(theirs.seconds)
    what = f"{n} associations x {per} x {files.file_bytes / 1000:.1f} KB"
    loop = _median([d["seconds"] for d in ours.details])
    prepare = _median([d["prepare_s"] for d in ours.details])
    ours_rss = max(ours.peak_rss_kib, default=0)
    ours_row = Row(
        "W8", ours.label, ours_rate, "inst/s", ours.seconds,
        vs_dcmtk=_ratio(ours_rate, theirs_rate),
        note=(
            f"{loop:.3f} s first connect to last release, +{prepare:.3f} s reading file meta; "
            f"CPU {_median([d['cpu_s'] for d in ours.details]):.2f} s, peak RSS {mib(ours_rss)}"
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
            f"last started after {_median([d['spawn_s'] for d in theirs.details]):.3f} s; "
            f"CPU {_median([d['cpu_s'] for d in theirs.details]):.2f} s in all, peak RSS "
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
}


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    info: dict[str, Any] = {
        "python": sys.version.split()[0],
        "executable": sys.executable,
        "cpus": os.cpu_count(),
        "loadavg": os.getloadavg(),
    }
    try:
        import pydicom
        import pynetdicom

        info["pydicom"] = pydicom.__version__
        info["pynetdicom"] = pynetdicom.__version__
    except ImportError:
        pass
    return info
