"""Writes of the guardian reward and the one-stop settlement.

Each service is one transaction, checks the acting user's capability again
(``subsidies.selectors.require``), validates, stamps history with the user
and a reason code, and audits writes touching patient data. ``by=None``
means the system (a scheduled job).
"""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from decimal import Decimal

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import OrganisationKind, Region, RegionLevel
from accounts.roles import Role, role_of
from accounts.selectors import organisation_of
from audit.services import audit_record
from core.errors import DomainError
from core.history import history_stamp
from patients.models import Incident, Patient, Status
from patients.selectors import can_manage_patient, patient_get_for_user
from subsidies import rules
from subsidies import selectors as sel
from subsidies.models import (
    ERR_POLICY_OVERLAP,
    OPEN_AWARD_STATUSES,
    PAYABLE_AWARD_STATUSES,
    ApplicationSource,
    Award,
    AwardEvent,
    AwardStatus,
    AwardStep,
    BatchStatus,
    EndReason,
    Episode,
    EpisodeStatus,
    PayerLayer,
    RewardBatch,
    RewardBatchLine,
    RewardPolicy,
    Settlement,
    SettlementKind,
    SettlementLine,
    SettlementPolicy,
    is_overlap_violation,
)

# --- messages (tests reuse them) -------------------------------------------
ERR_NOT_ALLOWED = _("您无权办理此项业务。")
ERR_NO_REWARD_POLICY = _("患者所在县（区）目前没有生效的以奖代补政策。")
ERR_OPEN_AWARD = _("该患者已有办理中或发放中的以奖代补，不能重复申请。")
ERR_NOT_ELIGIBLE = _("不符合以奖代补条件：%(reasons)s")
ERR_WRONG_STATE = _("当前状态为“%(status)s”，不能办理此环节。")
ERR_SAME_PERSON = _("县级审批须由办理乡镇审核以外的人员办理。")
ERR_NOTE_REQUIRED = _("请填写理由。")
ERR_SOURCE = _("请选择有效的申请来源。")
ERR_APPLICANT_REQUIRED = _("村（居）委会推荐的，请填写推荐人姓名。")
ERR_REVIEW_NOT_DUE = _("年审须在到期日（%(date)s）前%(days)d天内办理。")
ERR_INCIDENT_NOT_FAILED = _("所选肇事肇祸记录未认定监护人未履行监护责任。")
ERR_END_DATE = _("终止日期不能晚于今天。")
ERR_END_REASON = _("请选择终止原因。")
ERR_PERIOD_FORMAT = _("期间格式应为2026Q1、2026H1、2026-03或2026。")
ERR_PERIOD_NOT_ENDED = _("该期间尚未结束，不能生成发放批次。")
ERR_PERIOD_FREQUENCY = _("本县（区）以奖代补%(frequency)s发放，请按相应期间生成批次。")
ERR_NO_POLICY_IN_PERIOD = _("该县（区）在此期间没有生效的以奖代补政策。")
ERR_REGION_NOT_COUNTY = _("发放批次须按县（区）生成。")
ERR_PAY_NOT_REVIEWED = _("批次须先审核，才能标记为已发放。")
ERR_REFERENCE_REQUIRED = _("请填写支付凭证号。")
ERR_NOT_HOSPITAL = _("只有精神专科医院可以办理住院和结算。")
ERR_ALREADY_IN_HOSPITAL = _("该患者已在院，请先办理出院。")
ERR_CASE_NUMBER_REQUIRED = _("请填写住院号。")
ERR_CASE_NUMBER_TAKEN = _("该住院号已被使用。")
ERR_DATE_FUTURE = _("日期不能晚于今天。")
ERR_ADMISSION_BEFORE_LAST_DISCHARGE = _("入院日期不能早于该患者上次出院日期（%(date)s）。")
ERR_NOT_IN_HOSPITAL = _("该次住院已办理出院。")
ERR_NOT_DISCHARGED = _("患者尚未出院，不能结算。")
ERR_ALREADY_SETTLED = _("本次住院已结算；如需更正，请先冲销原结算单。")
ERR_NO_SETTLEMENT_POLICY = _("患者所在县（区）在入院日期没有生效的一站式结算政策。")
ERR_ALREADY_REVERSED = _("该结算单已冲销。")
ERR_REVERSE_REVERSAL = _("冲销单不能再冲销。")
ERR_REASON_REQUIRED = _("请填写冲销原因。")
ERR_DISCHARGE_MISMATCH = _("该次住院已于%(date)s出院，与提交的出院日期不一致。")
ERR_SHEET_REQUIRED = _("请填写出院信息单的此项。")
ERR_MEDICATION_ROWS = _("出院用药最多填写3种。")
ERR_MEDICATION_DOSE = _("剂量须为不小于0的数字。")

SHEET_FIELDS = (
    "discharge_diagnosis",
    "discharge_diagnosis_detail",
    "inpatient_effect",
    "rehab_advice",
    "medication_advice",
    "medication_note",
    "attending_doctor",
    "discharge_note",
)
SHEET_REQUIRED = ("discharge_diagnosis", "inpatient_effect", "attending_doctor")

SOURCES_BY_ROLE = {
    Role.TOWNSHIP_DOCTOR: (ApplicationSource.HEALTH_CENTRE, ApplicationSource.VILLAGE),
    Role.GOVERNANCE: (ApplicationSource.GOVERNANCE, ApplicationSource.VILLAGE),
}


def _require(by, cap: str) -> None:
    try:
        sel.require(by, cap)
    except PermissionDenied:
        raise PermissionDenied(ERR_NOT_ALLOWED) from None


def _today(today: date | None) -> date:
    return today or timezone.localdate()


def _state_error(award: Award) -> DomainError:
    return DomainError(ERR_WRONG_STATE % {"status": award.get_status_display()}, code="state")


def _domain_from_rule(exc: rules.RuleError) -> DomainError:
    return DomainError(exc.message, field=exc.field)


# foreign keys are set by the services from rows they already hold
AWARD_FK_FIELDS = [
    "patient",
    "region",
    "policy",
    "suspended_incident",
    "applied_by",
    "reviewed_by",
    "approved_by",
]


def _save_award(award: Award, *, by, reason: str, fields: list[str] | None = None) -> None:
    award.version += 1
    award.full_clean(exclude=AWARD_FK_FIELDS)
    history_stamp(award, user=by, reason=reason)
    if fields is None:
        award.save()
    else:
        award.save(update_fields=[*fields, "version"])


