"""Guardian reward workflow through the services (DOMAIN.md → Guardian reward)."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.utils import timezone

from audit.models import AuditEvent
from core.errors import DomainError
from patients.models import Patient, Status
from patients.services import patient_update
from subsidies import rules, services
from subsidies.models import Award, AwardEvent, AwardStatus, AwardStep, RewardBatch
from subsidies.tests import factories as sf

pytestmark = pytest.mark.django_db

D = Decimal


def test_apply_records_who_and_when(world, eligible):
    award = services.award_apply(
        patient_id=eligible.pk, by=world.users.doctor_a, source="health_centre"
    )
    assert award.status == AwardStatus.APPLIED
    assert award.guardian_name == "监护人"
    ev = award.events.get()
    assert (ev.step, ev.by, ev.organisation) == (
        AwardStep.APPLIED,
        world.users.doctor_a,
        world.org.hc_a1,
    )
    assert AuditEvent.objects.filter(action="reward.apply", object_id=str(eligible.pk)).exists()
    assert award.history.first().history_user == world.users.doctor_a


def test_ineligible_application_is_refused_with_every_reason(world, patients, policies):
    with pytest.raises(DomainError) as exc:
        services.award_apply(
            patient_id=patients.pA1.pk, by=world.users.doctor_a, source="health_centre"
        )
    message = str(exc.value.message)
    assert str(rules.REASON_NOT_POLICE_REGISTERED) in message
    assert str(rules.REASON_NO_INCIDENT_OR_RISK % {"min": 3}) in message
    assert str(rules.REASON_NO_LETTER) in message
    assert str(rules.REASON_FEW_ASSISTANTS % {"min": 2, "count": 0}) in message
    assert not Award.objects.exists()


def test_one_assistant_guardian_is_not_enough(world, patients, policies):
    u = world.users
    p = sf.make_eligible(patients.pA1, doctor=u.doctor_a, police=u.police_a, assistants=1)
    policy, reasons = services.reward_eligibility(patient=p)
    assert [r.code for r in reasons] == ["few_assistants"]


def test_a_high_risk_level_qualifies_without_an_incident(world, patients, policies):
    u = world.users
    p = sf.make_eligible(patients.pA1, doctor=u.doctor_a, police=u.police_a)
    p.incidents.all().delete()
    Patient.objects.filter(pk=p.pk).update(risk_level=2)
    _, reasons = services.reward_eligibility(patient=Patient.objects.get(pk=p.pk))
    assert [r.code for r in reasons] == ["no_incident_or_risk"]
    Patient.objects.filter(pk=p.pk).update(risk_level=3)
    _, reasons = services.reward_eligibility(patient=Patient.objects.get(pk=p.pk))
    assert reasons == []


def test_no_second_open_application(world, eligible):
    services.award_apply(patient_id=eligible.pk, by=world.users.doctor_a, source="health_centre")
    with pytest.raises(DomainError) as exc:
        services.award_apply(patient_id=eligible.pk, by=world.users.governance, source="governance")
    assert exc.value.message == services.ERR_OPEN_AWARD


def test_village_nomination_names_the_nominator(world, eligible):
    with pytest.raises(DomainError) as exc:
        services.award_apply(patient_id=eligible.pk, by=world.users.doctor_a, source="village")
    assert exc.value.message == services.ERR_APPLICANT_REQUIRED
    award = services.award_apply(
        patient_id=eligible.pk, by=world.users.doctor_a, source="village", applicant_name="王主任"
    )
    assert award.applicant_name == "王主任"


def test_doctor_of_another_township_cannot_apply(world, eligible):
    with pytest.raises(Http404):
        services.award_apply(
            patient_id=eligible.pk, by=world.users.doctor_b, source="health_centre"
        )


@pytest.mark.parametrize("persona", ["police_a", "civil", "dpf", "finance", "hospital", "admin"])
def test_other_departments_cannot_apply(world, eligible, persona):
    with pytest.raises(PermissionDenied):
        services.award_apply(
            patient_id=eligible.pk, by=getattr(world.users, persona), source="governance"
        )


def test_full_lifecycle_application_to_active(world, eligible, gov_a1):
    u = world.users
    award = sf.award_through(eligible, applicant=u.doctor_a)
    # a township office cannot approve at county level
    with pytest.raises(PermissionDenied):
        services.award_county_decide(award_id=award.pk, by=gov_a1, approve=True)
    award = services.award_township_review(award_id=award.pk, by=gov_a1, approve=True, note="属实")
    assert award.status == AwardStatus.REVIEWED
    award = services.award_county_decide(
        award_id=award.pk, by=u.civil, approve=True, today=date(2025, 1, 20)
    )
    assert award.status == AwardStatus.NOTICE
    assert award.notice_until == date(2025, 1, 27)
    assert services.awards_activate_due(today=date(2025, 1, 27)) == 0  # still in notice
    assert services.awards_activate_due(today=date(2025, 1, 28)) == 1
    award.refresh_from_db()
    assert award.status == AwardStatus.ACTIVE
    assert award.active_from == date(2025, 1, 28)
    assert award.valid_until == date(2026, 1, 27)
    steps = [(e.step, e.by) for e in award.events.order_by("at", "id")]
    assert steps == [
        (AwardStep.APPLIED, u.doctor_a),
        (AwardStep.TOWNSHIP_APPROVED, gov_a1),
        (AwardStep.COUNTY_APPROVED, u.civil),
        (AwardStep.ACTIVATED, None),
    ]


def test_the_county_approver_must_not_be_the_township_reviewer(world, eligible):
    u = world.users
    award = sf.award_through(eligible, applicant=u.doctor_a, reviewer=u.governance)
    with pytest.raises(DomainError) as exc:
        services.award_county_decide(award_id=award.pk, by=u.governance, approve=True)
    assert exc.value.message == services.ERR_SAME_PERSON
    award = services.award_county_decide(award_id=award.pk, by=u.civil, approve=True)
    assert award.status == AwardStatus.NOTICE


def test_refusals_need_a_reason(world, eligible, gov_a1):
    u = world.users
    award = sf.award_through(eligible, applicant=u.doctor_a)
    with pytest.raises(DomainError) as exc:
        services.award_township_review(award_id=award.pk, by=gov_a1, approve=False)
    assert exc.value.message == services.ERR_NOTE_REQUIRED
    award = services.award_township_review(
        award_id=award.pk, by=gov_a1, approve=False, note="材料不全"
    )
    assert award.status == AwardStatus.REJECTED
    assert award.closing_note == "材料不全"


def test_steps_out_of_order_are_refused(world, eligible, gov_a1):
    u = world.users
    award = sf.award_through(eligible, applicant=u.doctor_a)
    with pytest.raises(DomainError) as exc:
        services.award_county_decide(award_id=award.pk, by=u.civil, approve=True)
    assert exc.value.code == "state"


def test_objection_during_notice(world, eligible, gov_a1):
    u = world.users
    award = sf.award_through(eligible, applicant=u.doctor_a, reviewer=gov_a1, approver=u.civil)
    award = services.award_notice_objection(award_id=award.pk, by=u.governance, note="群众举报")
    assert award.status == AwardStatus.REJECTED
    assert award.events.filter(step=AwardStep.NOTICE_OBJECTION, by=u.governance).exists()


def test_notice_days_zero_activates_at_once(world, patients):
    u = world.users
    sf.reward_policy(world.county_a, notice_days=0)
    p = sf.make_eligible(patients.pA1, doctor=u.doctor_a, police=u.police_a)
    award = sf.award_through(p, applicant=u.doctor_a, reviewer=u.governance, approver=u.civil)
    award.refresh_from_db()
    assert award.status == AwardStatus.ACTIVE


def _active(world, eligible, gov_a1):
    u = world.users
    return sf.award_through(
        eligible,
        applicant=u.doctor_a,
        reviewer=gov_a1,
        approver=u.civil,
        activate_on=date(2025, 1, 28),
    )


def test_batch_pro_rates_by_whole_months(world, eligible, gov_a1):
    award = _active(world, eligible, gov_a1)
    batch, created = services.batch_draw(
        region=world.county_a, period_code="2025Q1", today=date(2025, 4, 2)
    )
    assert created
    line = batch.lines.get()
    assert line.award == award
    assert line.months == ["2025-02", "2025-03"]  # January not whole
    assert line.amount == D("600.00")
    assert batch.total == D("600.00") and batch.line_count == 1
    q2, _ = services.batch_draw(region=world.county_a, period_code="2025Q2", today=date(2025, 7, 1))
    assert q2.lines.get().amount == D("900.00")


def test_drawing_the_same_quarter_twice_gives_one_batch(world, eligible, gov_a1):
    _active(world, eligible, gov_a1)
    first, created = services.batch_draw(
        region=world.county_a, period_code="2025Q1", today=date(2025, 4, 2)
    )
    again, created_again = services.batch_draw(
        region=world.county_a, period_code="2025Q1", today=date(2025, 5, 2)
    )
    assert created and not created_again
    assert first.pk == again.pk
    assert RewardBatch.objects.count() == 1
    assert again.lines.count() == 1


def test_the_scheduled_job_draws_the_last_finished_quarter_once(world, eligible, gov_a1):
    _active(world, eligible, gov_a1)
    assert services.draw_due_batches(today=date(2025, 4, 1)) == {
        "drawn": 1,
        "existing": 0,
        "skipped": 0,
    }
    assert services.draw_due_batches(today=date(2025, 4, 2))["existing"] == 1
    assert list(RewardBatch.objects.values_list("period", flat=True)) == ["2025Q1"]


def test_a_period_not_yet_finished_cannot_be_drawn(world, policies):
    with pytest.raises(DomainError) as exc:
        services.batch_draw(region=world.county_a, period_code="2025Q2", today=date(2025, 6, 30))
    assert exc.value.message == services.ERR_PERIOD_NOT_ENDED
    with pytest.raises(DomainError) as exc:
        services.batch_draw(region=world.county_a, period_code="2025-05", today=date(2025, 7, 1))
    assert exc.value.field == "period"


def test_suspension_after_failed_duties_stops_from_next_month_and_bars_12_months(
    world, eligible, gov_a1
):
    u = world.users
    award = _active(world, eligible, gov_a1)
    incident = sf.incident(eligible, on=date(2025, 2, 10), failed=True)
    assert services.reward_sync(today=date(2025, 2, 12))["suspended"] == 1
    award.refresh_from_db()
    assert award.status == AwardStatus.SUSPENDED
    assert award.stop_from == date(2025, 3, 1)
    assert award.reapply_from == date(2026, 2, 10)
    assert award.suspended_incident == incident
    assert award.events.filter(step=AwardStep.SUSPENDED, by=None).exists()
    batch, _ = services.batch_draw(
        region=world.county_a, period_code="2025Q1", today=date(2025, 4, 2)
    )
    assert batch.lines.get().months == ["2025-02"]  # February paid, March not
    # no re-application for 12 months
    with pytest.raises(DomainError) as exc:
        services.award_apply(
            patient_id=eligible.pk,
            by=u.doctor_a,
            source="health_centre",
            today=date(2026, 2, 9),
        )
    assert "2026-02-10" in str(exc.value.message)
    again = services.award_apply(
        patient_id=eligible.pk, by=u.doctor_a, source="health_centre", today=date(2026, 2, 10)
    )
    assert again.status == AwardStatus.APPLIED
    # the old incident does not suspend the new award
    assert services.reward_sync(today=date(2026, 2, 11))["suspended"] == 0


def test_the_sync_is_idempotent(world, eligible, gov_a1):
    _active(world, eligible, gov_a1)
    sf.incident(eligible, on=date(2025, 2, 10), failed=True)
    services.reward_sync(today=date(2025, 2, 12))
    assert services.reward_sync(today=date(2025, 2, 13)) == {
        "suspended": 0,
        "ended": 0,
        "activated": 0,
    }
    assert AwardEvent.objects.filter(step=AwardStep.SUSPENDED).count() == 1


def test_manual_suspension_needs_a_failed_duty_incident(world, eligible, gov_a1):
    u = world.users
    award = _active(world, eligible, gov_a1)
    ordinary = eligible.incidents.get()
    with pytest.raises(DomainError) as exc:
        services.award_suspend(award_id=award.pk, incident_id=ordinary.pk, by=u.governance)
    assert exc.value.message == services.ERR_INCIDENT_NOT_FAILED
    failed = sf.incident(eligible, on=date(2025, 5, 3), failed=True)
    award = services.award_suspend(award_id=award.pk, incident_id=failed.pk, by=u.governance)
    assert award.stop_from == date(2025, 6, 1)


def test_the_incident_hook_suspends_at_once(world, eligible, gov_a1):
    award = _active(world, eligible, gov_a1)
    incident = sf.incident(eligible, on=date(2025, 3, 5), failed=True)
    assert services.reward_incident_recorded(incident_id=incident.pk) == award
    award.refresh_from_db()
    assert award.status == AwardStatus.SUSPENDED


def test_death_ends_the_award_paid_to_that_month(world, eligible, gov_a1):
    award = _active(world, eligible, gov_a1)
    Patient.objects.filter(pk=eligible.pk).update(status=Status.DECEASED)
    from django.utils import timezone

    moment = timezone.make_aware(timezone.datetime(2025, 2, 14, 10, 0))
    Patient.objects.filter(pk=eligible.pk).update(status_changed_at=moment)
    assert services.reward_sync(today=date(2025, 2, 15))["ended"] == 1
    award.refresh_from_db()
    assert (award.status, award.end_reason, award.ended_on) == (
        AwardStatus.ENDED,
        "deceased",
        date(2025, 2, 14),
    )
    batch, _ = services.batch_draw(
        region=world.county_a, period_code="2025Q1", today=date(2025, 4, 2)
    )
    assert batch.lines.get().months == ["2025-02"]


def test_manual_end_for_moving_out(world, eligible, gov_a1):
    u = world.users
    award = _active(world, eligible, gov_a1)
    award = services.award_end(
        award_id=award.pk, by=u.civil, reason="moved_out", ended_on=date(2025, 3, 20)
    )
    assert award.stop_from == date(2025, 4, 1)
    assert award.events.filter(step=AwardStep.ENDED, by=u.civil).exists()
    with pytest.raises(DomainError):
        services.award_end(award_id=award.pk, by=u.civil, reason="moved_out", ended_on=date.today())


def test_yearly_review_renews_within_60_days_of_the_due_date(world, eligible, gov_a1):
    u = world.users
    award = _active(world, eligible, gov_a1)  # valid until 2026-01-27
    with pytest.raises(DomainError) as exc:
        services.award_yearly_review(
            award_id=award.pk, by=u.governance, renew=True, today=date(2025, 11, 27)
        )
    assert exc.value.message == services.ERR_REVIEW_NOT_DUE % {"date": "2026-01-27", "days": 60}
    award = services.award_yearly_review(
        award_id=award.pk, by=u.governance, renew=True, today=date(2025, 11, 28)
    )
    assert award.valid_until == date(2027, 1, 27)
    assert award.events.filter(step=AwardStep.RENEWED, by=u.governance).exists()


def test_without_review_months_past_the_due_date_are_not_paid(world, eligible, gov_a1):
    _active(world, eligible, gov_a1)  # valid until 2026-01-27
    batch, _ = services.batch_draw(
        region=world.county_a, period_code="2026Q1", today=date(2026, 4, 1)
    )
    assert not batch.lines.exists()


def test_yearly_review_failure_ends_the_award(world, eligible, gov_a1):
    u = world.users
    award = _active(world, eligible, gov_a1)
    award = services.award_yearly_review(
        award_id=award.pk, by=u.civil, renew=False, note="监护不到位", today=date(2026, 1, 10)
    )
    assert (award.status, award.end_reason) == (AwardStatus.ENDED, "review_failed")


def test_yearly_review_refuses_renewal_when_no_longer_eligible(world, eligible, gov_a1):
    u = world.users
    award = _active(world, eligible, gov_a1)
    patient_update(
        by=u.doctor_a, pk=eligible.pk, data={"assistant_guardians": []}, expected_version=None
    )
    with pytest.raises(DomainError) as exc:
        services.award_yearly_review(
            award_id=award.pk, by=u.governance, renew=True, today=date(2026, 1, 10)
        )
    assert str(rules.REASON_FEW_ASSISTANTS % {"min": 2, "count": 0}) in str(exc.value.message)


def test_batch_review_then_paid_by_finance(world, eligible, gov_a1):
    u = world.users
    _active(world, eligible, gov_a1)
    batch, _ = services.batch_draw(
        region=world.county_a, period_code="2025Q1", today=date(2025, 4, 2)
    )
    with pytest.raises(DomainError) as exc:
        services.batch_mark_paid(batch_id=batch.pk, by=u.finance, reference="X1")
    assert exc.value.message == services.ERR_PAY_NOT_REVIEWED
    with pytest.raises(PermissionDenied):
        services.batch_review(batch_id=batch.pk, by=u.finance)
    services.batch_review(batch_id=batch.pk, by=u.governance)
    with pytest.raises(PermissionDenied):
        services.batch_mark_paid(batch_id=batch.pk, by=u.governance, reference="X1")
    with pytest.raises(DomainError) as exc:
        services.batch_mark_paid(batch_id=batch.pk, by=u.finance, reference=" ")
    assert exc.value.message == services.ERR_REFERENCE_REQUIRED
    batch = services.batch_mark_paid(batch_id=batch.pk, by=u.finance, reference="CZ2025-001")
    assert (batch.status, batch.paid_by, batch.payment_reference) == (
        "paid",
        u.finance,
        "CZ2025-001",
    )


def test_a_month_is_never_paid_twice_when_the_frequency_changes(world, eligible, gov_a1):
    _active(world, eligible, gov_a1)
    services.batch_draw(region=world.county_a, period_code="2025Q1", today=date(2025, 4, 2))
    from subsidies.models import RewardPolicy

    policy = RewardPolicy.objects.get()
    policy.valid_to = date(2025, 3, 31)
    policy.save()
    sf.reward_policy(world.county_a, valid_from=date(2025, 4, 1), frequency="yearly")
    yearly, _ = services.batch_draw(
        region=world.county_a, period_code="2025", today=date(2026, 1, 2)
    )
    line = yearly.lines.get()
    assert line.months[0] == "2025-04"
    assert line.month_count == 9


def test_the_other_county_draws_nothing_from_county_a(world, eligible, gov_a1):
    _active(world, eligible, gov_a1)
    sf.reward_policy(world.county_c)
    batch, _ = services.batch_draw(
        region=world.county_c, period_code="2025Q1", today=date(2025, 4, 2)
    )
    assert batch.line_count == 0


def test_tasks_record_a_run(world, eligible, gov_a1):
    from core.models import TaskRun
    from subsidies import tasks

    counts = tasks.reward_daily_sync.delay().get()
    assert set(counts) == {"suspended", "ended", "activated"}
    tasks.reward_draw_batches.delay()
    assert TaskRun.objects.filter(job="subsidies.reward_daily_sync", status="succeeded").exists()
    assert TaskRun.objects.filter(job="subsidies.reward_draw_batches", status="succeeded").exists()


def test_notice_days_are_counted_from_the_approval(world, eligible, gov_a1):
    u = world.users
    award = sf.award_through(
        eligible, applicant=u.doctor_a, reviewer=gov_a1, approver=u.civil, approved=date(2025, 3, 1)
    )
    assert award.notice_until == date(2025, 3, 1) + timedelta(days=7)


def test_recording_a_failed_duty_incident_suspends_the_award_at_once(world, eligible, gov_a1):
    """Through the police's incident service, not the hook: no daily job needed."""
    from followups.tests.factories import incident as record_incident

    award = _active(world, eligible, gov_a1)
    ordinary = record_incident(
        by=world.users.police_a, patient=eligible, occurred_on=date(2025, 3, 1)
    )
    award.refresh_from_db()
    assert award.status == AwardStatus.ACTIVE  # duties not failed: nothing changes
    failed = record_incident(
        by=world.users.police_a,
        patient=eligible,
        occurred_on=date(2025, 3, 5),
        guardian_failed_duties=True,
    )
    award.refresh_from_db()
    assert (award.status, award.suspended_incident_id) == (AwardStatus.SUSPENDED, failed.pk)
    assert award.stop_from == date(2025, 4, 1)
    assert award.reapply_from == date(2026, 3, 5)
    assert award.events.filter(step=AwardStep.SUSPENDED, by=None).count() == 1
    assert ordinary.pk != failed.pk
    # the daily job finds nothing more to do
    assert services.reward_sync(today=date(2025, 3, 6))["suspended"] == 0


