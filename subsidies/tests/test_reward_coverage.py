"""Reward coverage per region (DOMAIN.md → Indicators, ``reward_coverage``):
the grouped statement of the nightly snapshot (``reward_coverage_by_region``,
rolled up by ``reports.reward.subtree_coverage``) gives exactly what the
eligibility rule gives patient by patient (``rules.reward_ineligibility``),
and it is judged on the statistics date: the register as it was then
(``reports.engine.base_sql``) and the awards active on that day, never
today's state (issue 6)."""

from collections import Counter
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import connection
from django.db.models import Exists, OuterRef
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import Region
from patients.models import REGISTERED_STATUSES, Patient
from patients.services import patient_update
from patients.tests import factories as pf
from reports import reward as report_reward
from reports import services as report_services
from reports.models import IndicatorSnapshot
from reports.rules import Period
from reports.tests import factories as rf
from subsidies import rules, selectors, services
from subsidies.models import Award, AwardStatus, EndReason
from subsidies.tests import factories as sf

pytestmark = pytest.mark.django_db

SHANGHAI = ZoneInfo("Asia/Shanghai")
# the register is built on this day (its history rows are dated then) ...
BUILT = date(2026, 1, 10)
# ... and counted on the statistics date: a failed-duty incident on
# 2025-02-28 bars until 2026-02-28 (so no longer), one on 2025-03-01 until
# 2026-03-01 (still)
ON = date(2026, 2, 28)


def _at(day: date, hour: int = 10):
    return time_machine.travel(
        datetime(day.year, day.month, day.day, hour, tzinfo=SHANGHAI), tick=False
    )


def _facts(patient, *, doctor, police, assistants=2, letter=True, guardian=True, police_reg=True):
    data = {
        "assistant_guardians": [{"name": f"协助{i}", "relation": "邻居"} for i in range(assistants)]
    }
    if guardian:
        data["guardian"] = {"name": "监护人", "relation": "母亲", "responsibility_letter": letter}
    patient = patient_update(by=doctor, pk=patient.pk, data=data, expected_version=None)
    if police_reg:
        patient_update(
            by=police, pk=patient.pk, data={"police_registered": True}, expected_version=None
        )
    return Patient.objects.get(pk=patient.pk)


@pytest.fixture
def county(world):
    with _at(BUILT):
        return _build(world)


def _build(world):
    """Guardians of two villages in each of the two townships of county A,
    each case of the DOMAIN.md rule: registered + police-registered +
    (trouble/disaster incident or current risk ≥ 3) + responsibility letter
    + ≥ 2 assistant guardians, and the 12-month bar after failed duties."""
    u = world.users
    sf.reward_policy(world.county_a, notice_days=0)
    a1, a2 = (
        {"doctor": u.doctor_a, "police": u.police_a},
        {"doctor": u.doctor_b, "police": u.police_b},
    )

    def person(name, village, town, **facts):
        p = pf.patient(by=town["doctor"], village=village, name=name, guardian=None)
        return _facts(p, **town, **facts)

    p = {}
    # A1, village 001
    p["incident"] = person("事件", "990102001001", a1)
    sf.incident(p["incident"], kind="trouble")
    p["risk"] = person("高危", "990102001001", a1)
    rf.change(p["risk"], BUILT, risk_level=3)
    p["one_assistant"] = person("一协", "990102001001", a1, assistants=1)
    sf.incident(p["one_assistant"])
    p["no_letter"] = person("无书", "990102001001", a1, letter=False)
    sf.incident(p["no_letter"], kind="disaster")
    # A1, village 002
    p["lost"] = person("失访", "990102001002", a1)
    sf.incident(p["lost"], kind="disaster")
    p["minor"] = person("轻度", "990102001002", a1)
    sf.incident(p["minor"], kind="minor_trouble")
    rf.change(p["minor"], BUILT, risk_level=2)
    p["not_police"] = person("未列管", "990102001002", a1, police_reg=False)
    sf.incident(p["not_police"])
    # A2, village 001
    p["barred"] = person("禁申", "990102002001", a2)
    sf.incident(p["barred"])
    p["bar_over"] = person("期满", "990102002001", a2)
    sf.incident(p["bar_over"])
    p["bar_edge"] = person("未满", "990102002001", a2)
    rf.change(p["bar_edge"], BUILT, risk_level=4)
    p["dead"] = person("死亡", "990102002001", a2)
    sf.incident(p["dead"])
    # A2, village 002
    p["active"] = person("发放", "990102002002", a2)
    sf.incident(p["active"])
    p["no_guardian"] = person("无监护", "990102002002", a2, guardian=False)
    rf.change(p["no_guardian"], BUILT, risk_level=4)

    # active awards (the policy has no notice period): counted only while eligible
    for key, town in (("incident", a1), ("active", a2), ("barred", a2)):
        award = sf.award_through(
            p[key], applicant=town["doctor"], reviewer=u.governance, approver=u.civil
        )
        award.refresh_from_db()
        assert award.status == AwardStatus.ACTIVE
    # then the guardian of "barred" failed their duties (no sync has run yet)
    sf.incident(p["barred"], on=date(2025, 6, 1), failed=True)
    sf.incident(p["bar_over"], on=date(2025, 2, 28), failed=True)
    sf.incident(p["bar_edge"], on=date(2025, 3, 1), failed=True)
    rf.change(p["lost"], BUILT, status="lost")
    rf.change(p["dead"], BUILT, status="deceased")
    return p


