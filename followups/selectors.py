"""Reads of follow-ups, overdue lists, alerts and incidents for one user.

Every read starts from ``patients.selectors.patient_list_visible_to``: a
follow-up, alert or incident is visible when its patient is. Follow-ups are
health-only; an alert inbox is the user's organisation's; out of scope is
Http404 and audited.
"""

from __future__ import annotations

from datetime import date, timedelta

from django.core.exceptions import ValidationError
from django.db.models import (
    Case,
    Count,
    Exists,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.http import Http404
from django.utils import timezone

from accounts.models import Region
from accounts.roles import VIEW_AGGREGATES, VIEW_PATIENTS, fieldset_of
from accounts.scoping import inside_q, regions_with_perm
from accounts.selectors import organisation_of
from audit.services import audit_record
from followups import rules
from followups.models import Alert, AlertRecipient, AlertStatus, FollowUp, Outcome
from patients.models import Incident, Patient
from patients.selectors import overdue_q, patient_list_visible_to

HEALTH = "health"


def _audit_denied(user, object_type: str, pk, request=None) -> None:
    audit_record(
        actor=user,
        action="access.denied",
        object_type=object_type,
        object_id=str(pk)[:64],
        request=request,
    )


# ---------------------------------------------------------------- follow-ups


def followup_list_visible_to(*, user) -> QuerySet[FollowUp]:
    """Follow-ups of the patients the user sees; none unless health staff."""
    if fieldset_of(user) != HEALTH:
        return FollowUp.objects.none()
    patients = patient_list_visible_to(user=user)
    return FollowUp.objects.filter(patient__in=patients.values("pk")).select_related(
        "patient", "organisation", "recorded_by__staff"
    )


def followup_get_for_user(*, user, pk, request=None) -> FollowUp:
    """One visible follow-up, or Http404 (audited)."""
    fu = None
    try:
        fu = followup_list_visible_to(user=user).filter(pk=pk).first()
    except (ValueError, TypeError, ValidationError):
        fu = None
    if fu is None:
        _audit_denied(user, "followup", pk, request)
        raise Http404
    return fu


def followups_for_patient(*, user, patient: Patient, limit: int | None = None) -> list[FollowUp]:
    """The patient's follow-ups, newest first (the patient is already
    checked visible by the caller through ``patient_get_for_user``)."""
    qs = followup_list_visible_to(user=user).filter(patient=patient)
    qs = qs.order_by("-visit_date", "-created_at")
    return list(qs[:limit] if limit else qs)


def previous_completed_visit(patient_id, visit_date: date, *, exclude=None):
    """The latest completed visit on a day before ``visit_date`` (for the
    recheck rule: a visit the same day is no recheck), as
    ``rules.PreviousVisit``, or None. The patient is already in scope."""
    qs = FollowUp.objects.filter(
        patient_id=patient_id, outcome=Outcome.COMPLETED, visit_date__lt=visit_date
    )
    if exclude is not None:
        qs = qs.exclude(pk=exclude)
    row = qs.order_by("-visit_date", "-created_at").values("visit_date", "classification").first()
    if not row or not row["classification"]:
        return None
    return rules.PreviousVisit(row["visit_date"], row["classification"])


def death_dates(patient_ids) -> dict:
    """Patient id → the date of death recorded on its ``deceased`` follow-up
    (the latest such visit), for the system's own jobs (e.g. ending a
    guardian reward); patients without one are absent."""
    rows = (
        FollowUp.objects.filter(
            patient_id__in=list(patient_ids),
            outcome=Outcome.DECEASED,
            death_date__isnull=False,
        )
        .order_by("patient_id", "-visit_date", "-created_at")
        .values_list("patient_id", "death_date")
    )
    out: dict = {}
    for patient_id, death_date in rows:
        out.setdefault(patient_id, death_date)
    return out


def open_alert_kinds(patient_id, kinds) -> set[str]:
    """Which of ``kinds`` the patient has an alert of still unresolved for
    some recipient (one query; the follow-up save closes only those). The
    patient is already in scope."""
    return set(
        AlertRecipient.objects.filter(alert__patient_id=patient_id, alert__kind__in=list(kinds))
        .exclude(status=AlertStatus.RESOLVED)
        .order_by()
        .values_list("alert__kind", flat=True)
        .distinct()
    )


def attempts_since_last_contact(patient_id) -> list[tuple[date, str]]:
    """``(visit_date, outcome)`` of the patient's follow-ups from the day of
    the newest one that was not a miss (all of them when every one was),
    distinct: what ``rules.consecutive_misses`` needs. The patient is
    already in scope."""
    last_other = (
        FollowUp.objects.filter(patient_id=patient_id)
        .exclude(outcome=Outcome.NOT_REACHED)
        .order_by("-visit_date")
        .values("visit_date")[:1]
    )
    return list(
        FollowUp.objects.filter(
            patient_id=patient_id,
            visit_date__gte=Coalesce(Subquery(last_other), Value(date.min)),
        )
        .order_by()
        .values_list("visit_date", "outcome")
        .distinct()
    )


def high_risk_run_start(followup: FollowUp, *, threshold: int):
    """The id of the first visit of the run of consecutive completed
    follow-ups with risk ≥ ``threshold`` that ends with ``followup`` (in
    visit order: date, then time recorded); ``followup``'s own id when the
    completed visit before it was below the threshold. The patient is
    already in scope."""
    completed = FollowUp.objects.filter(
        patient_id=followup.patient_id, outcome=Outcome.COMPLETED
    ).exclude(pk=followup.pk)
    before = Q(visit_date__lt=followup.visit_date) | Q(
        visit_date=followup.visit_date, created_at__lt=followup.created_at
    )
    low = (
        completed.filter(before)
        .filter(Q(risk_level__lt=threshold) | Q(risk_level__isnull=True))
        .order_by("-visit_date", "-created_at")
        .values_list("visit_date", "created_at")
        .first()
    )
    run = completed.filter(before)
    if low is not None:
        run = run.filter(Q(visit_date__gt=low[0]) | Q(visit_date=low[0], created_at__gt=low[1]))
    first = run.order_by("visit_date", "created_at").values_list("pk", flat=True).first()
    return first or followup.pk


def last_completed_followup(*, user, patient: Patient) -> FollowUp | None:
    return (
        followup_list_visible_to(user=user)
        .filter(patient=patient, outcome=Outcome.COMPLETED)
        .order_by("-visit_date", "-created_at")
        .first()
    )


# ---------------------------------------------------------------- overdue


def overdue_count_for(user_or_region, today: date | None = None) -> int:
    """Overdue patients (active, next due date passed) in a user's scope or
    inside a region: the one definition the overdue list and the
    dashboards share (``patients.selectors.overdue_q``)."""
    if isinstance(user_or_region, Region):
        qs = Patient.objects.filter(region__path__startswith=user_or_region.path)
    else:
        qs = patient_list_visible_to(user=user_or_region)
    return qs.filter(overdue_q(today)).count()


def _misses_since_last_contact():
    """Misses in a row after the newest other outcome, one per calendar day
    (``rules.consecutive_misses``)."""
    last_other = (
        FollowUp.objects.filter(patient=OuterRef("patient_id"))
        .exclude(outcome=Outcome.NOT_REACHED)
        .order_by("-visit_date")
        .values("visit_date")[:1]
    )
    misses = (
        FollowUp.objects.filter(patient=OuterRef("pk"), outcome=Outcome.NOT_REACHED)
        .filter(visit_date__gt=Coalesce(Subquery(last_other), Value(date.min)))
        .order_by()
        .values("patient")
        .annotate(n=Count("visit_date", distinct=True))
        .values("n")
    )
    return Coalesce(Subquery(misses, output_field=IntegerField()), Value(0))


def overdue_list_for(
    *,
    user,
    village: str | None = None,
    risk_min: int | None = None,
    days_min: int | None = None,
    today: date | None = None,
) -> QuerySet[Patient]:
    """The user's overdue patients, highest risk first, then most days
    overdue; annotated with ``misses`` (days in a row on which attempts did
    not reach the patient) and ``missed_today``. Health only."""
    if fieldset_of(user) != HEALTH:
        return Patient.objects.none()
    today = today or timezone.localdate()
    qs = patient_list_visible_to(user=user).filter(overdue_q(today))
    if village:
        qs = qs.filter(region_id=village)
    if risk_min is not None:
        qs = qs.filter(risk_level__gte=risk_min)
    if days_min:
        qs = qs.filter(next_followup_due__lte=today - timedelta(days=days_min))
    missed_today = FollowUp.objects.filter(
        patient=OuterRef("pk"), outcome=Outcome.NOT_REACHED, visit_date=today
    )
    return (
        qs.select_related("region", "guardian")
        .annotate(misses=_misses_since_last_contact(), missed_today=Exists(missed_today))
        .order_by(F("risk_level").desc(nulls_last=True), "next_followup_due", "name")
    )


def villages_in_scope(*, user) -> QuerySet[Region]:
    """The villages the user may filter the overdue list by."""
    regions = regions_with_perm(user, VIEW_PATIENTS)
    return Region.objects.filter(inside_q(regions, path_field="path"), level="village").order_by(
        "code"
    )


# ---------------------------------------------------------------- alerts


def alert_inbox_for(
    *, user, kind: str | None = None, status: str | None = None
) -> QuerySet[AlertRecipient]:
    """The user's organisation's copies of alerts about patients the user
    sees, open first then newest. The status filter is this organisation's
    handling status."""
    org = organisation_of(user)
    if org is None or fieldset_of(user) is None:
        return AlertRecipient.objects.none()
    qs = AlertRecipient.objects.filter(
        organisation=org,
        alert__patient__in=patient_list_visible_to(user=user).values("pk"),
    )
    if kind:
        qs = qs.filter(alert__kind=kind)
    if status:
        qs = qs.filter(status=status)
    return qs.select_related(
        "alert__patient__region",
        "alert__patient__guardian",
        "alert__incident",
        "organisation",
        "acknowledged_by__staff",
        "resolved_by__staff",
    ).order_by(
        _status_rank(),
        F("alert__risk_level").desc(nulls_last=True),
        "-alert__raised_at",
        "pk",
    )


def _status_rank():
    return Case(
        When(status=AlertStatus.OPEN, then=Value(0)),
        When(status=AlertStatus.ACKNOWLEDGED, then=Value(1)),
        default=Value(2),
        output_field=IntegerField(),
    )


def alert_open_count_for(*, user) -> int:
    return alert_inbox_for(user=user, status=AlertStatus.OPEN).count()


def alert_recipient_get_for_user(
    *, user, alert_id, lock: bool = False, request=None
) -> AlertRecipient:
    """The user's organisation's copy of one alert, or Http404 (audited)."""
    row = None
    try:
        qs = alert_inbox_for(user=user).filter(alert_id=alert_id)
        if lock:
            qs = qs.select_for_update(of=("self",))
        row = qs.first()
    except (ValueError, TypeError, ValidationError):
        row = None
    if row is None:
        _audit_denied(user, "alert", alert_id, request)
        raise Http404
    return row


def can_oversee_alerts(user) -> bool:
    """County oversight (governance, prevention staff): every alert about
    the patients in their area, read-only, beside their own inbox."""
    return bool(regions_with_perm(user, VIEW_AGGREGATES)) and fieldset_of(user) is not None


def alert_area_list_for(*, user, kind: str | None = None, status: str | None = None):
    """All alerts about the patients the user sees (oversight), newest first."""
    if not can_oversee_alerts(user):
        return Alert.objects.none()
    qs = Alert.objects.filter(patient__in=patient_list_visible_to(user=user).values("pk"))
    if kind:
        qs = qs.filter(kind=kind)
    if status:
        qs = qs.filter(status=status)
    return qs.select_related("patient__region", "patient__guardian").order_by(
        _status_rank(), "-raised_at", "pk"
    )


def alert_recipients_of(alert_ids) -> dict:
    """Every organisation's handling of these alerts, by alert id (one query)."""
    out: dict = {}
    rows = (
        AlertRecipient.objects.filter(alert_id__in=list(alert_ids))
        .select_related("organisation", "acknowledged_by__staff", "resolved_by__staff")
        .order_by("escalated", "organisation__kind", "pk")
    )
    for row in rows:
        out.setdefault(row.alert_id, []).append(row)
    return out


def alerts_of_patient(*, user, patient: Patient, limit: int = 20) -> list[Alert]:
    """A patient's alerts for the patient page (visible patient)."""
    return list(
        Alert.objects.filter(patient=patient).order_by("-raised_at")[:limit]
        if patient_list_visible_to(user=user).filter(pk=patient.pk).exists()
        else []
    )


# ---------------------------------------------------------------- incidents


def incident_list_visible_to(*, user) -> QuerySet[Incident]:
    """Incidents of the patients the user sees (police, governance, health)."""
    if fieldset_of(user) not in ("police", "governance", HEALTH):
        return Incident.objects.none()
    return (
        Incident.objects.filter(patient__in=patient_list_visible_to(user=user).values("pk"))
        .select_related("patient__region", "organisation")
        .order_by("-occurred_on", "-created_at")
    )
