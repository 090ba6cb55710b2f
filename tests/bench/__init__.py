"""The speed benchmark of dicom-ul: `python -m tests.bench.run` (or `bash scripts/bench.sh`).

Not collected by pytest (no `test_` module here): the smoke test that keeps it working
is tests/test_bench_smoke.py. See run.py for what is measured and how.
"""
