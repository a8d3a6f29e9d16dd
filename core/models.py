from django.db import models


class SeedStage(models.Model):
    """A finished stage of ``seed_demo``: makes a second run a no-op."""

    name = models.CharField(max_length=64, unique=True)
    params = models.JSONField(default=dict)
    finished_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name
