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
