"""What ``make bench`` measures (DESIGN.md → Non-functional budgets).

Each endpoint names the persona that calls it, the path (built from the
plan: sample patients, names, ID numbers of the personas' scope) and its
budget. An endpoint whose route does not resolve in this checkout is
reported as "not built at time of run", never guessed.

The plan is read through the application's own selectors, as the bench
accounts (``bench.province.BENCH_ACCOUNTS``) would see it.
"""

from __future__ import annotations

import csv
import io
import random
from dataclasses import dataclass, field

from django.urls import Resolver404, resolve
from django.utils import timezone

from bench.client import Request

SAMPLE = 400  # patients sampled per persona for detail pages, searches, saves


@dataclass
class Endpoint:
    key: str
    title: str
    persona: str | None  # a bench account (without the "bench_" prefix) or None
    api: bool
    budget_ms: float | None
    path: str  # a path with {placeholders} filled per request by ``request``
    method: str = "GET"
    ok: tuple[int, ...] = (200,)
    requests: int = 200

    def probe_path(self, plan: dict) -> str:
        return self.request(plan, 0).path.split("?")[0]

    def request(self, plan: dict, i: int) -> Request:
        return BUILDERS.get(self.key, _plain)(self, plan, i)


def _plain(e: Endpoint, plan: dict, i: int) -> Request:
    return Request(e.method, e.path.format(**plan["values"]))


def _cycle(items: list, i: int):
    return items[i % len(items)]


def _detail(e: Endpoint, plan: dict, i: int) -> Request:
    return Request("GET", e.path.format(id=_cycle(plan["doctor_patients"], i)))


def _search(kind: str):
    def build(e: Endpoint, plan: dict, i: int) -> Request:
        return Request("GET", e.path.format(term=_cycle(plan[kind], i)))

    return build


def _followup_body(plan: dict, i: int) -> dict:
    """A completed visit on the national form; every tenth one high risk
    (so alerts, the outbox and the worker are part of the measured write)."""
    high = i % 10 == 9
    return {
        "patient": _cycle(plan["followup_patients"], i),
        "visit_date": plan["today"],
        "mode": "home",
        "outcome": "completed",
        "contacts": ["patient", "family"],
        "risk_level": 3 if high else 0,
        "symptoms": ["suspicion"] if high else [],
        "insight": "partial" if high else "complete",
        "sleep": "good",
        "diet": "good",
        "self_care": "good",
        "housework": "good",
        "work": "fair",
        "learning": "good",
        "social": "good",
        "dangerous_behaviours": {},
        "lock_status": "none",
        "hospitalization": "none",
        "medication_compliance": "regular",
        "adverse_reaction": False,
        "treatment_effect": "improved",
        "medications": [{"drug": "利培酮", "morning_mg": 1, "noon_mg": 0, "evening_mg": 2}],
        "rehab_measures": ["daily_living"],
    }


def _followup_save(e: Endpoint, plan: dict, i: int) -> Request:
    return Request("POST", e.path, json=_followup_body(plan, i))


BUILDERS = {
    "patient_detail_page": _detail,
    "patient_detail_api": _detail,
    "search_name_page": _search("names"),
    "search_name_api": _search("names"),
    "search_id_page": _search("id_numbers"),
    "search_id_api": _search("id_numbers"),
    "followup_save_api": _followup_save,
}

ENDPOINTS = [
    Endpoint("healthz", "/healthz (floor: database + broker check)", None, False, None, "/healthz"),
    Endpoint(
        "patients_page_township",
        "patient list page — township doctor",
        "doctor",
        False,
        150,
        "/patients/",
    ),
    Endpoint(
        "patients_page_county",
        "patient list page — county hospital",
        "hospital",
        False,
        150,
        "/patients/",
    ),
    Endpoint(
        "patients_api_township",
        "patient list API — township doctor",
        "doctor",
        True,
        150,
        "/api/v1/patients/",
    ),
    Endpoint(
        "patients_api_county",
        "patient list API — county hospital",
        "hospital",
        True,
        150,
        "/api/v1/patients/",
    ),
    Endpoint(
        "patient_detail_page",
        "patient detail page — township doctor",
        "doctor",
        False,
        150,
        "/patients/{id}/",
    ),
    Endpoint(
        "patient_detail_api",
        "patient detail API — township doctor",
        "doctor",
        True,
        150,
        "/api/v1/patients/{id}/",
    ),
    Endpoint(
        "search_name_page",
        "search by name, page — county hospital",
        "hospital",
        False,
        150,
        "/patients/?q={term}",
    ),
    Endpoint(
        "search_id_page",
        "search by ID number, page — county hospital",
        "hospital",
        False,
        150,
        "/patients/?q={term}",
    ),
    Endpoint(
        "search_name_api",
        "search by name, API — county hospital",
        "hospital",
        True,
        150,
        "/api/v1/patients/?search={term}",
    ),
    Endpoint(
        "search_id_api",
        "search by ID number, API — county hospital",
        "hospital",
        True,
        150,
        "/api/v1/patients/?search={term}",
    ),
    Endpoint(
        "followup_save_api",
        "follow-up save (POST /api/v1/followups/) — township doctor",
        "doctor",
        True,
        100,
        "/api/v1/followups/",
        method="POST",
        ok=(200, 201),
    ),
    Endpoint(
        "overdue_page",
        "overdue list page — township doctor",
        "doctor",
        False,
        150,
        "/followups/overdue/",
    ),
    Endpoint(
        "overdue_api",
        "overdue list API (?overdue=true) — township doctor",
        "doctor",
        True,
        150,
        "/api/v1/patients/?overdue=true",
    ),
    Endpoint(
        "police_inbox_page", "alert inbox page — police officer", "police", False, 150, "/alerts/"
    ),
    Endpoint(
        "police_inbox_api",
        "alert inbox API — police officer",
        "police",
        True,
        150,
        "/api/v1/alerts/",
    ),
    Endpoint(
        "county_dashboard",
        "county dashboard — county official",
        "official",
        False,
        300,
        "/reports/",
    ),
    Endpoint(
        "province_dashboard",
        "province dashboard — province official",
        "province",
        False,
        1000,
        "/reports/",
    ),
    Endpoint(
        "indicators_api_county",
        "indicator API, county — county official",
        "official",
        True,
        300,
        "/api/v1/reports/indicators/?region={county}&period={period}",
    ),
    Endpoint(
        "indicators_api_province",
        "indicator API, province — province official",
        "province",
        True,
        1000,
        "/api/v1/reports/indicators/?region={province}&period={period}",
    ),
]


