"""Reward coverage per region (DOMAIN.md → Indicators, ``reward_coverage``):
the grouped statement of the nightly snapshot (``reward_coverage_by_region``,
rolled up by ``reports.reward.subtree_coverage``) gives exactly what the
per-region computation through the eligibility rule gives
(``reward_coverage_counts`` → ``rules.reward_ineligibility``)."""

from datetime import date, timedelta

import pytest

from accounts.models import Region
from patients.models import Patient
from patients.services import patient_update
from patients.tests import factories as pf
from reports import reward as report_reward
from reports import services as report_services
from reports.models import IndicatorSnapshot
from reports.rules import Period
from subsidies import rules, selectors
from subsidies.models import AwardStatus
from subsidies.tests import factories as sf

pytestmark = pytest.mark.django_db

# the statistics date: a failed-duty incident on 2025-02-28 bars until
# 2026-02-28 (so no longer), one on 2025-03-01 until 2026-03-01 (still)
ON = date(2026, 2, 28)


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
    Patient.objects.filter(pk=p["risk"].pk).update(risk_level=3)
    p["one_assistant"] = person("一协", "990102001001", a1, assistants=1)
    sf.incident(p["one_assistant"])
    p["no_letter"] = person("无书", "990102001001", a1, letter=False)
    sf.incident(p["no_letter"], kind="disaster")
    # A1, village 002
    p["lost"] = person("失访", "990102001002", a1)
    sf.incident(p["lost"], kind="disaster")
    p["minor"] = person("轻度", "990102001002", a1)
    sf.incident(p["minor"], kind="minor_trouble")
    Patient.objects.filter(pk=p["minor"].pk).update(risk_level=2)
    p["not_police"] = person("未列管", "990102001002", a1, police_reg=False)
    sf.incident(p["not_police"])
    # A2, village 001
    p["barred"] = person("禁申", "990102002001", a2)
    sf.incident(p["barred"])
    p["bar_over"] = person("期满", "990102002001", a2)
    sf.incident(p["bar_over"])
    p["bar_edge"] = person("未满", "990102002001", a2)
    Patient.objects.filter(pk=p["bar_edge"].pk).update(risk_level=4)
    p["dead"] = person("死亡", "990102002001", a2)
    sf.incident(p["dead"])
    # A2, village 002
    p["active"] = person("发放", "990102002002", a2)
    sf.incident(p["active"])
    p["no_guardian"] = person("无监护", "990102002002", a2, guardian=False)
    Patient.objects.filter(pk=p["no_guardian"].pk).update(risk_level=4)

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
    Patient.objects.filter(pk=p["lost"].pk).update(status="lost")
    Patient.objects.filter(pk=p["dead"].pk).update(status="deceased")
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


def test_the_grouped_counts_equal_the_per_region_rule(world, county):
    regions = Region.objects.filter(path__startswith=world.county_a.path).order_by("code")
    old = {r.code: selectors.reward_coverage_counts(region=r, date=ON) for r in regions}
    assert {code: (c["eligible"], c["active"]) for code, c in old.items()} == EXPECTED
    new = report_reward.subtree_coverage(world.county_a, ON)
    assert new == {
        code: {"reward_eligible": c["eligible"], "reward_active": c["active"]}
        for code, c in old.items()
    }
    # a day earlier "bar_over" is still barred: one fewer in A2
    before = report_reward.subtree_coverage(world.county_a, ON - timedelta(days=1))
    assert before["990102002"] == {"reward_eligible": 1, "reward_active": 1}
    assert before["990102002"] == report_reward.coverage_counts(
        Region.objects.get(code="990102002"), ON - timedelta(days=1)
    )


def test_one_statement_for_the_county(world, county, django_assert_max_num_queries):
    with django_assert_max_num_queries(3):  # the regions, the policy, the grouped counts
        report_reward.subtree_coverage(world.county_a, ON)


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
