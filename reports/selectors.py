"""Reads of the reports app, scoped to the user.

Who sees which region's indicators: the regions the user holds
``view_aggregates_in`` on (officials, governance, prevention staff, finance)
and, for health staff, the regions of their patient scope. A region outside
that scope is 404 and audited. Only health staff holding ``view_patients_in``
over a region may open the patients behind a number (the drill-down), and
then only through ``patients.selectors.patient_list_visible_to``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from functools import cached_property

from django.core.cache import cache
from django.db.models import Min, QuerySet
from django.db.models.expressions import RawSQL
from django.http import Http404
from django.utils import timezone

from accounts.models import Region, RegionLevel
from accounts.roles import VIEW_AGGREGATES, VIEW_PATIENTS, Role, fieldset_of, role_of
from accounts.scoping import inside_q, region_in_scope, regions_with_perm
from audit.services import audit_record
from patients.models import Patient
from patients.selectors import patient_list_visible_to
from reports import engine, reward, rules, services
from reports.models import IndicatorSnapshot, IndicatorTarget
from reports.rules import (
    ERR_NOT_COMPUTED,
    ERR_PERIOD_BEFORE_DATA,
    IndicatorValue,
    Period,
    PeriodError,
)

# Regions computed live when no stored row serves (one county's register is
# one engine statement); above them only snapshots are read.
LIVE_LEVELS = frozenset({RegionLevel.COUNTY, RegionLevel.TOWNSHIP, RegionLevel.VILLAGE})
# Regions whose running quarter is always computed live, so a page agrees
# with the list behind its numbers: a township costs ≈ 20–40 ms of database
# time at 50,000 patients; a county ≈ 300–400 ms, over the dashboard's
# 300 ms budget, so a county's running quarter is read from its snapshot
# (≤ 15 minutes old) and its drill-down states that snapshot's time and count.
LIVE_RUNNING_LEVELS = frozenset({RegionLevel.TOWNSHIP, RegionLevel.VILLAGE})
# Departments that see their county's indicators through their patient scope,
# counts only (the reward, rehab and certificate rates are theirs).
PATIENT_SCOPE_AGGREGATE_ROLES = frozenset({Role.CIVIL_AFFAIRS, Role.DISABLED_FEDERATION})
EARLIEST_PERIOD_CACHE = "reports:earliest-period"
EARLIEST_PERIOD_SECONDS = 3600


def _tops(regions: list[Region]) -> list[Region]:
    tops: list[Region] = []
    for r in sorted(regions, key=lambda r: (len(r.path), r.path)):
        if not any(r.path.startswith(t.path) for t in tops):
            tops.append(r)
    return tops


def report_regions_for(user) -> list[Region]:
    """The top regions whose indicators ``user`` may see (none: no dashboard):
    those of ``view_aggregates_in``, and the patient scope of health staff and
    of civil affairs and the disabled persons' federation (counts only: only
    health staff may open the patients behind a number)."""
    regions = list(regions_with_perm(user, VIEW_AGGREGATES))
    if fieldset_of(user) == "health" or role_of(user) in PATIENT_SCOPE_AGGREGATE_ROLES:
        regions += regions_with_perm(user, VIEW_PATIENTS)
    return _tops(regions)


def region_in_report_scope(user, region: Region) -> bool:
    return any(region.path.startswith(t.path) for t in report_regions_for(user))


def can_drill_down(user, region: Region) -> bool:
    """Health staff whose patient scope covers ``region`` (never officials)."""
    return fieldset_of(user) == "health" and region_in_scope(user, VIEW_PATIENTS, region)


def _deny(user, code: str, request) -> None:
    audit_record(
        actor=user,
        action="access.denied",
        object_type="region",
        object_id=str(code)[:64],
        request=request,
    )
    raise Http404


def report_region_get_for_user(*, user, code: str | None = None, request=None) -> Region:
    """The region to report on: ``code`` when in scope, else the user's first
    top region; Http404 (audited) when out of scope, unknown or no scope."""
    tops = report_regions_for(user)
    if not code:
        if not tops:
            _deny(user, "", request)
        return tops[0]
    region = Region.objects.filter(code=str(code)[:12]).first()
    if region is None or not any(region.path.startswith(t.path) for t in tops):
        _deny(user, code, request)
    return region


def drilldown_region_get_for_user(*, user, code: str, request=None) -> Region:
    """A region whose patients the user may list behind a number, or 404."""
    region = Region.objects.filter(code=str(code or "")[:12]).first()
    if region is None or not can_drill_down(user, region):
        _deny(user, code or "", request)
    return region


# --- periods ------------------------------------------------------------------


def earliest_period() -> Period:
    """The first quarter with data: the earliest registration or stored
    snapshot (cached for an hour)."""
    code = cache.get(EARLIEST_PERIOD_CACHE)
    if code is None:
        first = Patient.objects.aggregate(first=Min("registered_on"))["first"]
        snap = IndicatorSnapshot.objects.aggregate(first=Min("period"))["first"]
        candidates = [Period.containing(first)] if first else []
        if snap:
            candidates.append(Period.parse(snap))
        code = (min(candidates) if candidates else Period.containing(timezone.localdate())).code
        cache.set(EARLIEST_PERIOD_CACHE, code, EARLIEST_PERIOD_SECONDS)
    return Period.parse(code)


def period_check(period: Period, today: date) -> Period:
    """``period`` if it can be reported: started, and not before the first
    quarter with data (looked up only for quarters older than the trend)."""
    period.statistics_date(today)  # PeriodError when it has not started
    if period < Period.containing(today).last_n(rules.TREND_QUARTERS)[0]:
        first = earliest_period()
        if period < first:
            raise PeriodError(ERR_PERIOD_BEFORE_DATA % {"first": first.label})
    return period


# --- targets ------------------------------------------------------------------


def targets_for(regions: list[Region], year: int) -> dict[str, dict[str, Decimal]]:
    """Each region's targets for ``year``: its own rows, else the nearest
    ancestor's, indicator by indicator (one query)."""
    chains = {r.code: r.path.strip("/").split("/") for r in regions}
    codes = {code for chain in chains.values() for code in chain}
    by_region: dict[str, dict[str, Decimal]] = defaultdict(dict)
    for region_id, indicator, value in IndicatorTarget.objects.filter(
        year=year, region_id__in=codes
    ).values_list("region_id", "indicator", "value"):
        by_region[region_id][indicator] = value
    out = {}
    for code, chain in chains.items():
        merged: dict[str, Decimal] = {}
        for ancestor in chain:  # root first, so the nearest region wins
            merged.update(by_region.get(ancestor, {}))
        out[code] = merged
    return out


