"""Pure rules: state machine, deadlines, periods, back-off, manifest,
disagreements (no database)."""

from __future__ import annotations

from datetime import date

import pytest

from patients import fieldsets
from referrals import rules


@pytest.mark.parametrize(
    "current, target, ok",
    [
        ("pending", "accepted", True),
        ("pending", "rejected", True),
        ("pending", "cancelled", True),
        ("pending", "completed", False),
        ("accepted", "completed", True),
        ("accepted", "cancelled", False),
        ("accepted", "rejected", False),
        ("rejected", "accepted", False),
        ("completed", "accepted", False),
        ("cancelled", "accepted", False),
    ],
)
def test_state_machine(current, target, ok):
    assert rules.can_transition(current, target) is ok


def test_accept_deadline_is_14_days_or_1_for_the_green_channel():
    day = date(2026, 3, 1)
    assert rules.accept_deadline(day, green_channel=False, days=14, green_days=1) == date(
        2026, 3, 15
    )
    assert rules.accept_deadline(day, green_channel=True, days=14, green_days=1) == date(2026, 3, 2)


def test_complete_deadline_downward_counts_from_discharge():
    kwargs = {"complete_days": 30, "first_followup_days": 14}
    assert rules.complete_deadline(
        kind="downward", accepted_on=date(2026, 3, 10), discharge_date=date(2026, 3, 1), **kwargs
    ) == date(2026, 3, 15)
    assert rules.complete_deadline(
        kind="upward", accepted_on=date(2026, 3, 10), discharge_date=None, **kwargs
    ) == date(2026, 4, 9)


def conditions(**kw):
    base = {
        "kind": "upward",
        "status": "pending",
        "accept_by": date(2026, 3, 15),
        "complete_by": None,
        "discharge_date": None,
        "last_followup_date": None,
        "today": date(2026, 3, 16),
        "first_followup_days": 14,
    }
    return rules.overdue_conditions(**{**base, **kw})


def test_overdue_conditions():
    assert conditions() == ["accept"]
    assert conditions(today=date(2026, 3, 15)) == []
    assert conditions(status="accepted", complete_by=date(2026, 3, 1)) == ["complete"]
    assert conditions(status="accepted", complete_by=date(2026, 4, 1)) == []
    late_downward = {"kind": "downward", "discharge_date": date(2026, 3, 1)}
    assert conditions(**late_downward, accept_by=date(2026, 3, 20)) == ["followup"]
    assert (
        conditions(
            **late_downward, accept_by=date(2026, 3, 20), last_followup_date=date(2026, 3, 5)
        )
        == []
    )
    assert conditions(**late_downward, status="completed", accept_by=date(2026, 3, 20)) == []


@pytest.mark.parametrize(
    "today, schedule, label",
    [
        (date(2026, 11, 22), "quarterly", "2026Q3"),
        (date(2026, 1, 1), "quarterly", "2025Q4"),
        (date(2026, 4, 1), "quarterly", "2026Q1"),
        (date(2026, 11, 22), "half_yearly", "2026H1"),
        (date(2026, 6, 30), "half_yearly", "2025H2"),
        (date(2026, 7, 1), "half_yearly", "2026H1"),
    ],
)
def test_last_finished_period(today, schedule, label):
    period = rules.last_finished_period(today, schedule)
    assert period.label == label and period.end < today
    assert rules.period_containing(period.start, schedule) == period


def test_backoff_doubles_per_failure_up_to_the_cap():
    waits = [rules.backoff_seconds(n, base=60, cap=3600) for n in range(0, 9)]
    assert waits == [0, 60, 120, 240, 480, 960, 1920, 3600, 3600]


def test_manifest_signature_covers_everything_but_itself():
    content = b"\xef\xbb\xbfa,b\r\n"
    manifest = {"period": "2026Q3", "sha256": rules.sha256_hex(content), "counts": {"rows": 1}}
    manifest["hmac"] = rules.sign_manifest(manifest, "k")
    assert rules.verify_package(manifest, content, "k")
    assert not rules.verify_package({**manifest, "counts": {"rows": 2}}, content, "k")


