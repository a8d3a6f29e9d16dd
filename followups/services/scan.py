"""The daily scan (DESIGN.md → Jobs): overdue and lost alerts, escalation,
and closing alerts whose condition has ended (overdue and lost alerts; risk
alerts once the patient's latest risk is below the threshold; every one of
them, incidents included, once the patient has died, moved out or been
removed — nor do those escalate).

Set-based SQL, not a loop over patients: a fixed number of statements
whatever the number of patients (PostgreSQL). Idempotent: alerts are
unique per (patient, kind, episode) and recipients per (alert,
organisation), both enforced by ``ON CONFLICT DO NOTHING``, so a second
run — or a redelivered task after a killed worker — raises nothing new.
"""

from __future__ import annotations

from datetime import date

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext

from followups import rules
from followups.services.alerts import COUNTY_ESCALATION, TOWNSHIP_RECIPIENTS

# pg_advisory_xact_lock key: one scan at a time.
SCAN_LOCK = 0x6A66_7533
HISTORY_REASON = "followups.scan"

# Recipient row columns, and the same as history rows (simple-history).
_RCPT_COLS = "id, alert_id, organisation_id, escalated, status, created_at, note"
_RCPT_HIST_COLS = (
    "id, alert_id, organisation_id, escalated, status, created_at, note, "
    "acknowledged_at, acknowledged_by_id, resolved_at, resolved_by_id, "
    "history_date, history_change_reason, history_type"
)


def _recipient_kinds(kind: str) -> tuple[list[str], list[str]]:
    kinds = list(TOWNSHIP_RECIPIENTS[kind])
    return kinds, [COUNTY_ESCALATION.get(k, k) for k in kinds]


def _raise_sql(episode_sql: str, where_sql: str, due_sql: str = "NULL") -> str:
    """One statement: raise the alerts of one kind for every patient matching
    ``where_sql``, put them in the inboxes of the patient's township
    organisations (county fallback; managing health centre first), and
    write their history rows. Mirrors ``alerts.recipients_for``."""
    return f"""
WITH new_alerts AS (
    INSERT INTO followups_alert
        (id, patient_id, kind, episode, risk_level, raised_at, due_by, status)
    SELECT gen_random_uuid(), p.id, %(kind)s, {episode_sql}, p.risk_level, now(),
           {due_sql}, 'open'
    FROM patients_patient p
    WHERE {where_sql}
    ON CONFLICT (patient_id, kind, episode) DO NOTHING
    RETURNING id, patient_id
), targets AS (
    SELECT DISTINCT a.id AS alert_id, r.org_id
    FROM new_alerts a
    JOIN patients_patient p ON p.id = a.patient_id
    CROSS JOIN unnest(%(kinds)s::text[], %(county_kinds)s::text[]) AS k(kind, county_kind)
    CROSS JOIN LATERAL (
        SELECT COALESCE(
            CASE WHEN k.kind = 'health_centre' THEN p.managing_organisation_id END,
            (SELECT o.id FROM accounts_organisation o
              WHERE o.region_id = substr(p.region_id, 1, 9) AND o.kind = k.kind
                AND o.is_active ORDER BY o.id LIMIT 1),
            (SELECT o.id FROM accounts_organisation o
              WHERE o.region_id = substr(p.region_id, 1, 6) AND o.kind = k.county_kind
                AND o.is_active ORDER BY o.id LIMIT 1)
        ) AS org_id
    ) r
    WHERE r.org_id IS NOT NULL
), rcpt AS (
    INSERT INTO followups_alertrecipient
        (alert_id, organisation_id, escalated, status, created_at, note)
    SELECT alert_id, org_id, false, 'open', now(), '' FROM targets
    ON CONFLICT (alert_id, organisation_id) DO NOTHING
    RETURNING {_RCPT_COLS}
), hist AS (
    INSERT INTO followups_historicalalertrecipient ({_RCPT_HIST_COLS})
    SELECT {_RCPT_COLS}, NULL, NULL, NULL, NULL, now(), %(reason)s, '+' FROM rcpt
    RETURNING 1
)
SELECT (SELECT count(*) FROM new_alerts), (SELECT count(*) FROM rcpt), (SELECT count(*) FROM hist)
"""  # noqa: S608 - composed from this module's constants only  # nosec B608


OVERDUE_SQL = _raise_sql(
    episode_sql="'overdue:' || to_char(p.next_followup_due, 'YYYY-MM-DD')",
    where_sql="p.status = 'active' AND p.next_followup_due < %(today)s",
    due_sql="((p.next_followup_due + %(overdue_days)s)::timestamp AT TIME ZONE %(tz)s)",
)
LOST_SQL = _raise_sql(
    episode_sql="'lost:' || to_char((p.status_changed_at AT TIME ZONE %(tz)s)::date, 'YYYY-MM-DD')",
    where_sql="p.status = 'lost'",
)

