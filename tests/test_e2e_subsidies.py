"""In the browser: a county approval of a guardian reward (governance), and a
discharge with its one-stop settlement (specialist hospital)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from accounts.tests.factories import PASSWORD
from patients.tests import factories as pf
from subsidies import services
from subsidies.models import Award, AwardStatus, Settlement
from subsidies.tests import factories as sf


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    """A Chinese browser: the pages are written in Chinese (the source language)."""
    return {**browser_context_args, "locale": "zh-CN"}


def login(page, live_server, user):
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.click("#submit")
    page.wait_for_load_state()


@pytest.mark.browser
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_governance_approves_a_guardian_reward_at_county_level(page, live_server, world, patients):
    u = world.users
    sf.reward_policy(world.county_a)
    patient = sf.make_eligible(patients.pA1, doctor=u.doctor_a, police=u.police_a)
    gov_a1 = sf.township_governance(world, "a1")
    award = sf.award_through(patient, applicant=u.doctor_a, reviewer=gov_a1)

    login(page, live_server, u.governance)
    page.get_by_role("link", name="以奖代补").first.click()
    page.wait_for_url("**/subsidies/")
    expect(page.locator("main")).to_contain_text("待县级审批")
    page.get_by_role("link", name=award.number).click()
    page.wait_for_url(f"**/subsidies/awards/{award.pk}/")
    expect(page.locator("#events")).to_contain_text("乡镇审核通过")
    page.fill("#id_county-note", "同意，进入公示")
    page.click("#approve")

    page.wait_for_url(f"**/subsidies/awards/{award.pk}/")
    expect(page.locator(".messages")).to_contain_text("县级审批已办理")
    expect(page.locator("h1")).to_contain_text("公示中")
    expect(page.locator("#events")).to_contain_text("县级审批通过，进入公示")
    award = Award.objects.get(pk=award.pk)
    assert award.status == AwardStatus.NOTICE
    assert award.approved_by == u.governance
    assert award.notice_until == timezone.localdate() + timedelta(days=7)


@pytest.mark.browser
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_hospital_discharges_with_a_one_stop_settlement(page, live_server, world, patients):
    u = world.users
    sf.settlement_policy(world.county_a)
    today = timezone.localdate()
    episode = services.episode_admit(
        patient_id=patients.pA1.pk,
        by=u.hospital,
        case_number="ZY2026001",
        admission_date=today - timedelta(days=15),
    )

    login(page, live_server, u.hospital)
    page.get_by_role("link", name="一站式结算").first.click()
    page.wait_for_url("**/subsidies/settlements/")
    expect(page.locator("#list-rows")).to_contain_text("ZY2026001")
    page.get_by_role("link", name="出院结算").click()
    page.wait_for_url(f"**/subsidies/episodes/{episode.pk}/discharge/")

    page.fill("#id_discharge_date", today.isoformat())
    page.select_option("#id_discharge_diagnosis", "schizophrenia")
    page.fill("#id_discharge_diagnosis_detail", "F20.0 偏执型精神分裂症")
    page.select_option("#id_inpatient_effect", "improved")
    page.fill("#id_attending_doctor", "张医生")
    page.fill("#id_med_0_drug", "利培酮")
    page.fill("#id_med_0_morning_mg", "1")
    page.fill("#id_med_0_evening_mg", "2")
    page.fill("#id_rehab_advice", "参加社区康复，每月门诊复查")
    page.fill("#id_total_cost", "12000.00")
    page.fill("#id_in_scope_cost", "10000.00")

    # the quote appears in place (htmx), nothing saved yet
    page.click("#quote-button")
    expect(page.locator("#quote-lines")).to_contain_text("基本医疗保险")
    expect(page.locator("#quote-lines")).to_contain_text("9000.00")
    expect(page.locator("#quote-patient-pays")).to_have_text("2000.00")
    assert not Settlement.objects.exists()

    page.click("#save")
    page.wait_for_url("**/subsidies/settlements/*/")
    expect(page.locator(".messages")).to_contain_text("已办理出院并完成一站式结算")
    expect(page.locator("#settlement-lines")).to_contain_text("财政兜底")
    expect(page.locator("#patient-pays")).to_have_text("2000.00")
    expect(page.locator("#total-cost")).to_have_text("12000.00")
    settlement = Settlement.objects.get()
    assert settlement.episode.status == "discharged"
    assert settlement.patient_pays + sum(ln.amount for ln in settlement.lines.all()) == (
        settlement.total_cost
    )


@pytest.mark.browser
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_candidate_search_filters_in_place_and_keeps_the_name_out_of_the_url(
    page, live_server, world, patients
):
    u = world.users
    sf.reward_policy(world.county_a)
    sf.make_eligible(patients.pA1, doctor=u.doctor_a, police=u.police_a)
    pf.patient(by=u.doctor_a, village="990102001002", name="甲二")
    login(page, live_server, u.doctor_a)
    page.goto(f"{live_server.url}/subsidies/awards/candidates/")
    rows = page.locator("#candidate-rows table tbody tr")
    expect(rows).to_have_count(2)
    page.evaluate("window.sameDocument = true")
    page.fill("#id_q", "甲二")
    page.get_by_role("button", name="查询").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("甲二")
    # htmx swapped the rows: no page load, the term is still in the box
    assert page.evaluate("window.sameDocument === true")
    expect(page.locator("#id_q")).to_have_value("甲二")
    # and the name is not in the address bar (no personal data in URLs)
    expect(page).to_have_url(re.compile(r"/subsidies/awards/candidates/$"))
