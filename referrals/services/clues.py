"""Clues: report, diagnosis review → patient, or close with a reason."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from simple_history.utils import bulk_create_with_history

from accounts.models import Organisation, OrganisationKind, Region, RegionLevel
from accounts.roles import VIEW_PATIENTS, fieldset_of
from accounts.scoping import region_in_scope
from accounts.selectors import organisation_of
from audit.services import audit_record
from core.errors import DomainError
from core.history import history_stamp
from patients import rules as patient_rules
from patients.models import IdType, id_number_index_for
from patients.services import (
    managing_organisation_for,
    managing_organisations_for,
    patient_register,
)
from referrals.models import Clue, ClueCloseReason, ClueSource, ClueStatus
from referrals.selectors import can_review_clue, clue_get_for_user

ERR_NOT_ALLOWED = _("您无权办理此项。")
ERR_REGION_LEVEL = _("请选择到乡镇或村（居）。")
ERR_REGION_SCOPE = _("该区划不在您的辖区内。")
ERR_SOURCE = _("该来源不能由您的部门报告。")
ERR_CLOSED = _("该线索已处理。")
ERR_CLOSE_REASON = _("请选择关闭原因。")
ERR_NAME = _("请填写姓名。")

# the sources each department reports; health records any of the others
DEPARTMENT_SOURCES = {
    "police": (ClueSource.POLICE,),
    "governance": (ClueSource.GRID_WORKER,),
    "civil_affairs": (ClueSource.CIVIL_AFFAIRS,),
    "disabled_federation": (ClueSource.DISABLED_FEDERATION,),
    "health": tuple(s for s in ClueSource.values if s != ClueSource.RECONCILIATION),
}


def sources_for(user) -> tuple[str, ...]:
    """The clue sources the user's department may report."""
    return DEPARTMENT_SOURCES.get(fieldset_of(user) or "", ())


def clue_assignee_for(region: Region) -> Organisation | None:
    """Who reviews a clue in ``region``: the health centre of its township;
    when the region is wider than a township (a county-wide list without
    addresses) or the township has none, the county prevention agency,
    whose staff see the clue as not yet assigned to a township."""
    if region.level in (RegionLevel.TOWNSHIP, RegionLevel.VILLAGE):
        centre = managing_organisation_for(region)
        if centre is not None:
            return centre
    county = region.county_code
    if county is None:
        return None
    return (
        Organisation.objects.filter(
            kind=OrganisationKind.PREVENTION_AGENCY, region_id=county, is_active=True
        )
        .order_by("pk")
        .first()
    )


def _identity(id_type: str, raw: str) -> tuple[str, str]:
    """(normalised number, blind index); checks resident ID checksums."""
    raw = (raw or "").strip()
    if not raw:
        return "", ""
    if id_type == IdType.RESIDENT_ID:
        try:
            rid = patient_rules.parse_resident_id(raw, today=timezone.localdate())
        except patient_rules.IdNumberError as exc:
            raise DomainError(_(exc.message), field="id_number") from exc
        number = rid.number
    else:
        number = patient_rules.normalize_id_number(id_type, raw)
    return number, id_number_index_for(id_type, number)


@transaction.atomic
def clue_report(*, by, data: dict, request=None) -> Clue:
    """Report a suspected case in the user's area; it goes to the health
    centre of its township for diagnosis review."""
    allowed = sources_for(by)
    if not allowed:
        raise PermissionDenied(ERR_NOT_ALLOWED)
    source = data.get("source") or allowed[0]
    if source not in allowed:
        raise DomainError(ERR_SOURCE, field="source")
    region: Region = data["region"]
    if region.level not in (RegionLevel.TOWNSHIP, RegionLevel.VILLAGE):
        raise DomainError(ERR_REGION_LEVEL, field="region")
    if not region_in_scope(by, VIEW_PATIENTS, region):
        raise DomainError(ERR_REGION_SCOPE, field="region")
    if not (data.get("name") or "").strip():
        raise DomainError(ERR_NAME, field="name")
    id_type = data.get("id_type") or IdType.RESIDENT_ID
    number, index = _identity(id_type, data.get("id_number", ""))
    clue = Clue(
        source=source,
        name=data["name"].strip(),
        gender=data.get("gender") or "",
        birth_date=data.get("birth_date"),
        id_type=id_type,
        id_number=number,
        id_number_index=index,
        region=region,
        address=data.get("address", ""),
        phone=data.get("phone", ""),
        description=data.get("description", ""),
        reporter_name=data.get("reporter_name", ""),
        organisation=organisation_of(by),
        assigned_organisation=clue_assignee_for(region),
        created_by=by,
    )
    clue.full_clean(exclude=["region", "organisation", "assigned_organisation", "id_number_index"])
    history_stamp(clue, user=by, reason="clue.reported")
    clue.save()
    audit_record(
        actor=by, action="clue.create", object_type="clue", object_id=clue.pk, request=request
    )
    return clue


