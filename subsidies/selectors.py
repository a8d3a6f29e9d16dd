"""Reads of rewards, batches, episodes and settlements, scoped to the user.

Patient rows are reached only through ``patients.selectors``: awards,
episodes and settlements are filtered by the patients the user may read.
Finance sees batches and settlements of its county by region (it has no
patient field set) and is never shown patient identities. Out of scope is
404 and audited; a page or action outside the user's role is 403.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from django.core.exceptions import ObjectDoesNotExist, PermissionDenied
from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce
from django.db.models.lookups import GreaterThanOrEqual
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import OrganisationKind, Region, RegionLevel
from accounts.roles import VIEW_AGGREGATES, VIEW_PATIENTS, Role, role_of
from accounts.scoping import inside_q, regions_with_perm
from accounts.selectors import organisation_of
from audit.services import audit_record
from patients.models import AssistantGuardian, Guardian, Incident, Patient, Status
from patients.selectors import patient_list_visible_to
from subsidies import coverage, rules
from subsidies.models import (
    OPEN_AWARD_STATUSES,
    Award,
    AwardStatus,
    Episode,
    Payer,
    RewardBatch,
    RewardBatchLine,
    RewardPolicy,
    Settlement,
    SettlementKind,
    SettlementLine,
    SettlementPolicy,
)

# --------------------------------------------------------------------------
# Capabilities: what each role may do here (checked again in services)
# --------------------------------------------------------------------------

REWARD_VIEW = "reward.view"
REWARD_APPLY = "reward.apply"
REWARD_TOWNSHIP_REVIEW = "reward.township_review"
REWARD_COUNTY_APPROVE = "reward.county_approve"
REWARD_MANAGE = "reward.manage"  # yearly review, suspension, end
BATCH_VIEW = "batch.view"
BATCH_DRAW = "batch.draw"
BATCH_REVIEW = "batch.review"
BATCH_PAY = "batch.pay"
BATCH_EXPORT = "batch.export"
EPISODE_MANAGE = "episode.manage"  # admit, discharge, settle, reverse, quote
SETTLEMENT_VIEW = "settlement.view"
STATEMENT_VIEW = "statement.view"

ROLE_CAPS: dict[str, frozenset[str]] = {
    Role.TOWNSHIP_DOCTOR: frozenset({REWARD_VIEW, REWARD_APPLY}),
    Role.GOVERNANCE: frozenset(
        {
            REWARD_VIEW,
            REWARD_APPLY,
            REWARD_TOWNSHIP_REVIEW,
            REWARD_COUNTY_APPROVE,
            REWARD_MANAGE,
            BATCH_VIEW,
            BATCH_DRAW,
            BATCH_REVIEW,
            BATCH_EXPORT,
        }
    ),
    Role.CIVIL_AFFAIRS: frozenset(
        {
            REWARD_VIEW,
            REWARD_COUNTY_APPROVE,
            REWARD_MANAGE,
            BATCH_VIEW,
            BATCH_DRAW,
            BATCH_REVIEW,
            BATCH_EXPORT,
            SETTLEMENT_VIEW,
            STATEMENT_VIEW,
        }
    ),
    Role.FINANCE: frozenset({BATCH_VIEW, BATCH_EXPORT, BATCH_PAY, SETTLEMENT_VIEW, STATEMENT_VIEW}),
    Role.HOSPITAL_DOCTOR: frozenset({EPISODE_MANAGE, SETTLEMENT_VIEW, STATEMENT_VIEW}),
    Role.DISABLED_FEDERATION: frozenset({SETTLEMENT_VIEW, STATEMENT_VIEW}),
}
# county-level steps need a county (or higher) organisation
COUNTY_LEVEL_CAPS = frozenset(
    {REWARD_COUNTY_APPROVE, BATCH_VIEW, BATCH_DRAW, BATCH_REVIEW, BATCH_PAY, BATCH_EXPORT}
)
COUNTY_LEVELS = frozenset({RegionLevel.COUNTY, RegionLevel.CITY, RegionLevel.PROVINCE})

# Which payers' monthly statements each role reads.
STATEMENT_PAYERS: dict[str, tuple[str, ...]] = {
    Role.HOSPITAL_DOCTOR: tuple(Payer.values),
    Role.CIVIL_AFFAIRS: (Payer.CIVIL_AFFAIRS,),
    Role.DISABLED_FEDERATION: (Payer.DISABLED_FEDERATION,),
    Role.FINANCE: (Payer.FINANCE_BACKSTOP,),
}


def capabilities(user) -> frozenset[str]:
    """What the user may do in this app (role and organisation are cached on
    the user by ``accounts``, so this costs no query after the first)."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return frozenset()
    role = role_of(user)
    caps = set(ROLE_CAPS.get(role or "", ()))
    org = organisation_of(user)
    if org is None:
        caps = set()
    else:
        if org.region.level not in COUNTY_LEVELS:
            caps -= COUNTY_LEVEL_CAPS
        if role == Role.HOSPITAL_DOCTOR and org.kind != OrganisationKind.SPECIALIST_HOSPITAL:
            caps.clear()
    return frozenset(caps)


