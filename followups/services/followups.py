"""Recording follow-ups (DOMAIN.md → Follow-ups).

One transaction per visit: the follow-up row, the patient's latest state
(risk, classification, dates, status), the alerts it raises or closes and
their outbox message commit together. The rules are ``followups.rules``;
this module only loads what they need and applies their answer.
"""

from __future__ import annotations

from datetime import date, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.roles import fieldset_of
from accounts.selectors import organisation_of
from audit.services import audit_record
from core.errors import DomainError, StaleVersion
from core.history import history_stamp
from followups import rules
from followups.models import AlertKind, FollowUp, Outcome
from followups.selectors import (
    attempts_since_last_contact,
    followup_get_for_user,
    high_risk_run_start,
    open_alert_kinds,
    previous_completed_visit,
)
from followups.services.alerts import alert_raise, alerts_close, lost_episode, risk_episode
from patients.models import Patient
from patients.selectors import can_manage_patient, patient_get_for_user

ERR_NOT_HEALTH = _("只有卫生健康部门的工作人员可以记录随访。")
ERR_NOT_MANAGER = _("该患者不在您的管理范围内，不能记录随访。")
ERR_NOT_REGISTERED = rules.ERR_NOT_REGISTERED
ERR_KEY_REUSED = _("该幂等键已用于另一名患者的随访记录。")
ERR_OUTCOME_FIXED = _("随访结果不能修改；如有误，请另行记录一次随访。")
ERR_STALE = _("该随访记录已被他人修改，请刷新后重新填写。")

# The national form's items a doctor fills in (model field names).
FORM_FIELDS = (
    "visit_date",
    "mode",
    "outcome",
    "contacts",
    "lost_reason",
    "death_date",
    "death_cause",
    "death_cause_detail",
    "risk_level",
    "symptoms",
    "symptoms_other",
    "insight",
    "sleep",
    "diet",
    "self_care",
    "housework",
    "work",
    "learning",
    "social",
    "dangerous_behaviours",
    "lock_status",
    "hospitalization",
    "last_discharge_date",
    "lab_tests",
    "medication_compliance",
    "adverse_reaction",
    "adverse_reaction_serious",
    "adverse_reaction_detail",
    "treatment_effect",
    "referral_suggested",
    "referral_reason",
    "referred_to",
    "medications",
    "medication_guidance",
    "rehab_measures",
    "rehab_measures_other",
)
# The doctor's decision on a completed visit (optional: the suggestion applies).
DECISION_FIELDS = ("classification", "classification_override_reason", "next_due_date")

# Which items belong to which outcome; the others are stored empty so a
# "not reached" record never carries stray clinical values.
COMMON_FIELDS = ("visit_date", "mode", "outcome", "contacts")
OUTCOME_FIELDS = {
    rules.COMPLETED: tuple(
        f
        for f in FORM_FIELDS
        if f not in COMMON_FIELDS
        and f not in ("lost_reason", "death_date", "death_cause", "death_cause_detail")
    ),
    rules.NOT_REACHED: (),
    rules.LOST: ("lost_reason",),
    rules.DECEASED: ("death_date", "death_cause", "death_cause_detail"),
}
EMPTY = {
    "contacts": list,
    "symptoms": list,
    "medications": list,
    "medication_guidance": list,
    "rehab_measures": list,
    "dangerous_behaviours": dict,
}
NULLABLE = ("death_date", "risk_level", "last_discharge_date")
BOOLEAN = ("adverse_reaction", "adverse_reaction_serious", "referral_suggested")

# Patient fields kept from the latest follow-up.
PATIENT_LATEST = (
    "risk_level",
    "classification",
    "last_followup_date",
    "next_followup_due",
    "in_hospital",
)


class FollowUpInvalid(DomainError):
    """The form was refused; ``errors`` maps every refused field to its message."""

    def __init__(self, errors: dict):
        field, message = next(iter(errors.items()))
        super().__init__(message, field=field)
        self.errors = errors


def _empty(field: str):
    if field in EMPTY:
        return EMPTY[field]()
    if field in NULLABLE:
        return None
    if field in BOOLEAN:
        return False
    return ""


