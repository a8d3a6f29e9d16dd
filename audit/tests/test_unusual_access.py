"""Unusual access: more than N distinct patients opened in a day (G12)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from accounts.roles import Role
from accounts.tests import factories as af
from audit.models import AuditEvent
from audit.services import UNUSUAL_ACCESS_ACTION, audit_record
from audit.tasks import flag_unusual_access
from config.schedule import BEAT_SCHEDULE

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def reads(user, patient_ids):
    for pk in patient_ids:
        audit_record(actor=user, action="patient.view", object_type="patient", object_id=pk)


def test_accounts_over_the_threshold_are_flagged_once_a_day(settings, world, patients):
    settings.UNUSUAL_ACCESS_THRESHOLD = 2
    ids = [patients.pA1.pk, patients.pB1.pk, patients.pC1.pk]
    reads(world.users.governance, ids)
    reads(world.users.governance, ids)  # the same patients again count once
    reads(world.users.doctor_a, ids[:2])  # at the threshold: fine
    result = flag_unusual_access.delay().get()
    assert result["flagged"] == 1
    alert = AuditEvent.objects.get(action=UNUSUAL_ACCESS_ACTION)
    assert alert.object_id == str(world.users.governance.pk)
    assert alert.detail["patients"] == 3 and alert.detail["threshold"] == 2
    assert flag_unusual_access.delay().get()["flagged"] == 0
    assert AuditEvent.objects.filter(action=UNUSUAL_ACCESS_ACTION).count() == 1
    assert AuditEvent.objects.filter(action="audit.unusual_access_scan").count() == 2


def test_default_threshold_and_schedule(settings):
    assert settings.UNUSUAL_ACCESS_THRESHOLD == 200
    tasks = {entry["task"] for entry in BEAT_SCHEDULE.values()}
    assert "audit.tasks.flag_unusual_access" in tasks


def test_alerts_are_shown_to_the_audit_admin(client, settings, world, patients):
    settings.UNUSUAL_ACCESS_THRESHOLD = 1
    reads(world.users.governance, [patients.pA1.pk, patients.pB1.pk])
    reads(world.users.doctor_c, [patients.pC1.pk, patients.pC1.pk])  # one patient: fine
    flag_unusual_access()
    auditor = af.staff("audit_a", Role.AUDIT_ADMIN, world.org.bureau_a)
    af.login(client, auditor)
    page = client.get(reverse("audit:unusual-list"))
    assert page.status_code == 200
    (row,) = page.context["page"].object_list
    assert row.flagged_username == "governance_a"
    assert "governance_a" in page.content.decode()
    af.login(client, world.users.admin)
    assert client.get(reverse("audit:unusual-list")).status_code == 403


@pytest.mark.parametrize("count", [1, 30])
def test_alert_list_query_count_is_flat(
    client, settings, world, patients, count, django_assert_max_num_queries
):
    settings.UNUSUAL_ACCESS_THRESHOLD = 0
    for i in range(count):
        user = af.staff(f"reader{i:02d}", Role.TOWNSHIP_DOCTOR, world.org.hc_a1)
        reads(user, [patients.pA1.pk])
    flag_unusual_access()
    af.login(client, af.staff("audit_a", Role.AUDIT_ADMIN, world.org.bureau_a))
    with django_assert_max_num_queries(12):
        page = client.get(reverse("audit:unusual-list"))
    assert len(page.context["page"].object_list) == count


def test_patients_seen_in_lists_and_searches_count(client, settings, world, patients):
    """Browsing the list (or searching) shows patients as surely as opening
    them: an account that only ever lists is flagged too."""
    settings.UNUSUAL_ACCESS_THRESHOLD = 1
    af.login(client, world.users.hospital)  # county A: pA1 and pB1
    assert client.post(reverse("patients:list"), {"q": "一"}).status_code == 200
    assert not AuditEvent.objects.filter(actor=world.users.hospital, action="patient.view")
    assert flag_unusual_access()["flagged"] == 1
    alert = AuditEvent.objects.get(action=UNUSUAL_ACCESS_ACTION)
    assert alert.object_id == str(world.users.hospital.pk) and alert.detail["patients"] == 2


def test_the_audit_and_security_admins_are_told(client, settings, world, patients):
    settings.UNUSUAL_ACCESS_THRESHOLD = 1
    reads(world.users.governance, [patients.pA1.pk, patients.pB1.pk])
    flag_unusual_access()
    auditor = af.staff("audit_a", Role.AUDIT_ADMIN, world.org.bureau_a)
    security = af.staff("security_a", Role.SECURITY_ADMIN, world.org.bureau_a)
    for admin, home in ((auditor, "audit:event-list"), (security, "accounts:staff-list")):
        af.login(client, admin)
        page = client.get(reverse(home)).content.decode()
        assert 'id="unusual-access-notice"' in page, admin
        assert reverse("audit:unusual-list") in page
        listing = client.get(reverse("audit:unusual-list"))
        assert listing.status_code == 200 and "governance_a" in listing.content.decode()
    # nobody else is told; an admin of another county is not told of county A
    af.login(client, world.users.doctor_a)
    assert 'id="unusual-access-notice"' not in client.get(reverse("patients:list")).content.decode()
    c = world.county_c
    other = af.staff(
        "security_c", Role.SECURITY_ADMIN, af.organisation("C卫健局", "health_bureau", c)
    )
    af.login(client, other)
    page = client.get(reverse("accounts:staff-list")).content.decode()
    assert 'id="unusual-access-notice"' not in page