def can(user, cap: str) -> bool:
    return cap in capabilities(user)


def require(user, cap: str) -> None:
    """403 when the user's role may not do ``cap`` (a capability, not a scope)."""
    if not can(user, cap):
        raise PermissionDenied


def require_any(user, *caps: str) -> None:
    if not any(can(user, c) for c in caps):
        raise PermissionDenied


def sees_identities(user) -> bool:
    """Finance has no patient field set: no names or ID numbers in its pages."""
    return role_of(user) != Role.FINANCE


def _denied(user, object_type: str, pk, request=None):
    audit_record(
        actor=user,
        action="access.denied",
        object_type=object_type,
        object_id=str(pk)[:64],
        request=request,
    )
    raise Http404


def _scope_regions(user) -> list[Region]:
    """Regions whose rows the user reads here: patient scope, or aggregates for finance."""
    perm = VIEW_AGGREGATES if role_of(user) == Role.FINANCE else VIEW_PATIENTS
    return regions_with_perm(user, perm)


# --------------------------------------------------------------------------
# Policies
# --------------------------------------------------------------------------


def county_of(region: Region) -> str | None:
    return region.county_code


def reward_policy_in_force(*, county_code: str | None, on: date) -> RewardPolicy | None:
    if not county_code:
        return None
    return (
        RewardPolicy.objects.filter(region_id=county_code, valid_from__lte=on)
        .filter(Q(valid_to__isnull=True) | Q(valid_to__gte=on))
        .order_by("-valid_from")
        .first()
    )


def reward_policies_for(*, county_code: str, start: date, end: date) -> list[RewardPolicy]:
    return list(
        RewardPolicy.objects.filter(region_id=county_code, valid_from__lte=end)
        .filter(Q(valid_to__isnull=True) | Q(valid_to__gte=start))
        .order_by("valid_from")
    )


def settlement_policy_in_force(*, county_code: str | None, on: date) -> SettlementPolicy | None:
    if not county_code:
        return None
    return (
        SettlementPolicy.objects.filter(region_id=county_code, valid_from__lte=on)
        .filter(Q(valid_to__isnull=True) | Q(valid_to__gte=on))
        .prefetch_related("layers")
        .order_by("-valid_from")
        .first()
    )


# --------------------------------------------------------------------------
# Guardian reward: facts, candidates, awards
# --------------------------------------------------------------------------


