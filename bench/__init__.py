"""Province-scale data generator and benchmark harness (docs/benchmarks.md).

``seed_province`` (core/management/commands) builds the data set with
PostgreSQL COPY through :mod:`bench.province`; ``make bench``
(scripts/bench.sh) serves it with gunicorn and measures it with
:mod:`bench.client`, writing the table of docs/benchmarks.md.
"""
