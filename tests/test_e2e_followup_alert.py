"""End to end in Chromium: a township doctor records a risk-3 follow-up on
the page (the suggestion updates live), and the township's police officer,
on a phone-sized screen, sees the alert and acknowledges it."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from accounts.tests.factories import PASSWORD
from followups.models import Alert, AlertRecipient
from followups.tests.factories import record

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Chinese is the users' language; the browser would otherwise ask for English
LOCALE = "zh-CN"
PHONE = {
    "viewport": {"width": 390, "height": 844},
    "is_mobile": True,
    "has_touch": True,
    "locale": LOCALE,
}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    return {**browser_context_args, "locale": LOCALE}


def login(page, base_url: str, username: str) -> None:
    page.goto(f"{base_url}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("#submit")
    page.wait_for_load_state("networkidle")


def pick(page, name: str, value: str) -> None:
    page.check(f'input[name="{name}"][value="{value}"]')


def test_doctor_logs_risk_three_and_police_acknowledge_on_a_phone(
    world, patients, live_server, page, browser
):
    patient = patients.pA1
    # the previous visit, a month ago (calm): its answers can be carried over
    record(by=world.users.doctor_a, patient=patient, days_ago=30)
    login(page, live_server.url, "doctor_a")
    page.goto(f"{live_server.url}/followups/new/{patient.pk}/")
    expect(page.locator("h1")).to_contain_text(patient.name)
    expect(page.locator("#id_med_0_drug")).to_have_value("利培酮")  # last medication

    pick(page, "risk_level", "3")
    # the live suggestion (htmx) follows the risk level
    expect(page.locator("#suggested-classification")).to_have_text("不稳定")
    # everything else as last time, in one click
    page.click("#copy-last")
    expect(page.locator('input[name="insight"][value="complete"]')).to_be_checked()
    pick(page, "social", "poor")
    page.click("#save")

    expect(page.locator(".messages")).to_contain_text("已保存随访记录")
    expect(page.locator(".messages")).to_contain_text("A1派出所")
    assert Alert.objects.filter(patient=patient, kind="risk").count() == 1

    # the police officer of the township, on a phone
    context = browser.new_context(**PHONE)
    phone = context.new_page()
    login(phone, live_server.url, "police_a")
    phone.goto(f"{live_server.url}/alerts/")
    row = phone.locator("tr.alert-row", has_text=patient.name)
    expect(row).to_have_count(1)
    expect(row).to_contain_text("高风险")
    expect(row).not_to_contain_text("精神分裂")
    row.locator("button.acknowledge").tap()
    expect(phone.locator("tr.alert-row .alert-status")).to_have_text("已签收")
    row = AlertRecipient.objects.get(alert__patient=patient, organisation=world.org.ps_a1)
    assert row.status == "acknowledged" and row.acknowledged_by == world.users.police_a

    # and resolves it with a note
    phone.locator("tr.alert-row a", has_text="办结").tap()
    phone.fill("#id_note", "已上门走访，监护人在家看护")
    phone.locator("#resolve").tap()
    expect(phone).to_have_url(re.compile(r"/alerts/"))
    expect(phone.locator(".messages")).to_contain_text("已办结")
    context.close()
    row.refresh_from_db()
    assert row.status == "resolved" and row.note == "已上门走访，监护人在家看护"
