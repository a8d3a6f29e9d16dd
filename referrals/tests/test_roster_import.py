"""Roster import: validated first, all-or-nothing, idempotent, with a row-by-row
error report in Chinese naming row and field (SECURITY.md R8)."""

from __future__ import annotations

import io

import pytest
from openpyxl import load_workbook

from audit.models import AuditEvent
from core.models import TaskRun
from patients.models import Patient
from patients.rules import ERR_CHECKSUM, convert_15_to_18
from referrals import roster
from referrals.models import ImportStatus, RosterImport
from referrals.services import imports as svc
from referrals.tests import factories as rf

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def start(user, data, name="花名册.xlsx", capture=None):
    with capture(execute=True):
        imp = svc.roster_import_start(by=user, file_name=name, data=data)
    imp.refresh_from_db()
    return imp


def bad_checksum(number: str) -> str:
    last = "0" if number[-1] != "0" else "1"
    return number[:-1] + last


def test_a_bad_row_at_999_commits_nothing_then_the_fixed_file_commits_1000_then_0(
    world, django_capture_on_commit_callbacks
):
    doctor = world.users.doctor_a
    rows = [rf.roster_row(n) for n in range(1000)]
    broken = [dict(r) for r in rows]
    # Excel row 999 = the 998th data row (the header is row 1)
    broken[997]["身份证号"] = bad_checksum(broken[997]["身份证号"])
    before = Patient.objects.count()

    imp = start(doctor, rf.xlsx(broken), capture=django_capture_on_commit_callbacks)
    assert imp.status == ImportStatus.FAILED
    assert Patient.objects.count() == before
    assert imp.errors == [svc.row_error(999, "身份证号", ERR_CHECKSUM)]
    assert imp.errors[0]["text"] == f"第999行「身份证号」：{ERR_CHECKSUM}"
    assert imp.content == ""  # the upload is purged

    fixed = start(doctor, rf.xlsx(rows), capture=django_capture_on_commit_callbacks)
    assert fixed.status == ImportStatus.SUCCEEDED
    assert (fixed.created_count, fixed.existing_count, fixed.total_rows) == (1000, 0, 1000)
    assert Patient.objects.count() == before + 1000
    p = Patient.objects.get(name="导入0007")
    assert p.region_id == "990102001001" and p.guardian.name == "监护7"
    assert p.managing_organisation == world.org.hc_a1

    again = start(doctor, rf.xlsx(rows), capture=django_capture_on_commit_callbacks)
    assert again.status == ImportStatus.SUCCEEDED
    assert (again.created_count, again.existing_count) == (0, 1000)
    assert Patient.objects.count() == before + 1000
    run = TaskRun.objects.get(pk=again.task_run_id)
    assert (run.status, run.progress, run.total) == ("succeeded", 1000, 1000)
    assert AuditEvent.objects.filter(action="patient.import").count() == 2


def test_every_bad_field_is_reported_with_row_and_field(world, django_capture_on_commit_callbacks):
    rows = [rf.roster_row(n) for n in range(4)]
    rows[0]["姓名"] = ""
    rows[1]["诊断"] = "抑郁症"
    rows[2]["现住址区划代码"] = "990102002001"  # another township: not doctor_a's
    rows[3]["身份证号"] = rows[2]["身份证号"]
    imp = start(world.users.doctor_a, rf.xlsx(rows), capture=django_capture_on_commit_callbacks)
    assert imp.status == ImportStatus.FAILED
    got = [(e["row"], e["field"]) for e in imp.errors]
    assert got == [(2, "姓名"), (3, "诊断"), (4, "现住址区划代码"), (5, "身份证号")]
    assert imp.errors[2]["message"] == str(svc.ERR_REGION_SCOPE)
    assert imp.errors[3]["message"] == str(svc.ERR_DUPLICATE_IN_FILE % {"row": 4})
    assert not Patient.objects.filter(name__startswith="导入").exists()


def test_missing_required_columns_are_named(world, django_capture_on_commit_callbacks):
    data = rf.xlsx([{"姓名": "张三"}], headers=["姓名", "身份证号"])
    imp = start(world.users.doctor_a, data, capture=django_capture_on_commit_callbacks)
    assert imp.status == ImportStatus.FAILED
    assert "现住址区划代码" in imp.errors[0]["message"]
    assert "诊断" in imp.errors[0]["message"]


