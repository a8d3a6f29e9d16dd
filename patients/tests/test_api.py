"""The patient API (API.md → patients): scope, field sets, filters, audit,
registration errors, optimistic locking. The full persona × operation matrix
is in tests/test_permission_matrix_patients.py."""

from __future__ import annotations

import threading
from datetime import date, timedelta

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from audit.models import AuditEvent
from core.api.exceptions import PreconditionFailed, PreconditionRequired
from patients import rules
from patients.api.filters import ERR_FILTER_NOT_ALLOWED
from patients.api.views import ERR_CANNOT_CHANGE, ERR_CANNOT_REGISTER, ERR_NO_PATIENT_ACCESS
from patients.models import Patient
from patients.services import (
    ERR_DUPLICATE,
    ERR_NOT_ALLOWED,
    ERR_REGION_LEVEL,
    ERR_REGION_SCOPE,
    ERR_STALE,
    care_team_add,
)
from patients.tests import factories as pf

LIST_URL = "/api/v1/patients/"
# token + role + scope (content type, regions) + care-team probe + region
# filter lookup + count + page + 2 prefetches + audit (savepoint, lock, last
# hash, insert, release): the same for 1 and 30 rows
LIST_QUERY_BUDGET = 15


def detail_url(patient) -> str:
    return f"{LIST_URL}{patient.pk}/"


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user=user)
    return client


def token_api(user) -> APIClient:
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


def if_match(patient) -> dict:
    patient.refresh_from_db()
    return {"HTTP_IF_MATCH": f'"{patient.version}"'}


def set_latest_followup(patient, **fields) -> None:
    # The latest-follow-up columns belong to the followups services; the
    # patient API only reads them, so tests set them directly.
    Patient.objects.filter(pk=patient.pk).update(**fields)


def new_patient_payload(village="990102001002", **extra) -> dict:
    birth = date(1975, 3, 9)
    return {
        "name": "新登记",
        "gender": "female",
        "id_number": rules.make_resident_id("990102", birth, 124, male=False),
        "birth_date": birth.isoformat(),
        "region": village,
        "address": "新村路8号",
        "diagnosis": "bipolar",
        **extra,
    }


# --- list --------------------------------------------------------------------


@pytest.mark.django_db
def test_list_shows_only_patients_in_scope_and_is_audited(world, patients):
    response = api(world.users.doctor_a).get(LIST_URL)

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"count", "next", "previous", "results"}
    assert [p["id"] for p in body["results"]] == [str(patients.pA1.pk)]
    event = AuditEvent.objects.filter(action="patient.search").latest("id")
    assert event.actor_id == world.users.doctor_a.pk
    assert event.detail == {"results": 1}


@pytest.mark.django_db
def test_search_finds_by_name_or_id_number_and_audits_only_a_hash(world, patients):
    client = api(world.users.hospital)

    by_name = client.get(LIST_URL, {"search": "乙一"}).json()
    by_number = client.get(LIST_URL, {"search": patients.pA1.id_number.lower()}).json()

    assert [p["id"] for p in by_name["results"]] == [str(patients.pB1.pk)]
    assert [p["id"] for p in by_number["results"]] == [str(patients.pA1.pk)]
    for event in AuditEvent.objects.filter(action="patient.search"):
        assert "乙一" not in str(event.detail)
        assert patients.pA1.id_number not in str(event.detail).upper()
        assert set(event.detail) == {"term_hash", "results"}


@pytest.mark.django_db
def test_search_outside_scope_finds_nothing(world, patients):
    # SECURITY.md A2
    response = api(world.users.doctor_a).get(LIST_URL, {"search": patients.pB1.name})

    assert response.json()["count"] == 0
    assert AuditEvent.objects.filter(action="patient.search", actor=world.users.doctor_a).exists()


@pytest.mark.django_db
def test_region_filter_takes_any_level(world, patients):
    client = api(world.users.governance)

    def ids(code):
        return {p["id"] for p in client.get(LIST_URL, {"region": code}).json()["results"]}

    assert ids("990102") == {str(patients.pA1.pk), str(patients.pB1.pk)}
    assert ids("990102002") == {str(patients.pB1.pk)}
    assert ids("990102002001") == {str(patients.pB1.pk)}
    assert ids("990102002002") == set()
    # a region outside the caller's scope filters to nothing, it does not widen
    assert ids("990103") == set()


@pytest.mark.django_db
def test_unknown_region_code_finds_nobody(world, patients):
    response = api(world.users.governance).get(LIST_URL, {"region": "990199"})

    assert response.status_code == 200
    assert response.json()["count"] == 0


