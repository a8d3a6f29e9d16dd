"""Writes to the patient register. Each service is one transaction, stamps
history with the acting user and a reason code, and audits the write."""

from __future__ import annotations

from datetime import date

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import Organisation, OrganisationKind, Region, RegionLevel
from accounts.roles import MANAGE_PATIENTS, fieldset_of
from accounts.scoping import region_in_scope
from audit.services import audit_record, audit_record_batch, audit_record_many
from core.errors import DomainError, StaleVersion
from core.history import history_stamp
from patients import rules
from patients.fieldsets import WRITABLE
from patients.models import (
    AssistantGuardian,
    CareTeamMember,
    Guardian,
    IdType,
    Patient,
    id_number_index_for,
)
from patients.selectors import can_manage_patient, patient_get_for_user

ERR_DUPLICATE = _("该证件号码已登记，同一证件号码只能登记一名患者。")
ERR_REGION_LEVEL = _("现住址区划须选到村（居）委会一级。")
ERR_REGION_SCOPE = _("该区划不在您的管辖范围内。")
ERR_BIRTH_MISMATCH = _("出生日期与身份证号不一致。")
ERR_GENDER_MISMATCH = _("性别与身份证号不一致。")
ERR_STALE = _("该记录已被他人修改，请刷新后重新填写。")
ERR_NOT_ALLOWED = _("您无权修改此项。")
ERR_BIRTH_FUTURE = _("出生日期不能晚于今天。")
ERR_ID_REQUIRED = _("请填写证件号码。")
ERR_BIRTH_REQUIRED = _("非居民身份证须填写出生日期。")
ERR_GENDER_REQUIRED = _("非居民身份证须填写性别。")


def _id_error(message) -> DomainError:
    """``message``: a rules.ERR_* text (marked with gettext_noop), translated here."""
    return DomainError(_(message), field="id_number")


def check_identity(
    *, id_type: str, id_number: str, birth_date: date | None, gender: str | None
) -> tuple[str, date | None, str | None]:
    """Validate a document number; for resident IDs derive and compare birth
    date and gender. Returns (normalised number, birth date, gender)."""
    if id_type == IdType.RESIDENT_ID:
        try:
            rid = rules.parse_resident_id(id_number, today=timezone.localdate())
        except rules.IdNumberError as exc:
            raise _id_error(exc.message) from exc
        if birth_date and birth_date != rid.birth_date:
            raise DomainError(ERR_BIRTH_MISMATCH, field="birth_date")
        if gender and gender != rid.gender:
            raise DomainError(ERR_GENDER_MISMATCH, field="gender")
        return rid.number, rid.birth_date, rid.gender
    number = rules.normalize_id_number(id_type, id_number)
    if not number:
        raise DomainError(ERR_ID_REQUIRED, field="id_number")
    # only a resident ID carries birth date and gender: other documents
    # (API callers included) must state them
    if not birth_date:
        raise DomainError(ERR_BIRTH_REQUIRED, field="birth_date")
    if birth_date > timezone.localdate():
        raise DomainError(ERR_BIRTH_FUTURE, field="birth_date")
    if not gender:
        raise DomainError(ERR_GENDER_REQUIRED, field="gender")
    return number, birth_date, gender


def managing_organisation_for(region: Region) -> Organisation | None:
    """The health centre of the township containing ``region``.

    Statistical division codes nest by prefix below the county: a village's
    first nine digits are its township's code.
    """
    return (
        Organisation.objects.filter(
            kind=OrganisationKind.HEALTH_CENTRE, region_id=region.code[:9], is_active=True
        )
        .order_by("pk")
        .first()
    )


def managing_organisations_for(codes) -> dict[str, Organisation]:
    """``managing_organisation_for`` of many regions at once (one query):
    township code → its health centre, for the townships of ``codes``."""
    townships = {code[:9] for code in codes}
    out: dict[str, Organisation] = {}
    for org in Organisation.objects.filter(
        kind=OrganisationKind.HEALTH_CENTRE, region_id__in=townships, is_active=True
    ).order_by("pk"):
        out.setdefault(org.region_id, org)
    return out