@dataclass
class Job:
    key: str
    title: str
    budget_s: float | None
    note: str = ""
    kwargs: dict = field(default_factory=dict)


JOBS = [
    Job("daily_scan", "daily follow-up scan (followups.tasks.followup_scan)", 60),
    Job("indicator_snapshot", "nightly indicator snapshot (reports.tasks.snapshot_nightly)", None),
    Job("county_exchange", "county exchange package, police (referrals exchange_build)", 5),
    Job(
        "reconciliation_5000",
        "reconciliation of 5,000 partner rows (POST /api/v1/reconciliations/)",
        None,
    ),
]


def route_exists(path: str) -> bool:
    try:
        resolve(path)
    except Resolver404:
        return False
    return True


def quarter(day) -> str:
    return f"{day.year}Q{(day.month - 1) // 3 + 1}"


def make_plan(*, seed: int = 8) -> dict:
    """Sample data for the requests, read as the bench accounts see it."""
    from django.contrib.auth import get_user_model

    from accounts.models import Region
    from patients.selectors import patient_list_visible_to

    User = get_user_model()
    doctor = User.objects.get(username="bench_doctor")
    hospital = User.objects.get(username="bench_hospital")
    town = doctor.staff.organisation.region
    county = hospital.staff.organisation.region
    province = Region.objects.get(parent__isnull=True, path__startswith="/99")
    rng = random.Random(seed)
    today = timezone.localdate()

    def sample(qs, n=SAMPLE):
        ids = list(qs.values_list("pk", flat=True))
        rng.shuffle(ids)
        return ids[:n]

    doctor_qs = patient_list_visible_to(user=doctor)
    county_qs = patient_list_visible_to(user=hospital)
    doctor_ids = sample(doctor_qs)
    followup_ids = sample(doctor_qs.filter(status="active"))
    county_sample = list(county_qs.filter(pk__in=sample(county_qs)))
    return {
        "today": today.isoformat(),
        "values": {
            "county": county.code,
            "province": province.code,
            "township": town.code,
            "period": quarter(today),
        },
        "scope": {
            "township": town.code,
            "township_patients": doctor_qs.count(),
            "county": county.code,
            "county_patients": county_qs.count(),
        },
        "doctor_patients": [str(pk) for pk in doctor_ids],
        "followup_patients": [str(pk) for pk in followup_ids],
        "names": [p.name for p in county_sample],
        "id_numbers": [p.id_number for p in county_sample],
    }


def partner_csv(plan: dict, rows: int = 5000, *, seed: int = 9, nonce: str = "") -> bytes:
    """A partner's list: mostly the register's patients of the county, some
    unknown people (clues), UTF-8 with BOM as DOMAIN.md → exchange.

    ``nonce`` goes into the unknown people's names: a file the register has
    not seen yet (the same file again is an idempotent replay, not a run)."""
    from django.contrib.auth import get_user_model

    from patients.rules import make_resident_id
    from patients.selectors import patient_list_visible_to

    hospital = get_user_model().objects.get(username="bench_hospital")
    rng = random.Random(seed)
    known = list(
        patient_list_visible_to(user=hospital).order_by("pk")[: int(rows * 0.9)].iterator()
    )
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["身份证号", "姓名", "性别", "出生日期"])
    for p in known:
        w.writerow([p.id_number, p.name, "男" if p.gender == "male" else "女", p.birth_date])
    county = plan["scope"]["county"]
    from datetime import date, timedelta

    for k in range(rows - len(known)):
        birth = date(1960, 1, 1) + timedelta(days=rng.randrange(15000))
        number = make_resident_id(county, birth, 900 + k % 99, male=k % 2 == 0)
        w.writerow([number, f"外来{nonce}{k}", "男" if k % 2 == 0 else "女", birth])
    return ("\ufeff" + out.getvalue()).encode("utf-8")
