"""Pure rules of follow-ups (DOMAIN.md → Follow-ups). No ORM here.

Everything the system decides about one visit lives in this module: what a
form of each outcome must carry, the suggested classification, the next due
date, when misses make a patient lost and what each outcome does to the
patient's management status. Services feed it plain values and apply the
answer in their transaction; forms and serializers use ``validate`` so the
page and the API refuse exactly the same input.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation

from django.utils.translation import gettext_lazy as _

# Codes (the API and database values of DOMAIN.md).
UNSTABLE = "unstable"
BASICALLY_STABLE = "basically_stable"
STABLE = "stable"
CLASSIFICATIONS = (UNSTABLE, BASICALLY_STABLE, STABLE)

COMPLETED = "completed"
NOT_REACHED = "not_reached"
LOST = "lost"
DECEASED = "deceased"
OUTCOMES = (COMPLETED, NOT_REACHED, LOST, DECEASED)

MODES = ("clinic", "home", "phone")
CONTACTS = ("patient", "family", "other")
LOST_REASONS = ("out_for_work", "moved", "missing", "unreachable_3x", "other")
DEATH_CAUSES = ("physical_illness", "suicide", "homicide", "accident", "complication", "other")
INSIGHT = ("complete", "partial", "absent")
LEVEL3 = ("good", "fair", "poor")
WORK_LEVELS = (*LEVEL3, "not_applicable")
LOCK_STATUSES = ("none", "locked", "released")
HOSPITALIZATIONS = ("none", "current", "past")
COMPLIANCE = ("regular", "intermittent", "none", "not_needed")
TREATMENT_EFFECTS = ("cured", "improved", "unchanged", "worse", "not_applicable")
SYMPTOMS = (
    "hallucination",
    "communication_difficulty",
    "suspicion",
    "moodiness",
    "odd_behaviour",
    "excitement",
    "violence",
    "pessimism",
    "wandering",
    "self_talk",
    "withdrawal",
    "other",
)
DANGEROUS_BEHAVIOURS = (
    "minor_trouble",
    "trouble",
    "disaster",
    "other_harm",
    "self_harm",
    "suicide_attempt",
)
REHAB_MEASURES = ("daily_living", "vocational", "learning", "social", "other")
SOCIAL_FUNCTION = ("self_care", "housework", "work", "learning", "social")

# Management statuses of the patient (patients.models.Status codes).
ACTIVE = "active"
REFUSED = "refused"
STATUS_LOST = "lost"
STATUS_DECEASED = "deceased"
# Follow-ups are recorded for registered patients only (DOMAIN.md → Patients).
RECORDABLE_STATUSES = (ACTIVE, STATUS_LOST, REFUSED)

UNSTABLE_MIN_RISK = 3  # DOMAIN.md: unstable = risk 3–5
MAX_RISK = 5
SHORT_INTERVAL = timedelta(days=14)  # unstable; basically stable, first time
RECHECK_MONTHS = 1  # basically stable again after the 14-day recheck
STABLE_MONTHS = 3
MAX_MONTHS = 3  # never more than 3 months: at least four follow-ups a year
MISSES_BEFORE_LOST = 3  # three not_reached in a row (on separate days) make the patient lost
MAX_MEDICATION_ROWS = 3
MAX_INJECTION_WEEKS = 52  # a long-acting injection at most once a year

# Alert deadlines (DOMAIN.md → Alerts).
RISK_ACK_HOURS = 24  # unacknowledged risk alerts escalate to the county after 24 h
OVERDUE_ESCALATE_DAYS = 30  # overdue alerts escalate to the prevention agency
INCIDENT_FOLLOW_UP_DAYS = 14  # the health centre follows up within 14 days

# Every field a ``completed`` follow-up must carry (the national form's
# clinical items; DOMAIN-SOURCES §1.7 items 7–21).
COMPLETED_REQUIRED = (
    "risk_level",
    "insight",
    "sleep",
    "diet",
    "self_care",
    "housework",
    "work",
    "learning",
    "social",
    "lock_status",
    "hospitalization",
    "medication_compliance",
)

ERR_REQUIRED = _("请填写此项。")
ERR_REQUIRED_COMPLETED = _("已随访时须填写此项。")
ERR_FUTURE_VISIT = _("随访日期不能晚于今天。")
ERR_LOST_REASON = _("失访时须选择失访原因。")
ERR_DEATH_DATE = _("死亡时须填写死亡日期。")
ERR_DEATH_CAUSE = _("死亡时须选择死亡原因。")
ERR_DEATH_FUTURE = _("死亡日期不能晚于随访日期。")
ERR_DEATH_DETAIL = _("死亡原因为“其他”时须说明。")
ERR_RISK_RANGE = _("危险性评估应为0至5级。")
ERR_CHOICE = _("选项无效。")
ERR_SYMPTOMS_OTHER = _("选择了“其他”症状时须说明。")
ERR_REHAB_OTHER = _("选择了“其他”康复措施时须说明。")
ERR_DISCHARGE_DATE = _("曾住院时须填写末次出院时间。")
ERR_DISCHARGE_FUTURE = _("末次出院时间不能晚于随访日期。")
ERR_SERIOUS_WITHOUT_REACTION = _("有严重不良反应时须勾选“有药物不良反应”。")
ERR_REFERRAL_REASON = _("建议转诊时须填写转诊原因。")
ERR_DANGEROUS_COUNT = _("危险行为次数应为不小于0的整数。")
ERR_MEDICATION_ROWS = _("用药最多填写3种。")
ERR_MEDICATION_DRUG = _("请填写药物名称。")
ERR_MEDICATION_DOSE = _("请填写口服剂量（早、中、晚，毫克）或长效针剂（间隔周数和剂量）。")
ERR_MEDICATION_NUMBER = _("剂量应为不小于0的数字。")
ERR_INJECTION_INTERVAL = _("长效针剂的间隔应为1至52的整数周。")
ERR_OVERRIDE_REASON = _("调整系统建议的分类时须填写原因。")
ERR_DUE_BEFORE_VISIT = _("下次随访日期须晚于本次随访日期。")
ERR_DUE_TOO_LATE = _("下次随访日期不能晚于%(latest)s（按本次分类的最迟日期）。")
ERR_NOT_REGISTERED = _("该患者已不在册（死亡、迁出或注销），不能再记录随访。")
# Back-dated paper forms are welcome, but no date on the form can lie before
# the patient's birth, nor before the system's floor (a typo such as 1900).
# A visit before registration is allowed: the paper form may be older.
EARLIEST_DATE = date(1950, 1, 1)
ERR_BEFORE_BIRTH = {
    "visit_date": _("随访日期不能早于患者的出生日期（%(birth)s）。"),
    "death_date": _("死亡日期不能早于患者的出生日期（%(birth)s）。"),
    "last_discharge_date": _("末次出院时间不能早于患者的出生日期（%(birth)s）。"),
}
ERR_TOO_EARLY = {
    "visit_date": _("随访日期不能早于%(floor)s。"),
    "death_date": _("死亡日期不能早于%(floor)s。"),
    "last_discharge_date": _("末次出院时间不能早于%(floor)s。"),
}


class RuleError(ValueError):
    """One refused value, with the field it belongs to."""

    def __init__(self, message, field: str | None = None):
        super().__init__(str(message))
        self.message = message
        self.field = field


# ---------------------------------------------------------------- dates


def add_months(d: date, months: int) -> date:
    """``d`` plus whole months, clamped to the month's last day (Jan 31 + 1 = Feb 28)."""
    index = d.month - 1 + months
    year, month = d.year + index // 12, index % 12 + 1
    return date(year, month, min(d.day, calendar.monthrange(year, month)[1]))


