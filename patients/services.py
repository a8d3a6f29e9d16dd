"""Writes to the patient register. Each service is one transaction, stamps
history with the acting user and a reason code, and audits the write."""

from __future__ import annotations

from datetime import date

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import Organisation, OrganisationKind, Region, RegionLevel
from accounts.roles import MANAGE_PATIENTS, fieldset_of
from accounts.scoping import region_in_scope
from audit.services import audit_record
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


def _id_error(message: str) -> DomainError:
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
        raise _id_error("请填写证件号码。")
    if birth_date and birth_date > timezone.localdate():
        raise DomainError(ERR_BIRTH_FUTURE, field="birth_date")
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


def patient_record_search(*, user, term: str, count: int, request=None) -> None:
    """Audit a search; the term itself is stored as a keyed hash, never in clear."""
    from core.crypto import blind_index

    audit_record(
        actor=user,
        action="patient.search",
        object_type="patient",
        detail={"term_hash": blind_index(term, purpose="audit-search")[:16], "results": count}
        if term
        else {"results": count},
        request=request,
    )


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
