"""The permission matrix of every referrals page and API endpoint: persona ×
route × position of the object (own township A1 / other township A2 / other
county C) → status. Out of scope is 404; a role without the capability 403;
anonymous pages redirect to the login page, the API answers 401."""

from __future__ import annotations

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

PERSONAS = (
    "doctor_a",
    "doctor_b",
    "doctor_c",
    "hospital",
    "police_a",
    "police_b",
    "governance",
    "civil",
    "dpf",
    "finance",
    "official",
    "admin",
    "anonymous",
)
POSITIONS = ("own", "other_township", "other_county")
HEALTH = ("doctor_a", "doctor_b", "doctor_c", "hospital")


def exp(default, anon, **per_persona):
    """Expected status per persona; tuples are (own, other township, other county)."""
    out = dict.fromkeys(PERSONAS, default)
    out["anonymous"] = anon
    out.update(per_persona)
    return out


def each(value):
    return (value, value, value)


# ----------------------------------------------------------------- pages
PAGE = 302  # anonymous → login page
REFERRAL_USERS = dict.fromkeys((*HEALTH, "civil", "dpf"), 200)
ONLY_A1 = (200, 404, 404)
ONLY_A2 = (404, 200, 404)
ONLY_C = (404, 404, 200)
COUNTY_A = (200, 200, 404)
NOWHERE = each(404)

PAGES = {
    "referrals:inbox": exp(403, PAGE, **REFERRAL_USERS),
    "referrals:create": exp(403, PAGE, **dict.fromkeys(HEALTH, 200)),
    "referrals:rehab-list": exp(403, PAGE, **REFERRAL_USERS),
    "referrals:rehab-create": exp(403, PAGE, hospital=200, civil=200, dpf=200),
    "referrals:clue-list": exp(200, PAGE, finance=403, official=403, admin=403),
    "referrals:clue-create": exp(200, PAGE, finance=403, official=403, admin=403),
    "referrals:import-home": exp(403, PAGE, **dict.fromkeys(HEALTH, 200)),
    "referrals:import-template": exp(403, PAGE, **dict.fromkeys(HEALTH, 200)),
    "referrals:exchange-home": exp(200, PAGE, finance=403, official=403),
    "referrals:partner-create": exp(403, PAGE, admin=200),
    "referrals:reconciliation-create": exp(200, PAGE, finance=403, official=403, admin=403),
    "referrals:task-list": exp(200, PAGE, finance=403, official=403),
}

