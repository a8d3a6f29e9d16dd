"""Separation of duties (三员, SECURITY.md G4): one role per account, and the
system, security and audit admins read no patient record."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.db.models import Count, Q
from django.http import Http404, HttpRequest

from accounts.roles import ROLE_INFO, Role, role_of
from accounts.services import (
    ERR_NEEDS_AUTHORISATION,
    ERR_NOT_ALLOWED,
    ERR_ONE_ROLE,
    account_request_approve,
    account_request_create,
    role_group,
    staff_create,
    staff_role_add,
)
from accounts.tests import factories as af
from core.errors import DomainError
from patients.selectors import patient_get_for_user, patient_list_visible_to

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


@pytest.fixture
def three(world):
    return {
        Role.ADMIN: world.users.admin,
        Role.SECURITY_ADMIN: af.staff("sec_a", Role.SECURITY_ADMIN, world.org.bureau_a),
        Role.AUDIT_ADMIN: af.staff("audit_a", Role.AUDIT_ADMIN, world.org.bureau_a),
    }


def test_none_of_the_three_admins_reads_a_patient(three, patients):
    for user in three.values():
        assert not patient_list_visible_to(user=user).exists()
        for patient in (patients.pA1, patients.pB1, patients.pC1):
            with pytest.raises(Http404):
                patient_get_for_user(user=user, pk=patient.pk)


def test_a_second_role_is_refused_by_the_service(three):
    for role, user in three.items():
        other = Role.AUDIT_ADMIN if role != Role.AUDIT_ADMIN else Role.SECURITY_ADMIN
        with pytest.raises(DomainError) as exc:
            staff_role_add(user=user, role=other, by=None)
        assert exc.value.message == ERR_ONE_ROLE
        user.__dict__.pop("_role_cache", None)
        assert role_of(user) == role


def test_a_second_role_group_is_refused_whoever_adds_it(three):
    admin = three[Role.ADMIN]
    audit_group, sec_group = role_group(Role.AUDIT_ADMIN), role_group(Role.SECURITY_ADMIN)
    for attempt in (
        lambda: admin.groups.add(audit_group),
        lambda: sec_group.user_set.add(admin),
        lambda: admin.groups.add(audit_group, sec_group),
    ):
        with pytest.raises(DomainError), transaction.atomic():
            attempt()
    assert [g.name for g in admin.groups.filter(name__in=list(ROLE_INFO))] == [Role.ADMIN]


def test_a_second_scope_group_is_refused(world):
    doctor = world.users.doctor_a
    other_scope = Group.objects.get(name__startswith=f"scope:{world.org.hc_a2.pk}:")
    with pytest.raises(DomainError), transaction.atomic():
        doctor.groups.add(other_scope)


def test_an_account_without_a_role_can_be_given_one(world):
    user = world.users.civil
    user.groups.clear()
    user.__dict__.pop("_role_cache", None)
    # the system admin asks for it (account_request_change), never directly
    with pytest.raises(DomainError) as exc, transaction.atomic():
        staff_role_add(user=user, role=Role.CIVIL_AFFAIRS, by=world.users.admin)
    assert exc.value.message == ERR_NEEDS_AUTHORISATION
    staff_role_add(user=user, role=Role.CIVIL_AFFAIRS, by=None)
    user.__dict__.pop("_role_cache", None)
    assert role_of(user) == Role.CIVIL_AFFAIRS


def test_no_account_holds_two_roles(three):
    doubled = (
        get_user_model()
        .objects.annotate(roles=Count("groups", filter=Q(groups__name__in=list(ROLE_INFO))))
        .filter(roles__gt=1)
    )
    assert not doubled.exists()


def test_each_admin_does_only_their_own_job(three, world):
    sec, audit = three[Role.SECURITY_ADMIN], three[Role.AUDIT_ADMIN]
    for user in (sec, audit):
        with pytest.raises(DomainError) as exc:
            account_request_create(
                username="sneaky",
                organisation=world.org.hc_a1,
                role=Role.TOWNSHIP_DOCTOR,
                by=user,
            )
        assert exc.value.message == ERR_NOT_ALLOWED
        with pytest.raises(DomainError) as exc:
            staff_create(
                username="sneaky",
                password=af.PASSWORD,
                organisation=world.org.hc_a1,
                role=Role.TOWNSHIP_DOCTOR,
                by=user,
                validate=False,
            )
        assert exc.value.message == ERR_NOT_ALLOWED


def test_django_admin_user_form_refuses_two_roles(three):
    from accounts.admin import OneRoleUserChangeForm

    admin = three[Role.ADMIN]
    data = {
        "username": admin.username,
        "date_joined_0": "2026-01-01",
        "date_joined_1": "00:00:00",
        "groups": [role_group(Role.ADMIN).pk, role_group(Role.AUDIT_ADMIN).pk],
    }
    form = OneRoleUserChangeForm(data, instance=admin)
    assert not form.is_valid()
    assert str(ERR_ONE_ROLE) in form.errors["groups"]


# --- no 三员 account alone obtains patient reads, by any path (G4) -------------

THREE = (Role.ADMIN, Role.SECURITY_ADMIN, Role.AUDIT_ADMIN)


def _refused(call) -> str:
    with pytest.raises(DomainError) as exc, transaction.atomic():
        call()
    return exc.value.message


@pytest.mark.parametrize("role", THREE)
def test_no_三员_alone_gets_a_working_api_key(three, world, patients, role):
    """A key reads patients only once the security admin requested it, the
    system admin approved it and its custodian — a person who reads those
    patients anyway — collected it; no 三员 can be the custodian, and the
    requester and approver never see the secret."""
    from accounts.models import ApiKey, ApiKeyStatus
    from accounts.services import (
        ERR_API_CUSTODIAN,
        apikey_approve,
        apikey_collect,
        apikey_request,
    )

    me = three[role]
    for custodian in three.values():  # no 三员 can hold a key, not even a police one
        message = _refused(
            lambda c=custodian: apikey_request(
                name="x", organisation=world.org.hc_a1, role=Role.TOWNSHIP_DOCTOR,
                custodian=c, by=three[Role.SECURITY_ADMIN],
            )
        )  # fmt: skip
        assert message == ERR_API_CUSTODIAN
    requested = apikey_request(
        name="医院系统",
        organisation=world.org.hc_a1,
        role=Role.TOWNSHIP_DOCTOR,
        custodian=world.users.doctor_a,
        by=three[Role.SECURITY_ADMIN],
    )
    assert isinstance(requested, ApiKey)  # a request, no secret in it
    if role != Role.SECURITY_ADMIN:
        assert _refused(
            lambda: apikey_request(
                name="y", organisation=world.org.hc_a1, role=Role.TOWNSHIP_DOCTOR,
                custodian=world.users.doctor_a, by=me,
            )
        ) == ERR_NOT_ALLOWED  # fmt: skip
    if role != Role.ADMIN:
        assert _refused(lambda: apikey_approve(api_key=requested, by=me)) == ERR_NOT_ALLOWED
    approved = apikey_approve(api_key=requested, by=three[Role.ADMIN])
    assert isinstance(approved, ApiKey) and approved.key_hash == ""
    assert _refused(lambda: apikey_collect(api_key=approved, by=me)) == ERR_NOT_ALLOWED
    assert not ApiKey.objects.filter(status=ApiKeyStatus.ACTIVE).exists()
    # the custodian collects it: the key reads exactly the custodian's patients
    api_key, _key = apikey_collect(api_key=approved, by=world.users.doctor_a)
    assert set(patient_list_visible_to(user=api_key.user)) <= set(
        patient_list_visible_to(user=world.users.doctor_a)
    )


@pytest.mark.parametrize("role", THREE)
def test_no_三员_changes_their_own_role_or_grants(three, world, role):
    from accounts.services import (
        ERR_SELF,
        account_request_change,
        account_request_password_reset,
        breakglass_request,
        staff_change,
        staff_reset_mfa,
        staff_set_export,
        staff_set_password,
    )

    me = three[role]
    for target_role in (Role.TOWNSHIP_DOCTOR, Role.HOSPITAL_DOCTOR, Role.POLICE):
        org = world.org.ps_a1 if target_role == Role.POLICE else world.org.hc_a1
        assert _refused(
            lambda r=target_role, o=org: staff_change(user=me, organisation=o, role=r, by=me)
        ) in (ERR_NEEDS_AUTHORISATION, ERR_NOT_ALLOWED)
        assert _refused(
            lambda r=target_role, o=org: account_request_change(
                user=me, organisation=o, role=r, by=me
            )
        ) in (ERR_SELF, ERR_NOT_ALLOWED)
    assert _refused(lambda: account_request_password_reset(user=me, by=me)) in (
        ERR_SELF,
        ERR_NOT_ALLOWED,
    )
    assert _refused(lambda: staff_role_add(user=me, role=Role.TOWNSHIP_DOCTOR, by=me)) in (
        ERR_ONE_ROLE,
        ERR_NOT_ALLOWED,
    )
    with pytest.raises(DomainError), transaction.atomic():  # the group guard
        me.groups.add(role_group(Role.TOWNSHIP_DOCTOR))
    assert _refused(lambda: staff_set_export(user=me, allowed=True, by=me)) in (
        ERR_SELF,
        ERR_NOT_ALLOWED,
    )
    assert _refused(lambda: staff_reset_mfa(user=me, by=me)) in (ERR_SELF, ERR_NOT_ALLOWED)
    assert _refused(
        lambda: staff_set_password(user=me, password="Temp-Pass-2026!x", by=me, temporary=True)
    ) in (ERR_SELF, ERR_NOT_ALLOWED)
    patients_before = patient_list_visible_to(user=me).count()
    with pytest.raises(DomainError), transaction.atomic():
        breakglass_request(
            by=me, id_type="resident_id", id_number="x", reason="急诊需要查看既往病史"
        )
    assert role_of(get_user_model().objects.get(pk=me.pk)) == role
    assert patients_before == 0


@pytest.mark.parametrize("role", THREE)
def test_no_三员_reads_patients_through_the_api_or_an_export_grant(
    client, three, world, patients, role
):
    from rest_framework.authtoken.models import Token

    from accounts.exports import export_allowed
    from accounts.services import staff_set_export

    me = three[role]
    token, _ = Token.objects.get_or_create(user=me)
    response = client.get("/api/v1/patients/", HTTP_AUTHORIZATION=f"Token {token.key}")
    assert response.status_code in (200, 403)
    if response.status_code == 200:
        assert response.json()["count"] == 0
    detail = client.get(
        f"/api/v1/patients/{patients.pA1.pk}/", HTTP_AUTHORIZATION=f"Token {token.key}"
    )
    assert detail.status_code in (403, 404)
    if role != Role.ADMIN:  # another system admin grants export: still no export
        staff_set_export(user=me, allowed=True, by=None)
        assert not export_allowed(get_user_model().objects.get(pk=me.pk))


def test_the_system_admin_edits_no_account_in_django_admin(client, three, world):
    admin = three[Role.ADMIN]
    af.login(client, admin)
    assert client.get(f"/admin/auth/user/{admin.pk}/change/").status_code == 403
    assert client.get("/admin/auth/group/").status_code == 403


def test_the_system_admin_cannot_sign_in_as_a_health_account_they_created(
    client, three, world, patients
):
    """Two-person rule (docs/security.md → 三员): the system admin only asks
    for the account; it exists once a security admin authorises it, and its
    initial password is two halves, one shown to each of them, so neither
    alone can sign in with it (and the person must change it at once)."""
    admin, sec = three[Role.ADMIN], three[Role.SECURITY_ADMIN]
    User = get_user_model()
    with pytest.raises(DomainError) as exc, transaction.atomic():
        staff_create(
            username="new_doctor",
            password="Temp-Pass-2026!x",
            organisation=world.org.hc_a1,
            role=Role.TOWNSHIP_DOCTOR,
            by=admin,
            must_change_password=True,
        )
    assert exc.value.message == ERR_NEEDS_AUTHORISATION
    req, admin_half = account_request_create(
        username="new_doctor",
        organisation=world.org.hc_a1,
        role=Role.TOWNSHIP_DOCTOR,
        by=admin,
    )
    # pending: there is no account to sign in to, with any password
    assert not User.objects.filter(username="new_doctor").exists()
    assert not client.login(request=HttpRequest(), username="new_doctor", password=admin_half)
    _req, sec_half = account_request_approve(req=req, by=sec)
    doctor = User.objects.get(username="new_doctor")
    assert doctor.is_active and patient_list_visible_to(user=doctor).exists()
    # what the system admin knows, alone or with a guess at the rest, opens nothing
    for attempt in (admin_half + admin_half, "Temp-Pass-2026!x", sec_half):
        assert not doctor.check_password(attempt)
    assert not client.login(request=HttpRequest(), username="new_doctor", password=admin_half)
    # the person, given both halves, signs in and must choose a password first
    assert client.login(
        request=HttpRequest(), username="new_doctor", password=admin_half + sec_half
    )
    assert doctor.staff.must_change_password
