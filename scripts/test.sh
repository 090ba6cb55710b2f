#!/usr/bin/env bash
# Run the test suite in .venv (set up first if needed). Extra arguments go to pytest,
# e.g. `bash scripts/test.sh -m "not peers"` to leave out the tests that need DCMTK/Orthanc.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

stamp=.venv/.dicom-ul-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  bash scripts/setup.sh
fi

status=0
.venv/bin/python -m pytest -q "$@" || status=$?
if [ "$status" -eq 5 ]; then
  echo "scripts/test.sh: pytest collected no tests (exit status 5): counted as a failure" >&2
fi
exit "$status"
