"""Referral lifecycle: every transition, who may do it, what it records."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.utils import timezone

from audit.models import AuditEvent
from core.errors import DomainError
from patients.models import Patient
from referrals.models import ReferralEvent, ReferralStatus, RehabEnrolment
from referrals.services import referrals as svc
from referrals.services.rehab import ERR_NO_PLACES

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def upward(world, patients, **extra):
    return svc.referral_create(
        patient_id=patients.pA1.pk,
        kind="upward",
        to_organisation=world.org.hospital_a,
        reason="病情不稳定，建议住院",
        by=world.users.doctor_a,
        **extra,
    )


def test_upward_referral_goes_pending_accepted_completed_and_records_each_step(world, patients):
    ref = upward(world, patients)
    assert ref.status == ReferralStatus.PENDING
    assert ref.from_organisation == world.org.hc_a1
    assert ref.accept_by == timezone.localdate() + timedelta(days=14)

    svc.referral_accept(referral_id=ref.pk, by=world.users.hospital, note="已安排床位")
    ref.refresh_from_db()
    assert ref.status == ReferralStatus.ACCEPTED
    assert ref.complete_by == timezone.localdate() + timedelta(days=30)

    svc.referral_complete(referral_id=ref.pk, by=world.users.hospital, note="已入院")
    ref.refresh_from_db()
    assert ref.status == ReferralStatus.COMPLETED
    events = list(ReferralEvent.objects.filter(referral=ref).values_list("action", "by", "note"))
    assert events == [
        ("created", world.users.doctor_a.pk, "病情不稳定，建议住院"),
        ("accepted", world.users.hospital.pk, "已安排床位"),
        ("completed", world.users.hospital.pk, "已入院"),
    ]
    assert list(ref.history.values_list("history_change_reason", flat=True)) == [
        "referral.completed",
        "referral.accepted",
        "referral.upward.created",
    ]
    actions = set(
        AuditEvent.objects.filter(object_type="referral", object_id=str(ref.pk)).values_list(
            "action", flat=True
        )
    )
    assert actions == {"referral.create", "referral.accept", "referral.complete"}


def test_reject_needs_a_reason_and_records_who_and_why(world, patients):
    ref = upward(world, patients)
    with pytest.raises(DomainError) as err:
        svc.referral_reject(referral_id=ref.pk, by=world.users.hospital, reason=" ")
    assert err.value.message == svc.ERR_REASON_REQUIRED
    svc.referral_reject(referral_id=ref.pk, by=world.users.hospital, reason="床位已满")
    ref.refresh_from_db()
    assert ref.status == ReferralStatus.REJECTED
    last = ref.events.last()
    assert (last.action, last.by, last.note) == ("rejected", world.users.hospital, "床位已满")


def test_cancel_by_the_sender_with_a_reason(world, patients):
    ref = upward(world, patients)
    with pytest.raises(PermissionDenied):
        svc.referral_cancel(referral_id=ref.pk, by=world.users.hospital, reason="x")
    svc.referral_cancel(referral_id=ref.pk, by=world.users.doctor_a, reason="家属拒绝住院")
    ref.refresh_from_db()
    assert ref.status == ReferralStatus.CANCELLED


@pytest.mark.parametrize(
    "steps, action",
    [
        ([], "complete"),
        (["reject"], "accept"),
        (["reject"], "complete"),
        (["accept"], "accept"),
        (["accept"], "reject"),
        (["accept"], "cancel"),
        (["accept", "complete"], "complete"),
        (["cancel"], "accept"),
    ],
)
def test_transitions_outside_the_state_machine_are_refused(world, patients, steps, action):
    ref = upward(world, patients)
    do = {
        "accept": lambda: svc.referral_accept(referral_id=ref.pk, by=world.users.hospital),
        "reject": lambda: svc.referral_reject(
            referral_id=ref.pk, by=world.users.hospital, reason="r"
        ),
        "complete": lambda: svc.referral_complete(referral_id=ref.pk, by=world.users.hospital),
        "cancel": lambda: svc.referral_cancel(
            referral_id=ref.pk, by=world.users.doctor_a, reason="r"
        ),
    }
    for step in steps:
        do[step]()
    before = ReferralEvent.objects.filter(referral=ref).count()
    with pytest.raises(DomainError):
        do[action]()
    assert ReferralEvent.objects.filter(referral=ref).count() == before


def test_only_the_receiving_organisation_accepts(world, patients):
    ref = upward(world, patients)
    with pytest.raises(PermissionDenied):
        svc.referral_accept(referral_id=ref.pk, by=world.users.doctor_a)
    with pytest.raises(Http404):  # another township's doctor does not even see it
        svc.referral_accept(referral_id=ref.pk, by=world.users.doctor_b)
    assert AuditEvent.objects.filter(
        action="access.denied", object_type="referral", actor=world.users.doctor_b
    ).exists()


def test_a_doctor_cannot_refer_a_patient_of_another_township(world, patients):
    with pytest.raises(Http404):
        svc.referral_create(
            patient_id=patients.pB1.pk,
            kind="upward",
            to_organisation=world.org.hospital_a,
            reason="x",
            by=world.users.doctor_a,
        )


def test_police_cannot_refer(world, patients):
    with pytest.raises(PermissionDenied):
        svc.referral_create(
            patient_id=patients.pA1.pk,
            kind="upward",
            to_organisation=world.org.hospital_a,
            reason="x",
            by=world.users.police_a,
        )


def test_kind_must_fit_the_receiving_organisation(world, patients):
    with pytest.raises(DomainError) as err:
        svc.referral_create(
            patient_id=patients.pA1.pk,
            kind="upward",
            to_organisation=world.org.hc_a2,
            reason="x",
            by=world.users.doctor_a,
        )
    assert err.value.field == "to_organisation"


def test_one_open_referral_of_a_kind_per_patient(world, patients):
    upward(world, patients)
    with pytest.raises(DomainError) as err:
        upward(world, patients)
    assert err.value.message == svc.ERR_OPEN_EXISTS


def test_downward_referral_needs_the_discharge_sheet(world, patients):
    with pytest.raises(DomainError) as err:
        svc.referral_create(
            patient_id=patients.pA1.pk,
            kind="downward",
            to_organisation=world.org.hc_a1,
            reason="出院",
            by=world.users.hospital,
        )
    assert err.value.field == "discharge_sheet"


def test_downward_referral_takes_the_sheet_recorded_at_discharge(world, patients, monkeypatch):
    import subsidies.selectors as subsidies

    discharge = timezone.localdate() - timedelta(days=3)
    recorded = {"case_number": "ZY-9", "discharge_date": discharge, "attending_doctor": "张医生"}
    monkeypatch.setattr(subsidies, "latest_discharge_for", lambda *, user, patient: "episode")
    monkeypatch.setattr(subsidies, "discharge_sheet_for", lambda *, episode: recorded)
    ref = svc.referral_create(
        patient_id=patients.pA1.pk,
        kind="downward",
        to_organisation=world.org.hc_a1,
        reason="出院",
        by=world.users.hospital,
    )
    assert ref.discharge_date == discharge
    assert ref.discharge_sheet["case_number"] == "ZY-9"


def test_downward_referral_carries_the_sheet_and_brings_the_first_followup_forward(world, patients):
    discharge = timezone.localdate() - timedelta(days=2)
    Patient.objects.filter(pk=patients.pA1.pk).update(
        next_followup_due=timezone.localdate() + timedelta(days=80)
    )
    sheet = {
        "case_number": "ZY2026001",
        "admission_date": discharge - timedelta(days=30),
        "discharge_date": discharge,
        "discharge_diagnosis": "schizophrenia",
        "medication_advice": [{"drug": "利培酮", "morning_mg": 2}],
        "attending_doctor": "张医生",
    }
    ref = svc.referral_create(
        patient_id=patients.pA1.pk,
        kind="downward",
        to_organisation=world.org.hc_a1,
        reason="病情稳定出院，转回社区管理",
        by=world.users.hospital,
        discharge_sheet=sheet,
    )
    ref.refresh_from_db()
    assert ref.discharge_date == discharge
    assert ref.discharge_sheet["case_number"] == "ZY2026001"
    assert ref.discharge_sheet["admission_date"] == (discharge - timedelta(days=30)).isoformat()
    patients.pA1.refresh_from_db()
    assert patients.pA1.next_followup_due == discharge + timedelta(days=14)


def test_only_a_specialist_hospital_refers_downward(world, patients):
    with pytest.raises(PermissionDenied):
        svc.referral_create(
            patient_id=patients.pA1.pk,
            kind="downward",
            to_organisation=world.org.hc_a2,
            reason="x",
            by=world.users.doctor_a,
            discharge_date=date(2026, 1, 1),
        )


def test_rehab_referral_needs_consent_of_patient_and_guardian(world, patients, institution):
    for patient_consent, guardian_consent in ((False, True), (True, False), (False, False)):
        with pytest.raises(DomainError) as err:
            svc.referral_create(
                patient_id=patients.pA1.pk,
                kind="rehab",
                to_organisation=institution.organisation,
                reason="病情稳定，适合社区康复",
                by=world.users.doctor_a,
                patient_consent=patient_consent,
                guardian_consent=guardian_consent,
            )
        assert err.value.message == svc.ERR_CONSENT


def test_accepted_rehab_referral_enrols_and_the_rehab_flag_follows(world, patients, institution):
    ref = svc.referral_create(
        patient_id=patients.pA1.pk,
        kind="rehab",
        to_organisation=institution.organisation,
        reason="病情稳定，适合社区康复",
        by=world.users.hospital,
        patient_consent=True,
        guardian_consent=True,
    )
    # civil affairs runs the institution: the county platform accepts
    svc.referral_accept(referral_id=ref.pk, by=world.users.civil)
    enrolment = RehabEnrolment.objects.get(patient=patients.pA1)
    assert enrolment.status == "active" and enrolment.referral == ref
    patients.pA1.refresh_from_db()
    assert patients.pA1.in_community_rehab is True


def test_rehab_acceptance_respects_places(world, patients, institution):
    from referrals.services.rehab import rehab_enrol

    rehab_enrol(
        patient_id=patients.pB1.pk,
        institution_id=institution.pk,
        by=world.users.civil,
        patient_consent=True,
        guardian_consent=True,
    )
    extra = __import__("patients.tests.factories", fromlist=["patient"]).patient(
        by=world.users.doctor_a, village="990102001002", name="甲二"
    )
    rehab_enrol(
        patient_id=extra.pk,
        institution_id=institution.pk,
        by=world.users.civil,
        patient_consent=True,
        guardian_consent=True,
    )
    ref = svc.referral_create(
        patient_id=patients.pA1.pk,
        kind="rehab",
        to_organisation=institution.organisation,
        reason="康复",
        by=world.users.doctor_a,
        patient_consent=True,
        guardian_consent=True,
    )
    with pytest.raises(DomainError) as err:
        svc.referral_accept(referral_id=ref.pk, by=world.users.civil)
    assert err.value.message == ERR_NO_PLACES
    ref.refresh_from_db()
    assert ref.status == ReferralStatus.PENDING


def test_green_channel_upward_from_rehab_on_relapse(world, patients, institution):
    from referrals.services.rehab import rehab_enrol

    enrolment = rehab_enrol(
        patient_id=patients.pA1.pk,
        institution_id=institution.pk,
        by=world.users.civil,
        patient_consent=True,
        guardian_consent=True,
    )
    ref = svc.rehab_green_channel(
        enrolment_id=enrolment.pk,
        to_organisation=world.org.hospital_a,
        reason="康复期间病情复发",
        by=world.users.civil,
    )
    assert ref.kind == "upward" and ref.green_channel
    assert ref.from_organisation == institution.organisation
    assert ref.accept_by == timezone.localdate() + timedelta(days=1)
    enrolment.refresh_from_db()
    assert (enrolment.status, enrolment.end_reason) == ("ended", "relapse")
    patients.pA1.refresh_from_db()
    assert patients.pA1.in_community_rehab is False
    svc.referral_accept(referral_id=ref.pk, by=world.users.hospital)
