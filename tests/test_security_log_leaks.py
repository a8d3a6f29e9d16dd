"""No personal data in logs or audit rows (SECURITY.md G12, G15).

Runs the security-relevant flows with every logger captured at DEBUG, then
scans the captured text and every audit row for the fixtures' ID numbers,
phones and names.
"""

from __future__ import annotations

import logging

import pytest
from django.test import Client
from django.urls import reverse

from accounts.roles import Role
from accounts.services import breakglass_request
from accounts.tests import factories as af
from audit.models import AuditEvent
from patients.selectors import patient_get_for_user
from patients.services import patient_record_search, patient_record_view

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def test_logs_and_audit_rows_hold_no_personal_data(caplog, world, patients):
    caplog.set_level(logging.DEBUG)
    u = world.users
    people = [patients.pA1, patients.pB1, patients.pC1]
    secrets = set()
    for p in people:
        secrets |= {p.id_number, p.name, p.guardian.phone, p.guardian.name}
    secrets.discard("")

    # sign-in flows: success, failure with an ID number typed as the username, lockout
    client = Client()
    client.post(reverse("accounts:login"), {"username": "doctor_a", "password": af.PASSWORD})
    for _ in range(5):
        Client().post(
            reverse("accounts:login"), {"username": patients.pB1.id_number, "password": "x"}
        )
    # reads, denials, searches, break the glass, audit pages
    patient_record_view(user=u.doctor_a, patient=patients.pA1)
    with pytest.raises(Exception):  # noqa: B017, PT011 - Http404
        patient_get_for_user(user=u.police_a, pk=patients.pB1.pk)
    patient_record_search(user=u.doctor_a, term=patients.pB1.id_number, count=0)
    patient_record_search(user=u.doctor_a, term=patients.pB1.name, count=0)
    breakglass_request(
        by=u.doctor_a,
        id_type="resident_id",
        id_number=patients.pB1.id_number,
        reason="急诊收治，需核对既往用药情况",
    )
    client.get(reverse("audit:patient-access", args=[patients.pA1.pk]))
    _key, key = af.api_key("公安系统", world.org.ps_a1, Role.POLICE, u.police_a)
    Client().get("/api/schema/", HTTP_AUTHORIZATION=f"Api-Key {key}")
    Client().get("/api/schema/", HTTP_AUTHORIZATION=f"Api-Key {key}x")
    auditor = af.staff("audit_a", Role.AUDIT_ADMIN, world.org.bureau_a)
    af.login(client, auditor)
    client.get(reverse("audit:event-list"))

    logged = caplog.text
    assert "login failed" in logged  # the capture works
    leaks = sorted(s for s in secrets if s in logged)
    assert leaks == []
    assert key not in logged

    audit_text = " ".join(
        f"{e.actor_username} {e.object_type} {e.object_id} {e.detail}"
        for e in AuditEvent.objects.all()
    )
    assert sorted(s for s in secrets if s in audit_text) == []
    assert key not in audit_text
