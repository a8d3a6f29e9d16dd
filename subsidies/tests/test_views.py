"""The pages: what each department sees and does, errors shown, query counts."""

from datetime import date, timedelta
from decimal import Decimal
from io import BytesIO

import pytest
from django.urls import reverse
from django.utils import timezone
from openpyxl import load_workbook

from accounts.tests import factories as af
from patients.models import Patient
from patients.services import patient_update
from patients.tests import factories as pf
from subsidies import rules, services
from subsidies.models import Award, AwardStatus, Episode, RewardBatch, Settlement
from subsidies.tests import factories as sf

pytestmark = pytest.mark.django_db

D = Decimal


def export(client, user, name, *args, query=None):
    """An export page's file: the user holds the export permission and gives a reason."""
    af.grant_export(user)
    sf.login(client, user)
    return af.export(client, reverse(f"subsidies:{name}", args=args), query)


def page(client, user, name, *args, data=None, **kwargs):
    sf.login(client, user)
    url = reverse(f"subsidies:{name}", args=args)
    if data is not None:
        return client.post(url, data, **kwargs)
    return client.get(url, **kwargs)


# --- guardian reward pages ---------------------------------------------------


def test_home_shows_each_department_its_queue(client, world, eligible, gov_a1):
    u = world.users
    award = sf.award_through(eligible, applicant=u.doctor_a)
    body = page(client, u.governance, "home").content.decode()
    assert award.number in body and "待乡镇审核" in body
    body = page(client, u.civil, "home").content.decode()
    assert award.number not in body  # civil affairs acts at county approval only
    services.award_township_review(award_id=award.pk, by=gov_a1, approve=True)
    assert award.number in page(client, u.civil, "home").content.decode()
    body = page(client, u.finance, "home").content.decode()
    assert "发放批次" in body and award.number not in body and "甲一" not in body


def test_candidates_show_why_a_guardian_is_not_eligible(client, world, patients, eligible):
    u = world.users
    other = pf.patient(by=u.doctor_a, village="990102001002", name="甲二")
    body = page(client, u.doctor_a, "award-candidates").content.decode()
    assert "甲二" in body and str(rules.REASON_NO_LETTER) in body
    assert reverse("subsidies:award-apply", args=[eligible.pk]) in body
    assert reverse("subsidies:award-apply", args=[other.pk]) not in body
    assert "乙一" not in body  # another township


def test_apply_page_submits_the_application(client, world, eligible):
    u = world.users
    response = page(client, u.doctor_a, "award-apply", eligible.pk)
    assert "符合以奖代补条件" in response.content.decode()
    response = page(
        client,
        u.doctor_a,
        "award-apply",
        eligible.pk,
        data={"source": "health_centre", "applicant_name": "", "note": "家属申请"},
    )
    award = Award.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("subsidies:award-detail", args=[award.pk])


def test_apply_page_lists_reasons_and_offers_no_form(client, world, patients, policies):
    response = page(client, world.users.doctor_a, "award-apply", patients.pA1.pk)
    body = response.content.decode()
    assert str(rules.REASON_NOT_POLICE_REGISTERED) in body
    assert 'id="apply"' not in body


def test_township_review_and_county_approval_on_the_detail_page(client, world, eligible, gov_a1):
    u = world.users
    award = sf.award_through(eligible, applicant=u.doctor_a)
    body = page(client, u.civil, "award-detail", award.pk).content.decode()
    assert 'id="township-review"' not in body  # not civil affairs' step
    body = page(client, gov_a1, "award-detail", award.pk).content.decode()
    assert 'id="township-review"' in body and 'id="county-approval"' not in body
    # refusing without a reason keeps the status and shows the message
    response = page(
        client,
        gov_a1,
        "award-review",
        award.pk,
        data={"review-decision": "reject", "review-note": ""},
    )
    assert str(services.ERR_NOTE_REQUIRED) in response.content.decode()
    award.refresh_from_db()
    assert award.status == AwardStatus.APPLIED
    response = page(
        client,
        gov_a1,
        "award-review",
        award.pk,
        data={"review-decision": "approve", "review-note": "属实"},
    )
    assert response.status_code == 302
    body = page(client, u.governance, "award-detail", award.pk).content.decode()
    assert 'id="county-approval"' in body
    response = page(
        client, u.governance, "award-approve", award.pk, data={"county-decision": "approve"}
    )
    assert response.status_code == 302
    award.refresh_from_db()
    assert award.status == AwardStatus.NOTICE
    body = page(client, u.governance, "award-detail", award.pk).content.decode()
    assert "县级审批通过，进入公示" in body and "gov_a1" in body


