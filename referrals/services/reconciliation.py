"""Reconciliation (比对) of a partner's list with the register (DOMAIN.md →
Data exchange and reconciliation; DOMAIN-SOURCES.md §6.2).

Match by ID number (through the blind index — nothing is decrypted), then by
name + birth date + gender + township for manual review. Partner records
missing from the register become clues for the township health centre;
status disagreements become entitlement tasks for the department that owns
the status; high-risk patients missing from the police list are listed for
police. All-or-nothing, and the same file twice is one run.
"""

from __future__ import annotations

import logging
from datetime import date

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import Organisation, OrganisationKind, Region, RegionLevel
from accounts.selectors import organisation_of
from audit.services import audit_record
from core.errors import DomainError
from core.models import TaskRun
from patients import rules as patient_rules
from patients.models import REGISTERED_STATUSES, IdType, Patient, id_number_index_for
from patients.selectors import id_indexes_on_register, patient_list_visible_to
from referrals import conf, roster, rules
from referrals.models import (
    EntitlementTask,
    ItemOutcome,
    PartnerDepartment,
    ReconciliationItem,
    ReconciliationRun,
    ReconciliationStatus,
    ReviewStatus,
    TaskStatus,
)
from referrals.selectors import (
    can_manage_in,
    entitlement_task_get_for_user,
    reconcile_partners_for,
    reconciliation_get_for_user,
    reconciliation_scope_region,
)
from referrals.tabular import TableError, clean_id_text, normalise_header, read_table

log = logging.getLogger(__name__)

ERR_NOT_ALLOWED = _("您无权上传该部门的名单进行比对。")
ERR_PARTNER = _("请选择比对部门。")
ERR_COLUMNS = _("名单至少须包含“身份证号”和“姓名”两列。")
ERR_REVIEWED = _("该条已核对。")
ERR_TASK_STATUS = _("请选择处理结果。")
ERR_TASK_DONE = _("该任务已处理。")

PARTNER_HEADERS: dict[str, tuple[str, ...]] = {
    "id_number": ("身份证号", "证件号码", "公民身份号码", "身份证号码"),
    "name": ("姓名",),
    "gender": ("性别",),
    "birth_date": ("出生日期",),
    "region": ("现住址区划代码", "区划代码", "乡镇代码", "乡镇(街道)代码", "所在乡镇代码"),
    "address": ("现住址", "住址", "地址"),
    "poverty": ("困难类别", "救助类别", "低保类别"),
    "certificate": ("残疾人证", "持证情况", "残疾证"),
    "certificate_grade": ("精神残疾等级", "残疾等级"),
    "rehab": ("参加社区康复", "社区康复"),
    "status": ("管理状态", "状态"),
}
GENDER_WORDS = {"男": "male", "女": "female", "male": "male", "female": "female"}

# who must act on a disagreement, by the organisation kind in the patient's area
TASK_ORGANISATION_KINDS = {
    "civil_affairs": (OrganisationKind.CIVIL_AFFAIRS_BUREAU,),
    "disabled_federation": (OrganisationKind.FEDERATION,),
    "police": (OrganisationKind.POLICE_STATION, OrganisationKind.POLICE_BUREAU),
}


def _columns(headers: list[str]) -> dict[str, str]:
    present = set(headers)
    out = {}
    for key, names in PARTNER_HEADERS.items():
        for name in names:
            if normalise_header(name) in present:
                out[key] = normalise_header(name)
                break
    return out


