"""R1/R2 (G19): Redis down during requests, then back.

A gunicorn and (later) a Celery worker run against this test database with
their broker on a throwaway redis-server. With Redis stopped, recording a
risk-3 follow-up still answers 201 at once; the follow-up, its alert and its
outbox row are committed; patient reads and sign-in work (sessions live in
PostgreSQL); ``/healthz`` says 503. When Redis is back, the sweeper (beat
runs it every minute; here it is published once, as beat would) hands the
pending messages to a worker and every alert recipient is told exactly once,
however often the messages are delivered again.
"""

from __future__ import annotations

import re
import time
from datetime import timedelta

import pytest
import redis
import requests
from django.utils import timezone

from accounts.tests.factories import PASSWORD
from core.models import OutboxMessage
from core.outbox import SWEEP_AFTER
from followups.models import Alert, AlertRecipient, FollowUp, NotificationDelivery
from patients.tests import factories as pf
from tests.reliability.conftest import (
    CeleryWorker,
    Gunicorn,
    app_env,
    celery_call,
    wait_until,
)
from tests.reliability.test_concurrent_followups import _form

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

OUTAGE_PATIENTS = 5
FAST = 5.0  # seconds: "answers at once" with the broker down


def _told(effects) -> int:
    """Recipients told so far: the counts in the texts sent."""
    if not effects.exists():
        return 0
    return sum(int(m) for m in re.findall(r"有(\d+)条", effects.read_text(encoding="utf-8")))


def test_followups_saved_while_redis_is_down_are_notified_once_after_it_returns(
    world, test_database_url, redis_server, workdir, processes
):
    doctor = world.users.doctor_a
    people = [
        pf.patient(by=doctor, village="990102001001", name=f"断连患者{i}")
        for i in range(OUTAGE_PATIENTS)
    ]
    effects = workdir / "effects.txt"
    env = app_env(
        database_url=test_database_url,
        broker_url=redis_server.url,
        TEST_NOTIFICATION_BACKEND="tests.reliability.backends.FileBackend",
        RELIAB_EFFECTS_FILE=str(effects),
    )
    web = Gunicorn(env, workdir)
    processes.append(web)
    http = requests.Session()
    token = http.post(
        f"{web.base}/api/v1/auth/token/",
        json={"username": doctor.username, "password": PASSWORD},
        timeout=30,
    ).json()["token"]
    http.headers["Authorization"] = f"Token {token}"

    redis_server.stop()
    visit = timezone.localdate()
    for patient in people:
        started = time.monotonic()
        response = http.post(
            f"{web.base}/api/v1/followups/",
            json={"patient": str(patient.pk), **_form(visit), "risk_level": 3},
            timeout=30,
        )
        assert response.status_code == 201, response.text[:300]
        assert time.monotonic() - started < FAST
    last_saved = time.monotonic()
    # reads and a fresh sign-in do not need Redis
    assert http.get(f"{web.base}/api/v1/patients/{people[0].pk}/", timeout=30).status_code == 200
    browser = requests.Session()
    browser.get(f"{web.base}/accounts/login/", timeout=30)
    login = browser.post(
        f"{web.base}/accounts/login/",
        data={
            "username": doctor.username,
            "password": PASSWORD,
            "csrfmiddlewaretoken": browser.cookies["csrftoken"],
        },
        headers={"Referer": f"{web.base}/accounts/login/"},
        allow_redirects=False,
        timeout=30,
    )
    assert login.status_code == 302
    assert browser.get(f"{web.base}/patients/", timeout=30).status_code == 200
    health = http.get(f"{web.base}/healthz", timeout=30)
    assert (health.status_code, health.json()["broker"]) == (503, "down")

    alerts = Alert.objects.filter(patient__in=people, kind="risk")
    assert FollowUp.objects.filter(patient__in=people).count() == OUTAGE_PATIENTS
    assert alerts.count() == OUTAGE_PATIENTS
    recipients = AlertRecipient.objects.filter(alert__in=alerts)
    assert recipients.count() >= OUTAGE_PATIENTS
    pending = OutboxMessage.objects.filter(done_at__isnull=True, topic="alert.notify")
    assert pending.count() >= OUTAGE_PATIENTS
    assert NotificationDelivery.objects.filter(recipient__in=recipients).count() == 0

    # Redis stays down until the messages are due for the sweeper (the last
    # one included: the saves themselves take a few seconds), then returns
    time.sleep(max(0.0, SWEEP_AFTER.total_seconds() + 1 - (time.monotonic() - last_saved)))
    redis_server.start()
    recovered = time.monotonic()
    worker = CeleryWorker(env, workdir, "r2")
    processes.append(worker)
    celery_call(env, "core.tasks.outbox_sweep")
    wait_until(
        lambda: (
            NotificationDelivery.objects.filter(recipient__in=recipients).count()
            == recipients.count()
        ),
        timeout=120,
        interval=0.5,
        what="every recipient told",
    )
    assert time.monotonic() - recovered < timedelta(minutes=2).total_seconds()
    wait_until(lambda: _told(effects) == recipients.count(), timeout=30, what="the sends")
    assert not OutboxMessage.objects.filter(pk__in=pending.values("pk"), done_at__isnull=True)

    # delivered again (a second sweep, each message published twice): no-ops
    ids = list(OutboxMessage.objects.filter(topic="alert.notify").values_list("pk", flat=True))
    for pk in ids:
        celery_call(env, "core.tasks.outbox_deliver", pk)
    celery_call(env, "core.tasks.outbox_sweep")
    broker = redis.Redis.from_url(redis_server.url)
    wait_until(
        lambda: broker.llen("celery") == 0 and broker.hlen("unacked") == 0,
        timeout=60,
        what="the broker to drain",
    )
    deliveries = NotificationDelivery.objects.filter(recipient__in=recipients)
    assert deliveries.count() == recipients.count()
    assert deliveries.values("recipient", "channel").distinct().count() == recipients.count()
    assert _told(effects) == recipients.count()
    assert http.get(f"{web.base}/healthz", timeout=30).status_code == 200
