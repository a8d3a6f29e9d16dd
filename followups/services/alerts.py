"""Raising alerts, resolving their recipients and handling them
(DOMAIN.md → Alerts).

``alert_raise`` is the one entry point every app uses (follow-ups, incidents,
the daily scan, referrals). It runs in the caller's transaction: the alert,
its recipient rows and the outbox message commit together with the business
write, and notifications go out on commit (core.outbox).

Handling is per recipient organisation (``AlertRecipient``): open →
acknowledged → resolved with a note and who did it. The alert's own
``status`` summarises its recipients (open while any is open, resolved when
all are).

An alert is raised once per patient, kind and episode (DOMAIN.md → Alerts);
the episode of each kind:

- ``risk``: a run of consecutive completed follow-ups with risk ≥
  ``HIGH_RISK_MIN_LEVEL``, named by the run's first visit
  (``risk_episode``). A patient who stays at risk 3+ visit after visit has
  one risk alert, not one every 14 days; a visit below the threshold ends
  the run and closes its alert (a system note), and a later rise starts a
  new run and a new alert. Missed attempts (not reached) neither extend nor
  end a run: they measure no risk.
- ``incident``: one per incident (``incident:<id>``).
- ``overdue``: one per missed due date (``overdue_episode``).
- ``lost``: one per day the patient became lost (``lost_episode``).

Death, moving out and removal end every risk, incident, overdue and lost
alert of the patient (the follow-up that records the death closes them at
once, the daily scan closes whatever is left) and stop escalation.
"""

from __future__ import annotations

from datetime import date, datetime

from django.db import IntegrityError, transaction
from django.db.models import Case, Exists, F, OuterRef, Q, Value, When
from django.db.models.functions import Coalesce, Now
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from simple_history.utils import bulk_update_with_history

from accounts.models import Organisation, OrganisationKind
from audit.services import audit_record
from core.errors import DomainError
from core.history import history_stamp
from core.outbox import outbox_put
from followups.models import (
    Alert,
    AlertKind,
    AlertRecipient,
    AlertStatus,
    NotificationDelivery,
)
from patients.models import Patient

ERR_NOTE_REQUIRED = _("请填写处理情况。")
ERR_ALREADY_RESOLVED = _("该预警已办结。")

TOWNSHIP_RECIPIENTS: dict[str, tuple[str, ...]] = {
    AlertKind.RISK: (OrganisationKind.POLICE_STATION, OrganisationKind.GOVERNANCE_OFFICE),
    AlertKind.INCIDENT: (OrganisationKind.HEALTH_CENTRE, OrganisationKind.GOVERNANCE_OFFICE),
    AlertKind.OVERDUE: (OrganisationKind.HEALTH_CENTRE,),
    AlertKind.LOST: (
        OrganisationKind.POLICE_STATION,
        OrganisationKind.GOVERNANCE_OFFICE,
        OrganisationKind.HEALTH_CENTRE,
    ),
    AlertKind.REFERRAL: (),
}

# Escalation goes to the county level of the same department.
COUNTY_ESCALATION: dict[str, str] = {
    OrganisationKind.POLICE_STATION: OrganisationKind.POLICE_BUREAU,
    OrganisationKind.GOVERNANCE_OFFICE: OrganisationKind.GOVERNANCE_OFFICE,
    OrganisationKind.HEALTH_CENTRE: OrganisationKind.PREVENTION_AGENCY,
}


def township_code(patient: Patient) -> str:
    return patient.region_id[:9]


def county_code(patient: Patient) -> str:
    return patient.region_id[:6]


def lost_episode(changed_at: datetime | date) -> str:
    """The episode of a lost alert: the (local) day the patient became lost.

    The daily scan computes the same string in SQL from
    ``status_changed_at``, so a lost patient gets one alert per episode."""
    day = changed_at if not isinstance(changed_at, datetime) else timezone.localdate(changed_at)
    return f"lost:{day.isoformat()}"


def overdue_episode(due: date) -> str:
    return f"overdue:{due.isoformat()}"


def risk_episode(first_visit_id) -> str:
    """The episode of a risk alert: the first follow-up of the run of
    consecutive high-risk visits (``followups.selectors.high_risk_run_start``).
    The ``followup:`` prefix is the one every risk alert has carried, so the
    alert of a run that began before this rule is recognised."""
    return f"followup:{first_visit_id}"


