"""Every Celery beat schedule, in one place (DESIGN.md → Jobs).

Apps add their entries here, never in their own modules. Times are
Asia/Shanghai (CELERY_TIMEZONE).
"""

BEAT_SCHEDULE: dict[str, dict] = {
    "outbox-sweep": {"task": "core.tasks.outbox_sweep", "schedule": 60.0},
}
