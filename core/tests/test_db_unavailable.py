import pytest
from django.db import OperationalError
from django.test import RequestFactory

from core.middleware import DatabaseUnavailableMiddleware


def _boom(request):
    raise AssertionError("not called")


@pytest.mark.parametrize("path", ["/patients/", "/api/v1/patients/"])
def test_database_outage_is_a_fast_503_with_a_generic_body(path):
    mw = DatabaseUnavailableMiddleware(_boom)
    request = RequestFactory().get(path)
    response = mw.process_exception(request, OperationalError("connection refused 10.0.0.1"))
    assert response.status_code == 503
    assert response["Retry-After"] == "30"
    assert b"10.0.0.1" not in response.content


def test_other_errors_are_left_alone():
    mw = DatabaseUnavailableMiddleware(_boom)
    assert mw.process_exception(RequestFactory().get("/"), ValueError("x")) is None