def _event(award: Award, step: str, *, by, note: str = "") -> AwardEvent:
    return AwardEvent.objects.create(
        award=award, step=step, by=by, organisation=organisation_of(by) if by else None, note=note
    )


def _audit(by, action: str, patient_id, request=None, **detail) -> None:
    audit_record(
        actor=by,
        action=action,
        object_type="patient",
        object_id=patient_id,
        detail={k: (str(v) if isinstance(v, Decimal | date) else v) for k, v in detail.items()},
        request=request,
    )


def record_view(*, user, patient_id, action: str, request=None, **detail) -> None:
    """Append a read of reward/episode/settlement data of a patient to the audit log."""
    _audit(user, action, patient_id, request, **detail)


# ==========================================================================
# Guardian reward
# ==========================================================================


def reward_eligibility(*, patient: Patient, today: date | None = None):
    """(policy, reasons) for a patient already read through the selectors."""
    today = _today(today)
    policy = sel.reward_policy_in_force(county_code=patient.region.county_code, on=today)
    if policy is None:
        return None, [rules.Reason("no_policy", str(ERR_NO_REWARD_POLICY))]
    facts = sel.reward_facts_for(patient)
    return policy, rules.reward_ineligibility(facts, policy.rule(), today=today)


@transaction.atomic
def award_apply(
    *,
    patient_id,
    by,
    source: str,
    applicant_name: str = "",
    note: str = "",
    today: date | None = None,
    request=None,
) -> Award:
    """Apply for the guardian reward of a patient (health centre, village or governance)."""
    _require(by, sel.REWARD_APPLY)
    today = _today(today)
    patient = patient_get_for_user(user=by, pk=patient_id, lock=True, request=request)
    role = role_of(by)
    if role == Role.TOWNSHIP_DOCTOR and not can_manage_patient(by, patient):
        raise PermissionDenied(ERR_NOT_ALLOWED)
    if source not in SOURCES_BY_ROLE.get(role, ()):
        raise DomainError(ERR_SOURCE, field="source")
    applicant_name = (applicant_name or "").strip()
    if source == ApplicationSource.VILLAGE and not applicant_name:
        raise DomainError(ERR_APPLICANT_REQUIRED, field="applicant_name")
    if Award.objects.filter(patient=patient, status__in=OPEN_AWARD_STATUSES).exists():
        raise DomainError(ERR_OPEN_AWARD)
    policy, reasons = reward_eligibility(patient=patient, today=today)
    if policy is None:
        raise DomainError(ERR_NO_REWARD_POLICY)
    if reasons:
        raise DomainError(ERR_NOT_ELIGIBLE % {"reasons": "；".join(r.message for r in reasons)})
    guardian = patient.guardian
    facts = sel.reward_facts_for(patient)
    award = Award(
        patient=patient,
        region=patient.region,
        policy=policy,
        guardian_name=guardian.name,
        guardian_relation=guardian.relation,
        source=source,
        applicant_name=applicant_name,
        application_note=note,
        applied_on=today,
        applied_by=by,
        eligibility_snapshot={
            "police_registered": facts.police_registered,
            "risk_level": facts.risk_level,
            "incidents": sorted(facts.incident_kinds),
            "responsibility_letter": facts.responsibility_letter,
            "assistant_guardians": facts.assistant_guardians,
            "policy": policy.pk,
            "policy_version": policy.version,
        },
        version=0,
    )
    _save_award(award, by=by, reason="reward.applied")
    _event(award, AwardStep.APPLIED, by=by, note=note)
    _audit(by, "reward.apply", patient.pk, request, award=award.pk)
    return award


@transaction.atomic
def award_township_review(*, award_id, by, approve: bool, note: str = "", request=None) -> Award:
    """Township review (governance office): pass on to the county or refuse."""
    _require(by, sel.REWARD_TOWNSHIP_REVIEW)
    award = sel.award_get_for_user(user=by, pk=award_id, lock=True, request=request)
    if award.status != AwardStatus.APPLIED:
        raise _state_error(award)
    note = (note or "").strip()
    now = timezone.now()
    if approve:
        award.status = AwardStatus.REVIEWED
        award.reviewed_by, award.reviewed_at = by, now
        _save_award(
            award,
            by=by,
            reason="reward.township_approved",
            fields=["status", "reviewed_by", "reviewed_at"],
        )
        _event(award, AwardStep.TOWNSHIP_APPROVED, by=by, note=note)
    else:
        if not note:
            raise DomainError(ERR_NOTE_REQUIRED, field="note")
        award.status = AwardStatus.REJECTED
        award.reviewed_by, award.reviewed_at, award.closing_note = by, now, note
        _save_award(
            award,
            by=by,
            reason="reward.township_rejected",
            fields=["status", "reviewed_by", "reviewed_at", "closing_note"],
        )
        _event(award, AwardStep.TOWNSHIP_REJECTED, by=by, note=note)
    _audit(by, "reward.township_review", award.patient_id, request, award=award.pk, approve=approve)
    return award


@transaction.atomic
def award_county_decide(
    *, award_id, by, approve: bool, note: str = "", today: date | None = None, request=None
) -> Award:
    """County approval (governance or civil affairs): start the notice period or refuse."""
    _require(by, sel.REWARD_COUNTY_APPROVE)
    today = _today(today)
    award = sel.award_get_for_user(user=by, pk=award_id, lock=True, request=request)
    if award.status != AwardStatus.REVIEWED:
        raise _state_error(award)
    if award.reviewed_by_id == by.pk:
        raise DomainError(ERR_SAME_PERSON)
    note = (note or "").strip()
    if approve:
        _policy, reasons = reward_eligibility(patient=award.patient, today=today)
        if reasons:
            raise DomainError(ERR_NOT_ELIGIBLE % {"reasons": "；".join(r.message for r in reasons)})
        award.status = AwardStatus.NOTICE
        award.approved_by, award.approved_at = by, timezone.now()
        award.notice_until = today + timedelta(days=award.policy.notice_days)
        _save_award(
            award,
            by=by,
            reason="reward.county_approved",
            fields=["status", "approved_by", "approved_at", "notice_until"],
        )
        _event(award, AwardStep.COUNTY_APPROVED, by=by, note=note)
        if award.policy.notice_days == 0:
            _activate(award, today=today)
    else:
        if not note:
            raise DomainError(ERR_NOTE_REQUIRED, field="note")
        award.status = AwardStatus.REJECTED
        award.approved_by, award.approved_at, award.closing_note = by, timezone.now(), note
        _save_award(
            award,
            by=by,
            reason="reward.county_rejected",
            fields=["status", "approved_by", "approved_at", "closing_note"],
        )
        _event(award, AwardStep.COUNTY_REJECTED, by=by, note=note)
    _audit(by, "reward.county_decide", award.patient_id, request, award=award.pk, approve=approve)
    return award


