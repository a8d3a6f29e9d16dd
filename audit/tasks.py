"""Scheduled audit jobs (beat entries in config/schedule.py)."""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from audit.services import audit_record, unusual_access_scan


@shared_task(acks_late=True)
def flag_unusual_access(days_back: int = 0) -> dict:
    """Flag accounts that opened more than UNUSUAL_ACCESS_THRESHOLD distinct
    patients on a day (today, or ``days_back`` days ago). Idempotent: an
    account is flagged once per day; the run itself is recorded."""
    day = timezone.localdate() - timedelta(days=days_back)
    threshold = settings.UNUSUAL_ACCESS_THRESHOLD
    flagged = unusual_access_scan(day=day, threshold=threshold)
    result = {"day": day.isoformat(), "threshold": threshold, "flagged": len(flagged)}
    audit_record(actor=None, action="audit.unusual_access_scan", detail=result)
    return result


@shared_task(acks_late=True)
def audit_checkpoint() -> dict:
    """Write the chain's head to the checkpoint store outside the database
    (audit.checkpoints). Safe to run twice: an unchanged head is not
    written again."""
    from audit.checkpoints import checkpoint_write

    item = checkpoint_write()
    return {"written": item is not None, "seq": item["seq"] if item else None}
