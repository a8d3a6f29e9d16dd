"""seed_demo's follow-up stage: two years of history that obeys the rules
(the scan finds nothing the seed should have raised), some overdue, lost,
incidents, open and handled alerts; a second run changes nothing."""

from __future__ import annotations

import pytest
from django.db.models import Count, OuterRef, Subquery
from django.utils import timezone

from core.seeding import SeedContext, run
from followups.models import Alert, AlertRecipient, FollowUp, NotificationDelivery
from followups.services.scan import followup_scan
from patients.models import Incident, Patient

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def _stages(monkeypatch):
    from core import seeding

    monkeypatch.setattr(seeding, "STAGES", ["accounts.seed", "patients.seed", "followups.seed"])


def test_seed_builds_two_years_of_follow_ups_that_obey_the_rules(monkeypatch, settings, tmp_path):
    settings.VAR_DIR = tmp_path
    _stages(monkeypatch)
    assert "followups.seed" in run(SeedContext(patients=600, townships=4))
    today = timezone.localdate()

    visits = FollowUp.objects.count()
    assert 600 * 5 < visits < 600 * 20
    assert FollowUp.objects.filter(visit_date__lt=today.replace(year=today.year - 1)).exists()
    assert set(FollowUp.objects.values_list("outcome", flat=True)) == {
        "completed",
        "not_reached",
        "lost",
        "deceased",
    }
    assert set(Alert.objects.values_list("kind", flat=True)) >= {"risk", "overdue", "lost"}
    assert set(Alert.objects.values_list("status", flat=True)) >= {"open", "resolved"}
    assert Incident.objects.exists()
    active = Patient.objects.filter(status="active")
    overdue = active.filter(next_followup_due__lt=today).count()
    assert 0.02 < overdue / active.count() < 0.15

    # the patient carries its latest completed visit
    latest = FollowUp.objects.filter(patient=OuterRef("pk"), outcome="completed").order_by(
        "-visit_date", "-created_at"
    )
    rows = Patient.objects.filter(status="active").annotate(
        fu_risk=Subquery(latest.values("risk_level")[:1]),
        fu_date=Subquery(latest.values("visit_date")[:1]),
    )
    for p in rows:
        assert (p.risk_level, p.last_followup_date) == (p.fu_risk, p.fu_date)

    # seeded alerts were told already: nothing goes out when the demo starts
    assert NotificationDelivery.objects.count() == AlertRecipient.objects.count()
    # every lost patient has its lost alert, every overdue one its overdue
    # alert, every late one its escalation: the scan finds nothing the seed
    # should have raised, escalated or closed
    counts = followup_scan()
    assert (counts["overdue_raised"], counts["lost_raised"], counts["escalated"]) == (0, 0, 0)
    assert (counts["overdue_closed"], counts["lost_closed"]) == (0, 0)
    assert AlertRecipient.objects.filter(escalated=True).exists()
    # one alert per patient, kind and episode
    assert not (
        Alert.objects.values("patient", "kind", "episode")
        .annotate(n=Count("pk"))
        .filter(n__gt=1)
        .exists()
    )

    assert run(SeedContext(patients=600, townships=4)) == []
    assert FollowUp.objects.count() == visits
