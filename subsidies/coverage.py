"""Guardian-reward coverage (DOMAIN.md → Indicators, ``reward_coverage``) as
one set-based statement over the register as of a statistics date.

The patients come from the indicator engine (``reports.engine.base_sql``),
so reward coverage counts the patients every other indicator counts, as
they were on the date; the reward rule (``rules.reward_ineligibility``) is
written here as SQL over that base, with the guardians, incidents and
awards of that date.
"""

# SQL is composed here from model metadata, constants and integers from the
# policy row; every other value is a parameter.
# ruff: noqa: S608
from __future__ import annotations

from datetime import date

from django.db import connection
from django.utils import timezone

from accounts.models import Region
from patients.models import AssistantGuardian, Guardian, Incident, Patient
from subsidies import rules
from subsidies.models import Award, AwardStatus


def coverage_sql(rule: rules.RewardRule, region: Region, on: date) -> tuple[str, list]:
    """One statement: eligible guardians and those with an award active on
    ``on``, per patient region (village) inside ``region``.

    The patients are the register as the indicator engine counts it on that
    day (``reports.engine.base_sql``): today's rows from today on, the
    record's history as of the end of ``on`` before, so a past quarter is
    counted as it was (status, region, police registration, risk). The rest
    of ``rules.reward_ineligibility`` is judged on that day too:

    - qualifying incidents and failed-duty incidents that happened on or
      before ``on`` (a failed-duty one barring re-application on ``on``);
    - the guardian (with the responsibility letter when the rule asks) and
      the assistant guardians from their history rows written before the end
      of ``on``; for a patient whose record was entered after ``on`` (a late
      registration), their earliest rows, as the engine does for the
      patient; rows without any history (bulk-loaded) as they are now;
    - an award covers the guardian when it was active on ``on``: active
      from on or before it, and neither suspended (``stop_from``) nor ended
      (``ended_on``) on or before it.
    """
    from reports import engine  # the register as every indicator counts it

    dates = engine.StatDates.on(on, timezone.localdate())
    base_ctes, base_select, base_params = engine.base_sql(region, dates)
    pg = connection.vendor == "postgresql"

    def typed(pg_type: str) -> str:
        return f"CAST(%s AS {pg_type})" if pg else "%s"

    params: list = [*base_params]
    ctes = [*base_ctes, f"sp AS ({base_select})"]
    ctes.append(f"rk AS (SELECT {typed('timestamp with time zone')} AS eod, {typed('date')} AS d)")
    params += [connection.ops.adapt_datetimefield_value(dates.end_of_day), on]
    eod, day = "(SELECT eod FROM rk)", "(SELECT d FROM rk)"
    in_sp = "IN (SELECT id FROM sp)"
    guardian, assistant = Guardian._meta.db_table, AssistantGuardian._meta.db_table
    letter = " AND {0}.responsibility_letter" if rule.require_responsibility_letter else ""
    if dates.live:
        ctes.append(
            f"gd AS (SELECT g.patient_id FROM {guardian} g"
            f" WHERE g.patient_id {in_sp}{letter.format('g')})"  # nosec B608 - identifiers and constants only
        )
        ctes.append(
            f"ac AS (SELECT a.patient_id, COUNT(*) AS n FROM {assistant} a"
            f" WHERE a.patient_id {in_sp} GROUP BY a.patient_id)"  # nosec B608 - identifiers and constants only
        )
    else:
        ghist = Guardian.history.model._meta.db_table
        ahist = AssistantGuardian.history.model._meta.db_table
        phist = Patient.history.model._meta.db_table
        order = (
            f"CASE WHEN h.history_date < {eod} THEN 0 ELSE 1 END, "
            f"CASE WHEN h.history_date < {eod} THEN h.history_date END DESC, "
            "h.history_date, "
            f"CASE WHEN h.history_date < {eod} THEN -h.history_id ELSE h.history_id END"
        )
        then = f"(h.history_date < {eod} OR h.patient_id IN (SELECT id FROM late))"  # nosec B608 - identifiers and constants only

        def latest(partition: str, table: str, columns: str) -> str:
            return (
                f"SELECT * FROM (SELECT {columns}, ROW_NUMBER() OVER "
                f"(PARTITION BY {partition} ORDER BY {order}) AS rn_ FROM {table} h"
                f" WHERE h.patient_id {in_sp} AND {then}) t_ WHERE rn_ = 1"  # nosec B608 - identifiers and constants only
            )

        ctes += [
            # patients whose record was entered after the day
            f"late AS (SELECT sp.id FROM sp WHERE NOT EXISTS (SELECT 1 FROM {phist} x"
            f" WHERE x.id = sp.id AND x.history_date < {eod}))",  # nosec B608 - identifiers and constants only
            "gh AS ("
            + latest("h.patient_id", ghist, "h.patient_id, h.responsibility_letter, h.history_type")
            + ")",
            f"gd AS (SELECT gh.patient_id FROM gh WHERE gh.history_type <> '-'{letter.format('gh')}"
            f" UNION SELECT g.patient_id FROM {guardian} g WHERE g.patient_id {in_sp}"
            f"{letter.format('g')}"
            f" AND NOT EXISTS (SELECT 1 FROM {ghist} x WHERE x.id = g.id))",  # nosec B608 - identifiers and constants only
            "ah AS (" + latest("h.id", ahist, "h.id, h.patient_id, h.history_type") + ")",
            "ac AS (SELECT u.patient_id, COUNT(*) AS n FROM ("
            "SELECT ah.patient_id FROM ah WHERE ah.history_type <> '-'"
            f" UNION ALL SELECT a.patient_id FROM {assistant} a WHERE a.patient_id {in_sp}"
            f" AND NOT EXISTS (SELECT 1 FROM {ahist} x WHERE x.id = a.id)"
            ") u GROUP BY u.patient_id)",  # nosec B608 - identifiers and constants only
        ]
    incident = Incident._meta.db_table
    kinds = list(rule.qualifying_incident_kinds)
    if kinds:
        ctes.append(
            f"qi AS (SELECT DISTINCT i.patient_id FROM {incident} i WHERE i.patient_id {in_sp}"
            f" AND i.kind IN ({', '.join(['%s'] * len(kinds))}) AND i.occurred_on <= {day})"  # nosec B608 - identifiers and constants only
        )
        params += kinds
    else:
        ctes.append("qi AS (SELECT sp.id AS patient_id FROM sp WHERE 1 = 0)")
    ctes.append(
        f"bi AS (SELECT DISTINCT i.patient_id FROM {incident} i WHERE i.patient_id {in_sp}"
        f" AND i.guardian_failed_duties AND i.occurred_on > {typed('date')}"
        f" AND i.occurred_on <= {day})"  # nosec B608 - identifiers and constants only
    )
    from subsidies.selectors import reward_bar_threshold

    params.append(reward_bar_threshold(on, rule.reapply_bar_months))
    active, suspended, ended = AwardStatus.ACTIVE, AwardStatus.SUSPENDED, AwardStatus.ENDED
    ctes.append(
        f"aw AS (SELECT DISTINCT a.patient_id FROM {Award._meta.db_table} a"
        f" WHERE a.patient_id {in_sp} AND a.active_from <= {day}"
        f" AND (a.status = '{active}'"
        f" OR (a.status = '{suspended}' AND a.stop_from > {day})"
        f" OR (a.status = '{ended}' AND a.ended_on > {day})))"  # nosec B608 - identifiers and constants only
    )
    conditions = ["gd.patient_id IS NOT NULL", "bi.patient_id IS NULL"]
    if rule.require_police_registered:
        conditions.append("sp.f_police = 1")
    if rule.min_risk_level is not None:
        conditions.append(
            f"(qi.patient_id IS NOT NULL OR sp.risk_val >= {int(rule.min_risk_level)})"
        )
    else:
        conditions.append("qi.patient_id IS NOT NULL")
    if rule.min_assistant_guardians > 0:
        conditions.append(f"COALESCE(ac.n, 0) >= {int(rule.min_assistant_guardians)}")
    ctes.append(
        "el AS (SELECT sp.id, sp.region_id,"
        f" CASE WHEN {' AND '.join(conditions)} THEN 1 ELSE 0 END AS eligible"
        " FROM sp LEFT JOIN gd ON gd.patient_id = sp.id LEFT JOIN ac ON ac.patient_id = sp.id"
        " LEFT JOIN qi ON qi.patient_id = sp.id LEFT JOIN bi ON bi.patient_id = sp.id)"  # nosec B608 - identifiers and constants only
    )
    select = (
        "SELECT el.region_id, SUM(el.eligible),"
        " SUM(CASE WHEN el.eligible = 1 AND aw.patient_id IS NOT NULL THEN 1 ELSE 0 END)"
        " FROM el LEFT JOIN aw ON aw.patient_id = el.id GROUP BY el.region_id"
    )
    sql = "WITH " + ",\n".join(ctes) + "\n" + select  # nosec B608 - identifiers and constants only
    return sql, params


def coverage_rows(rule: rules.RewardRule, region: Region, on: date) -> dict[str, dict[str, int]]:
    """``{village code: {"eligible": n, "active": m}}`` (``coverage_sql``)."""
    from reports.engine import tuned

    sql, params = coverage_sql(rule, region, on)
    with tuned(region), connection.cursor() as cur:
        cur.execute(sql, params)
        rows = cur.fetchall()
    return {code: {"eligible": int(e or 0), "active": int(a or 0)} for code, e, a in rows}
