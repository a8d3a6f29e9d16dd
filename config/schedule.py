"""Every Celery beat schedule, in one place (DESIGN.md → Jobs).

Apps add their entries here, never in their own modules. Times are
Asia/Shanghai (CELERY_TIMEZONE).
"""

from celery.schedules import crontab

BEAT_SCHEDULE: dict[str, dict] = {
    "outbox-sweep": {"task": "core.tasks.outbox_sweep", "schedule": 60.0},
    # Follow-ups (DOMAIN.md → Alerts): the daily scan for overdue and lost
    # patients, and hourly escalation of alerts past their deadline.
    "followups-daily-scan": {
        "task": "followups.tasks.followup_scan",
        "schedule": crontab(hour=1, minute=30),
    },
    "followups-alert-escalation": {
        "task": "followups.tasks.alert_escalation",
        "schedule": crontab(minute=40),
    },
    # Unusual access (SECURITY.md G12): today's reads every hour, and
    # yesterday's once more after midnight for its last hour.
    "audit-unusual-access": {
        "task": "audit.tasks.flag_unusual_access",
        "schedule": crontab(minute=5),
    },
    # The audit chain's head, outside the database, so that removing the
    # newest rows is found by verify_audit_chain (SECURITY.md G13).
    "audit-checkpoint": {"task": "audit.tasks.audit_checkpoint", "schedule": 10 * 60.0},
    "audit-unusual-access-yesterday": {
        "task": "audit.tasks.flag_unusual_access",
        "schedule": crontab(hour=0, minute=20),
        "kwargs": {"days_back": 1},
    },
    # Guardian reward (DOMAIN.md): daily state changes (notice over, incidents,
    # deaths), then the payment batch of the last finished period — checked
    # daily so a missed run catches up; a batch already drawn is left alone.
    "subsidies-reward-daily-sync": {
        "task": "subsidies.tasks.reward_daily_sync",
        "schedule": crontab(hour=2, minute=10),
    },
    "subsidies-reward-draw-batches": {
        "task": "subsidies.tasks.reward_draw_batches",
        "schedule": crontab(hour=3, minute=0),
    },
    # Indicator snapshots (DESIGN.md → Jobs): nightly after the follow-up
    # scan (its status changes count), and every 15 minutes for the counties
    # whose data changed since.
    "reports-snapshot-nightly": {
        "task": "reports.tasks.snapshot_nightly",
        "schedule": crontab(hour=2, minute=30),
    },
    "reports-snapshot-incremental": {
        "task": "reports.tasks.snapshot_incremental",
        "schedule": 15 * 60.0,
    },
    # Referrals and exchange (DOMAIN.md → Referrals, Data exchange): daily
    # deadline alerts; each partner's package of the last finished quarter /
    # half-year (checked daily, built once per period); risk-3+ changes to
    # police and governance within a minute; delivery with per-endpoint back-off.
    "referrals-deadlines": {
        "task": "referrals.tasks.referral_deadlines_scan",
        "schedule": crontab(hour=6, minute=10),
    },
    "referrals-exchange-build": {
        "task": "referrals.tasks.exchange_build_due",
        "schedule": crontab(hour=1, minute=50),
    },
    "referrals-exchange-high-risk": {
        "task": "referrals.tasks.exchange_high_risk",
        "schedule": 60.0,
    },
    "referrals-exchange-deliver": {
        "task": "referrals.tasks.exchange_deliver_due",
        "schedule": 60.0,
    },
}
