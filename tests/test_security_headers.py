"""Deployment configuration and response headers (SECURITY.md G7)."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.urls import reverse

from accounts.tests import factories as af

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

ROOT = Path(__file__).resolve().parent.parent


def production_env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.production",
        SECRET_KEY="header-test-" + base64.b64encode(os.urandom(48)).decode(),
        DATABASE_URL="postgres://lint@127.0.0.1:5432/lint",
        ALLOWED_HOSTS="jft.example.org",
        FIELD_ENCRYPTION_KEYS="k1:" + base64.b64encode(os.urandom(32)).decode(),
        BLIND_INDEX_KEY="header-test",
        AUDIT_CHAIN_KEY="header-test-" + base64.b64encode(os.urandom(32)).decode(),
    )
    return env


def test_check_deploy_is_clean_with_production_settings():
    result = subprocess.run(  # noqa: S603 - our own manage.py
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=production_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_production_refuses_to_start_without_an_audit_chain_key():
    env = production_env()
    del env["AUDIT_CHAIN_KEY"]
    result = subprocess.run(  # noqa: S603 - our own manage.py
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "AUDIT_CHAIN_KEY" in result.stderr


def test_production_transport_settings():
    code = (
        "import json, django; django.setup(); from django.conf import settings as s; "
        "print(json.dumps([s.SECURE_HSTS_SECONDS, s.SECURE_HSTS_INCLUDE_SUBDOMAINS, "
        "s.SECURE_SSL_REDIRECT, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, "
        "s.MFA_REQUIRED, s.DEBUG]))"
    )
    result = subprocess.run(  # noqa: S603
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=production_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    hsts, subdomains, ssl, session_secure, csrf_secure, mfa, debug = json.loads(
        result.stdout.strip().splitlines()[-1]
    )
    assert hsts >= 31_536_000 and subdomains
    assert ssl and session_secure and csrf_secure and mfa and not debug


def test_pages_carry_a_strict_csp_and_the_other_headers(client):
    response = client.get(reverse("accounts:login"))
    csp = response["Content-Security-Policy"]
    for directive in (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ):
        assert directive in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"


def test_signed_in_pages_are_not_cached(client, world):
    af.login(client, world.users.doctor_a)
    response = client.get(reverse("accounts:password-change"))
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]


@pytest.mark.parametrize("path", ["/api/schema/", "/api/v1/no-such-endpoint/"])
def test_every_api_answer_is_no_store(client, world, path):
    anonymous = client.get(path)
    assert anonymous["Cache-Control"] == "no-store"
    af.login(client, world.users.doctor_a)
    signed_in = client.get(path)
    assert signed_in["Cache-Control"] == "no-store"
    assert "Content-Security-Policy" in signed_in
