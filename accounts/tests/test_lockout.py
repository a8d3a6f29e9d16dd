"""Lockout (SECURITY.md G9): 5 failures within 15 minutes lock the username
for 30 minutes;
unknown users and wrong passwords get the same answer; the security admin
can unlock; every failure and lock is audited (G12)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.roles import Role
from accounts.tests import factories as af
from audit.models import AuditEvent

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

LOGIN_URL = reverse("accounts:login")
LOCKOUTS_URL = reverse("accounts:lockout-list")


def attempt(client, username, password="Wrong-Password-1"):
    return client.post(LOGIN_URL, {"username": username, "password": password})


def normalised(response, username) -> str:
    """The page without what legitimately differs: CSRF tokens and the echoed name."""
    html = response.content.decode()
    html = re.sub(r'value="[A-Za-z0-9]{64}"', 'value="csrf"', html)
    html = re.sub(r'"X-CSRFToken": "[A-Za-z0-9]{64}"', '"X-CSRFToken": "csrf"', html)
    return html.replace(username, "USERNAME")


def test_unknown_user_and_wrong_password_get_identical_answers(world):
    known = attempt(Client(), "doctor_a")
    unknown = attempt(Client(), "nobody_here")
    assert known.status_code == unknown.status_code == 200
    assert normalised(known, "doctor_a") == normalised(unknown, "nobody_here")
    # a disabled account with the right password answers the same way too
    world.users.police_b.is_active = False
    world.users.police_b.save(update_fields=["is_active"])
    disabled = attempt(Client(), "police_b", af.PASSWORD)
    assert normalised(disabled, "police_b") == normalised(unknown, "nobody_here")


def test_five_failures_lock_the_account_even_for_the_right_password(world):
    client = Client()
    for _ in range(4):
        assert attempt(client, "doctor_a").status_code == 200
    assert attempt(client, "doctor_a").status_code == 429
    locked = attempt(client, "doctor_a", af.PASSWORD)
    assert locked.status_code == 429
    assert "锁定" in locked.content.decode()
    assert "_auth_user_id" not in client.session
    # per username: another account from the same address still signs in
    assert attempt(client, "doctor_b", af.PASSWORD).status_code == 302


def test_unknown_usernames_lock_the_same_way(world):
    client = Client()
    answers = [attempt(client, "ghost_user").status_code for _ in range(6)]
    assert answers == [200, 200, 200, 200, 429, 429]


def test_the_lock_lifts_after_30_minutes(world):
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        for _ in range(5):
            attempt(Client(), "doctor_a")
    with time_machine.travel(start + timedelta(minutes=29), tick=False):
        assert attempt(Client(), "doctor_a", af.PASSWORD).status_code == 429
    with time_machine.travel(start + timedelta(minutes=61), tick=False):
        assert attempt(Client(), "doctor_a", af.PASSWORD).status_code == 302


def _failures_at(start, minutes, username="doctor_a"):
    for m in minutes:
        with time_machine.travel(start + timedelta(minutes=m), tick=False):
            answer = attempt(Client(), username)
    return answer


def test_five_failures_spread_over_16_minutes_do_not_lock(world):
    start = timezone.now()
    # the fifth failure comes 16 minutes after the first: only 4 in its window
    assert _failures_at(start, [0, 4, 8, 12, 16]).status_code == 200
    with time_machine.travel(start + timedelta(minutes=16, seconds=5), tick=False):
        assert attempt(Client(), "doctor_a", af.PASSWORD).status_code == 302


def test_failures_spread_out_for_hours_never_lock(world):
    start = timezone.now()
    answer = _failures_at(start, range(0, 120, 5))  # 24 failures, 3 per 15 minutes
    assert answer.status_code == 200
    with time_machine.travel(start + timedelta(minutes=116), tick=False):
        assert attempt(Client(), "doctor_a", af.PASSWORD).status_code == 302


def test_five_failures_within_15_minutes_lock_for_30_minutes(world):
    start = timezone.now()
    # 14 min 59 s from the first failure to the fifth: locked at the fifth
    assert _failures_at(start, [0, 5, 10, 14, 14.98]).status_code == 429
    locked_at = start + timedelta(minutes=14.98)
    with time_machine.travel(locked_at + timedelta(minutes=29, seconds=50), tick=False):
        sec = af.staff("sec_a", Role.SECURITY_ADMIN, world.org.bureau_a)
        client = Client()
        af.login(client, sec)
        assert [r["username"] for r in client.get(LOCKOUTS_URL).context["rows"]] == ["doctor_a"]
    with time_machine.travel(locked_at + timedelta(minutes=30, seconds=1), tick=False):
        assert attempt(Client(), "doctor_a", af.PASSWORD).status_code == 302


def test_a_failure_during_the_lock_restarts_it(world):
    start = timezone.now()
    _failures_at(start, [0, 1, 2, 3, 4])
    with time_machine.travel(start + timedelta(minutes=20), tick=False):
        assert attempt(Client(), "doctor_a").status_code == 429
    with time_machine.travel(start + timedelta(minutes=40), tick=False):
        assert attempt(Client(), "doctor_a", af.PASSWORD).status_code == 429
    with time_machine.travel(start + timedelta(minutes=70, seconds=1), tick=False):
        assert attempt(Client(), "doctor_a", af.PASSWORD).status_code == 302


def test_the_failure_log_keeps_no_more_than_the_two_periods(world):
    from axes.models import AccessFailureLog

    start = timezone.now()
    _failures_at(start, [0, 1], username="typed-id-110101199001011234")
    _failures_at(start, [31], username="doctor_b")
    assert not AccessFailureLog.objects.filter(username__startswith="typed-id").exists()
    assert AccessFailureLog.objects.filter(username="doctor_b").count() == 1


def test_failures_and_the_lock_are_audited_without_what_was_typed(world):
    for _ in range(5):
        attempt(Client(), "doctor_a")
    attempt(Client(), "typed-secret-x")
    failed = AuditEvent.objects.filter(action="auth.login_failed")
    assert failed.filter(object_id=str(world.users.doctor_a.pk)).count() == 5
    assert AuditEvent.objects.filter(
        action="auth.locked_out", object_id=str(world.users.doctor_a.pk)
    ).exists()
    unknown = failed.get(object_id="")
    assert "typed-secret-x" not in str(unknown.detail) and unknown.detail["username_hash"]


def test_security_admin_unlocks_from_the_lockout_page(client, world):
    for _ in range(5):
        attempt(Client(), "doctor_a")
    for _ in range(5):
        attempt(Client(), "doctor_c")  # another county: not this admin's to see
    sec = af.staff("sec_a", Role.SECURITY_ADMIN, world.org.bureau_a)
    af.login(client, sec)
    page = client.get(LOCKOUTS_URL)
    assert page.status_code == 200
    assert [r["username"] for r in page.context["rows"]] == ["doctor_a"]
    assert (
        client.post(reverse("accounts:lockout-release"), {"username": "doctor_c"}).status_code
        == 404
    )
    response = client.post(reverse("accounts:lockout-release"), {"username": "doctor_a"})
    assert response.status_code == 302
    assert attempt(Client(), "doctor_a", af.PASSWORD).status_code == 302
    event = AuditEvent.objects.get(action="security.unlock")
    assert event.actor == sec and event.object_id == str(world.users.doctor_a.pk)
    # the staff page shows the lock to the security admin too
    for _ in range(5):
        attempt(Client(), "doctor_b")
    detail = client.get(reverse("accounts:staff-detail", args=[world.users.doctor_b.pk]))
    assert detail.context["locked"]


@pytest.mark.parametrize("persona", ["admin", "doctor_a"])
def test_only_the_security_admin_opens_the_lockout_page(client, world, persona):
    af.login(client, getattr(world.users, persona))
    assert client.get(LOCKOUTS_URL).status_code == 403
    assert client.post(reverse("accounts:lockout-release"), {"username": "x"}).status_code == 403


def test_lockout_page_query_count_is_flat(client, world, django_assert_max_num_queries):
    sec = af.staff("sec_a", Role.SECURITY_ADMIN, world.org.bureau_a)
    names = []
    for i in range(30):
        names.append(af.staff(f"lock{i:02d}", Role.POLICE, world.org.ps_a1).username)
    af.login(client, sec)
    for count in (1, 30):
        for name in names[:count]:
            for _ in range(5):
                attempt(Client(), name)
        with django_assert_max_num_queries(10):
            page = client.get(LOCKOUTS_URL)
        assert len(page.context["rows"]) == count