@transaction.atomic
def award_notice_objection(*, award_id, by, note: str, request=None) -> Award:
    """An objection upheld during the public notice: the award is not granted."""
    _require(by, sel.REWARD_COUNTY_APPROVE)
    award = sel.award_get_for_user(user=by, pk=award_id, lock=True, request=request)
    if award.status != AwardStatus.NOTICE:
        raise _state_error(award)
    note = (note or "").strip()
    if not note:
        raise DomainError(ERR_NOTE_REQUIRED, field="note")
    award.status, award.closing_note = AwardStatus.REJECTED, note
    _save_award(award, by=by, reason="reward.notice_objection", fields=["status", "closing_note"])
    _event(award, AwardStep.NOTICE_OBJECTION, by=by, note=note)
    _audit(by, "reward.notice_objection", award.patient_id, request, award=award.pk)
    return award


def _activate(award: Award, *, today: date) -> None:
    start = min(award.notice_until + timedelta(days=1), today) if award.notice_until else today
    award.status = AwardStatus.ACTIVE
    award.active_from = start
    award.valid_until = rules.year_after(start)
    _save_award(
        award, by=None, reason="reward.activated", fields=["status", "active_from", "valid_until"]
    )
    _event(award, AwardStep.ACTIVATED, by=None)


@transaction.atomic
def awards_activate_due(*, today: date | None = None) -> int:
    """Awards whose notice period has ended without objection become active."""
    today = _today(today)
    due = Award.objects.select_for_update().filter(
        status=AwardStatus.NOTICE, notice_until__lt=today
    )
    n = 0
    for award in due:
        _activate(award, today=today)
        n += 1
    return n


@transaction.atomic
def award_yearly_review(
    *, award_id, by, renew: bool, note: str = "", today: date | None = None, request=None
) -> Award:
    """Yearly review: renew for a year (still eligible) or end the award."""
    _require(by, sel.REWARD_MANAGE)
    today = _today(today)
    award = sel.award_get_for_user(user=by, pk=award_id, lock=True, request=request)
    if award.status != AwardStatus.ACTIVE:
        raise _state_error(award)
    opens = award.valid_until - timedelta(days=sel.REVIEW_WINDOW_DAYS)
    if today < opens:
        raise DomainError(
            ERR_REVIEW_NOT_DUE
            % {"date": award.valid_until.isoformat(), "days": sel.REVIEW_WINDOW_DAYS}
        )
    note = (note or "").strip()
    if renew:
        _policy, reasons = reward_eligibility(patient=award.patient, today=today)
        if reasons:
            raise DomainError(ERR_NOT_ELIGIBLE % {"reasons": "；".join(r.message for r in reasons)})
        # from the old due date, even when the review comes late: the months
        # in between become payable again (the next batch pays them as arrears)
        award.valid_until = rules.renewed_until(award.valid_until)
        _save_award(award, by=by, reason="reward.renewed", fields=["valid_until"])
        _event(award, AwardStep.RENEWED, by=by, note=note)
    else:
        if not note:
            raise DomainError(ERR_NOTE_REQUIRED, field="note")
        _end(award, reason=EndReason.REVIEW_FAILED, on=today, by=by, note=note)
    _audit(by, "reward.yearly_review", award.patient_id, request, award=award.pk, renew=renew)
    return award


def _suspend(award: Award, incident: Incident, *, by, note: str = "") -> None:
    bar = award.policy.reapply_bar_months
    award.status = AwardStatus.SUSPENDED
    award.stop_from = rules.next_month_start(incident.occurred_on)
    award.suspended_incident = incident
    award.reapply_from = rules.add_months(incident.occurred_on, bar)
    award.closing_note = note
    _save_award(
        award,
        by=by,
        reason="reward.suspended",
        fields=["status", "stop_from", "suspended_incident", "reapply_from", "closing_note"],
    )
    _event(
        award,
        AwardStep.SUSPENDED,
        by=by,
        note=note
        or str(
            _("%(date)s发生%(kind)s，监护人未履行监护责任；次月起停发，%(until)s前不得重新申请。")
            % {
                "date": incident.occurred_on.isoformat(),
                "kind": incident.get_kind_display(),
                "until": award.reapply_from.isoformat(),
            }
        ),
    )


@transaction.atomic
def award_suspend(*, award_id, incident_id, by, note: str = "", request=None) -> Award:
    """Suspend an award after an incident in which the guardian failed their duties."""
    _require(by, sel.REWARD_MANAGE)
    award = sel.award_get_for_user(user=by, pk=award_id, lock=True, request=request)
    if award.status not in OPEN_AWARD_STATUSES:
        raise _state_error(award)
    incident = Incident.objects.filter(pk=incident_id, patient_id=award.patient_id).first()
    if incident is None or not incident.guardian_failed_duties:
        raise DomainError(ERR_INCIDENT_NOT_FAILED, field="incident")
    _suspend(award, incident, by=by, note=(note or "").strip())
    _audit(by, "reward.suspend", award.patient_id, request, award=award.pk)
    return award


def _relevant_failed_incident(award: Award) -> Incident | None:
    """The latest failed-duty incident within the bar before the application, or after it."""
    since = rules.add_months(award.applied_on, -award.policy.reapply_bar_months)
    return (
        Incident.objects.filter(
            patient_id=award.patient_id, guardian_failed_duties=True, occurred_on__gt=since
        )
        .order_by("-occurred_on")
        .first()
    )


@transaction.atomic
def reward_incident_recorded(*, incident_id) -> Award | None:
    """Hook for the incident service: suspend the patient's open award, if any."""
    incident = Incident.objects.filter(pk=incident_id).first()
    if incident is None or not incident.guardian_failed_duties:
        return None
    award = (
        Award.objects.select_for_update()
        .select_related("policy")
        .filter(patient_id=incident.patient_id, status__in=OPEN_AWARD_STATUSES)
        .first()
    )
    relevant = _relevant_failed_incident(award) if award is not None else None
    if relevant is None:
        return None
    _suspend(award, relevant, by=None)
    return award


