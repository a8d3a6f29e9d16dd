"""The demo data of the reward workflow (seed_demo): who did each step."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from accounts.models import RegionLevel
from accounts.roles import Role, role_of
from subsidies import selectors
from subsidies.models import AwardEvent, AwardStep

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo(db):
    call_command("seed_demo", "--patients", "600", stdout=io.StringIO())


def test_seeded_applications_and_township_reviews_name_their_accounts(demo):
    """Each demo township has its governance office account, which does the
    township review; every application names who entered it."""
    users = get_user_model().objects
    for username, township in (("towngov1", "990102001"), ("towngov4", "990102004")):
        user = users.get(username=username)
        assert role_of(user) == Role.GOVERNANCE
        org = user.staff.organisation
        assert (org.region_id, org.region.level) == (township, RegionLevel.TOWNSHIP)
        assert user.check_password("Demo-Pass-2026!")
        # a township office reviews, it does not approve at county level
        assert selectors.can(user, selectors.REWARD_TOWNSHIP_REVIEW)
        assert not selectors.can(user, selectors.REWARD_COUNTY_APPROVE)
    applied = AwardEvent.objects.filter(step=AwardStep.APPLIED).select_related(
        "award__patient", "by"
    )
    assert applied.exists()
    assert not applied.filter(by=None).exists()
    for event in applied:
        assert event.award.applied_by_id == event.by_id
        assert role_of(event.by) in (Role.TOWNSHIP_DOCTOR, Role.GOVERNANCE)
        # the applicant works in the patient's township
        assert event.award.patient.region_id.startswith(event.organisation.region_id)
    reviews = AwardEvent.objects.filter(
        step__in=[AwardStep.TOWNSHIP_APPROVED, AwardStep.TOWNSHIP_REJECTED]
    ).select_related("award__patient", "organisation__region")
    assert reviews.exists()
    for event in reviews:
        assert event.by.username.startswith("towngov")
        assert event.organisation.region.level == RegionLevel.TOWNSHIP
        assert event.award.patient.region_id.startswith(event.organisation.region_id)
