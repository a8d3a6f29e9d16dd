"""Loading a real county: its administrative tree and organisations from a
CSV or Excel file (``manage.py import_regions``; README → Setting up a real
county).

Reading and checking come first and write nothing: every row of both tables
is checked against the file and the database, and any error stops the
import with a list naming row, column and reason in Chinese. Only a file
without errors is written, in one transaction (``regions_import``). A
second import of the same file changes nothing: regions are matched by
code, organisations by region and name; names, populations, departments,
kinds and phones are updated, a region is never moved or re-levelled.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path

from django.db import transaction
from django.utils.translation import gettext_lazy as _

from accounts import rules
from accounts.models import Department, Organisation, OrganisationKind, Region, RegionLevel
from audit.services import audit_record
from core.history import history_stamp

REGION_COLUMNS = {
    "code": ("code", "区划代码", "代码"),
    "name": ("name", "名称", "区划名称"),
    "level": ("level", "级别", "层级"),
    "parent": ("parent", "parent_code", "上级", "上级代码", "上级区划代码"),
    "population": ("population", "人口", "常住人口"),
}
ORGANISATION_COLUMNS = {
    "name": ("name", "名称", "机构名称"),
    "department": ("department", "部门"),
    "kind": ("kind", "类型", "机构类型"),
    "region": ("region", "region_code", "区划代码", "辖区", "辖区代码"),
    "phone": ("phone", "电话"),
}
REGION_SHEETS = ("regions", "行政区划", "区划")
ORGANISATION_SHEETS = ("organisations", "organizations", "机构")

LEVEL_WORDS = {
    rules.PROVINCE: ("省", "省级", "自治区", "直辖市"),
    rules.CITY: ("市", "市级", "地级", "地级市", "地区", "州", "盟"),
    rules.COUNTY: ("县", "县级", "区", "县级市", "旗"),
    rules.TOWNSHIP: ("乡镇", "乡", "镇", "街道", "乡镇级", "苏木"),
    rules.VILLAGE: ("村", "村（居）", "村(居)", "社区", "居委会", "村委会", "嘎查"),
}

ERR_FILE_TYPE = _("只能导入 .csv 或 .xlsx 文件。")
ERR_FILE_MISSING = _("找不到文件：%(path)s")
ERR_FILE_ENCODING = _("无法识别文件编码，请另存为 UTF-8 编码的 CSV。")
ERR_SHEET_MISSING = _("Excel 文件中没有名为“%(names)s”的工作表。")
ERR_COLUMNS_MISSING = _("缺少必需的列：%(columns)s。")
ERR_REQUIRED = _("不能为空。")
ERR_TOO_LONG = _("不能超过%(max)d个字。")
ERR_DUPLICATE_CODE = _("区划代码 %(code)s 在文件中重复（另见第%(other)d行）。")
ERR_DUPLICATE_ORG = _("同一区划下的机构名称在文件中重复（另见第%(other)d行）。")
ERR_LEVEL_VALUE = _("无法识别的级别“%(value)s”。")
ERR_LEVEL_GUESS = _("无法从区划代码判断级别，请填写级别。")
ERR_PARENT_UNKNOWN = _("上级区划 %(code)s 在文件和系统中都不存在。")
ERR_PARENT_GUESS = _("无法从区划代码找到上级区划，请填写上级区划代码。")
ERR_POPULATION = _("人口应为不小于0的整数。")
ERR_EXISTING_LEVEL = _("系统中已有该区划，级别为“%(level)s”，不能通过导入更改级别。")
ERR_EXISTING_PARENT = _("系统中已有该区划，上级为 %(parent)s，不能通过导入移动区划。")
ERR_REGION_UNKNOWN = _("区划 %(code)s 在文件和系统中都不存在。")
ERR_CHOICE = _("无法识别的值“%(value)s”，可填：%(choices)s。")
ERR_NOTHING = _("请提供行政区划表或机构表。")
ERR_ROW = _("%(table)s 第%(line)d行“%(column)s”：%(message)s")
ERR_TABLE = _("%(table)s：%(message)s")


class ImportFailed(Exception):
    """The file has errors; nothing was written. ``errors`` are messages."""

    def __init__(self, errors: list[str]):
        super().__init__("\n".join(errors))
        self.errors = errors


@dataclass
class Table:
    name: str  # the file or sheet, as errors name it
    rows: list[tuple[int, dict[str, str]]]  # (line number, column -> text)
    columns: set[str] = field(default_factory=set)  # the columns the header has


@dataclass
class RegionRow:
    line: int
    code: str
    name: str
    level: str
    parent: str | None
    population: int | None


@dataclass
class OrganisationRow:
    line: int
    name: str
    department: str
    kind: str
    region: str
    phone: str


@dataclass
class ImportResult:
    regions: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CHANGES, 0))
    organisations: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CHANGES, 0))


CHANGES = ("created", "updated", "unchanged")


# --- reading files ----------------------------------------------------------------


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def _rows_from_matrix(name: str, matrix: list[list], columns: dict) -> Table:
    """Map the header row onto our column names (English or Chinese)."""
    if not matrix:
        return Table(name, [], set())
    header = [_text(h).lower() for h in matrix[0]]
    index = {}
    for key, aliases in columns.items():
        for i, title in enumerate(header):
            if title in {a.lower() for a in aliases}:
                index[key] = i
                break
    rows = []
    for line, values in enumerate(matrix[1:], start=2):
        row = {key: _text(values[i]) if i < len(values) else "" for key, i in index.items()}
        if any(row.values()):
            rows.append((line, row))
    return Table(name, rows, set(index))


def _read_csv(path: Path) -> list[list]:
    raw = path.read_bytes()
    # Excel saves CSV as UTF-8 with a BOM, or in GB18030 on Chinese Windows.
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = raw.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise ImportFailed([str(ERR_FILE_ENCODING)])
    return list(csv.reader(text.splitlines()))


def _read_xlsx(path: Path) -> dict[str, list[list]]:
    from openpyxl import load_workbook

    workbook = load_workbook(path, read_only=True, data_only=True)
    try:
        return {ws.title: [list(r) for r in ws.iter_rows(values_only=True)] for ws in workbook}
    finally:
        workbook.close()


def read_tables(
    regions_path: str | None, organisations_path: str | None
) -> tuple[Table | None, Table | None]:
    """The regions and organisations tables from one Excel workbook (sheets
    行政区划/regions and 机构/organisations) or from CSV files."""
    regions = organisations = None
    for path_text, kind in ((regions_path, "regions"), (organisations_path, "organisations")):
        if not path_text:
            continue
        path = Path(path_text)
        if not path.is_file():
            raise ImportFailed([str(ERR_FILE_MISSING % {"path": path_text})])
        suffix = path.suffix.lower()
        if suffix == ".csv":
            columns = REGION_COLUMNS if kind == "regions" else ORGANISATION_COLUMNS
            table = _rows_from_matrix(path.name, _read_csv(path), columns)
            if kind == "regions":
                regions = table
            else:
                organisations = table
        elif suffix == ".xlsx":
            sheets = _read_xlsx(path)
            by_name = {title.strip().lower(): title for title in sheets}
            wanted = (
                ((REGION_SHEETS, "regions"), (ORGANISATION_SHEETS, "organisations"))
                if kind == "regions"
                else ((ORGANISATION_SHEETS, "organisations"),)
            )
            for names, what in wanted:
                title = next((by_name[n] for n in names if n in by_name), None)
                if title is None and kind == "organisations" and len(sheets) == 1:
                    title = next(iter(sheets))
                if title is None:
                    if what == kind:
                        raise ImportFailed([str(ERR_SHEET_MISSING % {"names": "”或“".join(names)})])
                    continue
                columns = REGION_COLUMNS if what == "regions" else ORGANISATION_COLUMNS
                table = _rows_from_matrix(f"{path.name}[{title}]", sheets[title], columns)
                if what == "regions":
                    regions = table
                else:
                    organisations = table
        else:
            raise ImportFailed([str(ERR_FILE_TYPE)])
    return regions, organisations


# --- checking ----------------------------------------------------------------------


def _choice(value: str, choices, extra: dict[str, tuple[str, ...]] | None = None) -> str | None:
    """A choice's value from its value or label (either language)."""
    folded = value.strip().lower()
    for choice in choices:
        if folded in {choice.value, str(choice.label).lower()}:
            return choice.value
        if extra and value.strip() in extra.get(choice.value, ()):
            return choice.value
    return None