def form_values(data: dict) -> dict:
    """The model values of one form: the outcome's own items, others empty."""
    outcome = data.get("outcome") or rules.COMPLETED
    own = set(COMMON_FIELDS) | set(OUTCOME_FIELDS.get(outcome, ()))
    values = {}
    for field in FORM_FIELDS:
        value = data.get(field) if field in own else None
        if value is None or (field in EMPTY and not value):
            value = _empty(field)
        values[field] = value
    values["outcome"] = outcome
    for key in ("medications", "medication_guidance"):
        values[key] = rules.normalise_medication_rows(values[key])
    values["dangerous_behaviours"] = {k: v for k, v in values["dangerous_behaviours"].items() if v}
    return values


def _validate(data: dict, *, birth_date=None) -> None:
    errors = rules.validate(data, today=timezone.localdate(), birth_date=birth_date)
    if errors:
        raise FollowUpInvalid(errors)


def _decide(fu: FollowUp, data: dict, *, exclude=None) -> None:
    """Classification and next due date of a completed visit (RuleError → DomainError)."""
    try:
        decision = rules.decide(
            visit_date=fu.visit_date,
            assessment=rules.Assessment.from_data(data),
            previous_completed=previous_completed_visit(
                fu.patient_id, fu.visit_date, exclude=exclude
            ),
            classification=data.get("classification") or None,
            override_reason=data.get("classification_override_reason") or "",
            next_due=data.get("next_due_date"),
        )
    except rules.RuleError as exc:
        raise FollowUpInvalid({exc.field or "non_field_errors": exc.message}) from exc
    fu.suggested_classification = decision.suggested_classification
    fu.classification = decision.classification
    fu.classification_override_reason = (
        (data.get("classification_override_reason") or "").strip()
        if decision.classification != decision.suggested_classification
        else ""
    )
    fu.suggested_next_due_date = decision.suggested_next_due_date
    fu.next_due_date = decision.next_due_date


def _check_writer(by, patient: Patient) -> None:
    if fieldset_of(by) != "health":
        raise DomainError(ERR_NOT_HEALTH)
    if not can_manage_patient(by, patient):
        raise DomainError(ERR_NOT_MANAGER)


def _replay(key, patient_id) -> FollowUp | None:
    if key is None:
        return None
    existing = FollowUp.objects.filter(idempotency_key=key).first()
    if existing is None:
        return None
    if str(existing.patient_id) != str(patient_id):
        raise DomainError(ERR_KEY_REUSED, field="idempotency_key")
    existing.replayed = True
    return existing


def followup_record(*, patient_id, by, data: dict, idempotency_key=None, request=None) -> FollowUp:
    """Record one follow-up and apply it to the patient, in one transaction.

    Raises Http404 (audited) outside the user's scope, DomainError /
    FollowUpInvalid when refused. With an idempotency key, a retry returns
    the first row (``replayed`` set) instead of writing a second one.
    """
    # Scope first, outside the transaction: the audit row of a denied
    # access must survive the 404 (a rollback would erase it).
    seen = patient_get_for_user(user=by, pk=patient_id, request=request)
    with transaction.atomic():
        return _record(
            seen=seen,
            by=by,
            data=data,
            idempotency_key=idempotency_key,
            request=request,
        )


def _lock_patient(seen: Patient) -> Patient:
    """The patient row locked for this transaction. ``seen`` was read through
    the scoped selector just before, so the scope is proven: the lock is a
    plain read by primary key (no second pass through the grant probes). The
    writer check that follows runs on the locked row."""
    patient = Patient.objects.select_for_update().get(pk=seen.pk)
    if patient.region_id == seen.region_id:
        patient.region = seen.region  # already loaded with the scoped read
    return patient


