"""W3: the server. DCMTK storescu (TCP_NODELAY=1) sends the W1 and the W2 files over
one association to each receiver, a fresh one (empty archive or folder, on disk) for
every run: dicomscp with fsync and without, DCMTK storescp -od, pynetdicom's storescp
-od and Orthanc. The time is storescu's, start to exit (a C-STORE is answered once the
instance is written). Beside the rates: each server's CPU time per instance, and the
bound that the disk sets on a server that makes every instance durable before its
answer (tests/bench/disk.py), as a row of its own.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from tests import peers as test_peers
from tests.bench import disk, peers, procfs
from tests.bench.common import (
    SLOW_S,
    Address,
    Bench,
    Row,
    count_stored,
    filesystem,
    median,
    ratio,
    storescu_argv,
    verdict,
)
from tests.bench.data import InstanceSet
from tests.bench.peers import BenchError, environment, run_client

#: (key, label) of each receiver, in the order of the table.
RECEIVERS = [
    ("dicomscp", "dicomscp (fsync)"),
    ("dicomscp-nofsync", "dicomscp --no-fsync"),
    ("dcmtk", "DCMTK storescp -od, TCP_NODELAY=1"),
    ("pynetdicom", "pynetdicom storescp -od"),
    ("orthanc", "Orthanc, TCP_NODELAY=1"),
]
#: Small instances only, into RAM (tmpfs, where there is one): the servers' own CPU per
#: instance, without the file system's share, which on this VM's disk swings from
#: 30 us to 500 us a file (create, write, rename) from one minute to the next.
RAM_RECEIVERS = [
    ("dicomscp-ram", "dicomscp --no-fsync, archive in RAM"),
    ("dcmtk-ram", "DCMTK storescp -od, folder in RAM"),
]
CPU_TARGET_MS = 0.5  # dicomscp's CPU time per small instance


@dataclass
class Receiver:
    """A running receiver: where to send, its process (CPU, memory), what it holds."""

    address: Address
    pid: int
    stored: Callable[[], int]


@contextlib.contextmanager
def receiver(key: str, bench: Bench, workdir_name: str) -> Iterator[Receiver]:
    workdir = bench.dir(workdir_name)
    if key == "orthanc":
        with peers.orthanc(workdir) as orthanc:
            assert orthanc.process is not None

            def count() -> int:
                try:
                    return int(orthanc.rest("GET", "/statistics")["CountInstances"])
                except test_peers.PeerError as exc:
                    raise BenchError(f"W3: Orthanc's statistics: {exc}") from None

            yield Receiver(orthanc, orthanc.process.pid, count)
        return
    if key.endswith("-ram"):
        workdir = bench.dir(workdir_name, scratch=True)
    if key.startswith("dicomscp"):
        start = peers.dicomscp(workdir, fsync=key == "dicomscp")
    elif key.startswith("dcmtk"):
        start = peers.dcmtk_storescp(workdir, ignore=False, nodelay=True)
    else:
        start = peers.pynetdicom_storescp(workdir, ignore=False)
    with start as server:
        yield Receiver(server, server.process.pid, lambda: count_stored(server))


@dataclass
class Runs:
    """What the runs of one receiver measured: storescu's seconds, the server's CPU
    seconds (its process and those under it) and its peak RSS."""

    seconds: list[float]
    cpu_s: list[float]
    rss_kib: list[int]

    def cpu_ms_per_instance(self, count: int) -> float | None:
        return median(self.cpu_s) / count * 1000 if self.cpu_s else None


def _measure(bench: Bench, label: str, files: InstanceSet) -> dict[str, Runs]:
    receivers = RECEIVERS + (RAM_RECEIVERS if label == "small" else [])
    runs = {key: Runs([], [], []) for key, _ in receivers}
    for round_ in range(bench.repeat):
        for key, name in receivers:
            done = runs[key]
            if round_ > 0 and done.seconds and done.seconds[0] > SLOW_S:
                continue
            with receiver(key, bench, f"W3-{label}-{key}") as server:
                before = procfs.tree_cpu_seconds(server.pid)
                run = run_client(
                    f"W3-{label}-{key}-{round_ + 1}", storescu_argv(server.address, files),
                    bench.logs, environment(nodelay=True),
                )  # fmt: skip
                cpu = procfs.tree_cpu_seconds(server.pid) - before
                stored = server.stored()
                hwm = procfs.vm_hwm_kib(server.pid)
            if stored != files.count:
                raise BenchError(f"W3: {name} holds {stored} of the {files.count} files sent")
            done.seconds.append(run.seconds)
            done.cpu_s.append(cpu)
            if hwm is not None:
                done.rss_kib.append(hwm)
            bench.log(
                f"  W3 {label} {name}: run {round_ + 1}: {run.seconds:.3f} s, "
                f"server CPU {cpu * 1000 / files.count:.3f} ms/instance"
            )
    return runs


def _targets(row: Row, key: str, orthanc: float | None, bound: float) -> None:
    """The targets of dicomscp's rows (issue 15): --no-fsync >= DCMTK storescp -od;
    with fsync, >= 2x Orthanc (which fsyncs too) and >= 0.8x the disk's bound."""
    if key == "dicomscp-nofsync":
        row.target = ">=1.0x DCMTK"
        row.verdict = verdict((row.vs_dcmtk or 0) >= 1.0)
    elif key == "dicomscp":
        vs_orthanc, vs_bound = ratio(row.value, orthanc), ratio(row.value, bound)
        row.target = ">=2x Orthanc, >=0.8x disk bound"
        row.verdict = verdict((vs_orthanc or 0) >= 2.0 and (vs_bound or 0) >= 0.8)
        row.extra.update(vs_orthanc=vs_orthanc, vs_disk_bound=vs_bound)
        row.note = f"{vs_orthanc or 0:.2f}x Orthanc, {vs_bound or 0:.2f}x disk bound; {row.note}"


