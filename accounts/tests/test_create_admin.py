"""``manage.py create_admin``: the first system administrator of a real
county, created through accounts.services.staff_create; the TOTP
enrolment follows at the first sign-in."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import StaffProfile
from accounts.roles import Role, role_of
from accounts.services import ERR_USERNAME_TAKEN
from accounts.tests import factories as af
from audit.models import AuditEvent

pytestmark = pytest.mark.django_db

PASSWORD = "Lantern-Harbor-93!"


def create_admin(monkeypatch, *args, password=PASSWORD) -> str:
    monkeypatch.setenv("ADMIN_PASSWORD", password)
    out = io.StringIO()
    call_command("create_admin", *args, "--no-input", stdout=out)
    return out.getvalue()


def test_creates_an_admin_in_the_organisation_through_the_service(world, monkeypatch):
    bureau = world.org.bureau_a
    out = create_admin(
        monkeypatch,
        "--username",
        "county_admin",
        "--organisation",
        "A卫健局",
        "--display-name",
        "刘工",
    )
    assert "county_admin" in out and "TOTP" in out
    user = get_user_model().objects.get(username="county_admin")
    assert role_of(user) == Role.ADMIN
    assert user.is_staff and not user.is_superuser and user.check_password(PASSWORD)
    profile = StaffProfile.objects.get(user=user)
    assert (profile.organisation, profile.display_name) == (bureau, "刘工")
    assert profile.history.first().history_change_reason == "staff.created"
    assert AuditEvent.objects.filter(action="admin.staff_create", object_id=str(user.pk)).exists()


@pytest.mark.postgres
def test_the_new_admin_signs_in_and_is_sent_to_enrol_totp(world, monkeypatch):
    create_admin(
        monkeypatch, "--username", "county_admin", "--organisation", str(world.org.bureau_a.pk)
    )
    client = Client()
    response = client.post(
        reverse("accounts:login"), {"username": "county_admin", "password": PASSWORD}
    )
    assert response.status_code == 302
    response = client.get(reverse("accounts:staff-list"))
    assert response.status_code == 302
    assert response.url.startswith(reverse("accounts:mfa-setup"))
    assert client.get(response.url).status_code == 200
    assert TOTPDevice.objects.filter(user__username="county_admin", confirmed=False).exists()


def test_the_password_rules_apply(world, monkeypatch):
    with pytest.raises(CommandError) as exc:
        create_admin(
            monkeypatch, "--username", "weak", "--organisation", "A卫健局", password="short1"
        )
    assert "密码" in str(exc.value)
    assert not get_user_model().objects.filter(username="weak").exists()


def test_a_taken_username_is_refused(world, monkeypatch):
    with pytest.raises(CommandError) as exc:
        create_admin(monkeypatch, "--username", "admin_a", "--organisation", "A卫健局")
    assert str(exc.value) == str(ERR_USERNAME_TAKEN)


def test_the_organisation_must_exist_and_be_unambiguous(world, monkeypatch):
    with pytest.raises(CommandError) as exc:
        create_admin(monkeypatch, "--username", "x_admin", "--organisation", "不存在的机构")
    assert "找不到机构" in str(exc.value)
    af.organisation("A卫健局", "health_bureau", world.county_c)  # same name in county C
    with pytest.raises(CommandError) as exc:
        create_admin(monkeypatch, "--username", "x_admin", "--organisation", "A卫健局")
    assert "--region" in str(exc.value)
    create_admin(
        monkeypatch, "--username", "x_admin", "--organisation", "A卫健局", "--region", "990103"
    )
    assert get_user_model().objects.get(username="x_admin").staff.organisation.region_id == (
        "990103"
    )


def test_no_input_needs_the_password_in_the_environment(world, monkeypatch):
    monkeypatch.delenv("ADMIN_PASSWORD", raising=False)
    with pytest.raises(CommandError) as exc:
        call_command(
            "create_admin",
            "--username",
            "y",
            "--organisation",
            "A卫健局",
            "--no-input",
            stdout=io.StringIO(),
        )
    assert "ADMIN_PASSWORD" in str(exc.value)


@pytest.mark.parametrize("role", [Role.SECURITY_ADMIN, Role.AUDIT_ADMIN])
def test_the_other_two_of_the_三员_are_made_at_the_console_and_active(world, monkeypatch, role):
    """The system admin cannot make a security admin alone (two-person rule):
    the first security and audit admins of a county come from create_admin."""
    out = create_admin(
        monkeypatch,
        "--username",
        "first_" + role,
        "--organisation",
        "A卫健局",
        "--role",
        role,
    )
    assert "first_" + role in out and str(Role(role).label) in out
    user = get_user_model().objects.get(username="first_" + role)
    assert role_of(user) == role and user.is_active and not user.is_staff
    assert user.check_password(PASSWORD)