@transaction.atomic
def awards_apply_incidents(*, today: date | None = None) -> int:
    """Suspend open awards of patients with a failed-duty incident (daily, idempotent)."""
    failed = Incident.objects.filter(patient=OuterRef("patient_id"), guardian_failed_duties=True)
    awards = (
        Award.objects.select_for_update(of=("self",))
        .select_related("policy")
        .filter(Exists(failed), status__in=OPEN_AWARD_STATUSES)
    )
    n = 0
    for award in list(awards):
        incident = _relevant_failed_incident(award)
        if incident is not None:
            _suspend(award, incident, by=None)
            n += 1
    return n


def _end(award: Award, *, reason: str, on: date, by, note: str = "") -> None:
    award.status = AwardStatus.ENDED
    award.end_reason = reason
    award.ended_on = on
    award.stop_from = rules.next_month_start(on)
    award.closing_note = note
    _save_award(
        award,
        by=by,
        reason="reward.ended",
        fields=["status", "end_reason", "ended_on", "stop_from", "closing_note"],
    )
    label = EndReason(reason).label
    _event(award, AwardStep.ENDED, by=by, note=f"{label}（{on.isoformat()}）{note}")


@transaction.atomic
def award_end(*, award_id, by, reason: str, ended_on: date, note: str = "", request=None) -> Award:
    """End an award (death, moving out, removal, other): paid up to that month."""
    _require(by, sel.REWARD_MANAGE)
    award = sel.award_get_for_user(user=by, pk=award_id, lock=True, request=request)
    if award.status not in OPEN_AWARD_STATUSES:
        raise _state_error(award)
    if reason not in EndReason.values:
        raise DomainError(ERR_END_REASON, field="reason")
    if ended_on > timezone.localdate():
        raise DomainError(ERR_END_DATE, field="ended_on")
    _end(award, reason=reason, on=ended_on, by=by, note=(note or "").strip())
    _audit(by, "reward.end", award.patient_id, request, award=award.pk, reason=reason)
    return award


STATUS_END_REASONS = {
    Status.DECEASED: EndReason.DECEASED,
    Status.MOVED_OUT: EndReason.MOVED_OUT,
    Status.REMOVED: EndReason.REMOVED,
}


@transaction.atomic
def awards_end_for_patient_status(*, today: date | None = None) -> int:
    """End open awards of patients who died, moved out or were removed (daily).

    The end date is the event's own date, not when it was recorded: the
    date of death on the ``deceased`` follow-up; for a patient moved out of
    the award's county by a transfer, the day of the transfer; otherwise the
    day the register's status changed. Nothing is paid after that month.
    """
    from followups.selectors import death_dates

    left_county = ~Q(patient__region__path__startswith=F("policy__region__path"))
    awards = list(
        Award.objects.select_for_update(of=("self",))
        .select_related("patient", "policy__region")
        .filter(status__in=OPEN_AWARD_STATUSES)
        .filter(Q(patient__status__in=list(STATUS_END_REASONS)) | left_county)
    )
    deaths = death_dates(a.patient_id for a in awards if a.patient.status == Status.DECEASED)
    n = 0
    for award in awards:
        patient = award.patient
        changed_on = timezone.localdate(patient.status_changed_at)
        if patient.status == Status.DECEASED:
            reason, on = EndReason.DECEASED, deaths.get(patient.pk, changed_on)
        elif patient.status in STATUS_END_REASONS:
            reason, on = STATUS_END_REASONS[patient.status], changed_on
            if reason == EndReason.MOVED_OUT:
                on = sel.moved_out_on(patient, award.policy.region.path) or changed_on
        else:  # still registered, but transferred to another county
            reason = EndReason.MOVED_OUT
            on = sel.moved_out_on(patient, award.policy.region.path) or _today(today)
        _end(award, reason=reason, on=on, by=None)
        n += 1
    return n


def reward_sync(*, today: date | None = None) -> dict[str, int]:
    """The daily reward job: activate, suspend after incidents, end on status."""
    today = _today(today)
    return {
        "suspended": awards_apply_incidents(today=today),
        "ended": awards_end_for_patient_status(today=today),
        "activated": awards_activate_due(today=today),
    }


# --- payment batches -----------------------------------------------------


