"""Pure rules of the guardian reward and the one-stop settlement (DOMAIN.md).

No ORM here: services turn rows into the dataclasses below, call these
functions and save what they return. Money is ``Decimal`` rounded half-up to
the fen at each step; the settlement lines plus what the patient pays equal
the bill's total exactly.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.utils.translation import gettext_lazy as _

FEN = Decimal("0.01")
ZERO = Decimal("0.00")
HUNDRED = Decimal("100")


def to_fen(value: Decimal) -> Decimal:
    """Round half-up to the fen (0.01)."""
    return Decimal(value).quantize(FEN, rounding=ROUND_HALF_UP)


# --------------------------------------------------------------------------
# Codes shared with the models (TextChoices there use the same values)
# --------------------------------------------------------------------------

PAYERS = (
    "basic_insurance",
    "serious_illness_insurance",
    "commercial_insurance",
    "civil_affairs",
    "disabled_federation",
    "union_mutual_aid",
    "finance_backstop",
)

CONDITIONS = (
    "always",
    "insured",
    "poverty_assistance",
    "poor",
    "certificate_held",
    "union_member",
    "high_risk",
    "poor_or_high_risk",
    "registered",
)

POVERTY_ASSISTANCE = frozenset({"dibao", "tekun"})
POOR = frozenset({"dibao", "tekun", "low_income"})
REGISTERED_STATUSES = frozenset({"active", "lost", "refused"})
QUALIFYING_INCIDENTS_DEFAULT = ("trouble", "disaster")

# --------------------------------------------------------------------------
# Messages (module constants: tests reuse them)
# --------------------------------------------------------------------------

ERR_TOTAL_NEGATIVE = _("总费用不能为负数。")
ERR_IN_SCOPE_NEGATIVE = _("政策范围内费用不能为负数。")
ERR_IN_SCOPE_EXCEEDS_TOTAL = _("政策范围内费用不能超过总费用。")
ERR_AMOUNT_PRECISION = _("金额最多保留两位小数（精确到分）。")
ERR_DISCHARGE_BEFORE_ADMISSION = _("出院日期不能早于入院日期。")
ERR_RATIO_RANGE = _("支付比例须在0至100之间（按百分比填写）。")
ERR_VALIDITY_ORDER = _("有效期结束日期不能早于开始日期。")
ERR_DUPLICATE_ORDER = _("支付层级顺序号重复：同一政策中每个顺序号只能使用一次。")

REASON_NOT_REGISTERED = _("患者不在册（当前管理状态：%(status)s）。")
REASON_NOT_POLICE_REGISTERED = _("患者未录入公安机关登记系统（未列管）。")
REASON_NO_INCIDENT_OR_RISK = _("患者无肇事、肇祸记录，且最近危险性评估低于%(min)d级。")
REASON_NO_INCIDENT = _("患者无肇事、肇祸记录。")
REASON_NO_GUARDIAN = _("未登记监护人。")
REASON_NO_LETTER = _("监护人未签订监护责任书。")
REASON_FEW_ASSISTANTS = _("协助监护人不足%(min)d名（现有%(count)d名）。")
REASON_BARRED = _("监护人未履行监护责任（%(incident)s发生肇事肇祸），%(until)s前不得重新申请。")


class RuleError(ValueError):
    """Bad input to a rule; ``field`` names the input it belongs to."""

    def __init__(self, message, *, field: str | None = None):
        super().__init__(str(message))
        self.message = message
        self.field = field


# --------------------------------------------------------------------------
# Dates
# --------------------------------------------------------------------------


def month_start(d: date) -> date:
    return d.replace(day=1)


def month_end(d: date) -> date:
    return d.replace(day=calendar.monthrange(d.year, d.month)[1])


def add_months(d: date, months: int) -> date:
    """Same day ``months`` later (clamped to the month's last day)."""
    y, m = divmod(d.month - 1 + months, 12)
    year, month = d.year + y, m + 1
    return date(year, month, min(d.day, calendar.monthrange(year, month)[1]))


def year_after(start: date) -> date:
    """The last day of the year that begins on ``start`` (2026-03-01 → 2027-02-28)."""
    return add_months(start, 12) - timedelta(days=1)


def renewed_until(valid_until: date) -> date:
    """The end of the next year after a yearly term ending on ``valid_until``.

    Counted from the day after, not from ``valid_until`` itself: adding 12
    months to the 28th of February would lose the 29th in a leap year and
    drift a day each renewal (2027-02-28 → 2028-02-29, not 2028-02-28).
    """
    return year_after(valid_until + timedelta(days=1))


def next_month_start(d: date) -> date:
    return add_months(month_start(d), 1)


def months_between(start: date, end: date) -> list[date]:
    """First days of the months from ``start``'s month to ``end``'s month."""
    out, cur = [], month_start(start)
    while cur <= end:
        out.append(cur)
        cur = add_months(cur, 1)
    return out


def in_validity(d: date, valid_from: date | None, valid_to: date | None) -> bool:
    return (valid_from is None or valid_from <= d) and (valid_to is None or d <= valid_to)


def validity_overlaps(
    a_from: date | None, a_to: date | None, b_from: date | None, b_to: date | None
) -> bool:
    """Do two closed date ranges (None = open end) share a day?"""
    a_lo, b_lo = a_from or date.min, b_from or date.min
    a_hi, b_hi = a_to or date.max, b_to or date.max
    return a_lo <= b_hi and b_lo <= a_hi


# --------------------------------------------------------------------------
# Periods of reward payment
# --------------------------------------------------------------------------

FREQUENCIES = ("monthly", "quarterly", "half_yearly", "yearly")


@dataclass(frozen=True)
class Period:
    code: str  # 2026-03, 2026Q1, 2026H1, 2026
    start: date
    end: date

    @property
    def months(self) -> list[date]:
        return months_between(self.start, self.end)


def period_containing(frequency: str, d: date) -> Period:
    if frequency == "monthly":
        return Period(f"{d.year}-{d.month:02d}", month_start(d), month_end(d))
    if frequency == "quarterly":
        q = (d.month - 1) // 3 + 1
        start = date(d.year, 3 * q - 2, 1)
        return Period(f"{d.year}Q{q}", start, month_end(add_months(start, 2)))
    if frequency == "half_yearly":
        h = 1 if d.month <= 6 else 2
        start = date(d.year, 1 if h == 1 else 7, 1)
        return Period(f"{d.year}H{h}", start, month_end(add_months(start, 5)))
    if frequency == "yearly":
        return Period(str(d.year), date(d.year, 1, 1), date(d.year, 12, 31))
    raise ValueError(f"unknown frequency {frequency!r}")


def last_completed_period(frequency: str, today: date) -> Period:
    """The latest period that ended before ``today``."""
    current = period_containing(frequency, today)
    return period_containing(frequency, current.start - timedelta(days=1))


def parse_period(code: str) -> Period:
    """``2026Q1`` / ``2026H2`` / ``2026-03`` / ``2026`` → Period; ValueError otherwise."""
    code = (code or "").strip().upper()
    try:
        if len(code) == 6 and code[4] == "Q" and code[5] in "1234":
            return period_containing("quarterly", date(int(code[:4]), 3 * int(code[5]) - 2, 1))
        if len(code) == 6 and code[4] == "H" and code[5] in "12":
            return period_containing("half_yearly", date(int(code[:4]), 6 * int(code[5]) - 5, 1))
        if len(code) == 7 and code[4] == "-":
            return period_containing("monthly", date(int(code[:4]), int(code[5:]), 1))
        if len(code) == 4 and code.isdigit():
            return period_containing("yearly", date(int(code), 1, 1))
    except ValueError:
        pass
    raise ValueError(f"not a period: {code!r}")


def period_frequency(code: str) -> str:
    code = code.upper()
    if "Q" in code:
        return "quarterly"
    if "H" in code:
        return "half_yearly"
    if "-" in code:
        return "monthly"
    return "yearly"


# --------------------------------------------------------------------------
# Guardian reward: eligibility
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class RewardRule:
    """The eligibility rule of a reward policy (DOMAIN.md default)."""

    require_police_registered: bool = True
    qualifying_incident_kinds: tuple[str, ...] = QUALIFYING_INCIDENTS_DEFAULT
    min_risk_level: int | None = 3  # None: risk level does not qualify
    require_responsibility_letter: bool = True
    min_assistant_guardians: int = 2
    reapply_bar_months: int = 12


@dataclass(frozen=True)
class RewardFacts:
    """What the register says about a patient, for the reward rule."""

    status: str
    status_label: str
    police_registered: bool
    risk_level: int | None
    incident_kinds: frozenset[str]
    has_guardian: bool
    responsibility_letter: bool
    assistant_guardians: int
    last_failed_duty_incident: date | None = None


@dataclass(frozen=True)
class Reason:
    code: str
    message: str


def bar_cutoff(today: date, bar_months: int) -> date:
    """The latest failed-duty incident date that no longer bars an application
    on ``today``: an incident after it still bars (``reapply_barred_until``
    > today). Exact at month ends, where ``add_months`` clamps."""
    cutoff = add_months(today, -bar_months)
    while add_months(cutoff + timedelta(days=1), bar_months) <= today:
        cutoff += timedelta(days=1)
    while add_months(cutoff, bar_months) > today:
        cutoff -= timedelta(days=1)
    return cutoff


def reapply_barred_until(facts: RewardFacts, rule: RewardRule) -> date | None:
    """The day from which a guardian who failed their duties may apply again."""
    if facts.last_failed_duty_incident is None:
        return None
    return add_months(facts.last_failed_duty_incident, rule.reapply_bar_months)


def reward_ineligibility(facts: RewardFacts, rule: RewardRule, *, today: date) -> list[Reason]:
    """Every reason the guardian is not eligible today (empty list = eligible)."""
    reasons: list[Reason] = []
    if facts.status not in REGISTERED_STATUSES:
        reasons.append(
            Reason("not_registered", str(REASON_NOT_REGISTERED % {"status": facts.status_label}))
        )
    if rule.require_police_registered and not facts.police_registered:
        reasons.append(Reason("not_police_registered", str(REASON_NOT_POLICE_REGISTERED)))
    has_incident = bool(facts.incident_kinds & set(rule.qualifying_incident_kinds))
    high_risk = (
        rule.min_risk_level is not None
        and facts.risk_level is not None
        and facts.risk_level >= rule.min_risk_level
    )
    if not (has_incident or high_risk):
        if rule.min_risk_level is None:
            reasons.append(Reason("no_incident", str(REASON_NO_INCIDENT)))
        else:
            reasons.append(
                Reason(
                    "no_incident_or_risk",
                    str(REASON_NO_INCIDENT_OR_RISK % {"min": rule.min_risk_level}),
                )
            )
    if not facts.has_guardian:
        reasons.append(Reason("no_guardian", str(REASON_NO_GUARDIAN)))
    elif rule.require_responsibility_letter and not facts.responsibility_letter:
        reasons.append(Reason("no_letter", str(REASON_NO_LETTER)))
    if facts.assistant_guardians < rule.min_assistant_guardians:
        reasons.append(
            Reason(
                "few_assistants",
                str(
                    REASON_FEW_ASSISTANTS
                    % {"min": rule.min_assistant_guardians, "count": facts.assistant_guardians}
                ),
            )
        )
    until = reapply_barred_until(facts, rule)
    if until is not None and today < until:
        reasons.append(
            Reason(
                "barred",
                str(
                    REASON_BARRED
                    % {
                        "incident": facts.last_failed_duty_incident.isoformat(),
                        "until": until.isoformat(),
                    }
                ),
            )
        )
    return reasons


# --------------------------------------------------------------------------
# Guardian reward: pro-rating by whole months
# --------------------------------------------------------------------------


def first_paid_month(active_from: date) -> date:
    """Paid from the month the award is in force for the whole of (次月起发放)."""
    return active_from if active_from.day == 1 else next_month_start(active_from)


def paying_months(
    period: Period,
    *,
    active_from: date,
    stop_from: date | None = None,
    valid_until: date | None = None,
) -> list[date]:
    """Whole months of ``period`` in which the award was in force.

    ``stop_from`` is the first day no longer paid (suspension: the month after
    the incident; end: the month after the end date). ``valid_until`` is the
    yearly review date: a month is paid only if it ends on or before it.
    """
    first = first_paid_month(active_from)
    out = []
    for m in period.months:
        if m < first:
            continue
        if stop_from is not None and m >= stop_from:
            continue
        if valid_until is not None and month_end(m) > valid_until:
            continue
        out.append(m)
    return out


def reward_amount(monthly_yearly_amounts: Iterable[Decimal]) -> Decimal:
    """Amount for the paid months, given each month's yearly amount.

    Months under the same yearly amount are paid together as amount × n / 12,
    rounded half-up to the fen once per amount.
    """
    counts: dict[Decimal, int] = {}
    for yearly in monthly_yearly_amounts:
        counts[Decimal(yearly)] = counts.get(Decimal(yearly), 0) + 1
    total = ZERO
    for yearly, n in counts.items():
        total += to_fen(yearly * n / 12)
    return total


# --------------------------------------------------------------------------
# One-stop settlement
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Layer:
    order: int
    payer: str
    condition: str
    ratio: Decimal  # percent, 0–100
    deductible_per_year: Decimal | None = None
    cap_per_episode: Decimal | None = None
    cap_per_year: Decimal | None = None
    valid_from: date | None = None
    valid_to: date | None = None
    # the threshold of the ``high_risk`` conditions: policy data of this layer,
    # not the alert setting (changing when alerts fire must not move money)
    min_risk_level: int = 3


@dataclass(frozen=True)
class PatientFacts:
    """The patient's flags on the admission date."""

    insured: bool
    poverty: str = "none"
    certificate_held: bool = False
    union_member: bool = False
    risk_level: int | None = None
    registered: bool = True


@dataclass(frozen=True)
class PayerUsage:
    """What reached and what a payer paid in the patient's earlier episodes this year."""

    base: Decimal = ZERO
    paid: Decimal = ZERO


@dataclass(frozen=True)
class Line:
    order: int
    payer: str
    ratio: Decimal
    base: Decimal  # the in-scope remainder that reached this layer
    eligible: Decimal  # the part above the deductible
    amount: Decimal
    limited_by: str = ""  # "", "deductible", "cap_per_episode", "cap_per_year"


@dataclass(frozen=True)
class Quote:
    total: Decimal
    in_scope: Decimal
    out_of_scope: Decimal
    lines: tuple[Line, ...]
    patient_pays: Decimal
    in_scope_remainder: Decimal = field(default=ZERO)

    @property
    def paid_by_payers(self) -> Decimal:
        return sum((ln.amount for ln in self.lines), ZERO)


def condition_holds(condition: str, facts: PatientFacts, *, min_risk_level: int = 3) -> bool:
    """Does a layer's condition hold for the patient? ``min_risk_level`` is the
    layer's own threshold of the ``high_risk`` conditions."""
    high_risk = facts.risk_level is not None and facts.risk_level >= min_risk_level
    poor = facts.poverty in POOR
    return {
        "always": True,
        "insured": facts.insured,
        "poverty_assistance": facts.poverty in POVERTY_ASSISTANCE,
        "poor": poor,
        "certificate_held": facts.certificate_held,
        "union_member": facts.union_member,
        "high_risk": high_risk,
        "poor_or_high_risk": poor or high_risk,
        "registered": facts.registered,
    }[condition]


def check_layers(layers: Sequence[Layer]) -> None:
    """Refuse a duplicate order or a ratio outside 0–100 %."""
    seen: set[int] = set()
    for layer in layers:
        if layer.order in seen:
            raise RuleError(ERR_DUPLICATE_ORDER, field="order")
        seen.add(layer.order)
        if not (ZERO <= Decimal(layer.ratio) <= HUNDRED):
            raise RuleError(ERR_RATIO_RANGE, field="ratio")
        if layer.valid_from and layer.valid_to and layer.valid_to < layer.valid_from:
            raise RuleError(ERR_VALIDITY_ORDER, field="valid_to")


def _money(value, *, field: str) -> Decimal:
    value = Decimal(value)
    if value != value.quantize(FEN):
        raise RuleError(ERR_AMOUNT_PRECISION, field=field)
    return value.quantize(FEN)


def check_bill(
    *, total: Decimal, in_scope: Decimal, admission: date, discharge: date | None
) -> tuple[Decimal, Decimal]:
    total = _money(total, field="total_cost")
    in_scope = _money(in_scope, field="in_scope_cost")
    if total < 0:
        raise RuleError(ERR_TOTAL_NEGATIVE, field="total_cost")
    if in_scope < 0:
        raise RuleError(ERR_IN_SCOPE_NEGATIVE, field="in_scope_cost")
    if in_scope > total:
        raise RuleError(ERR_IN_SCOPE_EXCEEDS_TOTAL, field="in_scope_cost")
    if discharge is not None and discharge < admission:
        raise RuleError(ERR_DISCHARGE_BEFORE_ADMISSION, field="discharge_date")
    return total, in_scope


def split_bill(
    *,
    total: Decimal,
    in_scope: Decimal,
    admission: date,
    discharge: date | None = None,
    layers: Sequence[Layer],
    facts: PatientFacts,
    usage: dict[str, PayerUsage] | None = None,
) -> Quote:
    """Split one bill across the payer layers in force on the admission date.

    Each layer whose validity covers ``admission`` and whose condition holds
    pays ``ratio`` % of the in-scope remainder left by the layers above —
    only the part above its yearly deductible (counting what reached it in
    earlier episodes this year) — up to its cap per episode and what is left
    of its cap per year. The out-of-scope part is always the patient's.
    """
    total, in_scope = check_bill(
        total=total, in_scope=in_scope, admission=admission, discharge=discharge
    )
    check_layers(layers)
    usage = usage or {}
    remainder = in_scope
    lines: list[Line] = []
    for layer in sorted(layers, key=lambda ly: ly.order):
        if not in_validity(admission, layer.valid_from, layer.valid_to):
            continue
        if not condition_holds(layer.condition, facts, min_risk_level=layer.min_risk_level):
            continue
        used = usage.get(layer.payer, PayerUsage())
        base = remainder
        eligible = base
        limited = ""
        if layer.deductible_per_year is not None:
            deductible_left = max(ZERO, Decimal(layer.deductible_per_year) - used.base)
            eligible = max(ZERO, base - deductible_left)
            if eligible < base:
                limited = "deductible"
        amount = to_fen(eligible * Decimal(layer.ratio) / HUNDRED)
        if layer.cap_per_episode is not None and amount > layer.cap_per_episode:
            amount, limited = to_fen(layer.cap_per_episode), "cap_per_episode"
        if layer.cap_per_year is not None:
            left = max(ZERO, Decimal(layer.cap_per_year) - used.paid)
            if amount > left:
                amount, limited = to_fen(left), "cap_per_year"
        amount = min(amount, remainder)  # never more than what is left
        remainder -= amount
        lines.append(
            Line(
                order=layer.order,
                payer=layer.payer,
                ratio=Decimal(layer.ratio),
                base=base,
                eligible=eligible,
                amount=amount,
                limited_by=limited,
            )
        )
    out_of_scope = total - in_scope
    return Quote(
        total=total,
        in_scope=in_scope,
        out_of_scope=out_of_scope,
        lines=tuple(lines),
        patient_pays=out_of_scope + remainder,
        in_scope_remainder=remainder,
    )


@dataclass(frozen=True)
class PayerTotal:
    """What one payer pays of a bill: one line per payer (API.md), with the
    layers it paid through (a payer may hold several layers of a policy)."""

    payer: str
    amount: Decimal
    layers: tuple  # the per-layer lines (``Line`` or saved lines), in order

    @property
    def order(self) -> int:
        return self.layers[0].order


def lines_by_payer(lines: Iterable) -> list[PayerTotal]:
    """Merge per-layer lines (``Line`` or saved lines) into one per payer, in
    the order of each payer's first layer; amounts add up exactly."""
    grouped: dict[str, list] = {}
    for line in sorted(lines, key=lambda ln: ln.order):
        grouped.setdefault(line.payer, []).append(line)
    return [
        PayerTotal(payer=payer, amount=sum((ln.amount for ln in rows), ZERO), layers=tuple(rows))
        for payer, rows in grouped.items()
    ]


def usage_from_lines(rows: Iterable[tuple[str, Decimal, Decimal]]) -> dict[str, PayerUsage]:
    """Sum (payer, base, amount) rows of earlier settlements (reversals negative)."""
    acc: dict[str, list[Decimal]] = {}
    for payer, base, amount in rows:
        b, a = acc.setdefault(payer, [ZERO, ZERO])
        acc[payer] = [b + Decimal(base), a + Decimal(amount)]
    return {p: PayerUsage(base=v[0], paid=v[1]) for p, v in acc.items()}
