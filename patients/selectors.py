"""The only way patient rows are read (DESIGN.md → Permissions).

Visibility is written once, here: a patient is visible when its region lies
inside a region the user holds ``view_patients_in`` on (through a group), or
when the user is on its care team. Out of scope is 404 and audited.
"""

from __future__ import annotations

import logging
import uuid

from django.db import connection
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.http import Http404
from django.utils import timezone

from accounts.roles import MANAGE_PATIENTS, VIEW_PATIENTS, fieldset_of
from accounts.scoping import inside_q, region_in_scope, regions_with_perm
from audit.services import audit_record
from patients.models import CareTeamMember, IdType, Patient, Status, id_number_index_for

log = logging.getLogger(__name__)


def _care_team_q(user) -> Q:
    return Q(Exists(CareTeamMember.objects.filter(patient=OuterRef("pk"), user_id=user.pk)))


def _extra_grants_q(user) -> Q | None:
    """Per-patient grants beyond regions: care team and break-the-glass.

    Kept as a hook so security features add grants in one place. A
    break-the-glass grant (accounts.services.breakglass_request) opens one
    patient for reading while it lasts; writes still need the region grant.
    """
    from django.db.models import Value

    from accounts.selectors import break_glass_grants_q

    fieldset = fieldset_of(user)
    if fieldset is None:
        return None
    # One query answers both: "on any care team?" and the active grants.
    care = (
        CareTeamMember.objects.filter(user_id=user.pk)
        .annotate(kind=Value("care"))
        .values_list("patient_id", "kind")[:1]
    )
    if fieldset != "health":
        rows = list(care)
    else:
        glass = break_glass_grants_q(user).annotate(kind=Value("glass"))
        glass_rows = glass.values_list("patient_id", "kind")
        if connection.vendor == "postgresql":
            rows = list(glass_rows.union(care, all=True))
        else:
            # SQLite (the single-machine default) refuses LIMIT/ORDER BY inside
            # a compound select: ask twice there.
            rows = list(care) + list(glass_rows.order_by())
    q = _care_team_q(user) if any(kind == "care" for _pk, kind in rows) else None
    glass_ids = [pk for pk, kind in rows if kind == "glass"]
    if glass_ids:
        q = Q(pk__in=glass_ids) if q is None else q | Q(pk__in=glass_ids)
    return q


def patient_list_visible_to(*, user) -> QuerySet[Patient]:
    """Patients the user may read; admin roles and officials get none."""
    if fieldset_of(user) is None:
        return Patient.objects.none()
    q = inside_q(regions_with_perm(user, VIEW_PATIENTS))
    extra = _extra_grants_q(user)
    if extra is not None:
        q = q | extra
    return Patient.objects.filter(q).select_related("region")


def patient_get_for_user(*, user, pk, lock: bool = False, request=None) -> Patient:
    """One visible patient, or Http404 (audited) when missing or out of scope."""
    obj = None
    if _is_uuid(pk):
        qs = patient_list_visible_to(user=user)
        if lock:
            qs = qs.select_for_update(of=("self",))
        obj = qs.filter(pk=pk).first()
    if obj is None:
        audit_record(
            actor=user,
            action="access.denied",
            object_type="patient",
            object_id=str(pk)[:64],
            request=request,
        )
        log.info("patient access denied: user=%s", getattr(user, "pk", None))
        raise Http404
    return obj


def _is_uuid(value) -> bool:
    if isinstance(value, uuid.UUID):
        return True
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


def patient_search(qs: QuerySet[Patient], term: str) -> QuerySet[Patient]:
    """Name (contains) or ID number (exact, through the blind index).

    A name search filters inside a subquery that reads only the scope's
    ``patient_region_cover`` index (region, name, id + the blind index), so a
    county-wide search scans the index, not the table, and fetches only its
    hits; the caller's joins, ordering and slicing apply to those.
    """
    term = (term or "").strip()
    if not term:
        return qs
    candidate = term.upper()
    if len(candidate) in (15, 18) and candidate[:-1].isdigit():
        return qs.filter(id_number_index=id_number_index_for(IdType.RESIDENT_ID, candidate))
    indexes = [id_number_index_for(t, candidate) for t in IdType.values]
    hits = (
        qs.filter(Q(name__contains=term) | Q(id_number_index__in=indexes))
        .select_related(None)
        .prefetch_related(None)
        .order_by()
        .values("pk")
    )
    return qs.filter(pk__in=hits)


def overdue_q(today=None) -> Q:
    today = today or timezone.localdate()
    return Q(status=Status.ACTIVE, next_followup_due__lt=today)


def can_manage_patient(user, patient: Patient) -> bool:
    """Health staff who hold ``manage_patients_in`` over the patient's region."""
    return fieldset_of(user) == "health" and region_in_scope(user, MANAGE_PATIENTS, patient.region)


def patient_regions_manageable(user):
    return regions_with_perm(user, MANAGE_PATIENTS)


def id_indexes_on_register(indexes) -> set[str]:
    """Which of these blind indexes belong to a patient on the register,
    anywhere (one patient per ID number, whatever the caller's scope).

    Only the blind index is compared and returned: nothing is decrypted and
    no patient is read. Callers use it to avoid duplicates (roster import)
    or false "missing" findings (reconciliation) and must not show which
    out-of-scope person matched."""
    wanted = [i for i in dict.fromkeys(indexes) if i]
    found: set[str] = set()
    for start in range(0, len(wanted), 2000):
        chunk = wanted[start : start + 2000]
        found.update(
            Patient.objects.filter(id_number_index__in=chunk).values_list(
                "id_number_index", flat=True
            )
        )
    return found
