"""Shapes of the indicator API (API.md → ``/api/v1/reports/indicators/``)."""

from __future__ import annotations

from rest_framework import serializers

from reports.rules import Period, PeriodError

UNITS = ["count", "percent", "permille"]


class IndicatorQuerySerializer(serializers.Serializer):
    region = serializers.RegexField(
        r"^\d{6}(\d{3}){0,2}$",
        required=False,
        allow_blank=True,
        help_text="Division code (6, 9 or 12 digits); default: the caller's own region.",
    )
    period = serializers.CharField(
        required=False,
        allow_blank=True,
        help_text="Quarter as YYYYQn, e.g. 2026Q3; default: the current quarter.",
    )

    def validate_period(self, value: str) -> Period | None:
        if not value:
            return None
        try:
            return Period.parse(value)
        except PeriodError as exc:
            raise serializers.ValidationError(str(exc.message)) from exc


class IndicatorValueSerializer(serializers.Serializer):
    """One indicator: ``value`` is a count (integer) or a rate rounded to
    0.01 (percent or per mille); null when the base is zero or the data is
    not available (``available`` false)."""

    label = serializers.CharField()
    unit = serializers.ChoiceField(choices=UNITS)
    value = serializers.FloatField(allow_null=True)
    numerator = serializers.IntegerField(allow_null=True)
    denominator = serializers.IntegerField(allow_null=True)
    target = serializers.FloatField(allow_null=True)
    met = serializers.BooleanField(allow_null=True)
    available = serializers.BooleanField()

    def to_representation(self, instance):
        value = instance.value
        if value is not None and instance.unit != "count":
            value = float(value)
        return {
            "label": str(instance.label),
            "unit": instance.unit,
            "value": value,
            "numerator": instance.numerator,
            "denominator": instance.denominator,
            "target": float(instance.target) if instance.target is not None else None,
            "met": instance.met,
            "available": instance.available,
        }


class IndicatorReportSerializer(serializers.Serializer):
    """The indicators of DOMAIN.md for one region and quarter, by key."""

    region = serializers.CharField()
    region_name = serializers.CharField()
    level = serializers.CharField()
    period = serializers.CharField()
    statistics_date = serializers.DateField(allow_null=True)
    final = serializers.BooleanField()
    computed_at = serializers.DateTimeField(allow_null=True)
    source = serializers.ChoiceField(choices=["snapshot", "live"])
    indicators = serializers.DictField(child=IndicatorValueSerializer())

    def to_representation(self, report):
        return {
            "region": report.region.code,
            "region_name": report.region.name,
            "level": report.region.level,
            "period": report.period.code,
            "statistics_date": (
                report.statistics_date.isoformat() if report.statistics_date else None
            ),
            "final": report.final,
            "computed_at": (
                serializers.DateTimeField().to_representation(report.computed_at)
                if report.computed_at
                else None
            ),
            "source": "live" if report.live else "snapshot",
            "indicators": {v.key: IndicatorValueSerializer(v).data for v in report.values},
        }
