"""No two policies of a county in force on one day, enforced by PostgreSQL
too (migration 0006), with the same clear message when two saves race."""

from __future__ import annotations

import importlib
from datetime import date
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction
from django.urls import reverse

from core.errors import DomainError
from subsidies import rules
from subsidies.models import ERR_POLICY_OVERLAP, RewardPolicy, SettlementPolicy
from subsidies.tests import factories as sf

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

D = Decimal
LAYER = {"order": 1, "payer": "basic_insurance", "condition": "insured", "ratio": D("90")}
constraint_migration = importlib.import_module(
    "subsidies.migrations.0006_policy_no_overlap_constraint"
)


def _insert(model, county, valid_from, valid_to=None, **extra):
    """A row saved without clean(): only the database stands in the way."""
    with transaction.atomic():
        return model.objects.create(
            region=county, name="直接写入", valid_from=valid_from, valid_to=valid_to, **extra
        )


@pytest.mark.parametrize(
    ("model", "extra"),
    [(SettlementPolicy, {}), (RewardPolicy, {"yearly_amount": D("3600.00")})],
)
def test_the_database_refuses_overlapping_validity(world, model, extra):
    _insert(model, world.county_a, date(2024, 1, 1), date(2024, 12, 31), **extra)
    _insert(model, world.county_a, date(2025, 1, 1), **extra)  # the next day: fine
    _insert(model, world.county_c, date(2024, 6, 1), **extra)  # another county: fine
    for start, end in ((date(2024, 12, 31), date(2024, 12, 31)), (date(2030, 1, 1), None)):
        with pytest.raises(IntegrityError) as exc:
            _insert(model, world.county_a, start, end, **extra)
        assert "_no_overlap" in str(exc.value)
    assert model.objects.filter(region=world.county_a).count() == 2


def test_a_race_past_clean_gets_the_clear_message(world, monkeypatch):
    sf.settlement_policy(world.county_a, layers=[LAYER])
    monkeypatch.setattr(rules, "validity_overlaps", lambda *args: False)  # clean() sees nothing
    with pytest.raises(DomainError) as exc:
        sf.settlement_policy(world.county_a, layers=[LAYER], valid_from=date(2024, 1, 1))
    assert exc.value.message == ERR_POLICY_OVERLAP
    with pytest.raises(DomainError) as exc:
        sf.reward_policy(world.county_a)
        sf.reward_policy(world.county_a, valid_from=date(2030, 1, 1))
    assert exc.value.message == ERR_POLICY_OVERLAP
    assert SettlementPolicy.objects.count() == 1 and RewardPolicy.objects.count() == 1


def test_the_admin_shows_the_message_when_the_database_refuses(client, world, monkeypatch):
    sf.settlement_policy(world.county_a, layers=[LAYER])
    admin = world.users.admin
    admin.is_staff = True
    admin.save(update_fields=["is_staff"])
    sf.login(client, admin)
    monkeypatch.setattr(rules, "validity_overlaps", lambda *args: False)
    response = client.post(
        reverse("admin:subsidies_settlementpolicy_add"),
        {
            "region": world.county_a.pk,
            "name": "重叠的政策",
            "valid_from": "2024-01-01",
            "valid_to": "",
            "notes": "",
            "layers-TOTAL_FORMS": "0",
            "layers-INITIAL_FORMS": "0",
            "layers-MIN_NUM_FORMS": "0",
            "layers-MAX_NUM_FORMS": "1000",
        },
        follow=True,
    )
    assert str(ERR_POLICY_OVERLAP) in response.content.decode()
    assert SettlementPolicy.objects.count() == 1


def test_the_migration_adds_and_removes_the_constraints():
    def installed() -> set[str]:
        with connection.cursor() as cur:
            cur.execute("SELECT conname FROM pg_constraint WHERE conname LIKE '%%_no_overlap'")
            return {row[0] for row in cur.fetchall()}

    both = {"rewardpolicy_no_overlap", "settlementpolicy_no_overlap"}
    assert installed() == both
    with connection.schema_editor() as editor:
        constraint_migration.backward(None, editor)
    assert installed() == set()
    with connection.schema_editor() as editor:
        constraint_migration.forward(None, editor)
    assert installed() == both
