"""The referrals pages as users meet them: forms, steps, progress, results;
list pages keep a constant number of queries."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.roles import Role
from accounts.tests import factories as af
from accounts.tests.factories import login
from audit.models import AuditEvent
from patients.models import Patient
from patients.tests import factories as pf
from referrals.models import (
    Clue,
    EntitlementTask,
    ExchangeRun,
    ImportStatus,
    Referral,
    RehabAttendance,
    RosterImport,
)
from referrals.services import exchange as exchange_svc
from referrals.services import referrals as svc
from referrals.tests import factories as rf

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def as_user(user) -> Client:
    return login(Client(), user)


# ----------------------------------------------------------------- referrals


def test_doctor_sends_an_upward_referral_and_the_hospital_accepts_it(world, patients):
    doctor = as_user(world.users.doctor_a)
    page = doctor.post(reverse("referrals:create"), {"kind": "upward", "q": "甲一"})
    assert "甲一" in page.content.decode()
    url = reverse("referrals:create") + f"?kind=upward&patient={patients.pA1.pk}"
    page = doctor.get(url)
    assert "A专科医院" in page.content.decode()
    response = doctor.post(
        url,
        {"to_organisation": world.org.hospital_a.pk, "reason": "症状加重，需住院"},
    )
    referral = Referral.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("referrals:detail", args=[referral.pk])

    hospital = as_user(world.users.hospital)
    inbox = hospital.get(reverse("referrals:inbox")).content.decode()
    assert "甲一" in inbox and "办理" in inbox
    detail = hospital.get(reverse("referrals:detail", args=[referral.pk])).content.decode()
    assert 'id="accept"' in detail and 'id="cancel"' not in detail
    assert AuditEvent.objects.filter(
        action="referral.view",
        actor=world.users.hospital,
        object_type="patient",
        object_id=str(referral.patient_id),
        detail__referral=str(referral.pk),
    ).exists()
    hospital.post(reverse("referrals:accept", args=[referral.pk]), {"note": "已预约床位"})
    referral.refresh_from_db()
    assert referral.status == "accepted"
    detail = hospital.get(reverse("referrals:detail", args=[referral.pk])).content.decode()
    assert "已预约床位" in detail and 'id="complete"' in detail


def test_the_referral_form_keeps_what_was_typed_on_error(world, patients):
    doctor = as_user(world.users.doctor_a)
    url = reverse("referrals:create") + f"?kind=rehab&patient={patients.pA1.pk}"
    institution = rf.rehab_institution(by=world.users.civil, region=world.county_a)
    response = doctor.post(
        url,
        {
            "to_organisation": institution.organisation.pk,
            "reason": "病情稳定，转介康复",
            "patient_consent": "on",
        },
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert str(svc.ERR_CONSENT) in html and "病情稳定，转介康复" in html
    assert not Referral.objects.exists()


def test_rejecting_without_a_reason_shows_the_message(world, patients):
    ref = svc.referral_create(
        patient_id=patients.pA1.pk,
        kind="upward",
        to_organisation=world.org.hospital_a,
        reason="x",
        by=world.users.doctor_a,
    )
    hospital = as_user(world.users.hospital)
    response = hospital.post(
        reverse("referrals:reject", args=[ref.pk]), {"reason": ""}, follow=True
    )
    assert str(svc.ERR_REASON_REQUIRED) in response.content.decode()
    assert Referral.objects.get(pk=ref.pk).status == "pending"


def test_downward_form_is_prefilled_from_the_latest_discharge(world, patients, monkeypatch):
    import subsidies.selectors as subsidies

    discharged = timezone.localdate() - timedelta(days=1)
    monkeypatch.setattr(subsidies, "latest_discharge_for", lambda *, user, patient: object())
    monkeypatch.setattr(
        subsidies,
        "discharge_sheet_for",
        lambda *, episode: {
            "case_number": "ZY-77",
            "admission_date": discharged - timedelta(days=20),
            "discharge_date": discharged,
            "discharge_diagnosis": "bipolar",
            "inpatient_effect": "improved",
            "rehab_advice": "参加社区康复",
            "medication_advice": [{"drug": "碳酸锂"}],
            "medication_note": "早晚各一次",
            "attending_doctor": "张医生",
            "note": "",
        },
    )
    hospital = as_user(world.users.hospital)
    url = reverse("referrals:create") + f"?kind=downward&patient={patients.pA1.pk}"
    html = hospital.get(url).content.decode()
    assert 'value="ZY-77"' in html and "碳酸锂；早晚各一次" in html
    assert f'value="{discharged.isoformat()}"' in html


def test_downward_referral_shows_the_discharge_sheet_to_the_township(world, patients):
    ref = svc.referral_create(
        patient_id=patients.pA1.pk,
        kind="downward",
        to_organisation=world.org.hc_a1,
        reason="好转出院",
        by=world.users.hospital,
        discharge_sheet={
            "discharge_date": date.today() - timedelta(days=1),
            "discharge_diagnosis": "schizophrenia",
            "medication_note": "利培酮 2mg 每晚",
        },
    )
    html = as_user(world.users.doctor_a).get(reverse("referrals:detail", args=[ref.pk]))
    text = html.content.decode()
    assert "出院信息单" in text and "利培酮 2mg 每晚" in text and "精神分裂症" in text


def test_the_receiving_end_of_a_transfer_sees_only_the_handover(world, patients):
    patients.pA1.address = "甲一家详细地址"
    Patient.objects.filter(pk=patients.pA1.pk).update(address="甲一家详细地址")
    ref = svc.referral_create(
        patient_id=patients.pA1.pk,
        kind="transfer",
        to_organisation=world.org.hc_c1,
        reason="迁居",
        by=world.users.doctor_a,
    )
    html = as_user(world.users.doctor_c).get(reverse("referrals:detail", args=[ref.pk]))
    text = html.content.decode()
    assert "甲一" in text and "甲一家详细地址" not in text
    assert patients.pA1.id_number not in text and patients.pA1.id_number_masked in text
    assert 'name="to_region"' in text  # the destination is chosen on acceptance


def _referrals(world, n):
    for i in range(n):
        p = pf.patient(by=world.users.doctor_a, village="990102001001", name=f"患者{i}")
        svc.referral_create(
            patient_id=p.pk,
            kind="upward",
            to_organisation=world.org.hospital_a,
            reason="x",
            by=world.users.doctor_a,
        )


@pytest.mark.parametrize("rows", [1, 30])
def test_inbox_queries_do_not_grow_with_rows(world, rows, django_assert_max_num_queries):
    _referrals(world, rows)
    client = as_user(world.users.hospital)
    client.get(reverse("referrals:inbox"))  # warm the session
    with django_assert_max_num_queries(16):
        response = client.get(reverse("referrals:inbox"), {"box": "incoming"})
    assert response.content.decode().count("<tr>") == min(rows, 20) + 1


def test_inbox_filter_answers_htmx_with_the_rows_only(world, patients):
    _referrals(world, 2)
    client = as_user(world.users.hospital)
    response = client.get(reverse("referrals:inbox"), {"status": "pending"}, HTTP_HX_REQUEST="true")
    text = response.content.decode()
    assert 'id="referral-table"' in text and "<html" not in text


@pytest.mark.parametrize("rows", [1, 30])
def test_referral_api_list_queries_do_not_grow(world, rows, django_assert_max_num_queries):
    from rest_framework.test import APIClient

    _referrals(world, rows)
    api = APIClient()
    api.force_authenticate(world.users.hospital)
    with django_assert_max_num_queries(12):
        response = api.get(reverse("referrals-api:referral-list"), {"page_size": 50})
    assert response.json()["count"] == rows


# ----------------------------------------------------------------- rehab


def test_rehab_institution_enrolment_session_and_end(world, patients):
    civil = as_user(world.users.civil)
    response = civil.post(
        reverse("referrals:rehab-create"),
        {
            "name": "城关阳光家园",
            "region": world.a1.code,
            "places": 5,
            "services": ["medication_training", "social_skills_training"],
        },
    )
    institution = world.org.hc_a1.__class__.objects.get(name="城关阳光家园").rehab_institution
    assert response["Location"] == reverse("referrals:rehab-detail", args=[institution.pk])
    url = reverse("referrals:rehab-enrol", args=[institution.pk])
    response = civil.post(
        url + f"?patient={patients.pA1.pk}",
        {"patient": patients.pA1.pk, "patient_consent": "on", "guardian_consent": "on"},
    )
    assert response.status_code == 302
    patients.pA1.refresh_from_db()
    assert patients.pA1.in_community_rehab is True
    enrolment = institution.enrolments.get()
    civil.post(
        reverse("referrals:rehab-session-create", args=[institution.pk]),
        {
            "kind": "medication_training",
            "held_on": timezone.localdate().isoformat(),
            "topic": "按时服药",
            "attended": [str(enrolment.pk)],
        },
    )
    assert RehabAttendance.objects.get().attended is True
    html = civil.get(reverse("referrals:rehab-detail", args=[institution.pk])).content.decode()
    assert "按时服药" in html and "1 / 1" in html and "1 / 5" in html
    civil.post(
        reverse("referrals:rehab-enrolment-end", args=[enrolment.pk]), {"reason": "completed"}
    )
    patients.pA1.refresh_from_db()
    assert patients.pA1.in_community_rehab is False


@pytest.mark.parametrize("rows", [1, 30])
def test_rehab_list_queries_do_not_grow(world, rows, django_assert_max_num_queries):
    for i in range(rows):
        rf.rehab_institution(by=world.users.civil, region=world.a1, name=f"机构{i}")
    client = as_user(world.users.civil)
    client.get(reverse("referrals:rehab-list"))
    with django_assert_max_num_queries(14):
        response = client.get(reverse("referrals:rehab-list"))
    assert response.content.decode().count("<tr>") == min(rows, 20) + 1


# ----------------------------------------------------------------- clues


def test_police_report_a_clue_and_the_doctor_confirms_it(world):
    police = as_user(world.users.police_a)
    response = police.post(
        reverse("referrals:clue-create"),
        {
            "source": "police",
            "name": "王某",
            "id_type": "resident_id",
            "id_number": "",
            "region": "990102001002",
            "description": "夜间砸物，自言自语",
        },
    )
    clue = Clue.objects.get()
    assert response["Location"] == reverse("referrals:clue-detail", args=[clue.pk])
    assert clue.assigned_organisation == world.org.hc_a1
    doctor = as_user(world.users.doctor_a)
    assert "王某" in doctor.get(reverse("referrals:clue-list")).content.decode()
    number = rf.resident_id(333)
    response = doctor.post(
        reverse("referrals:clue-confirm", args=[clue.pk]),
        {
            "name": "王某",
            "id_type": "resident_id",
            "id_number": number,
            "region": Patient._meta.get_field("region")
            .related_model.objects.get(code="990102001002")
            .pk,
            "address": "某村2号",
            "diagnosis": "schizophrenia",
            "diagnosis_hospital": "A专科医院",
            "diagnosis_date": timezone.localdate().isoformat(),
            "guardian_name": "王母",
            "guardian_relation": "母亲",
        },
    )
    assert response.status_code == 302
    clue.refresh_from_db()
    assert clue.status == "confirmed" and clue.patient.name == "王某"
    # the police officer sees the status, never the diagnosis
    html = police.get(reverse("referrals:clue-detail", args=[clue.pk])).content.decode()
    assert "已确诊并登记" in html and "精神分裂症" not in html


@pytest.mark.parametrize("rows", [1, 30])
def test_clue_list_queries_do_not_grow(world, rows, django_assert_max_num_queries):
    from referrals.services.clues import clue_report

    for i in range(rows):
        clue_report(by=world.users.police_a, data={"name": f"疑似{i}", "region": world.a1})
    client = as_user(world.users.doctor_a)
    client.get(reverse("referrals:clue-list"))
    with django_assert_max_num_queries(14):
        response = client.get(reverse("referrals:clue-list"))
    assert response.content.decode().count("<tr>") == min(rows, 20) + 1


# ----------------------------------------------------------------- import


def test_roster_upload_shows_progress_then_the_result(world, django_capture_on_commit_callbacks):
    doctor = as_user(world.users.doctor_a)
    data = rf.xlsx([rf.roster_row(n) for n in range(3)])
    with django_capture_on_commit_callbacks(execute=True):
        response = doctor.post(
            reverse("referrals:import-home"),
            {"file": SimpleUploadedFile("花名册.xlsx", data)},
        )
    imp = RosterImport.objects.get()
    assert response["Location"] == reverse("referrals:import-detail", args=[imp.pk])
    assert imp.status == ImportStatus.SUCCEEDED
    partial = doctor.get(response["Location"], HTTP_HX_REQUEST="true").content.decode()
    assert 'id="created-count">3<' in partial and "hx-trigger" not in partial


def test_a_running_import_polls_for_progress(world):
    from referrals.services.imports import roster_import_start

    imp = roster_import_start(by=world.users.doctor_a, file_name="a.xlsx", data=b"x")
    html = as_user(world.users.doctor_a).get(reverse("referrals:import-detail", args=[imp.pk]))
    text = html.content.decode()
    assert 'hx-trigger="every 1s"' in text and "排队中" in text


def test_a_failed_import_lists_row_and_field(world, django_capture_on_commit_callbacks):
    doctor = as_user(world.users.doctor_a)
    rows = [rf.roster_row(1), rf.roster_row(2, 诊断="失眠")]
    with django_capture_on_commit_callbacks(execute=True):
        response = doctor.post(
            reverse("referrals:import-home"), {"file": SimpleUploadedFile("r.xlsx", rf.xlsx(rows))}
        )
    html = doctor.get(response["Location"]).content.decode()
    assert "第3行" in html and "诊断" in html and "未写入任何数据" in html
    assert not Patient.objects.filter(name__startswith="导入").exists()


def test_the_template_downloads(world):
    response = as_user(world.users.doctor_a).get(reverse("referrals:import-template"))
    assert response["Content-Type"].startswith("application/vnd.openxmlformats")
    assert response.content.startswith(b"PK")


# ----------------------------------------------------------------- exchange


def test_admin_configures_a_partner_and_sees_the_key_once(world, patients, tmp_path):
    admin = as_user(world.users.admin)
    response = admin.post(
        reverse("referrals:partner-create"),
        {
            "department": "police",
            "name": "县公安局",
            "organisation": world.org.pb_a.pk,
            "schedule": "quarterly",
            "immediate_high_risk": "on",
            "format": "csv",
            "delivery": "folder",
            "folder_path": str(tmp_path),
            "is_active": "on",
        },
    )
    assert response.status_code == 302
    detail = response["Location"]
    admin.post(detail + "key/", {"action": "reveal"})
    first = admin.get(detail).content.decode()
    second = admin.get(detail).content.decode()
    assert 'id="revealed-key"' in first and 'id="revealed-key"' not in second
    response = admin.post(detail + "build/")
    run = ExchangeRun.objects.get()
    assert response["Location"] == reverse("referrals:run-detail", args=[run.pk])
    url = reverse("referrals:run-download", args=[run.pk])
    # the administrator configures but does not download personal data
    assert admin.get(url).status_code == 403
    # the county-wide package is the county police bureau's (the receiving
    # organisation), not a township police station's
    assert as_user(world.users.police_a).get(url).status_code == 403
    bureau = as_user(af.grant_export(af.staff("police_bureau_a", Role.POLICE, world.org.pb_a)))
    assert "导出用途" in bureau.get(url).content.decode()  # the reason first
    download = af.export(bureau, url)
    assert download.status_code == 200 and download.content.startswith(b"\xef\xbb\xbf")


def test_a_package_goes_to_the_receiving_unit_or_the_departments_county_level(world, tmp_path):
    from referrals.rules import Period
    from referrals.selectors import can_download_package

    prevention = af.staff("prevention_a", Role.PREVENTION_STAFF, world.org.prevention_a)
    q3 = Period("2026Q3", date(2026, 7, 1), date(2026, 9, 30))
    # a partner whose receiving unit is township A1's police station
    partner = rf.partner(
        by=prevention, department="police", folder=str(tmp_path), organisation=world.org.ps_a1
    )
    run = exchange_svc.exchange_build(partner=partner, kind="scheduled", period=q3)
    bureau = af.staff("police_bureau_a", Role.POLICE, world.org.pb_a)
    assert can_download_package(world.users.police_a, run)  # the receiving unit
    assert can_download_package(bureau, run)  # the county level of police
    assert can_download_package(prevention, run)
    assert not can_download_package(world.users.police_b, run)  # another township
    assert not can_download_package(world.users.governance, run)  # another department
    with pytest.raises(PermissionDenied):
        exchange_svc.exchange_package_download(
            run=run, by=world.users.police_b, reason="季度数据交换"
        )


def test_reconciliation_upload_page_shows_the_counts(world, patients):
    governance = as_user(world.users.governance)
    data = rf.csv_bytes(
        [
            {"姓名": "甲一", "身份证号": patients.pA1.id_number},
            {"姓名": "新人", "身份证号": rf.resident_id(808)},
        ],
        ["姓名", "身份证号"],
    )
    response = governance.post(
        reverse("referrals:reconciliation-create"),
        {"partner": "police", "file": SimpleUploadedFile("公安.csv", data)},
        follow=True,
    )
    html = response.content.decode()
    assert 'id="count-rows">2<' in html and 'id="count-matched">1<' in html
    assert 'id="count-missing">1<' in html


@pytest.mark.parametrize("rows", [1, 30])
def test_reconciliation_items_page_queries_do_not_grow(world, rows, django_assert_max_num_queries):
    from referrals.services.reconciliation import reconciliation_run

    data = rf.csv_bytes(
        [{"姓名": f"新{i}", "身份证号": rf.resident_id(600 + i)} for i in range(rows)],
        ["姓名", "身份证号"],
    )
    run = reconciliation_run(by=world.users.doctor_a, partner="police", file_name="x", data=data)
    client = as_user(world.users.doctor_a)
    url = reverse("referrals:reconciliation-detail", args=[run.pk])
    client.get(url)
    with django_assert_max_num_queries(16):
        response = client.get(url, {"outcome": "missing_from_register"})
    assert response.content.decode().count("<tr>") == rows + 1


@pytest.mark.parametrize("rows", [1, 30])
def test_exchange_runs_api_queries_do_not_grow(
    world, more, rows, tmp_path, django_assert_max_num_queries
):
    from rest_framework.test import APIClient

    from referrals.rules import Period
    from referrals.services.exchange import exchange_build

    partner = rf.partner(by=more.prevention, folder=str(tmp_path))
    for i in range(rows):
        exchange_build(
            partner=partner,
            kind="scheduled",
            period=Period(f"P{i}", date(2026, 1, 1), date(2026, 3, 31)),
        )
    api = APIClient()
    api.force_authenticate(world.users.governance)
    with django_assert_max_num_queries(10):
        response = api.get(reverse("referrals-api:exchange-run-list"), {"page_size": 50})
    body = response.json()
    assert body["count"] == rows
    assert set(body["results"][0]) >= {
        "partner",
        "period",
        "status",
        "rows",
        "sha256",
        "created_at",
    }
    assert body["results"][0]["partner"] == "police"


def test_entitlement_tasks_page_resolves_a_task(world, patients):
    from referrals.services.reconciliation import reconciliation_run

    data = rf.csv_bytes(
        [{"姓名": "甲一", "身份证号": patients.pA1.id_number, "困难类别": "特困"}],
        ["姓名", "身份证号", "困难类别"],
    )
    reconciliation_run(by=world.users.civil, partner="civil_affairs", file_name="m", data=data)
    civil = as_user(world.users.civil)
    html = civil.get(reverse("referrals:task-list")).content.decode()
    assert "困难类别不一致" in html and "甲一" in html
    task = EntitlementTask.objects.get()
    civil.post(
        reverse("referrals:task-resolve", args=[task.pk]), {"status": "resolved", "note": "已更新"}
    )
    task.refresh_from_db()
    assert task.status == "resolved"


@pytest.mark.parametrize("rows", [1, 30])
def test_task_list_queries_do_not_grow(world, rows, django_assert_max_num_queries):
    from referrals.services.reconciliation import reconciliation_run

    people = [
        pf.patient(by=world.users.doctor_a, village="990102001001", name=f"t{i}")
        for i in range(rows)
    ]
    data = rf.csv_bytes(
        [{"姓名": p.name, "身份证号": p.id_number, "困难类别": "低保"} for p in people],
        ["姓名", "身份证号", "困难类别"],
    )
    reconciliation_run(by=world.users.civil, partner="civil_affairs", file_name="m", data=data)
    client = as_user(world.users.civil)
    client.get(reverse("referrals:task-list"))
    with django_assert_max_num_queries(14):
        response = client.get(reverse("referrals:task-list"))
    assert response.content.decode().count("<tr>") == min(rows, 20) + 1
