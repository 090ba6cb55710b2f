#!/usr/bin/env bash
# Set up .venv if needed, then run the demo: `dicom-ul-demo` once the project has it,
# until then `python -m dul`, or at least a check that the packages import.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

stamp=.venv/.dicom-ul-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  bash scripts/setup.sh
fi

if [ -x .venv/bin/dicom-ul-demo ]; then
  exec .venv/bin/dicom-ul-demo "$@"
fi
if .venv/bin/python -c 'import importlib.util, sys; sys.exit(importlib.util.find_spec("dul.__main__") is None)'; then
  exec .venv/bin/python -m dul "$@"
fi
.venv/bin/python -c 'import cli, dimse, dul; print("dicom-ul is installed in .venv; the demo is not written yet.")'
