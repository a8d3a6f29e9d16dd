"""Timing hooks for the benchmark (issue 8): render a region's dashboard
exactly as ``/reports/`` does (same selectors, same template), without a
signed-in user, and count its queries."""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.contrib.auth.models import AnonymousUser
from django.db import connection
from django.template.loader import render_to_string
from django.test.client import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import Region
from reports import engine
from reports.rules import Period
from reports.views import dashboard_context


@dataclass(frozen=True)
class Timing:
    region: str
    period: str
    runs: list[float]  # seconds
    queries: int
    html_bytes: int

    @property
    def median_ms(self) -> float:
        ordered = sorted(self.runs)
        return ordered[len(ordered) // 2] * 1000

    @property
    def max_ms(self) -> float:
        return max(self.runs) * 1000


def render_dashboard(region_code: str, period_code: str | None = None) -> tuple[str, int]:
    """The dashboard HTML of a region and the number of queries it took."""
    today = timezone.localdate()
    region = Region.objects.get(code=region_code)
    period = Period.parse(period_code) if period_code else Period.containing(today)
    request = RequestFactory().get(reverse("reports:dashboard"), {"region": region_code})
    request.user = AnonymousUser()
    with CaptureQueriesContext(connection) as queries:
        context = dashboard_context(user=None, region=region, period=period, today=today)
        html = render_to_string("reports/dashboard.html", context, request=request)
    return html, len(queries)


def time_dashboard(region_code: str, period_code: str | None = None, repeat: int = 10) -> Timing:
    render_dashboard(region_code, period_code)  # warm caches and connections
    runs = []
    queries = size = 0
    for _ in range(repeat):
        started = time.perf_counter()
        html, queries = render_dashboard(region_code, period_code)
        runs.append(time.perf_counter() - started)
        size = len(html.encode())
    period = period_code or Period.containing(timezone.localdate()).code
    return Timing(region_code, period, runs, queries, size)


def time_engine(region_code: str, period_code: str | None = None, repeat: int = 3) -> Timing:
    """The live computation a snapshot runs (one engine statement + rollup)."""
    today = timezone.localdate()
    region = Region.objects.get(code=region_code)
    period = Period.parse(period_code) if period_code else Period.containing(today)
    runs = []
    queries = 0
    for _ in range(repeat):
        started = time.perf_counter()
        with CaptureQueriesContext(connection) as captured:
            engine.subtree_counts(region=region, period=period, today=today)
        runs.append(time.perf_counter() - started)
        queries = len(captured)
    return Timing(region_code, period.code, runs, queries, 0)
