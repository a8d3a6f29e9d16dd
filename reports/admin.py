"""Django admin of the reports app.

Targets are written through ``reports.services`` (the same checks, history
and audit as the targets page); snapshots are read-only (the jobs write them).
"""

from django import forms
from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from core.errors import DomainError
from reports import services
from reports.models import IndicatorSnapshot, IndicatorTarget


class IndicatorTargetAdminForm(forms.ModelForm):
    """Validates with ``services.target_check`` (who, which indicator, range)."""

    user = None  # set by the admin for the request

    class Meta:
        model = IndicatorTarget
        fields = ("indicator", "region", "year", "value", "source")

    def clean(self):
        data = super().clean()
        region = data.get("region") or getattr(self.instance, "region", None)
        indicator = data.get("indicator") or self.instance.indicator
        value = data.get("value")
        if region is not None and indicator and value is not None:
            try:
                services.target_check(indicator=indicator, region=region, value=value, by=self.user)
            except DomainError as exc:
                field = exc.field if exc.field in self.fields else None
                self.add_error(field, exc.message)
        return data


@admin.register(IndicatorTarget)
class IndicatorTargetAdmin(SimpleHistoryAdmin):
    form = IndicatorTargetAdminForm
    list_display = ("indicator", "region", "year", "value", "source")
    list_filter = ("indicator", "year")
    search_fields = ("region__code", "region__name")
    raw_id_fields = ("region",)
    actions = None  # no bulk delete around the service

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        return type(form.__name__, (form,), {"user": request.user})

    def get_readonly_fields(self, request, obj=None):
        # a target is keyed by (indicator, region, year): change only its value
        return ("indicator", "region", "year") if obj is not None else ()

    def save_model(self, request, obj, form, change):
        saved = services.target_set(
            indicator=obj.indicator,
            region=obj.region,
            year=obj.year,
            value=obj.value,
            source=obj.source,
            by=request.user,
            request=request,
        )
        obj.pk = saved.pk

    def delete_model(self, request, obj):
        services.target_delete(target=obj, by=request.user, request=request)


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
