"""``make bench``: build or reuse the data set, serve it, measure it, write
docs/benchmarks.md. Started by scripts/bench.sh, which sets the environment
(database, keys, broker) shared by every process below.

1. create the database if missing, migrate, ``seed_province`` (reused when
   already built with the same parameters), collectstatic;
2. the daily scan and the nightly indicator snapshot, each in its own
   process (time and peak memory), so the pages see a scanned database;
3. gunicorn (2 sync workers, production-like settings) and one Celery
   worker on a free loopback port, then every endpoint of
   ``bench.catalog`` with concurrent clients (p50/p95), ``/healthz`` first
   as the floor;
4. the reconciliation of 5,000 partner rows and a county exchange package;
5. peak memory (VmHWM) of the web and worker processes; results to
   bench/results/<patients>x<townships>.json and docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = str(ROOT / ".venv" / "bin" / "python")
BIN = ROOT / ".venv" / "bin"
LOG_DIR = ROOT / "var" / "bench"
RESULTS = ROOT / "bench" / "results"


def log(msg: str) -> None:
    print(f"[bench {datetime.now():%H:%M:%S}] {msg}", flush=True)


def manage(*args: str, quiet: bool = False) -> float:
    """Run a management command in its own process; returns wall seconds."""
    started = time.monotonic()
    subprocess.run(  # noqa: S603 - fixed argv, no shell
        [PY, "manage.py", *args],
        cwd=ROOT,
        check=True,
        stdout=subprocess.DEVNULL if quiet else None,
    )
    return time.monotonic() - started


def static_is_stale() -> bool:
    """collectstatic (hashing and compressing every file) takes minutes on a
    busy machine: run it only when a source static file is newer than the
    manifest the web workers read."""
    from django.conf import settings

    manifest = Path(settings.STATIC_ROOT) / "staticfiles.json"
    if not manifest.exists():
        return True
    built = manifest.stat().st_mtime
    sources = [ROOT / "static", *ROOT.glob("*/static")]
    return any(
        f.stat().st_mtime > built
        for d in sources
        if d.is_dir()
        for f in d.rglob("*")
        if f.is_file()
    )


def server_connection(url: str):
    """An autocommit connection to the maintenance database of ``url``'s
    server (to create and drop databases)."""
    import psycopg

    base = url.rpartition("/")[0]
    return psycopg.connect(
        f"{base}/postgres".replace("postgres://", "postgresql://", 1), autocommit=True
    )


def ensure_database(url: str) -> None:
    name = url.rpartition("/")[2]
    with server_connection(url) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            log(f"creating database {name}")
            conn.execute(f'CREATE DATABASE "{name}"')


SEED_DEMO_MAX = 50_000  # larger runs do not time seed_demo


def time_seed_demo(url: str, patients: int, townships: int) -> dict:
    """``seed_demo --patients N --townships T`` on a scratch database made
    afresh for it (``<database>_seed_demo``, dropped again after): wall
    seconds and the command's per-stage lines (DESIGN.md: under 60 s at
    50,000 patients)."""
    base, _slash, name = url.rpartition("/")
    scratch = f"{name}_seed_demo"

    def recreate(create: bool) -> None:
        with server_connection(url) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{scratch}"')
            if create:
                conn.execute(f'CREATE DATABASE "{scratch}"')

    recreate(True)
    env = {**os.environ, "DATABASE_URL": f"{base}/{scratch}"}
    try:
        subprocess.run(  # noqa: S603 - fixed argv, no shell
            [PY, "manage.py", "migrate", "--no-input", "-v0"], cwd=ROOT, env=env, check=True
        )
        started = time.monotonic()
        done = subprocess.run(  # noqa: S603 - fixed argv, no shell
            [
                PY,
                "manage.py",
                "seed_demo",
                "--patients",
                str(patients),
                "--townships",
                str(townships),
            ],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        seconds = time.monotonic() - started
    finally:
        recreate(False)
    stages = [line.strip() for line in done.stdout.splitlines() if ".seed: " in line]
    return {"seconds": round(seconds, 1), "stages": stages}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def children(pid: int) -> list[int]:
    out = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            text = (task / "children").read_text()
            out += [int(p) for p in text.split()]
    except FileNotFoundError:
        pass
    return out


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of processes (from /proc/<pid>/stat)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / CLOCK_TICKS


def db_backends() -> list[int]:
    """The PostgreSQL backends serving the bench database (web and worker),
    not this process's own connection."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(
            "SELECT pid FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return [r[0] for r in cur.fetchall()]


