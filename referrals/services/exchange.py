"""Scheduled exchange with other departments (DOMAIN.md → Data exchange):
partners per county, packages with the minimum necessary fields, a signed
manifest, delivery with per-endpoint back-off, a run row per package."""

from __future__ import annotations

import logging
import secrets
import tempfile
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.db.models import Count, Exists, IntegerField, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.selectors import organisation_of
from audit.services import audit_record, export_record
from core.errors import DomainError
from core.history import history_stamp
from core.models import TaskRun
from patients.models import (
    REGISTERED_STATUSES,
    Certificate,
    Classification,
    Gender,
    IdType,
    Incident,
    IncidentKind,
    Patient,
    Poverty,
    Status,
)
from referrals import conf, rules, tabular, transport
from referrals.models import (
    DeliveryMethod,
    ExchangePartner,
    ExchangeRun,
    HighRiskSent,
    PartnerDepartment,
    RunKind,
    RunStatus,
)
from referrals.selectors import (
    can_download_package,
    can_manage_partners,
    county_of,
    exchange_partner_get_for_user,
    exchange_run_get_for_user,
)

log = logging.getLogger(__name__)

ERR_NOT_ALLOWED = _("您无权配置信息交换。")
ERR_FOLDER = _("投递目录须为服务器上的绝对路径。")
ERR_URL = _("接收地址须以 https:// 开头。")
ERR_IMMEDIATE = _("即时推送只适用于公安和综治。")
ERR_DOWNLOAD = _("您无权下载该数据包。")
ERR_NAME_TAKEN = _("已有同名的交换对象。")
ERR_NOT_FAILED = _("只有投递失败的记录可以重新投递。")

PARTNER_FIELDS = (
    "department",
    "name",
    "organisation",
    "schedule",
    "immediate_high_risk",
    "format",
    "delivery",
    "folder_path",
    "endpoint_url",
    "ca_certificate",
    "is_active",
)


def generate_signing_key() -> str:
    """A new random HMAC key (shown to the managers, stored encrypted)."""
    return secrets.token_urlsafe(32)


def _check_partner(partner: ExchangePartner) -> None:
    if partner.delivery == DeliveryMethod.FOLDER and not partner.folder_path.startswith("/"):
        raise DomainError(ERR_FOLDER, field="folder_path")
    if partner.delivery == DeliveryMethod.HTTPS and not partner.endpoint_url.lower().startswith(
        "https://"
    ):
        raise DomainError(ERR_URL, field="endpoint_url")
    if partner.immediate_high_risk and partner.department not in ("police", "governance"):
        raise DomainError(ERR_IMMEDIATE, field="immediate_high_risk")


@transaction.atomic
def exchange_partner_create(*, by, data: dict, request=None) -> ExchangePartner:
    """A partner of the user's county; its signing key is generated here."""
    if not can_manage_partners(by):
        raise PermissionDenied(ERR_NOT_ALLOWED)
    county = county_of(organisation_of(by))
    partner = ExchangePartner(region=county, signing_key=generate_signing_key(), key_id="k1")
    for key in PARTNER_FIELDS:
        if key in data:
            setattr(partner, key, data[key])
    if not partner.schedule:
        partner.schedule = rules.DEFAULT_SCHEDULE[partner.department]
    _check_partner(partner)
    partner.full_clean(exclude=["region", "organisation"])
    if ExchangePartner.objects.filter(
        region=county, department=partner.department, name=partner.name
    ).exists():
        raise DomainError(ERR_NAME_TAKEN, field="name")
    history_stamp(partner, user=by, reason="exchange.partner_created")
    try:
        with transaction.atomic():
            partner.save(force_insert=True)
    except IntegrityError as exc:
        raise DomainError(ERR_NAME_TAKEN, field="name") from exc
    audit_record(
        actor=by,
        action="exchange.partner_create",
        object_type="exchange_partner",
        object_id=partner.pk,
        request=request,
    )
    return partner