# --- indicator reports --------------------------------------------------------


@dataclass
class RegionReport:
    """One region's indicators for one period, ready for a page, the API or
    an export: ``values`` in ``rules.INDICATORS`` order."""

    region: Region
    period: Period
    statistics_date: date | None
    counts: dict
    final: bool = False
    computed_at: datetime | None = None
    live: bool = False
    targets: dict = field(default_factory=dict)
    values: list[IndicatorValue] = field(init=False)

    def __post_init__(self):
        self.values = rules.evaluate(self.counts, self.targets)

    @property
    def available(self) -> bool:
        return bool(self.counts)

    @cached_property
    def by_key(self) -> dict[str, IndicatorValue]:
        return {v.key: v for v in self.values}


def _from_snapshot(region, period, snap, targets) -> RegionReport:
    return RegionReport(
        region=region,
        period=period,
        statistics_date=snap.statistics_date,
        counts=snap.counts,
        final=snap.final,
        computed_at=snap.computed_at,
        targets=targets,
    )


def _always_live(region: Region, period: Period, today: date) -> bool:
    return region.level in LIVE_RUNNING_LEVELS and period.is_current(today)


def snapshot_row(*, region: Region, period: Period) -> IndicatorSnapshot | None:
    """The stored row of ``region`` and ``period``: a drill-down opened from a
    number read from it states its time and count beside the live list."""
    return IndicatorSnapshot.objects.filter(region=region, period=period.code).first()


