"""Recording follow-ups: the patient's latest state, status changes and the
alerts each visit raises or closes (DOMAIN.md → Follow-ups, Alerts)."""

import uuid
from datetime import timedelta

import pytest
from django.http import Http404
from django.utils import timezone

from audit.models import AuditEvent
from core.errors import DomainError, StaleVersion
from core.notify import MemoryBackend
from followups import rules
from followups.models import Alert, AlertRecipient, FollowUp
from followups.selectors import alert_inbox_for
from followups.services import followups as svc
from followups.services.alerts import alert_acknowledge, alert_resolve
from followups.tests.factories import completed_form, incident, record
from patients.models import Patient

pytestmark = pytest.mark.django_db


def inbox(user):
    return list(alert_inbox_for(user=user))


def fresh(patient):
    return Patient.objects.get(pk=patient.pk)


# --------------------------------------------------------------- latest state


def test_completed_visit_sets_the_patients_latest_state(world, patients):
    p = patients.pA1
    fu = record(by=world.users.doctor_a, patient=p, days_ago=3, risk_level=1)
    p2 = fresh(p)
    visit = timezone.localdate() - timedelta(days=3)
    assert fu.suggested_classification == fu.classification == "basically_stable"
    assert fu.next_due_date == visit + timedelta(days=14)
    assert (p2.risk_level, p2.classification) == (1, "basically_stable")
    assert (p2.last_followup_date, p2.next_followup_due) == (visit, visit + timedelta(days=14))
    assert p2.version == p.version + 1
    assert p2.history.latest().history_change_reason == "followup.recorded"
    assert fu.organisation == world.org.hc_a1 and fu.recorded_by == world.users.doctor_a
    assert AuditEvent.objects.filter(action="followup.create", object_id=str(p.pk)).exists()


def test_recheck_that_stays_basically_stable_gives_one_month(world, patients):
    doc, p = world.users.doctor_a, patients.pA1
    record(by=doc, patient=p, days_ago=20, risk_level=1)
    fu = record(by=doc, patient=p, days_ago=6, risk_level=1)
    assert fu.next_due_date == rules.add_months(fu.visit_date, 1)


def test_back_dated_paper_form_does_not_overwrite_a_newer_visit(world, patients):
    doc, p = world.users.doctor_a, patients.pA1
    record(by=doc, patient=p, days_ago=2, risk_level=0)
    record(by=doc, patient=p, days_ago=40, risk_level=2)
    p2 = fresh(p)
    assert p2.risk_level == 0
    assert p2.last_followup_date == timezone.localdate() - timedelta(days=2)


def test_hospitalised_now_marks_the_patient_in_hospital(world, patients):
    record(by=world.users.doctor_a, patient=patients.pA1, hospitalization="current")
    assert fresh(patients.pA1).in_hospital


def test_future_date_is_refused(world, patients):
    with pytest.raises(svc.FollowUpInvalid) as exc:
        record(by=world.users.doctor_a, patient=patients.pA1, days_ago=-1)
    assert exc.value.errors == {"visit_date": rules.ERR_FUTURE_VISIT}


def test_a_correction_cannot_move_the_visit_before_birth(world, patients):
    from datetime import date

    fu = record(by=world.users.doctor_a, patient=patients.pA1)  # born 1980-05-17
    with pytest.raises(svc.FollowUpInvalid) as exc:
        svc.followup_update(
            followup_id=fu.pk,
            by=world.users.doctor_a,
            data={"visit_date": date(1979, 1, 1)},
            expected_version=fu.version,
        )
    assert list(exc.value.errors) == ["visit_date"]


def test_override_is_kept_with_its_reason(world, patients):
    fu = record(
        by=world.users.doctor_a,
        patient=patients.pA1,
        classification="unstable",
        classification_override_reason="家属反映近日彻夜不眠",
    )
    assert (fu.suggested_classification, fu.classification) == ("stable", "unstable")
    assert fu.classification_override_reason == "家属反映近日彻夜不眠"
    assert fu.next_due_date == fu.visit_date + timedelta(days=14)


def test_later_due_date_is_refused_earlier_is_kept(world, patients):
    doc, p = world.users.doctor_a, patients.pA1
    today = timezone.localdate()
    with pytest.raises(svc.FollowUpInvalid) as exc:
        record(by=doc, patient=p, next_due_date=today + timedelta(days=100))
    assert "next_due_date" in exc.value.errors
    fu = record(by=doc, patient=p, next_due_date=today + timedelta(days=30))
    assert fu.next_due_date == today + timedelta(days=30)
    assert fu.suggested_next_due_date == rules.add_months(today, 3)
    assert fresh(p).next_followup_due == today + timedelta(days=30)