def test_renewals_keep_whole_years_across_leap_years(world, patients):
    """2026-03-01 → 2027-02-28 → 2028-02-29 → 2029-02-28: no day lost, February
    2028 paid in full."""
    u = world.users
    sf.reward_policy(world.county_a, notice_days=0)
    p = sf.make_eligible(patients.pA1, doctor=u.doctor_a, police=u.police_a)
    award = sf.award_through(
        p, applicant=u.doctor_a, reviewer=u.governance, approver=u.civil, approved=date(2026, 3, 1)
    )
    award.refresh_from_db()
    assert (award.active_from, award.valid_until) == (date(2026, 3, 1), date(2027, 2, 28))
    award = services.award_yearly_review(
        award_id=award.pk, by=u.civil, renew=True, today=date(2027, 2, 1)
    )
    assert award.valid_until == date(2028, 2, 29)
    batch, _ = services.batch_draw(
        region=world.county_a, period_code="2028Q1", today=date(2028, 4, 1)
    )
    assert batch.lines.get().months == ["2028-01", "2028-02"]  # March: review due
    award = services.award_yearly_review(
        award_id=award.pk, by=u.civil, renew=True, today=date(2028, 2, 1)
    )
    assert award.valid_until == date(2029, 2, 28)
    assert rules.renewed_until(date(2027, 3, 31)) == date(2028, 3, 31)


