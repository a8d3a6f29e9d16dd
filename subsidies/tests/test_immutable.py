"""Settlements and their lines are immutable in PostgreSQL too (migration 0003)."""

from __future__ import annotations

import importlib
from datetime import date
from decimal import Decimal

import pytest
from django.db import DatabaseError, connection, transaction

from subsidies import services
from subsidies.models import Settlement, SettlementLine

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

D = Decimal
trigger_migration = importlib.import_module(
    "subsidies.migrations.0003_settlement_immutable_trigger"
)


def refused(sql_or_callable) -> bool:
    try:
        with transaction.atomic():
            if callable(sql_or_callable):
                sql_or_callable()
            else:
                with connection.cursor() as cur:
                    cur.execute(sql_or_callable)
    except DatabaseError as exc:
        return "is immutable" in str(exc)
    return False


@pytest.fixture
def settlement(world, patients, policies):
    return services.settlement_record(
        patient_id=patients.pA1.pk,
        by=world.users.hospital,
        admission_date=date(2026, 1, 1),
        discharge_date=date(2026, 1, 20),
        total_cost=D("1000.00"),
        in_scope_cost=D("800.00"),
        today=date(2026, 3, 31),
    )


def test_queryset_update_and_delete_are_refused_by_the_database(settlement):
    qs = Settlement.objects.filter(pk=settlement.pk)
    lines = SettlementLine.objects.filter(settlement=settlement)
    assert refused(lambda: qs.update(patient_pays=D("0")))
    assert refused(lambda: lines.update(amount=D("0")))
    assert refused(lambda: lines.delete())
    assert refused("DELETE FROM subsidies_settlementline")
    assert refused("DELETE FROM subsidies_settlement")
    assert refused("UPDATE subsidies_settlement SET reason = 'x'")
    settlement.refresh_from_db()
    assert settlement.patient_pays == D("200.00")
    assert lines.count() == 3


def test_the_reversal_flow_only_inserts(world, settlement):
    reversal = services.settlement_reverse(
        settlement_id=settlement.pk, by=world.users.hospital, reason="录入错误"
    )
    assert reversal.reverses_id == settlement.pk
    again = services.settlement_create(
        episode_id=settlement.episode_id,
        by=world.users.hospital,
        total_cost=D("900.00"),
        in_scope_cost=D("800.00"),
    )
    assert Settlement.objects.count() == 3 and again.kind == "settlement"


def test_truncate_stays_possible_for_test_flushes(settlement):
    with transaction.atomic():
        with connection.cursor() as cur:
            # the test's own inserts leave deferred foreign-key checks pending;
            # a flush between tests runs after they committed
            cur.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cur.execute("TRUNCATE subsidies_settlementline, subsidies_settlement CASCADE")
        assert not Settlement.objects.exists()
        transaction.set_rollback(True)
    assert Settlement.objects.filter(pk=settlement.pk).exists()


def test_the_migration_installs_and_removes_the_triggers():
    def installed() -> set[str]:
        with connection.cursor() as cur:
            cur.execute("SELECT tgname FROM pg_trigger WHERE tgname LIKE 'subsidies_%%_immutable'")
            return {row[0] for row in cur.fetchall()}

    both = {"subsidies_settlement_immutable", "subsidies_settlementline_immutable"}
    assert installed() == both
    with connection.schema_editor() as editor:
        trigger_migration.backward(None, editor)
    assert installed() == set()
    with connection.schema_editor() as editor:
        trigger_migration.forward(None, editor)
    assert installed() == both


@pytest.mark.django_db(transaction=True)
def test_a_flush_between_tests_is_not_blocked(world, patients, policies):
    """``transaction=True`` tests end with a flush (TRUNCATE): committed
    settlements must not stop it (the teardown would error)."""
    services.settlement_record(
        patient_id=patients.pA1.pk,
        by=world.users.hospital,
        admission_date=date(2026, 1, 1),
        discharge_date=date(2026, 1, 20),
        total_cost=D("1000.00"),
        in_scope_cost=D("800.00"),
        today=date(2026, 3, 31),
    )
    assert Settlement.objects.count() == 1
