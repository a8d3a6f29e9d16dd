"""Past quarters count the register as it was on their statistics date
(issue 6 audit, item 1), and the definition choices of reports.rules with
small hand-built data (items 5 and 6).

Every patient lives in village 990102001001 (township A1, county A) unless
said otherwise. The statistics date of 2025Q2 is 2025-06-30; "the year"
starts on 2025-01-01. Computed on 2025-08-15 a quarter is past (state as of
its statistics date); computed on 2025-06-30 it is the running quarter (state
as it is now): the definition tests run both ways and must agree.
"""

from __future__ import annotations

from datetime import date

import pytest
from django.db.models.expressions import RawSQL

from patients.models import Patient
from reports import engine, services
from reports.models import IndicatorSnapshot
from reports.rules import Period
from reports.tests import factories as rf

pytestmark = pytest.mark.django_db

Q1, Q2, Q3 = Period(2025, 1), Period(2025, 2), Period(2025, 3)
LATER = date(2025, 8, 15)  # Q1 and Q2 are past, Q3 runs
A1V, A2V, C1V = "990102001001", "990102002001", "990103001001"
OLD = date(2019, 6, 1)


def _ids(region, period: Period, key: str, today: date) -> set[str]:
    sql, params = engine.flag_ids_sql(region=region, period=period, today=today, key=key)
    return set(Patient.objects.filter(pk__in=RawSQL(sql, params)).values_list("name", flat=True))


def _counts(region, period: Period, today: date) -> dict:
    return engine.subtree_counts(region=region, period=period, today=today)


# --- item 1: the state on the statistics date -------------------------------------


def test_a_patient_lost_in_q1_and_found_in_q2_is_lost_only_in_q1(world):
    p = rf.patient(by=world.users.doctor_a, village=A1V, name="寻回", registered_on=OLD)
    rf.followup(p, date(2024, 12, 10))
    rf.change(p, date(2025, 3, 10), status="lost")
    rf.change(p, date(2025, 5, 5), status="active")
    county = world.county_a
    assert "寻回" in _ids(county, Q1, "lost", LATER)
    assert "寻回" in _ids(county, Q1, "registered", LATER)
    assert "寻回" not in _ids(county, Q1, "overdue", LATER)  # lost, not overdue
    assert "寻回" not in _ids(county, Q2, "lost", LATER)
    assert _counts(county, Q1, LATER)["990102"]["lost"] == 1
    assert _counts(county, Q2, LATER)["990102"]["lost"] == 0


def test_risk_changed_after_the_quarter_end_counts_as_it_was(world):
    p = rf.patient(by=world.users.doctor_a, village=A1V, name="降级", registered_on=OLD)
    rf.followup(p, date(2025, 6, 10), risk=4)
    rf.change(p, date(2025, 6, 10), risk_level=4, last_followup_date=date(2025, 6, 10))
    rf.followup(p, date(2025, 7, 20), risk=1)
    rf.change(p, date(2025, 7, 20), risk_level=1, last_followup_date=date(2025, 7, 20))
    q2 = _counts(world.county_a, Q2, LATER)["990102"]
    assert (q2["high_risk"], q2["risk_4"], q2["risk_1"]) == (1, 1, 0)
    q3 = _counts(world.county_a, Q3, LATER)["990102"]  # the running quarter: now
    assert (q3["high_risk"], q3["risk_4"], q3["risk_1"]) == (0, 0, 1)


def test_a_patient_who_moved_after_the_quarter_end_counts_where_they_lived(world):
    moved = rf.patient(by=world.users.doctor_a, village=A1V, name="迁镇", registered_on=OLD)
    away = rf.patient(by=world.users.doctor_a, village=A1V, name="迁县", registered_on=OLD)
    rf.change(moved, date(2025, 7, 10), region_id=A2V)
    rf.change(away, date(2025, 7, 12), region_id=C1V)
    q2 = _counts(world.county_a, Q2, LATER)
    assert (q2["990102001"]["registered"], q2["990102002"]["registered"]) == (2, 0)
    assert _ids(world.county_a, Q2, "registered", LATER) == {"迁镇", "迁县"}
    assert _counts(world.county_c, Q2, LATER)["990103"]["registered"] == 0
    q3 = _counts(world.county_a, Q3, LATER)
    assert (q3["990102001"]["registered"], q3["990102002"]["registered"]) == (0, 1)
    assert _counts(world.county_c, Q3, LATER)["990103"]["registered"] == 1