def test_csv_roster_with_gbk_encoding_and_legacy_15_digit_id(
    world, django_capture_on_commit_callbacks
):
    headers = ["姓名", "身份证号", "现住址区划代码", "现住址", "诊断"]
    legacy = "990102750304012"  # 15 digits: converted to 18
    text = ",".join(headers) + "\r\n" + f"老号,{legacy},990102001002,某村,双相障碍\r\n"
    imp = start(
        world.users.doctor_a,
        text.encode("gb18030"),
        name="roster.csv",
        capture=django_capture_on_commit_callbacks,
    )
    assert imp.status == ImportStatus.SUCCEEDED, imp.errors
    p = Patient.objects.get(name="老号")
    assert p.id_number == convert_15_to_18(legacy)
    assert p.diagnosis == "bipolar"


def test_only_health_staff_with_a_managed_area_import(world):
    from django.core.exceptions import PermissionDenied

    for user in (world.users.police_a, world.users.civil, world.users.official):
        with pytest.raises(PermissionDenied):
            svc.roster_import_start(by=user, file_name="x.xlsx", data=b"x")
    assert not RosterImport.objects.exists()


def test_a_redelivered_task_does_not_import_twice(world, django_capture_on_commit_callbacks):
    imp = start(
        world.users.doctor_a,
        rf.xlsx([rf.roster_row(1)]),
        capture=django_capture_on_commit_callbacks,
    )
    assert imp.status == ImportStatus.SUCCEEDED
    assert svc.roster_import_run(imp.pk) is None


def test_the_template_has_every_column_and_text_formatted_id_column():
    wb = load_workbook(io.BytesIO(roster.template_workbook()))
    ws = wb["花名册"]
    headers = [c.value for c in ws[1]]
    assert headers == [c.header for c in roster.COLUMNS]
    id_col = headers.index("身份证号") + 1
    assert ws.cell(row=2, column=id_col).number_format == "@"
    assert "填写说明" in wb.sheetnames


@pytest.mark.django_db(transaction=True)
def test_progress_advances_while_the_rows_are_written(world, monkeypatch):
    """The write is one transaction; a reader on another connection (the
    page polling the import) still sees the write stage advance, batch by
    batch, while none of the rows is visible yet."""
    import threading

    from django.db import connection

    from referrals.selectors import roster_import_progress

    monkeypatch.setattr(svc, "WRITE_BATCH", 5)
    doctor = world.users.doctor_a
    rows = [rf.roster_row(n) for n in range(12)]
    monkeypatch.setattr(svc, "outbox_put", lambda **kwargs: None)  # run it by hand below
    imp = svc.roster_import_start(by=doctor, file_name="r.xlsx", data=rf.xlsx(rows))
    seen = []

    def look_from_another_connection():
        try:
            fresh = RosterImport.objects.get(pk=imp.pk)
            p = roster_import_progress(fresh)
            seen.append((fresh.status, p["stage"], p["done"], p["total"], Patient.objects.count()))
        finally:
            connection.close()

    real_report = svc.progress_report

    def report_and_look(run_id, **kwargs):
        real_report(run_id, **kwargs)
        reader = threading.Thread(target=look_from_another_connection)
        reader.start()
        reader.join(20)

    monkeypatch.setattr(svc, "progress_report", report_and_look)
    before = Patient.objects.count()
    svc.roster_import_run(imp.pk)
    assert [s[:4] for s in seen] == [
        ("writing", "writing", 0, 12),
        ("writing", "writing", 5, 12),
        ("writing", "writing", 10, 12),
        ("writing", "writing", 12, 12),
    ]
    # nothing was visible to the other connection before the commit
    assert {s[4] for s in seen} == {before}
    imp.refresh_from_db()
    assert imp.status == ImportStatus.SUCCEEDED and imp.created_count == 12
    assert Patient.objects.count() == before + 12
    # once finished, the page reads the final figures from the TaskRun row
    done = roster_import_progress(imp)
    assert (done["stage"], done["done"], done["total"]) == ("", 12, 12)