def recipients_for(patient: Patient, kind: str) -> list[Organisation]:
    """The organisations of the patient's township that must act on ``kind``.

    The managing health centre is the patient's own when set (it may differ
    from the township's after a transfer between areas). Where a township
    has no organisation of a kind, the county one of that department
    receives the alert instead, so nobody's alert falls through.
    """
    kinds = TOWNSHIP_RECIPIENTS[kind]
    if not kinds:
        return []
    town = {}
    for org in Organisation.objects.filter(
        region_id=township_code(patient), kind__in=kinds, is_active=True
    ).order_by("pk"):
        town.setdefault(org.kind, org)
    if OrganisationKind.HEALTH_CENTRE in kinds and patient.managing_organisation_id:
        town[OrganisationKind.HEALTH_CENTRE] = patient.managing_organisation
    missing = [COUNTY_ESCALATION[k] for k in kinds if k not in town and k in COUNTY_ESCALATION]
    county = {}
    if missing:
        for org in Organisation.objects.filter(
            region_id=county_code(patient), kind__in=missing, is_active=True
        ).order_by("pk"):
            county.setdefault(org.kind, org)
    out, seen = [], set()
    for k in kinds:
        org = town.get(k) or county.get(COUNTY_ESCALATION.get(k, ""))
        if org is not None and org.pk not in seen:
            seen.add(org.pk)
            out.append(org)
    return out


def county_counterparts(patient: Patient, orgs: list[Organisation]) -> list[Organisation]:
    """County-level organisations of the same departments as ``orgs``."""
    wanted = {COUNTY_ESCALATION[o.kind] for o in orgs if o.kind in COUNTY_ESCALATION}
    return list(
        Organisation.objects.filter(
            region_id=county_code(patient), kind__in=wanted, is_active=True
        ).order_by("kind", "pk")
    )


def alert_raise(
    *,
    patient: Patient,
    kind: str,
    episode: str,
    risk_level: int | None = None,
    followup=None,
    incident=None,
    referral_id=None,
    recipients: list[Organisation] | None = None,
    due_by=None,
) -> Alert | None:
    """Raise one alert for (patient, kind, episode), or None if it exists.

    ``recipients`` overrides the township rule (referral alerts name both
    ends). Idempotent under concurrency: the unique constraint decides.
    """
    episode = episode[:80]
    if Alert.objects.filter(patient=patient, kind=kind, episode=episode).exists():
        return None
    try:
        with transaction.atomic():
            alert = Alert.objects.create(
                patient=patient,
                kind=kind,
                episode=episode,
                risk_level=risk_level if risk_level is not None else patient.risk_level,
                followup=followup,
                incident=incident,
                referral_id=referral_id,
                due_by=due_by,
            )
    except IntegrityError:
        return None  # raised concurrently by another transaction
    orgs = recipients if recipients is not None else recipients_for(patient, kind)
    alert_add_recipients(alert=alert, organisations=orgs)
    return alert


def alert_add_recipients(*, alert: Alert, organisations, escalated: bool = False) -> int:
    """Put the alert in these organisations' inboxes (once each) and notify."""
    created = 0
    for org in organisations:
        _row, was_created = AlertRecipient.objects.get_or_create(
            alert=alert, organisation=org, defaults={"escalated": escalated}
        )
        created += was_created
    if created:
        if alert.status == AlertStatus.RESOLVED:
            alerts_refresh_status([alert.pk])
        outbox_put(topic="alert.notify", payload={"alert": str(alert.pk)})
    return created