def clue_from_reconciliation(
    *, run, row_number: int, name: str, id_type: str, number: str, index: str, data: dict, by
) -> tuple[Clue, bool]:
    """A partner's record missing from the register becomes a clue for the
    township health centre — once per person (``dedupe_key``), however many
    files name them. Returns (clue, created)."""
    key = f"recon:{index}"
    existing = Clue.objects.filter(dedupe_key=key).first()
    if existing is not None:
        return existing, False
    region = data["region"]
    clue = Clue(
        source=ClueSource.RECONCILIATION,
        name=name[:50],
        gender=data.get("gender") or "",
        birth_date=data.get("birth_date"),
        id_type=id_type,
        id_number=number,
        id_number_index=index,
        region=region,
        address=data.get("address", "")[:200],
        description=str(
            _("%(partner)s名单第%(row)d行，本系统未登记。")
            % {"partner": run.get_partner_display(), "row": row_number}
        ),
        organisation=organisation_of(by),
        assigned_organisation=clue_assignee_for(region),
        reconciliation_run=run,
        dedupe_key=key,
        created_by=by,
    )
    history_stamp(clue, user=by, reason="clue.reconciliation")
    try:
        with transaction.atomic():
            clue.save(force_insert=True)
    except IntegrityError:
        return Clue.objects.get(dedupe_key=key), False
    return clue, True


class ReconciliationClues:
    """The clues of one reconciliation run, made in bulk.

    ``clue_from_reconciliation`` row by row costs a lookup (and an insert,
    its history row and a savepoint) per person missing from the register;
    here the clues already made for the file's people are read once (by
    ``dedupe_key``), the health centres of their townships once, and the new
    clues are inserted together with their history by ``save``.
    """

    def __init__(self, *, run, by, indexes, region_codes):
        self.run, self.by = run, by
        keys = [f"recon:{index}" for index in indexes]
        self.found = {
            c.dedupe_key: c
            for c in Clue.objects.filter(dedupe_key__in=keys).only("pk", "dedupe_key")
        }
        self.new: dict[str, Clue] = {}
        self.organisation = organisation_of(by)
        self.centres = managing_organisations_for(region_codes)
        self.fallback: dict[str, Organisation | None] = {}

    def _assignee(self, region: Region) -> Organisation | None:
        """``clue_assignee_for`` from what was read once: the township's
        health centre, else (looked up once per region) the county
        prevention agency."""
        if region.level in (RegionLevel.TOWNSHIP, RegionLevel.VILLAGE):
            centre = self.centres.get(region.code[:9])
            if centre is not None:
                return centre
        if region.code not in self.fallback:
            self.fallback[region.code] = clue_assignee_for(region)
        return self.fallback[region.code]

    def get(self, *, row_number: int, name: str, id_type: str, number: str, index: str, data):
        """The person's clue: made before (by any file), pending in this
        run, or a new one (saved by ``save``). Returns (clue, new)."""
        key = f"recon:{index}"
        clue = self.found.get(key) or self.new.get(key)
        if clue is not None:
            return clue, False
        region = data["region"]
        clue = Clue(
            source=ClueSource.RECONCILIATION,
            name=name[:50],
            gender=data.get("gender") or "",
            birth_date=data.get("birth_date"),
            id_type=id_type,
            id_number=number,
            id_number_index=index,
            region=region,
            address=data.get("address", "")[:200],
            description=str(
                _("%(partner)s名单第%(row)d行，本系统未登记。")
                % {"partner": self.run.get_partner_display(), "row": row_number}
            ),
            organisation=self.organisation,
            assigned_organisation=self._assignee(region),
            reconciliation_run=self.run,
            dedupe_key=key,
            created_by=self.by,
        )
        history_stamp(clue, user=self.by, reason="clue.reconciliation")
        self.new[key] = clue
        return clue, True

    def save(self) -> int:
        """Insert the new clues and their history; returns how many were
        made. Should another run have made one of them meanwhile (the unique
        ``dedupe_key``), they are made one by one, that one reused."""
        pending = list(self.new.values())
        if not pending:
            return 0
        try:
            with transaction.atomic():
                bulk_create_with_history(pending, Clue, batch_size=500)
        except IntegrityError:
            made = 0
            for clue in pending:
                key = clue.dedupe_key
                found = Clue.objects.filter(dedupe_key=key).first()
                if found is not None:
                    self.new[key] = found
                    continue
                try:
                    with transaction.atomic():
                        clue.save(force_insert=True)
                except IntegrityError:
                    self.new[key] = Clue.objects.get(dedupe_key=key)
                    continue
                made += 1
            return made
        return len(pending)

    def resolve(self, clue: Clue) -> Clue:
        """The stored clue for ``clue`` (the same object unless ``save`` had
        to reuse one made by another run)."""
        return self.found.get(clue.dedupe_key) or self.new.get(clue.dedupe_key, clue)


