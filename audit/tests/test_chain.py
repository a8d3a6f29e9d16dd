"""The audit chain is keyed, versioned per row and checkpointed outside the
database (SECURITY.md G13): a changed row, an unkeyed rewrite and the
removal of the newest rows are all found by ``verify_audit_chain``."""

from __future__ import annotations

import hashlib
import json
import logging

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from audit import checkpoints
from audit.models import AuditEvent
from audit.services import CHAIN_VERSION, audit_record, chain_hash, chain_key, verify_chain
from audit.tasks import audit_checkpoint

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


@pytest.fixture(autouse=True)
def checkpoint_dir(settings, tmp_path):
    settings.AUDIT_CHECKPOINT_DIR = str(tmp_path / "checkpoints")
    return tmp_path / "checkpoints"


def rows(n=3, actor=None):
    return [audit_record(actor=actor, action="test.row", detail={"n": i}) for i in range(n)]


def _unguarded(*statements):
    """What only the table's owner can do: switch the append-only guard off."""
    with connection.cursor() as cur:
        cur.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER audit_auditevent_append_only")
        for sql, params in statements:
            cur.execute(sql, params)
        cur.execute("ALTER TABLE audit_auditevent ENABLE TRIGGER audit_auditevent_append_only")


def verify(**kwargs):
    call_command("verify_audit_chain", **kwargs)


def test_new_rows_are_keyed_and_cover_the_account_name(world, settings):
    ev = rows(1, actor=world.users.doctor_a)[0]
    assert ev.hash_version == CHAIN_VERSION == 2
    assert ev.actor_username == "doctor_a"
    ev.refresh_from_db()
    assert ev.hash == chain_hash(ev.prev_hash, ev)
    # not the plain SHA-256 an attacker without the key could recompute
    unkeyed = hashlib.sha256((ev.prev_hash + "x").encode()).hexdigest()
    assert ev.hash != unkeyed
    renamed = AuditEvent.objects.get(pk=ev.pk)
    renamed.actor_username = "someone_else"
    assert chain_hash(ev.prev_hash, renamed) != ev.hash
    settings.AUDIT_CHAIN_KEY = "another-key-another-key-another-key!"
    assert chain_hash(ev.prev_hash, ev) != ev.hash


def test_the_key_is_derived_from_the_secret_key_when_unset(settings):
    settings.AUDIT_CHAIN_KEY = None
    derived = chain_key()
    settings.SECRET_KEY = "another-secret-key-" + "y" * 40
    assert chain_key() != derived and len(derived) == 32


def test_a_changed_account_name_breaks_the_chain(world):
    _, middle, _ = rows(actor=world.users.doctor_a)
    _unguarded(
        ("UPDATE audit_auditevent SET actor_username = 'x' WHERE id = %s", [middle.pk]),
    )
    report = verify_chain()
    assert report.broken == middle.pk
    with pytest.raises(CommandError) as exc:
        verify()
    assert exc.value.returncode == 1 and str(middle.pk) in str(exc.value)


def test_rows_of_the_unkeyed_version_still_verify_and_cannot_follow_keyed_ones():
    """Rows written before the keyed chain keep version 1 (never re-hashed);
    a version-1 row after a keyed one is a downgrade and breaks the chain."""
    old = AuditEvent(action="legacy.row", detail={"n": 1}, prev_hash="", hash_version=1)
    old.hash = chain_hash("", old)
    old.save(force_insert=True)
    new = rows(1)[0]
    assert new.prev_hash == old.hash
    assert verify_chain().ok
    late = AuditEvent(action="legacy.row", prev_hash=new.hash, hash_version=1)
    late.hash = chain_hash(new.hash, late)
    late.save(force_insert=True)
    report = verify_chain()
    assert (report.broken, report.problem) == (late.pk, "unkeyed row after keyed rows")


def test_the_checkpoint_task_writes_the_head_to_the_file_and_the_log(checkpoint_dir, caplog):
    *_, last = rows()
    with caplog.at_level(logging.INFO, logger="audit.checkpoint"):
        assert audit_checkpoint() == {"written": True, "seq": last.pk}
    assert audit_checkpoint() == {"written": False, "seq": None}  # nothing new: no line
    lines = (checkpoint_dir / "checkpoints.jsonl").read_text().splitlines()
    assert len(lines) == 1
    item = json.loads(lines[0])
    assert (item["seq"], item["hash"]) == (last.pk, last.hash)
    assert f"seq={last.pk} hash={last.hash}" in caplog.text
    assert checkpoints.read_checkpoints() == [{"seq": last.pk, "hash": last.hash, "at": item["at"]}]


def test_removing_the_newest_rows_is_found_against_the_checkpoint(capsys):
    first, second, third = rows()
    checkpoints.checkpoint_write()
    verify()
    assert "1 of 1 checkpoints matched" in capsys.readouterr().out
    # the newest two rows deleted: what is left is a valid chain on its own...
    _unguarded(("DELETE FROM audit_auditevent WHERE id >= %s", [second.pk]))
    assert verify_chain().ok
    # ...but not against the checkpoint
    with pytest.raises(CommandError) as exc:
        verify()
    assert exc.value.returncode == 1
    assert f"row id {third.pk}" in str(exc.value) and "tail removed" in str(exc.value)


def test_truncating_the_table_is_found_against_the_checkpoint():
    rows()
    checkpoints.checkpoint_write()
    with connection.cursor() as cur:
        cur.execute("TRUNCATE audit_auditevent")
    with pytest.raises(CommandError, match="tail removed or truncated"):
        verify()


def test_a_rewritten_newest_row_differs_from_its_checkpoint():
    *_, last = rows()
    checkpoints.checkpoint_write()
    _unguarded(("DELETE FROM audit_auditevent WHERE id = %s", [last.pk]))
    forged = AuditEvent(
        pk=last.pk, action="test.row", detail={"n": 99}, prev_hash=last.prev_hash, at=last.at
    )
    forged.hash = chain_hash(last.prev_hash, forged)  # even with the key
    forged.save(force_insert=True)
    assert verify_chain().ok
    with pytest.raises(CommandError, match="differs from its checkpoint"):
        verify()


def test_a_forged_checkpoint_line_is_refused(checkpoint_dir):
    rows()
    checkpoints.checkpoint_write()
    path = checkpoint_dir / "checkpoints.jsonl"
    item = json.loads(path.read_text())
    item["seq"] += 1000
    with path.open("a") as fh:
        fh.write(json.dumps(item) + "\n")
    with pytest.raises(CommandError, match="wrong MAC"):
        verify()


def test_without_a_checkpoint_the_command_warns(capsys):
    rows()
    verify()
    assert "No checkpoint" in capsys.readouterr().err


def test_the_checkpoint_is_scheduled():
    from config.schedule import BEAT_SCHEDULE

    assert BEAT_SCHEDULE["audit-checkpoint"]["task"] == "audit.tasks.audit_checkpoint"