def with_reward_facts(qs: QuerySet[Patient], *, kinds=("trouble", "disaster")) -> QuerySet:
    """Annotate patients with what the reward rule needs (constant queries)."""
    return qs.select_related("guardian", "region").annotate(
        rf_assistants=Coalesce(
            Subquery(
                AssistantGuardian.objects.filter(patient=OuterRef("pk"))
                .order_by()
                .values("patient")
                .annotate(n=Count("pk"))
                .values("n")[:1]
            ),
            0,
        ),
        rf_has_trouble=Exists(Incident.objects.filter(patient=OuterRef("pk"), kind="trouble")),
        rf_has_disaster=Exists(Incident.objects.filter(patient=OuterRef("pk"), kind="disaster")),
        rf_has_minor=Exists(Incident.objects.filter(patient=OuterRef("pk"), kind="minor_trouble")),
        rf_last_failed=Subquery(
            Incident.objects.filter(patient=OuterRef("pk"), guardian_failed_duties=True)
            .order_by("-occurred_on")
            .values("occurred_on")[:1]
        ),
        rf_open_award=Subquery(
            Award.objects.filter(patient=OuterRef("pk"), status__in=OPEN_AWARD_STATUSES).values(
                "pk"
            )[:1]
        ),
    )


def reward_facts_for(patient: Patient) -> rules.RewardFacts:
    """The reward facts of one patient (annotated by ``with_reward_facts`` or not)."""
    if hasattr(patient, "rf_assistants"):
        kinds = set()
        if patient.rf_has_trouble:
            kinds.add("trouble")
        if patient.rf_has_disaster:
            kinds.add("disaster")
        if patient.rf_has_minor:
            kinds.add("minor_trouble")
        assistants = patient.rf_assistants
        last_failed = patient.rf_last_failed
    else:
        kinds = set(patient.incidents.values_list("kind", flat=True).distinct())
        assistants = patient.assistant_guardians.count()
        last_failed = (
            patient.incidents.filter(guardian_failed_duties=True)
            .order_by("-occurred_on")
            .values_list("occurred_on", flat=True)
            .first()
        )
    try:
        guardian = patient.guardian
    except ObjectDoesNotExist:
        guardian = None
    return rules.RewardFacts(
        status=patient.status,
        status_label=str(Status(patient.status).label),
        police_registered=patient.police_registered,
        risk_level=patient.risk_level,
        incident_kinds=frozenset(kinds),
        has_guardian=guardian is not None,
        responsibility_letter=bool(guardian and guardian.responsibility_letter),
        assistant_guardians=assistants,
        last_failed_duty_incident=last_failed,
    )


def reward_rule_q(rule: rules.RewardRule, *, today: date) -> Q:
    """Patients whose guardian the reward ``rule`` finds eligible on ``today``,
    as a filter: the database form of ``rules.reward_ineligibility`` (same
    facts as ``with_reward_facts``), for lists and counts that must not load
    every patient. Reusable wherever eligibility is counted or filtered.
    """
    from patients.models import REGISTERED_STATUSES

    q = Q(status__in=REGISTERED_STATUSES)
    if rule.require_police_registered:
        q &= Q(police_registered=True)
    qualifying = Q(
        Exists(
            Incident.objects.filter(
                patient=OuterRef("pk"), kind__in=list(rule.qualifying_incident_kinds)
            )
        )
    )
    if rule.min_risk_level is not None:
        qualifying |= Q(risk_level__gte=rule.min_risk_level)
    q &= qualifying
    guardians = Guardian.objects.filter(patient=OuterRef("pk"))
    if rule.require_responsibility_letter:
        guardians = guardians.filter(responsibility_letter=True)
    q &= Q(Exists(guardians))
    if rule.min_assistant_guardians > 0:
        assistants = Coalesce(
            Subquery(
                AssistantGuardian.objects.filter(patient=OuterRef("pk"))
                .order_by()
                .values("patient")
                .annotate(n=Count("pk"))
                .values("n")[:1]
            ),
            0,
        )
        q &= Q(GreaterThanOrEqual(assistants, rule.min_assistant_guardians))
    barring = Incident.objects.filter(
        patient=OuterRef("pk"),
        guardian_failed_duties=True,
        occurred_on__gt=rules.bar_cutoff(today, rule.reapply_bar_months),
    )
    return q & ~Q(Exists(barring))


