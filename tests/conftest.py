"""Fixtures that start real DICOM peers on loopback (the helpers and rules: tests/peers.py).

Each `*_factory` fixture returns a function that starts one more peer and returns its
description (host, port, ae_title, ...); every peer it started is stopped when the test
ends. The plain fixtures (`storescp`, `dcmqrscp`, `orthanc`, `pynetdicom_scp`) are one
peer with the default settings. Tests using DCMTK or Orthanc get the `peers` marker
automatically; when such a test fails, the peers' logs are shown with the failure.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from tests import peers, postgres

_PEER_PROCESSES = pytest.StashKey[list[peers.PeerProcess]]()

# Fixtures that start external programs: their tests are marked `peers`.
_EXTERNAL_PEER_FIXTURES = frozenset(
    {"storescp", "storescp_factory", "dcmqrscp", "dcmqrscp_factory", "orthanc", "orthanc_factory"}
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _EXTERNAL_PEER_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.peers)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Show the log of every peer the test started when its set-up or body fails."""
    report = yield
    if report.failed and report.when in ("setup", "call"):
        for process in item.stash.get(_PEER_PROCESSES, []):
            title = f"peer log: {process.name} (pid {process.pid}, {process.log_path})"
            report.sections.append((title, process.log_text()))
    return report


def _workdir(tmp_path: Path, name: str) -> Path:
    """A new directory tmp_path/name, name-2, name-3... for one peer."""
    for n in range(1, 1000):
        path = tmp_path / (name if n == 1 else f"{name}-{n}")
        with contextlib.suppress(FileExistsError):
            path.mkdir()
            return path
    raise RuntimeError(f"too many {name} peers in one test")


def _register(request: pytest.FixtureRequest, process: peers.PeerProcess | None) -> None:
    if process is not None:
        request.node.stash.setdefault(_PEER_PROCESSES, []).append(process)


@pytest.fixture
def storescp_factory(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[..., peers.StoreSCP]]:
    """make(ae_title="STORESCP", extra_args=()) -> StoreSCP: DCMTK storescp on a free port."""
    with contextlib.ExitStack() as stack:

        def make(ae_title: str = "STORESCP", extra_args: Sequence[str] = ()) -> peers.StoreSCP:
            workdir = _workdir(tmp_path, "storescp")
            scp = stack.enter_context(peers.start_storescp(workdir, ae_title, extra_args))
            _register(request, scp.process)
            return scp

        yield make


@pytest.fixture
def storescp(storescp_factory: Callable[..., peers.StoreSCP]) -> peers.StoreSCP:
    """DCMTK storescp, AE title STORESCP, writing what it receives to .output_dir."""
    return storescp_factory()


@pytest.fixture
def dcmqrscp_factory(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[..., peers.QRSCP]]:
    """make(move_destinations=(), ae_title="QRSCP", extra_args=()) -> QRSCP: DCMTK dcmqrscp.

    move_destinations: Peer-like objects (host, port, ae_title), e.g. a StoreSCP, a
    PynetdicomSCP or peers.Peer("OURSCP"...): the AEs that C-MOVE may send to.
    """
    with contextlib.ExitStack() as stack:

        def make(
            move_destinations: Iterable[peers.Peer] = (),
            ae_title: str = "QRSCP",
            extra_args: Sequence[str] = (),
        ) -> peers.QRSCP:
            workdir = _workdir(tmp_path, "dcmqrscp")
            qr = stack.enter_context(
                peers.start_dcmqrscp(workdir, move_destinations, ae_title, extra_args)
            )
            _register(request, qr.process)
            return qr

        yield make


@pytest.fixture
def dcmqrscp(dcmqrscp_factory: Callable[..., peers.QRSCP]) -> peers.QRSCP:
    """DCMTK dcmqrscp, AE title QRSCP, empty archive, no move destination."""
    return dcmqrscp_factory()


@pytest.fixture
def orthanc_factory(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[..., peers.Orthanc]]:
    """make(move_destinations=(), ae_title="ORTHANC", extra_config=None) -> Orthanc."""
    with contextlib.ExitStack() as stack:

        def make(
            move_destinations: Iterable[peers.Peer] = (),
            ae_title: str = "ORTHANC",
            extra_config: Mapping[str, Any] | None = None,
        ) -> peers.Orthanc:
            workdir = _workdir(tmp_path, "orthanc")
            server = stack.enter_context(
                peers.start_orthanc(workdir, move_destinations, ae_title, extra_config)
            )
            _register(request, server.process)
            return server

        yield make


@pytest.fixture
def orthanc(orthanc_factory: Callable[..., peers.Orthanc]) -> peers.Orthanc:
    """Orthanc, AE title ORTHANC, empty archive, no move destination."""
    return orthanc_factory()


@pytest.fixture
def pynetdicom_scp_factory() -> Iterator[Callable[..., peers.PynetdicomSCP]]:
    """make(ae_title="PYNETDICOM") -> PynetdicomSCP, serving in threads of this process."""
    with contextlib.ExitStack() as stack:

        def make(ae_title: str = "PYNETDICOM") -> peers.PynetdicomSCP:
            return stack.enter_context(peers.start_pynetdicom_scp(ae_title))

        yield make


@pytest.fixture
def pynetdicom_scp(
    pynetdicom_scp_factory: Callable[..., peers.PynetdicomSCP],
) -> peers.PynetdicomSCP:
    """pynetdicom echo + storage SCP, AE title PYNETDICOM; received data sets in .datasets."""
    return pynetdicom_scp_factory()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs: a real file system that runs out of space (needs root and
    CAP_SYS_ADMIN; skipped without, failed when CI is set)."""
    import subprocess

    mount_point = tmp_path / "small"
    mount_point.mkdir()
    try:
        result = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount_point)],
            capture_output=True,
            text=True,
            timeout=30,
        )
        error = result.stderr.strip() if result.returncode else ""
    except OSError as exc:
        error = str(exc)
    if error:
        reason = f"a 1 MiB tmpfs cannot be mounted here (needs root and CAP_SYS_ADMIN): {error}"
        if peers.in_ci():
            pytest.fail(
                f"{reason} (CI is set: the full-disk test may not be skipped)", pytrace=False
            )
        pytest.skip(reason)
    try:
        yield mount_point
    finally:
        if subprocess.run(["umount", str(mount_point)], check=False, timeout=30).returncode:
            # still busy (a failed test left a file open): detach it rather than leak it
            subprocess.run(["umount", "-l", str(mount_point)], check=False, timeout=30)


@pytest.fixture(scope="session")
def ct_small() -> Path:
    """pydicom's CT_small.dcm (CT Image Storage, explicit VR little endian, 39 kB)."""
    from pydicom.data import get_testdata_file

    path = get_testdata_file("CT_small.dcm")
    assert isinstance(path, str)
    return Path(path)


# --- PostgreSQL, for the shared index (tests/postgres.py)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Any]:
    """A throw-away PostgreSQL cluster on a free loopback port, for the whole session
    (started at the first test that asks; skipped, or failed in CI, when missing)."""
    with postgres.start_cluster() as cluster:
        yield cluster


@pytest.fixture
def pg_database(pg_cluster: Any) -> Iterator[str]:
    """The URI of a new empty database, dropped after the test."""
    with pg_cluster.database() as uri:
        yield uri


@pytest.fixture(params=postgres.INDEXES)
def index_spec(request: pytest.FixtureRequest) -> str | None:
    """The `index` of an Archive, once per back end: None (SQLite), then the URI of a
    new PostgreSQL database."""
    if request.param == "sqlite":
        return None
    uri: str = request.getfixturevalue("pg_database")
    return uri
