"""The transactional outbox (SECURITY.md 4.2).

``outbox_put`` is called inside the business transaction; the message is
handed to Celery on commit. If the broker is down the row simply stays
pending, and ``core.tasks.outbox_sweep`` (beat, every minute) hands it over
again. Handlers must be idempotent: a message may be delivered twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from core.models import OutboxMessage

log = logging.getLogger(__name__)

# topic → handler(payload) ; registered by apps at import time
HANDLERS: dict[str, Callable[[dict], None]] = {}


def handler(topic: str):
    def register(fn):
        HANDLERS[topic] = fn
        return fn

    return register


def outbox_put(*, topic: str, payload: dict) -> OutboxMessage:
    """Store a message in the caller's transaction; dispatch after commit."""
    msg = OutboxMessage.objects.create(topic=topic, payload=payload)
    transaction.on_commit(lambda: dispatch(msg.pk))
    return msg


def dispatch(message_id: int) -> None:
    """Hand one message to the broker; a broker failure leaves it pending."""
    from core.tasks import outbox_deliver

    try:
        outbox_deliver.delay(message_id)
        OutboxMessage.objects.filter(pk=message_id, dispatched_at__isnull=True).update(
            dispatched_at=timezone.now()
        )
    except Exception as exc:  # noqa: BLE001 - broker down: the sweeper retries
        log.warning("outbox: dispatch of message %s deferred (%s)", message_id, type(exc).__name__)


def deliver(message_id: int) -> bool:
    """Run the handler of one message once; True when it is done.

    The row is locked (skip_locked) so two workers never run the same message
    at once; the handler's own unique constraints make a re-run harmless.
    """
    with transaction.atomic():
        msg = (
            OutboxMessage.objects.select_for_update(skip_locked=True)
            .filter(pk=message_id, done_at__isnull=True)
            .first()
        )
        if msg is None:
            return False
        msg.attempts += 1
        try:
            with transaction.atomic():
                HANDLERS[msg.topic](msg.payload)
        except Exception as exc:
            msg.last_error = type(exc).__name__[:200]
            msg.save(update_fields=["attempts", "last_error"])
            raise
        msg.done_at = timezone.now()
        msg.save(update_fields=["attempts", "done_at"])
        return True


def pending(older_than: timedelta = timedelta(seconds=30)):
    cutoff = timezone.now() - older_than
    return OutboxMessage.objects.filter(done_at__isnull=True, created_at__lt=cutoff)
