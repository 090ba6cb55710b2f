#!/usr/bin/env bash
# Run the speed benchmark (tests/bench/) in .venv (set up first if needed), e.g.
#   bash scripts/bench.sh                      # W1..W10, about 25 minutes (13 with --cache DIR)
#   bash scripts/bench.sh --only W9,W10        # many clients at once: dicomscp --workers,
#                                              # and two nodes on PostgreSQL against SQLite
#   bash scripts/bench.sh --quick              # small sizes, a smoke run
#   bash scripts/bench.sh --only W1,W2 --json bench.json
# Arguments go to `python -m tests.bench.run` (--help lists them). It needs DCMTK and
# Orthanc (apt-get install dcmtk orthanc) and pynetdicom (installed in .venv); W10 needs
# PostgreSQL and psycopg (apt-get install postgresql; pip install -e '.[postgresql]').
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

stamp=.venv/.dicom-ul-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  bash scripts/setup.sh
fi

exec .venv/bin/python -m tests.bench.run "$@"
