"""Incidents (肇事肇祸) recorded by police (DOMAIN.md → Alerts: ``incident``).

The incident and its alert to the patient's health centre and governance
office commit together; the health centre must follow the patient up
within 14 days (its copy of the alert closes when it does). An incident in
which the guardian failed their duties suspends the guardian reward in the
same transaction (``subsidies.services.reward_incident_recorded``).
"""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.roles import fieldset_of
from accounts.selectors import organisation_of
from audit.services import audit_record
from core.errors import DomainError
from core.history import history_stamp
from followups import rules
from followups.models import AlertKind
from followups.services.alerts import alert_raise
from patients.models import Incident, IncidentKind
from patients.selectors import patient_get_for_user

ERR_NOT_POLICE = _("只有公安民警可以记录肇事肇祸。")
ERR_FUTURE_DATE = _("发生日期不能晚于今天。")
ERR_KIND = _("请选择类别。")
ERR_REQUIRED = _("请填写此项。")

# DOMAIN.md → Alerts: the health centre follows up within 14 days.
FOLLOW_UP_WITHIN = timedelta(days=rules.INCIDENT_FOLLOW_UP_DAYS)
INCIDENT_FIELDS = (
    "kind",
    "occurred_on",
    "place",
    "description",
    "handling",
    "guardian_failed_duties",
)


def incident_errors(data: dict, *, today) -> dict:
    """Refusals of one incident form, by field."""
    errors: dict = {}
    if data.get("kind") not in IncidentKind.values:
        errors["kind"] = ERR_KIND
    occurred = data.get("occurred_on")
    if not occurred:
        errors["occurred_on"] = ERR_REQUIRED
    elif occurred > today:
        errors["occurred_on"] = ERR_FUTURE_DATE
    for key in ("place", "description"):
        if not (data.get(key) or "").strip():
            errors[key] = ERR_REQUIRED
    return errors


def incident_record(*, patient_id, by, data: dict, request=None) -> Incident:
    """Record an incident about a patient in the officer's area and raise
    the ``incident`` alert, in one transaction. Http404 (audited) outside
    scope; DomainError naming the field when refused."""
    if fieldset_of(by) != "police":
        raise DomainError(ERR_NOT_POLICE)
    # scope first: the audit row of a denied access must survive the 404
    patient_get_for_user(user=by, pk=patient_id, request=request)
    with transaction.atomic():
        return _record(patient_id=patient_id, by=by, data=data, request=request)


def _record(*, patient_id, by, data: dict, request) -> Incident:
    patient = patient_get_for_user(user=by, pk=patient_id, lock=True, request=request)
    errors = incident_errors(data, today=timezone.localdate())
    if errors:
        field, message = next(iter(errors.items()))
        raise DomainError(message, field=field)
    incident = Incident(
        patient=patient,
        organisation=organisation_of(by),
        recorded_by=by,
        kind=data["kind"],
        occurred_on=data["occurred_on"],
        place=data["place"].strip(),
        description=data["description"].strip(),
        handling=(data.get("handling") or "").strip(),
        guardian_failed_duties=bool(data.get("guardian_failed_duties")),
    )
    incident.full_clean(exclude=["patient", "organisation", "recorded_by"])
    history_stamp(incident, user=by, reason="incident.recorded")
    incident.save(force_insert=True)
    alert_raise(
        patient=patient,
        kind=AlertKind.INCIDENT,
        episode=f"incident:{incident.pk}",
        incident=incident,
        due_by=timezone.now() + FOLLOW_UP_WITHIN,
    )
    if incident.guardian_failed_duties:
        # DOMAIN.md → Guardian reward: failed duties suspend the guardian's
        # award from the next month. Same transaction (the patient row is
        # locked): no moment where the incident is on record and the award
        # still active; the daily reward job stays the backstop. Imported
        # here: subsidies reads the register, followups only calls its hook.
        from subsidies.services import reward_incident_recorded

        reward_incident_recorded(incident_id=incident.pk)
    audit_record(
        actor=by,
        action="incident.create",
        object_type="patient",
        object_id=patient.pk,
        detail={"incident": str(incident.pk), "kind": incident.kind},
        request=request,
    )
    return incident
