"""``/api/v1/followups/`` and ``/api/v1/alerts/`` (API.md): field names,
codes, the computed classification and next due date, scope, idempotency,
optimistic locking, the alert lifecycle."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from audit.models import AuditEvent
from followups import rules
from followups.api.views import ERR_HEALTH_ONLY
from followups.models import FollowUp
from followups.services.alerts import ERR_NOTE_REQUIRED
from followups.tests.factories import completed_form, record
from patients.tests import factories as pf

pytestmark = pytest.mark.django_db

FOLLOWUPS = "/api/v1/followups/"
ALERTS = "/api/v1/alerts/"
# token, role, scope, care-team probe, count, page, audit (5): same at 1 and 30 rows
FOLLOWUP_LIST_BUDGET = 14
# token, organisation, role, scope, care-team probe, count, page, and the
# audit rows of the patients listed (one chain lock and one insert: +1 over
# the old budget's slack), the same at 1 and 30 rows
ALERT_LIST_BUDGET = 11


def api(user) -> APIClient:
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


def payload(patient, **changes) -> dict:
    form = completed_form(**changes)
    form["visit_date"] = form["visit_date"].isoformat()
    if isinstance(form.get("next_due_date"), type(timezone.localdate())):
        form["next_due_date"] = form["next_due_date"].isoformat()
    return {"patient": str(patient.pk), **form}


# --------------------------------------------------------------- follow-ups


def test_post_returns_the_computed_classification_and_next_due_date(world, patients):
    today = timezone.localdate()
    r = api(world.users.doctor_a).post(
        FOLLOWUPS, payload(patients.pA1, risk_level=3), format="json"
    )
    assert r.status_code == 201, r.json()
    body = r.json()
    assert body["classification"] == "unstable"
    assert body["next_due_date"] == (today + timedelta(days=14)).isoformat()
    assert body["patient"] == str(patients.pA1.pk)
    assert body["risk_level"] == 3 and body["mode"] == "home" and body["outcome"] == "completed"
    assert body["dangerous_behaviours"] == {
        "minor_trouble": 0,
        "trouble": 0,
        "disaster": 0,
        "other_harm": 0,
        "self_harm": 0,
        "suicide_attempt": 0,
    }
    assert body["medications"][0]["drug"] == "利培酮"
    assert r["ETag"] == '"1"'


@pytest.mark.parametrize(
    "changes, classification, days",
    [
        ({"risk_level": 0}, "stable", None),
        ({"risk_level": 2}, "basically_stable", 14),
        ({"insight": "absent"}, "unstable", 14),
        ({"symptoms": ["hallucination"]}, "basically_stable", 14),
        ({"social": "poor"}, "basically_stable", 14),
    ],
)
def test_classification_codes(world, patients, changes, classification, days):
    today = timezone.localdate()
    body = (
        api(world.users.doctor_a)
        .post(FOLLOWUPS, payload(patients.pA1, **changes), format="json")
        .json()
    )
    assert body["classification"] == classification
    expected = today + timedelta(days=days) if days else rules.add_months(today, 3)
    assert body["next_due_date"] == expected.isoformat()


def test_completed_without_the_clinical_fields_is_400_naming_them(world, patients):
    r = api(world.users.doctor_a).post(
        FOLLOWUPS,
        {
            "patient": str(patients.pA1.pk),
            "visit_date": timezone.localdate().isoformat(),
            "mode": "clinic",
        },
        format="json",
    )
    assert r.status_code == 400
    assert set(r.json()) == set(rules.COMPLETED_REQUIRED)


def test_not_reached_needs_only_date_and_mode(world, patients):
    r = api(world.users.doctor_a).post(
        FOLLOWUPS,
        {
            "patient": str(patients.pA1.pk),
            "visit_date": timezone.localdate().isoformat(),
            "mode": "phone",
            "outcome": "not_reached",
        },
        format="json",
    )
    assert r.status_code == 201
    assert r.json()["classification"] == ""


def test_later_due_date_is_400(world, patients):
    late = (timezone.localdate() + timedelta(days=120)).isoformat()
    r = api(world.users.doctor_a).post(
        FOLLOWUPS, {**payload(patients.pA1), "next_due_date": late}, format="json"
    )
    assert r.status_code == 400 and "next_due_date" in r.json()


def test_future_visit_is_400(world, patients):
    tomorrow = (timezone.localdate() + timedelta(days=1)).isoformat()
    r = api(world.users.doctor_a).post(
        FOLLOWUPS, {**payload(patients.pA1), "visit_date": tomorrow}, format="json"
    )
    assert r.status_code == 400
    assert r.json() == {"visit_date": [str(rules.ERR_FUTURE_VISIT)]}


def test_dates_before_the_patients_birth_are_400_naming_the_field(world):
    from datetime import date

    doc = world.users.doctor_a
    p = pf.patient(by=doc, village="990102001001", birth=date(1950, 3, 2))
    client = api(doc)
    r = client.post(FOLLOWUPS, {**payload(p), "visit_date": "1900-01-01"}, format="json")
    assert r.status_code == 400
    assert r.json() == {"visit_date": ["随访日期不能早于1950-01-01。"]}
    r = client.post(FOLLOWUPS, {**payload(p), "visit_date": "1950-03-01"}, format="json")
    assert r.json() == {"visit_date": ["随访日期不能早于患者的出生日期（1950-03-02）。"]}
    dead = {
        "patient": str(p.pk),
        "visit_date": timezone.localdate().isoformat(),
        "mode": "home",
        "outcome": "deceased",
        "death_date": "1800-01-01",
        "death_cause": "accident",
    }
    r = client.post(FOLLOWUPS, dead, format="json")
    assert r.status_code == 400 and r.json() == {"death_date": ["死亡日期不能早于1950-01-01。"]}
    r = client.post(FOLLOWUPS, {**dead, "death_date": "1950-01-31"}, format="json")
    assert r.json() == {"death_date": ["死亡日期不能早于患者的出生日期（1950-03-02）。"]}
    r = client.post(
        FOLLOWUPS,
        {**payload(p), "hospitalization": "past", "last_discharge_date": "1949-12-31"},
        format="json",
    )
    assert r.json() == {"last_discharge_date": ["末次出院时间不能早于1950-01-01。"]}
    assert not FollowUp.objects.exists()
    # a paper form from before registration is fine
    r = client.post(FOLLOWUPS, {**payload(p), "visit_date": "2020-05-01"}, format="json")
    assert r.status_code == 201


@pytest.mark.parametrize("weeks", [0, 1.5, 53])
def test_an_injection_interval_the_page_refuses_is_400(world, patients, weeks):
    meds = [{"drug": "棕榈酸帕利哌酮", "injection_interval_weeks": weeks, "injection_mg": 150}]
    r = api(world.users.doctor_a).post(
        FOLLOWUPS, payload(patients.pA1, medications=meds), format="json"
    )
    assert r.status_code == 400 and "medications" in r.json()


def test_idempotency_key_header_returns_the_first_row(world, patients):
    client = api(world.users.doctor_a)
    key = str(uuid.uuid4())
    first = client.post(FOLLOWUPS, payload(patients.pA1), format="json", HTTP_IDEMPOTENCY_KEY=key)
    again = client.post(FOLLOWUPS, payload(patients.pA1), format="json", HTTP_IDEMPOTENCY_KEY=key)
    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"]
    assert again["Idempotent-Replayed"] == "true"
    assert FollowUp.objects.count() == 1
    body_key = {**payload(patients.pA1), "idempotency_key": str(uuid.uuid4())}
    a = client.post(FOLLOWUPS, body_key, format="json").json()
    b = client.post(FOLLOWUPS, body_key, format="json").json()
    assert a["id"] == b["id"] and FollowUp.objects.count() == 2
    bad = client.post(FOLLOWUPS, payload(patients.pA1), format="json", HTTP_IDEMPOTENCY_KEY="x")
    assert bad.status_code == 400


def test_post_for_a_patient_out_of_scope_is_404(world, patients):
    r = api(world.users.doctor_a).post(FOLLOWUPS, payload(patients.pB1), format="json")
    assert r.status_code == 404
    assert not FollowUp.objects.exists()
    assert AuditEvent.objects.filter(
        action="access.denied", actor=world.users.doctor_a, object_id=str(patients.pB1.pk)
    ).exists()


def test_list_filter_patient_is_scoped(world, patients):
    record(by=world.users.doctor_b, patient=patients.pB1)
    mine = record(by=world.users.doctor_a, patient=patients.pA1)
    client = api(world.users.doctor_a)
    assert client.get(FOLLOWUPS, {"patient": str(patients.pB1.pk)}).json()["count"] == 0
    body = client.get(FOLLOWUPS, {"patient": str(patients.pA1.pk)}).json()
    assert [row["id"] for row in body["results"]] == [str(mine.pk)]
    assert set(body) == {"count", "next", "previous", "results"}
    assert client.get(f"{FOLLOWUPS}{mine.pk}/").status_code == 200
    other = FollowUp.objects.get(patient=patients.pB1)
    assert client.get(f"{FOLLOWUPS}{other.pk}/").status_code == 404


@pytest.mark.parametrize("persona", ["police_a", "governance", "civil", "dpf", "official", "admin"])
def test_follow_ups_are_health_only(world, patients, persona):
    client = api(getattr(world.users, persona))
    r = client.get(FOLLOWUPS)
    assert r.status_code == 403
    assert r.json()["detail"] == str(ERR_HEALTH_ONLY)
    assert client.post(FOLLOWUPS, payload(patients.pA1), format="json").status_code == 403


def test_anonymous_gets_401():
    assert APIClient().get(FOLLOWUPS).status_code == 401
    assert APIClient().get(ALERTS).status_code == 401


@pytest.mark.parametrize("rows", [1, 30])
def test_follow_up_list_query_count_is_constant(
    world, patients, django_assert_max_num_queries, rows
):
    for i in range(rows):
        record(by=world.users.doctor_a, patient=patients.pA1, days_ago=rows - i)
    client = api(world.users.doctor_a)
    with django_assert_max_num_queries(FOLLOWUP_LIST_BUDGET):
        r = client.get(FOLLOWUPS, {"page_size": 50})
    assert r.json()["count"] == rows


def test_patch_needs_if_match(world, patients):
    fu = record(by=world.users.doctor_a, patient=patients.pA1, risk_level=1)
    client = api(world.users.doctor_a)
    url = f"{FOLLOWUPS}{fu.pk}/"
    assert client.patch(url, {"risk_level": 2}, format="json").status_code == 428
    assert (
        client.patch(url, {"risk_level": 2}, format="json", HTTP_IF_MATCH='"9"').status_code == 412
    )
    r = client.patch(url, {"risk_level": 3}, format="json", HTTP_IF_MATCH='"1"')
    assert r.status_code == 200
    assert r.json()["classification"] == "unstable" and r["ETag"] == '"2"'
    outcome = client.patch(url, {"outcome": "lost"}, format="json", HTTP_IF_MATCH='"2"')
    assert outcome.status_code == 400


# --------------------------------------------------------------- alerts


def _risk_alert(world, patients, level=3):
    record(by=world.users.doctor_a, patient=patients.pA1, risk_level=level)


def test_police_see_the_alert_with_minimum_necessary_fields(world, patients):
    _risk_alert(world, patients)
    body = api(world.users.police_a).get(ALERTS).json()
    assert body["count"] == 1
    row = body["results"][0]
    assert row["kind"] == "risk" and row["status"] == "open" and row["risk_level"] == 3
    assert set(row["patient"]) == {
        "id",
        "name",
        "gender",
        "age",
        "region",
        "region_name",
        "address",
        "status",
        "risk_level",
        "classification",
        "next_followup_due",
        "guardian",
    }
    assert "diagnosis" not in str(row) and row["followup"] is None
    assert row["patient"]["guardian"]["phone"] == "138****0000"  # masked in lists
    detail = api(world.users.police_a).get(f"{ALERTS}{row['id']}/").json()
    assert detail["patient"]["guardian"]["phone"] == "13800000000"
    assert api(world.users.police_b).get(ALERTS).json()["count"] == 0
    assert api(world.users.police_b).get(f"{ALERTS}{row['id']}/").status_code == 404


def test_acknowledge_and_resolve(world, patients):
    _risk_alert(world, patients)
    client = api(world.users.police_a)
    alert_id = client.get(ALERTS).json()["results"][0]["id"]
    r = client.post(f"{ALERTS}{alert_id}/acknowledge/")
    assert r.status_code == 200
    assert r.json()["status"] == "acknowledged"
    assert r.json()["acknowledged_by"] == "police_a"
    r = client.post(f"{ALERTS}{alert_id}/resolve/", {"note": ""}, format="json")
    assert r.status_code == 400
    r = client.post(f"{ALERTS}{alert_id}/resolve/", {}, format="json")
    assert r.status_code == 400 and "note" in r.json()
    r = client.post(f"{ALERTS}{alert_id}/resolve/", {"note": "已走访"}, format="json")
    assert r.status_code == 200
    assert (r.json()["status"], r.json()["note"]) == ("resolved", "已走访")
    assert client.get(ALERTS, {"status": "resolved"}).json()["count"] == 1
    assert client.get(ALERTS, {"status": "open"}).json()["count"] == 0
    assert client.get(ALERTS, {"kind": "lost"}).json()["count"] == 0
    assert client.get(ALERTS, {"kind": "nonsense"}).status_code == 400
    other = api(world.users.police_b).post(f"{ALERTS}{alert_id}/acknowledge/")
    assert other.status_code == 404
    assert str(ERR_NOTE_REQUIRED)


@pytest.mark.parametrize("rows", [1, 30])
def test_alert_list_query_count_is_constant(world, patients, django_assert_max_num_queries, rows):
    for i in range(rows):
        p = pf.patient(by=world.users.doctor_a, village="990102001002", name=f"患者{i}")
        record(by=world.users.doctor_a, patient=p, risk_level=3 + i % 3)
    client = api(world.users.police_a)
    with django_assert_max_num_queries(ALERT_LIST_BUDGET):
        r = client.get(ALERTS, {"page_size": 50})
    assert r.json()["count"] == rows


def test_health_centre_sees_followup_id_of_its_alerts(world, patients):
    from followups.tests.factories import incident

    incident(by=world.users.police_a, patient=patients.pA1)
    row = api(world.users.doctor_a).get(ALERTS).json()["results"][0]
    assert row["kind"] == "incident"
    assert row["incident"]["kind"] == "trouble"
    assert row["patient"]["classification"] == ""


def test_a_malformed_id_is_404(world, patients):
    client = api(world.users.doctor_a)
    assert client.get(f"{FOLLOWUPS}not-a-uuid/").status_code == 404
    assert client.get(f"{FOLLOWUPS}{'-' * 36}/").status_code == 404
    assert api(world.users.police_a).post(f"{ALERTS}{'-' * 36}/acknowledge/").status_code == 404
