"""The transactional outbox (SECURITY.md 4.2) with the alert notifications
it carries: one message per organisation, exactly once per recipient and
channel, nothing lost when the broker is down, no personal data in texts."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from core import outbox
from core.models import OutboxMessage, TaskRun
from core.notify import MemoryBackend
from core.tasks import outbox_sweep
from followups.handlers import alert_notify, notification_text
from followups.models import AlertRecipient, NotificationDelivery
from followups.services.scan import followup_scan
from followups.tests.factories import record
from patients.models import Patient
from patients.tests import factories as pf

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _clear_memory_backend():
    MemoryBackend.outbox.clear()
    yield
    MemoryBackend.outbox.clear()


def _overdue(world, n):
    due = timezone.localdate() - timedelta(days=2)
    for i in range(n):
        p = pf.patient(by=world.users.doctor_a, village="990102001002", name=f"逾期{i}")
        Patient.objects.filter(pk=p.pk).update(next_followup_due=due)


@pytest.mark.postgres
def test_a_scan_tells_each_organisation_once_with_a_count(
    world, patients, django_capture_on_commit_callbacks
):
    _overdue(world, 12)
    with django_capture_on_commit_callbacks(execute=True):
        followup_scan()
    assert len(MemoryBackend.outbox) == 1
    message = MemoryBackend.outbox[0]
    assert message.organisation_id == world.org.hc_a1.pk
    assert "12" in message.text and "逾期未随访" in message.text
    assert NotificationDelivery.objects.count() == 12
    assert OutboxMessage.objects.get().done_at is not None


def test_redelivery_of_the_same_message_sends_nothing_twice(
    world, patients, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        record(by=world.users.doctor_a, patient=patients.pA1, risk_level=3)
    msg = OutboxMessage.objects.get()
    assert len(MemoryBackend.outbox) == 2
    alert_notify(msg.payload)
    alert_notify(msg.payload)
    assert len(MemoryBackend.outbox) == 2
    assert NotificationDelivery.objects.count() == 2
    assert outbox.deliver(msg.pk) is False  # already done


def test_texts_never_name_the_patient_or_the_disorder(world, patients):
    text = notification_text({"risk": 1, "lost": 2})
    assert text == "精防通提醒：您单位有3条新的预警待处理（失访2条，高风险1条），请登录系统查看。"
    for word in (patients.pA1.name, "精神分裂", "诊断", patients.pA1.id_number):
        assert word not in text


def test_broker_down_leaves_the_message_pending_and_the_sweeper_sends_it(
    world, patients, django_capture_on_commit_callbacks, monkeypatch
):
    from core import tasks

    def broker_down(*args, **kwargs):
        raise ConnectionError("redis down")

    monkeypatch.setattr(tasks.outbox_deliver, "delay", broker_down)
    with django_capture_on_commit_callbacks(execute=True):
        fu = record(by=world.users.doctor_a, patient=patients.pA1, risk_level=3)
    assert fu.pk  # the business write committed
    msg = OutboxMessage.objects.get()
    assert msg.dispatched_at is None and msg.done_at is None
    assert MemoryBackend.outbox == []
    assert outbox_sweep() == 0  # too young: the broker may still deliver it
    OutboxMessage.objects.update(created_at=timezone.now() - timedelta(minutes=2))
    assert outbox_sweep() == 1
    assert len(MemoryBackend.outbox) == 2
    assert OutboxMessage.objects.get().done_at is not None
    assert TaskRun.objects.get(job="core.outbox_sweep").counts == {
        "pending": 1,
        "delivered": 1,
        "failed": 0,
    }


def test_a_failed_send_keeps_the_others_and_retries_only_the_failed(
    world, patients, django_capture_on_commit_callbacks, monkeypatch
):
    from core import tasks

    monkeypatch.setattr(tasks.outbox_deliver, "delay", lambda *a, **k: None)
    with django_capture_on_commit_callbacks(execute=True):
        record(by=world.users.doctor_a, patient=patients.pA1, risk_level=3)
    msg = OutboxMessage.objects.get()
    police = world.org.ps_a1.pk
    real_send = MemoryBackend.send

    def flaky(self, message):
        if message.organisation_id == police:
            raise OSError("gateway timeout")
        real_send(self, message)

    monkeypatch.setattr(MemoryBackend, "send", flaky)
    with pytest.raises(outbox.DeliveryFailed):
        outbox.deliver(msg.pk)
    msg.refresh_from_db()
    assert (msg.attempts, msg.last_error, msg.done_at) == (1, "incomplete", None)
    assert [m.organisation_id for m in MemoryBackend.outbox] == [world.org.gov_a1.pk]
    monkeypatch.setattr(MemoryBackend, "send", real_send)
    assert outbox.deliver(msg.pk) is True
    assert sorted(m.organisation_id for m in MemoryBackend.outbox) == sorted(
        [world.org.gov_a1.pk, police]
    )
    assert NotificationDelivery.objects.count() == AlertRecipient.objects.count() == 2


def test_a_handler_error_is_recorded_and_rolled_back(world, monkeypatch):
    calls = []

    def broken(payload):
        calls.append(payload)
        raise RuntimeError("boom")

    monkeypatch.setitem(outbox.HANDLERS, "test.broken", broken)
    msg = OutboxMessage.objects.create(topic="test.broken", payload={"x": 1})
    with pytest.raises(outbox.DeliveryFailed):
        outbox.deliver(msg.pk)
    msg.refresh_from_db()
    assert (msg.attempts, msg.last_error) == (1, "RuntimeError")
    OutboxMessage.objects.filter(pk=msg.pk).update(attempts=outbox.MAX_ATTEMPTS)
    OutboxMessage.objects.update(created_at=timezone.now() - timedelta(minutes=5))
    assert not outbox.pending().exists()  # given up on: waits for an operator


def test_the_email_channel_mails_the_organisations_staff(
    world, patients, settings, mailoutbox, django_capture_on_commit_callbacks
):
    settings.NOTIFICATION_BACKEND = "core.notify.EmailBackend"
    officer = world.users.police_a
    officer.email = "police-a@example.org"
    officer.save(update_fields=["email"])
    with django_capture_on_commit_callbacks(execute=True):
        record(by=world.users.doctor_a, patient=patients.pA1, risk_level=4)
    assert [m.to for m in mailoutbox] == [["police-a@example.org"]]
    body = mailoutbox[0].body
    assert "高风险" in body and patients.pA1.name not in body
    assert set(NotificationDelivery.objects.values_list("channel", flat=True)) == {"email"}


def test_dispatch_marks_the_row_before_the_worker_can_pick_it_up(monkeypatch):
    """The mark is written (and committed) before ``delay()``: a worker that
    starts at once never meets the dispatcher's UPDATE lock."""
    from core import tasks

    seen = []
    msg = OutboxMessage.objects.create(topic="test.noop", payload={})
    monkeypatch.setattr(
        tasks.outbox_deliver,
        "delay",
        lambda pk: seen.append(OutboxMessage.objects.get(pk=pk).dispatched_at),
    )
    outbox.dispatch(msg.pk)
    assert len(seen) == 1 and seen[0] is not None
    msg.refresh_from_db()
    assert msg.dispatched_at == seen[0]


