"""What the dicomscu tests share: running the command, and instances to send.

`run_dicomscu` runs `python -m cli` in a subprocess, as a user would run it; the
tests that need no separate process call `cli.dicomscu.main([...])` instead.
`make_instances` writes copies of pydicom's CT_small.dcm with new UIDs, so that a
test has as many distinct instances, patients and studies as it needs.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

REPOSITORY = Path(__file__).resolve().parent.parent


def run_dicomscu(
    *args: str | Path | int,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout_s: float = 120.0,
) -> subprocess.CompletedProcess[str]:
    """`python -m cli ARGS...` to completion; stdout and stderr captured as text."""
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPOSITORY), environment.get("PYTHONPATH", "")) if p
    )
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "cli", *map(str, args)],
        cwd=cwd or REPOSITORY,
        env=environment,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        errors="replace",
        timeout=timeout_s,
        check=False,
    )


@dataclass(frozen=True)
class Instance:
    path: Path
    patient_id: str
    study_uid: str
    series_uid: str
    sop_instance_uid: str
    sop_class_uid: str


def make_instances(
    directory: Path,
    count: int = 1,
    *,
    patient_id: str = "DICOMSCU-1",
    patient_name: str = "Scu^Test",
    study_uid: str | None = None,
    series_uid: str | None = None,
    source: str = "CT_small.dcm",
) -> list[Instance]:
    """`count` copies of a pydicom test file with new SOP Instance UIDs, in one series
    of one study of one patient, written to directory/<n>.dcm (created if missing)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = get_testdata_file(source)
    assert path is not None
    study_uid = study_uid or generate_uid()
    series_uid = series_uid or generate_uid()
    instances = []
    for n in range(count):
        dataset = dcmread(path)
        dataset.PatientID = patient_id
        dataset.PatientName = patient_name
        dataset.StudyInstanceUID = study_uid
        dataset.SeriesInstanceUID = series_uid
        dataset.SOPInstanceUID = generate_uid()
        dataset.InstanceNumber = n + 1
        dataset.file_meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
        target = directory / f"{patient_id}-{n + 1}.dcm"
        dataset.save_as(target, enforce_file_format=True)
        instances.append(
            Instance(
                target,
                patient_id,
                study_uid,
                series_uid,
                str(dataset.SOPInstanceUID),
                str(dataset.SOPClassUID),
            )
        )
    return instances
