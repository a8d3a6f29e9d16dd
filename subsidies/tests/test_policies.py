"""Policies as data: validation, versions with history, Django admin for the admin role."""

from datetime import date
from decimal import Decimal

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from core.errors import DomainError
from subsidies import rules
from subsidies.models import ERR_POLICY_OVERLAP, PayerLayer, RewardPolicy, SettlementPolicy
from subsidies.tests import factories as sf

pytestmark = pytest.mark.django_db

D = Decimal
LAYER = {"order": 1, "payer": "basic_insurance", "condition": "insured", "ratio": D("90")}


def test_overlapping_validity_is_refused(world):
    sf.settlement_policy(world.county_a, valid_to=date(2024, 12, 31), layers=[LAYER])
    with pytest.raises(DomainError) as exc:
        sf.settlement_policy(world.county_a, valid_from=date(2024, 6, 1), layers=[LAYER])
    assert exc.value.message == ERR_POLICY_OVERLAP
    sf.settlement_policy(world.county_a, valid_from=date(2025, 1, 1), layers=[LAYER])
    sf.settlement_policy(world.county_c, layers=[LAYER])  # another county may overlap
    assert SettlementPolicy.objects.count() == 3


def test_reward_policy_overlap_is_refused(world):
    sf.reward_policy(world.county_a)
    with pytest.raises(DomainError) as exc:
        sf.reward_policy(world.county_a, valid_from=date(2030, 1, 1))
    assert exc.value.message == ERR_POLICY_OVERLAP


def test_duplicate_layer_order_refused_and_nothing_saved(world):
    with pytest.raises(DomainError) as exc:
        sf.settlement_policy(world.county_a, layers=[LAYER, {**LAYER, "payer": "civil_affairs"}])
    assert exc.value.message == rules.ERR_DUPLICATE_ORDER
    assert not SettlementPolicy.objects.exists() and not PayerLayer.objects.exists()


@pytest.mark.parametrize("ratio", [D("-1"), D("100.01")])
def test_ratio_outside_0_100_refused_and_nothing_saved(world, ratio):
    with pytest.raises(DomainError) as exc:
        sf.settlement_policy(world.county_a, layers=[{**LAYER, "ratio": ratio}])
    assert exc.value.message == rules.ERR_RATIO_RANGE
    assert not SettlementPolicy.objects.exists()


def test_a_policy_belongs_to_a_county(world):
    with pytest.raises(DomainError) as exc:
        sf.settlement_policy(world.a1, layers=[LAYER])
    assert exc.value.field == "region"


# --- Django admin (the admin role; is_staff is needed to enter /admin/) ---


@pytest.fixture
def admin_client(client, world):
    admin = world.users.admin
    admin.is_staff = True
    admin.save(update_fields=["is_staff"])
    return sf.login(client, admin)


def _layer_form(prefix="layers", rows=()):
    data = {
        f"{prefix}-TOTAL_FORMS": str(len(rows)),
        f"{prefix}-INITIAL_FORMS": "0",
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "1000",
    }
    for i, row in enumerate(rows):
        for key, value in row.items():
            data[f"{prefix}-{i}-{key}"] = value
    return data


def _policy_post(world, rows, **extra):
    return {
        "region": world.county_a.pk,
        "name": "后台录入的结算政策",
        "valid_from": "2024-01-01",
        "valid_to": "",
        "notes": "",
        **_layer_form(rows=rows),
        **extra,
    }


ROW = {
    "order": "1",
    "payer": "basic_insurance",
    "condition": "insured",
    "ratio": "90",
    "min_risk_level": "3",
}