def latest_due_date(visit_date: date) -> date:
    """No next due date may lie more than three months after the visit."""
    return add_months(visit_date, MAX_MONTHS)


# ---------------------------------------------------------------- classification


@dataclass(frozen=True)
class Assessment:
    """The clinical items the classification depends on (one visit)."""

    risk_level: int | None
    insight: str = ""
    symptoms: tuple[str, ...] = ()
    social_function: tuple[str, ...] = ()  # self_care, housework, work, learning, social
    adverse_reaction: bool = False
    adverse_reaction_serious: bool = False

    @classmethod
    def from_data(cls, data: Mapping) -> Assessment:
        return cls(
            risk_level=_int_or_none(data.get("risk_level")),
            insight=data.get("insight") or "",
            symptoms=tuple(data.get("symptoms") or ()),
            social_function=tuple(data.get(k) or "" for k in SOCIAL_FUNCTION),
            adverse_reaction=bool(data.get("adverse_reaction")),
            adverse_reaction_serious=bool(data.get("adverse_reaction_serious")),
        )


# The items the suggested classification reads (symptoms and the adverse
# reaction may rightly be empty: none).
CLASSIFICATION_NEEDS = ("risk_level", "insight", *SOCIAL_FUNCTION)


def classification_missing(data: Mapping) -> list[str]:
    """The items still empty that the suggestion needs (the live preview
    shows none until they are filled: a half-filled form is no "stable").
    None are missing once the risk level is known and the items filled so
    far already make the visit ``unstable``: the rest cannot change that."""
    missing = [k for k in CLASSIFICATION_NEEDS if data.get(k) is None or data.get(k) == ""]
    decided = (
        "risk_level" not in missing
        and suggest_classification(Assessment.from_data(data)) == UNSTABLE
    )
    return [] if decided else missing


