"""Helpers shared by the referrals pages: the area tabs, pagination,
404/403 answers, safe links into other apps."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext_lazy as _

from referrals import selectors as sel

PAGE_SIZE = 20


def require(condition: bool) -> None:
    """A role capability the user lacks: 403 (objects out of scope are 404)."""
    if not condition:
        raise PermissionDenied


def area_tabs(user, active: str) -> list[dict]:
    """The referrals area's own tabs, by what the user may do."""
    tabs = [
        ("inbox", "referrals:inbox", _("转诊"), sel.can_use_referrals(user)),
        ("rehab", "referrals:rehab-list", _("社区康复"), sel.can_use_referrals(user)),
        ("clues", "referrals:clue-list", _("线索"), sel.can_report_clue(user)),
        ("import", "referrals:import-home", _("花名册导入"), sel.can_import_roster(user)),
        ("exchange", "referrals:exchange-home", _("信息交换"), sel.can_use_exchange(user)),
    ]
    return [
        {"key": key, "url": reverse(name), "label": label, "active": key == active}
        for key, name, label, allowed in tabs
        if allowed
    ]


def paginate(request, qs, size: int = PAGE_SIZE):
    paginator = Paginator(qs, size)
    page = paginator.get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return page, query.urlencode()


def patient_url(patient_id) -> str | None:
    """The patient page, when the patients app provides one."""
    try:
        return reverse("patients:detail", args=[patient_id])
    except NoReverseMatch:
        return None


def domain_error_to_form(form, err) -> None:
    field = err.field if err.field in form.fields else None
    form.add_error(field, str(err.message))
