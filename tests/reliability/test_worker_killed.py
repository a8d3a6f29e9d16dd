"""R4/R5 (G20): a worker killed mid-task leaves no duplicate effect.

Real ``celery -A config worker`` processes (acks_late, reject_on_worker_lost,
prefetch 1; a short visibility timeout so Redis redelivers within the test)
deliver an alert's outbox message. The notification channel sleeps inside
its side-effect window — after the delivery row is written, before the send
and the commit — and the test SIGKILLs the worker there:

- the pool child only: the worker's main process sees the child die and
  requeues the message (reject_on_worker_lost); a new child runs it again;
- the whole worker (main and child, a cold kill): the message stays unacked
  in Redis until the visibility timeout, then another worker gets it.

Either way every recipient is told exactly once (effect count = recipients,
one delivery row each), and publishing the message again changes nothing.
"""

from __future__ import annotations

import os
import signal

import pytest
import redis

from core import outbox
from core.models import OutboxMessage
from followups.models import Alert, AlertRecipient, NotificationDelivery
from followups.tests.factories import record
from patients.tests import factories as pf
from tests.reliability.conftest import CeleryWorker, app_env, celery_call, wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

VISIBILITY_TIMEOUT = 5


def _risk_alert_message(doctor, name: str):
    """A risk-3 follow-up (committed) whose alert message is left pending."""
    patient = pf.patient(by=doctor, village="990102001001", name=name)
    before = set(OutboxMessage.objects.values_list("pk", flat=True))
    record(by=doctor, patient=patient, risk_level=3)
    alert = Alert.objects.get(patient=patient, kind="risk")
    message = OutboxMessage.objects.exclude(pk__in=before).get(topic="alert.notify")
    return alert, message


def _lines(path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


def _env(test_database_url, redis_server, workdir, phase: str) -> tuple[dict, object]:
    markers = workdir / phase
    markers.mkdir()
    effects = workdir / f"effects-{phase}.txt"
    env = app_env(
        database_url=test_database_url,
        broker_url=redis_server.url,
        CELERY_VISIBILITY_TIMEOUT=str(VISIBILITY_TIMEOUT),
        TEST_NOTIFICATION_BACKEND="tests.reliability.backends.FileBackend",
        RELIAB_EFFECTS_FILE=str(effects),
        RELIAB_MARKER_DIR=str(markers),
        RELIAB_SEND_SLEEP="60",
    )
    return env, (markers / "started", effects)


def _assert_told_once(alert, effects, env, message) -> None:
    recipients = AlertRecipient.objects.filter(alert=alert)
    assert recipients.count() >= 1
    wait_until(
        lambda: (
            NotificationDelivery.objects.filter(recipient__in=recipients).count()
            == recipients.count()
        ),
        timeout=90,
        interval=0.5,
        what="the redelivered message to be handled",
    )
    wait_until(lambda: len(_lines(effects)) == recipients.count(), timeout=30, what="the sends")
    # the same message once more: a no-op
    celery_call(env, "core.tasks.outbox_deliver", message.pk)
    broker = redis.Redis.from_url(env["CELERY_BROKER_URL"])
    wait_until(
        lambda: broker.llen("celery") == 0 and broker.hlen("unacked") == 0,
        timeout=60,
        what="the broker to drain",
    )
    assert len(_lines(effects)) == recipients.count()
    assert NotificationDelivery.objects.filter(recipient__in=recipients).count() == (
        recipients.count()
    )
    message.refresh_from_db()
    assert message.done_at is not None


def test_killing_the_pool_child_mid_send_delivers_exactly_once(
    world, test_database_url, redis_server, workdir, processes, monkeypatch
):
    monkeypatch.setattr(outbox, "dispatch", lambda message_id: None)  # the test publishes
    alert, message = _risk_alert_message(world.users.doctor_a, "杀子进程患者")
    env, (started, effects) = _env(test_database_url, redis_server, workdir, "child")
    worker = CeleryWorker(env, workdir, "child")
    processes.append(worker)

    celery_call(env, "core.tasks.outbox_deliver", message.pk)
    wait_until(started.exists, timeout=60, what="the send to start")
    child = int(started.read_text())
    assert child in worker.children()
    os.kill(child, signal.SIGKILL)

    _assert_told_once(alert, effects, env, message)
    assert worker.proc.poll() is None  # the main process survived and went on


def test_killing_the_whole_worker_mid_send_redelivers_after_the_visibility_timeout(
    world, test_database_url, redis_server, workdir, processes, monkeypatch
):
    monkeypatch.setattr(outbox, "dispatch", lambda message_id: None)
    alert, message = _risk_alert_message(world.users.doctor_a, "冷杀进程患者")
    env, (started, effects) = _env(test_database_url, redis_server, workdir, "cold")
    first = CeleryWorker(env, workdir, "cold1")
    processes.append(first)

    celery_call(env, "core.tasks.outbox_deliver", message.pk)
    wait_until(started.exists, timeout=60, what="the send to start")
    first.stop(signal.SIGKILL)  # main process and child at once: nothing is acked
    assert _lines(effects) == []
    assert not NotificationDelivery.objects.filter(recipient__alert=alert).exists()

    second = CeleryWorker(env, workdir, "cold2")
    processes.append(second)
    _assert_told_once(alert, effects, env, message)