def suggest_classification(a: Assessment) -> str | None:
    """The classification DOMAIN.md suggests for one completed visit.

    ``unstable``: risk 3–5, or insight absent, or a serious adverse
    reaction, or the symptom ``violence``; ``basically_stable``: otherwise
    risk 1–2, insight partial, any symptom, any social-function item poor,
    or an adverse reaction; ``stable`` otherwise. None while the risk level
    is not yet known (the live suggestion on a half-filled form).
    """
    if a.risk_level is None:
        return None
    if (
        a.risk_level >= UNSTABLE_MIN_RISK
        or a.insight == "absent"
        or a.adverse_reaction_serious
        or "violence" in a.symptoms
    ):
        return UNSTABLE
    if (
        a.risk_level >= 1
        or a.insight == "partial"
        or any(a.symptoms)
        or "poor" in a.social_function
        or a.adverse_reaction
    ):
        return BASICALLY_STABLE
    return STABLE


@dataclass(frozen=True)
class PreviousVisit:
    """The completed follow-up before this one (for the recheck rule)."""

    visit_date: date
    classification: str


def next_due_date(
    visit_date: date, classification: str, *, previous_completed: PreviousVisit | None = None
) -> date:
    """The latest next due date the rules allow (DOMAIN.md → Next due date).

    unstable: 14 days; basically stable: 14 days the first time, 1 month when
    the previous completed visit, on an earlier day within the last month,
    was also basically stable (the recheck did not settle it; two visits on
    the same day are one assessment, not a recheck); stable: 3 months;
    never more than 3 months after the visit.
    """
    if classification == UNSTABLE:
        due = visit_date + SHORT_INTERVAL
    elif classification == BASICALLY_STABLE:
        rechecked = (
            previous_completed is not None
            and previous_completed.classification == BASICALLY_STABLE
            and add_months(visit_date, -RECHECK_MONTHS)
            <= previous_completed.visit_date
            < visit_date
        )
        due = add_months(visit_date, RECHECK_MONTHS) if rechecked else visit_date + SHORT_INTERVAL
    elif classification == STABLE:
        due = add_months(visit_date, STABLE_MONTHS)
    else:
        raise ValueError(f"unknown classification {classification!r}")
    return min(due, latest_due_date(visit_date))


def check_due_date(visit_date: date, suggested: date, chosen: date) -> None:
    """A doctor may set an earlier date than the rules, never a later one,
    and never on or before the visit itself."""
    if chosen <= visit_date:
        raise RuleError(ERR_DUE_BEFORE_VISIT, "next_due_date")
    if chosen > suggested:
        raise RuleError(ERR_DUE_TOO_LATE % {"latest": suggested.isoformat()}, "next_due_date")


