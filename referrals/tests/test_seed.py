"""seed_demo's referrals stage: every state and kind, rehab, clues, one
exchange run per partner; a second run changes nothing."""

from __future__ import annotations

import pytest

from core.seeding import SeedContext, run
from referrals.models import (
    Clue,
    ExchangePartner,
    ExchangeRun,
    ReconciliationRun,
    Referral,
    RehabEnrolment,
    RehabInstitution,
    RehabSession,
)

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def test_seed_demo_builds_the_referrals_demo_once(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    ctx = SeedContext(patients=400, townships=4)
    ran = run(ctx)
    assert "referrals.seed" in ran
    statuses = set(Referral.objects.values_list("status", flat=True))
    assert statuses == {"pending", "accepted", "rejected", "completed", "cancelled"}
    kinds = set(Referral.objects.values_list("kind", flat=True))
    assert kinds == {"upward", "downward", "rehab", "transfer"}
    # a transfer to another township and one to another county
    transfers = Referral.objects.filter(kind="transfer").select_related("to_organisation")
    counties = {r.to_organisation.region_id[:6] for r in transfers}
    assert counties == {"990102", "990103"}
    assert Referral.objects.filter(green_channel=True).exists()
    assert RehabInstitution.objects.count() == 3
    assert RehabEnrolment.objects.filter(status="active").exists()
    assert RehabSession.objects.exists()
    assert set(Clue.objects.values_list("status", flat=True)) == {"open", "closed", "confirmed"}
    departments = set(ExchangePartner.objects.values_list("department", flat=True))
    assert departments == {"police", "governance", "civil_affairs", "disabled_federation"}
    assert ExchangeRun.objects.count() == 4
    assert ReconciliationRun.objects.get().counts["missing_from_register"] >= 1
    before = Referral.objects.count()
    assert run(SeedContext(patients=400, townships=4)) == []
    assert Referral.objects.count() == before