def test_not_reached_record_keeps_no_clinical_values(world, patients):
    fu = record(
        by=world.users.doctor_a,
        patient=patients.pA1,
        outcome="not_reached",
        risk_level=4,
        insight="absent",
    )
    assert fu.risk_level is None and fu.insight == "" and fu.classification == ""


# --------------------------------------------------------------- who may record


def test_doctor_of_another_township_gets_404_and_is_audited(world, patients):
    with pytest.raises(Http404):
        record(by=world.users.doctor_b, patient=patients.pA1)
    assert AuditEvent.objects.filter(
        action="access.denied", actor=world.users.doctor_b, object_id=str(patients.pA1.pk)
    ).exists()


def test_police_cannot_record_follow_ups(world, patients):
    with pytest.raises(DomainError) as exc:
        record(by=world.users.police_a, patient=patients.pA1)
    assert exc.value.message == svc.ERR_NOT_HEALTH


def test_idempotency_key_returns_the_first_row(world, patients):
    key = uuid.uuid4()
    data = completed_form()
    first = svc.followup_record(
        patient_id=patients.pA1.pk, by=world.users.doctor_a, data=data, idempotency_key=key
    )
    again = svc.followup_record(
        patient_id=patients.pA1.pk, by=world.users.doctor_a, data=data, idempotency_key=key
    )
    assert again.pk == first.pk and again.replayed
    assert FollowUp.objects.count() == 1


def test_idempotency_key_of_another_patient_is_refused(world, patients):
    key = uuid.uuid4()
    svc.followup_record(
        patient_id=patients.pA1.pk,
        by=world.users.doctor_a,
        data=completed_form(),
        idempotency_key=key,
    )
    other = record(by=world.users.doctor_a, patient=patients.pA1)  # noqa: F841
    with pytest.raises(DomainError):
        svc.followup_record(
            patient_id=patients.pB1.pk,
            by=world.users.doctor_b,
            data=completed_form(),
            idempotency_key=key,
        )


# --------------------------------------------------------------- status changes


def test_three_misses_make_the_patient_lost_and_alert_police(world, patients):
    doc, p = world.users.doctor_a, patients.pA1
    record(by=doc, patient=p, days_ago=30)
    due = fresh(p).next_followup_due
    for days in (3, 2):
        record(by=doc, patient=p, days_ago=days, outcome="not_reached")
    assert fresh(p).status == "active"
    assert fresh(p).next_followup_due == due  # the due date stays
    third = record(by=doc, patient=p, days_ago=1, outcome="not_reached")
    assert fresh(p).status == "lost"
    third.refresh_from_db()
    assert third.lost_reason == "unreachable_3x"
    alert = Alert.objects.get(patient=p, kind="lost")
    orgs = set(alert.recipients.values_list("organisation_id", flat=True))
    assert orgs == {world.org.ps_a1.pk, world.org.gov_a1.pk, world.org.hc_a1.pk}


def test_three_misses_on_the_same_day_keep_the_patient_active(world, patients):
    doc, p = world.users.doctor_a, patients.pA1
    for _ in range(3):
        svc.followup_not_reached(patient_id=p.pk, by=doc)
    assert FollowUp.objects.filter(patient=p, outcome="not_reached").count() == 3
    assert fresh(p).status == "active"
    assert not Alert.objects.filter(kind="lost").exists()


def test_misses_on_three_different_days_make_the_patient_lost(world, patients):
    doc, p = world.users.doctor_a, patients.pA1
    record(by=doc, patient=p, days_ago=2, outcome="not_reached")
    record(by=doc, patient=p, days_ago=2, outcome="not_reached")
    record(by=doc, patient=p, days_ago=1, outcome="not_reached")
    assert fresh(p).status == "active"
    svc.followup_not_reached(patient_id=p.pk, by=doc)
    assert fresh(p).status == "lost"
    assert Alert.objects.filter(kind="lost", patient=p).count() == 1


def test_a_replayed_not_reached_records_once(world, patients):
    doc, p = world.users.doctor_a, patients.pA1
    key = uuid.uuid4()
    first = svc.followup_not_reached(patient_id=p.pk, by=doc, idempotency_key=key)
    again = svc.followup_not_reached(patient_id=p.pk, by=doc, idempotency_key=key)
    assert again.pk == first.pk and again.replayed and not first.replayed
    assert FollowUp.objects.filter(patient=p).count() == 1