def exchange_partner_update(*, partner_id, by, request=None, **kwargs):
    """Change a partner's schedule, format, delivery or receiving unit."""
    # scope first, outside the transaction: the audit row of a denied
    # access must survive the 404 (a rollback would erase it)
    exchange_partner_get_for_user(user=by, pk=partner_id, manage=True, request=request)
    return _exchange_partner_update(partner_id=partner_id, by=by, request=request, **kwargs)


@transaction.atomic
def _exchange_partner_update(*, partner_id, by, data: dict, request=None) -> ExchangePartner:
    exchange_partner_get_for_user(user=by, pk=partner_id, manage=True, request=request)
    partner = ExchangePartner.objects.select_for_update().get(pk=partner_id)
    for key in PARTNER_FIELDS:
        if key in data and key != "department":
            setattr(partner, key, data[key])
    _check_partner(partner)
    partner.full_clean(exclude=["region", "organisation"])
    history_stamp(partner, user=by, reason="exchange.partner_updated")
    partner.save()
    audit_record(
        actor=by,
        action="exchange.partner_update",
        object_type="exchange_partner",
        object_id=partner.pk,
        request=request,
    )
    return partner


def exchange_partner_rotate_key(*, partner_id, by, request=None, **kwargs):
    """A new signing key (the partner must be given it); the key id moves on
    so the partner can tell which key signed a manifest."""
    # scope first, outside the transaction: the audit row of a denied
    # access must survive the 404 (a rollback would erase it)
    exchange_partner_get_for_user(user=by, pk=partner_id, manage=True, request=request)
    return _exchange_partner_rotate_key(partner_id=partner_id, by=by, request=request, **kwargs)


@transaction.atomic
def _exchange_partner_rotate_key(*, partner_id, by, request=None) -> ExchangePartner:
    """A new signing key (the partner must be given it); the key id moves on
    so the partner can tell which key signed a manifest."""
    exchange_partner_get_for_user(user=by, pk=partner_id, manage=True, request=request)
    partner = ExchangePartner.objects.select_for_update().get(pk=partner_id)
    partner.signing_key = generate_signing_key()
    number = int(partner.key_id[1:]) + 1 if partner.key_id[1:].isdigit() else 2
    partner.key_id = f"k{number}"
    history_stamp(partner, user=by, reason="exchange.key_rotated")
    partner.save(update_fields=["signing_key", "key_id"])
    audit_record(
        actor=by,
        action="exchange.key_rotate",
        object_type="exchange_partner",
        object_id=partner.pk,
        request=request,
    )
    return partner


def exchange_partner_reveal_key(*, partner_id, by, request=None) -> str:
    """The signing key, for handing to the partner; the reveal is audited."""
    partner = exchange_partner_get_for_user(user=by, pk=partner_id, manage=True, request=request)
    audit_record(
        actor=by,
        action="exchange.key_reveal",
        object_type="exchange_partner",
        object_id=partner.pk,
        request=request,
    )
    return partner.signing_key


# --------------------------------------------------------------------------
# Building packages
# --------------------------------------------------------------------------

LABELS = {
    "gender": dict(Gender.choices),
    "id_type": dict(IdType.choices),
    "status": dict(Status.choices),
    "classification": dict(Classification.choices),
    "poverty": dict(Poverty.choices),
    "certificate": dict(Certificate.choices),
    "last_incident": dict(IncidentKind.choices),
}