@pytest.mark.django_db
def test_status_risk_and_overdue_filters(world, patients):
    today = timezone.localdate()
    set_latest_followup(patients.pA1, risk_level=4, next_followup_due=today - timedelta(days=3))
    set_latest_followup(patients.pB1, risk_level=1, next_followup_due=today + timedelta(days=9))
    client = api(world.users.hospital)

    def ids(**params):
        return {p["id"] for p in client.get(LIST_URL, params).json()["results"]}

    assert ids(risk_level__gte=3) == {str(patients.pA1.pk)}
    assert ids(risk_level__gte=1) == {str(patients.pA1.pk), str(patients.pB1.pk)}
    assert ids(overdue="true") == {str(patients.pA1.pk)}
    assert ids(overdue="false") == {str(patients.pB1.pk)}
    assert ids(status="active") == {str(patients.pA1.pk), str(patients.pB1.pk)}
    assert ids(status="lost") == set()
    assert ids(diagnosis="schizophrenia") == {str(patients.pA1.pk), str(patients.pB1.pk)}
    assert ids(diagnosis="bipolar") == set()
    row = next(p for p in client.get(LIST_URL).json()["results"] if p["id"] == str(patients.pA1.pk))
    assert row["overdue"] is True
    assert row["risk_level"] == 4


@pytest.mark.django_db
def test_a_lost_patient_past_due_is_not_overdue(world, patients):
    today = timezone.localdate()
    set_latest_followup(patients.pA1, status="lost", next_followup_due=today - timedelta(days=3))

    client = api(world.users.doctor_a)

    assert client.get(LIST_URL, {"overdue": "true"}).json()["count"] == 0
    assert client.get(LIST_URL, {"overdue": "false"}).json()["count"] == 1


@pytest.mark.django_db
def test_police_cannot_filter_by_diagnosis(world, patients):
    response = api(world.users.police_a).get(LIST_URL, {"diagnosis": "schizophrenia"})

    assert response.status_code == 400
    assert response.json() == {"diagnosis": [ERR_FILTER_NOT_ALLOWED]}


@pytest.mark.django_db
def test_civil_affairs_cannot_filter_by_what_it_cannot_see(world, patients):
    client = api(world.users.civil)

    for param, value in (("risk_level__gte", "3"), ("overdue", "true"), ("diagnosis", "other")):
        response = client.get(LIST_URL, {param: value})
        assert response.status_code == 400, param
        assert response.json() == {param: [ERR_FILTER_NOT_ALLOWED]}
    # what it sees it may filter by
    assert client.get(LIST_URL, {"status": "active", "region": "990102"}).json()["count"] == 2


@pytest.mark.django_db
def test_police_may_filter_by_risk_and_overdue(world, patients):
    set_latest_followup(patients.pA1, risk_level=3)

    client = api(world.users.police_a)

    assert client.get(LIST_URL, {"risk_level__gte": 3}).json()["count"] == 1
    assert client.get(LIST_URL, {"overdue": "false"}).json()["count"] == 1


@pytest.mark.django_db
@pytest.mark.parametrize("persona", ["official", "admin", "finance"])
def test_roles_without_patient_access_cannot_list(world, patients, persona):
    response = api(getattr(world.users, persona)).get(LIST_URL)

    assert response.status_code == 403
    assert response.json() == {"detail": ERR_NO_PATIENT_ACCESS}
    assert AuditEvent.objects.filter(
        action="access.denied", actor=getattr(world.users, persona)
    ).exists()


def _fill_township(world, rows: int) -> None:
    """``rows`` patients in A1 besides pA1, each with assistant guardians and a
    care team member, so every prefetch has rows to fetch."""
    for n in range(rows - 1):
        p = pf.patient(
            by=world.users.doctor_a,
            village="990102001002",
            name=f"患者{n}",
            assistant_guardians=[{"name": "协助人", "relation": "邻居", "phone": "13900000000"}],
        )
        care_team_add(patient_id=p.pk, by=world.users.doctor_a, role="village_doctor", name="村医")


@pytest.mark.django_db
@pytest.mark.parametrize("rows", [1, 30])
@pytest.mark.parametrize("persona", ["doctor_a", "police_a", "civil"])
def test_list_query_count_is_constant(
    world, patients, django_assert_max_num_queries, rows, persona
):
    _fill_township(world, rows)
    client = token_api(getattr(world.users, persona))

    with django_assert_max_num_queries(LIST_QUERY_BUDGET):
        response = client.get(LIST_URL, {"region": "990102001", "page_size": 50})

    assert response.status_code == 200
    assert response.json()["count"] == rows