def test_completed_visit_reactivates_a_lost_patient_and_closes_its_lost_alert(world, patients):
    doc, p = world.users.doctor_a, patients.pA1
    record(by=doc, patient=p, days_ago=10, outcome="lost", lost_reason="out_for_work")
    assert fresh(p).status == "lost"
    record(by=doc, patient=p, days_ago=1)
    assert fresh(p).status == "active"
    alert = Alert.objects.get(patient=p, kind="lost")
    assert alert.status == "resolved"
    assert set(alert.recipients.values_list("status", flat=True)) == {"resolved"}


def test_a_refused_patient_stays_refused_when_lost_and_becomes_active_when_seen(world, patients):
    doc, p = world.users.doctor_a, patients.pA1
    Patient.objects.filter(pk=p.pk).update(status="refused")
    record(by=doc, patient=p, days_ago=5, outcome="lost", lost_reason="out_for_work")
    assert fresh(p).status == "refused"
    assert not Alert.objects.filter(kind="lost").exists()
    record(by=doc, patient=p, days_ago=1, risk_level=1)
    assert fresh(p).status == "active"


def test_two_basically_stable_visits_the_same_day_are_no_recheck(world, patients):
    doc, p = world.users.doctor_a, patients.pA1
    record(by=doc, patient=p, days_ago=3, risk_level=1)
    again = record(by=doc, patient=p, days_ago=3, risk_level=2)
    assert again.classification == "basically_stable"
    assert again.next_due_date == again.visit_date + timedelta(days=14)


def test_deceased_ends_management(world, patients):
    doc, p = world.users.doctor_a, patients.pA1
    record(by=doc, patient=p, days_ago=20)
    record(
        by=doc,
        patient=p,
        days_ago=2,
        outcome="deceased",
        death_date=timezone.localdate() - timedelta(days=5),
        death_cause="physical_illness",
    )
    p2 = fresh(p)
    assert p2.status == "deceased" and p2.next_followup_due is None
    with pytest.raises(DomainError) as exc:
        record(by=doc, patient=p)
    assert exc.value.message == svc.ERR_NOT_REGISTERED


# --------------------------------------------------------------- risk alerts


def test_risk_three_alerts_the_townships_police_and_governance_once(
    world, patients, django_capture_on_commit_callbacks
):
    from accounts.tests.factories import staff

    MemoryBackend.outbox.clear()
    u, o = world.users, world.org
    gov_a1 = staff("gov_a1", "governance", o.gov_a1)
    gov_a2 = staff("gov_a2", "governance", o.gov_a2)
    with django_capture_on_commit_callbacks(execute=True):
        record(by=u.doctor_a, patient=patients.pA1, risk_level=3)
    for user in (u.police_a, gov_a1):
        rows = inbox(user)
        assert [(r.alert.kind, r.status) for r in rows] == [("risk", "open")]
    assert inbox(u.police_b) == [] and inbox(u.doctor_a) == [] and inbox(gov_a2) == []
    assert inbox(u.governance) == []  # the county office only on escalation
    rows = AlertRecipient.objects.filter(alert__kind="risk")
    assert set(rows.values_list("organisation_id", flat=True)) == {o.ps_a1.pk, o.gov_a1.pk}
    # one message per organisation, naming neither patient nor disorder
    assert sorted(m.organisation_id for m in MemoryBackend.outbox) == sorted(
        [o.ps_a1.pk, o.gov_a1.pk]
    )
    for m in MemoryBackend.outbox:
        assert patients.pA1.name not in m.text and "精神" not in m.text
        assert "高风险" in m.text


def test_lower_risk_raises_no_alert(world, patients):
    record(by=world.users.doctor_a, patient=patients.pA1, risk_level=2)
    assert not Alert.objects.exists()


def test_alert_lifecycle_acknowledge_then_resolve_with_a_note(world, patients):
    u = world.users
    record(by=u.doctor_a, patient=patients.pA1, risk_level=4)
    alert = Alert.objects.get()
    row = alert_acknowledge(alert_id=alert.pk, by=u.police_a)
    assert row.status == "acknowledged" and row.acknowledged_by == u.police_a
    alert.refresh_from_db()
    assert alert.status == "open"  # the governance office has not signed yet
    with pytest.raises(DomainError) as exc:
        alert_resolve(alert_id=alert.pk, by=u.police_a, note="  ")
    assert exc.value.message == "请填写处理情况。"
    row = alert_resolve(alert_id=alert.pk, by=u.police_a, note="已上门走访，监护人在家看护")
    assert (row.status, row.resolved_by, row.note) == (
        "resolved",
        u.police_a,
        "已上门走访，监护人在家看护",
    )
    with pytest.raises(Http404):
        alert_acknowledge(alert_id=alert.pk, by=u.police_b)