def test_the_township_reviewer_is_told_to_leave_county_approval_to_another(client, world, eligible):
    u = world.users
    award = sf.award_through(eligible, applicant=u.doctor_a, reviewer=u.governance)
    body = page(client, u.governance, "award-detail", award.pk).content.decode()
    assert "县级审批须由其他人员办理" in body
    response = page(
        client, u.governance, "award-approve", award.pk, data={"county-decision": "approve"}
    )
    assert str(services.ERR_SAME_PERSON) in response.content.decode()


def test_a_township_governance_office_cannot_approve_at_county_level(
    client, world, eligible, gov_a1
):
    u = world.users
    award = sf.award_through(eligible, applicant=u.doctor_a, reviewer=u.governance)
    response = page(client, gov_a1, "award-approve", award.pk, data={"county-decision": "approve"})
    assert response.status_code == 403


def test_suspend_and_end_forms(client, world, eligible, gov_a1):
    u = world.users
    award = sf.award_through(
        eligible,
        applicant=u.doctor_a,
        reviewer=gov_a1,
        approver=u.civil,
        activate_on=date(2025, 1, 28),
    )
    incident = sf.incident(eligible, on=date(2025, 3, 2), failed=True)
    body = page(client, u.governance, "award-detail", award.pk).content.decode()
    assert "暂停发放" in body
    response = page(
        client,
        u.governance,
        "award-suspend",
        award.pk,
        data={"suspend-incident": str(incident.pk), "suspend-note": ""},
    )
    assert response.status_code == 302
    award.refresh_from_db()
    assert award.status == AwardStatus.SUSPENDED and award.stop_from == date(2025, 4, 1)


def test_batch_pages_draw_review_pay_and_export(client, world, eligible, gov_a1):
    u = world.users
    sf.award_through(
        eligible,
        applicant=u.doctor_a,
        reviewer=gov_a1,
        approver=u.civil,
        activate_on=date(2025, 1, 28),
    )
    response = page(
        client, u.governance, "batch-draw", data={"region": "990102", "period": "2025Q1"}
    )
    batch = RewardBatch.objects.get()
    assert response["Location"] == reverse("subsidies:batch-detail", args=[batch.pk])
    response = page(
        client,
        u.governance,
        "batch-draw",
        data={"region": "990102", "period": "2025Q1"},
        follow=True,
    )
    assert "该期发放批次已经生成过" in response.content.decode()
    assert RewardBatch.objects.count() == 1
    response = page(
        client, u.governance, "batch-draw", data={"region": "990102", "period": "2099Q1"}
    )
    assert str(services.ERR_PERIOD_NOT_ENDED) in response.content.decode()
    page(client, u.governance, "batch-review", batch.pk, data={})
    body = page(client, u.finance, "batch-detail", batch.pk).content.decode()
    assert 'id="pay-batch"' in body and "600.00" in body
    response = page(client, u.finance, "batch-pay", batch.pk, data={"reference": ""})
    assert response.status_code == 200
    page(client, u.finance, "batch-pay", batch.pk, data={"reference": "CZ-1"})
    batch.refresh_from_db()
    assert batch.status == "paid" and batch.paid_by == u.finance
    response = export(client, u.finance, "batch-export", batch.pk)
    assert response["Content-Type"].startswith("application/vnd.openxmlformats")
    ws = load_workbook(BytesIO(b"".join(response.streaming_content))).active
    rows = list(ws.values)
    assert rows[2][:4] == ("序号", "奖补编号", "乡镇（街道）", "村（居）")
    assert rows[2][6:8] == ("发放月份", "其中补发月份")
    assert rows[3][4] == "监护人" and rows[3][9] == 600
    assert rows[-1][0] == "合计"


