"""Hand-built indicator fixtures: patients registered through the patient
service, then their state and history set directly (the dates of a past
quarter cannot be entered through the follow-up form).

A patient's history is rewritten to match: one registration row dated on
``registered_on`` with the state given, as if nothing changed since
(``patient``); ``change`` moves the patient to a new state on a given day and
records it in the history on that day."""

from __future__ import annotations

from datetime import date, datetime, time

from django.utils import timezone

from followups.models import FollowUp
from patients.models import Incident, Patient
from patients.tests import factories as pf
from reports.rules import add_months


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
    registered_on = state.get("registered_on", p.registered_on)
    state.setdefault("status_changed_at", aware(registered_on, 8))
    Patient.objects.filter(pk=p.pk).update(**state)
    p.refresh_from_db()
    rows = Patient.history.filter(id=p.pk)
    assert rows.count() == 1, "a fresh registration has one history row"
    rows.update(history_date=aware(registered_on, 8), **_state_of(p))
    return p


_HISTORY_SKIP = {"id", "updated_at"}


def _state_of(p: Patient) -> dict:
    return {
        f.attname: getattr(p, f.attname)
        for f in Patient._meta.concrete_fields
        if f.attname not in _HISTORY_SKIP and f.attname not in {"id_number", "phone"}
    }


def change(patient: Patient, on: date, *, hour: int = 12, **state) -> Patient:
    """Give ``patient`` a new state on ``on`` and record it in the history as
    the services do (one history row with the whole new state)."""
    if "status" in state:
        state.setdefault("status_changed_at", aware(on, hour))
    Patient.objects.filter(pk=patient.pk).update(**state)
    patient.refresh_from_db()
    row = Patient.history.filter(id=patient.pk).order_by("-history_date", "-history_id").first()
    row.pk = None
    row.history_date = aware(on, hour)
    row.history_type = "~"
    for key, value in _state_of(patient).items():
        setattr(row, key, value)
    row.save()
    return patient


def followup(
    patient: Patient,
    visit: date,
    *,
    mode: str = "home",
    outcome: str = "completed",
    compliance: str = "regular",
    classification: str = "stable",
    risk: int | None = 0,
    next_due: date | None = None,
    hospitalization: str = "",
    dangerous: dict | None = None,
) -> FollowUp:
    """A follow-up as the form leaves it; a completed one's next due date is
    three months on unless given."""
    completed = outcome == "completed"
    if completed and next_due is None:
        next_due = add_months(visit, 3)
    return FollowUp.objects.create(
        patient=patient,
        visit_date=visit,
        mode=mode,
        outcome=outcome,
        medication_compliance=compliance if completed else "",
        classification=classification if completed else "",
        risk_level=risk if completed else None,
        next_due_date=next_due if completed else None,
        hospitalization=hospitalization,
        dangerous_behaviours=dangerous or {},
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
