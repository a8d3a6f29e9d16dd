"""A real Celery worker against Redis runs the daily scan against the test
database (DESIGN.md → Jobs; SECURITY.md R4): the task is executed and
recorded, and a worker killed in the middle of the scan's transaction
(rolled back) or after its commit but before the message was acknowledged
leaves no duplicate alert once another worker has run the redelivered
message.

These tests FLUSH two Redis databases: the one ``TEST_REDIS_URL`` names
(default ``redis://127.0.0.1:6379/15``, the suite's own) and the next one on
the same server (the previous one when it names 15, the last of Redis's
default 16) — or ``TEST_CELERY_REDIS_SCAN`` and ``TEST_CELERY_REDIS_KILL``
when set. Give concurrent runs on one machine different databases. Tests
that share a database (the two killed-worker cases) take a file lock on it,
so that pytest-xdist never runs them at the same time.
"""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from django.conf import settings
from django.utils import timezone

from core.models import TaskRun
from followups.models import Alert, AlertRecipient
from patients.models import Patient

BASE_DIR = Path(settings.BASE_DIR)


def _redis_databases(base: str) -> tuple[str, str]:
    """``base`` and the next database on the same server (the previous for 15)."""
    parts = urlsplit(base)
    db = int(parts.path.strip("/") or 0)
    other = db + 1 if db < 15 else db - 1
    return base, urlunsplit(parts._replace(path=f"/{other}"))


_SCAN_DB, _KILL_DB = _redis_databases(os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15"))
REDIS_SCAN = os.environ.get("TEST_CELERY_REDIS_SCAN") or _SCAN_DB
REDIS_KILL = os.environ.get("TEST_CELERY_REDIS_KILL") or _KILL_DB
TASK = "followups.tasks.followup_scan"
TIMEOUT = 120  # seconds: a worker starts slowly on a busy 2-core machine

pytestmark = [
    pytest.mark.celery_worker,
    pytest.mark.postgres,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]


def _db_url() -> str:
    db = settings.DATABASES["default"]
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def _psycopg_url() -> str:
    return _db_url().replace("postgres://", "postgresql://", 1)


def _flush(url: str) -> None:
    import redis

    redis.Redis.from_url(url).flushdb()


@contextmanager
def _exclusive(url: str):
    """One test at a time on this Redis database (pytest-xdist workers)."""
    parts = urlsplit(url)
    name = f"jft-celery-{parts.hostname}-{parts.port or 6379}{parts.path.replace('/', '-')}"
    with open(Path(tempfile.gettempdir()) / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


class Worker:
    """``celery -A config worker`` in its own process group."""

    def __init__(self, broker: str, *, visibility_timeout: int, name: str):
        self.log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - kept open for the process
            prefix=f"celery-{name}-", suffix=".log", delete=False
        )
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "CELERY_TEST_WORKER": "1",
            "CELERY_BROKER_URL": broker,
            "CELERY_VISIBILITY_TIMEOUT": str(visibility_timeout),
            "DATABASE_URL": _db_url(),
        }
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "--loglevel=INFO",
                "--concurrency=1",
                "--pool=prefork",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                f"--hostname={name}@%h",
            ],
            cwd=BASE_DIR,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def output(self) -> str:
        return Path(self.log.name).read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL the worker and its pool child at once (no warm shutdown)."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()


def _send(broker: str, **kwargs) -> None:
    """Publish the task to the worker's broker (this process runs eager)."""
    from config.celery import app

    eager = app.conf.task_always_eager
    app.conf.task_always_eager = False
    try:
        with app.connection_for_write(broker) as conn:
            app.send_task(TASK, kwargs=kwargs, connection=conn)
    finally:
        app.conf.task_always_eager = eager


def _wait(predicate, what: str, workers=(), timeout: float = TIMEOUT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.5)
    logs = "\n".join(w.output()[-3000:] for w in workers)
    pytest.fail(f"timed out waiting for {what}\n{logs}")


def _overdue(patients) -> None:
    Patient.objects.filter(pk=patients.pA1.pk).update(
        next_followup_due=timezone.localdate() - timedelta(days=3)
    )


@pytest.fixture
def scan_broker():
    with _exclusive(REDIS_SCAN):
        _flush(REDIS_SCAN)
        yield REDIS_SCAN


@pytest.fixture
def kill_broker():
    with _exclusive(REDIS_KILL):
        _flush(REDIS_KILL)
        yield REDIS_KILL


def test_a_real_worker_runs_the_daily_scan(world, patients, scan_broker):
    _overdue(patients)
    worker = Worker(REDIS_SCAN, visibility_timeout=3600, name="scan")
    try:
        _send(REDIS_SCAN, day=timezone.localdate().isoformat())
        run = _wait(
            lambda: TaskRun.objects.filter(job="followups.scan", status="succeeded").first(),
            "the scan's run record",
            [worker],
        )
    finally:
        worker.stop()
    assert run.counts["overdue_raised"] == 1
    assert run.finished_at >= run.started_at
    alert = Alert.objects.get(kind="overdue")
    assert alert.recipients.get().organisation == world.org.hc_a1


