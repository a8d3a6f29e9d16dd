"""In the browser: a downward referral from the specialist hospital accepted
by the township doctor, and a reconciliation upload by the governance office."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from accounts.tests.factories import PASSWORD
from referrals.models import Clue, Referral
from referrals.tests import factories as rf


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    """The users read Chinese: the browser asks for it (the app also speaks English)."""
    return {**browser_context_args, "locale": "zh-CN"}


def sign_in(page, live_server, user):
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.click("#submit")
    page.wait_for_load_state()


def sign_out(page):
    page.get_by_role("button", name="退出").click()
    page.wait_for_url("**/accounts/login/")


@pytest.mark.browser
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_downward_referral_accepted_by_the_township_doctor(page, live_server, world, patients):
    discharged = timezone.localdate() - timedelta(days=1)

    # the specialist hospital discharges 甲一 back to the community
    sign_in(page, live_server, world.users.hospital)
    page.goto(f"{live_server.url}/referrals/")
    page.click("#new-referral")
    page.get_by_role("link", name="下转（医院→社区）").click()
    page.fill("#id_q", "甲一")
    page.click("#search-patient")
    # the search POSTs: the name stays out of the address bar (no personal data in URLs)
    expect(page.locator("#id_q")).to_have_value("甲一")
    expect(page).to_have_url(re.compile(r"/referrals/new/$"))
    page.get_by_role("link", name="选择").click()
    page.select_option("#id_to_organisation", label="A1卫生院（镇1）")
    page.fill("#id_reason", "住院治疗后病情稳定，转回社区管理")
    page.fill("#id_discharge_date", discharged.isoformat())
    page.select_option("#id_discharge_diagnosis", "schizophrenia")
    page.fill("#id_medication_note", "利培酮 2mg 每晚")
    page.fill("#id_attending_doctor", "张医生")
    page.click("#submit-referral")
    page.wait_for_url(re.compile(r"/referrals/[0-9a-f-]{36}/$"))
    expect(page.locator("#referral-status")).to_contain_text("待接收")
    sign_out(page)

    # the township doctor finds it in the inbox and accepts it
    sign_in(page, live_server, world.users.doctor_a)
    page.goto(f"{live_server.url}/referrals/")
    rows = page.locator("#referral-table tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("甲一")
    rows.first.get_by_role("link", name="办理").click()
    expect(page.locator("#discharge-sheet")).to_contain_text("利培酮 2mg 每晚")
    expect(page.locator("#discharge-sheet")).to_contain_text("精神分裂症")
    page.fill("#id_note", "已安排村医三日内入户")
    page.click("#accept")
    expect(page.locator("#referral-status")).to_contain_text("已接收")
    expect(page.locator("#referral-events")).to_contain_text("已安排村医三日内入户")
    referral = Referral.objects.get()
    assert (referral.status, referral.kind) == ("accepted", "downward")
    # the first community follow-up is due within 14 days of discharge
    patients.pA1.refresh_from_db()
    assert patients.pA1.next_followup_due <= discharged + timedelta(days=14)


@pytest.mark.browser
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_reconciliation_upload(page, live_server, world, patients, tmp_path):
    listing = tmp_path / "公安名单.csv"
    listing.write_bytes(
        rf.csv_bytes(
            [
                {"姓名": "甲一", "身份证号": patients.pA1.id_number},
                {"姓名": "乙一", "身份证号": patients.pB1.id_number},
                {
                    "姓名": "陌生人",
                    "身份证号": rf.resident_id(909),
                    "现住址区划代码": "990102001002",
                },
            ],
            ["姓名", "身份证号", "现住址区划代码"],
        )
    )
    sign_in(page, live_server, world.users.governance)
    page.goto(f"{live_server.url}/referrals/exchange/")
    page.click("#new-reconciliation")
    page.select_option("#id_partner", "police")
    page.set_input_files("#id_file", str(listing))
    page.click("#submit")
    page.wait_for_url(re.compile(r"/exchange/reconciliations/[0-9a-f-]{36}/$"))
    expect(page.locator("#count-rows")).to_have_text("3")
    expect(page.locator("#count-matched")).to_have_text("2")
    expect(page.locator("#count-missing")).to_have_text("1")
    expect(page.locator("#items")).to_contain_text("陌生人")
    first = page.url
    # the same file again is the same run: same result, no new clues
    page.goto(f"{live_server.url}/referrals/exchange/reconciliations/new/")
    page.select_option("#id_partner", "police")
    page.set_input_files("#id_file", str(listing))
    page.click("#submit")
    page.wait_for_url(first)
    page.goto(f"{live_server.url}/referrals/exchange/")
    expect(page.locator("#reconciliation-table tbody tr")).to_have_count(1)
    assert Clue.objects.count() == 1
