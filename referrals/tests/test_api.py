"""The API fixed points of API.md for referrals, reconciliations and
exchange runs, plus clues."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from rest_framework.test import APIClient

from patients.tests import factories as pf
from referrals.models import Clue, Referral
from referrals.tests import factories as rf

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_referral_lifecycle_through_the_api(world, patients):
    doctor, hospital = api(world.users.doctor_a), api(world.users.hospital)
    response = doctor.post(
        "/api/v1/referrals/",
        {
            "patient": str(patients.pA1.pk),
            "kind": "upward",
            "to_organisation": world.org.hospital_a.pk,
            "reason": "病情不稳定",
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "pending" and body["kind"] == "upward"
    rid = body["id"]
    listed = hospital.get("/api/v1/referrals/").json()
    assert listed["count"] == 1 and listed["results"][0]["id"] == rid
    assert set(listed) == {"count", "next", "previous", "results"}

    response = hospital.post(f"/api/v1/referrals/{rid}/accept/", {}, format="json")
    assert response.status_code == 200 and response.json()["status"] == "accepted"
    response = hospital.post(f"/api/v1/referrals/{rid}/complete/", {}, format="json")
    assert response.json()["status"] == "completed"
    events = [e["action"] for e in hospital.get(f"/api/v1/referrals/{rid}/").json()["events"]]
    assert events == ["created", "accepted", "completed"]


def test_reject_needs_a_reason(world, patients):
    ref = (
        api(world.users.doctor_a)
        .post(
            "/api/v1/referrals/",
            {
                "patient": str(patients.pA1.pk),
                "kind": "upward",
                "to_organisation": world.org.hospital_a.pk,
                "reason": "x",
            },
            format="json",
        )
        .json()
    )
    hospital = api(world.users.hospital)
    assert (
        hospital.post(f"/api/v1/referrals/{ref['id']}/reject/", {}, format="json").status_code
        == 400
    )
    response = hospital.post(
        f"/api/v1/referrals/{ref['id']}/reject/", {"reason": "床位已满"}, format="json"
    )
    assert response.json()["status"] == "rejected"
    assert response.json()["events"][-1]["note"] == "床位已满"


def test_bad_referrals_are_400_naming_the_field(world, patients, institution):
    doctor = api(world.users.doctor_a)
    base = {"patient": str(patients.pA1.pk), "reason": "x"}
    r = doctor.post(
        "/api/v1/referrals/",
        {**base, "kind": "upward", "to_organisation": world.org.hc_a2.pk},
        format="json",
    )
    assert r.status_code == 400 and "to_organisation" in r.json()
    r = doctor.post(
        "/api/v1/referrals/",
        {**base, "kind": "rehab", "to_organisation": institution.organisation.pk},
        format="json",
    )
    assert r.status_code == 400 and "guardian_consent" in r.json()
    r = doctor.post("/api/v1/referrals/", {**base, "kind": "sideways"}, format="json")
    assert r.status_code == 400 and "kind" in r.json()
    assert not Referral.objects.exists()


def test_downward_via_api_with_the_discharge_sheet(world, patients):
    r = api(world.users.hospital).post(
        "/api/v1/referrals/",
        {
            "patient": str(patients.pA1.pk),
            "kind": "downward",
            "to_organisation": world.org.hc_a1.pk,
            "reason": "出院",
            "discharge_sheet": {"discharge_date": "2026-01-05", "attending_doctor": "张医生"},
        },
        format="json",
    )
    assert r.status_code == 201, r.content
    assert r.json()["discharge_date"] == "2026-01-05"
    assert r.json()["discharge_sheet"]["attending_doctor"] == "张医生"


@pytest.mark.parametrize(
    "sheet, field, message",
    [
        ({"discharge_date": "2026-01-05", "diagnose": "x"}, "diagnose", "出院信息单没有这一项。"),
        ({"discharge_date": "05/01/2026"}, "discharge_date", None),
        ({"discharge_date": "2026-01-05", "inpatient_effect": "great"}, "inpatient_effect", None),
        ({"discharge_date": "2026-01-05", "attending_doctor": "张" * 51}, "attending_doctor", None),
        ({"attending_doctor": "张医生"}, "discharge_date", "出院信息单须填写出院日期。"),
        (
            {"admission_date": "2026-01-09", "discharge_date": "2026-01-05"},
            "admission_date",
            "入院日期不能晚于出院日期。",
        ),
    ],
)
def test_the_api_checks_the_discharge_sheet_like_the_page_form(
    world, patients, sheet, field, message
):
    r = api(world.users.hospital).post(
        "/api/v1/referrals/",
        {
            "patient": str(patients.pA1.pk),
            "kind": "downward",
            "to_organisation": world.org.hc_a1.pk,
            "reason": "出院",
            "discharge_sheet": sheet,
        },
        format="json",
        HTTP_ACCEPT_LANGUAGE="zh-hans",
    )
    assert r.status_code == 400, r.content
    errors = r.json()["discharge_sheet"]
    assert field in errors
    if message:
        assert errors[field] == [message]
    assert not Referral.objects.exists()


def test_the_api_sheet_has_the_page_forms_fields():
    from referrals.api.serializers import DischargeSheetSerializer
    from referrals.forms import ReferralForm

    assert set(DischargeSheetSerializer().fields) == set(ReferralForm.SHEET_KEYS)


def police_list(patients) -> bytes:
    return rf.csv_bytes(
        [
            {"姓名": "甲一", "身份证号": patients.pA1.id_number},
            {"姓名": "乙一", "身份证号": patients.pB1.id_number},
            {"姓名": "陌生人", "身份证号": rf.resident_id(777)},
        ],
        ["姓名", "身份证号"],
    )


def test_reconciliation_api_counts_and_replay(world, patients):
    from followups.tests import factories as ff

    ff.record(by=world.users.doctor_a, patient=patients.pA1, risk_level=4)
    high = pf.patient(by=world.users.doctor_b, village="990102002002", name="未列管")
    ff.record(by=world.users.doctor_b, patient=high, risk_level=3)
    client = api(world.users.governance)

    def upload():
        return client.post(
            "/api/v1/reconciliations/",
            {"partner": "police", "file": SimpleUploadedFile("list.csv", police_list(patients))},
            format="multipart",
        )

    first = upload()
    assert first.status_code == 201, first.content
    assert first.json()["counts"] == {
        "rows": 3,
        "matched": 2,
        "missing_from_register": 1,
        "status_disagreements": 2,  # neither is flagged police-registered
        "high_risk_missing_from_partner": 1,
    }
    second = upload()
    assert second.status_code == 201
    assert second.json() == first.json()
    assert Clue.objects.count() == 1
    items = client.get(f"/api/v1/reconciliations/{first.json()['id']}/items/?outcome=matched")
    assert items.json()["count"] == 2
    assert items.json()["results"][0]["id_number"].count("*") == 8  # masked for governance


def test_reconciliation_of_an_xlsx_list(world, patients):
    import io

    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.append(["身份证号", "姓名"])
    ws.append([patients.pA1.id_number, "甲一"])
    out = io.BytesIO()
    wb.save(out)
    r = api(world.users.doctor_a).post(
        "/api/v1/reconciliations/",
        {"partner": "governance", "file": SimpleUploadedFile("g.xlsx", out.getvalue())},
        format="multipart",
    )
    assert r.status_code == 201 and r.json()["counts"]["matched"] == 1


def test_reconciliation_without_the_required_columns_is_400(world):
    r = api(world.users.governance).post(
        "/api/v1/reconciliations/",
        {"partner": "police", "file": SimpleUploadedFile("x.csv", "名字\n张三\n".encode())},
        format="multipart",
    )
    assert r.status_code == 400 and "file" in r.json()


def test_clue_api_report_and_close(world):
    police = api(world.users.police_a)
    r = police.post(
        "/api/v1/clues/",
        {"name": "赵某", "region": "990102001001", "description": "游荡"},
        format="json",
    )
    assert r.status_code == 201 and r.json()["source"] == "police"
    assert "review_diagnosis" not in r.json()
    cid = r.json()["id"]
    doctor = api(world.users.doctor_a)
    assert doctor.get("/api/v1/clues/").json()["count"] == 1
    r = doctor.post(f"/api/v1/clues/{cid}/close/", {"reason": "not_found"}, format="json")
    assert r.json()["status"] == "closed" and r.json()["close_reason"] == "not_found"


def test_clue_confirm_registers_the_patient(world):
    from patients.models import Patient

    r = api(world.users.doctor_a).post(
        "/api/v1/clues/", {"name": "钱某", "region": "990102001001"}, format="json"
    )
    cid = r.json()["id"]
    r = api(world.users.doctor_a).post(
        f"/api/v1/clues/{cid}/confirm/",
        {
            "name": "钱某",
            "id_number": rf.resident_id(444),
            "region": "990102001001",
            "address": "某村",
            "diagnosis": "delusional",
            "diagnosis_hospital": "A专科医院",
            "guardian": {"name": "钱父", "relation": "父亲"},
        },
        format="json",
    )
    assert r.status_code == 200, r.content
    patient = Patient.objects.get(pk=r.json()["patient"])
    assert patient.diagnosis == "delusional" and patient.guardian.name == "钱父"


def test_clue_confirm_with_another_document_needs_birth_date_and_gender(world):
    """Found by the fuzzer: a passport or other document carries no birth
    date, so the API must ask for it (400 naming the field), not fail."""
    from patients.models import Patient

    doctor = api(world.users.doctor_a)
    cid = doctor.post(
        "/api/v1/clues/", {"name": "孙某", "region": "990102001001"}, format="json"
    ).json()["id"]
    body = {
        "name": "孙某",
        "id_type": "other",
        "id_number": "X1234567",
        "region": "990102001001",
        "address": "某村",
        "diagnosis": "epilepsy",
    }
    r = doctor.post(f"/api/v1/clues/{cid}/confirm/", body, format="json")
    assert r.status_code == 400 and list(r.json()) == ["birth_date"]
    r = doctor.post(
        f"/api/v1/clues/{cid}/confirm/", {**body, "birth_date": "1980-05-01"}, format="json"
    )
    assert r.status_code == 400 and list(r.json()) == ["gender"]
    r = doctor.post(
        f"/api/v1/clues/{cid}/confirm/",
        {**body, "birth_date": "1980-05-01", "gender": "female"},
        format="json",
    )
    assert r.status_code == 200, r.content
    assert Patient.objects.get(pk=r.json()["patient"]).birth_date.isoformat() == "1980-05-01"


def test_exchange_runs_api_fields(world, more, patients, tmp_path):
    from referrals.services.exchange import exchange_build_due

    rf.partner(by=more.prevention, department="police", folder=str(tmp_path))
    exchange_build_due()
    r = api(world.users.governance).get(reverse("referrals-api:exchange-run-list"))
    row = r.json()["results"][0]
    assert row["partner"] == "police" and row["rows"] == 2 and len(row["sha256"]) == 64
    assert row["status"] == "pending" and row["period"].endswith(("Q1", "Q2", "Q3", "Q4"))
    # a civil affairs officer does not see police packages
    assert api(world.users.civil).get("/api/v1/exchanges/runs/").json()["count"] == 0
