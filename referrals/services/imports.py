"""Roster import: a county's existing Excel roster in the national layout
(referrals.roster), imported in one go on a worker.

Validated first (every row, every field, an error list in Chinese naming row
and field), then written in one transaction: all rows or none. Rows whose ID
number is already on the register are counted, not written again, so the
same file twice changes nothing (SECURITY.md R8).

Two stages, each with its progress: "validating" (counted on the TaskRun
row) and "writing" (bulk inserts in batches; the count goes through
core.progress, because the write transaction hides the TaskRun row's
changes until it commits).
"""

from __future__ import annotations

import logging

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as gettext_now
from django.utils.translation import gettext_lazy as _

from accounts.models import Region, RegionLevel
from accounts.roles import MANAGE_PATIENTS
from accounts.scoping import region_in_scope
from accounts.selectors import organisation_of
from audit.services import audit_record
from core.errors import DomainError
from core.models import TaskRun
from core.outbox import outbox_put
from core.progress import progress_clear, progress_report
from patients.models import IdType, id_number_index_for
from patients.selectors import id_indexes_on_register
from patients.services import RowRefused, check_identity, patient_register_many
from referrals import conf, roster
from referrals.models import ImportStatus, RosterImport
from referrals.rules import sha256_hex
from referrals.selectors import can_import_roster
from referrals.tabular import TableError, read_table

log = logging.getLogger(__name__)

ERR_NOT_ALLOWED = _("您无权导入花名册。")
ERR_REGION_UNKNOWN = _("区划代码不存在。")
ERR_REGION_LEVEL = _("须为村（居）级区划代码。")
ERR_REGION_SCOPE = _("该区划不在您的管辖范围内。")
ERR_DUPLICATE_IN_FILE = _("与第%(row)d行的身份证号重复。")
ERR_MISSING_COLUMNS = _("缺少必需的列：%(columns)s。")
ERR_WRITE = _("写入时出错：%(message)s")
MAX_LISTED_ERRORS = 1000
PROGRESS_EVERY = 100
WRITE_BATCH = 250  # rows per bulk insert, and per progress step while writing
JOB = "referrals.roster_import"
STAGE_VALIDATING, STAGE_WRITING = "validating", "writing"


def row_error(row: int, field: str, message) -> dict:
    """One line of the error report (also how tests name what they expect)."""
    return {
        "row": row,
        "field": field,
        "message": str(message),
        "text": gettext_now("第%(row)d行「%(field)s」：%(message)s")
        % {"row": row, "field": field, "message": str(message)},
    }


@transaction.atomic
def roster_import_start(*, by, file_name: str, data: bytes, request=None) -> RosterImport:
    """Store the upload (encrypted) and queue it for a worker."""
    org = organisation_of(by)
    if not can_import_roster(by) or org is None:
        raise PermissionDenied(ERR_NOT_ALLOWED)
    if len(data) > conf.get("REFERRALS_UPLOAD_MAX_BYTES"):
        raise DomainError(_("文件过大。"), field="file")
    digest = sha256_hex(data)
    run = TaskRun.objects.create(job=JOB, key=digest)
    imp = RosterImport(
        organisation=org,
        file_name=(file_name or "roster.xlsx")[:200],
        sha256=digest,
        created_by=by,
        task_run=run,
    )
    imp.set_content(data)
    imp.save(force_insert=True)
    audit_record(
        actor=by,
        action="roster.upload",
        object_type="roster_import",
        object_id=imp.pk,
        detail={"sha256": digest[:16]},
        request=request,
    )
    # through the outbox: a broker outage delays the import, never loses it
    outbox_put(topic="referrals.roster_import", payload={"import": str(imp.pk)})
    return imp


def _progress(imp: RosterImport, *, status=None, progress=None, total=None, counts=None) -> None:
    if status is not None:
        RosterImport.objects.filter(pk=imp.pk).update(status=status)
        imp.status = status
    fields = {}
    if progress is not None:
        fields["progress"] = progress
    if total is not None:
        fields["total"] = total
    if counts is not None:
        fields["counts"] = counts
    if fields and imp.task_run_id:
        TaskRun.objects.filter(pk=imp.task_run_id).update(**fields)


