"""The searches of the subsidies pages by a patient's name or ID number POST
their term: it never appears in a URL, a link or an htmx attribute
(SECURITY.md → no personal data in URLs), and the searches still find."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from patients.tests import factories as pf
from subsidies import services
from subsidies.tests import factories as sf

pytestmark = pytest.mark.django_db

URL_ATTRS = re.compile(r'(?:href|hx-get|hx-post|hx-push-url|hx-replace-url|action)="([^"]*)"')


def search_form(body: str, form_id: str | None = None) -> str:
    pattern = rf'<form[^>]*id="{form_id}"[^>]*>' if form_id else r'<form[^>]*role="search"[^>]*>'
    return re.search(pattern, body, re.S).group(0)


def assert_posts_without_url(body: str, form_id: str | None = None) -> None:
    form = search_form(body, form_id)
    assert 'method="post"' in form
    assert "hx-get=" not in form and "hx-push-url" not in form and "hx-replace-url" not in form


def assert_term_in_no_url(response, term: str) -> None:
    assert response.status_code == 200
    assert "HX-Push-Url" not in response and "HX-Replace-Url" not in response
    urls = " ".join(URL_ATTRS.findall(response.content.decode()))
    assert term not in urls and "q=" not in urls


def test_candidate_search_posts_and_keeps_the_term_out_of_urls(client, world, eligible):
    u = world.users
    sf.login(client, u.doctor_a)
    url = reverse("subsidies:award-candidates")
    assert_posts_without_url(client.get(url).content.decode(), "candidate-filter")
    name = eligible.name
    for headers in ({}, {"HX-Request": "true"}):
        response = client.post(url, {"q": name}, headers=headers)
        assert [r["patient"] for r in response.context["rows"]] == [eligible]
        assert_term_in_no_url(response, name)
    # the full page keeps the term in the box
    assert f'value="{name}"' in client.post(url, {"q": name}).content.decode()
    number = eligible.id_number
    response = client.post(url, {"q": number})
    assert [r["patient"] for r in response.context["rows"]] == [eligible]
    assert_term_in_no_url(response, number)
    search = AuditEvent.objects.filter(action="patient.search", actor=u.doctor_a).last()
    assert search.detail["results"] == 1 and number not in str(search.detail)
    assert AuditEvent.objects.filter(
        action="candidates.list", actor=u.doctor_a, object_id=str(eligible.pk)
    ).exists()


def test_candidate_pages_submit_the_search_again(client, world, policies):
    u = world.users
    for i in range(21):
        pf.patient(by=u.doctor_a, village="990102001001", name=f"翻页{i:02d}")
    sf.login(client, u.doctor_a)
    url = reverse("subsidies:award-candidates")
    response = client.post(url, {"q": "翻页"})
    assert len(response.context["rows"]) == 20
    body = response.content.decode()
    assert re.search(r'<button type="submit" form="candidate-filter" name="page" value="2"', body)
    assert "page=2" not in body
    assert_term_in_no_url(response, "翻页")
    second = client.post(url, {"q": "翻页", "page": "2"})
    assert [r["patient"].name for r in second.context["rows"]] == ["翻页20"]


def test_an_old_link_with_a_term_searches_nothing(client, world, eligible):
    """A bookmarked ``?q=`` is not honoured: the term only travels in a POST."""
    other = pf.patient(by=world.users.doctor_a, village="990102001002", name="甲二")
    sf.login(client, world.users.doctor_a)
    response = client.get(reverse("subsidies:award-candidates"), {"q": eligible.name})
    assert {r["patient"] for r in response.context["rows"]} == {eligible, other}


def test_award_list_search_posts_and_keeps_the_term_out_of_urls(client, world, eligible):
    u = world.users
    other = pf.patient(by=u.doctor_a, village="990102001002", name="甲二")
    sf.make_eligible(other, doctor=u.doctor_a, police=u.police_a)
    award = services.award_apply(patient_id=eligible.pk, by=u.doctor_a, source="health_centre")
    services.award_apply(patient_id=other.pk, by=u.doctor_a, source="health_centre")
    sf.login(client, u.governance)
    url = reverse("subsidies:award-list")
    assert_posts_without_url(client.get(url).content.decode(), "award-filter")
    for headers in ({}, {"HX-Request": "true"}):
        response = client.post(url, {"q": eligible.name, "status": ""}, headers=headers)
        assert list(response.context["page"].object_list) == [award]
        assert award.number in response.content.decode()
        assert_term_in_no_url(response, eligible.name)
    assert AuditEvent.objects.filter(
        action="patient.search", actor=u.governance, detail__results=1
    ).exists()
    assert set(
        AuditEvent.objects.filter(action="reward.list", actor=u.governance).values_list(
            "object_id", flat=True
        )
    ) == {str(eligible.pk), str(other.pk)}
    # a filter that is not personal data still works as a link
    response = client.get(url, {"status": award.status})
    assert award in response.context["page"].object_list


def test_admission_search_posts_and_keeps_the_term_out_of_urls(client, world, patients, policies):
    u = world.users
    sf.login(client, u.hospital)
    url = reverse("subsidies:episode-new")
    assert_posts_without_url(client.get(url).content.decode())
    number = patients.pA1.id_number
    response = client.post(url, {"q": number})
    assert response.context["results"] == [patients.pA1]
    body = response.content.decode()
    assert reverse("subsidies:episode-admit", args=[patients.pA1.pk]) in body
    assert f'value="{number}"' in body
    assert_term_in_no_url(response, number)
    assert AuditEvent.objects.filter(
        action="patient.list", actor=u.hospital, object_id=str(patients.pA1.pk)
    ).exists()
    assert client.get(url, {"q": number}).context["results"] == []