def test_overdue_on_a_past_date_uses_the_due_date_then(world):
    p = rf.patient(by=world.users.doctor_a, village=A1V, name="曾逾期", registered_on=OLD)
    rf.followup(p, date(2025, 1, 5))  # next due 5 April
    rf.change(
        p, date(2025, 1, 5), last_followup_date=date(2025, 1, 5), next_followup_due=date(2025, 4, 5)
    )
    rf.followup(p, date(2025, 7, 1))  # visited after the quarter: due 1 October
    rf.change(
        p,
        date(2025, 7, 1),
        last_followup_date=date(2025, 7, 1),
        next_followup_due=date(2025, 10, 1),
    )
    # a late entry: visited 20 June (next due 20 September), recorded in August
    late = rf.patient(by=world.users.doctor_a, village=A1V, name="补录", registered_on=OLD)
    rf.change(
        late,
        date(2025, 1, 6),
        last_followup_date=date(2025, 1, 6),
        next_followup_due=date(2025, 4, 6),
    )
    rf.followup(late, date(2025, 1, 6))
    rf.followup(late, date(2025, 6, 20))
    rf.change(
        late,
        date(2025, 8, 10),
        last_followup_date=date(2025, 6, 20),
        next_followup_due=date(2025, 9, 20),
    )
    assert _ids(world.county_a, Q2, "overdue", LATER) == {"曾逾期"}
    assert _ids(world.county_a, Q3, "overdue", LATER) == set()


def test_in_hospital_on_a_past_date_from_the_admission_and_discharge_dates(world):
    from subsidies.models import Episode

    p = rf.patient(by=world.users.doctor_a, village=A1V, name="曾住院", registered_on=OLD)
    Episode.objects.create(
        patient=p,
        hospital=world.org.hospital_a,
        case_number="Z1",
        status="discharged",
        admission_date=date(2025, 5, 1),
        discharge_date=date(2025, 7, 5),
    )
    assert "曾住院" in _ids(world.county_a, Q2, "in_hospital", LATER)
    assert "曾住院" in _ids(world.county_a, Q2, "managed", LATER)
    assert "曾住院" not in _ids(world.county_a, Q1, "in_hospital", LATER)
    assert "曾住院" not in _ids(world.county_a, Q3, "in_hospital", LATER)  # home now


def test_register_flags_are_those_of_the_statistics_date(world):
    p = rf.patient(by=world.users.doctor_a, village=A1V, name="后持证", registered_on=OLD)
    rf.change(
        p,
        date(2025, 7, 3),
        certificate="held",
        in_community_rehab=True,
        police_registered=True,
        poverty="dibao",
        insurance="none",
    )
    q2 = _counts(world.county_a, Q2, LATER)["990102"]
    q3 = _counts(world.county_a, Q3, LATER)["990102"]
    keys = ("certificate", "rehab", "police_registered", "poor", "uninsured")
    assert [q2[k] for k in keys] == [0, 0, 0, 0, 0]
    assert [q3[k] for k in keys] == [1, 1, 1, 1, 1]


def test_a_quarter_finalised_later_keeps_the_state_of_its_statistics_date(world):
    p = rf.patient(by=world.users.doctor_a, village=A1V, name="迁出前", registered_on=OLD)
    rf.followup(p, date(2025, 5, 2))
    services.snapshots_nightly(today=date(2025, 7, 5))  # Q2 still open
    open_row = IndicatorSnapshot.objects.get(region_id="990102001", period="2025Q2")
    assert open_row.final is False and open_row.counts["registered"] == 1
    rf.change(p, date(2025, 7, 10), region_id=A2V, risk_level=5)
    services.snapshots_nightly(today=date(2025, 7, 16))  # Q2 becomes final
    final_row = IndicatorSnapshot.objects.get(region_id="990102001", period="2025Q2")
    assert final_row.final is True
    keys = ("registered", "managed", "high_risk", "overdue")
    assert {k: final_row.counts[k] for k in keys} == {k: open_row.counts[k] for k in keys}
    assert (
        IndicatorSnapshot.objects.get(region_id="990102002", period="2025Q2").counts["registered"]
        == 0
    )


def test_the_registration_row_of_bulk_loaded_data_counts_as_active_before_a_later_change(
    world,
):
    """Bulk-loaded register rows (bench/province.py) carry the final state in
    their one history row; a status that began later was not in force."""
    p = rf.patient(
        by=world.users.doctor_a,
        village=A1V,
        name="后死亡",
        registered_on=OLD,
        status="deceased",
        status_changed_at=date(2025, 7, 20),
    )
    assert Patient.history.filter(id=p.pk).count() == 1
    assert "后死亡" in _ids(world.county_a, Q2, "registered", LATER)
    assert "后死亡" not in _ids(world.county_a, Q3, "registered", LATER)


# --- items 5 and 6: definitions by hand --------------------------------------------

