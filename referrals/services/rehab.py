"""Community rehabilitation: institutions, enrolment, sessions and
attendance; the patient's ``in_community_rehab`` flag follows enrolment."""

from __future__ import annotations

from datetime import date

from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import Organisation, OrganisationKind, Region, RegionLevel
from accounts.selectors import organisation_of
from audit.services import audit_record
from core.errors import DomainError
from core.history import history_stamp
from patients.models import REGISTERED_STATUSES, Patient
from patients.selectors import can_manage_patient, patient_get_for_user
from referrals.models import (
    EnrolmentEndReason,
    EnrolmentStatus,
    RehabAttendance,
    RehabEnrolment,
    RehabInstitution,
    RehabService,
    RehabSession,
)
from referrals.selectors import (
    acts_for,
    can_manage_rehab,
    rehab_enrolment_get_for_user,
    rehab_institution_get_for_user,
)

ERR_NOT_ALLOWED = _("您无权办理此项。")
ERR_REGION = _("康复机构须设在您单位辖区内的乡镇或县。")
ERR_NAME_TAKEN = _("该辖区已有同名机构。")
ERR_PLACES = _("康复名额须为正整数。")
ERR_SERVICES = _("请至少选择一项服务。")
ERR_NO_PLACES = _("该康复机构名额已满。")
ERR_ALREADY_ENROLLED = _("该患者已在社区康复中，请先结束原入组。")
ERR_CONSENT = _("参加社区康复须经患者本人和监护人同意。")
ERR_NOT_REGISTERED = _("该患者已不在册。")
ERR_INACTIVE = _("该康复机构已停用。")
ERR_ENDED = _("该入组已结束。")
ERR_END_REASON = _("请选择结束原因。")
ERR_SESSION_ENROLMENT = _("出勤名单中有不属于本机构在训人员的记录。")


def _check_institution_fields(*, places: int, services: list[str]) -> None:
    if places is None or places < 1:
        raise DomainError(ERR_PLACES, field="places")
    if not services or any(s not in RehabService.values for s in services):
        raise DomainError(ERR_SERVICES, field="services")


@transaction.atomic
def rehab_institution_create(
    *,
    name: str,
    region: Region,
    places: int,
    services: list[str],
    by,
    address: str = "",
    contact_name: str = "",
    contact_phone: str = "",
) -> RehabInstitution:
    """Register an institution run by the user's department in their area."""
    org = organisation_of(by)
    if not can_manage_rehab(by) or org is None:
        raise PermissionDenied(ERR_NOT_ALLOWED)
    if region.level not in (RegionLevel.COUNTY, RegionLevel.TOWNSHIP) or not region.path.startswith(
        org.region.path
    ):
        raise DomainError(ERR_REGION, field="region")
    _check_institution_fields(places=places, services=services)
    if Organisation.objects.filter(region=region, name=name.strip()).exists():
        raise DomainError(ERR_NAME_TAKEN, field="name")
    organisation = Organisation(
        name=name.strip(),
        department=org.department,
        kind=OrganisationKind.REHAB_INSTITUTION,
        region=region,
        phone=contact_phone,
    )
    organisation.full_clean()
    history_stamp(organisation, user=by, reason="rehab.institution_created")
    organisation.save()
    institution = RehabInstitution(
        organisation=organisation,
        places=places,
        services=list(services),
        address=address,
        contact_name=contact_name,
        contact_phone=contact_phone,
    )
    institution.full_clean()
    history_stamp(institution, user=by, reason="rehab.institution_created")
    institution.save()
    _forget_acting(by)
    return institution


def _forget_acting(user) -> None:
    user.__dict__.pop("_referrals_cache", None)


def rehab_institution_update(*, institution_id, by, **kwargs):
    """Change an institution's places, services, contacts or activity."""
    # scope first, outside the transaction: the audit row of a denied
    # access must survive the 404 (a rollback would erase it)
    rehab_institution_get_for_user(user=by, pk=institution_id)
    return _rehab_institution_update(institution_id=institution_id, by=by, **kwargs)


