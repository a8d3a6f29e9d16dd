"""The county roster in the national field layout (DOMAIN-SOURCES.md §1.8,
§8.1): the columns, reading one row, and the downloadable template.

This module is the one place the roster columns are defined; the importer,
the template and the error report all read them from here. No ORM.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from datetime import date

from django.utils.translation import gettext_lazy as _
from openpyxl import Workbook
from openpyxl.styles import Font, PatternFill
from openpyxl.utils import get_column_letter

from patients.models import (
    DANGEROUS_BEHAVIOURS,
    DatePrecision,
    Diagnosis,
    EconomicStatus,
    Employment,
    Gender,
    HouseholdType,
    IdType,
    LockStatus,
    PastOutpatient,
    Symptom,
    TreatmentEffect,
)

ERR_REQUIRED = _("必填项为空。")
ERR_DATE = _("日期格式应为 2020-01-31。")
ERR_CHOICE = _("填写的值不在可选范围内（可选：%(choices)s）。")
ERR_REGION_CODE = _("区划代码应为12位数字（村/社区级）。")
ERR_GUARDIAN_RELATION = _("填写了监护人姓名时须填写监护人关系。")
ERR_PARTIAL_DATE = _("日期格式应为 2010、2010-05 或 2010-05-17。")
ERR_COUNT = _("应为0到999之间的整数。")


def _labels(choices) -> dict[str, str]:
    """Chinese label → code, codes accepted as well."""
    out = {str(label): value for value, label in choices.choices}
    out.update({value: value for value in choices.values})
    return out


DIAGNOSIS_WORDS = {
    **_labels(Diagnosis),
    "精神分裂": "schizophrenia",
    "分裂情感障碍": "schizoaffective",
    "偏执性精神病": "delusional",
    "双相情感障碍": "bipolar",
    "双相(情感)障碍": "bipolar",
    "癫痫所致精神障碍": "epilepsy",
    "精神发育迟滞伴发精神障碍": "intellectual_disability",
    "其他": "other",
}
GENDER_WORDS = {**_labels(Gender), "男性": "male", "女性": "female"}
ID_TYPE_WORDS = {**_labels(IdType), "身份证": "resident_id", "": "resident_id"}
HOUSEHOLD_WORDS = _labels(HouseholdType)
ECONOMIC_WORDS = {**_labels(EconomicStatus), "贫困": "poor"}
CONSENT_WORDS = {"同意": True, "同意参加管理": True, "是": True, "不同意": False, "否": False}
EMPLOYMENT_WORDS = {**_labels(Employment), "下岗": "unemployed", "无业": "unemployed"}
SYMPTOM_WORDS = _labels(Symptom)
LOCK_WORDS = {**_labels(LockStatus), "从未关锁": "none", "无": "none", "已解除": "released"}
OUTPATIENT_WORDS = {**_labels(PastOutpatient), "未治疗": "never"}
EFFECT_WORDS = {**_labels(TreatmentEffect), "痊愈": "cured"}
# several symptoms in one cell: 幻觉、猜疑 (also , ， ; ； / and spaces)
MULTI_SEPARATORS = re.compile(r"[、,，;；/\s]+")
# the dangerous-behaviour history (supplement form item 17): one count column each
DANGER_PREFIX = "danger_"


@dataclass(frozen=True)
class Column:
    key: str
    header: str
    required: bool = False
    kind: str = "text"  # text | date | choice | region | id
    words: dict = field(default_factory=dict)
    aliases: tuple[str, ...] = ()
    help: str = ""
    max_length: int = 200


COLUMNS: tuple[Column, ...] = (
    Column("name", "姓名", required=True, max_length=50),
    Column("gender", "性别", kind="choice", words=GENDER_WORDS, help="男 / 女；身份证号可推算"),
    Column("id_type", "证件类型", kind="choice", words=ID_TYPE_WORDS, help="默认居民身份证"),
    Column(
        "id_number",
        "身份证号",
        required=True,
        kind="id",
        aliases=("证件号码", "公民身份号码"),
        help="以文本格式填写；15位旧号自动升位",
        max_length=32,
    ),
    Column("birth_date", "出生日期", kind="date", help="如 1980-05-17；身份证号可推算"),
    Column("ethnicity", "民族", max_length=20),
    Column("phone", "联系电话", max_length=32),
    Column("region", "现住址区划代码", required=True, kind="region", help="12位村（居）代码"),
    Column("address", "现住址", required=True),
    Column("household_region", "户籍地区划代码", kind="region", help="12位村（居）代码，可空"),
    Column("household_address", "户籍地址"),
    Column("household_type", "户别", kind="choice", words=HOUSEHOLD_WORDS, help="城镇 / 农村"),
    Column(
        "diagnosis",
        "诊断",
        required=True,
        kind="choice",
        words=DIAGNOSIS_WORDS,
        aliases=("目前诊断",),
        help="六类严重精神障碍之一或“其他”",
    ),
    Column("diagnosis_hospital", "确诊医院", max_length=100),
    Column("diagnosis_date", "确诊日期", kind="date"),
    Column("registered_on", "纳入管理日期", kind="date"),
    Column("consent", "知情同意", kind="choice", words=CONSENT_WORDS, help="同意 / 不同意"),
    Column(
        "economic_status", "经济状况", kind="choice", words=ECONOMIC_WORDS, help="贫困/非贫困/不详"
    ),
    # the rest of the personal information supplement form (§1.8)
    Column(
        "village_contact_name",
        "村（居）委会联系人",
        aliases=("辖区村（居）委会联系人",),
        max_length=50,
    ),
    Column(
        "village_contact_phone",
        "村（居）委会联系电话",
        aliases=("辖区村（居）委会联系电话",),
        max_length=32,
    ),
    Column(
        "employment", "就业情况", kind="choice", words=EMPLOYMENT_WORDS, help="如 农民、在校学生"
    ),
    Column(
        "first_onset_date",
        "初次发病时间",
        kind="partial_date",
        help="可只填年或年月，如 2010 或 2010-05",
    ),
    Column(
        "past_symptoms",
        "既往主要症状",
        kind="multi",
        words=SYMPTOM_WORDS,
        help="可多项，用顿号分隔，如 幻觉、猜疑",
    ),
    Column("past_lock_status", "既往关锁情况", kind="choice", words=LOCK_WORDS),
    Column(
        "past_outpatient",
        "既往门诊治疗",
        kind="choice",
        words=OUTPATIENT_WORDS,
        aliases=("既往治疗情况（门诊）", "既往治疗情况·门诊"),
        help="未治 / 间断门诊治疗 / 连续门诊治疗",
    ),
    Column(
        "first_antipsychotic_date",
        "首次抗精神病药治疗时间",
        kind="partial_date",
        help="可只填年或年月",
    ),
    Column(
        "past_admissions",
        "既往住院次数",
        kind="count",
        aliases=("既往治疗情况（住院）", "既往治疗情况·住院"),
        help="0表示未住院",
    ),
    Column("recent_treatment_effect", "最近一次治疗效果", kind="choice", words=EFFECT_WORDS),
    *(
        Column(
            f"{DANGER_PREFIX}{key}",
            f"{label}（次）",
            kind="count",
            aliases=(f"{label}次数",),
            help="既往危险行为次数",
        )
        for key, label in DANGEROUS_BEHAVIOURS.items()
    ),
    Column(
        "specialist_opinion",
        "专科医生意见",
        aliases=("专科医生的意见",),
        max_length=2000,
    ),
    Column("guardian_name", "监护人姓名", max_length=50),
    Column("guardian_relation", "监护人关系", aliases=("与患者关系",), max_length=20),
    Column("guardian_phone", "监护人电话", max_length=32),
    Column("guardian_address", "监护人住址"),
)
BY_KEY = {c.key: c for c in COLUMNS}


def header_map(headers: list[str]) -> dict[str, str]:
    """Column key → header present in the file."""
    from referrals.tabular import normalise_header

    present = set(headers)
    out = {}
    for col in COLUMNS:
        for name in (col.header, *col.aliases):
            if normalise_header(name) in present:
                out[col.key] = normalise_header(name)
                break
    return out


def missing_required(found: dict[str, str]) -> list[str]:
    return [c.header for c in COLUMNS if c.required and c.key not in found]


_DATE_PATTERNS = (
    re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$"),
    re.compile(r"^(\d{4})/(\d{1,2})/(\d{1,2})$"),
    re.compile(r"^(\d{4})\.(\d{1,2})\.(\d{1,2})$"),
    re.compile(r"^(\d{4})年(\d{1,2})月(\d{1,2})日?$"),
    re.compile(r"^(\d{4})(\d{2})(\d{2})$"),
)


_PARTIAL_PATTERNS = (
    (re.compile(r"^(\d{4})$"), DatePrecision.YEAR),
    (re.compile(r"^(\d{4})年$"), DatePrecision.YEAR),
    (re.compile(r"^(\d{4})[-/.](\d{1,2})$"), DatePrecision.MONTH),
    (re.compile(r"^(\d{4})年(\d{1,2})月$"), DatePrecision.MONTH),
)


def parse_partial_date(text: str) -> tuple[date, str] | None:
    """A date that may be known only to the year or month (初次发病时间):
    (the first day of what is known, its precision)."""
    text = text.strip()
    for pattern, precision in _PARTIAL_PATTERNS:
        m = pattern.match(text)
        if m:
            month = int(m[2]) if precision == DatePrecision.MONTH else 1
            try:
                return date(int(m[1]), month, 1), precision
            except ValueError:
                return None
    full = parse_date(text)
    return (full, DatePrecision.DAY) if full is not None else None


def parse_date(text: str) -> date | None:
    text = text.strip()
    for pattern in _DATE_PATTERNS:
        m = pattern.match(text)
        if m:
            try:
                return date(int(m[1]), int(m[2]), int(m[3]))
            except ValueError:
                return None
    return None


def read_row(raw: dict, found: dict[str, str]) -> tuple[dict, list[tuple[str, str]]]:
    """One roster row → (values by key, [(header, message)]). Region codes
    stay codes (the importer looks them up); the ID number is cleaned but not
    checked here (patients.services.check_identity does that)."""
    from referrals.tabular import clean_id_text

    values: dict = {}
    errors: list[tuple[str, str]] = []
    for col in COLUMNS:
        text = (raw.get(found[col.key], "") if col.key in found else "").strip()
        if not text:
            if col.required:
                errors.append((col.header, str(ERR_REQUIRED)))
            continue
        if len(text) > col.max_length:
            errors.append(
                (col.header, str(_("内容过长（不超过%(n)d字）。") % {"n": col.max_length}))
            )
            continue
        if col.kind == "date":
            parsed = parse_date(text)
            if parsed is None:
                errors.append((col.header, str(ERR_DATE)))
                continue
            values[col.key] = parsed
        elif col.kind == "partial_date":
            partial = parse_partial_date(text)
            if partial is None:
                errors.append((col.header, str(ERR_PARTIAL_DATE)))
                continue
            values[col.key] = partial[0]
            values[col.key.removesuffix("_date") + "_precision"] = partial[1]
        elif col.kind == "count":
            if not (text.isdigit() and int(text) <= 999):
                errors.append((col.header, str(ERR_COUNT)))
                continue
            if col.key.startswith(DANGER_PREFIX):
                if int(text):
                    history = values.setdefault("dangerous_history", {})
                    history[col.key.removeprefix(DANGER_PREFIX)] = int(text)
            else:
                values[col.key] = int(text)
        elif col.kind == "multi":
            items = [t for t in MULTI_SEPARATORS.split(text) if t]
            unknown = [t for t in items if t not in col.words]
            if unknown:
                choices = "、".join(k for k in col.words if k and not k.isascii())
                errors.append((col.header, str(ERR_CHOICE % {"choices": choices})))
                continue
            values[col.key] = list(dict.fromkeys(col.words[t] for t in items))
        elif col.kind == "choice":
            if text not in col.words:
                choices = "、".join(k for k in col.words if k and not k.isascii())
                errors.append((col.header, str(ERR_CHOICE % {"choices": choices})))
                continue
            values[col.key] = col.words[text]
        elif col.kind == "region":
            if not (len(text) == 12 and text.isdigit()):
                errors.append((col.header, str(ERR_REGION_CODE)))
                continue
            values[col.key] = text
        elif col.kind == "id":
            values[col.key] = clean_id_text(text)
        else:
            values[col.key] = text
    if values.get("guardian_name") and not values.get("guardian_relation"):
        errors.append(("监护人关系", str(ERR_GUARDIAN_RELATION)))
    return values, errors


def template_workbook() -> bytes:
    """The roster template: the header row (required columns marked and
    coloured), ID and code columns formatted as text, and a sheet explaining
    each column."""
    wb = Workbook()
    ws = wb.active
    ws.title = "花名册"
    required_fill = PatternFill("solid", fgColor="FEE4E2")
    for i, col in enumerate(COLUMNS, start=1):
        cell = ws.cell(row=1, column=i, value=col.header)
        cell.font = Font(bold=True)
        if col.required:
            cell.fill = required_fill
        letter = get_column_letter(i)
        ws.column_dimensions[letter].width = max(10, len(col.header) * 2 + 4)
        if col.kind in ("id", "region", "partial_date") or col.key.endswith("phone"):
            for row in range(2, 2002):
                ws.cell(row=row, column=i).number_format = "@"
    ws.freeze_panes = "A2"
    notes = wb.create_sheet("填写说明")
    notes.append(["列名", "是否必填", "说明"])
    for col in COLUMNS:
        notes.append([col.header, "必填" if col.required else "", col.help])
    notes.append([])
    notes.append(["诊断可选值", "、".join(str(label) for label in Diagnosis.labels)])
    notes.column_dimensions["A"].width = 18
    notes.column_dimensions["C"].width = 60
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()
