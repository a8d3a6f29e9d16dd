#!/usr/bin/env bash
# G5 (SECURITY.md): schemathesis against /api/schema/ of a live gunicorn on a
# freshly seeded throwaway database, as each demo role and anonymous.
#   checks: no 5xx (not_a_server_error); with a token also ignored_auth (the
#   same request without credentials must be refused).
# Needs DATABASE_URL (a PostgreSQL the role may CREATE DATABASE on); the fuzz
# database is "<name>_fuzz" next to it, dropped and made again each run.
# Knobs: FUZZ_MAX_EXAMPLES (per operation, default 100), FUZZ_MAX_TIME (seconds
# per role, default 45), FUZZ_PATIENTS (seeded patients, default 200), FUZZ_ROLES
# (space-separated subset of the roles below).
# Reports: var/fuzz/<role>/junit.xml. Exit status: non-zero on any finding.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv/bin
MAX_EXAMPLES=${FUZZ_MAX_EXAMPLES:-100}
MAX_TIME=${FUZZ_MAX_TIME:-45}
PATIENTS=${FUZZ_PATIENTS:-200}
PASSWORD=${DEMO_PASSWORD:-Demo-Pass-2026!}
OUT=var/fuzz
# every role of SECURITY.md's matrix: the demo accounts plus the security and
# audit administrators, who exist only once an admin creates them
ROLES=(admin secadmin auditadmin doctor1 hospital1 prevention1 police1 governance1 civil1 dpf1
  finance1 official1)
# FUZZ_ROLES="doctor1 police1" fuzzes only those (e.g. to reproduce a finding)
if [[ -n "${FUZZ_ROLES:-}" ]]; then read -ra ROLES <<<"$FUZZ_ROLES"; fi

: "${DATABASE_URL:?DATABASE_URL must point at PostgreSQL}"
FUZZ_URL=$($VENV/python - <<'PY'
import os
import psycopg
from urllib.parse import urlsplit, urlunsplit

url = os.environ["DATABASE_URL"]
parts = urlsplit(url)
name = parts.path.lstrip("/") + "_fuzz"
try:  # the named database, else the server's maintenance database
    conn = psycopg.connect(url.replace("postgres://", "postgresql://", 1), autocommit=True)
except psycopg.OperationalError:
    admin = urlunsplit(parts._replace(scheme="postgresql", path="/postgres"))
    conn = psycopg.connect(admin, autocommit=True)
with conn:
    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    conn.execute(f'CREATE DATABASE "{name}"')
print(urlunsplit(parts._replace(path="/" + name)))
PY
)
export DJANGO_SETTINGS_MODULE=config.settings.test DATABASE_URL="$FUZZ_URL" PYTHONWARNINGS=ignore
rm -rf "$OUT" && mkdir -p "$OUT"
echo "fuzz: migrating and seeding $PATIENTS patients"
$VENV/python manage.py migrate --no-input -v 0
$VENV/python manage.py seed_demo --patients "$PATIENTS" --townships 2 --password "$PASSWORD" >"$OUT/seed.log"
# The other two 三员 are made like the first one, at the console with
# create_admin (the two-person rule keeps the system admin from making them
# alone, SECURITY.md G4). The 三员 always need a second factor, also for a
# token: enrol a TOTP device for each (what each would do on first sign-in);
# otp_code below reads the device.
for pair in secadmin:security_admin auditadmin:audit_admin; do
  ADMIN_PASSWORD="$PASSWORD" $VENV/python manage.py create_admin --no-input -v 0 \
    --username "${pair%%:*}" --role "${pair#*:}" --organisation 县卫健局 --region 990102 >/dev/null
done
$VENV/python manage.py shell -v 0 -c '
from django.contrib.auth import get_user_model
from django_otp.plugins.otp_totp.models import TOTPDevice
User = get_user_model()
for username in ("admin", "secadmin", "auditadmin"):
    TOTPDevice.objects.create(user=User.objects.get(username=username), name="fuzz", confirmed=True)
'

PORT=$($VENV/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
BASE=http://127.0.0.1:$PORT
$VENV/gunicorn config.wsgi:application --bind "127.0.0.1:$PORT" --workers 2 --threads 4 \
  --timeout 60 --error-logfile "$OUT/web-error.log" >"$OUT/web.log" 2>&1 &
WEB=$!
trap 'kill "$WEB" 2>/dev/null || true; wait "$WEB" 2>/dev/null || true' EXIT
for _ in $(seq 1 120); do curl -fsS "$BASE/healthz" >/dev/null 2>&1 && break; sleep 0.5; done

otp_code() {  # the current code of the user's TOTP device, or nothing
  FUZZ_USER="$1" $VENV/python manage.py shell -v 0 -c '
import os
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice
d = TOTPDevice.objects.filter(user__username=os.environ["FUZZ_USER"], confirmed=True).first()
if d: print(f"{TOTP(d.bin_key, d.step, d.t0, d.digits, d.drift).token():0{d.digits}d}")
'
}
token() {
  curl -fsS -H 'Content-Type: application/json' \
    -d "{\"username\": \"$1\", \"password\": \"$PASSWORD\", \"otp\": \"$(otp_code "$1")\"}" \
    "$BASE/api/v1/auth/token/" |
    $VENV/python -c 'import json, sys; print(json.load(sys.stdin)["token"])'
}
curl -fsS -H "Authorization: Token $(token doctor1)" "$BASE/api/schema/?format=json" >"$OUT/schema.json"

# one worker: with 2, hypothesis's lambda descriptions crash in threads on Python 3.11
# ("AST constructor recursion depth mismatch"), a tool error, not a finding
COMMON=(--url "$BASE" -n "$MAX_EXAMPLES" --max-time "$MAX_TIME" --workers 1 --seed 1
  --generation-allow-x00 false --request-timeout 30 --continue-on-failure --no-color)
# every token before any fuzzing, so that one role's requests cannot spoil
# another's sign-in (a fuzzed password change or lockout)
declare -A TOKENS
for role in "${ROLES[@]}"; do TOKENS[$role]=$(token "$role"); done
status=0
for role in "${ROLES[@]}" anonymous; do
  args=(--checks not_a_server_error)
  if [[ $role != anonymous ]]; then
    args=(--checks not_a_server_error,ignored_auth -H "Authorization: Token ${TOKENS[$role]}")
  fi
  echo "fuzz: $role"
  if ! $VENV/schemathesis run "$OUT/schema.json" "${COMMON[@]}" "${args[@]}" \
    --report junit --report-dir "$OUT/$role" >"$OUT/$role.log" 2>&1; then
    status=1
    echo "fuzz: FINDINGS as $role (see $OUT/$role.log)"
    grep -E '^(_+ |[0-9]+\. |- )' "$OUT/$role.log" | head -40 || true
  fi
  tail -n 3 "$OUT/$role.log"
done
exit "$status"