@transaction.atomic
def _rehab_institution_update(
    *,
    institution_id,
    by,
    places: int,
    services: list[str],
    address: str = "",
    contact_name: str = "",
    contact_phone: str = "",
    is_active: bool = True,
) -> RehabInstitution:
    institution = rehab_institution_get_for_user(user=by, pk=institution_id)
    if not (can_manage_rehab(by) and acts_for(by, institution.organisation_id)):
        raise PermissionDenied(ERR_NOT_ALLOWED)
    institution = RehabInstitution.objects.select_for_update().get(pk=institution.pk)
    _check_institution_fields(places=places, services=services)
    institution.places = places
    institution.services = list(services)
    institution.address = address
    institution.contact_name = contact_name
    institution.contact_phone = contact_phone
    institution.is_active = is_active
    institution.full_clean()
    history_stamp(institution, user=by, reason="rehab.institution_updated")
    institution.save()
    return institution


def sync_rehab_flag(patient: Patient, *, by) -> None:
    """Set ``in_community_rehab`` from whether an active enrolment exists.

    The patient row must be locked by the caller. The flag is not writable
    through the patient form (patients.fieldsets.WRITABLE): it follows
    enrolment, here, in the same transaction.
    """
    active = RehabEnrolment.objects.filter(patient=patient, status=EnrolmentStatus.ACTIVE).exists()
    if patient.in_community_rehab == active:
        return
    patient.in_community_rehab = active
    patient.version += 1
    history_stamp(patient, user=by, reason="rehab.enrolled" if active else "rehab.ended")
    patient.save(update_fields=["in_community_rehab", "version", "updated_at"])


def enrol_locked(
    *,
    patient: Patient,
    institution: RehabInstitution,
    by,
    patient_consent: bool,
    guardian_consent: bool,
    consent_date: date | None = None,
    started_on: date | None = None,
    referral=None,
) -> RehabEnrolment:
    """Take a place for a locked patient (callers have checked scope)."""
    if not (patient_consent and guardian_consent):
        raise DomainError(ERR_CONSENT, field="guardian_consent")
    if patient.status not in REGISTERED_STATUSES:
        raise DomainError(ERR_NOT_REGISTERED)
    # the institution row is the lock that serialises places
    institution = RehabInstitution.objects.select_for_update().get(pk=institution.pk)
    if not institution.is_active:
        raise DomainError(ERR_INACTIVE, field="institution")
    if RehabEnrolment.objects.filter(patient=patient, status=EnrolmentStatus.ACTIVE).exists():
        raise DomainError(ERR_ALREADY_ENROLLED)
    taken = RehabEnrolment.objects.filter(
        institution=institution, status=EnrolmentStatus.ACTIVE
    ).count()
    if taken >= institution.places:
        raise DomainError(ERR_NO_PLACES, field="institution")
    today = timezone.localdate()
    enrolment = RehabEnrolment(
        patient=patient,
        institution=institution,
        started_on=started_on or today,
        patient_consent=True,
        guardian_consent=True,
        consent_date=consent_date or today,
        referral=referral,
        created_by=by,
    )
    enrolment.full_clean(exclude=["patient", "institution", "referral"])
    history_stamp(enrolment, user=by, reason="rehab.enrolled")
    try:
        with transaction.atomic():
            enrolment.save(force_insert=True)
    except IntegrityError as exc:
        raise DomainError(ERR_ALREADY_ENROLLED) from exc
    sync_rehab_flag(patient, by=by)
    audit_record(
        actor=by,
        action="rehab.enrol",
        object_type="patient",
        object_id=patient.pk,
        detail={"institution": institution.pk},
    )
    return enrolment


def rehab_enrol(*, patient_id, institution_id, by, request=None, **kwargs):
    """Enrol a patient directly (without a referral): by the institution's
    department or by health staff managing the patient."""
    # scope first, outside the transaction: the audit row of a denied
    # access must survive the 404 (a rollback would erase it)
    rehab_institution_get_for_user(user=by, pk=institution_id, request=request)
    patient_get_for_user(user=by, pk=patient_id, request=request)
    return _rehab_enrol(
        patient_id=patient_id, institution_id=institution_id, by=by, request=request, **kwargs
    )


@transaction.atomic
def _rehab_enrol(
    *,
    patient_id,
    institution_id,
    by,
    patient_consent: bool,
    guardian_consent: bool,
    consent_date: date | None = None,
    started_on: date | None = None,
    request=None,
) -> RehabEnrolment:
    """Enrol a patient directly (without a referral): by the institution's
    department or by health staff managing the patient."""
    institution = rehab_institution_get_for_user(user=by, pk=institution_id, request=request)
    patient = patient_get_for_user(user=by, pk=patient_id, lock=True, request=request)
    if not (acts_for(by, institution.organisation_id) or can_manage_patient(by, patient)):
        raise PermissionDenied(ERR_NOT_ALLOWED)
    return enrol_locked(
        patient=patient,
        institution=institution,
        by=by,
        patient_consent=patient_consent,
        guardian_consent=guardian_consent,
        consent_date=consent_date,
        started_on=started_on,
    )