def roster_import_run(import_id) -> RosterImport | None:
    """Run one import (the worker's task). Safe to call twice: only a queued
    import is claimed, so a re-delivered message does nothing."""
    claimed = RosterImport.objects.filter(pk=import_id, status=ImportStatus.QUEUED).update(
        status=ImportStatus.VALIDATING
    )
    if not claimed:
        return None
    imp = RosterImport.objects.select_related("created_by", "organisation").get(pk=import_id)
    user = get_user_model().objects.get(pk=imp.created_by_id)
    try:
        valid, errors, existing = _validate(imp, user)
        if errors:
            return _finish(imp, status=ImportStatus.FAILED, errors=errors, existing=existing)
        _progress(
            imp,
            status=ImportStatus.WRITING,
            counts={"stage": STAGE_WRITING, "to_write": len(valid)},
        )
        try:
            created = _write(imp, valid, user)
        except _WriteFailed as exc:
            return _finish(imp, status=ImportStatus.FAILED, errors=[exc.error], existing=existing)
        audit_record(
            actor=user,
            action="patient.import",
            object_type="roster_import",
            object_id=imp.pk,
            detail={"created": created, "existing": existing},
        )
        return _finish(imp, status=ImportStatus.SUCCEEDED, created=created, existing=existing)
    except Exception:
        log.exception("roster import %s failed", import_id)
        _finish(
            imp,
            status=ImportStatus.FAILED,
            errors=[row_error(0, "", _("导入过程中发生系统错误，未写入任何数据，请稍后重试。"))],
        )
        raise


class _WriteFailed(Exception):
    def __init__(self, error: dict):
        super().__init__(error["text"])
        self.error = error


def _validate(imp: RosterImport, user) -> tuple[list[tuple[int, dict]], list[dict], int]:
    """Every row checked before anything is written. Returns (rows to write
    as (row number, patient data)), the error report, and the count of rows
    already on the register."""
    try:
        headers, rows = read_table(
            imp.get_content(), max_bytes=conf.get("REFERRALS_UPLOAD_MAX_BYTES")
        )
    except TableError as exc:
        return [], [row_error(1, "", exc.message)], 0
    found = roster.header_map(headers)
    missing = roster.missing_required(found)
    if missing:
        return [], [row_error(1, "", ERR_MISSING_COLUMNS % {"columns": "、".join(missing)})], 0
    _progress(imp, total=len(rows), progress=0, counts={"stage": STAGE_VALIDATING})
    codes = set()
    for _n, raw in rows:
        for key in ("region", "household_region"):
            if key in found and raw.get(found[key]):
                codes.add(raw[found[key]].strip())
    regions = {r.code: r for r in Region.objects.filter(code__in=codes)}
    errors: list[dict] = []
    parsed: list[tuple[int, dict, str]] = []
    seen: dict[str, int] = {}
    for i, (number, raw) in enumerate(rows, start=1):
        values, problems = roster.read_row(raw, found)
        for header, message in problems:
            errors.append(row_error(number, header, message))
        index = _check_row(values, number, regions, user, errors, seen)
        if index and not problems:
            parsed.append((number, values, index))
        if i % PROGRESS_EVERY == 0:
            _progress(imp, progress=i)
    _progress(imp, progress=len(rows))
    on_register = _registered(idx for _n, _v, idx in parsed)
    existing = sum(1 for _n, _v, idx in parsed if idx in on_register)
    if errors:
        errors.sort(key=lambda e: (e["row"], e["field"]))
        return [], errors, existing
    valid = [(n, _patient_data(v, regions)) for n, v, idx in parsed if idx not in on_register]
    return valid, [], existing


