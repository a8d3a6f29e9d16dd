"""The indicator engine: one set-based SQL statement over the register, the
follow-ups and the incidents computes, for every registered patient of a
region on a statistics date, which indicator sets the patient belongs to
(``flag_sql``), then either counts them per patient region (``region_counts``)
or lists the ids of one set (``flag_ids_sql``, the drill-down). Both use the
same flag expressions, so a drill-down list has exactly the indicator's
numerator.

The patient part is an ORM queryset (so ``overdue`` is literally
``patients.selectors.overdue_q``); the follow-up part is SQL that runs on
PostgreSQL and on SQLite (window functions, no ``DISTINCT ON``), with the one
dialect difference, calendar-month arithmetic, in ``_add_months``.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Case, DateField, IntegerField, Q, QuerySet, Value, When
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from accounts.models import Region, RegionLevel
from accounts.scoping import inside_q
from followups.models import Compliance, FollowUp, Mode, Outcome
from patients.models import (
    REGISTERED_STATUSES,
    Certificate,
    Classification,
    Incident,
    IncidentKind,
    Patient,
    Poverty,
    Status,
)
from patients.selectors import overdue_q
from reports import rules
from reports.rules import PATIENT_COUNT_KEYS, Period


@dataclass(frozen=True)
class StatDates:
    """The dates one computation runs on (DOMAIN.md → Indicators)."""

    year_start: date
    quarter_start: date
    statistics_date: date

    @classmethod
    def for_period(cls, period: Period, today: date) -> StatDates:
        return cls(period.year_start, period.start, period.statistics_date(today))

    @property
    def end_of_day(self) -> datetime:
        """Midnight after the statistics date, Asia/Shanghai: a status changed
        at or after it was not yet changed on the statistics date."""
        next_day = self.statistics_date + timedelta(days=1)
        return timezone.make_aware(datetime.combine(next_day, time.min))


def registered_q(dates: StatDates) -> Q:
    """Registered (在册) on the statistics date: registered by then, and either
    still active/lost/refused or left the register only afterwards."""
    return Q(registered_on__lte=dates.statistics_date) & (
        Q(status__in=REGISTERED_STATUSES) | Q(status_changed_at__gte=dates.end_of_day)
    )


def _flag(q: Q) -> Case:
    return Case(When(q, then=Value(1)), default=Value(0), output_field=IntegerField())


def patient_base(region: Region, dates: StatDates) -> QuerySet:
    """Registered patients of ``region`` with their register-level flags."""
    return (
        Patient.objects.filter(inside_q([region]))
        .filter(registered_q(dates))
        .order_by()
        .annotate(
            stat_d=Value(dates.statistics_date, output_field=DateField()),
            start_on=Greatest("registered_on", Value(dates.year_start, output_field=DateField())),
            f_new=_flag(Q(registered_on__gte=dates.quarter_start)),
            f_hosp=_flag(Q(in_hospital=True)),
            f_overdue=_flag(overdue_q(dates.statistics_date)),
            f_lost=_flag(Q(status=Status.LOST, status_changed_at__lt=dates.end_of_day)),
            f_high_risk=_flag(Q(risk_level__gte=settings.HIGH_RISK_MIN_LEVEL)),
            f_rehab=_flag(Q(in_community_rehab=True)),
            f_cert=_flag(Q(certificate=Certificate.HELD)),
            f_police=_flag(Q(police_registered=True)),
            f_poor=_flag(Q(poverty__in=[Poverty.DIBAO, Poverty.TEKUN])),
            risk_val=Coalesce("risk_level", Value(-1), output_field=IntegerField()),
        )
        .values(
            "id",
            "region_id",
            "stat_d",
            "start_on",
            "f_new",
            "f_hosp",
            "f_overdue",
            "f_lost",
            "f_high_risk",
            "f_rehab",
            "f_cert",
            "f_police",
            "f_poor",
            "risk_val",
        )
    )


def _add_months(expr: str, months: int) -> str:
    """SQL for ``expr`` plus calendar months, clipped to the month's end."""
    if connection.vendor == "postgresql":
        return f"CAST(({expr}) + INTERVAL '{int(months)} months' AS DATE)"
    # SQLite's '+n months' overflows (30 Nov + 3 → 2 Mar): clip to the last
    # day of the target month, as PostgreSQL does.
    return (
        f"MIN(DATE({expr}, '+{int(months)} months'), "
        f"DATE({expr}, 'start of month', '+{int(months) + 1} months', '-1 day'))"
    )


def _yes(condition: str) -> str:
    return f"CASE WHEN {condition} THEN 1 ELSE 0 END"