def w3(bench: Bench) -> list[Row]:
    """The W1 files, then the W2 files, into every receiver (the module's docstring)."""
    rows: list[Row] = []
    for label, files, unit in (
        ("small", bench.data.small(bench.sizes.small), "inst/s"),
        ("large", bench.data.large(bench.sizes.large), "MB/s"),
    ):

        def rate(seconds: float, files: InstanceSet = files, unit: str = unit) -> float:
            return files.count / seconds if unit == "inst/s" else files.total_bytes / 1e6 / seconds

        runs = _measure(bench, label, files)
        probes = 100 if unit == "inst/s" else 20
        flush = disk.durable_write_seconds(bench.root, files.file_bytes, probes)
        plain = disk.write_seconds(bench.root, files.file_bytes, probes)
        bound = rate(flush * files.count)
        indexed = flush + disk.durable_commit_seconds(bench.root, probes)
        indexed_bound = rate(indexed * files.count)
        rates = {key: rate(median(runs[key].seconds)) for key, _ in RECEIVERS}
        dcmtk_rate, py_rate = rates["dcmtk"], rates["pynetdicom"]
        by_key: dict[str, Row] = {}
        for key, name in RECEIVERS:
            cpu_ms = runs[key].cpu_ms_per_instance(files.count)
            row = Row(
                "W3", f"{name} <- {label}", rates[key], unit, runs[key].seconds,
                vs_dcmtk=ratio(rates[key], dcmtk_rate),
                vs_pynetdicom=ratio(rates[key], py_rate) if key != "pynetdicom" else None,
                note=f"server CPU {cpu_ms or 0:.3f} ms/instance",
                extra={
                    "server_peak_rss_kib": max(runs[key].rss_kib, default=None),
                    "server_cpu_ms_per_instance": cpu_ms,
                    "server_cpu_s": runs[key].cpu_s,
                },
            )  # fmt: skip
            by_key[key] = row
            rows.append(row)
        with_fsync = median(runs["dicomscp"].seconds)
        without = median(runs["dicomscp-nofsync"].seconds)
        cost = (with_fsync - without) / files.count * 1000
        fsync_row = by_key["dicomscp"]
        fsync_row.note += (
            f"; fsync costs {cost:+.2f} ms per instance "
            f"({(with_fsync / without - 1) * 100:+.0f}% time)"
        )
        for key in ("dicomscp", "dicomscp-nofsync"):
            _targets(by_key[key], key, rates["orthanc"], bound)
        rows.append(
            Row(
                "W3", f"disk bound: one durable new file per instance, one association <- {label}",
                bound, unit, vs_dcmtk=ratio(bound, dcmtk_rate),
                note=(
                    f"write + fsync + fsync of the directory: {flush * 1000:.2f} ms a file "
                    f"(median of {probes}); without fsync {plain * 1000:.3f} ms"
                ),
                extra={"durable_write_ms": flush * 1000, "write_ms": plain * 1000, "probes": probes},
            )
        )  # fmt: skip
        vs_indexed = ratio(by_key["dicomscp"].value, indexed_bound)
        rows.append(
            Row(
                "W3", f"disk bound with a durable index: + one SQLite FULL commit <- {label}",
                indexed_bound, unit, vs_dcmtk=ratio(indexed_bound, dcmtk_rate),
                note=(
                    f"{indexed * 1000:.2f} ms an instance; dicomscp (fsync) reaches "
                    f"{vs_indexed or 0:.2f}x of it"
                ),
                extra={"durable_indexed_ms": indexed * 1000, "dicomscp_vs_it": vs_indexed},
            )
        )  # fmt: skip
        if label == "small":
            rows += _cpu_rows(runs, files.count)
            rows += _ram_rows(runs, files.count, rate)
        bench.notes.append(
            f"W3 {label}: fsync on costs {cost:+.2f} ms per instance, "
            f"{with_fsync:.2f} s vs {without:.2f} s for {files.count} instances."
        )
        bench.notes.append(
            f"W3 {label}: this disk makes one new {files.file_bytes / 1000:,.1f} KB file durable "
            f"(write, fsync, fsync of its directory) in {flush * 1000:.2f} ms (median): a server "
            f"that does so before each answer, on one association, cannot pass "
            f"{bound:,.0f} {unit} even with no CPU time at all, {ratio(bound, dcmtk_rate) or 0:.2f}x "
            f"DCMTK storescp -od (the 'disk bound' row). Without fsync, creating and writing "
            f"such a file takes {plain * 1000:.3f} ms here."
        )
    bench.notes.append(
        f"W3: receivers write under {bench.root} ({filesystem(bench.root)}); "
        "DCMTK and pynetdicom storescp do not fsync. Orthanc runs with its default storage "
        "(files in its storage folder, its index in SQLite) and its SyncStorageArea left at "
        "its default, true since Orthanc 1.7.4: strace shows one fdatasync of each new file "
        "before the answer, no fsync of its directory and no sync of the SQLite index per "
        "instance; StorageCompression off, OverwriteInstances on (tests/bench/peers.py). "
        "Server CPU: user + system time of the server's process and of those under it, "
        "from just before storescu starts to just after it exits."
    )
    return rows