@pytest.mark.django_db
def test_list_pages(world, patients):
    _fill_township(world, 5)

    body = api(world.users.doctor_a).get(LIST_URL, {"page_size": 2}).json()

    assert body["count"] == 5
    assert len(body["results"]) == 2
    assert "page=2" in body["next"]


# --- detail ------------------------------------------------------------------


@pytest.mark.django_db
def test_detail_carries_etag_and_is_audited(world, patients):
    response = api(world.users.doctor_a).get(detail_url(patients.pA1))

    assert response.status_code == 200
    assert response["ETag"] == '"1"'
    assert response.json()["version"] == 1
    assert response["Cache-Control"] == "no-store"
    event = AuditEvent.objects.filter(action="patient.view").latest("id")
    assert (event.actor_id, event.object_id) == (world.users.doctor_a.pk, str(patients.pA1.pk))


@pytest.mark.django_db
def test_out_of_scope_detail_is_404_and_audited(world, patients):
    # SECURITY.md A1
    response = api(world.users.police_a).get(detail_url(patients.pB1))

    assert response.status_code == 404
    assert "乙一" not in response.content.decode()
    event = AuditEvent.objects.filter(action="access.denied").latest("id")
    assert (event.actor_id, event.object_id) == (world.users.police_a.pk, str(patients.pB1.pk))
    assert not AuditEvent.objects.filter(action="patient.view").exists()


@pytest.mark.django_db
@pytest.mark.parametrize("pk", ["not-a-uuid", "0.5", "00000000-0000-0000-0000-000000000000"])
def test_missing_patient_looks_like_out_of_scope(world, patients, pk):
    response = api(world.users.doctor_a).get(f"{LIST_URL}{pk}/")

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == api(world.users.doctor_a).get(detail_url(patients.pB1)).json()


@pytest.mark.django_db
def test_health_sees_the_full_id_number_others_see_it_masked(world, patients):
    full = patients.pA1.id_number

    health = api(world.users.doctor_a).get(detail_url(patients.pA1)).json()
    police = api(world.users.police_a).get(detail_url(patients.pA1)).json()
    civil = api(world.users.civil).get(LIST_URL).json()["results"]

    assert health["id_number"] == full
    assert police["id_number"] == full[:6] + "********" + full[-4:]
    assert all("*" in p["id_number"] and len(p["id_number"]) == 18 for p in civil)


@pytest.mark.django_db
def test_police_see_no_clinical_keys_at_all(world, patients):
    # SECURITY.md A4-style field allowlist, for the police
    for payload in (
        api(world.users.police_a).get(detail_url(patients.pA1)).json(),
        api(world.users.police_a).get(LIST_URL).json()["results"][0],
    ):
        assert "diagnosis" not in payload
        assert "diagnosis_hospital" not in payload
        assert "specialist_opinion" not in payload
        assert "past_symptoms" not in payload
        assert "classification" in payload
        assert "risk_level" in payload


@pytest.mark.django_db
def test_phones_are_masked_in_lists_for_other_departments(world, patients):
    pf.patient(by=world.users.doctor_a, village="990102001001", name="有电话", phone="13712345678")

    police_list = api(world.users.police_a).get(LIST_URL, {"search": "有电话"}).json()
    row = police_list["results"][0]
    health_row = api(world.users.doctor_a).get(LIST_URL, {"search": "有电话"}).json()["results"][0]

    assert row["phone"] == "137****5678"
    assert row["guardian"]["phone"] == "138****0000"
    assert health_row["phone"] == "13712345678"
    assert health_row["guardian"]["phone"] == "13800000000"
    # a detail read is audited and shows the contact numbers in full
    detail = api(world.users.police_a).get(f"{LIST_URL}{row['id']}/").json()
    assert detail["phone"] == "13712345678"
    assert detail["guardian"]["phone"] == "13800000000"


@pytest.mark.django_db
def test_guardian_is_null_when_none_is_recorded(world, patients):
    p = pf.patient(by=world.users.doctor_a, village="990102001001", name="无监护人", guardian=None)

    assert api(world.users.doctor_a).get(detail_url(p)).json()["guardian"] is None


# --- create ------------------------------------------------------------------