# name → (registered_on, follow-ups, in hospital, keys the patient is counted in)
# each follow-up: (date, answers); the counted keys are checked for KEYS only
KEYS = (
    "managed",
    "standard",
    "medication",
    "regular_medication",
    "at_home_managed",
    "stable",
    "incident",
    "incident_quarter",
)
CASES: dict[str, tuple] = {
    # 5a: no contact this year: the 2024 visit does not make medication
    "去年服药": (OLD, [(date(2024, 11, 1), {})], False, set()),
    "今年服药": (
        OLD,
        [(date(2025, 3, 1), {}), (date(2025, 5, 25), {})],
        False,
        {"managed", "standard", "medication", "regular_medication", "at_home_managed", "stable"},
    ),
    # 5b: registered at most three months before 30 June, not visited yet
    "新登记未访": (date(2025, 5, 1), [], False, {"standard"}),
    "满三月未访": (date(2025, 3, 30), [], False, {"standard"}),
    "超三月未访": (date(2025, 3, 29), [], False, set()),
    # 5c: trouble or disaster answered on a follow-up form
    "随访肇事": (
        OLD,
        [(date(2025, 4, 10), {}), (date(2025, 5, 10), {"dangerous": {"trouble": 1}})],
        False,
        {
            "managed",
            "medication",
            "regular_medication",
            "at_home_managed",
            "stable",
            "incident",
            "incident_quarter",
        },
    ),
    "年初肇祸": (
        OLD,
        [(date(2025, 2, 10), {"dangerous": {"disaster": 1}}), (date(2025, 4, 30), {})],
        False,
        {
            "managed",
            "standard",
            "medication",
            "regular_medication",
            "at_home_managed",
            "stable",
            "incident",
        },
    ),
    "轻度滋事": (
        OLD,
        [(date(2025, 6, 1), {"dangerous": {"minor_trouble": 2, "self_harm": 1}})],
        False,
        {"managed", "medication", "regular_medication", "at_home_managed", "stable"},
    ),
    "去年肇祸": (OLD, [(date(2024, 12, 1), {"dangerous": {"disaster": 1}})], False, set()),
    # 6: the 1 January boundary: 1 January + 3 months = 1 April
    "四月一日": (
        OLD,
        [(date(2025, 4, 1), {}), (date(2025, 6, 15), {})],
        False,
        {"managed", "standard", "medication", "regular_medication", "at_home_managed", "stable"},
    ),
    "四月二日": (
        OLD,
        [(date(2025, 4, 2), {}), (date(2025, 6, 15), {})],
        False,
        {"managed", "medication", "regular_medication", "at_home_managed", "stable"},
    ),
    # 6: registered mid-year, first visit three months and a day later
    "登记后晚访": (
        date(2025, 2, 10),
        [(date(2025, 5, 11), {}), (date(2025, 6, 20), {})],
        False,
        {"managed", "medication", "regular_medication", "at_home_managed", "stable"},
    ),
    "登记后按时": (
        date(2025, 2, 10),
        [(date(2025, 5, 10), {}), (date(2025, 6, 20), {})],
        False,
        {"managed", "standard", "medication", "regular_medication", "at_home_managed", "stable"},
    ),
    # 6: in hospital with follow-ups: managed, not in the stable rate's base
    "住院有随访": (
        OLD,
        [
            (date(2025, 3, 20), {"hospitalization": "current"}),
            (date(2025, 6, 10), {"hospitalization": "current"}),
        ],
        True,
        {"managed", "standard", "medication", "regular_medication"},
    ),
}


@pytest.fixture
def cases(world):
    for name, (registered_on, visits, in_hospital, _keys) in CASES.items():
        p = rf.patient(
            by=world.users.doctor_a,
            village=A1V,
            name=name,
            registered_on=registered_on,
            in_hospital=in_hospital,
        )
        for visit, answers in visits:
            rf.followup(p, visit, **answers)
    return world


@pytest.mark.parametrize(
    "today", [date(2025, 6, 30), LATER], ids=["running quarter", "past quarter"]
)
def test_definitions_by_hand(cases, today):
    for key in KEYS:
        want = {name for name, case in CASES.items() if key in case[3]}
        assert _ids(cases.county_a, Q2, key, today) == want, key
    counts = _counts(cases.county_a, Q2, today)["990102"]
    assert counts["registered"] == len(CASES)
    assert counts["standard"] == 7
    assert counts["medication"] == 9 and counts["regular_medication"] == 9
    assert (counts["incident"], counts["incident_quarter"]) == (2, 1)
    assert (counts["at_home_managed"], counts["stable"]) == (8, 8)