def _record(*, seen: Patient, by, data: dict, idempotency_key, request) -> FollowUp:
    patient_id = seen.pk
    replay = _replay(idempotency_key, patient_id)
    if replay is not None:
        return replay
    patient = _lock_patient(seen)
    _check_writer(by, patient)
    # the patient lock serialises retries of the same request: look again
    replay = _replay(idempotency_key, patient_id)
    if replay is not None:
        return replay
    if not rules.can_record(patient.status):
        raise DomainError(ERR_NOT_REGISTERED)
    _validate(data, birth_date=patient.birth_date)
    fu = FollowUp(
        patient=patient,
        organisation=organisation_of(by),
        recorded_by=by,
        idempotency_key=idempotency_key,
        **form_values(data),
    )
    if fu.outcome == Outcome.COMPLETED:
        _decide(fu, data)
    newer = FollowUp.objects.filter(patient=patient, visit_date__gt=fu.visit_date).exists()
    misses = 0
    if fu.outcome == Outcome.NOT_REACHED:
        fu.next_due_date = patient.next_followup_due  # the due date stays
        if not newer:  # one miss per calendar day (rules.consecutive_misses)
            misses = rules.consecutive_misses(
                [(fu.visit_date, fu.outcome), *attempts_since_last_contact(patient.pk)]
            )
    # Field validators only: a fresh UUID needs no uniqueness probe, and the
    # database enforces the risk-level check constraint on the insert.
    fu.full_clean(
        exclude=["patient", "organisation", "recorded_by", "idempotency_key"],
        validate_unique=False,
        validate_constraints=False,
    )
    history_stamp(fu, user=by, reason="followup.recorded")
    if idempotency_key is None:
        fu.save(force_insert=True)
    else:
        try:
            with transaction.atomic():
                fu.save(force_insert=True)
        except IntegrityError:
            replay = _replay(idempotency_key, patient_id)
            if replay is None:
                raise
            return replay
    _apply(patient=patient, fu=fu, newest=not newer, misses=misses, by=by)
    audit_record(
        actor=by,
        action="followup.create",
        object_type="patient",
        object_id=patient.pk,
        detail={"followup": str(fu.pk), "outcome": fu.outcome},
        request=request,
    )
    fu.replayed = False
    return fu


def _apply(*, patient: Patient, fu: FollowUp, newest: bool, misses: int, by) -> None:
    """Carry the visit onto the patient and raise or close its alerts."""
    changed: list[str] = []

    def put(field: str, value) -> None:
        if getattr(patient, field) != value:
            setattr(patient, field, value)
            changed.append(field)

    latest_completed = fu.outcome == Outcome.COMPLETED and (
        patient.last_followup_date is None or fu.visit_date >= patient.last_followup_date
    )
    # the patient's risk is its latest completed visit's: when that was high
    # too, this visit continues a run of high-risk visits (one risk alert)
    was_high = latest_completed and _high_risk(patient.risk_level)
    if latest_completed:
        put("risk_level", fu.risk_level)
        put("classification", fu.classification)
        put("last_followup_date", fu.visit_date)
        put("next_followup_due", fu.next_due_date)
        put("in_hospital", fu.hospitalization == "current")
    transition = rules.Transition(None)
    if newest or fu.outcome == Outcome.DECEASED:
        transition = rules.transition(status=patient.status, outcome=fu.outcome, misses=misses)
    if transition.status:
        put("status", transition.status)
        put("status_changed_at", timezone.now())
    if transition.ends_management:
        put("next_followup_due", None)
        put("in_hospital", False)
    if transition.lost_reason and not fu.lost_reason:
        fu.lost_reason = transition.lost_reason
        fu.save(update_fields=["lost_reason"])
    if changed:
        patient.version += 1
        history_stamp(patient, user=by, reason="followup.recorded")
        patient.save(update_fields=[*dict.fromkeys(changed), "version", "updated_at"])

    if latest_completed and fu.risk_level is not None:
        _raise_risk(patient, fu, run_continues=was_high)
        if was_high and not _high_risk(fu.risk_level):
            _close_risk(patient, fu, by=by)
    if transition.status == rules.STATUS_LOST:
        alert_raise(
            patient=patient,
            kind=AlertKind.LOST,
            episode=lost_episode(patient.status_changed_at),
            followup=fu,
        )
        # a lost patient is no longer "overdue": the lost alert takes over
        alerts_close(
            patient=patient, kinds=[AlertKind.OVERDUE], by=by, note=_("患者已失访，转为失访预警。")
        )
    note_done = _("已完成随访（%(date)s）。") % {"date": fu.visit_date.isoformat()}
    if latest_completed:
        # one probe; most visits have nothing open to close
        open_kinds = open_alert_kinds(patient.pk, [AlertKind.OVERDUE, AlertKind.INCIDENT])
        if AlertKind.OVERDUE in open_kinds:
            alerts_close(patient=patient, kinds=[AlertKind.OVERDUE], by=by, note=note_done)
        if AlertKind.INCIDENT in open_kinds:
            alerts_close(
                patient=patient,
                kinds=[AlertKind.INCIDENT],
                by=by,
                note=note_done,
                organisation_ids=[fu.organisation_id, patient.managing_organisation_id],
                incident_on_or_before=fu.visit_date,
            )
    if transition.status == rules.ACTIVE:
        alerts_close(
            patient=patient,
            kinds=[AlertKind.LOST],
            by=by,
            note=_("患者已找到，恢复随访（%(date)s）。") % {"date": fu.visit_date.isoformat()},
        )
    if transition.ends_management:
        alerts_close(
            patient=patient,
            kinds=[AlertKind.OVERDUE, AlertKind.LOST, AlertKind.RISK, AlertKind.INCIDENT],
            by=by,
            note=_("患者已死亡，结束管理。"),
        )


