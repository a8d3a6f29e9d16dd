"""Break the glass (SECURITY.md G25): a health user reads a patient outside
their scope but inside their county's register for 3 hours with a written
reason; every lookup is audited; the audit admin reviews."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import time_machine
from django.http import Http404
from django.urls import reverse
from django.utils import timezone

from accounts.models import BreakGlassGrant
from accounts.roles import Role
from accounts.services import (
    ERR_BREAKGLASS_NOT_FOUND,
    ERR_BREAKGLASS_ROLE,
    ERR_REASON_SHORT,
    breakglass_request,
)
from accounts.tests import factories as af
from audit.models import AuditEvent
from core.errors import DomainError
from patients.selectors import can_manage_patient, patient_get_for_user, patient_list_visible_to
from patients.services import patient_record_view

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

REQUEST_URL = reverse("accounts:breakglass-request")
REVIEW_URL = reverse("audit:breakglass-list")
REASON = "急诊收治，需核对既往用药和危险性评估"


def ask(user, patient, reason=REASON):
    return breakglass_request(
        by=user, id_type=patient.id_type, id_number=patient.id_number, reason=reason
    )


def test_grant_opens_one_patient_for_reading_for_three_hours(world, patients):
    doctor, pB1 = world.users.doctor_a, patients.pB1
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        assert pB1 not in patient_list_visible_to(user=doctor)
        grant = ask(doctor, pB1)
        assert grant.expires_at == start + timedelta(hours=3)
        assert set(patient_list_visible_to(user=doctor)) == {patients.pA1, pB1}
        assert patient_get_for_user(user=doctor, pk=pB1.pk) == pB1
        assert not can_manage_patient(doctor, pB1)  # read only
        # asking again while it lasts reuses the grant, and is audited too
        assert ask(doctor, pB1) == grant
        reuse = AuditEvent.objects.get(action="breakglass.reuse")
        assert reuse.object_id == str(pB1.pk) and reuse.detail["grant"] == str(grant.pk)
    with time_machine.travel(start + timedelta(hours=3, minutes=1), tick=False):
        assert pB1 not in patient_list_visible_to(user=doctor)
        with pytest.raises(Http404):
            patient_get_for_user(user=doctor, pk=pB1.pk)
    event = AuditEvent.objects.get(action="breakglass.grant")
    assert event.actor == doctor and event.object_id == str(pB1.pk)
    assert REASON not in str(event.detail)


def test_the_request_page_grants_and_lists_own_grants(client, world, patients):
    af.login(client, world.users.doctor_a)
    response = client.post(
        REQUEST_URL,
        {"id_type": "resident_id", "id_number": patients.pB1.id_number, "reason": REASON},
    )
    assert response.status_code == 302
    assert BreakGlassGrant.objects.filter(user=world.users.doctor_a).count() == 1
    page = client.get(REQUEST_URL)
    assert REASON in page.content.decode()


def test_patient_already_in_scope_needs_no_grant(world, patients):
    assert ask(world.users.doctor_a, patients.pA1) is None
    assert not BreakGlassGrant.objects.exists()
    assert AuditEvent.objects.filter(
        action="breakglass.in_scope", object_id=str(patients.pA1.pk)
    ).exists()


def test_another_countys_patient_is_not_found_like_an_unknown_number(client, world, patients):
    """The form is no oracle beyond the user's county: a patient registered
    in county C answers exactly like a number on no register at all."""
    af.login(client, world.users.doctor_a)

    def answer(number):
        response = client.post(
            REQUEST_URL, {"id_type": "resident_id", "id_number": number, "reason": REASON}
        )
        html = response.content.decode()
        html = re.sub(r'value="[A-Za-z0-9]{64}"', 'value="csrf"', html)
        html = re.sub(r'"X-CSRFToken": "[A-Za-z0-9]{64}"', '"X-CSRFToken": "csrf"', html)
        return response.status_code, html.replace(number, "NUMBER")

    assert answer(patients.pC1.id_number) == answer("110101199003070000")
    assert str(ERR_BREAKGLASS_NOT_FOUND) in answer(patients.pC1.id_number)[1]
    assert not BreakGlassGrant.objects.exists()
    assert patients.pC1 not in patient_list_visible_to(user=world.users.doctor_a)
    lookups = AuditEvent.objects.filter(action="breakglass.not_found")
    assert lookups.count() == 3
    assert all(e.object_id == "" and len(e.detail["id_hash"]) == 16 for e in lookups)
    assert patients.pC1.id_number not in str([e.detail for e in lookups])
    # the same number probed twice gives the same hash: probing shows in the log
    assert len({e.detail["id_hash"] for e in lookups}) == 2


def test_a_reason_is_required(world, patients):
    with pytest.raises(DomainError) as exc:
        ask(world.users.doctor_a, patients.pB1, reason="看看")
    assert exc.value.message == ERR_REASON_SHORT


def test_unknown_number_is_refused_and_audited(client, world):
    af.login(client, world.users.doctor_a)
    response = client.post(
        REQUEST_URL, {"id_type": "resident_id", "id_number": "110101199003070000", "reason": REASON}
    )
    assert str(ERR_BREAKGLASS_NOT_FOUND) in response.content.decode()
    assert AuditEvent.objects.filter(action="breakglass.not_found").exists()


@pytest.mark.parametrize("persona", ["police_a", "civil", "official", "admin"])
def test_only_health_staff_break_the_glass(client, world, patients, persona):
    user = getattr(world.users, persona)
    with pytest.raises(DomainError) as exc:
        ask(user, patients.pB1)
    assert exc.value.message == ERR_BREAKGLASS_ROLE
    af.login(client, user)
    assert client.get(REQUEST_URL).status_code == 403


def test_audit_admin_reviews_each_grant_with_its_uses(client, world, patients):
    doctor, pB1 = world.users.doctor_a, patients.pB1
    grant = ask(doctor, pB1)
    for _ in range(2):
        patient_record_view(user=doctor, patient=patient_get_for_user(user=doctor, pk=pB1.pk))
    auditor = af.staff("audit_a", Role.AUDIT_ADMIN, world.org.bureau_a)
    af.login(client, auditor)
    page = client.get(REVIEW_URL)
    assert page.status_code == 200
    (row,) = page.context["page"].object_list
    assert row.pk == grant.pk and row.uses == 2
    html = page.content.decode()
    assert REASON in html and "doctor_a" in html
    assert pB1.name not in html  # the audit admin sees the record's id, not the person
    response = client.post(
        reverse("audit:breakglass-review", args=[grant.pk]), {"note": "已电话核实"}
    )
    assert response.status_code == 302
    grant.refresh_from_db()
    assert grant.reviewed_by == auditor and grant.review_note == "已电话核实"
    assert AuditEvent.objects.filter(action="breakglass.review", actor=auditor).exists()
    pending = client.get(REVIEW_URL, {"pending": "1"})
    assert not pending.context["page"].object_list


def _doctor_c2(world):
    """A township doctor of a second township of county C."""
    from accounts.models import OrganisationKind, RegionLevel

    c2 = af.region("990103002", "镇C2", RegionLevel.TOWNSHIP, world.county_c)
    centre = af.organisation("C2卫生院", OrganisationKind.HEALTH_CENTRE, c2)
    return af.staff("doctor_c2", Role.TOWNSHIP_DOCTOR, centre)


def test_review_page_is_scoped_and_for_the_audit_admin_only(client, world, patients):
    grant = ask(_doctor_c2(world), patients.pC1)  # county C doctor, county C patient
    auditor = af.staff("audit_a", Role.AUDIT_ADMIN, world.org.bureau_a)
    af.login(client, auditor)
    assert not client.get(REVIEW_URL).context["page"].object_list
    assert client.post(reverse("audit:breakglass-review", args=[grant.pk])).status_code == 404
    for persona in ("admin", "doctor_a"):
        af.login(client, getattr(world.users, persona))
        assert client.get(REVIEW_URL).status_code == 403


@pytest.mark.parametrize("count", [1, 30])
def test_review_list_query_count_is_flat(
    client, world, patients, count, django_assert_max_num_queries
):
    from patients.tests.factories import patient

    targets = [patients.pB1] + [
        patient(by=world.users.doctor_b, village="990102002002", name=f"乙{i}")
        for i in range(count - 1)
    ]
    for p in targets:
        ask(world.users.doctor_a, p)
    auditor = af.staff("audit_a", Role.AUDIT_ADMIN, world.org.bureau_a)
    af.login(client, auditor)
    with django_assert_max_num_queries(12):
        page = client.get(REVIEW_URL)
    assert len(page.context["page"].object_list) == count


def test_grants_add_to_care_team_membership(world, patients):
    from patients.services import care_team_add
    from patients.tests.factories import patient

    doctor, police = world.users.doctor_a, world.users.police_a
    care_team_add(
        patient_id=patients.pB1.pk,
        by=world.users.doctor_b,
        role="doctor",
        name="甲医生",
        user=doctor,
    )
    care_team_add(
        patient_id=patients.pB1.pk,
        by=world.users.doctor_b,
        role="police",
        name="甲民警",
        user=police,
    )
    other = patient(by=world.users.doctor_b, village="990102002002", name="乙二")
    ask(doctor, other)
    assert set(patient_list_visible_to(user=doctor)) == {patients.pA1, patients.pB1, other}
    assert set(patient_list_visible_to(user=police)) == {patients.pA1, patients.pB1}


@pytest.mark.parametrize("count", [1, 30])
def test_own_grant_list_query_count_is_flat(
    client, world, patients, count, django_assert_max_num_queries
):
    from patients.tests.factories import patient

    targets = [patients.pB1] + [
        patient(by=world.users.doctor_b, village="990102002002", name=f"乙{i}")
        for i in range(count - 1)
    ]
    for p in targets:
        ask(world.users.doctor_a, p)
    af.login(client, world.users.doctor_a)
    with django_assert_max_num_queries(12):
        page = client.get(REQUEST_URL)
    assert len(page.context["rows"]) == min(count, 20)
