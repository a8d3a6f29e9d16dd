"""The settlement and reward API (API.md → settlements)."""

from datetime import date, timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from subsidies import rules
from subsidies.models import Episode, Settlement
from subsidies.tests import factories as sf

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(world):
    client = APIClient()
    client.force_authenticate(world.users.hospital)
    return client


def body(patient, **extra):
    today = timezone.localdate()
    return {
        "patient": str(patient.pk),
        "admission_date": (today - timedelta(days=20)).isoformat(),
        "discharge_date": (today - timedelta(days=1)).isoformat(),
        "total_cost": "10000.00",
        "in_scope_cost": "8000.00",
        **extra,
    }


def test_quote_answers_lines_and_patient_share_and_saves_nothing(api, patients, policies):
    response = api.post("/api/v1/settlements/quote/", body(patients.pA1), format="json")
    assert response.status_code == 200, response.content
    data = response.json()
    assert data["lines"][0] == {
        "payer": "basic_insurance",
        "payer_label": "基本医疗保险",
        "order": 1,
        "amount": "7200.00",
        "layers": [
            {
                "order": 1,
                "ratio": "90.00",
                "base": "8000.00",
                "eligible": "8000.00",
                "amount": "7200.00",
                "limited_by": "",
            }
        ],
    }
    assert data["patient_pays"] == "2000.00"
    assert {ln["payer"]: ln["amount"] for ln in data["lines"]}["finance_backstop"] == "800.00"
    assert data["policy"] == policies.settlement.pk
    assert not Settlement.objects.exists() and not Episode.objects.exists()
    assert response["Cache-Control"] == "no-store"


def test_save_creates_the_settlement(api, patients, policies):
    response = api.post(
        "/api/v1/settlements/", body(patients.pA1, case_number="HIS-1"), format="json"
    )
    assert response.status_code == 201, response.content
    data = response.json()
    assert data["number"].startswith("JS") and data["case_number"] == "HIS-1"
    assert data["patient_pays"] == "2000.00"
    assert sum(float(ln["amount"]) for ln in data["lines"]) + 2000 == 10000
    detail = api.get(f"/api/v1/settlements/{data['id']}/")
    assert detail.json()["lines"] == data["lines"]
    again = api.post("/api/v1/settlements/", body(patients.pA1), format="json")
    assert again.status_code == 400
    assert "已结算" in str(again.json())


@pytest.mark.parametrize(
    ("extra", "field", "message"),
    [
        ({"in_scope_cost": "10000.01"}, "in_scope_cost", rules.ERR_IN_SCOPE_EXCEEDS_TOTAL),
        (
            {"discharge_date": "2020-01-01", "admission_date": "2020-01-02"},
            "discharge_date",
            rules.ERR_DISCHARGE_BEFORE_ADMISSION,
        ),
    ],
)
def test_bad_bills_answer_400_naming_the_field(api, patients, policies, extra, field, message):
    for url in ("/api/v1/settlements/quote/", "/api/v1/settlements/"):
        response = api.post(url, body(patients.pA1, **extra), format="json")
        assert response.status_code == 400
        assert response.json()[field] == [str(message)]
    assert not Settlement.objects.exists() and not Episode.objects.exists()


def test_typed_input_errors(api, patients, policies):
    response = api.post(
        "/api/v1/settlements/quote/",
        {**body(patients.pA1, total_cost="-5", in_scope_cost="1.234"), "patient": "x"},
        format="json",
    )
    assert response.status_code == 400
    assert set(response.json()) == {"total_cost", "in_scope_cost", "patient"}


def test_a_patient_outside_scope_is_404(api, patients, policies):
    response = api.post("/api/v1/settlements/quote/", body(patients.pC1), format="json")
    assert response.status_code == 404


def test_anonymous_is_401(patients, policies):
    response = APIClient().post("/api/v1/settlements/quote/", body(patients.pA1), format="json")
    assert response.status_code == 401