def reward_policies_in_scope(*, user, on: date) -> list[RewardPolicy]:
    """The reward policies in force on ``on`` in the counties of the user's
    area (the counties inside it, or the county containing a part of it)."""
    counties = Q(pk__in=[])
    for region in _scope_regions(user):
        counties |= Q(region__path__startswith=region.path)
        if region.county_code:
            counties |= Q(region_id=region.county_code)
    return list(
        RewardPolicy.objects.filter(counties, valid_from__lte=on)
        .filter(Q(valid_to__isnull=True) | Q(valid_to__gte=on))
        .select_related("region")
        .order_by("region_id")
    )


def reward_candidates(
    *, user, term: str = "", only_eligible: bool = False, today: date | None = None
) -> QuerySet[Patient]:
    """Registered patients in scope with the facts for the eligibility check.

    ``only_eligible``: those the rule of the reward policy in force in their
    county finds eligible today (none where no policy is in force).
    """
    from patients.models import REGISTERED_STATUSES
    from patients.selectors import patient_search

    require(user, REWARD_VIEW)
    today = today or timezone.localdate()
    qs = patient_list_visible_to(user=user).filter(status__in=REGISTERED_STATUSES)
    qs = patient_search(qs, term)
    if only_eligible:
        eligible = Q(pk__in=[])
        for policy in reward_policies_in_scope(user=user, on=today):
            eligible |= Q(region__path__startswith=policy.region.path) & reward_rule_q(
                policy.rule(), today=today
            )
        qs = qs.filter(eligible)
    return with_reward_facts(qs).order_by("region_id", "name", "pk")


def award_list_visible_to(*, user) -> QuerySet[Award]:
    """Awards of the patients the user may read (finance reads batches, not awards)."""
    if not can(user, REWARD_VIEW):
        return Award.objects.none()
    return Award.objects.filter(patient__in=patient_list_visible_to(user=user)).select_related(
        "patient", "region__parent", "policy"
    )


def award_get_for_user(*, user, pk, lock: bool = False, request=None) -> Award:
    require(user, REWARD_VIEW)
    qs = award_list_visible_to(user=user)
    if lock:
        qs = qs.select_for_update(of=("self",))
    obj = qs.filter(pk=pk).first() if str(pk).isdigit() else None
    if obj is None:
        _denied(user, "reward_award", pk, request)
    return obj


def award_events(award: Award):
    return award.events.select_related("by__staff", "organisation").order_by("at", "id")


def award_counts(*, user) -> dict[str, int]:
    rows = award_list_visible_to(user=user).order_by().values("status").annotate(n=Count("pk"))
    return {r["status"]: r["n"] for r in rows}


REVIEW_WINDOW_DAYS = 60  # the yearly review may be done this many days before it falls due


def awards_review_due(*, user, today: date) -> QuerySet[Award]:
    """Active awards whose yearly review falls due within 60 days (or is past)."""
    return award_list_visible_to(user=user).filter(
        status=AwardStatus.ACTIVE, valid_until__lte=today + timedelta(days=REVIEW_WINDOW_DAYS)
    )


# --------------------------------------------------------------------------
# Batches
# --------------------------------------------------------------------------


def batch_list_visible_to(*, user) -> QuerySet[RewardBatch]:
    if not can(user, BATCH_VIEW):
        return RewardBatch.objects.none()
    q = inside_q(_scope_regions(user), path_field="region__path")
    return RewardBatch.objects.filter(q).select_related(
        "region", "drawn_by__staff", "reviewed_by__staff", "paid_by__staff"
    )


def batch_get_for_user(*, user, pk, lock: bool = False, request=None) -> RewardBatch:
    require(user, BATCH_VIEW)
    qs = batch_list_visible_to(user=user)
    if lock:
        qs = qs.select_for_update(of=("self",))
    obj = qs.filter(pk=pk).first() if str(pk).isdigit() else None
    if obj is None:
        _denied(user, "reward_batch", pk, request)
    return obj


