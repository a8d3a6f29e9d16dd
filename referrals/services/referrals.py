"""Referral lifecycle: create → accept | reject | cancel; accept → complete
(DOMAIN.md → Referrals). Each step is one transaction, an event row (who,
when, why), a history entry and an audit row."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import Organisation, OrganisationKind, Region, RegionLevel
from accounts.selectors import organisation_of
from audit.services import audit_record
from core.errors import DomainError
from core.history import history_stamp
from core.models import TaskRun
from patients.models import REGISTERED_STATUSES, Patient
from patients.selectors import can_manage_patient, patient_get_for_user
from referrals import conf, rules
from referrals.models import (
    OPEN_STATUSES,
    EnrolmentEndReason,
    Referral,
    ReferralAction,
    ReferralEvent,
    ReferralKind,
    ReferralStatus,
    RehabEnrolment,
)
from referrals.selectors import acts_for, is_health, referral_get_for_user

ERR_CANNOT_REFER = _("您无权为该患者发起此类转诊。")
ERR_KIND_TARGET = _("该类型的转诊不能发往此机构。")
ERR_SAME_ORGANISATION = _("接收机构不能与转出机构相同。")
ERR_NOT_REGISTERED = _("该患者已不在册，不能转诊。")
ERR_OPEN_EXISTS = _("该患者已有一个进行中的同类转诊。")
ERR_CONSENT = _("转介社区康复须经患者本人和监护人同意。")
ERR_SHEET = _("下转须附出院信息单，并填写出院日期。")
ERR_DISCHARGE_FUTURE = _("出院日期不能晚于今天。")
ERR_REASON_REQUIRED = _("请填写原因。")
ERR_STATE = _("该转诊当前状态为“%(status)s”，不能执行此操作。")
ERR_NOT_RECEIVER = _("只有接收机构可以执行此操作。")
ERR_NOT_SENDER = _("只有转出机构可以撤销转诊。")
ERR_TRANSFER_REGION = _("请选择迁入的村（居），且须在接收卫生院所在乡镇内。")
ERR_TRANSFER_SAME = _("患者已由该卫生院管理。")
ERR_GREEN_CHANNEL = _("绿色通道只用于社区康复期间病情复发的上转。")

KIND_TARGETS = {
    ReferralKind.UPWARD: (OrganisationKind.SPECIALIST_HOSPITAL,),
    ReferralKind.DOWNWARD: (OrganisationKind.HEALTH_CENTRE,),
    ReferralKind.REHAB: (OrganisationKind.REHAB_INSTITUTION,),
    ReferralKind.TRANSFER: (OrganisationKind.HEALTH_CENTRE,),
}


def _jsonable(value) -> object:
    """The discharge sheet as JSON: dates as ISO strings, ids as text."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _event(referral: Referral, action: str, *, by, note: str = "", organisation=None) -> None:
    ReferralEvent.objects.create(
        referral=referral,
        action=action,
        by=by if getattr(by, "is_authenticated", False) else None,
        by_name=_display_name(by),
        organisation=organisation or organisation_of(by),
        note=note,
    )


def _display_name(user) -> str:
    if not getattr(user, "is_authenticated", False):
        return ""
    profile = getattr(user, "staff", None)
    return (profile.display_name if profile else "") or user.get_username()


def _audit(referral: Referral, action: str, *, by, request=None, **detail) -> None:
    audit_record(
        actor=by,
        action=f"referral.{action}",
        object_type="referral",
        object_id=referral.pk,
        detail={"kind": referral.kind, "patient": str(referral.patient_id), **detail},
        request=request,
    )


def _check_can_refer(*, by, patient: Patient, kind: str, from_org: Organisation, enrolment) -> None:
    if kind == ReferralKind.UPWARD and enrolment is not None:
        # green channel: the rehab institution (or health staff) sends the patient back
        if acts_for(by, enrolment.institution.organisation_id) or can_manage_patient(by, patient):
            return
        raise PermissionDenied(ERR_CANNOT_REFER)
    if not is_health(by) or not can_manage_patient(by, patient):
        raise PermissionDenied(ERR_CANNOT_REFER)
    if kind == ReferralKind.DOWNWARD and from_org.kind != OrganisationKind.SPECIALIST_HOSPITAL:
        raise PermissionDenied(ERR_CANNOT_REFER)


