"""Reconciliation of a partner's list with the register (DOMAIN.md)."""

from __future__ import annotations

from datetime import date

import pytest
from django.core.exceptions import PermissionDenied

from core.errors import DomainError
from followups.tests import factories as ff
from patients.tests import factories as pf
from referrals.models import (
    Clue,
    EntitlementTask,
    ItemOutcome,
    ReconciliationItem,
    ReconciliationRun,
)
from referrals.services import reconciliation as svc
from referrals.tests import factories as rf

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

HEADERS = ["序号", "姓名", "身份证号", "性别", "出生日期", "现住址区划代码"]


@pytest.fixture
def register(world, patients):
    """pA1, pB1 (county A) and a risk-3 patient the police have not listed."""
    high = pf.patient(by=world.users.doctor_a, village="990102001002", name="高危")
    ff.record(by=world.users.doctor_a, patient=high, risk_level=3)
    return high


def police_list(patients) -> bytes:
    stranger = rf.resident_id(700, birth=date(1990, 1, 2))
    rows = [
        # 1. pA1 by ID number
        {"序号": 1, "姓名": "甲一", "身份证号": patients.pA1.id_number},
        # 2. pB1 with a wrong ID, but name + birth date + gender + township agree
        {
            "序号": 2,
            "姓名": "乙一",
            "身份证号": "990102198005179999",
            "性别": "男",
            "出生日期": patients.pB1.birth_date.isoformat(),
            "现住址区划代码": "990102002001",
        },
        # 3. someone the register does not know
        {"序号": 3, "姓名": "新人", "身份证号": stranger, "现住址区划代码": "990102001001"},
        # 4. an unreadable ID number and nothing else to go by
        {"序号": 4, "姓名": "无名", "身份证号": "12345"},
    ]
    return rf.csv_bytes(rows, HEADERS)


EXPECTED = {
    "rows": 4,
    "matched": 1,
    "missing_from_register": 1,
    "status_disagreements": 1,
    "high_risk_missing_from_partner": 1,
    "needs_review": 1,
    "invalid_rows": 1,
    "clues_created": 1,
    "tasks_created": 1,
}


def test_a_generated_police_list_gives_the_expected_counts(world, patients, register):
    run = svc.reconciliation_run(
        by=world.users.governance,
        partner="police",
        file_name="公安名单.csv",
        data=police_list(patients),
    )
    assert run.counts == EXPECTED
    outcomes = dict(ReconciliationItem.objects.filter(run=run).values_list("row_number", "outcome"))
    assert outcomes[2] == ItemOutcome.MATCHED
    assert outcomes[3] == ItemOutcome.REVIEW
    assert outcomes[4] == ItemOutcome.MISSING_FROM_REGISTER
    assert outcomes[5] == ItemOutcome.INVALID
    high = ReconciliationItem.objects.get(run=run, outcome=ItemOutcome.HIGH_RISK_MISSING)
    assert high.patient == register
    # the missing person is a clue for the township health centre
    clue = Clue.objects.get()
    assert (clue.source, clue.name, clue.assigned_organisation) == (
        "reconciliation",
        "新人",
        world.org.hc_a1,
    )
    # pA1 is on the police list but not flagged police-registered: a task for police
    task = EntitlementTask.objects.get()
    assert (task.patient, task.kind, task.department) == (
        patients.pA1,
        "police_registered",
        "police",
    )
    assert task.organisation == world.org.ps_a1


def test_the_same_file_again_is_the_same_result_and_no_new_clues(world, patients, register):
    data = police_list(patients)
    first = svc.reconciliation_run(
        by=world.users.governance, partner="police", file_name="a.csv", data=data
    )
    again = svc.reconciliation_run(
        by=world.users.governance, partner="police", file_name="b.csv", data=data
    )
    assert again.pk == first.pk and again.counts == EXPECTED
    assert Clue.objects.count() == 1 and EntitlementTask.objects.count() == 1
    assert ReconciliationRun.objects.count() == 1


def test_a_different_file_naming_the_same_person_adds_no_clue(world, patients, register):
    svc.reconciliation_run(
        by=world.users.governance, partner="police", file_name="a.csv", data=police_list(patients)
    )
    data = police_list(patients) + b"\r\n"
    run = svc.reconciliation_run(
        by=world.users.governance, partner="police", file_name="b.csv", data=data
    )
    assert run.counts["missing_from_register"] == 1 and run.counts["clues_created"] == 0
    assert Clue.objects.count() == 1


