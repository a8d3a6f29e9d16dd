"""Cross-app checks of the foundation: demo data, settings, history, encryption."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.models import Sum

from accounts.models import Region, RegionLevel
from accounts.roles import Role, role_of
from patients.models import Patient
from patients.selectors import patient_list_visible_to
from patients.services import patient_update

DEMO_ACCOUNTS = {
    "admin": Role.ADMIN,
    "doctor1": Role.TOWNSHIP_DOCTOR,
    "doctor2": Role.TOWNSHIP_DOCTOR,
    "hospital1": Role.HOSPITAL_DOCTOR,
    "police1": Role.POLICE,
    "police2": Role.POLICE,
    "governance1": Role.GOVERNANCE,
    "civil1": Role.CIVIL_AFFAIRS,
    "dpf1": Role.DISABLED_FEDERATION,
    "official1": Role.OFFICIAL,
}


@pytest.fixture
def demo(db):
    call_command("seed_demo", "--patients", "120", stdout=io.StringIO())


@pytest.mark.django_db
def test_seed_demo_builds_the_county_of_api_md(demo):
    county = Region.objects.get(code="990102")
    assert county.name == "示范县" and county.population == 520000
    towns = {r.code: (r.name, r.population) for r in Region.objects.filter(parent=county)}
    assert towns == {
        "990102001": ("城关镇", 180000),
        "990102002": ("东山乡", 120000),
        "990102003": ("西河乡", 110000),
        "990102004": ("南岭镇", 110000),
    }
    for code in towns:
        villages = Region.objects.filter(parent_id=code)
        assert 3 <= villages.count() <= 6
        assert all(len(v.code) == 12 and v.level == RegionLevel.VILLAGE for v in villages)
        assert villages.aggregate(s=Sum("population"))["s"] == towns[code][1]
    assert Region.objects.get(code="990000").path == "/990000/"
    assert Region.objects.get(code="990102001").path == "/990000/990100/990102/990102001/"


# Beyond API.md's ten (README → Demo accounts).
MORE_DEMO_ACCOUNTS = {"finance1": Role.FINANCE, "prevention1": Role.PREVENTION_STAFF}


@pytest.mark.django_db
def test_the_demo_accounts_whose_work_ends_in_a_file_may_export(demo):
    """Exports are their own permission (SECURITY.md G14): the demo grants it
    to the accounts whose pages end in an Excel file or a package, finance's
    payment batches and the prevention centre's exchange packages included;
    the police and the 三员 do not get it."""
    from django.contrib.auth import get_user_model

    from accounts.exports import export_allowed

    users = {u.username: u for u in get_user_model().objects.all()}
    for username in ("doctor1", "hospital1", "prevention1", "finance1", "civil1", "dpf1"):
        assert export_allowed(users[username]), username
    for username in ("police1", "police2", "admin"):
        assert not export_allowed(users[username]), username


@pytest.mark.django_db
def test_seed_demo_accounts_have_their_roles_and_log_in(demo):
    """Each demo account signs in through the login page with the demo
    password and reaches its home page; the admin enrols TOTP on the way."""
    from django.contrib.auth import get_user_model
    from django.test import Client
    from django.urls import reverse
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from accounts.roles import home_url_for
    from accounts.tests.factories import otp_code

    login, setup = reverse("accounts:login"), reverse("accounts:mfa-setup")
    for username, role in {**DEMO_ACCOUNTS, **MORE_DEMO_ACCOUNTS}.items():
        user = get_user_model().objects.get(username=username)
        assert role_of(user) == role
        client = Client()
        response = client.post(login, {"username": username, "password": "Demo-Pass-2026!"})
        assert response.status_code == 302, (username, response.content[:300])
        home = home_url_for(user)
        response = client.get(home)
        if role == Role.ADMIN:
            # the 三员 always use a second factor: enrol on the first sign-in
            assert response.status_code == 302 and response.url.startswith(setup)
            assert client.get(response.url).status_code == 200
            device = TOTPDevice.objects.get(user=user, confirmed=False)
            response = client.post(setup, {"code": otp_code(device), "next": home})
            assert response.status_code == 302 and response.url == home
            response = client.get(home)
        assert response.status_code == 200, (username, response.status_code)


@pytest.mark.django_db
def test_seed_demo_scopes_follow_api_md(demo):
    from django.contrib.auth import get_user_model

    users = {u.username: u for u in get_user_model().objects.all()}
    d1 = patient_list_visible_to(user=users["doctor1"])
    assert d1.exists()
    assert not d1.exclude(region__code__startswith="990102001").exists()
    assert patient_list_visible_to(user=users["hospital1"]).count() == Patient.objects.count()
    assert not patient_list_visible_to(user=users["official1"]).exists()
    assert not patient_list_visible_to(user=users["admin"]).exists()
    p2 = patient_list_visible_to(user=users["police2"])
    assert not p2.exclude(region__code__startswith="990102002").exists()


@pytest.mark.django_db
def test_seed_demo_twice_changes_nothing(demo):
    before = (Patient.objects.count(), Region.objects.count())
    call_command("seed_demo", "--patients", "120", stdout=io.StringIO())
    assert (Patient.objects.count(), Region.objects.count()) == before


@pytest.mark.django_db
def test_seed_demo_has_every_diagnosis_and_status_at_full_size(db):
    call_command("seed_demo", stdout=io.StringIO())
    assert 2200 <= Patient.objects.count() <= 2400
    diagnoses = set(Patient.objects.values_list("diagnosis", flat=True))
    statuses = set(Patient.objects.values_list("status", flat=True))
    assert diagnoses == {c for c, _ in Patient._meta.get_field("diagnosis").choices}
    assert statuses == {c for c, _ in Patient._meta.get_field("status").choices}
    assert Patient.objects.filter(poverty="dibao").exists()
    assert Patient.objects.filter(certificate="held").exists()


@pytest.mark.django_db
def test_history_records_who_and_why(world, patients):
    p = patients.pA1
    patient_update(
        by=world.users.doctor_a,
        pk=p.pk,
        data={"address": "新地址8号"},
        expected_version=p.version,
    )
    latest = p.history.order_by("-history_date").first()
    assert latest.history_user_id == world.users.doctor_a.pk
    assert latest.history_change_reason == "patient.updated"
    assert latest.address == "新地址8号"
    first = p.history.order_by("history_date").first()
    assert first.history_change_reason == "patient.registered"


@pytest.mark.django_db
def test_id_and_phone_numbers_are_not_stored_in_clear(world, patients):
    p = Patient.objects.get(pk=patients.pA1.pk)
    assert p.id_number and len(p.id_number) == 18
    with connection.cursor() as cur:
        cur.execute(
            "SELECT id_number FROM patients_patient WHERE id = %s",
            [p.pk.hex if connection.vendor == "sqlite" else p.pk],
        )
        raw = cur.fetchone()[0]
        cur.execute(
            "SELECT phone FROM patients_guardian WHERE patient_id = %s",
            [p.pk.hex if connection.vendor == "sqlite" else p.pk],
        )
        raw_phone = cur.fetchone()[0]
    assert p.id_number not in raw and raw.count("$") == 1
    assert "13800000000" not in raw_phone


def test_production_settings_refuse_to_start_without_a_secret():
    env = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "SECRET_KEY_FILE"}}
    env["DJANGO_SETTINGS_MODULE"] = "config.settings.production"
    env["DATABASE_URL"] = "postgres://x@127.0.0.1:5432/x"
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


@pytest.mark.django_db
def test_favicon_is_served_from_static_at_the_root_and_linked(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 200
    assert response["Content-Type"] in {"image/x-icon", "image/vnd.microsoft.icon"}
    body = b"".join(response.streaming_content)
    assert body[:4] == b"\x00\x00\x01\x00"  # an ICO header
    page = client.get("/accounts/login/").content.decode()
    assert '<link rel="icon" href="/static/root/favicon.ico"' in page


@pytest.mark.django_db
def test_healthz_reports_database_and_broker(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["database"] == "ok"


@pytest.mark.django_db
def test_anonymous_pages_redirect_to_login(client):
    response = client.get("/patients/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_language_and_timezone():
    from django.conf import settings

    assert settings.LANGUAGE_CODE == "zh-hans"
    assert ("en", "English") in [(c, str(n)) for c, n in settings.LANGUAGES]
    assert settings.TIME_ZONE == "Asia/Shanghai"