# name → (scene attribute, expectations)
OBJECT_PAGES = {
    "referrals:detail": (
        "referral",
        exp(
            NOWHERE,
            each(PAGE),
            doctor_a=ONLY_A1,
            doctor_b=ONLY_A2,
            doctor_c=ONLY_C,
            hospital=COUNTY_A,
        ),
    ),
    "referrals:rehab-detail": (
        "institution",
        exp(
            NOWHERE,
            each(PAGE),
            doctor_a=ONLY_A1,
            doctor_b=ONLY_A2,
            doctor_c=ONLY_C,
            hospital=COUNTY_A,
            civil=COUNTY_A,
            dpf=COUNTY_A,
        ),
    ),
    "referrals:rehab-enrol": (
        "institution",
        exp(
            NOWHERE,
            each(PAGE),
            doctor_a=ONLY_A1,
            doctor_b=ONLY_A2,
            doctor_c=ONLY_C,
            hospital=COUNTY_A,
            civil=COUNTY_A,
            dpf=(403, 403, 404),
        ),
    ),
    "referrals:rehab-session-create": (
        "institution",
        exp(
            NOWHERE,
            each(PAGE),
            doctor_a=(403, 404, 404),
            doctor_b=(404, 403, 404),
            doctor_c=(404, 404, 403),
            hospital=(403, 403, 404),
            civil=COUNTY_A,
            dpf=(403, 403, 404),
        ),
    ),
    "referrals:rehab-edit": (
        "institution",
        exp(
            NOWHERE,
            each(PAGE),
            doctor_a=(403, 404, 404),
            doctor_b=(404, 403, 404),
            doctor_c=(404, 404, 403),
            hospital=(403, 403, 404),
            civil=COUNTY_A,
            dpf=(403, 403, 404),
        ),
    ),
    "referrals:clue-detail": (
        "clue",
        exp(
            NOWHERE,
            each(PAGE),
            doctor_a=ONLY_A1,
            doctor_b=ONLY_A2,
            doctor_c=ONLY_C,
            hospital=COUNTY_A,
            police_a=ONLY_A1,
            police_b=ONLY_A2,
        ),
    ),
    "referrals:clue-confirm": (
        "clue",
        exp(
            NOWHERE,
            each(PAGE),
            doctor_a=ONLY_A1,
            doctor_b=ONLY_A2,
            doctor_c=ONLY_C,
            hospital=COUNTY_A,
            police_a=(403, 404, 404),
            police_b=(404, 403, 404),
        ),
    ),
    "referrals:import-detail": (
        "imports",
        exp(NOWHERE, each(PAGE), doctor_a=ONLY_A1, doctor_b=ONLY_A2, doctor_c=ONLY_C),
    ),
}
# exchange objects belong to a county: own = county A, other county = C
COUNTY_ONLY = (200, None, 404)
OTHER_ONLY = (404, None, 200)
NONE_C = (404, None, 404)
OBJECT_PAGES.update(
    {
        "referrals:partner-detail": (
            "partner",
            exp(
                NONE_C,
                (PAGE, None, PAGE),
                **dict.fromkeys(
                    ("hospital", "police_a", "police_b", "governance", "admin"), COUNTY_ONLY
                ),
            ),
        ),
        "referrals:partner-edit": ("partner", exp(NONE_C, (PAGE, None, PAGE), admin=COUNTY_ONLY)),
        "referrals:run-detail": (
            "run",
            exp(
                NONE_C,
                (PAGE, None, PAGE),
                **dict.fromkeys(
                    ("hospital", "police_a", "police_b", "governance", "admin"), COUNTY_ONLY
                ),
            ),
        ),
        "referrals:run-download": (
            "run",
            exp(
                NONE_C,
                (PAGE, None, PAGE),
                hospital=(403, None, 404),
                # the county's package goes to the county police bureau, not
                # to a township's police station
                police_a=(403, None, 404),
                police_b=(403, None, 404),
                governance=(403, None, 404),
                admin=(403, None, 404),
            ),
        ),
        "referrals:reconciliation-detail": (
            "reconciliation",
            exp(
                NONE_C,
                (PAGE, None, PAGE),
                doctor_c=OTHER_ONLY,
                **dict.fromkeys(
                    ("doctor_a", "doctor_b", "hospital", "police_a", "police_b", "governance"),
                    COUNTY_ONLY,
                ),
            ),
        ),
        "referrals:reconciliation-high-risk": (
            "reconciliation",
            exp(
                NONE_C,
                (PAGE, None, PAGE),
                doctor_c=OTHER_ONLY,
                **dict.fromkeys(
                    ("doctor_a", "doctor_b", "hospital", "police_a", "police_b", "governance"),
                    COUNTY_ONLY,
                ),
            ),
        ),
    }
)

# POSTs on the own object: name → (how to build args, data, expectations)
POSTS = {
    "referrals:accept": ("referral", {}, exp(404, PAGE, doctor_a=403, hospital=302)),
    "referrals:reject": (
        "referral",
        {"reason": "床满"},
        exp(404, PAGE, doctor_a=403, hospital=302),
    ),
    "referrals:complete": ("referral", {}, exp(404, PAGE, doctor_a=403, hospital=302)),
    "referrals:cancel": (
        "referral",
        {"reason": "撤回"},
        exp(404, PAGE, doctor_a=302, hospital=403),
    ),
    "referrals:clue-close": (
        "clue",
        {"reason": "not_smd"},
        exp(404, PAGE, doctor_a=302, hospital=302, police_a=403),
    ),
    "referrals:rehab-enrolment-end": (
        "enrolment",
        {"reason": "completed"},
        exp(404, PAGE, doctor_a=302, hospital=302, civil=302, dpf=403),
    ),
    "referrals:partner-key": ("partner", {"action": "reveal"}, exp(404, PAGE, admin=302)),
    "referrals:partner-build": ("partner", {}, exp(404, PAGE, admin=302)),
    "referrals:run-redeliver": (
        "run",
        {},
        exp(404, PAGE, hospital=403, police_a=403, police_b=403, governance=403, admin=302),
    ),
    "referrals:reconciliation-review": (
        "review",
        {"same_person": "1"},
        exp(
            404,
            PAGE,
            doctor_a=403,
            doctor_b=302,
            hospital=302,
            police_a=403,
            police_b=403,
            governance=403,
        ),
    ),
    "referrals:task-resolve": (
        "task",
        {"status": "resolved"},
        exp(404, PAGE, civil=302, finance=403, official=403),
    ),
}
GETS_ON_ONE = {
    "referrals:rehab-green-channel": (
        "enrolment",
        exp(404, PAGE, doctor_a=200, hospital=200, civil=200, dpf=403),
    ),
}