def _high_risk(level) -> bool:
    return level is not None and level >= settings.HIGH_RISK_MIN_LEVEL


def _raise_risk(patient: Patient, fu: FollowUp, *, run_continues: bool | None = None) -> None:
    """The risk alert of the run of high-risk visits ``fu`` belongs to
    (``alerts.risk_episode``): raised by the run's first visit, once.
    ``run_continues`` False says ``fu`` starts a run (no query); None looks."""
    if not _high_risk(fu.risk_level):
        return
    if run_continues is False:
        start = fu.pk
    else:
        start = high_risk_run_start(fu, threshold=settings.HIGH_RISK_MIN_LEVEL)
    alert_raise(
        patient=patient,
        kind=AlertKind.RISK,
        episode=risk_episode(start),
        risk_level=fu.risk_level,
        followup=fu,
        due_by=timezone.now() + RISK_ACK_WITHIN,
    )


def _close_risk(patient: Patient, fu: FollowUp, *, by) -> None:
    """The run of high-risk visits ended with ``fu``: resolve its alerts."""
    alerts_close(
        patient=patient,
        kinds=[AlertKind.RISK],
        by=by,
        note=_("系统：%(date)s随访的危险性评估为%(level)s级，已低于预警等级，预警自动办结。")
        % {"date": fu.visit_date.isoformat(), "level": fu.risk_level},
    )


RISK_ACK_WITHIN = timedelta(hours=rules.RISK_ACK_HOURS)


def followup_update(
    *, followup_id, by, data: dict, expected_version: int | None, request=None
) -> FollowUp:
    """Correct a recorded follow-up (optimistic locking on ``version``).

    The outcome is fixed; the classification and next due date are decided
    again, and the patient follows when this is its latest completed visit.
    Raises Http404 (audited) outside scope, StaleVersion when
    ``expected_version`` is not the stored one.
    """
    fu = followup_get_for_user(user=by, pk=followup_id, request=request)
    with transaction.atomic():
        return _update(fu, by=by, data=data, expected_version=expected_version, request=request)


