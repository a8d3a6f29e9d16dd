"""Indicator targets and per-region, per-quarter snapshots (DOMAIN.md →
Indicators; DESIGN.md → Jobs, "indicator snapshot")."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from accounts.models import Region
from reports.rules import INDICATOR_CHOICES


class IndicatorTarget(models.Model):
    """A target as a row (indicator, region, year, value), never in code.

    A region without its own row takes the nearest ancestor's: a national or
    provincial target set on the province applies to every county below it
    until a county sets its own (e.g. the county plan's 90% management rate).
    """

    indicator = models.CharField(_("指标"), max_length=32, choices=INDICATOR_CHOICES)
    region = models.ForeignKey(
        Region, verbose_name=_("行政区划"), on_delete=models.PROTECT, related_name="+"
    )
    year = models.PositiveSmallIntegerField(_("年度"))
    value = models.DecimalField(_("目标值"), max_digits=7, decimal_places=2)
    source = models.CharField(_("依据"), max_length=200, blank=True)
    history = HistoricalRecords()

    class Meta:
        verbose_name = _("指标目标")
        verbose_name_plural = _("指标目标")
        ordering = ["region_id", "year", "indicator"]
        constraints = [
            models.UniqueConstraint(
                fields=["indicator", "region", "year"], name="indicator_target_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_indicator_display()} {self.region_id} {self.year}: {self.value}"


class IndicatorSnapshot(models.Model):
    """One region's indicator counts for one quarter (``counts``: the additive
    counts of ``reports.rules``; values are always derived from them).

    The nightly job refreshes the running quarter and the previous one while
    late entries are still accepted, then marks it ``final``: a final row is
    never recomputed, so past quarters are immutable and trends are one query.
    """

    region = models.ForeignKey(
        Region, verbose_name=_("行政区划"), on_delete=models.PROTECT, related_name="+"
    )
    period = models.CharField(_("统计期"), max_length=6)
    statistics_date = models.DateField(_("统计日"))
    counts = models.JSONField(_("计数"), default=dict)
    final = models.BooleanField(_("已定稿"), default=False)
    computed_at = models.DateTimeField(_("计算时间"))

    class Meta:
        verbose_name = _("指标快照")
        verbose_name_plural = _("指标快照")
        ordering = ["region_id", "period"]
        constraints = [
            models.UniqueConstraint(fields=["region", "period"], name="indicator_snapshot_once")
        ]
        indexes = [models.Index(fields=["period", "region"], name="snapshot_period_region")]

    def __str__(self) -> str:
        return f"{self.region_id} {self.period}"