def client_for(world, persona):
    from django.test import Client

    from accounts.tests.factories import grant_export, login

    c = Client()
    if persona != "anonymous":
        # every persona holds the export permission: this matrix is about
        # roles and scope (without it every export is 403:
        # tests/test_exports_everywhere.py); an export's GET is its reason form
        grant_export(getattr(world.users, persona))
        login(c, getattr(world.users, persona))  # with the second factor where required
    return c


def obj(scene, attr, position):
    group = getattr(scene, attr)
    return getattr(group, position, None)


def args_for(scene, attr, position="own"):
    if attr == "enrolment":
        return [scene.enrolment.pk]
    if attr == "task":
        return [scene.task.pk]
    if attr == "review":
        return [scene.reconciliation.own.pk, scene.review_item.pk]
    return [obj(scene, attr, position).pk]


class Clients:
    """One signed-in client per persona for the whole test (pages and API)."""

    def __init__(self, world):
        self.world = world
        self.pages: dict = {}
        self.api: dict = {}

    def get(self, persona, api=False):
        cache = self.api if api else self.pages
        if persona not in cache:
            cache[persona] = (
                api_client(self.world, persona) if api else client_for(self.world, persona)
            )
        return cache[persona]


def _request(clients, persona, method, url, data=None, api=False):
    """One request whose effects are rolled back, so every persona meets the
    same scene (the test client shares the test's transaction)."""
    from django.db import transaction

    client = clients.get(persona, api)
    with transaction.atomic():
        if method == "get":
            response = client.get(url)
        elif api:
            multipart = "file" in (data or {})
            response = client.post(url, data or {}, format="multipart" if multipart else "json")
        else:
            response = client.post(url, data or {})
        transaction.set_rollback(True)
    return response


def _check(world, cases):
    """cases: (label, persona, method, url, data, api, expected) → mismatches."""
    clients = Clients(world)
    wrong = []
    for label, persona, method, url, data, api, expected in cases:
        response = _request(clients, persona, method, url, data, api)
        if response.status_code != expected:
            wrong.append(f"{label} {persona}: {response.status_code} != {expected}")
        elif expected == 302 and persona == "anonymous" and not api:
            assert response["Location"].startswith(reverse("accounts:login"))
    return wrong


def test_page_permissions(world, scene):
    cases = [
        (name, p, "get", reverse(name), None, False, expected[p])
        for name, expected in PAGES.items()
        for p in PERSONAS
    ]
    assert _check(world, cases) == []


def test_object_page_permissions(world, scene):
    tables = dict(OBJECT_PAGES)
    for name, (attr, expected) in GETS_ON_ONE.items():
        tables[name] = (attr, {p: (expected[p], None, None) for p in PERSONAS})
    cases = []
    for name, (attr, table) in tables.items():
        for persona in PERSONAS:
            for i, position in enumerate(POSITIONS):
                status = table[persona][i]
                if status is None:
                    continue
                url = reverse(name, args=args_for(scene, attr, position))
                cases.append((f"{name} {position}", persona, "get", url, None, False, status))
    assert _check(world, cases) == []


