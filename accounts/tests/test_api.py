"""The accounts API: sign-in tokens (with django-axes lockout), regions and
organisations (API.md)."""

from __future__ import annotations

import pytest
from axes.models import AccessAttempt
from axes.utils import reset as axes_reset
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from accounts.api.views import ERR_CREDENTIALS, ERR_LOCKED
from accounts.models import Organisation, OrganisationKind, RegionLevel
from accounts.services import staff_deactivate
from accounts.tests import factories as af
from audit.models import AuditEvent

TOKEN_URL = "/api/v1/auth/token/"
REGIONS_URL = "/api/v1/regions/"
ORGANISATIONS_URL = "/api/v1/organisations/"
# token lookup + count + page; constant in the number of rows
LIST_QUERY_BUDGET = 4


@pytest.fixture(autouse=True)
def _axes_on(settings):
    """Lockout is under test here: make sure axes is on, and start and end
    every test with no recorded failures."""
    settings.AXES_ENABLED = True
    axes_reset()
    yield
    axes_reset()


def _token_client(user) -> APIClient:
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


def _sign_in(username: str, password: str):
    return APIClient().post(TOKEN_URL, {"username": username, "password": password}, format="json")


# --- tokens -----------------------------------------------------------------


@pytest.mark.django_db
def test_token_for_right_password_opens_the_api(world):
    response = _sign_in("doctor_a", af.PASSWORD)

    assert response.status_code == 200
    token = response.json()["token"]
    assert token == Token.objects.get(user=world.users.doctor_a).key
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get(REGIONS_URL).status_code == 200
    assert AuditEvent.objects.filter(action="auth.token", actor=world.users.doctor_a).exists()


@pytest.mark.django_db
def test_wrong_password_and_unknown_user_get_the_same_answer(world):
    wrong_password = _sign_in("doctor_a", "Wrong-Pass-2026!")
    unknown_user = _sign_in("nobody_here", "Wrong-Pass-2026!")

    assert wrong_password.status_code == unknown_user.status_code == 400
    assert wrong_password.json() == unknown_user.json() == {"non_field_errors": [ERR_CREDENTIALS]}
    assert not Token.objects.exists()


@pytest.mark.django_db
def test_inactive_account_gets_no_token(world):
    staff_deactivate(user=world.users.police_a, by=world.users.admin)

    response = _sign_in("police_a", af.PASSWORD)

    assert response.status_code == 400
    assert response.json() == {"non_field_errors": [ERR_CREDENTIALS]}
    assert not Token.objects.filter(user=world.users.police_a).exists()


@pytest.mark.django_db
def test_token_of_a_deactivated_account_stops_working(world):
    client = _token_client(world.users.police_a)
    assert client.get(REGIONS_URL).status_code == 200

    staff_deactivate(user=world.users.police_a, by=world.users.admin)

    assert client.get(REGIONS_URL).status_code == 401


@pytest.mark.django_db
def test_missing_fields_are_named(world):
    response = APIClient().post(TOKEN_URL, {}, format="json")

    assert response.status_code == 400
    assert set(response.json()) == {"username", "password"}


@pytest.mark.django_db
def test_five_failures_lock_the_account_even_for_the_right_password(settings, world):
    assert settings.AXES_FAILURE_LIMIT == 5
    statuses = [_sign_in("doctor_a", "Wrong-Pass-2026!").status_code for _ in range(5)]
    # the fifth failure reaches the limit: that answer already says "locked"
    assert statuses == [400, 400, 400, 400, 429]

    locked = _sign_in("doctor_a", af.PASSWORD)

    assert locked.status_code == 429
    assert locked.json() == {"detail": ERR_LOCKED}
    assert locked["Retry-After"] == str(30 * 60)
    assert not Token.objects.filter(user=world.users.doctor_a).exists()
    assert AccessAttempt.objects.filter(username="doctor_a").exists()
    # another account is not affected
    assert _sign_in("doctor_b", af.PASSWORD).status_code == 200


