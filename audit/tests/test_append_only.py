"""The audit table is append-only in PostgreSQL and its chain verifies (G13)."""

from __future__ import annotations

import importlib

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction

from audit.models import AuditEvent
from audit.services import audit_record, verify_chain

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

trigger_migration = importlib.import_module("audit.migrations.0002_append_only_trigger")


def rows(n=3):
    return [audit_record(actor=None, action="test.row", detail={"n": i}) for i in range(n)]


def refused(sql_or_callable) -> bool:
    try:
        with transaction.atomic():
            if callable(sql_or_callable):
                sql_or_callable()
            else:
                with connection.cursor() as cur:
                    cur.execute(sql_or_callable)
    except DatabaseError as exc:
        return "append-only" in str(exc)
    return False


def test_update_and_delete_are_refused_by_the_database():
    first, *_ = rows()
    assert refused("UPDATE audit_auditevent SET action = 'x'")
    assert refused("DELETE FROM audit_auditevent")
    assert refused(lambda: AuditEvent.objects.filter(pk=first.pk).update(action="x"))
    assert refused(lambda: AuditEvent.objects.filter(pk=first.pk).delete())
    first.action = "changed"
    assert refused(lambda: first.save())
    assert AuditEvent.objects.filter(action="test.row").count() == 3


def test_truncate_stays_possible_for_test_flushes():
    rows()
    with transaction.atomic():
        with connection.cursor() as cur:
            cur.execute("TRUNCATE audit_auditevent")
        assert not AuditEvent.objects.exists()
        transaction.set_rollback(True)


def test_the_migration_installs_and_removes_the_trigger():
    def installed() -> bool:
        with connection.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_trigger WHERE tgname = 'audit_auditevent_append_only'")
            return cur.fetchone() is not None

    assert installed()
    with connection.schema_editor() as editor:
        trigger_migration.backward(None, editor)
    assert not installed()
    with connection.schema_editor() as editor:
        trigger_migration.forward(None, editor)
    assert installed()


def test_verify_audit_chain_passes_on_an_intact_chain(capsys, settings, tmp_path):
    settings.AUDIT_CHECKPOINT_DIR = str(tmp_path)
    rows(5)
    call_command("verify_audit_chain")
    assert "intact" in capsys.readouterr().out
    report = verify_chain()
    assert (report.checked, report.broken) == (AuditEvent.objects.count(), None)


def test_verify_audit_chain_fails_on_a_changed_row(settings, tmp_path):
    settings.AUDIT_CHECKPOINT_DIR = str(tmp_path)
    _, middle, _ = rows()
    with connection.cursor() as cur:
        # only the table owner can do this, and only by switching the guard off
        cur.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER audit_auditevent_append_only")
        cur.execute("UPDATE audit_auditevent SET detail = '{\"n\": 99}' WHERE id = %s", [middle.pk])
        cur.execute("ALTER TABLE audit_auditevent ENABLE TRIGGER audit_auditevent_append_only")
    with pytest.raises(CommandError) as exc:
        call_command("verify_audit_chain")
    assert exc.value.returncode == 1
    assert str(middle.pk) in str(exc.value)