# Where each package column comes from: a value of ``_patients_for``'s rows
# (``values_list``: no model instances; the encrypted ID number and guardian
# phone are decrypted by their field as the rows arrive).
SOURCES = {
    "id_type": "id_type",
    "id_number": "id_number",
    "name": "name",
    "gender": "gender",
    "birth_date": "birth_date",
    "region": "region_id",
    "region_name": "region__name",
    "address": "address",
    "status": "status",
    "guardian_name": "guardian__name",
    "guardian_relation": "guardian__relation",
    "guardian_phone": "guardian__phone",
    "risk_level": "risk_level",
    "classification": "classification",
    "lost": "status",
    "incidents": "incident_count",
    "last_incident": "last_incident_kind",
    "last_incident_date": "last_incident_date",
    "poverty": "poverty",
    "guardian_reward": "guardian_reward_active",
    "in_community_rehab": "in_community_rehab",
    "certificate": "certificate",
    "certificate_grade": "certificate_grade",
    "certificate_number": "certificate_number",
}
# Columns whose missing value (no guardian, no incident) is written as "".
EMPTY_AS_BLANK = frozenset(
    {"guardian_name", "guardian_relation", "guardian_phone", "last_incident"}
)
CHUNK_ROWS = 2000
# A package is spooled in memory up to this size, then on disk.
SPOOL_BYTES = 4 * 1024 * 1024


def _patients_for(
    partner: ExchangePartner, *, period: rules.Period | None, patient_ids=None
) -> QuerySet[Patient]:
    """The partner's county: registered patients, plus those whose status
    changed during the period (so a partner learns of deaths and moves).

    A system job, not a user's read: the scope is the partner's county.
    """
    qs = Patient.objects.filter(region__path__startswith=partner.region.path)
    if patient_ids is not None:
        qs = qs.filter(pk__in=list(patient_ids))
    else:
        changed = Q(
            status_changed_at__date__gte=period.start, status_changed_at__date__lte=period.end
        )
        qs = qs.filter(Q(status__in=REGISTERED_STATUSES) | changed)
    qs = qs.order_by("region_id", "name", "pk")
    if partner.department in (PartnerDepartment.POLICE, PartnerDepartment.GOVERNANCE):
        incidents = Incident.objects.filter(patient=OuterRef("pk"))
        qs = qs.annotate(
            incident_count=Coalesce(
                Subquery(
                    incidents.order_by().values("patient").annotate(n=Count("pk")).values("n")[:1],
                    output_field=IntegerField(),
                ),
                Value(0),
            ),
            last_incident_kind=Subquery(incidents.order_by("-occurred_on").values("kind")[:1]),
            last_incident_date=Subquery(
                incidents.order_by("-occurred_on").values("occurred_on")[:1]
            ),
        )
    if partner.department == PartnerDepartment.CIVIL_AFFAIRS:
        qs = qs.annotate(guardian_reward_active=_active_reward_exists())
    return qs


def _active_reward_exists() -> Exists:
    """Whether the patient's guardian currently receives the reward (以奖代补).

    The subsidies app holds awards; the flag is derived from an award in
    status ``active`` (subsidies.models.AwardStatus.ACTIVE)."""
    from subsidies.models import Award, AwardStatus

    return Exists(Award.objects.filter(patient=OuterRef("pk"), status=AwardStatus.ACTIVE))


def package_rows(partner: ExchangePartner, *, period=None, patient_ids=None) -> Iterator[dict]:
    """The partner's rows, one at a time: its county's patients shaped to its
    columns (raw codes), read ``CHUNK_ROWS`` at a time from a server-side
    cursor — memory does not grow with the county."""
    keys = [key for key, _header in rules.columns_for(partner.department)]
    fields = list(dict.fromkeys(SOURCES[key] for key in keys))
    at = {key: fields.index(SOURCES[key]) for key in keys}
    qs = _patients_for(partner, period=period, patient_ids=patient_ids)
    for values in qs.values_list(*fields).iterator(chunk_size=CHUNK_ROWS):
        row = {key: values[at[key]] for key in keys}
        for key in EMPTY_AS_BLANK.intersection(row):
            if row[key] is None:
                row[key] = ""
        if "lost" in row:
            row["lost"] = row["lost"] == Status.LOST
        if "guardian_reward" in row:
            row["guardian_reward"] = bool(row["guardian_reward"])
        yield row


def _labels() -> dict[str, dict[str, str]]:
    """The code → label tables, translated once per package."""
    return {key: {code: str(text) for code, text in table.items()} for key, table in LABELS.items()}


