"""Pure rules of the indicators (DOMAIN.md → Indicators). No ORM here.

A period is a quarter ``YYYYQn``; its statistics date is the quarter's last
day (or today while the quarter runs) and "the year" runs from 1 January to
it. Every indicator is defined once, in ``INDICATORS``, as a numerator and a
denominator over additive per-region counts (``COUNT_KEYS``); the engine
counts patients, these rules turn counts into values, and pages, the API and
the exports all call ``evaluate`` so their numbers agree.

Choices where DOMAIN.md leaves room, kept here and in docs:

- Medication and regular medication read the last completed follow-up *of
  the year* (1 January to the statistics date): a patient with no contact
  this year is not counted as taking medication on the strength of an older
  visit (in hospital still counts for ``medication``).
- Standard management: a patient registered at most three months before the
  statistics date who has not been visited yet has no gap over three months
  and counts as standard; a patient on the register longer needs completed
  follow-ups that leave no such gap from 1 January (or registration).
- Incidents: a trouble or disaster recorded by the police (``Incident``) or
  answered on a completed follow-up form (``dangerous_behaviours``) in the
  year; a patient counts once however many.
- State on the statistics date: the running quarter reads the register as it
  is now; a past quarter reads it as it was at the end of its statistics date
  (``reports.engine.as_of_base``), so finalising it later changes nothing.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

ERR_PERIOD_FORMAT = _("统计期的格式应为“年份Q季度”，例如 2026Q3。")
ERR_PERIOD_FUTURE = _("该统计期尚未开始。")
ERR_PERIOD_TOO_OLD = _("该统计期早于系统支持的范围。")
ERR_PERIOD_BEFORE_DATA = _("该统计期早于系统中最早的数据（%(first)s），没有可统计的患者。")
ERR_NOT_COMPUTED = _(
    "该地区此统计期的汇总尚未生成：市级及以上地区只显示夜间汇总的结果，"
    "请选择其他统计期或稍后再查看。"
)

FIRST_YEAR = 2000
PERIOD_RE = re.compile(r"^(\d{4})Q([1-4])$")

# How many quarters a trend shows and the nightly job keeps filled.
TREND_QUARTERS = 8
# A past quarter stays open for late entries this many days after its end,
# then its snapshot becomes final and is never recomputed.
FINALISE_AFTER_DAYS = 15
# DOMAIN.md: "no gap over 3 months" between completed follow-ups; a gap of
# exactly three calendar months is allowed, one day more is not.
STANDARD_MAX_GAP_MONTHS = 3
# "last follow-up within 3 months classified stable"
STABLE_WITHIN_MONTHS = 3


class PeriodError(ValueError):
    """An invalid or not yet started period; ``message`` is translatable."""

    def __init__(self, message):
        super().__init__(str(message))
        self.message = message


def add_months(d: date, months: int) -> date:
    """Calendar months, clipped to the month's end (30 Nov + 3 = 28/29 Feb),
    the same arithmetic as PostgreSQL's ``date + interval 'n months'``."""
    total = d.year * 12 + (d.month - 1) + months
    year, month = divmod(total, 12)
    month += 1
    return date(year, month, min(d.day, calendar.monthrange(year, month)[1]))


