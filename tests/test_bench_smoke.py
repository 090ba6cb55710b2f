"""Keeps the speed benchmark (tests/bench/) from rotting: W5 with 20 associations.

The benchmark itself is run by hand (`bash scripts/bench.sh`, see README.md,
"Benchmarks"); this only checks that its harness still starts its peers, runs both
pairings, prints the table and writes the JSON.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests import peers


@pytest.mark.peers
@pytest.mark.timeout(60)
def test_w5_quick_runs_both_pairings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    peers.dcmtk("storescp")  # skipped (failed in CI) without DCMTK
    peers.require_pynetdicom()
    from tests.bench import run

    out = tmp_path / "bench.json"
    status = run.main(
        [
            *("--only", "W5", "--associations", "20", "--repeat", "1", "--quiet"),
            *("--workdir", str(tmp_path), "--json", str(out)),
        ]
    )
    table = capsys.readouterr().out
    assert status == 0, table
    document = json.loads(out.read_text())
    assert document["errors"] == []
    rows = document["rows"]
    assert [r["workload"] for r in rows] == ["W5", "W5"]
    assert all(r["value"] > 0 and r["unit"] == "assoc/s" for r in rows)
    assert rows[0]["vs_pynetdicom"] > 0
    assert "dimse.client connect/echo/release" in table
    assert not any(tmp_path.glob("dicom-ul-bench-*")), "the run's directory is removed"
