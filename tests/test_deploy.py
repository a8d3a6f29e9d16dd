"""The production set of docker-compose.yml against the production settings.

Docker does not run in CI, so these tests read the compose file and replay
its requests through Django with ``config.settings.production`` as loaded
from a production-like environment: the web container's health check
(plain HTTP to 127.0.0.1, which is not an allowed host) and requests through
the TLS proxy (allowed Host, ``X-Forwarded-Proto: https``).
"""

from __future__ import annotations

import base64
import importlib
import re
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from django.conf import settings
from django.test import Client, override_settings

BASE_DIR = Path(settings.BASE_DIR)
COMPOSE = BASE_DIR / "docker-compose.yml"
PUBLIC_HOST = "jft.example.org"
PRODUCTION_ENV = {
    "DJANGO_SETTINGS_MODULE": "config.settings.production",
    "SECRET_KEY": "deploy-test-" + "k" * 60,
    "DATABASE_URL": "postgres://jft@127.0.0.1:5432/jft",
    "ALLOWED_HOSTS": PUBLIC_HOST,
    "FIELD_ENCRYPTION_KEYS": "k1:" + base64.b64encode(b"d" * 32).decode(),
    "BLIND_INDEX_KEY": "deploy-test",
    "AUDIT_CHAIN_KEY": "deploy-test-" + "a" * 40,
}
# Kept from the test settings: the test database, its broker and keys.
NOT_OVERRIDDEN = {
    "DATABASES",
    "USING_POSTGRES",
    "SECRET_KEY",
    "FIELD_ENCRYPTION_KEYS",
    "BLIND_INDEX_KEY",
    "AUDIT_CHAIN_KEY",
    "STORAGES",
    "LOGGING",
    "PASSWORD_HASHERS",
    "NOTIFICATION_BACKEND",
}


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


def web_healthcheck_url():
    test = compose()["services"]["web"]["healthcheck"]["test"]
    assert test[0] == "CMD"
    match = re.search(r"urlopen\('([^']+)'", " ".join(test[1:]))
    assert match, test
    return urlsplit(match.group(1))


def load_production_settings(monkeypatch) -> dict:
    """The settings ``config.settings.production`` builds from PRODUCTION_ENV
    (base re-read too), without disturbing the modules the tests run on."""
    for name in ("SECRET_KEY_FILE", "BLIND_INDEX_KEY_FILE", "SECURE_SSL_REDIRECT", "DEBUG"):
        monkeypatch.delenv(name, raising=False)
    for name, value in PRODUCTION_ENV.items():
        monkeypatch.setenv(name, value)
    package = importlib.import_module("config.settings")
    names = ("config.settings.base", "config.settings.production")
    saved = {name: sys.modules.pop(name, None) for name in names}
    try:
        module = importlib.import_module("config.settings.production")
    finally:
        for name, mod in saved.items():
            attr = name.rsplit(".", 1)[1]
            if mod is None:
                sys.modules.pop(name, None)
                if hasattr(package, attr):
                    delattr(package, attr)
            else:
                sys.modules[name] = mod
                setattr(package, attr, mod)
    return {k: getattr(module, k) for k in dir(module) if k.isupper()}


@pytest.fixture
def production(monkeypatch):
    values = load_production_settings(monkeypatch)
    assert values["ALLOWED_HOSTS"] == [PUBLIC_HOST] and values["SECURE_SSL_REDIRECT"]
    overrides = {
        k: v for k, v in values.items() if k not in NOT_OVERRIDDEN and not k.startswith("CELERY_")
    }
    with override_settings(**overrides):
        yield values


@pytest.mark.django_db
def test_the_web_healthcheck_request_answers_200_under_production_settings(production):
    url = web_healthcheck_url()
    assert url.scheme == "http" and url.hostname == "127.0.0.1"
    # what urllib sends: Host with the port, plain HTTP, from loopback
    response = Client().get(url.path, HTTP_HOST=url.netloc, REMOTE_ADDR="127.0.0.1")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "ok"
    assert Client().get(url.path, HTTP_HOST=url.netloc, REMOTE_ADDR="::1").status_code == 200


@pytest.mark.django_db
def test_healthz_from_elsewhere_still_needs_an_allowed_host(production):
    url = web_healthcheck_url()
    client = Client(raise_request_exception=False)
    response = client.get(url.path, HTTP_HOST=url.netloc, REMOTE_ADDR="172.18.0.7")
    assert response.status_code == 400
    # through the proxy: allowed host, HTTPS
    response = client.get(
        "/healthz",
        HTTP_HOST=PUBLIC_HOST,
        HTTP_X_FORWARDED_PROTO="https",
        REMOTE_ADDR="172.18.0.7",
    )
    assert response.status_code == 200


@pytest.mark.django_db
def test_other_pages_still_redirect_plain_http_to_https(production):
    response = Client().get("/accounts/login/", HTTP_HOST=PUBLIC_HOST, REMOTE_ADDR="172.18.0.7")
    assert response.status_code == 301
    assert response["Location"] == f"https://{PUBLIC_HOST}/accounts/login/"
    # loopback does not open the other pages to any Host
    client = Client(raise_request_exception=False)
    response = client.get(
        "/accounts/login/",
        HTTP_HOST="127.0.0.1:8000",
        HTTP_X_FORWARDED_PROTO="https",
        REMOTE_ADDR="127.0.0.1",
    )
    assert response.status_code == 400


@pytest.mark.django_db
def test_the_login_page_answers_through_the_tls_proxy(production):
    response = Client().get(
        "/accounts/login/",
        HTTP_HOST=PUBLIC_HOST,
        HTTP_X_FORWARDED_PROTO="https",
        REMOTE_ADDR="172.18.0.7",
    )
    assert response.status_code == 200
    assert response["Strict-Transport-Security"].startswith("max-age=31536000")


def test_only_the_tls_proxy_publishes_ports():
    services = compose()["services"]
    published = {name for name, svc in services.items() if svc.get("ports")}
    assert published == {"proxy"}
    assert services["web"]["expose"] == ["8000"]
    proxy = services["proxy"]
    assert proxy["depends_on"]["web"]["condition"] == "service_healthy"
    config_mount = next(v for v in proxy["volumes"] if "/etc/nginx/conf.d/" in v)
    source = BASE_DIR / config_mount.split(":", 1)[0]
    assert source.is_file()
    assert any(v.split(":")[-2] == "/etc/nginx/certs" for v in proxy["volumes"])


def test_the_proxy_sets_the_header_django_trusts_for_https(monkeypatch):
    values = load_production_settings(monkeypatch)
    header, value = values["SECURE_PROXY_SSL_HEADER"]
    assert (header, value) == ("HTTP_X_FORWARDED_PROTO", "https")
    conf = (BASE_DIR / "deploy" / "nginx" / "jft.conf").read_text(encoding="utf-8")
    assert "proxy_set_header X-Forwarded-Proto https;" in conf
    assert "proxy_pass http://jft_web;" in conf and "server web:8000;" in conf
    assert "ssl_certificate     /etc/nginx/certs/fullchain.pem;" in conf