EXPECTED = {
    # region: (eligible, active)
    "990102": (5, 2),
    "990102001": (3, 1),  # incident (award), risk, lost
    "990102001001": (2, 1),
    "990102001002": (1, 0),
    "990102002": (2, 1),  # bar_over, active (award); barred's award is not counted
    "990102002001": (1, 0),
    "990102002002": (1, 1),
}


def _by_rule(county_region: Region, on: date) -> dict[str, tuple[int, int]]:
    """(eligible, active award) per village, patient by patient through
    ``rules.reward_ineligibility`` on the register as it is now."""
    rule = selectors.reward_policy_in_force(county_code=county_region.code, on=on).rule()
    patients = selectors.with_reward_facts(
        Patient.objects.filter(
            region__path__startswith=county_region.path, status__in=REGISTERED_STATUSES
        )
    ).annotate(
        active=Exists(Award.objects.filter(patient=OuterRef("pk"), status=AwardStatus.ACTIVE))
    )
    eligible, active = Counter(), Counter()
    for patient in patients:
        if not rules.reward_ineligibility(selectors.reward_facts_for(patient), rule, today=on):
            eligible[patient.region_id] += 1
            active[patient.region_id] += bool(patient.active)
    return {code: (eligible[code], active[code]) for code in eligible}


def _villages(rows: dict) -> dict[str, tuple[int, int]]:
    return {code: (c["eligible"], c["active"]) for code, c in rows.items() if c["eligible"]}


def test_the_grouped_counts_equal_the_rule_patient_by_patient(world, county):
    regions = Region.objects.filter(path__startswith=world.county_a.path).order_by("code")
    counts = {r.code: selectors.reward_coverage_counts(region=r, date=ON) for r in regions}
    assert {code: (c["eligible"], c["active"]) for code, c in counts.items()} == EXPECTED
    # nothing changed since ON: the register as it was then is the register now
    grouped = selectors.reward_coverage_by_region(county=world.county_a, date=ON)
    assert _villages(grouped) == _by_rule(world.county_a, ON)
    new = report_reward.subtree_coverage(world.county_a, ON)
    assert new == {
        code: {"reward_eligible": c["eligible"], "reward_active": c["active"]}
        for code, c in counts.items()
    }
    # a day earlier "bar_over" is still barred: one fewer in A2
    before = report_reward.subtree_coverage(world.county_a, ON - timedelta(days=1))
    assert before["990102002"] == {"reward_eligible": 1, "reward_active": 1}
    assert before["990102002"] == report_reward.coverage_counts(
        Region.objects.get(code="990102002"), ON - timedelta(days=1)
    )
    # today (computed from the rows as they are): both bars are over
    today = timezone.localdate()
    live = selectors.reward_coverage_by_region(county=world.county_a, date=today)
    assert _villages(live) == _by_rule(world.county_a, today)
    assert live["990102002001"] == {"eligible": 3, "active": 1}