def _row_error(errors: list, table: Table, line: int, column: str, message) -> None:
    """Collect (line, text); ``_by_line`` orders them for the report."""
    text = ERR_ROW % {"table": table.name, "line": line, "column": column, "message": str(message)}
    errors.append((line, str(text)))


def _by_line(found: list[tuple[int, str]]) -> list[str]:
    return [text for _line, text in sorted(found, key=lambda item: item[0])]


def _check_columns(errors: list[str], table: Table, required: tuple[str, ...]) -> bool:
    missing = [c for c in required if c not in table.columns]
    if missing:
        errors.append(
            str(
                ERR_TABLE
                % {
                    "table": table.name,
                    "message": ERR_COLUMNS_MISSING % {"columns": ", ".join(missing)},
                }
            )
        )
        return False
    return True


def _population(text: str) -> int | None:
    if text == "":
        return None
    try:
        number = Decimal(text.replace(",", "").replace("，", ""))
    except InvalidOperation:
        raise ValueError(text) from None
    if number < 0 or number != number.to_integral_value():
        raise ValueError(text)
    return int(number)


def check_regions(table: Table, report: list[str]) -> list[RegionRow]:
    """Rows that passed their own checks; errors for the others, by line."""
    # level and parent may be left out: well-formed codes imply both
    if not _check_columns(report, table, ("code", "name")):
        return []
    errors: list[tuple[int, str]] = []
    rows = _check_regions(table, errors)
    report.extend(_by_line(errors))
    return rows


