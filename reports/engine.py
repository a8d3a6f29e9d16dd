"""The indicator engine: one set-based SQL statement over the register, the
follow-ups and the incidents computes, for every registered patient of a
region on a statistics date, which indicator sets the patient belongs to
(``flag_sql``), then either counts them per patient region (``region_counts``)
or lists the ids of one set (``flag_ids_sql``, the drill-down). Both use the
same flag expressions, so a drill-down list has exactly the indicator's
numerator.

Register-level state (status, region, risk, next due date, hospital, rehab,
certificate, police registration, poverty, insurance) is taken

- for the running quarter, from the patient rows as they are now: an ORM
  queryset (so ``overdue`` is literally ``patients.selectors.overdue_q``);
- for a past quarter, as it was on the statistics date (``as_of_base``): the
  patient's latest ``Patient.history`` row written before the end of that day
  (Asia/Shanghai), with risk, next due date and hospitalisation from the
  latest completed follow-up on or before the date when the record had not
  yet carried it (a follow-up entered late), and hospital stays from the
  subsidies app's admission and discharge dates where it has any. A past
  quarter thus gives the same numbers whenever it is computed, and a patient
  who moved, was found again or changed risk afterwards counts where and as
  they were then.

The SQL runs on PostgreSQL and on SQLite (window functions; ``DISTINCT ON``
only on PostgreSQL), with the dialect differences in small helpers
(``_add_months``, ``_first_per``, ``_json_count``).
"""

# SQL is composed here from model metadata and constant expressions; every
# value from a caller is a parameter.
# ruff: noqa: S608
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.apps import apps
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Case, DateField, F, IntegerField, Q, QuerySet, Value, When
from django.db.models.functions import Greatest
from django.utils import timezone

from accounts.models import Region, RegionLevel
from accounts.scoping import inside_q
from followups.models import Compliance, FollowUp, Hospitalization, Mode, Outcome
from patients.models import (
    REGISTERED_STATUSES,
    Certificate,
    Classification,
    Incident,
    IncidentKind,
    Insurance,
    Patient,
    Poverty,
    Status,
)
from patients.selectors import overdue_q
from reports import rules
from reports.rules import PATIENT_COUNT_KEYS, Period

# The columns every patient base gives the flag expressions (``sp``).
BASE_COLUMNS = (
    "id",
    "region_id",
    "stat_d",
    "reg_on",
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
    "f_insured",
    "risk_val",
)
# Follow-up answers counted as trouble or disaster (DOMAIN.md: incident_rate).
DANGER_KEYS = (IncidentKind.TROUBLE.value, IncidentKind.DISASTER.value)


@dataclass(frozen=True)
class StatDates:
    """The dates one computation runs on (DOMAIN.md → Indicators); ``live``
    while the quarter runs (the statistics date is today)."""

    year_start: date
    quarter_start: date
    statistics_date: date
    live: bool = False

    @classmethod
    def for_period(cls, period: Period, today: date) -> StatDates:
        statistics_date = period.statistics_date(today)
        return cls(period.year_start, period.start, statistics_date, live=statistics_date >= today)

    @classmethod
    def on(cls, day: date, today: date) -> StatDates:
        """The dates of a computation on ``day`` (a statistics date): live
        from today on, as of that day before."""
        period = Period.containing(day)
        return cls(period.year_start, period.start, day, live=day >= today)

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
    """Registered patients of ``region`` with their register-level flags, from
    the patient rows as they are now (the running quarter)."""
    return (
        Patient.objects.filter(inside_q([region]))
        .filter(registered_q(dates))
        .order_by()
        .annotate(
            stat_d=Value(dates.statistics_date, output_field=DateField()),
            reg_on=F("registered_on"),
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
            f_insured=_flag(~Q(insurance=Insurance.NONE)),
            risk_val=Case(
                When(risk_level__isnull=True, then=Value(-1)),
                default="risk_level",
                output_field=IntegerField(),
            ),
        )
        .values(*BASE_COLUMNS)
    )