def test_no_partner_column_set_holds_clinical_keys():
    for department in rules.PARTNER_COLUMNS:
        keys = {k for k, _h in rules.columns_for(department)}
        assert not keys & rules.CLINICAL_KEYS
        assert {"id_number", "name", "status"} <= keys


def test_every_partner_department_has_a_declared_field_set():
    assert set(rules.PARTNER_COLUMNS) <= set(fieldsets.FIELDSETS)
    assert set(rules.PARTNER_COLUMNS) == set(fieldsets.EXCHANGE_EXTRAS)


@pytest.mark.parametrize("department", sorted(rules.PARTNER_COLUMNS))
def test_each_partner_s_columns_come_from_its_declared_field_set(department):
    """Every column of a package is a field the department may see
    (``patients.fieldsets``) or a fact DOMAIN.md sends it; none is clinical."""
    allowed = fieldsets.exchange_fields(department)
    sources = {rules.column_source(k) for k, _h in rules.columns_for(department)}
    assert sources <= allowed, sources - allowed
    assert not sources & rules.CLINICAL_KEYS
    assert rules.columns_outside_fieldset(department) == set()


def test_police_files_never_contain_diagnosis_or_medical_fields():
    police = {k for k, _h in rules.columns_for("police")}
    medical = set(fieldsets.CLINICAL) | rules.CLINICAL_KEYS
    assert not police & medical
    assert not {rules.column_source(k) for k in police} & medical
    # the clinical fields are exactly what the police field set leaves out
    assert not set(fieldsets.CLINICAL) & fieldsets.exchange_fields("police")


@pytest.mark.parametrize(
    "column",
    [
        ("diagnosis", "诊断"),
        ("diagnosis_hospital", "确诊医院"),
        ("medication_compliance", "服药依从性"),
        ("past_symptoms", "既往主要症状"),
        ("poverty", "困难类别"),  # not clinical, but not the police's either
    ],
)
def test_a_column_added_outside_the_police_field_set_is_caught(column):
    columns = rules.columns_for("police") + (column,)
    assert rules.columns_outside_fieldset("police", columns) == {column[0]}


def test_a_derived_column_is_judged_by_the_field_it_comes_from():
    # risk is not the federation's; "last_incident" comes from the incidents,
    # which go to police and governance only
    columns = rules.columns_for("disabled_federation") + (("risk_level", "危险性等级"),)
    assert rules.columns_outside_fieldset("disabled_federation", columns) == {"risk_level"}
    columns = rules.columns_for("civil_affairs") + (("last_incident", "最近肇事肇祸"),)
    assert rules.columns_outside_fieldset("civil_affairs", columns) == {"last_incident"}


REGISTER = {
    "poverty": "none",
    "certificate": "none",
    "certificate_grade": None,
    "in_community_rehab": False,
    "police_registered": True,
    "status": "active",
}


@pytest.mark.parametrize(
    "partner, row, expected",
    [
        ("civil_affairs", {"poverty": "低保"}, [("poverty", "dibao", "none", "civil_affairs")]),
        ("civil_affairs", {"poverty": "无"}, []),
        ("civil_affairs", {"poverty": "看不懂"}, []),
        ("civil_affairs", {}, []),
        ("civil_affairs", {"rehab": "是"}, [("rehab", "yes", "no", "civil_affairs")]),
        (
            "disabled_federation",
            {"certificate": "持证", "certificate_grade": "二级"},
            [("certificate", "held", "none", "disabled_federation")],
        ),
        ("police", {}, []),
        ("police", {"status": "死亡"}, [("status", "deceased", "active", "health")]),
        ("governance", {"status": "在管"}, []),
    ],
)
def test_disagreements(partner, row, expected):
    found = [
        (d.kind, d.partner_value, d.register_value, d.department)
        for d in rules.disagreements(partner, row, REGISTER)
    ]
    assert found == expected


def test_a_police_list_names_a_patient_not_flagged_police_registered():
    found = rules.disagreements("police", {}, {**REGISTER, "police_registered": False})
    assert [(d.kind, d.department) for d in found] == [("police_registered", "health")]
