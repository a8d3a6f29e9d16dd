"""Permission matrix: every page and endpoint of the app × persona × own/other county.

One table: the expected answer for the objects of the persona's own county
("own") is listed per persona (403 for any persona not listed; anonymous
gets the login redirect on pages and 401 on the API). For objects of the
other county, a persona allowed the page gets 404 (not found, audited) and
one not allowed gets 403. Lists never show the other county's rows.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.tests import factories as af
from audit.models import AuditEvent
from subsidies import services
from subsidies.tests import factories as sf

pytestmark = pytest.mark.django_db

PERSONAS = [
    "doctor_a",
    "hospital",
    "police_a",
    "governance",
    "civil",
    "dpf",
    "finance",
    "official",
    "admin",
    "anonymous",
]

REWARD = {"doctor_a": 200, "governance": 200, "civil": 200}
GOV_CIVIL = {"governance": 200, "civil": 200}
BATCHES = {"governance": 200, "civil": 200, "finance": 200}
HOSPITAL = {"hospital": 200}
PAYERS = {"hospital": 200, "civil": 200, "dpf": 200, "finance": 200}


# the reason an export asks for (accounts.exports)
EXPORT = {"reason": af.EXPORT_REASON}

# (label, kind, method, url name, object key or None, own statuses, body)
MATRIX = [
    ("reward home", "page", "get", "subsidies:home", None, {**REWARD, "finance": 200}, None),
    ("award list", "page", "get", "subsidies:award-list", None, REWARD, None),
    ("candidates", "page", "get", "subsidies:award-candidates", None, REWARD, None),
    (
        "apply",
        "page",
        "get",
        "subsidies:award-apply",
        "patient",
        {"doctor_a": 200, "governance": 200},
        None,
    ),
    ("award detail", "page", "get", "subsidies:award-detail", "award", REWARD, None),
    ("township review", "page", "post", "subsidies:award-review", "award", {"governance": 200}, {}),
    ("county approval", "page", "post", "subsidies:award-approve", "award", GOV_CIVIL, {}),
    ("notice objection", "page", "post", "subsidies:award-objection", "award", GOV_CIVIL, {}),
    ("yearly review", "page", "post", "subsidies:award-yearly-review", "award", GOV_CIVIL, {}),
    ("suspend", "page", "post", "subsidies:award-suspend", "award", GOV_CIVIL, {}),
    ("end", "page", "post", "subsidies:award-end", "award", GOV_CIVIL, {}),
    ("batch list", "page", "get", "subsidies:batch-list", None, BATCHES, None),
    ("batch draw", "page", "post", "subsidies:batch-draw", None, GOV_CIVIL, {}),
    ("batch detail", "page", "get", "subsidies:batch-detail", "batch", BATCHES, None),
    ("batch export", "page", "get", "subsidies:batch-export", "batch", BATCHES, None),
    ("batch export file", "page", "post", "subsidies:batch-export", "batch", BATCHES, EXPORT),
    (
        "batch review",
        "page",
        "post",
        "subsidies:batch-review",
        "batch",
        {"governance": 302, "civil": 302},
        {},
    ),
    ("batch paid", "page", "post", "subsidies:batch-pay", "batch", {"finance": 200}, {}),
    ("settlement list", "page", "get", "subsidies:settlement-list", None, PAYERS, None),
    ("find patient to admit", "page", "get", "subsidies:episode-new", None, HOSPITAL, None),
    ("admit", "page", "get", "subsidies:episode-admit", "admit_patient", HOSPITAL, None),
    ("episode detail", "page", "get", "subsidies:episode-detail", "episode", HOSPITAL, None),
    ("discharge", "page", "get", "subsidies:episode-discharge", "open_episode", HOSPITAL, None),
    ("settle again", "page", "get", "subsidies:episode-settle", "episode", {"hospital": 302}, None),
    ("settlement detail", "page", "get", "subsidies:settlement-detail", "settlement", PAYERS, None),
    ("reverse", "page", "post", "subsidies:settlement-reverse", "settlement", HOSPITAL, {}),
    ("statement", "page", "get", "subsidies:statement", None, PAYERS, None),
    ("statement export", "page", "get", "subsidies:statement-export", None, PAYERS, None),
    ("statement file", "page", "post", "subsidies:statement-export", None, PAYERS, EXPORT),
    # API
    ("api quote", "api", "post", "subsidies-api:settlement-quote", "quote", HOSPITAL, "quote"),
    (
        "api settle",
        "api",
        "post",
        "subsidies-api:settlement-list",
        "quote",
        {"hospital": 400},
        "bad_bill",
    ),
    ("api settlements", "api", "get", "subsidies-api:settlement-list", None, PAYERS, None),
    ("api settlement", "api", "get", "subsidies-api:settlement-detail", "settlement", PAYERS, None),
    ("api awards", "api", "get", "subsidies-api:reward-award-list", None, REWARD, None),
    ("api award", "api", "get", "subsidies-api:reward-award-detail", "award", REWARD, None),
    ("api batches", "api", "get", "subsidies-api:reward-batch-list", None, BATCHES, None),
    ("api batch", "api", "get", "subsidies-api:reward-batch-detail", "batch", BATCHES, None),
]


@pytest.fixture
def objs(world, patients, policies, gov_a1):
    """The same objects in county A (own) and county C (other)."""
    us = world.users
    c = sf.county_c_staff(world)
    sf.reward_policy(world.county_c)
    sf.settlement_policy(world.county_c)
    pa = sf.make_eligible(patients.pA1, doctor=us.doctor_a, police=us.police_a)
    pc = sf.make_eligible(patients.pC1, doctor=us.doctor_c, police=c["police"])
    award_a = services.award_apply(patient_id=pa.pk, by=us.doctor_a, source="health_centre")
    award_c = services.award_apply(patient_id=pc.pk, by=c["governance"], source="governance")
    batch_a, _ = services.batch_draw(region=world.county_a, period_code="2025Q1")
    batch_c, _ = services.batch_draw(region=world.county_c, period_code="2025Q1")
    today = timezone.localdate()
    bill = {
        "admission_date": today - timedelta(days=10),
        "discharge_date": today - timedelta(days=2),
        "total_cost": Decimal("1000.00"),
        "in_scope_cost": Decimal("800.00"),
    }
    s_a = services.settlement_record(patient_id=pa.pk, by=us.hospital, **bill)
    s_c = services.settlement_record(patient_id=pc.pk, by=c["hospital"], **bill)
    open_a = services.episode_admit(
        patient_id=patients.pB1.pk, by=us.hospital, case_number="OPEN", admission_date=today
    )
    return {
        "own": {
            "patient": pa.pk,
            "award": award_a.pk,
            "batch": batch_a.pk,
            "admit_patient": patients.pB1.pk,
            "episode": s_a.episode_id,
            "open_episode": open_a.pk,
            "settlement": s_a.pk,
            "quote": pa.pk,
            "numbers": [],
        },
        "other": {
            "patient": pc.pk,
            "award": award_c.pk,
            "batch": batch_c.pk,
            "admit_patient": pc.pk,
            "episode": s_c.episode_id,
            "open_episode": s_c.episode_id,
            "settlement": s_c.pk,
            "quote": pc.pk,
            "numbers": [award_c.number, s_c.number, batch_c.number],
            "ids": {"award": award_c.pk, "settlement": s_c.pk, "batch": batch_c.pk},
        },
    }


def _body(kind, patient_id):
    today = timezone.localdate()
    base = {
        "patient": str(patient_id),
        "admission_date": (today - timedelta(days=5)).isoformat(),
        "discharge_date": today.isoformat(),
        "total_cost": "100.00",
        "in_scope_cost": "80.00",
    }
    if kind == "bad_bill":
        base["in_scope_cost"] = "100.01"
    return base


def _call(persona, client, api, method, kind, name, key, side, objs, body):
    in_body = body in ("quote", "bad_bill")
    args = [objs[side][key]] if key and not in_body else []
    url = reverse(name, args=args)
    if kind == "api":
        data = _body(body, objs[side][key]) if body in ("quote", "bad_bill") else body
        return getattr(api, method)(url, data, format="json") if method == "post" else api.get(url)
    if method == "post":
        return client.post(url, body or {})
    return client.get(url)


def _expected(persona, kind, own, side, key):
    if persona == "anonymous":
        return 302 if kind == "page" else 401
    if persona not in own:
        return 403
    if side == "other" and key:
        return 404
    return own[persona]


@pytest.mark.parametrize("persona", PERSONAS)
def test_permission_matrix(client, world, objs, persona):
    user = getattr(world.users, persona, None)
    api = APIClient()
    if user is not None:
        # every persona holds the export permission: the matrix is about
        # roles and scope (without it an export is 403 for anyone:
        # tests/test_exports_everywhere.py)
        af.grant_export(user)
        sf.login(client, user)
        api.force_authenticate(user)
    mismatches = []
    for label, kind, method, name, key, own, body in MATRIX:
        for side in ("own", "other") if key else ("own",):
            response = _call(persona, client, api, method, kind, name, key, side, objs, body)
            want = _expected(persona, kind, own, side, key)
            if response.status_code != want:
                mismatches.append(f"{label} [{side}]: {response.status_code} != {want}")
            elif kind == "page" and want == 302 and persona == "anonymous":
                assert reverse("accounts:login") in response["Location"]
            elif want == 200 and not key:
                text = (
                    b"".join(response.streaming_content)
                    if getattr(response, "streaming", False)
                    else response.content
                ).decode("utf-8", "ignore")
                for number in objs["other"]["numbers"]:
                    if number in text:
                        mismatches.append(f"{label}: shows the other county's {number}")
                if kind == "api":
                    ids = {row["id"] for row in response.json().get("results", [])}
                    if ids & set(objs["other"]["ids"].values()) and name.endswith("-list"):
                        resource = name.split(":")[1].split("-list")[0]
                        other = {
                            "settlement": objs["other"]["ids"]["settlement"],
                            "reward-award": objs["other"]["ids"]["award"],
                            "reward-batch": objs["other"]["ids"]["batch"],
                        }[resource]
                        if other in ids:
                            mismatches.append(f"{label}: lists the other county's row")
    assert not mismatches, "\n".join(mismatches)


def test_out_of_scope_reads_are_audited(client, world, objs):
    sf.login(client, world.users.civil)
    response = client.get(
        reverse("subsidies:settlement-detail", args=[objs["other"]["settlement"]])
    )
    assert response.status_code == 404
    row = AuditEvent.objects.filter(action="access.denied", object_type="settlement").latest("id")
    assert row.actor == world.users.civil
    assert row.object_id == str(objs["other"]["settlement"])


def test_detail_reads_are_audited_against_the_patient(client, world, objs, patients):
    sf.login(client, world.users.civil)
    client.get(reverse("subsidies:settlement-detail", args=[objs["own"]["settlement"]]))
    row = AuditEvent.objects.filter(action="settlement.view").latest("id")
    assert (row.object_type, row.object_id) == ("patient", str(patients.pA1.pk))


def test_township_office_sees_no_county_batches(client, world, objs, gov_a1):
    sf.login(client, gov_a1)
    assert client.get(reverse("subsidies:batch-list")).status_code == 403
    response = client.get(reverse("subsidies:award-detail", args=[objs["own"]["award"]]))
    assert response.status_code == 200  # township review happens there


def test_police_sees_no_reward_or_settlement_data_even_of_its_own_township(client, world, objs):
    sf.login(client, world.users.police_a)
    for name in ("subsidies:home", "subsidies:settlement-list", "subsidies:statement"):
        assert client.get(reverse(name)).status_code == 403
