"""R9 (G22): a database outage answers 503 with a generic body, in the
user's language and never cached — wherever the error surfaces: in a view,
or in the middleware that loads the session and the user before any view."""

from __future__ import annotations

from unittest import mock

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.db import InterfaceError, OperationalError
from django.test import Client, RequestFactory
from rest_framework.authtoken.models import Token

from accounts.tests import factories as af
from core.middleware import DatabaseUnavailableMiddleware

ERROR = "connection to server at 10.0.0.1 failed"


def _boom(request):
    raise AssertionError("not called")


@pytest.mark.parametrize("path", ["/patients/", "/api/v1/patients/"])
def test_a_view_error_is_a_fast_503_with_a_generic_body(path):
    mw = DatabaseUnavailableMiddleware(_boom)
    request = RequestFactory().get(path)
    response = mw.process_exception(request, OperationalError(ERROR))
    assert response.status_code == 503
    assert response["Retry-After"] == "30"
    assert response["Cache-Control"] == "no-store"
    assert b"10.0.0.1" not in response.content


def test_other_errors_are_left_alone():
    mw = DatabaseUnavailableMiddleware(_boom)
    assert mw.process_exception(RequestFactory().get("/"), ValueError("x")) is None


def test_an_error_raised_below_it_is_a_503_too():
    def inner(request):
        raise InterfaceError("connection already closed")

    response = DatabaseUnavailableMiddleware(inner)(RequestFactory().get("/api/v1/x/"))
    assert response.status_code == 503


def _session_load_fails():
    return mock.patch.object(SessionStore, "load", side_effect=OperationalError(ERROR))


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("path", "language", "text"),
    [
        ("/patients/", "zh-hans", "服务暂时不可用"),
        ("/patients/", "en", "Service temporarily unavailable"),
        ("/api/v1/patients/", "zh-hans", "服务暂时不可用"),
        ("/api/v1/patients/", "en", "Service temporarily unavailable"),
    ],
)
def test_a_session_request_while_the_database_is_down_is_a_503(world, path, language, text):
    client = Client(raise_request_exception=False, HTTP_ACCEPT_LANGUAGE=language)
    af.login(client, world.users.doctor_a)
    with _session_load_fails():
        response = client.get(path)
    assert response.status_code == 503
    assert text in response.content.decode()
    assert "10.0.0.1" not in response.content.decode()
    assert response["Cache-Control"] == "no-store"
    assert response["Retry-After"] == "30"


@pytest.mark.django_db
def test_a_token_request_while_the_database_is_down_is_a_503(world):
    token, _ = Token.objects.get_or_create(user=world.users.doctor_a)
    client = Client(raise_request_exception=False)
    with mock.patch(
        "accounts.authentication.Token.objects.select_related",
        side_effect=OperationalError(ERROR),
    ):
        response = client.get("/api/v1/patients/", HTTP_AUTHORIZATION=f"Token {token.key}")
    assert response.status_code == 503
    assert response.json() == {"detail": "服务暂时不可用，请稍后再试。"}
    assert response["Cache-Control"] == "no-store"


def test_other_500s_stay_500s():
    def inner(request):
        from django.http import HttpResponseServerError

        return HttpResponseServerError()

    assert DatabaseUnavailableMiddleware(inner)(RequestFactory().get("/")).status_code == 500


@pytest.mark.django_db
def test_api_redirects_made_by_middleware_are_no_store(client):
    response = client.get("/api/v1/patients")  # APPEND_SLASH: CommonMiddleware answers
    assert response.status_code == 301
    assert response["Cache-Control"] == "no-store"
