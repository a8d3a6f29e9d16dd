"""Reading uploaded tables (CSV or XLSX) into numbered rows; writing
packages. No ORM here.

Row numbers are the ones a user sees in Excel: the header is row 1 of its
sheet, so the first data row below it is row 2.
"""

from __future__ import annotations

import csv
import hashlib
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


class HashingSink:
    """A write-only binary stream that hashes (SHA-256) and counts what goes
    through it into ``out``: a package is written once, sequentially, and
    its digest is known when the last byte is (no second pass, no copy).
    It has no ``tell``/``seek``, so a ZIP (XLSX) is written as a stream too."""

    def __init__(self, out):
        self.out = out
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        self.size += len(data)
        self.out.write(data)
        return len(data)

    def flush(self) -> None:
        self.out.flush()


class _Utf8:
    """The text side of a binary stream (what ``csv.writer`` writes to)."""

    def __init__(self, out):
        self.out = out

    def write(self, text: str):
        return self.out.write(text.encode("utf-8"))


def stream_csv(columns, rows: Iterable[dict], out) -> None:
    """UTF-8 with BOM (Excel opens it as Chinese text); ID-like values are
    written after a tab so spreadsheet programs keep them as text (an
    18-digit number would otherwise lose its last digits). ``out`` is a
    binary stream; rows are written as they come."""
    out.write(b"\xef\xbb\xbf")
    writer = csv.writer(_Utf8(out), lineterminator="\r\n")
    writer.writerow([header for _key, header in columns])
    keys = [key for key, _header in columns]
    for row in rows:
        writer.writerow(
            [
                ("\t" + str(row[key])) if key in TEXT_KEYS and row.get(key) else _plain(row[key])
                for key in keys
            ]
        )


def stream_xlsx(columns, rows: Iterable[dict], out, *, sheet_title: str = "数据") -> None:
    """openpyxl's write-only mode: rows go to a temporary file as they come,
    then into the ZIP written to ``out``; ID-like cells are text (``@``)."""
    from openpyxl.cell import WriteOnlyCell

    wb = Workbook(write_only=True)
    ws = wb.create_sheet(sheet_title)
    ws.append([header for _key, header in columns])
    keys = [key for key, _header in columns]
    for row in rows:
        cells = []
        for key in keys:
            if key in TEXT_KEYS:
                cell = WriteOnlyCell(ws, value=_plain(row[key]))
                cell.number_format = "@"
                cells.append(cell)
            else:
                cells.append(_plain(row[key]))
        ws.append(cells)
    wb.save(out)


def stream_json(columns, rows: Iterable[dict], out) -> None:
    """A JSON array of objects, one row at a time (the same bytes as
    ``json.dumps`` of the whole list)."""
    keys = [key for key, _header in columns]
    out.write(b"[")
    for n, row in enumerate(rows):
        item = json.dumps({k: _json_value(row[k]) for k in keys}, ensure_ascii=False)
        out.write((", " + item if n else item).encode("utf-8"))
    out.write(b"]")


def _written(stream, columns, rows) -> bytes:
    buf = io.BytesIO()
    stream(columns, rows, buf)
    return buf.getvalue()


def write_csv(columns, rows: list[dict]) -> bytes:
    return _written(stream_csv, columns, rows)


def write_xlsx(columns, rows: list[dict], *, sheet_title: str = "数据") -> bytes:
    buf = io.BytesIO()
    stream_xlsx(columns, rows, buf, sheet_title=sheet_title)
    return buf.getvalue()


def write_json(columns, rows: list[dict]) -> bytes:
    return _written(stream_json, columns, rows)


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
STREAMS = {"csv": stream_csv, "xlsx": stream_xlsx, "json": stream_json}
CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "json": "application/json",
}
