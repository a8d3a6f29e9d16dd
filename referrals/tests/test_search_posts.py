"""The patient searches of the referral and rehab enrolment pages POST their
term: it never appears in a URL or a link (SECURITY.md → no personal data in
URLs), the search still finds, and it is an audited read."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

from accounts.tests.factories import login
from audit.models import AuditEvent
from referrals.tests import factories as rf

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

URL_ATTRS = re.compile(r'(?:href|hx-get|hx-post|hx-push-url|hx-replace-url|action)="([^"]*)"')


def assert_search_form_posts(body: str) -> None:
    form = re.search(r'<form[^>]*role="search"[^>]*>', body, re.S).group(0)
    assert 'method="post"' in form and "hx-get=" not in form and "hx-push-url" not in form


def assert_term_in_no_url(response, term: str) -> None:
    assert response.status_code == 200
    assert "HX-Push-Url" not in response
    urls = " ".join(URL_ATTRS.findall(response.content.decode()))
    assert term not in urls and "q=" not in urls


def test_referral_patient_search_posts_its_term(world, patients):
    doctor = login(Client(), world.users.doctor_a)
    url = reverse("referrals:create")
    assert_search_form_posts(doctor.get(url, {"kind": "upward"}).content.decode())
    number = patients.pA1.id_number
    for term in (patients.pA1.name, number):
        response = doctor.post(url, {"kind": "upward", "q": term})
        assert response.context["results"] == [patients.pA1]
        body = response.content.decode()
        assert f"?kind=upward&amp;patient={patients.pA1.pk}" in body  # the pick link
        assert f'value="{term}"' in body  # the term stays in the box
        assert_term_in_no_url(response, term)
    assert (
        AuditEvent.objects.filter(
            action="patient.search", actor=world.users.doctor_a, detail__results=1
        ).count()
        == 2
    )
    assert AuditEvent.objects.filter(
        action="patient.list", actor=world.users.doctor_a, object_id=str(patients.pA1.pk)
    ).exists()
    # a link carrying a term is not searched: the term only travels in a POST
    assert doctor.get(url, {"kind": "upward", "q": number}).context["results"] == []


def test_referral_search_finds_only_patients_in_scope(world, patients):
    doctor = login(Client(), world.users.doctor_a)
    response = doctor.post(reverse("referrals:create"), {"kind": "upward", "q": patients.pB1.name})
    assert response.context["results"] == []
    assert "没有找到您辖区内的该患者。" in response.content.decode()


def test_rehab_enrolment_search_posts_its_term(world, patients):
    institution = rf.rehab_institution(by=world.users.civil, region=world.a1)
    civil = login(Client(), world.users.civil)
    url = reverse("referrals:rehab-enrol", args=[institution.pk])
    assert_search_form_posts(civil.get(url).content.decode())
    name = patients.pA1.name
    response = civil.post(url, {"q": name})
    assert response.context["results"] == [patients.pA1]
    assert f"?patient={patients.pA1.pk}" in response.content.decode()
    assert_term_in_no_url(response, name)
    assert AuditEvent.objects.filter(
        action="patient.list", actor=world.users.civil, object_id=str(patients.pA1.pk)
    ).exists()
