#!/usr/bin/env bash
# Where the CPU goes when 8 DCMTK storescu store into dicomscp at once (issue 15, W9):
# the rate, dicomscp's processes' CPU ticks, and how busy the whole machine was.
#   bash scripts/measure_workers.sh FOLDER [WORKERS...]     # e.g. 1 2 (the default)
# FOLDER holds the small instances to send (1,000 in W9: 125 per client). The archive
# goes to a temporary folder in RAM (/dev/shm) when there is one, fsync off, so that
# CPU is what is measured. Needs DCMTK's storescu and .venv (bash scripts/setup.sh).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
folder=$1; shift
counts=("$@"); [ ${#counts[@]} -gt 0 ] || counts=(1 2)
mapfile -t files < <(find "$folder" -type f -name '*.dcm' | sort)
n=${#files[@]}; per=$(( (n + 7) / 8 ))
base=$([ -d /dev/shm ] && echo /dev/shm || echo "${TMPDIR:-/tmp}")
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
machine() { head -1 /proc/stat | awk '{print $2 + $3 + $4 + $6 + $7 + $8}'; }
for workers in "${counts[@]}"; do
  work=$(mktemp -d "$base/measure-workers-XXXXXX")
  .venv/bin/python -m cli.dicomscp --archive "$work/archive" --host 127.0.0.1 -q \
    --workers "$workers" --no-fsync 0 2>"$work/log" &
  pid=$!
  for _ in $(seq 300); do grep -q listening "$work/log" && break; sleep 0.1; done
  port=$(grep -o '127.0.0.1:[0-9]*' "$work/log" | head -1 | cut -d: -f2)
  pids=("$pid" $(pgrep -P "$pid" || true))
  before=0; for p in "${pids[@]}"; do before=$((before + $(ticks "$p"))); done
  m0=$(machine); t0=$(date +%s.%N)
  clients=()
  for ((k = 0; k < 8; k++)); do
    TCP_NODELAY=1 storescu -q 127.0.0.1 "$port" "${files[@]:k*per:per}" & clients+=($!)
  done
  wait "${clients[@]}"
  t1=$(date +%s.%N); m1=$(machine)
  after=0; for p in "${pids[@]}"; do after=$((after + $(ticks "$p"))); done
  kill -INT "$pid"; wait "$pid" || true
  stored=$(find "$work/archive/instances" -name '*.dcm' | wc -l)
  python3 - "$workers" "$n" "$stored" "$t0" "$t1" "$before" "$after" "$m0" "$m1" <<'PY'
import os, sys
workers, n, stored = map(int, sys.argv[1:4])
t0, t1 = map(float, sys.argv[4:6])
before, after, m0, m1 = map(int, sys.argv[6:10])
hz, cpus, wall = os.sysconf("SC_CLK_TCK"), os.cpu_count() or 1, t1 - t0
ours = (after - before) / hz
busy = (m1 - m0) / hz
print(f"--workers {workers}: {stored}/{n} stored, {n / wall:,.0f} inst/s; dicomscp "
      f"{ours / n * 1000:.2f} ms CPU per instance, {n / ours:,.0f} instances per CPU-second; "
      f"machine busy {busy / (wall * cpus):.0%}, the rest (clients, kernel) "
      f"{(busy - ours) / n * 1000:.2f} ms per instance")
PY
  rm -rf "$work"
done
