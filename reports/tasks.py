"""Scheduled snapshot jobs (DESIGN.md → Jobs, "indicator snapshot").

Both are idempotent (an upsert per region and quarter, final rows never
rewritten) and record a ``core.TaskRun`` row with their counts.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task
from django.utils import timezone

from core.models import TaskRun
from reports import services

log = logging.getLogger(__name__)

JOB_NIGHTLY = "reports.snapshot_nightly"
JOB_INCREMENTAL = "reports.snapshot_incremental"
# Changes are looked for from the previous run's start minus this overlap: a
# transaction that saved before that start may have committed after it.
OVERLAP = timedelta(minutes=5)


def _run(job: str, key: str, work) -> dict:
    run = TaskRun.objects.create(job=job, key=key)
    try:
        counts = work()
    except Exception as exc:
        run.status = TaskRun.Status.FAILED
        run.errors = [type(exc).__name__]
        run.finished_at = timezone.now()
        run.save(update_fields=["status", "errors", "finished_at"])
        log.exception("%s failed", job)
        raise
    run.status = TaskRun.Status.SUCCEEDED
    run.counts = counts
    run.progress = counts.get("counties", 0)
    run.total = counts.get("counties", 0)
    run.finished_at = timezone.now()
    run.save(update_fields=["status", "counts", "progress", "total", "finished_at"])
    return counts


@shared_task(acks_late=True, reject_on_worker_lost=True)
def snapshot_nightly() -> dict:
    """Refresh the running quarter (and one still open for late entries) for
    every county, finalise quarters past their grace period, fill gaps."""
    today = timezone.localdate()
    return _run(JOB_NIGHTLY, today.isoformat(), lambda: services.snapshots_nightly(today=today))


@shared_task(acks_late=True, reject_on_worker_lost=True)
def snapshot_incremental() -> dict:
    """Refresh the open quarters of the counties whose data changed since the
    previous run; the first run ever does the nightly work instead."""
    today = timezone.localdate()
    last = (
        TaskRun.objects.filter(
            job__in=[JOB_NIGHTLY, JOB_INCREMENTAL], status=TaskRun.Status.SUCCEEDED
        )
        .order_by("-started_at")
        .values_list("started_at", flat=True)
        .first()
    )
    if last is None:
        return _run(JOB_NIGHTLY, today.isoformat(), lambda: services.snapshots_nightly(today=today))
    since = last - OVERLAP
    return _run(
        JOB_INCREMENTAL,
        since.isoformat(),
        lambda: services.snapshots_refresh_changed(since=since, today=today),
    )
