"""Every list page and list API at 1 and at 30 rows, within the same query budget."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from patients.services import patient_update
from patients.tests import factories as pf
from subsidies import rules, services
from subsidies.tests import factories as sf

pytestmark = pytest.mark.django_db

D = Decimal
ROWS = (1, 30)


def eligible_patients(world, n):
    u = world.users
    out = []
    for i in range(n):
        p = pf.patient(by=u.doctor_a, village="990102001001", name=f"甲{i:02d}")
        out.append(sf.make_eligible(p, doctor=u.doctor_a, police=u.police_a))
    return out


def applied_awards(world, n):
    return [
        services.award_apply(patient_id=p.pk, by=world.users.doctor_a, source="health_centre")
        for p in eligible_patients(world, n)
    ]


def active_awards(world, n, gov_a1):
    u = world.users
    return [
        sf.award_through(
            p,
            applicant=u.doctor_a,
            reviewer=gov_a1,
            approver=u.civil,
            activate_on=date(2025, 1, 28),
        )
        for p in eligible_patients(world, n)
    ]


def batches(world, n):
    period = rules.parse_period("2019Q1")
    out = []
    for _ in range(n):
        out.append(services.batch_draw(region=world.county_a, period_code=period.code)[0])
        period = rules.period_containing("quarterly", period.end + timedelta(days=1))
    return out


def settlements(world, patient, n):
    u = world.users
    patient_update(by=u.civil, pk=patient.pk, data={"poverty": "dibao"}, expected_version=None)
    day = timezone.localdate() - timedelta(days=6 * n)
    out = []
    for _ in range(n):
        out.append(
            services.settlement_record(
                patient_id=patient.pk,
                by=u.hospital,
                admission_date=day,
                discharge_date=day + timedelta(days=3),
                total_cost=D("1000.00"),
                in_scope_cost=D("900.00"),
            )
        )
        day += timedelta(days=6)
    return out


def in_hospital(world, n):
    u = world.users
    for i in range(n):
        p = pf.patient(by=u.doctor_a, village="990102001002", name=f"住{i:02d}")
        services.episode_admit(
            patient_id=p.pk, by=u.hospital, case_number=f"Z{i}", admission_date=timezone.localdate()
        )


def _get(client, user, url, params=None):
    sf.login(client, user)
    response = client.get(url, params or {})
    assert response.status_code == 200
    return response


BUDGET = 18  # the same for 1 and 30 rows (measured: 8–14)


@pytest.mark.parametrize("n", ROWS)
def test_award_pages(client, world, policies, django_assert_max_num_queries, n):
    applied_awards(world, n)
    u = world.users
    for user, name in (
        (u.governance, "award-list"),
        (u.governance, "home"),
        (u.doctor_a, "award-candidates"),
        (u.civil, "award-list"),
    ):
        sf.login(client, user)
        url = reverse(f"subsidies:{name}")
        with django_assert_max_num_queries(BUDGET):
            response = client.get(url)
        assert response.status_code == 200
    body = client.get(reverse("subsidies:award-list")).content.decode()
    assert body.count("subsidies/awards/") >= min(n, 20)


@pytest.mark.parametrize("n", ROWS)
def test_batch_pages(client, world, policies, gov_a1, django_assert_max_num_queries, n):
    active_awards(world, n, gov_a1)
    batch = batches(world, 25)[-1]  # 2025Q1 with n lines
    assert batch.period == "2025Q1" and batch.line_count == n
    batches_list = reverse("subsidies:batch-list")
    detail = reverse("subsidies:batch-detail", args=[batch.pk])
    for user in (world.users.governance, world.users.finance):
        for url in (batches_list, detail):
            sf.login(client, user)
            with django_assert_max_num_queries(BUDGET):
                response = client.get(url)
            assert response.status_code == 200


@pytest.mark.parametrize("n", ROWS)
def test_batch_list_with_n_batches(client, world, policies, django_assert_max_num_queries, n):
    batches(world, n)
    sf.login(client, world.users.finance)
    with django_assert_max_num_queries(BUDGET):
        response = client.get(reverse("subsidies:batch-list"))
    assert response.content.decode().count("/subsidies/batches/") >= min(n, 20)


@pytest.mark.parametrize("n", ROWS)
def test_settlement_pages(client, world, patients, policies, django_assert_max_num_queries, n):
    settlements(world, patients.pA1, n)
    in_hospital(world, n)
    u = world.users
    month = timezone.localdate().strftime("%Y-%m")
    cases = [
        (u.hospital, "settlement-list", {"tab": "in_hospital"}),
        (u.hospital, "settlement-list", {"tab": "discharged"}),
        (u.hospital, "settlement-list", {"tab": "settlements"}),
        (u.civil, "settlement-list", {}),
        (u.finance, "settlement-list", {}),
        (u.hospital, "statement", {"payer": "basic_insurance", "month": month}),
        (u.civil, "statement", {"payer": "civil_affairs", "month": month}),
        (u.hospital, "episode-new", {"q": "住"}),  # the search POSTs
    ]
    for user, name, params in cases:
        sf.login(client, user)
        send = client.post if "q" in params else client.get
        with django_assert_max_num_queries(BUDGET):
            response = send(reverse(f"subsidies:{name}"), params)
        assert response.status_code == 200, (name, params)
    sf.login(client, u.civil)
    body = client.get(reverse("subsidies:statement"), {"payer": "civil_affairs", "month": month})
    assert body.content.decode().count("/subsidies/settlements/") >= min(n, 20)


API_BUDGET = 8  # measured: 4–6


@pytest.mark.parametrize("n", ROWS)
def test_api_lists(world, patients, policies, gov_a1, django_assert_max_num_queries, n):
    settlements(world, patients.pA1, n)
    awards = active_awards(world, n, gov_a1)
    batches(world, n)
    u = world.users
    api = APIClient()
    for user, url, expected in (
        (u.hospital, "/api/v1/settlements/", n),
        (u.civil, "/api/v1/settlements/", n),
        (u.governance, "/api/v1/reward-awards/", len(awards)),
        (u.finance, "/api/v1/reward-batches/", n),
    ):
        api.force_authenticate(user)
        with django_assert_max_num_queries(API_BUDGET):
            response = api.get(url, {"page_size": 30})
        assert response.status_code == 200, response.content
        assert response.json()["count"] == expected
