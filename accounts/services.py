"""Writes of staff accounts and scope grants (admin pages, seed_demo)."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.auth.password_validation import validate_password
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from guardian.shortcuts import assign_perm

from accounts.models import Organisation, StaffProfile
from accounts.roles import ROLE_INFO, Role
from accounts.scoping import forget_scope
from audit.services import audit_record
from core.errors import DomainError
from core.history import history_stamp

ERR_ROLE_DEPARTMENT = _("该角色不能设在此部门的机构中。")
ERR_USERNAME_TAKEN = _("该用户名已被使用。")


def role_group(role: str) -> Group:
    group, _created = Group.objects.get_or_create(name=role)
    return group


def scope_group(*, organisation: Organisation, role: str) -> Group:
    """The group of one role in one organisation, holding its region grants."""
    name = f"scope:{organisation.pk}:{role}"
    group, created = Group.objects.get_or_create(name=name)
    if created:
        for perm in ROLE_INFO[role].scope_perms:
            assign_perm(perm, group, organisation.region)
    return group


def _check_role_fits(role: str, organisation: Organisation) -> None:
    info = ROLE_INFO[Role(role)]
    if info.department is not None and info.department != organisation.department:
        raise DomainError(ERR_ROLE_DEPARTMENT, field="role")


def _set_groups(user, *, organisation: Organisation, role: str) -> None:
    keep = [role_group(role), scope_group(organisation=organisation, role=role)]
    user.groups.set(keep)
    forget_scope(user)


@transaction.atomic
def staff_create(
    *,
    username: str,
    password: str,
    organisation: Organisation,
    role: str,
    display_name: str = "",
    phone: str = "",
    by=None,
    validate: bool = True,
):
    """Create an active account in one organisation with one role."""
    User = get_user_model()
    if User.objects.filter(username=username).exists():
        raise DomainError(ERR_USERNAME_TAKEN, field="username")
    _check_role_fits(role, organisation)
    user = User(username=username, is_active=True)
    if validate:
        validate_password(password, user)
    user.set_password(password)
    user.save()
    profile = StaffProfile(
        user=user,
        organisation=organisation,
        display_name=display_name,
        phone=phone,
        password_changed_at=timezone.now(),
    )
    history_stamp(profile, user=by, reason="staff.created")
    profile.save()
    _set_groups(user, organisation=organisation, role=role)
    audit_record(
        actor=by,
        action="admin.staff_create",
        object_type="user",
        object_id=user.pk,
        detail={"role": role, "organisation": organisation.pk},
    )
    return user


@transaction.atomic
def staff_change(*, user, organisation: Organisation, role: str, by):
    """Change a staff member's role and/or organisation; their sessions end."""
    _check_role_fits(role, organisation)
    profile = StaffProfile.objects.select_for_update().get(user=user)
    profile.organisation = organisation
    profile.session_epoch += 1
    history_stamp(profile, user=by, reason="staff.changed")
    profile.save(update_fields=["organisation", "session_epoch"])
    _set_groups(user, organisation=organisation, role=role)
    audit_record(
        actor=by,
        action="admin.staff_change",
        object_type="user",
        object_id=user.pk,
        detail={"role": role, "organisation": organisation.pk},
    )
    return user


@transaction.atomic
def staff_deactivate(*, user, by):
    user.is_active = False
    user.save(update_fields=["is_active"])
    StaffProfile.objects.filter(user=user).update(session_epoch=F("session_epoch") + 1)
    audit_record(actor=by, action="admin.staff_deactivate", object_type="user", object_id=user.pk)
    return user


@transaction.atomic
def staff_reactivate(*, user, by):
    user.is_active = True
    user.save(update_fields=["is_active"])
    audit_record(actor=by, action="admin.staff_reactivate", object_type="user", object_id=user.pk)
    return user


@transaction.atomic
def staff_set_password(*, user, password: str, by, validate: bool = True):
    """Set a new password (reset by an admin or changed by the user); sessions end."""
    if validate:
        validate_password(password, user)
    user.set_password(password)
    user.save(update_fields=["password"])
    StaffProfile.objects.filter(user=user).update(
        password_changed_at=timezone.now(),
        session_epoch=F("session_epoch") + 1,
    )
    audit_record(
        actor=by,
        action="admin.password_reset" if by and by.pk != user.pk else "auth.password_change",
        object_type="user",
        object_id=user.pk,
    )
    return user
