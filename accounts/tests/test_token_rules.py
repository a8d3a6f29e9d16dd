"""API tokens keep the session rules (SECURITY.md G8, G11): a due or
temporary password, 12 hours after issue, 30 minutes idle (15 for the 三员)
end a token; its idle clock is written at most once a minute."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from accounts.authentication import (
    ERR_TOKEN_EXPIRED,
    ERR_TOKEN_IDLE,
    ERR_TOKEN_PASSWORD,
)
from accounts.models import StaffProfile, TokenActivity
from accounts.roles import Role
from accounts.services import staff_set_password
from accounts.tests import factories as af
from audit.models import AuditEvent

pytestmark = [pytest.mark.django_db]

TOKEN_URL = "/api/v1/auth/token/"
API_URL = "/api/v1/regions/"


def sign_in(user, password=af.PASSWORD) -> str:
    response = APIClient().post(
        TOKEN_URL, {"username": user.username, "password": password}, format="json"
    )
    assert response.status_code == 200, response.content
    return response.json()["token"]


def get(token: str):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client.get(API_URL)


def test_the_token_class_is_the_default_drf_class():
    from django.conf import settings

    classes = settings.REST_FRAMEWORK["DEFAULT_AUTHENTICATION_CLASSES"]
    assert "accounts.authentication.ExpiringTokenAuthentication" in classes
    assert "rest_framework.authentication.TokenAuthentication" not in classes


def test_a_busy_token_ends_12_hours_after_issue(world):
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        token = sign_in(world.users.doctor_a)
    for minutes in range(20, 12 * 60, 20):  # used every 20 minutes: never idle
        with time_machine.travel(start + timedelta(minutes=minutes), tick=False):
            assert get(token).status_code == 200
    with time_machine.travel(start + timedelta(hours=12, seconds=1), tick=False):
        response = get(token)
    assert response.status_code == 401
    assert response.json() == {"detail": ERR_TOKEN_EXPIRED}
    assert AuditEvent.objects.filter(
        action="auth.token_expired", actor=world.users.doctor_a, detail__reason="absolute"
    ).exists()
    with time_machine.travel(start + timedelta(hours=12, minutes=1), tick=False):
        fresh = sign_in(world.users.doctor_a)
        assert fresh != token
        assert get(fresh).status_code == 200


def test_an_idle_token_ends_after_30_minutes(world):
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        token = sign_in(world.users.doctor_a)
    with time_machine.travel(start + timedelta(minutes=29), tick=False):
        assert get(token).status_code == 200
    with time_machine.travel(start + timedelta(minutes=58), tick=False):
        assert get(token).status_code == 200  # 29 minutes after the last use
    with time_machine.travel(start + timedelta(minutes=88, seconds=30), tick=False):
        response = get(token)
    assert response.status_code == 401
    assert response.json() == {"detail": ERR_TOKEN_IDLE}
    assert not Token.objects.filter(key=token).exists()


def test_a_token_of_the_三员_is_idle_after_15_minutes(world):
    sec = af.staff("sec_a", Role.SECURITY_ADMIN, world.org.bureau_a)
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        token, _ = Token.objects.get_or_create(user=sec)
    with time_machine.travel(start + timedelta(minutes=14), tick=False):
        assert get(token.key).status_code == 200
    with time_machine.travel(start + timedelta(minutes=29, seconds=30), tick=False):
        response = get(token.key)
    assert response.status_code == 401
    assert response.json() == {"detail": ERR_TOKEN_IDLE}


def test_the_last_use_is_written_at_most_once_a_minute(world, django_assert_num_queries):
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        token = sign_in(world.users.doctor_a)
    stamped = TokenActivity.objects.get(token_id=token).last_used_at
    with time_machine.travel(start + timedelta(seconds=30), tick=False):
        get(token)
    assert TokenActivity.objects.get(token_id=token).last_used_at == stamped
    with time_machine.travel(start + timedelta(seconds=61), tick=False):
        get(token)
    assert TokenActivity.objects.get(token_id=token).last_used_at > stamped


def test_a_due_password_refuses_the_token(world):
    user = world.users.doctor_a
    token = sign_in(user)
    StaffProfile.objects.filter(user=user).update(
        password_changed_at=timezone.now() - timedelta(days=91)
    )
    response = get(token)
    assert response.status_code == 401
    assert response.json() == {"detail": ERR_TOKEN_PASSWORD}


def test_a_temporary_password_refuses_the_token(world):
    user = world.users.doctor_a
    temporary = "Temp-Pass-2026!x"
    staff_set_password(user=user, password=temporary, by=None, temporary=True)
    token = sign_in(user, temporary)
    response = get(token)
    assert response.status_code == 401
    assert response.json() == {"detail": ERR_TOKEN_PASSWORD}
    assert response["WWW-Authenticate"] == "Token"
