"""followups.rules against DOMAIN.md → Follow-ups (pure: no database)."""

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from followups import rules
from followups.rules import (
    BASICALLY_STABLE,
    STABLE,
    UNSTABLE,
    Assessment,
    PreviousVisit,
    add_months,
    next_due_date,
    suggest_classification,
)

CALM = {
    "risk_level": 0,
    "insight": "complete",
    "symptoms": (),
    "social_function": ("good", "fair", "not_applicable", "good", "good"),
}


def calm(**changes) -> Assessment:
    return Assessment(**{**CALM, **changes})


# --------------------------------------------------------------- classification


@pytest.mark.parametrize("risk", [3, 4, 5])
def test_risk_three_to_five_is_unstable(risk):
    assert suggest_classification(calm(risk_level=risk)) == UNSTABLE


@pytest.mark.parametrize(
    "change",
    [
        {"insight": "absent"},
        {"adverse_reaction": True, "adverse_reaction_serious": True},
        {"symptoms": ("violence",)},
    ],
)
def test_other_unstable_signs(change):
    assert suggest_classification(calm(**change)) == UNSTABLE


@pytest.mark.parametrize(
    "change",
    [
        {"risk_level": 1},
        {"risk_level": 2},
        {"insight": "partial"},
        {"symptoms": ("hallucination",)},
        {"symptoms": ("other",)},
        {"social_function": ("good", "poor", "good", "good", "good")},
        {"adverse_reaction": True},
    ],
)
def test_basically_stable_signs(change):
    assert suggest_classification(calm(**change)) == BASICALLY_STABLE


def test_calm_visit_is_stable():
    assert suggest_classification(calm()) == STABLE


def test_the_suggestion_waits_for_the_items_it_reads():
    assert rules.classification_missing({"risk_level": 0}) == [
        "insight",
        "self_care",
        "housework",
        "work",
        "learning",
        "social",
    ]
    full = {"risk_level": 0, "insight": "complete", **dict.fromkeys(rules.SOCIAL_FUNCTION, "good")}
    assert rules.classification_missing(full) == []
    # what is filled already makes the visit unstable: nothing can change it
    assert rules.classification_missing({"risk_level": 3}) == []
    assert rules.classification_missing({"risk_level": 0, "insight": "absent"}) == []
    assert rules.classification_missing({"risk_level": 2, "insight": "partial"}) == [
        "self_care",
        "housework",
        "work",
        "learning",
        "social",
    ]


def test_no_suggestion_without_risk_level():
    assert suggest_classification(calm(risk_level=None)) is None


def test_assessment_from_form_data():
    a = Assessment.from_data(
        {"risk_level": "2", "insight": "complete", "work": "poor", "symptoms": []}
    )
    assert a.risk_level == 2
    assert "poor" in a.social_function


# --------------------------------------------------------------- next due date


def test_unstable_is_due_in_fourteen_days():
    assert next_due_date(date(2026, 3, 1), UNSTABLE) == date(2026, 3, 15)


def test_basically_stable_first_time_is_fourteen_days():
    assert next_due_date(date(2026, 3, 1), BASICALLY_STABLE) == date(2026, 3, 15)


def test_basically_stable_after_recheck_is_one_month():
    prev = PreviousVisit(date(2026, 3, 1), BASICALLY_STABLE)
    assert next_due_date(date(2026, 3, 15), BASICALLY_STABLE, previous_completed=prev) == date(
        2026, 4, 15
    )


def test_basically_stable_after_an_old_visit_is_first_time_again():
    prev = PreviousVisit(date(2026, 1, 1), BASICALLY_STABLE)
    assert next_due_date(date(2026, 3, 15), BASICALLY_STABLE, previous_completed=prev) == date(
        2026, 3, 29
    )


def test_a_basically_stable_visit_the_same_day_is_no_recheck():
    visit = date(2026, 3, 10)
    prev = PreviousVisit(visit, BASICALLY_STABLE)
    assert next_due_date(visit, BASICALLY_STABLE, previous_completed=prev) == date(2026, 3, 24)
    prev = PreviousVisit(visit - timedelta(days=1), BASICALLY_STABLE)
    assert next_due_date(visit, BASICALLY_STABLE, previous_completed=prev) == date(2026, 4, 10)


def test_basically_stable_after_unstable_is_first_time():
    prev = PreviousVisit(date(2026, 3, 1), UNSTABLE)
    assert next_due_date(date(2026, 3, 15), BASICALLY_STABLE, previous_completed=prev) == date(
        2026, 3, 29
    )


