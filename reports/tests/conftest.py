"""A hand-built county whose indicators for 2025Q2 are known by hand.

Statistics date 2025-06-30, the year from 2025-01-01, the quarter from
2025-04-01. Each patient below lists the sets it belongs to; ``EXPECTED``
is their sum. County A (990102): township A1 = 990102001, A2 = 990102002.
"""

from __future__ import annotations

from collections import Counter
from datetime import date
from types import SimpleNamespace

import pytest

from reports.rules import PATIENT_COUNT_KEYS, Period
from reports.tests import factories as rf

PERIOD = Period(2025, 2)
TODAY = date(2025, 8, 15)
A1 = "990102001001"
A2 = "990102002001"
C1 = "990103001001"

# name → township, the sets the patient is counted in on 2025-06-30
MEMBERSHIP: dict[str, tuple[str, set[str]]] = {
    # follow-ups 10 Jan and 10 Apr: exactly three months apart
    "规范": (
        "A1",
        {
            "managed",
            "standard",
            "face_to_face",
            "medication",
            "regular_medication",
            "at_home_managed",
            "stable",
            "at_home",
            "risk_1",
        },
    ),
    # 10 Jan and 11 Apr: three months and a day
    "间隔": (
        "A1",
        {
            "managed",
            "face_to_face",
            "medication",
            "regular_medication",
            "at_home_managed",
            "stable",
            "at_home",
            "risk_0",
        },
    ),
    # phone only, intermittent medication, basically stable
    "电话": ("A1", {"managed", "standard", "medication", "at_home_managed", "at_home", "risk_2"}),
    # registered mid-year (1 May), one home visit on 15 May
    "年中": (
        "A2",
        {
            "new_registered",
            "managed",
            "standard",
            "face_to_face",
            "medication",
            "regular_medication",
            "at_home_managed",
            "stable",
            "at_home",
            "risk_0",
        },
    ),
    # lost since 1 March; last follow-up (regular) in November 2024: not
    # counted as on medication in 2025 (rules: the year's follow-ups only)
    "失访": ("A2", {"lost", "at_home", "risk_0"}),
    # in hospital, no follow-up
    "住院": ("A2", {"managed", "medication", "in_hospital", "risk_none"}),
    # refused, no medical insurance
    "拒绝": ("A1", {"at_home", "risk_none", "uninsured"}),
    # one visit on 5 January: more than three months before the statistics date
    "逾期": (
        "A1",
        {
            "managed",
            "face_to_face",
            "medication",
            "regular_medication",
            "at_home_managed",
            "at_home",
            "overdue",
            "risk_0",
        },
    ),
    # visit 31 March, due 30 June (the statistics date: not yet overdue)
    "到期": (
        "A2",
        {
            "managed",
            "standard",
            "face_to_face",
            "medication",
            "regular_medication",
            "at_home_managed",
            "stable",
            "at_home",
            "risk_0",
        },
    ),
    # risk 4, an incident in May, police registered, poor, certificate, rehab
    "高危": (
        "A2",
        {
            "managed",
            "standard",
            "face_to_face",
            "at_home_managed",
            "at_home",
            "rehab",
            "certificate",
            "incident",
            "incident_quarter",
            "high_risk",
            "police_registered",
            "poor",
            "risk_4",
        },
    ),
    # moved out on 10 July: still on the register on 30 June
    "后迁出": ("A1", {"at_home", "risk_none"}),
    # only a "not reached" attempt
    "未访到": ("A2", {"at_home", "risk_none"}),
}
# Not on the register on 2025-06-30: died 1 Feb, moved out 1 Jun, registered
# 5 Jul; and a patient of another county.
NOT_COUNTED = ("死亡", "迁出", "新登记", "外县")
# Patients are named ``SURNAME + key``: a surname that no page label contains,
# so a leak check can look for the names.
SURNAME = "欧阳"
FULL_NAMES = [SURNAME + key for key in (*MEMBERSHIP, *NOT_COUNTED)]


def short(name: str) -> str:
    return name.removeprefix(SURNAME)


def expected(township: str | None = None) -> dict[str, int]:
    counts = Counter()
    for town, sets in MEMBERSHIP.values():
        if township is None or town == township:
            counts["registered"] += 1
            counts.update(sets)
            if "uninsured" not in sets:
                counts["insured"] += 1
    return {key: counts.get(key, 0) for key in PATIENT_COUNT_KEYS}