def reconciliation_run(
    *, by, partner: str, file_name: str, data: bytes, request=None
) -> ReconciliationRun:
    """Compare one uploaded list. Raises PermissionDenied, or DomainError
    naming ``partner`` or ``file`` (a failed run is recorded for the history)."""
    allowed = reconcile_partners_for(by)
    if not allowed:
        raise PermissionDenied(ERR_NOT_ALLOWED)
    if partner not in PartnerDepartment.values:
        raise DomainError(ERR_PARTNER, field="partner")
    if partner not in allowed:
        raise PermissionDenied(ERR_NOT_ALLOWED)
    region = reconciliation_scope_region(by)
    digest = rules.sha256_hex(data)
    previous = ReconciliationRun.objects.filter(
        region=region, partner=partner, sha256=digest, status=ReconciliationStatus.SUCCEEDED
    ).first()
    if previous is not None:
        audit_record(
            actor=by,
            action="reconciliation.replay",
            object_type="reconciliation",
            object_id=previous.pk,
            request=request,
        )
        return previous
    try:
        headers, rows = read_table(data, max_bytes=conf.get("REFERRALS_UPLOAD_MAX_BYTES"))
    except TableError as exc:
        _record_failure(by, region, partner, file_name, digest, exc.message)
        raise DomainError(exc.message, field="file") from exc
    columns = _columns(headers)
    if "id_number" not in columns or "name" not in columns:
        _record_failure(by, region, partner, file_name, digest, ERR_COLUMNS)
        raise DomainError(ERR_COLUMNS, field="file")
    try:
        with transaction.atomic():
            run = _reconcile(by, region, partner, file_name, digest, rows, columns)
    except IntegrityError:
        # the same file was reconciled concurrently: that run is the result
        return ReconciliationRun.objects.get(
            region=region, partner=partner, sha256=digest, status=ReconciliationStatus.SUCCEEDED
        )
    audit_record(
        actor=by,
        action="reconciliation.run",
        object_type="reconciliation",
        object_id=run.pk,
        detail={"partner": partner, **run.counts},
        request=request,
    )
    return run


def _record_failure(by, region, partner, file_name, digest, message) -> None:
    task = TaskRun.objects.create(
        job="referrals.reconciliation",
        key=digest,
        status=TaskRun.Status.FAILED,
        finished_at=timezone.now(),
        errors=[str(message)],
    )
    ReconciliationRun.objects.create(
        region=region,
        partner=partner,
        file_name=(file_name or "")[:200],
        sha256=digest,
        status=ReconciliationStatus.FAILED,
        counts={},
        errors=[str(message)],
        task_run=task,
        organisation=organisation_of(by),
        created_by=by,
    )


class _Row:
    __slots__ = ("number", "name", "id_type", "number_text", "index", "birth", "gender", "values")

    def __init__(self, number: int, raw: dict, columns: dict):
        self.number = number
        self.values = {k: raw.get(h, "").strip() for k, h in columns.items()}
        self.name = self.values.get("name", "")
        self.id_type = IdType.RESIDENT_ID
        self.number_text = clean_id_text(self.values.get("id_number", ""))
        self.index = ""
        self.birth: date | None = roster.parse_date(self.values.get("birth_date", ""))
        self.gender = GENDER_WORDS.get(self.values.get("gender", ""), "")
        try:
            rid = patient_rules.parse_resident_id(self.number_text, today=timezone.localdate())
        except patient_rules.IdNumberError:
            return
        self.number_text = rid.number
        self.birth = rid.birth_date
        self.gender = rid.gender
        self.index = id_number_index_for(IdType.RESIDENT_ID, rid.number)

    @property
    def township(self) -> str:
        code = self.values.get("region", "")
        return code[:9] if len(code) >= 9 and code.isdigit() else ""

    def data(self) -> dict:
        return {
            "region": self.values.get("region", ""),
            "gender": self.gender,
            "birth_date": self.birth.isoformat() if self.birth else "",
            "address": self.values.get("address", "")[:200],
        }


def _register_facts(p: Patient) -> dict:
    return {
        "poverty": p.poverty,
        "certificate": p.certificate,
        "certificate_grade": p.certificate_grade,
        "in_community_rehab": p.in_community_rehab,
        "police_registered": p.police_registered,
        "status": p.status,
    }


