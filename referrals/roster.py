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
    Diagnosis,
    EconomicStatus,
    Gender,
    HouseholdType,
    IdType,
)

ERR_REQUIRED = _("必填项为空。")
ERR_DATE = _("日期格式应为 2020-01-31。")
ERR_CHOICE = _("填写的值不在可选范围内（可选：%(choices)s）。")
ERR_REGION_CODE = _("区划代码应为12位数字（村/社区级）。")
ERR_GUARDIAN_RELATION = _("填写了监护人姓名时须填写监护人关系。")


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
    Column("guardian_name", "监护人姓名", max_length=50),
    Column("guardian_relation", "监护人关系", max_length=20),
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
        if col.kind in ("id", "region") or col.key.endswith("phone"):
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
