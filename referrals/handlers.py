"""Outbox handlers of the referrals app (see core.outbox)."""

from __future__ import annotations

from core.outbox import handler


@handler("referrals.roster_import")
def roster_import_queue(payload: dict) -> None:
    """Hand a stored roster upload to a worker. If the broker is down this
    raises and the outbox sweeper tries again; the import itself claims the
    upload once, so a second hand-over is harmless."""
    from referrals.tasks import roster_import_run

    roster_import_run.delay(payload["import"])
