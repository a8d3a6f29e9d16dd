"""Pure rules: periods, calendar months, values from counts."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from reports import rules
from reports.rules import (
    ERR_PERIOD_FORMAT,
    ERR_PERIOD_FUTURE,
    INDICATORS,
    Period,
    PeriodError,
    add_months,
)


def test_period_parses_and_knows_its_dates():
    p = Period.parse("2025q2")
    assert p.code == "2025Q2"
    assert (p.start, p.end, p.year_start) == (date(2025, 4, 1), date(2025, 6, 30), date(2025, 1, 1))
    assert Period.parse("2024Q4").end == date(2024, 12, 31)
    assert Period.containing(date(2026, 11, 23)) == Period(2026, 4)


@pytest.mark.parametrize("code", ["2025", "2025Q5", "2025Q0", "25Q1", "Q1 2025", ""])
def test_period_rejects_other_formats(code):
    with pytest.raises(PeriodError) as exc:
        Period.parse(code)
    assert exc.value.message == ERR_PERIOD_FORMAT


def test_statistics_date_is_the_quarter_end_or_today_while_it_runs():
    assert Period(2025, 2).statistics_date(date(2025, 8, 15)) == date(2025, 6, 30)
    assert Period(2025, 3).statistics_date(date(2025, 8, 15)) == date(2025, 8, 15)
    with pytest.raises(PeriodError) as exc:
        Period(2025, 4).statistics_date(date(2025, 8, 15))
    assert exc.value.message == ERR_PERIOD_FUTURE


def test_last_n_runs_back_across_years_oldest_first():
    assert [p.code for p in Period(2025, 2).last_n(4)] == ["2024Q3", "2024Q4", "2025Q1", "2025Q2"]


def test_finalisable_after_the_grace_period():
    p = Period(2025, 2)
    assert not p.finalisable(date(2025, 7, 1))
    assert not p.finalisable(date(2025, 7, 15))
    assert p.finalisable(date(2025, 7, 16))


@pytest.mark.parametrize(
    ("start", "months", "end"),
    [
        (date(2025, 1, 10), 3, date(2025, 4, 10)),
        (date(2025, 11, 30), 3, date(2026, 2, 28)),
        (date(2023, 11, 30), 3, date(2024, 2, 29)),
        (date(2025, 1, 31), 3, date(2025, 4, 30)),
        (date(2025, 3, 31), 3, date(2025, 6, 30)),
        (date(2025, 5, 31), -3, date(2025, 2, 28)),
    ],
)
def test_add_months_clips_to_the_month_end(start, months, end):
    assert add_months(start, months) == end


def test_values_from_counts():
    counts = dict.fromkeys(rules.PATIENT_COUNT_KEYS, 0)
    counts.update(registered=3, managed=2, at_home_managed=0, population=1000)
    values = {v.key: v for v in rules.evaluate(counts, {"management_rate": Decimal("80")})}
    assert values["management_rate"].value == Decimal("66.67")
    assert values["management_rate"].met is False
    assert values["management_rate"].target == Decimal("80")
    assert values["stable_rate"].value is None  # no patient living at home: no rate
    assert values["prevalence_permille"].value == Decimal("3.00")
    assert values["reward_coverage"].available is False
    assert rules.format_value(values["management_rate"]) == "66.67%"
    assert rules.format_value(values["reward_coverage"]) == "—"


def test_a_ceiling_target_is_met_at_or_below_it():
    incident = rules.BY_KEY["incident_rate"]
    assert rules.target_met(incident, Decimal("1.00"), Decimal("1")) is True
    assert rules.target_met(incident, Decimal("1.01"), Decimal("1")) is False


def test_every_domain_indicator_is_defined_once():
    keys = [i.key for i in INDICATORS]
    assert keys == [
        "registered",
        "prevalence_permille",
        "managed",
        "management_rate",
        "standard_management_rate",
        "face_to_face_rate",
        "medication_rate",
        "regular_medication_rate",
        "stable_rate",
        "incident_rate",
        "high_risk",
        "overdue",
        "lost",
        "rehab_rate",
        "certificate_rate",
        "reward_coverage",
    ]


def test_rollup_sums_leaves_into_every_ancestor():
    paths = {
        "990102001001": "/990000/990100/990102/990102001/990102001001/",
        "990102002001": "/990000/990100/990102/990102002/990102002001/",
    }
    leaves = {"990102001001": {"registered": 2}, "990102002001": {"registered": 3}}
    out = rules.rollup(leaves, paths, ["990102", "990102001", "990102002", "990000"])
    assert out["990102"]["registered"] == 5
    assert out["990102001"]["registered"] == 2
    assert out["990000"]["registered"] == 5


def test_population_of_a_region_without_its_own_is_its_childrens():
    pops = rules.populations(
        [("990000", None, None), ("990102", "990000", 300), ("990103", "990000", 200)]
    )
    assert pops == {"990000": 500, "990102": 300, "990103": 200}
