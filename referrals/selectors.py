"""Reads of the referrals app, scoped to the user (STYLE.md §3).

Who acts for which organisation, which referrals, clues, rehab records,
exchange runs and reconciliations a user may see — written once, here.
Out of scope is 404 and audited, like patients.
"""

from __future__ import annotations

import logging
import uuid

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.http import Http404

from accounts.models import Department, Organisation, OrganisationKind, Region
from accounts.roles import MANAGE_PATIENTS, VIEW_PATIENTS, Role, fieldset_of, role_of
from accounts.scoping import inside_q, region_in_scope, regions_with_perm
from accounts.selectors import organisation_of
from audit.services import audit_record
from patients.selectors import patient_list_visible_to
from referrals.models import (
    Clue,
    EntitlementTask,
    ExchangePartner,
    ExchangeRun,
    ReconciliationItem,
    ReconciliationRun,
    Referral,
    RehabEnrolment,
    RehabInstitution,
    RehabSession,
    RosterImport,
)

log = logging.getLogger(__name__)

HEALTH_ROLES = frozenset({Role.TOWNSHIP_DOCTOR, Role.HOSPITAL_DOCTOR, Role.PREVENTION_STAFF})
COUNTY_HEALTH_ROLES = frozenset({Role.HOSPITAL_DOCTOR, Role.PREVENTION_STAFF})
# departments that run or coordinate community rehab (seed 001: civil affairs
# leads, the federation provides venues, health gives technical support)
REHAB_DEPARTMENTS = (Department.CIVIL_AFFAIRS, Department.DISABLED_FEDERATION, Department.HEALTH)
# which partner lists each role may upload for reconciliation
RECONCILE_PARTNERS = {
    Role.TOWNSHIP_DOCTOR: ("police", "governance", "civil_affairs", "disabled_federation"),
    Role.HOSPITAL_DOCTOR: ("police", "governance", "civil_affairs", "disabled_federation"),
    Role.PREVENTION_STAFF: ("police", "governance", "civil_affairs", "disabled_federation"),
    Role.GOVERNANCE: ("police", "governance"),
    Role.POLICE: ("police",),
    Role.CIVIL_AFFAIRS: ("civil_affairs",),
    Role.DISABLED_FEDERATION: ("disabled_federation",),
}
# which partners' runs each role sees on the exchange page
RUN_PARTNERS = {
    Role.PREVENTION_STAFF: ("police", "governance", "civil_affairs", "disabled_federation"),
    Role.HOSPITAL_DOCTOR: ("police", "governance", "civil_affairs", "disabled_federation"),
    Role.ADMIN: ("police", "governance", "civil_affairs", "disabled_federation"),
    Role.GOVERNANCE: ("police", "governance"),
    Role.POLICE: ("police",),
    Role.CIVIL_AFFAIRS: ("civil_affairs",),
    Role.DISABLED_FEDERATION: ("disabled_federation",),
}


def _is_uuid(value) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


def _deny(user, object_type: str, pk, request=None):
    audit_record(
        actor=user,
        action="access.denied",
        object_type=object_type,
        object_id=str(pk)[:64],
        request=request,
    )
    log.info("%s access denied: user=%s", object_type, getattr(user, "pk", None))
    raise Http404


def _cached(user, key, compute):
    cache = user.__dict__.setdefault("_referrals_cache", {})
    if key not in cache:
        cache[key] = compute()
    return cache[key]


# --------------------------------------------------------------------------
# Who acts for which organisation
# --------------------------------------------------------------------------


def is_health(user) -> bool:
    return fieldset_of(user) == "health"


def acting_organisation_ids(user) -> frozenset[int]:
    """The organisations the user may act for: their own and, for the
    departments that run community rehab, the rehab institutions of their
    department inside their organisation's region (the county/township
    community-rehab resource platform of seed 001)."""

    def compute():
        org = organisation_of(user)
        role = role_of(user)
        if org is None or role is None or fieldset_of(user) is None:
            return frozenset()
        ids = {org.pk}
        if org.department in REHAB_DEPARTMENTS and role != Role.TOWNSHIP_DOCTOR:
            ids |= set(
                RehabInstitution.objects.filter(
                    organisation__department=org.department,
                    organisation__region__path__startswith=org.region.path,
                ).values_list("organisation_id", flat=True)
            )
        return frozenset(ids)

    return _cached(user, "acting", compute)


def acts_for(user, organisation_id) -> bool:
    return organisation_id in acting_organisation_ids(user)


def can_use_referrals(user) -> bool:
    """Health staff, and the departments that run community rehab."""
    return is_health(user) or role_of(user) in (Role.CIVIL_AFFAIRS, Role.DISABLED_FEDERATION)


def can_manage_in(user, region: Region) -> bool:
    return is_health(user) and region_in_scope(user, MANAGE_PATIENTS, region)


