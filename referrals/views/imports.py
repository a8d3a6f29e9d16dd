"""Roster import pages: upload, template, progress while a worker runs it."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET, require_http_methods

from core.errors import DomainError
from referrals import forms, roster
from referrals import selectors as sel
from referrals.services import imports as svc
from referrals.views.common import area_tabs, domain_error_to_form, paginate, require

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@require_http_methods(["GET", "POST"])
def import_home(request):
    user = request.user
    require(sel.can_import_roster(user))
    form = forms.UploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            imp = svc.roster_import_start(
                by=user, file_name=upload.name, data=upload.read(), request=request
            )
        except DomainError as err:
            domain_error_to_form(form, err)
        else:
            messages.success(request, _("文件已上传，正在后台校验和导入。"))
            return redirect("referrals:import-detail", imp.pk)
    page, query = paginate(request, sel.roster_import_list_visible_to(user=user).defer("content"))
    return render(
        request,
        "referrals/import_home.html",
        {
            "tabs": area_tabs(user, "import"),
            "form": form,
            "page": page,
            "query": query,
            "columns": roster.COLUMNS,
        },
    )


@require_GET
def import_template(request):
    require(sel.can_import_roster(request.user))
    response = HttpResponse(roster.template_workbook(), content_type=XLSX)
    response["Content-Disposition"] = 'attachment; filename="roster_template.xlsx"'
    return response


@require_GET
def import_detail(request, pk):
    user = request.user
    imp = sel.roster_import_get_for_user(user=user, pk=pk, request=request)
    progress = sel.roster_import_progress(imp)
    context = {
        "tabs": area_tabs(user, "import"),
        "imp": imp,
        **progress,
        "errors": imp.errors[:500],
        "more_errors": max(0, len(imp.errors) - 500),
    }
    template = (
        "referrals/partials/_import_progress.html"
        if request.htmx
        else "referrals/import_detail.html"
    )
    return render(request, template, context)