ESCALATE_SQL = f"""
WITH due AS (
    SELECT DISTINCT r.alert_id, c.id AS org_id
    FROM followups_alertrecipient r
    JOIN followups_alert a ON a.id = r.alert_id
    JOIN accounts_organisation o ON o.id = r.organisation_id
    JOIN patients_patient p ON p.id = a.patient_id
    JOIN unnest(%(from_kinds)s::text[], %(to_kinds)s::text[]) AS m(from_kind, to_kind)
      ON m.from_kind = o.kind
    CROSS JOIN LATERAL (
        SELECT o2.id FROM accounts_organisation o2
        WHERE o2.region_id = substr(p.region_id, 1, 6) AND o2.kind = m.to_kind
          AND o2.is_active AND o2.id <> o.id
        ORDER BY o2.id LIMIT 1
    ) c
    WHERE NOT r.escalated AND a.status <> 'resolved'
      AND p.status = ANY(%(registered)s) AND (
        (a.kind = 'risk' AND r.status = 'open' AND COALESCE(p.risk_level, 0) >= %(high_risk)s
         AND a.raised_at <= now() - make_interval(hours => %(risk_hours)s))
     OR (a.kind = 'overdue' AND r.status <> 'resolved' AND p.status = 'active'
         AND a.episode = 'overdue:' || to_char(p.next_followup_due, 'YYYY-MM-DD')
         AND p.next_followup_due <= %(today)s - %(overdue_days)s)
     OR (a.kind = 'incident' AND o.kind = 'health_centre' AND r.status <> 'resolved'
         AND a.due_by <= now())
    )
), rcpt AS (
    INSERT INTO followups_alertrecipient
        (alert_id, organisation_id, escalated, status, created_at, note)
    SELECT alert_id, org_id, true, 'open', now(), '' FROM due
    ON CONFLICT (alert_id, organisation_id) DO NOTHING
    RETURNING {_RCPT_COLS}
), hist AS (
    INSERT INTO followups_historicalalertrecipient ({_RCPT_HIST_COLS})
    SELECT {_RCPT_COLS}, NULL, NULL, NULL, NULL, now(), %(reason)s, '+' FROM rcpt
    RETURNING 1
), reopened AS (
    UPDATE followups_alert a SET status = 'open', resolved_at = NULL
    WHERE a.id IN (SELECT alert_id FROM rcpt) AND a.status <> 'open'
    RETURNING 1
)
SELECT (SELECT count(*) FROM rcpt), (SELECT count(*) FROM hist), (SELECT count(*) FROM reopened)
"""  # noqa: S608 - composed from this module's constants only  # nosec B608

CLOSE_STALE_SQL = f"""
WITH stale AS (
    SELECT a.id, a.kind FROM followups_alert a
    JOIN patients_patient p ON p.id = a.patient_id
    WHERE a.kind IN ('overdue', 'lost', 'risk', 'incident') AND a.status <> 'resolved'
      AND CASE a.kind
          WHEN 'overdue' THEN NOT (
              p.status = 'active' AND p.next_followup_due < %(today)s
              AND a.episode = 'overdue:' || to_char(p.next_followup_due, 'YYYY-MM-DD'))
          WHEN 'lost' THEN p.status <> 'lost'
          WHEN 'risk' THEN NOT (
              p.status = ANY(%(registered)s) AND COALESCE(p.risk_level, 0) >= %(high_risk)s
              -- one open risk alert per patient: a newer one supersedes it
              AND NOT EXISTS (
                  SELECT 1 FROM followups_alert a2
                  WHERE a2.patient_id = a.patient_id AND a2.kind = 'risk'
                    AND a2.raised_at > a.raised_at))
          ELSE NOT p.status = ANY(%(registered)s)
      END
), upd AS (
    UPDATE followups_alertrecipient r
    SET status = 'resolved', resolved_at = now(),
        acknowledged_at = COALESCE(r.acknowledged_at, now()), note = %(note)s
    FROM stale WHERE r.alert_id = stale.id AND r.status <> 'resolved'
    RETURNING r.id, r.alert_id, r.organisation_id, r.escalated, r.status, r.created_at,
              r.note, r.acknowledged_at, r.acknowledged_by_id, r.resolved_at, r.resolved_by_id
), hist AS (
    INSERT INTO followups_historicalalertrecipient ({_RCPT_HIST_COLS})
    SELECT id, alert_id, organisation_id, escalated, status, created_at, note,
           acknowledged_at, acknowledged_by_id, resolved_at, resolved_by_id,
           now(), %(reason)s, '~' FROM upd
    RETURNING 1
), closed AS (
    UPDATE followups_alert a SET status = 'resolved', resolved_at = now()
    FROM stale WHERE a.id = stale.id
    RETURNING a.kind
)
SELECT (SELECT count(*) FROM closed WHERE kind = 'overdue'),
       (SELECT count(*) FROM closed WHERE kind = 'lost'),
       (SELECT count(*) FROM closed WHERE kind = 'risk'),
       (SELECT count(*) FROM closed WHERE kind = 'incident'),
       (SELECT count(*) FROM upd), (SELECT count(*) FROM hist)
"""  # noqa: S608 - composed from this module's constants only  # nosec B608


