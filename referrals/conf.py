"""The referrals app's configurable numbers (DOMAIN.md → Referrals, Data
exchange). Each can be overridden by a Django setting of the same name; the
defaults are the values DOMAIN.md decides."""

from __future__ import annotations

from django.conf import settings

DEFAULTS = {
    # the receiving side accepts within 14 days
    "REFERRAL_ACCEPT_DAYS": 14,
    # a green-channel referral (relapse during rehab) is received the next day
    "REFERRAL_GREEN_CHANNEL_ACCEPT_DAYS": 1,
    # first community follow-up within 14 days of discharge
    "REFERRAL_FIRST_FOLLOWUP_DAYS": 14,
    # an accepted upward / rehab / transfer referral is completed within 30 days
    "REFERRAL_COMPLETE_DAYS": 30,
    # exchange delivery: exponential back-off per endpoint, then give up
    "EXCHANGE_BACKOFF_SECONDS": 60,
    "EXCHANGE_BACKOFF_MAX_SECONDS": 3600,
    "EXCHANGE_MAX_ATTEMPTS": 8,
    "EXCHANGE_HTTP_TIMEOUT": 30,
    # how long one worker may hold an endpoint before another may take over
    "EXCHANGE_LEASE_SECONDS": 300,
    # largest file accepted for roster import and reconciliation (bytes)
    "REFERRALS_UPLOAD_MAX_BYTES": 20 * 1024 * 1024,
}


def get(name: str):
    return getattr(settings, name, DEFAULTS[name])
