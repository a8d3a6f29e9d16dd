"""Celery tasks of the outbox, and the run record every task keeps.

Tasks take ids only, are safe to run twice (``acks_late``,
``reject_on_worker_lost`` and the handlers' unique constraints), and record
what they did in ``core.models.TaskRun`` (DESIGN.md → Jobs).
"""

from __future__ import annotations

import logging
from contextlib import contextmanager

from celery import shared_task
from django.utils import timezone

from core import outbox
from core.models import TaskRun

log = logging.getLogger(__name__)

# Retry delays stay far below the broker's visibility timeout (SECURITY.md 4.2).
RETRY_DELAYS = (10, 30, 60, 120, 300, 600)
# A message locked by another transaction is tried again this soon.
BUSY_RETRY_SECONDS = 2


@contextmanager
def task_run(job: str, key: str = ""):
    """Record one run: started now; finished with its ``counts`` (set them on
    the yielded row) or failed with the error's type and message."""
    run = TaskRun.objects.create(job=job, key=key)
    try:
        yield run
    except Exception as exc:
        TaskRun.objects.filter(pk=run.pk).update(
            status=TaskRun.Status.FAILED,
            finished_at=timezone.now(),
            counts=run.counts,
            errors=[*run.errors, f"{type(exc).__name__}: {str(exc)[:300]}"],
        )
        raise
    TaskRun.objects.filter(pk=run.pk).update(
        status=TaskRun.Status.SUCCEEDED,
        finished_at=timezone.now(),
        counts=run.counts,
        errors=run.errors,
        progress=run.progress,
        total=run.total,
    )


def abandon_stale_runs(job: str, *, current_id: int) -> int:
    """Mark the job's runs started before this one and still "running" as
    failed. Call it holding the job's lock, when no other session waits for
    it: those runs then belong to workers that died mid-task. A run started
    after this one may be alive, waiting for the lock: it is left alone."""
    return TaskRun.objects.filter(job=job, status=TaskRun.Status.RUNNING, pk__lt=current_id).update(
        status=TaskRun.Status.FAILED,
        finished_at=timezone.now(),
        errors=["abandoned: the worker stopped before finishing"],
    )


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=len(RETRY_DELAYS))
def outbox_deliver(self, message_id: int) -> None:
    """Deliver one outbox message (ids only in the payload); on failure retry
    with back-off, then leave it to the sweeper."""
    _load_handlers()
    try:
        outbox.deliver(message_id)
    except outbox.MessageBusy as exc:
        # someone else holds the row: it may finish, or it may be the sweeper
        # between two messages; either way look again shortly
        if self.request.retries >= self.max_retries:
            log.warning("outbox: message %s left to the sweeper (busy)", message_id)
            return
        raise self.retry(exc=exc, countdown=BUSY_RETRY_SECONDS) from exc
    except outbox.DeliveryFailed as exc:
        if self.request.retries >= self.max_retries:
            log.warning("outbox: message %s left to the sweeper", message_id)
            return
        raise self.retry(exc=exc, countdown=RETRY_DELAYS[self.request.retries]) from exc


@shared_task(acks_late=True, reject_on_worker_lost=True)
def outbox_sweep(limit: int = 1000) -> int:
    """Run what the broker lost: messages still pending after 30 s.

    Records a run row when it found work (every minute otherwise)."""
    _load_handlers()
    ids = list(outbox.pending().order_by("created_at").values_list("pk", flat=True)[:limit])
    if not ids:
        return 0
    done = failed = 0
    with task_run("core.outbox_sweep") as run:
        for pk in ids:
            try:
                done += outbox.deliver(pk)
            except outbox.MessageBusy:
                continue  # a worker is running it right now
            except outbox.DeliveryFailed:
                failed += 1
        run.counts = {"pending": len(ids), "delivered": done, "failed": failed}
    return done


def _load_handlers() -> None:
    # Handlers register on import of each app's ``handlers`` module.
    from importlib import import_module

    from django.apps import apps
    from django.utils.module_loading import module_has_submodule

    for config in apps.get_app_configs():
        if module_has_submodule(config.module, "handlers"):
            import_module(f"{config.name}.handlers")
