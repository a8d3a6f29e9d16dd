from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET, require_POST

from accounts import selectors as account_selectors
from accounts import services as account_services
from accounts.forms import ReviewForm
from accounts.permissions import role_required
from accounts.roles import Role
from audit import selectors
from audit.forms import EventFilterForm
from audit.services import audit_record
from core.errors import DomainError
from patients.selectors import can_manage_patient, patient_get_for_user

AUDIT = Role.AUDIT_ADMIN
PAGE_SIZE = 50
MSG_REVIEWED = _("已记录审核。")


def _query_without_page(request) -> str:
    params = request.GET.copy()
    params.pop("page", None)
    return params.urlencode()


@require_GET
@role_required(AUDIT)
def event_list(request):
    """The audit log with filters (actor, action, date, object) and pages."""
    form = EventFilterForm(request.GET or None)
    filters = form.cleaned_data if form.is_valid() else {}
    qs = selectors.event_list_for(request.user, **{k: v for k, v in filters.items() if v})
    page = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "audit/event_list.html",
        {"form": form, "page": page, "query": _query_without_page(request), "tab": "events"},
    )


@require_GET
@role_required(AUDIT, Role.SECURITY_ADMIN)
def unusual_list(request):
    """Accounts flagged for opening unusually many patients in a day: the
    audit admin reviews them, the security admin acts on the account (both
    are told on every page: accounts.context_processors)."""
    page = Paginator(selectors.unusual_access_list_for(request.user), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    return render(request, "audit/unusual_list.html", {"page": page, "query": "", "tab": "unusual"})


@require_GET
@role_required(AUDIT)
def breakglass_list(request):
    """Break-the-glass grants to review, with how often each was used."""
    pending = request.GET.get("pending") == "1"
    qs = account_selectors.breakglass_list_for_review(request.user, pending_only=pending)
    page = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "audit/breakglass_list.html",
        {
            "page": page,
            "pending": pending,
            "query": _query_without_page(request),
            "form": ReviewForm(),
            "tab": "breakglass",
        },
    )


@require_POST
@role_required(AUDIT)
def breakglass_review(request, pk):
    grant = account_selectors.breakglass_get_for_review(request.user, pk)
    form = ReviewForm(request.POST)
    if form.is_valid():
        try:
            account_services.breakglass_review(
                grant=grant, by=request.user, note=form.cleaned_data["note"]
            )
        except DomainError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, MSG_REVIEWED)
    return redirect("audit:breakglass-list")


@require_GET
def patient_access(request, pk):
    """Who saw this record: for the staff who manage the patient (their
    health centre, the county hospital); anyone else gets 404."""
    patient = patient_get_for_user(user=request.user, pk=pk, request=request)
    if not can_manage_patient(request.user, patient):
        audit_record(
            actor=request.user,
            action="access.denied",
            object_type="patient",
            object_id=patient.pk,
            detail={"view": "audit:patient-access"},
            request=request,
        )
        raise Http404
    audit_record(
        actor=request.user,
        action="patient.access_log",
        object_type="patient",
        object_id=patient.pk,
        request=request,
    )
    page = Paginator(selectors.patient_access_list(patient), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    return render(
        request, "audit/patient_access.html", {"patient": patient, "page": page, "query": ""}
    )
