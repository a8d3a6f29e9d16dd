"""The permission helpers every app calls to scope reads by region.

Guardian is queried with ``accept_global_perms=False, with_superuser=False``:
neither a model-wide grant nor superuser status opens every patient.
"""

from __future__ import annotations

from functools import reduce
from operator import or_

from django.db.models import Q
from guardian.shortcuts import get_objects_for_user

from accounts.models import Region


def regions_with_perm(user, perm: str) -> list[Region]:
    """Regions on which the user (through their groups) holds ``perm``.

    Cached on the user object: a request asks several times.
    """
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return []
    cache = user.__dict__.setdefault("_scope_cache", {})
    if perm not in cache:
        qs = get_objects_for_user(
            user,
            perm,
            klass=Region,
            accept_global_perms=False,
            with_superuser=False,
            use_groups=True,
        )
        cache[perm] = list(qs.order_by("path"))
    return cache[perm]


def inside_q(regions: list[Region], *, path_field: str = "region__path") -> Q:
    """Q matching rows whose region lies inside any of ``regions`` (or none)."""
    if not regions:
        return Q(pk__in=[])
    # Drop regions nested inside another granted one: fewer OR branches.
    tops: list[Region] = []
    for r in sorted(regions, key=lambda r: len(r.path)):
        if not any(r.path.startswith(t.path) for t in tops):
            tops.append(r)
    return reduce(or_, (Q(**{f"{path_field}__startswith": r.path}) for r in tops))


def region_in_scope(user, perm: str, region: Region) -> bool:
    return any(region.path.startswith(r.path) for r in regions_with_perm(user, perm))


def forget_scope(user) -> None:
    """Drop cached scope after a grant changes (tests, role changes)."""
    user.__dict__.pop("_scope_cache", None)
    user.__dict__.pop("_role_cache", None)
