"""Exchange pages: partners, package runs, reconciliation uploads and
results, entitlement tasks."""

from __future__ import annotations

import io

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from openpyxl import Workbook

from accounts.exports import export_reason, export_view
from accounts.models import Organisation
from accounts.selectors import organisation_of
from audit.services import export_record
from core.errors import DomainError
from referrals import forms, tabular
from referrals import selectors as sel
from referrals.models import ItemOutcome, TaskKind, TaskStatus
from referrals.models.exchange import disagreement_value_label
from referrals.services import exchange as exchange_svc
from referrals.services import reconciliation as recon_svc
from referrals.views.common import (
    area_tabs,
    domain_error_to_form,
    paginate,
    patient_url,
    require,
)


@require_GET
def exchange_home(request):
    user = request.user
    require(sel.can_use_exchange(user))
    partners = list(sel.exchange_partner_list_visible_to(user=user))
    runs = list(sel.exchange_run_list_visible_to(user=user).order_by("-created_at")[:20])
    reconciliations = list(sel.reconciliation_list_visible_to(user=user)[:20])
    open_tasks = sel.entitlement_task_list_visible_to(user=user).filter(status="open").count()
    return render(
        request,
        "referrals/exchange_home.html",
        {
            "tabs": area_tabs(user, "exchange"),
            "partners": partners,
            "runs": runs,
            "reconciliations": reconciliations,
            "open_tasks": open_tasks,
            "can_manage": sel.can_manage_partners(user),
            "can_reconcile": bool(sel.reconcile_partners_for(user)),
        },
    )


def _receiving_organisations(user):
    county = sel.county_of(organisation_of(user))
    return (
        Organisation.objects.filter(region__path__startswith=county.path, is_active=True)
        .exclude(department="health")
        .select_related("region")
        .order_by("department", "name")
    )


@require_http_methods(["GET", "POST"])
def partner_create(request):
    user = request.user
    require(sel.can_manage_partners(user))
    form = forms.PartnerForm(request.POST or None, organisations=_receiving_organisations(user))
    if request.method == "POST" and form.is_valid():
        try:
            partner = exchange_svc.exchange_partner_create(
                by=user, data=form.cleaned_data, request=request
            )
        except DomainError as err:
            domain_error_to_form(form, err)
        else:
            messages.success(request, _("交换对象已创建；请将签名密钥通过安全渠道交给对方。"))
            return redirect("referrals:partner-detail", partner.pk)
    return render(
        request,
        "referrals/partner_form.html",
        {"tabs": area_tabs(user, "exchange"), "form": form, "title": _("新建交换对象")},
    )


@require_GET
def partner_detail(request, pk):
    user = request.user
    partner = sel.exchange_partner_get_for_user(user=user, pk=pk, request=request)
    runs = list(sel.exchange_run_list_visible_to(user=user).filter(partner=partner)[:30])
    return render(
        request,
        "referrals/partner_detail.html",
        {
            "tabs": area_tabs(user, "exchange"),
            "partner": partner,
            "runs": runs,
            "can_manage": sel.can_manage_partners(user),
            "revealed_key": request.session.pop(f"partner-key-{partner.pk}", None),
        },
    )


@require_http_methods(["GET", "POST"])
def partner_edit(request, pk):
    user = request.user
    partner = sel.exchange_partner_get_for_user(user=user, pk=pk, manage=True, request=request)
    initial = {f: getattr(partner, f) for f in exchange_svc.PARTNER_FIELDS}
    form = forms.PartnerForm(
        request.POST or None,
        initial=initial,
        organisations=_receiving_organisations(user),
        editing=True,
    )
    if request.method == "POST" and form.is_valid():
        try:
            exchange_svc.exchange_partner_update(
                partner_id=partner.pk, by=user, data=form.cleaned_data, request=request
            )
        except DomainError as err:
            domain_error_to_form(form, err)
        else:
            messages.success(request, _("已保存。"))
            return redirect("referrals:partner-detail", partner.pk)
    return render(
        request,
        "referrals/partner_form.html",
        {"tabs": area_tabs(user, "exchange"), "form": form, "title": partner.name},
    )