@transaction.atomic
def batch_draw(
    *, region: Region, period_code: str, by=None, today: date | None = None, request=None
) -> tuple[RewardBatch, bool]:
    """Draw up the payment batch of a county for a finished period.

    Idempotent: a second call for the same county and period returns the
    batch already drawn (``created`` False) and changes nothing. A month is
    paid at most once per award; the batch also pays, as arrears, the unpaid
    payable months of the county's earlier drawn periods.
    """
    if by is not None:
        _require(by, sel.BATCH_DRAW)
        if region.pk not in {r.pk for r in sel.batch_scope_counties(user=by)}:
            raise PermissionDenied(ERR_NOT_ALLOWED)
    today = _today(today)
    if region.level != RegionLevel.COUNTY:
        raise DomainError(ERR_REGION_NOT_COUNTY, field="region")
    try:
        period = rules.parse_period(period_code)
    except ValueError:
        raise DomainError(ERR_PERIOD_FORMAT, field="period") from None
    existing = RewardBatch.objects.filter(region=region, period=period.code).first()
    if existing is not None:
        return existing, False
    if period.end >= today:
        raise DomainError(ERR_PERIOD_NOT_ENDED, field="period")
    policies = sel.reward_policies_for(county_code=region.pk, start=period.start, end=period.end)
    if not policies:
        raise DomainError(ERR_NO_POLICY_IN_PERIOD, field="period")
    closing = next((p for p in reversed(policies) if p.in_force_on(period.end)), policies[-1])
    if rules.period_frequency(period.code) != closing.frequency:
        raise DomainError(
            ERR_PERIOD_FREQUENCY % {"frequency": closing.get_frequency_display()}, field="period"
        )
    reward_sync(today=today)
    batch = RewardBatch(
        region=region,
        period=period.code,
        period_start=period.start,
        period_end=period.end,
        drawn_by=by,
    )
    try:
        with transaction.atomic():
            history_stamp(batch, user=by, reason="reward.batch_drawn")
            batch.save(force_insert=True)
    except IntegrityError:  # drawn meanwhile by another run
        return RewardBatch.objects.get(region=region, period=period.code), False
    awards = list(
        Award.objects.filter(
            region__path__startswith=region.path,
            status__in=PAYABLE_AWARD_STATUSES,
            active_from__isnull=False,
            active_from__lte=period.end,
        ).order_by("region_id", "pk")
    )
    paid_before: dict[int, set[str]] = {}
    for award_id, months in RewardBatchLine.objects.filter(
        award__in=[a.pk for a in awards]
    ).values_list("award_id", "months"):
        paid_before.setdefault(award_id, set()).update(months)
    # Arrears: months of earlier periods whose batch was already drawn, in
    # which the award is now payable but nothing was paid (a late yearly
    # review extends the award from its old due date). Only drawn periods:
    # months before the county's first batch (paid outside the system) are
    # never back-paid, and an undrawn earlier period pays its own months.
    drawn = [
        rules.Period(code, start, end)
        for code, start, end in RewardBatch.objects.filter(
            region=region, period_end__lt=period.start
        ).values_list("period", "period_start", "period_end")
    ]
    if drawn:
        first = min(p.start for p in drawn)
        policies = sel.reward_policies_for(county_code=region.pk, start=first, end=period.end)
    lines = []
    for award in awards:
        paid = paid_before.get(award.pk, set())
        terms = {
            "active_from": award.active_from,
            "stop_from": award.stop_from,
            "valid_until": award.valid_until,
        }
        arrears = {
            m
            for p in drawn
            if p.end >= award.active_from
            for m in rules.paying_months(p, **terms)
            if f"{m:%Y-%m}" not in paid
        }
        arrears_codes = {f"{m:%Y-%m}" for m in arrears}
        months = sorted(arrears) + [
            m for m in rules.paying_months(period, **terms) if f"{m:%Y-%m}" not in paid
        ]
        amounts = []
        paid_months = []
        for m in months:
            policy = next((p for p in policies if p.in_force_on(m)), None)
            if policy is not None:
                amounts.append(policy.yearly_amount)
                paid_months.append(f"{m:%Y-%m}")
        if not paid_months:
            continue
        lines.append(
            RewardBatchLine(
                batch=batch,
                award=award,
                guardian_name=award.guardian_name,
                guardian_relation=award.guardian_relation,
                village_id=award.region_id,
                months=paid_months,
                arrears=[code for code in paid_months if code in arrears_codes],
                month_count=len(paid_months),
                amount=rules.reward_amount(amounts),
            )
        )
    RewardBatchLine.objects.bulk_create(lines)
    batch.total = sum((ln.amount for ln in lines), rules.ZERO)
    batch.line_count = len(lines)
    history_stamp(batch, user=by, reason="reward.batch_drawn")
    batch.save(update_fields=["total", "line_count"])
    audit_record(
        actor=by,
        action="reward.batch_draw",
        object_type="reward_batch",
        object_id=batch.pk,
        detail={"period": period.code, "lines": len(lines), "total": str(batch.total)},
        request=request,
    )
    return batch, True


@transaction.atomic
def batch_review(*, batch_id, by, request=None) -> RewardBatch:
    _require(by, sel.BATCH_REVIEW)
    batch = sel.batch_get_for_user(user=by, pk=batch_id, lock=True, request=request)
    if batch.status != BatchStatus.DRAFTED:
        raise DomainError(ERR_WRONG_STATE % {"status": batch.get_status_display()})
    batch.status, batch.reviewed_by, batch.reviewed_at = BatchStatus.REVIEWED, by, timezone.now()
    history_stamp(batch, user=by, reason="reward.batch_reviewed")
    batch.save(update_fields=["status", "reviewed_by", "reviewed_at"])
    audit_record(
        actor=by,
        action="reward.batch_review",
        object_type="reward_batch",
        object_id=batch.pk,
        request=request,
    )
    return batch


@transaction.atomic
def batch_mark_paid(*, batch_id, by, reference: str, request=None) -> RewardBatch:
    _require(by, sel.BATCH_PAY)
    batch = sel.batch_get_for_user(user=by, pk=batch_id, lock=True, request=request)
    if batch.status != BatchStatus.REVIEWED:
        if batch.status == BatchStatus.DRAFTED:
            raise DomainError(ERR_PAY_NOT_REVIEWED)
        raise DomainError(ERR_WRONG_STATE % {"status": batch.get_status_display()})
    reference = (reference or "").strip()
    if not reference:
        raise DomainError(ERR_REFERENCE_REQUIRED, field="reference")
    batch.status, batch.paid_by, batch.paid_at = BatchStatus.PAID, by, timezone.now()
    batch.payment_reference = reference
    history_stamp(batch, user=by, reason="reward.batch_paid")
    batch.save(update_fields=["status", "paid_by", "paid_at", "payment_reference"])
    audit_record(
        actor=by,
        action="reward.batch_paid",
        object_type="reward_batch",
        object_id=batch.pk,
        request=request,
    )
    return batch


def draw_due_batches(*, today: date | None = None) -> dict[str, int]:
    """For each county with a reward policy: draw the last finished period (beat)."""
    today = _today(today)
    counts = {"drawn": 0, "existing": 0, "skipped": 0}
    counties = RewardPolicy.objects.order_by().values_list("region_id", flat=True).distinct()
    for code in counties:
        region = Region.objects.get(pk=code)
        probe = sel.reward_policy_in_force(county_code=code, on=today - timedelta(days=1))
        if probe is None:
            counts["skipped"] += 1
            continue
        period = rules.last_completed_period(probe.frequency, today)
        try:
            _batch, created = batch_draw(region=region, period_code=period.code, today=today)
        except DomainError:
            counts["skipped"] += 1
            continue
        counts["drawn" if created else "existing"] += 1
    return counts


# ==========================================================================
# Policies (the admin pages use the same checks through model clean())
# ==========================================================================