def referral_create(*, patient_id, by, request=None, **kwargs) -> Referral:
    """Send a referral. Raises Http404 (patient out of scope), PermissionDenied
    (not the user's to send) or DomainError naming the field."""
    # scope first, outside the transaction: the audit row of a denied
    # access must survive the 404 (a rollback would erase it)
    patient_get_for_user(user=by, pk=patient_id, request=request)
    return _referral_create(patient_id=patient_id, by=by, request=request, **kwargs)


@transaction.atomic
def _referral_create(
    *,
    patient_id,
    kind: str,
    to_organisation: Organisation,
    reason: str,
    by,
    to_region: Region | None = None,
    to_address: str = "",
    discharge_sheet: dict | None = None,
    discharge_date: date | None = None,
    patient_consent: bool = False,
    guardian_consent: bool = False,
    consent_date: date | None = None,
    rehab_enrolment: RehabEnrolment | None = None,
    request=None,
) -> Referral:
    """Send a referral. Raises Http404 (patient out of scope), PermissionDenied
    (not the user's to send) or DomainError naming the field."""
    patient = patient_get_for_user(user=by, pk=patient_id, lock=True, request=request)
    if kind not in ReferralKind.values:
        raise DomainError(_("转诊类型无效。"), field="kind")
    from_org = (
        rehab_enrolment.institution.organisation
        if rehab_enrolment is not None
        else organisation_of(by)
    )
    if from_org is None:
        raise PermissionDenied(ERR_CANNOT_REFER)
    _check_can_refer(
        by=by, patient=patient, kind=kind, from_org=from_org, enrolment=rehab_enrolment
    )
    if not (reason or "").strip():
        raise DomainError(ERR_REASON_REQUIRED, field="reason")
    if patient.status not in REGISTERED_STATUSES:
        raise DomainError(ERR_NOT_REGISTERED, field="patient")
    if to_organisation.kind not in KIND_TARGETS[kind] or not to_organisation.is_active:
        raise DomainError(ERR_KIND_TARGET, field="to_organisation")
    if to_organisation.pk == from_org.pk:
        raise DomainError(ERR_SAME_ORGANISATION, field="to_organisation")
    if kind == ReferralKind.REHAB and not _active_institution(to_organisation):
        raise DomainError(ERR_KIND_TARGET, field="to_organisation")
    if Referral.objects.filter(patient=patient, kind=kind, status__in=OPEN_STATUSES).exists():
        raise DomainError(ERR_OPEN_EXISTS, field="kind")
    today = timezone.localdate()
    sheet: dict = {}
    if kind == ReferralKind.DOWNWARD:
        if not discharge_sheet and discharge_date is None:
            discharge_sheet = _recorded_discharge_sheet(by, patient)
        sheet = _jsonable(dict(discharge_sheet or {}))
        if discharge_date is None and sheet.get("discharge_date"):
            discharge_date = date.fromisoformat(str(sheet["discharge_date"])[:10])
        if discharge_date is None:
            raise DomainError(ERR_SHEET, field="discharge_sheet")
        if discharge_date > today:
            raise DomainError(ERR_DISCHARGE_FUTURE, field="discharge_date")
        sheet["discharge_date"] = discharge_date.isoformat()
    if kind == ReferralKind.REHAB and not (patient_consent and guardian_consent):
        raise DomainError(ERR_CONSENT, field="guardian_consent")
    if kind == ReferralKind.TRANSFER:
        if patient.managing_organisation_id == to_organisation.pk:
            raise DomainError(ERR_TRANSFER_SAME, field="to_organisation")
        if to_region is not None:
            _check_transfer_region(to_region, to_organisation)
    green = kind == ReferralKind.UPWARD and rehab_enrolment is not None
    referral = Referral(
        patient=patient,
        kind=kind,
        from_organisation=from_org,
        to_organisation=to_organisation,
        reason=reason.strip(),
        green_channel=green,
        rehab_enrolment=rehab_enrolment,
        to_region=to_region if kind == ReferralKind.TRANSFER else None,
        to_address=to_address if kind == ReferralKind.TRANSFER else "",
        discharge_date=discharge_date if kind == ReferralKind.DOWNWARD else None,
        discharge_sheet=sheet,
        patient_consent=bool(patient_consent),
        guardian_consent=bool(guardian_consent),
        consent_date=(consent_date or today) if kind == ReferralKind.REHAB else consent_date,
        accept_by=rules.accept_deadline(
            today,
            green_channel=green,
            days=conf.get("REFERRAL_ACCEPT_DAYS"),
            green_days=conf.get("REFERRAL_GREEN_CHANNEL_ACCEPT_DAYS"),
        ),
        created_by=by,
    )
    referral.full_clean(exclude=["patient", "from_organisation", "to_organisation", "to_region"])
    history_stamp(referral, user=by, reason=f"referral.{kind}.created")
    try:
        with transaction.atomic():
            referral.save(force_insert=True)
    except IntegrityError as exc:  # the partial unique index: one open per kind
        raise DomainError(ERR_OPEN_EXISTS, field="kind") from exc
    _event(referral, ReferralAction.CREATED, by=by, note=referral.reason, organisation=from_org)
    if kind == ReferralKind.DOWNWARD:
        # the first community follow-up is due within 14 days of discharge
        from followups.services.followups import patient_due_cap

        patient_due_cap(
            patient=patient,
            due_date=rules.first_followup_due(
                discharge_date, first_followup_days=conf.get("REFERRAL_FIRST_FOLLOWUP_DAYS")
            ),
            by=by,
            reason="referral.discharged",
        )
    _audit(referral, "create", by=by, request=request)
    return referral


