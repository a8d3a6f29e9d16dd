"""Builders for follow-ups and incidents (through the services, as a doctor
or an officer would)."""

from __future__ import annotations

from datetime import date, timedelta

from django.utils import timezone

from followups.services.followups import followup_record
from followups.services.incidents import incident_record

MEDICATION = [{"drug": "利培酮", "morning_mg": "1", "evening_mg": "2"}]


def completed_form(**changes) -> dict:
    """A complete, calm ``completed`` form (suggests ``stable``)."""
    form = {
        "visit_date": timezone.localdate(),
        "mode": "home",
        "outcome": "completed",
        "contacts": ["patient", "family"],
        "risk_level": 0,
        "symptoms": [],
        "insight": "complete",
        "sleep": "good",
        "diet": "good",
        "self_care": "good",
        "housework": "good",
        "work": "not_applicable",
        "learning": "fair",
        "social": "fair",
        "dangerous_behaviours": {},
        "lock_status": "none",
        "hospitalization": "none",
        "medication_compliance": "regular",
        "treatment_effect": "improved",
        "medications": MEDICATION,
        "medication_guidance": MEDICATION,
        "rehab_measures": ["daily_living"],
    }
    form.update(changes)
    return form


def record(*, by, patient, days_ago: int = 0, **changes):
    """Record a completed follow-up (or any outcome via ``outcome=``)."""
    visit = timezone.localdate() - timedelta(days=days_ago)
    outcome = changes.get("outcome", "completed")
    if outcome == "completed":
        data = completed_form(visit_date=visit, **changes)
    else:
        data = {"visit_date": visit, "mode": "phone", **changes}
    return followup_record(patient_id=patient.pk, by=by, data=data)


def incident(*, by, patient, kind: str = "trouble", occurred_on: date | None = None, **changes):
    data = {
        "kind": kind,
        "occurred_on": occurred_on or timezone.localdate(),
        "place": "村口",
        "description": "与邻居发生冲突",
        "handling": "民警到场劝解",
        **changes,
    }
    return incident_record(patient_id=patient.pk, by=by, data=data)