def _file_name(partner: ExchangePartner, kind: str, label: str) -> str:
    ext = partner.format
    stem = f"{partner.region_id}_{partner.department}_{label}"
    if kind == RunKind.HIGH_RISK:
        stem += "_high_risk"
    return f"{stem}.{ext}"


class _Counter:
    """Counts rows by status (and high-risk ones) as they pass to the writer."""

    def __init__(self, with_risk: bool):
        self.rows = 0
        self.by_status: dict[str, int] = {}
        self.high_risk = 0 if with_risk else None

    def counted(self, rows: Iterable[dict]) -> Iterator[dict]:
        high = settings.HIGH_RISK_MIN_LEVEL
        for row in rows:
            self.rows += 1
            self.by_status[row["status"]] = self.by_status.get(row["status"], 0) + 1
            if self.high_risk is not None and (row.get("risk_level") or 0) >= high:
                self.high_risk += 1
            yield row

    def as_dict(self) -> dict:
        counts = {"rows": self.rows, "by_status": self.by_status}
        if self.high_risk is not None:
            counts["high_risk"] = self.high_risk
        return counts


def build_package(
    partner: ExchangePartner, *, kind: str, period: rules.Period, rows: Iterable[dict]
) -> tuple[bytes, dict]:
    """(content bytes, manifest) for rows shaped to the partner's columns.

    The rows are consumed once, as they come: labelled (CSV, XLSX; JSON keeps
    the codes), counted, and written to a spooled temporary file (on disk
    past a few MB) through a sink that hashes what it writes. Only the
    finished file is read back, to be stored.
    """
    columns = rules.columns_for(partner.department)
    counter = _Counter(with_risk="risk_level" in dict(columns))
    shaped = counter.counted(rows)
    if partner.format != "json":
        shaped = _labelled(shaped, _labels())
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as spool:
        sink = tabular.HashingSink(spool)
        tabular.STREAMS[partner.format](columns, shaped, sink)
        spool.seek(0)
        content = spool.read()
    manifest = {
        "format_version": 1,
        "sender": "精防通",
        "county": partner.region_id,
        "county_name": partner.region.name,
        "partner": partner.department,
        "partner_name": partner.name,
        "kind": kind,
        "period": period.label,
        "period_start": period.start.isoformat(),
        "period_end": period.end.isoformat(),
        "generated_at": timezone.now().isoformat(),
        "file_name": _file_name(partner, kind, period.label),
        "format": partner.format,
        "content_type": tabular.CONTENT_TYPES[partner.format],
        "encoding": "utf-8-sig" if partner.format == "csv" else "",
        "columns": [key for key, _h in columns],
        "headers": [header for _k, header in columns],
        "counts": counter.as_dict(),
        "sha256": sink.sha256.hexdigest(),
        "signature_algorithm": "HMAC-SHA256",
        "key_id": partner.key_id,
    }
    manifest["hmac"] = rules.sign_manifest(manifest, partner.signing_key)
    return content, manifest


def _labelled(rows: Iterable[dict], labels: dict[str, dict[str, str]]) -> Iterator[dict]:
    keys = None
    for row in rows:
        if keys is None:
            keys = [key for key in labels if key in row]
        for key in keys:
            value = row[key]
            if value:
                row[key] = labels[key].get(value, value)
        yield row


