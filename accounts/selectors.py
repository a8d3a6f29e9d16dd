"""Reads of regions, organisations and staff, and of the security records
(lockouts, partner keys, break-the-glass grants), each scoped to the user."""

from __future__ import annotations

import uuid

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db.models import Case, CharField, Count, Exists, OuterRef, Q, QuerySet, Subquery, When
from django.db.models.functions import Cast
from django.http import Http404
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.lockout import locked_failures
from accounts.models import (
    AccountRequest,
    AccountRequestStatus,
    ApiKey,
    ApiKeyStatus,
    BreakGlassGrant,
    Organisation,
    Region,
    StaffProfile,
)
from accounts.roles import ROLE_INFO, role_of
from audit.models import AuditEvent


def staff_profile_of(user) -> StaffProfile | None:
    """The user's profile with organisation and region, cached on the user."""
    if not getattr(user, "is_authenticated", False):
        return None
    if "_profile_cache" not in user.__dict__:
        user.__dict__["_profile_cache"] = (
            StaffProfile.objects.select_related("organisation__region")
            .filter(user_id=user.pk)
            .first()
        )
    return user.__dict__["_profile_cache"]


def organisation_of(user) -> Organisation | None:
    profile = staff_profile_of(user)
    return profile.organisation if profile else None


def region_list() -> QuerySet[Region]:
    return Region.objects.all()


def organisation_list() -> QuerySet[Organisation]:
    return Organisation.objects.select_related("region").filter(is_active=True)


def staff_list() -> QuerySet:
    User = get_user_model()
    return (
        User.objects.select_related("staff__organisation__region")
        .prefetch_related("groups")
        .filter(staff__isnull=False)
        .order_by("username")
    )


def regions_inside(region: Region, *, level: str | None = None) -> QuerySet[Region]:
    qs = Region.objects.filter(path__startswith=region.path)
    if level:
        qs = qs.filter(level=level)
    return qs


# --- the 三员 pages ------------------------------------------------------------


def admin_region(user) -> Region | None:
    """The region an admin-class user administers: their organisation's
    (a county admin manages the county's accounts, not another county's)."""
    role = role_of(user)
    if role is None or not ROLE_INFO[role].admin_class:
        return None
    profile = staff_profile_of(user)
    return profile.organisation.region if profile else None


def _in_region_q(region: Region | None, path_field: str) -> Q:
    if region is None:
        return Q(pk__in=[])
    return Q(**{f"{path_field}__startswith": region.path})


def organisations_managed_by(user) -> QuerySet[Organisation]:
    return (
        Organisation.objects.select_related("region")
        .filter(_in_region_q(admin_region(user), "region__path"), is_active=True)
        .order_by("region__path", "department", "name")
    )


def regions_administered_by(user) -> QuerySet[Region]:
    """Regions a system admin may see and edit in Django admin: their
    organisation's region and below; every region for a superuser."""
    if getattr(user, "is_superuser", False):
        return Region.objects.all()
    return Region.objects.filter(_in_region_q(admin_region(user), "path"))


def organisations_administered_by(user) -> QuerySet[Organisation]:
    """Organisations, active or not, in ``regions_administered_by(user)``."""
    qs = Organisation.objects.select_related("region")
    if getattr(user, "is_superuser", False):
        return qs
    return qs.filter(_in_region_q(admin_region(user), "region__path"))


def _role_subquery(user_field: str = "pk"):
    """The role code of the user in ``user_field`` (a user holds one role)."""
    return Subquery(
        Group.objects.filter(user=OuterRef(user_field), name__in=list(ROLE_INFO)).values("name")[:1]
    )


def staff_list_for(user, *, search: str = "", organisation_id=None, active=None) -> QuerySet:
    """People's accounts in the admin's region (service accounts of API keys
    are listed with their keys), with role and second-factor status."""
    User = get_user_model()
    qs = (
        User.objects.filter(
            _in_region_q(admin_region(user), "staff__organisation__region__path"),
            api_key__isnull=True,
        )
        .select_related("staff__organisation")
        .annotate(
            role=_role_subquery(),
            has_mfa=Exists(TOTPDevice.objects.filter(user=OuterRef("pk"), confirmed=True)),
        )
        .order_by("username")
    )
    search = (search or "").strip()
    if search:
        qs = qs.filter(Q(username__icontains=search) | Q(staff__display_name__icontains=search))
    if organisation_id:
        qs = qs.filter(staff__organisation_id=organisation_id)
    if active is not None:
        qs = qs.filter(is_active=active)
    return qs


def staff_get_for(user, pk):
    """One account in the admin's region, or Http404."""
    obj = staff_list_for(user).filter(pk=pk).first() if str(pk).isdigit() else None
    if obj is None:
        raise Http404
    return obj


def lockout_list_for(user) -> QuerySet:
    """Accounts in the security admin's region locked by failed logins now."""
    usernames = staff_list_for(user).values("username")
    return (
        locked_failures()
        .filter(username__in=usernames)
        .values("username")
        .distinct()
        .order_by("username")
    )