@pytest.fixture
def county(world):
    """The patients of MEMBERSHIP and NOT_COUNTED, built by hand."""
    u, org = world.users, world.org
    by_a, by_b = u.doctor_a, u.doctor_b
    p = {}

    def make(name, by, village, **state):
        p[name] = rf.patient(by=by, village=village, name=SURNAME + name, **state)
        return p[name]

    old = date(2019, 6, 1)
    make(
        "规范",
        by_a,
        A1,
        registered_on=date(2020, 3, 1),
        risk_level=1,
        next_followup_due=date(2025, 7, 10),
    )
    rf.followup(p["规范"], date(2025, 1, 10), mode="clinic", risk=1)
    rf.followup(p["规范"], date(2025, 4, 10), risk=1)

    make("间隔", by_a, A1, registered_on=old, risk_level=0, next_followup_due=date(2025, 7, 11))
    rf.followup(p["间隔"], date(2025, 1, 10))
    rf.followup(p["间隔"], date(2025, 4, 11))
    rf.incident(p["间隔"], "disaster", date(2024, 12, 20), org.ps_a1)  # last year

    make("电话", by_a, A1, registered_on=old, risk_level=2, next_followup_due=date(2025, 8, 20))
    for d in (date(2025, 3, 1), date(2025, 5, 20)):
        rf.followup(
            p["电话"],
            d,
            mode="phone",
            compliance="intermittent",
            classification="basically_stable",
            risk=2,
        )

    make(
        "年中",
        by_b,
        A2,
        registered_on=date(2025, 5, 1),
        risk_level=0,
        next_followup_due=date(2025, 8, 15),
    )
    rf.followup(p["年中"], date(2025, 5, 15))

    make(
        "失访",
        by_b,
        A2,
        registered_on=old,
        risk_level=0,
        status="lost",
        status_changed_at=date(2025, 3, 1),
    )
    rf.followup(p["失访"], date(2024, 11, 1))

    make("住院", by_b, A2, registered_on=old, in_hospital=True)
    make("拒绝", by_a, A1, registered_on=old, status="refused", insurance="none")

    make("逾期", by_a, A1, registered_on=old, risk_level=0, next_followup_due=date(2025, 4, 5))
    rf.followup(p["逾期"], date(2025, 1, 5))

    make("到期", by_b, A2, registered_on=old, risk_level=0, next_followup_due=date(2025, 6, 30))
    rf.followup(p["到期"], date(2025, 3, 31))

    make(
        "高危",
        by_b,
        A2,
        registered_on=old,
        risk_level=4,
        police_registered=True,
        poverty="dibao",
        certificate="held",
        certificate_grade=2,
        in_community_rehab=True,
        next_followup_due=date(2025, 7, 20),
    )
    for d in (date(2025, 2, 10), date(2025, 4, 20)):
        rf.followup(p["高危"], d, compliance="none", classification="unstable", risk=4)
    rf.incident(p["高危"], "trouble", date(2025, 5, 5), org.ps_a2)
    rf.incident(p["高危"], "minor_trouble", date(2025, 2, 2), org.ps_a2)
    make(
        "后迁出",
        by_a,
        A1,
        registered_on=old,
        status="moved_out",
        status_changed_at=date(2025, 7, 10),
    )
    make("未访到", by_b, A2, registered_on=old, next_followup_due=date(2025, 7, 1))
    rf.followup(p["未访到"], date(2025, 4, 1), mode="phone", outcome="not_reached")

    make("死亡", by_a, A1, registered_on=old, status="deceased", status_changed_at=date(2025, 2, 1))
    rf.followup(p["死亡"], date(2025, 1, 15))
    make(
        "迁出", by_a, A1, registered_on=old, status="moved_out", status_changed_at=date(2025, 6, 1)
    )
    make("新登记", by_a, A1, registered_on=date(2025, 7, 5))
    make("外县", u.doctor_c, C1, registered_on=old, risk_level=5)
    rf.followup(p["外县"], date(2025, 4, 2), risk=5)
    return SimpleNamespace(world=world, p=p)