def flag_sql() -> dict[str, str]:
    """Each count key as a 0/1 SQL expression over ``sp`` (the patient),
    ``fa`` (the year's completed follow-ups, with the last one's answers),
    ``pv`` (the last completed follow-up before the year, for patients with
    none in it) and ``inc`` (incidents)."""
    gap = rules.STANDARD_MAX_GAP_MONTHS
    followed_up = "fa.first_on IS NOT NULL"
    managed = f"({followed_up} OR sp.f_hosp = 1)"
    at_home_managed = f"({followed_up} AND sp.f_hosp = 0)"
    # the last completed follow-up on or before the statistics date: the
    # year's last (fa), else the last before the year (pv)
    last_compliance = "COALESCE(fa.last_compliance, pv.compliance)"
    flags = {
        "registered": "1",
        "new_registered": "sp.f_new",
        "managed": _yes(managed),
        # completed follow-ups leave no gap over 3 months from 1 January (or
        # registration) through the statistics date; at least one is needed
        "standard": _yes(
            f"{followed_up} AND fa.gap = 0"
            f" AND fa.first_on <= {_add_months('sp.start_on', gap)}"
            f" AND sp.stat_d <= {_add_months('fa.last_on', gap)}"
        ),
        "face_to_face": _yes("fa.f2f = 1"),
        "medication": _yes(
            f"{last_compliance} IN ('{Compliance.REGULAR}', '{Compliance.INTERMITTENT}')"
            " OR sp.f_hosp = 1"
        ),
        "regular_medication": _yes(f"{last_compliance} = '{Compliance.REGULAR}'"),
        "at_home_managed": _yes(at_home_managed),
        "stable": _yes(
            f"{at_home_managed} AND fa.last_classification = '{Classification.STABLE}'"
            f" AND sp.stat_d <= {_add_months('fa.last_on', rules.STABLE_WITHIN_MONTHS)}"
        ),
        "at_home": _yes("sp.f_hosp = 0"),
        "rehab": _yes("sp.f_rehab = 1 AND sp.f_hosp = 0"),
        "certificate": "sp.f_cert",
        "incident": _yes("inc.patient_id IS NOT NULL"),
        "incident_quarter": _yes("inc.in_quarter = 1"),
        "high_risk": "sp.f_high_risk",
        "overdue": "sp.f_overdue",
        "lost": "sp.f_lost",
        "in_hospital": "sp.f_hosp",
        "police_registered": "sp.f_police",
        "poor": "sp.f_poor",
        "risk_none": _yes("sp.risk_val < 0"),
    }
    for level in range(6):
        flags[f"risk_{level}"] = _yes(f"sp.risk_val = {level}")
    return flags


def _flags_cte(region: Region, dates: StatDates) -> tuple[str, list]:
    """``WITH … flags``: one row per registered patient with 0/1 columns."""
    base_sql, base_params = patient_base(region, dates).query.sql_with_params()
    fu = FollowUp._meta.db_table
    inc = Incident._meta.db_table
    completed = Outcome.COMPLETED.value
    gap = rules.STANDARD_MAX_GAP_MONTHS
    flags = ",\n           ".join(f"{expr} AS {key}" for key, expr in flag_sql().items())
    sql = f"""
WITH sp AS ({base_sql}),
fy AS (
    SELECT f.patient_id, f.visit_date, f.mode, f.medication_compliance, f.classification,
           LAG(f.visit_date) OVER w AS prev_visit,
           CASE WHEN LEAD(f.visit_date) OVER w IS NULL THEN 1 ELSE 0 END AS is_last
    FROM {fu} f
    JOIN sp ON sp.id = f.patient_id
    WHERE f.outcome = %s AND f.visit_date >= %s AND f.visit_date <= %s
    WINDOW w AS (PARTITION BY f.patient_id ORDER BY f.visit_date, f.created_at, f.id)
),
fa AS (
    SELECT patient_id, MIN(visit_date) AS first_on, MAX(visit_date) AS last_on,
           MAX(CASE WHEN mode IN (%s, %s) THEN 1 ELSE 0 END) AS f2f,
           MAX(CASE WHEN prev_visit IS NOT NULL
                     AND visit_date > {_add_months("prev_visit", gap)}
                    THEN 1 ELSE 0 END) AS gap,
           MAX(CASE WHEN is_last = 1 THEN medication_compliance END) AS last_compliance,
           MAX(CASE WHEN is_last = 1 THEN classification END) AS last_classification
    FROM fy
    GROUP BY patient_id
),
pv AS (
    SELECT sp.id AS patient_id,
           (SELECT f.medication_compliance FROM {fu} f
             WHERE f.patient_id = sp.id AND f.outcome = %s AND f.visit_date < %s
             ORDER BY f.visit_date DESC, f.created_at DESC, f.id DESC
             LIMIT 1) AS compliance
    FROM sp
    LEFT JOIN fa ON fa.patient_id = sp.id
    WHERE fa.patient_id IS NULL
),
inc AS (
    SELECT i.patient_id, MAX(CASE WHEN i.occurred_on >= %s THEN 1 ELSE 0 END) AS in_quarter
    FROM {inc} i
    JOIN sp ON sp.id = i.patient_id
    WHERE i.kind IN (%s, %s) AND i.occurred_on >= %s AND i.occurred_on <= %s
    GROUP BY i.patient_id
),
flags AS (
    SELECT sp.id, sp.region_id,
           {flags}
    FROM sp
    LEFT JOIN fa ON fa.patient_id = sp.id
    LEFT JOIN pv ON pv.patient_id = sp.id
    LEFT JOIN inc ON inc.patient_id = sp.id
)"""  # noqa: S608 - identifiers from model meta and constant expressions; values are params  # nosec B608
    d = dates
    params = [
        *base_params,
        *(completed, d.year_start, d.statistics_date),  # fy
        *(Mode.CLINIC.value, Mode.HOME.value),  # fa
        *(completed, d.year_start),  # pv
        d.quarter_start,  # inc
        IncidentKind.TROUBLE.value,
        IncidentKind.DISASTER.value,
        d.year_start,
        d.statistics_date,
    ]
    return sql, params