def test_an_empty_batch_still_exports(client, world, policies):
    batch, _ = services.batch_draw(
        region=world.county_a, period_code="2024Q4", today=date(2025, 1, 5)
    )
    response = export(client, world.users.civil, "batch-export", batch.pk)
    ws = load_workbook(BytesIO(b"".join(response.streaming_content))).active
    rows = list(ws.values)
    assert rows[2][0] == "序号" and rows[-1][0] == "合计" and len(rows) == 4


# --- hospital pages ------------------------------------------------------------


def _admit(world, patient, on=None, number="ZY1"):
    return services.episode_admit(
        patient_id=patient.pk,
        by=world.users.hospital,
        case_number=number,
        admission_date=on or timezone.localdate() - timedelta(days=20),
    )


DISCHARGE = {
    "discharge_date": "",
    "discharge_diagnosis": "schizophrenia",
    "discharge_diagnosis_detail": "F20.0",
    "inpatient_effect": "improved",
    "attending_doctor": "张医生",
    "rehab_advice": "社区康复",
    "medication_note": "",
    "discharge_note": "",
    "med_0_drug": "利培酮",
    "med_0_morning_mg": "1",
    "med_0_evening_mg": "2",
    "total_cost": "10000.00",
    "in_scope_cost": "8000.00",
}


def test_admit_through_the_pages(client, world, patients, policies):
    u = world.users
    sf.login(client, u.hospital)
    response = client.post(reverse("subsidies:episode-new"), {"q": "甲一"})
    body = response.content.decode()
    assert reverse("subsidies:episode-admit", args=[patients.pA1.pk]) in body
    response = page(
        client,
        u.hospital,
        "episode-admit",
        patients.pA1.pk,
        data={"case_number": "ZY9", "admission_date": timezone.localdate().isoformat()},
    )
    episode = Episode.objects.get()
    assert response["Location"] == reverse("subsidies:episode-detail", args=[episode.pk])
    assert Patient.objects.get(pk=patients.pA1.pk).in_hospital


def test_quote_then_discharge_and_settle(client, world, patients, policies):
    u = world.users
    episode = _admit(world, patients.pA1)
    data = {**DISCHARGE, "discharge_date": timezone.localdate().isoformat()}
    response = page(
        client,
        u.hospital,
        "episode-discharge",
        episode.pk,
        data={**data, "action": "quote"},
        HTTP_HX_REQUEST="true",
    )
    body = response.content.decode()
    assert 'id="quote-lines"' in body and "<html" not in body
    assert "基本医疗保险" in body and "7200.00" in body and "2000.00" in body
    assert not Settlement.objects.exists()
    response = page(
        client, u.hospital, "episode-discharge", episode.pk, data={**data, "action": "save"}
    )
    settlement = Settlement.objects.get()
    assert response["Location"] == reverse("subsidies:settlement-detail", args=[settlement.pk])
    body = page(client, u.hospital, "settlement-detail", settlement.pk).content.decode()
    assert "2000.00" in body and "甲一" in body
    body = page(client, u.hospital, "episode-detail", episode.pk).content.decode()
    assert "F20.0" in body and "利培酮" in body and "打印出院信息单" in body


def test_bad_bills_are_shown_and_nothing_is_saved(client, world, patients, policies):
    u = world.users
    episode = _admit(world, patients.pA1)
    today = timezone.localdate()
    response = page(
        client,
        u.hospital,
        "episode-discharge",
        episode.pk,
        data={**DISCHARGE, "discharge_date": today.isoformat(), "in_scope_cost": "10000.01"},
    )
    assert str(rules.ERR_IN_SCOPE_EXCEEDS_TOTAL) in response.content.decode()
    response = page(
        client,
        u.hospital,
        "episode-discharge",
        episode.pk,
        data={
            **DISCHARGE,
            "discharge_date": (episode.admission_date - timedelta(days=1)).isoformat(),
        },
    )
    assert str(rules.ERR_DISCHARGE_BEFORE_ADMISSION) in response.content.decode()
    episode.refresh_from_db()
    assert episode.status == "in_hospital" and not Settlement.objects.exists()
    # the typed sheet is kept
    assert "F20.0" in response.content.decode()


