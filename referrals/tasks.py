"""Celery tasks of the referrals app. Each takes ids only, calls a service,
and is safe to run twice (acks_late; unique constraints and claims)."""

from __future__ import annotations

from celery import shared_task


@shared_task(acks_late=True, reject_on_worker_lost=True)
def referral_deadlines_scan() -> dict:
    """Daily: referral alerts for every passed deadline (once per condition)."""
    from referrals.services.referrals import referral_deadlines_scan as scan

    return scan()


@shared_task(acks_late=True, reject_on_worker_lost=True)
def exchange_build_due() -> dict:
    """Daily: each partner's package for the last finished period, once."""
    from referrals.services.exchange import exchange_build_due as build

    return build()


@shared_task(acks_late=True, reject_on_worker_lost=True)
def exchange_high_risk() -> dict:
    """Every minute: risk-3+ changes to police and governance at once."""
    from referrals.services.exchange import exchange_high_risk as push

    return push()


@shared_task(acks_late=True, reject_on_worker_lost=True)
def exchange_deliver_due() -> dict:
    """Every minute: deliver pending packages, with back-off per endpoint."""
    from referrals.services.exchange import exchange_deliver_due as deliver

    return deliver()


@shared_task(acks_late=True, reject_on_worker_lost=True, time_limit=30 * 60)
def roster_import_run(import_id: str) -> None:
    """Run one roster import (a queued import is claimed once)."""
    from referrals.services.imports import roster_import_run as run

    run(import_id)
