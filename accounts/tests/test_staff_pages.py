"""Account management by the system admin (issue 2 item 10; SECURITY.md G4, G12)."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.http import HttpRequest
from django.urls import reverse

from accounts.models import AccountRequest, StaffProfile
from accounts.roles import Role, role_of
from accounts.services import ERR_ROLE_DEPARTMENT, ERR_SELF, account_request_approve
from accounts.tests import factories as af
from audit.models import AuditEvent

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

STAFF_URL = reverse("accounts:staff-list")
CREATE_URL = reverse("accounts:staff-create")
NEW_PASSWORD = "Neue-Kennung-2026"


@pytest.fixture
def sec(world):
    return af.staff("sec_a", Role.SECURITY_ADMIN, world.org.bureau_a)


def approve_latest(sec) -> str:
    """The security admin authorises the latest request; the second half."""
    _req, half = account_request_approve(req=AccountRequest.objects.latest("id"), by=sec)
    return half


def detail_url(user, name="accounts:staff-detail"):
    return reverse(name, args=[user.pk])


def test_admin_home_is_the_staff_list_with_organisation_role_and_last_login(client, world):
    af.login(client, world.users.admin)
    home = client.get("/")
    assert home.status_code == 302 and home.url == STAFF_URL
    page = client.get(STAFF_URL)
    assert page.status_code == 200
    html = page.content.decode()
    assert "doctor_a" in html and "A1卫生院" in html and "乡镇（社区）医生" in html
    assert "police_a" in html and "公安民警" in html
    # never logged in yet, the admin just did
    assert "从未" in html
    assert "no-store" in page["Cache-Control"]


def test_staff_list_is_limited_to_the_admins_county(client, world):
    af.login(client, world.users.admin)
    html = client.get(STAFF_URL).content.decode()
    assert "doctor_c" not in html
    assert client.get(detail_url(world.users.doctor_c)).status_code == 404


@pytest.mark.parametrize("extra", [0, 29])
def test_staff_list_query_count_does_not_grow_with_rows(
    client, world, extra, django_assert_max_num_queries
):
    for i in range(extra):
        af.staff(f"extra{i:02d}", Role.TOWNSHIP_DOCTOR, world.org.hc_a1)
    af.login(client, world.users.admin)
    with django_assert_max_num_queries(14):
        page = client.get(STAFF_URL, {"q": "extra" if extra else "doctor_a"})
    assert page.status_code == 200
    assert len(page.context["rows"]) == (extra or 1)


@pytest.mark.parametrize("persona", ["doctor_a", "police_a", "official", "civil"])
def test_other_roles_get_403_and_the_denial_is_audited(client, world, persona):
    user = getattr(world.users, persona)
    af.login(client, user)
    assert client.get(STAFF_URL).status_code == 403
    assert client.get(CREATE_URL).status_code == 403
    row = AuditEvent.objects.filter(action="access.denied", actor=user).latest("id")
    assert row.object_id == "accounts:staff-create"


def test_admin_creates_an_account_recorded_with_who_did_it(client, world, sec):
    admin = world.users.admin
    af.login(client, admin)
    response = client.post(
        CREATE_URL,
        {
            "username": "newdoc",
            "display_name": "新医生",
            "organisation": world.org.hc_a2.pk,
            "role": Role.TOWNSHIP_DOCTOR,
        },
    )
    # a request: its first password half is shown once, no account exists yet
    assert response.status_code == 200
    first_half = response.context["half"]
    assert first_half in response.content.decode() and len(first_half) == 8
    assert not get_user_model().objects.filter(username="newdoc").exists()
    second_half = approve_latest(sec)
    user = get_user_model().objects.get(username="newdoc")
    assert role_of(user) == Role.TOWNSHIP_DOCTOR and user.is_active
    assert user.check_password(first_half + second_half)
    assert user.staff.organisation == world.org.hc_a2
    assert user.staff.must_change_password
    history = user.staff.history.latest("history_date")
    assert history.history_user == admin and history.history_change_reason == "staff.created"
    event = AuditEvent.objects.get(action="admin.staff_create", object_id=str(user.pk))
    assert event.actor == sec and event.detail["role"] == Role.TOWNSHIP_DOCTOR
    assert event.detail["requested_by"] == admin.pk
    page = client.get(detail_url(user))
    assert "新医生" in page.content.decode() and "admin.staff_create" in page.content.decode()
    # the change log names the change, not its code
    history_rows = page.content.decode().split("变更记录")[1].split("审计记录")[0]
    assert "创建账号" in history_rows and "staff.created" not in history_rows
    client.cookies["django_language"] = "en"
    english = client.get(detail_url(user)).content.decode()
    assert "Account created" in english


def test_create_refuses_a_role_of_another_department(client, world):
    af.login(client, world.users.admin)
    response = client.post(
        CREATE_URL,
        {
            "username": "wrongrole",
            "display_name": "x",
            "organisation": world.org.hc_a1.pk,
            "role": Role.POLICE,
        },
    )
    assert response.status_code == 200
    assert str(ERR_ROLE_DEPARTMENT) in response.context["form"].errors["role"]
    assert not AccountRequest.objects.filter(username="wrongrole").exists()


def test_create_refuses_an_organisation_of_another_county(client, world):
    af.login(client, world.users.admin)
    response = client.post(
        CREATE_URL,
        {
            "username": "elsewhere",
            "display_name": "x",
            "organisation": world.org.hc_c1.pk,
            "role": Role.TOWNSHIP_DOCTOR,
        },
    )
    assert "organisation" in response.context["form"].errors
    assert not AccountRequest.objects.filter(username="elsewhere").exists()


def test_create_refuses_a_username_already_taken_or_requested(client, world):
    af.login(client, world.users.admin)
    data = {
        "display_name": "x",
        "organisation": world.org.hc_a1.pk,
        "role": Role.TOWNSHIP_DOCTOR,
    }
    taken = client.post(CREATE_URL, {**data, "username": "doctor_a"})
    assert "username" in taken.context["form"].errors
    assert client.post(CREATE_URL, {**data, "username": "twice"}).status_code == 200
    again = client.post(CREATE_URL, {**data, "username": "twice"})
    assert "username" in again.context["form"].errors
    assert AccountRequest.objects.filter(username="twice").count() == 1


def test_change_role_and_organisation_is_recorded_and_ends_sessions(client, world, patients, sec):
    admin, target = world.users.admin, world.users.doctor_b
    from django.test import Client

    target_client = af.login(Client(), target)
    assert target_client.get(reverse("accounts:password-change")).status_code == 200
    af.login(client, admin)
    response = client.post(
        detail_url(target, "accounts:staff-change"),
        {"organisation": world.org.hc_a1.pk, "role": Role.TOWNSHIP_DOCTOR},
    )
    assert response.status_code == 302
    # pending: nothing changed, the session goes on, the page says so
    target.refresh_from_db()
    assert target.staff.organisation == world.org.hc_a2
    assert target_client.get(reverse("accounts:password-change")).status_code == 200
    assert 'id="pending-request"' in client.get(response.url).content.decode()
    assert approve_latest(sec) == ""
    target.refresh_from_db()
    target.__dict__.pop("_role_cache", None)
    assert target.staff.organisation == world.org.hc_a1
    event = AuditEvent.objects.get(action="admin.staff_change", object_id=str(target.pk))
    assert event.actor == sec and event.detail["previous"]["organisation"] == world.org.hc_a2.pk
    assert event.detail["requested_by"] == admin.pk
    assert target.staff.history.latest("history_date").history_user == admin
    # the new scope applies at once, the old session is over
    from patients.selectors import patient_list_visible_to

    assert list(patient_list_visible_to(user=target)) == [patients.pA1]
    response = target_client.get(reverse("accounts:password-change"))
    assert response.status_code == 302 and response.url.startswith(reverse("accounts:login"))


def test_deactivation_asks_for_confirmation_then_ends_the_session(client, world):
    admin, target = world.users.admin, world.users.police_b
    from django.test import Client

    target_client = af.login(Client(), target)
    af.login(client, admin)
    url = detail_url(target, "accounts:staff-deactivate")
    confirm = client.get(url)
    assert confirm.status_code == 200 and "确认停用" in confirm.content.decode()
    target.refresh_from_db()
    assert target.is_active
    assert client.post(url).status_code == 302
    target.refresh_from_db()
    assert not target.is_active
    assert AuditEvent.objects.filter(action="admin.staff_deactivate", actor=admin).exists()
    assert target.staff.history.latest("history_date").history_change_reason == "staff.deactivated"
    response = target_client.get(reverse("accounts:password-change"))
    assert response.status_code == 302
    # and the password no longer opens it
    request = HttpRequest()
    assert not client.login(request=request, username="police_b", password=af.PASSWORD)
    # reactivation
    assert client.post(detail_url(target, "accounts:staff-reactivate")).status_code == 302
    target.refresh_from_db()
    assert target.is_active
    assert AuditEvent.objects.filter(action="admin.staff_reactivate").exists()


def test_password_reset_makes_the_user_choose_a_new_one_at_next_login(client, world, sec):
    admin, target = world.users.admin, world.users.doctor_b
    af.login(client, admin)
    url = detail_url(target, "accounts:staff-password-reset")
    confirm = client.get(url)
    assert confirm.status_code == 200 and "确认申请" in confirm.content.decode()
    response = client.post(url)
    assert response.status_code == 200
    first_half = response.context["half"]
    target.refresh_from_db()
    assert target.check_password(af.PASSWORD)  # unchanged until authorised
    assert AuditEvent.objects.filter(action="admin.account_request", actor=admin).exists()
    temporary = first_half + approve_latest(sec)
    event = AuditEvent.objects.get(action="admin.password_reset")
    assert event.actor == sec and event.object_id == str(target.pk)
    from django.test import Client

    user_client = Client()
    login = user_client.post(
        reverse("accounts:login"), {"username": "doctor_b", "password": temporary}
    )
    assert login.status_code == 302
    page = user_client.get("/", follow=True)
    assert page.redirect_chain[-1][0].startswith(reverse("accounts:password-change"))
    changed = user_client.post(
        reverse("accounts:password-change"),
        {"old_password": temporary, "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )
    assert changed.status_code == 302
    profile = StaffProfile.objects.get(user=target)
    assert not profile.must_change_password
    # still signed in after changing one's own password
    assert user_client.get(reverse("accounts:breakglass-request")).status_code == 200


def test_admin_cannot_change_their_own_account(client, world):
    admin = world.users.admin
    af.login(client, admin)
    response = client.post(
        detail_url(admin, "accounts:staff-change"),
        {"organisation": world.org.bureau_a.pk, "role": Role.TOWNSHIP_DOCTOR},
    )
    assert response.status_code == 302
    assert str(ERR_SELF) in client.get(response.url).content.decode()
    admin.__dict__.pop("_role_cache", None)
    assert role_of(admin) == Role.ADMIN


def test_security_admin_reads_accounts_but_does_not_manage_them(client, world, sec):
    af.login(client, sec)
    assert client.get(STAFF_URL).status_code == 200
    assert client.get(CREATE_URL).status_code == 403
    page = client.get(detail_url(world.users.doctor_a))
    assert page.status_code == 200 and not page.context["can_manage"]
    response = client.post(
        detail_url(world.users.doctor_a, "accounts:staff-deactivate"),
    )
    assert response.status_code == 403


def test_export_permission_is_granted_per_account(client, world):
    from accounts.exports import export_allowed

    target = world.users.official
    assert not export_allowed(target)
    af.login(client, world.users.admin)
    client.post(detail_url(target, "accounts:staff-export"), {"allowed": "1"})
    target = get_user_model().objects.get(pk=target.pk)
    assert export_allowed(target)
    assert AuditEvent.objects.filter(action="admin.export_grant", object_id=str(target.pk)).exists()
    client.post(detail_url(target, "accounts:staff-export"), {"allowed": "0"})
    target = get_user_model().objects.get(pk=target.pk)
    assert not export_allowed(target)


def test_admin_does_not_read_patient_records_by_being_admin(client, world, patients):
    from django.http import Http404

    from patients.selectors import patient_get_for_user, patient_list_visible_to

    admin = world.users.admin
    assert not patient_list_visible_to(user=admin).exists()
    with pytest.raises(Http404):
        patient_get_for_user(user=admin, pk=patients.pA1.pk)
    af.login(client, admin)
    assert client.get(reverse("audit:patient-access", args=[patients.pA1.pk])).status_code == 404
    # not even with Django's superuser flag or every group of the county
    admin.is_superuser = True
    admin.save(update_fields=["is_superuser"])
    admin = get_user_model().objects.get(pk=admin.pk)
    assert not patient_list_visible_to(user=admin).exists()


def test_organisation_choices_list_only_the_admins_county(client, world):
    af.login(client, world.users.admin)
    form = client.get(CREATE_URL).context["form"]
    names = {o.name for o in form.fields["organisation"].queryset}
    assert "A1卫生院" in names and "C1卫生院" not in names
