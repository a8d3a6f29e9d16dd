"""A province-scale data set with PostgreSQL COPY (``manage.py seed_province``).

Shape: one province (990000) → cities of four counties → counties of up to
15 townships → 12 villages each; per township a health centre, police
station and governance office; per county a health bureau, specialist
hospital, prevention agency, police bureau, governance office, civil
affairs bureau, federation, finance bureau and rehab institution; the
province a health commission. The staff accounts the benchmark logs in
with are made by ``accounts.services.staff_create``.

Rows: patients (ID number and phone encrypted with ``core.crypto``, blind
index from ``patients.models.id_number_index_for``) with their creation in
the history table, guardians and assistant guardians, two years of
follow-ups per patient (:mod:`bench.trajectory`) with the patients' latest
fields set from them, alerts with their recipients (risk, overdue now and
in the past, lost, incident), incidents.

Speed: townships are generated in worker processes (``--jobs``) while the
main process streams their rows into one transaction with COPY; secondary
indexes and foreign keys of the bulk tables are dropped first and rebuilt
at the end in the same transaction (a failure rolls everything back).
"""

from __future__ import annotations

import math
import multiprocessing
import random
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from django.db import connection, connections, transaction
from django.utils import timezone

from bench import names
from bench.copyrows import NULL, TableSpec, esc, t_bool, t_json
from bench.trajectory import HIGH_RISK, POOL, Clinical, Weighted, simulate

MARKER = "seed_province"
TOWNSHIPS_PER_COUNTY = 15
COUNTIES_PER_CITY = 4
VILLAGES_PER_TOWNSHIP = 12
PREVALENCE = 0.0046  # registered patients per resident (DOMAIN.md target ≥ 4.5‰)
PROVINCE = "990000"
BENCH_PASSWORD = "Bench-Pass-2026!"
TZ = "+08"  # Asia/Shanghai has no daylight saving time
FEN = Decimal("0.01")

# The accounts the benchmark uses; all in the first county (and its first township).
BENCH_ACCOUNTS = (
    ("bench_doctor", "township_doctor", "health_centre"),
    ("bench_hospital", "hospital_doctor", "specialist_hospital"),
    ("bench_prevention", "prevention_staff", "prevention_agency"),
    ("bench_police", "police", "police_station"),
    ("bench_governance", "governance", "county_governance"),
    ("bench_civil", "civil_affairs", "civil_affairs_bureau"),
    ("bench_dpf", "disabled_federation", "federation"),
    ("bench_official", "official", "health_bureau"),
    ("bench_province", "official", "province"),
)

STATUSES = (
    ("active", 88),
    ("lost", 3),
    ("refused", 2),
    ("moved_out", 2),
    ("deceased", 3),
    ("removed", 2),
)
DIAGNOSES = (
    ("schizophrenia", 55),
    ("bipolar", 10),
    ("intellectual_disability", 11),
    ("epilepsy", 8),
    ("delusional", 6),
    ("schizoaffective", 6),
    ("other", 4),
)
POVERTY = (("none", 72), ("dibao", 16), ("tekun", 4), ("low_income", 8))
OVERDUE_SHARE = 0.06  # of active patients, not visited for weeks
INCIDENT_SHARE = 0.02


class SeedError(RuntimeError):
    pass


# ------------------------------------------------------------------ plan


@dataclass
class TownshipPlan:
    index: int  # 0-based over the province
    code: str
    name: str
    short: str
    county_code: str
    slot: int  # 0-based position inside its county (ID number sequence range)
    patients: int
    villages: list[tuple[str, str, int]] = field(default_factory=list)  # code, name, weight


@dataclass
class Plan:
    patients: int
    townships: int
    seed: int
    cities: list[tuple[str, str]]
    counties: list[tuple[str, str, str]]  # code, name, city code
    towns: list[TownshipPlan]

    def params(self) -> dict:
        return {
            "patients": self.patients,
            "townships": self.townships,
            "seed": self.seed,
            "keys": key_fingerprint(),
        }


def key_fingerprint() -> str:
    """Which keys encrypted the data set (a reuse with other keys could not
    read it): the encrypting key id and a hash of the blind-index key."""
    import hashlib

    from django.conf import settings

    from core.crypto import current_kid

    blind = hashlib.sha256((settings.BLIND_INDEX_KEY or "").encode()).hexdigest()[:12]
    return f"{current_kid()}:{blind}"