def _check_region(user, region: Region) -> None:
    if region.level != RegionLevel.VILLAGE:
        raise DomainError(ERR_REGION_LEVEL, field="region")
    if not region_in_scope(user, MANAGE_PATIENTS, region):
        raise DomainError(ERR_REGION_SCOPE, field="region")


GUARDIAN_FIELDS = ("name", "relation", "phone", "address", "responsibility_letter")


def _save_guardian(patient: Patient, data: dict | None, *, by, reason: str) -> None:
    if data is None:
        return
    guardian = Guardian.objects.filter(patient=patient).first() or Guardian(patient=patient)
    for key in GUARDIAN_FIELDS:
        if key in data:
            setattr(guardian, key, data[key] if data[key] is not None else "")
    if "responsibility_letter_date" in data:
        guardian.responsibility_letter_date = data["responsibility_letter_date"] or None
    if not guardian.name:
        return
    guardian.full_clean(exclude=["patient"])
    history_stamp(guardian, user=by, reason=reason)
    guardian.save()


@transaction.atomic
def patient_register(*, by, data: dict, request=None) -> Patient:
    """Register a patient, its first follow-up due ``FIRST_FOLLOWUP_DAYS``
    after ``registered_on``. Raises DomainError naming the field on bad input."""
    if fieldset_of(by) != "health":
        raise DomainError(ERR_NOT_ALLOWED)
    data = dict(data)
    guardian = data.pop("guardian", None)
    assistants = data.pop("assistant_guardians", None)
    region = data["region"]
    _check_region(by, region)
    id_type = data.get("id_type") or IdType.RESIDENT_ID
    number, birth, gender = check_identity(
        id_type=id_type,
        id_number=data.get("id_number", ""),
        birth_date=data.get("birth_date"),
        gender=data.get("gender"),
    )
    index = id_number_index_for(id_type, number)
    if Patient.objects.filter(id_number_index=index).exists():
        raise DomainError(ERR_DUPLICATE, field="id_number")
    allowed = set(WRITABLE["health"])
    fields = {k: v for k, v in data.items() if k in allowed}
    fields.update(
        id_type=id_type,
        id_number=number,
        id_number_index=index,
        birth_date=birth,
        gender=gender,
        managing_organisation=managing_organisation_for(region),
        created_by=by,
        supplement_doctor=by if data.get("supplement_filled_on") else None,
    )
    patient = Patient(**fields)
    # the first follow-up is due from registration: a patient never followed
    # up must still become overdue (patients.selectors.overdue_q)
    if patient.registered_on:
        patient.next_followup_due = rules.first_followup_due(
            patient.registered_on, settings.FIRST_FOLLOWUP_DAYS
        )
    patient.full_clean(exclude=["id_number_index"])
    history_stamp(patient, user=by, reason="patient.registered")
    try:
        with transaction.atomic():
            patient.save(force_insert=True)
    except IntegrityError as exc:  # a concurrent registration of the same ID
        raise DomainError(ERR_DUPLICATE, field="id_number") from exc
    _save_guardian(patient, guardian, by=by, reason="patient.registered")
    if assistants:
        assistant_guardians_set(patient=patient, rows=assistants, by=by)
    audit_record(
        actor=by,
        action="patient.create",
        object_type="patient",
        object_id=patient.pk,
        request=request,
    )
    return patient


class RowRefused(DomainError):
    """``patient_register_many`` refused row ``index`` (0-based position in
    the rows given); ``message`` and ``field`` say why."""

    def __init__(self, index: int, error: DomainError):
        super().__init__(error.message, field=error.field, code=error.code)
        self.index = index


# Foreign keys filled from lookups the bulk path has already made: validating
# them again would cost one query per key and row.
_BULK_CLEAN_EXCLUDE = [
    "id_number_index",
    "region",
    "household_region",
    "managing_organisation",
    "created_by",
    "supplement_doctor",
]


