"""Partner systems use named API keys, not a person's password (G10)."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.db import connection
from django.urls import reverse

from accounts.models import ApiKey
from accounts.roles import Role
from accounts.services import ERR_API_ROLE, ERR_NOT_ALLOWED, apikey_create, apikey_revoke
from accounts.tests import factories as af
from audit.models import AuditEvent
from core.errors import DomainError
from patients.selectors import patient_list_visible_to

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

KEYS_URL = reverse("accounts:apikey-list")
API_URL = "/api/schema/"  # any API view behind IsAuthenticated


@pytest.fixture
def sec(world):
    return af.staff("sec_a", Role.SECURITY_ADMIN, world.org.bureau_a)


def test_api_key_authentication_is_a_default_drf_class():
    classes = settings.REST_FRAMEWORK["DEFAULT_AUTHENTICATION_CLASSES"]
    assert "accounts.authentication.ApiKeyAuthentication" in classes


def test_security_admin_creates_a_key_shown_once_and_stored_hashed(client, world, sec):
    af.login(client, sec)
    response = client.post(
        KEYS_URL,
        {"name": "公安重点人员系统", "organisation": world.org.pb_a.pk, "role": Role.POLICE},
    )
    assert response.status_code == 200
    key = response.context["key"]
    assert key in response.content.decode()
    assert "no-store" in response["Cache-Control"]
    api_key = ApiKey.objects.get(name="公安重点人员系统")
    assert api_key.key_hash != key and len(api_key.key_hash) == 64
    with connection.cursor() as cur:
        cur.execute("SELECT * FROM accounts_apikey")
        assert key not in str(cur.fetchall())
    assert not api_key.user.has_usable_password()
    event = AuditEvent.objects.get(action="security.api_key_create")
    assert event.actor == sec and key not in str(event.detail)
    listing = client.get(KEYS_URL)
    assert "公安重点人员系统" in listing.content.decode() and key not in listing.content.decode()


def test_a_key_authenticates_as_its_service_account_with_its_scope(client, world, patients):
    api_key, key = apikey_create(
        name="A1派出所系统", organisation=world.org.ps_a1, role=Role.POLICE, by=None
    )
    response = client.get(API_URL, HTTP_AUTHORIZATION=f"Api-Key {key}")
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    assert list(patient_list_visible_to(user=api_key.user)) == [patients.pA1]
    api_key.refresh_from_db()
    assert api_key.last_used_at is not None


def test_wrong_or_revoked_keys_are_refused_and_audited(client, world, sec):
    api_key, key = apikey_create(
        name="民政系统", organisation=world.org.civil_a, role=Role.CIVIL_AFFAIRS, by=sec
    )
    prefix = key.split(".")[0]
    assert client.get(API_URL, HTTP_AUTHORIZATION=f"Api-Key {prefix}.wrong").status_code == 401
    assert client.get(API_URL, HTTP_AUTHORIZATION="Api-Key garbage").status_code == 401
    apikey_revoke(api_key=api_key, by=sec)
    response = client.get(API_URL, HTTP_AUTHORIZATION=f"Api-Key {key}")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    failures = AuditEvent.objects.filter(action="auth.api_key_failed")
    assert failures.count() == 3
    assert all(key not in str(f.detail) and "wrong" not in f.object_id for f in failures)
    assert AuditEvent.objects.filter(action="security.api_key_revoke", actor=sec).exists()


def test_keys_cannot_carry_admin_roles_and_only_the_security_admin_makes_them(world, sec):
    with pytest.raises(DomainError) as exc:
        apikey_create(name="x", organisation=world.org.bureau_a, role=Role.ADMIN, by=sec)
    assert exc.value.message == ERR_API_ROLE
    with pytest.raises(DomainError) as exc:
        apikey_create(
            name="x", organisation=world.org.ps_a1, role=Role.POLICE, by=world.users.admin
        )
    assert exc.value.message == ERR_NOT_ALLOWED


def test_revoke_asks_for_confirmation(client, world, sec):
    api_key, key = apikey_create(
        name="残联系统", organisation=world.org.dpf_a, role=Role.DISABLED_FEDERATION, by=sec
    )
    af.login(client, sec)
    url = reverse("accounts:apikey-revoke", args=[api_key.pk])
    assert "确认吊销" in client.get(url).content.decode()
    api_key.refresh_from_db()
    assert api_key.revoked_at is None
    assert client.post(url).status_code == 302
    api_key.refresh_from_db()
    assert api_key.revoked_at is not None and not api_key.user.is_active


def test_keys_of_another_county_are_not_there(client, world, sec):
    other, _key = apikey_create(
        name="C县系统", organisation=world.org.hc_c1, role=Role.TOWNSHIP_DOCTOR, by=None
    )
    af.login(client, sec)
    assert "C县系统" not in client.get(KEYS_URL).content.decode()
    assert client.get(reverse("accounts:apikey-revoke", args=[other.pk])).status_code == 404


@pytest.mark.parametrize("persona", ["admin", "police_a"])
def test_only_the_security_admin_opens_the_key_page(client, world, persona):
    af.login(client, getattr(world.users, persona))
    assert client.get(KEYS_URL).status_code == 403


@pytest.mark.parametrize("count", [1, 30])
def test_key_list_query_count_is_flat(client, world, sec, count, django_assert_max_num_queries):
    for i in range(count):
        apikey_create(name=f"key{i}", organisation=world.org.ps_a1, role=Role.POLICE, by=sec)
    af.login(client, sec)
    with django_assert_max_num_queries(12):
        page = client.get(KEYS_URL)
    assert len(page.context["rows"]) == count