def _check_regions(table: Table, errors: list) -> list[RegionRow]:
    in_file: dict[str, tuple[int, str]] = {}  # code -> (line, level)
    parsed: list[tuple[int, dict, str, str | None]] = []
    max_name = Region._meta.get_field("name").max_length
    # first pass: codes, levels, names, populations
    for line, row in table.rows:
        code = row.get("code", "")
        ok = True
        if not code:
            _row_error(errors, table, line, "code", ERR_REQUIRED)
            continue
        if code in in_file:
            _row_error(
                errors,
                table,
                line,
                "code",
                ERR_DUPLICATE_CODE % {"code": code, "other": in_file[code][0]},
            )
            continue
        level_text = row.get("level", "")
        if level_text:
            level = _choice(level_text, RegionLevel, LEVEL_WORDS)
            if level is None:
                _row_error(errors, table, line, "level", ERR_LEVEL_VALUE % {"value": level_text})
                ok = False
        else:
            level = rules.level_for_code(code)
            if level is None:
                _row_error(errors, table, line, "code", ERR_LEVEL_GUESS)
                ok = False
        if not row.get("name"):
            _row_error(errors, table, line, "name", ERR_REQUIRED)
            ok = False
        elif len(row["name"]) > max_name:
            _row_error(errors, table, line, "name", ERR_TOO_LONG % {"max": max_name})
            ok = False
        try:
            _population(row.get("population", ""))
        except ValueError:
            _row_error(errors, table, line, "population", ERR_POPULATION)
            ok = False
        in_file[code] = (line, level or "")
        if ok:
            parsed.append((line, row, code, level))
    existing = {
        r.code: r
        for r in Region.objects.filter(
            code__in=set(in_file)
            | {row.get("parent") for _l, row, _c, _v in parsed if row.get("parent")}
            | {p for _l, _r, c, lvl in parsed for p in rules.parent_code_candidates(c, lvl)}
        )
    }

    def level_of(code: str) -> str | None:
        if code in in_file:
            return in_file[code][1]
        region = existing.get(code)
        return region.level if region else None

    out = []
    for line, row, code, level in parsed:
        parent = row.get("parent") or None
        if parent is not None and parent in in_file and not in_file[parent][1]:
            continue  # the parent's row has an unknown level: reported there
        if parent is not None and level_of(parent) is None:
            _row_error(errors, table, line, "parent", ERR_PARENT_UNKNOWN % {"code": parent})
            continue
        if parent is None and level != rules.PROVINCE:
            parent = next(
                (c for c in rules.parent_code_candidates(code, level) if level_of(c)), None
            )
            if parent is None:
                _row_error(errors, table, line, "parent", ERR_PARENT_GUESS)
                continue
        try:
            rules.check_region_code(code, level, parent, level_of(parent) if parent else None)
        except rules.RegionCodeError as exc:
            _row_error(errors, table, line, exc.field, exc.message)
            continue
        current = existing.get(code)
        if current is not None:
            if current.level != level:
                _row_error(
                    errors,
                    table,
                    line,
                    "level",
                    ERR_EXISTING_LEVEL % {"level": RegionLevel(current.level).label},
                )
                continue
            if (current.parent_id or None) != parent:
                _row_error(
                    errors,
                    table,
                    line,
                    "parent",
                    ERR_EXISTING_PARENT % {"parent": current.parent_id or "—"},
                )
                continue
        out.append(
            RegionRow(
                line=line,
                code=code,
                name=row["name"],
                level=level,
                parent=parent,
                population=_population(row.get("population", "")),
            )
        )
    return out