def reports_for(
    *, anchor: Region, regions: list[Region], period: Period, today: date
) -> dict[str, RegionReport]:
    """Reports of ``regions`` (``anchor`` and regions inside it) for
    ``period``, in a fixed number of queries whatever the number of regions:

    - the running quarter of a township or village is computed live (one
      engine statement over ``anchor``), so the numbers are those the
      drill-down lists; reward coverage, which the subsidies app computes,
      comes from the quarter's latest snapshot rows when there are any;
    - any other quarter, and every quarter of a county or above, is read
      from the snapshots; a county or a region below it without one is
      computed live;
    - a city or province without a snapshot for the quarter raises
      PeriodError (ERR_NOT_COMPUTED): computed live it would read the whole
      register (minutes, not a page).
    """
    statistics_date = period.statistics_date(today)
    targets = targets_for(regions, period.year)
    snaps = {
        s.region_id: s
        for s in IndicatorSnapshot.objects.filter(
            period=period.code, region_id__in=[r.code for r in regions]
        )
    }
    if anchor.code in snaps and not _always_live(anchor, period, today):
        return {
            r.code: (
                _from_snapshot(r, period, snaps[r.code], targets[r.code])
                if r.code in snaps
                else RegionReport(r, period, None, {}, targets=targets[r.code])
            )
            for r in regions
        }
    if anchor.level not in LIVE_LEVELS:
        raise PeriodError(ERR_NOT_COMPUTED)
    counts = engine.subtree_counts(region=anchor, period=period, today=today)
    for code, snap in snaps.items():
        if code in counts and all(key in snap.counts for key in rules.REWARD_KEYS):
            counts[code].update({key: snap.counts[key] for key in rules.REWARD_KEYS})
    if not all(key in counts[anchor.code] for key in rules.REWARD_KEYS):
        extra = reward.coverage_counts(anchor, statistics_date)
        if extra is not None:
            counts[anchor.code].update(extra)
    return {
        r.code: RegionReport(
            r,
            period,
            statistics_date,
            counts.get(r.code, {}),
            live=True,
            targets=targets[r.code],
        )
        for r in regions
    }


def region_reports(
    *, region: Region, children: list[Region], period: Period, today: date
) -> tuple[RegionReport, list[RegionReport]]:
    """``region`` and its ``children`` for ``period`` (see ``reports_for``)."""
    out = reports_for(anchor=region, regions=[region, *children], period=period, today=today)
    return out[region.code], [out[c.code] for c in children]


def breakdown(
    *, region: Region, period: Period, today: date
) -> tuple[RegionReport, list[RegionReport], dict[str, list[RegionReport]]]:
    """``region``, its children and each child's children (the exports)."""
    children = children_of(region)
    grandchildren = list(Region.objects.filter(parent__in=children).order_by("code"))
    out = reports_for(
        anchor=region, regions=[region, *children, *grandchildren], period=period, today=today
    )
    below: dict[str, list[RegionReport]] = defaultdict(list)
    for g in grandchildren:
        below[g.parent_id].append(out[g.code])
    return out[region.code], [out[c.code] for c in children], dict(below)


def region_report(*, region: Region, period: Period, today: date | None = None) -> RegionReport:
    """One region's indicators (the API and the exports)."""
    main, _rows = region_reports(
        region=region, children=[], period=period, today=today or timezone.localdate()
    )
    return main


def children_of(region: Region) -> list[Region]:
    return list(Region.objects.filter(parent=region).order_by("code"))


