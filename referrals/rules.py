"""Pure rules of referrals, exchange and reconciliation (no ORM here).

DOMAIN.md → Referrals; → Data exchange and reconciliation.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import date, timedelta

from patients import fieldsets

# --------------------------------------------------------------------------
# Referral states: pending → accepted | rejected | cancelled; accepted → completed
# --------------------------------------------------------------------------

TRANSITIONS: dict[str, frozenset[str]] = {
    "pending": frozenset({"accepted", "rejected", "cancelled"}),
    "accepted": frozenset({"completed"}),
    "rejected": frozenset(),
    "completed": frozenset(),
    "cancelled": frozenset(),
}


def can_transition(current: str, target: str) -> bool:
    return target in TRANSITIONS.get(current, frozenset())


def accept_deadline(created_on: date, *, green_channel: bool, days: int, green_days: int) -> date:
    """The receiving side accepts within ``days`` (green channel: ``green_days``)."""
    return created_on + timedelta(days=green_days if green_channel else days)


def complete_deadline(
    *,
    kind: str,
    accepted_on: date,
    discharge_date: date | None,
    complete_days: int,
    first_followup_days: int,
) -> date:
    """After a downward referral the first community follow-up is due within
    ``first_followup_days`` of discharge; other kinds complete within
    ``complete_days`` of acceptance."""
    if kind == "downward" and discharge_date is not None:
        return discharge_date + timedelta(days=first_followup_days)
    return accepted_on + timedelta(days=complete_days)


def first_followup_due(discharge_date: date, *, first_followup_days: int) -> date:
    return discharge_date + timedelta(days=first_followup_days)


def overdue_conditions(
    *,
    kind: str,
    status: str,
    accept_by: date,
    complete_by: date | None,
    discharge_date: date | None,
    last_followup_date: date | None,
    today: date,
    first_followup_days: int,
) -> list[str]:
    """Which deadlines of one referral have passed: ``accept`` (not accepted in
    time), ``complete`` (accepted, not completed in time) and, for a downward
    referral, ``followup`` (no community follow-up within the days after
    discharge). Each name is one alert episode."""
    out = []
    if status == "pending" and accept_by < today:
        out.append("accept")
    if kind == "downward":
        if (
            status in ("pending", "accepted")
            and discharge_date is not None
            and first_followup_due(discharge_date, first_followup_days=first_followup_days) < today
            and (last_followup_date is None or last_followup_date < discharge_date)
        ):
            out.append("followup")
    elif status == "accepted" and complete_by is not None and complete_by < today:
        out.append("complete")
    return out


def alert_episode(referral_id, condition: str) -> str:
    return f"referral:{referral_id}:{condition}"


# --------------------------------------------------------------------------
# Exchange: periods, columns (minimum necessary fields), manifest, back-off
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    label: str
    start: date
    end: date  # inclusive


def _quarter(day: date) -> Period:
    q = (day.month - 1) // 3 + 1
    start = date(day.year, 3 * q - 2, 1)
    end = (date(day.year + 1, 1, 1) if q == 4 else date(day.year, 3 * q + 1, 1)) - timedelta(1)
    return Period(f"{day.year}Q{q}", start, end)


def _half(day: date) -> Period:
    h = 1 if day.month <= 6 else 2
    start = date(day.year, 1 if h == 1 else 7, 1)
    end = date(day.year, 6, 30) if h == 1 else date(day.year, 12, 31)
    return Period(f"{day.year}H{h}", start, end)


def period_containing(day: date, schedule: str) -> Period:
    return _quarter(day) if schedule == "quarterly" else _half(day)


def last_finished_period(today: date, schedule: str) -> Period:
    """The most recent period that ended before ``today``: what the package
    built today covers (quarterly for police and governance, half-yearly for
    civil affairs and the federation)."""
    current = period_containing(today, schedule)
    return period_containing(current.start - timedelta(days=1), schedule)


DEFAULT_SCHEDULE = {
    "police": "quarterly",
    "governance": "quarterly",
    "civil_affairs": "half_yearly",
    "disabled_federation": "half_yearly",
}

# The columns of each partner's package: the minimum necessary fields of
# DOMAIN.md → Data exchange. Keys are stable; headers are what the partner reads.
IDENTITY_COLUMNS = (
    ("id_type", "证件类型"),
    ("id_number", "身份证号"),
    ("name", "姓名"),
    ("gender", "性别"),
    ("birth_date", "出生日期"),
    ("region", "现住址区划代码"),
    ("region_name", "现住址区划"),
    ("address", "现住址"),
)
GUARDIAN_COLUMNS = (
    ("guardian_name", "监护人姓名"),
    ("guardian_relation", "监护人关系"),
    ("guardian_phone", "监护人电话"),
)
POLICE_COLUMNS = (
    IDENTITY_COLUMNS
    + GUARDIAN_COLUMNS
    + (
        ("status", "管理状态"),
        ("risk_level", "危险性等级"),
        ("classification", "随访分类"),
        ("lost", "失访"),
        ("incidents", "肇事肇祸次数"),
        ("last_incident", "最近肇事肇祸"),
        ("last_incident_date", "最近肇事肇祸日期"),
    )
)
PARTNER_COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    "police": POLICE_COLUMNS,
    "governance": POLICE_COLUMNS,
    "civil_affairs": IDENTITY_COLUMNS
    + (
        ("status", "管理状态"),
        ("poverty", "困难类别"),
        ("guardian_reward", "监护人以奖代补"),
        ("in_community_rehab", "参加社区康复"),
    ),
    "disabled_federation": IDENTITY_COLUMNS
    + (
        ("status", "管理状态"),
        ("certificate", "残疾人证"),
        ("certificate_grade", "精神残疾等级"),
        ("certificate_number", "残疾人证号"),
        ("in_community_rehab", "参加社区康复"),
    ),
}

# The field of ``patients.fieldsets`` each column is made from, where the
# column's key is not itself that field (a derived or flattened column).
COLUMN_SOURCES: dict[str, str] = {
    "region_name": "region",
    "guardian_name": "guardian",
    "guardian_relation": "guardian",
    "guardian_phone": "guardian",
    "lost": "status",
    "last_incident": "incidents",
    "last_incident_date": "incidents",
}

# Keys no partner package may ever contain (clinical data stays in health):
# the register's clinical fields, the medical history of the supplement
# form, and the follow-up's clinical answers.
CLINICAL_KEYS = frozenset(
    {
        *fieldsets.CLINICAL,
        "first_onset_date",
        "past_symptoms",
        "past_symptoms_other",
        "past_lock_status",
        "past_outpatient",
        "first_antipsychotic_date",
        "past_admissions",
        "recent_treatment_effect",
        "specialist_opinion",
        "medications",
        "medication_guidance",
        "medication_compliance",
        "symptoms",
        "lab_tests",
        "treatment_effect",
    }
)


def column_source(key: str) -> str:
    """The patient field (``patients.fieldsets``) a package column exposes."""
    return COLUMN_SOURCES.get(key, key)


def columns_outside_fieldset(
    department: str, columns: tuple[tuple[str, str], ...] | None = None
) -> set[str]:
    """Column keys of ``department``'s package (or of ``columns``) that its
    declared field set does not allow (``patients.fieldsets
    .exchange_fields``), or that carry clinical data: empty when the package
    holds only the minimum necessary fields."""
    allowed = fieldsets.exchange_fields(department)
    if columns is None:
        columns = PARTNER_COLUMNS.get(department, ())
    return {
        key
        for key, _header in columns
        if column_source(key) not in allowed or {key, column_source(key)} & CLINICAL_KEYS
    }


def columns_for(department: str) -> tuple[tuple[str, str], ...]:
    return PARTNER_COLUMNS[department]


def canonical_json(value) -> bytes:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode(
        "utf-8"
    )


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sign_manifest(manifest: dict, key: str) -> str:
    """HMAC-SHA256 over the canonical JSON of the manifest without ``hmac``."""
    body = {k: v for k, v in manifest.items() if k != "hmac"}
    return hmac.new(key.encode("utf-8"), canonical_json(body), hashlib.sha256).hexdigest()


def verify_package(manifest: dict, content: bytes, key: str) -> bool:
    """True when the content matches the manifest's SHA-256 and the manifest's
    HMAC was made with ``key`` (what a partner runs on receipt)."""
    if manifest.get("sha256") != sha256_hex(content):
        return False
    return hmac.compare_digest(manifest.get("hmac", ""), sign_manifest(manifest, key))


def backoff_seconds(failures: int, *, base: int, cap: int) -> int:
    """Exponential back-off of one endpoint: base, 2·base, 4·base … ≤ cap."""
    if failures <= 0:
        return 0
    return min(cap, base * 2 ** (failures - 1))


# --------------------------------------------------------------------------
# Reconciliation: reading a partner's values, finding disagreements
# --------------------------------------------------------------------------

POVERTY_WORDS = {
    "低保": "dibao",
    "最低生活保障": "dibao",
    "特困": "tekun",
    "特困供养": "tekun",
    "低收入": "low_income",
    "无": "none",
    "否": "none",
    "非困难": "none",
    "": None,
}
CERTIFICATE_WORDS = {
    "持证": "held",
    "已持证": "held",
    "已办理": "held",
    "是": "held",
    "有": "held",
    "已申请": "applied",
    "申请中": "applied",
    "未办理": "none",
    "无": "none",
    "否": "none",
    "": None,
}
YES_NO = {"是": True, "参加": True, "有": True, "否": False, "未参加": False, "无": False, "": None}
GRADE_WORDS = {"一级": 1, "二级": 2, "三级": 3, "四级": 4, "1": 1, "2": 2, "3": 3, "4": 4}
STATUS_WORDS = {
    "在管": "active",
    "在册": "active",
    "失访": "lost",
    "不同意参加管理": "refused",
    "迁出": "moved_out",
    "死亡": "deceased",
    "注销": "removed",
}


def _word(table: dict, raw) -> object:
    value = str(raw if raw is not None else "").strip()
    if value in table:
        return table[value]
    if value in table.values():
        return value
    return None


@dataclass(frozen=True)
class Disagreement:
    kind: str  # poverty | certificate | rehab | police_registered | status
    partner_value: str
    register_value: str
    department: str  # who must act

    def as_dict(self) -> dict:
        return {
            "kind": self.kind,
            "partner_value": self.partner_value,
            "register_value": self.register_value,
            "department": self.department,
        }


def disagreements(partner: str, row: dict, register: dict) -> list[Disagreement]:
    """Status differences between one partner row and the matched patient.

    ``row`` holds the partner's raw values by key (``poverty``,
    ``certificate``, ``certificate_grade``, ``rehab``, ``status``);
    ``register`` the patient's values. A column the partner did not send, or
    a value that cannot be read, is not a disagreement.
    """
    out: list[Disagreement] = []
    if partner == "civil_affairs" and "poverty" in row:
        theirs = _word(POVERTY_WORDS, row["poverty"])
        if theirs is not None and theirs != register["poverty"]:
            out.append(Disagreement("poverty", theirs, register["poverty"], "civil_affairs"))
    if partner == "disabled_federation" and "certificate" in row:
        theirs = _word(CERTIFICATE_WORDS, row["certificate"])
        grade = _word(GRADE_WORDS, row.get("certificate_grade"))
        if theirs is not None:
            mine = register["certificate"]
            if theirs != mine:
                out.append(Disagreement("certificate", theirs, mine, "disabled_federation"))
            elif (
                theirs == "held"
                and grade is not None
                and register.get("certificate_grade") is not None
                and grade != register["certificate_grade"]
            ):
                out.append(
                    Disagreement(
                        "certificate",
                        f"held/{grade}",
                        f"held/{register['certificate_grade']}",
                        "disabled_federation",
                    )
                )
    if partner in ("civil_affairs", "disabled_federation") and "rehab" in row:
        theirs = _word(YES_NO, row["rehab"])
        if theirs is not None and theirs != register["in_community_rehab"]:
            out.append(
                Disagreement(
                    "rehab",
                    "yes" if theirs else "no",
                    "yes" if register["in_community_rehab"] else "no",
                    partner,
                )
            )
    if partner == "police" and not register["police_registered"]:
        # The police list names the patient, so the police have done their
        # part: it is the register's "police registered" flag that is out of
        # date, and the health centre managing the patient corrects it.
        out.append(Disagreement("police_registered", "yes", "no", "health"))
    if partner in ("police", "governance") and "status" in row:
        theirs = _word(STATUS_WORDS, row["status"])
        if theirs in ("deceased", "moved_out") and theirs != register["status"]:
            out.append(Disagreement("status", theirs, register["status"], "health"))
    return out