@pytest.mark.django_db
def test_register_with_the_minimum_fields(world, patients):
    payload = new_patient_payload()

    response = api(world.users.doctor_a).post(LIST_URL, payload, format="json")

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["name"] == "新登记"
    assert body["id_number"] == payload["id_number"]
    assert body["region"] == "990102001002"
    assert body["status"] == "active"
    assert body["guardian"] is None
    assert response["ETag"] == '"1"'
    assert response["Location"] == f"{LIST_URL}{body['id']}/"
    assert AuditEvent.objects.filter(action="patient.create", object_id=body["id"]).exists()


@pytest.mark.django_db
def test_register_with_guardian_and_supplement(world, patients):
    payload = new_patient_payload(
        phone="13512345678",
        guardian={"name": "王母", "relation": "母亲", "phone": "13611112222", "address": "同住"},
        assistant_guardians=[{"name": "李邻", "relation": "邻居"}],
        past_symptoms=["hallucination", "suspicion"],
        dangerous_history={"trouble": 1},
        household_type="rural",
    )

    response = api(world.users.hospital).post(LIST_URL, payload, format="json")

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["guardian"]["name"] == "王母"
    assert body["guardian"]["phone"] == "13611112222"
    assert body["assistant_guardians"] == [{"name": "李邻", "relation": "邻居", "phone": ""}]
    assert body["past_symptoms"] == ["hallucination", "suspicion"]
    assert body["dangerous_history"] == {"trouble": 1}


@pytest.mark.django_db
def test_register_a_legacy_15_digit_number(world, patients):
    legacy = "990102750309124"  # 1975-03-09, female (even 15th digit)

    response = api(world.users.doctor_a).post(
        LIST_URL, new_patient_payload(id_number=legacy), format="json"
    )

    assert response.status_code == 201, response.json()
    assert response.json()["id_number"] == rules.convert_15_to_18(legacy)


@pytest.mark.django_db
def test_register_names_each_missing_required_field(world, patients):
    response = api(world.users.doctor_a).post(LIST_URL, {}, format="json")

    assert response.status_code == 400
    # gender and birth_date follow from a resident ID (the default id_type)
    assert set(response.json()) == {"name", "id_number", "region", "address", "diagnosis"}

    response = api(world.users.doctor_a).post(LIST_URL, {"id_type": "passport"}, format="json")

    assert response.status_code == 400
    assert set(response.json()) == {
        "name",
        "gender",
        "id_number",
        "birth_date",
        "region",
        "address",
        "diagnosis",
    }


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda n: n[:17] + ("0" if n[17] != "0" else "1"), rules.ERR_CHECKSUM),
        (lambda n: n[:3], rules.ERR_LENGTH),
        (lambda n: n[:16] + "A" + n[17], rules.ERR_CHARS),
    ],
    ids=["checksum", "length", "characters"],
)
def test_register_refuses_an_invalid_id_number(world, patients, mutate, message):
    payload = new_patient_payload()
    payload["id_number"] = mutate(payload["id_number"])

    response = api(world.users.doctor_a).post(LIST_URL, payload, format="json")

    assert response.status_code == 400
    assert response.json() == {"id_number": [message]}


@pytest.mark.django_db
def test_register_refuses_an_impossible_birth_date_in_the_number(world, patients):
    body17 = "99010219751309124"  # month 13
    number = body17 + rules.check_char(body17)

    response = api(world.users.doctor_a).post(
        LIST_URL, new_patient_payload(id_number=number), format="json"
    )

    assert response.status_code == 400
    assert response.json() == {"id_number": [rules.ERR_BIRTH]}


@pytest.mark.django_db
def test_register_refuses_a_future_birth_date_in_the_number(world, patients):
    future = timezone.localdate() + timedelta(days=400)
    number = rules.make_resident_id("990102", future, 124, male=False)

    response = api(world.users.doctor_a).post(
        LIST_URL,
        new_patient_payload(id_number=number, birth_date=future.isoformat()),
        format="json",
    )

    assert response.status_code == 400
    assert response.json() == {"id_number": [rules.ERR_FUTURE]}


@pytest.mark.django_db
def test_register_refuses_a_duplicate_even_from_another_township(world, patients):
    response = api(world.users.doctor_b).post(
        LIST_URL,
        new_patient_payload(
            village="990102002002",
            id_number=patients.pA1.id_number,
            birth_date=patients.pA1.birth_date.isoformat(),
            gender=patients.pA1.gender,
        ),
        format="json",
    )

    assert response.status_code == 400
    assert response.json() == {"id_number": [ERR_DUPLICATE]}