def test_bulk_written_patients_have_history_guardians_and_audit_rows(
    world, django_capture_on_commit_callbacks
):
    from audit.services import verify_chain
    from patients.models import Guardian

    rows = [rf.roster_row(n) for n in range(30)]
    imp = start(world.users.doctor_a, rf.xlsx(rows), capture=django_capture_on_commit_callbacks)
    assert imp.status == ImportStatus.SUCCEEDED and imp.created_count == 30
    created = Patient.objects.filter(name__startswith="导入")
    assert created.count() == 30
    history = Patient.history.filter(id__in=created.values("id"))
    assert history.count() == 30
    assert set(history.values_list("history_type", "history_change_reason", "history_user")) == {
        ("+", "patient.registered", world.users.doctor_a.pk)
    }
    guardians = Guardian.objects.filter(patient__in=created)
    assert guardians.count() == 30
    assert Guardian.history.filter(patient_id__in=created.values("id")).count() == 30
    audited = AuditEvent.objects.filter(action="patient.create", object_type="patient")
    assert set(audited.values_list("object_id", flat=True)) == {
        str(pk) for pk in created.values_list("pk", flat=True)
    }
    assert verify_chain().ok  # the chain is unbroken


def test_the_supplement_form_columns_are_imported(world, django_capture_on_commit_callbacks):
    headers = [c.header for c in roster.COLUMNS if c.key != "guardian_relation"] + ["与患者关系"]
    row = rf.roster_row(
        1,
        **{
            "与患者关系": "父亲",
            "村（居）委会联系人": "王主任",
            "村（居）委会联系电话": "0999-7654321",
            "就业情况": "农民",
            "初次发病时间": "2010-05",
            "既往主要症状": "幻觉、猜疑",
            "既往关锁情况": "关锁已解除",
            "既往门诊治疗": "间断门诊治疗",
            "首次抗精神病药治疗时间": "2011",
            "既往住院次数": "2",
            "最近一次治疗效果": "好转",
            "肇事（次）": "1",
            "自伤（次）": "0",
            "专科医生意见": "坚持服药，家属加强看护。",
        },
    )
    row.pop("监护人关系")
    imp = start(
        world.users.doctor_a, rf.xlsx([row], headers), capture=django_capture_on_commit_callbacks
    )
    assert imp.status == ImportStatus.SUCCEEDED, imp.errors
    p = Patient.objects.get(name=row["姓名"])
    assert (p.village_contact_name, p.village_contact_phone) == ("王主任", "0999-7654321")
    assert p.employment == "farmer"
    assert (p.first_onset_date.isoformat(), p.first_onset_precision) == ("2010-05-01", "month")
    assert (p.first_antipsychotic_date.isoformat(), p.first_antipsychotic_precision) == (
        "2011-01-01",
        "year",
    )
    assert p.past_symptoms == ["hallucination", "suspicion"]
    assert (p.past_lock_status, p.past_outpatient, p.past_admissions) == (
        "released",
        "intermittent",
        2,
    )
    assert p.recent_treatment_effect == "improved"
    assert p.dangerous_history == {"trouble": 1}
    assert p.specialist_opinion == "坚持服药，家属加强看护。"
    assert p.guardian.relation == "父亲"


def test_bad_supplement_values_are_named(world, django_capture_on_commit_callbacks):
    rows = [
        rf.roster_row(1, **{"既往主要症状": "幻觉、会飞"}),
        rf.roster_row(2, **{"既往住院次数": "-1"}),
        rf.roster_row(3, **{"初次发病时间": "去年"}),
        rf.roster_row(4, **{"就业情况": "自由职业"}),
    ]
    imp = start(world.users.doctor_a, rf.xlsx(rows), capture=django_capture_on_commit_callbacks)
    assert imp.status == ImportStatus.FAILED
    assert [(e["row"], e["field"]) for e in imp.errors] == [
        (2, "既往主要症状"),
        (3, "既往住院次数"),
        (4, "初次发病时间"),
        (5, "就业情况"),
    ]
    assert imp.errors[1]["message"] == str(roster.ERR_COUNT)
    assert imp.errors[2]["message"] == str(roster.ERR_PARTIAL_DATE)
