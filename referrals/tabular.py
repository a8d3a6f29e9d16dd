"""Reading uploaded tables (CSV or XLSX) into numbered rows; writing
packages. No ORM here.

Row numbers are the ones a user sees in Excel: the header is row 1 of its
sheet, so the first data row below it is row 2.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from datetime import date, datetime

from django.utils.translation import gettext_lazy as _
from openpyxl import Workbook, load_workbook
from openpyxl.utils.exceptions import InvalidFileException

ERR_UNREADABLE = _("无法读取该文件，请上传 Excel（.xlsx）或 CSV 文件。")
ERR_EMPTY = _("文件中没有数据。")
ERR_MISSING_COLUMNS = _("缺少必需的列：%(columns)s。")
ERR_TOO_LARGE = _("文件过大。")

XLSX_MAGIC = b"PK\x03\x04"


class TableError(Exception):
    """The file as a whole cannot be used (nothing is imported)."""

    def __init__(self, message):
        super().__init__(str(message))
        self.message = message


def normalise_header(raw) -> str:
    text = str(raw or "").strip()
    for a, b in (("（", "("), ("）", ")"), ("*", ""), ("＊", ""), (" ", ""), ("\u3000", "")):
        text = text.replace(a, b)
    return text


def cell_text(value) -> str:
    """A cell as text: dates as YYYY-MM-DD, whole numbers without ``.0``."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value).strip()


def clean_id_text(value: str) -> str:
    """Undo the tricks spreadsheets need to keep ID numbers as text:
    a leading tab or apostrophe, or the ``="…"`` formula form."""
    text = (value or "").strip().lstrip("\t'").strip()
    if text.startswith('="') and text.endswith('"'):
        text = text[2:-1]
    return text.replace(" ", "").upper()


def read_table(data: bytes, *, max_bytes: int) -> tuple[list[str], list[tuple[int, dict]]]:
    """Headers (normalised) and ``(row_number, {header: text})`` for each
    non-empty data row. Raises TableError when the file cannot be read."""
    if len(data) > max_bytes:
        raise TableError(ERR_TOO_LARGE)
    raw_rows = _xlsx_rows(data) if data.startswith(XLSX_MAGIC) else _csv_rows(data)
    headers: list[str] | None = None
    rows: list[tuple[int, dict]] = []
    for number, values in raw_rows:
        texts = [cell_text(v) for v in values]
        if not any(texts):
            continue
        if headers is None:
            headers = [normalise_header(v) for v in texts]
            continue
        row = {h: (texts[i] if i < len(texts) else "") for i, h in enumerate(headers) if h}
        rows.append((number, row))
    if headers is None or not rows:
        raise TableError(ERR_EMPTY)
    return headers, rows


def _xlsx_rows(data: bytes) -> Iterable[tuple[int, tuple]]:
    try:
        wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (InvalidFileException, KeyError, OSError, ValueError) as exc:
        raise TableError(ERR_UNREADABLE) from exc
    ws = wb.worksheets[0]
    out = [(i, tuple(r)) for i, r in enumerate(ws.iter_rows(values_only=True), start=1)]
    wb.close()
    return out


def _csv_rows(data: bytes) -> Iterable[tuple[int, tuple]]:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise TableError(ERR_UNREADABLE)
    if "\x00" in text:
        raise TableError(ERR_UNREADABLE)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        return [(reader.line_num, tuple(r)) for r in reader]
    except csv.Error as exc:
        raise TableError(ERR_UNREADABLE) from exc


def require_columns(headers: list[str], wanted: dict[str, tuple[str, ...]]) -> dict[str, str]:
    """Map each key of ``wanted`` (key → accepted headers, first is canonical)
    to the header present in the file; raise naming the required ones missing."""
    found = {}
    for key, names in wanted.items():
        for name in names:
            if normalise_header(name) in headers:
                found[key] = normalise_header(name)
                break
    return found


# --------------------------------------------------------------------------
# Writing packages
# --------------------------------------------------------------------------

TEXT_KEYS = frozenset({"id_number", "region", "certificate_number", "guardian_phone"})


def write_csv(columns, rows: list[dict]) -> bytes:
    """UTF-8 with BOM (Excel opens it as Chinese text); ID-like values are
    written after a tab so spreadsheet programs keep them as text (an
    18-digit number would otherwise lose its last digits)."""
    buf = io.StringIO(newline="")
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow([header for _key, header in columns])
    for row in rows:
        writer.writerow(
            [
                ("\t" + str(row[key])) if key in TEXT_KEYS and row.get(key) else _plain(row[key])
                for key, _header in columns
            ]
        )
    return b"\xef\xbb\xbf" + buf.getvalue().encode("utf-8")


def write_xlsx(columns, rows: list[dict], *, sheet_title: str = "数据") -> bytes:
    wb = Workbook(write_only=True)
    ws = wb.create_sheet(sheet_title)
    ws.append([header for _key, header in columns])
    from openpyxl.cell import WriteOnlyCell

    for row in rows:
        cells = []
        for key, _header in columns:
            cell = WriteOnlyCell(ws, value=_plain(row[key]))
            if key in TEXT_KEYS:
                cell.number_format = "@"
            cells.append(cell)
        ws.append(cells)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def write_json(columns, rows: list[dict]) -> bytes:
    keys = [key for key, _header in columns]
    payload = [{k: _json_value(row[k]) for k in keys} for row in rows]
    return json.dumps(payload, ensure_ascii=False, indent=None).encode("utf-8")


def _plain(value):
    if value is None:
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, date):
        return value.isoformat()
    return value


def _json_value(value):
    if isinstance(value, date):
        return value.isoformat()
    return value


WRITERS = {"csv": write_csv, "xlsx": write_xlsx, "json": write_json}
CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "json": "application/json",
}
