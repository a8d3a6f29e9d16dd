"""End to end in Chromium: an admin's first sign-in enrols a TOTP device,
then lands on the account list (SECURITY.md G10)."""

from __future__ import annotations

import base64

import pytest
from django_otp.oath import TOTP

from accounts.tests import factories as af

pytestmark = [pytest.mark.browser, pytest.mark.postgres]


def code_for(secret_b32: str) -> str:
    padded = secret_b32 + "=" * (-len(secret_b32) % 8)
    return f"{TOTP(base64.b32decode(padded)).token():06d}"


@pytest.mark.django_db(transaction=True)
def test_admin_signs_in_with_password_then_enrols_totp(page, live_server, world):
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", world.users.admin.username)
    page.fill("#id_password", af.PASSWORD)
    page.click("#submit")
    page.wait_for_url("**/accounts/mfa/setup/**")
    assert page.locator("#totp-qr").get_attribute("src").startswith("data:image/svg+xml")
    secret = page.locator("#totp-secret").inner_text().strip()
    page.fill("#id_code", code_for(secret))
    page.click("#submit")
    page.wait_for_url("**/accounts/staff/")
    table = page.locator("#staff-table").inner_text()
    assert "doctor_a" in table and "A1卫生院" in table
    assert "doctor_c" not in table  # another county's account
