"""Tests: only speed-ups. The database comes from DATABASE_URL like everywhere."""

import os

from .base import *  # noqa: F403
from .base import STORAGES

CELERY_TASK_ALWAYS_EAGER = True
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_BROKER_URL = "memory://"
CELERY_BROKER_TRANSPORT_OPTIONS = {}
# A real worker started by a test (tests/test_celery_worker.py) runs these
# settings against the test database with CELERY_TEST_WORKER=1: a real
# broker (CELERY_BROKER_URL) and a short visibility timeout, so redelivery
# after a killed worker happens within the test.
if os.environ.get("CELERY_TEST_WORKER") == "1":
    CELERY_TASK_ALWAYS_EAGER = False
    CELERY_BROKER_URL = os.environ["CELERY_BROKER_URL"]
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": int(os.environ.get("CELERY_VISIBILITY_TIMEOUT", "3600")),
        # look for abandoned messages every second (kombu's Redis transport)
        "unacked_restore_interval": 1,
        "unacked_restore_throttle": 1,
    }
STORAGES = {
    **STORAGES,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
FIELD_ENCRYPTION_KEYS = ["t1:dGVzdC1rZXktdGVzdC1rZXktdGVzdC1rZXktMzJieXQ="]
BLIND_INDEX_KEY = "test-blind-index-key"
AUDIT_CHAIN_KEY = "test-audit-chain-key-test-audit-chain-key"
NOTIFICATION_BACKEND = "core.notify.MemoryBackend"
if os.environ.get("CELERY_TEST_WORKER") == "1":
    # fault tests (tests/reliability) record sends where the test can count them
    NOTIFICATION_BACKEND = os.environ.get("TEST_NOTIFICATION_BACKEND", NOTIFICATION_BACKEND)

# Which database the suite runs on (README → Tests): DATABASE_URL when set;
# otherwise a PostgreSQL answering on loopback; otherwise SQLite, with the
# PostgreSQL-only tests skipped loudly (tests/conftest.py). CI sets
# REQUIRE_POSTGRES=1 so a missing server fails instead of skipping.
from config.env import env  # noqa: E402


def _probe_loopback_postgres(url: str) -> bool:
    try:
        import psycopg

        with psycopg.connect(
            url.replace("postgres://", "postgresql://", 1), connect_timeout=2
        ) as conn:
            conn.execute("SELECT 1")
        return True
    except Exception:  # noqa: BLE001 - any failure means "not available"
        return False


if "DATABASE_URL" not in os.environ:
    _probe = os.environ.get("TEST_PG_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    if _probe_loopback_postgres(_probe):
        DATABASES = {"default": env.db_url_config(_probe)}
        DATABASES["default"]["CONN_MAX_AGE"] = 0
        DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    else:
        DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
USING_POSTGRES = DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"  # noqa: F811
# Live progress stays in the test process (eager tasks): no cross-test keys
# in a shared Redis or var/ when the suite runs on several processes.
CACHES = {
    **CACHES,  # noqa: F405
    "progress": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": "progress",
    },
}