# --------------------------------------------------------------------------
# Referrals
# --------------------------------------------------------------------------


def referral_list_visible_to(*, user) -> QuerySet[Referral]:
    """Referrals the user sends or receives (for any organisation they act
    for), and, for health staff, every referral of a patient in their scope."""
    if not can_use_referrals(user):
        return Referral.objects.none()
    acting = acting_organisation_ids(user)
    q = Q(from_organisation_id__in=acting) | Q(to_organisation_id__in=acting)
    if is_health(user):
        visible = patient_list_visible_to(user=user).filter(pk=OuterRef("patient_id"))
        q |= Q(Exists(visible))
    return Referral.objects.filter(q).select_related(
        "patient__region", "from_organisation", "to_organisation", "to_region"
    )


def referral_get_for_user(*, user, pk, request=None, lock: bool = False) -> Referral:
    obj = None
    if _is_uuid(pk):
        qs = referral_list_visible_to(user=user)
        if lock:
            qs = qs.select_for_update(of=("self",))
        obj = qs.filter(pk=pk).first()
    if obj is None:
        _deny(user, "referral", pk, request)
    return obj


def record_read(*, user, object_type: str, obj, request=None) -> None:
    """Append a read of a record about a patient to the access log: against
    the patient when there is one (so it is in the patient's "who saw this
    record" view and counts towards the unusual-access alert), the record
    named in the detail; otherwise against the record itself."""
    patient_id = getattr(obj, "patient_id", None)
    if patient_id:
        target, target_id, detail = "patient", patient_id, {object_type: str(obj.pk)}
    else:
        target, target_id, detail = object_type, obj.pk, {}
    audit_record(
        actor=user,
        action=f"{object_type}.view",
        object_type=target,
        object_id=target_id,
        detail=detail,
        request=request,
    )


def referral_receiving_organisations(*, kind: str, user) -> QuerySet[Organisation]:
    """Where a referral of ``kind`` may go (form choices and API validation)."""
    qs = Organisation.objects.filter(is_active=True).select_related("region")
    if kind == "upward":
        return qs.filter(kind=OrganisationKind.SPECIALIST_HOSPITAL)
    if kind in ("downward", "transfer"):
        return qs.filter(kind=OrganisationKind.HEALTH_CENTRE)
    if kind == "rehab":
        return qs.filter(kind=OrganisationKind.REHAB_INSTITUTION, rehab_institution__is_active=True)
    return qs.none()


def patient_handover_view(referral: Referral, user) -> bool:
    """True when the user sees the patient only through this hand-over (the
    receiving end of a transfer from another area): the page then shows the
    minimum needed to receive the patient — no clinical data."""
    return not patient_list_visible_to(user=user).filter(pk=referral.patient_id).exists()


# --------------------------------------------------------------------------
# Community rehab
# --------------------------------------------------------------------------


def can_manage_rehab(user) -> bool:
    """Register institutions: civil affairs, the federation and county-level
    health (prevention agency, specialist hospital)."""
    return role_of(user) in (
        Role.CIVIL_AFFAIRS,
        Role.DISABLED_FEDERATION,
        Role.PREVENTION_STAFF,
        Role.HOSPITAL_DOCTOR,
    )


def rehab_institution_list_visible_to(*, user) -> QuerySet[RehabInstitution]:
    """Institutions inside (or containing) the user's patient scope."""
    if not can_use_referrals(user):
        return RehabInstitution.objects.none()
    regions = regions_with_perm(user, VIEW_PATIENTS)
    q = inside_q(regions, path_field="organisation__region__path")
    # a township doctor also sees the county's institutions that serve the township
    for r in regions:
        q |= Q(organisation__region__path__in=_ancestor_paths(r.path))
    q |= Q(organisation_id__in=acting_organisation_ids(user))
    return RehabInstitution.objects.filter(q).select_related("organisation__region")


def _ancestor_paths(path: str) -> list[str]:
    parts = [p for p in path.strip("/").split("/") if p]
    return ["/" + "/".join(parts[:i]) + "/" for i in range(1, len(parts))]


def rehab_institution_get_for_user(*, user, pk, request=None) -> RehabInstitution:
    obj = None
    if str(pk).isdigit():
        obj = rehab_institution_list_visible_to(user=user).filter(pk=pk).first()
    if obj is None:
        _deny(user, "rehab_institution", pk, request)
    return obj


def rehab_enrolment_list_visible_to(*, user) -> QuerySet[RehabEnrolment]:
    """Enrolments of patients the user sees, and of institutions they act for."""
    if not can_use_referrals(user):
        return RehabEnrolment.objects.none()
    visible = patient_list_visible_to(user=user).filter(pk=OuterRef("patient_id"))
    q = Q(Exists(visible)) | Q(institution__organisation_id__in=acting_organisation_ids(user))
    return RehabEnrolment.objects.filter(q).select_related(
        "patient__region", "institution__organisation"
    )


