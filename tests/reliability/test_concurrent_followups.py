"""R7 / G17: no lost and no doubled follow-ups under concurrency.

50 concurrent writers each record 100 follow-ups through
``POST /api/v1/followups/`` of a real gunicorn, each with a client-generated
``Idempotency-Key``; 10 % of the requests are sent again with the same key
(half after the first answer, as a client retrying a timeout would; half at
the same moment, as a double-click would); a request whose connection drops
is sent again with its key, as a real client must. Exactly 5,000 rows, 0
duplicates, 0 server errors, and each patient's latest follow-up date is the
newest of its rows.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
import requests
from django.utils import timezone

from accounts.tests.factories import PASSWORD
from followups.models import FollowUp
from patients.models import Patient
from patients.tests import factories as pf
from tests.reliability.conftest import Gunicorn, app_env

WRITERS = 50
PER_WRITER = 100
RETRY_SHARE = 0.10

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def _form(visit) -> dict:
    return {
        "visit_date": visit.isoformat(),
        "mode": "home",
        "outcome": "completed",
        "contacts": ["patient"],
        "risk_level": 0,
        "symptoms": [],
        "insight": "complete",
        "sleep": "good",
        "diet": "good",
        "self_care": "good",
        "housework": "good",
        "work": "not_applicable",
        "learning": "fair",
        "social": "fair",
        "dangerous_behaviours": {},
        "lock_status": "none",
        "hospitalization": "none",
        "medication_compliance": "regular",
        "treatment_effect": "improved",
        "rehab_measures": ["daily_living"],
    }


def test_50_writers_100_followups_with_retries_give_exactly_5000_rows(
    world, test_database_url, workdir, processes
):
    doctor = world.users.doctor_a
    patients = [
        pf.patient(by=doctor, village="990102001001", name=f"并发患者{i}") for i in range(WRITERS)
    ]
    server = Gunicorn(
        app_env(database_url=test_database_url, broker_url="memory://"),
        workdir,
        workers=4,
        threads=4,
    )
    processes.append(server)
    token = requests.post(
        f"{server.base}/api/v1/auth/token/",
        json={"username": doctor.username, "password": PASSWORD},
        timeout=30,
    ).json()["token"]

    rng = random.Random(7)
    today = timezone.localdate()
    plan = []  # (writer, key, body, retry: None | "after" | "together")
    for w, patient in enumerate(patients):
        for j in range(PER_WRITER):
            visit = today - timedelta(days=3 * (PER_WRITER - j))
            retry = None
            if rng.random() < RETRY_SHARE:
                retry = rng.choice(("after", "together"))
            plan.append((w, uuid.uuid4(), {"patient": str(patient.pk), **_form(visit)}, retry))

    statuses: Counter = Counter()
    transport_retries: list = []
    first_ids: dict[uuid.UUID, set[str]] = {}
    lock = threading.Lock()
    local = threading.local()

    def post(key, body):
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
            session.headers["Authorization"] = f"Token {token}"
        for attempt in range(5):
            try:
                response = session.post(
                    f"{server.base}/api/v1/followups/",
                    json=body,
                    headers={"Idempotency-Key": str(key)},
                    timeout=60,
                )
                break
            except requests.ConnectionError:
                # a dropped connection (e.g. a keep-alive closed under the
                # client): the client cannot know whether the row was saved,
                # so it sends the same request again with the same key
                if attempt == 4:
                    raise
                with lock:
                    transport_retries.append(key)
        with lock:
            statuses[response.status_code] += 1
            if response.status_code == 201:
                first_ids.setdefault(key, set()).add(response.json()["id"])
        return response.status_code

    def writer(w: int) -> None:
        with ThreadPoolExecutor(2) as pair:
            for _, key, body, retry in (row for row in plan if row[0] == w):
                if retry == "together":
                    list(pair.map(lambda _: post(key, body), range(2)))
                else:
                    post(key, body)
                    if retry == "after":
                        post(key, body)

    started = time.monotonic()
    with ThreadPoolExecutor(WRITERS) as pool:
        list(pool.map(writer, range(WRITERS)))
    print(
        f"\nR7: {sum(statuses.values())} answers in {time.monotonic() - started:.0f}s, "
        f"{len(transport_retries)} resent after a dropped connection"
    )

    retries = sum(1 for row in plan if row[3])
    assert statuses == Counter({201: len(plan) + retries}), statuses
    # every retry answered with the first row, never a second one
    assert all(len(ids) == 1 for ids in first_ids.values())
    assert len(first_ids) == WRITERS * PER_WRITER
    rows = FollowUp.objects.filter(patient__in=patients)
    assert rows.count() == WRITERS * PER_WRITER
    assert rows.values("idempotency_key").distinct().count() == WRITERS * PER_WRITER
    last_visit = today - timedelta(days=3)
    for patient in Patient.objects.filter(pk__in=[p.pk for p in patients]):
        assert FollowUp.objects.filter(patient=patient).count() == PER_WRITER
        assert patient.last_followup_date == last_visit
