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
import re
import zipfile
from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal
from xml.sax.saxutils import escape as xml_escape

from django.utils.translation import gettext_lazy as _
from openpyxl import load_workbook
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
    """A one-sheet workbook written as it comes: the sheet's XML goes straight
    into the ZIP entry (``out`` needs no seeking), strings inline, ID-like
    cells styled as text (``@``). Written by hand rather than with
    openpyxl's write-only mode, which costs about a second per 30,000 rows
    (a county's package)."""
    keys = [key for key, _header in columns]
    letters = [_column_letter(i) for i in range(len(keys))]
    styles = [' s="1"' if key in TEXT_KEYS else "" for key in keys]
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, text in _xlsx_parts(sheet_title).items():
            zf.writestr(name, text)
        with zf.open("xl/worksheets/sheet1.xml", "w") as raw:
            sheet = io.BufferedWriter(raw, buffer_size=1 << 16)
            sheet.write(_SHEET_HEAD)
            header = "".join(
                _xlsx_cell(f"{letters[i]}1", "", text) for i, (_k, text) in enumerate(columns)
            )
            sheet.write(f'<row r="1">{header}</row>'.encode())
            n = 1
            for row in rows:
                n += 1
                cells = "".join(
                    _xlsx_cell(f"{letters[i]}{n}", styles[i], _plain(row[key]))
                    for i, key in enumerate(keys)
                )
                sheet.write(f'<row r="{n}">{cells}</row>'.encode())
            sheet.write(b"</sheetData></worksheet>")
            sheet.flush()


_ILLEGAL_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")


def _xlsx_cell(ref: str, style: str, value) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return f'<c r="{ref}"{style}><v>{value}</v></c>'
    text = _ILLEGAL_XML.sub("", xml_escape(str(value)))
    space = ' xml:space="preserve"' if text != text.strip() else ""
    return f'<c r="{ref}"{style} t="inlineStr"><is><t{space}>{text}</t></is></c>'


def _column_letter(index: int) -> str:
    name = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        name = chr(65 + rem) + name
    return name


_SHEET_HEAD = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
)


def _xlsx_parts(sheet_title: str) -> dict[str, str]:
    head = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    main = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    rel = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    pkg = "http://schemas.openxmlformats.org/package/2006/relationships"
    ct = "application/vnd.openxmlformats-officedocument.spreadsheetml"
    title = xml_escape(sheet_title[:31], {'"': "&quot;"})
    return {
        "[Content_Types].xml": head
        + '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
        'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
        f'<Override PartName="/xl/workbook.xml" ContentType="{ct}.sheet.main+xml"/>'
        f'<Override PartName="/xl/worksheets/sheet1.xml" ContentType="{ct}.worksheet+xml"/>'
        f'<Override PartName="/xl/styles.xml" ContentType="{ct}.styles+xml"/></Types>',
        "_rels/.rels": head + f'<Relationships xmlns="{pkg}"><Relationship Id="rId1" '
        f'Type="{rel}/officeDocument" Target="xl/workbook.xml"/></Relationships>',
        "xl/workbook.xml": head + f'<workbook xmlns="{main}" xmlns:r="{rel}"><sheets>'
        f'<sheet name="{title}" sheetId="1" r:id="rId1"/></sheets></workbook>',
        "xl/_rels/workbook.xml.rels": head + f'<Relationships xmlns="{pkg}">'
        f'<Relationship Id="rId1" Type="{rel}/worksheet" Target="worksheets/sheet1.xml"/>'
        f'<Relationship Id="rId2" Type="{rel}/styles" Target="styles.xml"/></Relationships>',
        # style 0: general; style 1: text (built-in number format 49, "@")
        "xl/styles.xml": head + f'<styleSheet xmlns="{main}">'
        '<fonts count="1"><font><sz val="11"/><name val="Calibri"/></font></fonts>'
        '<fills count="2"><fill><patternFill patternType="none"/></fill>'
        '<fill><patternFill patternType="gray125"/></fill></fills>'
        '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
        '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/>'
        '</cellStyleXfs><cellXfs count="2">'
        '<xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
        '<xf numFmtId="49" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
        '</cellXfs><cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/>'
        "</cellStyles></styleSheet>",
    }


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