def test_alert_is_resolved_when_every_recipient_resolved(world, patients):
    u, o = world.users, world.org
    from accounts.tests.factories import staff

    gov_a1_user = staff("gov_a1", "governance", o.gov_a1)
    record(by=u.doctor_a, patient=patients.pA1, risk_level=3)
    alert = Alert.objects.get()
    alert_resolve(alert_id=alert.pk, by=u.police_a, note="已处置")
    alert_resolve(alert_id=alert.pk, by=gov_a1_user, note="已通知网格员")
    alert.refresh_from_db()
    assert alert.status == "resolved" and alert.resolved_at is not None


def test_a_correction_that_raises_the_risk_alerts_once(world, patients):
    u = world.users
    fu = record(by=u.doctor_a, patient=patients.pA1, risk_level=1)
    fu2 = svc.followup_update(
        followup_id=fu.pk, by=u.doctor_a, data={"risk_level": 3}, expected_version=fu.version
    )
    assert fu2.classification == "unstable" and fu2.version == fu.version + 1
    assert fresh(patients.pA1).risk_level == 3
    assert Alert.objects.filter(kind="risk").count() == 1
    with pytest.raises(StaleVersion):
        svc.followup_update(
            followup_id=fu.pk, by=u.doctor_a, data={"risk_level": 4}, expected_version=fu.version
        )


def open_risk_alerts(patient):
    return Alert.objects.filter(patient=patient, kind="risk").exclude(status="resolved")


def test_a_patient_staying_at_high_risk_has_one_risk_alert(world, patients):
    doc, p = world.users.doctor_a, patients.pA1
    first = record(by=doc, patient=p, days_ago=30, risk_level=3)
    record(by=doc, patient=p, days_ago=20, outcome="not_reached")  # no risk measured
    record(by=doc, patient=p, days_ago=16, risk_level=4)
    record(by=doc, patient=p, days_ago=2, risk_level=3)
    alert = Alert.objects.get(patient=p, kind="risk")
    assert alert.episode == f"followup:{first.pk}" and alert.status == "open"


def test_risk_below_the_threshold_closes_the_alert_and_a_new_rise_raises_another(world, patients):
    doc, p = world.users.doctor_a, patients.pA1
    record(by=doc, patient=p, days_ago=30, risk_level=3)
    calm = record(by=doc, patient=p, days_ago=16, risk_level=1)
    alert = Alert.objects.get(patient=p, kind="risk")
    assert alert.status == "resolved"
    rows = list(alert.recipients.all())
    assert {r.status for r in rows} == {"resolved"}
    assert all(r.note.startswith("系统") and calm.visit_date.isoformat() in r.note for r in rows)
    rise = record(by=doc, patient=p, days_ago=2, risk_level=5)
    assert open_risk_alerts(p).get().episode == f"followup:{rise.pk}"
    assert Alert.objects.filter(patient=p, kind="risk").count() == 2


def test_a_correction_below_the_threshold_closes_the_risk_alert(world, patients):
    doc, p = world.users.doctor_a, patients.pA1
    fu = record(by=doc, patient=p, risk_level=4)
    assert open_risk_alerts(p).count() == 1
    svc.followup_update(
        followup_id=fu.pk, by=doc, data={"risk_level": 2}, expected_version=fu.version
    )
    assert not open_risk_alerts(p).exists()
    assert Alert.objects.get(patient=p, kind="risk").status == "resolved"


def test_death_closes_risk_incident_and_overdue_alerts(world, patients):
    from followups.services.scan import followup_scan

    u, p = world.users, patients.pA1
    record(by=u.doctor_a, patient=p, days_ago=40, risk_level=3)
    incident(by=u.police_a, patient=p, occurred_on=timezone.localdate())
    followup_scan()  # the visit was due 26 days ago: overdue
    assert set(Alert.objects.exclude(status="resolved").values_list("kind", flat=True)) == {
        "risk",
        "incident",
        "overdue",
    }
    record(
        by=u.doctor_a,
        patient=p,
        outcome="deceased",
        death_date=timezone.localdate(),
        death_cause="accident",
    )
    assert not Alert.objects.exclude(status="resolved").exists()
    assert not AlertRecipient.objects.exclude(status="resolved").exists()


