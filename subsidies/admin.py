"""Django admin for the policies (DOMAIN.md: configurable per county).

Only the ``admin`` role edits policies here; admin rights open no patient
data (awards, episodes and settlements are not registered). Every save
bumps the policy's version (a settlement records the version it used) and
is kept by django-simple-history and in the audit log. Policies are never
deleted: a policy ends by its "valid to" date.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _
from simple_history.admin import SimpleHistoryAdmin

from accounts.models import Region, RegionLevel
from accounts.roles import Role, role_of
from audit.services import audit_record
from core.history import history_stamp
from patients.models import IncidentKind
from subsidies import rules
from subsidies.models import PayerLayer, RewardPolicy, SettlementPolicy


class AdminRoleOnly:
    """Visible and editable for the admin role only; nothing is deleted."""

    def _allowed(self, request) -> bool:
        user = request.user
        return bool(user.is_active and user.is_staff and role_of(user) == Role.ADMIN)

    def has_module_permission(self, request):
        return self._allowed(request)

    def has_view_permission(self, request, obj=None):
        return self._allowed(request)

    def has_add_permission(self, request, *args):
        return self._allowed(request)

    def has_change_permission(self, request, obj=None):
        return self._allowed(request)

    def has_delete_permission(self, request, obj=None):
        return False


class CountyChoiceMixin:
    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "region":
            kwargs["queryset"] = Region.objects.filter(level=RegionLevel.COUNTY)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class VersionedAdmin(AdminRoleOnly, CountyChoiceMixin, SimpleHistoryAdmin):
    object_type = ""

    def save_model(self, request, obj, form, change):
        if change:
            obj.version += 1
        history_stamp(
            obj, user=request.user, reason="policy.changed" if change else "policy.created"
        )
        super().save_model(request, obj, form, change)
        audit_record(
            actor=request.user,
            action="admin.policy_change" if change else "admin.policy_create",
            object_type=self.object_type,
            object_id=obj.pk,
            detail={"version": obj.version},
            request=request,
        )


class RewardPolicyForm(forms.ModelForm):
    qualifying_incident_kinds = forms.MultipleChoiceField(
        label=RewardPolicy._meta.get_field("qualifying_incident_kinds").verbose_name,
        choices=IncidentKind.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )

    class Meta:
        model = RewardPolicy
        fields = [
            "region",
            "name",
            "valid_from",
            "valid_to",
            "yearly_amount",
            "frequency",
            "notice_days",
            "require_police_registered",
            "qualifying_incident_kinds",
            "min_risk_level",
            "require_responsibility_letter",
            "min_assistant_guardians",
            "reapply_bar_months",
            "notes",
        ]


@admin.register(RewardPolicy)
class RewardPolicyAdmin(VersionedAdmin):
    form = RewardPolicyForm
    object_type = "reward_policy"
    list_display = (
        "name",
        "region",
        "valid_from",
        "valid_to",
        "yearly_amount",
        "frequency",
        "version",
    )
    list_filter = ("region",)
    readonly_fields = ("version", "updated_at")
    fieldsets = (
        (None, {"fields": ("region", "name", "valid_from", "valid_to", "version", "updated_at")}),
        (_("奖补标准"), {"fields": ("yearly_amount", "frequency", "notice_days")}),
        (
            _("资格条件"),
            {
                "fields": (
                    "require_police_registered",
                    "qualifying_incident_kinds",
                    "min_risk_level",
                    "require_responsibility_letter",
                    "min_assistant_guardians",
                    "reapply_bar_months",
                )
            },
        ),
        (None, {"fields": ("notes",)}),
    )


class PayerLayerFormSet(forms.BaseInlineFormSet):
    """A duplicate order is refused with a clear message before Django's own check."""

    def clean(self):
        orders = set()
        for form in self.forms:
            if not hasattr(form, "cleaned_data") or form.cleaned_data.get("DELETE"):
                continue
            order = form.cleaned_data.get("order")
            if order is None:
                continue
            if order in orders:
                raise ValidationError(rules.ERR_DUPLICATE_ORDER)
            orders.add(order)
        super().clean()


class PayerLayerInline(admin.TabularInline):
    model = PayerLayer
    formset = PayerLayerFormSet
    extra = 1
    fields = (
        "order",
        "payer",
        "condition",
        "ratio",
        "deductible_per_year",
        "cap_per_episode",
        "cap_per_year",
        "min_risk_level",
        "valid_from",
        "valid_to",
    )

    def _allowed(self, request) -> bool:
        user = request.user
        return bool(user.is_active and user.is_staff and role_of(user) == Role.ADMIN)

    def has_view_permission(self, request, obj=None):
        return self._allowed(request)

    def has_add_permission(self, request, obj=None):
        return self._allowed(request)

    def has_change_permission(self, request, obj=None):
        return self._allowed(request)

    def has_delete_permission(self, request, obj=None):
        return self._allowed(request)


@admin.register(SettlementPolicy)
class SettlementPolicyAdmin(VersionedAdmin):
    object_type = "settlement_policy"
    inlines = [PayerLayerInline]
    list_display = ("name", "region", "valid_from", "valid_to", "version")
    list_filter = ("region",)
    readonly_fields = ("version", "updated_at")
    fields = ("region", "name", "valid_from", "valid_to", "version", "updated_at", "notes")