def clue_confirm(*, clue_id, by, request=None, **kwargs):
    """Diagnosis review confirmed a severe mental disorder: register the
    patient (patients.services.patient_register) and close the clue."""
    # scope first, outside the transaction: the audit row of a denied
    # access must survive the 404 (a rollback would erase it)
    clue_get_for_user(user=by, pk=clue_id, request=request)
    return _clue_confirm(clue_id=clue_id, by=by, request=request, **kwargs)


@transaction.atomic
def _clue_confirm(*, clue_id, by, data: dict, request=None):
    """Diagnosis review confirmed a severe mental disorder: register the
    patient (patients.services.patient_register) and close the clue."""
    clue = clue_get_for_user(user=by, pk=clue_id, lock=True, request=request)
    if not can_review_clue(by, clue):
        raise PermissionDenied(ERR_NOT_ALLOWED)
    if clue.status != ClueStatus.OPEN:
        raise DomainError(ERR_CLOSED)
    patient = patient_register(by=by, data=data, request=request)
    clue.status = ClueStatus.CONFIRMED
    clue.patient = patient
    clue.reviewed_by = by
    clue.reviewed_at = timezone.now()
    clue.review_hospital = data.get("diagnosis_hospital", "")[:100]
    clue.review_diagnosis = data.get("diagnosis", "")
    # the clue's dedupe key is released: the person is on the register now
    clue.dedupe_key = None
    history_stamp(clue, user=by, reason="clue.confirmed")
    clue.save()
    audit_record(
        actor=by,
        action="clue.confirm",
        object_type="clue",
        object_id=clue.pk,
        detail={"patient": str(patient.pk)},
        request=request,
    )
    return clue


def clue_close(*, clue_id, by, request=None, **kwargs):
    """Diagnosis review excluded the case (or it cannot proceed): close with a reason."""
    # scope first, outside the transaction: the audit row of a denied
    # access must survive the 404 (a rollback would erase it)
    clue_get_for_user(user=by, pk=clue_id, request=request)
    return _clue_close(clue_id=clue_id, by=by, request=request, **kwargs)


@transaction.atomic
def _clue_close(*, clue_id, by, reason: str, note: str = "", request=None) -> Clue:
    clue = clue_get_for_user(user=by, pk=clue_id, lock=True, request=request)
    if not can_review_clue(by, clue):
        raise PermissionDenied(ERR_NOT_ALLOWED)
    if clue.status != ClueStatus.OPEN:
        raise DomainError(ERR_CLOSED)
    if reason not in ClueCloseReason.values:
        raise DomainError(ERR_CLOSE_REASON, field="reason")
    clue.status = ClueStatus.CLOSED
    clue.close_reason = reason
    clue.close_note = (note or "")[:200]
    clue.reviewed_by = by
    clue.reviewed_at = timezone.now()
    history_stamp(clue, user=by, reason="clue.closed")
    clue.save()
    audit_record(
        actor=by,
        action="clue.close",
        object_type="clue",
        object_id=clue.pk,
        detail={"reason": reason},
        request=request,
    )
    return clue