def make_plan(*, patients: int, townships: int, seed: int) -> Plan:
    if townships < 1 or patients < townships:
        raise SeedError("Need at least one township and one patient per township.")
    n_counties = math.ceil(townships / TOWNSHIPS_PER_COUNTY)
    n_cities = math.ceil(n_counties / COUNTIES_PER_CITY)
    if n_cities > 99:
        raise SeedError("At most 99 cities (5,940 townships).")
    rng = random.Random(seed)
    cities = [(f"99{c + 1:02d}00", f"{names.place(c + 300)}市") for c in range(n_cities)]
    counties = []
    for k in range(n_counties):
        city = cities[k // COUNTIES_PER_CITY][0]
        code = f"{city[:4]}{k % COUNTIES_PER_CITY + 2:02d}"  # 01 is a city's own district
        counties.append((code, f"{names.place(k + 200)}县", city))
    base, extra = divmod(townships, n_counties)
    weights = [rng.uniform(0.7, 1.3) for _ in range(townships)]
    total = sum(weights)
    counts = [max(1, int(patients * w / total)) for w in weights]
    counts[0] += patients - sum(counts)
    towns: list[TownshipPlan] = []
    i = 0
    for k, (ccode, _name, _city) in enumerate(counties):
        for slot in range(base + (1 if k < extra else 0)):
            short = names.place(i)
            t = TownshipPlan(
                index=i,
                code=f"{ccode}{slot + 1:03d}",
                name=f"{short}镇",
                short=short,
                county_code=ccode,
                slot=slot,
                patients=counts[i],
            )
            for v in range(VILLAGES_PER_TOWNSHIP):
                suffix = names.VILLAGE_SUFFIX[v % len(names.VILLAGE_SUFFIX)]
                vname = f"{short}{names.place(v * 7 + i)[:2]}{suffix}"
                t.villages.append((f"{t.code}{v + 1:03d}", vname, rng.randint(6, 14)))
            towns.append(t)
            i += 1
    return Plan(patients, townships, seed, cities, counties, towns)


# ------------------------------------------------------------------ regions, organisations, staff


def _population(n_patients: int) -> int:
    return round(n_patients / PREVALENCE)


def create_structure(plan: Plan, *, password: str) -> dict:
    """Regions, organisations and the bench accounts (ORM; small).

    Returns the organisation ids the row generators need.
    """
    from simple_history.utils import bulk_create_with_history

    from accounts.models import Organisation, Region, RegionLevel
    from accounts.models import OrganisationKind as K
    from accounts.services import staff_create

    def path(*codes: str) -> str:
        return "/" + "/".join(codes) + "/"

    regions: list[Region] = []
    pop_town = {t.code: _population(t.patients) for t in plan.towns}
    pop_county: dict[str, int] = {}
    for t in plan.towns:
        pop_county[t.county_code] = pop_county.get(t.county_code, 0) + pop_town[t.code]
    pop_city: dict[str, int] = {}
    for ccode, _n, city in plan.counties:
        pop_city[city] = pop_city.get(city, 0) + pop_county[ccode]
    regions.append(
        Region(
            code=PROVINCE,
            name="示范省",
            level=RegionLevel.PROVINCE,
            path=path(PROVINCE),
            population=sum(pop_city.values()),
        )
    )
    city_of = {}
    for code, name in plan.cities:
        regions.append(
            Region(
                code=code,
                name=name,
                level=RegionLevel.CITY,
                parent_id=PROVINCE,
                path=path(PROVINCE, code),
                population=pop_city[code],
            )
        )
    for code, name, city in plan.counties:
        city_of[code] = city
        regions.append(
            Region(
                code=code,
                name=name,
                level=RegionLevel.COUNTY,
                parent_id=city,
                path=path(PROVINCE, city, code),
                population=pop_county[code],
            )
        )
    for t in plan.towns:
        tpath = path(PROVINCE, city_of[t.county_code], t.county_code, t.code)
        regions.append(
            Region(
                code=t.code,
                name=t.name,
                level=RegionLevel.TOWNSHIP,
                parent_id=t.county_code,
                path=tpath,
                population=pop_town[t.code],
            )
        )
        weights = sum(w for _c, _n, w in t.villages)
        parts = [pop_town[t.code] * w // weights for _c, _n, w in t.villages]
        parts[0] += pop_town[t.code] - sum(parts)
        for (vcode, vname, _w), pop in zip(t.villages, parts, strict=True):
            regions.append(
                Region(
                    code=vcode,
                    name=vname,
                    level=RegionLevel.VILLAGE,
                    parent_id=t.code,
                    path=f"{tpath}{vcode}/",
                    population=pop,
                )
            )
    Region.objects.bulk_create(regions, batch_size=2000)

    dept = {
        K.HEALTH_CENTRE: "health",
        K.SPECIALIST_HOSPITAL: "health",
        K.PREVENTION_AGENCY: "health",
        K.HEALTH_BUREAU: "health",
        K.REHAB_INSTITUTION: "health",
        K.POLICE_STATION: "police",
        K.POLICE_BUREAU: "police",
        K.GOVERNANCE_OFFICE: "governance",
        K.CIVIL_AFFAIRS_BUREAU: "civil_affairs",
        K.FEDERATION: "disabled_federation",
        K.FINANCE_BUREAU: "finance",
    }
    orgs: list[Organisation] = []

    def org(name: str, kind: str, region: str) -> None:
        orgs.append(Organisation(name=name, kind=kind, department=dept[kind], region_id=region))

    org("示范省卫生健康委员会", K.HEALTH_BUREAU, PROVINCE)
    for code, name, _city in plan.counties:
        short = name[:-1]
        org(f"{short}县卫生健康局", K.HEALTH_BUREAU, code)
        org(f"{short}县精神病专科医院", K.SPECIALIST_HOSPITAL, code)
        org(f"{short}县精神卫生防治中心", K.PREVENTION_AGENCY, code)
        org(f"{short}县公安局", K.POLICE_BUREAU, code)
        org(f"{short}县委政法委综治办", K.GOVERNANCE_OFFICE, code)
        org(f"{short}县民政局", K.CIVIL_AFFAIRS_BUREAU, code)
        org(f"{short}县残联", K.FEDERATION, code)
        org(f"{short}县财政局", K.FINANCE_BUREAU, code)
        org(f"{short}县精神康复中心", K.REHAB_INSTITUTION, code)
    for t in plan.towns:
        org(f"{t.name}卫生院", K.HEALTH_CENTRE, t.code)
        org(f"{t.short}派出所", K.POLICE_STATION, t.code)
        org(f"{t.name}综治办", K.GOVERNANCE_OFFICE, t.code)
    bulk_create_with_history(orgs, Organisation, batch_size=2000, default_change_reason=MARKER)
    by_key = {
        (o.kind, o.region_id): o.pk
        for o in Organisation.objects.filter(region__path__startswith=path(PROVINCE))
    }

    first_town = plan.towns[0]
    county = first_town.county_code
    account_org = {
        "health_centre": by_key[(K.HEALTH_CENTRE, first_town.code)],
        "police_station": by_key[(K.POLICE_STATION, first_town.code)],
        "specialist_hospital": by_key[(K.SPECIALIST_HOSPITAL, county)],
        "prevention_agency": by_key[(K.PREVENTION_AGENCY, county)],
        "county_governance": by_key[(K.GOVERNANCE_OFFICE, county)],
        "civil_affairs_bureau": by_key[(K.CIVIL_AFFAIRS_BUREAU, county)],
        "federation": by_key[(K.FEDERATION, county)],
        "health_bureau": by_key[(K.HEALTH_BUREAU, county)],
        "province": by_key[(K.HEALTH_BUREAU, PROVINCE)],
    }
    org_objects = Organisation.objects.in_bulk(list(account_org.values()))
    for username, role, key in BENCH_ACCOUNTS:
        staff_create(
            username=username,
            password=password,
            organisation=org_objects[account_org[key]],
            role=role,
            display_name=username,
            validate=False,
        )
    return by_key


# DOMAIN.md → One-stop settlement, the demo county rule (no commercial cover)
SETTLEMENT_LAYERS = (
    (1, "basic_insurance", "insured", "90", None, None, None),
    (2, "serious_illness_insurance", "insured", "60", "20000.00", None, None),
    (4, "civil_affairs", "poverty_assistance", "100", None, None, None),
    (5, "disabled_federation", "certificate_held", "100", None, None, "3000.00"),
    (6, "union_mutual_aid", "union_member", "50", None, None, None),
    (7, "finance_backstop", "registered", "100", None, None, None),
)


def create_policies(plan: Plan) -> dict[str, dict]:
    """Each county's guardian reward and settlement policy (DOMAIN.md demo
    county values), when the subsidies app is installed; returns per county
    the ids and the plain rules the generators need."""
    from decimal import Decimal

    from django.apps import apps

    try:
        reward_model = apps.get_model("subsidies", "RewardPolicy")
        settle_model = apps.get_model("subsidies", "SettlementPolicy")
        layer_model = apps.get_model("subsidies", "PayerLayer")
    except LookupError:
        return {}
    out = {}
    for code, name, _city in plan.counties:
        reward = reward_model.objects.create(
            region_id=code,
            name=f"{name}以奖代补",
            valid_from=date(2019, 7, 1),
            yearly_amount=Decimal("3600.00"),
            frequency="quarterly",
        )
        policy = settle_model.objects.create(
            region_id=code, name=f"{name}一站式结算", valid_from=date(2018, 1, 1)
        )
        layers = []
        for order, payer, condition, ratio, deductible, per_episode, per_year in SETTLEMENT_LAYERS:
            layers.append(
                layer_model(
                    policy=policy,
                    order=order,
                    payer=payer,
                    condition=condition,
                    ratio=Decimal(ratio),
                    deductible_per_year=Decimal(deductible) if deductible else None,
                    cap_per_episode=Decimal(per_episode) if per_episode else None,
                    cap_per_year=Decimal(per_year) if per_year else None,
                )
            )
        layer_model.objects.bulk_create(layers)
        out[code] = {
            "reward_policy": reward.pk,
            "settlement_policy": policy.pk,
            "settlement_version": policy.version,
            "layers": policy.rule_layers(layers),
            "snapshot": policy.snapshot(layers),
        }
    return out


# ------------------------------------------------------------------ row generation


# attnames each generator fills (everything else takes the model default)
GIVEN = {
    "patient": [
        "id",
        "name",
        "gender",
        "birth_date",
        "id_type",
        "id_number",
        "id_number_index",
        "phone",
        "region_id",
        "address",
        "household_region_id",
        "household_address",
        "managing_organisation_id",
        "diagnosis",
        "diagnosis_hospital",
        "diagnosis_date",
        "status",
        "status_changed_at",
        "registered_on",
        "risk_level",
        "classification",
        "last_followup_date",
        "next_followup_due",
        "police_registered",
        "poverty",
        "certificate",
        "certificate_grade",
        "certificate_number",
        "union_member",
        "insurance",
        "in_community_rehab",
        "in_hospital",
        "household_type",
        "employment",
        "consent",
        "consent_signer",
        "consent_date",
        "first_onset_date",
        "past_lock_status",
        "past_outpatient",
        "past_admissions",
        "economic_status",
        "supplement_filled_on",
        "created_at",
        "updated_at",
    ],
    "followup": [
        "id",
        "patient_id",
        "visit_date",
        "mode",
        "outcome",
        "contacts",
        "lost_reason",
        "death_date",
        "death_cause",
        "risk_level",
        "symptoms",
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
        "medication_compliance",
        "adverse_reaction",
        "adverse_reaction_serious",
        "treatment_effect",
        "referral_suggested",
        "referral_reason",
        "referred_to",
        "medications",
        "medication_guidance",
        "rehab_measures",
        "suggested_classification",
        "classification",
        "suggested_next_due_date",
        "next_due_date",
        "organisation_id",
        "created_at",
    ],
    "guardian": [
        "patient_id",
        "name",
        "relation",
        "phone",
        "address",
        "responsibility_letter",
        "responsibility_letter_date",
    ],
    "assistant": ["patient_id", "name", "relation", "phone"],
    "incident": [
        "id",
        "patient_id",
        "kind",
        "occurred_on",
        "place",
        "description",
        "handling",
        "guardian_failed_duties",
        "organisation_id",
        "created_at",
    ],
    "alert": [
        "id",
        "patient_id",
        "kind",
        "episode",
        "risk_level",
        "followup_id",
        "incident_id",
        "raised_at",
        "due_by",
        "status",
        "resolved_at",
    ],
    "recipient": [
        "alert_id",
        "organisation_id",
        "escalated",
        "status",
        "created_at",
        "acknowledged_at",
        "resolved_at",
        "note",
    ],
}
HISTORY_EXTRA = ("history_date", "history_change_reason", "history_type")

# rows of the referrals and subsidies apps (written when those apps are installed)
OTHER_GIVEN = {
    "referral": (
        "referrals.Referral",
        False,
        [
            "id",
            "patient_id",
            "kind",
            "status",
            "from_organisation_id",
            "to_organisation_id",
            "reason",
            "accept_by",
            "created_at",
            "status_changed_at",
        ],
    ),
    "referral_event": (
        "referrals.ReferralEvent",
        False,
        ["referral_id", "action", "by_name", "organisation_id", "at", "note"],
    ),
    "award": (
        "subsidies.Award",
        True,
        [
            "id",
            "patient_id",
            "region_id",
            "policy_id",
            "status",
            "guardian_name",
            "guardian_relation",
            "source",
            "eligibility_snapshot",
            "applied_on",
            "reviewed_at",
            "approved_at",
            "notice_until",
            "active_from",
            "valid_until",
            "created_at",
        ],
    ),
    "award_event": (
        "subsidies.AwardEvent",
        False,
        ["award_id", "step", "at", "organisation_id", "note"],
    ),
    "episode": (
        "subsidies.Episode",
        True,
        [
            "id",
            "patient_id",
            "hospital_id",
            "case_number",
            "status",
            "admission_date",
            "discharge_date",
            "discharge_diagnosis",
            "inpatient_effect",
            "discharged_at",
            "created_at",
        ],
    ),
    "settlement": (
        "subsidies.Settlement",
        True,
        [
            "id",
            "episode_id",
            "patient_id",
            "hospital_id",
            "region_id",
            "admission_date",
            "discharge_date",
            "total_cost",
            "in_scope_cost",
            "out_of_scope_cost",
            "patient_pays",
            "policy_id",
            "policy_version",
            "policy_snapshot",
            "facts",
            "settled_on",
            "created_at",
        ],
    ),
    "settlement_line": (
        "subsidies.SettlementLine",
        False,
        ["settlement_id", "order", "payer", "ratio", "base", "eligible", "amount", "limited_by"],
    ),
}
# tables whose auto-increment ids the generator gives (sequences moved afterwards)
EXPLICIT_IDS = ("award", "episode", "settlement")
ID_BLOCK = 10_000_000  # ids of township i: (i + 1) * ID_BLOCK + n


def table_specs() -> dict[str, TableSpec]:
    from followups.models import Alert, AlertRecipient, FollowUp
    from patients.models import AssistantGuardian, Guardian, Incident, Patient

    specs = {
        "patient": TableSpec.for_model(Patient, given=GIVEN["patient"]),
        "guardian": TableSpec.for_model(Guardian, given=GIVEN["guardian"]),
        "assistant": TableSpec.for_model(AssistantGuardian, given=GIVEN["assistant"]),
        "followup": TableSpec.for_model(FollowUp, given=GIVEN["followup"]),
        "incident": TableSpec.for_model(Incident, given=GIVEN["incident"]),
        "alert": TableSpec.for_model(Alert, given=GIVEN["alert"]),
        "recipient": TableSpec.for_model(AlertRecipient, given=GIVEN["recipient"]),
    }
    history = Patient.history.model
    hist_fields = {f.attname for f in history._meta.concrete_fields}
    given = [a for a in GIVEN["patient"] if a in hist_fields] + list(HISTORY_EXTRA)
    specs["patient_history"] = TableSpec.for_model(history, given=given)
    from django.apps import apps

    for name, (label, with_pk, fields) in OTHER_GIVEN.items():
        try:
            model = apps.get_model(label)
        except LookupError:  # that app is not there: its rows are skipped
            continue
        specs[name] = TableSpec.for_model(model, given=fields, with_pk=with_pk)
    return specs


# tables in COPY order (foreign keys are dropped during the load anyway)
TABLE_ORDER = (
    "patient",
    "patient_history",
    "guardian",
    "assistant",
    "followup",
    "incident",
    "alert",
    "recipient",
    *OTHER_GIVEN,
)


@dataclass
class TownshipTask:
    plan: TownshipPlan
    orgs: dict[str, int]  # role key → organisation id
    hospital_name: str
    seed: int
    today: date
    specs: dict[str, TableSpec]
    policies: dict = field(default_factory=dict)  # the county's reward and settlement policies


@dataclass
class TownshipRows:
    code: str
    data: dict[str, str]
    counts: dict[str, int]


def _d(d: date | None) -> str:
    return NULL if d is None else d.isoformat()


_VERSION_MASK = ~((0xF << 76) | (0x3 << 62))
_VERSION_BITS = (0x4 << 76) | (0x2 << 62)


class _Ids:
    """Time-ordered-ish UUIDs: township index and a counter in the top bits,
    random below (version 4 and variant bits set), so each table's primary
    key index is filled nearly in order during the load instead of at random."""

    def __init__(self, rng: random.Random, township_index: int):
        self.bits = rng.getrandbits
        self.prefix = township_index << 112
        self.n = 0

    def __call__(self) -> str:
        self.n += 1
        value = (self.prefix | (self.n << 80) | self.bits(80)) & _VERSION_MASK | _VERSION_BITS
        h = f"{value:032x}"
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


STATUS = Weighted(STATUSES)
DIAGNOSIS = Weighted(DIAGNOSES)
POVERTY_PICK = Weighted(POVERTY)
CERTIFICATE = Weighted((("none", 52), ("applied", 6), ("held", 42)))
INSURANCE = Weighted((("resident", 85), ("employee", 12), ("none", 3)))
PAST_LOCK = Weighted((("none", 90), ("locked", 3), ("released", 7)))
PAST_ADMISSIONS = Weighted((("0", 40), ("1", 30), ("2", 15), ("3", 10), ("5", 5)))
ASSISTANTS = Weighted(((0, 35), (1, 20), (2, 35), (3, 10)))
INCIDENT_KIND = Weighted((("minor_trouble", 60), ("trouble", 30), ("disaster", 10)))
EMPLOYMENT = ("farmer", "unemployed", "worker", "retired", "other")
OUTPATIENT = ("never", "intermittent", "continuous")


def _clinical_text(c: Clinical) -> dict[str, str]:
    """The COPY text of a completed visit's clinical columns (once per variant)."""
    return {
        "risk_level": str(c.risk),
        "symptoms": t_json(list(c.symptoms)),
        "insight": c.insight,
        "sleep": c.sleep,
        "diet": c.diet,
        "self_care": c.social[0],
        "housework": c.social[1],
        "work": c.social[2],
        "learning": c.social[3],
        "social": c.social[4],
        "lock_status": "none",
        "medication_compliance": c.compliance,
        "adverse_reaction": t_bool(c.adverse),
        "adverse_reaction_serious": t_bool(c.serious),
        "treatment_effect": c.effect,
        "suggested_classification": c.classification,
        "classification": c.classification,
        "lost_reason": "",
        "death_date": NULL,
        "death_cause": "",
    }


_NOT_COMPLETED = {
    "contacts": "[]",
    "risk_level": NULL,
    "symptoms": "[]",
    "insight": "",
    "sleep": "",
    "diet": "",
    "self_care": "",
    "housework": "",
    "work": "",
    "learning": "",
    "social": "",
    "dangerous_behaviours": "{}",
    "lock_status": "",
    "hospitalization": "",
    "medication_compliance": "",
    "adverse_reaction": "f",
    "adverse_reaction_serious": "f",
    "treatment_effect": "",
    "referral_suggested": "f",
    "referral_reason": "",
    "referred_to": "",
    "medications": "[]",
    "medication_guidance": "[]",
    "rehab_measures": "[]",
    "suggested_classification": "",
    "classification": "",
    "suggested_next_due_date": NULL,
}


def generate_township(task: TownshipTask) -> TownshipRows:
    """All rows of one township as COPY text (runs in a worker process)."""
    from core.crypto import encrypt
    from patients.models import id_number_index_for
    from patients.rules import make_resident_id

    t, orgs, specs = task.plan, task.orgs, task.specs
    rng = random.Random(f"{task.seed}:{t.code}")
    r = rng.random
    new_id = _Ids(rng, t.index)
    today = task.today
    lines: dict[str, list[str]] = {name: [] for name in TABLE_ORDER if name in specs}
    fmt = {name: specs[name].template for name in lines}
    out_patient, out_history = lines["patient"], lines["patient_history"]
    out_followup, out_alert, out_recipient = lines["followup"], lines["alert"], lines["recipient"]
    hc, ps, gov = (str(orgs[k]) for k in ("health_centre", "police_station", "governance_office"))
    prevention, bureau = str(orgs["prevention_agency"]), str(orgs["police_bureau"])
    village = Weighted([((code, name), w) for code, name, w in t.villages])
    used: set[str] = set()
    seq_base = t.slot * 66  # each township its own range of the 3-digit sequence
    clinical = {id(c): _clinical_text(c) for pool in POOL.values() for c in pool}
    regimens = [
        t_json([{"drug": drug, "morning_mg": m, "noon_mg": n, "evening_mg": e}])
        for drug, m, n, e in names.DRUGS
    ]
    contacts = (t_json(["patient", "family"]), t_json(["patient"]), t_json(["family"]))
    rehab = ("[]", t_json(["daily_living"]), t_json(["daily_living", "social"]))
    dangerous = t_json({"minor_trouble": 1})
    hospital = esc(task.hospital_name)

    def ts(d: date, minutes: int) -> str:
        return f"{d.isoformat()} {minutes // 60 % 24:02d}:{minutes % 60:02d}:00{TZ}"

    def recipient(alert_id, org_id, status, created, ack=NULL, resolved=NULL, escalated="f"):
        out_recipient.append(
            fmt["recipient"]
            % {
                "alert_id": alert_id,
                "organisation_id": org_id,
                "escalated": escalated,
                "status": status,
                "created_at": created,
                "acknowledged_at": ack,
                "resolved_at": resolved,
                "note": "已处置" if resolved != NULL else "",
            }
        )

    def alert(pid, kind, episode, raised, status, risk=NULL, fu=NULL, inc=NULL, due=NULL, res=NULL):
        aid = new_id()
        out_alert.append(
            fmt["alert"]
            % {
                "id": aid,
                "patient_id": pid,
                "kind": kind,
                "episode": episode,
                "risk_level": risk,
                "followup_id": fu,
                "incident_id": inc,
                "raised_at": raised,
                "due_by": due,
                "status": status,
                "resolved_at": res,
            }
        )
        return aid

    hospital_org = str(orgs["hospital"])
    county_gov = str(orgs["county_governance"])
    policies = task.policies
    ids = dict.fromkeys(EXPLICIT_IDS, (t.index + 1) * ID_BLOCK)

    def next_id(name: str) -> str:
        ids[name] += 1
        return str(ids[name])

    def referrals(pid: str, visits: list) -> None:
        """Upward referrals of the visits that suggested one; only the newest
        can still be open (one open referral per kind)."""
        if "referral" not in lines:
            return
        dates = [v.visit_date for v in visits if v.referral]
        for k, day in enumerate(dates):
            age = (today - day).days
            if k < len(dates) - 1 or age > 30:
                status, steps = "completed", ("created", "accepted", "completed")
            elif age > 14:
                status, steps = "accepted", ("created", "accepted")
            else:
                status, steps = "pending", ("created",)
            rid = new_id()
            created = ts(day, 1000)
            lines["referral"].append(
                fmt["referral"]
                % {
                    "id": rid,
                    "patient_id": pid,
                    "kind": "upward",
                    "status": status,
                    "from_organisation_id": hc,
                    "to_organisation_id": hospital_org,
                    "reason": "病情不稳定，建议上级医院诊治。",
                    "accept_by": (day + timedelta(days=14)).isoformat(),
                    "created_at": created,
                    "status_changed_at": ts(day + timedelta(days=len(steps) - 1), 1000),
                }
            )
            for n, action in enumerate(steps):
                org = hc if action == "created" else hospital_org
                lines["referral_event"].append(
                    fmt["referral_event"]
                    % {
                        "referral_id": rid,
                        "action": action,
                        "by_name": MARKER,
                        "organisation_id": org,
                        "at": ts(day + timedelta(days=n), 1000),
                        "note": "",
                    }
                )

    def award(pid: str, vcode: str, guardian: tuple[str, str], registered: date) -> None:
        """An active guardian reward (以奖代补), approved by the county."""
        if "award" not in lines or not policies:
            return
        applied = max(registered, date(2019, 7, 1), today - timedelta(days=300)) + timedelta(
            days=int(r() * 20)
        )
        reviewed = applied + timedelta(days=5)
        approved = reviewed + timedelta(days=7)
        notice_until = approved + timedelta(days=7)
        active_from = notice_until + timedelta(days=1)
        if active_from > today:  # registered too recently: not through notice yet
            return
        aid = next_id("award")
        lines["award"].append(
            fmt["award"]
            % {
                "id": aid,
                "patient_id": pid,
                "region_id": vcode,
                "policy_id": str(policies["reward_policy"]),
                "status": "active",
                "guardian_name": guardian[0],
                "guardian_relation": guardian[1],
                "source": "health_centre",
                "eligibility_snapshot": "{}",
                "applied_on": applied.isoformat(),
                "reviewed_at": ts(reviewed, 600),
                "approved_at": ts(approved, 600),
                "notice_until": notice_until.isoformat(),
                "active_from": active_from.isoformat(),
                "valid_until": (active_from + timedelta(days=365)).isoformat(),
                "created_at": ts(applied, 600),
            }
        )
        for step, day, org in (
            ("applied", applied, hc),
            ("township_approved", reviewed, gov),
            ("county_approved", approved, county_gov),
            ("activated", active_from, county_gov),
        ):
            lines["award_event"].append(
                fmt["award_event"]
                % {
                    "award_id": aid,
                    "step": step,
                    "at": ts(day, 600),
                    "organisation_id": org,
                    "note": "",
                }
            )

    def episodes(pid: str, vcode: str, visits: list, in_hospital: bool, facts: dict) -> None:
        """Admissions of the visits that found the patient in hospital, each
        discharged one settled across the county's payer layers."""
        if "episode" not in lines:
            return
        from subsidies import rules as srules

        stays = [v for v in visits if v.outcome == "completed" and v.hospitalization == "current"]
        usage: dict[int, dict] = {}
        last_out = None
        for k, v in enumerate(stays):
            admitted = v.visit_date - timedelta(days=1 + int(r() * 5))
            if last_out is not None and admitted <= last_out:
                admitted = last_out + timedelta(days=1)
            admitted = min(admitted, v.visit_date)
            still_in = in_hospital and k == len(stays) - 1
            discharged = None
            if not still_in:
                discharged = min(v.visit_date + timedelta(days=15 + int(r() * 25)), today)
                if k + 1 < len(stays):
                    discharged = min(discharged, stays[k + 1].visit_date - timedelta(days=6))
                discharged = max(discharged, admitted)
                last_out = discharged
            eid = next_id("episode")
            lines["episode"].append(
                fmt["episode"]
                % {
                    "id": eid,
                    "patient_id": pid,
                    "hospital_id": hospital_org,
                    "case_number": f"Z{t.index:03d}{ids['episode'] % ID_BLOCK:06d}",
                    "status": "in_hospital" if still_in else "discharged",
                    "admission_date": admitted.isoformat(),
                    "discharge_date": _d(discharged),
                    "discharge_diagnosis": facts["diagnosis"] if discharged else "",
                    "inpatient_effect": "improved" if discharged else "",
                    "discharged_at": ts(discharged, 900) if discharged else NULL,
                    "created_at": ts(admitted, 600),
                }
            )
            if discharged is None or not policies:
                continue
            total = Decimal(8000 + int(r() * 52000)).quantize(FEN)
            in_scope = (total * Decimal(80 + int(r() * 13)) / 100).quantize(FEN)
            patient_facts = srules.PatientFacts(
                insured=facts["insurance"] != "none",
                poverty=facts["poverty"],
                certificate_held=facts["certificate"] == "held",
                union_member=facts["union_member"],
                risk_level=v.clinical.risk,
                registered=True,
            )
            year_usage = usage.setdefault(admitted.year, {})
            quote = srules.split_bill(
                total=total,
                in_scope=in_scope,
                admission=admitted,
                discharge=discharged,
                layers=policies["layers"],
                facts=patient_facts,
                usage=year_usage,
            )
            sid = next_id("settlement")
            snapshot = {
                "as_of": admitted.isoformat(),
                "insurance": facts["insurance"],
                "poverty": facts["poverty"],
                "certificate": facts["certificate"],
                "union_member": facts["union_member"],
                "risk_level": v.clinical.risk,
                "status": "active",
            }
            lines["settlement"].append(
                fmt["settlement"]
                % {
                    "id": sid,
                    "episode_id": eid,
                    "patient_id": pid,
                    "hospital_id": hospital_org,
                    "region_id": vcode,
                    "admission_date": admitted.isoformat(),
                    "discharge_date": discharged.isoformat(),
                    "total_cost": str(quote.total),
                    "in_scope_cost": str(quote.in_scope),
                    "out_of_scope_cost": str(quote.out_of_scope),
                    "patient_pays": str(quote.patient_pays),
                    "policy_id": str(policies["settlement_policy"]),
                    "policy_version": str(policies["settlement_version"]),
                    "policy_snapshot": t_json(policies["snapshot"]),
                    "facts": t_json(snapshot),
                    "settled_on": discharged.isoformat(),
                    "created_at": ts(discharged, 960),
                }
            )
            for ln in quote.lines:
                lines["settlement_line"].append(
                    fmt["settlement_line"]
                    % {
                        "settlement_id": sid,
                        "order": str(ln.order),
                        "payer": ln.payer,
                        "ratio": str(ln.ratio),
                        "base": str(ln.base),
                        "eligible": str(ln.eligible),
                        "amount": str(ln.amount),
                        "limited_by": ln.limited_by,
                    }
                )
                used = year_usage.get(ln.payer, srules.PayerUsage())
                year_usage[ln.payer] = srules.PayerUsage(
                    base=used.base + ln.base, paid=used.paid + ln.amount
                )

    def handled(day: date) -> tuple[str, str, str]:
        """(status, acknowledged at, resolved at) of an alert raised on ``day``."""
        age = (today - day).days
        ack = ts(day + timedelta(days=int(r() * 2)), 480 + int(r() * 600))
        if age > 14 or (age > 2 and r() < 0.6):
            resolved = min(today, day + timedelta(days=1 + int(r() * 10)))
            return "resolved", ack, ts(resolved, 1020)
        if age > 1 and r() < 0.7:
            return "acknowledged", ack, NULL
        return "open", NULL, NULL

    for _ in range(t.patients):
        pid = new_id()
        vcode, vname = village(r())
        male = r() < 0.52
        birth = today - timedelta(days=18 * 365 + int(r() * 62 * 365))
        number = make_resident_id(t.county_code, birth, seq_base + int(r() * 64), male)
        while number in used:
            birth -= timedelta(days=1)
            number = make_resident_id(t.county_code, birth, seq_base + int(r() * 64), male)
        used.add(number)
        status = STATUS(r())
        if r() < 0.15:
            registered = today - timedelta(days=5 + int(r() * 725))
        else:
            registered = today - timedelta(days=731 + int(r() * 2920))
        overdue = status == "active" and r() < OVERDUE_SHARE
        sim = simulate(rng, today=today, registered_on=registered, status=status, overdue=overdue)
        poverty = POVERTY_PICK(r())
        certificate = CERTIFICATE(r())
        held = certificate == "held"
        address = esc(f"{vname}{1 + int(r() * 300)}号")
        reg = registered.isoformat()
        created = ts(registered, 480 + int(r() * 600))
        last_change = sim.status_changed or sim.last_followup_date or registered
        row = {
            "id": pid,
            "name": names.person(rng),
            "gender": "male" if male else "female",
            "birth_date": birth.isoformat(),
            "id_type": "resident_id",
            "id_number": encrypt(number),
            "id_number_index": id_number_index_for("resident_id", number),
            "phone": encrypt(names.phone(rng)) if r() < 0.8 else "",
            "region_id": vcode,
            "address": address,
            "household_region_id": vcode,
            "household_address": address,
            "managing_organisation_id": hc,
            "diagnosis": DIAGNOSIS(r()),
            "diagnosis_hospital": hospital,
            "diagnosis_date": (registered - timedelta(days=int(r() * 60))).isoformat(),
            "status": status,
            "status_changed_at": ts(sim.status_changed, 600) if sim.status_changed else created,
            "registered_on": reg,
            "risk_level": NULL if sim.risk_level is None else str(sim.risk_level),
            "classification": sim.classification,
            "last_followup_date": _d(sim.last_followup_date),
            "next_followup_due": _d(sim.next_followup_due),
            "police_registered": t_bool((sim.risk_level or 0) >= HIGH_RISK or r() < 0.3),
            "poverty": poverty,
            "certificate": certificate,
            "certificate_grade": str(1 + int(r() * 4)) if held else NULL,
            "certificate_number": f"{number}7{1 + int(r() * 4)}" if held else "",
            "union_member": t_bool(r() < 0.08),
            "insurance": INSURANCE(r()),
            "in_community_rehab": t_bool(r() < 0.12),
            "in_hospital": t_bool(sim.in_hospital),
            "household_type": "rural" if r() < 0.6 else "urban",
            "employment": EMPLOYMENT[int(r() * 5)],
            "consent": t_bool(status != "refused"),
            "consent_signer": "本人" if r() < 0.4 else "监护人",
            "consent_date": reg,
            "first_onset_date": (registered - timedelta(days=100 + int(r() * 2900))).isoformat(),
            "past_lock_status": PAST_LOCK(r()),
            "past_outpatient": OUTPATIENT[int(r() * 3)],
            "past_admissions": PAST_ADMISSIONS(r()),
            "economic_status": "poor" if poverty != "none" else "not_poor",
            "supplement_filled_on": reg,
            "created_at": created,
            "updated_at": ts(last_change, 1080),
            # the history row of the registration
            "history_date": created,
            "history_change_reason": MARKER,
            "history_type": "+",
        }
        out_patient.append(fmt["patient"] % row)
        out_history.append(fmt["patient_history"] % row)
        letter = r() < 0.6
        guardian = (names.person(rng), names.RELATIONS[int(r() * len(names.RELATIONS))])
        lines["guardian"].append(
            fmt["guardian"]
            % {
                "patient_id": pid,
                "name": guardian[0],
                "relation": guardian[1],
                "phone": encrypt(names.phone(rng)),
                "address": address,
                "responsibility_letter": t_bool(letter),
                "responsibility_letter_date": reg if letter else NULL,
            }
        )
        assistants = ASSISTANTS(r())
        for _a in range(assistants):
            lines["assistant"].append(
                fmt["assistant"]
                % {
                    "patient_id": pid,
                    "name": names.person(rng),
                    "relation": names.ASSISTANT_RELATIONS[int(r() * 5)],
                    "phone": encrypt(names.phone(rng)),
                }
            )

        regimen = regimens[int(r() * len(regimens))]
        high_before = False  # one risk alert per run of high-risk visits
        for v in sim.visits:
            fid = new_id()
            day = v.visit_date.isoformat()
            if v.outcome == "completed":
                c = v.clinical
                fu = clinical[id(c)].copy()
                fu["contacts"] = contacts[int(r() * 3)]
                fu["dangerous_behaviours"] = dangerous if v.dangerous else "{}"
                fu["hospitalization"] = v.hospitalization
                fu["referral_suggested"] = t_bool(v.referral)
                fu["referral_reason"] = "病情不稳定" if v.referral else ""
                fu["referred_to"] = hospital if v.referral else ""
                fu["medications"] = regimen if c.compliance != "not_needed" else "[]"
                fu["medication_guidance"] = regimen
                fu["rehab_measures"] = rehab[int(r() * 3)]
                fu["suggested_next_due_date"] = fu["next_due_date"] = v.next_due.isoformat()
            else:
                fu = _NOT_COMPLETED.copy()
                fu["next_due_date"] = _d(v.next_due)
                fu["lost_reason"] = v.lost_reason
                fu["death_date"] = _d(v.death_date)
                fu["death_cause"] = v.death_cause
            fu["id"] = fid
            fu["patient_id"] = pid
            fu["visit_date"] = day
            fu["mode"] = v.mode
            fu["outcome"] = v.outcome
            fu["organisation_id"] = hc
            fu["created_at"] = f"{day} {9 + int(r() * 9):02d}:{int(r() * 60):02d}:00{TZ}"
            out_followup.append(fmt["followup"] % fu)

            high = v.clinical.risk >= HIGH_RISK if v.clinical is not None else high_before
            if high and not high_before:
                raised = f"{day} 18:20:00{TZ}"
                state, ack, res = handled(v.visit_date)
                aid = alert(
                    pid,
                    "risk",
                    f"followup:{fid}",
                    raised,
                    state,
                    risk=str(v.clinical.risk),
                    fu=fid,
                    due=ts(v.visit_date + timedelta(days=1), 1100),
                    res=res,
                )
                for org_id in (ps, gov):
                    recipient(aid, org_id, state, raised, ack, res)
                if state != "resolved" and r() < 0.1:  # not acknowledged within 24 h
                    recipient(aid, bureau, "open", raised, escalated="t")
            high_before = high
            if v.late_due is not None:
                # the daily scan raised an overdue alert; this visit closed it
                raised = ts(v.late_due + timedelta(days=1), 120)
                closed = f"{day} 18:20:00{TZ}"
                due = v.late_due.isoformat()
                aid = alert(pid, "overdue", f"overdue:{due}", raised, "resolved", res=closed)
                recipient(aid, hc, "resolved", raised, raised, closed)
                if (v.visit_date - v.late_due).days > 30:
                    recipient(aid, prevention, "resolved", raised, NULL, closed, "t")

        if sim.status == "active" and sim.next_followup_due and sim.next_followup_due < today:
            raised = ts(sim.next_followup_due + timedelta(days=1), 120)
            state = "acknowledged" if r() < 0.4 else "open"
            ack = ts(sim.next_followup_due + timedelta(days=1), 600) if state != "open" else NULL
            due = sim.next_followup_due.isoformat()
            aid = alert(pid, "overdue", f"overdue:{due}", raised, state)
            recipient(aid, hc, state, raised, ack)
            if (today - sim.next_followup_due).days > 30:
                recipient(aid, prevention, "open", raised, escalated="t")
        if sim.status == "lost" and sim.status_changed:
            raised = ts(sim.status_changed, 660)
            state, ack, _res = handled(sim.status_changed)
            state = "open" if state == "open" else "acknowledged"  # open until found
            aid = alert(pid, "lost", f"lost:{sim.status_changed.isoformat()}", raised, state)
            for org_id in (ps, gov, hc):
                recipient(aid, org_id, state, raised, ack)
        incident_kind = ""
        if status != "refused" and r() < INCIDENT_SHARE:
            iid = new_id()
            day = today - timedelta(days=1 + int(r() * 700))
            created = ts(day, 600 + int(r() * 600))
            incident_kind = INCIDENT_KIND(r())
            lines["incident"].append(
                fmt["incident"]
                % {
                    "id": iid,
                    "patient_id": pid,
                    "kind": incident_kind,
                    "occurred_on": day.isoformat(),
                    "place": address,
                    "description": "与邻居发生争执，毁坏财物。",
                    "handling": "民警到场处置，通知监护人和卫生院。",
                    "guardian_failed_duties": t_bool(r() < 0.2),
                    "organisation_id": ps,
                    "created_at": created,
                }
            )
            state, ack, res = handled(day)
            aid = alert(pid, "incident", f"incident:{iid}", created, state, inc=iid, res=res)
            for org_id in (hc, gov):
                recipient(aid, org_id, state, created, ack, res)

        referrals(pid, sim.visits)
        # DOMAIN.md → Guardian reward, the default rule: registered, in the
        # police register, trouble/disaster or risk ≥ 3, letter signed, two
        # assistant guardians; most eligible guardians have an active award
        eligible = (
            status in ("active", "lost", "refused")
            and row["police_registered"] == "t"
            and (incident_kind in ("trouble", "disaster") or (sim.risk_level or 0) >= HIGH_RISK)
            and letter
            and assistants >= 2
        )
        if eligible and r() < 0.8:
            award(pid, vcode, guardian, registered)
        episodes(
            pid,
            vcode,
            sim.visits,
            sim.in_hospital,
            {
                "diagnosis": row["diagnosis"],
                "insurance": row["insurance"],
                "poverty": poverty,
                "certificate": certificate,
                "union_member": row["union_member"] == "t",
            },
        )

    return TownshipRows(
        code=t.code,
        data={name: "".join(rows) for name, rows in lines.items()},
        counts={name: len(rows) for name, rows in lines.items()},
    )


# ------------------------------------------------------------------ loading


def _bulk_tables(specs: dict[str, TableSpec]) -> list[str]:
    return [specs[name].table for name in TABLE_ORDER if name in specs]


def drop_secondary(cur, tables: list[str]) -> list[str]:
    """Drop every index and constraint of ``tables`` except primary keys
    (foreign keys, unique constraints, plain indexes); return the statements
    that recreate them. Recreating checks them all, so the load respects
    exactly what inserting row by row would have."""
    cur.execute(
        """
        SELECT c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid), c.contype
        FROM pg_constraint c
        WHERE c.conrelid = ANY(%s::regclass[])
          AND (c.contype = 'f' OR (c.contype = 'u' AND NOT EXISTS (
                SELECT 1 FROM pg_constraint f WHERE f.contype = 'f' AND f.conindid = c.conindid)))
        ORDER BY c.contype DESC, 1, 2
        """,
        [tables],
    )
    constraints = cur.fetchall()
    cur.execute(
        """
        SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
        FROM pg_index i
        WHERE i.indrelid = ANY(%s::regclass[]) AND NOT i.indisprimary
          AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
        ORDER BY 1
        """,
        [tables],
    )
    indexes = cur.fetchall()
    first, last = [], []  # indexes and unique constraints, then foreign keys
    for table, name, definition, kind in constraints:
        cur.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
        statement = f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}'
        (last if kind == "f" else first).append(statement)
    for name, definition in indexes:
        cur.execute(f"DROP INDEX {name}")
        first.append(definition)
    return first + last


class Progress:
    """A progress bar on stdout (a line every 5 % when not a terminal)."""

    def __init__(self, stdout, total: int, *, unit: str):
        self.out = stdout or sys.stdout
        self.total = max(total, 1)
        self.unit = unit
        self.done = 0
        self.started = time.monotonic()
        self.tty = hasattr(self.out, "isatty") and self.out.isatty()
        self._last_step = -1

    def step(self, n: int = 1, *, note: str = "") -> None:
        self.done += n
        frac = self.done / self.total
        elapsed = time.monotonic() - self.started
        eta = elapsed / frac - elapsed if frac > 0 else 0
        bar = "#" * int(frac * 30)
        text = (
            f"[{bar:<30}] {frac:6.1%} {self.done}/{self.total} {self.unit} "
            f"{elapsed:5.0f}s elapsed, ~{eta:4.0f}s left {note}"
        )
        if self.tty:
            _write(self.out, "\r" + text, end="")
        elif int(frac * 20) != self._last_step:
            self._last_step = int(frac * 20)
            _write(self.out, text)

    def close(self) -> None:
        if self.tty:
            _write(self.out, "")


def _write(out, text: str, end: str = "\n") -> None:
    if out.__class__.__name__ == "OutputWrapper":  # a management command's stdout
        out.write(text, ending=end)
    else:
        out.write(text + end)
    out.flush()


def build(
    *,
    patients: int,
    townships: int,
    seed: int = 20260101,
    password: str = BENCH_PASSWORD,
    jobs: int = 2,
    stdout=None,
    today: date | None = None,
) -> dict:
    """Generate the data set into the (migrated, empty) default database.

    Returns the row counts. Raises SeedError when the database already holds
    other data, or this data set built with other parameters.
    """
    from core.models import SeedStage
    from patients.models import Patient

    if connection.vendor != "postgresql":
        raise SeedError("seed_province needs PostgreSQL (COPY).")
    today = today or timezone.localdate()
    plan = make_plan(patients=patients, townships=townships, seed=seed)
    done = SeedStage.objects.filter(name=MARKER).first()
    if done is not None:
        if done.params != plan.params():
            raise SeedError(
                f"This database holds a data set built with {done.params}; "
                f"use a fresh database for {plan.params()}."
            )
        return {"already_present": True}
    if Patient.objects.exists():
        raise SeedError("The database already holds patients: use a fresh, migrated database.")

    log = stdout.write if stdout is not None else print
    started = time.monotonic()
    with transaction.atomic():
        orgs = create_structure(plan, password=password)
        policies = create_policies(plan)
    log(f"regions, organisations, policies, accounts: {time.monotonic() - started:.1f}s")

    from accounts.models import OrganisationKind as K

    specs = table_specs()
    county_names = {code: name for code, name, _c in plan.counties}
    tasks = [
        TownshipTask(
            plan=t,
            orgs={
                "health_centre": orgs[(K.HEALTH_CENTRE, t.code)],
                "police_station": orgs[(K.POLICE_STATION, t.code)],
                "governance_office": orgs[(K.GOVERNANCE_OFFICE, t.code)],
                "prevention_agency": orgs[(K.PREVENTION_AGENCY, t.county_code)],
                "police_bureau": orgs[(K.POLICE_BUREAU, t.county_code)],
                "hospital": orgs[(K.SPECIALIST_HOSPITAL, t.county_code)],
                "county_governance": orgs[(K.GOVERNANCE_OFFICE, t.county_code)],
            },
            hospital_name=f"{county_names[t.county_code][:-1]}县精神病专科医院",
            seed=seed,
            today=today,
            specs=specs,
            policies=policies.get(t.county_code, {}),
        )
        for t in plan.towns
    ]
    counts = dict.fromkeys((name for name in TABLE_ORDER if name in specs), 0)
    connections.close_all()  # never share a connection with forked workers
    ctx = multiprocessing.get_context("fork")
    progress = Progress(stdout, len(tasks), unit="townships")
    with ctx.Pool(processes=max(1, jobs)) as pool, transaction.atomic():
        with connection.cursor() as cursor:
            raw = cursor.cursor  # the psycopg 3 cursor behind Django's wrapper
            raw.execute("SET LOCAL maintenance_work_mem = '512MB'")
            restore = drop_secondary(raw, _bulk_tables(specs))
            pending: deque = deque()
            queue = iter(tasks)
            for task in queue:
                pending.append(pool.apply_async(generate_township, (task,)))
                if len(pending) > jobs:
                    break
            waited = copying = 0.0
            while pending:
                mark = time.monotonic()
                rows: TownshipRows = pending.popleft().get()
                waited += time.monotonic() - mark
                nxt = next(queue, None)
                if nxt is not None:
                    pending.append(pool.apply_async(generate_township, (nxt,)))
                mark = time.monotonic()
                for name in counts:
                    data = rows.data[name]
                    if data:
                        with raw.copy(specs[name].copy_sql) as copy:
                            copy.write(data)
                    counts[name] += rows.counts[name]
                copying += time.monotonic() - mark
                progress.step(
                    note=f"({counts['patient']:,} patients, {counts['followup']:,} follow-ups)"
                )
            progress.close()
            loaded = time.monotonic() - started
            log(
                f"rows copied: {loaded:.1f}s (waiting for generators {waited:.1f}s, "
                f"in COPY {copying:.1f}s); rebuilding {len(restore)} indexes and keys"
            )
            for i, statement in enumerate(restore, 1):
                raw.execute(statement)
                if stdout is not None and i % 5 == 0:
                    log(f"  {i}/{len(restore)} rebuilt, {time.monotonic() - started:.0f}s")
            for name in EXPLICIT_IDS:
                if name in specs:  # the next id the application takes follows ours
                    table = specs[name].table
                    raw.execute(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608 - our own model tables  # nosec B608
                        f'GREATEST((SELECT MAX(id) FROM "{table}"), 1))'
                    )
        SeedStage.objects.create(name=MARKER, params=plan.params())
    log(f"committed: {time.monotonic() - started:.1f}s; VACUUM ANALYZE")
    with connection.cursor() as cursor:
        for table in _bulk_tables(specs):
            cursor.execute(f'VACUUM (ANALYZE) "{table}"')
    counts["seconds"] = round(time.monotonic() - started, 1)
    return counts
