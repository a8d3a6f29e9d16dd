"""Scheduled jobs of the guardian reward (beat entries in config/schedule.py).

Both are idempotent: the daily sync only moves awards whose state is due to
change, and a batch is drawn once per county and period (unique constraint).
"""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from core.tasks import task_run
from subsidies import services


@shared_task(acks_late=True, reject_on_worker_lost=True)
def reward_daily_sync() -> dict:
    """Activate awards whose notice ended, suspend after failed-duty incidents,
    end awards of patients who died, moved out or were removed."""
    today = timezone.localdate()
    with task_run("subsidies.reward_daily_sync", key=today.isoformat()) as run:
        run.counts = services.reward_sync(today=today)
    return run.counts


@shared_task(acks_late=True, reject_on_worker_lost=True)
def reward_draw_batches() -> dict:
    """Draw the payment batch of the last finished period for every county."""
    today = timezone.localdate()
    with task_run("subsidies.reward_draw_batches", key=today.isoformat()) as run:
        run.counts = services.draw_due_batches(today=today)
    return run.counts
