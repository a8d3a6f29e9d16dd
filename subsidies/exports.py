"""Excel exports (openpyxl write-only workbooks: rows are streamed into the
workbook without building cells in memory; the finished file is served).

Every cell that could look like a number but is an identifier (ID numbers,
case numbers, codes) is written as text; money as numbers with two decimals.
An export with no rows still gives a valid workbook with its header.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal
from io import BytesIO
from urllib.parse import quote

from django.http import FileResponse
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _cells(ws, values: Sequence, *, bold: bool = False) -> list:
    out = []
    for value in values:
        if isinstance(value, Decimal):
            cell = WriteOnlyCell(ws, value=value)
            cell.number_format = "0.00"
        elif value is None:
            cell = WriteOnlyCell(ws, value="")
        elif isinstance(value, int | float):
            cell = WriteOnlyCell(ws, value=value)
        else:
            cell = WriteOnlyCell(ws, value=str(value))
            cell.number_format = "@"
        if bold:
            cell.font = Font(bold=True)
        out.append(cell)
    return out


def xlsx_response(
    *,
    filename: str,
    title: str,
    header: Sequence[str],
    rows: Iterable[Sequence],
    preamble: Sequence[Sequence] = (),
    footer: Sequence[Sequence] = (),
) -> FileResponse:
    wb = Workbook(write_only=True)
    ws = wb.create_sheet(title=title[:31])
    for line in preamble:
        ws.append(_cells(ws, line))
    ws.append(_cells(ws, [str(h) for h in header], bold=True))
    for row in rows:
        ws.append(_cells(ws, row))
    for line in footer:
        ws.append(_cells(ws, line, bold=True))
    buf = BytesIO()
    wb.save(buf)
    buf.seek(0)
    response = FileResponse(buf, content_type=XLSX, as_attachment=True, filename=filename)
    # RFC 5987 name for non-ASCII file names (FileResponse sets it too; keep ASCII fallback)
    response["Content-Disposition"] = (
        f"attachment; filename=\"{_ascii(filename)}\"; filename*=UTF-8''{quote(filename)}"
    )
    return response


def _ascii(name: str) -> str:
    return "".join(c if c.isascii() and c not in '"\\' else "_" for c in name)