def batch_lines(batch: RewardBatch) -> QuerySet[RewardBatchLine]:
    return batch.lines.select_related("village__parent", "award").order_by(
        "village_id", "guardian_name", "id"
    )


def batch_scope_counties(*, user) -> list[Region]:
    """Counties the user may draw batches for."""
    regions = _scope_regions(user)
    return [r for r in regions if r.level == RegionLevel.COUNTY]


# --------------------------------------------------------------------------
# Episodes and settlements
# --------------------------------------------------------------------------


def episode_list_visible_to(*, user) -> QuerySet[Episode]:
    """The hospital's own episodes of patients it may read."""
    if not can(user, EPISODE_MANAGE):
        return Episode.objects.none()
    org = organisation_of(user)
    return Episode.objects.filter(
        hospital=org, patient__in=patient_list_visible_to(user=user)
    ).select_related("patient__region", "hospital")


def episode_get_for_user(*, user, pk, lock: bool = False, request=None) -> Episode:
    require(user, EPISODE_MANAGE)
    qs = episode_list_visible_to(user=user)
    if lock:
        qs = qs.select_for_update(of=("self",))
    obj = qs.filter(pk=pk).first() if str(pk).isdigit() else None
    if obj is None:
        _denied(user, "episode", pk, request)
    return obj


def settlement_list_visible_to(*, user) -> QuerySet[Settlement]:
    """Hospital: its own settlements. Payers: settlements of their county."""
    if not can(user, SETTLEMENT_VIEW):
        return Settlement.objects.none()
    qs = Settlement.objects.select_related("hospital", "region__parent", "episode")
    role = role_of(user)
    if role == Role.HOSPITAL_DOCTOR:
        return qs.filter(
            hospital=organisation_of(user), patient__in=patient_list_visible_to(user=user)
        )
    if role == Role.FINANCE:
        return qs.filter(inside_q(_scope_regions(user), path_field="region__path"))
    return qs.filter(patient__in=patient_list_visible_to(user=user))


def settlement_get_for_user(*, user, pk, lock: bool = False, request=None) -> Settlement:
    require(user, SETTLEMENT_VIEW)
    qs = settlement_list_visible_to(user=user)
    if lock:
        qs = qs.select_for_update(of=("self",))
    obj = qs.filter(pk=pk).first() if str(pk).isdigit() else None
    if obj is None:
        _denied(user, "settlement", pk, request)
    return obj


def settlements_for_payers(*, user) -> QuerySet[Settlement]:
    """What the user's department sees in the settlement list.

    Payers see the settlements in which they pay something; the hospital all
    of its own.
    """
    qs = settlement_list_visible_to(user=user)
    payers = statement_payers_for(user)
    if role_of(user) != Role.HOSPITAL_DOCTOR:
        qs = qs.filter(
            Exists(
                SettlementLine.objects.filter(settlement=OuterRef("pk"), payer__in=payers).exclude(
                    amount=0
                )
            )
        )
    return qs.annotate(
        payer_amount=Coalesce(
            Subquery(
                SettlementLine.objects.filter(settlement=OuterRef("pk"), payer__in=payers)
                .order_by()
                .values("settlement")
                .annotate(s=Sum("amount"))
                .values("s")[:1]
            ),
            rules.ZERO,
        )
    )


def settlement_lines(settlement: Settlement) -> list[SettlementLine]:
    return list(settlement.lines.order_by("order"))


def effective_settlement(episode: Episode) -> Settlement | None:
    return (
        Settlement.objects.filter(
            episode=episode, kind=SettlementKind.SETTLEMENT, reversal__isnull=True
        )
        .order_by("-id")
        .first()
    )


ERR_STATEMENT_PAYER = _("您所在部门不能查看“%(payer)s”的对账单；可查看的支付方：%(allowed)s。")


def statement_payers_for(user) -> tuple[str, ...]:
    if not can(user, STATEMENT_VIEW):
        return ()
    return STATEMENT_PAYERS.get(role_of(user) or "", ())


