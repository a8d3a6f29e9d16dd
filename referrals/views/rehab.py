"""Community rehab pages: institutions, enrolment, sessions, green channel."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.models import Region, RegionLevel
from accounts.selectors import organisation_of
from core.errors import DomainError
from patients.selectors import can_manage_patient, patient_get_for_user
from referrals import forms
from referrals import selectors as sel
from referrals.models import EnrolmentStatus, ReferralKind
from referrals.services import rehab as svc
from referrals.services.referrals import rehab_green_channel
from referrals.views.common import area_tabs, domain_error_to_form, paginate, require
from referrals.views.referrals import _patient_choices


@require_GET
def rehab_list(request):
    user = request.user
    require(sel.can_use_referrals(user))
    qs = (
        sel.rehab_institution_list_visible_to(user=user)
        .annotate(active=Count("enrolments", filter=Q(enrolments__status=EnrolmentStatus.ACTIVE)))
        .order_by("organisation__region_id", "organisation__name")
    )
    page, query = paginate(request, qs)
    return render(
        request,
        "referrals/rehab_list.html",
        {
            "tabs": area_tabs(user, "rehab"),
            "page": page,
            "query": query,
            "can_create": sel.can_manage_rehab(user),
        },
    )


def _institution_regions(user):
    org = organisation_of(user)
    return Region.objects.filter(
        path__startswith=org.region.path, level__in=(RegionLevel.COUNTY, RegionLevel.TOWNSHIP)
    ).order_by("code")


@require_http_methods(["GET", "POST"])
def rehab_institution_create(request):
    user = request.user
    require(sel.can_manage_rehab(user))
    form = forms.RehabInstitutionForm(request.POST or None, regions=_institution_regions(user))
    if request.method == "POST" and form.is_valid():
        try:
            institution = svc.rehab_institution_create(by=user, **form.cleaned_data)
        except DomainError as err:
            domain_error_to_form(form, err)
        else:
            messages.success(request, _("康复机构已登记。"))
            return redirect("referrals:rehab-detail", institution.pk)
    return render(
        request,
        "referrals/rehab_form.html",
        {"tabs": area_tabs(user, "rehab"), "form": form, "title": _("登记社区康复机构")},
    )


@require_http_methods(["GET", "POST"])
def rehab_institution_edit(request, pk):
    user = request.user
    institution = sel.rehab_institution_get_for_user(user=user, pk=pk, request=request)
    require(sel.can_manage_rehab(user) and sel.acts_for(user, institution.organisation_id))
    initial = {
        "places": institution.places,
        "services": institution.services,
        "address": institution.address,
        "contact_name": institution.contact_name,
        "contact_phone": institution.contact_phone,
        "is_active": institution.is_active,
    }
    form = forms.RehabInstitutionForm(request.POST or None, initial=initial, editing=True)
    if request.method == "POST" and form.is_valid():
        try:
            svc.rehab_institution_update(
                institution_id=institution.pk, by=user, **form.cleaned_data
            )
        except DomainError as err:
            domain_error_to_form(form, err)
        else:
            messages.success(request, _("已保存。"))
            return redirect("referrals:rehab-detail", institution.pk)
    return render(
        request,
        "referrals/rehab_form.html",
        {
            "tabs": area_tabs(user, "rehab"),
            "form": form,
            "title": institution.organisation.name,
            "institution": institution,
        },
    )


@require_GET
def rehab_institution_detail(request, pk):
    user = request.user
    institution = sel.rehab_institution_get_for_user(user=user, pk=pk, request=request)
    acting = sel.acts_for(user, institution.organisation_id)
    enrolments = (
        sel.rehab_enrolment_list_visible_to(user=user)
        .filter(institution=institution)
        .select_related("referral")
        .order_by("status", "-started_on")
    )
    active = [e for e in enrolments if e.status == EnrolmentStatus.ACTIVE]
    ended = [e for e in enrolments if e.status != EnrolmentStatus.ACTIVE][:50]
    sessions = list(
        institution.sessions.annotate(
            present=Count("attendance", filter=Q(attendance__attended=True)),
            listed=Count("attendance"),
        ).order_by("-held_on", "-id")[:20]
    )
    return render(
        request,
        "referrals/rehab_detail.html",
        {
            "tabs": area_tabs(user, "rehab"),
            "institution": institution,
            "active": active,
            "ended": ended,
            "taken": institution.enrolments.filter(status=EnrolmentStatus.ACTIVE).count(),
            "sessions": sessions,
            "can_act": acting,
            "can_edit": acting and sel.can_manage_rehab(user),
            "can_enrol": acting or sel.is_health(user),
            "end_form": forms.EnrolmentEndForm(),
        },
    )


@require_http_methods(["GET", "POST"])
def rehab_enrol(request, pk):
    user = request.user
    institution = sel.rehab_institution_get_for_user(user=user, pk=pk, request=request)
    require(sel.acts_for(user, institution.organisation_id) or sel.is_health(user))
    patient = None
    patient_id = request.GET.get("patient") or request.POST.get("patient")
    if patient_id:
        patient = patient_get_for_user(user=user, pk=patient_id, request=request)
    search_form, results = _patient_choices(request, user)
    form = forms.EnrolForm(request.POST if request.method == "POST" else None)
    if patient is not None and request.method == "POST" and form.is_valid():
        try:
            svc.rehab_enrol(
                patient_id=patient.pk,
                institution_id=institution.pk,
                by=user,
                request=request,
                **form.cleaned_data,
            )
        except DomainError as err:
            domain_error_to_form(form, err)
        except PermissionDenied:
            form.add_error(None, svc.ERR_NOT_ALLOWED)
        else:
            messages.success(request, _("已入组社区康复。"))
            return redirect("referrals:rehab-detail", institution.pk)
    return render(
        request,
        "referrals/rehab_enrol.html",
        {
            "tabs": area_tabs(user, "rehab"),
            "institution": institution,
            "patient": patient,
            "search_form": search_form,
            "results": results,
            "form": form,
        },
    )


@require_http_methods(["GET", "POST"])
def rehab_session_create(request, pk):
    user = request.user
    institution = sel.rehab_institution_get_for_user(user=user, pk=pk, request=request)
    require(sel.acts_for(user, institution.organisation_id))
    enrolments = list(
        institution.enrolments.filter(status=EnrolmentStatus.ACTIVE)
        .select_related("patient")
        .order_by("patient__name")
    )
    form = forms.RehabSessionForm(
        request.POST or None, enrolments=enrolments, initial={"held_on": timezone.localdate()}
    )
    if request.method == "POST" and form.is_valid():
        try:
            svc.rehab_session_record(institution_id=institution.pk, by=user, **form.cleaned_data)
        except DomainError as err:
            domain_error_to_form(form, err)
        else:
            messages.success(request, _("活动已记录。"))
            return redirect("referrals:rehab-detail", institution.pk)
    return render(
        request,
        "referrals/rehab_session_form.html",
        {"tabs": area_tabs(user, "rehab"), "institution": institution, "form": form},
    )


@require_POST
def rehab_enrolment_end(request, pk):
    user = request.user
    enrolment = sel.rehab_enrolment_get_for_user(user=user, pk=pk, request=request)
    form = forms.EnrolmentEndForm(request.POST)
    if form.is_valid():
        try:
            svc.rehab_enrolment_end(
                enrolment_id=enrolment.pk,
                by=user,
                reason=form.cleaned_data["reason"],
                note=form.cleaned_data["note"],
                request=request,
            )
            messages.success(request, _("已结束社区康复。"))
        except DomainError as err:
            messages.error(request, str(err.message))
    else:
        messages.error(request, _("请选择结束原因。"))
    return redirect("referrals:rehab-detail", enrolment.institution_id)


@require_http_methods(["GET", "POST"])
def rehab_green_channel_view(request, pk):
    """Relapse during rehab: straight back to hospital."""
    user = request.user
    enrolment = sel.rehab_enrolment_get_for_user(user=user, pk=pk, request=request)
    require(
        enrolment.status == EnrolmentStatus.ACTIVE
        and (
            sel.acts_for(user, enrolment.institution.organisation_id)
            or can_manage_patient(user, enrolment.patient)
        )
    )
    hospitals = sel.referral_receiving_organisations(kind=ReferralKind.UPWARD, user=user)
    form = forms.GreenChannelForm(request.POST or None, hospitals=hospitals)
    if request.method == "POST" and form.is_valid():
        try:
            referral = rehab_green_channel(
                enrolment_id=enrolment.pk,
                by=user,
                to_organisation=form.cleaned_data["to_organisation"],
                reason=form.cleaned_data["reason"],
                request=request,
            )
        except DomainError as err:
            domain_error_to_form(form, err)
        else:
            messages.success(request, _("已通过绿色通道转诊至医院。"))
            return redirect("referrals:detail", referral.pk)
    return render(
        request,
        "referrals/rehab_green_channel.html",
        {"tabs": area_tabs(user, "rehab"), "enrolment": enrolment, "form": form},
    )
