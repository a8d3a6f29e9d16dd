"""Dashboard pages, the drill-down list and the Excel exports.

Views only gather: the scope check and the numbers come from
``reports.selectors``; templates get ready-made rows and flags (``drill``
links only for health staff whose patient scope covers the region).
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from accounts.exports import export_reason, export_view
from accounts.models import Region
from accounts.roles import fieldset_of
from audit.services import audit_record, export_record
from core.errors import DomainError
from patients.fieldsets import FULL_ID_FIELDSETS
from patients.models import Patient
from reports import engine, exports, rules, selectors, services
from reports.forms import TargetForm
from reports.rules import BY_KEY, COUNT, Period, PeriodError

PAGE_SIZE = 30

# The stat cards of a dashboard, in sections.
CARD_SECTIONS = (
    (
        _("管理"),
        (
            "registered",
            "managed",
            "management_rate",
            "standard_management_rate",
            "face_to_face_rate",
        ),
    ),
    (_("治疗与病情"), ("medication_rate", "regular_medication_rate", "stable_rate")),
    (_("风险与关注"), ("high_risk", "overdue", "lost", "incident_rate")),
    (
        _("保障与康复"),
        ("prevalence_permille", "rehab_rate", "certificate_rate", "reward_coverage"),
    ),
)
# Columns of the table by township (or by village, county …).
TABLE_COLUMNS = (
    "registered",
    "management_rate",
    "standard_management_rate",
    "face_to_face_rate",
    "medication_rate",
    "regular_medication_rate",
    "stable_rate",
    "high_risk",
    "overdue",
    "lost",
    "incident_rate",
    "rehab_rate",
    "certificate_rate",
    "reward_coverage",
    "prevalence_permille",
)
# Lines of the trend chart.
TREND_SERIES = (
    "management_rate",
    "standard_management_rate",
    "face_to_face_rate",
    "medication_rate",
    "regular_medication_rate",
    "stable_rate",
)


def _period_from(request, today) -> Period:
    """The ``period`` parameter (default: the running quarter); PeriodError
    when malformed, not started or before the first data."""
    code = request.GET.get("period")
    if not code:
        return Period.containing(today)
    return selectors.period_check(Period.parse(code), today)


def _refused(request, *, region: Region, today, error: PeriodError, status: int = 400):
    """The page that says why a period cannot be shown, with the quarters
    that can (400 for a bad period, 200 for one not summed up yet)."""
    choices = Period.containing(today).last_n(rules.TREND_QUARTERS)
    return render(
        request,
        "reports/unavailable.html",
        {
            "region": region,
            "message": error.message,
            "period_choices": list(reversed(choices)),
            "dashboard_url": reverse("reports:dashboard"),
        },
        status=status,
    )


def _query(**params) -> str:
    return urlencode({k: v for k, v in params.items() if v not in (None, "")})


def _dashboard_url(region: Region, period: Period) -> str:
    return f"{reverse('reports:dashboard')}?{_query(region=region.code, period=period.code)}"


def _drill_url(
    region: Region, period: Period, key: str, *, missing: bool = False, snapshot: bool = False
) -> str:
    """The list behind a number; ``snapshot``: the number was read from a
    stored snapshot, which the list then names (time and count)."""
    params = {"region": region.code, "period": period.code, "indicator": key}
    if missing:
        params["missing"] = "1"
    if snapshot:
        params["snapshot"] = "1"
    return f"{reverse('reports:patients')}?{_query(**params)}"


def _card(value: rules.IndicatorValue, *, region, period, drill: bool, snapshot: bool) -> dict:
    ind = value.indicator
    can_open = drill and ind.drill and value.available
    return {
        "key": ind.key,
        "label": ind.label,
        "definition": ind.definition,
        "display": rules.format_value(value),
        "numerator": value.numerator,
        "denominator": value.denominator,
        "is_rate": ind.unit != COUNT,
        "target": value.target,
        "target_display": _target_display(value),
        "below": value.met is False,
        "available": value.available,
        "drill_url": _drill_url(region, period, ind.key, snapshot=snapshot) if can_open else "",
        "missing_url": (
            _drill_url(region, period, ind.key, missing=True, snapshot=snapshot)
            if can_open and ind.unit != COUNT and value.denominator
            else ""
        ),
    }


def _target_display(value: rules.IndicatorValue) -> str:
    if value.target is None:
        return ""
    sign = "≥" if value.indicator.higher_is_better else "≤"
    suffix = {rules.PERCENT: "%", rules.PERMILLE: "‰"}.get(value.unit, "")
    return f"{sign}{value.target}{suffix}"


def _cells(report: selectors.RegionReport, *, drill: bool) -> list[dict]:
    by_key = report.by_key
    cells = []
    for key in TABLE_COLUMNS:
        value = by_key[key]
        url = ""
        if drill and value.indicator.drill and value.available and value.numerator:
            url = _drill_url(report.region, report.period, key, snapshot=not report.live)
        cells.append(
            {
                "key": key,
                "label": value.indicator.label,
                "display": rules.format_value(value),
                "below": value.met is False,
                "drill_url": url,
            }
        )
    return cells


def _trend_data(points: list[selectors.RegionReport | None], periods: list[Period]) -> dict:
    series = []
    for key in TREND_SERIES:
        values = []
        for point in points:
            v = point.by_key[key].value if point is not None else None
            values.append(float(v) if v is not None else None)
        series.append({"key": key, "label": str(BY_KEY[key].label), "values": values})
    return {"labels": [p.code for p in periods], "series": series}


def _trend_rows(points, periods) -> list[dict]:
    rows = []
    for period, point in zip(periods, points, strict=True):
        rows.append(
            {
                "period": period,
                "cells": [
                    {
                        "label": BY_KEY[key].label,
                        "display": (
                            rules.format_value(point.by_key[key]) if point is not None else "—"
                        ),
                    }
                    for key in TREND_SERIES
                ],
            }
        )
    return rows


def _risk_rows(report: selectors.RegionReport, *, drill: bool) -> list[dict]:
    rows = []
    registered = report.counts.get("registered") or 0
    for key in rules.RISK_KEYS:
        n = report.counts.get(key)
        rows.append(
            {
                "key": key,
                "css": key.replace("_", "-") if key != "risk_none" else "",
                "label": selectors.RISK_LABELS[key],
                "count": n if n is not None else "—",
                "share": rules.ratio(n, registered, 100) if n is not None else None,
                "drill_url": (
                    _drill_url(report.region, report.period, key, snapshot=not report.live)
                    if drill and n
                    else ""
                ),
            }
        )
    return rows


def dashboard_context(*, user, region: Region, period: Period, today) -> dict:
    """Everything the dashboard shows, for ``user`` (None: no links to
    patients or other regions, as in the benchmark). A fixed number of
    queries whatever the number of child regions."""
    children = selectors.children_of(region)
    main, rows = selectors.region_reports(
        region=region, children=children, period=period, today=today
    )
    drill = selectors.can_drill_down(user, region)
    periods = period.last_n(rules.TREND_QUARTERS)
    points = selectors.trend(region=region, period=period, current=main)
    choices = Period.containing(today).last_n(rules.TREND_QUARTERS)
    if period not in choices:
        choices.insert(0, period)
    return {
        "region": region,
        "period": period,
        "report": main,
        "period_choices": list(reversed(choices)),
        "breadcrumb": [
            {
                "name": a.name,
                "url": (
                    _dashboard_url(a, period) if selectors.region_in_report_scope(user, a) else ""
                ),
            }
            for a in selectors.ancestors_of(region)
        ],
        "sections": [
            {
                "title": title,
                "cards": [
                    _card(
                        main.by_key[key],
                        region=region,
                        period=period,
                        drill=drill,
                        snapshot=not main.live,
                    )
                    for key in keys
                ],
            }
            for title, keys in CARD_SECTIONS
        ],
        "columns": [BY_KEY[key].label for key in TABLE_COLUMNS],
        "total_cells": _cells(main, drill=drill),
        "rows": [
            {
                "region": r.region,
                "url": _dashboard_url(r.region, period),
                "cells": _cells(r, drill=selectors.can_drill_down(user, r.region)),
            }
            for r in rows
        ],
        "children_label": _children_label(children),
        "trend_data": _trend_data(points, periods),
        "trend_labels": [BY_KEY[key].label for key in TREND_SERIES],
        "trend_rows": _trend_rows(points, periods),
        "risk_rows": _risk_rows(main, drill=drill),
        "risk_data": {
            "labels": [str(selectors.RISK_LABELS[k]) for k in rules.RISK_KEYS],
            "values": [main.counts.get(k) for k in rules.RISK_KEYS],
        },
        "reward_available": main.by_key["reward_coverage"].available,
        "targets_url": reverse("reports:targets") if selectors.can_set_targets(user) else "",
        "drill": drill,
        "export_url": f"{reverse('reports:export-indicators')}?"
        + _query(region=region.code, period=period.code),
        "exchange_url": f"{reverse('reports:export-exchange')}?"
        + _query(region=region.code, period=period.code),
    }


@never_cache
@require_GET
def dashboard(request):
    """``/reports/``: a region's indicators against targets, its children,
    quarterly trends and the risk distribution (counts only for officials)."""
    today = timezone.localdate()
    region = selectors.report_region_get_for_user(
        user=request.user, code=request.GET.get("region"), request=request
    )
    try:
        period = _period_from(request, today)
    except PeriodError as exc:
        return _refused(request, region=region, today=today, error=exc)
    try:
        context = dashboard_context(user=request.user, region=region, period=period, today=today)
    except PeriodError as exc:  # a city or province not summed up for the quarter
        return _refused(request, region=region, today=today, error=exc, status=200)
    return render(request, "reports/dashboard.html", context)


def _children_label(children: list[Region]):
    if not children:
        return ""
    return {
        "city": _("按市"),
        "county": _("按县（区）"),
        "township": _("按乡镇（街道）"),
        "village": _("按村（居）"),
    }.get(children[0].level, _("按下级地区"))


@never_cache
@require_GET
def drilldown(request):
    """``/reports/patients/``: the patients behind one number (health staff
    only, within their patient scope), with the same SQL as the indicator."""
    user = request.user
    today = timezone.localdate()
    region = selectors.drilldown_region_get_for_user(
        user=user, code=request.GET.get("region", ""), request=request
    )
    try:
        period = _period_from(request, today)
    except PeriodError as exc:
        return _refused(request, region=region, today=today, error=exc)
    target = selectors.drill_targets().get(request.GET.get("indicator", ""))
    if target is None:
        raise Http404
    missing = request.GET.get("missing") == "1" and target.denominator is not None
    qs = selectors.drilldown_patients(
        user=user, region=region, period=period, target=target, missing=missing, today=today
    ).select_related("region__parent")
    qs = qs.order_by("region_id", "name", "pk")
    with engine.tuned(region):
        paginator = Paginator(qs, PAGE_SIZE)
        page = paginator.get_page(request.GET.get("page"))
        patients = list(page.object_list)
    audit_record(
        actor=user,
        action="report.drilldown",
        object_type="region",
        object_id=region.code,
        detail={
            "period": period.code,
            "indicator": target.key,
            "missing": missing,
            "count": paginator.count,
        },
        request=request,
    )
    snapshot = None
    if request.GET.get("snapshot") == "1":
        row = selectors.snapshot_row(region=region, period=period)
        if row is not None:
            shown = rules.drill_count(row.counts, target.numerator, target.denominator, missing)
            snapshot = {"computed_at": row.computed_at, "final": row.final, "count": shown}
    full_id = fieldset_of(user) in FULL_ID_FIELDSETS
    base = _query(
        region=region.code,
        period=period.code,
        indicator=target.key,
        missing="1" if missing else "",
    )
    context = {
        "region": region,
        "period": period,
        "target": target,
        "missing": missing,
        "page": page,
        "count": paginator.count,
        "rows": [_drill_row(p, full_id=full_id) for p in patients],
        "snapshot": snapshot,
        "page_query": base,
        "back_url": _dashboard_url(region, period),
        "toggle_url": (
            _drill_url(
                region,
                period,
                target.key,
                missing=not missing,
                snapshot=snapshot is not None,
            )
            if target.denominator
            else ""
        ),
    }
    return render(request, "reports/drilldown.html", context)


def _drill_row(patient: Patient, *, full_id: bool) -> dict:
    region = patient.region
    township = region.parent.name if region.parent_id and region.parent else ""
    return {
        "patient": patient,
        "id_number": patient.id_number if full_id else patient.id_number_masked,
        "place": f"{township} {region.name}".strip(),
        "risk": rules.risk_label(patient.risk_level),
        "detail_url": reverse("patients:detail", args=[patient.pk]),
    }


@never_cache
@require_http_methods(["GET", "POST"])
@export_view("report_indicators")
def export_indicators(request):
    """The indicator table and each child region's breakdown, as Excel."""
    user = request.user
    today = timezone.localdate()
    region = selectors.report_region_get_for_user(
        user=user, code=request.GET.get("region"), request=request
    )
    try:
        period = _period_from(request, today)
        reason = export_reason(request)
        content = exports.indicators_workbook(region=region, period=period, today=today)
    except PeriodError as exc:
        return _refused(request, region=region, today=today, error=exc)
    export_record(
        user=user,
        what="report_indicators",
        reason=reason,
        count=0,
        object_id=region.code,
        detail={"period": period.code},
        request=request,
    )
    return _xlsx(content, f"indicators-{region.code}-{period.code}.xlsx")