def test_post_permissions(world, scene):
    cases = []
    for name, (attr, data, expected) in POSTS.items():
        url = reverse(name, args=args_for(scene, attr))
        cases += [(name, p, "post", url, data, False, expected[p]) for p in PERSONAS]
    assert _check(world, cases) == []


def test_every_referrals_route_is_in_the_matrix():
    from django.urls import get_resolver

    names = {
        f"referrals:{n}"
        for n in get_resolver().namespace_dict["referrals"][1].reverse_dict
        if isinstance(n, str)
    }
    covered = set(PAGES) | set(OBJECT_PAGES) | set(POSTS) | set(GETS_ON_ONE)
    assert names == covered


# ----------------------------------------------------------------- API
API = 401
API_CASES = {
    # name, method, target attr (None = collection), expectations
    ("referrals-api:referral-list", "get", None): exp(
        403, API, **dict.fromkeys((*HEALTH, "civil", "dpf"), 200)
    ),
    ("referrals-api:referral-detail", "get", "referral"): exp(
        each(403),
        each(API),
        doctor_a=ONLY_A1,
        doctor_b=ONLY_A2,
        doctor_c=ONLY_C,
        hospital=COUNTY_A,
        civil=NOWHERE,
        dpf=NOWHERE,
    ),
    ("referrals-api:referral-accept", "post", "referral"): exp(
        403, API, doctor_b=404, doctor_c=404, civil=404, dpf=404, hospital=200
    ),
    ("referrals-api:referral-reject", "post", "referral"): exp(
        403, API, doctor_b=404, doctor_c=404, civil=404, dpf=404, hospital=200
    ),
    ("referrals-api:referral-complete", "post", "referral"): exp(
        403, API, doctor_b=404, doctor_c=404, civil=404, dpf=404, hospital=400
    ),
    ("referrals-api:referral-cancel", "post", "referral"): exp(
        403, API, doctor_a=200, doctor_b=404, doctor_c=404, civil=404, dpf=404, hospital=403
    ),
    ("referrals-api:clue-list", "get", None): exp(200, API, finance=403, official=403, admin=403),
    ("referrals-api:clue-detail", "get", "clue"): exp(
        NOWHERE,
        each(API),
        doctor_a=ONLY_A1,
        doctor_b=ONLY_A2,
        doctor_c=ONLY_C,
        hospital=COUNTY_A,
        police_a=ONLY_A1,
        police_b=ONLY_A2,
        finance=each(403),
        official=each(403),
        admin=each(403),
    ),
    ("referrals-api:clue-close", "post", "clue"): exp(
        404, API, doctor_a=200, hospital=200, police_a=403, finance=403, official=403, admin=403
    ),
    ("referrals-api:clue-confirm", "post", "clue"): exp(
        404, API, doctor_a=200, hospital=200, police_a=403, finance=403, official=403, admin=403
    ),
    ("referrals-api:exchange-run-list", "get", None): exp(200, API, finance=403, official=403),
    ("referrals-api:exchange-run-detail", "get", "run"): exp(
        NONE_C,
        (API, None, API),
        finance=(403, None, 403),
        official=(403, None, 403),
        **dict.fromkeys(("hospital", "police_a", "police_b", "governance", "admin"), COUNTY_ONLY),
    ),
    ("referrals-api:reconciliation-list", "get", None): exp(
        200, API, finance=403, official=403, admin=403
    ),
    ("referrals-api:reconciliation-detail", "get", "reconciliation"): exp(
        NONE_C,
        (API, None, API),
        doctor_c=OTHER_ONLY,
        finance=(403, None, 403),
        official=(403, None, 403),
        admin=(403, None, 403),
        **dict.fromkeys(
            ("doctor_a", "doctor_b", "hospital", "police_a", "police_b", "governance"), COUNTY_ONLY
        ),
    ),
    ("referrals-api:reconciliation-items", "get", "reconciliation"): exp(
        NONE_C,
        (API, None, API),
        doctor_c=OTHER_ONLY,
        finance=(403, None, 403),
        official=(403, None, 403),
        admin=(403, None, 403),
        **dict.fromkeys(
            ("doctor_a", "doctor_b", "hospital", "police_a", "police_b", "governance"), COUNTY_ONLY
        ),
    ),
}
# creations, by where the new object lies
API_CREATE = {
    "referrals-api:referral-list": exp(
        each(403),
        each(API),
        doctor_a=(201, 404, 404),
        doctor_b=(404, 201, 404),
        doctor_c=(404, 404, 201),
        hospital=(201, 201, 404),
        civil=(403, 403, 404),
        dpf=(403, 403, 404),
    ),
    "referrals-api:clue-list": exp(
        each(400),
        each(API),
        doctor_a=(201, 400, 400),
        doctor_b=(400, 201, 400),
        doctor_c=(400, 400, 201),
        hospital=(201, 201, 400),
        police_a=(201, 400, 400),
        police_b=(400, 201, 400),
        governance=(201, 201, 400),
        civil=(201, 201, 400),
        dpf=(201, 201, 400),
        finance=each(403),
        official=each(403),
        admin=each(403),
    ),
    "referrals-api:reconciliation-list": exp(
        each(201),
        each(API),
        civil=each(403),
        dpf=each(403),
        finance=each(403),
        official=each(403),
        admin=each(403),
    ),
}


