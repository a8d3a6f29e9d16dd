from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from reports.models import IndicatorSnapshot, IndicatorTarget


@admin.register(IndicatorTarget)
class IndicatorTargetAdmin(SimpleHistoryAdmin):
    list_display = ("indicator", "region", "year", "value", "source")
    list_filter = ("indicator", "year")
    search_fields = ("region__code", "region__name")
    raw_id_fields = ("region",)


@admin.register(IndicatorSnapshot)
class IndicatorSnapshotAdmin(admin.ModelAdmin):
    """Read-only: snapshots are written by the jobs only."""

    list_display = ("region", "period", "statistics_date", "final", "computed_at")
    list_filter = ("period", "final")
    search_fields = ("region__code",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