def trend(*, region: Region, period: Period, current: RegionReport) -> list[RegionReport | None]:
    """The region's last ``TREND_QUARTERS`` quarters ending with ``period``,
    oldest first, from the snapshots (None where none was stored); the
    selected quarter is ``current`` so the chart agrees with the cards."""
    periods = period.last_n(rules.TREND_QUARTERS)
    snaps = {
        s.period: s
        for s in IndicatorSnapshot.objects.filter(
            region=region, period__in=[p.code for p in periods[:-1]]
        )
    }
    out: list[RegionReport | None] = []
    for p in periods[:-1]:
        snap = snaps.get(p.code)
        out.append(_from_snapshot(region, p, snap, {}) if snap else None)
    out.append(current)
    return out


def ancestors_of(region: Region) -> list[Region]:
    """Root first, without the region itself (one query)."""
    codes = region.path.strip("/").split("/")[:-1]
    found = {r.code: r for r in Region.objects.filter(code__in=codes)}
    return [found[c] for c in codes if c in found]


# --- drill-down -----------------------------------------------------------------


@dataclass(frozen=True)
class DrillTarget:
    key: str
    label: str
    numerator: str
    denominator: str | None


def drill_targets() -> dict[str, DrillTarget]:
    """What a number on a page may open: each indicator whose numerator is a
    set of patients, and each risk level of the distribution."""
    out = {
        i.key: DrillTarget(
            i.key, i.label, i.numerator, i.denominator if i.unit != rules.COUNT else None
        )
        for i in rules.INDICATORS
        if i.drill
    }
    for level in range(6):
        key = f"risk_{level}"
        out[key] = DrillTarget(key, RISK_LABELS[key], key, None)
    out["risk_none"] = DrillTarget("risk_none", RISK_LABELS["risk_none"], "risk_none", None)
    return out


RISK_LABELS = {
    **{f"risk_{n}": rules.risk_label(n) for n in range(6)},
    "risk_none": rules.risk_label(None),
}


def drilldown_patients(
    *,
    user,
    region: Region,
    period: Period,
    target: DrillTarget,
    missing: bool = False,
    today: date | None = None,
) -> QuerySet[Patient]:
    """The visible patients counted in ``target``'s numerator for ``region``
    and ``period`` (with ``missing``: counted in its denominator but not in
    its numerator). Same SQL as the indicator, so for a region inside the
    user's scope the count equals the number on the dashboard."""
    today = today or timezone.localdate()
    if missing and target.denominator:
        sql, params = engine.flag_ids_sql(
            region=region,
            period=period,
            today=today,
            key=target.numerator,
            base=target.denominator,
        )
    else:
        sql, params = engine.flag_ids_sql(
            region=region, period=period, today=today, key=target.numerator
        )
    # the engine's own statement; every value in it is a parameter
    return patient_list_visible_to(user=user).filter(pk__in=RawSQL(sql, params))  # noqa: S611 - the engine's statement, values are parameters  # nosec B611


# --- targets page ---------------------------------------------------------------

TARGET_LEVELS = (RegionLevel.PROVINCE, RegionLevel.CITY, RegionLevel.COUNTY, RegionLevel.TOWNSHIP)


def can_set_targets(user) -> bool:
    return role_of(user) in services.TARGET_ROLES


def target_regions_for(user) -> list[Region]:
    """Regions whose targets ``user`` may set (townships and above): the
    regions of ``view_aggregates_in`` and those inside them; any for the
    system administrator."""
    role = role_of(user)
    if role not in services.TARGET_ROLES:
        return []
    qs = Region.objects.filter(level__in=TARGET_LEVELS)
    if role != Role.ADMIN:
        tops = _tops(list(regions_with_perm(user, VIEW_AGGREGATES)))
        if not tops:
            return []
        qs = qs.filter(inside_q(tops, path_field="path"))
    return list(qs.order_by("path"))


def target_list_for(*, user, year: int) -> QuerySet[IndicatorTarget]:
    """The targets of ``year`` the user may change, by region."""
    regions = target_regions_for(user)
    return (
        IndicatorTarget.objects.filter(year=year, region__in=regions)
        .select_related("region")
        .order_by("region__path", "indicator")
    )