def test_stable_is_three_months():
    assert next_due_date(date(2026, 1, 15), STABLE) == date(2026, 4, 15)


def test_month_end_is_clamped():
    assert add_months(date(2026, 11, 30), 3) == date(2027, 2, 28)
    assert add_months(date(2028, 1, 31), 1) == date(2028, 2, 29)
    assert add_months(date(2026, 3, 31), -1) == date(2026, 2, 28)


def test_doctor_may_choose_earlier_never_later():
    visit = date(2026, 3, 1)
    suggested = next_due_date(visit, STABLE)
    rules.check_due_date(visit, suggested, visit + timedelta(days=30))
    with pytest.raises(rules.RuleError) as exc:
        rules.check_due_date(visit, suggested, suggested + timedelta(days=1))
    assert exc.value.field == "next_due_date"
    with pytest.raises(rules.RuleError) as exc:
        rules.check_due_date(visit, suggested, visit)
    assert exc.value.message == rules.ERR_DUE_BEFORE_VISIT


def test_override_needs_a_reason():
    with pytest.raises(rules.RuleError) as exc:
        rules.decide(visit_date=date(2026, 3, 1), assessment=calm(), classification=UNSTABLE)
    assert exc.value.message == rules.ERR_OVERRIDE_REASON
    d = rules.decide(
        visit_date=date(2026, 3, 1),
        assessment=calm(),
        classification=UNSTABLE,
        override_reason="家属反映近日情绪激动",
    )
    assert (d.suggested_classification, d.classification) == (STABLE, UNSTABLE)
    # the next due date follows the final classification
    assert d.next_due_date == date(2026, 3, 15)


# --------------------------------------------------------------- outcomes


def test_three_misses_in_a_row_make_the_patient_lost():
    d = date(2026, 6, 1)
    history = [
        (d, "not_reached"),
        (d - timedelta(days=3), "not_reached"),
        (d - timedelta(days=9), "completed"),
    ]
    assert rules.consecutive_misses(history) == 2
    t = rules.transition(status="active", outcome="not_reached", misses=3)
    assert (t.status, t.lost_reason) == ("lost", "unreachable_3x")
    assert rules.transition(status="active", outcome="not_reached", misses=2).status is None


def test_deceased_ends_management():
    t = rules.transition(status="active", outcome="deceased")
    assert t.status == "deceased" and t.ends_management


def test_completed_visit_reactivates_a_lost_patient():
    assert rules.transition(status="lost", outcome="completed").status == "active"
    assert rules.transition(status="active", outcome="completed").status is None


def test_lost_outcome_makes_patient_lost():
    assert rules.transition(status="active", outcome="lost").status == "lost"


def test_a_refused_patient_seen_after_all_becomes_active_and_is_never_made_lost():
    assert rules.transition(status="refused", outcome="completed").status == "active"
    assert rules.transition(status="refused", outcome="lost").status is None
    assert rules.transition(status="refused", outcome="not_reached", misses=5).status is None
    assert rules.transition(status="refused", outcome="deceased").status == "deceased"


@given(
    status=st.sampled_from(rules.RECORDABLE_STATUSES),
    outcome=st.sampled_from(rules.OUTCOMES),
    misses=st.integers(0, 5),
)
def test_only_a_patient_under_management_becomes_lost(status, outcome, misses):
    t = rules.transition(status=status, outcome=outcome, misses=misses)
    if t.status == "lost":
        assert status == "active"
    if outcome == "completed":
        assert (t.status or status) == "active"


def test_only_registered_patients_get_follow_ups():
    assert rules.can_record("active") and rules.can_record("lost")
    assert not rules.can_record("deceased") and not rules.can_record("moved_out")


# --------------------------------------------------------------- validation

TODAY = date(2026, 6, 30)
COMPLETE_FORM = {
    "visit_date": date(2026, 6, 1),
    "mode": "home",
    "outcome": "completed",
    "risk_level": 1,
    "insight": "partial",
    "sleep": "good",
    "diet": "good",
    "self_care": "good",
    "housework": "fair",
    "work": "not_applicable",
    "learning": "fair",
    "social": "fair",
    "lock_status": "none",
    "hospitalization": "none",
    "medication_compliance": "regular",
}


def test_completed_form_requires_the_clinical_fields():
    assert rules.validate(COMPLETE_FORM, today=TODAY) == {}
    errors = rules.validate({**COMPLETE_FORM, "insight": "", "risk_level": None}, today=TODAY)
    assert errors == {
        "insight": rules.ERR_REQUIRED_COMPLETED,
        "risk_level": rules.ERR_REQUIRED_COMPLETED,
    }