def test_admin_role_adds_a_settlement_policy_with_layers(admin_client, world):
    url = reverse("admin:subsidies_settlementpolicy_add")
    response = admin_client.post(
        url,
        _policy_post(
            world,
            [
                ROW,
                {
                    **ROW,
                    "order": "2",
                    "payer": "civil_affairs",
                    "condition": "poverty_assistance",
                    "ratio": "100",
                },
            ],
        ),
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    policy = SettlementPolicy.objects.get()
    assert [ly.payer for ly in policy.layers.all()] == ["basic_insurance", "civil_affairs"]
    assert policy.version == 1
    assert policy.history.first().history_user == world.users.admin
    assert AuditEvent.objects.filter(action="admin.policy_create").exists()


def test_admin_duplicate_order_shows_the_message_and_saves_nothing(admin_client, world):
    url = reverse("admin:subsidies_settlementpolicy_add")
    response = admin_client.post(url, _policy_post(world, [ROW, {**ROW, "payer": "civil_affairs"}]))
    assert response.status_code == 200
    assert str(rules.ERR_DUPLICATE_ORDER) in response.content.decode()
    assert not SettlementPolicy.objects.exists() and not PayerLayer.objects.exists()


def test_admin_ratio_out_of_range_shows_the_message(admin_client, world):
    url = reverse("admin:subsidies_settlementpolicy_add")
    response = admin_client.post(url, _policy_post(world, [{**ROW, "ratio": "120"}]))
    assert response.status_code == 200
    assert str(rules.ERR_RATIO_RANGE) in response.content.decode()
    assert not SettlementPolicy.objects.exists()


def test_admin_overlap_shows_the_message(admin_client, world):
    sf.settlement_policy(world.county_a, layers=[LAYER])
    url = reverse("admin:subsidies_settlementpolicy_add")
    response = admin_client.post(url, _policy_post(world, [ROW]))
    assert response.status_code == 200
    assert str(ERR_POLICY_OVERLAP) in response.content.decode()
    assert SettlementPolicy.objects.count() == 1


def test_admin_change_bumps_the_version_and_keeps_history(admin_client, world):
    policy = sf.settlement_policy(world.county_a, layers=[LAYER])
    layer = policy.layers.get()
    url = reverse("admin:subsidies_settlementpolicy_change", args=[policy.pk])
    data = _policy_post(world, [])
    data.update(
        {
            "layers-TOTAL_FORMS": "1",
            "layers-INITIAL_FORMS": "1",
            "layers-0-id": str(layer.pk),
            "layers-0-policy": str(policy.pk),
            "layers-0-order": "1",
            "layers-0-payer": "basic_insurance",
            "layers-0-condition": "insured",
            "layers-0-ratio": "85",
            "layers-0-min_risk_level": "3",
        }
    )
    response = admin_client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:2000]
    policy.refresh_from_db()
    assert policy.version == 2
    assert policy.layers.get().ratio == D("85")
    assert policy.layers.get().history.count() == 2
    assert policy.history.count() == 2


def test_admin_reward_policy_incident_kinds_as_checkboxes(admin_client, world):
    url = reverse("admin:subsidies_rewardpolicy_add")
    response = admin_client.post(
        url,
        {
            "region": world.county_a.pk,
            "name": "以奖代补",
            "valid_from": "2024-01-01",
            "yearly_amount": "1000.00",
            "frequency": "yearly",
            "notice_days": "7",
            "require_police_registered": "on",
            "qualifying_incident_kinds": ["trouble", "disaster"],
            "min_risk_level": "",
            "require_responsibility_letter": "on",
            "min_assistant_guardians": "2",
            "reapply_bar_months": "12",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    policy = RewardPolicy.objects.get()
    assert policy.qualifying_incident_kinds == ["trouble", "disaster"]
    assert policy.rule().min_risk_level is None


@pytest.mark.parametrize("persona", ["doctor_a", "governance", "civil", "finance", "official"])
def test_other_roles_cannot_edit_policies_even_as_staff(client, world, persona):
    user = getattr(world.users, persona)
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    sf.login(client, user)
    response = client.get(reverse("admin:subsidies_settlementpolicy_add"))
    assert response.status_code == 403


def test_admin_sees_no_awards_or_settlements_in_django_admin(admin_client):
    response = admin_client.get(reverse("admin:index"))
    body = response.content.decode()
    assert "一站式结算政策" in body
    assert "结算单" not in body.replace("一站式结算政策", "")