def _first_per(key: str, columns: str, source: str, order: str) -> str:
    """The first row of each ``key`` in ``order``: ``DISTINCT ON`` on
    PostgreSQL, ``ROW_NUMBER()`` elsewhere. No placeholders in the parts:
    the two dialects put them in a different order."""
    if connection.vendor == "postgresql":
        return f"SELECT DISTINCT ON ({key}) {columns} FROM {source} ORDER BY {key}, {order}"  # nosec B608 - identifiers and constants only; values are parameters
    return (
        f"SELECT * FROM (SELECT {columns}, ROW_NUMBER() OVER "
        f"(PARTITION BY {key} ORDER BY {order}) AS rn_ FROM {source}) t_ WHERE rn_ = 1"  # nosec B608 - identifiers and constants only; values are parameters
    )


def _greatest(a: str, b: str) -> str:
    return f"GREATEST({a}, {b})" if connection.vendor == "postgresql" else f"MAX({a}, {b})"


def _typed(placeholder: str, pg_type: str) -> str:
    return f"CAST({placeholder} AS {pg_type})" if connection.vendor == "postgresql" else placeholder


def _json_count(column: str, key: str) -> str:
    """SQL true when the JSON object ``column`` holds a count > 0 at ``key``
    (a constant identifier, never user input)."""
    if connection.vendor == "postgresql":
        return (
            f"(CASE WHEN jsonb_typeof({column} -> '{key}') = 'number'"
            f" THEN ({column} ->> '{key}')::numeric > 0 ELSE FALSE END)"
        )
    return f"(COALESCE(json_extract({column}, '$.{key}'), 0) > 0)"


def episode_table() -> str | None:
    """The subsidies app's hospital stays, when that app is installed."""
    try:
        return apps.get_model("subsidies", "Episode")._meta.db_table
    except LookupError:
        return None


# Register fields read from the patient's history row (``hs``).
_STATE = (
    "region_id",
    "status",
    "risk_level",
    "last_followup_date",
    "next_followup_due",
    "in_hospital",
    "in_community_rehab",
    "certificate",
    "police_registered",
    "poverty",
    "insurance",
)