def test_a_late_yearly_review_is_paid_as_arrears_in_the_next_batch(world, eligible, gov_a1):
    u = world.users
    award = _active(world, eligible, gov_a1)  # valid until 2026-01-27
    q4, _ = services.batch_draw(region=world.county_a, period_code="2025Q4", today=date(2026, 1, 2))
    assert q4.lines.get().months == ["2025-10", "2025-11", "2025-12"]
    q1, _ = services.batch_draw(region=world.county_a, period_code="2026Q1", today=date(2026, 4, 1))
    assert not q1.lines.exists()  # the review was due: nothing paid
    award = services.award_yearly_review(
        award_id=award.pk, by=u.governance, renew=True, today=date(2026, 4, 10)
    )
    assert award.valid_until == date(2027, 1, 27)
    q2, _ = services.batch_draw(region=world.county_a, period_code="2026Q2", today=date(2026, 7, 1))
    line = q2.lines.get()
    assert line.months == ["2026-01", "2026-02", "2026-03", "2026-04", "2026-05", "2026-06"]
    assert line.arrears == ["2026-01", "2026-02", "2026-03"]
    assert line.amount == D("1800.00")
    # idempotent: drawing again changes nothing, the next batch pays no month twice
    again, created = services.batch_draw(
        region=world.county_a, period_code="2026Q2", today=date(2026, 7, 2)
    )
    assert not created and again.lines.get().amount == D("1800.00")
    q3, _ = services.batch_draw(
        region=world.county_a, period_code="2026Q3", today=date(2026, 10, 1)
    )
    line = q3.lines.get()
    assert (line.months, line.arrears) == (["2026-07", "2026-08", "2026-09"], [])


