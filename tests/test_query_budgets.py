"""Query counts of the pages and endpoints ``make bench`` measures, where
the owning app's tests do not pin them already (DESIGN.md: the number of
queries per page is constant in the number of rows shown; STYLE.md §5).

Already pinned by their owners, so not repeated here: the patient list
page as a township doctor and the patient list API per persona
(patients/tests), the overdue page, the alert inbox page and the
follow-up and alert list APIs (followups/tests), the dashboards
(reports/tests). Pinned here, each at 1 and 30 of what could make it grow:

- the patient list page and search of a county-wide account, with 1 or 30
  patients and a county of 2 or 30 villages;
- search by ID number (page and API);
- the patient detail page (every tab) and API, with 1 or 30 follow-ups,
  changes in the history and assistant guardians;
- the follow-up save (``POST /api/v1/followups/``), with 1 or 30 earlier
  follow-ups and open alerts;
- the indicator API, with 2 or 30 townships in the county.
"""

from __future__ import annotations

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import RegionLevel
from accounts.tests import factories as af
from followups.tests.factories import completed_form, record
from patients.services import assistant_guardians_set, patient_update
from patients.tests import factories as pf

pytestmark = pytest.mark.django_db

# Budgets (the counts measured at 1 row, which 30 rows must not exceed).
COUNTY_LIST_PAGE_BUDGET = 23
ID_SEARCH_PAGE_BUDGET = 22
ID_SEARCH_API_BUDGET = 13
DETAIL_PAGE_BUDGET = 20
DETAIL_API_BUDGET = 11
# the visit below ends the run of high-risk visits: it also closes the run's
# risk alert (lock, one UPDATE and one history INSERT, status refresh)
FOLLOWUP_SAVE_BUDGET = 21
INDICATOR_API_BUDGET = 12

PAGE_TABS = ("identity", "supplement", "guardians", "care-team", "history")


def page_client(user) -> Client:
    c = Client()
    c.force_login(user)
    return c


def api_client(user) -> APIClient:
    c = APIClient()
    c.force_authenticate(user)
    return c


def more_villages(county, n: int) -> None:
    """Grow county A by ``n`` villages (spread over new townships)."""
    for i in range(n):
        code = f"{county.code}{10 + i // 10:03d}"
        town = af.region(code, f"新镇{i // 10}", RegionLevel.TOWNSHIP, county, 10000)
        af.region(f"{code}{i % 10 + 1:03d}", f"新村{i}", RegionLevel.VILLAGE, town, 1000)


@pytest.mark.parametrize("rows", [1, 30])
def test_county_list_page_and_search_queries_do_not_grow(
    world, rows, django_assert_max_num_queries
):
    if rows > 1:
        more_villages(world.county_a, 26)  # 30 villages in county A
    for i in range(rows):
        village = "990102001001" if i % 2 else "990102002002"
        pf.patient(by=world.users.hospital, village=village, name=f"县级{i:02d}")
    c = page_client(world.users.hospital)
    with django_assert_max_num_queries(COUNTY_LIST_PAGE_BUDGET):
        response = c.get("/patients/")
    assert response.status_code == 200
    assert len(response.context["rows"]) == min(rows, 20)
    with django_assert_max_num_queries(COUNTY_LIST_PAGE_BUDGET):
        response = c.get("/patients/", {"q": "县级"})
    assert len(response.context["rows"]) == min(rows, 20)


@pytest.mark.parametrize("rows", [1, 30])
def test_search_by_id_number_queries_do_not_grow(world, rows, django_assert_max_num_queries):
    made = [
        pf.patient(by=world.users.doctor_a, village="990102001001", name=f"证号{i:02d}")
        for i in range(rows)
    ]
    target = made[-1]
    page = page_client(world.users.hospital)
    with django_assert_max_num_queries(ID_SEARCH_PAGE_BUDGET):
        response = page.get("/patients/", {"q": target.id_number})
    assert [row["patient"].pk for row in response.context["rows"]] == [target.pk]
    api = api_client(world.users.hospital)
    with django_assert_max_num_queries(ID_SEARCH_API_BUDGET):
        response = api.get("/api/v1/patients/", {"search": target.id_number})
    assert [r["id"] for r in response.json()["results"]] == [str(target.pk)]


@pytest.mark.parametrize("rows", [1, 30])
def test_patient_detail_queries_do_not_grow_with_its_history(
    world, patients, rows, django_assert_max_num_queries
):
    doctor, p = world.users.doctor_a, patients.pA1
    for i in range(rows):
        record(by=doctor, patient=p, days_ago=rows - i)
        patient_update(
            by=doctor, pk=p.pk, data={"address": f"测试地址{i}号"}, expected_version=None
        )
    p.refresh_from_db()
    assistant_guardians_set(
        patient=p,
        rows=[{"name": f"协助{i}", "relation": "邻居"} for i in range(min(rows, 3))],
        by=doctor,
    )
    c = page_client(doctor)
    for tab in PAGE_TABS:
        with django_assert_max_num_queries(DETAIL_PAGE_BUDGET):
            response = c.get(f"/patients/{p.pk}/", {"tab": tab})
        assert response.status_code == 200
    with django_assert_max_num_queries(DETAIL_API_BUDGET):
        response = api_client(doctor).get(f"/api/v1/patients/{p.pk}/")
    assert response.status_code == 200


@pytest.mark.parametrize("rows", [1, 30])
def test_follow_up_save_queries_do_not_grow_with_the_patient_s_history(
    world, patients, rows, django_assert_max_num_queries
):
    doctor, p = world.users.doctor_a, patients.pA1
    for i in range(rows):
        # every earlier visit high risk: each left an alert in two inboxes
        record(by=doctor, patient=p, days_ago=2 * rows - 2 * i, risk_level=3, insight="partial")
    body = {
        **completed_form(visit_date=timezone.localdate()),
        "patient": str(p.pk),
        "visit_date": timezone.localdate().isoformat(),
    }
    with django_assert_max_num_queries(FOLLOWUP_SAVE_BUDGET):
        response = api_client(doctor).post("/api/v1/followups/", body, format="json")
    assert response.status_code == 201, response.content


@pytest.mark.parametrize("rows", [2, 30])
def test_indicator_api_queries_do_not_grow_with_townships(
    world, patients, rows, django_assert_max_num_queries
):
    if rows > 2:
        more_villages(world.county_a, (rows - 2) * 10)
    today = timezone.localdate()
    period = f"{today.year}Q{(today.month - 1) // 3 + 1}"
    c = api_client(world.users.official)
    query = {"region": "990102", "period": period}
    c.get("/api/v1/reports/indicators/", query)  # warm the process (content types, snapshots)
    with django_assert_max_num_queries(INDICATOR_API_BUDGET):
        response = c.get("/api/v1/reports/indicators/", query)
    assert response.status_code == 200, response.content
