#!/usr/bin/env bash
# Starts web (gunicorn), a Celery worker and beat; stops all three on Ctrl-C.
set -euo pipefail
HOST=${1:-127.0.0.1}
PORT=${2:-8000}
VENV=.venv
mkdir -p var/log
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

# SQLite allows one writer: one worker process there; Redis/PostgreSQL scale out.
concurrency=2
if [[ -z "${DATABASE_URL:-}" ]]; then concurrency=1; fi
$VENV/bin/celery -A config worker --loglevel INFO --concurrency "$concurrency" \
  >var/log/worker.log 2>&1 &
pids+=($!)
$VENV/bin/celery -A config beat --loglevel INFO --pidfile= \
  --scheduler django_celery_beat.schedulers:DatabaseScheduler >var/log/beat.log 2>&1 &
pids+=($!)
$VENV/bin/gunicorn config.wsgi:application --bind "$HOST:$PORT" --workers 2 \
  --access-logfile - --error-logfile var/log/web-error.log >var/log/web.log 2>&1 &
pids+=($!)

for _ in $(seq 1 60); do
  if curl -fsS "http://$HOST:$PORT/healthz" >/dev/null 2>&1; then break; fi
  sleep 0.5
done
cat <<MSG

  精防通 is running at  http://$HOST:$PORT/
  (worker and beat logs: var/log/worker.log, var/log/beat.log; Ctrl-C stops all)

  Demo accounts (password ${DEMO_PASSWORD:-Demo-Pass-2026!}):
    admin        系统管理员       县卫健局 (accounts and settings)
    doctor1      乡镇医生         城关镇卫生院 (990102001)
    doctor2      乡镇医生         东山乡卫生院 (990102002)
    hospital1    专科医院医生     示范县精神病专科医院 (990102)
    police1      民警             城关派出所 (990102001)
    police2      民警             东山派出所 (990102002)
    governance1  综治办           县委政法委综治办 (990102)
    civil1       民政             县民政局 (990102)
    dpf1         残联             县残联 (990102)
    official1    县级领导         县卫健局 (990102, aggregates only)

MSG
wait -n "${pids[@]}"
