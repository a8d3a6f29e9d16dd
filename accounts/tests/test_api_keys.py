"""Partner systems use named API keys, not a person's password (G10), and no
三员 account ever holds one (G4): the security admin requests a key naming
its custodian, the system admin approves it, and only the custodian — a
person of that organisation with that role — collects the secret, once."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.db import connection
from django.urls import reverse

from accounts.models import ApiKey, ApiKeyStatus
from accounts.roles import Role
from accounts.services import (
    ERR_API_CUSTODIAN,
    ERR_API_ROLE,
    ERR_API_STATUS,
    ERR_NOT_ALLOWED,
    apikey_approve,
    apikey_collect,
    apikey_reject,
    apikey_request,
    apikey_revoke,
)
from accounts.tests import factories as af
from audit.models import AuditEvent
from core.errors import DomainError
from patients.selectors import patient_list_visible_to

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

KEYS_URL = reverse("accounts:apikey-list")
MINE_URL = reverse("accounts:apikey-mine")
API_URL = "/api/schema/"  # any API view behind IsAuthenticated


@pytest.fixture
def sec(world):
    return af.staff("sec_a", Role.SECURITY_ADMIN, world.org.bureau_a)


@pytest.fixture
def police_lead(world):
    """The police bureau's person responsible for its partner system."""
    return af.staff("police_lead", Role.POLICE, world.org.pb_a)


def test_api_key_authentication_is_a_default_drf_class():
    classes = settings.REST_FRAMEWORK["DEFAULT_AUTHENTICATION_CLASSES"]
    assert "accounts.authentication.ApiKeyAuthentication" in classes


def test_request_approve_collect_shows_the_key_once_to_the_custodian_only(
    client, world, sec, police_lead
):
    af.login(client, sec)
    response = client.post(
        KEYS_URL,
        {
            "name": "公安重点人员系统",
            "organisation": world.org.pb_a.pk,
            "role": Role.POLICE,
            "custodian": police_lead.username,
        },
    )
    assert response.status_code == 302
    api_key = ApiKey.objects.get(name="公安重点人员系统")
    assert api_key.status == ApiKeyStatus.REQUESTED and api_key.key_hash == ""
    assert not api_key.user.is_active and not api_key.user.has_usable_password()
    # the system admin approves: no secret on any page of theirs
    admin = world.users.admin
    af.login(client, admin)
    approve = reverse("accounts:apikey-approve", args=[api_key.pk])
    assert "确认批准" in client.get(approve).content.decode()
    assert client.post(approve).status_code == 302
    api_key.refresh_from_db()
    assert api_key.status == ApiKeyStatus.APPROVED and api_key.approved_by == admin
    assert api_key.key_hash == ""  # still no secret anywhere
    # the custodian collects it: made now, shown once, stored hashed
    af.login(client, police_lead)
    assert "公安重点人员系统" in client.get(MINE_URL).content.decode()
    collect = reverse("accounts:apikey-collect", args=[api_key.pk])
    assert client.get(collect).status_code == 200
    shown = client.post(collect)
    assert shown.status_code == 200
    key = shown.context["key"]
    assert key in shown.content.decode()
    assert "no-store" in shown["Cache-Control"]
    api_key.refresh_from_db()
    assert api_key.status == ApiKeyStatus.ACTIVE and api_key.user.is_active
    assert api_key.key_hash != key and len(api_key.key_hash) == 64
    with connection.cursor() as cur:
        cur.execute("SELECT * FROM accounts_apikey")
        assert key not in str(cur.fetchall())
    assert client.post(collect).status_code == 404  # once
    assert client.get(API_URL, HTTP_AUTHORIZATION=f"Api-Key {key}").status_code == 200
    actions = list(
        AuditEvent.objects.filter(object_type="api_key", object_id=str(api_key.pk))
        .order_by("id")
        .values_list("action", "actor_id")
    )
    assert actions == [
        ("security.api_key_request", sec.pk),
        ("admin.api_key_approve", admin.pk),
        ("security.api_key_collect", police_lead.pk),
    ]
    assert all(key not in str(e.detail) for e in AuditEvent.objects.all())
    for user in (sec, admin):  # neither 三员 sees the key on the list
        af.login(client, user)
        listing = client.get(KEYS_URL).content.decode()
        assert "公安重点人员系统" in listing and key not in listing


def test_a_key_authenticates_as_its_service_account_with_its_scope(client, world, patients):
    api_key, key = af.api_key("A1派出所系统", world.org.ps_a1, Role.POLICE, world.users.police_a)
    response = client.get(API_URL, HTTP_AUTHORIZATION=f"Api-Key {key}")
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    # exactly its custodian's scope, nothing more
    assert list(patient_list_visible_to(user=api_key.user)) == [patients.pA1]
    assert list(patient_list_visible_to(user=world.users.police_a)) == [patients.pA1]
    api_key.refresh_from_db()
    assert api_key.last_used_at is not None


def test_keys_not_yet_collected_do_not_work(client, world, sec):
    requested = apikey_request(
        name="民政系统",
        organisation=world.org.civil_a,
        role=Role.CIVIL_AFFAIRS,
        custodian=world.users.civil,
        by=sec,
    )
    guess = f"{requested.prefix}.anything"
    assert client.get(API_URL, HTTP_AUTHORIZATION=f"Api-Key {guess}").status_code == 401
    apikey_approve(api_key=requested, by=world.users.admin)
    assert client.get(API_URL, HTTP_AUTHORIZATION=f"Api-Key {guess}").status_code == 401