def test_one_statement_for_the_county(world, county):
    with CaptureQueriesContext(connection) as ctx:
        report_reward.subtree_coverage(world.county_a, ON)
    reads = [
        q["sql"]
        for q in ctx.captured_queries
        if not q["sql"].startswith(("SET LOCAL", "SAVEPOINT", "RELEASE SAVEPOINT"))
    ]
    # the regions, the policy, the subtree's codes, the grouped counts
    assert len(reads) == 4


def test_no_policy_means_not_available(world, county):
    assert selectors.reward_coverage_by_region(county=world.county_c, date=ON) is None
    assert report_reward.subtree_coverage(world.county_c, ON) is None


def test_the_snapshot_stores_the_rolled_up_counts(world, county):
    period = Period.containing(ON)
    report_services.snapshot_refresh_county(county=world.county_a, period=period, today=ON)
    on = period.statistics_date(ON)
    for code in EXPECTED:
        counts = IndicatorSnapshot.objects.get(region_id=code, period=period.code).counts
        old = selectors.reward_coverage_counts(region=Region.objects.get(code=code), date=on)
        assert (counts["reward_eligible"], counts["reward_active"]) == (
            old["eligible"],
            old["active"],
        )


@pytest.mark.parametrize("months", [0, 1, 3, 12, 13, 24])
def test_the_bar_threshold_is_the_rule_s_boundary(months):
    day = date(2023, 12, 25)
    while day < date(2025, 3, 10):
        t = selectors.reward_bar_threshold(day, months)
        assert rules.add_months(t, months) <= day < rules.add_months(t + timedelta(days=1), months)
        day += timedelta(days=1)


# --- coverage on the statistics date, not today (issue 6) ------------------------

VILLAGE = "990102001001"
Q2, Q3, Q4 = Period(2025, 2), Period(2025, 3), Period(2025, 4)


def _eligible_patient(world, name, *, police_reg=True):
    """A patient of village A1-001 whom the default rule makes eligible: a
    trouble incident (2024-06-01), police-registered, guardian with the
    letter, two assistant guardians."""
    u = world.users
    p = pf.patient(by=u.doctor_a, village=VILLAGE, name=name, guardian=None)
    p = _facts(p, doctor=u.doctor_a, police=u.police_a, police_reg=police_reg)
    sf.incident(p, kind="trouble")
    return p


def _award(world, patient, on: date):
    u = world.users
    with _at(on):
        award = sf.award_through(
            patient,
            applicant=u.doctor_a,
            reviewer=u.governance,
            approver=u.civil,
            applied=on,
            approved=on,
        )
    award.refresh_from_db()
    assert award.status == AwardStatus.ACTIVE and award.active_from == on
    return award


def _snapshot(world, period: Period) -> tuple[int, int]:
    """The village's (eligible, active) as the quarter's snapshot stores it."""
    report_services.snapshot_refresh_county(
        county=world.county_a, period=period, today=timezone.localdate()
    )
    counts = IndicatorSnapshot.objects.get(region_id=VILLAGE, period=period.code).counts
    return counts["reward_eligible"], counts["reward_active"]


def test_an_award_granted_after_the_quarter_does_not_cover_it(world):
    sf.reward_policy(world.county_a, notice_days=0)
    with _at(date(2025, 1, 5)):
        p = _eligible_patient(world, "后补")
    _award(world, p, date(2025, 10, 8))
    assert _snapshot(world, Q3) == (1, 0)
    assert _snapshot(world, Q4) == (1, 1)
    assert selectors.reward_coverage_counts(region=world.county_a, date=date(2025, 10, 7)) == {
        "eligible": 1,
        "active": 0,
    }