@require_POST
def partner_key(request, pk):
    """Rotate (``action=rotate``) or show once (``action=reveal``) the key."""
    user = request.user
    action = request.POST.get("action")
    if action == "rotate":
        exchange_svc.exchange_partner_rotate_key(partner_id=pk, by=user, request=request)
        messages.success(request, _("已更换签名密钥，请将新密钥交给对方。"))
    key = exchange_svc.exchange_partner_reveal_key(partner_id=pk, by=user, request=request)
    # shown once on the next page, never in a URL
    request.session[f"partner-key-{pk}"] = key
    return redirect("referrals:partner-detail", pk)


@require_POST
def partner_build(request, pk):
    user = request.user
    run = exchange_svc.exchange_build_now(partner_id=pk, by=user, request=request)
    if run is None:
        messages.info(request, _("本期数据包已生成过。"))
        return redirect("referrals:partner-detail", pk)
    messages.success(request, _("数据包已生成，将自动投递。"))
    return redirect("referrals:run-detail", run.pk)


@require_GET
def run_detail(request, pk):
    user = request.user
    run = sel.exchange_run_get_for_user(user=user, pk=pk, request=request)
    return render(
        request,
        "referrals/run_detail.html",
        {
            "tabs": area_tabs(user, "exchange"),
            "run": run,
            "manifest_items": sorted(
                (k, v) for k, v in run.manifest.items() if k not in ("columns", "headers")
            ),
            "headers": run.manifest.get("headers", []),
            "can_download": sel.can_download_package(user, run),
            "can_redeliver": sel.can_manage_partners(user) and run.status == "failed",
        },
    )


@require_http_methods(["GET", "POST"])
@export_view("exchange_package")
def run_download(request, pk):
    user = request.user
    run = sel.exchange_run_get_for_user(user=user, pk=pk, request=request)
    require(sel.can_download_package(user, run))
    reason = export_reason(request)
    content = exchange_svc.exchange_package_download(
        run=run, by=user, reason=reason, request=request
    )
    response = HttpResponse(content, content_type=tabular.CONTENT_TYPES[run.manifest["format"]])
    response["Content-Disposition"] = f'attachment; filename="{run.file_name}"'
    return response


@require_POST
def run_redeliver(request, pk):
    try:
        exchange_svc.exchange_redeliver(run_id=pk, by=request.user, request=request)
        messages.success(request, _("已重新排队投递。"))
    except DomainError as err:
        messages.error(request, str(err.message))
    return redirect("referrals:run-detail", pk)


@require_http_methods(["GET", "POST"])
def reconciliation_create(request):
    user = request.user
    partners = sel.reconcile_partners_for(user)
    require(bool(partners))
    form = forms.ReconciliationForm(request.POST or None, request.FILES or None, partners=partners)
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            run = recon_svc.reconciliation_run(
                by=user,
                partner=form.cleaned_data["partner"],
                file_name=upload.name,
                data=upload.read(),
                request=request,
            )
        except DomainError as err:
            domain_error_to_form(form, err)
        except PermissionDenied:
            form.add_error("partner", recon_svc.ERR_NOT_ALLOWED)
        else:
            messages.success(request, _("比对完成。"))
            return redirect("referrals:reconciliation-detail", run.pk)
    return render(
        request,
        "referrals/reconciliation_form.html",
        {"tabs": area_tabs(user, "exchange"), "form": form},
    )


OUTCOME_TABS = (
    ItemOutcome.MISSING_FROM_REGISTER,
    ItemOutcome.REVIEW,
    ItemOutcome.HIGH_RISK_MISSING,
    ItemOutcome.MATCHED,
    ItemOutcome.INVALID,
    ItemOutcome.DUPLICATE,
)