def test_civil_affairs_disagreements_become_tasks_for_civil_affairs(world, patients):
    data = rf.csv_bytes(
        [
            {
                "姓名": "甲一",
                "身份证号": patients.pA1.id_number,
                "困难类别": "低保",
                "参加社区康复": "是",
            }
        ],
        ["姓名", "身份证号", "困难类别", "参加社区康复"],
    )
    run = svc.reconciliation_run(
        by=world.users.civil, partner="civil_affairs", file_name="民政.csv", data=data
    )
    assert run.counts["status_disagreements"] == 2
    assert run.counts["high_risk_missing_from_partner"] == 0
    tasks = set(
        EntitlementTask.objects.values_list("kind", "department", "partner_value", "register_value")
    )
    assert tasks == {
        ("poverty", "civil_affairs", "dibao", "none"),
        ("rehab", "civil_affairs", "yes", "no"),
    }
    assert set(EntitlementTask.objects.values_list("organisation", flat=True)) == {
        world.org.civil_a.pk
    }


def test_federation_certificate_grade_disagreement(world, patients):
    from patients.models import Patient

    Patient.objects.filter(pk=patients.pA1.pk).update(certificate="held", certificate_grade=2)
    data = rf.csv_bytes(
        [
            {
                "姓名": "甲一",
                "身份证号": patients.pA1.id_number,
                "残疾人证": "持证",
                "精神残疾等级": "三级",
            }
        ],
        ["姓名", "身份证号", "残疾人证", "精神残疾等级"],
    )
    run = svc.reconciliation_run(
        by=world.users.dpf, partner="disabled_federation", file_name="残联.csv", data=data
    )
    assert run.counts["status_disagreements"] == 1
    task = EntitlementTask.objects.get()
    assert (task.kind, task.partner_value, task.register_value) == (
        "certificate",
        "held/3",
        "held/2",
    )


def test_the_register_outside_the_users_scope_is_not_matched(world, patients):
    # pC1 lives in county C: for county A's governance office it is "missing"
    data = rf.csv_bytes(
        [{"姓名": "丙一", "身份证号": patients.pC1.id_number}], ["姓名", "身份证号"]
    )
    run = svc.reconciliation_run(
        by=world.users.governance, partner="governance", file_name="g.csv", data=data
    )
    assert run.counts["matched"] == 0 and run.counts["missing_from_register"] == 1


def test_an_unreadable_file_or_missing_columns_commits_nothing_and_is_recorded(world, patients):
    with pytest.raises(DomainError) as err:
        svc.reconciliation_run(
            by=world.users.civil,
            partner="civil_affairs",
            file_name="x.csv",
            data=rf.csv_bytes([{"名字": "甲一"}], ["名字"]),
        )
    assert err.value.message == svc.ERR_COLUMNS and err.value.field == "file"
    assert not Clue.objects.exists() and not EntitlementTask.objects.exists()
    assert ReconciliationRun.objects.get().status == "failed"


def test_departments_upload_only_their_own_lists(world):
    with pytest.raises(PermissionDenied):
        svc.reconciliation_run(by=world.users.civil, partner="police", file_name="x", data=b"")
    for user in (world.users.finance, world.users.official, world.users.admin):
        with pytest.raises(PermissionDenied):
            svc.reconciliation_run(by=user, partner="police", file_name="x", data=b"")
    with pytest.raises(DomainError):
        svc.reconciliation_run(by=world.users.governance, partner="bank", file_name="x", data=b"")


def test_review_different_person_raises_a_clue_and_same_person_does_not(world, patients, register):
    run = svc.reconciliation_run(
        by=world.users.governance, partner="police", file_name="a.csv", data=police_list(patients)
    )
    item = ReconciliationItem.objects.get(run=run, outcome=ItemOutcome.REVIEW)
    with pytest.raises(PermissionDenied):  # the governance office does not decide identity
        svc.reconciliation_review(
            run_id=run.pk, item_id=item.pk, by=world.users.governance, same_person=False
        )
    # the candidate lives in township A2: doctor_b decides, not doctor_a
    with pytest.raises(PermissionDenied):
        svc.reconciliation_review(
            run_id=run.pk, item_id=item.pk, by=world.users.doctor_a, same_person=False
        )
    svc.reconciliation_review(
        run_id=run.pk, item_id=item.pk, by=world.users.doctor_b, same_person=False
    )
    item.refresh_from_db()
    assert item.review_status == "different_person" and item.clue.name == "乙一"
    assert item.clue.assigned_organisation == world.org.hc_a2
    with pytest.raises(DomainError):
        svc.reconciliation_review(
            run_id=run.pk, item_id=item.pk, by=world.users.doctor_b, same_person=True
        )