def test_an_award_ended_before_the_statistics_date_does_not_cover_it(world):
    sf.reward_policy(world.county_a, notice_days=0)
    with _at(date(2025, 1, 5)):
        p = _eligible_patient(world, "终止")
    award = _award(world, p, date(2025, 1, 20))
    with _at(date(2025, 8, 12)):
        services.award_end(
            award_id=award.pk,
            by=world.users.civil,
            reason=EndReason.OTHER,
            ended_on=date(2025, 8, 10),
        )
    assert _snapshot(world, Q2) == (1, 1)
    assert _snapshot(world, Q3) == (1, 0)  # still eligible, no longer covered
    on = selectors.reward_coverage_counts
    assert on(region=world.county_a, date=date(2025, 8, 9)) == {"eligible": 1, "active": 1}
    assert on(region=world.county_a, date=date(2025, 8, 10)) == {"eligible": 1, "active": 0}


def test_a_suspended_award_covers_until_its_stop_date(world):
    sf.reward_policy(world.county_a, notice_days=0)
    with _at(date(2025, 1, 5)):
        p = _eligible_patient(world, "暂停")
    award = _award(world, p, date(2025, 1, 20))
    with _at(date(2025, 9, 3)):
        incident = sf.incident(p, on=date(2025, 9, 2), failed=True)
        services.award_suspend(award_id=award.pk, incident_id=incident.pk, by=world.users.civil)
    award.refresh_from_db()
    assert award.stop_from == date(2025, 10, 1)
    # the failed duty bars the guardian from 2 September: no longer eligible
    assert _snapshot(world, Q2) == (1, 1)
    assert _snapshot(world, Q3) == (0, 0)


def test_eligibility_is_judged_on_the_register_of_the_statistics_date(world):
    u = world.users
    sf.reward_policy(world.county_a, notice_days=0)
    with _at(date(2025, 1, 5)):
        later_police = _eligible_patient(world, "后列管", police_reg=False)
        died_later = _eligible_patient(world, "后死亡")
        gained_assistants_later = pf.patient(
            by=u.doctor_a, village=VILLAGE, name="后补协助", guardian=None
        )
        gained_assistants_later = _facts(
            gained_assistants_later, doctor=u.doctor_a, police=u.police_a, assistants=1
        )
        sf.incident(gained_assistants_later, kind="disaster")
    _award(world, died_later, date(2025, 2, 1))
    with _at(date(2025, 10, 20)):
        patient_update(
            by=u.police_a,
            pk=later_police.pk,
            data={"police_registered": True},
            expected_version=None,
        )
        patient_update(
            by=u.doctor_a,
            pk=gained_assistants_later.pk,
            data={
                "assistant_guardians": [{"name": f"协助{i}", "relation": "邻居"} for i in range(2)]
            },
            expected_version=None,
        )
        rf.change(died_later, date(2025, 10, 20), status="deceased")
    # on 30 September: only the one who died later (with the award then)
    assert _snapshot(world, Q3) == (1, 1)
    # now: the two who qualified later; the deceased patient is off the register
    today = timezone.localdate()
    assert selectors.reward_coverage_counts(region=world.county_a, date=today) == {
        "eligible": 2,
        "active": 0,
    }


def test_award_changes_refresh_the_running_quarter(world):
    sf.reward_policy(world.county_a, notice_days=0)
    p = _eligible_patient(world, "发放")
    today = timezone.localdate()
    running = Period.containing(today)
    report_services.snapshots_nightly(today=today)

    def county_row():
        counts = IndicatorSnapshot.objects.get(region_id="990102", period=running.code).counts
        return counts["reward_eligible"], counts["reward_active"]

    assert county_row() == (1, 0)
    since = timezone.now()
    award = sf.award_through(
        p,
        applicant=world.users.doctor_a,
        reviewer=world.users.governance,
        approver=world.users.civil,
        applied=today,
        approved=today,
    )
    assert [c.code for c in report_services.changed_counties(since=since)] == ["990102"]
    assert report_services.snapshots_refresh_changed(since=since, today=today)["counties"] == 1
    assert county_row() == (1, 1)

    since = timezone.now()
    services.award_end(
        award_id=award.pk, by=world.users.civil, reason=EndReason.OTHER, ended_on=today
    )
    assert [c.code for c in report_services.changed_counties(since=since)] == ["990102"]
    report_services.snapshots_refresh_changed(since=since, today=today)
    assert county_row() == (1, 0)
