"""The pure rules: worked examples of DOMAIN.md and seeds 000/003, and properties."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from subsidies import rules
from subsidies.rules import Layer, PatientFacts, PayerUsage, split_bill

D = Decimal


def lines_of(quote):
    return {ln.payer: ln.amount for ln in quote.lines}


def test_sum_of_lines_and_patient_share_is_the_total():
    q = split_bill(
        total=D("1000.00"),
        in_scope=D("800.00"),
        admission=date(2024, 3, 1),
        layers=[Layer(1, "basic_insurance", "insured", D("90"))],
        facts=PatientFacts(insured=True),
    )
    assert q.paid_by_payers + q.patient_pays == q.total


# --- Baoshan (seed 000): insurance 90 %, the 10 % of a poor patient by civil affairs


BAOSHAN = [
    Layer(1, "basic_insurance", "insured", D("90")),
    Layer(2, "civil_affairs", "poverty_assistance", D("100")),
]


def test_baoshan_insurance_pays_90_percent_and_civil_affairs_the_rest_for_a_poor_patient():
    q = split_bill(
        total=D("12000.00"),
        in_scope=D("10000.00"),
        admission=date(2017, 5, 1),
        layers=BAOSHAN,
        facts=PatientFacts(insured=True, poverty="dibao"),
    )
    assert lines_of(q) == {"basic_insurance": D("9000.00"), "civil_affairs": D("1000.00")}
    assert q.patient_pays == D("2000.00")  # only the out-of-scope part


def test_baoshan_non_poor_patient_pays_the_10_percent():
    q = split_bill(
        total=D("10000.00"),
        in_scope=D("10000.00"),
        admission=date(2017, 5, 1),
        layers=BAOSHAN,
        facts=PatientFacts(insured=True, poverty="none"),
    )
    assert lines_of(q) == {"basic_insurance": D("9000.00")}
    assert q.patient_pays == D("1000.00")


# --- Huancui (seed 003): insurance, then the district finance backstop by date

HUANCUI = [
    Layer(1, "basic_insurance", "insured", D("90")),
    Layer(
        2,
        "finance_backstop",
        "poor_or_high_risk",
        D("100"),
        valid_from=date(2019, 4, 19),
        valid_to=date(2019, 12, 31),
    ),
    Layer(3, "finance_backstop", "registered", D("100"), valid_from=date(2020, 1, 1)),
]


def test_huancui_before_2019_04_19_a_non_poor_risk_1_patient_pays_the_remainder():
    q = split_bill(
        total=D("8000.00"),
        in_scope=D("6000.00"),
        admission=date(2019, 4, 18),
        layers=HUANCUI,
        facts=PatientFacts(insured=True, poverty="none", risk_level=1),
    )
    assert lines_of(q) == {"basic_insurance": D("5400.00")}
    assert q.patient_pays == D("2600.00")  # 600 in scope + 2000 out of scope


def test_huancui_from_2019_04_19_a_risk_3_patient_pays_nothing_in_scope():
    q = split_bill(
        total=D("8000.00"),
        in_scope=D("6000.00"),
        admission=date(2019, 4, 19),
        layers=HUANCUI,
        facts=PatientFacts(insured=True, poverty="none", risk_level=3),
    )
    assert lines_of(q) == {"basic_insurance": D("5400.00"), "finance_backstop": D("600.00")}
    assert q.patient_pays == q.out_of_scope == D("2000.00")


def test_huancui_in_2019_a_non_poor_risk_1_patient_still_pays_the_remainder():
    q = split_bill(
        total=D("6000.00"),
        in_scope=D("6000.00"),
        admission=date(2019, 10, 1),
        layers=HUANCUI,
        facts=PatientFacts(insured=True, risk_level=1),
    )
    assert q.patient_pays == D("600.00")


def test_huancui_from_2020_every_registered_patient_pays_nothing_in_scope():
    q = split_bill(
        total=D("6500.00"),
        in_scope=D("6000.00"),
        admission=date(2020, 1, 1),
        layers=HUANCUI,
        facts=PatientFacts(insured=True, poverty="none", risk_level=0, registered=True),
    )
    assert lines_of(q)["finance_backstop"] == D("600.00")
    assert q.patient_pays == D("500.00")


def test_an_uninsured_patient_gets_the_backstop_for_all_of_the_in_scope_part():
    q = split_bill(
        total=D("3000.00"),
        in_scope=D("3000.00"),
        admission=date(2021, 2, 1),
        layers=HUANCUI,
        facts=PatientFacts(insured=False),
    )
    assert lines_of(q) == {"finance_backstop": D("3000.00")}
    assert q.patient_pays == D("0.00")


# --- caps, deductibles, rounding

FEDERATION_CAPPED = [
    Layer(1, "basic_insurance", "insured", D("90")),
    Layer(2, "disabled_federation", "certificate_held", D("100"), cap_per_year=D("3000.00")),
]


def test_the_yearly_cap_counts_the_earlier_episode_of_the_same_year():
    facts = PatientFacts(insured=True, certificate_held=True)
    first = split_bill(
        total=D("20000.00"),
        in_scope=D("20000.00"),
        admission=date(2024, 2, 1),
        layers=FEDERATION_CAPPED,
        facts=facts,
    )
    assert lines_of(first)["disabled_federation"] == D("2000.00")
    usage = rules.usage_from_lines((ln.payer, ln.base, ln.amount) for ln in first.lines)
    second = split_bill(
        total=D("25000.00"),
        in_scope=D("25000.00"),
        admission=date(2024, 9, 1),
        layers=FEDERATION_CAPPED,
        facts=facts,
        usage=usage,
    )
    line = next(ln for ln in second.lines if ln.payer == "disabled_federation")
    assert line.amount == D("1000.00")  # 3000 a year, 2000 used
    assert line.limited_by == "cap_per_year"
    assert second.patient_pays == D("1500.00")


def test_a_reversed_episode_does_not_count_against_the_yearly_cap():
    usage = rules.usage_from_lines(
        [
            ("disabled_federation", D("2000.00"), D("2000.00")),
            ("disabled_federation", D("-2000.00"), D("-2000.00")),
        ]
    )
    q = split_bill(
        total=D("25000.00"),
        in_scope=D("25000.00"),
        admission=date(2024, 9, 1),
        layers=FEDERATION_CAPPED,
        facts=PatientFacts(insured=True, certificate_held=True),
        usage=usage,
    )
    assert lines_of(q)["disabled_federation"] == D("2500.00")


def test_cap_per_episode():
    q = split_bill(
        total=D("10000.00"),
        in_scope=D("10000.00"),
        admission=date(2024, 1, 5),
        layers=[Layer(1, "civil_affairs", "always", D("100"), cap_per_episode=D("1500.00"))],
        facts=PatientFacts(insured=False),
    )
    assert lines_of(q) == {"civil_affairs": D("1500.00")}
    assert q.lines[0].limited_by == "cap_per_episode"
    assert q.patient_pays == D("8500.00")


def test_serious_illness_pays_60_percent_above_the_yearly_deductible_counting_earlier_stays():
    layers = [
        Layer(1, "basic_insurance", "insured", D("90")),
        Layer(
            2,
            "serious_illness_insurance",
            "insured",
            D("60"),
            deductible_per_year=D("20000.00"),
        ),
    ]
    facts = PatientFacts(insured=True)
    # remainder after insurance: 15,000 — all below the deductible
    first = split_bill(
        total=D("150000.00"),
        in_scope=D("150000.00"),
        admission=date(2024, 1, 10),
        layers=layers,
        facts=facts,
    )
    assert lines_of(first)["serious_illness_insurance"] == D("0.00")
    usage = rules.usage_from_lines((ln.payer, ln.base, ln.amount) for ln in first.lines)
    # remainder 10,000; 5,000 of it lies above the deductible left (5,000): 60 % = 3,000
    second = split_bill(
        total=D("100000.00"),
        in_scope=D("100000.00"),
        admission=date(2024, 6, 10),
        layers=layers,
        facts=facts,
        usage=usage,
    )
    assert lines_of(second)["serious_illness_insurance"] == D("3000.00")
    assert second.patient_pays == D("7000.00")


def test_rounding_to_the_fen_half_up_at_each_of_three_layers():
    layers = [
        Layer(1, "basic_insurance", "always", D("33.33")),
        Layer(2, "civil_affairs", "always", D("50")),
        Layer(3, "union_mutual_aid", "always", D("12.5")),
    ]
    q = split_bill(
        total=D("100.01"),
        in_scope=D("100.01"),
        admission=date(2024, 1, 1),
        layers=layers,
        facts=PatientFacts(insured=True),
    )
    # 100.01 × 33.33 % = 33.333333 → 33.33 ; remainder 66.68
    # 66.68 × 50 % = 33.34 ; remainder 33.34
    # 33.34 × 12.5 % = 4.1675 → 4.17 ; remainder 29.17
    assert [ln.amount for ln in q.lines] == [D("33.33"), D("33.34"), D("4.17")]
    assert q.patient_pays == D("29.17")
    assert sum(ln.amount for ln in q.lines) + q.patient_pays == D("100.01")


def test_half_a_fen_rounds_up():
    q = split_bill(
        total=D("0.05"),
        in_scope=D("0.05"),
        admission=date(2024, 1, 1),
        layers=[Layer(1, "basic_insurance", "always", D("50"))],
        facts=PatientFacts(insured=True),
    )
    assert q.lines[0].amount == D("0.03")
    assert q.patient_pays == D("0.02")


def test_the_out_of_scope_part_is_always_the_patients():
    q = split_bill(
        total=D("5000.00"),
        in_scope=D("0.00"),
        admission=date(2024, 1, 1),
        layers=[Layer(1, "finance_backstop", "always", D("100"))],
        facts=PatientFacts(insured=True),
    )
    assert lines_of(q) == {"finance_backstop": D("0.00")}
    assert q.patient_pays == D("5000.00")


def test_layers_apply_in_their_order_not_their_listing():
    q = split_bill(
        total=D("1000.00"),
        in_scope=D("1000.00"),
        admission=date(2024, 1, 1),
        layers=[
            Layer(2, "civil_affairs", "always", D("100")),
            Layer(1, "basic_insurance", "always", D("90")),
        ],
        facts=PatientFacts(insured=True),
    )
    assert [ln.payer for ln in q.lines] == ["basic_insurance", "civil_affairs"]
    assert lines_of(q) == {"basic_insurance": D("900.00"), "civil_affairs": D("100.00")}


# --- bad input


@pytest.mark.parametrize(
    ("total", "in_scope", "admission", "discharge", "message", "field"),
    [
        (
            "100.00",
            "100.01",
            date(2024, 1, 1),
            None,
            rules.ERR_IN_SCOPE_EXCEEDS_TOTAL,
            "in_scope_cost",
        ),
        ("-1.00", "0.00", date(2024, 1, 1), None, rules.ERR_TOTAL_NEGATIVE, "total_cost"),
        ("10.00", "-1.00", date(2024, 1, 1), None, rules.ERR_IN_SCOPE_NEGATIVE, "in_scope_cost"),
        ("10.001", "1.00", date(2024, 1, 1), None, rules.ERR_AMOUNT_PRECISION, "total_cost"),
        (
            "10.00",
            "1.00",
            date(2024, 1, 2),
            date(2024, 1, 1),
            rules.ERR_DISCHARGE_BEFORE_ADMISSION,
            "discharge_date",
        ),
    ],
)
def test_bad_bills_are_refused_with_a_message(
    total, in_scope, admission, discharge, message, field
):
    with pytest.raises(rules.RuleError) as exc:
        split_bill(
            total=D(total),
            in_scope=D(in_scope),
            admission=admission,
            discharge=discharge,
            layers=BAOSHAN,
            facts=PatientFacts(insured=True),
        )
    assert exc.value.message == message
    assert exc.value.field == field


def test_a_duplicate_order_and_a_ratio_outside_0_100_are_refused():
    with pytest.raises(rules.RuleError) as exc:
        rules.check_layers([Layer(1, "basic_insurance", "always", D("90"))] * 2)
    assert exc.value.message == rules.ERR_DUPLICATE_ORDER
    for ratio in ("-0.01", "100.01"):
        with pytest.raises(rules.RuleError) as exc:
            rules.check_layers([Layer(1, "basic_insurance", "always", D(ratio))])
        assert exc.value.message == rules.ERR_RATIO_RANGE


# --- the property: lines plus the patient's share equal the total, for any bill and policy

money = st.decimals(min_value=0, max_value=10**7, places=2, allow_nan=False, allow_infinity=False)
ratio = st.decimals(min_value=0, max_value=100, places=2, allow_nan=False, allow_infinity=False)
optional_money = st.none() | money
days = st.dates(min_value=date(2017, 1, 1), max_value=date(2030, 12, 31))


@st.composite
def layer_lists(draw):
    n = draw(st.integers(min_value=0, max_value=8))
    orders = draw(st.lists(st.integers(1, 50), min_size=n, max_size=n, unique=True))
    out = []
    for order in orders:
        lo = draw(st.none() | days)
        hi = draw(st.none() | days)
        if lo and hi and hi < lo:
            lo, hi = hi, lo
        out.append(
            Layer(
                order=order,
                payer=draw(st.sampled_from(rules.PAYERS)),
                condition=draw(st.sampled_from(rules.CONDITIONS)),
                ratio=draw(ratio),
                deductible_per_year=draw(optional_money),
                cap_per_episode=draw(optional_money),
                cap_per_year=draw(optional_money),
                valid_from=lo,
                valid_to=hi,
            )
        )
    return out


facts_st = st.builds(
    PatientFacts,
    insured=st.booleans(),
    poverty=st.sampled_from(["none", "dibao", "tekun", "low_income"]),
    certificate_held=st.booleans(),
    union_member=st.booleans(),
    risk_level=st.none() | st.integers(0, 5),
    registered=st.booleans(),
)
usage_st = st.dictionaries(
    st.sampled_from(rules.PAYERS), st.builds(PayerUsage, base=money, paid=money), max_size=4
)


@settings(max_examples=400, deadline=None)
@given(
    total=money,
    share=st.decimals(min_value=0, max_value=1, places=4),
    layers=layer_lists(),
    facts=facts_st,
    usage=usage_st,
    admission=days,
)
def test_property_lines_plus_patient_share_equal_the_total(
    total, share, layers, facts, usage, admission
):
    in_scope = rules.to_fen(total * share)
    q = split_bill(
        total=total, in_scope=in_scope, admission=admission, layers=layers, facts=facts, usage=usage
    )
    assert sum((ln.amount for ln in q.lines), D("0")) + q.patient_pays == total
    assert q.patient_pays >= total - in_scope  # the out-of-scope part is the patient's
    for ln in q.lines:
        assert ln.amount >= 0
        assert ln.amount <= ln.base
        assert ln.amount == ln.amount.quantize(D("0.01"))
    by_order = {ly.order: ly for ly in layers}
    for ln in q.lines:
        layer = by_order[ln.order]
        if layer.cap_per_episode is not None:
            assert ln.amount <= layer.cap_per_episode
        if layer.cap_per_year is not None:
            used = usage.get(ln.payer, PayerUsage()).paid
            assert ln.amount <= max(D("0"), layer.cap_per_year - used)


# --- guardian reward: eligibility reasons

ELIGIBLE = rules.RewardFacts(
    status="active",
    status_label="在管",
    police_registered=True,
    risk_level=1,
    incident_kinds=frozenset({"trouble"}),
    has_guardian=True,
    responsibility_letter=True,
    assistant_guardians=2,
)


def reasons(facts, rule=rules.RewardRule(), today=date(2025, 6, 1)):
    return [r.code for r in rules.reward_ineligibility(facts, rule, today=today)]


def test_the_default_rule_accepts_an_incident_or_a_risk_of_3():
    from dataclasses import replace

    assert reasons(ELIGIBLE) == []
    no_incident_high_risk = replace(ELIGIBLE, incident_kinds=frozenset(), risk_level=3)
    assert reasons(no_incident_high_risk) == []
    minor_only = replace(ELIGIBLE, incident_kinds=frozenset({"minor_trouble"}), risk_level=2)
    assert reasons(minor_only) == ["no_incident_or_risk"]


def test_every_reason_is_given_with_its_message():
    from dataclasses import replace

    facts = replace(
        ELIGIBLE,
        status="deceased",
        status_label="死亡",
        police_registered=False,
        incident_kinds=frozenset(),
        risk_level=None,
        responsibility_letter=False,
        assistant_guardians=1,
        last_failed_duty_incident=date(2025, 1, 15),
    )
    got = rules.reward_ineligibility(facts, rules.RewardRule(), today=date(2025, 6, 1))
    assert [r.code for r in got] == [
        "not_registered",
        "not_police_registered",
        "no_incident_or_risk",
        "no_letter",
        "few_assistants",
        "barred",
    ]
    messages = [r.message for r in got]
    assert str(rules.REASON_NOT_REGISTERED % {"status": "死亡"}) in messages
    assert str(rules.REASON_FEW_ASSISTANTS % {"min": 2, "count": 1}) in messages
    assert str(rules.REASON_BARRED % {"incident": "2025-01-15", "until": "2026-01-15"}) in messages


def test_the_12_month_bar_ends_on_the_anniversary_of_the_incident():
    from dataclasses import replace

    facts = replace(ELIGIBLE, last_failed_duty_incident=date(2024, 2, 29))
    assert reasons(facts, today=date(2025, 2, 27)) == ["barred"]
    assert reasons(facts, today=date(2025, 2, 28)) == []


def test_a_missing_guardian_is_named():
    from dataclasses import replace

    assert reasons(replace(ELIGIBLE, has_guardian=False, responsibility_letter=False)) == [
        "no_guardian"
    ]


# --- guardian reward: pro-rating by whole months

Q1_2025 = rules.parse_period("2025Q1")


def test_paid_from_the_first_whole_month():
    months = rules.paying_months(Q1_2025, active_from=date(2025, 1, 28))
    assert months == [date(2025, 2, 1), date(2025, 3, 1)]
    assert rules.paying_months(Q1_2025, active_from=date(2025, 1, 1)) == Q1_2025.months


def test_suspension_stops_from_the_month_after_the_incident():
    stop = rules.next_month_start(date(2025, 2, 10))
    months = rules.paying_months(Q1_2025, active_from=date(2024, 6, 1), stop_from=stop)
    assert months == [date(2025, 1, 1), date(2025, 2, 1)]


def test_months_after_the_yearly_review_date_are_not_paid():
    months = rules.paying_months(
        Q1_2025, active_from=date(2024, 3, 15), valid_until=date(2025, 3, 14)
    )
    assert months == [date(2025, 1, 1), date(2025, 2, 1)]


def test_amounts_are_yearly_amount_times_months_over_12_to_the_fen():
    assert rules.reward_amount([D("3600.00")] * 3) == D("900.00")
    assert rules.reward_amount([D("1000.00")]) == D("83.33")
    assert rules.reward_amount([D("1000.00")] * 2) == D("166.67")
    assert rules.reward_amount([D("1000.00"), D("3600.00"), D("3600.00")]) == D("683.33")
    assert rules.reward_amount([]) == D("0.00")


@pytest.mark.parametrize(
    ("code", "start", "end"),
    [
        ("2025Q1", date(2025, 1, 1), date(2025, 3, 31)),
        ("2024Q4", date(2024, 10, 1), date(2024, 12, 31)),
        ("2025H2", date(2025, 7, 1), date(2025, 12, 31)),
        ("2024-02", date(2024, 2, 1), date(2024, 2, 29)),
        ("2025", date(2025, 1, 1), date(2025, 12, 31)),
    ],
)
def test_periods(code, start, end):
    p = rules.parse_period(code)
    assert (p.code, p.start, p.end) == (code, start, end)


def test_last_completed_period():
    assert rules.last_completed_period("quarterly", date(2025, 4, 1)).code == "2025Q1"
    assert rules.last_completed_period("quarterly", date(2025, 3, 31)).code == "2024Q4"
    assert rules.last_completed_period("monthly", date(2025, 1, 15)).code == "2024-12"
    assert rules.last_completed_period("yearly", date(2025, 1, 1)).code == "2024"


@pytest.mark.parametrize("bad", ["2025Q5", "25Q1", "2025-13", "", "abc"])
def test_bad_period_codes(bad):
    with pytest.raises(ValueError):
        rules.parse_period(bad)


def test_model_choices_match_the_rule_codes():
    from subsidies.models import Condition, Frequency, Payer

    assert set(Payer.values) == set(rules.PAYERS)
    assert set(Condition.values) == set(rules.CONDITIONS)
    assert set(Frequency.values) == set(rules.FREQUENCIES)


# --- the high-risk threshold is the layer's own policy data ---------------------------


def test_the_high_risk_threshold_comes_from_the_layer():
    risk3 = PatientFacts(insured=True, risk_level=3)
    at3 = Layer(2, "finance_backstop", "high_risk", D("100"))
    at4 = Layer(2, "finance_backstop", "high_risk", D("100"), min_risk_level=4)
    basic = Layer(1, "basic_insurance", "insured", D("90"))
    bill = {"total": D("1000.00"), "in_scope": D("1000.00"), "admission": date(2024, 1, 1)}
    assert lines_of(split_bill(**bill, layers=[basic, at3], facts=risk3)) == {
        "basic_insurance": D("900.00"),
        "finance_backstop": D("100.00"),
    }
    assert lines_of(split_bill(**bill, layers=[basic, at4], facts=risk3)) == {
        "basic_insurance": D("900.00")
    }
    assert rules.condition_holds("poor_or_high_risk", risk3, min_risk_level=3)
    assert not rules.condition_holds("poor_or_high_risk", risk3, min_risk_level=4)


@given(st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 12, 31)), st.integers(0, 36))
@settings(max_examples=300, deadline=None)
def test_the_bar_cutoff_agrees_with_the_bar_of_each_incident(today, months):
    """An incident after the cutoff bars on ``today``, one on or before it does not."""
    cutoff = rules.bar_cutoff(today, months)
    assert rules.add_months(cutoff, months) <= today
    assert rules.add_months(cutoff + timedelta(days=1), months) > today


def test_lines_are_merged_per_payer():
    """Two layers of the finance backstop in force together: one line, both layers kept."""
    layers = [
        Layer(1, "basic_insurance", "insured", D("50")),
        Layer(2, "finance_backstop", "poor_or_high_risk", D("50")),
        Layer(3, "finance_backstop", "registered", D("100")),
    ]
    q = split_bill(
        total=D("1000.00"),
        in_scope=D("1000.00"),
        admission=date(2024, 1, 1),
        layers=layers,
        facts=PatientFacts(insured=True, risk_level=3),
    )
    merged = rules.lines_by_payer(q.lines)
    assert [(m.payer, m.amount, m.order) for m in merged] == [
        ("basic_insurance", D("500.00"), 1),
        ("finance_backstop", D("500.00"), 2),
    ]
    assert [ln.amount for ln in merged[1].layers] == [D("250.00"), D("250.00")]
    assert sum(m.amount for m in merged) == q.paid_by_payers