def peak_kb(pids: list[int]) -> dict[str, int]:
    from bench.jobs import proc_status_kb

    return {str(p): proc_status_kb(p).get("VmHWM", 0) for p in pids}


def wait_http(url: str, seconds: float = 60) -> None:
    import requests

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer 200 within {seconds}s")


def run_job(key: str) -> dict:
    started = time.monotonic()
    proc = subprocess.run(  # noqa: S603 - fixed argv, no shell
        [PY, "-m", "bench.jobs", key], cwd=ROOT, capture_output=True, text=True
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if not lines:
        return {
            "key": key,
            "error": (proc.stderr.strip().splitlines() or ["no output"])[-1][:300],
            "seconds": round(time.monotonic() - started, 2),
        }
    return json.loads(lines[-1])


def machine() -> dict:
    info = {"python": platform.python_version(), "cores": os.cpu_count()}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                info["memory_gb"] = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    import django

    info["django"] = django.get_version()
    return info


def git_commit() -> str:
    """The checked-out commit (read-only git queries)."""
    git = shutil.which("git")
    if git is None:
        return "unknown"
    try:
        sha = subprocess.run(  # noqa: S603 - fixed argv
            [git, "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(  # noqa: S603 - fixed argv
            [git, "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        return "unknown"
    return f"{sha} + uncommitted changes" if dirty else sha


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def dataset_facts() -> dict:
    from django.db import connection

    facts = {}
    with connection.cursor() as cur:
        for label, table in (
            ("patients", "patients_patient"),
            ("follow-ups", "followups_followup"),
            ("alerts", "followups_alert"),
            ("alert recipients", "followups_alertrecipient"),
            ("incidents", "patients_incident"),
            ("guardians", "patients_guardian"),
        ):
            cur.execute(f'SELECT COUNT(*) FROM "{table}"')  # noqa: S608 - fixed table names  # nosec B608
            facts[label] = int(cur.fetchone()[0])
        cur.execute("SELECT pg_size_pretty(pg_database_size(current_database())), version()")
        size, version = cur.fetchone()
        facts["database size"] = size
        facts["postgresql"] = version.split(" on ")[0]
    return facts


def measure_http(plan: dict, base_url: str, args, web_pid: int) -> list[dict]:
    from bench.catalog import ENDPOINTS, route_exists
    from bench.client import Persona, run_endpoint
    from bench.province import BENCH_ACCOUNTS

    password = os.environ.get("BENCH_PASSWORD", "Bench-Pass-2026!")
    personas = {
        u.removeprefix("bench_"): Persona(base_url, u, password) for u, _r, _o in BENCH_ACCOUNTS
    }
    personas[None] = Persona(base_url, "", "")

    def cpu_probe() -> float:
        # CPU the request costs wherever it runs: gunicorn workers and the
        # database backends (contention with other load does not inflate it)
        return cpu_seconds(children(web_pid) + db_backends())

    rows = []
    for e in ENDPOINTS:
        if args.only and e.key not in args.only:
            continue
        row = {"key": e.key, "title": e.title, "budget_ms": e.budget_ms}
        if not route_exists(e.probe_path(plan)):
            row["status"] = "not built"
            log(f"{e.key}: not built at time of run")
            rows.append(row)
            continue
        try:
            res = run_endpoint(
                key=e.key,
                base_url=base_url,
                persona=personas[e.persona],
                api=e.api,
                make_request=lambda i, e=e: e.request(plan, i),
                total=args.requests if e.method == "GET" else args.writes,
                clients=args.clients,
                max_seconds=args.max_seconds,
                ok=e.ok,
                cpu_probe=cpu_probe,
            )
        except RuntimeError as exc:  # a login failed: the persona cannot use it
            row.update(status="error", first_error=str(exc))
            log(f"{e.key}: {exc}")
            rows.append(row)
            continue
        row.update(res.as_dict())
        row["status"] = "measured"
        row["load1"] = loadavg().split()[0]  # other load on the machine while it ran
        log(
            f"{e.key}: p50 {res.p50_ms} ms, p95 {res.p95_ms} ms, {res.rps} req/s, "
            f"CPU {res.cpu_ms_per_request} ms/request, {res.errors} errors {res.first_error[:120]}"
        )
        rows.append(row)
    return rows


def measure_reconciliation(plan: dict, base_url: str) -> dict:

    from bench.catalog import partner_csv, route_exists
    from bench.client import Persona

    row = {"key": "reconciliation_5000"}
    if not route_exists("/api/v1/reconciliations/"):
        row["status"] = "not built"
        return row
    password = os.environ.get("BENCH_PASSWORD", "Bench-Pass-2026!")
    persona = Persona(base_url, "bench_prevention", password)
    session = persona.session(api=True)
    data = partner_csv(plan, nonce=datetime.now().strftime("%m%d%H%M%S"))
    started = time.perf_counter()
    r = session.post(
        f"{base_url}/api/v1/reconciliations/",
        data={"partner": "police"},
        files={"file": ("police-list.csv", data, "text/csv")},
        timeout=600,
    )
    row["seconds"] = round(time.perf_counter() - started, 2)
    row["http_status"] = r.status_code
    row["status"] = "measured" if r.status_code in (200, 201) else "error"
    try:
        row["result"] = r.json().get("counts", r.json())
    except ValueError:
        row["result"] = r.text[:200]
    return row


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--patients", type=int, default=50_000)
    p.add_argument("--townships", type=int, default=20)
    p.add_argument("--clients", type=int, default=2, help="concurrent clients per endpoint")
    p.add_argument("--requests", type=int, default=100, help="GET requests per endpoint")
    p.add_argument("--writes", type=int, default=100, help="POST requests per endpoint")
    p.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    p.add_argument(
        "--max-seconds", type=float, default=15, help="time limit of one endpoint's measurement"
    )
    p.add_argument("--only", type=lambda s: set(s.split(",")), default=None)
    p.add_argument("--no-jobs", action="store_true", help="skip the scheduled jobs")
    p.add_argument("--no-report", action="store_true", help="do not touch docs/benchmarks.md")
    args = p.parse_args(argv)

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    started = time.monotonic()
    run = {
        "date": datetime.now().astimezone().isoformat(timespec="seconds"),
        "patients": args.patients,
        "townships": args.townships,
        "clients": args.clients,
        "gunicorn_workers": args.workers,
        "load_before": loadavg(),
    }
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    url = os.environ["DATABASE_URL"]
    ensure_database(url)
    log(f"database {url.rsplit('/', 1)[1]}: migrate")
    manage("migrate", "--no-input", "-v0")
    log(f"seed_province --patients {args.patients} --townships {args.townships}")
    started_seed = time.monotonic()
    seed = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
        [
            PY,
            "manage.py",
            "seed_province",
            "--patients",
            str(args.patients),
            "--townships",
            str(args.townships),
            "--password",
            os.environ.get("BENCH_PASSWORD", "Bench-Pass-2026!"),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    seed_output = []
    for line in seed.stdout:  # the progress bar, line by line
        print(line, end="", flush=True)
        seed_output.append(line)
    if seed.wait() != 0:
        raise SystemExit("seed_province failed")
    seconds = time.monotonic() - started_seed
    run["seed_reused"] = "nothing changed" in "".join(seed_output)
    run["seed_seconds"] = round(seconds, 1)
    if args.patients <= SEED_DEMO_MAX:
        # seed_demo's own budget is at 50,000 patients (issue 2 item 9); a
        # province is seed_province's job, timed above
        log(f"seed_demo --patients {args.patients} --townships {args.townships} (scratch database)")
        run["seed_demo"] = time_seed_demo(url, args.patients, args.townships)
        log(f"  seed_demo: {run['seed_demo']['seconds']} s")
    if static_is_stale():
        log("collectstatic")
        manage("collectstatic", "--no-input", "-v0", quiet=True)
    from bench.catalog import JOBS, make_plan

    log("sampling the plan (patients, names, ID numbers of the bench accounts' scope)")

    run["machine"] = machine()
    run["commit"] = git_commit()
    run["dataset"] = dataset_facts()
    plan = make_plan()
    run["scope"] = plan["scope"]
    jobs: dict[str, dict] = {}
    if not args.no_jobs:
        for key in ("daily_scan", "indicator_snapshot"):
            log(f"job {key}")
            jobs[key] = run_job(key)
            log(f"  {jobs[key]}")

    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    procs: list[subprocess.Popen] = []
    worker_log = open(LOG_DIR / "worker.log", "w")  # noqa: SIM115 - closed in finally
    web_log = open(LOG_DIR / "web.log", "w")  # noqa: SIM115 - closed in finally
    try:
        worker = subprocess.Popen(  # noqa: S603 - fixed argv
            [
                str(BIN / "celery"),
                "-A",
                "config",
                "worker",
                "--concurrency",
                "1",
                "--loglevel",
                "WARNING",
                "--without-heartbeat",
                "--without-mingle",
                "--without-gossip",
            ],
            cwd=ROOT,
            stdout=worker_log,
            stderr=subprocess.STDOUT,
        )
        procs.append(worker)
        web = subprocess.Popen(  # noqa: S603 - fixed argv
            [
                str(BIN / "gunicorn"),
                "config.wsgi:application",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                str(args.workers),
                "--timeout",
                "300",
                "--error-logfile",
                str(LOG_DIR / "web-error.log"),
            ],
            cwd=ROOT,
            stdout=web_log,
            stderr=subprocess.STDOUT,
        )
        procs.append(web)
        wait_http(f"{base_url}/healthz")
        log(f"gunicorn on {base_url}, {args.clients} clients per endpoint")
        endpoints = measure_http(plan, base_url, args, web.pid)
        if not args.no_jobs:
            log("reconciliation of 5,000 partner rows")
            jobs["reconciliation_5000"] = measure_reconciliation(plan, base_url)
            log(f"  {jobs['reconciliation_5000']}")
            log("job county_exchange")
            jobs["county_exchange"] = run_job("county_exchange")
            log(f"  {jobs['county_exchange']}")
        time.sleep(2)  # let the worker finish the notifications of the last saves
        run["memory_kb"] = {
            "web master": peak_kb([web.pid]),
            "web workers": peak_kb(children(web.pid)),
            "celery worker": peak_kb([worker.pid, *children(worker.pid)]),
        }
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        worker_log.close()
        web_log.close()
    run["endpoints"] = endpoints
    run["jobs"] = [
        {
            **{"key": j.key, "title": j.title, "budget_s": j.budget_s},
            **jobs.get(j.key, {"status": "skipped"}),
        }
        for j in JOBS
    ]
    run["load_after"] = loadavg()
    run["total_seconds"] = round(time.monotonic() - started, 1)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"{args.patients}x{args.townships}.json"
    if args.only or args.no_report or args.no_jobs:
        out = LOG_DIR / f"partial-{args.patients}x{args.townships}.json"  # not a full run
    out.write_text(json.dumps(run, ensure_ascii=False, indent=1, default=str) + "\n")
    log(f"results: {out.relative_to(ROOT)} ({run['total_seconds']:.0f}s in all)")
    if not args.no_report:
        from bench.report import update_doc

        doc = update_doc(run)
        log(f"table: {doc.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