@dataclass(frozen=True)
class Decision:
    """What the system records for a completed visit."""

    suggested_classification: str
    classification: str
    suggested_next_due_date: date
    next_due_date: date


def decide(
    *,
    visit_date: date,
    assessment: Assessment,
    previous_completed: PreviousVisit | None = None,
    classification: str | None = None,
    override_reason: str = "",
    next_due: date | None = None,
) -> Decision:
    """Suggestion, the doctor's choice (an override needs a reason) and the
    next due date (from the final classification; a doctor's date may be
    earlier, never later). Raises RuleError."""
    suggested = suggest_classification(assessment)
    if suggested is None:
        raise RuleError(ERR_REQUIRED_COMPLETED, "risk_level")
    final = classification or suggested
    if final not in CLASSIFICATIONS:
        raise RuleError(ERR_CHOICE, "classification")
    if final != suggested and not (override_reason or "").strip():
        raise RuleError(ERR_OVERRIDE_REASON, "classification_override_reason")
    latest = next_due_date(visit_date, final, previous_completed=previous_completed)
    if next_due is not None:
        check_due_date(visit_date, latest, next_due)
    return Decision(
        suggested_classification=suggested,
        classification=final,
        suggested_next_due_date=latest,
        next_due_date=next_due or latest,
    )


# ---------------------------------------------------------------- outcomes and status


def consecutive_misses(attempts: Iterable[tuple[date, str]]) -> int:
    """Misses in a row toward "three ``not_reached`` make the patient lost"
    (DOMAIN.md → Next due date), counted as calendar days.

    ``attempts`` are ``(visit_date, outcome)`` pairs of the patient's
    follow-ups, in any order. The count is the number of distinct days with
    a ``not_reached`` attempt after the last day on which anything else was
    recorded (a visit, a lost or a deceased outcome). DOMAIN.md counts
    attempts ("three not_reached in a row"); we count at most one per day,
    because the national form's "not reached" (未访到) describes a follow-up
    round in which the patient could not be reached (DOMAIN-SOURCES §1.6):
    three calls in one morning, or a double click, are one failed round,
    not three, and must not turn a patient lost and alert the police. A day
    on which the patient was also reached is not a missed day.
    """
    attempts = list(attempts)
    reached = max((day for day, outcome in attempts if outcome != NOT_REACHED), default=None)
    return len(
        {
            day
            for day, outcome in attempts
            if outcome == NOT_REACHED and (reached is None or day > reached)
        }
    )


@dataclass(frozen=True)
class Transition:
    """What one follow-up does to the patient's management status."""

    status: str | None  # new status, or None when unchanged
    lost_reason: str = ""
    ends_management: bool = False


def transition(*, status: str, outcome: str, misses: int = 0) -> Transition:
    """The patient's status after a follow-up that is the newest on record.

    ``misses`` counts the days of consecutive ``not_reached`` including this
    one (``consecutive_misses``).
    ``deceased`` ends management; ``lost`` (or three misses in a row) makes
    an active patient lost; a ``completed`` visit reactivates a lost one.

    A ``refused`` patient (不同意参加管理: on the register, not visited;
    DOMAIN.md → Patients) who is seen after all — a ``completed`` visit —
    now takes part in management and becomes ``active``. "Lost" (失访) is a
    patient under management who can no longer be followed: a refused
    patient was never followed, so a ``lost`` outcome (like a miss) is kept
    on the form but leaves them ``refused`` and alerts nobody.
    """
    if outcome == DECEASED:
        return Transition(STATUS_DECEASED, ends_management=True)
    if outcome == LOST:
        return Transition(STATUS_LOST if status == ACTIVE else None)
    if outcome == NOT_REACHED:
        if status == ACTIVE and misses >= MISSES_BEFORE_LOST:
            return Transition(STATUS_LOST, lost_reason="unreachable_3x")
        return Transition(None)
    if outcome == COMPLETED and status in (STATUS_LOST, REFUSED):
        return Transition(ACTIVE)
    return Transition(None)


def can_record(status: str) -> bool:
    return status in RECORDABLE_STATUSES


# ---------------------------------------------------------------- validation


