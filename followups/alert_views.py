"""The alert inbox (``/alerts/``): built for a police officer on a phone as
much as for a doctor at a desk. Each organisation acknowledges and resolves
its own copy of an alert; patients are shown with the minimum necessary of
the user's department (never a diagnosis)."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _t
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.roles import fieldset_of
from accounts.selectors import organisation_of
from audit.services import audit_record
from core.errors import DomainError
from followups.forms import AlertResolveForm
from followups.models import AlertKind, AlertRecipient, AlertStatus
from followups.selectors import (
    alert_area_list_for,
    alert_inbox_for,
    alert_recipient_get_for_user,
    alert_recipients_of,
    can_oversee_alerts,
)
from followups.services.alerts import alert_acknowledge, alert_resolve
from followups.views import RowUrls, safe_next
from patients.fieldsets import FULL_ID_FIELDSETS, sees
from patients.rules import mask_phone
from patients.services import patient_records_listed

PAGE_SIZE = 30
MSG_ACKNOWLEDGED = _("已签收。")
MSG_RESOLVED = _("已办结。")

STATUS_TABS = (
    ("open", _("待处理")),
    ("acknowledged", _("已签收")),
    ("resolved", _("已办结")),
    ("all", _("全部")),
)


def _guardian(patient):
    try:
        return patient.guardian
    except patient.__class__.guardian.RelatedObjectDoesNotExist:
        return None


def alert_texts() -> dict:
    """The inbox rows' fixed labels, translated once per page."""
    return {
        "kind": _t("类型"),
        "patient": _t("患者"),
        "address": _t("住址"),
        "guardian": _t("监护人"),
        "raised": _t("发出时间"),
        "status": _t("状态"),
        "actions": _t("操作"),
        "escalated": _t("升级"),
        "late": _t("已超时"),
        "acknowledge": _t("签收"),
        "resolve": _t("办结"),
    }


def alert_urls() -> RowUrls:
    return RowUrls("alerts:detail", "alerts:acknowledge", "alerts:resolve")


def alert_row(
    row: AlertRecipient,
    fieldset: str | None,
    *,
    full: bool = False,
    urls: RowUrls | None = None,
    now=None,
) -> dict:
    """What one inbox line shows: kind, deadline, who and where, and the
    guardian to call (phone masked in lists for non-health departments)."""
    alert, patient = row.alert, row.alert.patient
    now = now or timezone.now()
    urls = urls or alert_urls()
    guardian = _guardian(patient) if sees(fieldset, "guardian") else None
    phone = ""
    if guardian is not None and guardian.phone:
        phone = (
            guardian.phone if full or fieldset in FULL_ID_FIELDSETS else mask_phone(guardian.phone)
        )
    return {
        "row": row,
        "alert": alert,
        "patient": patient,
        "age": _t("%(age)s岁") % {"age": patient.age},
        "village": patient.region.name,
        "address": patient.address if sees(fieldset, "address") else "",
        "risk_level": alert.risk_level,
        "risk_text": _t("%(n)s级") % {"n": alert.risk_level}
        if alert.risk_level is not None
        else "",
        "guardian": guardian,
        "guardian_phone": phone,
        "late": row.status != AlertStatus.RESOLVED and alert.due_by and alert.due_by < now,
        "incident": alert.incident,
        "can_act": row.status != AlertStatus.RESOLVED,
        "can_acknowledge": row.status == AlertStatus.OPEN,
        "detail_url": urls("alerts:detail", alert.pk),
        "acknowledge_url": urls("alerts:acknowledge", alert.pk),
        "resolve_url": urls("alerts:resolve", alert.pk),
    }


