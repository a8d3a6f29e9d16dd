"""Demo targets and the first indicator snapshots (runs after the other
seeds, so the snapshots count their patients, follow-ups and awards)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

from django.db import connection, connections

from accounts.models import Region
from reports import services

# connections filling the past quarters' snapshots at once (a quarter's
# as-of statements are one CPU each in PostgreSQL; a demo server has two)
SNAPSHOT_CONNECTIONS = 2

# (indicator, value, source): national targets, set on the province so they
# apply to every county below it.
NATIONAL_TARGETS = (
    ("management_rate", Decimal("80"), "全国精神卫生工作规划（2015—2020年）"),
    ("standard_management_rate", Decimal("80"), "健康中国行动（2019—2030年）"),
    ("prevalence_permille", Decimal("4.5"), "报告患病率目标"),
    ("rehab_rate", Decimal("60"), "民发〔2017〕167号"),
)
# The demo county's own plan is stricter (DOMAIN.md: "county plans 90+").
COUNTY_TARGETS = (
    ("management_rate", Decimal("90"), "示范县精神卫生工作实施方案"),
    ("standard_management_rate", Decimal("85"), "示范县精神卫生工作实施方案"),
)


def seed(ctx) -> None:
    county: Region = ctx.data["county"]
    province = Region.objects.get(code=county.path.strip("/").split("/")[0])
    for year in (ctx.today.year - 1, ctx.today.year):
        for indicator, value, source in NATIONAL_TARGETS:
            services.target_set(
                indicator=indicator, region=province, year=year, value=value, by=None, source=source
            )
        for indicator, value, source in COUNTY_TARGETS:
            services.target_set(
                indicator=indicator, region=county, year=year, value=value, by=None, source=source
            )
    ctx.log(f"    {_snapshots(ctx.today)} indicator snapshot rows")


def _snapshots(today) -> int:
    """The first night's snapshots of every quarter of the trend. The
    quarters are independent (each county, then its rollups): on PostgreSQL
    they are spread over ``SNAPSHOT_CONNECTIONS`` connections, which see the
    earlier stages (committed) — unless the seed itself runs inside an outer
    transaction (a test), whose rows only this connection sees."""
    periods = services.open_periods(today)
    if connection.vendor != "postgresql" or len(connection.atomic_blocks) > 1:
        return services.snapshots_nightly(today=today)["rows"]

    def fill(part) -> int:
        try:
            return services.snapshots_nightly(today=today, periods=part)["rows"]
        finally:
            connections.close_all()  # this thread's connection

    parts = [periods[i::SNAPSHOT_CONNECTIONS] for i in range(SNAPSHOT_CONNECTIONS)]
    with ThreadPoolExecutor(max_workers=SNAPSHOT_CONNECTIONS) as pool:
        return sum(pool.map(fill, parts))
