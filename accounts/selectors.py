"""Reads of regions, organisations and staff."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db.models import QuerySet

from accounts.models import Organisation, Region, StaffProfile


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