def test_months_before_the_first_drawn_batch_are_never_back_paid(world, eligible, gov_a1):
    """Paid outside the system before the county's first batch: not arrears."""
    _active(world, eligible, gov_a1)  # paid from February 2025
    q3, _ = services.batch_draw(
        region=world.county_a, period_code="2025Q3", today=date(2025, 10, 1)
    )
    assert (q3.lines.get().months, q3.lines.get().arrears) == (
        ["2025-07", "2025-08", "2025-09"],
        [],
    )


def test_death_ends_the_award_on_the_recorded_date_of_death(world, eligible, gov_a1):
    """Recorded weeks later: the date of death on the follow-up counts, not
    the day the status changed."""
    from followups.services.followups import followup_record

    award = _active(world, eligible, gov_a1)
    followup_record(
        patient_id=eligible.pk,
        by=world.users.doctor_a,
        data={
            "visit_date": date(2025, 5, 6),
            "mode": "phone",
            "outcome": "deceased",
            "death_date": date(2025, 2, 14),
            "death_cause": "physical_illness",
        },
    )
    assert Patient.objects.get(pk=eligible.pk).status == Status.DECEASED
    assert services.reward_sync(today=date(2025, 5, 7))["ended"] == 1
    award.refresh_from_db()
    assert (award.end_reason, award.ended_on, award.stop_from) == (
        "deceased",
        date(2025, 2, 14),
        date(2025, 3, 1),
    )
    q1, _ = services.batch_draw(region=world.county_a, period_code="2025Q1", today=date(2025, 5, 8))
    assert q1.lines.get().months == ["2025-02"]
    q2, _ = services.batch_draw(region=world.county_a, period_code="2025Q2", today=date(2025, 7, 1))
    assert not q2.lines.exists()