@transaction.atomic
def patient_register_many(*, by, rows: list[dict], on_progress=None, batch_size: int = 500) -> int:
    """Register many patients at once (a roster import) — all or nothing.

    Every row gets the checks of ``patient_register`` (region in the user's
    scope, identity, one patient per ID number, the model's validation)
    before anything is written; the first refused row raises RowRefused
    naming it. Then the patients and their guardians are inserted in batches
    with their history rows ("patient.registered", by the user), each
    patient gets its audit row, and ``on_progress(done)`` is called after
    each batch. Rows are the ``patient_register`` data (with ``guardian``)."""
    from simple_history.utils import bulk_create_with_history

    from patients.selectors import id_indexes_on_register

    if fieldset_of(by) != "health":
        raise DomainError(ERR_NOT_ALLOWED)
    history_user = by if getattr(by, "is_authenticated", False) else None
    allowed = set(WRITABLE["health"])
    centres: dict[str, Organisation | None] = {}
    built: list[tuple[Patient, Guardian | None]] = []
    first_row: dict[str, int] = {}
    for i, data in enumerate(rows):
        try:
            patient, guardian = _patient_for_bulk(by, dict(data), allowed, centres)
        except DomainError as exc:
            raise RowRefused(i, exc) from exc
        if patient.id_number_index in first_row:
            raise RowRefused(i, DomainError(ERR_DUPLICATE, field="id_number"))
        first_row[patient.id_number_index] = i
        built.append((patient, guardian))
    taken = id_indexes_on_register(first_row)
    if taken:
        first = min(first_row[index] for index in taken)
        raise RowRefused(first, DomainError(ERR_DUPLICATE, field="id_number"))
    for start in range(0, len(built), batch_size):
        chunk = built[start : start + batch_size]
        try:
            with transaction.atomic():
                bulk_create_with_history(
                    [p for p, _g in chunk],
                    Patient,
                    batch_size=batch_size,
                    default_user=history_user,
                    default_change_reason="patient.registered",
                )
        except IntegrityError as exc:  # a concurrent registration of one of the IDs
            raise DomainError(ERR_DUPLICATE, field="id_number") from exc
        guardians = [g for _p, g in chunk if g is not None]
        if guardians:
            bulk_create_with_history(
                guardians,
                Guardian,
                batch_size=batch_size,
                default_user=history_user,
                default_change_reason="patient.registered",
            )
        if on_progress is not None:
            on_progress(start + len(chunk))
    audit_record_many(
        actor=by,
        action="patient.create",
        object_type="patient",
        object_ids=[p.pk for p, _g in built],
    )
    return len(built)


def _patient_for_bulk(
    by, data: dict, allowed: set, centres: dict
) -> tuple[Patient, Guardian | None]:
    """One row of ``patient_register_many``: checked and built, not saved."""
    guardian = data.pop("guardian", None)
    if data.pop("assistant_guardians", None):
        raise ValueError("patient_register_many does not take assistant guardians")
    region = data["region"]
    _check_region(by, region)
    id_type = data.get("id_type") or IdType.RESIDENT_ID
    number, birth, gender = check_identity(
        id_type=id_type,
        id_number=data.get("id_number", ""),
        birth_date=data.get("birth_date"),
        gender=data.get("gender"),
    )
    township = region.code[:9]
    if township not in centres:
        centres[township] = managing_organisation_for(region)
    fields = {k: v for k, v in data.items() if k in allowed}
    fields.update(
        id_type=id_type,
        id_number=number,
        id_number_index=id_number_index_for(id_type, number),
        birth_date=birth,
        gender=gender,
        managing_organisation=centres[township],
        created_by=by,
        supplement_doctor=by if data.get("supplement_filled_on") else None,
    )
    patient = Patient(**fields)
    _clean(patient, exclude=_BULK_CLEAN_EXCLUDE, validate_constraints=False)
    if not (guardian and guardian.get("name")):
        return patient, None
    row = Guardian(patient=patient)
    for key in GUARDIAN_FIELDS:
        if key in guardian:
            setattr(row, key, guardian[key] if guardian[key] is not None else "")
    if guardian.get("responsibility_letter_date"):
        row.responsibility_letter_date = guardian["responsibility_letter_date"]
    _clean(row, exclude=["patient"], prefix="guardian_")
    return patient, row