def api_client(world, persona):
    c = APIClient()
    if persona != "anonymous":
        c.force_authenticate(getattr(world.users, persona))
    return c


def _body(name):
    if name.endswith(("reject", "cancel")):
        return {"reason": "原因"}
    if name.endswith("clue-close"):
        return {"reason": "not_smd"}
    if name.endswith("clue-confirm"):
        from referrals.tests.factories import resident_id

        return {
            "name": "疑似者",
            "id_number": resident_id(901),
            "region": "990102001001",
            "address": "某村1号",
            "diagnosis": "schizophrenia",
            "diagnosis_hospital": "A专科医院",
        }
    return {}


def test_api_permissions(world, scene):
    cases = []
    for (name, method, attr), expected in API_CASES.items():
        for persona in PERSONAS:
            for i, position in enumerate(POSITIONS):
                value = expected[persona]
                status = value[i] if isinstance(value, tuple) else (value if i == 0 else None)
                if status is None:
                    continue
                args = args_for(scene, attr, position) if attr else []
                url = reverse(name, args=args)
                cases.append(
                    (f"{name} {position}", persona, method, url, _body(name), True, status)
                )
    assert _check(world, cases) == []


CREATE_TARGETS = {
    "own": ("pA1", "hc_a2", "990102001001"),
    "other_township": ("pB1", "hc_a1", "990102002001"),
    "other_county": ("pC1", "hc_a1", "990103001001"),
}


def _create_body(name, world, patients, position):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from referrals.tests import factories as rf

    patient, to_org, village = CREATE_TARGETS[position]
    if name == "referrals-api:referral-list":
        return {
            "patient": str(getattr(patients, patient).pk),
            "kind": "transfer",
            "to_organisation": getattr(world.org, to_org).pk,
            "reason": "迁居",
        }
    if name == "referrals-api:clue-list":
        return {"name": "疑似者", "region": village}
    rows = [{"姓名": "x", "身份证号": getattr(patients, patient).id_number}]
    data = rf.csv_bytes(rows, ["姓名", "身份证号"]) + position.encode()
    return {"partner": "police", "file": SimpleUploadedFile("list.csv", data, "text/csv")}


def test_api_create_permissions(world, patients, scene):
    cases = [
        (
            f"{name} {position}",
            persona,
            "post",
            reverse(name),
            _create_body(name, world, patients, position),
            True,
            expected[persona][i],
        )
        for name, expected in API_CREATE.items()
        for persona in PERSONAS
        for i, position in enumerate(POSITIONS)
    ]
    assert _check(world, cases) == []


def test_every_referrals_api_route_is_in_the_matrix():
    from django.urls import get_resolver

    resolver = get_resolver().namespace_dict["referrals-api"][1]
    names = {f"referrals-api:{n}" for n in resolver.reverse_dict if isinstance(n, str)}
    covered = {name for name, _m, _a in API_CASES} | set(API_CREATE)
    assert names == covered