def _reconcile(by, region, partner, file_name, digest, raw_rows, columns) -> ReconciliationRun:
    from referrals.services.clues import ReconciliationClues

    task = TaskRun.objects.create(
        job="referrals.reconciliation", key=digest, total=len(raw_rows), progress=0
    )
    run = ReconciliationRun.objects.create(
        region=region,
        partner=partner,
        file_name=(file_name or "")[:200],
        sha256=digest,
        task_run=task,
        organisation=organisation_of(by),
        created_by=by,
    )
    register = patient_list_visible_to(user=by).filter(region__path__startswith=region.path)
    rows = [_Row(n, raw, columns) for n, raw in raw_rows]
    by_index = {
        p.id_number_index: p
        for p in register.filter(id_number_index__in=[r.index for r in rows if r.index])
    }
    # "Missing from the register" means missing from the whole register: a
    # person registered outside the user's scope (a county list uploaded by
    # a township) is no clue. Those rows are only counted — the uploader must
    # not learn which of the people they named are on the register elsewhere.
    elsewhere = id_indexes_on_register(r.index for r in rows if r.index not in by_index)
    unmatched = [r for r in rows if r.index not in by_index and r.index not in elsewhere]
    candidates = _fallback_candidates(register, unmatched)
    regions = {
        r.code: r
        for r in Region.objects.filter(
            code__in={x.values.get("region", "") for x in unmatched if x.values.get("region")}
            | {x.number_text[:6] for x in unmatched if x.index}
        )
    }
    places = _places(region) if "address" in columns and unmatched else {}
    # what the loop looks up, read once for the whole file (a constant number
    # of queries however many rows disagree or are missing from the register)
    tasks = _Tasks(run, by_index.values())
    clues = ReconciliationClues(
        run=run,
        by=by,
        indexes=[r.index for r in unmatched if r.index],
        region_codes=[*regions, region.code, *(r.code for rs in places.values() for r in rs)],
    )
    clue_items: list[ReconciliationItem] = []
    items: list[ReconciliationItem] = []
    counts = dict.fromkeys(
        (
            "rows",
            "matched",
            "missing_from_register",
            "status_disagreements",
            "high_risk_missing_from_partner",
            "needs_review",
            "invalid_rows",
            "clues_created",
            "tasks_created",
            "outside_scope",
            "duplicate_rows",
        ),
        0,
    )
    counts["rows"] = len(rows)
    seen_patients: set = set()
    first_row: dict[str, int] = {}  # blind index → the row that named the person first
    for row in rows:
        if row.index in first_row:
            # the same person twice in one file is compared (and counted) once
            counts["duplicate_rows"] += 1
            items.append(
                ReconciliationItem(
                    run=run,
                    row_number=row.number,
                    outcome=ItemOutcome.DUPLICATE,
                    name=row.name[:50],
                    id_number=row.number_text,
                    note=str(
                        _("与第%(row)d行的身份证号相同，只比对一次。")
                        % {"row": first_row[row.index]}
                    ),
                )
            )
            continue
        if row.index:
            first_row[row.index] = row.number
        patient = by_index.get(row.index) if row.index else None
        if patient is not None:
            counts["matched"] += 1
            seen_patients.add(patient.pk)
            found = rules.disagreements(partner, row.values, _register_facts(patient))
            counts["status_disagreements"] += len(found)
            for d in found:
                tasks.add(patient, d)
            items.append(
                ReconciliationItem(
                    run=run,
                    row_number=row.number,
                    outcome=ItemOutcome.MATCHED,
                    patient=patient,
                    name=row.name[:50],
                    id_number=row.number_text,
                    disagreements=[d.as_dict() for d in found],
                )
            )
            continue
        if row.index in elsewhere:
            counts["outside_scope"] += 1
            continue
        candidate = candidates.get((row.name, row.birth, row.gender, row.township))
        if candidate is not None and row.township:
            counts["needs_review"] += 1
            seen_patients.add(candidate.pk)
            items.append(
                ReconciliationItem(
                    run=run,
                    row_number=row.number,
                    outcome=ItemOutcome.REVIEW,
                    patient=candidate,
                    name=row.name[:50],
                    id_number=row.number_text[:32],
                    row_data=row.data(),
                    review_status=ReviewStatus.PENDING,
                    note=str(_("姓名、出生日期、性别和乡镇相同，身份证号不同或无效。")),
                )
            )
            continue
        if not row.index:
            counts["invalid_rows"] += 1
            items.append(
                ReconciliationItem(
                    run=run,
                    row_number=row.number,
                    outcome=ItemOutcome.INVALID,
                    name=row.name[:50],
                    id_number=row.number_text[:32],
                    row_data=row.data(),
                    note=str(_("身份证号无效，无法比对。")),
                )
            )
            continue
        counts["missing_from_register"] += 1
        clue_region = _clue_region(row, regions, places, region)
        clue, _new = clues.get(
            row_number=row.number,
            name=row.name or str(_("（未填姓名）")),
            id_type=row.id_type,
            number=row.number_text,
            index=row.index,
            data={
                "region": clue_region,
                "gender": row.gender,
                "birth_date": row.birth,
                "address": row.values.get("address", ""),
            },
        )
        item = ReconciliationItem(
            run=run,
            row_number=row.number,
            outcome=ItemOutcome.MISSING_FROM_REGISTER,
            name=row.name[:50],
            id_number=row.number_text,
            row_data=row.data(),
            clue=clue,
        )
        items.append(item)
        clue_items.append(item)
    if partner == PartnerDepartment.POLICE:
        high_risk = (
            register.filter(
                status__in=REGISTERED_STATUSES, risk_level__gte=settings.HIGH_RISK_MIN_LEVEL
            )
            .exclude(pk__in=seen_patients)
            .order_by("region_id", "name")
        )
        for patient in high_risk:
            counts["high_risk_missing_from_partner"] += 1
            items.append(
                ReconciliationItem(
                    run=run,
                    outcome=ItemOutcome.HIGH_RISK_MISSING,
                    patient=patient,
                    name=patient.name,
                    note=str(
                        _("危险性%(level)d级，未在公安名单中。") % {"level": patient.risk_level}
                    ),
                )
            )
    counts["tasks_created"] = tasks.save()
    counts["clues_created"] = clues.save()
    for item in clue_items:
        item.clue = clues.resolve(item.clue)
    ReconciliationItem.objects.bulk_create(items, batch_size=1000)
    run.counts = counts
    run.save(update_fields=["counts"])
    task.status = TaskRun.Status.SUCCEEDED
    task.progress = len(rows)
    task.counts = counts
    task.finished_at = timezone.now()
    task.save()
    return run


