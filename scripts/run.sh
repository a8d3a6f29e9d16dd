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

# Listening on every interface: other devices open the demo by this machine's
# address, which the default ALLOWED_HOSTS (127.0.0.1, localhost) refuses with
# 400. The demo run then accepts any Host, unless ALLOWED_HOSTS is set;
# production sets it (README → Configuration).
urls=("http://$HOST:$PORT/")
probe_host=$HOST
case "$HOST" in
  0.0.0.0 | :: | "[::]")
    if [[ -z "${ALLOWED_HOSTS:-}" ]]; then export ALLOWED_HOSTS='*'; fi
    read -r -a addresses <<<"$(hostname -I 2>/dev/null || true)"
    urls=("http://127.0.0.1:$PORT/")
    for a in "${addresses[@]}"; do
      if [[ "$a" != *:* ]]; then
        urls+=("http://$a:$PORT/")
      elif [[ "$HOST" != 0.0.0.0 ]]; then # gunicorn on 0.0.0.0 listens on IPv4 only
        urls+=("http://[$a]:$PORT/")
      fi
    done
    # probe with an address other devices use, so the host check is exercised
    probe_host=127.0.0.1
    for a in "${addresses[@]}"; do
      if [[ "$a" != *:* ]]; then probe_host=$a; break; fi
    done
    ;;
esac
[[ "$probe_host" == *:* && "$probe_host" != \[* ]] && probe_host="[$probe_host]"

# SQLite allows one writer: one worker process there; Redis/PostgreSQL scale out.
concurrency=2
if [[ -z "${DATABASE_URL:-}" ]]; then concurrency=1; fi
$VENV/bin/celery -A config worker --loglevel INFO --concurrency "$concurrency" \
  >var/log/worker.log 2>&1 &
pids+=($!)
$VENV/bin/celery -A config beat --loglevel INFO --pidfile= \
  --scheduler django_celery_beat.schedulers:DatabaseScheduler >var/log/beat.log 2>&1 &
pids+=($!)
$VENV/bin/gunicorn -c python:config.gunicorn config.wsgi:application \
  --bind "$HOST:$PORT" --workers 2 \
  --error-logfile var/log/web-error.log >var/log/web.log 2>&1 &
web=$!
pids+=("$web")

# Ready when the login page answers 200 at an address users open: /healthz
# alone would not do, it answers loopback callers whatever the Host.
probe="http://$probe_host:$PORT/accounts/login/"
ready=0
for _ in $(seq 1 60); do
  if ! kill -0 "$web" 2>/dev/null; then break; fi
  code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 5 "$probe" 2>/dev/null || true)
  if [[ "$code" == "200" ]]; then ready=1; break; fi
  if [[ "$code" == 4* ]]; then break; fi # a refused Host does not heal by waiting
  sleep 0.5
done
if [[ $ready != 1 ]]; then
  {
    echo
    echo "!!!!! 精防通 did not start: $probe answered ${code:-nothing} (expected 200). !!!!!"
    if ! kill -0 "$web" 2>/dev/null; then echo "!!!!! gunicorn exited. !!!!!"; fi
    if [[ "${code:-}" == "400" ]]; then
      echo "!!!!! 400 is Django refusing the Host: add it to ALLOWED_HOSTS. !!!!!"
    fi
    echo "----- last lines of var/log/web-error.log -----"
    tail -n 30 var/log/web-error.log 2>/dev/null || true
    echo "----- last lines of var/log/web.log -----"
    tail -n 10 var/log/web.log 2>/dev/null || true
  } >&2
  exit 1
fi

cat <<MSG

  精防通 is running at  ${urls[*]}
  (worker and beat logs: var/log/worker.log, var/log/beat.log; Ctrl-C stops all)

  Demo accounts (password ${DEMO_PASSWORD:-Demo-Pass-2026!}):
    admin        系统管理员       县卫健局 (accounts and settings; TOTP, see below)
    doctor1      乡镇医生         城关镇卫生院 (990102001)
    doctor2      乡镇医生         东山乡卫生院 (990102002)
    hospital1    专科医院医生     示范县精神病专科医院 (990102)
    police1      民警             城关派出所 (990102001)
    police2      民警             东山派出所 (990102002)
    governance1  综治办           县委政法委综治办 (990102)
    civil1       民政             县民政局 (990102)
    dpf1         残联             县残联 (990102)
    official1    县级领导         县卫健局 (990102, aggregates only)
    finance1     财政             县财政局 (990102: reward payments, payer statements)
    prevention1  精防机构人员     县精神卫生防治中心 (990102: escalated alerts, exchange)
    towngov1-4   乡镇综治办       城关镇/东山乡/西河乡/南岭镇综治办 (township review of guardian rewards)

  admin always signs in with a second factor: on the first sign-in the page
  shows a QR code; scan it with an authenticator app (TOTP) and enter the
  6-digit code. Every later sign-in asks for the current code.

MSG
wait -n "${pids[@]}"