@pytest.mark.django_db
def test_unknown_usernames_lock_the_same_way(world):
    statuses = [_sign_in("nobody_here", "Wrong-Pass-2026!").status_code for _ in range(6)]

    assert statuses == [400, 400, 400, 400, 429, 429]


@pytest.mark.django_db
def test_success_clears_earlier_failures(world):
    for _ in range(4):
        assert _sign_in("doctor_a", "Wrong-Pass-2026!").status_code == 400
    assert _sign_in("doctor_a", af.PASSWORD).status_code == 200

    # the count starts again: four more failures do not lock
    statuses = [_sign_in("doctor_a", "Wrong-Pass-2026!").status_code for _ in range(4)]
    assert statuses == [400, 400, 400, 400]
    assert _sign_in("doctor_a", af.PASSWORD).status_code == 200


@pytest.mark.django_db
def test_with_axes_disabled_failures_never_lock(settings, world):
    settings.AXES_ENABLED = False

    statuses = [_sign_in("doctor_a", "Wrong-Pass-2026!").status_code for _ in range(6)]

    assert statuses == [400] * 6
    assert _sign_in("doctor_a", af.PASSWORD).status_code == 200


@pytest.mark.django_db
def test_token_answers_are_never_cached(world):
    assert _sign_in("doctor_a", af.PASSWORD)["Cache-Control"] == "no-store"
    assert _sign_in("doctor_a", "Wrong-Pass-2026!")["Cache-Control"] == "no-store"


# --- regions ----------------------------------------------------------------


@pytest.mark.django_db
def test_regions_list_fields_and_filters(world):
    client = _token_client(world.users.police_a)

    townships = client.get(REGIONS_URL, {"parent": "990102"}).json()

    assert townships["count"] == 2
    assert townships["results"][0] == {
        "code": "990102001",
        "name": "镇1",
        "level": "township",
        "parent": "990102",
        "population": 100000,
    }
    villages = client.get(REGIONS_URL, {"level": RegionLevel.VILLAGE}).json()
    assert villages["count"] == 6  # 2 + 2 in county A, 2 in county C
    assert {r["level"] for r in villages["results"]} == {"village"}
    province = client.get(f"{REGIONS_URL}990000/").json()
    assert province["parent"] is None


@pytest.mark.django_db
def test_regions_list_rejects_an_unknown_level(world):
    response = _token_client(world.users.police_a).get(REGIONS_URL, {"level": "galaxy"})

    assert response.status_code == 400
    assert "level" in response.json()


@pytest.mark.django_db
@pytest.mark.parametrize("rows", [1, 30])
def test_regions_list_query_count_is_constant(world, django_assert_max_num_queries, rows):
    county = world.county_a
    town = af.region("990102099", "新镇", RegionLevel.TOWNSHIP, county, 1000)
    for v in range(rows):
        af.region(f"990102099{v + 1:03d}", f"新村{v}", RegionLevel.VILLAGE, town, 10)
    client = _token_client(world.users.doctor_a)

    with django_assert_max_num_queries(LIST_QUERY_BUDGET):
        response = client.get(REGIONS_URL, {"parent": town.code, "page_size": 50})

    assert response.status_code == 200
    assert response.json()["count"] == rows


# --- organisations ------------------------------------------------------------


@pytest.mark.django_db
def test_organisations_list_fields_and_filters(world):
    client = _token_client(world.users.doctor_a)

    police = client.get(ORGANISATIONS_URL, {"department": "police"}).json()

    assert {o["name"] for o in police["results"]} == {"A1派出所", "A2派出所", "A公安局"}
    station = next(o for o in police["results"] if o["name"] == "A1派出所")
    assert station == {
        "id": world.org.ps_a1.pk,
        "name": "A1派出所",
        "department": "police",
        "kind": "police_station",
        "region": "990102001",
    }
    # region: the organisations inside it, at any level below
    in_a1 = client.get(ORGANISATIONS_URL, {"region": "990102001"}).json()
    assert {o["name"] for o in in_a1["results"]} == {"A1卫生院", "A1派出所", "A1综治办"}
    in_county_c = client.get(ORGANISATIONS_URL, {"region": "990103"}).json()
    assert {o["name"] for o in in_county_c["results"]} == {"C1卫生院"}


