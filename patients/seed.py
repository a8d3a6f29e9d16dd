"""Demo patients: every diagnosis, status and department flag (API.md)."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

from django.conf import settings
from django.utils import timezone

from accounts.models import OrganisationKind
from core.bulk import bulk_load, copy_insert
from patients import rules
from patients.models import (
    AssistantGuardian,
    CareRole,
    CareTeamMember,
    Certificate,
    Diagnosis,
    EconomicStatus,
    Employment,
    Guardian,
    HouseholdType,
    Insurance,
    Patient,
    Poverty,
    Status,
    id_number_index_for,
)

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华建国建华文玉兰志强海燕红梅春梅国庆晓东德明淑珍凤英桂芝秀珍玉珍志明永刚丽娟桂兰红霞金凤"
RELATIONS = ["父亲", "母亲", "配偶", "儿子", "女儿", "兄弟", "姐妹"]
ASSISTANT_RELATIONS = ["村干部", "网格员", "邻居", "亲属", "村医"]

DIAGNOSES = [
    (Diagnosis.SCHIZOPHRENIA, 55),
    (Diagnosis.BIPOLAR, 10),
    (Diagnosis.INTELLECTUAL_DISABILITY, 11),
    (Diagnosis.EPILEPSY, 8),
    (Diagnosis.DELUSIONAL, 6),
    (Diagnosis.SCHIZOAFFECTIVE, 6),
    (Diagnosis.OTHER, 4),
]
STATUSES = [
    (Status.ACTIVE, 88),
    (Status.LOST, 3),
    (Status.REFUSED, 2),
    (Status.MOVED_OUT, 2),
    (Status.DECEASED, 3),
    (Status.REMOVED, 2),
]
POVERTY = [(Poverty.NONE, 72), (Poverty.DIBAO, 16), (Poverty.TEKUN, 4), (Poverty.LOW_INCOME, 8)]


def _pick(rng, weighted):
    values, weights = zip(*weighted, strict=True)
    return rng.choices(values, weights=weights, k=1)[0]


def _name(rng) -> str:
    given = GIVEN[rng.randrange(len(GIVEN))]
    if rng.random() < 0.7:
        given += GIVEN[rng.randrange(len(GIVEN))]
    return SURNAMES[rng.randrange(len(SURNAMES))] + given


def _uuid(rng) -> uuid.UUID:
    # from the seeded generator: the same command gives the same ids
    return uuid.UUID(int=rng.getrandbits(128), version=4)


def _phone(rng) -> str:
    return "1" + rng.choice("3589") + "".join(str(rng.randrange(10)) for _ in range(9))


def seed(ctx) -> None:
    rng = ctx.rng
    today = ctx.today
    villages = ctx.data["villages"]
    orgs = ctx.data["organisations"]
    weights = [v.population or 1 for v in villages]
    used = set()
    patients, guardians, assistants = [], [], []
    now = timezone.now()
    for i in range(ctx.patients):
        village = rng.choices(villages, weights=weights, k=1)[0]
        male = rng.random() < 0.52
        birth = date(1945, 1, 1) + timedelta(days=rng.randrange(365 * 60))
        number = rules.make_resident_id(village.code[:6], birth, rng.randrange(1000), male)
        while number in used:
            number = rules.make_resident_id(village.code[:6], birth, rng.randrange(1000), male)
        used.add(number)
        status = _pick(rng, STATUSES)
        registered = today - timedelta(days=rng.randrange(60, 365 * 8))
        if i % 40 == 0:  # some registered during the current year
            registered = today - timedelta(days=rng.randrange(5, 200))
        poverty = _pick(rng, POVERTY)
        certificate = rng.choices(
            [Certificate.NONE, Certificate.APPLIED, Certificate.HELD], [52, 6, 42]
        )[0]
        diagnosis = _pick(rng, DIAGNOSES)
        township_code = village.code[:9]
        p = {
            "id": _uuid(rng),
            "name": _name(rng),
            "gender": "male" if male else "female",
            "birth_date": birth,
            "id_number": number,
            "id_number_index": id_number_index_for("resident_id", number),
            "phone": _phone(rng) if rng.random() < 0.8 else "",
            "region_id": village.code,
            "address": f"{village.name}{rng.randint(1, 300)}号",
            "household_region_id": village.code,
            "household_address": f"{village.name}{rng.randint(1, 300)}号",
            "managing_organisation_id": getattr(
                orgs.get((OrganisationKind.HEALTH_CENTRE, township_code)), "pk", None
            ),
            "diagnosis": diagnosis,
            "diagnosis_hospital": "示范县精神病专科医院",
            "diagnosis_date": registered - timedelta(days=rng.randrange(0, 60)),
            "status": status,
            "status_changed_at": now,
            "registered_on": registered,
            # as registration sets it (followups.seed replaces it from the visits)
            "next_followup_due": rules.first_followup_due(registered, settings.FIRST_FOLLOWUP_DAYS)
            if status in (Status.ACTIVE, Status.LOST, Status.REFUSED)
            else None,
            "police_registered": rng.random() < 0.35,
            "poverty": poverty,
            "certificate": certificate,
            "certificate_grade": rng.randint(1, 4) if certificate == Certificate.HELD else None,
            "certificate_number": (
                f"{number}7{rng.randint(1, 4)}" if certificate == Certificate.HELD else ""
            ),
            "union_member": rng.random() < 0.08,
            "insurance": rng.choices(
                [Insurance.RESIDENT, Insurance.EMPLOYEE, Insurance.NONE], [85, 12, 3]
            )[0],
            "household_type": rng.choice([HouseholdType.URBAN, HouseholdType.RURAL]),
            "employment": rng.choice(list(Employment)),
            "consent": status != Status.REFUSED,
            "consent_signer": "本人" if rng.random() < 0.4 else "监护人",
            "consent_date": registered,
            "first_onset_date": registered - timedelta(days=rng.randrange(100, 3000)),
            "past_lock_status": rng.choices(["none", "locked", "released"], [90, 3, 7])[0],
            "past_outpatient": rng.choice(["never", "intermittent", "continuous"]),
            "past_admissions": rng.choices([0, 1, 2, 3, 5], [40, 30, 15, 10, 5])[0],
            "economic_status": EconomicStatus.POOR
            if poverty != Poverty.NONE
            else EconomicStatus.NOT_POOR,
            "supplement_filled_on": registered,
            # the registration's latest state (followups.seed fills it)
            "risk_level": None,
            "classification": "",
            "last_followup_date": None,
            "in_hospital": False,
        }
        patients.append(p)
        guardians.append(
            {
                "patient_id": p["id"],
                "name": _name(rng),
                "relation": rng.choice(RELATIONS),
                "phone": _phone(rng),
                "address": p["address"],
                "responsibility_letter": rng.random() < 0.6,
                "responsibility_letter_date": registered if rng.random() < 0.6 else None,
            }
        )
        for _ in range(rng.choices([0, 1, 2, 3], [35, 20, 35, 10])[0]):
            assistants.append(
                {
                    "patient_id": p["id"],
                    "name": _name(rng),
                    "relation": rng.choice(ASSISTANT_RELATIONS),
                    "phone": _phone(rng),
                }
            )
    team = _care_team(rng, patients)
    # The follow-up history is simulated now (the same random sequence as in
    # its own stage), so each patient row is written once with its latest
    # state; the history's "+" row keeps the registration (see copy_insert).
    registration = _with_latest_state(ctx, patients)
    with bulk_load(
        Patient,
        Guardian,
        AssistantGuardian,
        CareTeamMember,
        *(m.history.model for m in (Patient, Guardian, AssistantGuardian, CareTeamMember)),
    ):
        copy_insert(
            Patient,
            patients,
            with_history=True,
            reason="seed_demo",
            history_values=registration,
        )
        copy_insert(Guardian, guardians, with_history=True, reason="seed_demo")
        copy_insert(AssistantGuardian, assistants, with_history=True, reason="seed_demo")
        copy_insert(CareTeamMember, team, with_history=True, reason="seed_demo")
    ctx.log(f"    {len(patients)} patients, {len(assistants)} assistant guardians")


def _with_latest_state(ctx, patients: list[dict]) -> list[dict] | None:
    """Run the follow-up stage's simulation (when that stage is in the
    pipeline) and put each patient's latest state into its row; returns the
    registration values of those columns, for the history rows."""
    from core import seeding

    if "followups.seed" not in seeding.STAGES:
        return None
    from followups import seed as followups_seed

    latest = followups_seed.simulate(ctx, patients)
    registration = []
    for p in patients:
        registration.append({key: p[key] for key in LATEST_KEYS})
        if p["id"] not in latest:  # not followed up (refused): as registered
            continue
        risk, classification, last, due, in_hospital, changed = latest[p["id"]]
        p.update(
            risk_level=risk,
            classification=classification,
            last_followup_date=last,
            next_followup_due=due,
            in_hospital=in_hospital,
        )
        if changed is not None:
            p["status_changed_at"] = changed
    return registration


LATEST_KEYS = (
    "risk_level",
    "classification",
    "last_followup_date",
    "next_followup_due",
    "in_hospital",
    "status_changed_at",
)


def _care_team(rng, patients) -> list[dict]:
    # a care team for the first patients (九管一)
    team = []
    for p in patients[: min(len(patients), 200)]:
        team.append({"patient_id": p["id"], "role": CareRole.DOCTOR, "name": "精防医生"})
        team.append({"patient_id": p["id"], "role": CareRole.POLICE, "name": "社区民警"})
        team.append({"patient_id": p["id"], "role": CareRole.GRID_WORKER, "name": _name(rng)})
    return team
