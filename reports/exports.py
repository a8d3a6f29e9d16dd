"""Excel exports of indicators (openpyxl). Aggregates only: no patient
identity ever appears in these files. Values come from the same
``selectors.reports_for`` as the pages and the API."""

from __future__ import annotations

import re
from datetime import date
from io import BytesIO

from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from openpyxl import Workbook
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter

from accounts.models import OrganisationKind, Region
from reports import rules, selectors
from reports.rules import COUNT, INDICATORS, Period

HEADER_FILL = PatternFill("solid", fgColor="DCE6F1")
BOLD = Font(bold=True)
TITLE = Font(bold=True, size=14)
THIN = Side(style="thin", color="999999")
BOX = Border(left=THIN, right=THIN, top=THIN, bottom=THIN)
CENTER = Alignment(horizontal="center", vertical="center", wrap_text=True)
NUMBER_FORMAT = {rules.PERCENT: "0.00", rules.PERMILLE: "0.00", COUNT: "0"}
SHEET_NAME_BAD = re.compile(r"[\[\]:*?/\\]")

KINDS = dict(OrganisationKind.choices)
# The labour and social security office (劳动保障所) exchanges with the health
# centre half-yearly (seed document 003, 五): it is no organisation kind of
# the system, so its column group is named here.
LABOUR_OFFICE = gettext_lazy("劳动保障所")

# The national information exchange form (2018 work norms, annex table 9):
# per township, the counts each institution exchanges (group label, columns).
EXCHANGE_COLUMNS: tuple[tuple[object, tuple[tuple[str, object, object], ...]], ...] = (
    (
        KINDS[OrganisationKind.HEALTH_CENTRE],
        (
            (
                "registered",
                gettext_lazy("在册患者数"),
                gettext_lazy("统计日在册（在管、失访、不同意参加管理）的患者数"),
            ),
            (
                "new_registered",
                gettext_lazy("本季度新登记"),
                gettext_lazy("本季度纳入管理的在册患者数"),
            ),
            (
                "managed",
                gettext_lazy("在管患者数"),
                gettext_lazy("年内至少有1次完成的随访或正在住院的在册患者数"),
            ),
            (
                "standard",
                gettext_lazy("规范管理患者数"),
                gettext_lazy("年内完成的随访间隔均不超过3个月的患者数"),
            ),
            (
                "overdue",
                gettext_lazy("逾期未随访"),
                gettext_lazy("统计日在管且已过下次随访日期的患者数"),
            ),
            ("lost", gettext_lazy("失访患者数"), gettext_lazy("统计日状态为失访的患者数")),
        ),
    ),
    (
        KINDS[OrganisationKind.POLICE_STATION],
        (
            (
                "police_registered",
                gettext_lazy("公安已列管患者数"),
                gettext_lazy("在册患者中公安已列管的人数"),
            ),
            (
                "high_risk",
                gettext_lazy("危险性3级及以上"),
                gettext_lazy("最近一次危险性评估为3级及以上的在册患者数"),
            ),
            (
                "incident_quarter",
                gettext_lazy("本季度肇事肇祸患者数"),
                gettext_lazy("本季度有肇事或肇祸记录的在册患者数"),
            ),
            ("lost", gettext_lazy("失访患者数"), gettext_lazy("需协查的失访患者数")),
        ),
    ),
    (
        KINDS[OrganisationKind.CIVIL_AFFAIRS_BUREAU],
        (
            (
                "poor",
                gettext_lazy("低保、特困患者数"),
                gettext_lazy("困难类别为低保或特困的在册患者数"),
            ),
            (
                "rehab",
                gettext_lazy("参加社区康复患者数"),
                gettext_lazy("参加社区康复的居家在册患者数"),
            ),
        ),
    ),
    (
        KINDS[OrganisationKind.FEDERATION],
        (
            (
                "certificate",
                gettext_lazy("持残疾人证患者数"),
                gettext_lazy("持有残疾人证的在册患者数"),
            ),
        ),
    ),
    (
        LABOUR_OFFICE,
        (
            (
                "insured",
                gettext_lazy("参加基本医疗保险患者数"),
                gettext_lazy(
                    "参加城镇职工或城乡居民基本医疗保险（或其他医保）的在册患者数，取自患者登记的医保类别"
                ),
            ),
            (
                "uninsured",
                gettext_lazy("未参保患者数"),
                gettext_lazy("医保类别为“未参保”、需协助参保的在册患者数"),
            ),
        ),
    ),
    (
        KINDS[OrganisationKind.GOVERNANCE_OFFICE],
        (
            (
                "reward_eligible",
                gettext_lazy("符合以奖代补条件"),
                gettext_lazy("监护人符合以奖代补条件的患者数"),
            ),
            (
                "reward_active",
                gettext_lazy("以奖代补发放中"),
                gettext_lazy("监护人以奖代补正在发放的患者数"),
            ),
            (
                "high_risk",
                gettext_lazy("危险性3级及以上"),
                gettext_lazy("需落实监护和关爱帮扶的高风险患者数"),
            ),
        ),
    ),
)


