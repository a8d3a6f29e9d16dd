"""The matrix's world: the root conftest's personas plus the two 三员 roles
that it does not make (security admin, audit admin), and the staff of
county C the object builders need (its security admin, hospital, police)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from accounts.models import OrganisationKind as K
from accounts.roles import Role
from accounts.tests import factories as af

# The personas of the matrix (issue 7 item 1), in column order.
PERSONAS = (
    "doctor_a",
    "doctor_b",
    "doctor_c",
    "hospital",
    "police_a",
    "governance",
    "civil",
    "dpf",
    "finance",
    "official",
    "admin",
    "security_admin",
    "audit_admin",
    "anonymous",
)


@pytest.fixture
def authz(world, patients):
    """Everything a matrix cell needs: world, patients, users, extra staff."""
    org = world.org
    users = SimpleNamespace(
        **vars(world.users),
        security_admin=af.staff("secadmin_a", Role.SECURITY_ADMIN, org.bureau_a),
        audit_admin=af.staff("auditadmin_a", Role.AUDIT_ADMIN, org.bureau_a),
    )
    # every persona holds the export permission (granted per account by the
    # system admin): the matrix is about roles and scope; without it every
    # export is 403 (tests/test_exports_everywhere.py)
    af.grant_export(*vars(users).values())
    c = world.county_c
    bureau_c = af.organisation("C卫健局", K.HEALTH_BUREAU, c)
    extra = SimpleNamespace(
        security_admin_c=af.staff("secadmin_c", Role.SECURITY_ADMIN, bureau_c),
        hospital_c=af.staff(
            "hospital_c",
            Role.HOSPITAL_DOCTOR,
            af.organisation("C专科医院", K.SPECIALIST_HOSPITAL, c),
        ),
        police_c=af.staff(
            "police_c", Role.POLICE, af.organisation("C1派出所", K.POLICE_STATION, world.c1)
        ),
    )
    return SimpleNamespace(world=world, patients=patients, users=users, extra=extra)
