"""Django's admin site (superusers only) keeps the one-role rule (G4): the
user form refuses a second role or scope group before saving, instead of the
group guard in accounts.signals raising mid-save."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin

from accounts.roles import ROLE_INFO
from accounts.services import ERR_ONE_ROLE
from accounts.signals import SCOPE_GROUP_PREFIX

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


class OneRoleUserAdmin(UserAdmin):
    form = OneRoleUserChangeForm


if admin.site.is_registered(User):
    admin.site.unregister(User)
admin.site.register(User, OneRoleUserAdmin)