def rehab_enrolment_get_for_user(*, user, pk, request=None, lock=False) -> RehabEnrolment:
    obj = None
    if _is_uuid(pk):
        qs = rehab_enrolment_list_visible_to(user=user)
        if lock:
            qs = qs.select_for_update(of=("self",))
        obj = qs.filter(pk=pk).first()
    if obj is None:
        _deny(user, "rehab_enrolment", pk, request)
    return obj


def rehab_session_list(*, institution: RehabInstitution) -> QuerySet[RehabSession]:
    return RehabSession.objects.filter(institution=institution).prefetch_related(
        "attendance__enrolment__patient"
    )


# --------------------------------------------------------------------------
# Clues
# --------------------------------------------------------------------------


def can_report_clue(user) -> bool:
    return fieldset_of(user) is not None


def clue_list_visible_to(*, user) -> QuerySet[Clue]:
    """Health staff see clues in their area and those assigned to them;
    other departments see the clues their organisation reported."""
    fieldset = fieldset_of(user)
    if fieldset is None:
        return Clue.objects.none()
    org = organisation_of(user)
    if org is None:
        return Clue.objects.none()
    q = Q(organisation_id=org.pk)
    if fieldset == "health":
        q |= inside_q(regions_with_perm(user, VIEW_PATIENTS), path_field="region__path")
        q |= Q(assigned_organisation_id__in=acting_organisation_ids(user))
    return Clue.objects.filter(q).select_related(
        "region", "assigned_organisation", "organisation", "patient"
    )


def clue_get_for_user(*, user, pk, request=None, lock=False) -> Clue:
    obj = None
    if _is_uuid(pk):
        qs = clue_list_visible_to(user=user)
        if lock:
            qs = qs.select_for_update(of=("self",))
        obj = qs.filter(pk=pk).first()
    if obj is None:
        _deny(user, "clue", pk, request)
    return obj


def can_review_clue(user, clue: Clue) -> bool:
    """Diagnosis review: health staff managing the clue's area or its health centre."""
    if not is_health(user):
        return False
    return can_manage_in(user, clue.region) or acts_for(user, clue.assigned_organisation_id)


# --------------------------------------------------------------------------
# Roster import
# --------------------------------------------------------------------------


def can_import_roster(user) -> bool:
    return is_health(user) and bool(regions_with_perm(user, MANAGE_PATIENTS))


def roster_import_list_visible_to(*, user) -> QuerySet[RosterImport]:
    if not can_import_roster(user):
        return RosterImport.objects.none()
    org = organisation_of(user)
    return RosterImport.objects.filter(organisation=org).select_related("created_by", "task_run")


def roster_import_progress(imp: RosterImport) -> dict:
    """Where a (visible) import has got: ``stage`` (validating, writing),
    rows ``done`` of ``total`` and ``percent``. Validation counts on the
    TaskRun row; the write stage runs in one transaction that hides that row's
    changes, so its count is read from core.progress."""
    from core.models import TaskRun
    from core.progress import progress_read

    run = TaskRun.objects.filter(pk=imp.task_run_id).first() if imp.task_run_id else None
    if run is None:
        return {"run": None, "stage": "", "done": 0, "total": 0, "percent": 0}
    stage = (run.counts or {}).get("stage", "")
    done, total = run.progress, run.total or 0
    live = progress_read(run.pk) if imp.is_running else None
    if live:
        stage, done, total = live["stage"], live["done"], live["total"]
    elif stage == "writing":
        done, total = 0, (run.counts or {}).get("to_write", 0)
    percent = min(100, round(done * 100 / total)) if total else 0
    return {"run": run, "stage": stage, "done": done, "total": total, "percent": percent}


def roster_import_get_for_user(*, user, pk, request=None) -> RosterImport:
    obj = None
    if _is_uuid(pk):
        obj = roster_import_list_visible_to(user=user).filter(pk=pk).first()
    if obj is None:
        _deny(user, "roster_import", pk, request)
    return obj


# --------------------------------------------------------------------------
# Exchange and reconciliation
# --------------------------------------------------------------------------


def county_of(org: Organisation | None) -> Region | None:
    """The county region an organisation belongs to (or is)."""
    if org is None:
        return None
    code = org.region.county_code
    if code is None:
        return None
    if org.region_id == code:
        return org.region
    return Region.objects.filter(code=code).first()


def can_use_exchange(user) -> bool:
    return role_of(user) in RUN_PARTNERS or role_of(user) in RECONCILE_PARTNERS


def can_manage_partners(user) -> bool:
    """Partners, endpoints and signing keys: the county prevention agency
    and the system administrator, for their own county."""
    org = organisation_of(user)
    return (
        role_of(user) in (Role.PREVENTION_STAFF, Role.ADMIN)
        and org is not None
        and org.region.level == "county"
    )


