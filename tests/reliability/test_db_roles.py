"""G13 on a real server: the deployment's database roles, end to end.

A throwaway cluster (initdb on a free port, never the shared server) gets
the roles two ways:

- as docker-compose does on a fresh volume: ``deploy/postgres/init/
  10-roles.sql`` run by psql as the bootstrap superuser, then ``migrate``
  as ``jft_owner``;
- as on an existing server: the schema migrated by the superuser, then
  ``manage.py setup_db_roles``.

Each time the application, connected as ``jft_app``, appends audit rows and
the chain verifies, while UPDATE, DELETE, TRUNCATE, ALTER TABLE … DISABLE
TRIGGER and DROP on the audit table are all refused to it; other tables
stay writable; migrations keep working as the owner.
"""

from __future__ import annotations

import os
import subprocess
import sys

import psycopg
import pytest

from tests.reliability.conftest import ROOT, PgCluster

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

OWNER_PASSWORD = "owner-test-password"  # noqa: S105 - throwaway cluster, trust auth
APP_PASSWORD = "app-test-password"  # noqa: S105


def _url(cluster: PgCluster, user: str, password: str, db: str = "jft") -> str:
    return f"postgresql://{user}:{password}@127.0.0.1:{cluster.port}/{db}"


def _manage(database_url: str, *args: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": database_url,
        "PYTHONWARNINGS": "ignore",
        "JFT_OWNER_PASSWORD": OWNER_PASSWORD,
        "JFT_APP_PASSWORD": APP_PASSWORD,
    }
    result = subprocess.run(  # noqa: S603 - our own manage.py
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return result


def _refused(url: str, sql: str) -> str:
    with psycopg.connect(url, autocommit=True) as conn:
        try:
            conn.execute(sql)
        except psycopg.errors.InsufficientPrivilege as exc:
            return str(exc)
    raise AssertionError(f"not refused: {sql}")


def _check_runtime_role(cluster: PgCluster) -> None:
    app_url = _url(cluster, "jft_app", APP_PASSWORD)
    code = (
        "from audit.services import audit_record; from django.contrib.sessions.backends.db "
        "import SessionStore\n"
        "for i in range(3): audit_record(actor=None, action='test.row', detail={'n': i})\n"
        "s = SessionStore(); s['x'] = 1; s.save(); s.delete()"
    )
    _manage(app_url, "shell", "-c", code)
    assert "Audit chain intact" in _manage(app_url, "verify_audit_chain").stdout
    with psycopg.connect(app_url) as conn:
        who, owner = conn.execute(
            "SELECT current_user, tableowner FROM pg_tables WHERE tablename = 'audit_auditevent'"
        ).fetchone()
        assert (who, owner) == ("jft_app", "jft_owner")
        assert conn.execute("SELECT count(*) FROM audit_auditevent").fetchone()[0] >= 3
    table = "audit_auditevent"
    _refused(app_url, f"UPDATE {table} SET action = 'x'")
    _refused(app_url, f"DELETE FROM {table}")
    _refused(app_url, f"TRUNCATE {table}")
    assert "must be owner" in _refused(
        app_url, f"ALTER TABLE {table} DISABLE TRIGGER audit_auditevent_append_only"
    )
    _refused(app_url, f"DROP TABLE {table}")
    _refused(app_url, "CREATE TABLE evil (id int)")
    # the owner still migrates (a no-op run here) and is refused row changes
    # by the append-only trigger like everyone else
    owner_url = _url(cluster, "jft_owner", OWNER_PASSWORD)
    _manage(owner_url, "migrate", "--no-input")
    with (
        psycopg.connect(owner_url, autocommit=True) as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"),
    ):
        conn.execute(f"DELETE FROM {table}")


def test_the_compose_init_script_and_setup_db_roles_keep_the_audit_table_append_only():
    cluster = PgCluster()
    try:
        cluster.start()
        admin = cluster.url("postgres").replace("postgres://", "postgresql://", 1)
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute("CREATE DATABASE jft")
            conn.execute("CREATE DATABASE jft_existing")

        # 1. a fresh docker-compose volume: the init script, then migrate as the owner
        init = subprocess.run(  # noqa: S603
            ["psql", "-X", "-v", "ON_ERROR_STOP=1", "-f",
             str(ROOT / "deploy/postgres/init/10-roles.sql"), cluster.url("jft")],
            env={**os.environ, "JFT_OWNER_PASSWORD": OWNER_PASSWORD,
                 "JFT_APP_PASSWORD": APP_PASSWORD},
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert init.returncode == 0, init.stderr
        _manage(_url(cluster, "jft_owner", OWNER_PASSWORD), "migrate", "--no-input")
        _check_runtime_role(cluster)

        # 2. an existing server: tables made by the superuser, then the command
        existing = cluster.url("jft_existing")
        _manage(existing, "migrate", "--no-input")
        out = _manage(existing, "setup_db_roles", "--admin-url", existing).stdout
        assert "Roles ready in jft_existing" in out
        assert "owner-test-password" not in _manage(existing, "setup_db_roles", "--dry-run").stdout
        _check_runtime_role_on(cluster, "jft_existing")
    finally:
        cluster.destroy()


def _check_runtime_role_on(cluster: PgCluster, db: str) -> None:
    app_url = _url(cluster, "jft_app", APP_PASSWORD, db)
    _manage(app_url, "shell", "-c", "from audit.services import audit_record; "
            "audit_record(actor=None, action='test.row')")  # fmt: skip
    with psycopg.connect(app_url) as conn:
        owners = {
            r[0] for r in conn.execute("SELECT DISTINCT tableowner FROM pg_tables "
                                       "WHERE schemaname = 'public'")
        }  # fmt: skip
        assert owners == {"jft_owner"}
    _refused(app_url, "UPDATE audit_auditevent SET action = 'x'")
    _refused(app_url, "TRUNCATE audit_auditevent")
    assert "must be owner" in _refused(app_url, "ALTER TABLE audit_auditevent DISABLE TRIGGER ALL")
    with psycopg.connect(app_url, autocommit=True) as conn:
        conn.execute("DELETE FROM django_session")  # other tables stay writable