@transaction.atomic
def settlement_policy_create(
    *,
    region: Region,
    name: str,
    valid_from: date,
    valid_to: date | None = None,
    layers: list[dict],
    notes: str = "",
    by=None,
) -> SettlementPolicy:
    """A settlement policy with its ordered layers; refused whole on bad input."""
    rule_layers = []
    for row in layers:
        rule_layers.append(
            rules.Layer(
                order=row["order"],
                payer=row["payer"],
                condition=row.get("condition", "always"),
                ratio=Decimal(str(row["ratio"])),
                min_risk_level=row.get("min_risk_level", 3),
                valid_from=row.get("valid_from"),
                valid_to=row.get("valid_to"),
            )
        )
    try:
        rules.check_layers(rule_layers)
    except rules.RuleError as exc:
        raise _domain_from_rule(exc) from None
    policy = SettlementPolicy(
        region=region, name=name, valid_from=valid_from, valid_to=valid_to, notes=notes
    )
    try:
        policy.full_clean()
    except ValidationError as exc:
        raise _validation_to_domain(exc) from None
    history_stamp(policy, user=by, reason="policy.created")
    _save_policy(policy)
    for row in layers:
        layer = PayerLayer(policy=policy, **{"condition": "always", **row})
        try:
            layer.full_clean(exclude=["policy"])
        except ValidationError as exc:
            raise _validation_to_domain(exc) from None
        history_stamp(layer, user=by, reason="policy.created")
        layer.save()
    audit_record(
        actor=by, action="policy.create", object_type="settlement_policy", object_id=policy.pk
    )
    return policy


@transaction.atomic
def reward_policy_create(*, by=None, **fields) -> RewardPolicy:
    policy = RewardPolicy(**fields)
    try:
        policy.full_clean()
    except ValidationError as exc:
        raise _validation_to_domain(exc) from None
    history_stamp(policy, user=by, reason="policy.created")
    _save_policy(policy)
    audit_record(actor=by, action="policy.create", object_type="reward_policy", object_id=policy.pk)
    return policy


def _save_policy(policy: RewardPolicy | SettlementPolicy) -> None:
    """Save a new policy; an overlap another save committed meanwhile (the
    database's exclusion constraint) gets the same message as clean()'s."""
    try:
        with transaction.atomic():
            policy.save()
    except IntegrityError as exc:
        if is_overlap_violation(exc):
            raise DomainError(ERR_POLICY_OVERLAP, field="valid_from") from None
        raise


def policy_next_version(policy: RewardPolicy | SettlementPolicy) -> int:
    """The version a changed policy gets: one more than the saved row's, read
    under a row lock (in the caller's transaction), so two saves get 2 and 3,
    never 2 twice, and a copy of an old version never brings its number back."""
    current = (
        type(policy)
        .objects.select_for_update()
        .filter(pk=policy.pk)
        .values_list("version", flat=True)
        .first()
    )
    return (current or 0) + 1


def _validation_to_domain(exc: ValidationError) -> DomainError:
    if hasattr(exc, "error_dict"):
        field, errors = next(iter(exc.error_dict.items()))
        return DomainError(errors[0].messages[0], field=None if field == "__all__" else field)
    return DomainError(exc.messages[0])


# ==========================================================================
# Hospital episodes and settlement
# ==========================================================================


def _hospital_of(by):
    _require(by, sel.EPISODE_MANAGE)
    org = organisation_of(by)
    if org is None or org.kind != OrganisationKind.SPECIALIST_HOSPITAL:
        raise PermissionDenied(ERR_NOT_HOSPITAL)
    return org


def _set_in_hospital(patient: Patient, value: bool, *, by, reason: str) -> None:
    """Keep the register's ``in_hospital`` flag (patient row already locked)."""
    if patient.in_hospital != value:
        patient.in_hospital = value
        history_stamp(patient, user=by, reason=reason)
        patient.save(update_fields=["in_hospital"])


def _new_episode(
    *,
    patient: Patient,
    hospital,
    by,
    case_number: str,
    admission_date: date,
    note: str,
    today: date,
) -> Episode:
    case_number = (case_number or "").strip()
    if not case_number:
        raise DomainError(ERR_CASE_NUMBER_REQUIRED, field="case_number")
    if admission_date > today:
        raise DomainError(ERR_DATE_FUTURE, field="admission_date")
    if Episode.objects.filter(patient=patient, status=EpisodeStatus.IN_HOSPITAL).exists():
        raise DomainError(ERR_ALREADY_IN_HOSPITAL)
    last = (
        Episode.objects.filter(patient=patient, discharge_date__isnull=False)
        .order_by("-discharge_date")
        .values_list("discharge_date", flat=True)
        .first()
    )
    if last is not None and admission_date < last:
        raise DomainError(
            ERR_ADMISSION_BEFORE_LAST_DISCHARGE % {"date": last.isoformat()},
            field="admission_date",
        )
    if Episode.objects.filter(hospital=hospital, case_number=case_number).exists():
        raise DomainError(ERR_CASE_NUMBER_TAKEN, field="case_number")
    episode = Episode(
        patient=patient,
        hospital=hospital,
        case_number=case_number,
        admission_date=admission_date,
        admission_note=note,
        admitted_by=by,
    )
    episode.full_clean(exclude=["patient", "hospital", "admitted_by"], validate_constraints=False)
    history_stamp(episode, user=by, reason="episode.admitted")
    try:
        with transaction.atomic():
            episode.save(force_insert=True)
    except IntegrityError:
        raise DomainError(ERR_CASE_NUMBER_TAKEN, field="case_number") from None
    return episode


@transaction.atomic
def episode_admit(
    *,
    patient_id,
    by,
    case_number: str,
    admission_date: date,
    admission_note: str = "",
    today: date | None = None,
    request=None,
) -> Episode:
    """Record an admission to the specialist hospital."""
    hospital = _hospital_of(by)
    today = _today(today)
    patient = patient_get_for_user(user=by, pk=patient_id, lock=True, request=request)
    episode = _new_episode(
        patient=patient,
        hospital=hospital,
        by=by,
        case_number=case_number,
        admission_date=admission_date,
        note=admission_note,
        today=today,
    )
    _set_in_hospital(patient, True, by=by, reason="episode.admitted")
    _audit(by, "episode.admit", patient.pk, request, episode=episode.pk)
    return episode