@require_GET
def alert_list(request):
    """The organisation's inbox by status tab; county oversight (``?scope=area``)
    lists every alert about the patients in the user's area, read-only."""
    user = request.user
    fieldset = fieldset_of(user)
    status = request.GET.get("status") or "open"
    if status not in {key for key, _label in STATUS_TABS}:
        status = "open"
    kind = request.GET.get("kind") or ""
    if kind not in AlertKind.values:
        kind = ""
    oversee = can_oversee_alerts(user)
    area = oversee and request.GET.get("scope") == "area"
    status_filter = None if status == "all" else status
    if area:
        qs = alert_area_list_for(user=user, kind=kind or None, status=status_filter)
    else:
        qs = alert_inbox_for(user=user, kind=kind or None, status=status_filter)
    page = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
    if area:
        handling = alert_recipients_of(a.pk for a in page.object_list)
        rows = [
            {
                "alert": a,
                "patient": a.patient,
                "village": a.patient.region.name,
                "handling": handling.get(a.pk, []),
            }
            for a in page.object_list
        ]
    else:
        urls, now = alert_urls(), timezone.now()
        rows = [alert_row(r, fieldset, urls=urls, now=now) for r in page.object_list]
    # each alert shows its patient: a read of that patient (G12, G15)
    patient_records_listed(
        user=user,
        patient_ids=[(a if area else a.alert).patient_id for a in page.object_list],
        request=request,
        action="alert.list",
    )
    base = {"status": status, "kind": kind, "scope": "area" if area else ""}
    return render(
        request,
        "followups/alert_list.html",
        {
            "rows": rows,
            "page": page,
            "area": area,
            "oversee": oversee,
            "organisation": organisation_of(user),
            "status": status,
            "kind": kind,
            "tabs": [
                {"key": key, "label": label, "query": _query({**base, "status": key})}
                for key, label in STATUS_TABS
            ],
            "kinds": [("", _("全部类型")), *AlertKind.choices],
            "open_count": alert_inbox_for(user=user, status=AlertStatus.OPEN).count(),
            "query": _query(base),
            "next_url": request.get_full_path(),
            "show_patient_link": fieldset is not None,
            "t": alert_texts(),
        },
    )


def _query(params: dict) -> str:
    from urllib.parse import urlencode

    return urlencode({k: v for k, v in params.items() if v})


@require_GET
def alert_detail(request, pk):
    """One alert: the patient's minimum necessary, what happened (incident),
    and how every organisation told has handled it."""
    user = request.user
    row = alert_recipient_get_for_user(user=user, alert_id=pk, request=request)
    audit_record(
        actor=user,
        action="alert.view",
        object_type="patient",
        object_id=row.alert.patient_id,
        detail={"alert": str(row.alert_id)},
        request=request,
    )
    fieldset = fieldset_of(user)
    return render(
        request,
        "followups/alert_detail.html",
        {
            **alert_row(row, fieldset, full=True),
            "handling": alert_recipients_of([row.alert_id]).get(row.alert_id, []),
            "form": AlertResolveForm(),
            "next_url": request.get_full_path(),
            "show_followup": fieldset == "health" and row.alert.followup_id is not None,
        },
    )


def _back(request, fallback: str) -> str:
    return safe_next(request, fallback)


@require_POST
def alert_ack(request, pk):
    """Sign for an alert (one tap on a phone)."""
    user = request.user
    row = alert_acknowledge(alert_id=pk, by=user, request=request)
    if request.htmx:
        row = alert_recipient_get_for_user(user=user, alert_id=row.alert_id, request=request)
        return render(
            request,
            "followups/partials/_alert_row.html",
            {
                "r": alert_row(row, fieldset_of(user)),
                "t": alert_texts(),
                "next_url": _back(request, ""),
            },
        )
    messages.success(request, MSG_ACKNOWLEDGED)
    return redirect(_back(request, reverse("alerts:list")))


@require_http_methods(["GET", "POST"])
def alert_resolve_view(request, pk):
    """Resolve with a note of what was done (a page of its own: the
    confirmation step, and room to type on a phone)."""
    user = request.user
    row = alert_recipient_get_for_user(user=user, alert_id=pk, request=request)
    form = AlertResolveForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            alert_resolve(alert_id=pk, by=user, note=form.cleaned_data["note"], request=request)
        except DomainError as exc:
            form.add_error("note" if exc.field == "note" else None, exc.message)
        else:
            messages.success(request, MSG_RESOLVED)
            return redirect(_back(request, reverse("alerts:list")))
    # the page shows the patient: its first showing and a re-shown form alike
    audit_record(
        actor=user,
        action="alert.view",
        object_type="patient",
        object_id=row.alert.patient_id,
        detail={"alert": str(row.alert_id)},
        request=request,
    )
    return render(
        request,
        "followups/alert_resolve.html",
        {
            **alert_row(row, fieldset_of(user)),
            "form": form,
            "next_url": _back(request, reverse("alerts:list")),
        },
    )
