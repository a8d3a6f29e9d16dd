"""Referral pages: the inbox of both ends, sending, detail and each step."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from core.errors import DomainError
from patients.selectors import can_manage_patient, patient_get_for_user, patient_list_visible_to
from patients.selectors import patient_search as search_patients
from patients.services import patient_record_search, patient_records_listed
from referrals import forms
from referrals import selectors as sel
from referrals.models import ReferralKind, ReferralStatus
from referrals.services import referrals as svc
from referrals.views.common import (
    area_tabs,
    domain_error_to_form,
    paginate,
    patient_url,
    require,
)

BOXES = (("incoming", _("收到的")), ("outgoing", _("发出的")), ("all", _("全部")))


@require_GET
def inbox(request):
    """Both ends in one place: what came in (to accept), what went out."""
    user = request.user
    require(sel.can_use_referrals(user))
    box = request.GET.get("box") or "incoming"
    acting = sel.acting_organisation_ids(user)
    qs = sel.referral_list_visible_to(user=user)
    if box == "incoming":
        qs = qs.filter(to_organisation_id__in=acting)
    elif box == "outgoing":
        qs = qs.filter(from_organisation_id__in=acting)
    status = request.GET.get("status") or ""
    if status in ReferralStatus.values:
        qs = qs.filter(status=status)
    kind = request.GET.get("kind") or ""
    if kind in ReferralKind.values:
        qs = qs.filter(kind=kind)
    page, query = paginate(request, qs.order_by("-created_at"))
    # each referral shows its patient: a read of that patient (G12, G15)
    patient_records_listed(
        user=user,
        patient_ids=[r.patient_id for r in page.object_list],
        request=request,
        action="referral.list",
    )
    today = timezone.localdate()
    rows = [
        {
            "referral": r,
            "late": r.status == ReferralStatus.PENDING and r.accept_by < today,
            "incoming": r.to_organisation_id in acting,
        }
        for r in page.object_list
    ]
    context = {
        "tabs": area_tabs(user, "inbox"),
        "boxes": [{"key": k, "label": label, "active": k == box} for k, label in BOXES],
        "box": box,
        "status": status,
        "kind": kind,
        "statuses": ReferralStatus.choices,
        "kinds": ReferralKind.choices,
        "page": page,
        "rows": rows,
        "query": query,
        "can_send": sel.is_health(user),
    }
    template = "referrals/partials/_inbox_rows.html" if request.htmx else "referrals/inbox.html"
    return render(request, template, context)


def _patient_choices(request, user):
    """The patient search of the pages that pick a patient: the term comes
    in the POST body only, never in a URL (SECURITY.md → no personal data in
    URLs); the search and the patients it shows are audited reads."""
    data = request.POST if request.method == "POST" and "q" in request.POST else None
    form = forms.PatientSearchForm(data)
    results = []
    term = form.cleaned_data["q"].strip() if form.is_valid() else ""
    if term:
        results = list(search_patients(patient_list_visible_to(user=user), term)[:10])
        patient_record_search(
            user=user,
            term=term,
            count=len(results),
            request=request,
            listed=[p.pk for p in results],
        )
    return form, results


def _prefill_discharge(user, patient) -> dict:
    """The latest discharge sheet of the patient at the user's hospital
    (subsidies records admissions and discharges), to copy into the referral."""
    from subsidies.selectors import discharge_sheet_for, latest_discharge_for

    episode = latest_discharge_for(user=user, patient=patient)
    if episode is None:
        return {}
    sheet = discharge_sheet_for(episode=episode)
    medication = "；".join(
        str(m.get("drug", "")) for m in sheet.get("medication_advice") or [] if m.get("drug")
    )
    return {
        "case_number": sheet.get("case_number") or "",
        "admission_date": sheet.get("admission_date"),
        "discharge_date": sheet.get("discharge_date"),
        "discharge_diagnosis": sheet.get("discharge_diagnosis") or "",
        "inpatient_effect": sheet.get("inpatient_effect") or "",
        "medication_note": "；".join(x for x in (medication, sheet.get("medication_note")) if x),
        "rehab_advice": sheet.get("rehab_advice") or "",
        "attending_doctor": sheet.get("attending_doctor") or "",
        "note": sheet.get("note") or "",
    }


@require_http_methods(["GET", "POST"])
def referral_create(request):
    """Send a referral of one kind for one patient (chosen by search)."""
    user = request.user
    require(sel.is_health(user))
    kind = request.GET.get("kind") or request.POST.get("kind") or ReferralKind.UPWARD
    if kind not in ReferralKind.values:
        kind = ReferralKind.UPWARD
    patient = None
    patient_id = request.GET.get("patient") or request.POST.get("patient")
    if patient_id:
        patient = patient_get_for_user(user=user, pk=patient_id, request=request)
        require(can_manage_patient(user, patient))
    search_form, results = _patient_choices(request, user)
    organisations = sel.referral_receiving_organisations(kind=kind, user=user)
    if kind == ReferralKind.TRANSFER and patient is not None:
        organisations = organisations.exclude(pk=patient.managing_organisation_id)
    form = None
    if patient is not None:
        initial = {}
        if kind == ReferralKind.DOWNWARD and request.method == "GET":
            initial = _prefill_discharge(user, patient)
        form = forms.ReferralForm(
            request.POST if request.method == "POST" else None,
            kind=kind,
            organisations=organisations,
            initial=initial,
        )
        if request.method == "POST" and form.is_valid():
            try:
                referral = svc.referral_create(
                    patient_id=patient.pk,
                    kind=kind,
                    by=user,
                    request=request,
                    **form.service_kwargs(),
                )
            except DomainError as err:
                domain_error_to_form(form, err)
            except PermissionDenied as err:
                form.add_error(None, str(err) or _("您无权为该患者发起此类转诊。"))
            else:
                messages.success(request, _("转诊已发出，等待对方接收。"))
                return redirect("referrals:detail", referral.pk)
    kinds = [
        {"key": k, "label": label, "active": k == kind}
        for k, label in ReferralKind.choices
        if k != ReferralKind.DOWNWARD or _is_hospital(user)
    ]
    return render(
        request,
        "referrals/referral_create.html",
        {
            "tabs": area_tabs(user, "inbox"),
            "kind": kind,
            "kind_label": ReferralKind(kind).label,
            "kinds": kinds,
            "patient": patient,
            "search_form": search_form,
            "results": results,
            "form": form,
        },
    )


def _is_hospital(user) -> bool:
    from accounts.models import OrganisationKind
    from accounts.selectors import organisation_of

    org = organisation_of(user)
    return org is not None and org.kind == OrganisationKind.SPECIALIST_HOSPITAL


@require_GET
def referral_detail(request, pk):
    user = request.user
    referral = sel.referral_get_for_user(user=user, pk=pk, request=request)
    sel.record_read(user=user, object_type="referral", obj=referral, request=request)
    handover_only = sel.patient_handover_view(referral, user)
    receiver = sel.acts_for(user, referral.to_organisation_id)
    sender = sel.acts_for(user, referral.from_organisation_id) or referral.created_by_id == user.pk
    pending = referral.status == ReferralStatus.PENDING
    events = list(referral.events.select_related("organisation").all())
    sheet = _sheet_rows(referral.discharge_sheet) if referral.discharge_sheet else []
    context = {
        "tabs": area_tabs(user, "inbox"),
        "referral": referral,
        "patient": referral.patient,
        "handover_only": handover_only,
        "patient_link": None if handover_only else patient_url(referral.patient_id),
        "events": events,
        "sheet": sheet,
        "can_accept": receiver and pending,
        "can_reject": receiver and pending,
        "can_complete": receiver and referral.status == ReferralStatus.ACCEPTED,
        "can_cancel": sender and pending,
        "needs_region": referral.kind == ReferralKind.TRANSFER and referral.to_region_id is None,
        "accept_form": forms.AcceptForm(),
        "reason_form": forms.ReasonForm(),
        "note_form": forms.NoteForm(),
        "late": pending and referral.accept_by < timezone.localdate(),
    }
    return render(request, "referrals/referral_detail.html", context)


SHEET_LABELS = {
    "case_number": _("住院号"),
    "hospital": _("医院"),
    "admission_date": _("入院日期"),
    "discharge_date": _("出院日期"),
    "discharge_diagnosis": _("出院诊断"),
    "discharge_diagnosis_label": _("出院诊断"),
    "discharge_diagnosis_detail": _("诊断说明"),
    "inpatient_effect": _("住院疗效"),
    "inpatient_effect_label": _("住院疗效"),
    "medication_note": _("出院用药及指导"),
    "medication_advice": _("出院用药"),
    "rehab_advice": _("康复措施建议"),
    "attending_doctor": _("主治医生"),
    "note": _("注意事项"),
}


def _sheet_rows(sheet: dict) -> list[tuple[str, str]]:
    from patients.models import Diagnosis, TreatmentEffect

    labels = {
        "discharge_diagnosis": dict(Diagnosis.choices),
        "inpatient_effect": dict(TreatmentEffect.choices),
    }
    rows = []
    for key, label in SHEET_LABELS.items():
        if key not in sheet or sheet[key] in ("", None, []):
            continue
        if key.endswith("_label") and key[: -len("_label")] in sheet:
            continue
        value = sheet[key]
        if key in labels:
            value = labels[key].get(value, value)
        if isinstance(value, list):
            value = "；".join(
                " ".join(str(v) for v in (item.values() if isinstance(item, dict) else [item]))
                for item in value
            )
        rows.append((label, str(value)))
    return rows


def _step(request, pk, action):
    user = request.user
    try:
        if action == "accept":
            form = forms.AcceptForm(request.POST)
            form.is_valid()
            data = getattr(form, "cleaned_data", {})
            if form.errors:
                raise DomainError(next(iter(form.errors.values()))[0], field="to_region")
            svc.referral_accept(
                referral_id=pk,
                by=user,
                note=data.get("note", ""),
                to_region=data.get("to_region"),
                to_address=data.get("to_address", ""),
                request=request,
            )
            messages.success(request, _("已接收。"))
        elif action == "reject":
            svc.referral_reject(
                referral_id=pk, by=user, reason=request.POST.get("reason", ""), request=request
            )
            messages.success(request, _("已拒绝。"))
        elif action == "complete":
            svc.referral_complete(
                referral_id=pk, by=user, note=request.POST.get("note", ""), request=request
            )
            messages.success(request, _("已完成。"))
        elif action == "cancel":
            svc.referral_cancel(
                referral_id=pk, by=user, reason=request.POST.get("reason", ""), request=request
            )
            messages.success(request, _("已撤销。"))
    except DomainError as err:
        messages.error(request, str(err.message))
    return redirect("referrals:detail", pk)


@require_POST
def referral_accept(request, pk):
    return _step(request, pk, "accept")


@require_POST
def referral_reject(request, pk):
    return _step(request, pk, "reject")


@require_POST
def referral_complete(request, pk):
    return _step(request, pk, "complete")


@require_POST
def referral_cancel(request, pk):
    return _step(request, pk, "cancel")
