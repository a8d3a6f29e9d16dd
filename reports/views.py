"""Dashboard pages, the drill-down list and the Excel exports.

Views only gather: the scope check and the numbers come from
``reports.selectors``; templates get ready-made rows and flags (``drill``
links only for health staff whose patient scope covers the region).
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from accounts.models import Region
from accounts.roles import fieldset_of
from audit.services import audit_record
from patients.fieldsets import FULL_ID_FIELDSETS
from patients.models import Patient
from reports import engine, exports, rules, selectors
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
    code = request.GET.get("period")
    if not code:
        return Period.containing(today)
    try:
        period = Period.parse(code)
        period.statistics_date(today)
    except PeriodError as exc:
        raise Http404 from exc
    return period


def _query(**params) -> str:
    return urlencode({k: v for k, v in params.items() if v not in (None, "")})


def _dashboard_url(region: Region, period: Period) -> str:
    return f"{reverse('reports:dashboard')}?{_query(region=region.code, period=period.code)}"


def _drill_url(region: Region, period: Period, key: str, *, missing: bool = False) -> str:
    params = {"region": region.code, "period": period.code, "indicator": key}
    if missing:
        params["missing"] = "1"
    return f"{reverse('reports:patients')}?{_query(**params)}"


def _card(value: rules.IndicatorValue, *, region, period, drill: bool) -> dict:
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
        "drill_url": _drill_url(region, period, ind.key) if can_open else "",
        "missing_url": (
            _drill_url(region, period, ind.key, missing=True)
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
            url = _drill_url(report.region, report.period, key)
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
                "drill_url": (_drill_url(report.region, report.period, key) if drill and n else ""),
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
                    _card(main.by_key[key], region=region, period=period, drill=drill)
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
    period = _period_from(request, today)
    context = dashboard_context(user=request.user, region=region, period=period, today=today)
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
    period = _period_from(request, today)
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
        "page_query": base,
        "back_url": _dashboard_url(region, period),
        "toggle_url": (
            _drill_url(region, period, target.key, missing=not missing)
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
@require_GET
def export_indicators(request):
    """The indicator table and each child region's breakdown, as Excel."""
    user = request.user
    today = timezone.localdate()
    region = selectors.report_region_get_for_user(
        user=user, code=request.GET.get("region"), request=request
    )
    period = _period_from(request, today)
    content = exports.indicators_workbook(region=region, period=period, today=today)
    audit_record(
        actor=user,
        action="report.export",
        object_type="region",
        object_id=region.code,
        detail={"period": period.code, "kind": "indicators"},
        request=request,
    )
    return _xlsx(content, f"indicators-{region.code}-{period.code}.xlsx")


@never_cache
@require_GET
def export_exchange(request):
    """The quarterly report in the layout of the national information
    exchange form (信息交换表): counts by township and institution type."""
    user = request.user
    today = timezone.localdate()
    region = selectors.report_region_get_for_user(
        user=user, code=request.GET.get("region"), request=request
    )
    period = _period_from(request, today)
    content = exports.exchange_workbook(region=region, period=period, today=today)
    audit_record(
        actor=user,
        action="report.export",
        object_type="region",
        object_id=region.code,
        detail={"period": period.code, "kind": "exchange"},
        request=request,
    )
    return _xlsx(content, f"exchange-{region.code}-{period.code}.xlsx")


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _xlsx(content: bytes, filename: str) -> HttpResponse:
    response = HttpResponse(content, content_type=XLSX)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
