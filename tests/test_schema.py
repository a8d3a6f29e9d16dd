"""The OpenAPI schema (/api/schema/) and its viewer (/api/docs/): valid with
no generator warnings, every operation documents its error answers, served
only to signed-in users, and the viewer runs from our own static files under
the strict CSP."""

from __future__ import annotations

import io
import re

import pytest
import yaml
from django.core.management import call_command
from drf_spectacular.generators import SchemaGenerator
from playwright.sync_api import expect
from rest_framework.test import APIClient

from accounts.tests.factories import PASSWORD

STANDARD_ERRORS = {"400", "401", "403", "404"}
METHODS = {"get", "put", "post", "patch", "delete"}


@pytest.fixture(scope="module")
def schema():
    return SchemaGenerator().get_schema(request=None, public=True)


def _operations(schema):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield path, method, operation


def test_schema_validates_with_no_warnings(tmp_path):
    target = tmp_path / "schema.yaml"

    # raises on any generator warning or an invalid OpenAPI document
    call_command(
        "spectacular", "--validate", "--fail-on-warn", "--file", str(target), stdout=io.StringIO()
    )

    document = yaml.safe_load(target.read_text(encoding="utf-8"))
    assert document["openapi"].startswith("3.")
    assert "/api/v1/patients/{id}/" in document["paths"]


def test_every_operation_documents_the_error_answers(schema):
    missing = {
        f"{method.upper()} {path}": sorted(STANDARD_ERRORS - set(operation["responses"]))
        for path, method, operation in _operations(schema)
        if not set(operation["responses"]) >= STANDARD_ERRORS
    }

    assert list(_operations(schema)), "no operations in the schema"
    assert missing == {}


def test_patient_patch_documents_if_match_and_its_failures(schema):
    patch = schema["paths"]["/api/v1/patients/{id}/"]["patch"]

    assert {"200", "412", "428"} <= set(patch["responses"])
    headers = {p["name"]: p for p in patch["parameters"] if p["in"] == "header"}
    assert headers["If-Match"]["required"] is True
    assert "ETag" in patch["responses"]["200"]["headers"]


def test_the_api_md_operations_are_in_the_schema(schema):
    operations = {(path, method) for path, method, _ in _operations(schema)}

    assert {
        ("/api/v1/auth/token/", "post"),
        ("/api/v1/patients/", "get"),
        ("/api/v1/patients/", "post"),
        ("/api/v1/patients/{id}/", "get"),
        ("/api/v1/patients/{id}/", "patch"),
        ("/api/v1/regions/", "get"),
        ("/api/v1/organisations/", "get"),
    } <= operations


def test_patient_output_is_documented_per_department(schema):
    components = schema["components"]["schemas"]
    police = components["PatientPolice"]["properties"]
    health = components["PatientHealth"]["properties"]

    assert "diagnosis" not in police
    assert "diagnosis" in health
    assert {"oneOf"} <= set(components["PatientByDepartment"])
    # keys outside a department's set are absent: each shape is closed, and
    # every key of it is always there
    for name in ("PatientHealth", "PatientPolice", "PatientCivilAffairs"):
        assert components[name]["additionalProperties"] is False
        assert set(components[name]["required"]) == set(components[name]["properties"])
    # "" is how a blank choice ("not recorded") comes out
    assert "" in health["classification"]["enum"]


def test_token_endpoint_is_public_in_the_schema(schema):
    token = schema["paths"]["/api/v1/auth/token/"]["post"]

    assert "security" not in token and "security" not in schema  # no credentials needed
    assert "429" in token["responses"]


@pytest.mark.django_db
def test_schema_is_only_for_signed_in_users(world):
    anonymous = APIClient().get("/api/schema/")
    client = APIClient()
    client.force_authenticate(user=world.users.police_a)
    signed_in = client.get("/api/schema/", {"format": "json"})

    assert anonymous.status_code == 401
    assert signed_in.status_code == 200
    assert "/api/v1/patients/" in signed_in.json()["paths"]
    assert anonymous["Cache-Control"] == signed_in["Cache-Control"] == "no-store"


@pytest.mark.django_db
def test_docs_page_loads_its_scripts_and_styles_from_our_static_files(world, client):
    client.force_login(world.users.doctor_a)

    page = client.get("/api/docs/")

    assert page.status_code == 200
    html = page.content.decode()
    sources = re.findall(r'<script[^>]*\bsrc="([^"]+)"', html)
    styles = re.findall(r'<link[^>]*rel="stylesheet"[^>]*href="([^"]+)"', html)
    assert sources and styles
    assert all(s.startswith(("/static/", "/api/docs/")) for s in sources + styles), sources
    assert "<script>" not in html  # no inline script under script-src 'self'
    script_url = next(s for s in sources if s.startswith("/api/docs/"))
    script = client.get(script_url.replace("&amp;", "&"))
    assert script.status_code == 200
    assert script["Content-Type"].startswith("application/javascript")
    directives = dict(d.strip().split(" ", 1) for d in page["Content-Security-Policy"].split(";"))
    assert directives["script-src"] == "'self'"
    # only the template's own inline style block is allowed, by its hash
    assert directives["style-src"].startswith("'self' 'sha256-")
    assert "unsafe-inline" not in page["Content-Security-Policy"]


@pytest.mark.browser
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_docs_page_renders_in_the_browser_under_the_csp(page, live_server, world):
    console: list[str] = []
    page.on("console", lambda msg: console.append(f"{msg.type}: {msg.text}"))
    remote: list[str] = []
    page.on(
        "request",
        lambda req: remote.append(req.url) if not req.url.startswith(live_server.url) else None,
    )

    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", world.users.doctor_a.username)
    page.fill("#id_password", PASSWORD)
    page.click("#submit")
    page.wait_for_url("**/patients/")
    page.goto(f"{live_server.url}/api/docs/")

    expect(page.locator(".swagger-ui .info .title")).to_contain_text("精防通 API")
    expect(page.locator("#operations-patients-patients_list")).to_be_visible()
    assert [m for m in console if "Content Security Policy" in m] == []
    assert [url for url in remote if not url.startswith("data:")] == []