def _clean_sheet(sheet: dict, *, require: bool) -> dict:
    data = {k: sheet[k] for k in SHEET_FIELDS if k in sheet and sheet[k] is not None}
    if require:
        for key in SHEET_REQUIRED:
            if not str(data.get(key, "")).strip():
                raise DomainError(ERR_SHEET_REQUIRED, field=key)
    rows = []
    for row in data.get("medication_advice") or []:
        drug = str(row.get("drug", "")).strip()
        if not drug:
            continue
        clean = {"drug": drug[:50]}
        for key in ("morning_mg", "noon_mg", "evening_mg"):
            value = row.get(key)
            if value in (None, ""):
                continue
            try:
                dose = Decimal(str(value))
            except ArithmeticError:
                raise DomainError(ERR_MEDICATION_DOSE, field="medication_advice") from None
            if dose < 0 or not dose.is_finite():
                raise DomainError(ERR_MEDICATION_DOSE, field="medication_advice")
            clean[key] = str(dose.normalize())
        rows.append(clean)
    if len(rows) > 3:
        raise DomainError(ERR_MEDICATION_ROWS, field="medication_advice")
    data["medication_advice"] = rows
    return data


def _check_discharge_date(episode: Episode, discharge_date: date, today: date) -> None:
    if discharge_date < episode.admission_date:
        raise DomainError(rules.ERR_DISCHARGE_BEFORE_ADMISSION, field="discharge_date")
    if discharge_date > today:
        raise DomainError(ERR_DATE_FUTURE, field="discharge_date")


def _discharge(
    episode: Episode, patient: Patient, *, by, discharge_date: date, sheet: dict, require: bool
) -> None:
    data = _clean_sheet(sheet, require=require)
    for key, value in data.items():
        setattr(episode, key, value)
    episode.discharge_date = discharge_date
    episode.status = EpisodeStatus.DISCHARGED
    episode.discharged_by, episode.discharged_at = by, timezone.now()
    episode.version += 1
    episode.full_clean(
        exclude=["patient", "hospital", "admitted_by", "discharged_by"], validate_constraints=False
    )
    history_stamp(episode, user=by, reason="episode.discharged")
    episode.save()
    _set_in_hospital(patient, False, by=by, reason="episode.discharged")


def _quote_for(
    *,
    patient: Patient,
    admission_date: date,
    discharge_date: date | None,
    total_cost,
    in_scope_cost,
    episode_id: int | None = None,
    lock_policy: bool = False,
):
    """(quote, policy, layers, facts snapshot) — nothing saved.

    ``episode_id``: the episode being settled (None: a bill not yet recorded);
    the yearly deductible and caps count only the patient's earlier episodes.
    """
    # bad amounts are reported before a missing policy: they are the user's to fix
    try:
        rules.check_bill(
            total=Decimal(total_cost),
            in_scope=Decimal(in_scope_cost),
            admission=admission_date,
            discharge=discharge_date,
        )
    except rules.RuleError as exc:
        raise _domain_from_rule(exc) from None
    policy = sel.settlement_policy_in_force(
        county_code=patient.region.county_code, on=admission_date
    )
    if policy is None:
        raise DomainError(ERR_NO_SETTLEMENT_POLICY, field="admission_date")
    if lock_policy:
        # Saving: hold the policy row (the admin locks it to change it) and
        # read its layers and version under the lock, so the settlement
        # records exactly the version it used and the admin's "already used"
        # check sees it.
        policy = SettlementPolicy.objects.select_for_update(no_key=True).get(pk=policy.pk)
        layers = list(PayerLayer.objects.filter(policy=policy).order_by("order"))
    else:
        layers = list(policy.layers.all())
    facts, snapshot = sel.patient_facts_on(patient, admission_date)
    usage = sel.year_usage(patient=patient, admission_date=admission_date, episode_id=episode_id)
    try:
        quote = rules.split_bill(
            total=Decimal(total_cost),
            in_scope=Decimal(in_scope_cost),
            admission=admission_date,
            discharge=discharge_date,
            layers=policy.rule_layers(layers),
            facts=facts,
            usage=usage,
        )
    except rules.RuleError as exc:
        raise _domain_from_rule(exc) from None
    return quote, policy, layers, snapshot


def settlement_quote(
    *,
    patient_id,
    by,
    admission_date: date,
    discharge_date: date | None,
    total_cost,
    in_scope_cost,
    episode_id: int | None = None,
    request=None,
):
    """Quote a settlement (nothing saved): (quote, policy).

    The episode is the one the save would settle: ``episode_id`` when given
    (the discharge page), else the caller's hospital's episode of the patient
    admitted on ``admission_date`` (as ``settlement_record`` finds it), if any.
    """
    hospital = _hospital_of(by)
    patient = patient_get_for_user(user=by, pk=patient_id, request=request)
    if episode_id is None:
        episode_id = (
            Episode.objects.filter(
                patient=patient, hospital=hospital, admission_date=admission_date
            )
            .order_by("-id")
            .values_list("pk", flat=True)
            .first()
        )
    quote, policy, _layers, _snap = _quote_for(
        patient=patient,
        admission_date=admission_date,
        discharge_date=discharge_date,
        total_cost=total_cost,
        in_scope_cost=in_scope_cost,
        episode_id=episode_id,
    )
    _audit(by, "settlement.quote", patient.pk, request)
    return quote, policy


def _settle(
    episode: Episode, patient: Patient, *, by, total_cost, in_scope_cost, settled_on: date
) -> Settlement:
    if episode.status != EpisodeStatus.DISCHARGED:
        raise DomainError(ERR_NOT_DISCHARGED)
    if sel.effective_settlement(episode) is not None:
        raise DomainError(ERR_ALREADY_SETTLED)
    quote, policy, layers, snapshot = _quote_for(
        patient=patient,
        admission_date=episode.admission_date,
        discharge_date=episode.discharge_date,
        total_cost=total_cost,
        in_scope_cost=in_scope_cost,
        episode_id=episode.pk,
        lock_policy=True,
    )
    settlement = Settlement(
        kind=SettlementKind.SETTLEMENT,
        episode=episode,
        patient=patient,
        hospital=episode.hospital,
        region=patient.region,
        admission_date=episode.admission_date,
        discharge_date=episode.discharge_date,
        total_cost=quote.total,
        in_scope_cost=quote.in_scope,
        out_of_scope_cost=quote.out_of_scope,
        patient_pays=quote.patient_pays,
        policy=policy,
        policy_version=policy.version,
        policy_snapshot=policy.snapshot(layers),
        facts=snapshot,
        settled_on=settled_on,
        created_by=by,
    )
    settlement.save(force_insert=True)
    SettlementLine.objects.bulk_create(
        SettlementLine(
            settlement=settlement,
            order=ln.order,
            payer=ln.payer,
            ratio=ln.ratio,
            base=ln.base,
            eligible=ln.eligible,
            amount=ln.amount,
            limited_by=ln.limited_by,
        )
        for ln in quote.lines
    )
    return settlement


