#!/usr/bin/env bash
# Create .venv (Python 3.11 or newer) and install dicom-ul in it, editable, with its test
# tools, the decoders that let it decompress for a peer (the `transcode` extra) and the
# PostgreSQL driver of the shared index (the `postgresql` extra).
# Safe to run again. Choose the interpreter with PYTHON=/path/to/python3.11.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "scripts/setup.sh: $PYTHON is missing or older than Python 3.11 (set PYTHON=...)" >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
export PIP_DISABLE_PIP_VERSION_CHECK=1
.venv/bin/python -m pip install --quiet -e '.[test,transcode,postgresql]'
touch .venv/.dicom-ul-installed
echo "scripts/setup.sh: .venv ready ($(.venv/bin/python --version))"