def check_organisations(
    table: Table, report: list[str], region_codes: set[str]
) -> list[OrganisationRow]:
    """Rows that passed their checks; errors for the others, by line."""
    if not _check_columns(report, table, ("name", "kind", "region")):
        return []
    errors: list[tuple[int, str]] = []
    rows = _check_organisations(table, errors, region_codes)
    report.extend(_by_line(errors))
    return rows


def _check_organisations(
    table: Table, errors: list, region_codes: set[str]
) -> list[OrganisationRow]:
    known = region_codes | set(
        Region.objects.filter(
            code__in={row.get("region") for _l, row in table.rows if row.get("region")}
        ).values_list("code", flat=True)
    )
    max_name = Organisation._meta.get_field("name").max_length
    max_phone = Organisation._meta.get_field("phone").max_length
    seen: dict[tuple[str, str], int] = {}
    out = []
    for line, row in table.rows:
        ok = True
        name = row.get("name", "")
        if not name:
            _row_error(errors, table, line, "name", ERR_REQUIRED)
            ok = False
        elif len(name) > max_name:
            _row_error(errors, table, line, "name", ERR_TOO_LONG % {"max": max_name})
            ok = False
        kind_text = row.get("kind", "")
        kind = _choice(kind_text, OrganisationKind) if kind_text else None
        if not kind_text:
            _row_error(errors, table, line, "kind", ERR_REQUIRED)
            ok = False
        elif kind is None:
            choices = "、".join(str(c.label) for c in OrganisationKind)
            _row_error(
                errors,
                table,
                line,
                "kind",
                ERR_CHOICE % {"value": kind_text, "choices": choices},
            )
            ok = False
        department_text = row.get("department", "")
        department = _choice(department_text, Department) if department_text else None
        if not department_text:
            department = rules.KIND_DEPARTMENT.get(kind or "")
            if department is None:
                _row_error(errors, table, line, "department", ERR_REQUIRED)
                ok = False
        elif department is None:
            choices = "、".join(str(c.label) for c in Department)
            _row_error(
                errors,
                table,
                line,
                "department",
                ERR_CHOICE % {"value": department_text, "choices": choices},
            )
            ok = False
        if kind and department and not rules.kind_fits_department(kind, department):
            expected = Department(rules.KIND_DEPARTMENT[kind]).label
            _row_error(
                errors,
                table,
                line,
                "department",
                rules.ERR_KIND_DEPARTMENT % {"department": expected},
            )
            ok = False
        region = row.get("region", "")
        if not region:
            _row_error(errors, table, line, "region", ERR_REQUIRED)
            ok = False
        elif region not in known:
            _row_error(errors, table, line, "region", ERR_REGION_UNKNOWN % {"code": region})
            ok = False
        phone = row.get("phone", "")
        if len(phone) > max_phone:
            _row_error(errors, table, line, "phone", ERR_TOO_LONG % {"max": max_phone})
            ok = False
        if name and region:
            if (region, name) in seen:
                _row_error(
                    errors, table, line, "name", ERR_DUPLICATE_ORG % {"other": seen[(region, name)]}
                )
                ok = False
            else:
                seen[(region, name)] = line
        if ok:
            out.append(
                OrganisationRow(
                    line=line,
                    name=name,
                    department=department,
                    kind=kind,
                    region=region,
                    phone=phone,
                )
            )
    return out


