"""Scheduled work of the followups app (beat entries in config/schedule.py).

Tasks are idempotent (alerts unique per episode, recipients unique per
organisation), acknowledged late and re-queued when a worker dies, and keep
a run record (core.models.TaskRun) with their counts and errors.
"""

from __future__ import annotations

from datetime import date

from celery import shared_task
from django.db import OperationalError
from django.utils import timezone

from core.tasks import abandon_stale_runs, task_run
from followups.services import scan

SCAN_JOB = "followups.scan"
ESCALATION_JOB = "followups.escalation"


@shared_task(
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(OperationalError,),
    retry_backoff=60,
    retry_backoff_max=600,
    max_retries=5,
)
def followup_scan(self, day: str | None = None) -> dict:
    """The daily scan: overdue and lost alerts, escalation, closing overdue
    alerts that ended. ``day`` (ISO date) defaults to today (Asia/Shanghai)."""
    today = date.fromisoformat(day) if day else timezone.localdate()
    with task_run(SCAN_JOB, key=today.isoformat()) as run:
        run.counts = scan.followup_scan(
            today=today, on_locked=lambda: abandon_dead_scans(current_id=run.pk)
        )
    return run.counts


def abandon_dead_scans(*, current_id: int) -> int:
    """Record earlier scans that never finished as failed (abandoned).

    Runs inside the scan's transaction while it holds the scan lock: an
    earlier run still "running" then died mid-task — unless a session is
    waiting for the lock, which may be that run, alive (e.g. one whose row
    was written first but which asked for the lock second); then nothing
    is marked and a later scan does it. Called after the commit instead,
    the lock would be free and a scan waiting on it marked failed."""
    if scan.scan_lock_waiters():
        return 0
    return abandon_stale_runs(SCAN_JOB, current_id=current_id)


@shared_task(
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(OperationalError,),
    retry_backoff=60,
    max_retries=3,
)
def alert_escalation(self) -> dict:
    """Hourly: escalate alerts past their deadline (risk alerts after 24 h)."""
    key = timezone.localtime().isoformat(timespec="minutes")
    with task_run(ESCALATION_JOB, key=key) as run:
        run.counts = scan.escalation_scan()
    return run.counts
