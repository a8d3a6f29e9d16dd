#!/usr/bin/env bash
# `make bench`: generate (or reuse) a data set, serve it with gunicorn,
# measure it with concurrent clients, write docs/benchmarks.md.
#
#   make bench                                          # 50,000 patients, 20 townships
#   BENCH_PATIENTS=500000 BENCH_TOWNSHIPS=300 make bench  # province scale
#
# Other knobs: BENCH_DB (database name), BENCH_PG (server URL without the
# database), BENCH_REDIS (broker URL), BENCH_CLIENTS, BENCH_REQUESTS,
# BENCH_ARGS (extra arguments of bench/run.py, e.g. "--only healthz").
set -euo pipefail
cd "$(dirname "$0")/.."

PATIENTS=${BENCH_PATIENTS:-50000}
TOWNSHIPS=${BENCH_TOWNSHIPS:-20}
if [[ -z "${BENCH_DB:-}" ]]; then
  if (( PATIENTS >= 500000 )); then BENCH_DB=jft_bench; else BENCH_DB=jft_bench_small; fi
fi
PG=${BENCH_PG:-postgres://postgres@127.0.0.1:5432}

if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  echo "bench: PostgreSQL does not answer on 127.0.0.1:5432 (see .ci/run for how CI starts it)" >&2
  exit 1
fi

# One environment for every process of the run (generator, web, worker,
# jobs): production-like settings from config.settings.base with DEBUG off,
# and fixed keys for this fictional data set (never use them elsewhere).
export DJANGO_SETTINGS_MODULE=config.settings.base
export DEBUG=0
export DATABASE_URL="$PG/$BENCH_DB"
export CONN_MAX_AGE=600
export CELERY_BROKER_URL=${BENCH_REDIS:-redis://127.0.0.1:6379/9}
export SECRET_KEY=bench-only-secret-key-for-fictional-data-0123456789abcdef
export FIELD_ENCRYPTION_KEYS="bench:YmVuY2gtZmllbGQta2V5LTAxMjM0NTY3ODlhYmNkZWY="
export BLIND_INDEX_KEY=bench-blind-index-key
export ALLOWED_HOSTS=127.0.0.1,localhost
export MFA_REQUIRED=0
export LOG_LEVEL=WARNING
export BENCH_PASSWORD=${BENCH_PASSWORD:-Bench-Pass-2026!}

# shellcheck disable=SC2086
exec .venv/bin/python -m bench.run --patients "$PATIENTS" --townships "$TOWNSHIPS" \
  --clients "${BENCH_CLIENTS:-2}" --requests "${BENCH_REQUESTS:-100}" ${BENCH_ARGS:-}
