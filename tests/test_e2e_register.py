"""A township doctor registers a patient in the browser and finds them in the list."""

from __future__ import annotations

import re
from datetime import date

import pytest
from playwright.sync_api import expect

from accounts.tests.factories import PASSWORD
from patients import rules


@pytest.mark.browser
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_doctor_registers_a_patient(page, live_server, world, patients):
    number = rules.make_resident_id("990102", date(1988, 6, 30), 123, male=False)

    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", world.users.doctor_a.username)
    page.fill("#id_password", PASSWORD)
    page.click("#submit")
    page.wait_for_url("**/patients/")

    page.get_by_role("link", name="登记患者").click()
    page.wait_for_url("**/patients/new/")
    page.fill("#id_name", "浏览器登记")
    page.fill("#id_id_number", number)
    page.select_option("#id_region", "990102001002")
    page.fill("#id_address", "城关镇东街5号")
    page.select_option("#id_diagnosis", "schizophrenia")
    page.fill("#id_guardian_name", "李母")
    page.fill("#id_guardian_relation", "母亲")
    page.fill("#id_guardian_phone", "13900001111")
    page.check("#id_guardian_responsibility_letter")
    page.fill("#id_ag-0-name", "网格员张")
    page.fill("#id_ag-0-relation", "网格员")
    page.click("#save")

    page.wait_for_url("**/patients/*-*-*-*-*/")
    expect(page.locator("h1")).to_have_text("浏览器登记")
    expect(page.locator(".messages")).to_contain_text("已登记患者")
    # birth date and gender were derived from the ID number
    expect(page.locator(".patient-head")).to_contain_text("女")

    # tabs load in place (htmx) and keep their own URL
    page.get_by_role("link", name="监护人").click()
    expect(page.locator("#tab-guardians")).to_contain_text("李母")
    expect(page).to_have_url(re.compile(r"tab=guardians"))

    page.get_by_role("link", name="返回列表").click()
    page.wait_for_url("**/patients/")
    rows = page.locator("#patient-rows table tbody tr")
    expect(rows).to_have_count(2)  # with 甲一 of the same township
    expect(page.locator("#patient-rows")).to_contain_text("浏览器登记")
    # the search box filters the rows in place (htmx, no submit button pressed)
    page.fill("#id_q", "浏览器")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("浏览器登记")
    # the search term stays out of the address bar (no personal data in URLs)
    expect(page).to_have_url(re.compile(r"/patients/$"))