def alerts_transfer(
    *, patient: Patient, from_organisation, to_organisation, from_region_id: str | None = None
) -> int:
    """Hand the patient's unresolved alerts to the organisations of the
    area they moved to (a ``transfer`` referral: DOMAIN.md → Referrals).

    ``patient`` is the moved patient (its new region); ``from_region_id``
    the village it left. The old health centre's rows go to
    ``to_organisation``; the old township's police station and governance
    office rows go to the new township's units of the same kind (the new
    county's when that township has none); county-level rows (after an
    escalation) go to the new county's units of the same kind when the
    county changed. A moved row keeps its state (acknowledged stays
    acknowledged) and its history records the move; the new organisation is
    told. Returns rows moved."""
    old = from_region_id or patient.region_id
    old_town, old_county = old[:9], old[:6]
    new_town, new_county = township_code(patient), county_code(patient)
    rows = (
        AlertRecipient.objects.select_for_update(of=("self",))
        .filter(alert__patient=patient)
        .exclude(status=AlertStatus.RESOLVED)
        .select_related("organisation")
    )
    targets: dict[int, Organisation | None] = {}

    def target_for(org: Organisation) -> Organisation | None:
        if from_organisation is not None and org.pk == from_organisation.pk:
            return to_organisation
        if org.pk not in targets:
            targets[org.pk] = _counterpart(org, old_town, old_county, new_town, new_county)
        return targets[org.pk]

    moved = 0
    alert_ids = []
    for row in rows:
        target = target_for(row.organisation)
        if target is None or target.pk == row.organisation_id:
            continue
        if AlertRecipient.objects.filter(alert_id=row.alert_id, organisation=target).exists():
            continue
        row.organisation = target
        history_stamp(row, user=None, reason="alert.transferred")
        row.save(update_fields=["organisation"])
        # the row has a new audience: its notification record was the old
        # organisation's, so the new one is told once (followups.handlers)
        NotificationDelivery.objects.filter(recipient=row).delete()
        alert_ids.append(row.alert_id)
        moved += 1
    if alert_ids:
        outbox_put(topic="alert.notify", payload={"alerts": [str(a) for a in alert_ids]})
    return moved


def _counterpart(
    org: Organisation, old_town: str, old_county: str, new_town: str, new_county: str
) -> Organisation | None:
    """The unit of the new area that takes over ``org``'s alerts, or None
    when ``org`` does not belong to the area the patient left."""
    township_kinds = (OrganisationKind.POLICE_STATION, OrganisationKind.GOVERNANCE_OFFICE)
    if org.region_id == old_town and org.kind in township_kinds and new_town != old_town:
        found = (
            Organisation.objects.filter(region_id=new_town, kind=org.kind, is_active=True)
            .order_by("pk")
            .first()
        )
        if found is not None:
            return found
        return (
            Organisation.objects.filter(
                region_id=new_county, kind=COUNTY_ESCALATION[org.kind], is_active=True
            )
            .order_by("pk")
            .first()
        )
    if org.region_id == old_county and new_county != old_county:
        return (
            Organisation.objects.filter(region_id=new_county, kind=org.kind, is_active=True)
            .order_by("pk")
            .first()
        )
    return None


def alerts_refresh_status(alert_ids) -> int:
    """Recompute each alert's summary status from its recipients (one UPDATE)."""
    rcpt = AlertRecipient.objects.filter(alert_id=OuterRef("pk"))
    any_open = Exists(rcpt.filter(status=AlertStatus.OPEN))
    any_ack = Exists(rcpt.filter(status=AlertStatus.ACKNOWLEDGED))
    any_row = Exists(rcpt)
    return Alert.objects.filter(pk__in=list(alert_ids)).update(
        status=Case(
            When(any_open, then=Value(AlertStatus.OPEN)),
            When(any_ack, then=Value(AlertStatus.ACKNOWLEDGED)),
            When(any_row, then=Value(AlertStatus.RESOLVED)),
            default=F("status"),
        ),
        resolved_at=Case(
            When(Q(any_row) & ~Q(any_open) & ~Q(any_ack), then=Coalesce("resolved_at", Now())),
            default=Value(None),
        ),
    )


def _recipient_for_user(*, alert_id, by, request=None, lock: bool = True) -> AlertRecipient:
    from followups.selectors import alert_recipient_get_for_user

    return alert_recipient_get_for_user(user=by, alert_id=alert_id, lock=lock, request=request)


def alert_acknowledge(*, alert_id, by, request=None) -> AlertRecipient:
    """The user's organisation signs for the alert (open → acknowledged).

    Acknowledging twice changes nothing. Http404 (audited) when the alert is
    not in the user's organisation's inbox.
    """
    # scope first, outside the transaction: a denial's audit row survives
    _recipient_for_user(alert_id=alert_id, by=by, request=request, lock=False)
    with transaction.atomic():
        return _acknowledge(alert_id=alert_id, by=by, request=request)


