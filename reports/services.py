"""Writes of the reports app: indicator snapshots and targets.

A snapshot is computed per county (the unit of work: one engine statement
over the county's register), stored for the county and every region inside
it, then summed upwards into the city and province rows. Storing is an
upsert on (region, period), so a second run leaves one row; a ``final`` row
is never written again (DESIGN.md → Jobs, "indicator snapshot").
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from django.apps import apps
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import Region, RegionLevel
from accounts.roles import VIEW_AGGREGATES, Role, role_of
from accounts.scoping import region_in_scope
from audit.services import audit_record
from core.errors import DomainError
from core.history import history_stamp
from followups.models import FollowUp
from patients.models import AssistantGuardian, Guardian, Incident, Patient
from reports import engine, reward, rules
from reports.models import IndicatorSnapshot, IndicatorTarget
from reports.rules import BY_KEY, PERCENT, Period

ERR_TARGET_NOT_ALLOWED = _("您的角色不能设定该地区的指标目标。")
ERR_TARGET_INDICATOR = _("该指标不设目标值。")
ERR_TARGET_VALUE = _("目标值应在0到100之间。")
ERR_TARGET_NEGATIVE = _("目标值不能为负数。")

TARGET_ROLES = frozenset({Role.ADMIN, Role.OFFICIAL, Role.PREVENTION_STAFF})

# Serialises snapshot writers of one quarter (the nightly run and the
# incremental one): a stale computation must not overwrite a fresher one.
# Different quarters touch different rows, so they may be filled at once.
_SNAPSHOT_LOCK = 0x6A66_7236


def _lock(period: Period) -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cur:
            cur.execute(
                "SELECT pg_advisory_xact_lock(%s, %s)",
                [_SNAPSHOT_LOCK, period.year * 10 + period.quarter],
            )


def _store(period: Period, statistics_date: date, rows: dict[str, dict], *, final: bool) -> int:
    """Upsert one row per region; rows already final are left as they are."""
    if not rows:
        return 0
    frozen = set(
        IndicatorSnapshot.objects.filter(
            period=period.code, region_id__in=list(rows), final=True
        ).values_list("region_id", flat=True)
    )
    now = timezone.now()
    objs = [
        IndicatorSnapshot(
            region_id=code,
            period=period.code,
            statistics_date=statistics_date,
            counts=counts,
            final=final,
            computed_at=now,
        )
        for code, counts in rows.items()
        if code not in frozen
    ]
    IndicatorSnapshot.objects.bulk_create(
        objs,
        update_conflicts=True,
        unique_fields=["region", "period"],
        update_fields=["statistics_date", "counts", "final", "computed_at"],
        batch_size=1000,
    )
    return len(objs)


def _with_reward(counts: dict, region: Region, on: date, fn) -> dict:
    if fn is not None:
        extra = reward.coverage_counts(region, on, fn)
        if extra is not None:
            counts.update(extra)
    return counts


@transaction.atomic
def snapshot_refresh_county(
    *, county: Region, period: Period, today: date | None = None, final: bool = False
) -> int:
    """Recompute ``county`` and the regions inside it for ``period``; returns
    the number of rows written (0 when the county's row is already final)."""
    today = today or timezone.localdate()
    _lock(period)
    if IndicatorSnapshot.objects.filter(region=county, period=period.code, final=True).exists():
        return 0
    statistics_date = period.statistics_date(today)
    counts = engine.subtree_counts(region=county, period=period, today=today)
    # reward coverage of the whole county at once, rolled up like the counts
    for code, extra in (reward.subtree_coverage(county, statistics_date) or {}).items():
        if code in counts:
            counts[code].update(extra)
    return _store(period, statistics_date, counts, final=final)


@transaction.atomic
def snapshot_rollup(
    *, region: Region, period: Period, today: date | None = None, final: bool = False
) -> int:
    """Store ``region``'s row as the sum of its children's rows (regions
    above the county: cities, provinces). Returns rows written (0 or 1).

    Only when every child has a row for the period: a sum of some children
    would be stored as the region's total (at the start of a quarter, before
    every county was computed), so the row is left as it is instead."""
    today = today or timezone.localdate()
    _lock(period)
    expected = set(Region.objects.filter(parent=region).values_list("code", flat=True))
    children = list(
        IndicatorSnapshot.objects.filter(period=period.code, region__parent=region).select_related(
            "region"
        )
    )
    if not children or {c.region_id for c in children} != expected:
        return 0
    statistics_date = period.statistics_date(today)
    counts = rules.sum_counts(c.counts for c in children)
    if region.population is not None:
        counts[rules.POPULATION] = region.population
    else:
        known = [c.counts.get(rules.POPULATION) for c in children]
        known = [p for p in known if p is not None]
        counts[rules.POPULATION] = sum(known) if known else None
    _with_reward(counts, region, statistics_date, reward.coverage_function())
    return _store(period, statistics_date, {region.code: counts}, final=final)


def _ancestors_deepest_first(counties: list[Region]) -> list[Region]:
    codes: dict[str, int] = {}
    for county in counties:
        parts = county.path.strip("/").split("/")[:-1]
        for depth, code in enumerate(parts):
            codes[code] = depth
    regions = list(Region.objects.filter(code__in=list(codes)))
    return sorted(regions, key=lambda r: (-codes[r.code], r.code))


def _refresh(counties: list[Region], periods: list[tuple[Period, bool]], today: date) -> int:
    written = 0
    frozen = set(
        IndicatorSnapshot.objects.filter(
            final=True,
            period__in=[p.code for p, _final in periods],
            region__in=[c.code for c in counties],
        ).values_list("region_id", "period")
    )
    ancestors = _ancestors_deepest_first(counties)
    for period, final in periods:
        changed = 0
        for county in counties:
            if (county.code, period.code) in frozen:
                continue
            changed += snapshot_refresh_county(
                county=county, period=period, today=today, final=final
            )
        if changed:
            for region in ancestors:
                changed += snapshot_rollup(region=region, period=period, today=today, final=final)
        written += changed
    return written


def open_periods(today: date) -> list[tuple[Period, bool]]:
    """The quarters a run fills: the last ``TREND_QUARTERS`` with their
    ``final`` flag. Final rows are skipped, so only the running quarter and
    one still in its grace period are recomputed night after night."""
    current = Period.containing(today)
    return [
        (p, p != current and p.finalisable(today)) for p in current.last_n(rules.TREND_QUARTERS)
    ]


def snapshots_nightly(
    *, today: date | None = None, periods: list[tuple[Period, bool]] | None = None
) -> dict:
    """Refresh every county for the open quarters and fill missing ones
    (``periods``: a part of ``open_periods(today)``, for a caller that
    spreads the quarters over several connections)."""
    today = today or timezone.localdate()
    counties = list(Region.objects.filter(level=RegionLevel.COUNTY).order_by("code"))
    rows = _refresh(counties, open_periods(today) if periods is None else periods, today)
    return {"rows": rows, "counties": len(counties)}


def _award_history():
    """The subsidies app's award history (grants, suspensions, ends,
    rejections change the reward coverage), when that app is installed."""
    try:
        return apps.get_model("subsidies", "Award").history
    except LookupError:
        return None


def changed_counties(*, since: datetime) -> list[Region]:
    """Counties with a change since ``since`` to what an indicator counts: a
    patient, follow-up, incident, guardian, assistant guardian or guardian
    reward award (from the history tables, indexed on ``history_date``),
    including every region a changed patient has lived in (transfers change
    two counties)."""
    changed = Q(history_date__gte=since)
    patients = (
        Q(id__in=FollowUp.history.filter(changed).values("patient_id"))
        | Q(id__in=Incident.history.filter(changed).values("patient_id"))
        | Q(id__in=Patient.history.filter(changed).values("id"))
        | Q(id__in=Guardian.history.filter(changed).values("patient_id"))
        | Q(id__in=AssistantGuardian.history.filter(changed).values("patient_id"))
    )
    awards = _award_history()
    if awards is not None:
        patients |= Q(id__in=awards.filter(changed).values("patient_id"))
    region_codes = set(
        Patient.history.filter(patients).values_list("region_id", flat=True).distinct()
    ) | set(Patient.objects.filter(patients).values_list("region_id", flat=True).distinct())
    if not region_codes:
        return []
    paths = Region.objects.filter(code__in=region_codes).values_list("path", flat=True)
    wanted = {code for path in paths for code in path.strip("/").split("/")}
    return list(Region.objects.filter(level=RegionLevel.COUNTY, code__in=wanted).order_by("code"))


def counties_without_row(period: Period) -> list[Region]:
    """Counties with no stored row for ``period`` (every county, on the first
    run of a quarter)."""
    stored = IndicatorSnapshot.objects.filter(period=period.code).values("region_id")
    return list(
        Region.objects.filter(level=RegionLevel.COUNTY).exclude(code__in=stored).order_by("code")
    )


def snapshots_refresh_changed(*, since: datetime, today: date | None = None) -> dict:
    """The incremental refresh of the quarters still open: the counties whose
    data changed since ``since``, and every county that has no row for the
    quarter yet (so a city or province is never the sum of some counties)."""
    today = today or timezone.localdate()
    changed = changed_counties(since=since)
    rows, refreshed = 0, set()
    for period, final in open_periods(today):
        if final:
            continue
        by_code = {c.code: c for c in changed}
        by_code.update({c.code: c for c in counties_without_row(period)})
        counties = [by_code[code] for code in sorted(by_code)]
        if counties:
            rows += _refresh(counties, [(period, final)], today)
            refreshed.update(by_code)
    return {"rows": rows, "counties": len(refreshed)}


# --- targets ------------------------------------------------------------------


def _check_target_capability(by, region: Region) -> None:
    if by is None:
        return  # the system itself (seed_demo)
    role = role_of(by)
    if role not in TARGET_ROLES:
        raise DomainError(ERR_TARGET_NOT_ALLOWED)
    if role != Role.ADMIN and not region_in_scope(by, VIEW_AGGREGATES, region):
        raise DomainError(ERR_TARGET_NOT_ALLOWED)


def target_check(*, indicator: str, region: Region, value, by) -> Decimal:
    """Raise DomainError unless ``by`` may set ``indicator``'s target for
    ``region`` to ``value``; returns the value as a Decimal. The same checks
    guard the page, the API and the Django admin."""
    _check_target_capability(by, region)
    definition = BY_KEY.get(indicator)
    if definition is None or definition.higher_is_better is None:
        raise DomainError(ERR_TARGET_INDICATOR, field="indicator")
    value = Decimal(value)
    if value < 0:
        raise DomainError(ERR_TARGET_NEGATIVE, field="value")
    if definition.unit == PERCENT and value > 100:
        raise DomainError(ERR_TARGET_VALUE, field="value")
    return value


@transaction.atomic
def target_set(
    *,
    indicator: str,
    region: Region,
    year: int,
    value: Decimal,
    by,
    source: str = "",
    request=None,
) -> IndicatorTarget:
    """Create or change the target of one indicator for a region and year."""
    value = target_check(indicator=indicator, region=region, value=value, by=by)
    target = (
        IndicatorTarget.objects.select_for_update()
        .filter(indicator=indicator, region=region, year=year)
        .first()
    ) or IndicatorTarget(indicator=indicator, region=region, year=year)
    created = target.pk is None
    before = None if created else str(target.value)
    target.value = value
    target.source = source
    target.full_clean()
    history_stamp(target, user=by, reason="report.target_set")
    target.save()
    audit_record(
        actor=by,
        action="report.target_set",
        object_type="indicator_target",
        object_id=target.pk,
        detail={
            "indicator": indicator,
            "region": region.code,
            "year": year,
            "value": str(value),
            "before": before,
            "created": created,
        },
        request=request,
    )
    return target


@transaction.atomic
def target_delete(*, target: IndicatorTarget, by, request=None) -> None:
    """Remove a target (the nearest ancestor's applies again)."""
    _check_target_capability(by, target.region)
    detail = {
        "indicator": target.indicator,
        "region": target.region_id,
        "year": target.year,
        "value": str(target.value),
    }
    pk = target.pk
    history_stamp(target, user=by, reason="report.target_deleted")
    target.delete()
    audit_record(
        actor=by,
        action="report.target_deleted",
        object_type="indicator_target",
        object_id=pk,
        detail=detail,
        request=request,
    )