def test_a_transfer_out_of_the_county_ends_the_award_on_the_day_of_the_move(
    world, eligible, gov_a1
):
    from accounts.models import Region
    from patients.services import patient_transfer

    award = _active(world, eligible, gov_a1)
    within = Region.objects.get(pk="990102002001")  # another township, same county
    patient_transfer(patient_id=eligible.pk, to_region=within, by=world.users.doctor_a, reason="t")
    assert services.reward_sync(today=date(2025, 5, 1))["ended"] == 0
    elsewhere = Region.objects.get(pk="990103001001")  # county C
    patient_transfer(
        patient_id=eligible.pk, to_region=elsewhere, by=world.users.doctor_a, reason="t"
    )
    # the register's history as if the transfer had been accepted on 2025-05-10
    history = Patient.objects.get(pk=eligible.pk).history
    moved = history.latest()
    history.exclude(pk=moved.pk).update(
        history_date=timezone.make_aware(timezone.datetime(2025, 1, 5, 9, 0))
    )
    history.filter(pk=moved.pk).update(
        history_date=timezone.make_aware(timezone.datetime(2025, 5, 10, 9, 0))
    )
    assert services.reward_sync(today=date(2025, 8, 1))["ended"] == 1
    award.refresh_from_db()
    assert (award.status, award.end_reason, award.ended_on, award.stop_from) == (
        AwardStatus.ENDED,
        "moved_out",
        date(2025, 5, 10),
        date(2025, 6, 1),
    )