@never_cache
@require_http_methods(["GET", "POST"])
@export_view("report_exchange")
def export_exchange(request):
    """The quarterly report in the layout of the national information
    exchange form (信息交换表): counts by township and institution type."""
    user = request.user
    today = timezone.localdate()
    region = selectors.report_region_get_for_user(
        user=user, code=request.GET.get("region"), request=request
    )
    try:
        period = _period_from(request, today)
        reason = export_reason(request)
        content = exports.exchange_workbook(region=region, period=period, today=today)
    except PeriodError as exc:
        return _refused(request, region=region, today=today, error=exc)
    export_record(
        user=user,
        what="report_exchange",
        reason=reason,
        count=0,
        object_id=region.code,
        detail={"period": period.code},
        request=request,
    )
    return _xlsx(content, f"exchange-{region.code}-{period.code}.xlsx")


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _xlsx(content: bytes, filename: str) -> HttpResponse:
    response = HttpResponse(content, content_type=XLSX)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@never_cache
@require_http_methods(["GET", "POST"])
def targets(request):
    """``/reports/targets/``: the targets of a year for the regions the user
    may set them for (officials, prevention staff, the system administrator),
    and a form to set one through ``services.target_set`` (checked, kept in
    the history and audited)."""
    user = request.user
    if not selectors.can_set_targets(user):
        raise PermissionDenied
    regions = selectors.target_regions_for(user)
    today = timezone.localdate()
    try:
        year = int(request.GET.get("year") or today.year)
    except ValueError:
        year = today.year
    initial = {"year": year, "region": regions[0].code if regions else None}
    data = request.POST if request.method == "POST" else None
    form = TargetForm(data, regions=regions, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            services.target_set(
                indicator=data["indicator"],
                region=data["region"],
                year=data["year"],
                value=data["value"],
                source=data["source"],
                by=user,
                request=request,
            )
        except DomainError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        else:
            messages.success(request, _("指标目标已保存。"))
            return redirect(f"{reverse('reports:targets')}?{_query(year=data['year'])}")
    rows = [
        {
            "region": t.region,
            "indicator": BY_KEY[t.indicator].label,
            "value": t.value,
            "unit": {rules.PERCENT: "%", rules.PERMILLE: "‰"}.get(BY_KEY[t.indicator].unit, ""),
            "source": t.source,
        }
        for t in selectors.target_list_for(user=user, year=year)
    ]
    context = {
        "form": form,
        "rows": rows,
        "year": year,
        "years": list(range(today.year + 1, today.year - 5, -1)),
        "dashboard_url": reverse("reports:dashboard"),
    }
    return render(request, "reports/targets.html", context)