def _recorded_discharge_sheet(user, patient: Patient) -> dict:
    """The discharge sheet the hospital already recorded for the patient's
    latest discharge (subsidies keeps admissions and discharges), so a
    downward referral need not repeat it; {} when there is none."""
    from subsidies.selectors import discharge_sheet_for, latest_discharge_for

    episode = latest_discharge_for(user=user, patient=patient)
    return discharge_sheet_for(episode=episode) if episode is not None else {}


def _active_institution(org: Organisation) -> bool:
    institution = getattr(org, "rehab_institution", None)
    return institution is not None and institution.is_active


def _check_transfer_region(region: Region, to_org: Organisation) -> None:
    if region.level != RegionLevel.VILLAGE or not region.path.startswith(to_org.region.path):
        raise DomainError(ERR_TRANSFER_REGION, field="to_region")


def _set_status(referral: Referral, status: str, *, by, reason: str) -> None:
    if not rules.can_transition(referral.status, status):
        raise DomainError(ERR_STATE % {"status": referral.get_status_display()}, field="status")
    referral.status = status
    referral.status_changed_at = timezone.now()
    referral.version += 1
    history_stamp(referral, user=by, reason=reason)


def referral_accept(*, referral_id, by, request=None, **kwargs):
    """The receiving organisation accepts. A ``transfer`` moves the patient,
    the due follow-up and the open alerts to the receiving health centre; a
    ``rehab`` referral takes a place at the institution."""
    # scope first, outside the transaction: the audit row of a denied
    # access must survive the 404 (a rollback would erase it)
    referral_get_for_user(user=by, pk=referral_id, request=request)
    return _referral_accept(referral_id=referral_id, by=by, request=request, **kwargs)


@transaction.atomic
def _referral_accept(
    *,
    referral_id,
    by,
    note: str = "",
    to_region: Region | None = None,
    to_address: str = "",
    request=None,
) -> Referral:
    """The receiving organisation accepts. A ``transfer`` moves the patient,
    the due follow-up and the open alerts to the receiving health centre; a
    ``rehab`` referral takes a place at the institution."""
    referral = referral_get_for_user(user=by, pk=referral_id, lock=True, request=request)
    if not acts_for(by, referral.to_organisation_id):
        raise PermissionDenied(ERR_NOT_RECEIVER)
    _set_status(referral, ReferralStatus.ACCEPTED, by=by, reason="referral.accepted")
    today = timezone.localdate()
    referral.complete_by = rules.complete_deadline(
        kind=referral.kind,
        accepted_on=today,
        discharge_date=referral.discharge_date,
        complete_days=conf.get("REFERRAL_COMPLETE_DAYS"),
        first_followup_days=conf.get("REFERRAL_FIRST_FOLLOWUP_DAYS"),
    )
    fields = ["status", "status_changed_at", "version", "complete_by"]
    if referral.kind == ReferralKind.TRANSFER:
        region = to_region or referral.to_region
        if region is None:
            raise DomainError(ERR_TRANSFER_REGION, field="to_region")
        _check_transfer_region(region, referral.to_organisation)
        referral.to_region = region
        referral.to_address = to_address or referral.to_address
        fields += ["to_region", "to_address"]
    referral.save(update_fields=fields)
    if referral.kind == ReferralKind.TRANSFER:
        _carry_out_transfer(referral, by=by, request=request)
    elif referral.kind == ReferralKind.REHAB:
        from referrals.services.rehab import enrol_locked

        patient = Patient.objects.select_for_update().get(pk=referral.patient_id)
        enrol_locked(
            patient=patient,
            institution=referral.to_organisation.rehab_institution,
            by=by,
            patient_consent=referral.patient_consent,
            guardian_consent=referral.guardian_consent,
            consent_date=referral.consent_date,
            referral=referral,
        )
    _event(referral, ReferralAction.ACCEPTED, by=by, note=note)
    _audit(referral, "accept", by=by, request=request)
    return referral