@pytest.mark.django_db
def test_register_needs_a_village_in_scope(world, patients):
    client = api(world.users.doctor_a)

    township = client.post(LIST_URL, new_patient_payload(village="990102001"), format="json")
    elsewhere = client.post(LIST_URL, new_patient_payload(village="990102002001"), format="json")
    unknown = client.post(LIST_URL, new_patient_payload(village="990102001999"), format="json")

    assert township.json() == {"region": [ERR_REGION_LEVEL]}
    assert elsewhere.json() == {"region": [ERR_REGION_SCOPE]}
    assert unknown.status_code == 400 and "region" in unknown.json()
    assert not Patient.objects.filter(name="新登记").exists()


@pytest.mark.django_db
def test_register_refuses_fields_set_by_the_system(world, patients):
    response = api(world.users.doctor_a).post(
        LIST_URL, new_patient_payload(status="deceased", risk_level=5), format="json"
    )

    assert response.status_code == 400
    assert response.json() == {"risk_level": [ERR_NOT_ALLOWED], "status": [ERR_NOT_ALLOWED]}


@pytest.mark.django_db
@pytest.mark.parametrize("persona", ["police_a", "governance", "civil", "official", "admin"])
def test_only_health_staff_register(world, patients, persona):
    response = api(getattr(world.users, persona)).post(
        LIST_URL, new_patient_payload(), format="json"
    )

    assert response.status_code == 403
    assert response.json() == {"detail": ERR_CANNOT_REGISTER}
    assert not Patient.objects.filter(name="新登记").exists()


@pytest.mark.django_db
def test_register_takes_json_only(world, patients):
    response = api(world.users.doctor_a).post(LIST_URL, new_patient_payload(), format="multipart")

    assert response.status_code == 415


# --- update and optimistic locking -------------------------------------------


@pytest.mark.django_db
def test_patch_with_the_current_etag_saves_and_bumps_it(world, patients):
    client = api(world.users.doctor_a)
    etag = client.get(detail_url(patients.pA1))["ETag"]

    response = client.patch(
        detail_url(patients.pA1),
        {"address": "新地址9号", "guardian": {"phone": "13999999999"}},
        format="json",
        HTTP_IF_MATCH=etag,
    )

    assert response.status_code == 200, response.json()
    assert response["ETag"] == '"2"'
    assert response.json()["address"] == "新地址9号"
    assert response.json()["guardian"]["phone"] == "13999999999"
    assert response.json()["guardian"]["name"] == "监护人"
    patients.pA1.refresh_from_db()
    assert (patients.pA1.address, patients.pA1.version) == ("新地址9号", 2)
    assert AuditEvent.objects.filter(action="patient.update", object_id=str(patients.pA1.pk))


@pytest.mark.django_db
def test_patch_without_if_match_is_428_and_saves_nothing(world, patients):
    for headers in ({}, {"HTTP_IF_MATCH": "*"}):
        response = api(world.users.doctor_a).patch(
            detail_url(patients.pA1), {"address": "不该保存"}, format="json", **headers
        )

        assert response.status_code == 428
        assert response.json() == {"detail": PreconditionRequired.default_detail}
    patients.pA1.refresh_from_db()
    assert patients.pA1.address == "测试地址1号"


@pytest.mark.django_db
@pytest.mark.parametrize("tag", ['"7"', 'W/"1"', "1", '"abc"'])
def test_patch_with_a_tag_that_is_not_the_current_version_is_412(world, patients, tag):
    response = api(world.users.doctor_a).patch(
        detail_url(patients.pA1), {"address": "不该保存"}, format="json", HTTP_IF_MATCH=tag
    )

    assert response.status_code == 412
    assert response.json()["detail"] in (str(ERR_STALE), str(PreconditionFailed.default_detail))
    patients.pA1.refresh_from_db()
    assert (patients.pA1.address, patients.pA1.version) == ("测试地址1号", 1)


