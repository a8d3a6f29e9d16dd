"""Exporting data is a permission of its own, needs a written reason and is
audited (SECURITY.md G14). Other apps call these; they never decide it
themselves.

- ``export_allowed(user)``: the account holds ``accounts.export_data``
  (granted per account by the system admin) and is not one of the 三员.
- ``export_requires_reason(what)``: decorator for a page view that produces a
  file. Without the permission: 403. GET (or an invalid POST) shows a form
  asking for the reason; a valid POST calls the view with ``reason=...``.
  The view then calls ``audit.services.export_record(...)`` with the number
  of rows it wrote.
- ``ExportReasonMixin``: adds the required ``reason`` field to any form (for
  pages that already have a filter form).
- ``clean_reason(value)``: the same rule for API views (raise
  ``ValidationError`` on a missing or too short reason).
- ``export_view(what)`` + ``export_reason(request)``: for a file view that
  must first check the caller's role and the object's scope (a 404 before
  the reason form). The view calls ``export_reason(request)`` after its own
  checks; without the permission that raises PermissionDenied, without a
  valid reason the decorator shows the reason form instead. A marked view
  that answers 200 without having called ``export_record`` is a programming
  error (ImproperlyConfigured), so an export cannot skip its audit row.
  Every page export of the app is marked (tests/test_exports_everywhere.py
  finds them in the URL conf, and fails on a file view that is not).
"""

from __future__ import annotations

from functools import wraps

from django import forms
from django.core.exceptions import ImproperlyConfigured, PermissionDenied, ValidationError
from django.shortcuts import render
from django.utils.translation import gettext_lazy as _

from accounts.roles import ROLE_INFO, role_of

EXPORT_PERM = "accounts.export_data"
REASON_MIN_LENGTH = 4
REASON_MAX_LENGTH = 200
ERR_EXPORT_REASON = _("请填写导出用途（至少4个字）。")
HELP_EXPORT_REASON = _("写明导出用途，例如“季度报表上报”。请勿填写患者姓名、证件号码等个人信息。")


def export_allowed(user) -> bool:
    """May ``user`` export data at all (what they may export is still
    limited by the selectors and field sets)?"""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    role = role_of(user)
    if role is None or ROLE_INFO[role].admin_class or user.is_superuser:
        return False
    return user.has_perm(EXPORT_PERM)


def clean_reason(value) -> str:
    value = (value or "").strip()
    if len(value) < REASON_MIN_LENGTH:
        raise ValidationError(ERR_EXPORT_REASON, code="export_reason")
    return value[:REASON_MAX_LENGTH]


class ExportReasonMixin(forms.Form):
    reason = forms.CharField(
        label=_("导出用途"),
        max_length=REASON_MAX_LENGTH,
        help_text=HELP_EXPORT_REASON,
        error_messages={"required": ERR_EXPORT_REASON},
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )

    def clean_reason(self):
        return clean_reason(self.cleaned_data.get("reason"))


class ExportReasonForm(ExportReasonMixin):
    pass


def export_requires_reason(what: str, *, template: str = "accounts/export_reason.html"):
    """Decorate a page view ``view(request, *args, reason, **kwargs)``."""

    def decorator(view):
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if not export_allowed(request.user):
                raise PermissionDenied
            form = ExportReasonForm(request.POST if request.method == "POST" else None)
            if form.is_bound and form.is_valid():
                return view(request, *args, reason=form.cleaned_data["reason"], **kwargs)
            return render(
                request,
                template,
                {"form": form, "what": what, "action": request.get_full_path()},
            )

        return wrapper

    return decorator


class ExportReasonNeeded(Exception):
    """Raised by ``export_reason``: show ``form`` (unbound or with errors)."""

    def __init__(self, form):
        super().__init__("export reason needed")
        self.form = form


def export_reason(request) -> str:
    """The caller's reason for the export of an ``export_view``: the
    permission is checked (403), then a valid POSTed reason is returned;
    otherwise the reason form is shown (``ExportReasonNeeded``)."""
    if not export_allowed(request.user):
        raise PermissionDenied
    form = ExportReasonForm(request.POST if request.method == "POST" else None)
    if not (form.is_bound and form.is_valid()):
        raise ExportReasonNeeded(form)
    reason = form.cleaned_data["reason"]
    state = getattr(request, "_export", None)
    if state is not None:
        state["reason"] = reason
    return reason


def export_view(what: str, *, template: str = "accounts/export_reason.html"):
    """Mark a page view that writes a file of the register's data; see the
    module docstring. ``view.export_what`` names what it exports."""

    def decorator(view):
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            request._export = {"what": what, "reason": None, "audited": False}
            try:
                response = view(request, *args, **kwargs)
            except ExportReasonNeeded as need:
                return render(
                    request,
                    template,
                    {"form": need.form, "what": what, "action": request.get_full_path()},
                )
            if response.status_code == 200 and not (
                request._export["reason"] and request._export["audited"]
            ):
                raise ImproperlyConfigured(
                    f"export view {view.__qualname__} answered without asking for a "
                    "reason and calling audit.services.export_record"
                )
            return response

        wrapper.export_what = what
        return wrapper

    return decorator
