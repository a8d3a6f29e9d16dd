"""Django admin: technical settings, and the administrative tree and
organisations of the county (README → Setting up a real county).

- The user form keeps the one-role rule (G4): a second role or scope group
  is refused before saving, instead of the group guard in accounts.signals
  raising mid-save. Staff accounts themselves are managed on the app's
  account pages (accounts.views), which go through accounts.services and
  its two-person rule; the user and group pages are closed to every account
  holding a role (the system admin above all), even one given Django's
  model permissions or superuser flag, so they are no way around it. Only a
  role-less superuser made at the console (``createsuperuser``: the
  operator, like ``manage.py shell``) reaches them.
- Regions and organisations are open to the system admin role (and to
  superusers), limited to the admin's own region and below; codes are
  checked by ``Region.clean()`` (accounts.rules). A region's code, level and
  parent are fixed once created (its path and its children's depend on
  them); nothing is deleted here: an organisation is deactivated.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group
from simple_history.admin import SimpleHistoryAdmin

from accounts import selectors
from accounts.models import Organisation, Region, RegionLevel, StaffProfile
from accounts.roles import ROLE_INFO, Role, role_of
from accounts.services import ERR_ONE_ROLE
from accounts.signals import SCOPE_GROUP_PREFIX
from audit.services import audit_record
from core.history import history_stamp

User = get_user_model()


class OneRoleUserChangeForm(UserAdmin.form):
    def clean_groups(self):
        groups = self.cleaned_data.get("groups") or []
        names = [g.name for g in groups]
        roles = [n for n in names if n in ROLE_INFO]
        scopes = [n for n in names if n.startswith(SCOPE_GROUP_PREFIX)]
        if len(roles) > 1 or len(scopes) > 1:
            raise forms.ValidationError(ERR_ONE_ROLE)
        return groups


class RolelessOnlyMixin:
    """Closed to anyone holding a role: accounts change through the
    services' two-person rule (SECURITY.md G4), not here."""

    def _open(self, request) -> bool:
        return role_of(request.user) is None

    def has_module_permission(self, request):
        return self._open(request) and super().has_module_permission(request)

    def has_view_permission(self, request, obj=None):
        return self._open(request) and super().has_view_permission(request, obj)

    def has_add_permission(self, request):
        return self._open(request) and super().has_add_permission(request)

    def has_change_permission(self, request, obj=None):
        return self._open(request) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self._open(request) and super().has_delete_permission(request, obj)


class OneRoleUserAdmin(RolelessOnlyMixin, UserAdmin):
    form = OneRoleUserChangeForm


class RolelessGroupAdmin(RolelessOnlyMixin, GroupAdmin):
    pass


if admin.site.is_registered(User):
    admin.site.unregister(User)
admin.site.register(User, OneRoleUserAdmin)
if admin.site.is_registered(Group):
    admin.site.unregister(Group)
admin.site.register(Group, RolelessGroupAdmin)


def _administers(request) -> bool:
    user = request.user
    return user.is_active and (user.is_superuser or role_of(user) == Role.ADMIN)


class SystemAdminMixin:
    """Open to the system admin role without model permissions: the role,
    not a per-user grant, decides (accounts.roles)."""

    def has_module_permission(self, request):
        return _administers(request)

    def has_view_permission(self, request, obj=None):
        return _administers(request)

    def has_add_permission(self, request):
        return _administers(request)

    def has_change_permission(self, request, obj=None):
        return _administers(request)

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Region)
class RegionAdmin(SystemAdminMixin, admin.ModelAdmin):
    list_display = ("code", "name", "level", "parent", "population")
    list_filter = ("level",)
    search_fields = ("code", "name")
    ordering = ("path",)
    fields = ("code", "name", "level", "parent", "population", "path")
    list_select_related = ("parent",)

    def get_queryset(self, request):
        return selectors.regions_administered_by(request.user).select_related("parent")

    def get_readonly_fields(self, request, obj=None):
        return ("path",) if obj is None else ("code", "level", "parent", "path")

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "parent":
            kwargs["queryset"] = (
                selectors.regions_administered_by(request.user)
                .exclude(level=RegionLevel.VILLAGE)
                .order_by("path")
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        audit_record(
            actor=request.user,
            action="admin.region_change" if change else "admin.region_create",
            object_type="region",
            object_id=obj.code,
            detail={"fields": sorted(form.changed_data)},
            request=request,
        )


@admin.register(Organisation)
class OrganisationAdmin(SystemAdminMixin, SimpleHistoryAdmin):
    list_display = ("name", "department", "kind", "region", "is_active")
    list_filter = ("department", "kind", "is_active")
    search_fields = ("name", "region__code", "region__name")
    fields = ("name", "department", "kind", "region", "phone", "is_active")
    ordering = ("region__path", "department", "name")

    def get_queryset(self, request):
        return selectors.organisations_administered_by(request.user)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "region":
            kwargs["queryset"] = selectors.regions_administered_by(request.user).order_by("path")
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request, obj, form, change):
        history_stamp(
            obj,
            user=request.user,
            reason="organisation.changed" if change else "organisation.created",
        )
        super().save_model(request, obj, form, change)
        audit_record(
            actor=request.user,
            action="admin.organisation_change" if change else "admin.organisation_create",
            object_type="organisation",
            object_id=obj.pk,
            detail={"fields": sorted(form.changed_data)},
            request=request,
        )


@admin.register(StaffProfile)
class StaffProfileAdmin(SystemAdminMixin, admin.ModelAdmin):
    """Read only: accounts are created and changed on the account pages."""

    list_display = ("user", "display_name", "organisation", "must_change_password")
    search_fields = ("user__username", "display_name", "organisation__name")
    list_select_related = ("user", "organisation")
    fields = ("user", "display_name", "organisation", "phone", "password_changed_at")
    readonly_fields = fields

    def get_queryset(self, request):
        qs = super().get_queryset(request).select_related("user", "organisation__region")
        if request.user.is_superuser:
            return qs
        region = selectors.admin_region(request.user)
        if region is None:
            return qs.none()
        return qs.filter(organisation__region__path__startswith=region.path)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