def _carry_out_transfer(referral: Referral, *, by, request=None) -> None:
    """Hand the patient to the receiving health centre; the register keeps
    the history of the move (simple-history on the patient, this referral)."""
    from followups.services.alerts import alerts_transfer
    from patients.services import patient_transfer, patient_update

    patient = Patient.objects.select_for_update().get(pk=referral.patient_id)
    previous = patient.managing_organisation or referral.from_organisation
    left = patient.region_id
    moved = patient_transfer(
        patient_id=patient.pk,
        to_region=referral.to_region,
        by=by,
        reason="referral.transfer",
    )
    if referral.to_address:
        patient_update(
            by=by,
            pk=patient.pk,
            data={"address": referral.to_address},
            expected_version=None,
            reason="referral.transfer",
            request=request,
        )
    # the due follow-up travels with the patient (next_followup_due is kept);
    # unresolved alerts go to the new area's health centre, police station
    # and governance office
    alerts_transfer(
        patient=moved,
        from_region_id=left,
        from_organisation=previous,
        to_organisation=referral.to_organisation,
    )


def referral_reject(*, referral_id, by, request=None, **kwargs):
    """The receiving organisation refuses, with a reason."""
    # scope first, outside the transaction: the audit row of a denied
    # access must survive the 404 (a rollback would erase it)
    referral_get_for_user(user=by, pk=referral_id, request=request)
    return _referral_reject(referral_id=referral_id, by=by, request=request, **kwargs)


@transaction.atomic
def _referral_reject(*, referral_id, by, reason: str, request=None) -> Referral:
    referral = referral_get_for_user(user=by, pk=referral_id, lock=True, request=request)
    if not acts_for(by, referral.to_organisation_id):
        raise PermissionDenied(ERR_NOT_RECEIVER)
    if not (reason or "").strip():
        raise DomainError(ERR_REASON_REQUIRED, field="reason")
    _set_status(referral, ReferralStatus.REJECTED, by=by, reason="referral.rejected")
    referral.save(update_fields=["status", "status_changed_at", "version"])
    _event(referral, ReferralAction.REJECTED, by=by, note=reason.strip())
    _audit(referral, "reject", by=by, request=request)
    return referral


def referral_complete(*, referral_id, by, request=None, **kwargs):
    """The receiving organisation completes an accepted referral."""
    # scope first, outside the transaction: the audit row of a denied
    # access must survive the 404 (a rollback would erase it)
    referral_get_for_user(user=by, pk=referral_id, request=request)
    return _referral_complete(referral_id=referral_id, by=by, request=request, **kwargs)


@transaction.atomic
def _referral_complete(*, referral_id, by, note: str = "", request=None) -> Referral:
    referral = referral_get_for_user(user=by, pk=referral_id, lock=True, request=request)
    if not acts_for(by, referral.to_organisation_id):
        raise PermissionDenied(ERR_NOT_RECEIVER)
    _set_status(referral, ReferralStatus.COMPLETED, by=by, reason="referral.completed")
    referral.save(update_fields=["status", "status_changed_at", "version"])
    _event(referral, ReferralAction.COMPLETED, by=by, note=(note or "").strip())
    _audit(referral, "complete", by=by, request=request)
    return referral


def referral_cancel(*, referral_id, by, request=None, **kwargs):
    """The sending organisation withdraws a pending referral, with a reason."""
    # scope first, outside the transaction: the audit row of a denied
    # access must survive the 404 (a rollback would erase it)
    referral_get_for_user(user=by, pk=referral_id, request=request)
    return _referral_cancel(referral_id=referral_id, by=by, request=request, **kwargs)