def test_wrong_or_revoked_keys_are_refused_and_audited(client, world, sec):
    api_key, key = af.api_key(
        "民政系统", world.org.civil_a, Role.CIVIL_AFFAIRS, world.users.civil, by=sec
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


def test_keys_cannot_carry_admin_roles_and_only_the_security_admin_requests_them(
    world, sec, police_lead
):
    with pytest.raises(DomainError) as exc:
        apikey_request(
            name="x", organisation=world.org.bureau_a, role=Role.ADMIN, custodian=sec, by=sec
        )
    assert exc.value.message == ERR_API_ROLE
    for by in (world.users.admin, world.users.police_a):
        with pytest.raises(DomainError) as exc:
            apikey_request(
                name="x",
                organisation=world.org.pb_a,
                role=Role.POLICE,
                custodian=police_lead,
                by=by,
            )
        assert exc.value.message == ERR_NOT_ALLOWED


@pytest.mark.parametrize("who", ["sec", "admin", "doctor_a", "other_org", "service"])
def test_the_custodian_holds_the_key_role_in_the_key_organisation(world, sec, who):
    service, _key = af.api_key("旧系统", world.org.ps_a1, Role.POLICE, world.users.police_a)
    custodian = {
        "sec": sec,  # the requester themselves
        "admin": world.users.admin,
        "doctor_a": world.users.doctor_a,  # another role
        "other_org": world.users.police_b,  # police, but of another station
        "service": service.user,  # a service account
    }[who]
    with pytest.raises(DomainError) as exc:
        apikey_request(
            name="x", organisation=world.org.ps_a1, role=Role.POLICE, custodian=custodian, by=sec
        )
    assert exc.value.message == ERR_API_CUSTODIAN


def test_only_the_system_admin_approves_and_only_the_custodian_collects(world, sec, police_lead):
    requested = apikey_request(
        name="x", organisation=world.org.pb_a, role=Role.POLICE, custodian=police_lead, by=sec
    )
    for by in (sec, police_lead):
        with pytest.raises(DomainError) as exc:
            apikey_approve(api_key=requested, by=by)
        assert exc.value.message == ERR_NOT_ALLOWED
    with pytest.raises(DomainError) as exc:
        apikey_collect(api_key=requested, by=police_lead)  # not approved yet
    assert exc.value.message == ERR_API_STATUS
    apikey_approve(api_key=requested, by=world.users.admin)
    for by in (sec, world.users.admin, world.users.police_a):
        with pytest.raises(DomainError) as exc:
            apikey_collect(api_key=requested, by=by)
        assert exc.value.message == ERR_NOT_ALLOWED
    _key, key = apikey_collect(api_key=requested, by=police_lead)
    assert key.startswith(requested.prefix + ".")


def test_a_rejected_request_never_becomes_a_key(client, world, sec, police_lead):
    requested = apikey_request(
        name="x", organisation=world.org.pb_a, role=Role.POLICE, custodian=police_lead, by=sec
    )
    apikey_reject(api_key=requested, by=world.users.admin)
    with pytest.raises(DomainError):
        apikey_approve(api_key=requested, by=world.users.admin)
    with pytest.raises(DomainError):
        apikey_collect(api_key=requested, by=police_lead)
    af.login(client, police_lead)
    url = reverse("accounts:apikey-collect", args=[requested.pk])
    assert client.get(url).status_code == 404
    assert AuditEvent.objects.filter(action="admin.api_key_reject").exists()


def test_a_custodian_who_changed_role_cannot_collect(world, sec, police_lead):
    from accounts.services import staff_change

    requested = apikey_request(
        name="x", organisation=world.org.pb_a, role=Role.POLICE, custodian=police_lead, by=sec
    )
    apikey_approve(api_key=requested, by=world.users.admin)
    staff_change(user=police_lead, organisation=world.org.ps_a1, role=Role.POLICE, by=None)
    with pytest.raises(DomainError) as exc:
        apikey_collect(api_key=requested, by=police_lead)
    assert exc.value.message == ERR_API_CUSTODIAN


def test_revoke_asks_for_confirmation(client, world, sec):
    api_key, key = af.api_key(
        "残联系统", world.org.dpf_a, Role.DISABLED_FEDERATION, world.users.dpf, by=sec
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
    other, _key = af.api_key("C县系统", world.org.hc_c1, Role.TOWNSHIP_DOCTOR, world.users.doctor_c)
    for user in (sec, world.users.admin):
        af.login(client, user)
        assert "C县系统" not in client.get(KEYS_URL).content.decode()
    af.login(client, sec)
    assert client.get(reverse("accounts:apikey-revoke", args=[other.pk])).status_code == 404
    af.login(client, world.users.admin)
    assert client.get(reverse("accounts:apikey-approve", args=[other.pk])).status_code == 404


@pytest.mark.parametrize("persona", ["police_a", "doctor_a"])
def test_only_the_security_and_system_admins_open_the_key_page(client, world, persona):
    af.login(client, getattr(world.users, persona))
    assert client.get(KEYS_URL).status_code == 403


def test_the_system_admin_cannot_request_keys(client, world):
    af.login(client, world.users.admin)
    response = client.post(KEYS_URL, {"name": "x"})
    assert response.status_code == 403


@pytest.mark.parametrize("count", [1, 30])
def test_key_list_query_count_is_flat(
    client, world, sec, police_lead, count, django_assert_max_num_queries
):
    for i in range(count):
        apikey_request(
            name=f"key{i}",
            organisation=world.org.pb_a,
            role=Role.POLICE,
            custodian=police_lead,
            by=sec,
        )
    for user in (sec, world.users.admin):
        af.login(client, user)
        with django_assert_max_num_queries(12):
            page = client.get(KEYS_URL)
        assert len(page.context["rows"]) == count