@pytest.mark.django_db
def test_organisations_list_of_an_unknown_region_is_empty(world):
    response = _token_client(world.users.doctor_a).get(ORGANISATIONS_URL, {"region": "123"})

    assert response.status_code == 200
    assert response.json()["count"] == 0


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["990000.5/", "x/"])
def test_a_malformed_region_code_is_a_json_404(world, path):
    response = _token_client(world.users.doctor_a).get(f"{REGIONS_URL}{path}")

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"


@pytest.mark.django_db
def test_inactive_organisations_are_not_listed(world):
    Organisation.objects.filter(pk=world.org.finance_a.pk).update(is_active=False)

    names = {
        o["name"]
        for o in _token_client(world.users.doctor_a)
        .get(ORGANISATIONS_URL, {"page_size": 100})
        .json()["results"]
    }

    assert "A财政局" not in names
    assert "A民政局" in names


@pytest.mark.django_db
@pytest.mark.parametrize("rows", [1, 30])
def test_organisations_list_query_count_is_constant(world, django_assert_max_num_queries, rows):
    town = af.region("990102099", "新镇", RegionLevel.TOWNSHIP, world.county_a, 1000)
    for n in range(rows):
        af.organisation(f"新机构{n}", OrganisationKind.REHAB_INSTITUTION, town)
    client = _token_client(world.users.doctor_a)

    with django_assert_max_num_queries(LIST_QUERY_BUDGET):
        response = client.get(ORGANISATIONS_URL, {"region": town.code, "page_size": 50})

    assert response.status_code == 200
    assert response.json()["count"] == rows


# --- who may read -------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("url", [REGIONS_URL, ORGANISATIONS_URL, f"{REGIONS_URL}990102/"])
def test_anonymous_gets_401(world, url):
    response = APIClient().get(url)

    assert response.status_code == 401
    assert response["Cache-Control"] == "no-store"


@pytest.mark.django_db
@pytest.mark.parametrize("persona", ["official", "admin", "finance", "police_b", "dpf"])
def test_every_signed_in_user_reads_regions_and_organisations(world, persona):
    client = _token_client(getattr(world.users, persona))

    for url in (REGIONS_URL, ORGANISATIONS_URL):
        response = client.get(url)
        assert response.status_code == 200
        assert response["Cache-Control"] == "no-store"


@pytest.mark.django_db
def test_an_account_without_role_still_reads_regions(world):
    user = get_user_model().objects.create_user("norole", password=af.PASSWORD)

    assert _token_client(user).get(REGIONS_URL).status_code == 200


@pytest.mark.django_db
def test_token_for_an_admin_role_needs_the_second_factor(world, settings):
    from accounts.tests.factories import PASSWORD, otp_code, otp_device
    from audit.models import AuditEvent

    client = APIClient()
    url = "/api/v1/auth/token/"
    admin = world.users.admin
    refused = client.post(url, {"username": admin.username, "password": PASSWORD}, format="json")
    assert refused.status_code == 400
    assert "otp" in refused.json()
    assert AuditEvent.objects.filter(action="auth.token_otp_failed", actor=admin).exists()
    device = otp_device(admin)
    ok = client.post(
        url,
        {"username": admin.username, "password": PASSWORD, "otp": otp_code(device)},
        format="json",
    )
    assert ok.status_code == 200 and ok.json()["token"]


@pytest.mark.django_db
def test_token_needs_the_second_factor_for_everyone_when_mfa_is_required(world, settings):
    from accounts.tests.factories import PASSWORD

    settings.MFA_REQUIRED = True
    response = APIClient().post(
        "/api/v1/auth/token/",
        {"username": world.users.doctor_a.username, "password": PASSWORD},
        format="json",
    )
    assert response.status_code == 400 and "otp" in response.json()
