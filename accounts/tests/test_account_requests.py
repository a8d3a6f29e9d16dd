"""The two-person rule of account management (SECURITY.md G4): the system
admin asks, a security admin authorises or rejects; nothing takes effect
before, no one decides their own request, and every step is audited."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.contrib.auth.password_validation import validate_password
from django.db import transaction
from django.http import HttpRequest
from django.test import Client
from django.urls import reverse

from accounts.models import AccountRequest, AccountRequestStatus
from accounts.roles import Role, role_of
from accounts.services import (
    ERR_NOT_ALLOWED,
    ERR_ORGANISATION_SCOPE,
    ERR_REJECT_REASON,
    ERR_REQUEST_OWN,
    ERR_REQUEST_PENDING,
    ERR_REQUEST_STATUS,
    ERR_SELF,
    account_request_approve,
    account_request_change,
    account_request_create,
    account_request_password_reset,
    account_request_reject,
    staff_change,
)
from accounts.tests import factories as af
from audit.models import AuditEvent
from core.errors import DomainError
from patients.selectors import patient_list_visible_to

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

LIST_URL = reverse("accounts:account-request-list")
User = get_user_model()


@pytest.fixture
def sec(world):
    return af.staff("sec_a", Role.SECURITY_ADMIN, world.org.bureau_a)


def refused(call) -> str:
    with pytest.raises(DomainError) as exc, transaction.atomic():
        call()
    return exc.value.message


def new_doctor(world, username="new_doctor"):
    return account_request_create(
        username=username,
        organisation=world.org.hc_a1,
        role=Role.TOWNSHIP_DOCTOR,
        display_name="新医生",
        by=world.users.admin,
    )


def sign_in(username: str, password: str) -> bool:
    return Client().login(request=HttpRequest(), username=username, password=password)


def test_a_pending_creation_cannot_sign_in(world):
    req, half = new_doctor(world)
    assert req.status == AccountRequestStatus.PENDING
    assert not User.objects.filter(username="new_doctor").exists()
    assert not sign_in("new_doctor", half)
    # the half is kept encrypted until the decision, never in clear
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SELECT secret FROM accounts_accountrequest WHERE id = %s", [req.pk])
        stored = cur.fetchone()[0]
    assert stored and half not in stored


def test_approval_activates_the_account_with_a_two_half_password(world, sec, patients):
    req, first = new_doctor(world)
    req, second = account_request_approve(req=req, by=sec)
    user = User.objects.get(username="new_doctor")
    assert req.status == AccountRequestStatus.APPROVED and req.user == user
    assert req.decided_by == sec and req.secret == ""
    assert AccountRequest.objects.get(pk=req.pk).secret == ""
    assert user.is_active and role_of(user) == Role.TOWNSHIP_DOCTOR
    assert user.staff.organisation == world.org.hc_a1 and user.staff.must_change_password
    assert first != second and len(first + second) == 16
    validate_password(first + second)  # the rules hold for the made password
    assert not user.check_password(first) and not user.check_password(second)
    assert sign_in("new_doctor", first + second)
    assert list(patient_list_visible_to(user=user)) == [patients.pA1]
    # the person is sent to choose their own password before anything else
    client = Client()
    client.post(reverse("accounts:login"), {"username": "new_doctor", "password": first + second})
    page = client.get("/", follow=True)
    assert page.redirect_chain[-1][0].startswith(reverse("accounts:password-change"))


def test_rejection_leaves_nothing_and_needs_a_reason(world, sec):
    req, half = new_doctor(world)
    assert refused(lambda: account_request_reject(req=req, by=sec, reason="  ")) == (
        ERR_REJECT_REASON
    )
    req = account_request_reject(req=req, by=sec, reason="用户名与实名不符")
    assert req.status == AccountRequestStatus.REJECTED and req.reason == "用户名与实名不符"
    assert AccountRequest.objects.get(pk=req.pk).secret == ""
    assert not User.objects.filter(username="new_doctor").exists()
    assert not sign_in("new_doctor", half)
    # decided once: neither approval nor another rejection later
    assert refused(lambda: account_request_approve(req=req, by=sec)) == ERR_REQUEST_STATUS
    assert refused(lambda: account_request_reject(req=req, by=sec, reason="再次")) == (
        ERR_REQUEST_STATUS
    )
    # the username is free again for a corrected request
    new_doctor(world)


def test_only_a_security_admin_decides_and_never_their_own_request(world, sec):
    admin = world.users.admin
    audit = af.staff("audit_a", Role.AUDIT_ADMIN, world.org.bureau_a)
    req, _half = new_doctor(world)
    for user in (admin, audit, world.users.doctor_a):
        assert refused(lambda u=user: account_request_approve(req=req, by=u)) == ERR_NOT_ALLOWED
        assert (
            refused(lambda u=user: account_request_reject(req=req, by=u, reason="x"))
            == ERR_NOT_ALLOWED
        )
    # the requester, later made a security admin, still cannot decide it
    staff_change(
        user=admin, organisation=admin.staff.organisation, role=Role.SECURITY_ADMIN, by=None
    )
    admin = User.objects.get(pk=admin.pk)
    assert refused(lambda: account_request_approve(req=req, by=admin)) == ERR_REQUEST_OWN
    assert refused(lambda: account_request_reject(req=req, by=admin, reason="x")) == ERR_REQUEST_OWN
    assert not User.objects.filter(username="new_doctor").exists()


def test_a_security_admin_cannot_authorise_a_request_about_themselves(world, sec):
    req, _half = account_request_password_reset(user=sec, by=world.users.admin)
    assert refused(lambda: account_request_approve(req=req, by=sec)) == ERR_SELF
    other = af.staff("sec_b", Role.SECURITY_ADMIN, world.org.bureau_a)
    account_request_approve(req=req, by=other)


def test_a_security_admin_of_another_county_cannot_decide(world):
    from accounts.models import OrganisationKind

    bureau_c = af.organisation("C卫健局", OrganisationKind.HEALTH_BUREAU, world.county_c)
    sec_c = af.staff("sec_c", Role.SECURITY_ADMIN, bureau_c)
    req, _half = new_doctor(world)
    assert refused(lambda: account_request_approve(req=req, by=sec_c)) == ERR_ORGANISATION_SCOPE


def test_a_role_change_is_pending_until_approved_then_ends_sessions(world, sec, patients):
    target = world.users.doctor_b
    client = af.login(Client(), target)
    req = account_request_change(
        user=target, organisation=world.org.hc_a1, role=Role.TOWNSHIP_DOCTOR, by=world.users.admin
    )
    target = User.objects.get(pk=target.pk)
    assert target.staff.organisation == world.org.hc_a2
    assert list(patient_list_visible_to(user=target)) == [patients.pB1]
    assert client.get(reverse("accounts:password-change")).status_code == 200
    # one open request per account
    assert (
        refused(lambda: account_request_password_reset(user=target, by=world.users.admin))
        == ERR_REQUEST_PENDING
    )
    req, half = account_request_approve(req=req, by=sec)
    assert half == ""
    target = User.objects.get(pk=target.pk)
    assert target.staff.organisation == world.org.hc_a1
    assert list(patient_list_visible_to(user=target)) == [patients.pA1]
    response = client.get(reverse("accounts:password-change"))
    assert response.status_code == 302 and response.url.startswith(reverse("accounts:login"))


def test_a_password_reset_is_set_only_when_authorised(world, sec):
    target = world.users.police_a
    req, first = account_request_password_reset(user=target, by=world.users.admin)
    target = User.objects.get(pk=target.pk)
    assert target.check_password(af.PASSWORD) and not target.staff.must_change_password
    _req, second = account_request_approve(req=req, by=sec)
    target = User.objects.get(pk=target.pk)
    assert not target.check_password(af.PASSWORD)
    assert target.check_password(first + second) and target.staff.must_change_password


def test_every_request_and_decision_is_audited(world, sec):
    admin = world.users.admin
    created, _ = new_doctor(world)
    rejected, _ = new_doctor(world, "other_doctor")
    account_request_approve(req=created, by=sec)
    account_request_reject(req=rejected, by=sec, reason="重复申请")
    rows = AuditEvent.objects.filter(object_type="account_request")
    asked = rows.filter(action="admin.account_request", actor=admin)
    assert {r.object_id for r in asked} == {str(created.pk), str(rejected.pk)}
    approved = rows.get(action="security.account_request_approve")
    assert approved.actor == sec and approved.object_id == str(created.pk)
    assert approved.detail["kind"] == "create"
    assert rows.get(action="security.account_request_reject").object_id == str(rejected.pk)
    assert AuditEvent.objects.filter(action="admin.staff_create", actor=sec).exists()
    # no password half ever reaches the audit table
    for row in AuditEvent.objects.all():
        assert "secret" not in row.detail


# --- pages ------------------------------------------------------------------------


def test_the_queue_lets_the_security_admin_decide_by_post(client, world, sec):
    create, first = new_doctor(world)
    change = account_request_change(
        user=world.users.police_a,
        organisation=world.org.ps_a2,
        role=Role.POLICE,
        by=world.users.admin,
    )
    af.login(client, sec)
    page = client.get(LIST_URL)
    html = page.content.decode()
    assert page.status_code == 200 and "new_doctor" in html and "police_a" in html
    approve = reverse("accounts:account-request-approve", args=[create.pk])
    assert approve in html
    confirm = client.get(approve)
    assert confirm.status_code == 200 and "确认授权" in confirm.content.decode()
    assert not User.objects.filter(username="new_doctor").exists()  # GET changes nothing
    response = client.post(approve)
    assert response.status_code == 200
    second = response.context["half"]
    assert second in response.content.decode() and first not in response.content.decode()
    assert "no-store" in response["Cache-Control"]  # shown once, never cached
    assert User.objects.get(username="new_doctor").check_password(first + second)
    reject = reverse("accounts:account-request-reject", args=[change.pk])
    assert client.post(reject, {"reason": ""}).status_code == 200
    assert AccountRequest.objects.get(pk=change.pk).is_pending
    assert client.post(reject, {"reason": "调动尚未发文"}).status_code == 302
    assert AccountRequest.objects.get(pk=change.pk).status == AccountRequestStatus.REJECTED


def test_decisions_need_the_csrf_token(world, sec):
    req, _half = new_doctor(world)
    client = af.login(Client(enforce_csrf_checks=True), sec)
    url = reverse("accounts:account-request-approve", args=[req.pk])
    assert client.post(url).status_code == 403
    assert AccountRequest.objects.get(pk=req.pk).is_pending


def test_the_system_admin_follows_the_status_of_their_requests_in_both_languages(
    client, world, sec
):
    req, _half = new_doctor(world)
    account_request_reject(req=req, by=sec, reason="用户名与实名不符")
    new_doctor(world, "second_doctor")
    af.login(client, world.users.admin)
    html = client.get(LIST_URL).content.decode()
    assert "已驳回" in html and "用户名与实名不符" in html and "待授权" in html
    # the system admin sees no decision buttons
    assert "/approve/" not in html and "/reject/" not in html
    assert client.get(reverse("accounts:account-request-approve", args=[req.pk])).status_code == 403
    client.cookies["django_language"] = "en"
    english = client.get(LIST_URL).content.decode()
    assert "Rejected" in english and "Pending authorisation" in english
    assert "Account requests" in english


def test_django_admin_user_pages_stay_closed_even_with_model_permissions(client, world):
    admin = world.users.admin
    admin.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="auth", codename__in=["add_user", "change_user", "view_user"]
        )
    )
    admin = User.objects.get(pk=admin.pk)
    assert admin.has_perm("auth.add_user")
    af.login(client, admin)
    assert client.get("/admin/auth/user/add/").status_code == 403
    assert client.get(f"/admin/auth/user/{world.users.doctor_a.pk}/change/").status_code == 403
    assert client.get("/admin/auth/user/").status_code == 403