SMALL_SCOPES = (RegionLevel.TOWNSHIP, RegionLevel.VILLAGE)


@contextmanager
def tuned(region: Region):
    """A transaction in which the engine's statements run well on PostgreSQL.

    The planner cannot estimate CTE row counts and overestimates the
    statement by orders of magnitude, so JIT compilation (which then costs
    seconds, more than the query) is switched off; the window sorts get the
    memory to stay off disk; and for a township or a village, random page
    reads are priced as on an SSD, so its follow-ups are read through the
    (patient, date) index instead of scanning the whole year's (measured at
    50,000 patients: 250 ms against 830 ms for a township; for a county the
    scan stays faster). ``SET LOCAL`` ends with the transaction.
    """
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cur:
                cur.execute("SET LOCAL jit = off")
                cur.execute("SET LOCAL work_mem = '64MB'")
                if region.level in SMALL_SCOPES:
                    cur.execute("SET LOCAL random_page_cost = 1.1")
        yield


def region_counts(*, region: Region, period: Period, today: date) -> dict[str, dict[str, int]]:
    """Counts per patient region (village) inside ``region``, one statement."""
    dates = StatDates.for_period(period, today)
    cte, params = _flags_cte(region, dates)
    sums = ", ".join(f"SUM({key}) AS {key}" for key in PATIENT_COUNT_KEYS)
    # keys from PATIENT_COUNT_KEYS; values are parameters
    sql = f"{cte}\nSELECT region_id, {sums} FROM flags GROUP BY region_id"  # nosec B608
    with tuned(region), connection.cursor() as cur:
        cur.execute(sql, params)
        rows = cur.fetchall()
    return {
        row[0]: {
            key: int(value or 0) for key, value in zip(PATIENT_COUNT_KEYS, row[1:], strict=True)
        }
        for row in rows
    }


def flag_ids_sql(
    *, region: Region, period: Period, today: date, key: str, base: str | None = None
) -> tuple[str, list]:
    """SQL listing the ids of the patients counted in ``key`` (or, with
    ``base``, those counted in ``base`` but not in ``key``: the patients an
    indicator still misses)."""
    if key not in PATIENT_COUNT_KEYS or (base is not None and base not in PATIENT_COUNT_KEYS):
        raise ValueError(key)
    dates = StatDates.for_period(period, today)
    cte, params = _flags_cte(region, dates)
    where = f"{key} = 1" if base is None else f"{base} = 1 AND {key} = 0"
    # key and base are checked against PATIENT_COUNT_KEYS above; values are parameters
    sql = f"{cte}\nSELECT id FROM flags WHERE {where}"  # nosec B608
    return sql, params


def subtree_counts(*, region: Region, period: Period, today: date) -> dict[str, dict]:
    """Counts of ``region`` and of every region inside it, with each region's
    resident population (reward counts are added by the callers)."""
    leaves = region_counts(region=region, period=period, today=today)
    regions = list(
        Region.objects.filter(path__startswith=region.path).only(
            "code", "parent_id", "path", "population"
        )
    )
    paths = {r.code: r.path for r in regions}
    counts = rules.rollup(leaves, paths, paths)
    pops = rules.populations((r.code, r.parent_id, r.population) for r in regions)
    for code, row in counts.items():
        row[rules.POPULATION] = pops[code]
    return counts