def end_locked(*, enrolment: RehabEnrolment, by, reason: str, note: str = "", ended_on=None):
    """End a locked enrolment and update the patient's rehab flag."""
    if enrolment.status != EnrolmentStatus.ACTIVE:
        raise DomainError(ERR_ENDED)
    if reason not in EnrolmentEndReason.values:
        raise DomainError(ERR_END_REASON, field="reason")
    enrolment.status = EnrolmentStatus.ENDED
    enrolment.ended_on = ended_on or timezone.localdate()
    enrolment.end_reason = reason
    enrolment.end_note = note[:200]
    history_stamp(enrolment, user=by, reason="rehab.ended")
    enrolment.save(update_fields=["status", "ended_on", "end_reason", "end_note"])
    patient = Patient.objects.select_for_update().get(pk=enrolment.patient_id)
    sync_rehab_flag(patient, by=by)
    audit_record(
        actor=by,
        action="rehab.end",
        object_type="patient",
        object_id=patient.pk,
        detail={"institution": enrolment.institution_id, "reason": reason},
    )
    return enrolment


def rehab_enrolment_end(*, enrolment_id, by, request=None, **kwargs):
    """End an enrolment (completed, relapse, withdrawn, …); the flag follows."""
    # scope first, outside the transaction: the audit row of a denied
    # access must survive the 404 (a rollback would erase it)
    rehab_enrolment_get_for_user(user=by, pk=enrolment_id, request=request)
    return _rehab_enrolment_end(enrolment_id=enrolment_id, by=by, request=request, **kwargs)


@transaction.atomic
def _rehab_enrolment_end(*, enrolment_id, by, reason: str, note: str = "", request=None):
    enrolment = rehab_enrolment_get_for_user(user=by, pk=enrolment_id, lock=True, request=request)
    if not (
        acts_for(by, enrolment.institution.organisation_id)
        or can_manage_patient(by, enrolment.patient)
    ):
        raise PermissionDenied(ERR_NOT_ALLOWED)
    return end_locked(enrolment=enrolment, by=by, reason=reason, note=note)


def rehab_session_record(*, institution_id, by, **kwargs):
    """Record one service session and the attendance of every enrolled
    patient (present when their enrolment id is in ``attended``)."""
    # scope first, outside the transaction: the audit row of a denied
    # access must survive the 404 (a rollback would erase it)
    rehab_institution_get_for_user(user=by, pk=institution_id)
    return _rehab_session_record(institution_id=institution_id, by=by, **kwargs)


@transaction.atomic
def _rehab_session_record(
    *,
    institution_id,
    kind: str,
    held_on: date,
    topic: str,
    by,
    attended: list,
    facilitator: str = "",
) -> RehabSession:
    """Record one service session and the attendance of every enrolled
    patient (present when their enrolment id is in ``attended``)."""
    institution = rehab_institution_get_for_user(user=by, pk=institution_id)
    if not acts_for(by, institution.organisation_id):
        raise PermissionDenied(ERR_NOT_ALLOWED)
    if kind not in RehabService.values:
        raise DomainError(_("请选择服务项目。"), field="kind")
    if held_on > timezone.localdate():
        raise DomainError(_("活动日期不能晚于今天。"), field="held_on")
    active = {
        str(e.pk): e
        for e in RehabEnrolment.objects.filter(
            institution=institution, status=EnrolmentStatus.ACTIVE
        )
    }
    present = {str(pk) for pk in attended}
    if present - set(active):
        raise DomainError(ERR_SESSION_ENROLMENT, field="attended")
    session = RehabSession(
        institution=institution,
        kind=kind,
        held_on=held_on,
        topic=topic.strip(),
        facilitator=facilitator.strip(),
        created_by=by,
    )
    session.full_clean(exclude=["institution"])
    session.save()
    RehabAttendance.objects.bulk_create(
        [
            RehabAttendance(session=session, enrolment=e, attended=pk in present)
            for pk, e in active.items()
        ]
    )
    return session