def _check_row(values: dict, number: int, regions: dict, user, errors: list, seen: dict) -> str:
    """Region and identity checks of one row; returns the ID's blind index
    ('' when the identity is invalid)."""
    code = values.get("region")
    if code:
        region = regions.get(code)
        if region is None:
            errors.append(row_error(number, "现住址区划代码", ERR_REGION_UNKNOWN))
        elif region.level != RegionLevel.VILLAGE:
            errors.append(row_error(number, "现住址区划代码", ERR_REGION_LEVEL))
        elif not region_in_scope(user, MANAGE_PATIENTS, region):
            errors.append(row_error(number, "现住址区划代码", ERR_REGION_SCOPE))
    household = values.get("household_region")
    if household and household not in regions:
        errors.append(row_error(number, "户籍地区划代码", ERR_REGION_UNKNOWN))
    if not values.get("id_number"):
        return ""
    id_type = values.get("id_type") or IdType.RESIDENT_ID
    try:
        normalised, birth, gender = check_identity(
            id_type=id_type,
            id_number=values["id_number"],
            birth_date=values.get("birth_date"),
            gender=values.get("gender"),
        )
    except DomainError as exc:
        header = {"birth_date": "出生日期", "gender": "性别"}.get(exc.field or "", "身份证号")
        errors.append(row_error(number, header, exc.message))
        return ""
    values.update(id_type=id_type, id_number=normalised, birth_date=birth, gender=gender)
    index = id_number_index_for(id_type, normalised)
    if index in seen:
        errors.append(row_error(number, "身份证号", ERR_DUPLICATE_IN_FILE % {"row": seen[index]}))
        return ""
    seen[index] = number
    return index


def _registered(indexes) -> set[str]:
    """Which of these ID numbers are on the register (anywhere: one patient
    per ID number). Only the blind index is compared — nothing is decrypted."""
    return id_indexes_on_register(indexes)


def _patient_data(values: dict, regions: dict) -> dict:
    data = {
        k: v
        for k, v in values.items()
        if k
        not in (
            "guardian_name",
            "guardian_relation",
            "guardian_phone",
            "guardian_address",
            "region",
            "household_region",
        )
    }
    data["region"] = regions[values["region"]]
    if values.get("household_region"):
        data["household_region"] = regions[values["household_region"]]
    if values.get("guardian_name"):
        data["guardian"] = {
            "name": values["guardian_name"],
            "relation": values.get("guardian_relation", ""),
            "phone": values.get("guardian_phone", ""),
            "address": values.get("guardian_address", ""),
        }
    return data


def _write(imp: RosterImport, valid: list[tuple[int, dict]], user) -> int:
    """All rows in one transaction (patients.services.patient_register_many:
    bulk inserts with history, one audit row per patient); any refusal rolls
    everything back and names the row. After each batch the rows written so
    far are reported through core.progress."""
    total = len(valid)

    def report(done: int) -> None:
        progress_report(imp.task_run_id, stage=STAGE_WRITING, done=done, total=total)

    report(0)
    try:
        return patient_register_many(
            by=user, rows=[data for _n, data in valid], on_progress=report, batch_size=WRITE_BATCH
        )
    except RowRefused as exc:
        header = HEADERS.get(exc.field or "", exc.field or "")
        error = row_error(valid[exc.index][0], header, ERR_WRITE % {"message": exc.message})
        raise _WriteFailed(error) from exc
    except DomainError as exc:
        raise _WriteFailed(row_error(0, "", ERR_WRITE % {"message": exc.message})) from exc


# model field → the roster column that holds it, to name a refused field
HEADERS = {col.key: col.header for col in roster.COLUMNS}


def _finish(imp: RosterImport, *, status, errors=None, created=0, existing=0) -> RosterImport:
    errors = errors or []
    imp.status = status
    imp.errors = errors[:MAX_LISTED_ERRORS]
    imp.created_count = created
    imp.existing_count = existing
    imp.finished_at = timezone.now()
    imp.content = ""  # the upload holds personal data: purged once processed
    progress_clear(imp.task_run_id)
    total = (
        TaskRun.objects.filter(pk=imp.task_run_id).values_list("total", flat=True).first()
        if imp.task_run_id
        else None
    )
    imp.total_rows = total or 0
    imp.save(
        update_fields=[
            "status",
            "errors",
            "created_count",
            "existing_count",
            "finished_at",
            "content",
            "total_rows",
        ]
    )
    if imp.task_run_id:
        TaskRun.objects.filter(pk=imp.task_run_id).update(
            status=TaskRun.Status.SUCCEEDED
            if status == ImportStatus.SUCCEEDED
            else TaskRun.Status.FAILED,
            finished_at=imp.finished_at,
            counts={"created": created, "existing": existing, "errors": len(errors)},
            errors=[e["text"] for e in errors[:50]],
        )
    return imp
