"""Raising alerts and resolving their recipients (DOMAIN.md → Alerts).

``alert_raise`` is the one entry point every app uses (follow-ups, incidents,
the daily scan, referrals). It runs in the caller's transaction: the alert,
its recipient rows and the outbox message commit together with the business
write, and notifications go out on commit (core.outbox).
"""

from __future__ import annotations

from django.db import IntegrityError, transaction

from accounts.models import Organisation, OrganisationKind
from core.outbox import outbox_put
from followups.models import Alert, AlertKind, AlertRecipient
from patients.models import Patient

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


def recipients_for(patient: Patient, kind: str) -> list[Organisation]:
    """The organisations of the patient's township that must act on ``kind``.

    The managing health centre is the patient's own when set (it may differ
    from the township's after a transfer between areas).
    """
    kinds = TOWNSHIP_RECIPIENTS[kind]
    if not kinds:
        return []
    orgs = list(
        Organisation.objects.filter(
            region_id=township_code(patient), kind__in=kinds, is_active=True
        ).order_by("kind", "pk")
    )
    if OrganisationKind.HEALTH_CENTRE in kinds and patient.managing_organisation_id:
        orgs = [o for o in orgs if o.kind != OrganisationKind.HEALTH_CENTRE]
        orgs.append(patient.managing_organisation)
    # one organisation per kind: the first is the responsible one
    seen, out = set(), []
    for org in orgs:
        if org.kind not in seen:
            seen.add(org.kind)
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
    if Alert.objects.filter(patient=patient, kind=kind, episode=episode).exists():
        return None
    try:
        with transaction.atomic():
            alert = Alert.objects.create(
                patient=patient,
                kind=kind,
                episode=episode[:80],
                risk_level=risk_level,
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
        outbox_put(topic="alert.notify", payload={"alert": str(alert.pk)})
    return created


def alerts_transfer(*, patient: Patient, from_organisation, to_organisation) -> int:
    """Hand the patient's unresolved alerts of one organisation to another
    (a ``transfer`` referral: DOMAIN.md → Referrals). Returns rows moved."""
    moved = 0
    rows = (
        AlertRecipient.objects.select_for_update()
        .filter(alert__patient=patient, organisation=from_organisation)
        .exclude(status="resolved")
    )
    for row in rows:
        if AlertRecipient.objects.filter(
            alert_id=row.alert_id, organisation=to_organisation
        ).exists():
            continue
        row.organisation = to_organisation
        row.save(update_fields=["organisation"])
        moved += 1
    return moved