def test_reversal_and_settling_again_through_the_pages(client, world, patients, policies):
    u = world.users
    episode = _admit(world, patients.pA1)
    s = services.episode_discharge(
        episode_id=episode.pk,
        by=u.hospital,
        discharge_date=timezone.localdate(),
        sheet={
            "discharge_diagnosis": "schizophrenia",
            "inpatient_effect": "improved",
            "attending_doctor": "张",
        },
        total_cost=D("100.00"),
        in_scope_cost=D("100.00"),
    )
    response = page(client, u.hospital, "settlement-reverse", s.pk, data={"reason": ""})
    assert 'id="id_reason_error"' in response.content.decode()
    assert Settlement.objects.count() == 1
    response = page(client, u.hospital, "settlement-reverse", s.pk, data={"reason": "金额错"})
    assert response["Location"] == reverse("subsidies:episode-detail", args=[episode.pk])
    response = page(
        client,
        u.hospital,
        "episode-settle",
        episode.pk,
        data={"total_cost": "90.00", "in_scope_cost": "90.00"},
    )
    assert Settlement.objects.count() == 3
    body = page(client, u.hospital, "episode-detail", episode.pk).content.decode()
    assert "已冲销" in body and "有效" in body


def test_payers_see_their_settlements_finance_without_identities(client, world, patients, policies):
    u = world.users
    patient_update(by=u.civil, pk=patients.pA1.pk, data={"poverty": "dibao"}, expected_version=None)
    s = services.settlement_record(
        patient_id=patients.pA1.pk,
        by=u.hospital,
        admission_date=timezone.localdate() - timedelta(days=10),
        discharge_date=timezone.localdate(),
        total_cost=D("1000.00"),
        in_scope_cost=D("1000.00"),
    )
    body = page(client, u.civil, "settlement-list").content.decode()
    assert s.number in body and "甲一" in body and "100.00" in body
    body = page(client, u.finance, "settlement-list").content.decode()
    assert s.number not in body  # the backstop pays nothing: poverty is covered by civil affairs
    body = page(client, u.finance, "settlement-detail", s.pk).content.decode()
    assert "甲一" not in body and s.number in body
    body = page(client, u.dpf, "settlement-list").content.decode()
    assert s.number not in body


def test_statement_and_its_export(client, world, patients, policies):
    u = world.users
    patient_update(by=u.civil, pk=patients.pA1.pk, data={"poverty": "dibao"}, expected_version=None)
    s = services.settlement_record(
        patient_id=patients.pA1.pk,
        by=u.hospital,
        admission_date=timezone.localdate() - timedelta(days=10),
        discharge_date=timezone.localdate(),
        total_cost=D("1000.00"),
        in_scope_cost=D("1000.00"),
    )
    month = timezone.localdate().strftime("%Y-%m")
    sf.login(client, u.civil)
    body = client.get(
        reverse("subsidies:statement"), {"payer": "civil_affairs", "month": month}
    ).content.decode()
    assert s.number in body and 'id="statement-total">100.00<' in body
    refused = client.get(reverse("subsidies:statement"), {"payer": "basic_insurance"})
    assert refused.status_code == 403
    response = export(
        client, u.civil, "statement-export", query={"payer": "civil_affairs", "month": month}
    )
    ws = load_workbook(BytesIO(b"".join(response.streaming_content))).active
    rows = list(ws.values)
    assert rows[1][6] == "患者姓名" and rows[2][6] == "甲一"
    assert rows[2][7] == patients.pA1.id_number_masked
    assert rows[-1][-1] == 100
    response = export(
        client, u.finance, "statement-export", query={"payer": "finance_backstop", "month": month}
    )
    ws = load_workbook(BytesIO(b"".join(response.streaming_content))).active
    assert "患者姓名" not in list(ws.values)[1]


