"""Fixtures of the subsidies tests: policies of county A and an eligible pA1."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from subsidies.tests import factories as sf


@pytest.fixture
def policies(world):
    return SimpleNamespace(
        reward=sf.reward_policy(world.county_a),
        settlement=sf.settlement_policy(world.county_a),
    )


@pytest.fixture
def eligible(world, patients, policies):
    """pA1 made eligible for the guardian reward (letter, 2 assistants, police, incident)."""
    u = world.users
    return sf.make_eligible(patients.pA1, doctor=u.doctor_a, police=u.police_a)


@pytest.fixture
def gov_a1(world):
    """The governance office of township A1 (township review)."""
    return sf.township_governance(world, "a1")