# --------------------------------------------------------------- incidents


def test_incident_alerts_health_centre_and_governance_and_a_visit_answers_it(world, patients):
    u, o = world.users, world.org
    inc = incident(by=u.police_a, patient=patients.pA1, kind="disaster")
    alert = Alert.objects.get(kind="incident")
    assert alert.incident == inc
    assert set(alert.recipients.values_list("organisation_id", flat=True)) == {
        o.hc_a1.pk,
        o.gov_a1.pk,
    }
    record(by=u.doctor_a, patient=patients.pA1)
    statuses = dict(alert.recipients.values_list("organisation_id", "status"))
    assert statuses == {o.hc_a1.pk: "resolved", o.gov_a1.pk: "open"}


def test_only_police_record_incidents(world, patients):
    with pytest.raises(DomainError):
        incident(by=world.users.doctor_a, patient=patients.pA1)
    with pytest.raises(Http404):
        incident(by=world.users.police_b, patient=patients.pA1)


# --------------------------------------------------------------- due cap (referrals)


def test_patient_due_cap_only_brings_the_date_forward(world, patients):
    u, p = world.users, patients.pA1
    record(by=u.doctor_a, patient=p)
    due = fresh(p).next_followup_due
    svc.patient_due_cap(patient=p, due_date=due + timedelta(days=5), by=u.hospital, reason="x")
    assert fresh(p).next_followup_due == due
    soon = timezone.localdate() + timedelta(days=14)
    svc.patient_due_cap(patient=p, due_date=soon, by=u.hospital, reason="referral.discharged")
    assert fresh(p).next_followup_due == soon == p.next_followup_due
    assert fresh(p).history.latest().history_change_reason == "referral.discharged"


def test_a_corrected_date_hands_the_latest_state_to_the_newer_visit(world, patients):
    u, p = world.users, patients.pA1
    older = record(by=u.doctor_a, patient=p, days_ago=10, risk_level=1)
    newer = record(by=u.doctor_a, patient=p, days_ago=2, risk_level=2)
    assert fresh(p).risk_level == 2
    svc.followup_update(
        followup_id=newer.pk,
        by=u.doctor_a,
        data={"visit_date": timezone.localdate() - timedelta(days=20)},
        expected_version=newer.version,
    )
    p2 = fresh(p)
    assert (p2.risk_level, p2.last_followup_date) == (1, older.visit_date)
    assert p2.next_followup_due == older.next_due_date


# --------------------------------------------------------------- cost of a save


def test_a_save_reads_the_patient_once_through_the_scope_and_locks_it_by_key(world, patients):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as q:
        record(by=world.users.doctor_a, patient=patients.pA1)
    sqls = [x["sql"] for x in q.captured_queries]
    reads = [s for s in sqls if s.startswith('SELECT "patients_patient"."id"')]
    # the scoped read (the audited 404 outside the transaction), then the lock
    assert len(reads) == 2 and "FOR UPDATE" not in reads[0] and "FOR UPDATE" in reads[1]
    assert "accounts_breakglassgrant" not in reads[1]
    assert sum("accounts_breakglassgrant" in s for s in sqls) <= 1
    # nothing open: the overdue and incident alerts are probed once, not read
    assert not any("FOR UPDATE" in s and "followups_alertrecipient" in s for s in sqls)
    assert sum("followups_alertrecipient" in s for s in sqls) == 1


def test_a_visit_closes_only_the_alert_kinds_still_open(world, patients):
    from followups.selectors import open_alert_kinds

    u = world.users
    incident(by=u.police_a, patient=patients.pA1, kind="trouble")
    assert open_alert_kinds(patients.pA1.pk, ["overdue", "incident"]) == {"incident"}
    record(by=u.doctor_a, patient=patients.pA1)
    alert = Alert.objects.get(kind="incident")
    # the health centre's copy is answered by the visit; governance's stays theirs
    statuses = dict(alert.recipients.values_list("organisation_id", "status"))
    assert statuses[world.org.hc_a1.pk] == "resolved"
    assert "open" in statuses.values()
    assert open_alert_kinds(patients.pA1.pk, ["overdue", "incident"]) == {"incident"}
    AlertRecipient.objects.filter(alert=alert).update(status="resolved")
    assert open_alert_kinds(patients.pA1.pk, ["overdue", "incident"]) == set()