def exchange_build(
    *,
    partner: ExchangePartner,
    kind: str,
    period: rules.Period,
    patient_ids=None,
    by=None,
) -> ExchangeRun | None:
    """Build, sign and store one package; None when this partner already has
    a run for this kind and period (a second beat run is a no-op)."""
    if ExchangeRun.objects.filter(partner=partner, kind=kind, period=period.label).exists():
        return None
    task = TaskRun.objects.create(
        job="referrals.exchange_build", key=f"{partner.pk}:{period.label}"
    )
    try:
        rows = package_rows(partner, period=period, patient_ids=patient_ids)
        content, manifest = build_package(partner, kind=kind, period=period, rows=rows)
        count = manifest["counts"]["rows"]
        run = ExchangeRun(
            partner=partner,
            kind=kind,
            period=period.label,
            rows=count,
            counts=manifest["counts"],
            sha256=manifest["sha256"],
            manifest=manifest,
            file_name=manifest["file_name"],
            task_run=task,
            created_by=by if getattr(by, "is_authenticated", False) else None,
        )
        run.set_content(content)
        del content
        with transaction.atomic():
            run.save(force_insert=True)
    except IntegrityError:
        task.status = TaskRun.Status.SUCCEEDED
        task.counts = {"skipped": "exists"}
        task.finished_at = timezone.now()
        task.save()
        return None
    except Exception as exc:
        task.status = TaskRun.Status.FAILED
        task.errors = [type(exc).__name__]
        task.finished_at = timezone.now()
        task.save()
        raise
    task.status = TaskRun.Status.SUCCEEDED
    task.total = count
    task.progress = count
    task.counts = manifest["counts"]
    task.finished_at = timezone.now()
    task.save()
    return run


def exchange_build_due(*, today=None) -> dict:
    """Beat (daily): each active partner gets the package of the last
    finished period of its schedule, once."""
    today = today or timezone.localdate()
    built = skipped = failed = 0
    for partner in ExchangePartner.objects.filter(is_active=True).select_related("region"):
        period = rules.last_finished_period(today, partner.schedule)
        try:
            run = exchange_build(partner=partner, kind=RunKind.SCHEDULED, period=period)
        except Exception:  # noqa: BLE001 - recorded in its TaskRun; other partners go on
            log.exception("exchange build failed for partner %s", partner.pk)
            failed += 1
            continue
        if run is None:
            skipped += 1
        else:
            built += 1
    return {"built": built, "skipped": skipped, "failed": failed}


def exchange_build_now(*, partner_id, by, request=None) -> ExchangeRun | None:
    """Build the last finished period's package now (idempotent)."""
    # scope first, outside the transaction: the audit row of a denied
    # access must survive the 404 (a rollback would erase it)
    exchange_partner_get_for_user(user=by, pk=partner_id, manage=True, request=request)
    return _exchange_build_now(partner_id=partner_id, by=by, request=request)


@transaction.atomic
def _exchange_build_now(*, partner_id, by, request=None) -> ExchangeRun | None:
    """Build the last finished period's package now (idempotent)."""
    if not can_manage_partners(by):
        raise PermissionDenied(ERR_NOT_ALLOWED)
    partner = exchange_partner_get_for_user(user=by, pk=partner_id, manage=True, request=request)
    period = rules.last_finished_period(timezone.localdate(), partner.schedule)
    run = exchange_build(partner=partner, kind=RunKind.SCHEDULED, period=period, by=by)
    audit_record(
        actor=by,
        action="exchange.build",
        object_type="exchange_partner",
        object_id=partner.pk,
        detail={"period": period.label, "built": run is not None},
        request=request,
    )
    return run


# How far back the high-risk push looks for alerts not yet sent: far longer
# than any transaction that raises one stays open, so an alert committed late
# (its ``raised_at`` earlier than alerts already sent) is still found.
HIGH_RISK_LOOKBACK = timedelta(days=1)


def _risk_events(partner: ExchangePartner, *, since: datetime):
    """(alert id, patient id) of the risk alerts raised in the partner's
    county after ``since`` and not yet sent to it: a follow-up assessed at
    risk ≥ HIGH_RISK_MIN_LEVEL (followups raises them)."""
    from followups.models import Alert, AlertKind

    sent = HighRiskSent.objects.filter(partner=partner, alert=OuterRef("pk"))
    return list(
        Alert.objects.filter(
            kind=AlertKind.RISK,
            raised_at__gt=since,
            patient__region__path__startswith=partner.region.path,
        )
        .exclude(Exists(sent))
        .values_list("pk", "patient_id")
    )