def _update(fu: FollowUp, *, by, data: dict, expected_version, request) -> FollowUp:
    patient = patient_get_for_user(user=by, pk=fu.patient_id, lock=True, request=request)
    fu = FollowUp.objects.select_for_update().get(pk=fu.pk)
    fu.patient = patient
    _check_writer(by, patient)
    if expected_version is not None and expected_version != fu.version:
        raise StaleVersion(ERR_STALE)
    if "outcome" in data and data["outcome"] != fu.outcome:
        raise DomainError(ERR_OUTCOME_FIXED, field="outcome")
    merged = {f: getattr(fu, f) for f in FORM_FIELDS}
    # keep the doctor's earlier decisions unless this edit changes them
    overridden = fu.classification != fu.suggested_classification
    merged["classification"] = fu.classification if overridden else None
    merged["classification_override_reason"] = fu.classification_override_reason
    earlier = fu.next_due_date != fu.suggested_next_due_date
    merged["next_due_date"] = fu.next_due_date if earlier else None
    merged.update({k: v for k, v in data.items() if k in (*FORM_FIELDS, *DECISION_FIELDS)})
    merged["outcome"] = fu.outcome
    _validate(merged, birth_date=patient.birth_date)
    for key, value in form_values(merged).items():
        setattr(fu, key, value)
    if fu.outcome == Outcome.COMPLETED:
        _decide(fu, merged, exclude=fu.pk)
    was_latest = fu.outcome == Outcome.COMPLETED and fu.pk == _latest_completed_id(patient)
    fu.version += 1
    fu.full_clean(exclude=["patient", "organisation", "recorded_by", "idempotency_key"])
    history_stamp(fu, user=by, reason="followup.corrected")
    fu.save()
    if fu.outcome == Outcome.COMPLETED:
        latest_id = _latest_completed_id(patient)
        if was_latest or latest_id == fu.pk:
            # the patient follows its latest completed visit, whichever that
            # is now (a corrected date may have made another one the latest)
            latest = fu if latest_id == fu.pk else FollowUp.objects.get(pk=latest_id)
            _carry_latest(patient, latest, by=by)
            if latest.pk == fu.pk and _high_risk(fu.risk_level):
                _raise_risk(patient, fu)
            elif not _high_risk(latest.risk_level):  # corrected below the threshold
                _close_risk(patient, latest, by=by)
    audit_record(
        actor=by,
        action="followup.update",
        object_type="patient",
        object_id=patient.pk,
        detail={"followup": str(fu.pk)},
        request=request,
    )
    return fu


def _latest_completed_id(patient: Patient):
    return (
        FollowUp.objects.filter(patient=patient, outcome=Outcome.COMPLETED)
        .order_by("-visit_date", "-created_at")
        .values_list("pk", flat=True)
        .first()
    )


def _carry_latest(patient: Patient, fu: FollowUp, *, by) -> None:
    """Set the patient's latest-visit fields from ``fu`` (a correction)."""
    values = {
        "risk_level": fu.risk_level,
        "classification": fu.classification,
        "last_followup_date": fu.visit_date,
    }
    if patient.status != rules.STATUS_DECEASED:  # death ended management
        values["next_followup_due"] = fu.next_due_date
        values["in_hospital"] = fu.hospitalization == "current"
    changed = [k for k, v in values.items() if getattr(patient, k) != v]
    if not changed:
        return
    for key in changed:
        setattr(patient, key, values[key])
    patient.version += 1
    history_stamp(patient, user=by, reason="followup.corrected")
    patient.save(update_fields=[*changed, "version", "updated_at"])


def followup_not_reached(
    *, patient_id, by, mode: str = "phone", idempotency_key=None, request=None
) -> FollowUp:
    """One attempt today that did not reach the patient (the overdue list's
    one-click action); misses on a third day in a row make the patient lost.
    A replayed request (same ``idempotency_key``) records nothing new."""
    return followup_record(
        patient_id=patient_id,
        by=by,
        data={
            "visit_date": timezone.localdate(),
            "mode": mode,
            "outcome": rules.NOT_REACHED,
        },
        idempotency_key=idempotency_key,
        request=request,
    )


@transaction.atomic
def patient_due_cap(*, patient: Patient, due_date: date, by, reason: str) -> Patient:
    """Bring the patient's next follow-up forward to ``due_date`` at the latest
    (``next_followup_due = min(current, due_date)``), e.g. the first community
    follow-up within 14 days of discharge (DOMAIN.md → Referrals).

    The caller has checked scope; the row is locked here. ``reason`` is the
    history reason code (``referral.discharged``).
    """
    locked = Patient.objects.select_for_update().get(pk=patient.pk)
    current = locked.next_followup_due
    if current is not None and current <= due_date:
        return patient
    locked.next_followup_due = due_date
    locked.version += 1
    history_stamp(locked, user=by, reason=reason or "followup.due_capped")
    locked.save(update_fields=["next_followup_due", "version", "updated_at"])
    patient.next_followup_due = locked.next_followup_due
    patient.version = locked.version
    return patient
