"""Reconciliation of a partner's list with the register (DOMAIN.md)."""

from __future__ import annotations

from datetime import date

import pytest
from django.core.exceptions import PermissionDenied
from django.urls import reverse

from accounts.models import Region
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
    "outside_scope": 0,
    "duplicate_rows": 0,
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
    # pA1 is on the police list but its "police registered" flag says no: the
    # register is out of date, a task for the managing health centre
    task = EntitlementTask.objects.get()
    assert (task.patient, task.kind, task.department) == (
        patients.pA1,
        "police_registered",
        "health",
    )
    assert task.organisation == world.org.hc_a1


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


def test_a_patient_registered_outside_the_users_scope_is_neither_matched_nor_a_clue(
    world, patients
):
    # pC1 lives in county C: county A's governance office may not see it, but
    # it is on the register, so it is no clue either — only counted
    data = rf.csv_bytes(
        [{"姓名": "丙一", "身份证号": patients.pC1.id_number}], ["姓名", "身份证号"]
    )
    run = svc.reconciliation_run(
        by=world.users.governance, partner="governance", file_name="g.csv", data=data
    )
    assert run.counts["matched"] == 0 and run.counts["missing_from_register"] == 0
    assert run.counts["outside_scope"] == 1 and run.counts["clues_created"] == 0
    assert not Clue.objects.exists()
    assert not ReconciliationItem.objects.filter(run=run).exists()


def test_a_county_list_uploaded_by_a_township_officer(world, patients, client):
    """police_a (township A1) uploads the county police list: pB1 (township
    A2) and pC1 (county C) are on the register, out of the officer's scope —
    counted, never clues, never shown; a stranger of township A2 is a clue
    for A2's health centre."""
    from referrals.selectors import reconciliation_items

    stranger = rf.resident_id(701, birth=date(1991, 5, 6))
    data = rf.csv_bytes(
        [
            {"姓名": "甲一", "身份证号": patients.pA1.id_number},
            {"姓名": "乙一", "身份证号": patients.pB1.id_number},
            {"姓名": "丙一", "身份证号": patients.pC1.id_number},
            {"姓名": "新人", "身份证号": stranger, "现住址区划代码": "990102002001"},
        ],
        ["姓名", "身份证号", "现住址区划代码"],
    )
    officer = world.users.police_a
    run = svc.reconciliation_run(by=officer, partner="police", file_name="县名单.csv", data=data)
    assert run.region == world.a1
    counts = run.counts
    assert (counts["rows"], counts["matched"], counts["outside_scope"]) == (4, 1, 2)
    assert (counts["missing_from_register"], counts["clues_created"]) == (1, 1)
    clue = Clue.objects.get()
    assert (clue.name, clue.assigned_organisation) == ("新人", world.org.hc_a2)
    # nothing tells the officer who of 乙一 and 丙一 is registered elsewhere
    shown = list(reconciliation_items(user=officer, run=run).values_list("name", flat=True))
    assert "乙一" not in shown and "丙一" not in shown
    from accounts.tests import factories as af

    af.login(client, officer)
    for outcome in ("missing_from_register", "matched", "review", "invalid", "duplicate"):
        url = reverse("referrals:reconciliation-detail", args=[run.pk])
        page = client.get(f"{url}?outcome={outcome}")
        assert page.status_code == 200
        body = page.content.decode()
        assert "乙一" not in body and "丙一" not in body
        assert patients.pB1.id_number not in body and patients.pC1.id_number not in body


def test_a_person_named_twice_in_a_file_is_compared_once(world, patients):
    stranger = rf.resident_id(702, birth=date(1992, 7, 8))
    rows = [
        {"姓名": "甲一", "身份证号": patients.pA1.id_number},
        {"姓名": "新人", "身份证号": stranger, "现住址区划代码": "990102001001"},
        {"姓名": "甲一", "身份证号": patients.pA1.id_number.lower()},
        {"姓名": "新人", "身份证号": stranger, "现住址区划代码": "990102001001"},
    ]
    data = rf.csv_bytes(rows, ["姓名", "身份证号", "现住址区划代码"])
    run = svc.reconciliation_run(
        by=world.users.governance, partner="police", file_name="p.csv", data=data
    )
    counts = run.counts
    assert (counts["rows"], counts["matched"], counts["missing_from_register"]) == (4, 1, 1)
    assert (counts["duplicate_rows"], counts["status_disagreements"]) == (2, 1)
    assert (counts["clues_created"], counts["tasks_created"]) == (1, 1)
    dups = ReconciliationItem.objects.filter(run=run, outcome=ItemOutcome.DUPLICATE)
    assert sorted(dups.values_list("row_number", flat=True)) == [4, 5]
    assert Clue.objects.count() == 1 and EntitlementTask.objects.count() == 1