def _sheet_title(name: str, used: set[str]) -> str:
    base = SHEET_NAME_BAD.sub("_", name)[:28] or "sheet"
    title, n = base, 2
    while title in used:
        title = f"{base[:25]}({n})"
        n += 1
    used.add(title)
    return title


def _cell_value(value: rules.IndicatorValue):
    if not value.available or value.value is None:
        return "—"
    return value.value


def _header(ws, row: int, labels: list[str]) -> None:
    for col, label in enumerate(labels, start=1):
        cell = ws.cell(row=row, column=col, value=label)
        cell.font = BOLD
        cell.fill = HEADER_FILL
        cell.alignment = CENTER
        cell.border = BOX


def _widths(ws, widths: list[int]) -> None:
    for col, width in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(col)].width = width


def _source_line(report: selectors.RegionReport) -> str:
    if report.live:
        how = _("实时计算")
    elif report.computed_at is not None:
        when = timezone.localtime(report.computed_at).strftime("%Y-%m-%d %H:%M")
        how = _("快照，计算于 %(when)s") % {"when": when}
        if report.final:
            how += _("（已定稿）")
    else:
        how = _("暂无数据")
    stat = report.statistics_date.isoformat() if report.statistics_date else "—"
    return _("统计日：%(date)s；数据：%(how)s") % {"date": stat, "how": how}


def _summary_sheet(ws, report: selectors.RegionReport) -> None:
    ws.title = _("指标汇总")
    ws.cell(
        row=1,
        column=1,
        value=_("%(region)s %(period)s 严重精神障碍患者管理指标")
        % {"region": report.region.name, "period": report.period.label},
    ).font = TITLE
    ws.cell(row=2, column=1, value=_source_line(report))
    _header(
        ws,
        4,
        [
            _("指标"),
            _("代码"),
            _("分子"),
            _("分母"),
            _("数值"),
            _("单位"),
            _("目标"),
            _("是否达标"),
            _("口径"),
        ],
    )
    units = {rules.PERCENT: "%", rules.PERMILLE: "‰", COUNT: _("人")}
    for row, value in enumerate(report.values, start=5):
        ind = value.indicator
        met = "" if value.met is None else (_("达标") if value.met else _("未达标"))
        cells = [
            str(ind.label),
            ind.key,
            value.numerator if value.available else "—",
            value.denominator if value.denominator is not None else "",
            _cell_value(value),
            units[ind.unit],
            value.target if value.target is not None else "",
            met,
            str(ind.definition),
        ]
        for col, v in enumerate(cells, start=1):
            cell = ws.cell(row=row, column=col, value=v)
            cell.border = BOX
            if col == 5 and not isinstance(v, str):
                cell.number_format = NUMBER_FORMAT[ind.unit]
    _widths(ws, [18, 26, 10, 10, 10, 6, 8, 8, 60])


def _table_sheet(ws, title: str, parent: selectors.RegionReport, rows) -> None:
    ws.cell(row=1, column=1, value=title).font = TITLE
    ws.cell(row=2, column=1, value=_source_line(parent))
    _header(ws, 4, [_("区划代码"), _("地区")] + [str(i.label) for i in INDICATORS])
    for r, report in enumerate([*rows, parent], start=5):
        name = (
            report.region.name
            if report is not parent
            else _("合计（%(name)s）") % {"name": parent.region.name}
        )
        ws.cell(row=r, column=1, value=report.region.code).border = BOX
        ws.cell(row=r, column=2, value=name).border = BOX
        for c, value in enumerate(report.values, start=3):
            cell = ws.cell(row=r, column=c, value=_cell_value(value))
            cell.border = BOX
            if not isinstance(cell.value, str):
                cell.number_format = NUMBER_FORMAT[value.unit]
        if report is parent:
            for c in range(1, len(INDICATORS) + 3):
                ws.cell(row=r, column=c).font = BOLD
    _widths(ws, [14, 16] + [11] * len(INDICATORS))
    ws.freeze_panes = "C5"


