"""What every workload of the benchmark shares: the sizes, a row of the table, the
run's directories and data (`Bench`), running client commands interleaved, and the
command lines of the clients (the conventions are in tests/bench/workloads.py).
"""

from __future__ import annotations

import json
import os
import statistics
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from tests.bench import peers
from tests.bench.data import DataCache, InstanceSet
from tests.bench.peers import BenchError, ClientRun, run_client

SLOW_S = 10.0


@dataclass(frozen=True)
class Sizes:
    small: int  # W1, W3, W9, W10: instances of about 8 KB
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


def api_result(run: ClientRun, expect_ok: int | None = None) -> dict[str, Any]:
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
                result = api_result(run, expect_ok)
                p.seconds.append(float(result["seconds"]))
                p.details.append({**result, "process_s": run.seconds})
            else:
                p.seconds.append(run.seconds)
            if run.peak_rss_kib is not None:
                p.peak_rss_kib.append(run.peak_rss_kib)
            bench.log(f"  {what} {p.label}: run {round_ + 1}: {p.seconds[-1]:.3f} s")


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


class Address(Protocol):
    """Where a server listens: ours (peers.Server) or one of tests/peers.py (Orthanc)."""

    @property
    def host(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def ae_title(self) -> str: ...


def storescu_argv(server: Address, files: InstanceSet) -> list[str]:
    """DCMTK storescu sending the whole directory of `files` over one association."""
    return [
        peers.dcmtk("storescu"),
        "-aec",
        server.ae_title,
        "+sd",
        server.host,
        str(server.port),
        str(files.directory),
    ]


def storescu_files_argv(server: Address, paths: Sequence[Path]) -> list[str]:
    """DCMTK storescu sending these files over one association (W8, W9, W10)."""
    return [
        peers.dcmtk("storescu"), "-aec", server.ae_title, server.host, str(server.port),
        *map(str, paths),
    ]  # fmt: skip


def dicomscu_argv(server: peers.Server, files: InstanceSet) -> list[str]:
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


def api_argv(command: str, host: str, port: int, ae: str, *args: str | int) -> list[str]:
    return [sys.executable, "-m", "tests.bench.api", command, host, str(port), ae, *map(str, args)]


def pynetdicom_storescu_argv(server: peers.Server, files: InstanceSet) -> list[str]:
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


def count_stored(server: peers.Server) -> int:
    """The instance files a server holds: the `.dcm` files under dicomscp's archive,
    every file in a storescp's folder."""
    if server.name == "dicomscp":
        assert server.directory is not None
        return sum(1 for _ in server.directory.rglob("*.dcm"))
    return len(server.received_files())


def filesystem(path: Path) -> str:
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
