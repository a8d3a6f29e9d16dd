"""Reads of the audit log, scoped to the reader.

The audit admin of a county reads the rows of actors whose organisation lies
in the county, plus rows without an actor (failed logins, system jobs).
"""

from __future__ import annotations

from datetime import datetime, time, timedelta

from django.contrib.auth import get_user_model
from django.db.models import CharField, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Cast
from django.utils import timezone

from accounts.models import StaffProfile
from accounts.selectors import admin_region
from audit.models import AuditEvent
from audit.services import UNUSUAL_ACCESS_ACTION


def _local_day_start(day) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min), timezone.get_current_timezone())


def _staff_in_region(user) -> QuerySet | None:
    region = admin_region(user)
    if region is None:
        return None
    return StaffProfile.objects.filter(organisation__region__path__startswith=region.path)


def _organisation_name(actor_field: str = "actor_id"):
    return Subquery(
        StaffProfile.objects.filter(user_id=OuterRef(actor_field)).values("organisation__name")[:1]
    )


def event_list_for(
    user,
    *,
    actor: str = "",
    action: str = "",
    object_type: str = "",
    object_id: str = "",
    date_from=None,
    date_to=None,
) -> QuerySet[AuditEvent]:
    """Audit rows the (audit admin) user may read, newest first, filtered."""
    staff = _staff_in_region(user)
    if staff is None:
        return AuditEvent.objects.none()
    qs = AuditEvent.objects.filter(
        Q(actor_id__in=staff.values("user_id")) | Q(actor__isnull=True)
    ).annotate(organisation_name=_organisation_name())
    if actor:
        qs = qs.filter(actor_username=actor.strip())
    if action:
        qs = qs.filter(action__startswith=action.strip())
    if object_type:
        qs = qs.filter(object_type=object_type.strip())
    if object_id:
        qs = qs.filter(object_id=object_id.strip())
    if date_from:
        qs = qs.filter(at__gte=_local_day_start(date_from))
    if date_to:
        qs = qs.filter(at__lt=_local_day_start(date_to) + timedelta(days=1))
    return qs.order_by("-id")


def patient_access_list(patient) -> QuerySet[AuditEvent]:
    """Everyone who read, changed or was refused this patient's record
    (the caller has already checked the reader may see it)."""
    return (
        AuditEvent.objects.filter(object_type="patient", object_id=str(patient.pk))
        .annotate(
            organisation_name=_organisation_name(),
            display_name=Subquery(
                StaffProfile.objects.filter(user_id=OuterRef("actor_id")).values("display_name")[:1]
            ),
        )
        .order_by("-id")
    )


def unusual_access_list_for(user) -> QuerySet[AuditEvent]:
    """Unusual-access alerts about accounts in the audit admin's region."""
    staff = _staff_in_region(user)
    if staff is None:
        return AuditEvent.objects.none()
    ids = staff.annotate(uid=Cast("user_id", output_field=CharField())).values("uid")
    User = get_user_model()
    username = (
        User.objects.annotate(pk_text=Cast("pk", output_field=CharField()))
        .filter(pk_text=OuterRef("object_id"))
        .values("username")[:1]
    )
    return (
        AuditEvent.objects.filter(
            action=UNUSUAL_ACCESS_ACTION, object_type="user", object_id__in=ids
        )
        .annotate(flagged_username=Subquery(username))
        .order_by("-id")
    )
