"""Developer helper, not part of the suite (the file name does not match
``test_*.py``): print what every persona gets on routes, to help write the
matrix entry of a new route. Nothing here is an expectation.

    DATABASE_URL=... .venv/bin/pytest tests/authz/observe_routes.py -q -s \
        -p no:randomly [--routes patients:detail,subsidies:]

Prints one line per route × method × persona: the status at own/other/county.
"""

from __future__ import annotations

import os

import pytest

from tests.authz.matrix import MATRIX, PERSONAS, Entry
from tests.authz.objects import POSITIONS, Objects
from tests.authz.routes import all_routes, is_admin_site
from tests.authz.runner import Personas, send, url_for

# A first guess of the object kind behind a kwarg, for routes not yet in the
# matrix: (route name prefix, kwarg) → kind.
GUESS = [
    ("patients:", "pk", "patient"),
    ("patients:", "member_id", "care_member"),
    ("audit:patient-access", "pk", "patient"),
    ("audit:breakglass", "pk", "breakglass"),
    ("accounts:apikey", "pk", "apikey"),
    ("accounts:staff", "pk", "staff"),
    ("subsidies:award", "pk", "award"),
    ("subsidies:batch", "pk", "batch"),
    ("subsidies:settlement", "pk", "settlement"),
    ("subsidies:episode", "pk", "episode"),
    ("patients-api:", "id", "patient"),
    ("followups:", "pk", "followup"),
    ("alerts:", "pk", "alert"),
    ("followups-api:followup", "id", "followup"),
    ("followups-api:alert", "id", "alert"),
    ("accounts-api:region", "code", "region"),
    ("accounts-api:organisation", "pk", "organisation"),
    ("subsidies-api:settlement", "pk", "settlement"),
    ("subsidies-api:reward-award", "pk", "award"),
    ("subsidies-api:reward-batch", "pk", "batch"),
    ("referrals:", "pk", "referral"),
    ("referrals-api:referral", "pk", "referral"),
    ("", "patient_id", "patient"),
]


def _guess(route) -> dict:
    kinds = {}
    for name in route.kwargs:
        for prefix, kwarg, kind in GUESS:
            if kwarg == name and route.name.startswith(prefix):
                kinds[name] = kind
                break
        else:
            uuid_kw = f"<uuid:{name}>" in route.pattern
            kinds[name] = "missing_uuid" if uuid_kw else "missing_int"
    return kinds


@pytest.mark.django_db
def test_observe(authz):
    wanted = [w for w in os.environ.get("AUTHZ_ROUTES", "").split(",") if w]
    personas = Personas(authz.users)
    objs = Objects(authz)
    for route in all_routes():
        if is_admin_site(route):
            continue
        if wanted and not any(route.name.startswith(w) for w in wanted):
            continue
        if not wanted and route.name in MATRIX:
            continue
        entry = Entry(methods={}, kwargs=_guess(route))
        methods = sorted(route.methods) if route.methods is not None else ["GET", "POST"]
        positions = POSITIONS if route.kwargs else (None,)
        for method in methods:
            print(f"\n{route.name} {method} /{route.pattern}")
            for persona in PERSONAS:
                statuses = []
                for pos in positions:
                    try:
                        url = url_for(route, entry, objs, pos)
                    except Exception as exc:  # noqa: BLE001
                        statuses.append(f"ERR {exc}")
                        continue
                    answer = send(
                        personas.client(persona),
                        method,
                        url,
                        api=route.is_api,
                        body=entry.body.get(method),
                        headers=None,
                    )
                    statuses.append(
                        f"{answer.status}{'→' + answer.location if answer.location else ''}"
                    )
                print(f"    {persona:15} {'  '.join(statuses)}")