def test_not_reached_requires_only_date_and_mode():
    form = {"visit_date": date(2026, 6, 1), "mode": "phone", "outcome": "not_reached"}
    assert rules.validate(form, today=TODAY) == {}
    assert "mode" in rules.validate({**form, "mode": ""}, today=TODAY)


def test_lost_requires_a_reason_and_deceased_date_and_cause():
    base = {"visit_date": date(2026, 6, 1), "mode": "home"}
    assert rules.validate({**base, "outcome": "lost"}, today=TODAY) == {
        "lost_reason": rules.ERR_LOST_REASON
    }
    assert rules.validate({**base, "outcome": "deceased"}, today=TODAY) == {
        "death_date": rules.ERR_DEATH_DATE,
        "death_cause": rules.ERR_DEATH_CAUSE,
    }


def test_future_visit_is_refused_back_dated_is_fine():
    assert rules.validate({**COMPLETE_FORM, "visit_date": TODAY + timedelta(days=1)}, today=TODAY)
    assert not rules.validate({**COMPLETE_FORM, "visit_date": date(2025, 1, 2)}, today=TODAY)


def test_no_date_before_the_patients_birth_or_the_floor():
    birth = date(1960, 4, 1)
    early = {**COMPLETE_FORM, "visit_date": date(1960, 3, 31)}
    assert rules.validate(early, today=TODAY, birth_date=birth) == {
        "visit_date": "随访日期不能早于患者的出生日期（1960-04-01）。"
    }
    assert rules.validate(early, today=TODAY) == {}  # birth unknown: only the floor
    assert rules.validate({**COMPLETE_FORM, "visit_date": date(1900, 1, 1)}, today=TODAY) == {
        "visit_date": "随访日期不能早于1950-01-01。"
    }
    dead = {
        "visit_date": date(2026, 6, 1),
        "mode": "home",
        "outcome": "deceased",
        "death_cause": "accident",
    }
    assert rules.validate({**dead, "death_date": date(1800, 1, 1)}, today=TODAY, birth_date=birth)
    assert rules.validate(
        {**dead, "death_date": date(1960, 1, 1)}, today=TODAY, birth_date=birth
    ) == {"death_date": "死亡日期不能早于患者的出生日期（1960-04-01）。"}
    discharged = {**COMPLETE_FORM, "hospitalization": "past"}
    assert rules.validate(
        {**discharged, "last_discharge_date": date(1959, 1, 1)}, today=TODAY, birth_date=birth
    ) == {"last_discharge_date": "末次出院时间不能早于患者的出生日期（1960-04-01）。"}
    # a stray discharge date is checked too, whatever the hospitalisation item says
    assert "last_discharge_date" in rules.validate(
        {**COMPLETE_FORM, "last_discharge_date": date(1900, 1, 1)}, today=TODAY
    )
    # a birth date before the floor: the floor applies
    assert rules.validate(
        {**COMPLETE_FORM, "visit_date": date(1949, 1, 1)}, today=TODAY, birth_date=date(1930, 1, 1)
    ) == {"visit_date": "随访日期不能早于1950-01-01。"}


def test_medication_rows():
    ok = [{"drug": "利培酮", "morning_mg": "1", "evening_mg": "2"}]
    assert rules.medication_rows_error(ok) is None
    inj = [{"drug": "棕榈酸帕利哌酮", "injection_interval_weeks": 4, "injection_mg": 150}]
    assert rules.medication_rows_error(inj) is None
    assert rules.medication_rows_error([{"drug": "利培酮"}]) == rules.ERR_MEDICATION_DOSE
    assert rules.medication_rows_error(ok * 4) == rules.ERR_MEDICATION_ROWS
    for weeks in (0, "0", "1.5", 53, -2):
        row = [{"drug": "棕榈酸帕利哌酮", "injection_interval_weeks": weeks, "injection_mg": 150}]
        expected = rules.ERR_MEDICATION_NUMBER if weeks == -2 else rules.ERR_INJECTION_INTERVAL
        assert rules.medication_rows_error(row) == expected, weeks
    for weeks in (1, "4", "4.0", 52):
        row = [{"drug": "棕榈酸帕利哌酮", "injection_interval_weeks": weeks, "injection_mg": 150}]
        assert rules.medication_rows_error(row) is None, weeks
    assert rules.normalise_medication_rows([{"drug": "", "morning_mg": ""}]) == []
    assert rules.normalise_medication_rows([{"drug": " 奥氮平 ", "evening_mg": "10.0"}]) == [
        {"drug": "奥氮平", "evening_mg": "10"}
    ]


