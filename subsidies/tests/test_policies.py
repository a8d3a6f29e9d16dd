"""Policies as data: validation, versions with history, Django admin for the admin role."""

from datetime import date
from decimal import Decimal

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from core.errors import DomainError
from subsidies import admin as admin_module
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


# --- versions: strictly increasing, no revert; rules frozen once used -----------------


def _change_post(world, policy, layers, **extra):
    """The change form of a settlement policy with its saved layers (edited by ``layers``)."""
    data = _policy_post(world, [], **extra)
    rows = list(policy.layers.order_by("order"))
    data.update({"layers-TOTAL_FORMS": str(len(rows)), "layers-INITIAL_FORMS": str(len(rows))})
    for i, layer in enumerate(rows):
        row = {
            "id": str(layer.pk),
            "policy": str(policy.pk),
            "order": str(layer.order),
            "payer": layer.payer,
            "condition": layer.condition,
            "ratio": str(layer.ratio),
            "min_risk_level": str(layer.min_risk_level),
            **layers.get(i, {}),
        }
        data.update({f"layers-{i}-{k}": v for k, v in row.items()})
    return data


def services_settle(world, patients, on=date(2024, 3, 1)):
    from subsidies import services

    return services.settlement_record(
        patient_id=patients.pA1.pk,
        by=world.users.hospital,
        admission_date=on,
        discharge_date=on,
        total_cost=D("100.00"),
        in_scope_cost=D("100.00"),
        today=date(2026, 3, 31),
    )


def test_versions_only_go_up_and_the_history_is_not_reverted(admin_client, world):
    policy = sf.settlement_policy(world.county_a, layers=[LAYER], valid_from=date(2024, 1, 1))
    url = reverse("admin:subsidies_settlementpolicy_change", args=[policy.pk])
    for ratio, version in (("85", 2), ("80", 3)):
        response = admin_client.post(url, _change_post(world, policy, {0: {"ratio": ratio}}))
        assert response.status_code == 302, response.content.decode()[:2000]
        policy.refresh_from_db()
        assert policy.version == version
    # a stale copy in memory does not bring an old number back
    stale = SettlementPolicy.objects.get(pk=policy.pk)
    stale.version = 1
    from subsidies.services import policy_next_version

    assert policy_next_version(stale) == 4
    # the first version can be looked at, not saved back
    first = policy.history.earliest()
    history_url = reverse(
        "admin:subsidies_settlementpolicy_simple_history", args=[policy.pk, first.history_id]
    )
    body = admin_client.get(history_url).content.decode()
    assert 'name="_save"' not in body
    response = admin_client.post(history_url, _change_post(world, policy, {}), follow=True)
    assert str(admin_module.ERR_REVERT_DISABLED) in response.content.decode()
    policy.refresh_from_db()
    assert (policy.version, policy.layers.get().ratio) == (3, D("80"))
    assert sorted(h.version for h in policy.history.all()) == [1, 2, 3]


def test_a_used_settlement_policy_keeps_its_rules(admin_client, world, patients):
    policy = sf.settlement_policy(world.county_a, layers=[LAYER], valid_from=date(2024, 1, 1))
    settlement = services_settle(world, patients)
    assert (settlement.policy_id, settlement.policy_version) == (policy.pk, 1)
    frozen = str(policy.frozen_error())
    url = reverse("admin:subsidies_settlementpolicy_change", args=[policy.pk])
    assert frozen in admin_client.get(url).content.decode()  # said before any edit
    for data in (
        _change_post(world, policy, {0: {"ratio": "80"}}),  # a layer changed
        _change_post(world, policy, {0: {"DELETE": "on"}}),  # a layer deleted
        {  # a layer added
            **_change_post(world, policy, {}),
            "layers-TOTAL_FORMS": "2",
            "layers-1-order": "2",
            "layers-1-payer": "civil_affairs",
            "layers-1-condition": "poverty_assistance",
            "layers-1-ratio": "100",
            "layers-1-min_risk_level": "3",
        },
        _change_post(world, policy, {}, region=world.county_c.pk),  # moved to another county
    ):
        response = admin_client.post(url, data)
        assert response.status_code == 200
        assert frozen in response.content.decode()
    # the validity must still cover the admissions settled under it
    response = admin_client.post(url, _change_post(world, policy, {}, valid_to="2024-02-29"))
    assert response.status_code == 200
    assert "2024-03-01" in response.content.decode()
    policy.refresh_from_db()
    assert (policy.version, policy.layers.get().ratio, policy.valid_to) == (1, D("90"), None)
    # ending it after its last use, or renaming it, is fine: a new version follows
    response = admin_client.post(
        url, _change_post(world, policy, {}, valid_to="2025-12-31", name="改名")
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    policy.refresh_from_db()
    assert (policy.version, policy.valid_to, policy.name) == (2, date(2025, 12, 31), "改名")
    sf.settlement_policy(
        world.county_a, layers=[{**LAYER, "ratio": D("80")}], valid_from=date(2026, 1, 1)
    )
    settlement.refresh_from_db()
    assert settlement.policy_version == 1 and settlement.policy_snapshot[0]["ratio"] == "90.00"


def test_a_used_layer_is_refused_outside_the_admin_too(world, patients):
    from django.core.exceptions import ValidationError

    policy = sf.settlement_policy(world.county_a, layers=[LAYER], valid_from=date(2024, 1, 1))
    layer = policy.layers.get()
    layer.ratio = D("50")
    layer.full_clean()  # not used yet
    services_settle(world, patients)
    with pytest.raises(ValidationError) as exc:
        layer.full_clean()
    assert str(policy.frozen_error()) in str(exc.value)
    policy.refresh_from_db()
    policy.full_clean()  # unchanged: fine


def test_a_used_reward_policy_keeps_its_amount(admin_client, world, eligible):
    from subsidies import services

    services.award_apply(patient_id=eligible.pk, by=world.users.doctor_a, source="health_centre")
    policy = RewardPolicy.objects.get()
    url = reverse("admin:subsidies_rewardpolicy_change", args=[policy.pk])
    data = {
        "region": world.county_a.pk,
        "name": policy.name,
        "valid_from": policy.valid_from.isoformat(),
        "valid_to": "",
        "yearly_amount": "4800.00",
        "frequency": policy.frequency,
        "notice_days": str(policy.notice_days),
        "require_police_registered": "on",
        "qualifying_incident_kinds": ["disaster", "trouble"],
        "min_risk_level": "3",
        "require_responsibility_letter": "on",
        "min_assistant_guardians": "2",
        "reapply_bar_months": "12",
    }
    response = admin_client.post(url, data)
    assert response.status_code == 200
    assert str(policy.frozen_error()) in response.content.decode()
    response = admin_client.post(url, {**data, "yearly_amount": "3600.00", "name": "新名称"})
    assert response.status_code == 302, response.content.decode()[:2000]
    policy.refresh_from_db()
    assert (policy.yearly_amount, policy.name, policy.version) == (D("3600.00"), "新名称", 2)
