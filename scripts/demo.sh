#!/usr/bin/env bash
# Set up .venv if needed, then run the demo: dicomscp on a free port with a temporary
# archive, and dicomscu storing, finding, moving and getting against it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

stamp=.venv/.dicom-ul-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  bash scripts/setup.sh
fi
exec .venv/bin/dicom-ul-demo "$@"
