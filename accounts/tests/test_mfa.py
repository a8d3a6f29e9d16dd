"""TOTP second factor (SECURITY.md G10): always for the 三员, for everyone
when MFA_REQUIRED; enrolment by QR code; the token endpoint's hook."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import mfa
from accounts.forms import ERR_MFA_CODE
from accounts.roles import Role
from accounts.services import ERR_SELF, staff_reset_mfa
from accounts.tests import factories as af
from audit.models import AuditEvent
from core.errors import DomainError

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

LOGIN = reverse("accounts:login")
SETUP = reverse("accounts:mfa-setup")
VERIFY = reverse("accounts:mfa-verify")
STAFF = reverse("accounts:staff-list")


def password_login(client, username):
    response = client.post(LOGIN, {"username": username, "password": af.PASSWORD})
    assert response.status_code == 302, response.content
    return client


def test_admin_enrols_a_totp_device_at_first_login(world):
    admin = world.users.admin
    client = password_login(Client(), "admin_a")
    response = client.get(STAFF)
    assert response.status_code == 302 and response.url.startswith(SETUP)
    page = client.get(response.url)
    html = page.content.decode()
    assert 'src="data:image/svg+xml;base64,' in html
    assert page.context["otpauth"].startswith("otpauth://totp/")
    assert page.context["secret"] in html
    device = TOTPDevice.objects.get(user=admin, confirmed=False)
    now = timezone.now()
    with time_machine.travel(now, tick=False):
        wrong = client.post(SETUP, {"code": "000000", "next": STAFF})
        assert str(ERR_MFA_CODE) in wrong.content.decode()
    # a failure throttles the device for a moment (django-otp: 1 s, doubling)
    with time_machine.travel(now + timedelta(seconds=5), tick=False):
        ok = client.post(SETUP, {"code": af.otp_code(device), "next": STAFF})
    assert ok.status_code == 302 and ok.url == STAFF
    assert client.get(STAFF).status_code == 200
    device.refresh_from_db()
    assert device.confirmed
    assert AuditEvent.objects.filter(action="auth.mfa_enrolled", actor=admin).exists()
    assert AuditEvent.objects.filter(action="auth.mfa_failed", actor=admin).exists()


def test_enrolled_admin_must_give_the_code_after_the_password(world):
    admin = world.users.admin
    device = af.otp_device(admin)
    client = password_login(Client(), "admin_a")
    response = client.get(STAFF)
    assert response.status_code == 302 and response.url.startswith(VERIFY)
    # nothing but the verify page, logout and the password page is reachable
    assert client.get(reverse("accounts:lockout-list")).status_code == 302
    assert client.get("/api/schema/").status_code in (401, 403)
    now = timezone.now()
    with time_machine.travel(now, tick=False):
        bad = client.post(VERIFY, {"code": "123456"})
        assert str(ERR_MFA_CODE) in bad.content.decode()
        # throttled right after a failure, even with the right code
        throttled = client.post(VERIFY, {"code": af.otp_code(device)})
        assert str(ERR_MFA_CODE) in throttled.content.decode()
    with time_machine.travel(now + timedelta(seconds=10), tick=False):
        ok = client.post(VERIFY, {"code": af.otp_code(device), "next": STAFF})
    assert ok.status_code == 302 and ok.url == STAFF
    assert client.get(STAFF).status_code == 200
    assert AuditEvent.objects.filter(action="auth.mfa_verified", actor=admin).exists()


def test_a_code_is_not_accepted_twice(world):
    admin = world.users.admin
    device = af.otp_device(admin)
    with time_machine.travel(timezone.now(), tick=False):
        code = af.otp_code(device)
        first = password_login(Client(), "admin_a")
        assert first.post(VERIFY, {"code": code}).status_code == 302
        second = password_login(Client(), "admin_a")
        assert second.post(VERIFY, {"code": code}).status_code == 200


def test_doctors_need_no_second_factor_unless_mfa_required(world, settings):
    client = password_login(Client(), "doctor_a")
    assert client.get(reverse("accounts:breakglass-request")).status_code == 200
    settings.MFA_REQUIRED = True
    client = password_login(Client(), "doctor_a")
    response = client.get(reverse("accounts:breakglass-request"))
    assert response.status_code == 302 and response.url.startswith(SETUP)


def test_a_voluntarily_enrolled_user_is_asked_for_the_code(world):
    af.otp_device(world.users.doctor_a)
    client = password_login(Client(), "doctor_a")
    response = client.get(reverse("accounts:breakglass-request"))
    assert response.status_code == 302 and response.url.startswith(VERIFY)


def test_mfa_required_for_and_verify_for_token(world, settings):
    u = world.users
    sec = af.staff("sec_a", Role.SECURITY_ADMIN, world.org.bureau_a)
    audit = af.staff("audit_a", Role.AUDIT_ADMIN, world.org.bureau_a)
    assert mfa.mfa_required_for(u.admin) and mfa.mfa_required_for(sec)
    assert mfa.mfa_required_for(audit)
    assert not mfa.mfa_required_for(u.doctor_a) and not mfa.mfa_required_for(u.police_a)
    # no second factor needed: the password alone gets a token
    assert mfa.verify_for_token(u.doctor_a, None) is True
    # required but not enrolled: no token (enrol on the web first)
    assert mfa.verify_for_token(u.admin, "123456") is False
    device = af.otp_device(u.admin)
    with time_machine.travel(timezone.now(), tick=False):
        assert mfa.verify_for_token(u.admin, "000000") is False
        assert mfa.verify_for_token(u.admin, None) is False
    with time_machine.travel(timezone.now() + timedelta(minutes=2), tick=False):
        assert mfa.verify_for_token(u.admin, af.otp_code(device)) is True
    settings.MFA_REQUIRED = True
    assert mfa.mfa_required_for(u.doctor_a)
    assert mfa.verify_for_token(u.doctor_a, None) is False


def test_security_admin_resets_a_lost_device(client, world):
    target = world.users.admin
    af.otp_device(target)
    target_client = af.login(Client(), target)
    assert target_client.get(STAFF).status_code == 200
    sec = af.staff("sec_a", Role.SECURITY_ADMIN, world.org.bureau_a)
    af.login(client, sec)
    url = reverse("accounts:staff-mfa-reset", args=[target.pk])
    assert "确认重置" in client.get(url).content.decode()
    assert client.post(url).status_code == 302
    assert not TOTPDevice.objects.filter(user=target).exists()
    assert target_client.get(STAFF).status_code == 302
    assert AuditEvent.objects.get(action="security.mfa_reset").actor == sec
    # a security admin cannot reset their own device
    af.otp_device(sec)
    with pytest.raises(DomainError) as exc:
        staff_reset_mfa(user=sec, by=sec)
    assert exc.value.message == ERR_SELF