def _places(scope: Region) -> dict[str, list[Region]]:
    """The villages and townships of the county around ``scope`` (or of
    ``scope`` when it is wider), by level: partner addresses are matched
    against their names."""
    code = scope.county_code
    area = scope if code is None or code == scope.code else Region.objects.get(code=code)
    out: dict[str, list[Region]] = {RegionLevel.VILLAGE: [], RegionLevel.TOWNSHIP: []}
    for r in Region.objects.filter(path__startswith=area.path, level__in=list(out)).only(
        "code", "name", "level", "path"
    ):
        out[r.level].append(r)
    return out


def _place_named(address: str, places: dict[str, list[Region]]) -> Region | None:
    """The one village (else township) whose name the address contains; the
    longest name wins, a tie is no answer."""
    for level in (RegionLevel.VILLAGE, RegionLevel.TOWNSHIP):
        hits = [r for r in places.get(level, ()) if r.name and r.name in address]
        if not hits:
            continue
        longest = max(len(r.name) for r in hits)
        best = [r for r in hits if len(r.name) == longest]
        if len(best) == 1:
            return best[0]
    return None


def _clue_region(row: _Row, regions: dict, places: dict, scope: Region) -> Region:
    """Where the clue of a person missing from the register belongs, so it
    reaches the township health centre: the row's division code, else the
    village or township its address names, else the region of the ID
    number's address code when that is a current division inside the
    uploader's scope; otherwise the uploader's region (the clue then goes to
    the county prevention agency, clues.clue_assignee_for)."""
    coded = regions.get(row.values.get("region", ""))
    if coded is not None:
        return coded
    address = row.values.get("address", "")
    named = _place_named(address, places) if address else None
    if named is not None:
        return named
    born = regions.get(row.number_text[:6]) if row.index else None
    if born is not None and born.path.startswith(scope.path):
        return born
    return scope