def test_entitlement_task_is_resolved_by_its_department(world, patients):
    data = rf.csv_bytes(
        [{"姓名": "甲一", "身份证号": patients.pA1.id_number, "困难类别": "特困"}],
        ["姓名", "身份证号", "困难类别"],
    )
    svc.reconciliation_run(
        by=world.users.civil, partner="civil_affairs", file_name="m.csv", data=data
    )
    task = EntitlementTask.objects.get()
    from django.http import Http404

    with pytest.raises(Http404):
        svc.entitlement_task_resolve(task_id=task.pk, by=world.users.dpf, status="resolved")
    svc.entitlement_task_resolve(
        task_id=task.pk, by=world.users.civil, status="resolved", note="已核实并更新"
    )
    task.refresh_from_db()
    assert (task.status, task.resolved_by) == ("resolved", world.users.civil)


# One budget for 10 and 60 rows (33 measured at 10: the run and its task
# record, the register, the open tasks, the organisations, the clues already
# made, the health centres, the bulk inserts, the audit row); a query per
# row would add at least 50 (row by row it was 127 at 10 rows, 651 at 60).
RECONCILIATION_QUERY_BUDGET = 34


@pytest.mark.parametrize("rows", [10, 60])
def test_reconciliation_queries_do_not_grow_with_the_rows(
    world, rows, django_assert_max_num_queries
):
    made = [
        pf.patient(by=world.users.doctor_a, village="990102001001", name=f"比对{i:02d}")
        for i in range(rows)
    ]
    listed = [
        # not police-registered: a task for police; every other one reported
        # dead by police: a task for the health centre too
        {
            "序号": i,
            "姓名": p.name,
            "身份证号": p.id_number,
            "管理状态": "死亡" if i % 2 else "在管",
        }
        for i, p in enumerate(made)
    ]
    listed += [
        {
            "序号": rows + k,
            "姓名": f"新人{k}",
            "身份证号": rf.resident_id(600 + k, birth=date(1991, 5, 6)),
            "现住址区划代码": "990102001002",
        }
        for k in range(rows // 2)
    ]
    data = rf.csv_bytes(listed, [*HEADERS, "管理状态"])
    with django_assert_max_num_queries(RECONCILIATION_QUERY_BUDGET):
        run = svc.reconciliation_run(
            by=world.users.governance, partner="police", file_name="名单.csv", data=data
        )
    assert run.counts["matched"] == rows
    assert run.counts["status_disagreements"] == rows + rows // 2
    assert run.counts["tasks_created"] == rows + rows // 2
    assert run.counts["clues_created"] == rows // 2
    police = EntitlementTask.objects.filter(kind="police_registered")
    assert police.count() == rows
    assert set(police.values_list("organisation", flat=True)) == {world.org.ps_a1.pk}
    health = EntitlementTask.objects.filter(kind="status", department="health")
    assert set(health.values_list("organisation", flat=True)) == {world.org.hc_a1.pk}
    clues = Clue.objects.filter(reconciliation_run=run)
    assert set(clues.values_list("assigned_organisation", flat=True)) == {world.org.hc_a1.pk}
    assert all(c.history.get().history_change_reason == "clue.reconciliation" for c in clues)
    items = ReconciliationItem.objects.filter(run=run, outcome=ItemOutcome.MISSING_FROM_REGISTER)
    assert {i.clue_id for i in items} == set(clues.values_list("pk", flat=True))
    # the same people in another file: nothing new, still a constant count
    with django_assert_max_num_queries(RECONCILIATION_QUERY_BUDGET):
        again = svc.reconciliation_run(
            by=world.users.governance, partner="police", file_name="又.csv", data=data + b"\r\n"
        )
    assert again.counts["tasks_created"] == 0 and again.counts["clues_created"] == 0
    assert Clue.objects.count() == rows // 2
