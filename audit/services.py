"""Writing audit rows. Synchronous, in the caller's transaction (never via Celery)."""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Q
from django.utils import timezone

from audit.models import AuditEvent

# Advisory-lock key that serialises appends to the hash chain.
_CHAIN_LOCK = 0x6A66_7431
# How new rows are hashed (AuditEvent.hash_version): 2 = keyed, with the
# account name. Version 1 rows (unkeyed SHA-256) are verified, never written.
CHAIN_VERSION = 2


def chain_key() -> bytes:
    """The key of the chain's HMAC: ``AUDIT_CHAIN_KEY`` (required in
    production); derived from SECRET_KEY in development and the demo."""
    key = settings.AUDIT_CHAIN_KEY
    if key:
        return key.encode("utf-8")
    return hmac.new(
        settings.SECRET_KEY.encode("utf-8"), b"jft-audit-chain", hashlib.sha256
    ).digest()


def _canonical_v1(ev: AuditEvent) -> str:
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


def _canonical_v2(ev: AuditEvent) -> str:
    return json.dumps(
        {
            "v": 2,
            "at": ev.at.isoformat() if ev.at else "",
            "actor": ev.actor_id,
            "username": ev.actor_username,
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
    """The row's hash by its own ``hash_version``; "" for an unknown version
    (which then never verifies)."""
    if ev.hash_version == 1:
        return hashlib.sha256((prev_hash + _canonical_v1(ev)).encode("utf-8")).hexdigest()
    if ev.hash_version == 2:
        message = (prev_hash + "\n" + _canonical_v2(ev)).encode("utf-8")
        return hmac.new(chain_key(), message, hashlib.sha256).hexdigest()
    return ""


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
            hash_version=CHAIN_VERSION,
        )
        ev.hash = chain_hash(last, ev)
        ev.save(force_insert=True)
    return ev


def audit_record_many(
    *,
    actor,
    action: str,
    object_type: str,
    object_ids,
    detail: dict | None = None,
    request=None,
) -> int:
    """Append one audit row per object (same actor, action and detail) to
    the chain under one lock and in one insert: a bulk write (a roster
    import) audits every record it creates without taking the chain lock
    once per record. Returns the rows appended; raises if the store refuses."""
    return audit_record_batch(
        actor=actor,
        rows=[(action, object_type, object_id, detail) for object_id in object_ids],
        request=request,
    )


def audit_record_batch(*, actor, rows, request=None) -> int:
    """Append ``rows`` — (action, object_type, object_id, detail) each — of
    one actor to the chain under one lock and in one insert (a search and
    the patients it lists, say). Returns the rows appended."""
    rows = [(a, t, str(i), d) for a, t, i, d in rows]
    if not rows:
        return 0
    user = actor if (actor is not None and getattr(actor, "is_authenticated", False)) else None
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cur:
                cur.execute("SELECT pg_advisory_xact_lock(%s)", [_CHAIN_LOCK])
        last = AuditEvent.objects.order_by("-id").values_list("hash", flat=True).first() or ""
        at = timezone.now()
        events = []
        for action, object_type, object_id, detail in rows:
            ev = AuditEvent(
                at=at,
                actor=user,
                actor_username=user.get_username() if user else "",
                action=action,
                object_type=object_type,
                object_id=object_id,
                detail=detail or {},
                ip=client_ip(request),
                prev_hash=last,
                hash_version=CHAIN_VERSION,
            )
            ev.hash = last = chain_hash(last, ev)
            events.append(ev)
        # one INSERT per batch, rows in chain order (ids ascend with it)
        AuditEvent.objects.bulk_create(events, batch_size=1000)
    return len(events)


@dataclass
class ChainReport:
    """What ``verify_chain`` found: rows checked, the first broken row (or
    None), and the checkpoints matched; ``problem`` says what is wrong."""

    checked: int = 0
    broken: int | None = None
    problem: str = ""
    checkpoints_matched: int = 0
    head: tuple[int, str] = (0, "")

    @property
    def ok(self) -> bool:
        return not self.problem


def verify_chain(checkpoints: dict[int, str] | None = None) -> ChainReport:
    """Walk the chain from the first row. Each row must link to the one
    before and hash to its stored hash (by its own version); no version-1
    row may follow a keyed one (a downgrade); and each checkpoint (row id →
    hash, from ``audit.checkpoints``) must name a row that is still there
    with that hash, so removing the newest rows — which the chain alone
    cannot show — is found too."""
    checkpoints = dict(checkpoints or {})
    report = ChainReport()
    prev = ""
    keyed = False
    for ev in AuditEvent.objects.order_by("id").iterator(chunk_size=2000):
        if ev.hash_version == 1 and keyed:
            report.broken, report.problem = ev.pk, "unkeyed row after keyed rows"
            return report
        if ev.prev_hash != prev or ev.hash != chain_hash(prev, ev):
            report.broken, report.problem = ev.pk, "row changed, removed or inserted"
            return report
        keyed = keyed or ev.hash_version >= 2
        expected = checkpoints.pop(ev.pk, None)
        if expected is not None:
            if expected != ev.hash:
                report.broken, report.problem = ev.pk, "row differs from its checkpoint"
                return report
            report.checkpoints_matched += 1
        prev = ev.hash
        report.checked += 1
        report.head = (ev.pk, ev.hash)
    missing = sorted(seq for seq in checkpoints if seq > 0)
    if missing:
        report.broken = missing[0]
        report.problem = "rows named by a checkpoint are missing (tail removed or truncated)"
    return report


# Audit actions that mean "saw one patient's data" (patients.services
# patient_record_view, patient_records_listed and friends): the record, a
# row of a list or search, a follow-up, a subsidy file. The unusual-access
# scan counts the distinct patients of these and of every other ``*.view``
# ``*.list`` or ``*.form`` row recorded against a patient (READ_SUFFIXES).
PATIENT_READ_ACTIONS = (
    "patient.view",
    "patient.reveal",
    "patient.access_log",
    "patient.print",
    "patient.list",
    "followup.view",
)
READ_SUFFIXES = (".view", ".list", ".form")


def patient_read_q() -> Q:
    """The audit rows that are reads of one patient's data."""
    q = Q(action__in=PATIENT_READ_ACTIONS)
    for suffix in READ_SUFFIXES:
        q |= Q(action__endswith=suffix)
    return Q(object_type="patient") & ~Q(object_id="") & q


UNUSUAL_ACCESS_ACTION = "alert.unusual_access"
EXPORT_ACTION = "data.export"


def export_record(
    *,
    user,
    what: str,
    reason: str,
    count: int,
    request=None,
    object_id: str | int = "",
    detail: dict | None = None,
) -> AuditEvent:
    """Audit one export: what was exported (``what``, and the object when it
    is one batch, run, region …), why (the user's own words, asked for by
    accounts.exports) and how many rows; ``detail`` adds the filters used.
    Call it from the view that writes the file, in the same request."""
    event = audit_record(
        actor=user,
        action=EXPORT_ACTION,
        object_type=what[:64],
        object_id=object_id,
        detail={**(detail or {}), "reason": reason, "count": int(count)},
        request=request,
    )
    state = getattr(request, "_export", None)
    if state is not None:
        state["audited"] = True
    return event


def unusual_access_scan(*, day, threshold: int) -> list[int]:
    """Flag every account that opened more than ``threshold`` distinct
    patients on ``day`` (a local date). One audit row per account and day,
    however often the scan runs. Returns the ids of newly flagged accounts."""
    tz = timezone.get_current_timezone()
    start = timezone.make_aware(datetime.combine(day, time.min), tz)
    end = start + timedelta(days=1)
    heavy = (
        AuditEvent.objects.filter(
            at__gte=start,
            at__lt=end,
            actor__isnull=False,
        )
        .filter(patient_read_q())
        .values("actor_id")
        .annotate(patients=Count("object_id", distinct=True))
        .filter(patients__gt=threshold)
        .order_by("actor_id")
    )
    already = set(
        AuditEvent.objects.filter(
            action=UNUSUAL_ACCESS_ACTION, detail__day=day.isoformat()
        ).values_list("object_id", flat=True)
    )
    flagged = []
    for row in heavy:
        if str(row["actor_id"]) in already:
            continue
        audit_record(
            actor=None,
            action=UNUSUAL_ACCESS_ACTION,
            object_type="user",
            object_id=row["actor_id"],
            detail={"day": day.isoformat(), "patients": row["patients"], "threshold": threshold},
        )
        flagged.append(row["actor_id"])
    return flagged