def too_early(field: str, value: date, birth_date: date | None = None):
    """The refusal of a date on the form that lies before the patient's
    birth or before ``EARLIEST_DATE``, naming the field; None when it is fine."""
    if birth_date is not None and birth_date >= EARLIEST_DATE and value < birth_date:
        return ERR_BEFORE_BIRTH[field] % {"birth": birth_date.isoformat()}
    if value < EARLIEST_DATE:
        return ERR_TOO_EARLY[field] % {"floor": EARLIEST_DATE.isoformat()}
    return None


def validate(data: Mapping, *, today: date, birth_date: date | None = None) -> dict[str, object]:
    """All refusals of one follow-up form, by field (empty when valid).

    ``data`` holds cleaned Python values (dates as ``date``). What each
    outcome requires (DOMAIN.md): ``completed`` the clinical fields,
    ``not_reached`` only date and mode, ``lost`` a reason, ``deceased``
    date and cause. No date may be in the future, nor before the patient's
    ``birth_date`` (when given) or ``EARLIEST_DATE``.
    """
    errors: dict[str, object] = {}

    def err(field: str, message) -> None:
        errors.setdefault(field, message)

    visit = data.get("visit_date")
    if not visit:
        err("visit_date", ERR_REQUIRED)
    elif visit > today:
        err("visit_date", ERR_FUTURE_VISIT)
    elif early := too_early("visit_date", visit, birth_date):
        err("visit_date", early)
    if data.get("mode") not in MODES:
        err("mode", ERR_REQUIRED if not data.get("mode") else ERR_CHOICE)
    outcome = data.get("outcome") or COMPLETED
    if outcome not in OUTCOMES:
        err("outcome", ERR_CHOICE)
        return errors
    _check_choices(data, err)
    if outcome == COMPLETED:
        for key in COMPLETED_REQUIRED:
            value = data.get(key)
            if value is None or value == "":
                err(key, ERR_REQUIRED_COMPLETED)
        risk = data.get("risk_level")
        if risk is not None and risk != "":
            r = _int_or_none(risk)
            if r is None or not 0 <= r <= MAX_RISK:
                err("risk_level", ERR_RISK_RANGE)
        _check_clinical(data, err, visit, birth_date)
    elif outcome == LOST:
        if data.get("lost_reason") not in LOST_REASONS:
            err("lost_reason", ERR_LOST_REASON)
    elif outcome == DECEASED:
        death = data.get("death_date")
        if not death:
            err("death_date", ERR_DEATH_DATE)
        elif visit and death > visit:
            err("death_date", ERR_DEATH_FUTURE)
        elif early := too_early("death_date", death, birth_date):
            err("death_date", early)
        cause = data.get("death_cause")
        if cause not in DEATH_CAUSES:
            err("death_cause", ERR_DEATH_CAUSE)
        elif cause == "other" and not (data.get("death_cause_detail") or "").strip():
            err("death_cause_detail", ERR_DEATH_DETAIL)
    return errors


def _check_choices(data: Mapping, err) -> None:
    singles = {
        "lost_reason": LOST_REASONS,
        "death_cause": DEATH_CAUSES,
        "insight": INSIGHT,
        "sleep": LEVEL3,
        "diet": LEVEL3,
        "self_care": LEVEL3,
        "housework": LEVEL3,
        "work": WORK_LEVELS,
        "learning": LEVEL3,
        "social": LEVEL3,
        "lock_status": LOCK_STATUSES,
        "hospitalization": HOSPITALIZATIONS,
        "medication_compliance": COMPLIANCE,
        "treatment_effect": TREATMENT_EFFECTS,
    }
    for key, allowed in singles.items():
        value = data.get(key)
        if value not in (None, "") and value not in allowed:
            err(key, ERR_CHOICE)
    multis = {"contacts": CONTACTS, "symptoms": SYMPTOMS, "rehab_measures": REHAB_MEASURES}
    for key, allowed in multis.items():
        values = data.get(key) or ()
        if isinstance(values, str) or any(v not in allowed for v in values):
            err(key, ERR_CHOICE)


