"""The runtime database role cannot change or empty the audit table
(SECURITY.md G13): with the privileges core.dbroles gives it, UPDATE,
DELETE, TRUNCATE and ALTER TABLE … DISABLE TRIGGER on audit_auditevent all
fail, while INSERT (through audit_record) and SELECT work, and other tables
stay writable.

The role is created in the test's transaction when the test user may create
roles; otherwise it is ``jft_runtime_test``, made by .ci/run (NOLOGIN,
granted to the test user, who switches to it with SET ROLE). Grants made
here are rolled back with the test.
"""

from __future__ import annotations

import importlib
import os

import pytest
from django.db import DatabaseError, connection, transaction

from audit.models import AuditEvent
from audit.services import audit_record, verify_chain
from core.dbroles import runtime_grant_statements

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

CI_ROLE = "jft_runtime_test"
revoke_migration = importlib.import_module("audit.migrations.0004_runtime_role_append_only")


def _one(sql, params=None):
    with connection.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchone()


@pytest.fixture
def runtime_role():
    can_create = _one("SELECT rolcreaterole OR rolsuper FROM pg_roles WHERE rolname = current_user")
    if can_create[0]:
        name = "jft_runtime_probe"
        with connection.cursor() as cur:
            cur.execute(f'CREATE ROLE "{name}" NOLOGIN')  # rolled back with the test
            cur.execute(f'GRANT "{name}" TO current_user')
    elif _one("SELECT pg_has_role(current_user, oid, 'MEMBER') FROM pg_roles WHERE rolname = %s",
              [CI_ROLE]) == (True,):  # fmt: skip
        name = CI_ROLE
    else:
        message = f"role {CI_ROLE} missing or not granted to the test user (see .ci/run)"
        if os.environ.get("REQUIRE_POSTGRES") == "1":
            pytest.fail(message)
        pytest.skip(message)
    with connection.cursor() as cur:
        for statement in runtime_grant_statements(name):
            cur.execute(statement.as_string(cur.connection))
    return name


def _as(role, sql, params=None):
    """Run ``sql`` as ``role`` in a savepoint rolled back afterwards (which
    also undoes the SET LOCAL ROLE); return the error or None."""
    try:
        with transaction.atomic(), connection.cursor() as cur:
            cur.execute(f'SET LOCAL ROLE "{role}"')
            cur.execute(sql, params)
            transaction.set_rollback(True)
    except DatabaseError as exc:
        return exc
    assert _one("SELECT current_user")[0] != role
    return None


def _denied(error) -> bool:
    return error is not None and (
        "permission denied" in str(error) or "must be owner" in str(error)
    )


def test_the_runtime_role_inserts_and_reads_but_cannot_rewrite_the_audit_log(runtime_role):
    first = audit_record(actor=None, action="test.row", detail={"n": 1})
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute(f'SET LOCAL ROLE "{runtime_role}"')
        # INSERT through the service (advisory lock, sequence, chain) and SELECT
        second = audit_record(actor=None, action="test.row", detail={"n": 2})
        assert AuditEvent.objects.filter(pk__in=[first.pk, second.pk]).count() == 2
        assert verify_chain().ok
        cur.execute("SELECT current_user")
        assert cur.fetchone()[0] == runtime_role
        transaction.set_rollback(True)  # back to the test's own role
    table = "audit_auditevent"
    assert _denied(_as(runtime_role, f"UPDATE {table} SET action = 'x' WHERE id = %s", [first.pk]))
    assert _denied(_as(runtime_role, f"DELETE FROM {table} WHERE id = %s", [first.pk]))
    assert _denied(_as(runtime_role, f"TRUNCATE {table}"))
    assert _denied(
        _as(runtime_role, f"ALTER TABLE {table} DISABLE TRIGGER audit_auditevent_append_only")
    )
    assert _denied(_as(runtime_role, f"ALTER TABLE {table} DISABLE TRIGGER ALL"))
    assert _denied(_as(runtime_role, f"DROP TABLE {table}"))
    assert _denied(_as(runtime_role, "DROP FUNCTION audit_auditevent_append_only() CASCADE"))
    assert _one("SELECT current_user")[0] != runtime_role
    assert AuditEvent.objects.get(pk=first.pk).action == "test.row"


def test_other_tables_stay_writable_for_the_runtime_role(runtime_role, world):
    assert _as(runtime_role, "UPDATE accounts_staffprofile SET display_name = display_name") is None
    assert _as(runtime_role, "DELETE FROM django_session") is None
    assert _denied(_as(runtime_role, "TRUNCATE django_session"))


def test_the_migration_revokes_what_anyone_granted_on_the_audit_table(runtime_role):
    with connection.cursor() as cur:
        cur.execute(f'GRANT UPDATE, DELETE, TRUNCATE ON audit_auditevent TO "{runtime_role}"')
        cur.execute("GRANT UPDATE ON audit_auditevent TO PUBLIC")
    assert _as(runtime_role, "UPDATE audit_auditevent SET action = action WHERE false") is None
    with connection.schema_editor() as editor:
        revoke_migration.forward(None, editor)
    assert _denied(_as(runtime_role, "UPDATE audit_auditevent SET action = action WHERE false"))
    assert _denied(_as(runtime_role, "TRUNCATE audit_auditevent"))
    granted = _one(
        "SELECT has_table_privilege(%s, 'audit_auditevent', 'INSERT'), "
        "has_table_privilege(%s, 'audit_auditevent', 'SELECT')",
        [runtime_role, runtime_role],
    )
    assert granted == (True, True)