def _fallback_candidates(register, rows) -> dict:
    """(name, birth date, gender, township) → the one patient with those, for
    rows not matched by ID number; ambiguous keys are left out."""
    names = {r.name for r in rows if r.name}
    if not names:
        return {}
    out: dict = {}
    ambiguous = set()
    for p in register.filter(name__in=names).only(
        "pk", "name", "birth_date", "gender", "region_id", "risk_level", "status"
    ):
        key = (p.name, p.birth_date, p.gender, p.region_id[:9])
        if key in out:
            ambiguous.add(key)
        out[key] = p
    for key in ambiguous:
        out.pop(key)
    return out


class _Tasks:
    """The entitlement tasks of one run: the open ones of the matched
    patients read once, the organisations that act on them read once, the
    new tasks inserted together by ``save`` (one open task per patient and
    kind, as before)."""

    def __init__(self, run: ReconciliationRun, patients):
        patients = list(patients)
        self.run = run
        self.open = set(
            EntitlementTask.objects.filter(
                patient_id__in=[p.pk for p in patients], status=TaskStatus.OPEN
            ).values_list("patient_id", "kind")
        )
        codes = {code for p in patients for code in (p.region_id[:9], p.region_id[:6])}
        kinds = {kind for kinds in TASK_ORGANISATION_KINDS.values() for kind in kinds}
        self.organisations: dict[tuple[str, str], Organisation] = {}
        if patients:
            for org in Organisation.objects.filter(
                kind__in=kinds, region_id__in=codes, is_active=True
            ).order_by("pk"):
                self.organisations.setdefault((org.kind, org.region_id), org)
        self.new: list[tuple[Patient, rules.Disagreement]] = []

    def add(self, patient: Patient, d: rules.Disagreement) -> None:
        key = (patient.pk, d.kind)
        if key in self.open:
            return
        self.open.add(key)
        self.new.append((patient, d))

    def _organisation_id(self, patient: Patient, department: str):
        if department == "health":
            return patient.managing_organisation_id
        township, county = patient.region_id[:9], patient.region_id[:6]
        for kind in TASK_ORGANISATION_KINDS.get(department, ()):
            for code in (township, county):
                org = self.organisations.get((kind, code))
                if org is not None:
                    return org.pk
        return None

    def save(self) -> int:
        """Insert the new tasks; returns how many were made. Should another
        run have opened one of them meanwhile, they are made one by one."""
        if not self.new:
            return 0
        objs = [
            EntitlementTask(
                patient=patient,
                kind=d.kind,
                department=d.department,
                organisation_id=self._organisation_id(patient, d.department),
                partner_value=d.partner_value,
                register_value=d.register_value,
                run=self.run,
            )
            for patient, d in self.new
        ]
        try:
            with transaction.atomic():
                EntitlementTask.objects.bulk_create(objs, batch_size=1000)
        except IntegrityError:
            return sum(_task_for(patient, d, self.run) for patient, d in self.new)
        return len(objs)


def _task_organisation(patient: Patient, department: str) -> Organisation | None:
    if department == "health":
        return patient.managing_organisation
    kinds = TASK_ORGANISATION_KINDS.get(department, ())
    township, county = patient.region_id[:9], patient.region_id[:6]
    for kind in kinds:
        for code in (township, county):
            org = (
                Organisation.objects.filter(kind=kind, region_id=code, is_active=True)
                .order_by("pk")
                .first()
            )
            if org is not None:
                return org
    return None


def _task_for(patient: Patient, d: rules.Disagreement, run: ReconciliationRun) -> int:
    """An open entitlement task for this patient and kind (one at a time)."""
    if EntitlementTask.objects.filter(
        patient=patient, kind=d.kind, status=TaskStatus.OPEN
    ).exists():
        return 0
    try:
        with transaction.atomic():
            EntitlementTask.objects.create(
                patient=patient,
                kind=d.kind,
                department=d.department,
                organisation=_task_organisation(patient, d.department),
                partner_value=d.partner_value,
                register_value=d.register_value,
                run=run,
            )
    except IntegrityError:
        return 0
    return 1