def _clean(instance, *, exclude, prefix: str = "", **kwargs) -> None:
    """``full_clean`` without the uniqueness queries; the first problem as a
    DomainError naming its field (``prefix`` + field name)."""
    try:
        instance.full_clean(exclude=exclude, validate_unique=False, **kwargs)
    except ValidationError as exc:
        field, messages = next(iter(exc.message_dict.items()))
        raise DomainError(messages[0], field=f"{prefix}{field}") from exc


@transaction.atomic
def patient_update(
    *, by, pk, data: dict, expected_version: int | None, reason: str = "", request=None
) -> Patient:
    """Update the fields the user's department may write.

    ``expected_version`` is the version the user read; a mismatch raises
    StaleVersion (HTTP 412 / a message on the form). Region changes go
    through a transfer referral, not here.
    """
    patient = patient_get_for_user(user=by, pk=pk, lock=True, request=request)
    fieldset = fieldset_of(by)
    allowed = set(WRITABLE.get(fieldset or "", ())) - {"region"}
    data = dict(data)
    guardian = data.pop("guardian", None) if "guardian" in allowed else None
    assistants = data.pop("assistant_guardians", None) if "assistant_guardians" in allowed else None
    refused = set(data) - allowed - {"guardian", "assistant_guardians"}
    if "region" in data and data["region"] != patient.region:
        raise DomainError(_("现住址变更请通过转诊（迁移）办理。"), field="region")
    refused.discard("region")
    if refused:
        raise DomainError(ERR_NOT_ALLOWED, field=sorted(refused)[0])
    if fieldset == "health" and not region_in_scope(by, MANAGE_PATIENTS, patient.region):
        raise DomainError(ERR_NOT_ALLOWED)
    if expected_version is not None and expected_version != patient.version:
        raise StaleVersion(ERR_STALE)
    if {"id_number", "id_type", "birth_date", "gender"} & set(data):
        id_type = data.get("id_type", patient.id_type)
        number, birth, gender = check_identity(
            id_type=id_type,
            id_number=data.get("id_number", patient.id_number),
            birth_date=data.get("birth_date", patient.birth_date),
            gender=data.get("gender", patient.gender),
        )
        index = id_number_index_for(id_type, number)
        if Patient.objects.filter(id_number_index=index).exclude(pk=patient.pk).exists():
            raise DomainError(ERR_DUPLICATE, field="id_number")
        data.update(id_number=number, birth_date=birth, gender=gender)
        patient.id_number_index = index
    changed = []
    for key, value in data.items():
        if getattr(patient, key) != value:
            setattr(patient, key, value)
            changed.append(key)
    if changed or guardian is not None or assistants is not None:
        patient.version += 1
        patient.full_clean(exclude=["id_number_index"])
        history_stamp(patient, user=by, reason=reason or "patient.updated")
        patient.save()
        _save_guardian(patient, guardian, by=by, reason="patient.updated")
        if assistants is not None:
            assistant_guardians_set(patient=patient, rows=assistants, by=by)
        audit_record(
            actor=by,
            action="patient.update",
            object_type="patient",
            object_id=patient.pk,
            detail={"fields": sorted(changed)},
            request=request,
        )
    return patient


def assistant_guardians_set(*, patient: Patient, rows: list[dict], by) -> None:
    """Replace the assistant guardians with ``rows`` (name, relation, phone)."""
    existing = list(AssistantGuardian.objects.filter(patient=patient))
    for ag in existing:
        history_stamp(ag, user=by, reason="guardian.assistant_removed")
        ag.delete()
    for row in rows:
        if not (row.get("name") or "").strip():
            continue
        ag = AssistantGuardian(
            patient=patient,
            name=row["name"].strip(),
            relation=row.get("relation", ""),
            phone=row.get("phone", ""),
        )
        ag.full_clean(exclude=["patient"])
        history_stamp(ag, user=by, reason="guardian.assistant_set")
        ag.save()