def _params(today: date) -> dict:
    return {
        "today": today,
        "tz": settings.TIME_ZONE,
        "reason": HISTORY_REASON,
        "overdue_days": rules.OVERDUE_ESCALATE_DAYS,
        "risk_hours": rules.RISK_ACK_HOURS,
        "high_risk": settings.HIGH_RISK_MIN_LEVEL,
        # registered (DOMAIN.md → Patients): alerts of the others end
        "registered": list(rules.RECORDABLE_STATUSES),
    }


def _one(cur, sql: str, params: dict) -> tuple:
    cur.execute(sql, params)
    return cur.fetchone()


def escalate(*, today: date | None = None) -> int:
    """Escalate to the county level of the same department: risk alerts
    unacknowledged after 24 h, overdue alerts 30 days overdue, incident
    alerts the health centre has not answered within 14 days — of patients
    still registered. Returns the recipient rows added. Call inside a
    transaction."""
    today = today or timezone.localdate()
    params = {
        **_params(today),
        "from_kinds": list(COUNTY_ESCALATION),
        "to_kinds": list(COUNTY_ESCALATION.values()),
    }
    with connection.cursor() as cur:
        added, _hist, _reopened = _one(cur, ESCALATE_SQL, params)
    return added


def scan_lock_waiters() -> int:
    """Sessions of this database waiting for the scan lock (``SCAN_LOCK``)."""
    with connection.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "AND classid::bigint = %s AND objid::bigint = %s AND objsubid = 1",
            [SCAN_LOCK >> 32, SCAN_LOCK & 0xFFFFFFFF],
        )
        return cur.fetchone()[0]


def followup_scan(*, today: date | None = None, on_locked=None) -> dict:
    """One daily scan in one transaction; returns its counts.

    Overdue (active, next due date passed) and lost patients get their alert
    once per episode; unanswered alerts escalate; overdue alerts whose
    patient is no longer overdue on that due date, lost alerts whose patient
    is no longer lost, risk alerts whose patient's latest risk is below the
    threshold, and every alert of a patient no longer registered (dead,
    moved out, removed) are closed. Notifications go through the outbox on
    commit. ``on_locked`` is called inside the transaction as soon as the
    scan holds its lock (the task records abandoned runs there).
    """
    from core.outbox import outbox_put

    today = today or timezone.localdate()
    counts: dict[str, int] = {}
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s), now()", [SCAN_LOCK])
        started = cur.fetchone()[1]
        if on_locked is not None:
            on_locked()
        for kind, sql in (("overdue", OVERDUE_SQL), ("lost", LOST_SQL)):
            kinds, county_kinds = _recipient_kinds(kind)
            params = {**_params(today), "kind": kind, "kinds": kinds, "county_kinds": county_kinds}
            raised, recipients, _hist = _one(cur, sql, params)
            counts[f"{kind}_raised"] = raised
            counts[f"{kind}_recipients"] = recipients
        # close first: an alert whose condition has ended does not escalate
        with translation.override(settings.LANGUAGE_CODE):
            note = gettext(
                "系统：预警情形已消除（已随访，或危险性评估、患者状态、下次随访日期已变更）。"
            )
        closed = _one(cur, CLOSE_STALE_SQL, {**_params(today), "note": note})
        for i, kind in enumerate(("overdue", "lost", "risk", "incident")):
            counts[f"{kind}_closed"] = closed[i]
        counts["escalated"] = escalate(today=today)
        if counts["overdue_recipients"] or counts["lost_recipients"] or counts["escalated"]:
            outbox_put(topic="alert.notify", payload={"since": started.isoformat()})
    return counts


def escalation_scan(*, today: date | None = None) -> dict:
    """The hourly part of the scan: escalation only (risk alerts must reach
    the county within hours of their 24 h, not the next morning)."""
    from core.outbox import outbox_put

    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s), now()", [SCAN_LOCK])
        started = cur.fetchone()[1]
        added = escalate(today=today)
        if added:
            outbox_put(topic="alert.notify", payload={"since": started.isoformat()})
    return {"escalated": added}
