"""'Who saw this record' for the patient's health centre staff (G12)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from accounts.tests import factories as af
from audit.models import AuditEvent
from audit.services import audit_record
from patients.services import patient_record_view

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def url(patient):
    return reverse("audit:patient-access", args=[patient.pk])


def test_health_centre_staff_see_who_opened_the_record(client, world, patients):
    u, pA1 = world.users, patients.pA1
    patient_record_view(user=u.police_a, patient=pA1)
    patient_record_view(user=u.governance, patient=pA1)
    af.login(client, u.doctor_a)
    page = client.get(url(pA1))
    assert page.status_code == 200
    html = page.content.decode()
    assert "police_a" in html and "A1派出所" in html and "governance_a" in html
    assert "patient.create" in html
    # looking at the list is itself recorded
    assert AuditEvent.objects.filter(
        action="patient.access_log", actor=u.doctor_a, object_id=str(pA1.pk)
    ).exists()
    # the county hospital manages the county's patients too
    af.login(client, u.hospital)
    assert client.get(url(pA1)).status_code == 200


@pytest.mark.parametrize("persona", ["doctor_b", "doctor_c", "police_a", "civil", "admin"])
def test_everyone_else_gets_404_and_it_is_audited(client, world, patients, persona):
    user = getattr(world.users, persona)
    af.login(client, user)
    assert client.get(url(patients.pA1)).status_code == 404
    assert AuditEvent.objects.filter(
        action="access.denied", actor=user, object_id=str(patients.pA1.pk)
    ).exists()


@pytest.mark.parametrize("count", [1, 30])
def test_flat_query_count(client, world, patients, count, django_assert_max_num_queries):
    for _ in range(count - 1):
        audit_record(
            actor=world.users.police_a,
            action="patient.view",
            object_type="patient",
            object_id=patients.pA1.pk,
        )
    af.login(client, world.users.doctor_a)
    with django_assert_max_num_queries(20):
        page = client.get(url(patients.pA1))
    # the registration row plus the reads, plus this visit
    assert len(page.context["page"].object_list) == count + 1