@transaction.atomic
def care_team_add(*, patient_id, by, role: str, name: str, phone: str = "", user=None):
    patient = patient_get_for_user(user=by, pk=patient_id, lock=True)
    if not can_manage_patient(by, patient):
        raise DomainError(ERR_NOT_ALLOWED)
    member = CareTeamMember(patient=patient, role=role, name=name, phone=phone, user=user)
    member.full_clean(exclude=["patient"])
    history_stamp(member, user=by, reason="careteam.added")
    member.save()
    audit_record(
        actor=by,
        action="patient.update",
        object_type="patient",
        object_id=patient.pk,
        detail={"care_team": "added"},
    )
    return member


@transaction.atomic
def care_team_remove(*, patient_id, member_id, by) -> None:
    patient = patient_get_for_user(user=by, pk=patient_id, lock=True)
    if not can_manage_patient(by, patient):
        raise DomainError(ERR_NOT_ALLOWED)
    member = CareTeamMember.objects.get(pk=member_id, patient=patient)
    history_stamp(member, user=by, reason="careteam.removed")
    member.delete()
    audit_record(
        actor=by,
        action="patient.update",
        object_type="patient",
        object_id=patient.pk,
        detail={"care_team": "removed"},
    )


def patient_record_view(*, user, patient: Patient, request=None, action: str = "patient.view"):
    """Append a read of one patient record to the audit log."""
    audit_record(
        actor=user, action=action, object_type="patient", object_id=patient.pk, request=request
    )


def patient_records_listed(
    *, user, patient_ids, request=None, action: str = "patient.list", detail=None
) -> int:
    """Append one audit row per patient a page or API list showed (names,
    ID numbers …) — one bulk insert. Lists count towards the unusual-access
    alert like the record itself (audit.services.PATIENT_READ_ACTIONS)."""
    ids = list(dict.fromkeys(str(pk) for pk in patient_ids if pk is not None))
    return audit_record_many(
        actor=user,
        action=action,
        object_type="patient",
        object_ids=ids,
        detail=detail,
        request=request,
    )


def _search_row(term: str, count: int) -> tuple:
    from core.crypto import blind_index

    detail = (
        {"term_hash": blind_index(term, purpose="audit-search")[:16], "results": count}
        if term
        else {"results": count}
    )
    return ("patient.search", "patient", "", detail)


def patient_record_search(
    *, user, term: str, count: int, request=None, listed=(), list_action: str = "patient.list"
) -> None:
    """Audit a search; the term itself is stored as a keyed hash, never in
    clear. ``listed``: the patients the answer shows, one read row each
    (``patient_records_listed``), written with the search in one insert."""
    rows = [_search_row(term, count)]
    rows += [
        (list_action, "patient", pk, None) for pk in dict.fromkeys(str(p) for p in listed if p)
    ]
    audit_record_batch(actor=user, rows=rows, request=request)


@transaction.atomic
def patient_transfer(*, patient_id, to_region: Region, by, reason: str) -> Patient:
    """Move a patient to another village (other township or county): the
    receiving township's health centre becomes the managing organisation.
    Called by the ``transfer`` referral on acceptance; history is kept.

    Scope is checked by the caller (the referral); the lock prevents a
    concurrent edit from writing back the old region.
    """
    if to_region.level != RegionLevel.VILLAGE:
        raise DomainError(ERR_REGION_LEVEL, field="region")
    patient = Patient.objects.select_for_update().get(pk=patient_id)
    patient.region = to_region
    patient.managing_organisation = managing_organisation_for(to_region)
    patient.version += 1
    history_stamp(patient, user=by, reason=reason or "patient.transferred")
    patient.save(update_fields=["region", "managing_organisation", "version", "updated_at"])
    audit_record(
        actor=by,
        action="patient.transfer",
        object_type="patient",
        object_id=patient.pk,
        detail={"to_region": to_region.code},
    )
    return patient
