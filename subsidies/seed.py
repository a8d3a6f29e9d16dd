"""Demo policies, guardian rewards in every state, payment batches, hospital
episodes and settlements (API.md → demo data; DOMAIN.md demo county rules).

Runs after accounts, patients and follow-ups. Awards go to patients the
default rule finds eligible; where the register holds too few qualifying
incidents or risk levels (follow-up data absent), demo ``trouble`` incidents
recorded by the township police station are added so every state can be
shown. Batches and settlements are computed by the real services.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db.models import Count, Exists, OuterRef, Q
from django.utils import timezone
from simple_history.utils import bulk_create_with_history

from accounts.models import OrganisationKind
from accounts.roles import Role
from accounts.seed import grant_demo_exports
from accounts.services import staff_create
from patients.models import REGISTERED_STATUSES, Incident, IncidentKind, Patient
from subsidies import rules, selectors, services
from subsidies.models import (
    ApplicationSource,
    Award,
    AwardEvent,
    AwardStatus,
    AwardStep,
    EndReason,
    Episode,
    EpisodeStatus,
    Frequency,
    RewardBatch,
)

REWARD_FROM = date(2019, 7, 1)
SETTLEMENT_FROM = date(2018, 1, 1)

# DOMAIN.md → One-stop settlement, the demo county rule (no commercial cover)
DEMO_LAYERS = [
    {"order": 1, "payer": "basic_insurance", "condition": "insured", "ratio": Decimal("90")},
    {
        "order": 2,
        "payer": "serious_illness_insurance",
        "condition": "insured",
        "ratio": Decimal("60"),
        "deductible_per_year": Decimal("20000.00"),
    },
    {
        "order": 4,
        "payer": "civil_affairs",
        "condition": "poverty_assistance",
        "ratio": Decimal("100"),
    },
    {
        "order": 5,
        "payer": "disabled_federation",
        "condition": "certificate_held",
        "ratio": Decimal("100"),
        "cap_per_year": Decimal("3000.00"),
    },
    {"order": 6, "payer": "union_mutual_aid", "condition": "union_member", "ratio": Decimal("50")},
    {
        "order": 7,
        "payer": "finance_backstop",
        "condition": "poor_or_high_risk",
        "min_risk_level": 3,
        "ratio": Decimal("100"),
        "valid_from": date(2019, 4, 19),
        "valid_to": date(2019, 12, 31),
    },
    {
        "order": 8,
        "payer": "finance_backstop",
        "condition": "registered",
        "ratio": Decimal("100"),
        "valid_from": date(2020, 1, 1),
    },
]

STATES = [
    # (status, how many)
    (AwardStatus.ACTIVE, 30),
    (AwardStatus.APPLIED, 3),
    (AwardStatus.REVIEWED, 3),
    (AwardStatus.NOTICE, 2),
    (AwardStatus.SUSPENDED, 3),
    (AwardStatus.ENDED, 2),
    (AwardStatus.REJECTED, 2),
]


# Township governance offices (乡镇综治办) do the township review: one demo
# account per demo township, beyond API.md's ten (like finance1).
TOWNSHIP_GOVERNANCE = [
    ("towngov1", "990102001", "陈主任"),
    ("towngov2", "990102002", "林主任"),
    ("towngov3", "990102003", "何主任"),
    ("towngov4", "990102004", "罗主任"),
]
TOWNSHIP_DOCTORS = {"990102001": "doctor1", "990102002": "doctor2"}


def _user(username):
    return get_user_model().objects.filter(username=username).first()


def _township_people(ctx) -> dict[str, dict]:
    """Per demo township: its governance office account (created if missing)
    and its health centre doctor, where the demo has one."""
    orgs = ctx.data["organisations"]
    people: dict[str, dict] = {}
    for username, township, display in TOWNSHIP_GOVERNANCE:
        org = orgs.get((OrganisationKind.GOVERNANCE_OFFICE.value, township))
        if org is None:
            continue
        user = _user(username) or staff_create(
            username=username,
            password=ctx.password,
            organisation=org,
            role=Role.GOVERNANCE,
            display_name=display,
            validate=False,
        )
        doctor = _user(TOWNSHIP_DOCTORS[township]) if township in TOWNSHIP_DOCTORS else None
        people[township] = {
            "governance": user,
            "governance_org": org,
            "doctor": doctor,
            "doctor_org": doctor.staff.organisation if doctor else None,
        }
    return people


def _aware(d: date, hour: int = 10) -> datetime:
    return timezone.make_aware(datetime.combine(d, time(hour, 0)))


def seed(ctx) -> None:
    county = ctx.data["county"]
    orgs = ctx.data["organisations"]
    gov = _user("governance1")
    civil = _user("civil1")
    hospital = _user("hospital1")
    finance = _user("finance1")
    finance_org = orgs.get((OrganisationKind.FINANCE_BUREAU.value, county.pk))
    if finance is None and finance_org is not None:
        finance = staff_create(
            username="finance1",
            password=ctx.password,
            organisation=finance_org,
            role=Role.FINANCE,
            display_name="冯科长",
            validate=False,
        )
    grant_demo_exports()  # finance exports the payment batches
    services.reward_policy_create(
        region=county,
        name="示范县严重精神障碍患者监护人以奖代补办法",
        valid_from=REWARD_FROM,
        yearly_amount=Decimal("3600.00"),
        frequency=Frequency.QUARTERLY,
        notice_days=7,
        notes="每人每年不低于3600元，按季度发放（参照威环街政发〔2019〕15号）。",
    )
    services.settlement_policy_create(
        region=county,
        name="示范县严重精神障碍患者住院费用一站式结算办法",
        valid_from=SETTLEMENT_FROM,
        layers=DEMO_LAYERS,
        notes="基本医保90%，大病保险起付线2万元以上60%，民政、残联、工会依次救助，财政兜底。",
    )
    awards = _seed_awards(ctx, county, gov, civil, _township_people(ctx))
    batches = _seed_batches(ctx, county, gov, finance)
    settlements = _seed_settlements(ctx, hospital) if hospital is not None else 0
    ctx.log(f"    {awards} rewards, {batches} batches, {settlements} settlements")


# --- guardian rewards ---------------------------------------------------------


def _candidates(county):
    """Registered, police-registered patients whose guardian signed the letter
    and who have at least two assistant guardians (the default rule's other parts)."""
    return (
        Patient.objects.filter(
            region__path__startswith=county.path,
            status__in=REGISTERED_STATUSES,
            police_registered=True,
            guardian__responsibility_letter=True,
        )
        .annotate(n_assist=Count("assistant_guardians"))
        .filter(n_assist__gte=2)
        .annotate(
            qualifies=Q(risk_level__gte=3)
            | Q(
                Exists(
                    Incident.objects.filter(
                        patient=OuterRef("pk"), kind__in=["trouble", "disaster"]
                    )
                )
            )
        )
        .select_related("guardian", "region")
        .order_by("-qualifies", "region_id", "name", "birth_date")
    )


def _incident(ctx, patient, *, kind, on: date, failed: bool, orgs) -> Incident:
    station = orgs.get((OrganisationKind.POLICE_STATION.value, patient.region_id[:9]))
    return Incident(
        patient=patient,
        kind=kind,
        occurred_on=on,
        place=f"{patient.region.name}",
        description="（示例数据）患者在村内与邻居发生冲突，损坏财物。",
        handling="民警到场处置，通知监护人加强看护。",
        guardian_failed_duties=failed,
        organisation=station or next(iter(orgs.values())),
    )


def _seed_awards(ctx, county, gov, civil, township_people) -> int:
    rng, today = ctx.rng, ctx.today
    orgs = ctx.data["organisations"]
    needed = sum(n for _s, n in STATES)
    rows = list(_candidates(county)[: needed * 3])
    if not rows:
        return 0
    qualifying = [p for p in rows if p.qualifies]
    others = [p for p in rows if not p.qualifies]
    incidents = []
    while len(qualifying) < needed and others:
        p = others.pop(0)
        on = today - timedelta(days=rng.randrange(400, 1500))
        incidents.append(
            _incident(ctx, p, kind=IncidentKind.TROUBLE, on=on, failed=False, orgs=orgs)
        )
        qualifying.append(p)
    chosen = qualifying[:needed]
    rng.shuffle(chosen)
    policy = selectors.reward_policy_in_force(county_code=county.pk, on=today)
    gov_org = gov.staff.organisation if gov else None
    civil_org = civil.staff.organisation if civil else None
    awards, plans = [], []
    it = iter(chosen)
    for status, n in STATES:
        for _ in range(n):
            patient = next(it, None)
            if patient is None:
                break
            award, events, extra = _plan_award(
                ctx,
                patient,
                status,
                policy,
                gov,
                civil,
                gov_org,
                civil_org,
                orgs,
                township_people.get(patient.region_id[:9], {}),
            )
            awards.append(award)
            plans.append(events)
            incidents.extend(extra)
    Incident.objects.bulk_create(incidents)
    for award in awards:
        if award.suspended_incident is not None:
            award.suspended_incident_id = award.suspended_incident.pk
    bulk_create_with_history(awards, Award, default_change_reason="seed_demo")
    saved = {a.patient_id: a for a in Award.objects.filter(patient__in=[a.patient for a in awards])}
    event_rows = []
    for award, events in zip(awards, plans, strict=True):
        for step, at, by, org, note in events:
            event_rows.append(
                AwardEvent(
                    award=saved[award.patient_id],
                    step=step,
                    at=at,
                    by=by,
                    organisation=org,
                    note=note,
                )
            )
    AwardEvent.objects.bulk_create(event_rows)
    return len(awards)


def _plan_award(ctx, patient, status, policy, gov, civil, gov_org, civil_org, orgs, town):
    """One award in ``status`` with the events that led there (backdated).

    ``town``: the township's governance office account (township review, and
    applications it enters) and health centre doctor (applications), if any.
    """
    rng, today = ctx.rng, ctx.today
    guardian = patient.guardian
    source = rng.choice(
        [ApplicationSource.HEALTH_CENTRE, ApplicationSource.VILLAGE, ApplicationSource.GOVERNANCE]
    )
    # who entered the application: the health centre's doctor, or the
    # township governance office (it may enter village nominations too)
    doctor, town_gov = town.get("doctor"), town.get("governance") or gov
    town_gov_org = town.get("governance_org") or gov_org
    if source == ApplicationSource.HEALTH_CENTRE and doctor is None:
        source = ApplicationSource.VILLAGE
    if source == ApplicationSource.GOVERNANCE or doctor is None:
        applicant, applicant_org = town_gov, town_gov_org
    else:
        applicant, applicant_org = doctor, town.get("doctor_org")
    recent = status in (AwardStatus.APPLIED, AwardStatus.REVIEWED, AwardStatus.NOTICE)
    applied = today - timedelta(days=rng.randrange(1, 4) if recent else rng.randrange(120, 900))
    if status == AwardStatus.NOTICE:
        applied = today - timedelta(days=rng.randrange(8, 12))
    award = Award(
        patient=patient,
        region=patient.region,
        policy=policy,
        status=status,
        guardian_name=guardian.name,
        guardian_relation=guardian.relation,
        source=source,
        applicant_name="村委会主任" if source == ApplicationSource.VILLAGE else "",
        applied_on=applied,
        eligibility_snapshot={"police_registered": True, "assistant_guardians": patient.n_assist},
    )
    award.applied_by = applicant
    events = [(AwardStep.APPLIED, _aware(applied, 9), applicant, applicant_org, "")]
    extra: list[Incident] = []
    if status == AwardStatus.APPLIED:
        return award, events, extra
    reviewed = applied + timedelta(days=rng.randrange(2, 6))
    if status == AwardStatus.REJECTED:
        award.reviewed_by, award.reviewed_at = town_gov, _aware(reviewed)
        award.closing_note = "协助监护人未实际履行协助职责，待补充后重新申请。"
        events.append(
            (
                AwardStep.TOWNSHIP_REJECTED,
                _aware(reviewed),
                town_gov,
                town_gov_org,
                award.closing_note,
            )
        )
        return award, events, extra
    award.reviewed_by, award.reviewed_at = town_gov, _aware(reviewed)
    events.append(
        (
            AwardStep.TOWNSHIP_APPROVED,
            _aware(reviewed),
            town_gov,
            town_gov_org,
            "经入户核实，情况属实。",
        )
    )
    if status == AwardStatus.REVIEWED:
        return award, events, extra
    approved = min(reviewed + timedelta(days=rng.randrange(2, 8)), today - timedelta(days=1))
    award.approved_by, award.approved_at = civil, _aware(approved)
    award.notice_until = approved + timedelta(days=policy.notice_days)
    events.append((AwardStep.COUNTY_APPROVED, _aware(approved), civil, civil_org, ""))
    if status == AwardStatus.NOTICE:
        award.notice_until = max(award.notice_until, today + timedelta(days=1))
        return award, events, extra
    active_from = award.notice_until + timedelta(days=1)
    award.active_from = active_from
    valid_until = rules.year_after(active_from)
    events.append((AwardStep.ACTIVATED, _aware(active_from, 2), None, None, ""))
    while valid_until < today + timedelta(days=rng.randrange(10, 300)):
        review_day = valid_until - timedelta(days=rng.randrange(5, 40))
        if review_day >= today:
            break
        events.append((AwardStep.RENEWED, _aware(review_day), gov, gov_org, "年审合格。"))
        valid_until = rules.renewed_until(valid_until)
    award.valid_until = valid_until
    if status == AwardStatus.SUSPENDED:
        on = max(active_from + timedelta(days=40), today - timedelta(days=rng.randrange(30, 150)))
        on = min(on, today - timedelta(days=1))
        incident = _incident(ctx, patient, kind=IncidentKind.TROUBLE, on=on, failed=True, orgs=orgs)
        extra.append(incident)
        award.suspended_incident = incident
        award.stop_from = rules.next_month_start(on)
        award.reapply_from = rules.add_months(on, policy.reapply_bar_months)
        events.append(
            (
                AwardStep.SUSPENDED,
                _aware(min(on + timedelta(days=3), today)),
                gov,
                gov_org,
                "监护人未履行看护责任，患者肇事；次月起停发。",
            )
        )
    elif status == AwardStatus.ENDED:
        ended = today - timedelta(days=rng.randrange(20, 120))
        ended = max(ended, active_from)
        reason = rng.choice([EndReason.REVIEW_FAILED, EndReason.OTHER])
        award.end_reason, award.ended_on = reason, ended
        award.stop_from = rules.next_month_start(ended)
        award.closing_note = "监护人申请放弃。" if reason == EndReason.OTHER else "年审不合格。"
        events.append((AwardStep.ENDED, _aware(ended), gov, gov_org, award.closing_note))
    return award, events, extra


def _seed_batches(ctx, county, gov, finance) -> int:
    """The last four quarters: two paid, one reviewed, the latest awaiting review."""
    today = ctx.today
    last = rules.last_completed_period("quarterly", today)
    periods = [last]
    for _ in range(3):
        periods.insert(0, rules.last_completed_period("quarterly", periods[0].start))
    made = 0
    for i, period in enumerate(periods):
        if period.end < REWARD_FROM:
            continue
        batch, _created = services.batch_draw(region=county, period_code=period.code, today=today)
        made += 1
        if gov is not None and i < 3:
            services.batch_review(batch_id=batch.pk, by=gov)
        if finance is not None and i < 2:
            services.batch_mark_paid(
                batch_id=batch.pk, by=finance, reference=f"CZ{period.code}{batch.pk:04d}"
            )
    return made if RewardBatch.objects.filter(region=county).exists() else 0


# --- hospital episodes and settlements ----------------------------------------------


def _money(rng, lo: int, hi: int) -> Decimal:
    return Decimal(rng.randrange(lo * 100, hi * 100)) / 100


def _seed_settlements(ctx, hospital_user) -> int:
    rng, today = ctx.rng, ctx.today
    county = ctx.data["county"]
    hospital = hospital_user.staff.organisation
    base = Patient.objects.filter(
        region__path__startswith=county.path, status__in=REGISTERED_STATUSES, in_hospital=False
    ).select_related("region")
    picks: list[Patient] = []
    for flt in (
        Q(poverty__in=["dibao", "tekun"]),
        Q(certificate="held"),
        Q(union_member=True),
        Q(insurance="none"),
        Q(poverty="none", certificate="none"),
    ):
        for p in base.filter(flt).order_by("region_id", "name", "birth_date")[:5]:
            if p not in picks:
                picks.append(p)
    count = 0
    for i, patient in enumerate(picks[:24]):
        if i < 5:  # in hospital now
            admission = today - timedelta(days=rng.randrange(2, 30))
            episode = services._new_episode(
                patient=patient,
                hospital=hospital,
                by=hospital_user,
                case_number=f"{admission:%Y}{9000 + i:05d}",
                admission_date=admission,
                note="病情波动，家属送诊入院。",
                today=today,
            )
            services._set_in_hospital(patient, True, by=hospital_user, reason="episode.admitted")
            continue
        discharge = today - timedelta(days=rng.randrange(3, 40))
        stays = []  # (admission, discharge), latest first
        for _n in range(2 if patient.certificate == "held" and i % 3 == 0 else 1):
            admission = discharge - timedelta(days=rng.randrange(12, 50))
            if stays and admission.year != today.year:
                break
            stays.append((admission, discharge))
            discharge = admission - timedelta(days=rng.randrange(30, 90))
        for n, (admission, discharge) in enumerate(reversed(stays)):
            episode = services._new_episode(
                patient=patient,
                hospital=hospital,
                by=hospital_user,
                case_number=f"{admission:%Y}{1000 + i * 10 + n:05d}",
                admission_date=admission,
                note="",
                today=today,
            )
            services._discharge(
                episode,
                patient,
                by=hospital_user,
                discharge_date=discharge,
                sheet={
                    "discharge_diagnosis": patient.diagnosis,
                    "inpatient_effect": rng.choice(["cured", "improved", "improved", "unchanged"]),
                    "rehab_advice": "坚持服药，参加社区康复，定期门诊复查。",
                    "medication_advice": [
                        {"drug": "利培酮", "morning_mg": "1", "evening_mg": "2"},
                    ],
                    "medication_note": "按时按量服药，不可自行停药。",
                    "attending_doctor": "张医生",
                },
                require=True,
            )
            total = _money(rng, 4000, 38000)
            in_scope = (total * Decimal(rng.randrange(72, 96)) / 100).quantize(Decimal("0.01"))
            services._settle(
                episode,
                patient,
                by=hospital_user,
                total_cost=total,
                in_scope_cost=in_scope,
                settled_on=discharge,
            )
            count += 1
    # one correction: the latest settlement reversed and settled again
    latest = (
        Episode.objects.filter(hospital=hospital, status=EpisodeStatus.DISCHARGED)
        .order_by("-discharge_date", "-id")
        .first()
    )
    if latest is not None:
        original = selectors.effective_settlement(latest)
        services.settlement_reverse(
            settlement_id=original.pk,
            by=hospital_user,
            reason="政策范围内费用录入有误。",
            today=today,
        )
        services._settle(
            latest,
            latest.patient,
            by=hospital_user,
            total_cost=original.total_cost,
            in_scope_cost=(original.in_scope_cost - Decimal("200.00")).max(Decimal("0")),
            settled_on=today,
        )
        count += 2
    return count


def load(ctx) -> None:
    """Nothing later stages need from here."""
    return None