def as_of_base(region: Region, dates: StatDates) -> tuple[list[str], str, list]:
    """Registered patients of ``region`` on a past statistics date, with the
    columns of ``patient_base``, as they were on that date.

    Returns ``(ctes, select, params)``: CTEs to put before ``sp`` and the
    ``SELECT`` of ``sp``. The candidates are the patients whose history or
    current row places them inside ``region`` (history rows are indexed by
    region and by patient); each gets one state row:

    - ``hs``: the latest history row written before the end of the day; for a
      patient without one (a registration entered after its date), the
      earliest row; without any history, the patient row itself;
    - status: the current one when it began before the end of the day; else
      the recorded one when it differs from the current one; else the
      recorded one if the history shows another status in between (A → B →
      A); else ``active``, the status every change starts from (a register
      row loaded in bulk with its later state);
    - ``fl``: the latest completed follow-up on or before the date. Risk is
      its risk level; the next due date and the hospital flag are the
      recorded ones when the record already carried that follow-up (so a
      later cap, such as the 14-day visit after a discharge, is kept), else
      the follow-up's own answers;
    - hospital stays (``ep``, the subsidies app's admission and discharge
      dates) decide the hospital flag of a patient admitted on or before the
      date at least once.
    """
    # the subtree's codes as a list (not a path LIKE inside the statement):
    # PostgreSQL then estimates the candidates well and joins by hash
    codes = list(
        Region.objects.filter(path__startswith=region.path)
        .order_by()
        .values_list("code", flat=True)
    )
    if connection.vendor == "postgresql":
        in_subtree, code_params = "code = ANY(%s)", [codes]
    else:
        in_subtree, code_params = f"code IN ({', '.join(['%s'] * len(codes))})", codes
    params: list = [
        connection.ops.adapt_datetimefield_value(dates.end_of_day),
        dates.statistics_date,
        *code_params,
    ]
    pat = Patient._meta.db_table
    hist = Patient.history.model._meta.db_table
    fu = FollowUp._meta.db_table
    reg = Region._meta.db_table
    eod = "(SELECT eod FROM k)"
    stat_d = "(SELECT d FROM k)"
    hs_cols = ", ".join(["h.id", "h.history_id", "h.history_date"] + [f"h.{c}" for c in _STATE])
    hs_order = (
        f"CASE WHEN h.history_date < {eod} THEN 0 ELSE 1 END, "
        f"CASE WHEN h.history_date < {eod} THEN h.history_date END DESC, "
        "h.history_date, "
        f"CASE WHEN h.history_date < {eod} THEN -h.history_id ELSE h.history_id END"
    )
    hs = _first_per("h.id", hs_cols, f"{hist} h WHERE h.id IN (SELECT id FROM cand)", hs_order)  # nosec B608 - identifiers and constants only; values are parameters
    fl_cols = "f.visit_date, f.risk_level, f.next_due_date, f.hospitalization"
    fl_where = f"f.outcome = '{Outcome.COMPLETED.value}' AND f.visit_date <= {stat_d}"
    fl_order = "f.visit_date DESC, f.created_at DESC, f.id DESC"
    if connection.vendor == "postgresql":
        # one probe of the (patient, date) index per candidate: cheaper than
        # reading and sorting every earlier follow-up of the candidates
        fl_join = f"""LEFT JOIN LATERAL (
        SELECT {fl_cols} FROM {fu} f
        WHERE f.patient_id = p.id AND {fl_where}
        ORDER BY {fl_order} LIMIT 1
    ) fl ON TRUE"""  # nosec B608 - identifiers and constants only; values are parameters
        fl_cte = []
    else:
        fl = _first_per(
            "f.patient_id",
            f"f.patient_id, {fl_cols}",
            f"{fu} f WHERE f.patient_id IN (SELECT id FROM cand) AND {fl_where}",  # nosec B608 - identifiers and constants only; values are parameters
            fl_order,
        )
        fl_join = "LEFT JOIN fl ON fl.patient_id = p.id"
        fl_cte = [f"fl AS ({fl})"]
    ctes = [
        f"k AS (SELECT {_typed('%s', 'timestamp with time zone')} AS eod, "
        f"{_typed('%s', 'date')} AS d)",
        f"sub AS (SELECT code FROM {reg} WHERE {in_subtree})",  # nosec B608 - identifiers and constants only; values are parameters
        f"""cand AS (
    SELECT h.id FROM {hist} h WHERE h.region_id IN (SELECT code FROM sub)
    UNION
    SELECT p.id FROM {pat} p WHERE p.region_id IN (SELECT code FROM sub)
)""",  # nosec B608 - identifiers and constants only; values are parameters
        f"hs AS ({hs})",
        *fl_cte,
    ]
    episodes = episode_table()
    if episodes:
        ctes.append(
            f"""ep AS (
    SELECT e.patient_id,
           MAX(CASE WHEN e.discharge_date > {stat_d}
                     OR (e.discharge_date IS NULL AND e.status = 'in_hospital')
                    THEN 1 ELSE 0 END) AS inside
    FROM {episodes} e
    WHERE e.patient_id IN (SELECT id FROM cand) AND e.admission_date <= {stat_d}
    GROUP BY e.patient_id
)"""  # nosec B608 - identifiers and constants only; values are parameters
        )
    else:
        ctes.append(f"ep AS (SELECT p.id AS patient_id, 0 AS inside FROM {pat} p WHERE 1 = 0)")  # nosec B608 - identifiers and constants only; values are parameters

    def col(name: str) -> str:
        return f"CASE WHEN hs.id IS NULL THEN p.{name} ELSE hs.{name} END"

    registered = ", ".join(f"'{s}'" for s in REGISTERED_STATUSES)
    ctes.append(
        f"""st AS (
    SELECT p.id, p.registered_on,
           {", ".join(f"{col(c)} AS {c}" for c in _STATE)},
           CASE
             WHEN p.status_changed_at < {eod} THEN p.status
             WHEN hs.status <> p.status THEN hs.status
             WHEN EXISTS (
                 SELECT 1 FROM {hist} x
                 WHERE x.id = p.id AND x.history_date > hs.history_date
                   AND x.history_date < p.status_changed_at AND x.status <> p.status
             ) THEN hs.status
             ELSE '{Status.ACTIVE.value}'
           END AS status_then,
           fl.visit_date AS fl_on, fl.risk_level AS fl_risk, fl.next_due_date AS fl_due,
           fl.hospitalization AS fl_hosp, ep.patient_id AS ep_id, ep.inside AS ep_inside
    FROM {pat} p
    LEFT JOIN hs ON hs.id = p.id
    {fl_join}
    LEFT JOIN ep ON ep.patient_id = p.id
    WHERE p.id IN (SELECT id FROM cand) AND p.registered_on <= {stat_d}
)"""  # nosec B608 - identifiers and constants only; values are parameters
    )
    carried = (
        "((st.last_followup_date IS NULL AND st.fl_on IS NULL) OR st.last_followup_date = st.fl_on)"
    )
    due = f"CASE WHEN {carried} THEN st.next_followup_due ELSE st.fl_due END"
    risk = "CASE WHEN st.fl_on IS NOT NULL THEN st.fl_risk ELSE st.risk_level END"
    hosp = _yes(
        "CASE WHEN st.ep_id IS NOT NULL THEN st.ep_inside = 1"
        f" WHEN {carried} THEN st.in_hospital"
        f" ELSE st.fl_hosp = '{Hospitalization.CURRENT.value}' END"
    )
    poor = ", ".join(f"'{v}'" for v in (Poverty.DIBAO, Poverty.TEKUN))
    year_start = _typed(f"'{dates.year_start.isoformat()}'", "date")
    quarter_start = _typed(f"'{dates.quarter_start.isoformat()}'", "date")
    active, lost = Status.ACTIVE.value, Status.LOST.value
    high = int(settings.HIGH_RISK_MIN_LEVEL)
    flags = {
        "f_new": _yes(f"st.registered_on >= {quarter_start}"),
        "f_hosp": hosp,
        "f_overdue": _yes(f"st.status_then = '{active}' AND ({due}) < {stat_d}"),
        "f_lost": _yes(f"st.status_then = '{lost}'"),
        "f_high_risk": _yes(f"({risk}) >= {high}"),
        "f_rehab": _yes("st.in_community_rehab"),
        "f_cert": _yes(f"st.certificate = '{Certificate.HELD.value}'"),
        "f_police": _yes("st.police_registered"),
        "f_poor": _yes(f"st.poverty IN ({poor})"),
        "f_insured": _yes(f"st.insurance <> '{Insurance.NONE.value}'"),
    }
    columns = ",\n           ".join(f"{expr} AS {name}" for name, expr in flags.items())
    select = f"""SELECT st.id, st.region_id, {stat_d} AS stat_d, st.registered_on AS reg_on,
           {_greatest("st.registered_on", year_start)} AS start_on,
           {columns},
           COALESCE({risk}, -1) AS risk_val
    FROM st
    WHERE st.status_then IN ({registered}) AND st.region_id IN (SELECT code FROM sub)"""  # nosec B608 - identifiers and constants only; values are parameters
    return ctes, select, params


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
    ``fa`` (the year's completed follow-ups, with the last one's answers)
    and ``inc`` (police-recorded incidents)."""
    gap = rules.STANDARD_MAX_GAP_MONTHS
    followed_up = "fa.first_on IS NOT NULL"
    managed = f"({followed_up} OR sp.f_hosp = 1)"
    at_home_managed = f"({followed_up} AND sp.f_hosp = 0)"
    flags = {
        "registered": "1",
        "new_registered": "sp.f_new",
        "managed": _yes(managed),
        # completed follow-ups leave no gap over 3 months from 1 January (or
        # registration) through the statistics date; a patient registered at
        # most 3 months before the statistics date and not yet visited has no
        # such gap either (rules.STANDARD_WITHOUT_VISIT)
        "standard": _yes(
            f"({followed_up} AND fa.gap = 0"
            f" AND fa.first_on <= {_add_months('sp.start_on', gap)}"
            f" AND sp.stat_d <= {_add_months('fa.last_on', gap)})"
            f" OR (fa.first_on IS NULL AND sp.stat_d <= {_add_months('sp.reg_on', gap)})"
        ),
        "face_to_face": _yes("fa.f2f = 1"),
        # the year's last completed follow-up (rules.MEDICATION_WITHIN_YEAR)
        "medication": _yes(
            f"fa.last_compliance IN ('{Compliance.REGULAR}', '{Compliance.INTERMITTENT}')"
            " OR sp.f_hosp = 1"
        ),
        "regular_medication": _yes(f"fa.last_compliance = '{Compliance.REGULAR}'"),
        "at_home_managed": _yes(at_home_managed),
        "stable": _yes(
            f"{at_home_managed} AND fa.last_classification = '{Classification.STABLE}'"
            f" AND sp.stat_d <= {_add_months('fa.last_on', rules.STABLE_WITHIN_MONTHS)}"
        ),
        "at_home": _yes("sp.f_hosp = 0"),
        "rehab": _yes("sp.f_rehab = 1 AND sp.f_hosp = 0"),
        "certificate": "sp.f_cert",
        # recorded by the police, or answered on a follow-up form
        "incident": _yes("inc.patient_id IS NOT NULL OR fa.danger = 1"),
        "incident_quarter": _yes("inc.in_quarter = 1 OR fa.danger_quarter = 1"),
        "high_risk": "sp.f_high_risk",
        "overdue": "sp.f_overdue",
        "lost": "sp.f_lost",
        "in_hospital": "sp.f_hosp",
        "police_registered": "sp.f_police",
        "poor": "sp.f_poor",
        "insured": "sp.f_insured",
        "uninsured": _yes("sp.f_insured = 0"),
        "risk_none": _yes("sp.risk_val < 0"),
    }
    for level in range(6):
        flags[f"risk_{level}"] = _yes(f"sp.risk_val = {level}")
    return flags


def base_sql(region: Region, dates: StatDates) -> tuple[list[str], str, list]:
    """The patient base ``sp`` of one computation: live for the running
    quarter, as of the statistics date for a past one. ``(ctes, select,
    params)``; other indicators built on the register (the subsidies app's
    reward coverage) start from it, so they count the same patients."""
    if dates.live:
        sql, params = patient_base(region, dates).query.sql_with_params()
        return [], sql, list(params)
    return as_of_base(region, dates)


def _flags_cte(region: Region, dates: StatDates) -> tuple[str, list]:
    """``WITH … flags``: one row per registered patient with 0/1 columns."""
    base_ctes, base_select, base_params = base_sql(region, dates)
    fu = FollowUp._meta.db_table
    inc = Incident._meta.db_table
    completed = Outcome.COMPLETED.value
    gap = rules.STANDARD_MAX_GAP_MONTHS
    danger = " OR ".join(_json_count("f.dangerous_behaviours", key) for key in DANGER_KEYS)
    flags = ",\n           ".join(f"{expr} AS {key}" for key, expr in flag_sql().items())
    ctes = ",\n".join([*base_ctes, f"sp AS ({base_select})"])
    sql = f"""
WITH {ctes},
fy AS (
    SELECT f.patient_id, f.visit_date, f.mode, f.medication_compliance, f.classification,
           CASE WHEN {danger} THEN 1 ELSE 0 END AS danger,
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
           MAX(CASE WHEN is_last = 1 THEN classification END) AS last_classification,
           MAX(danger) AS danger,
           MAX(CASE WHEN danger = 1 AND visit_date >= %s THEN 1 ELSE 0 END) AS danger_quarter
    FROM fy
    GROUP BY patient_id
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
    LEFT JOIN inc ON inc.patient_id = sp.id
)"""  # noqa: S608 - identifiers from model meta and constant expressions; values are params  # nosec B608
    d = dates
    params = [
        *base_params,
        *(completed, d.year_start, d.statistics_date),  # fy
        *(Mode.CLINIC.value, Mode.HOME.value, d.quarter_start),  # fa
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
