"""Hand-built indicator fixtures: patients registered through the patient
service, then their state and history set directly (the dates of a past
quarter cannot be entered through the follow-up form)."""

from __future__ import annotations

from datetime import date, datetime, time

from django.utils import timezone

from followups.models import FollowUp
from patients.models import Incident, Patient
from patients.tests import factories as pf


def aware(d: date, hour: int = 10) -> datetime:
    return timezone.make_aware(datetime.combine(d, time(hour)))


def patient(*, by, village: str, name: str, **state) -> Patient:
    """A registered patient whose register fields are then set to ``state``
    (``status_changed_at`` may be given as a date)."""
    p = pf.patient(by=by, village=village, name=name)
    if isinstance(state.get("status_changed_at"), date) and not isinstance(
        state["status_changed_at"], datetime
    ):
        state["status_changed_at"] = aware(state["status_changed_at"])
    if state:
        Patient.objects.filter(pk=p.pk).update(**state)
        p.refresh_from_db()
    return p


def followup(
    patient: Patient,
    visit: date,
    *,
    mode: str = "home",
    outcome: str = "completed",
    compliance: str = "regular",
    classification: str = "stable",
    risk: int | None = 0,
) -> FollowUp:
    completed = outcome == "completed"
    return FollowUp.objects.create(
        patient=patient,
        visit_date=visit,
        mode=mode,
        outcome=outcome,
        medication_compliance=compliance if completed else "",
        classification=classification if completed else "",
        risk_level=risk if completed else None,
    )


def incident(patient: Patient, kind: str, occurred_on: date, organisation) -> Incident:
    return Incident.objects.create(
        patient=patient,
        kind=kind,
        occurred_on=occurred_on,
        place="村口",
        description="测试",
        organisation=organisation,
    )