@dataclass(frozen=True, order=True)
class Period:
    year: int
    quarter: int

    @classmethod
    def parse(cls, code: str) -> Period:
        match = PERIOD_RE.match((code or "").strip().upper())
        if match is None:
            raise PeriodError(ERR_PERIOD_FORMAT)
        period = cls(int(match.group(1)), int(match.group(2)))
        if period.year < FIRST_YEAR:
            raise PeriodError(ERR_PERIOD_TOO_OLD)
        return period

    @classmethod
    def containing(cls, d: date) -> Period:
        return cls(d.year, (d.month - 1) // 3 + 1)

    @property
    def code(self) -> str:
        return f"{self.year}Q{self.quarter}"

    def __str__(self) -> str:
        return self.code

    @property
    def label(self) -> str:
        return str(_("%(year)s年第%(quarter)s季度") % {"year": self.year, "quarter": self.quarter})

    @property
    def start(self) -> date:
        return date(self.year, 3 * self.quarter - 2, 1)

    @property
    def end(self) -> date:
        month = 3 * self.quarter
        return date(self.year, month, calendar.monthrange(self.year, month)[1])

    @property
    def year_start(self) -> date:
        return date(self.year, 1, 1)

    def previous(self) -> Period:
        if self.quarter == 1:
            return Period(self.year - 1, 4)
        return Period(self.year, self.quarter - 1)

    def next(self) -> Period:
        if self.quarter == 4:
            return Period(self.year + 1, 1)
        return Period(self.year, self.quarter + 1)

    def is_future(self, today: date) -> bool:
        return self.start > today

    def is_current(self, today: date) -> bool:
        return self.start <= today <= self.end

    def statistics_date(self, today: date) -> date:
        """The quarter's last day, or today while the quarter runs."""
        if self.is_future(today):
            raise PeriodError(ERR_PERIOD_FUTURE)
        return min(self.end, today)

    def finalisable(self, today: date) -> bool:
        """Past the end and the grace period for late entries."""
        return today > self.end + timedelta(days=FINALISE_AFTER_DAYS)

    def last_n(self, n: int) -> list[Period]:
        """``n`` quarters ending with this one, oldest first."""
        out = [self]
        while len(out) < n:
            out.append(out[-1].previous())
        return list(reversed(out))


# --- counts -------------------------------------------------------------------

# Additive per-region counts of registered patients on the statistics date
# (the engine computes one row per patient region and sums them upwards).
PATIENT_COUNT_KEYS = (
    "registered",
    "new_registered",  # registered during the quarter
    "managed",
    "standard",
    "face_to_face",
    "medication",
    "regular_medication",
    "at_home_managed",  # managed and not in hospital: the stable rate's base
    "stable",
    "at_home",  # not in hospital: the rehab rate's base
    "rehab",
    "certificate",
    "incident",  # trouble or disaster in the year
    "incident_quarter",  # … in the quarter (exchange form)
    "high_risk",
    "overdue",
    "lost",
    "in_hospital",
    "police_registered",
    "poor",  # dibao or tekun (exchange form, civil affairs)
    "insured",  # in a basic medical insurance scheme (exchange form, labour office)
    "uninsured",  # in none: to enrol (exchange form, labour office)
    "risk_0",
    "risk_1",
    "risk_2",
    "risk_3",
    "risk_4",
    "risk_5",
    "risk_none",  # never assessed
)
RISK_KEYS = ("risk_0", "risk_1", "risk_2", "risk_3", "risk_4", "risk_5", "risk_none")
# Counts kept by the subsidies app, per region (not summed: asked per region).
REWARD_KEYS = ("reward_eligible", "reward_active")
POPULATION = "population"


def risk_label(level: int | None):
    """``3级`` for a risk level, ``未评估`` for none (lazy)."""
    if level is None:
        return _("未评估")
    return format_lazy(_("{level}级"), level=level)


def sum_counts(rows: Iterable[Mapping[str, int]]) -> dict[str, int]:
    """The sum of patient counts (population and reward counts excluded)."""
    total = dict.fromkeys(PATIENT_COUNT_KEYS, 0)
    for row in rows:
        for key in PATIENT_COUNT_KEYS:
            total[key] += int(row.get(key) or 0)
    return total


def rollup(
    leaf_counts: Mapping[str, Mapping[str, int]],
    leaf_paths: Mapping[str, str],
    targets: Iterable[str],
    keys: Iterable[str] = PATIENT_COUNT_KEYS,
) -> dict[str, dict[str, int]]:
    """Counts of each target region: the sum over the leaves inside it.

    ``leaf_counts`` is keyed by the region code patients live in,
    ``leaf_paths`` gives those regions' materialised paths
    (``/990000/990100/990102/990102001/990102001001/``); ``keys`` are the
    counts summed (the patient counts unless told).
    """
    keys = tuple(keys)
    wanted = set(targets)
    out = {code: dict.fromkeys(keys, 0) for code in wanted}
    for leaf, counts in leaf_counts.items():
        for code in leaf_paths[leaf].strip("/").split("/"):
            if code in wanted:
                bucket = out[code]
                for key in keys:
                    bucket[key] += int(counts.get(key) or 0)
    return out


def drill_count(
    counts: Mapping[str, int], numerator: str, denominator: str | None, missing: bool
) -> int | None:
    """The number a drill-down list stands for in ``counts``: the numerator,
    or (``missing``) the denominator less the numerator."""
    if numerator not in counts:
        return None
    if missing and denominator:
        if denominator not in counts:
            return None
        return int(counts[denominator]) - int(counts[numerator])
    return int(counts[numerator])


def populations(regions: Iterable[tuple[str, str | None, int | None]]) -> dict[str, int | None]:
    """Resident population of each region ``(code, parent_code, population)``:
    its own figure, else the sum of its children's (None when unknown)."""
    rows = list(regions)
    own = {code: pop for code, _parent, pop in rows}
    children: dict[str, list[str]] = {}
    for code, parent, _pop in rows:
        if parent in own:
            children.setdefault(parent, []).append(code)
    memo: dict[str, int | None] = {}

    def pop_of(code: str) -> int | None:
        if code not in memo:
            if own[code] is not None:
                memo[code] = own[code]
            else:
                parts = [pop_of(c) for c in children.get(code, ())]
                known = [p for p in parts if p is not None]
                memo[code] = sum(known) if known else None
        return memo[code]

    return {code: pop_of(code) for code in own}


# --- indicators ---------------------------------------------------------------

COUNT = "count"
PERCENT = "percent"
PERMILLE = "permille"

TWO_PLACES = Decimal("0.01")


@dataclass(frozen=True)
class Indicator:
    key: str
    label: str
    unit: str
    numerator: str
    denominator: str | None = None
    # True: a higher value is better (target is a floor); False: a ceiling
    higher_is_better: bool | None = True
    # the numerator is a set of patients health staff may list
    drill: bool = True
    definition: str = ""

    @property
    def scale(self) -> int:
        return {PERCENT: 100, PERMILLE: 1000}.get(self.unit, 1)


INDICATORS: tuple[Indicator, ...] = (
    Indicator(
        "registered",
        _("在册患者数"),
        COUNT,
        "registered",
        higher_is_better=None,
        definition=_("统计日在册（在管、失访、不同意参加管理）的患者数"),
    ),
    Indicator(
        "prevalence_permille",
        _("报告患病率"),
        PERMILLE,
        "registered",
        POPULATION,
        drill=False,
        definition=_("在册患者数 ÷ 常住人口 × 1000"),
    ),
    Indicator(
        "managed",
        _("在管患者数"),
        COUNT,
        "managed",
        higher_is_better=None,
        definition=_("年内至少有1次完成的随访或正在住院的在册患者数"),
    ),
    Indicator(
        "management_rate",
        _("管理率"),
        PERCENT,
        "managed",
        "registered",
        definition=_("在管患者数 ÷ 在册患者数"),
    ),
    Indicator(
        "standard_management_rate",
        _("规范管理率"),
        PERCENT,
        "standard",
        "registered",
        definition=_(
            "自1月1日（或纳入管理日）至统计日，完成的随访间隔均不超过3个月的患者 ÷ 在册患者数"
        ),
    ),
    Indicator(
        "face_to_face_rate",
        _("面访率"),
        PERCENT,
        "face_to_face",
        "registered",
        definition=_("年内至少有1次门诊或家庭访视的患者 ÷ 在册患者数"),
    ),
    Indicator(
        "medication_rate",
        _("服药率"),
        PERCENT,
        "medication",
        "registered",
        definition=_("最近一次随访规律或间断服药，或正在住院的患者 ÷ 在册患者数"),
    ),
    Indicator(
        "regular_medication_rate",
        _("规律服药率"),
        PERCENT,
        "regular_medication",
        "registered",
        definition=_("最近一次随访规律服药的患者 ÷ 在册患者数"),
    ),
    Indicator(
        "stable_rate",
        _("病情稳定率"),
        PERCENT,
        "stable",
        "at_home_managed",
        definition=_("最近一次随访在3个月内且分类为稳定的患者 ÷ 居家的在管患者数"),
    ),
    Indicator(
        "incident_rate",
        _("肇事肇祸率"),
        PERCENT,
        "incident",
        "registered",
        higher_is_better=False,
        definition=_("年内有肇事或肇祸的患者 ÷ 在册患者数"),
    ),
    Indicator(
        "high_risk",
        _("高风险患者数"),
        COUNT,
        "high_risk",
        higher_is_better=False,
        definition=_("最近一次危险性评估为3级及以上的在册患者数"),
    ),
    Indicator(
        "overdue",
        _("逾期未随访数"),
        COUNT,
        "overdue",
        higher_is_better=False,
        definition=_("统计日在管且已过下次随访日期的患者数"),
    ),
    Indicator(
        "lost",
        _("失访患者数"),
        COUNT,
        "lost",
        higher_is_better=False,
        definition=_("统计日状态为失访的患者数"),
    ),
    Indicator(
        "rehab_rate",
        _("社区康复参与率"),
        PERCENT,
        "rehab",
        "at_home",
        definition=_("参加社区康复的居家患者 ÷ 居家的在册患者数"),
    ),
    Indicator(
        "certificate_rate",
        _("残疾证持证率"),
        PERCENT,
        "certificate",
        "registered",
        definition=_("持有残疾人证的患者 ÷ 在册患者数"),
    ),
    Indicator(
        "reward_coverage",
        _("以奖代补覆盖率"),
        PERCENT,
        "reward_active",
        "reward_eligible",
        drill=False,
        definition=_("监护人领取以奖代补的符合条件患者 ÷ 符合条件的患者"),
    ),
)
BY_KEY: dict[str, Indicator] = {i.key: i for i in INDICATORS}
INDICATOR_CHOICES = [(i.key, i.label) for i in INDICATORS]

# The numerator and denominator sets a drill-down may list (patient flags).
DRILL_SETS = frozenset(
    {i.numerator for i in INDICATORS if i.drill}
    | {i.denominator for i in INDICATORS if i.drill and i.denominator}
    | set(RISK_KEYS)
)


@dataclass(frozen=True)
class IndicatorValue:
    indicator: Indicator
    value: int | Decimal | None  # None: not computable (zero base) or not available
    numerator: int | None
    denominator: int | None
    target: Decimal | None
    met: bool | None
    available: bool = True

    @property
    def key(self) -> str:
        return self.indicator.key

    @property
    def label(self) -> str:
        return self.indicator.label

    @property
    def unit(self) -> str:
        return self.indicator.unit


def ratio(numerator: int, denominator: int | None, scale: int) -> Decimal | None:
    """``numerator ÷ denominator × scale`` rounded half-up to 0.01."""
    if not denominator:
        return None
    return (Decimal(numerator) * scale / Decimal(denominator)).quantize(
        TWO_PLACES, rounding=ROUND_HALF_UP
    )


def target_met(indicator: Indicator, value, target: Decimal | None) -> bool | None:
    if target is None or value is None or indicator.higher_is_better is None:
        return None
    if indicator.higher_is_better:
        return Decimal(value) >= target
    return Decimal(value) <= target


def evaluate_one(
    indicator: Indicator, counts: Mapping[str, int | None], target: Decimal | None = None
) -> IndicatorValue:
    if indicator.numerator not in counts or (
        indicator.denominator is not None and indicator.denominator not in counts
    ):
        return IndicatorValue(indicator, None, None, None, target, None, available=False)
    numerator = counts[indicator.numerator]
    if numerator is None:
        return IndicatorValue(indicator, None, None, None, target, None, available=False)
    numerator = int(numerator)
    if indicator.unit == COUNT:
        value: int | Decimal | None = numerator
        denominator = None
    else:
        raw = counts[indicator.denominator]
        denominator = None if raw is None else int(raw)
        value = ratio(numerator, denominator, indicator.scale)
    return IndicatorValue(
        indicator,
        value,
        numerator,
        denominator,
        target,
        target_met(indicator, value, target),
    )


def evaluate(
    counts: Mapping[str, int | None], targets: Mapping[str, Decimal] | None = None
) -> list[IndicatorValue]:
    """Every indicator of DOMAIN.md from one region's counts, in display order."""
    targets = targets or {}
    return [evaluate_one(i, counts, targets.get(i.key)) for i in INDICATORS]


def format_value(value: IndicatorValue) -> str:
    """How a value reads on pages and in exports: ``93.52%``, ``4.41‰``, ``12``."""
    if not value.available:
        return "—"
    if value.value is None:
        return "—"
    if value.unit == PERCENT:
        return f"{value.value}%"
    if value.unit == PERMILLE:
        return f"{value.value}‰"
    return str(value.value)
