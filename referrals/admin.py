"""Django admin of the referrals app: read-mostly views for the system
administrator. Signing keys and uploaded files are never shown here."""

from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from referrals.models import ExchangePartner, ExchangeRun, RehabInstitution


@admin.register(ExchangePartner)
class ExchangePartnerAdmin(SimpleHistoryAdmin):
    list_display = ("name", "department", "region", "schedule", "format", "delivery", "is_active")
    list_filter = ("department", "schedule", "format", "delivery", "is_active")
    exclude = ("signing_key", "lease_until", "high_risk_cursor")
    readonly_fields = ("key_id", "backoff_until", "consecutive_failures")


@admin.register(ExchangeRun)
class ExchangeRunAdmin(admin.ModelAdmin):
    list_display = ("partner", "kind", "period", "status", "rows", "attempts", "created_at")
    list_filter = ("status", "kind")
    exclude = ("content",)
    readonly_fields = [f.name for f in ExchangeRun._meta.fields if f.name != "content"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(RehabInstitution)
class RehabInstitutionAdmin(SimpleHistoryAdmin):
    list_display = ("organisation", "places", "is_active")
    list_filter = ("is_active",)