def check_tables(
    regions: Table | None, organisations: Table | None
) -> tuple[list[RegionRow], list[OrganisationRow]]:
    """Every row checked; raises ImportFailed listing every error."""
    if regions is None and organisations is None:
        raise ImportFailed([str(ERR_NOTHING)])
    errors: list[str] = []
    region_rows = check_regions(regions, errors) if regions is not None else []
    codes = {r.code for r in region_rows}
    if regions is not None:
        # a region row with an error still exists as far as organisations go:
        # report the organisation's own errors, not a knock-on one
        codes |= {row.get("code", "") for _l, row in regions.rows}
    org_rows = (
        check_organisations(organisations, errors, codes) if organisations is not None else []
    )
    if errors:
        raise ImportFailed(errors)
    return region_rows, org_rows


# --- writing -------------------------------------------------------------------------


@transaction.atomic
def regions_import(
    *, regions: list[RegionRow], organisations: list[OrganisationRow], by=None, source: str = ""
) -> ImportResult:
    """Write checked rows (``check_tables``): create what is new, update names,
    populations, departments, kinds and phones, count what is unchanged.
    ``by=None`` is the command line. One transaction."""
    result = ImportResult()
    order = {level: i for i, level in enumerate(rules.LEVELS)}
    saved: dict[str, Region] = {
        r.code: r for r in Region.objects.filter(code__in={r.code for r in regions})
    }
    parents = {r.parent for r in regions if r.parent and r.parent not in saved}
    saved.update({r.code: r for r in Region.objects.filter(code__in=parents)})
    for row in sorted(regions, key=lambda r: (order[r.level], r.code)):
        region = saved.get(row.code)
        if region is None:
            region = Region(
                code=row.code,
                name=row.name,
                level=row.level,
                parent=saved[row.parent] if row.parent else None,
                population=row.population,
            )
            region.path = region.compute_path()
            region.full_clean()
            region.save(force_insert=True)
            saved[row.code] = region
            result.regions["created"] += 1
            continue
        changed = [
            f
            for f, value in (("name", row.name), ("population", row.population))
            if getattr(region, f) != value
        ]
        if changed:
            region.name, region.population = row.name, row.population
            region.full_clean(validate_unique=False)
            region.save(update_fields=changed)
            result.regions["updated"] += 1
        else:
            result.regions["unchanged"] += 1

    existing = {
        (o.region_id, o.name): o
        for o in Organisation.objects.filter(
            region_id__in={r.region for r in organisations},
            name__in={r.name for r in organisations},
        )
    }
    for row in organisations:
        org = existing.get((row.region, row.name))
        values = {"department": row.department, "kind": row.kind, "phone": row.phone}
        if org is None:
            org = Organisation(name=row.name, region_id=row.region, **values)
            org.full_clean()
            history_stamp(org, user=by, reason="organisation.imported")
            org.save()
            result.organisations["created"] += 1
            continue
        changed = [f for f, v in values.items() if getattr(org, f) != v]
        if changed:
            for f in changed:
                setattr(org, f, values[f])
            org.full_clean()
            history_stamp(org, user=by, reason="organisation.imported")
            org.save(update_fields=changed)
            result.organisations["updated"] += 1
        else:
            result.organisations["unchanged"] += 1

    if any(result.regions[c] or result.organisations[c] for c in ("created", "updated")):
        audit_record(
            actor=by,
            action="admin.regions_import",
            object_type="region",
            detail={
                "source": source[:200],
                "regions": result.regions,
                "organisations": result.organisations,
            },
        )
    return result