def exchange_partner_list_visible_to(*, user) -> QuerySet[ExchangePartner]:
    departments = RUN_PARTNERS.get(role_of(user), ())
    county = _cached(user, "county", lambda: county_of(organisation_of(user)))
    if not departments or county is None:
        return ExchangePartner.objects.none()
    return ExchangePartner.objects.filter(region=county, department__in=departments).select_related(
        "region", "organisation"
    )


def exchange_partner_get_for_user(*, user, pk, request=None, manage=False) -> ExchangePartner:
    obj = None
    if str(pk).isdigit() and (not manage or can_manage_partners(user)):
        obj = exchange_partner_list_visible_to(user=user).filter(pk=pk).first()
    if obj is None:
        _deny(user, "exchange_partner", pk, request)
    return obj


def exchange_run_list_visible_to(*, user) -> QuerySet[ExchangeRun]:
    partners = exchange_partner_list_visible_to(user=user)
    return (
        ExchangeRun.objects.filter(partner__in=partners).select_related("partner").defer("content")
    )


def exchange_run_get_for_user(*, user, pk, request=None) -> ExchangeRun:
    obj = None
    if _is_uuid(pk):
        obj = exchange_run_list_visible_to(user=user).filter(pk=pk).first()
    if obj is None:
        _deny(user, "exchange_run", pk, request)
    return obj


def can_download_package(user, run: ExchangeRun) -> bool:
    """The package holds the whole county's personal data: the county
    prevention agency, the partner's receiving organisation and the county
    level of the receiving department may fetch it; a township unit of that
    department (a police station) and the administrator may not."""
    role = role_of(user)
    if role == Role.PREVENTION_STAFF:
        return True
    org = organisation_of(user)
    if org is None:
        return False
    partner = run.partner
    if partner.organisation_id is not None and org.pk == partner.organisation_id:
        return True
    return org.department == partner.department and org.region_id == partner.region_id


def reconcile_partners_for(user) -> tuple[str, ...]:
    if not regions_with_perm(user, VIEW_PATIENTS):
        return ()
    return RECONCILE_PARTNERS.get(role_of(user), ())


def reconciliation_scope_region(user) -> Region | None:
    """The region whose register a reconciliation by this user compares:
    the widest region of their patient scope."""
    regions = regions_with_perm(user, VIEW_PATIENTS)
    return min(regions, key=lambda r: len(r.path)) if regions else None


def reconciliation_list_visible_to(*, user) -> QuerySet[ReconciliationRun]:
    partners = reconcile_partners_for(user)
    if not partners:
        return ReconciliationRun.objects.none()
    regions = regions_with_perm(user, VIEW_PATIENTS)
    # runs over a region inside the user's scope, or over the region containing it
    q = inside_q(regions, path_field="region__path")
    for r in regions:
        q |= Q(region__path__in=_ancestor_paths(r.path) + [r.path])
    return (
        ReconciliationRun.objects.filter(q, partner__in=partners)
        .select_related("region", "created_by", "organisation")
        .order_by("-created_at")
    )


def reconciliation_get_for_user(*, user, pk, request=None) -> ReconciliationRun:
    obj = None
    if _is_uuid(pk):
        obj = reconciliation_list_visible_to(user=user).filter(pk=pk).first()
    if obj is None:
        _deny(user, "reconciliation", pk, request)
    return obj


def reconciliation_items(*, user, run: ReconciliationRun) -> QuerySet[ReconciliationItem]:
    """Result lines of a run; lines about a register patient only when the
    user sees that patient."""
    visible = patient_list_visible_to(user=user).filter(pk=OuterRef("patient_id"))
    return (
        run.items.filter(Q(patient__isnull=True) | Q(Exists(visible)))
        .select_related("patient__region", "clue")
        .order_by("outcome", "row_number", "id")
    )


def entitlement_task_list_visible_to(*, user) -> QuerySet[EntitlementTask]:
    """Tasks for the user's department about patients they see."""
    org = organisation_of(user)
    if org is None or fieldset_of(user) is None:
        return EntitlementTask.objects.none()
    visible = patient_list_visible_to(user=user).filter(pk=OuterRef("patient_id"))
    return (
        EntitlementTask.objects.filter(Exists(visible), department=org.department)
        .select_related("patient__region", "organisation", "run")
        .order_by("status", "-created_at")
    )


def entitlement_task_get_for_user(*, user, pk, request=None, lock=False) -> EntitlementTask:
    obj = None
    if _is_uuid(pk):
        qs = entitlement_task_list_visible_to(user=user)
        if lock:
            qs = qs.select_for_update(of=("self",))
        obj = qs.filter(pk=pk).first()
    if obj is None:
        _deny(user, "entitlement_task", pk, request)
    return obj
