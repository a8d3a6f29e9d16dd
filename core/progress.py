"""Live progress of a long task while its own transaction is still open.

A roster import writes every row in one transaction (all or nothing), so a
progress counter updated on the task's ``TaskRun`` row inside it would only
become visible at commit — the bar would stand still through the slowest
part. The counter goes to the ``progress`` cache instead (Redis when the
broker is Redis, a file cache under ``var/`` on the single-machine SQLite
start): another process (the page polling it) sees it at once, on either
database. The ``TaskRun`` row keeps the stage and the final figures.

Progress is best effort: a cache that is down loses the bar, never the task.
"""

from __future__ import annotations

import logging

from django.core.cache import caches

log = logging.getLogger(__name__)

ALIAS = "progress"
TIMEOUT = 6 * 3600  # longer than any task's time limit


def _key(run_id) -> str:
    return f"taskrun:{run_id}"


def progress_report(run_id, *, stage: str, done: int, total: int) -> None:
    """Record how far stage ``stage`` of run ``run_id`` has got."""
    if run_id is None:
        return
    try:
        caches[ALIAS].set(
            _key(run_id), {"stage": stage, "done": done, "total": total}, timeout=TIMEOUT
        )
    except Exception as exc:  # noqa: BLE001 - progress is best effort
        log.warning("progress of run %s not recorded (%s)", run_id, type(exc).__name__)


def progress_read(run_id) -> dict | None:
    """``{"stage", "done", "total"}`` last reported for the run, or None."""
    if run_id is None:
        return None
    try:
        return caches[ALIAS].get(_key(run_id))
    except Exception as exc:  # noqa: BLE001 - progress is best effort
        log.warning("progress of run %s not read (%s)", run_id, type(exc).__name__)
        return None


def progress_clear(run_id) -> None:
    if run_id is None:
        return
    try:
        caches[ALIAS].delete(_key(run_id))
    except Exception as exc:  # noqa: BLE001 - progress is best effort
        log.warning("progress of run %s not cleared (%s)", run_id, type(exc).__name__)
