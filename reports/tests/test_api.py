"""``GET /api/v1/reports/indicators/?region=&period=`` (API.md)."""

from __future__ import annotations

from datetime import date

import pytest
from django.utils import timezone

from accounts.tests import factories as af
from audit.models import AuditEvent
from reports.rules import (
    ERR_NOT_COMPUTED,
    ERR_PERIOD_FORMAT,
    ERR_PERIOD_FUTURE,
    INDICATORS,
    Period,
)

pytestmark = pytest.mark.django_db

URL = "/api/v1/reports/indicators/"


def test_indicators_of_a_region_and_quarter_by_key(client, county):
    af.login(client, county.world.users.official)
    response = client.get(URL, {"region": "990102", "period": "2025Q2"})
    assert response.status_code == 200
    data = response.json()
    assert data["region"] == "990102" and data["period"] == "2025Q2"
    assert data["statistics_date"] == "2025-06-30"
    assert set(data["indicators"]) == {i.key for i in INDICATORS}
    rate = data["indicators"]["management_rate"]
    assert (rate["value"], rate["numerator"], rate["denominator"]) == (66.67, 8, 12)
    assert rate["unit"] == "percent"
    assert data["indicators"]["registered"]["value"] == 12
    assert data["indicators"]["overdue"]["value"] == 1
    assert data["indicators"]["reward_coverage"]["available"] is False
    assert response["Cache-Control"] == "no-store"


def test_defaults_are_the_callers_region_and_the_current_quarter(client, world):
    af.login(client, world.users.doctor_a)
    data = client.get(URL).json()
    assert data["region"] == "990102001"
    assert data["period"] == Period.containing(timezone.localdate()).code


def test_a_region_outside_the_scope_is_404_and_audited(client, world):
    af.login(client, world.users.official)
    assert client.get(URL, {"region": "990103", "period": "2025Q2"}).status_code == 404
    assert AuditEvent.objects.filter(
        action="access.denied", object_type="region", object_id="990103"
    ).exists()


@pytest.mark.parametrize("persona", ["police_a", "admin"])
def test_roles_without_aggregates_get_404(client, world, persona):
    af.login(client, getattr(world.users, persona))
    assert client.get(URL, {"region": "990102"}).status_code == 404


def test_an_invalid_period_names_the_field(client, world):
    af.login(client, world.users.official)
    response = client.get(URL, {"period": "2025-2"})
    assert response.status_code == 400
    assert response.json()["period"] == [str(ERR_PERIOD_FORMAT)]
    future = client.get(URL, {"period": "2099Q1"})
    assert future.status_code == 400
    assert future.json()["period"] == [str(ERR_PERIOD_FUTURE)]


def test_a_period_before_the_first_data_is_refused(client, county):
    af.login(client, county.world.users.official)
    response = client.get(URL, {"period": "2000Q1"})
    assert response.status_code == 400
    assert "2019年第2季度" in response.json()["period"][0]
    assert client.get(URL, {"period": "2019Q2"}).status_code == 200


def test_a_province_is_read_from_snapshots_and_never_computed_live(client, county):
    from accounts.models import OrganisationKind
    from accounts.roles import Role
    from reports import services

    province = county.world.county_a.parent.parent
    org = af.organisation("省卫健委", OrganisationKind.HEALTH_BUREAU, province)
    af.login(client, af.staff("official_p", Role.OFFICIAL, org))
    response = client.get(URL, {"region": "990000", "period": "2025Q2"})
    assert response.status_code == 400
    assert response.json()["period"] == [str(ERR_NOT_COMPUTED)]
    services.snapshots_nightly(today=date(2025, 8, 15))
    data = client.get(URL, {"region": "990000", "period": "2025Q2"}).json()
    assert data["source"] == "snapshot" and data["indicators"]["registered"]["value"] == 13


def test_anonymous_callers_are_refused(client, world):
    assert client.get(URL).status_code in (401, 403)


def test_schema_documents_the_endpoint(client, world):
    af.login(client, world.users.official)
    schema = client.get("/api/schema/", {"format": "json"})
    assert schema.status_code == 200
    assert URL in schema.json()["paths"]