def apikey_list_for(user) -> QuerySet[ApiKey]:
    """Partner keys of organisations in the (security or system) admin's region."""
    return (
        ApiKey.objects.filter(_in_region_q(admin_region(user), "organisation__region__path"))
        .select_related("organisation", "created_by", "revoked_by", "custodian", "approved_by")
        .annotate(role=_role_subquery("user_id"))
        .order_by("-created_at")
    )


def apikey_list_of_custodian(user) -> QuerySet[ApiKey]:
    """The keys the user is custodian of, newest first."""
    return (
        ApiKey.objects.filter(custodian_id=user.pk)
        .select_related("organisation", "created_by", "approved_by")
        .annotate(role=_role_subquery("user_id"))
        .order_by("-created_at")
    )


def apikey_get_to_collect(user, pk) -> ApiKey:
    """An approved key waiting for this user, its custodian, or Http404."""
    obj = (
        apikey_list_of_custodian(user)
        .filter(pk=pk, status=ApiKeyStatus.APPROVED, revoked_at__isnull=True)
        .first()
        if str(pk).isdigit()
        else None
    )
    if obj is None:
        raise Http404
    return obj


def apikey_get_for(user, pk) -> ApiKey:
    obj = apikey_list_for(user).filter(pk=pk).first() if str(pk).isdigit() else None
    if obj is None:
        raise Http404
    return obj


# --- account requests (two-person rule) ---------------------------------------------


def account_request_list_for(user, *, pending_only: bool = False) -> QuerySet[AccountRequest]:
    """Requests about accounts of organisations in the admin's region:
    pending first, then the latest decided."""
    qs = AccountRequest.objects.filter(
        _in_region_q(admin_region(user), "organisation__region__path")
    )
    if pending_only:
        qs = qs.filter(status=AccountRequestStatus.PENDING)
    return qs.select_related("organisation__region", "requested_by", "decided_by").order_by(
        Case(When(status=AccountRequestStatus.PENDING, then=0), default=1),
        "-requested_at",
        "-id",
    )


def account_request_get_for(user, pk) -> AccountRequest:
    obj = account_request_list_for(user).filter(pk=pk).first() if str(pk).isdigit() else None
    if obj is None:
        raise Http404
    return obj


# --- break the glass ---------------------------------------------------------------


def breakglass_search_path(user) -> str | None:
    """Where a break-the-glass lookup searches (the DHIS2 "search scope"):
    the county of the user's organisation, or the organisation's own region
    when it sits above county level. None without an organisation."""
    profile = staff_profile_of(user)
    if profile is None:
        return None
    region = profile.organisation.region
    county = region.county_code
    if county is None:
        return region.path
    parts = [p for p in region.path.strip("/").split("/") if p]
    return "/" + "/".join(parts[: parts.index(county) + 1]) + "/"


def break_glass_grants_q(user) -> QuerySet[BreakGlassGrant]:
    """The user's active break-the-glass grants (patients.selectors reads
    their ``patient_id`` to open those records for reading)."""
    return BreakGlassGrant.objects.filter(user_id=user.pk, expires_at__gt=timezone.now())


def breakglass_list_of(user) -> QuerySet[BreakGlassGrant]:
    """The user's own grants, newest first."""
    return BreakGlassGrant.objects.filter(user_id=user.pk).order_by("-created_at")


def breakglass_list_for_review(user, *, pending_only: bool = False) -> QuerySet[BreakGlassGrant]:
    """Grants of requesters in the audit admin's region, with the number of
    times the requester opened the patient while the grant lasted."""
    uses = (
        AuditEvent.objects.filter(
            object_type="patient",
            object_id=OuterRef("patient_id_text"),
            actor_id=OuterRef("user_id"),
            at__gte=OuterRef("created_at"),
            at__lte=OuterRef("expires_at"),
        )
        .exclude(action__startswith="breakglass.")
        .order_by()
        .values("actor_id")
        .annotate(n=Count("id"))
        .values("n")
    )
    qs = (
        BreakGlassGrant.objects.filter(
            _in_region_q(admin_region(user), "user__staff__organisation__region__path")
        )
        .select_related("user__staff__organisation", "reviewed_by")
        .annotate(patient_id_text=Cast("patient_id", output_field=CharField()))
        .annotate(uses=Subquery(uses[:1]))
        .order_by("reviewed_at", "-created_at")
    )
    if pending_only:
        qs = qs.filter(reviewed_at__isnull=True)
    return qs


def breakglass_get_for_review(user, pk) -> BreakGlassGrant:
    try:
        pk = uuid.UUID(str(pk))
    except ValueError as exc:
        raise Http404 from exc
    obj = breakglass_list_for_review(user).filter(pk=pk).first()
    if obj is None:
        raise Http404
    return obj