def exchange_high_risk(*, now: datetime | None = None) -> dict:
    """Beat (every minute): risk-3+ changes go to police and governance at
    once, in a small package of just those patients, not only quarterly.
    Each alert is sent to each partner once (HighRiskSent)."""
    now = now or timezone.now()
    built = 0
    partners = ExchangePartner.objects.filter(
        is_active=True,
        immediate_high_risk=True,
        department__in=(PartnerDepartment.POLICE, PartnerDepartment.GOVERNANCE),
    ).values_list("pk", flat=True)
    for pk in partners:
        with transaction.atomic():
            partner = (
                ExchangePartner.objects.select_for_update(skip_locked=True)
                .select_related("region")
                .filter(pk=pk)
                .first()
            )
            if partner is None:
                continue  # another worker has it
            if partner.high_risk_cursor is None:
                partner.high_risk_cursor = now  # start watching from now on
                partner.save(update_fields=["high_risk_cursor"])
                continue
            events = _risk_events(partner, since=partner.high_risk_cursor)
            # the horizon only moves forward, and stays a day behind
            horizon = max(partner.high_risk_cursor, now - HIGH_RISK_LOOKBACK)
            if horizon != partner.high_risk_cursor:
                partner.high_risk_cursor = horizon
                partner.save(update_fields=["high_risk_cursor"])
            if not events:
                continue
            local = timezone.localtime(now)
            period = rules.Period(
                label=local.strftime("%Y%m%dT%H%M%S"),
                start=timezone.localtime(partner.high_risk_cursor).date(),
                end=local.date(),
            )
            run = exchange_build(
                partner=partner,
                kind=RunKind.HIGH_RISK,
                period=period,
                patient_ids={pid for _aid, pid in events},
            )
            if run is None:
                continue  # a run of this second exists: the alerts go next time
            HighRiskSent.objects.bulk_create(
                [HighRiskSent(partner=partner, alert_id=aid, run=run) for aid, _pid in events],
                ignore_conflicts=True,
            )
            built += 1
    return {"built": built}


# --------------------------------------------------------------------------
# Delivery: retry with exponential back-off per endpoint, never a storm
# --------------------------------------------------------------------------


def exchange_deliver_due(*, now: datetime | None = None) -> dict:
    """Beat (every minute): deliver pending packages of every endpoint that is
    not backing off. One worker per endpoint at a time (a lease on the
    partner row); a failure backs the whole endpoint off exponentially, so
    its other packages wait too."""
    now = now or timezone.now()
    ready = Q(partner__backoff_until__isnull=True) | Q(partner__backoff_until__lte=now)
    partner_ids = list(
        ExchangeRun.objects.filter(ready, status=RunStatus.PENDING, partner__is_active=True)
        .order_by()
        .values_list("partner_id", flat=True)
        .distinct()
    )
    totals = {"delivered": 0, "failed_attempts": 0, "gave_up": 0}
    for pk in partner_ids:
        result = _deliver_partner(pk, now=now)
        for key, value in result.items():
            totals[key] += value
    return totals


def _deliver_partner(partner_id: int, *, now: datetime) -> dict:
    result = {"delivered": 0, "failed_attempts": 0, "gave_up": 0}
    free = Q(lease_until__isnull=True) | Q(lease_until__lte=now)
    ready = Q(backoff_until__isnull=True) | Q(backoff_until__lte=now)
    lease = now + timedelta(seconds=conf.get("EXCHANGE_LEASE_SECONDS"))
    if not ExchangePartner.objects.filter(free, ready, pk=partner_id).update(lease_until=lease):
        return result  # another worker holds this endpoint, or it is backing off
    try:
        partner = ExchangePartner.objects.select_related("region").get(pk=partner_id)
        runs = ExchangeRun.objects.filter(partner=partner, status=RunStatus.PENDING).order_by(
            "created_at"
        )
        for run in runs:
            outcome = _attempt(partner, run, now=now)
            result[outcome] += 1
            if outcome != "delivered":
                break  # the endpoint backs off; the rest wait their turn
    finally:
        ExchangePartner.objects.filter(pk=partner_id).update(lease_until=None)
    return result