def indicators_workbook(*, region: Region, period: Period, today: date) -> bytes:
    """Sheet 1 the region's indicators; sheet 2 its children; then one sheet
    per child with that child's own breakdown (each township's villages)."""
    main, rows, below = selectors.breakdown(region=region, period=period, today=today)
    wb = Workbook()
    _summary_sheet(wb.active, main)
    used = {wb.active.title}
    if rows:
        ws = wb.create_sheet(_sheet_title(_("按下级地区"), used))
        _table_sheet(
            ws,
            _("%(region)s %(period)s 分地区指标")
            % {
                "region": region.name,
                "period": period.label,
            },
            main,
            rows,
        )
    for child in rows:
        grand = below.get(child.region.code)
        if not grand:
            continue
        ws = wb.create_sheet(_sheet_title(child.region.name, used))
        _table_sheet(
            ws,
            _("%(region)s %(period)s 分地区指标")
            % {
                "region": child.region.name,
                "period": period.label,
            },
            child,
            grand,
        )
    out = BytesIO()
    wb.save(out)
    return out.getvalue()


def exchange_workbook(*, region: Region, period: Period, today: date) -> bytes:
    """The quarterly report in the layout of the information exchange form:
    one row per township (village, for a township) and the total, columns
    grouped by the institution type that exchanges them."""
    main, rows, _below = selectors.breakdown(region=region, period=period, today=today)
    wb = Workbook()
    ws = wb.active
    ws.title = _("信息交换表")
    total_cols = 1 + sum(len(cols) for _kind, cols in EXCHANGE_COLUMNS)
    ws.merge_cells(start_row=1, start_column=1, end_row=1, end_column=total_cols)
    title = ws.cell(row=1, column=1, value=_("严重精神障碍患者管理信息交换表"))
    title.font = TITLE
    title.alignment = CENTER
    ws.merge_cells(start_row=2, start_column=1, end_row=2, end_column=total_cols)
    ws.cell(
        row=2,
        column=1,
        value=_("地区：%(region)s（%(code)s）　统计期：%(period)s　%(source)s　填报日期：%(today)s")
        % {
            "region": region.name,
            "code": region.code,
            "period": period.label,
            "source": _source_line(main),
            "today": today.isoformat(),
        },
    )
    ws.merge_cells(start_row=3, start_column=1, end_row=4, end_column=1)
    first = ws.cell(row=3, column=1, value=_("地区"))
    col = 2
    for group, cols in EXCHANGE_COLUMNS:
        ws.merge_cells(start_row=3, start_column=col, end_row=3, end_column=col + len(cols) - 1)
        ws.cell(row=3, column=col, value=str(group))
        for _key, label, _definition in cols:
            ws.cell(row=4, column=col, value=str(label))
            col += 1
    for r in (3, 4):
        for c in range(1, total_cols + 1):
            cell = ws.cell(row=r, column=c)
            cell.font = BOLD
            cell.fill = HEADER_FILL
            cell.alignment = CENTER
            cell.border = BOX
    first.alignment = CENTER
    for r, report in enumerate([*rows, main], start=5):
        is_total = report is main
        name = _("合计") if is_total else report.region.name
        ws.cell(row=r, column=1, value=name).border = BOX
        c = 2
        for _kind, cols in EXCHANGE_COLUMNS:
            for key, _label, _definition in cols:
                value = report.counts.get(key)
                cell = ws.cell(row=r, column=c, value="—" if value is None else int(value))
                cell.border = BOX
                cell.alignment = CENTER
                if is_total:
                    cell.font = BOLD
                c += 1
        if is_total:
            ws.cell(row=r, column=1).font = BOLD
    foot = 5 + len(rows) + 2
    ws.cell(row=foot, column=1, value=_("填表人："))
    ws.cell(row=foot, column=5, value=_("审核人："))
    ws.cell(row=foot, column=9, value=_("单位（盖章）："))
    _widths(ws, [16] + [12] * (total_cols - 1))
    ws.row_dimensions[4].height = 48

    notes = wb.create_sheet(_("填表说明"))
    _header(notes, 1, [_("机构类型"), _("栏目"), _("口径")])
    r = 2
    for group, cols in EXCHANGE_COLUMNS:
        for _key, label, definition in cols:
            notes.cell(row=r, column=1, value=str(group))
            notes.cell(row=r, column=2, value=str(label))
            notes.cell(row=r, column=3, value=str(definition))
            r += 1
    notes.cell(
        row=r + 1,
        column=1,
        value=_("统计日为季度最后一日（本季度为今日）；“年内”指1月1日至统计日。"),
    )
    _widths(notes, [28, 22, 60])
    out = BytesIO()
    wb.save(out)
    return out.getvalue()
