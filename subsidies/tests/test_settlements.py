"""Hospital episodes and one-stop settlement through the services."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.utils import timezone

from core.errors import DomainError
from patients.models import Patient
from patients.services import patient_update
from subsidies import rules, selectors, services
from subsidies.models import Episode, Settlement, SettlementLine
from subsidies.tests import factories as sf

pytestmark = pytest.mark.django_db

D = Decimal
TODAY = date(2026, 3, 31)

SHEET = {
    "discharge_diagnosis": "schizophrenia",
    "discharge_diagnosis_detail": "F20.0 偏执型精神分裂症",
    "inpatient_effect": "improved",
    "rehab_advice": "参加社区康复",
    "medication_advice": [{"drug": "利培酮", "morning_mg": D("1"), "evening_mg": D("2")}],
    "medication_note": "按时服药",
    "attending_doctor": "张医生",
    "discharge_note": "定期复查",
}


def admit(world, patient, *, on=date(2026, 2, 1), number="ZY001"):
    return services.episode_admit(
        patient_id=patient.pk,
        by=world.users.hospital,
        case_number=number,
        admission_date=on,
        today=TODAY,
    )


def discharge(world, episode, *, on=date(2026, 3, 1), total="10000.00", in_scope="8000.00"):
    return services.episode_discharge(
        episode_id=episode.pk,
        by=world.users.hospital,
        discharge_date=on,
        sheet=SHEET,
        total_cost=D(total),
        in_scope_cost=D(in_scope),
        today=TODAY,
    )


def test_admission_marks_the_patient_in_hospital(world, patients, policies):
    episode = admit(world, patients.pA1)
    assert episode.status == "in_hospital"
    assert Patient.objects.get(pk=patients.pA1.pk).in_hospital
    assert episode.history.first().history_user == world.users.hospital


def test_only_the_specialist_hospital_admits(world, patients, policies):
    with pytest.raises(PermissionDenied):
        services.episode_admit(
            patient_id=patients.pA1.pk,
            by=world.users.doctor_a,
            case_number="X",
            admission_date=TODAY,
        )


def test_a_patient_of_another_county_is_not_found(world, patients, policies):
    with pytest.raises(Http404):
        admit(world, patients.pC1)


def test_admission_errors(world, patients, policies):
    admit(world, patients.pA1, number="ZY001")
    with pytest.raises(DomainError) as exc:
        admit(world, patients.pA1, number="ZY002")
    assert exc.value.message == services.ERR_ALREADY_IN_HOSPITAL
    with pytest.raises(DomainError) as exc:
        admit(world, patients.pB1, number="ZY001")
    assert (exc.value.message, exc.value.field) == (services.ERR_CASE_NUMBER_TAKEN, "case_number")
    with pytest.raises(DomainError) as exc:
        admit(world, patients.pB1, number="ZY003", on=TODAY + timedelta(days=1))
    assert exc.value.field == "admission_date"


def test_discharge_saves_the_sheet_and_a_settlement_of_the_policy_in_force(
    world, patients, policies
):
    episode = admit(world, patients.pA1)
    settlement = discharge(world, episode)
    episode.refresh_from_db()
    assert episode.status == "discharged"
    assert not Patient.objects.get(pk=patients.pA1.pk).in_hospital
    # pA1: insured (resident), not poor, no certificate; 2026 → finance backstop for registered
    lines = {ln.payer: ln.amount for ln in settlement.lines.all()}
    assert lines == {
        "basic_insurance": D("7200.00"),
        "serious_illness_insurance": D("0.00"),
        "finance_backstop": D("800.00"),
    }
    assert settlement.patient_pays == D("2000.00")
    assert sum(lines.values()) + settlement.patient_pays == settlement.total_cost
    assert settlement.policy == policies.settlement
    assert settlement.policy_version == policies.settlement.version
    assert [row["order"] for row in settlement.policy_snapshot] == [1, 2, 4, 5, 6, 7, 8]
    assert settlement.settled_on == TODAY
    sheet = selectors.discharge_sheet_for(episode=episode)
    assert sheet["case_number"] == "ZY001"
    assert sheet["discharge_diagnosis_label"] == "精神分裂症"
    assert sheet["inpatient_effect_label"] == "好转"
    assert sheet["medication_advice"] == [{"drug": "利培酮", "morning_mg": "1", "evening_mg": "2"}]
    assert sheet["attending_doctor"] == "张医生"
    assert (sheet["admission_date"], sheet["discharge_date"]) == (
        date(2026, 2, 1),
        date(2026, 3, 1),
    )


def test_baoshan_worked_example_through_the_service(world, patients):
    sf.settlement_policy(
        world.county_a,
        layers=[
            {"order": 1, "payer": "basic_insurance", "condition": "insured", "ratio": D("90")},
            {
                "order": 2,
                "payer": "civil_affairs",
                "condition": "poverty_assistance",
                "ratio": D("100"),
            },
        ],
    )
    patient_update(
        by=world.users.civil, pk=patients.pA1.pk, data={"poverty": "dibao"}, expected_version=None
    )
    settlement = discharge(world, admit(world, patients.pA1), total="10000.00", in_scope="10000.00")
    assert {ln.payer: ln.amount for ln in settlement.lines.all()} == {
        "basic_insurance": D("9000.00"),
        "civil_affairs": D("1000.00"),
    }
    assert settlement.patient_pays == D("0.00")
    assert settlement.facts["poverty"] == "dibao"


def test_the_policy_of_the_admission_date_is_used(world, patients):
    old = sf.settlement_policy(
        world.county_a,
        valid_to=date(2025, 12, 31),
        layers=[{"order": 1, "payer": "basic_insurance", "condition": "insured", "ratio": D("80")}],
    )
    sf.settlement_policy(
        world.county_a,
        valid_from=date(2026, 1, 1),
        layers=[{"order": 1, "payer": "basic_insurance", "condition": "insured", "ratio": D("90")}],
    )
    episode = admit(world, patients.pA1, on=date(2025, 12, 20))
    settlement = discharge(
        world, episode, on=date(2026, 1, 10), total="1000.00", in_scope="1000.00"
    )
    assert settlement.policy == old
    assert settlement.lines.get().amount == D("800.00")


def test_discharge_before_admission_is_refused_and_nothing_is_saved(world, patients, policies):
    episode = admit(world, patients.pA1, on=date(2026, 2, 1))
    with pytest.raises(DomainError) as exc:
        discharge(world, episode, on=date(2026, 1, 31))
    assert (exc.value.message, exc.value.field) == (
        rules.ERR_DISCHARGE_BEFORE_ADMISSION,
        "discharge_date",
    )
    episode.refresh_from_db()
    assert episode.status == "in_hospital" and episode.discharge_date is None
    assert not Settlement.objects.exists()


def test_in_scope_above_the_total_is_refused_and_the_discharge_rolled_back(
    world, patients, policies
):
    episode = admit(world, patients.pA1)
    with pytest.raises(DomainError) as exc:
        discharge(world, episode, total="1000.00", in_scope="1000.01")
    assert (exc.value.message, exc.value.field) == (
        rules.ERR_IN_SCOPE_EXCEEDS_TOTAL,
        "in_scope_cost",
    )
    episode.refresh_from_db()
    assert episode.status == "in_hospital"
    assert Patient.objects.get(pk=patients.pA1.pk).in_hospital
    assert not Settlement.objects.exists()


def test_no_policy_no_settlement(world, patients):
    episode = admit(world, patients.pA1)
    with pytest.raises(DomainError) as exc:
        discharge(world, episode)
    assert exc.value.message == services.ERR_NO_SETTLEMENT_POLICY
    assert not Settlement.objects.exists()


def test_the_discharge_sheet_needs_diagnosis_effect_and_doctor(world, patients, policies):
    episode = admit(world, patients.pA1)
    with pytest.raises(DomainError) as exc:
        services.episode_discharge(
            episode_id=episode.pk,
            by=world.users.hospital,
            discharge_date=date(2026, 3, 1),
            sheet={**SHEET, "attending_doctor": ""},
            total_cost=D("1"),
            in_scope_cost=D("1"),
            today=TODAY,
        )
    assert exc.value.field == "attending_doctor"


def test_a_settlement_is_immutable(world, patients, policies):
    settlement = discharge(world, admit(world, patients.pA1))
    settlement.patient_pays = D("0")
    with pytest.raises(ValidationError):
        settlement.save()
    with pytest.raises(ValidationError):
        settlement.delete()
    line = settlement.lines.first()
    with pytest.raises(ValidationError):
        line.save()


def test_correction_is_a_reversal_then_a_new_settlement(world, patients, policies):
    u = world.users
    episode = admit(world, patients.pA1)
    original = discharge(world, episode)
    with pytest.raises(DomainError) as exc:
        services.settlement_create(
            episode_id=episode.pk, by=u.hospital, total_cost=D("1"), in_scope_cost=D("1")
        )
    assert exc.value.message == services.ERR_ALREADY_SETTLED
    with pytest.raises(DomainError) as exc:
        services.settlement_reverse(settlement_id=original.pk, by=u.hospital, reason="")
    assert exc.value.message == services.ERR_REASON_REQUIRED
    reversal = services.settlement_reverse(
        settlement_id=original.pk, by=u.hospital, reason="费用录入错误"
    )
    assert reversal.kind == "reversal" and reversal.reverses == original
    assert reversal.total_cost == -original.total_cost
    assert {ln.payer: ln.amount for ln in reversal.lines.all()} == {
        ln.payer: -ln.amount for ln in original.lines.all()
    }
    with pytest.raises(DomainError) as exc:
        services.settlement_reverse(settlement_id=original.pk, by=u.hospital, reason="again")
    assert exc.value.message == services.ERR_ALREADY_REVERSED
    with pytest.raises(DomainError) as exc:
        services.settlement_reverse(settlement_id=reversal.pk, by=u.hospital, reason="again")
    assert exc.value.message == services.ERR_REVERSE_REVERSAL
    again = services.settlement_create(
        episode_id=episode.pk, by=u.hospital, total_cost=D("9000.00"), in_scope_cost=D("8000.00")
    )
    assert selectors.effective_settlement(episode) == again
    # the original row is unchanged
    original.refresh_from_db()
    assert original.total_cost == D("10000.00")


def test_yearly_cap_across_two_episodes(world, patients):
    u = world.users
    sf.settlement_policy(
        world.county_a,
        layers=[
            {"order": 1, "payer": "basic_insurance", "condition": "insured", "ratio": D("90")},
            {
                "order": 2,
                "payer": "disabled_federation",
                "condition": "certificate_held",
                "ratio": D("100"),
                "cap_per_year": D("3000.00"),
            },
        ],
    )
    patient_update(
        by=u.dpf,
        pk=patients.pA1.pk,
        data={"certificate": "held", "certificate_grade": 2, "certificate_number": "X1"},
        expected_version=None,
    )
    first = discharge(
        world,
        admit(world, patients.pA1, on=date(2026, 1, 5), number="A"),
        on=date(2026, 1, 25),
        total="20000.00",
        in_scope="20000.00",
    )
    second = discharge(
        world,
        admit(world, patients.pA1, on=date(2026, 2, 10), number="B"),
        on=date(2026, 3, 1),
        total="25000.00",
        in_scope="25000.00",
    )
    dpf = SettlementLine.objects.filter(payer="disabled_federation")
    assert dpf.get(settlement=first).amount == D("2000.00")
    line = dpf.get(settlement=second)
    assert (line.amount, line.limited_by) == (D("1000.00"), "cap_per_year")
    assert second.patient_pays == D("1500.00")


def test_quote_saves_nothing(world, patients, policies):
    quote, policy = services.settlement_quote(
        patient_id=patients.pA1.pk,
        by=world.users.hospital,
        admission_date=date(2026, 1, 1),
        discharge_date=date(2026, 1, 20),
        total_cost=D("100.00"),
        in_scope_cost=D("100.00"),
    )
    assert quote.patient_pays == D("0.00")
    assert policy == policies.settlement
    assert not Settlement.objects.exists() and not Episode.objects.exists()


def test_api_record_creates_the_episode_when_needed(world, patients, policies):
    s = services.settlement_record(
        patient_id=patients.pA1.pk,
        by=world.users.hospital,
        admission_date=date(2026, 1, 1),
        discharge_date=date(2026, 1, 20),
        total_cost=D("100.00"),
        in_scope_cost=D("50.00"),
        today=TODAY,
    )
    assert s.episode.status == "discharged"
    assert s.episode.case_number.startswith("ZY20260101")
    assert not Patient.objects.get(pk=patients.pA1.pk).in_hospital
    with pytest.raises(DomainError) as exc:
        services.settlement_record(
            patient_id=patients.pA1.pk,
            by=world.users.hospital,
            admission_date=date(2026, 1, 1),
            discharge_date=date(2026, 1, 21),
            total_cost=D("100.00"),
            in_scope_cost=D("50.00"),
            today=TODAY,
        )
    assert exc.value.field == "discharge_date"


def test_statements_per_payer_and_month_include_reversals(world, patients, policies):
    u = world.users
    patient_update(by=u.civil, pk=patients.pA1.pk, data={"poverty": "dibao"}, expected_version=None)
    s = discharge(world, admit(world, patients.pA1), total="10000.00", in_scope="10000.00")
    month = s.settled_on
    civil_lines = selectors.statement_lines(user=u.civil, payer="civil_affairs", month=month)
    assert [ln.amount for ln in civil_lines] == [D("1000.00")]
    services.settlement_reverse(settlement_id=s.pk, by=u.hospital, reason="错", today=TODAY)
    lines = selectors.statement_lines(user=u.civil, payer="civil_affairs", month=month)
    assert selectors.statement_total(lines) == D("0.00")
    with pytest.raises(PermissionDenied):
        selectors.statement_lines(user=u.civil, payer="basic_insurance", month=month)
    # the hospital sees every payer; finance only the backstop
    assert selectors.statement_payers_for(u.hospital) == tuple(
        p for p in selectors.STATEMENT_PAYERS["hospital_doctor"]
    )
    assert selectors.statement_payers_for(u.finance) == ("finance_backstop",)
    assert selectors.statement_payers_for(u.police_a) == ()


def test_facts_come_from_the_record_as_it_was_on_the_admission_day(world, patients, policies):
    u = world.users
    patient_update(by=u.civil, pk=patients.pA1.pk, data={"poverty": "dibao"}, expected_version=None)
    patient = Patient.objects.get(pk=patients.pA1.pk)
    yesterday = timezone.localdate() - timedelta(days=1)
    h = patient.history.earliest()
    type(h).objects.filter(pk=h.pk).update(history_date=timezone.now() - timedelta(days=3))
    facts, snapshot = selectors.patient_facts_on(patient, yesterday)
    assert snapshot["poverty"] == "none"  # dibao only from today
    facts, snapshot = selectors.patient_facts_on(patient, timezone.localdate())
    assert snapshot["poverty"] == "dibao"


# --- the yearly deductible and caps count only EARLIER episodes ---------------

EARLIER_ONLY_LAYERS = [
    {"order": 1, "payer": "basic_insurance", "condition": "insured", "ratio": D("50")},
    {
        "order": 2,
        "payer": "serious_illness_insurance",
        "condition": "insured",
        "ratio": D("60"),
        "deductible_per_year": D("20000.00"),
        "cap_per_year": D("10000.00"),
    },
]


def _two_episodes(world, patients):
    """A (January, 40,000 in scope) uses up the deductible; B (March, 30,000)
    pays 60 % of its 15,000 remainder: 9,000 of the 10,000 yearly cap."""
    sf.settlement_policy(world.county_a, layers=EARLIER_ONLY_LAYERS)
    a = discharge(
        world,
        admit(world, patients.pA1, on=date(2026, 1, 5), number="A"),
        on=date(2026, 1, 20),
        total="40000.00",
        in_scope="40000.00",
    )
    b = discharge(
        world,
        admit(world, patients.pA1, on=date(2026, 3, 2), number="B"),
        on=date(2026, 3, 20),
        total="30000.00",
        in_scope="30000.00",
    )
    return a, b


def _serious(settlement) -> Decimal:
    return settlement.lines.get(payer="serious_illness_insurance").amount


def test_resettling_an_earlier_episode_ignores_the_later_one(world, patients):
    u = world.users
    a, b = _two_episodes(world, patients)
    assert (_serious(a), _serious(b)) == (D("0.00"), D("9000.00"))
    services.settlement_reverse(settlement_id=a.pk, by=u.hospital, reason="更正", today=TODAY)
    again = services.settlement_create(
        episode_id=a.episode_id,
        by=u.hospital,
        total_cost=D("40000.00"),
        in_scope_cost=D("40000.00"),
        today=TODAY,
    )
    # B (a later episode) neither eats A's deductible nor its yearly cap
    assert _serious(again) == D("0.00")
    assert again.patient_pays == a.patient_pays
    in_force = SettlementLine.objects.filter(
        payer="serious_illness_insurance",
        settlement__kind="settlement",
        settlement__reversal__isnull=True,
    )
    assert sum(ln.amount for ln in in_force) == D("9000.00")


def test_quoting_a_settled_episode_again_gives_its_own_split(world, patients):
    _a, b = _two_episodes(world, patients)
    quote, _policy = services.settlement_quote(
        patient_id=patients.pA1.pk,
        by=world.users.hospital,
        admission_date=b.admission_date,
        discharge_date=b.discharge_date,
        total_cost=D("30000.00"),
        in_scope_cost=D("30000.00"),
    )
    # B's own settlement does not count toward B's deductible and cap
    assert {ln.payer: ln.amount for ln in quote.lines} == {
        ln.payer: ln.amount for ln in b.lines.all()
    }
    assert quote.patient_pays == b.patient_pays


def test_episodes_admitted_the_same_day_count_in_recording_order(world, patients):
    sf.settlement_policy(world.county_a, layers=EARLIER_ONLY_LAYERS)
    first = discharge(
        world,
        admit(world, patients.pA1, on=date(2026, 1, 5), number="A"),
        on=date(2026, 1, 5),
        total="40000.00",
        in_scope="40000.00",
    )
    second = admit(world, patients.pA1, on=date(2026, 1, 5), number="B")
    usage = selectors.year_usage(
        patient=patients.pA1, admission_date=date(2026, 1, 5), episode_id=second.pk
    )
    assert usage["serious_illness_insurance"].base == D("20000.00")
    usage = selectors.year_usage(
        patient=patients.pA1, admission_date=date(2026, 1, 5), episode_id=first.episode_id
    )
    assert usage == {}


def test_the_alert_threshold_setting_does_not_move_the_finance_backstop(world, patients, settings):
    """The backstop's "risk ≥ 3" is policy data on the layer, not HIGH_RISK_MIN_LEVEL."""
    from subsidies.models import PayerLayer

    policy = sf.settlement_policy(world.county_a)  # the demo rule: 2019 backstop for risk ≥ 3
    assert PayerLayer.objects.get(policy=policy, order=7).min_risk_level == 3
    Patient.objects.filter(pk=patients.pA1.pk).update(risk_level=3)
    bill = {
        "patient_id": patients.pA1.pk,
        "by": world.users.hospital,
        "admission_date": date(2019, 6, 1),
        "discharge_date": date(2019, 6, 20),
        "total_cost": D("1000.00"),
        "in_scope_cost": D("1000.00"),
    }
    quote, _ = services.settlement_quote(**bill)
    assert {ln.payer: ln.amount for ln in quote.lines}["finance_backstop"] == D("100.00")
    settings.HIGH_RISK_MIN_LEVEL = 4  # alerts from risk 4 on: the money stays the same
    quote, _ = services.settlement_quote(**bill)
    assert {ln.payer: ln.amount for ln in quote.lines}["finance_backstop"] == D("100.00")
    s = services.settlement_record(**bill, today=TODAY)
    assert s.policy_snapshot[5]["min_risk_level"] == 3
