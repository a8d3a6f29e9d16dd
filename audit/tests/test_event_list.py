"""The audit admin reads the log with filters and pages (G4, G12)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from accounts.roles import Role
from accounts.tests import factories as af
from audit.models import AuditEvent
from audit.services import audit_record

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

URL = reverse("audit:event-list")


@pytest.fixture
def auditor(world):
    return af.staff("audit_a", Role.AUDIT_ADMIN, world.org.bureau_a)


def test_audit_admin_home_is_the_log(client, world, auditor):
    af.login(client, auditor)
    assert client.get("/").url == URL
    page = client.get(URL)
    assert page.status_code == 200
    assert "auth.login" in page.content.decode()


def test_filters_by_actor_action_object_and_date(client, world, auditor, patients):
    u = world.users
    start = timezone.now() - timedelta(days=3)
    with time_machine.travel(start, tick=False):
        audit_record(
            actor=u.doctor_a,
            action="patient.view",
            object_type="patient",
            object_id=patients.pA1.pk,
        )
    audit_record(
        actor=u.doctor_a, action="patient.view", object_type="patient", object_id=patients.pA1.pk
    )
    audit_record(
        actor=u.police_a, action="patient.view", object_type="patient", object_id=patients.pA1.pk
    )
    af.login(client, auditor)

    def ids(**params):
        return [e.pk for e in client.get(URL, params).context["page"].object_list]

    views = AuditEvent.objects.filter(action="patient.view").order_by("-id")
    assert ids(action="patient.view") == [e.pk for e in views]
    assert ids(action="patient.view", actor="police_a") == [views[0].pk]
    assert ids(
        object_type="patient",
        object_id=str(patients.pA1.pk),
        actor="doctor_a",
        action="patient.view",
    ) == [views[1].pk, views[2].pk]
    day = timezone.localdate(start).isoformat()
    assert ids(action="patient.view", date_from=day, date_to=day) == [views[2].pk]
    assert ids(action="patient.view", date_from=timezone.localdate().isoformat()) == [
        views[0].pk,
        views[1].pk,
    ]
    # an admin action appears with its actor
    assert ids(action="admin.staff_create", actor="") != []


def test_rows_of_another_county_are_not_shown(client, world, auditor, patients):
    audit_record(
        actor=world.users.doctor_c,
        action="patient.view",
        object_type="patient",
        object_id=patients.pC1.pk,
    )
    af.login(client, auditor)
    page = client.get(URL, {"actor": "doctor_c"})
    assert not page.context["page"].object_list


@pytest.mark.parametrize("persona", ["admin", "doctor_a", "official"])
def test_others_cannot_read_the_log(client, world, persona):
    af.login(client, getattr(world.users, persona))
    assert client.get(URL).status_code == 403


def test_security_admin_cannot_read_the_log(client, world):
    af.login(client, af.staff("sec_a", Role.SECURITY_ADMIN, world.org.bureau_a))
    assert client.get(URL).status_code == 403


@pytest.mark.parametrize("count", [1, 30])
def test_pages_of_50_with_a_flat_query_count(
    client, world, auditor, count, django_assert_max_num_queries
):
    for i in range(count):
        audit_record(actor=world.users.doctor_a, action="test.row", detail={"i": i})
    af.login(client, auditor)
    with django_assert_max_num_queries(12):
        page = client.get(URL, {"action": "test.row"})
    assert len(page.context["page"].object_list) == count
    for i in range(60):
        audit_record(actor=world.users.doctor_a, action="test.more", detail={"i": i})
    second = client.get(URL, {"action": "test.more", "page": 2})
    assert len(second.context["page"].object_list) == 10
    assert "action=test.more" in second.content.decode()