@require_GET
def reconciliation_detail(request, pk):
    user = request.user
    run = sel.reconciliation_get_for_user(user=user, pk=pk, request=request)
    outcome = request.GET.get("outcome") or ItemOutcome.MISSING_FROM_REGISTER
    if outcome not in ItemOutcome.values:
        outcome = ItemOutcome.MISSING_FROM_REGISTER
    items = sel.reconciliation_items(user=user, run=run).filter(outcome=outcome)
    page, query = paginate(request, items, size=50)
    manageable = {
        r.pk: sel.can_manage_in(user, r.patient.region)
        for r in page.object_list
        if r.patient_id and r.outcome == ItemOutcome.REVIEW
    }
    kind_labels = dict(TaskKind.choices)
    rows = [
        {
            "item": item,
            "disagreements": [
                (
                    kind_labels.get(d["kind"], d["kind"]),
                    disagreement_value_label(d["kind"], d["partner_value"]),
                    disagreement_value_label(d["kind"], d["register_value"]),
                )
                for d in item.disagreements
            ],
            "can_review": manageable.get(item.pk, False) and item.review_status == "pending",
            "patient_link": patient_url(item.patient_id) if item.patient_id else None,
        }
        for item in page.object_list
    ]
    counts = run.counts or {}
    labels = dict(ItemOutcome.choices)
    count_keys = {
        ItemOutcome.MISSING_FROM_REGISTER: "missing_from_register",
        ItemOutcome.REVIEW: "needs_review",
        ItemOutcome.HIGH_RISK_MISSING: "high_risk_missing_from_partner",
        ItemOutcome.MATCHED: "matched",
        ItemOutcome.INVALID: "invalid_rows",
        ItemOutcome.DUPLICATE: "duplicate_rows",
    }
    tabs = [
        {
            "key": o,
            "label": labels[o],
            "count": counts.get(count_keys[o], 0),
            "active": o == outcome,
        }
        for o in OUTCOME_TABS
    ]
    return render(
        request,
        "referrals/reconciliation_detail.html",
        {
            "tabs": area_tabs(user, "exchange"),
            "run": run,
            "counts": counts,
            "outcome_tabs": tabs,
            "outcome": outcome,
            "page": page,
            "query": query,
            "rows": rows,
            "full_identity": sel.is_health(user),
        },
    )


@require_POST
def reconciliation_review(request, pk, item_pk):
    try:
        recon_svc.reconciliation_review(
            run_id=pk,
            item_id=item_pk,
            by=request.user,
            same_person=request.POST.get("same_person") == "1",
            request=request,
        )
        messages.success(request, _("已核对。"))
    except DomainError as err:
        messages.error(request, str(err.message))
    return redirect(reverse("referrals:reconciliation-detail", args=[pk]) + "?outcome=review")


@require_http_methods(["GET", "POST"])
@export_view("reconciliation_high_risk")
def reconciliation_high_risk_export(request, pk):
    """The list for police: registered high-risk patients not on their list."""
    user = request.user
    run = sel.reconciliation_get_for_user(user=user, pk=pk, request=request)
    reason = export_reason(request)
    items = list(
        sel.reconciliation_items(user=user, run=run).filter(outcome=ItemOutcome.HIGH_RISK_MISSING)
    )
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("高风险患者未在公安名单")
    ws.append(["姓名", "性别", "身份证号", "现住址区划", "现住址", "危险性等级"])
    for item in items:
        p = item.patient
        ws.append(
            [
                p.name,
                p.get_gender_display(),
                p.id_number_masked if not sel.is_health(user) else p.id_number,
                p.region.name,
                p.address,
                p.risk_level,
            ]
        )
    out = io.BytesIO()
    wb.save(out)
    export_record(
        user=user,
        what="reconciliation_high_risk",
        reason=reason,
        count=len(items),
        object_id=run.pk,
        request=request,
    )
    response = HttpResponse(
        out.getvalue(),
        content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    )
    response["Content-Disposition"] = f'attachment; filename="high_risk_{run.pk}.xlsx"'
    return response


@require_GET
def task_list(request):
    user = request.user
    require(sel.can_use_exchange(user) or sel.can_report_clue(user))
    qs = sel.entitlement_task_list_visible_to(user=user)
    status = request.GET.get("status") or TaskStatus.OPEN
    if status in TaskStatus.values:
        qs = qs.filter(status=status)
    page, query = paginate(request, qs)
    return render(
        request,
        "referrals/task_list.html",
        {
            "tabs": area_tabs(user, "exchange"),
            "page": page,
            "query": query,
            "status": status,
            "statuses": TaskStatus.choices,
            "form": forms.TaskResolveForm(),
        },
    )


@require_POST
def task_resolve(request, pk):
    user = request.user
    require(sel.can_use_exchange(user) or sel.can_report_clue(user))
    sel.entitlement_task_get_for_user(user=user, pk=pk, request=request)
    form = forms.TaskResolveForm(request.POST)
    if form.is_valid():
        try:
            recon_svc.entitlement_task_resolve(
                task_id=pk,
                by=request.user,
                status=form.cleaned_data["status"],
                note=form.cleaned_data["note"],
                request=request,
            )
            messages.success(request, _("已处理。"))
        except DomainError as err:
            messages.error(request, str(err.message))
    else:
        messages.error(request, _("请选择处理结果。"))
    return redirect("referrals:task-list")