def _attempt(partner: ExchangePartner, run: ExchangeRun, *, now: datetime) -> str:
    try:
        if partner.delivery == DeliveryMethod.FOLDER:
            transport.deliver_to_folder(
                folder=partner.folder_path,
                file_name=run.file_name,
                content=run.get_content(),
                manifest=run.manifest,
            )
        else:
            transport.deliver_https(
                url=partner.endpoint_url,
                content=run.get_content(),
                content_type=tabular.CONTENT_TYPES[run.manifest.get("format", partner.format)],
                manifest=run.manifest,
                idempotency_key=str(run.pk),
                ca_pem=partner.ca_certificate,
                timeout=conf.get("EXCHANGE_HTTP_TIMEOUT"),
            )
    except transport.DeliveryError as exc:
        failures = partner.consecutive_failures + 1
        partner.consecutive_failures = failures
        wait = rules.backoff_seconds(
            failures,
            base=conf.get("EXCHANGE_BACKOFF_SECONDS"),
            cap=conf.get("EXCHANGE_BACKOFF_MAX_SECONDS"),
        )
        ExchangePartner.objects.filter(pk=partner.pk).update(
            consecutive_failures=failures, backoff_until=now + timedelta(seconds=wait)
        )
        run.attempts += 1
        run.last_error = str(exc)[:300]
        gave_up = run.attempts >= conf.get("EXCHANGE_MAX_ATTEMPTS")
        if gave_up:
            run.status = RunStatus.FAILED
        run.save(update_fields=["attempts", "last_error", "status"])
        log.warning("exchange delivery of run %s failed (%s)", run.pk, run.last_error)
        return "gave_up" if gave_up else "failed_attempts"
    run.attempts += 1
    run.status = RunStatus.DELIVERED
    run.delivered_at = timezone.now()
    run.last_error = ""
    run.save(update_fields=["attempts", "status", "delivered_at", "last_error"])
    partner.consecutive_failures = 0
    ExchangePartner.objects.filter(pk=partner.pk).update(consecutive_failures=0, backoff_until=None)
    return "delivered"


def exchange_redeliver(*, run_id, by, request=None):
    """Queue a package that gave up for delivery again."""
    # scope first, outside the transaction: the audit row of a denied
    # access must survive the 404 (a rollback would erase it)
    exchange_run_get_for_user(user=by, pk=run_id, request=request)
    return _exchange_redeliver(run_id=run_id, by=by, request=request)


@transaction.atomic
def _exchange_redeliver(*, run_id, by, request=None) -> ExchangeRun:
    """Queue a package that gave up for delivery again."""
    if not can_manage_partners(by):
        raise PermissionDenied(ERR_NOT_ALLOWED)
    run = exchange_run_get_for_user(user=by, pk=run_id, request=request)
    run = ExchangeRun.objects.select_for_update().get(pk=run.pk)
    if run.status != RunStatus.FAILED:
        raise DomainError(ERR_NOT_FAILED)
    run.status = RunStatus.PENDING
    run.attempts = 0
    run.save(update_fields=["status", "attempts"])
    ExchangePartner.objects.filter(pk=run.partner_id).update(
        backoff_until=None, consecutive_failures=0
    )
    audit_record(
        actor=by,
        action="exchange.redeliver",
        object_type="exchange_run",
        object_id=run.pk,
        request=request,
    )
    return run


def exchange_package_download(*, run: ExchangeRun, by, reason: str, request=None) -> bytes:
    """The package bytes; a download of personal data is an audited export
    with the user's reason (accounts.exports). Raises PermissionDenied
    unless ``can_download_package``."""
    if not can_download_package(by, run):
        raise PermissionDenied(ERR_DOWNLOAD)
    export_record(
        user=by,
        what="exchange_package",
        reason=reason,
        count=run.rows or 0,
        object_id=run.pk,
        detail={"partner": run.partner.department},
        request=request,
    )
    return ExchangeRun.objects.get(pk=run.pk).get_content()
