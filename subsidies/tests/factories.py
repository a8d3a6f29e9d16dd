"""Builders for the subsidies tests, through the services where one exists.

Incidents are recorded by the police through the followups app; here they
are plain rows (the tests only need the register to hold one).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from accounts.models import OrganisationKind
from accounts.roles import Role
from accounts.tests import factories as af
from patients.models import Incident, Patient
from patients.services import patient_update
from subsidies import services
from subsidies.seed import DEMO_LAYERS

D = Decimal


def reward_policy(county, **extra):
    fields = {
        "region": county,
        "name": "测试以奖代补办法",
        "valid_from": date(2019, 1, 1),
        "yearly_amount": D("3600.00"),
        "frequency": "quarterly",
        "notice_days": 7,
        **extra,
    }
    return services.reward_policy_create(**fields)


def settlement_policy(county, layers=None, **extra):
    fields = {
        "region": county,
        "name": "测试一站式结算办法",
        "valid_from": date(2018, 1, 1),
        "layers": DEMO_LAYERS if layers is None else layers,
        **extra,
    }
    return services.settlement_policy_create(**fields)


def incident(patient, *, kind="trouble", on=date(2024, 6, 1), failed=False, org=None):
    org = org or patient.managing_organisation
    return Incident.objects.create(
        patient=patient,
        kind=kind,
        occurred_on=on,
        place="村口",
        description="测试",
        guardian_failed_duties=failed,
        organisation=org,
    )


def make_eligible(patient, *, doctor, police, assistants: int = 2, letter: bool = True):
    """Guardian letter and assistant guardians (health), police registration
    (police), and a ``trouble`` incident on record."""
    patient = patient_update(
        by=doctor,
        pk=patient.pk,
        data={
            "guardian": {"name": "监护人", "relation": "母亲", "responsibility_letter": letter},
            "assistant_guardians": [
                {"name": f"协助{i}", "relation": "村干部"} for i in range(assistants)
            ],
        },
        expected_version=None,
    )
    patient = patient_update(
        by=police, pk=patient.pk, data={"police_registered": True}, expected_version=None
    )
    incident(patient)
    return Patient.objects.get(pk=patient.pk)


def township_governance(world, code="a1"):
    org = getattr(world.org, f"gov_{code}")
    return af.staff(f"gov_{code}", Role.GOVERNANCE, org)


def county_c_staff(world):
    """Hospital, governance and finance of the other county (for 404 rows)."""
    c = world.county_c
    hospital = af.organisation("C专科医院", OrganisationKind.SPECIALIST_HOSPITAL, c)
    gov = af.organisation("C县综治办", OrganisationKind.GOVERNANCE_OFFICE, c)
    station = af.organisation("C1派出所", OrganisationKind.POLICE_STATION, world.c1)
    return {
        "hospital": af.staff("hospital_c", Role.HOSPITAL_DOCTOR, hospital),
        "governance": af.staff("governance_c", Role.GOVERNANCE, gov),
        "police": af.staff("police_c", Role.POLICE, station),
    }


def award_through(
    patient,
    *,
    applicant,
    reviewer=None,
    approver=None,
    applied=date(2025, 1, 10),
    approved=date(2025, 1, 20),
    activate_on=None,
):
    """An award taken as far as the given people take it."""
    award = services.award_apply(
        patient_id=patient.pk, by=applicant, source=_source(applicant), today=applied
    )
    if reviewer is not None:
        award = services.award_township_review(award_id=award.pk, by=reviewer, approve=True)
    if approver is not None:
        award = services.award_county_decide(
            award_id=award.pk, by=approver, approve=True, today=approved
        )
    if activate_on is not None:
        services.awards_activate_due(today=activate_on)
        award.refresh_from_db()
    return award


def _source(user):
    from accounts.roles import role_of

    return "health_centre" if role_of(user) == Role.TOWNSHIP_DOCTOR else "governance"


def login(client, user):
    """``force_login`` plus a verified second factor for the admin roles
    (they always need one): the session is as after a full sign-in."""
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from accounts.roles import ADMIN_CLASS_ROLES, role_of

    client.force_login(user)
    if role_of(user) in ADMIN_CLASS_ROLES:
        device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
        if device is None:
            device = TOTPDevice.objects.create(user=user, name="test", confirmed=True)
        session = client.session
        session[DEVICE_ID_SESSION_KEY] = device.persistent_id
        session.save()
    return client