# --------------------------------------------------------------- properties

dates = st.dates(min_value=date(2000, 1, 1), max_value=date(2090, 12, 31))
classifications = st.sampled_from(rules.CLASSIFICATIONS)
previous = st.none() | st.builds(PreviousVisit, visit_date=dates, classification=classifications)
assessments = st.builds(
    Assessment,
    risk_level=st.integers(0, 5),
    insight=st.sampled_from(rules.INSIGHT),
    symptoms=st.lists(st.sampled_from(rules.SYMPTOMS), max_size=4).map(tuple),
    social_function=st.tuples(*[st.sampled_from(rules.WORK_LEVELS)] * 5),
    adverse_reaction=st.booleans(),
    adverse_reaction_serious=st.booleans(),
)


@given(visit=dates, cls=classifications, prev=previous)
def test_next_due_is_after_the_visit_and_within_three_months(visit, cls, prev):
    due = next_due_date(visit, cls, previous_completed=prev)
    assert visit < due <= add_months(visit, 3)
    assert (due - visit).days <= 92


@given(visit=dates, a=assessments, prev=previous, offset=st.integers(-120, 120))
def test_a_doctors_date_may_be_earlier_never_later(visit, a, prev, offset):
    latest = next_due_date(visit, suggest_classification(a), previous_completed=prev)
    chosen = latest + timedelta(days=offset)
    try:
        d = rules.decide(visit_date=visit, assessment=a, previous_completed=prev, next_due=chosen)
    except rules.RuleError as exc:
        assert exc.field == "next_due_date"
        assert chosen > latest or chosen <= visit
    else:
        assert visit < d.next_due_date <= latest
        assert d.suggested_next_due_date == latest


@given(a=assessments)
def test_risk_three_or_more_is_always_unstable_and_stable_needs_calm(a):
    cls = suggest_classification(a)
    if a.risk_level >= 3:
        assert cls == UNSTABLE
    if cls == STABLE:
        assert a.risk_level == 0 and not a.symptoms and a.insight == "complete"
        assert "poor" not in a.social_function and not a.adverse_reaction


def test_misses_count_at_most_one_a_day():
    d = date(2026, 6, 1)
    three_clicks = [(d, "not_reached")] * 3
    assert rules.consecutive_misses(three_clicks) == 1
    three_days = [(d - timedelta(days=k), "not_reached") for k in range(3)]
    assert rules.consecutive_misses(three_days) == rules.MISSES_BEFORE_LOST
    # a day on which the patient was also reached is no missed day
    assert rules.consecutive_misses([(d, "completed"), (d, "not_reached")]) == 0
    assert rules.consecutive_misses([]) == 0


attempts = st.lists(
    st.tuples(st.dates(date(2026, 1, 1), date(2026, 1, 20)), st.sampled_from(rules.OUTCOMES)),
    max_size=12,
)


@given(history=attempts)
def test_misses_count_the_days_missed_since_the_last_contact(history):
    n = rules.consecutive_misses(history)
    missed_days = {d for d, o in history if o == "not_reached"}
    assert 0 <= n <= len(missed_days)
    # repeating attempts on days already counted changes nothing
    assert rules.consecutive_misses(history + [(d, "not_reached") for d in missed_days]) == n
    # order does not matter; a later contact resets the count
    assert rules.consecutive_misses(list(reversed(history))) == n
    later = date(2026, 2, 1)
    assert rules.consecutive_misses([*history, (later, "completed")]) == 0
    assert rules.consecutive_misses([*history, (later, "not_reached")]) == n + 1


@given(a=assessments, blanks=st.sets(st.sampled_from(rules.CLASSIFICATION_NEEDS[1:])))
def test_a_suggestion_shown_on_a_half_filled_form_is_final(a, blanks):
    full = {
        "risk_level": a.risk_level,
        "insight": a.insight,
        "symptoms": a.symptoms,
        "adverse_reaction": a.adverse_reaction,
        "adverse_reaction_serious": a.adverse_reaction_serious,
        **dict(zip(rules.SOCIAL_FUNCTION, a.social_function, strict=True)),
    }
    partial = {k: ("" if k in blanks else v) for k, v in full.items()}
    if not rules.classification_missing(partial):
        # whatever the blanks turn out to be, the suggestion stays the same
        shown = suggest_classification(Assessment.from_data(partial))
        assert shown == suggest_classification(Assessment.from_data(full))