def reconciliation_review(*, run_id, item_id, by, same_person: bool, request=None):
    """Manual review of a name + birth date + gender + township match: the
    same person (nothing more to do) or another person (→ a clue)."""
    # scope first, outside the transaction: the audit row of a denied
    # access must survive the 404 (a rollback would erase it)
    reconciliation_get_for_user(user=by, pk=run_id, request=request)
    return _reconciliation_review(
        run_id=run_id, item_id=item_id, by=by, same_person=same_person, request=request
    )


@transaction.atomic
def _reconciliation_review(*, run_id, item_id, by, same_person: bool, request=None):
    """Manual review of a name + birth date + gender + township match: the
    same person (nothing more to do) or another person (→ a clue)."""
    from referrals.services.clues import clue_from_reconciliation

    run = reconciliation_get_for_user(user=by, pk=run_id, request=request)
    item = (
        ReconciliationItem.objects.select_for_update(of=("self",))
        .filter(run=run, pk=item_id, outcome=ItemOutcome.REVIEW)
        .select_related("patient__region")
        .first()
    )
    if item is None or not can_manage_in(by, item.patient.region):
        raise PermissionDenied(ERR_NOT_ALLOWED)
    if item.review_status != ReviewStatus.PENDING:
        raise DomainError(ERR_REVIEWED)
    item.reviewed_by = by
    item.reviewed_at = timezone.now()
    if same_person:
        item.review_status = ReviewStatus.SAME_PERSON
    else:
        item.review_status = ReviewStatus.DIFFERENT_PERSON
        data = item.row_data
        region = Region.objects.filter(code=data.get("region") or "").first() or run.region
        number = item.id_number
        index = (
            id_number_index_for(IdType.RESIDENT_ID, number)
            if number
            else f"row:{run.pk}:{item.row_number}"
        )
        clue, _created = clue_from_reconciliation(
            run=run,
            row_number=item.row_number or 0,
            name=item.name,
            id_type=IdType.RESIDENT_ID if number else IdType.OTHER,
            number=number,
            index=index,
            data={
                "region": region,
                "gender": data.get("gender", ""),
                "birth_date": date.fromisoformat(data["birth_date"])
                if data.get("birth_date")
                else None,
                "address": data.get("address", ""),
            },
            by=by,
        )
        item.clue = clue
    item.save(update_fields=["review_status", "reviewed_by", "reviewed_at", "clue"])
    audit_record(
        actor=by,
        action="reconciliation.review",
        object_type="reconciliation",
        object_id=run.pk,
        detail={"item": item.pk, "same_person": same_person},
        request=request,
    )
    return item


def entitlement_task_resolve(*, task_id, by, request=None, **kwargs):
    """The owning department resolves (or dismisses) a disagreement task."""
    # scope first, outside the transaction: the audit row of a denied
    # access must survive the 404 (a rollback would erase it)
    entitlement_task_get_for_user(user=by, pk=task_id, request=request)
    return _entitlement_task_resolve(task_id=task_id, by=by, request=request, **kwargs)


@transaction.atomic
def _entitlement_task_resolve(*, task_id, by, status: str, note: str = "", request=None):
    task = entitlement_task_get_for_user(user=by, pk=task_id, lock=True, request=request)
    if task.status != TaskStatus.OPEN:
        raise DomainError(ERR_TASK_DONE)
    if status not in (TaskStatus.RESOLVED, TaskStatus.DISMISSED):
        raise DomainError(ERR_TASK_STATUS, field="status")
    task.status = status
    task.note = (note or "")[:200]
    task.resolved_by = by
    task.resolved_at = timezone.now()
    task.save(update_fields=["status", "note", "resolved_by", "resolved_at"])
    audit_record(
        actor=by,
        action="entitlement_task.resolve",
        object_type="patient",
        object_id=task.patient_id,
        detail={"task": str(task.pk), "status": status},
        request=request,
    )
    return task
