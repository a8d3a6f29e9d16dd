"""Password rules (SECURITY.md G8): length 12–128, 3 of 4 classes, common
list, context words, 90-day change, the last 5 not reused."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import time_machine
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse
from django.utils import timezone, translation

from accounts.forms import ERR_OLD_PASSWORD
from accounts.models import PasswordHistory
from accounts.passwords import ERR_PASSWORD_REUSED
from accounts.roles import Role
from accounts.services import staff_set_password
from accounts.tests import factories as af

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

CHANGE_URL = reverse("accounts:password-change")


def codes(password, user=None) -> set[str]:
    try:
        validate_password(password, user)
    except ValidationError as exc:
        return {e.code for e in exc.error_list}
    return set()


def test_length_between_12_and_128():
    assert "password_too_short" in codes("Ab1!efghijk")  # 11
    assert codes("Ab1!efghijkl") == set()  # 12
    assert codes("Ab1!" + "x" * 124) == set()  # 128
    assert "password_too_long" in codes("Ab1!" + "x" * 125)  # 129


def test_three_of_four_character_classes():
    assert "password_classes" in codes("abcdefghijkl-")  # lower + symbol
    assert "password_classes" in codes("ABCDEFGHJKLmn")  # upper + lower
    assert codes("ABCDEFGHJKLmn7") == set()
    assert codes("abcdefghijk-7") == set()


def test_common_passwords_are_refused_even_with_three_classes():
    assert "password_too_common" in codes("Qwerty123456")


def test_passwords_like_the_username_are_refused(world):
    user = af.staff("zhangwei2026", Role.TOWNSHIP_DOCTOR, world.org.hc_a1)
    assert "password_too_similar" in codes("Zhangwei2026!", user)


def test_the_last_five_passwords_cannot_come_back(world):
    user = world.users.doctor_a
    passwords = [f"Kennwort-Nummer-{i}" for i in range(6)]
    for pw in passwords:
        staff_set_password(user=user, password=pw, by=user)
    # current + the four before it are refused ...
    for pw in passwords[1:]:
        with pytest.raises(ValidationError) as exc:
            validate_password(pw, user)
        assert exc.value.error_list[0].code == "password_reused"
    # ... the sixth-last may come back; the original factory password too
    assert codes(passwords[0], user) == set()
    assert PasswordHistory.objects.filter(user=user).count() == 5
    assert all(h.password.startswith("md5$") for h in PasswordHistory.objects.filter(user=user))


def test_change_page_refuses_reuse_with_the_rule_in_words(client, world):
    user = world.users.doctor_a
    af.login(client, user)
    response = client.post(
        CHANGE_URL,
        {"old_password": af.PASSWORD, "password1": af.PASSWORD, "password2": af.PASSWORD},
    )
    assert response.status_code == 200
    assert str(ERR_PASSWORD_REUSED % {"count": 5}) in response.content.decode()


def test_change_page_checks_the_old_password(client, world):
    af.login(client, world.users.doctor_a)
    new = "Brand-New-Pass-9"
    response = client.post(
        CHANGE_URL, {"old_password": "wrong-one", "password1": new, "password2": new}
    )
    assert str(ERR_OLD_PASSWORD) in response.content.decode()


@pytest.mark.parametrize(
    "password", ["Ab1!", "12345678901234", "Qwerty123456", "Zhangwei2026!", "abcdefghijkl-"]
)
def test_every_password_rule_speaks_chinese_on_the_chinese_ui(world, password):
    """Django 5.2's zh_Hans catalogue lacks the minimum-length message;
    locale/zh_Hans supplies it."""
    user = af.staff("zhangwei2026", Role.TOWNSHIP_DOCTOR, world.org.hc_a1)
    with translation.override("zh-hans"), pytest.raises(ValidationError) as exc:
        validate_password(password, user)
    english = [m for m in exc.value.messages if re.search(r"[A-Za-z]{4,}", m)]
    assert english == []
    with translation.override("en"), pytest.raises(ValidationError) as exc:
        validate_password("Ab1!", user)
    assert "too short" in exc.value.messages[0]


def test_change_page_gives_the_length_rule_in_chinese(client, world):
    af.login(client, world.users.doctor_a)
    response = client.post(
        CHANGE_URL, {"old_password": af.PASSWORD, "password1": "Ab1!x", "password2": "Ab1!x"}
    )
    assert "密码太短，至少需要 12 个字符。" in response.content.decode()


def test_changing_ones_password_keeps_this_session_and_ends_the_others(client, world):
    user = world.users.doctor_a
    other = af.login(Client(), user)
    af.login(client, user)
    new = "Brand-New-Pass-9"
    response = client.post(
        CHANGE_URL, {"old_password": af.PASSWORD, "password1": new, "password2": new}
    )
    assert response.status_code == 302
    assert client.get(reverse("accounts:breakglass-request")).status_code == 200
    assert other.get(reverse("accounts:breakglass-request")).status_code == 302
    user.refresh_from_db()
    assert user.check_password(new)


def test_a_password_older_than_90_days_must_be_changed_after_login(world):
    user = world.users.doctor_a
    start = timezone.now()
    with time_machine.travel(start + timedelta(days=89), tick=False):
        client = af.login(Client(), user)
        assert client.get(reverse("accounts:breakglass-request")).status_code == 200
    with time_machine.travel(start + timedelta(days=91), tick=False):
        client = af.login(Client(), user)
        response = client.get(reverse("accounts:breakglass-request"))
        assert response.status_code == 302
        assert response.url.startswith(CHANGE_URL)
        # the page itself and logging out stay reachable
        assert client.get(CHANGE_URL).status_code == 200
        new = "Brand-New-Pass-9"
        client.post(CHANGE_URL, {"old_password": af.PASSWORD, "password1": new, "password2": new})
        assert client.get(reverse("accounts:breakglass-request")).status_code == 200


def test_an_expired_password_closes_the_api_to_the_session(world):
    user = world.users.doctor_a
    with time_machine.travel(timezone.now() + timedelta(days=91), tick=False):
        client = af.login(Client(), user)
        assert client.get("/api/schema/").status_code in (401, 403)