def _only_eligible(user) -> set:
    from subsidies import selectors

    return set(
        selectors.reward_candidates(user=user, only_eligible=True).values_list("pk", flat=True)
    )


def test_the_eligible_filter_follows_the_policy_rule_not_the_alert_setting(
    world, patients, settings
):
    u = world.users
    sf.reward_policy(
        world.county_a, min_risk_level=None, qualifying_incident_kinds=["minor_trouble"]
    )
    a1 = sf.make_eligible(patients.pA1, doctor=u.doctor_a, police=u.police_a)  # a `trouble`
    Patient.objects.filter(pk=a1.pk).update(risk_level=5)
    assert _only_eligible(u.governance) == set()  # neither the kind nor the risk qualifies
    sf.incident(a1, kind="minor_trouble", on=date(2025, 5, 1))
    assert _only_eligible(u.governance) == {a1.pk}
    settings.HIGH_RISK_MIN_LEVEL = 1
    assert _only_eligible(u.governance) == {a1.pk}


def test_the_eligible_filter_agrees_with_the_reasons_shown(world, patients, policies):
    """Letter, assistants and the 12-month bar filter too: listed = no reason."""
    from subsidies import selectors

    u = world.users
    sf.make_eligible(patients.pA1, doctor=u.doctor_a, police=u.police_a)
    sf.make_eligible(patients.pB1, doctor=u.doctor_b, police=u.police_b, letter=False)
    from patients.tests import factories as pf

    pa2 = pf.patient(by=u.doctor_a, village="990102001002", name="甲二")
    barred = sf.make_eligible(pa2, doctor=u.doctor_a, police=u.police_a)
    sf.incident(barred, on=timezone.localdate() - timedelta(days=30), failed=True)
    today = timezone.localdate()
    rule = policies.reward.rule()
    without_reasons = {
        p.pk
        for p in selectors.reward_candidates(user=u.governance)
        if not rules.reward_ineligibility(selectors.reward_facts_for(p), rule, today=today)
    }
    assert without_reasons == _only_eligible(u.governance) == {patients.pA1.pk}