def test_a_clue_finds_its_township_from_the_address_or_goes_to_the_county(world, patients, more):
    """County A's governance list without division codes: an address naming
    township 镇2 reaches A2's health centre; no address at all goes to the
    county prevention agency, shown to its staff as not yet assigned."""
    from referrals.selectors import clue_list_visible_to

    by_address = rf.resident_id(703, birth=date(1980, 1, 9))
    nowhere = rf.resident_id(704, birth=date(1981, 2, 10))
    foreign = rf.resident_id(705, birth=date(1982, 3, 11), prefix="990103")
    data = rf.csv_bytes(
        [
            {"姓名": "地址人", "身份证号": by_address, "现住址": "镇2村2-2号"},
            {"姓名": "无址人", "身份证号": nowhere},
            {"姓名": "外县人", "身份证号": foreign},
        ],
        ["姓名", "身份证号", "现住址"],
    )
    svc.reconciliation_run(
        by=world.users.governance, partner="governance", file_name="g.csv", data=data
    )
    clues = {c.name: c for c in Clue.objects.select_related("assigned_organisation")}
    assert clues["地址人"].region == Region.objects.get(code="990102002002")
    assert clues["地址人"].assigned_organisation == world.org.hc_a2
    assert not clues["地址人"].awaits_township
    # the ID number's address code names county C: not the uploader's area
    for name in ("无址人", "外县人"):
        assert clues[name].region == world.county_a
        assert clues[name].assigned_organisation == world.org.prevention_a
        assert clues[name].awaits_township
    visible = clue_list_visible_to(user=more.prevention)
    assert {c.name for c in visible.exclude(assigned_organisation__kind="health_centre")} == {
        "无址人",
        "外县人",
    }
    # a township doctor is not handed what belongs to no township
    assert not clue_list_visible_to(user=world.users.doctor_a).filter(name="无址人").exists()


def test_the_police_registered_task_goes_to_the_health_centre(world, patients):
    from referrals.selectors import entitlement_task_list_visible_to

    data = rf.csv_bytes(
        [{"姓名": "甲一", "身份证号": patients.pA1.id_number}], ["姓名", "身份证号"]
    )
    svc.reconciliation_run(by=world.users.police_a, partner="police", file_name="p", data=data)
    task = EntitlementTask.objects.get()
    assert (task.department, task.organisation) == ("health", world.org.hc_a1)
    assert entitlement_task_list_visible_to(user=world.users.doctor_a).get() == task
    assert not entitlement_task_list_visible_to(user=world.users.police_a).exists()
    assert (task.partner_value_label, task.register_value_label) == ("是", "否")


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
        # not police-registered: a task for health; every other one reported
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
    # the register's flag is what is out of date: health corrects it
    assert set(police.values_list("organisation", flat=True)) == {world.org.hc_a1.pk}
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


def test_the_task_list_shows_labels_not_codes(world, patients, client):
    from accounts.tests import factories as af
    from patients.models import Patient

    Patient.objects.filter(pk=patients.pA1.pk).update(certificate="held", certificate_grade=2)
    civil = rf.csv_bytes(
        [{"姓名": "甲一", "身份证号": patients.pA1.id_number, "困难类别": "低保"}],
        ["姓名", "身份证号", "困难类别"],
    )
    svc.reconciliation_run(by=world.users.civil, partner="civil_affairs", file_name="m", data=civil)
    dpf = rf.csv_bytes(
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
    svc.reconciliation_run(
        by=world.users.dpf, partner="disabled_federation", file_name="d", data=dpf
    )
    af.login(client, world.users.civil)
    body = client.get(reverse("referrals:task-list")).content.decode()
    assert '<td data-label="对方记录">低保</td>' in body
    assert '<td data-label="本系统记录">无</td>' in body
    assert "dibao" not in body
    af.login(client, world.users.dpf)
    body = client.get(reverse("referrals:task-list")).content.decode()
    assert "已持证（3级）" in body and "已持证（2级）" in body and "held" not in body
