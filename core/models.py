from django.db import models


class SeedStage(models.Model):
    """A finished stage of ``seed_demo``: makes a second run a no-op."""

    name = models.CharField(max_length=64, unique=True)
    params = models.JSONField(default=dict)
    finished_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class TaskRun(models.Model):
    """One run of a scheduled or long task: when, how far, what it counted.

    ``key`` names the period or input (``2026-11-22``, ``2026Q4``, a file hash)
    so a run can be found again; tasks stay idempotent through their own
    unique constraints, not through this row.
    """

    class Status(models.TextChoices):
        RUNNING = "running", "运行中"
        SUCCEEDED = "succeeded", "成功"
        FAILED = "failed", "失败"

    job = models.CharField(max_length=64, db_index=True)
    key = models.CharField(max_length=128, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    progress = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(null=True, blank=True)
    counts = models.JSONField(default=dict, blank=True)
    errors = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["job", "-started_at"], name="taskrun_job_started")]

    def __str__(self) -> str:
        return f"{self.job} {self.key} {self.status}"


class OutboxMessage(models.Model):
    """Transactional outbox (SECURITY.md 4.2): written in the same transaction
    as the business change, dispatched on commit, re-sent by a sweeper when
    the broker lost it. ``payload`` holds ids only, never personal data."""

    topic = models.CharField(max_length=64)
    payload = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    dispatched_at = models.DateTimeField(null=True, blank=True)
    done_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=200, blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["created_at"],
                name="outbox_pending",
                condition=models.Q(done_at__isnull=True),
            )
        ]

    def __str__(self) -> str:
        return f"{self.topic} #{self.pk}"
