from __future__ import annotations

import logging

from celery import shared_task

from core import outbox

log = logging.getLogger(__name__)


@shared_task(acks_late=True, reject_on_worker_lost=True, max_retries=5, default_retry_delay=30)
def outbox_deliver(message_id: int) -> None:
    """Deliver one outbox message (ids only in the payload)."""
    _load_handlers()
    outbox.deliver(message_id)


@shared_task(acks_late=True)
def outbox_sweep(limit: int = 1000) -> int:
    """Re-run what the broker lost: messages still pending after 30 s."""
    _load_handlers()
    n = 0
    for pk in outbox.pending().order_by("created_at").values_list("pk", flat=True)[:limit]:
        try:
            outbox.deliver(pk)
            n += 1
        except Exception:  # noqa: BLE001 - counted in the row, retried next sweep
            log.warning("outbox: message %s failed, will retry", pk)
    return n


def _load_handlers() -> None:
    # Handlers register on import of each app's ``handlers`` module.
    from importlib import import_module

    from django.apps import apps
    from django.utils.module_loading import module_has_submodule

    for config in apps.get_app_configs():
        if module_has_submodule(config.module, "handlers"):
            import_module(f"{config.name}.handlers")
