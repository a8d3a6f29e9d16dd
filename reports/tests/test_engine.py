"""The engine against a county whose every count is known by hand
(reports/tests/conftest.py), and the drill-down lists against it."""

from __future__ import annotations

from datetime import date

import pytest

from reports import engine, rules, selectors
from reports.rules import PATIENT_COUNT_KEYS, Period
from reports.tests.conftest import MEMBERSHIP, PERIOD, TODAY, expected, short

pytestmark = pytest.mark.django_db


def test_every_count_has_one_flag_expression():
    assert set(engine.flag_sql()) == set(PATIENT_COUNT_KEYS)


def test_county_counts_match_the_hand_count(county):
    counts = engine.subtree_counts(region=county.world.county_a, period=PERIOD, today=TODAY)
    got = {k: counts["990102"][k] for k in PATIENT_COUNT_KEYS}
    assert got == expected()
    assert counts["990102"]["registered"] == 12


def test_each_township_counts_its_own_patients(county):
    counts = engine.subtree_counts(region=county.world.county_a, period=PERIOD, today=TODAY)
    for code, town in (("990102001", "A1"), ("990102002", "A2")):
        assert {k: counts[code][k] for k in PATIENT_COUNT_KEYS} == expected(town)


def test_another_county_is_not_counted(county):
    counts = engine.subtree_counts(region=county.world.county_c, period=PERIOD, today=TODAY)
    assert counts["990103"]["registered"] == 1
    assert counts["990103"]["high_risk"] == 1


def test_indicator_values_from_the_hand_count(county):
    counts = engine.subtree_counts(region=county.world.county_a, period=PERIOD, today=TODAY)
    values = {v.key: v for v in rules.evaluate(counts["990102"])}
    assert values["registered"].value == 12
    assert str(values["management_rate"].value) == "66.67"  # 8 / 12
    assert str(values["standard_management_rate"].value) == "41.67"  # 5 / 12
    assert str(values["face_to_face_rate"].value) == "50.00"  # 6 / 12
    assert str(values["medication_rate"].value) == "58.33"  # 7 / 12
    assert str(values["regular_medication_rate"].value) == "41.67"  # 5 / 12
    assert str(values["stable_rate"].value) == "57.14"  # 4 / 7 living at home
    assert str(values["incident_rate"].value) == "8.33"  # 1 / 12
    assert str(values["rehab_rate"].value) == "9.09"  # 1 / 11 living at home
    assert str(values["certificate_rate"].value) == "8.33"
    assert str(values["prevalence_permille"].value) == "0.04"  # 12 / 300000
    assert values["overdue"].value == 1
    assert values["lost"].value == 1
    assert values["high_risk"].value == 1
    assert values["reward_coverage"].available is False


def test_gap_of_exactly_three_months_is_standard_and_one_day_more_is_not(county):
    standard = set(_names(county, "standard"))
    assert "规范" in standard  # 10 Jan → 10 Apr
    assert "间隔" not in standard  # 10 Jan → 11 Apr
    assert "到期" in standard  # 31 Mar → statistics date 30 Jun: exactly 3 months
    assert "逾期" not in standard  # 5 Jan → 30 Jun


def test_mid_year_registration_counts_from_its_registration_date(county):
    assert "年中" in _names(county, "standard")
    q1 = engine.subtree_counts(region=county.world.county_a, period=Period(2025, 1), today=TODAY)
    assert "年中" not in _names(county, "registered", period=Period(2025, 1))
    assert q1["990102"]["new_registered"] == 0


def test_deceased_and_moved_out_leave_the_register_from_their_date(county):
    q2 = set(_names(county, "registered"))
    assert {"死亡", "迁出", "新登记", "外县"}.isdisjoint(q2)
    assert "后迁出" in q2  # moved out after the statistics date
    q1 = set(_names(county, "registered", period=Period(2025, 1)))
    assert "迁出" in q1 and "死亡" not in q1
    q4 = set(_names(county, "registered", period=Period(2024, 4)))
    assert "死亡" in q4  # died in February 2025: on the register at the end of 2024
    assert "失访" in q4 and "失访" not in _names(county, "lost", period=Period(2024, 4))


def test_lost_and_hospitalised_patients(county):
    assert "失访" in _names(county, "lost")
    assert "失访" not in _names(county, "managed")
    managed = _names(county, "managed")
    assert "住院" in managed and "住院" in _names(county, "medication")
    assert "住院" not in _names(county, "at_home")
    assert "未访到" not in managed  # a "not reached" attempt is not management


def test_overdue_is_the_doctors_overdue_definition(county):
    from patients.models import Patient
    from patients.selectors import overdue_q

    statistics_date = PERIOD.statistics_date(TODAY)
    doctors = set(
        Patient.objects.filter(
            overdue_q(statistics_date), region__path__startswith=county.world.county_a.path
        ).values_list("name", flat=True)
    )
    assert set(_names(county, "overdue")) == {short(n) for n in doctors} == {"逾期"}


def test_drilldown_list_count_equals_the_numerator(county):
    hospital = county.world.users.hospital  # health staff over the whole county
    region = county.world.county_a
    counts = engine.subtree_counts(region=region, period=PERIOD, today=TODAY)["990102"]
    for key, target in sorted(selectors.drill_targets().items()):
        listed = selectors.drilldown_patients(
            user=hospital, region=region, period=PERIOD, target=target, today=TODAY
        )
        assert listed.count() == counts[target.numerator], key
        if target.denominator:
            missing = selectors.drilldown_patients(
                user=hospital,
                region=region,
                period=PERIOD,
                target=target,
                missing=True,
                today=TODAY,
            )
            assert missing.count() == counts[target.denominator] - counts[target.numerator], key


def test_drilldown_never_lists_patients_outside_the_users_scope(county):
    target = selectors.drill_targets()["registered"]
    listed = selectors.drilldown_patients(
        user=county.world.users.doctor_a,
        region=county.world.county_a,
        period=PERIOD,
        target=target,
        today=TODAY,
    )
    assert {p.region_id[:9] for p in listed} == {"990102001"}
    assert listed.count() == expected("A1")["registered"]


def test_every_membership_is_by_hand(county):
    for key in PATIENT_COUNT_KEYS:
        if key == "registered":
            continue
        if key == "insured":
            want = {name for name, (_t, sets) in MEMBERSHIP.items() if "uninsured" not in sets}
        else:
            want = {name for name, (_t, sets) in MEMBERSHIP.items() if key in sets}
        assert set(_names(county, key)) == want, key


def _names(county, key, period: Period = PERIOD, today: date = TODAY) -> list[str]:
    sql, params = engine.flag_ids_sql(
        region=county.world.county_a, period=period, today=today, key=key
    )
    from django.db.models.expressions import RawSQL

    from patients.models import Patient

    names = Patient.objects.filter(pk__in=RawSQL(sql, params)).values_list("name", flat=True)
    return [short(n) for n in names]
