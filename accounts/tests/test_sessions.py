"""Sessions (SECURITY.md G11), with a frozen clock: idle 30 min (15 for the
三员), absolute 12 h, and password / role change or deactivation end them."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts import services
from accounts.middleware import MSG_SESSION_EXPIRED
from accounts.roles import Role
from accounts.tests import factories as af
from audit.models import AuditEvent

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

PAGE = reverse("accounts:password-change")  # any page every signed-in user may open
LOGIN = reverse("accounts:login")


def signed_in(response) -> bool:
    return response.status_code == 200


def ended(response) -> bool:
    return response.status_code == 302 and response.url.startswith(LOGIN)


def test_idle_session_ends_after_30_minutes(world):
    start = timezone.now()
    user = world.users.doctor_a
    with time_machine.travel(start, tick=False):
        client = af.login(Client(), user)
    with time_machine.travel(start + timedelta(minutes=29), tick=False):
        assert signed_in(client.get(PAGE))
    with time_machine.travel(start + timedelta(minutes=58), tick=False):
        assert signed_in(client.get(PAGE))  # 29 min after the last request
    with time_machine.travel(start + timedelta(minutes=89), tick=False):
        response = client.get(PAGE)
        assert ended(response)
        page = client.get(response.url)
        assert str(MSG_SESSION_EXPIRED) in page.content.decode()
    event = AuditEvent.objects.filter(action="auth.session_expired").latest("id")
    assert event.actor == user and event.detail == {"reason": "idle"}


@pytest.mark.parametrize(
    ("make_user", "minutes", "expected_alive"),
    [
        (lambda w: w.users.admin, 14, True),
        (lambda w: w.users.admin, 16, False),
        (lambda w: af.staff("audit_a", Role.AUDIT_ADMIN, w.org.bureau_a), 16, False),
        (lambda w: w.users.doctor_a, 16, True),
    ],
)
def test_admin_class_roles_time_out_after_15_minutes(world, make_user, minutes, expected_alive):
    user = make_user(world)
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        client = af.login(Client(), user)
    with time_machine.travel(start + timedelta(minutes=minutes), tick=False):
        assert signed_in(client.get(PAGE)) is expected_alive


def test_busy_session_still_ends_12_hours_after_login(world):
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        client = af.login(Client(), world.users.doctor_a)
    minute = 0
    while minute < 12 * 60:
        minute += 25
        with time_machine.travel(start + timedelta(minutes=minute), tick=False):
            response = client.get(PAGE)
            if minute <= 12 * 60:
                assert signed_in(response), minute
            else:
                assert ended(response)
    assert AuditEvent.objects.filter(
        action="auth.session_expired", detail__reason="absolute"
    ).exists()


def test_password_reset_by_admin_ends_the_session(world):
    user = world.users.doctor_a
    client = af.login(Client(), user)
    sec = af.staff("sec_a", Role.SECURITY_ADMIN, world.org.bureau_a)
    req, _half = services.account_request_password_reset(user=user, by=world.users.admin)
    assert not ended(client.get(PAGE))  # requested only
    services.account_request_approve(req=req, by=sec)
    # (Django's session hash of the password ends it as well as the epoch)
    assert ended(client.get(PAGE))


def test_role_change_ends_the_session(world):
    user = world.users.police_a
    client = af.login(Client(), user)
    sec = af.staff("sec_a", Role.SECURITY_ADMIN, world.org.bureau_a)
    req = services.account_request_change(
        user=user, organisation=world.org.ps_a2, role=Role.POLICE, by=world.users.admin
    )
    assert not ended(client.get(PAGE))  # requested only
    services.account_request_approve(req=req, by=sec)
    assert ended(client.get(PAGE))
    assert AuditEvent.objects.filter(
        action="auth.session_expired", detail__reason="revoked", actor=user
    ).exists()


def test_deactivation_ends_the_session(world):
    user = world.users.civil
    client = af.login(Client(), user)
    services.staff_deactivate(user=user, by=world.users.admin)
    assert ended(client.get(PAGE))


def test_api_session_ends_the_same_way(world):
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        client = af.login(Client(), world.users.doctor_a)
        assert client.get("/api/schema/").status_code == 200
    with time_machine.travel(start + timedelta(minutes=31), tick=False):
        assert client.get("/api/schema/").status_code in (401, 403)


def test_logout_is_audited_and_ends_the_session(world):
    user = world.users.doctor_a
    client = af.login(Client(), user)
    assert client.post(reverse("accounts:logout")).status_code == 302
    assert ended(client.get(PAGE))
    assert AuditEvent.objects.filter(action="auth.logout", actor=user).exists()
    assert AuditEvent.objects.filter(action="auth.login", actor=user).exists()


def test_an_htmx_request_of_an_ended_session_reloads_the_login_page(world):
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        client = af.login(Client(), world.users.doctor_a)
    with time_machine.travel(start + timedelta(minutes=31), tick=False):
        response = client.get(PAGE, HTTP_HX_REQUEST="true")
    assert response.status_code == 204
    assert response["HX-Redirect"].startswith(LOGIN)