@pytest.mark.django_db
def test_twenty_stale_patches_in_a_row_one_wins(world, patients):
    # SECURITY.md R6 / G18, sequentially: all read the same ETag
    client = api(world.users.doctor_a)
    etag = client.get(detail_url(patients.pA1))["ETag"]

    statuses = [
        client.patch(
            detail_url(patients.pA1),
            {"address": f"地址{n}号"},
            format="json",
            HTTP_IF_MATCH=etag,
        ).status_code
        for n in range(20)
    ]

    assert statuses == [200] + [412] * 19
    patients.pA1.refresh_from_db()
    assert (patients.pA1.address, patients.pA1.version) == ("地址0号", 2)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_stale_patches_one_wins(world, patients):
    # SECURITY.md R6 / G18: 20 clients read the same ETag and PATCH different
    # fields at once; the row lock in patient_update serialises them.
    user = world.users.doctor_a
    etag = api(user).get(detail_url(patients.pA1))["ETag"]
    changes = [{"address": f"并发地址{n}号"} for n in range(10)] + [
        {"ethnicity": f"民族{n}"} for n in range(10)
    ]
    barrier = threading.Barrier(len(changes))
    results: dict[int, int] = {}

    def patch(n: int) -> None:
        try:
            client = api(user)
            barrier.wait(timeout=30)
            response = client.patch(
                detail_url(patients.pA1), changes[n], format="json", HTTP_IF_MATCH=etag
            )
            results[n] = response.status_code
        finally:
            connection.close()

    threads = [threading.Thread(target=patch, args=(n,)) for n in range(len(changes))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)

    assert sorted(results.values()) == [200] + [412] * 19
    winner = next(n for n, code in results.items() if code == 200)
    patients.pA1.refresh_from_db()
    assert patients.pA1.version == 2
    saved = {"address": patients.pA1.address, "ethnicity": patients.pA1.ethnicity}
    expected = {"address": "测试地址1号", "ethnicity": "", **changes[winner]}
    assert saved == expected


@pytest.mark.django_db
def test_police_may_set_police_registered_only(world, patients):
    client = api(world.users.police_a)

    allowed = client.patch(
        detail_url(patients.pA1),
        {"police_registered": True},
        format="json",
        **if_match(patients.pA1),
    )
    refused = client.patch(
        detail_url(patients.pA1),
        {"diagnosis": "other", "address": "x"},
        format="json",
        **if_match(patients.pA1),
    )

    assert allowed.status_code == 200
    assert allowed.json()["police_registered"] is True
    assert "diagnosis" not in allowed.json()
    assert refused.status_code == 400
    assert refused.json() == {"address": [ERR_NOT_ALLOWED], "diagnosis": [ERR_NOT_ALLOWED]}
    patients.pA1.refresh_from_db()
    assert patients.pA1.diagnosis == "schizophrenia"


@pytest.mark.django_db
def test_governance_may_change_nothing(world, patients):
    response = api(world.users.governance).patch(
        detail_url(patients.pA1), {"address": "x"}, format="json", **if_match(patients.pA1)
    )

    assert response.status_code == 403
    assert response.json() == {"detail": ERR_CANNOT_CHANGE}


@pytest.mark.django_db
def test_moving_a_patient_goes_through_a_transfer(world, patients):
    # SECURITY.md A5
    response = api(world.users.hospital).patch(
        detail_url(patients.pA1),
        {"region": "990102002001"},
        format="json",
        **if_match(patients.pA1),
    )

    assert response.status_code == 400
    assert list(response.json()) == ["region"]
    patients.pA1.refresh_from_db()
    assert patients.pA1.region_id == "990102001001"


@pytest.mark.django_db
def test_patch_rechecks_the_id_number(world, patients):
    response = api(world.users.doctor_a).patch(
        detail_url(patients.pA1),
        {"id_number": patients.pB1.id_number},
        format="json",
        **if_match(patients.pA1),
    )

    assert response.status_code == 400
    assert response.json() == {"id_number": [ERR_DUPLICATE]}


@pytest.mark.django_db
def test_patch_outside_scope_is_404_before_anything_else(world, patients):
    response = api(world.users.doctor_a).patch(
        detail_url(patients.pB1), {"address": "x"}, format="json"
    )

    assert response.status_code == 404


@pytest.mark.django_db
def test_put_is_not_offered(world, patients):
    response = api(world.users.doctor_a).put(
        detail_url(patients.pA1), {"address": "x"}, format="json", **if_match(patients.pA1)
    )

    assert response.status_code == 405


# --- headers -----------------------------------------------------------------


@pytest.mark.django_db
def test_every_patient_api_answer_is_no_store(world, patients):
    client = api(world.users.doctor_a)
    responses = [
        client.get(LIST_URL),
        client.get(detail_url(patients.pA1)),
        client.get(detail_url(patients.pB1)),
        client.post(LIST_URL, {}, format="json"),
        client.patch(detail_url(patients.pA1), {}, format="json"),
        APIClient().get(LIST_URL),
    ]

    assert [r.status_code for r in responses] == [200, 200, 404, 400, 428, 401]
    assert {r["Cache-Control"] for r in responses} == {"no-store"}