def test_a_broker_failure_unmarks_the_row(monkeypatch):
    from core import tasks

    def broker_down(*args, **kwargs):
        raise ConnectionError("redis down")

    msg = OutboxMessage.objects.create(topic="test.noop", payload={})
    monkeypatch.setattr(tasks.outbox_deliver, "delay", broker_down)
    outbox.dispatch(msg.pk)
    msg.refresh_from_db()
    assert msg.dispatched_at is None and msg.done_at is None


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_worker_that_finds_the_row_locked_retries_instead_of_succeeding(monkeypatch):
    """Another transaction holds the row (the dispatcher, the sweeper or a
    second worker): deliver() says so and the task retries shortly; once the
    row is free the message is delivered."""
    import threading

    from django.db import connection, transaction

    from core import tasks

    calls = []
    monkeypatch.setitem(outbox.HANDLERS, "test.count", lambda payload: calls.append(payload))
    msg = OutboxMessage.objects.create(topic="test.count", payload={"n": 1})
    locked, release = threading.Event(), threading.Event()

    def hold_the_row():
        try:
            with transaction.atomic():
                OutboxMessage.objects.select_for_update().get(pk=msg.pk)
                locked.set()
                release.wait(10)
        finally:
            connection.close()

    holder = threading.Thread(target=hold_the_row)
    holder.start()
    assert locked.wait(10)
    try:
        with pytest.raises(outbox.MessageBusy):
            outbox.deliver(msg.pk)
        retried = []

        def retry(**kwargs):
            retried.append(kwargs["countdown"])
            raise RuntimeError("retry")

        monkeypatch.setattr(tasks.outbox_deliver, "retry", retry)
        with pytest.raises(RuntimeError, match="retry"):
            tasks.outbox_deliver.run(msg.pk)
        assert retried == [tasks.BUSY_RETRY_SECONDS]
        assert calls == [] and OutboxMessage.objects.get(pk=msg.pk).done_at is None
    finally:
        release.set()
        holder.join(10)
    assert outbox.deliver(msg.pk) is True
    assert calls == [{"n": 1}]
    assert outbox.deliver(msg.pk) is False  # done: nothing to retry