def statement_lines(*, user, payer: str, month: date) -> QuerySet[SettlementLine]:
    """One payer's lines of the settlements (and reversals) made in ``month``."""
    if payer not in statement_payers_for(user):
        raise PermissionDenied
    start, end = rules.month_start(month), rules.month_end(month)
    return (
        SettlementLine.objects.filter(
            payer=payer,
            settlement__in=settlement_list_visible_to(user=user),
            settlement__settled_on__range=(start, end),
        )
        .exclude(amount=0)
        .select_related("settlement__hospital", "settlement__region__parent", "settlement__episode")
        .order_by("settlement__settled_on", "settlement_id")
    )


def statement_total(lines: QuerySet[SettlementLine]):
    return lines.order_by().aggregate(t=Coalesce(Sum("amount"), rules.ZERO))["t"]


def year_usage(
    *, patient: Patient, admission_date: date, episode_id: int | None = None
) -> dict[str, rules.PayerUsage]:
    """Per payer: what reached it and what it paid in the patient's EARLIER
    episodes of the admission year (DOMAIN.md → One-stop settlement).

    Only settlements in force count (neither reversed nor reversals), and
    only of episodes admitted before this one: an earlier admission date, or
    the same date and a smaller episode id (the order episodes were
    recorded). The episode itself never counts, so re-settling it after a
    reversal, or quoting it again, gives the same split as the first time;
    later episodes never reach back. ``episode_id`` None: a bill not yet
    recorded, after every episode recorded so far.
    """
    same_day_earlier = Q(settlement__admission_date=admission_date)
    if episode_id is not None:
        same_day_earlier &= Q(settlement__episode_id__lt=episode_id)
    rows = (
        SettlementLine.objects.filter(
            settlement__patient=patient,
            settlement__kind=SettlementKind.SETTLEMENT,
            settlement__reversal__isnull=True,
            settlement__admission_date__year=admission_date.year,
        )
        .filter(Q(settlement__admission_date__lt=admission_date) | same_day_earlier)
        .order_by()
        .values("payer")
        .annotate(b=Sum("base"), a=Sum("amount"))
    )
    return {r["payer"]: rules.PayerUsage(base=r["b"], paid=r["a"]) for r in rows}


def moved_out_on(patient: Patient, county_path: str) -> date | None:
    """The day the patient last moved out of the county at ``county_path``
    (a ``transfer`` moves the register's region; its history keeps when), or
    None when the record never left it. For the system's own jobs."""
    moved = None
    for at, path in (
        patient.history.order_by("history_date", "history_id")
        .values_list("history_date", "region__path")
        .iterator()
    ):
        inside = bool(path) and path.startswith(county_path)
        if inside:
            moved = None
        elif moved is None:
            moved = timezone.localdate(at)
    return moved


def patient_facts_on(patient: Patient, day: date) -> tuple[rules.PatientFacts, dict]:
    """The patient's flags at the end of ``day`` (from the record's history).

    Falls back to the current record when the history does not reach back
    that far (e.g. a patient registered after the admission).
    """
    state = patient
    if day < timezone.localdate():
        moment = timezone.make_aware(datetime.combine(day, time.max))
        try:
            state = patient.history.as_of(moment)
        except ObjectDoesNotExist:
            state = patient
    from patients.models import REGISTERED_STATUSES

    facts = rules.PatientFacts(
        insured=state.insurance != "none",
        poverty=state.poverty,
        certificate_held=state.certificate == "held",
        union_member=state.union_member,
        risk_level=state.risk_level,
        registered=state.status in REGISTERED_STATUSES,
    )
    snapshot = {
        "as_of": day.isoformat(),
        "insurance": state.insurance,
        "poverty": state.poverty,
        "certificate": state.certificate,
        "union_member": state.union_member,
        "risk_level": state.risk_level,
        "status": state.status,
    }
    return facts, snapshot