@transaction.atomic
def episode_discharge(
    *,
    episode_id,
    by,
    discharge_date: date,
    sheet: dict,
    total_cost,
    in_scope_cost,
    today: date | None = None,
    request=None,
) -> Settlement:
    """Discharge with the discharge sheet and save the one-stop settlement, together."""
    _hospital_of(by)
    today = _today(today)
    episode = sel.episode_get_for_user(user=by, pk=episode_id, lock=True, request=request)
    patient = patient_get_for_user(user=by, pk=episode.patient_id, lock=True, request=request)
    if episode.status != EpisodeStatus.IN_HOSPITAL:
        raise DomainError(ERR_NOT_IN_HOSPITAL)
    _check_discharge_date(episode, discharge_date, today)
    _discharge(episode, patient, by=by, discharge_date=discharge_date, sheet=sheet, require=True)
    settlement = _settle(
        episode,
        patient,
        by=by,
        total_cost=total_cost,
        in_scope_cost=in_scope_cost,
        settled_on=today,
    )
    _audit(
        by, "settlement.create", patient.pk, request, episode=episode.pk, settlement=settlement.pk
    )
    return settlement


@transaction.atomic
def settlement_create(
    *, episode_id, by, total_cost, in_scope_cost, today: date | None = None, request=None
) -> Settlement:
    """Settle a discharged episode (e.g. again after a reversal)."""
    _hospital_of(by)
    today = _today(today)
    episode = sel.episode_get_for_user(user=by, pk=episode_id, lock=True, request=request)
    patient = patient_get_for_user(user=by, pk=episode.patient_id, lock=True, request=request)
    settlement = _settle(
        episode,
        patient,
        by=by,
        total_cost=total_cost,
        in_scope_cost=in_scope_cost,
        settled_on=today,
    )
    _audit(
        by, "settlement.create", patient.pk, request, episode=episode.pk, settlement=settlement.pk
    )
    return settlement


@transaction.atomic
def settlement_record(
    *,
    patient_id,
    by,
    admission_date: date,
    discharge_date: date,
    total_cost,
    in_scope_cost,
    case_number: str = "",
    sheet: dict | None = None,
    today: date | None = None,
    request=None,
) -> Settlement:
    """Save a settlement from the API: finds (or records) the episode, discharges it
    if still in hospital, and settles it."""
    hospital = _hospital_of(by)
    today = _today(today)
    patient = patient_get_for_user(user=by, pk=patient_id, lock=True, request=request)
    if discharge_date < admission_date:
        raise DomainError(rules.ERR_DISCHARGE_BEFORE_ADMISSION, field="discharge_date")
    for value, field in ((admission_date, "admission_date"), (discharge_date, "discharge_date")):
        if value > today:
            raise DomainError(ERR_DATE_FUTURE, field=field)
    episode = (
        Episode.objects.select_for_update()
        .filter(patient=patient, hospital=hospital, admission_date=admission_date)
        .order_by("-id")
        .first()
    )
    if episode is None:
        case_number = (case_number or "").strip() or (
            f"ZY{admission_date:%Y%m%d}{uuid.uuid4().hex[:6].upper()}"
        )
        episode = _new_episode(
            patient=patient,
            hospital=hospital,
            by=by,
            case_number=case_number,
            admission_date=admission_date,
            note="",
            today=today,
        )
    if episode.status == EpisodeStatus.IN_HOSPITAL:
        _check_discharge_date(episode, discharge_date, today)
        _discharge(
            episode, patient, by=by, discharge_date=discharge_date, sheet=sheet or {}, require=False
        )
    elif episode.discharge_date != discharge_date:
        raise DomainError(
            ERR_DISCHARGE_MISMATCH % {"date": episode.discharge_date.isoformat()},
            field="discharge_date",
        )
    settlement = _settle(
        episode,
        patient,
        by=by,
        total_cost=total_cost,
        in_scope_cost=in_scope_cost,
        settled_on=today,
    )
    _audit(
        by, "settlement.create", patient.pk, request, episode=episode.pk, settlement=settlement.pk
    )
    return settlement


@transaction.atomic
def settlement_reverse(
    *, settlement_id, by, reason: str, today: date | None = None, request=None
) -> Settlement:
    """Reverse a saved settlement: a new row with every amount negated."""
    _hospital_of(by)
    today = _today(today)
    original = sel.settlement_get_for_user(user=by, pk=settlement_id, lock=True, request=request)
    if original.kind == SettlementKind.REVERSAL:
        raise DomainError(ERR_REVERSE_REVERSAL)
    if Settlement.objects.filter(reverses=original).exists():
        raise DomainError(ERR_ALREADY_REVERSED)
    reason = (reason or "").strip()
    if not reason:
        raise DomainError(ERR_REASON_REQUIRED, field="reason")
    Episode.objects.select_for_update().filter(pk=original.episode_id).first()
    reversal = Settlement(
        kind=SettlementKind.REVERSAL,
        reverses=original,
        episode_id=original.episode_id,
        patient_id=original.patient_id,
        hospital_id=original.hospital_id,
        region_id=original.region_id,
        admission_date=original.admission_date,
        discharge_date=original.discharge_date,
        total_cost=-original.total_cost,
        in_scope_cost=-original.in_scope_cost,
        out_of_scope_cost=-original.out_of_scope_cost,
        patient_pays=-original.patient_pays,
        policy_id=original.policy_id,
        policy_version=original.policy_version,
        policy_snapshot=original.policy_snapshot,
        facts=original.facts,
        settled_on=today,
        created_by=by,
        reason=reason,
    )
    try:
        with transaction.atomic():
            reversal.save(force_insert=True)
    except IntegrityError:
        raise DomainError(ERR_ALREADY_REVERSED) from None
    SettlementLine.objects.bulk_create(
        SettlementLine(
            settlement=reversal,
            order=ln.order,
            payer=ln.payer,
            ratio=ln.ratio,
            base=-ln.base,
            eligible=-ln.eligible,
            amount=-ln.amount,
            limited_by=ln.limited_by,
        )
        for ln in original.lines.all()
    )
    _audit(
        by,
        "settlement.reverse",
        original.patient_id,
        request,
        settlement=original.pk,
        reversal=reversal.pk,
    )
    return reversal
