"""Roles are Groups; this module says what each role means.

A user holds exactly one role (a Group named by its code) and belongs to one
organisation. The *scope* is granted separately: a group per (organisation,
role) holds object permissions on the organisation's Region (DESIGN.md →
Permissions); see ``accounts.services.staff_assign``.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import models
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from accounts.models import Department

VIEW_PATIENTS = "accounts.view_patients_in"
MANAGE_PATIENTS = "accounts.manage_patients_in"
VIEW_AGGREGATES = "accounts.view_aggregates_in"


class Role(models.TextChoices):
    TOWNSHIP_DOCTOR = "township_doctor", _("乡镇（社区）医生")
    HOSPITAL_DOCTOR = "hospital_doctor", _("专科医院医生")
    PREVENTION_STAFF = "prevention_staff", _("精防机构人员")
    POLICE = "police", _("公安民警")
    GOVERNANCE = "governance", _("综治办")
    CIVIL_AFFAIRS = "civil_affairs", _("民政")
    DISABLED_FEDERATION = "disabled_federation", _("残联")
    FINANCE = "finance", _("财政")
    OFFICIAL = "official", _("县级领导")
    ADMIN = "admin", _("系统管理员")
    SECURITY_ADMIN = "security_admin", _("安全管理员")
    AUDIT_ADMIN = "audit_admin", _("审计管理员")


@dataclass(frozen=True)
class RoleInfo:
    department: str | None  # the department whose organisations may hold the role
    scope_perms: tuple[str, ...]  # object permissions on the organisation's region
    fieldset: str | None  # patients.fieldsets key; None = no patient rows at all
    home: str  # URL name of the role's home page
    admin_class: bool = False  # one of 三员: cannot read patients, shorter sessions


ROLE_INFO: dict[str, RoleInfo] = {
    Role.TOWNSHIP_DOCTOR: RoleInfo(
        Department.HEALTH, (VIEW_PATIENTS, MANAGE_PATIENTS), "health", "patients:list"
    ),
    Role.HOSPITAL_DOCTOR: RoleInfo(
        Department.HEALTH, (VIEW_PATIENTS, MANAGE_PATIENTS), "health", "patients:list"
    ),
    Role.PREVENTION_STAFF: RoleInfo(
        Department.HEALTH,
        (VIEW_PATIENTS, MANAGE_PATIENTS, VIEW_AGGREGATES),
        "health",
        "patients:list",
    ),
    Role.POLICE: RoleInfo(Department.POLICE, (VIEW_PATIENTS,), "police", "alerts:list"),
    Role.GOVERNANCE: RoleInfo(
        Department.GOVERNANCE,
        (VIEW_PATIENTS, VIEW_AGGREGATES),
        "governance",
        "alerts:list",
    ),
    Role.CIVIL_AFFAIRS: RoleInfo(
        Department.CIVIL_AFFAIRS, (VIEW_PATIENTS,), "civil_affairs", "patients:list"
    ),
    Role.DISABLED_FEDERATION: RoleInfo(
        Department.DISABLED_FEDERATION, (VIEW_PATIENTS,), "disabled_federation", "patients:list"
    ),
    Role.FINANCE: RoleInfo(Department.FINANCE, (VIEW_AGGREGATES,), None, "reports:dashboard"),
    Role.OFFICIAL: RoleInfo(None, (VIEW_AGGREGATES,), None, "reports:dashboard"),
    Role.ADMIN: RoleInfo(None, (), None, "accounts:staff-list", admin_class=True),
    Role.SECURITY_ADMIN: RoleInfo(None, (), None, "accounts:staff-list", admin_class=True),
    Role.AUDIT_ADMIN: RoleInfo(None, (), None, "audit:event-list", admin_class=True),
}

ADMIN_CLASS_ROLES = frozenset(r for r, info in ROLE_INFO.items() if info.admin_class)


def role_of(user) -> str | None:
    """The user's role code, cached on the user object for the request."""
    if not getattr(user, "is_authenticated", False):
        return None
    cached = getattr(user, "_role_cache", False)
    if cached is not False:
        return cached
    names = [g for g in user.groups.values_list("name", flat=True) if g in ROLE_INFO]
    role = names[0] if len(names) == 1 else None
    user._role_cache = role
    return role


def role_info(user) -> RoleInfo | None:
    role = role_of(user)
    return ROLE_INFO.get(role) if role else None


def fieldset_of(user) -> str | None:
    info = role_info(user)
    return info.fieldset if info else None


def home_url_for(user) -> str:
    info = role_info(user)
    if info is None:
        return reverse("accounts:no-role")
    return reverse(info.home)
