"""The scan's run records when scans overlap (DESIGN.md → Jobs): a scan
waiting for the lock is never recorded as failed by the one holding it;
runs of workers that died are (PostgreSQL, real concurrent sessions)."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest
from django.conf import settings
from django.db import connection

from core.models import TaskRun
from followups import tasks
from followups.services import scan

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

TIMEOUT = 60


def _wait(predicate, what: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


def _psycopg_url() -> str:
    db = settings.DATABASES["default"]
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgresql://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def _waiters() -> int:
    """Sessions waiting for the scan lock in this database (another test
    database on the same server may run scans too)."""
    with psycopg.connect(_psycopg_url(), autocommit=True) as conn:
        return conn.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "AND objid::bigint = %s",
            [scan.SCAN_LOCK & 0xFFFFFFFF],
        ).fetchone()[0]


class Scan(threading.Thread):
    """The scan task run in a thread (its own database connection)."""

    def __init__(self, name: str):
        super().__init__(name=name, daemon=True)
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            tasks.followup_scan.run()
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc
        finally:
            connection.close()


def test_a_scan_waiting_for_the_lock_is_not_marked_failed(world, monkeypatch):
    real_escalate = scan.escalate
    a_holds_lock = threading.Event()
    b_may_finish = threading.Event()

    def escalate(*, today=None):
        # inside the scan's transaction, holding the scan lock
        if threading.current_thread().name == "scan-a":
            a_holds_lock.set()
            _wait(lambda: _waiters() > 0, "scan B to wait for the lock")
        else:
            b_may_finish.wait(TIMEOUT)
        return real_escalate(today=today)

    monkeypatch.setattr(scan, "escalate", escalate)
    a, b = Scan("scan-a"), Scan("scan-b")
    try:
        a.start()
        assert a_holds_lock.wait(TIMEOUT)
        b.start()  # its run row is written, then it waits for A's lock
        a.join(TIMEOUT)
        assert not a.is_alive() and a.error is None
        # A has committed; B holds the lock now and is still scanning
        run_a, run_b = TaskRun.objects.filter(job=tasks.SCAN_JOB).order_by("pk")
        assert run_a.status == "succeeded"
        assert run_b.status == "running" and run_b.errors == []
    finally:
        b_may_finish.set()
        if b.ident is not None:
            b.join(TIMEOUT)
    assert not b.is_alive() and b.error is None
    statuses = list(TaskRun.objects.filter(job=tasks.SCAN_JOB).values_list("status", flat=True))
    assert statuses == ["succeeded", "succeeded"]


def test_runs_of_dead_workers_are_abandoned_unless_a_scan_waits_for_the_lock(world):
    dead = TaskRun.objects.create(job=tasks.SCAN_JOB, key="dead")
    current = TaskRun.objects.create(job=tasks.SCAN_JOB, key="current")
    later = TaskRun.objects.create(job=tasks.SCAN_JOB, key="later")  # may be waiting, alive
    holder = psycopg.connect(_psycopg_url(), autocommit=False)
    waiter = psycopg.connect(_psycopg_url(), autocommit=False)
    waiting = threading.Thread(
        target=lambda: waiter.execute("SELECT pg_advisory_xact_lock(%s)", [scan.SCAN_LOCK]),
        daemon=True,
    )
    try:
        holder.execute("SELECT pg_advisory_xact_lock(%s)", [scan.SCAN_LOCK])
        waiting.start()
        _wait(lambda: scan.scan_lock_waiters() == 1, "a session to wait for the scan lock")
        # a session waits: it may be the "dead" run, alive — nothing is marked
        assert tasks.abandon_dead_scans(current_id=current.pk) == 0
        holder.rollback()
        waiting.join(TIMEOUT)
        waiter.rollback()
        assert scan.scan_lock_waiters() == 0
        assert tasks.abandon_dead_scans(current_id=current.pk) == 1
    finally:
        holder.close()
        waiter.close()
    statuses = dict(TaskRun.objects.values_list("key", "status"))
    assert statuses == {"dead": "failed", "current": "running", "later": "running"}
    assert TaskRun.objects.get(pk=dead.pk).errors == [
        "abandoned: the worker stopped before finishing"
    ]
    assert later.pk > current.pk
