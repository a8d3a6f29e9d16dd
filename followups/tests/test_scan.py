"""The daily scan (set-based SQL): overdue and lost alerts once per episode,
escalation, closing ended overdue alerts, constant query count."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from core.models import TaskRun
from followups.models import Alert, AlertRecipient
from followups.selectors import alert_inbox_for, overdue_count_for
from followups.services.alerts import alert_acknowledge
from followups.services.scan import followup_scan
from followups.tasks import followup_scan as followup_scan_task
from followups.tests.factories import incident, record
from patients.models import Patient

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def make_overdue(patient, days: int) -> None:
    Patient.objects.filter(pk=patient.pk).update(
        next_followup_due=timezone.localdate() - timedelta(days=days)
    )


def rows_of(kind):
    return AlertRecipient.objects.filter(alert__kind=kind)


def test_overdue_alert_goes_to_the_health_centre_once(world, patients):
    make_overdue(patients.pA1, 3)
    counts = followup_scan()
    assert counts["overdue_raised"] == 1
    alert = Alert.objects.get(kind="overdue")
    assert alert.episode == f"overdue:{(timezone.localdate() - timedelta(days=3)).isoformat()}"
    assert list(rows_of("overdue").values_list("organisation_id", flat=True)) == [
        world.org.hc_a1.pk
    ]
    assert len(alert_inbox_for(user=world.users.doctor_a)) == 1
    assert not alert_inbox_for(user=world.users.police_a)
    assert alert.recipients.get().history.latest().history_change_reason == "followups.scan"


def test_running_the_scan_twice_raises_nothing_new(world, patients):
    make_overdue(patients.pA1, 3)
    Patient.objects.filter(pk=patients.pB1.pk).update(status="lost")
    first = followup_scan()
    before = (Alert.objects.count(), AlertRecipient.objects.count())
    second = followup_scan()
    assert first["overdue_raised"] == 1 and first["lost_raised"] == 1
    assert second["overdue_raised"] == second["lost_raised"] == second["escalated"] == 0
    assert (Alert.objects.count(), AlertRecipient.objects.count()) == before


def test_a_due_date_not_yet_passed_is_not_overdue(world, patients):
    Patient.objects.filter(pk=patients.pA1.pk).update(next_followup_due=timezone.localdate())
    assert followup_scan()["overdue_raised"] == 0


def test_lost_alert_goes_to_police_governance_and_health_centre(world, patients):
    Patient.objects.filter(pk=patients.pA1.pk).update(status="lost")
    followup_scan()
    orgs = set(rows_of("lost").values_list("organisation_id", flat=True))
    o = world.org
    assert orgs == {o.ps_a1.pk, o.gov_a1.pk, o.hc_a1.pk}


def test_scan_does_not_repeat_a_lost_alert_the_visit_raised(world, patients):
    doc, p = world.users.doctor_a, patients.pA1
    record(by=doc, patient=p, days_ago=1, outcome="lost", lost_reason="moved")
    assert Alert.objects.filter(kind="lost").count() == 1
    assert followup_scan()["lost_raised"] == 0


def test_unacknowledged_risk_alert_escalates_to_the_county_after_24_hours(world, patients):
    u, o = world.users, world.org
    record(by=u.doctor_a, patient=patients.pA1, risk_level=3)
    assert followup_scan()["escalated"] == 0
    Alert.objects.update(raised_at=timezone.now() - timedelta(hours=25))
    assert followup_scan()["escalated"] == 2
    escalated = rows_of("risk").filter(escalated=True)
    assert set(escalated.values_list("organisation_id", flat=True)) == {o.pb_a.pk, o.gov_a.pk}
    assert len(alert_inbox_for(user=u.governance)) == 1
    assert followup_scan()["escalated"] == 0


def test_an_acknowledged_risk_alert_does_not_escalate(world, patients):
    u, o = world.users, world.org
    record(by=u.doctor_a, patient=patients.pA1, risk_level=4)
    alert = Alert.objects.get()
    alert_acknowledge(alert_id=alert.pk, by=u.police_a)
    Alert.objects.update(raised_at=timezone.now() - timedelta(hours=30))
    followup_scan()
    escalated = rows_of("risk").filter(escalated=True)
    assert list(escalated.values_list("organisation_id", flat=True)) == [o.gov_a.pk]


def test_thirty_days_overdue_escalates_to_the_prevention_agency(world, patients):
    make_overdue(patients.pA1, 31)
    make_overdue(patients.pB1, 29)
    followup_scan()
    escalated = rows_of("overdue").filter(escalated=True)
    assert list(escalated.values_list("organisation_id", flat=True)) == [world.org.prevention_a.pk]
    assert escalated.get().alert.patient_id == patients.pA1.pk


def test_unanswered_incident_escalates_after_fourteen_days(world, patients):
    incident(by=world.users.police_a, patient=patients.pA1)
    assert followup_scan()["escalated"] == 0
    Alert.objects.update(due_by=timezone.now() - timedelta(minutes=1))
    assert followup_scan()["escalated"] == 1
    row = rows_of("incident").get(escalated=True)
    assert row.organisation == world.org.prevention_a


def test_overdue_alert_closes_when_the_patient_is_no_longer_overdue(world, patients):
    make_overdue(patients.pA1, 5)
    followup_scan()
    Patient.objects.filter(pk=patients.pA1.pk).update(status="moved_out")
    assert followup_scan()["overdue_closed"] == 1
    alert = Alert.objects.get(kind="overdue")
    assert alert.status == "resolved"
    row = alert.recipients.get()
    assert row.status == "resolved" and row.note.startswith("系统")


def test_lost_alert_closes_when_the_patient_leaves_the_lost_status(world, patients):
    Patient.objects.filter(pk=patients.pA1.pk).update(status="lost")
    followup_scan()
    Patient.objects.filter(pk=patients.pA1.pk).update(status="moved_out")
    counts = followup_scan()
    assert (counts["lost_closed"], counts["overdue_closed"]) == (1, 0)
    assert Alert.objects.get(kind="lost").status == "resolved"


def test_a_completed_visit_closes_the_overdue_alert(world, patients):
    make_overdue(patients.pA1, 5)
    followup_scan()
    record(by=world.users.doctor_a, patient=patients.pA1)
    assert Alert.objects.get(kind="overdue").status == "resolved"
    assert followup_scan()["overdue_raised"] == 0


def test_counts_match_the_overdue_count(world, patients):
    make_overdue(patients.pA1, 2)
    make_overdue(patients.pB1, 9)
    assert overdue_count_for(world.users.doctor_a) == 1
    assert overdue_count_for(world.county_a) == 2
    assert overdue_count_for(world.users.governance) == 2
    assert followup_scan()["overdue_raised"] == 2


def test_the_task_keeps_a_run_record(world, patients):
    make_overdue(patients.pA1, 2)
    counts = followup_scan_task.delay().get()
    run = TaskRun.objects.get(job="followups.scan")
    assert run.status == "succeeded" and run.finished_at is not None
    assert run.counts == counts and run.counts["overdue_raised"] == 1
    assert run.key == timezone.localdate().isoformat()


def _clone_patients(template: Patient, n: int) -> None:
    """n more overdue patients like ``template``, in one INSERT … SELECT."""
    fields = [f.column for f in Patient._meta.concrete_fields if f.column not in ("id",)]
    cols = ", ".join(fields)
    exprs = ", ".join(
        "md5('clone' || g::text)" if c == "id_number_index" else f"t.{c}" for c in fields
    )
    with connection.cursor() as cur:
        cur.execute(
            f"INSERT INTO patients_patient (id, {cols}) "
            f"SELECT gen_random_uuid(), {exprs} FROM patients_patient t, "
            f"generate_series(1, %s) g WHERE t.id = %s",
            [n, template.pk],
        )


def test_the_scan_of_fifty_thousand_patients_issues_the_same_queries_as_of_one(world, patients):
    make_overdue(patients.pA1, 40)
    with CaptureQueriesContext(connection) as one:
        small = followup_scan()
    Alert.objects.all().delete()
    _clone_patients(Patient.objects.get(pk=patients.pA1.pk), 50_000)
    with CaptureQueriesContext(connection) as many:
        big = followup_scan()
    assert small["overdue_raised"] == 1 and big["overdue_raised"] == 50_001
    assert big["escalated"] == 50_001  # 40 days overdue: to the prevention agency too
    assert len(many) == len(one)


def test_a_patient_lost_after_three_misses_leaves_the_overdue_list_and_its_alert(world, patients):
    make_overdue(patients.pA1, 10)
    followup_scan()
    for days in (2, 1, 0):
        record(by=world.users.doctor_a, patient=patients.pA1, days_ago=days, outcome="not_reached")
    assert Alert.objects.get(kind="overdue").status == "resolved"
    assert Alert.objects.get(kind="lost").status == "open"
    assert overdue_count_for(world.users.doctor_a) == 0
    assert followup_scan()["overdue_raised"] == 0


# --------------------------------------------------------------- never followed up


def test_a_newly_registered_patient_is_overdue_fifteen_days_later(world):
    from followups.selectors import overdue_list_for
    from patients.tests import factories as pf

    doc = world.users.doctor_a
    p = pf.patient(by=doc, village="990102001001", name="新登记")
    today = timezone.localdate()
    assert p.next_followup_due == p.registered_on + timedelta(days=14)
    assert not overdue_list_for(user=doc, today=today + timedelta(days=14)).exists()
    assert followup_scan(today=today + timedelta(days=14))["overdue_raised"] == 0
    later = today + timedelta(days=15)
    assert list(overdue_list_for(user=doc, today=later)) == [p]
    assert followup_scan(today=later)["overdue_raised"] == 1
    assert followup_scan(today=later)["overdue_raised"] == 0
    alert = Alert.objects.get(kind="overdue", patient=p)
    assert list(alert.recipients.values_list("organisation_id", flat=True)) == [world.org.hc_a1.pk]


def test_the_migration_gives_never_followed_up_patients_a_first_due_date(world, patients):
    import importlib

    from django.apps import apps

    migration = importlib.import_module("followups.migrations.0003_first_followup_due")
    day = timezone.localdate() - timedelta(days=40)
    Patient.objects.update(next_followup_due=None, registered_on=day)
    record(by=world.users.doctor_b, patient=patients.pB1, days_ago=3)
    Patient.objects.filter(pk=patients.pB1.pk).update(next_followup_due=None)  # a visited row
    Patient.objects.filter(pk=patients.pC1.pk).update(status="moved_out")
    migration.fill_first_due(apps, None)
    due = dict(Patient.objects.values_list("pk", "next_followup_due"))
    assert due == {
        patients.pA1.pk: day + timedelta(days=14),
        patients.pB1.pk: None,  # followed up: its visits decide
        patients.pC1.pk: None,  # no longer managed
    }
    assert followup_scan()["overdue_raised"] == 1


# --------------------------------------------------------------- alerts that ended


def test_alerts_of_a_patient_moved_out_or_removed_close_and_stop_escalating(world, patients):
    from followups.services.scan import escalation_scan

    u = world.users
    record(by=u.doctor_a, patient=patients.pA1, risk_level=4)
    incident(by=u.police_a, patient=patients.pA1)
    record(by=u.doctor_b, patient=patients.pB1, risk_level=3)
    Alert.objects.update(
        raised_at=timezone.now() - timedelta(hours=30), due_by=timezone.now() - timedelta(days=1)
    )
    Patient.objects.filter(pk=patients.pA1.pk).update(status="moved_out")
    Patient.objects.filter(pk=patients.pB1.pk).update(status="deceased")
    assert escalation_scan()["escalated"] == 0
    counts = followup_scan()
    assert (counts["risk_closed"], counts["incident_closed"], counts["escalated"]) == (2, 1, 0)
    assert not Alert.objects.exclude(status="resolved").exists()
    assert not rows_of("risk").filter(escalated=True).exists()


def test_a_risk_alert_of_a_patient_now_below_the_threshold_closes_and_does_not_escalate(
    world, patients
):
    from followups.services.scan import escalation_scan

    record(by=world.users.doctor_a, patient=patients.pA1, risk_level=3)
    Alert.objects.update(raised_at=timezone.now() - timedelta(hours=30))
    Patient.objects.filter(pk=patients.pA1.pk).update(risk_level=1)  # e.g. set by hand
    assert escalation_scan()["escalated"] == 0
    assert followup_scan()["risk_closed"] == 1
    assert Alert.objects.get(kind="risk").status == "resolved"


def test_the_scan_closes_risk_alerts_piled_up_before_one_per_run(world, patients):
    from followups.services.alerts import alert_raise

    doc, p = world.users.doctor_a, patients.pA1
    record(by=doc, patient=p, days_ago=20, risk_level=3)
    newer = record(by=doc, patient=p, days_ago=6, risk_level=3)
    Alert.objects.update(raised_at=timezone.now() - timedelta(days=20))
    # what the old rule raised for every high-risk visit
    alert_raise(patient=Patient.objects.get(pk=p.pk), kind="risk", episode=f"followup:{newer.pk}")
    assert Alert.objects.filter(kind="risk").exclude(status="resolved").count() == 2
    assert followup_scan()["risk_closed"] == 1
    assert Alert.objects.filter(kind="risk").exclude(status="resolved").get().episode == (
        f"followup:{newer.pk}"
    )
