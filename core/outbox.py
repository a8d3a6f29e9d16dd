"""The transactional outbox (SECURITY.md 4.2).

``outbox_put`` is called inside the business transaction; the message is
handed to Celery on commit. If the broker is down the row simply stays
pending, and ``core.tasks.outbox_sweep`` (beat, every minute) runs it
later. Handlers must be idempotent: a message may be delivered twice, so
each side effect is guarded by a unique constraint.

A handler returns ``False`` when it finished only part of its work (what
it did is kept, the message stays pending and is retried); an exception
rolls back everything the handler did.

Dispatch marks the row (``dispatched_at``, committed on its own) *before*
handing it to the broker, so a worker that picks the message up at once
never finds the row locked by the dispatcher. A worker that does find it
locked (another worker or the sweeper is running it) raises MessageBusy and
the task retries a few seconds later, instead of reporting success while
the message is still pending.
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
HANDLERS: dict[str, Callable[[dict], bool | None]] = {}

# After this many failed attempts a message waits for an operator
# (``last_error`` says why) instead of being retried every minute.
MAX_ATTEMPTS = 20
SWEEP_AFTER = timedelta(seconds=30)


class DeliveryFailed(Exception):
    """A handler failed or finished only part of its work; retry later."""


class MessageBusy(Exception):
    """Another transaction holds the message row: try again shortly."""


def handler(topic: str):
    def register(fn):
        HANDLERS[topic] = fn
        return fn

    return register


def outbox_put(*, topic: str, payload: dict) -> OutboxMessage:
    """Store a message in the caller's transaction; dispatch after commit.

    ``payload`` carries ids only, never personal data (it travels through
    the broker)."""
    msg = OutboxMessage.objects.create(topic=topic, payload=payload)
    transaction.on_commit(lambda: dispatch(msg.pk))
    return msg


def dispatch(message_id: int) -> None:
    """Hand one message to the broker; a broker failure leaves it pending.

    The row is marked first, in its own committed step: were it updated
    after ``delay()``, a worker starting at once would find it locked by
    that UPDATE and skip it."""
    from core.tasks import outbox_deliver

    with transaction.atomic():
        marked = OutboxMessage.objects.filter(pk=message_id, dispatched_at__isnull=True).update(
            dispatched_at=timezone.now()
        )
    try:
        outbox_deliver.delay(message_id)
    except Exception as exc:  # noqa: BLE001 - broker down: the sweeper retries
        log.warning("outbox: dispatch of message %s deferred (%s)", message_id, type(exc).__name__)
        if marked:
            OutboxMessage.objects.filter(pk=message_id).update(dispatched_at=None)


def deliver(message_id: int) -> bool:
    """Run the handler of one message; True when it is done now, False when
    it was done already (or no longer exists).

    The row is locked (skip_locked) so two workers never run the same
    message at once; the handler's own unique constraints make a re-run
    harmless. Raises MessageBusy when another transaction holds the row
    (the caller retries shortly), DeliveryFailed (after recording the
    attempt) when the handler failed or left work for later.
    """
    failure: str | None = None
    with transaction.atomic():
        msg = (
            OutboxMessage.objects.select_for_update(skip_locked=True)
            .filter(pk=message_id, done_at__isnull=True)
            .first()
        )
        if msg is None:
            if OutboxMessage.objects.filter(pk=message_id, done_at__isnull=True).exists():
                raise MessageBusy(f"outbox message {message_id} is locked")
            return False
        msg.attempts += 1
        try:
            with transaction.atomic():
                complete = HANDLERS[msg.topic](msg.payload) is not False
        except Exception as exc:  # noqa: BLE001 - recorded on the row, retried
            log.warning("outbox: message %s failed (%s)", msg.pk, type(exc).__name__)
            complete, failure = False, type(exc).__name__
        if complete:
            msg.done_at = timezone.now()
            msg.last_error = ""
            msg.save(update_fields=["attempts", "done_at", "last_error"])
            return True
        failure = failure or "incomplete"
        msg.last_error = failure[:200]
        msg.save(update_fields=["attempts", "last_error"])
    raise DeliveryFailed(f"outbox message {message_id}: {failure}")


def pending(older_than: timedelta = SWEEP_AFTER):
    """Messages the broker may have lost: not done, not given up on."""
    cutoff = timezone.now() - older_than
    return OutboxMessage.objects.filter(
        done_at__isnull=True, created_at__lt=cutoff, attempts__lt=MAX_ATTEMPTS
    )