def _acknowledge(*, alert_id, by, request) -> AlertRecipient:
    row = _recipient_for_user(alert_id=alert_id, by=by, request=request)
    if row.status != AlertStatus.OPEN:
        return row
    row.status = AlertStatus.ACKNOWLEDGED
    row.acknowledged_at = timezone.now()
    row.acknowledged_by = by
    history_stamp(row, user=by, reason="alert.acknowledged")
    row.save(update_fields=["status", "acknowledged_at", "acknowledged_by"])
    alerts_refresh_status([row.alert_id])
    audit_record(
        actor=by,
        action="alert.acknowledge",
        object_type="alert",
        object_id=row.alert_id,
        detail={"patient": str(row.alert.patient_id)},
        request=request,
    )
    return row


def alert_resolve(*, alert_id, by, note: str, request=None) -> AlertRecipient:
    """The user's organisation closes the alert with a note of what it did
    (open or acknowledged → resolved). Raises Http404 (audited) outside the
    inbox, DomainError without a note or when already resolved."""
    _recipient_for_user(alert_id=alert_id, by=by, request=request, lock=False)
    note = (note or "").strip()
    if not note:
        raise DomainError(ERR_NOTE_REQUIRED, field="note")
    with transaction.atomic():
        return _resolve(alert_id=alert_id, by=by, note=note, request=request)


def _resolve(*, alert_id, by, note: str, request) -> AlertRecipient:
    row = _recipient_for_user(alert_id=alert_id, by=by, request=request)
    if row.status == AlertStatus.RESOLVED:
        raise DomainError(ERR_ALREADY_RESOLVED)
    now = timezone.now()
    if row.acknowledged_at is None:
        row.acknowledged_at, row.acknowledged_by = now, by
    row.status = AlertStatus.RESOLVED
    row.resolved_at, row.resolved_by = now, by
    row.note = note[:2000]
    row.full_clean(exclude=["alert", "organisation"])
    history_stamp(row, user=by, reason="alert.resolved")
    row.save(
        update_fields=[
            "status",
            "acknowledged_at",
            "acknowledged_by",
            "resolved_at",
            "resolved_by",
            "note",
        ]
    )
    alerts_refresh_status([row.alert_id])
    audit_record(
        actor=by,
        action="alert.resolve",
        object_type="alert",
        object_id=row.alert_id,
        detail={"patient": str(row.alert.patient_id)},
        request=request,
    )
    return row


def alerts_close(
    *,
    patient: Patient,
    kinds,
    by,
    note: str,
    organisation_ids=None,
    incident_on_or_before: date | None = None,
) -> int:
    """Resolve the patient's unresolved alerts of ``kinds`` because the
    condition has ended (the closed loop: a completed follow-up answers an
    overdue alert, finding the patient answers a lost one). Runs in the
    caller's transaction; returns the recipient rows closed."""
    rows = AlertRecipient.objects.select_for_update().filter(
        alert__patient=patient, alert__kind__in=list(kinds)
    )
    rows = rows.exclude(status=AlertStatus.RESOLVED)
    if organisation_ids is not None:
        rows = rows.filter(organisation_id__in=[o for o in organisation_ids if o])
    if incident_on_or_before is not None:
        rows = rows.filter(alert__incident__occurred_on__lte=incident_on_or_before)
    now = timezone.now()
    actor = by if getattr(by, "is_authenticated", False) else None
    rows = list(rows)
    for row in rows:
        if row.acknowledged_at is None:
            row.acknowledged_at, row.acknowledged_by = now, actor
        row.status = AlertStatus.RESOLVED
        row.resolved_at, row.resolved_by = now, actor
        row.note = str(note)
        history_stamp(row, user=actor, reason="alert.closed")
    alert_ids = {row.alert_id for row in rows}
    if rows:
        # one UPDATE and one history INSERT whatever the number of inboxes
        bulk_update_with_history(
            rows,
            AlertRecipient,
            [
                "status",
                "acknowledged_at",
                "acknowledged_by",
                "resolved_at",
                "resolved_by",
                "note",
            ],
        )
        alerts_refresh_status(alert_ids)
    return len(alert_ids)