def test_only_the_specialist_hospital_quotes(world, patients, policies):
    client = APIClient()
    client.force_authenticate(world.users.civil)
    response = client.post("/api/v1/settlements/quote/", body(patients.pA1), format="json")
    assert response.status_code == 403


def test_reward_awards_and_batches_for_the_departments_involved(world, eligible, gov_a1):
    u = world.users
    award = sf.award_through(
        eligible,
        applicant=u.doctor_a,
        reviewer=gov_a1,
        approver=u.civil,
        activate_on=date(2025, 1, 28),
    )
    from subsidies import services

    batch, _ = services.batch_draw(region=world.county_a, period_code="2025Q1")
    client = APIClient()
    client.force_authenticate(u.governance)
    data = client.get("/api/v1/reward-awards/", {"status": "active"}).json()
    assert [r["id"] for r in data["results"]] == [award.pk]
    detail = client.get(f"/api/v1/reward-awards/{award.pk}/").json()
    assert [e["step"] for e in detail["events"]] == [
        "applied",
        "township_approved",
        "county_approved",
        "activated",
    ]
    assert detail["events"][1]["by"] == "gov_a1"
    client.force_authenticate(u.finance)
    assert client.get("/api/v1/reward-awards/").status_code == 403
    batch_data = client.get(f"/api/v1/reward-batches/{batch.pk}/").json()
    assert batch_data["total"] == "600.00"
    assert batch_data["lines"][0]["months"] == ["2025-02", "2025-03"]


def test_lines_are_one_per_payer_with_the_layers_behind_them(api, world, patients):
    """A payer holding two layers that both apply answers one line (API.md)."""
    from decimal import Decimal

    from patients.models import Patient

    D = Decimal
    sf.settlement_policy(
        world.county_a,
        layers=[
            {"order": 1, "payer": "basic_insurance", "condition": "insured", "ratio": D("50")},
            {"order": 2, "payer": "finance_backstop", "condition": "high_risk", "ratio": D("50")},
            {"order": 3, "payer": "finance_backstop", "condition": "registered", "ratio": D("100")},
        ],
    )
    Patient.objects.filter(pk=patients.pA1.pk).update(risk_level=3)
    bill = body(patients.pA1, total_cost="1000.00", in_scope_cost="1000.00")
    quote = api.post("/api/v1/settlements/quote/", bill, format="json").json()
    assert [(ln["payer"], ln["amount"]) for ln in quote["lines"]] == [
        ("basic_insurance", "500.00"),
        ("finance_backstop", "500.00"),
    ]
    assert [layer["amount"] for layer in quote["lines"][1]["layers"]] == ["250.00", "250.00"]
    saved = api.post("/api/v1/settlements/", bill, format="json").json()
    assert saved["lines"] == quote["lines"]
    # the saved settlement keeps the per-layer detail
    assert Settlement.objects.get(pk=saved["id"]).lines.count() == 3


def test_finance_reads_settlements_without_the_patient(world, patients, policies):
    from django.utils import timezone

    from patients.models import Patient
    from subsidies import services

    Patient.objects.filter(pk=patients.pA1.pk).update(risk_level=3)
    s = services.settlement_record(
        patient_id=patients.pA1.pk,
        by=world.users.hospital,
        admission_date=timezone.localdate() - timedelta(days=10),
        discharge_date=timezone.localdate(),
        total_cost="1000.00",
        in_scope_cost="1000.00",
    )
    finance = APIClient()
    finance.force_authenticate(world.users.finance)
    listing = finance.get("/api/v1/settlements/").json()
    assert listing["count"] == 1
    row = listing["results"][0]
    assert "patient" not in row and str(patients.pA1.pk) not in str(row)
    detail = finance.get(f"/api/v1/settlements/{s.pk}/").json()
    assert "patient" not in detail and detail["number"] == s.number
    civil = APIClient()
    civil.force_authenticate(world.users.civil)
    assert civil.get(f"/api/v1/settlements/{s.pk}/").json()["patient"] == str(patients.pA1.pk)