def _check_clinical(data: Mapping, err, visit: date | None, birth_date: date | None) -> None:
    symptoms = data.get("symptoms") or ()
    if "other" in symptoms and not (data.get("symptoms_other") or "").strip():
        err("symptoms_other", ERR_SYMPTOMS_OTHER)
    if (
        "other" in (data.get("rehab_measures") or ())
        and not (data.get("rehab_measures_other") or "").strip()
    ):
        err("rehab_measures_other", ERR_REHAB_OTHER)
    discharge = data.get("last_discharge_date")
    if data.get("hospitalization") == "past" and not discharge:
        err("last_discharge_date", ERR_DISCHARGE_DATE)
    elif discharge and visit and discharge > visit:
        err("last_discharge_date", ERR_DISCHARGE_FUTURE)
    elif discharge and (early := too_early("last_discharge_date", discharge, birth_date)):
        err("last_discharge_date", early)
    if data.get("adverse_reaction_serious") and not data.get("adverse_reaction"):
        err("adverse_reaction", ERR_SERIOUS_WITHOUT_REACTION)
    if data.get("referral_suggested") and not (data.get("referral_reason") or "").strip():
        err("referral_reason", ERR_REFERRAL_REASON)
    behaviours = data.get("dangerous_behaviours") or {}
    if not isinstance(behaviours, Mapping) or any(
        k not in DANGEROUS_BEHAVIOURS or not _is_count(v) for k, v in behaviours.items()
    ):
        err("dangerous_behaviours", ERR_DANGEROUS_COUNT)
    for key in ("medications", "medication_guidance"):
        message = medication_rows_error(data.get(key) or [])
        if message is not None:
            err(key, message)


def medication_rows_error(rows: Sequence) -> object | None:
    """Up to 3 rows; each names a drug and an oral (morning/noon/evening mg)
    or long-acting injection (every N weeks, N a whole number 1–52; mg)
    regimen. The page and the API refuse exactly this."""
    if len(rows) > MAX_MEDICATION_ROWS:
        return ERR_MEDICATION_ROWS
    for row in rows:
        if not isinstance(row, Mapping) or not str(row.get("drug") or "").strip():
            return ERR_MEDICATION_DRUG
        doses = {k: row.get(k) for k in MEDICATION_DOSE_KEYS if row.get(k) not in (None, "")}
        for value in doses.values():
            if _decimal_or_none(value) is None or _decimal_or_none(value) < 0:
                return ERR_MEDICATION_NUMBER
        if "injection_interval_weeks" in doses:
            weeks = _decimal_or_none(doses["injection_interval_weeks"])
            if weeks != weeks.to_integral_value() or not 1 <= weeks <= MAX_INJECTION_WEEKS:
                return ERR_INJECTION_INTERVAL
        oral = any(k in doses for k in ("morning_mg", "noon_mg", "evening_mg"))
        injection = "injection_interval_weeks" in doses and "injection_mg" in doses
        if not (oral or injection):
            return ERR_MEDICATION_DOSE
    return None


MEDICATION_DOSE_KEYS = (
    "morning_mg",
    "noon_mg",
    "evening_mg",
    "injection_interval_weeks",
    "injection_mg",
)
MEDICATION_KEYS = ("drug", *MEDICATION_DOSE_KEYS)


def normalise_medication_rows(rows: Sequence[Mapping]) -> list[dict]:
    """Drop empty rows and empty keys; numbers as strings of decimals (JSON)."""
    out = []
    for row in rows:
        drug = str(row.get("drug") or "").strip()
        values = {k: row.get(k) for k in MEDICATION_DOSE_KEYS if row.get(k) not in (None, "")}
        if not drug and not values:
            continue
        clean: dict = {"drug": drug}
        for k, v in values.items():
            d = _decimal_or_none(v)
            clean[k] = _plain(d) if d is not None else v
        out.append(clean)
    return out


def _plain(d: Decimal) -> str:
    return format(d.normalize(), "f")


def _decimal_or_none(value) -> Decimal | None:
    try:
        d = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return d if d.is_finite() else None


def _is_count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _int_or_none(value) -> int | None:
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