def _blocked_on_alert_insert(conn) -> bool:
    """True while the worker's scan waits for our lock inside its transaction."""
    row = conn.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND wait_event_type = 'Lock' AND query LIKE '%%INSERT INTO followups_alert%%' "
        "AND pid <> pg_backend_pid()"
    ).fetchone()
    return row[0] > 0


def test_a_worker_killed_mid_scan_leaves_no_duplicate_alert(world, patients, kill_broker):
    _overdue(patients)
    today = timezone.localdate().isoformat()
    first = Worker(REDIS_KILL, visibility_timeout=5, name="first")
    second = None
    # Hold the alert table so the scan stops inside its transaction, in the
    # middle of its side effects: that is where the worker is killed.
    blocker = psycopg.connect(_psycopg_url(), autocommit=False)
    try:
        blocker.execute("LOCK TABLE followups_alert IN SHARE ROW EXCLUSIVE MODE")
        _send(REDIS_KILL, day=today)
        with psycopg.connect(_psycopg_url(), autocommit=True) as probe:
            _wait(lambda: _blocked_on_alert_insert(probe), "the scan to block", [first])
        first.kill()
        blocker.rollback()  # release: the dead worker's transaction is rolled back
        assert TaskRun.objects.filter(job="followups.scan", status="running").count() == 1
        second = Worker(REDIS_KILL, visibility_timeout=5, name="second")
        run = _wait(
            lambda: TaskRun.objects.filter(job="followups.scan", status="succeeded").first(),
            "the redelivered scan",
            [first, second],
        )
    finally:
        blocker.close()
        first.stop()
        if second is not None:
            second.stop()
    assert run.counts["overdue_raised"] == 1
    assert Alert.objects.filter(kind="overdue").count() == 1
    assert AlertRecipient.objects.filter(alert__kind="overdue").count() == 1
    dead = TaskRun.objects.get(job="followups.scan", status="failed")
    assert dead.errors == ["abandoned: the worker stopped before finishing"]


def _blocked_recording_the_run(conn) -> int | None:
    """The session of the worker whose scan has committed and which now waits
    for our lock on its run row to record the run (before the ack)."""
    row = conn.execute(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
        "AND wait_event_type = 'Lock' AND query LIKE 'UPDATE %%core_taskrun%%' "
        "AND pid <> pg_backend_pid() LIMIT 1"
    ).fetchone()
    return row[0] if row else None


def test_a_worker_killed_after_the_scan_committed_raises_nothing_twice(
    world, patients, kill_broker
):
    """Committed, then killed before the ack: Redis redelivers the message
    and the second scan finds every alert there (ON CONFLICT DO NOTHING)."""
    _overdue(patients)
    today = timezone.localdate().isoformat()
    first = Worker(REDIS_KILL, visibility_timeout=5, name="committed")
    second = None
    blocker = psycopg.connect(_psycopg_url(), autocommit=False)
    run_lock = psycopg.connect(_psycopg_url(), autocommit=False)
    try:
        # stop the scan inside its transaction first, to lock its run row
        # while its effects are not yet written
        blocker.execute("LOCK TABLE followups_alert IN SHARE ROW EXCLUSIVE MODE")
        _send(REDIS_KILL, day=today)
        with psycopg.connect(_psycopg_url(), autocommit=True) as probe:
            _wait(lambda: _blocked_on_alert_insert(probe), "the scan to block", [first])
            run = TaskRun.objects.get(job="followups.scan", status="running")
            # the run's final update (after the scan's commit, before the
            # ack) will wait for this row lock: that is where we kill
            run_lock.execute("SELECT 1 FROM core_taskrun WHERE id = %s FOR UPDATE", [run.pk])
            blocker.rollback()
            pid = _wait(
                lambda: _blocked_recording_the_run(probe),
                "the scan to commit and record its run",
                [first],
            )
            assert Alert.objects.filter(kind="overdue").count() == 1  # committed
            assert AlertRecipient.objects.filter(alert__kind="overdue").count() == 1
            first.kill()
            # its session goes with it: the run is never recorded, nothing acked
            probe.execute("SELECT pg_terminate_backend(%s)", [pid])
        run_lock.rollback()
        assert TaskRun.objects.get(pk=run.pk).status == "running"
        second = Worker(REDIS_KILL, visibility_timeout=5, name="redelivered")
        again = _wait(
            lambda: TaskRun.objects.filter(job="followups.scan", status="succeeded").first(),
            "the redelivered scan",
            [first, second],
        )
    finally:
        blocker.close()
        run_lock.close()
        first.stop()
        if second is not None:
            second.stop()
    assert again.pk != run.pk and again.key == today
    assert again.counts["overdue_raised"] == again.counts["overdue_recipients"] == 0
    assert Alert.objects.filter(kind="overdue").count() == 1
    assert AlertRecipient.objects.filter(alert__kind="overdue").count() == 1
    dead = TaskRun.objects.get(pk=run.pk)
    assert dead.status == "failed"
    assert dead.errors == ["abandoned: the worker stopped before finishing"]