# --- refusals are explained, never a silent re-render ----------------------------


def _message(text) -> str:
    """As the page prints it (quotes escaped by the template engine)."""
    from django.utils.html import escape

    return escape(str(text))


def test_a_yearly_review_before_the_window_is_explained(client, world, eligible, gov_a1):
    u = world.users
    today = timezone.localdate()
    award = sf.award_through(
        eligible,
        applicant=u.doctor_a,
        reviewer=gov_a1,
        approver=u.civil,
        approved=today,
        activate_on=today + timedelta(days=8),
    )
    opens = award.valid_until - timedelta(days=60)
    body = page(client, u.governance, "award-detail", award.pk).content.decode()
    assert 'id="yearly-review-not-open"' in body and opens.isoformat() in body
    response = page(
        client,
        u.governance,
        "award-yearly-review",
        award.pk,
        data={"yearly-decision": "approve", "yearly-note": ""},
    )
    assert response.status_code == 200
    expected = services.ERR_REVIEW_NOT_DUE % {
        "date": award.valid_until.isoformat(),
        "days": 60,
    }
    assert _message(expected) in response.content.decode()
    award.refresh_from_db()
    assert award.events.filter(step="renewed").count() == 0


def test_an_action_no_longer_open_is_explained(client, world, eligible, gov_a1):
    """A stale page posts a township review after it was done: the refusal is shown."""
    u = world.users
    award = sf.award_through(eligible, applicant=u.doctor_a, reviewer=gov_a1)
    response = page(
        client,
        u.governance,
        "award-review",
        award.pk,
        data={"review-decision": "approve", "review-note": ""},
    )
    assert response.status_code == 200
    expected = services.ERR_WRONG_STATE % {"status": AwardStatus.REVIEWED.label}
    assert _message(expected) in response.content.decode()


def test_reversing_a_reversed_settlement_is_explained(client, world, patients, policies):
    u = world.users
    s = services.settlement_record(
        patient_id=patients.pA1.pk,
        by=u.hospital,
        admission_date=timezone.localdate() - timedelta(days=10),
        discharge_date=timezone.localdate(),
        total_cost=D("100.00"),
        in_scope_cost=D("100.00"),
    )
    reversal = services.settlement_reverse(settlement_id=s.pk, by=u.hospital, reason="错")
    response = page(client, u.hospital, "settlement-reverse", s.pk, data={"reason": "再冲"})
    assert response.status_code == 200
    assert _message(services.ERR_ALREADY_REVERSED) in response.content.decode()
    response = page(client, u.hospital, "settlement-reverse", reversal.pk, data={"reason": "再冲"})
    assert _message(services.ERR_REVERSE_REVERSAL) in response.content.decode()
    assert Settlement.objects.count() == 2


def test_another_departments_statement_is_refused_with_a_reason(client, world, policies):
    from subsidies import selectors

    u = world.users
    sf.login(client, u.civil)
    response = client.get(reverse("subsidies:statement"), {"payer": "finance_backstop"})
    assert response.status_code == 403
    expected = selectors.ERR_STATEMENT_PAYER % {"payer": "财政兜底", "allowed": "民政医疗救助"}
    body = response.content.decode()
    assert 'id="statement-refusal"' in body and _message(expected) in body
    response = client.get(reverse("subsidies:statement-export"), {"payer": "finance_backstop"})
    assert response.status_code == 403
    response = client.get(reverse("subsidies:statement"), {"payer": "no-such-payer"})
    assert response.status_code == 403


def test_candidates_page_states_the_rule_of_the_policy_in_force(client, world, patients):
    sf.reward_policy(
        world.county_a,
        min_risk_level=4,
        min_assistant_guardians=3,
        qualifying_incident_kinds=["disaster"],
    )
    body = page(client, world.users.governance, "award-candidates").content.decode()
    assert "有肇祸记录或最近危险性评估4级及以上" in body
    assert "至少3名协助监护人" in body
    assert "3级及以上" not in body
