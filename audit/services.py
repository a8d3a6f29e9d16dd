"""Writing audit rows. Synchronous, in the caller's transaction (never via Celery)."""

from __future__ import annotations

import hashlib
import json

from django.db import connection, transaction

from audit.models import AuditEvent

# Advisory-lock key that serialises appends to the hash chain.
_CHAIN_LOCK = 0x6A66_7431


def _canonical(ev: AuditEvent) -> str:
    return json.dumps(
        {
            "at": ev.at.isoformat() if ev.at else "",
            "actor": ev.actor_id,
            "action": ev.action,
            "type": ev.object_type,
            "id": ev.object_id,
            "detail": ev.detail,
            "ip": ev.ip,
        },
        sort_keys=True,
        ensure_ascii=False,
        default=str,
    )


def chain_hash(prev_hash: str, ev: AuditEvent) -> str:
    return hashlib.sha256((prev_hash + _canonical(ev)).encode("utf-8")).hexdigest()


def client_ip(request) -> str | None:
    if request is None:
        return None
    return request.META.get("REMOTE_ADDR") or None


def audit_record(
    *,
    actor,
    action: str,
    object_type: str = "",
    object_id: str | int = "",
    detail: dict | None = None,
    request=None,
) -> AuditEvent:
    """Append one audit row to the chain. Raises if the store refuses (fail closed)."""
    user = actor if (actor is not None and getattr(actor, "is_authenticated", False)) else None
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cur:
                cur.execute("SELECT pg_advisory_xact_lock(%s)", [_CHAIN_LOCK])
        last = AuditEvent.objects.order_by("-id").values_list("hash", flat=True).first() or ""
        ev = AuditEvent(
            actor=user,
            actor_username=user.get_username() if user else "",
            action=action,
            object_type=object_type,
            object_id=str(object_id),
            detail=detail or {},
            ip=client_ip(request),
            prev_hash=last,
        )
        ev.hash = chain_hash(last, ev)
        ev.save(force_insert=True)
    return ev


def verify_chain() -> tuple[int, int | None]:
    """Walk the chain; return (rows checked, id of the first broken row or None)."""
    prev = ""
    n = 0
    for ev in AuditEvent.objects.order_by("id").iterator(chunk_size=2000):
        if ev.prev_hash != prev or ev.hash != chain_hash(prev, ev):
            return n, ev.pk
        prev = ev.hash
        n += 1
    return n, None