def _ram_rows(runs: dict[str, Runs], count: int, rate: Callable[[float], float]) -> list[Row]:
    """The two servers into RAM: their rates, and CPU per instance with the target."""
    rows = []
    dcmtk_rate = rate(median(runs["dcmtk-ram"].seconds))
    for key, name in RAM_RECEIVERS:
        value = rate(median(runs[key].seconds))
        cpu_ms = runs[key].cpu_ms_per_instance(count)
        row = Row(
            "W3", f"{name} <- small", value, "inst/s", runs[key].seconds,
            vs_dcmtk=ratio(value, dcmtk_rate),
            note=f"server CPU {cpu_ms or 0:.3f} ms/instance",
            extra={"server_cpu_ms_per_instance": cpu_ms, "server_cpu_s": runs[key].cpu_s},
        )  # fmt: skip
        if key == "dicomscp-ram":
            row.target = f"CPU <={CPU_TARGET_MS} ms/inst"
            row.verdict = verdict(cpu_ms is not None and cpu_ms <= CPU_TARGET_MS)
        rows.append(row)
    return rows


def _cpu_rows(runs: dict[str, Runs], count: int) -> list[Row]:
    """dicomscp's CPU time per small instance, against its target."""
    rows = []
    for key, name in RECEIVERS[:2]:
        cpu_ms = runs[key].cpu_ms_per_instance(count)
        rows.append(
            Row(
                "W3", f"{name} CPU per small instance", cpu_ms, "ms CPU/inst", runs[key].cpu_s,
                target=f"<={CPU_TARGET_MS} ms",
                verdict=verdict(cpu_ms is not None and cpu_ms <= CPU_TARGET_MS),
                note="samples: the server's CPU seconds of each run",
                extra={"server_cpu_s": runs[key].cpu_s},
            )
        )  # fmt: skip
    return rows
