"""Outbox handlers of the followups app (see core.outbox)."""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime

from django.conf import settings
from django.db import connection, transaction
from django.utils import translation
from django.utils.translation import gettext, gettext_noop

from core import notify
from core.outbox import handler
from followups.models import AlertKind

log = logging.getLogger(__name__)

# Never the patient, the disorder or any detail: only counts and kinds (G15).
TEXT = gettext_noop("精防通提醒：您单位有%(count)s条新的预警待处理（%(kinds)s），请登录系统查看。")


def _targets(payload: dict) -> tuple[str, list]:
    """SQL condition on recipient rows ``r`` for one message."""
    if "alert" in payload:
        return "r.alert_id = %s", [payload["alert"]]
    if "alerts" in payload:
        return "r.alert_id = ANY(%s::uuid[])", [list(payload["alerts"])]
    if "since" in payload:
        return "r.created_at >= %s", [datetime.fromisoformat(payload["since"])]
    raise ValueError("alert.notify: no target in payload")


def notification_text(kinds: dict[str, int]) -> str:
    """What an organisation is told: how many alerts of which kind, never who."""
    labels = dict(AlertKind.choices)
    with translation.override(settings.LANGUAGE_CODE):
        parts = "，".join(
            gettext("%(kind)s%(n)s条") % {"kind": labels[k], "n": n}
            for k, n in sorted(kinds.items())
        )
        return gettext(TEXT) % {"count": sum(kinds.values()), "kinds": parts}


@handler("alert.notify")
def alert_notify(payload: dict) -> bool:
    """Tell each recipient organisation once that its inbox has new alerts:
    one message per organisation, however many alerts (a scan may raise
    hundreds). Each recipient row is notified once per channel — the unique
    delivery row is written in the same savepoint as the send, so a
    re-delivered message is a no-op and a failed send is retried.

    Returns False when some organisation could not be told (retry later).
    """
    backend = notify.backend()
    where, params = _targets(payload)
    pending = _pending_rows(where, params, backend.channel)
    by_org: dict[int, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for rcpt_id, org_id, kind in pending:
        by_org[org_id][kind].append(rcpt_id)
    complete = True
    for org_id, kinds in sorted(by_org.items()):
        ids = [i for rows in kinds.values() for i in rows]
        try:
            with transaction.atomic():
                with connection.cursor() as cur:
                    cur.execute(
                        "INSERT INTO followups_notificationdelivery (recipient_id, channel, sent_at)"
                        " SELECT unnest(%s::bigint[]), %s, now()"
                        " ON CONFLICT (recipient_id, channel) DO NOTHING RETURNING recipient_id",
                        [ids, backend.channel],
                    )
                    fresh = {row[0] for row in cur.fetchall()}
                counts = {k: sum(1 for i in rows if i in fresh) for k, rows in kinds.items()}
                counts = {k: n for k, n in counts.items() if n}
                if counts:
                    backend.send(
                        notify.Message(
                            recipient=f"org:{org_id}",
                            text=notification_text(counts),
                            organisation_id=org_id,
                        )
                    )
        except Exception as exc:  # noqa: BLE001 - this organisation is retried later
            log.warning("alert.notify: organisation %s not told (%s)", org_id, type(exc).__name__)
            complete = False
    return complete


def _pending_rows(where: str, params: list, channel: str) -> list[tuple[int, int, str]]:
    """(recipient id, organisation id, alert kind) not yet told on ``channel``."""
    sql = f"""
        SELECT r.id, r.organisation_id, a.kind
        FROM followups_alertrecipient r
        JOIN followups_alert a ON a.id = r.alert_id
        WHERE {where}
          AND NOT EXISTS (SELECT 1 FROM followups_notificationdelivery d
                          WHERE d.recipient_id = r.id AND d.channel = %s)
        ORDER BY r.id
    """  # noqa: S608 - ``where`` is one of three fixed strings above  # nosec B608
    with connection.cursor() as cur:
        cur.execute(sql, [*params, channel])
        return cur.fetchall()