def discharge_sheet_for(*, episode: Episode) -> dict:
    """The discharge information sheet (出院信息单) of a discharged episode.

    For the downward referral: the caller has already scoped ``episode``
    (``episode_get_for_user`` / ``latest_discharge_for``).
    """
    from patients.models import Diagnosis, TreatmentEffect

    return {
        "episode": episode.pk,
        "hospital": episode.hospital.name,
        "case_number": episode.case_number,
        "admission_date": episode.admission_date,
        "discharge_date": episode.discharge_date,
        "discharge_diagnosis": episode.discharge_diagnosis,
        "discharge_diagnosis_label": (
            str(Diagnosis(episode.discharge_diagnosis).label) if episode.discharge_diagnosis else ""
        ),
        "discharge_diagnosis_detail": episode.discharge_diagnosis_detail,
        "inpatient_effect": episode.inpatient_effect,
        "inpatient_effect_label": (
            str(TreatmentEffect(episode.inpatient_effect).label) if episode.inpatient_effect else ""
        ),
        "rehab_advice": episode.rehab_advice,
        "medication_advice": list(episode.medication_advice or []),
        "medication_note": episode.medication_note,
        "attending_doctor": episode.attending_doctor,
        "note": episode.discharge_note,
    }


def latest_discharge_for(*, user, patient: Patient) -> Episode | None:
    """The patient's latest discharged episode at the user's hospital, if any."""
    return (
        episode_list_visible_to(user=user)
        .filter(patient=patient, status="discharged")
        .order_by("-discharge_date", "-id")
        .first()
    )


def episodes_in_hospital_count(*, user) -> int:
    return episode_list_visible_to(user=user).filter(status="in_hospital").count()


def batch_totals_by_status(*, user) -> dict[str, int]:
    rows = batch_list_visible_to(user=user).order_by().values("status").annotate(n=Count("pk"))
    return {r["status"]: r["n"] for r in rows}


def last_failed_incidents(patient: Patient):
    return patient.incidents.filter(guardian_failed_duties=True).order_by("-occurred_on")


def reward_bar_threshold(on: date, months: int) -> date:
    """The latest failed-duty incident date that no longer bars the guardian
    on ``on``: ``rules.reapply_barred_until`` (incident + ``months``, clamped
    to the month's end) must be on or before ``on``. Found from the
    clamped month subtraction and corrected day by day (at most a few days
    around month ends), so it is exactly the rule's boundary."""
    months = max(int(months), 0)
    day = rules.add_months(on, -months)
    while rules.add_months(day, months) > on:
        day -= timedelta(days=1)
    while rules.add_months(day + timedelta(days=1), months) <= on:
        day += timedelta(days=1)
    return day


def reward_coverage_by_region(*, county: Region, date: date) -> dict[str, dict[str, int]] | None:
    """``reward_coverage_counts`` for every region inside ``county`` at once:
    eligible guardians and those with an award active on ``date``, per
    patient region (village), from one grouped statement
    (``subsidies.coverage``), for the caller to sum upwards (reports: the
    nightly snapshot). Regions without a registered patient are left out
    (their counts are 0).

    None when no reward policy is in force for the county, as
    ``reward_coverage_counts``. The rule is ``rules.reward_ineligibility``,
    written as SQL; a test compares the two.
    """
    policy = reward_policy_in_force(county_code=county_of(county), on=date)
    if policy is None:
        return None
    return coverage.coverage_rows(policy.rule(), county, date)


def reward_coverage_counts(*, region: Region, date: date) -> dict[str, int] | None:
    """Eligible guardians and those with an active award in ``region`` on
    ``date`` (the ``reward_coverage`` indicator, DOMAIN.md → Indicators),
    both judged on that date: for a past date, the register and the awards
    as they were then, never today's state.

    None when no reward policy is in force for the region's county: the
    indicator is then not available rather than 0 %.
    """
    policy = reward_policy_in_force(county_code=county_of(region), on=date)
    if policy is None:
        return None
    rows = coverage.coverage_rows(policy.rule(), region, date)
    return {
        "eligible": sum(r["eligible"] for r in rows.values()),
        "active": sum(r["active"] for r in rows.values()),
    }
