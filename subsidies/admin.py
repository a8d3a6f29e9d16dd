"""Django admin for the policies (DOMAIN.md: configurable per county).

Only the ``admin`` role edits policies here; admin rights open no patient
data (awards, episodes and settlements are not registered). Every save
bumps the policy's version, a strictly increasing counter read under a row
lock (a settlement records the version it used), kept by
django-simple-history and in the audit log. History can be viewed but not
"reverted": a revert would bring back an old version number and leave the
layers as they are. Once a settlement (or a reward application or payment)
used a policy, its rules and layers are frozen: a change of rules is a new
policy version with its own validity. Policies are never deleted: a policy
ends by its "valid to" date.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.http import HttpResponseRedirect
from django.shortcuts import redirect
from django.utils.translation import gettext_lazy as _
from simple_history.admin import SimpleHistoryAdmin

from accounts.models import Region, RegionLevel
from accounts.roles import Role, role_of
from audit.services import audit_record
from core.history import history_stamp
from patients.models import IncidentKind
from subsidies import rules
from subsidies.models import (
    ERR_POLICY_OVERLAP,
    PayerLayer,
    RewardPolicy,
    SettlementPolicy,
    is_overlap_violation,
)
from subsidies.services import policy_next_version


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


ERR_REVERT_DISABLED = _(
    "政策不能回退到历史版本（回退不会恢复支付层级，也会产生重复的版本号）。"
    "如需恢复以前的规则，请新增一个政策版本并设定新的有效期。"
)


class VersionedAdmin(AdminRoleOnly, CountyChoiceMixin, SimpleHistoryAdmin):
    object_type = ""

    def get_object(self, request, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        if (
            obj is not None
            and request.method == "POST"
            and transaction.get_connection().in_atomic_block
        ):
            # changeform_view runs in a transaction: lock the row before the
            # form's clean() checks whether the policy was used, so a first
            # settlement cannot slip in between (it locks the row too)
            list(type(obj).objects.select_for_update().filter(pk=obj.pk).values_list("pk"))
        return obj

    def revert_disabled(self, request, obj=None):
        return True

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        """A past version may be viewed, never saved back."""
        if request.method == "POST":
            self.message_user(request, ERR_REVERT_DISABLED, level=messages.ERROR)
            return redirect(
                f"admin:{self.opts.app_label}_{self.opts.model_name}_history", object_id
            )
        return super().history_form_view(request, object_id, version_id, extra_context)

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except IntegrityError as exc:
            # clean() found no overlap, but another save committed one meanwhile
            if not is_overlap_violation(exc):
                raise
            self.message_user(request, ERR_POLICY_OVERLAP, level=messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def change_view(self, request, object_id, form_url="", extra_context=None):
        if request.method == "GET":
            obj = self.get_object(request, object_id)
            if obj is not None and obj.usage_span() is not None:
                self.message_user(request, obj.frozen_error(), level=messages.WARNING)
        return super().change_view(request, object_id, form_url, extra_context)

    def save_model(self, request, obj, form, change):
        if change:
            obj.version = policy_next_version(obj)
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
    """A duplicate order is refused with a clear message before Django's own
    check; the layers of a policy already used are not added to, changed or
    deleted."""

    def clean(self):
        policy = self.instance
        if policy.pk and policy.usage_span() is not None:
            touched = any(
                form.has_changed() or (self.can_delete and self._should_delete_form(form))
                for form in self.forms
            )
            if touched:
                raise ValidationError(policy.frozen_error())
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
