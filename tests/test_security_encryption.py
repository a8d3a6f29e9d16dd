"""Encryption at rest and key rotation (SECURITY.md G16)."""

from __future__ import annotations

import base64
import os

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from core.management.commands.rotate_field_keys import encrypted_models
from patients.models import Guardian, Patient

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def new_key(kid: str) -> str:
    return f"{kid}:{base64.b64encode(os.urandom(32)).decode()}"


def raw(sql: str) -> list[tuple]:
    with connection.cursor() as cur:
        cur.execute(sql)
        return cur.fetchall()


def all_raw_values() -> list[str]:
    """Every stored value of every encrypted column, as the database holds it."""
    out = []
    for model, fields in encrypted_models():
        cols = ", ".join(connection.ops.quote_name(f.column) for f in fields)
        for row in raw(f"SELECT {cols} FROM {connection.ops.quote_name(model._meta.db_table)}"):  # noqa: S608
            out += [v for v in row if v]
    return out


def test_id_numbers_and_phones_are_not_stored_in_clear(patients):
    numbers = [p.id_number for p in (patients.pA1, patients.pB1, patients.pC1)]
    stored = all_raw_values()
    assert stored
    for value in stored:
        assert "$" in value
        assert not any(n in value for n in numbers) and "13800000000" not in value


def test_every_encrypted_field_is_covered_including_history():
    labels = {m._meta.label for m, _ in encrypted_models()}
    assert {"patients.Patient", "patients.HistoricalPatient", "patients.Guardian"} <= labels
    assert "patients.HistoricalGuardian" in labels


def test_rotation_moves_every_value_to_the_new_key(settings, patients):
    old = settings.FIELD_ENCRYPTION_KEYS
    expected = {p.pk: (p.id_number, p.guardian.phone) for p in Patient.objects.all()}
    settings.FIELD_ENCRYPTION_KEYS = [new_key("k2"), *old]
    call_command("rotate_field_keys", "--chunk-size", "2", "--dry-run")
    assert not any(v.startswith("k2$") for v in all_raw_values())
    call_command("rotate_field_keys", "--chunk-size", "2")
    assert all(v.startswith("k2$") for v in all_raw_values())
    # the old key can go: everything still reads, history included
    settings.FIELD_ENCRYPTION_KEYS = settings.FIELD_ENCRYPTION_KEYS[:1]
    for p in Patient.objects.select_related("guardian"):
        assert (p.id_number, p.guardian.phone) == expected[p.pk]
    for h in Patient.history.all():
        assert h.id_number == expected[h.id][0]
    assert all(g.phone == "13800000000" for g in Guardian.history.all())
    # a second run has nothing left to do
    call_command("rotate_field_keys")


def test_rotation_stops_when_an_old_key_is_missing(settings, patients):
    settings.FIELD_ENCRYPTION_KEYS = [new_key("k3")]
    with pytest.raises(CommandError):
        call_command("rotate_field_keys")
