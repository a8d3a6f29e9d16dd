"""Referral deadlines raise ``referral`` alerts to both ends, once; a
transfer hands patient, due follow-up and open alerts to the new centre."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.http import Http404
from django.utils import timezone

from accounts.models import Region
from core.errors import DomainError
from followups.models import Alert, AlertRecipient
from followups.services.alerts import alert_raise
from followups.tests import factories as ff
from patients.selectors import patient_get_for_user
from referrals.models import Referral
from referrals.selectors import referral_get_for_user
from referrals.services import referrals as svc

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def referral_alerts(ref):
    return Alert.objects.filter(kind="referral", referral_id=ref.pk)


def recipients(alert):
    return set(alert.recipients.values_list("organisation__name", flat=True))


@pytest.fixture
def pending(world, patients):
    return svc.referral_create(
        patient_id=patients.pA1.pk,
        kind="upward",
        to_organisation=world.org.hospital_a,
        reason="不稳定",
        by=world.users.doctor_a,
    )


def test_not_accepted_within_14_days_alerts_both_ends_once(pending):
    today = timezone.localdate()
    assert svc.referral_deadlines_scan(today=today + timedelta(days=14))["alerts_raised"] == 0
    counts = svc.referral_deadlines_scan(today=today + timedelta(days=15))
    assert counts["alerts_raised"] == 1
    alert = referral_alerts(pending).get()
    assert alert.episode == f"referral:{pending.pk}:accept"
    assert recipients(alert) == {"A1卫生院", "A专科医院"}
    # a second scan (and the next day's) raises nothing new
    assert svc.referral_deadlines_scan(today=today + timedelta(days=15))["alerts_raised"] == 0
    assert svc.referral_deadlines_scan(today=today + timedelta(days=16))["alerts_raised"] == 0
    assert referral_alerts(pending).count() == 1


def test_accepted_but_not_completed_within_30_days_alerts(world, pending):
    svc.referral_accept(referral_id=pending.pk, by=world.users.hospital)
    today = timezone.localdate()
    svc.referral_deadlines_scan(today=today + timedelta(days=30))
    assert not referral_alerts(pending).exists()
    svc.referral_deadlines_scan(today=today + timedelta(days=31))
    assert referral_alerts(pending).get().episode == f"referral:{pending.pk}:complete"


def test_completed_and_cancelled_referrals_raise_nothing(world, pending, patients):
    svc.referral_accept(referral_id=pending.pk, by=world.users.hospital)
    svc.referral_complete(referral_id=pending.pk, by=world.users.hospital)
    other = svc.referral_create(
        patient_id=patients.pB1.pk,
        kind="upward",
        to_organisation=world.org.hospital_a,
        reason="x",
        by=world.users.doctor_b,
    )
    svc.referral_cancel(referral_id=other.pk, by=world.users.doctor_b, reason="家属拒绝")
    svc.referral_deadlines_scan(today=timezone.localdate() + timedelta(days=90))
    assert not Alert.objects.filter(kind="referral").exists()


def downward(world, patients, days_ago):
    discharge = timezone.localdate() - timedelta(days=days_ago)
    return svc.referral_create(
        patient_id=patients.pA1.pk,
        kind="downward",
        to_organisation=world.org.hc_a1,
        reason="出院",
        by=world.users.hospital,
        discharge_sheet={"discharge_date": discharge},
    )


def test_no_community_followup_within_14_days_of_discharge_alerts(world, patients):
    ref = downward(world, patients, days_ago=14)
    svc.referral_deadlines_scan()
    assert not referral_alerts(ref).exists()  # day 14 is still in time
    svc.referral_accept(referral_id=ref.pk, by=world.users.doctor_a)
    svc.referral_deadlines_scan(today=timezone.localdate() + timedelta(days=1))
    alert = referral_alerts(ref).get()
    assert alert.episode == f"referral:{ref.pk}:followup"
    assert recipients(alert) == {"A1卫生院", "A专科医院"}


def test_a_community_followup_after_discharge_meets_the_deadline(world, patients):
    ref = downward(world, patients, days_ago=20)
    svc.referral_accept(referral_id=ref.pk, by=world.users.doctor_a)
    ff.record(by=world.users.doctor_a, patient=patients.pA1, days_ago=10)
    svc.referral_deadlines_scan()
    assert not referral_alerts(ref).exists()


def test_the_deadline_scan_records_a_run(pending):
    from core.models import TaskRun

    svc.referral_deadlines_scan(today=timezone.localdate() + timedelta(days=15))
    run = TaskRun.objects.get(job="referrals.deadlines")
    assert run.status == "succeeded" and run.counts == {"checked": 1, "alerts_raised": 1}


# --------------------------------------------------------------------------
# transfer
# --------------------------------------------------------------------------


def _open_alert(patient):
    """An open overdue alert in the managing health centre's inbox."""
    return alert_raise(patient=patient, kind="overdue", episode="due:2026-01-01")