@transaction.atomic
def _referral_cancel(*, referral_id, by, reason: str, request=None) -> Referral:
    referral = referral_get_for_user(user=by, pk=referral_id, lock=True, request=request)
    if not (acts_for(by, referral.from_organisation_id) or referral.created_by_id == by.pk):
        raise PermissionDenied(ERR_NOT_SENDER)
    if not (reason or "").strip():
        raise DomainError(ERR_REASON_REQUIRED, field="reason")
    _set_status(referral, ReferralStatus.CANCELLED, by=by, reason="referral.cancelled")
    referral.save(update_fields=["status", "status_changed_at", "version"])
    _event(referral, ReferralAction.CANCELLED, by=by, note=reason.strip())
    _audit(referral, "cancel", by=by, request=request)
    return referral


def rehab_green_channel(*, enrolment_id, by, request=None, **kwargs):
    """Relapse during community rehab: back to hospital by a green-channel
    upward referral (accepted within a day); the rehab place is released."""
    # scope first, outside the transaction: the audit row of a denied
    # access must survive the 404 (a rollback would erase it)
    from referrals.selectors import rehab_enrolment_get_for_user

    rehab_enrolment_get_for_user(user=by, pk=enrolment_id, request=request)
    return _rehab_green_channel(enrolment_id=enrolment_id, by=by, request=request, **kwargs)


@transaction.atomic
def _rehab_green_channel(*, enrolment_id, to_organisation, reason: str, by, request=None):
    """Relapse during community rehab: back to hospital by a green-channel
    upward referral (accepted within a day); the rehab place is released."""
    from referrals.selectors import rehab_enrolment_get_for_user
    from referrals.services.rehab import end_locked

    enrolment = rehab_enrolment_get_for_user(user=by, pk=enrolment_id, lock=True, request=request)
    if enrolment.status != "active":
        raise DomainError(ERR_GREEN_CHANNEL)
    referral = referral_create(
        patient_id=enrolment.patient_id,
        kind=ReferralKind.UPWARD,
        to_organisation=to_organisation,
        reason=reason,
        by=by,
        rehab_enrolment=enrolment,
        request=request,
    )
    end_locked(
        enrolment=enrolment,
        by=by,
        reason=EnrolmentEndReason.RELAPSE,
        note=str(_("绿色通道上转")),
    )
    return referral


def referral_deadlines_scan(*, today: date | None = None) -> dict:
    """Daily: raise a ``referral`` alert to both ends for every deadline that
    passed (not accepted in time, not completed in time, no community
    follow-up within 14 days of discharge). Once per referral and condition."""
    from followups.services.alerts import alert_raise

    today = today or timezone.localdate()
    run = TaskRun.objects.create(job="referrals.deadlines", key=today.isoformat())
    first = conf.get("REFERRAL_FIRST_FOLLOWUP_DAYS")
    candidates = (
        Referral.objects.filter(status__in=OPEN_STATUSES)
        .filter(
            _q_pending_late(today)
            | _q_accepted_late(today)
            | _q_downward_late(today, first_followup_days=first)
        )
        .select_related("patient", "from_organisation", "to_organisation")
        .order_by("created_at")
    )
    raised = checked = 0
    errors = []
    for referral in candidates.iterator(chunk_size=500):
        checked += 1
        conditions = rules.overdue_conditions(
            kind=referral.kind,
            status=referral.status,
            accept_by=referral.accept_by,
            complete_by=referral.complete_by,
            discharge_date=referral.discharge_date,
            last_followup_date=referral.patient.last_followup_date,
            today=today,
            first_followup_days=first,
        )
        for condition in conditions:
            try:
                with transaction.atomic():
                    alert = alert_raise(
                        patient=referral.patient,
                        kind="referral",
                        episode=rules.alert_episode(referral.pk, condition),
                        referral_id=referral.pk,
                        recipients=[referral.from_organisation, referral.to_organisation],
                    )
            except Exception as exc:  # noqa: BLE001 - counted, the next scan retries
                errors.append({"referral": str(referral.pk), "error": type(exc).__name__})
                continue
            raised += alert is not None
    run.status = TaskRun.Status.SUCCEEDED if not errors else TaskRun.Status.FAILED
    run.finished_at = timezone.now()
    run.progress = run.total = checked
    run.counts = {"checked": checked, "alerts_raised": raised}
    run.errors = errors
    run.save()
    return run.counts


def _q_pending_late(today):
    return Q(status=ReferralStatus.PENDING, accept_by__lt=today)


def _q_accepted_late(today):
    return Q(status=ReferralStatus.ACCEPTED, complete_by__lt=today)


def _q_downward_late(today, *, first_followup_days: int):
    return Q(
        kind=ReferralKind.DOWNWARD,
        discharge_date__lt=today - timedelta(days=first_followup_days),
    )
