"""Builders for referrals tests (through the services, as users would)."""

from __future__ import annotations

import io
from datetime import date

from openpyxl import Workbook

from accounts.models import Region
from patients import rules as patient_rules
from referrals import roster
from referrals.services import exchange as exchange_services
from referrals.services import rehab as rehab_services


def rehab_institution(*, by, region: Region, name="阳光家园", places=10, services=None):
    return rehab_services.rehab_institution_create(
        name=name,
        region=region,
        places=places,
        services=services or ["medication_training", "daily_living_training"],
        by=by,
    )


def partner(*, by, department="police", fmt="csv", delivery="folder", folder="/tmp", **extra):
    data = {
        "department": department,
        "name": extra.pop("name", f"{department}-partner"),
        "format": fmt,
        "delivery": delivery,
        "folder_path": folder if delivery == "folder" else "",
        "endpoint_url": extra.pop("endpoint_url", ""),
        **extra,
    }
    return exchange_services.exchange_partner_create(by=by, data=data)


def resident_id(n: int, *, birth=date(1975, 3, 4), male=True, prefix="990102") -> str:
    """A valid, distinct ID number for row ``n`` (birth day varies past 499)."""
    day = birth.replace(day=1 + (n // 499) % 28) if n >= 499 else birth
    return patient_rules.make_resident_id(prefix, day, (n * 2) % 1000, male)


def roster_row(n: int, *, village="990102001001", **overrides) -> dict:
    number = overrides.pop("id_number", None) or resident_id(n)
    row = {
        "姓名": f"导入{n:04d}",
        "身份证号": number,
        "现住址区划代码": village,
        "现住址": f"测试村{n}号",
        "诊断": "精神分裂症",
        "监护人姓名": f"监护{n}",
        "监护人关系": "母亲",
        "监护人电话": "13800000000",
    }
    row.update(overrides)
    return row


def xlsx(rows: list[dict], headers: list[str] | None = None) -> bytes:
    """A workbook with a header row; ID and code columns written as text."""
    headers = headers or [c.header for c in roster.COLUMNS]
    wb = Workbook()
    ws = wb.active
    ws.append(headers)
    for row in rows:
        ws.append([row.get(h, "") for h in headers])
    for col in ws.iter_cols(min_row=2):
        for cell in col:
            cell.number_format = "@"
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def csv_bytes(rows: list[dict], headers: list[str]) -> bytes:
    import csv

    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(headers)
    for row in rows:
        writer.writerow([row.get(h, "") for h in headers])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")
