"""Clue pages: report a suspected case, the list, diagnosis review."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.shortcuts import redirect, render
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.models import OrganisationKind, Region, RegionLevel
from accounts.roles import MANAGE_PATIENTS, VIEW_PATIENTS
from accounts.scoping import inside_q, regions_with_perm
from core.errors import DomainError
from referrals import forms
from referrals import selectors as sel
from referrals.models import ClueStatus
from referrals.services import clues as svc
from referrals.views.common import (
    area_tabs,
    domain_error_to_form,
    paginate,
    patient_url,
    require,
)


@require_GET
def clue_list(request):
    user = request.user
    require(sel.can_report_clue(user))
    qs = sel.clue_list_visible_to(user=user)
    status = request.GET.get("status") or ""
    if status in ClueStatus.values:
        qs = qs.filter(status=status)
    unassigned = request.GET.get("unassigned") == "1"
    if unassigned:
        qs = qs.exclude(assigned_organisation__kind=OrganisationKind.HEALTH_CENTRE)
    page, query = paginate(request, qs.order_by("-created_at"))
    return render(
        request,
        "referrals/clue_list.html",
        {
            "tabs": area_tabs(user, "clues"),
            "page": page,
            "query": query,
            "status": status,
            "statuses": ClueStatus.choices,
            "unassigned": unassigned,
            "full_identity": sel.is_health(user),
        },
    )


def _regions(user, perm=VIEW_PATIENTS, levels=(RegionLevel.TOWNSHIP, RegionLevel.VILLAGE)):
    return Region.objects.filter(
        inside_q(regions_with_perm(user, perm), path_field="path"), level__in=levels
    ).order_by("code")


@require_http_methods(["GET", "POST"])
def clue_create(request):
    user = request.user
    require(sel.can_report_clue(user))
    form = forms.ClueForm(
        request.POST or None, sources=svc.sources_for(user), regions=_regions(user)
    )
    if request.method == "POST" and form.is_valid():
        try:
            clue = svc.clue_report(by=user, data=form.cleaned_data, request=request)
        except DomainError as err:
            domain_error_to_form(form, err)
        else:
            messages.success(request, _("线索已报告，将由所在乡镇卫生院组织诊断复核。"))
            return redirect("referrals:clue-detail", clue.pk)
    return render(
        request, "referrals/clue_form.html", {"tabs": area_tabs(user, "clues"), "form": form}
    )


@require_GET
def clue_detail(request, pk):
    user = request.user
    clue = sel.clue_get_for_user(user=user, pk=pk, request=request)
    sel.record_read(user=user, object_type="clue", obj=clue, request=request)
    reviewer = sel.can_review_clue(user, clue) and clue.status == ClueStatus.OPEN
    return render(
        request,
        "referrals/clue_detail.html",
        {
            "tabs": area_tabs(user, "clues"),
            "clue": clue,
            "full_identity": sel.is_health(user),
            "can_review": reviewer,
            "close_form": forms.ClueCloseForm(),
            "patient_link": patient_url(clue.patient_id) if clue.patient_id else None,
        },
    )


@require_http_methods(["GET", "POST"])
def clue_confirm(request, pk):
    """Diagnosis review confirmed: register the patient from the clue."""
    user = request.user
    clue = sel.clue_get_for_user(user=user, pk=pk, request=request)
    require(sel.can_review_clue(user, clue) and clue.status == ClueStatus.OPEN)
    villages = _regions(user, MANAGE_PATIENTS, (RegionLevel.VILLAGE,))
    initial = {
        "name": clue.name,
        "gender": clue.gender,
        "id_type": clue.id_type,
        "id_number": clue.id_number,
        "birth_date": clue.birth_date,
        "address": clue.address,
    }
    if clue.region.level == RegionLevel.VILLAGE:
        initial["region"] = clue.region
    else:
        villages = villages.filter(Q(path__startswith=clue.region.path)) or villages
    form = forms.ClueConfirmForm(request.POST or None, regions=villages, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            svc.clue_confirm(clue_id=clue.pk, by=user, data=form.patient_data(), request=request)
        except DomainError as err:
            domain_error_to_form(form, err)
        except PermissionDenied:
            form.add_error(None, svc.ERR_NOT_ALLOWED)
        else:
            messages.success(request, _("已确诊并登记为患者。"))
            return redirect("referrals:clue-detail", clue.pk)
    return render(
        request,
        "referrals/clue_confirm.html",
        {"tabs": area_tabs(user, "clues"), "clue": clue, "form": form},
    )


@require_POST
def clue_close(request, pk):
    user = request.user
    clue = sel.clue_get_for_user(user=user, pk=pk, request=request)
    form = forms.ClueCloseForm(request.POST)
    if not form.is_valid():
        messages.error(request, svc.ERR_CLOSE_REASON)
        return redirect("referrals:clue-detail", clue.pk)
    try:
        svc.clue_close(
            clue_id=clue.pk,
            by=user,
            reason=form.cleaned_data["reason"],
            note=form.cleaned_data["note"],
            request=request,
        )
        messages.success(request, _("线索已关闭。"))
    except DomainError as err:
        messages.error(request, str(err.message))
    return redirect("referrals:clue-detail", clue.pk)