@pytest.mark.parametrize(
    "receiver, to_org, village",
    [
        ("doctor_b", "hc_a2", "990102002002"),  # another township
        ("doctor_c", "hc_c1", "990103001002"),  # another county
    ],
)
def test_transfer_hands_patient_due_followup_and_open_alerts_over(
    world, patients, receiver, to_org, village
):
    pA1 = patients.pA1
    ff.record(by=world.users.doctor_a, patient=pA1, days_ago=5)
    pA1.refresh_from_db()
    due = pA1.next_followup_due
    alert = _open_alert(pA1)
    assert recipients(alert) == {"A1卫生院"}
    receiving = getattr(world.users, receiver)
    ref = svc.referral_create(
        patient_id=pA1.pk,
        kind="transfer",
        to_organisation=getattr(world.org, to_org),
        reason="随子女迁居",
        by=world.users.doctor_a,
        to_region=Region.objects.get(code=village),
        to_address="新家1号",
    )
    # before acceptance the receiving doctor sees the referral, not the patient record
    assert referral_get_for_user(user=receiving, pk=ref.pk)
    with pytest.raises(Http404):
        patient_get_for_user(user=receiving, pk=pA1.pk)

    svc.referral_accept(referral_id=ref.pk, by=receiving)

    pA1.refresh_from_db()
    assert pA1.region_id == village
    assert pA1.address == "新家1号"
    assert pA1.managing_organisation == getattr(world.org, to_org)
    assert pA1.next_followup_due == due  # the due follow-up moved with the patient
    assert recipients(alert) == {getattr(world.org, to_org).name}
    assert AlertRecipient.objects.filter(alert=alert, organisation=world.org.hc_a1).count() == 0
    # the receiving doctor now manages the patient; the old one no longer sees them
    assert patient_get_for_user(user=receiving, pk=pA1.pk)
    for_old = type(world.users.doctor_a).objects.get(pk=world.users.doctor_a.pk)
    with pytest.raises(Http404):
        patient_get_for_user(user=for_old, pk=pA1.pk)
    # …but still sees the referral they sent, and the register keeps the history
    assert referral_get_for_user(user=for_old, pk=ref.pk)
    regions = list(pA1.history.order_by("history_date").values_list("region_id", flat=True))
    assert regions[0] == "990102001001" and regions[-1] == village
    assert "referral.transfer" in pA1.history.values_list("history_change_reason", flat=True)


def test_transfer_destination_must_lie_in_the_receiving_township(world, patients):
    with pytest.raises(DomainError) as err:
        svc.referral_create(
            patient_id=patients.pA1.pk,
            kind="transfer",
            to_organisation=world.org.hc_a2,
            reason="迁居",
            by=world.users.doctor_a,
            to_region=Region.objects.get(code="990103001001"),
        )
    assert err.value.field == "to_region"


def test_transfer_destination_may_be_chosen_on_acceptance(world, patients):
    ref = svc.referral_create(
        patient_id=patients.pA1.pk,
        kind="transfer",
        to_organisation=world.org.hc_a2,
        reason="迁居",
        by=world.users.doctor_a,
    )
    with pytest.raises(DomainError) as err:
        svc.referral_accept(referral_id=ref.pk, by=world.users.doctor_b)
    assert err.value.message == svc.ERR_TRANSFER_REGION
    assert Referral.objects.get(pk=ref.pk).status == "pending"
    svc.referral_accept(
        referral_id=ref.pk,
        by=world.users.doctor_b,
        to_region=Region.objects.get(code="990102002001"),
    )
    patients.pA1.refresh_from_db()
    assert patients.pA1.region_id == "990102002001"


@pytest.mark.parametrize("destination", ["other_township", "other_county"])
def test_transfer_moves_the_police_and_governance_alerts_to_the_new_area(
    world, patients, destination, django_capture_on_commit_callbacks
):
    """A risk alert sits with township A1's police station (acknowledged)
    and governance office, and escalated with the county police bureau; after
    the move the new township's units have it, in the state it was in."""
    from accounts.models import OrganisationKind as K
    from accounts.tests import factories as af
    from core.notify import MemoryBackend
    from followups.services.alerts import alert_acknowledge, alert_add_recipients

    o = world.org
    if destination == "other_township":
        receiver, to_org, village = world.users.doctor_b, o.hc_a2, "990102002002"
        police, governance, bureau = o.ps_a2, o.gov_a2, o.pb_a
    else:
        receiver, to_org, village = world.users.doctor_c, o.hc_c1, "990103001002"
        police = af.organisation("C1派出所", K.POLICE_STATION, world.c1)
        governance = af.organisation("C1综治办", K.GOVERNANCE_OFFICE, world.c1)
        bureau = af.organisation("C公安局", K.POLICE_BUREAU, world.county_c)
    pA1 = patients.pA1
    ff.record(by=world.users.doctor_a, patient=pA1, risk_level=3)
    risk = Alert.objects.get(patient=pA1, kind="risk")
    alert_add_recipients(alert=risk, organisations=[o.pb_a], escalated=True)
    alert_acknowledge(alert_id=risk.pk, by=world.users.police_a)
    overdue = _open_alert(pA1)
    assert recipients(risk) == {"A1派出所", "A1综治办", "A公安局"}
    ref = svc.referral_create(
        patient_id=pA1.pk,
        kind="transfer",
        to_organisation=to_org,
        reason="随子女迁居",
        by=world.users.doctor_a,
        to_region=Region.objects.get(code=village),
    )
    MemoryBackend.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        svc.referral_accept(referral_id=ref.pk, by=receiver)
    assert recipients(risk) == {police.name, governance.name, bureau.name}
    assert recipients(overdue) == {to_org.name}
    moved = AlertRecipient.objects.get(alert=risk, organisation=police)
    assert moved.status == "acknowledged" and moved.acknowledged_by == world.users.police_a
    reasons = list(
        moved.history.order_by("history_date").values_list("history_change_reason", flat=True)
    )
    assert reasons[-2:] == ["alert.acknowledged", "alert.transferred"]
    # the new units are told (the old ones were told when the alert was raised)
    told = {m.organisation_id for m in MemoryBackend.outbox}
    assert {police.pk, governance.pk, to_org.pk, bureau.pk} <= told
