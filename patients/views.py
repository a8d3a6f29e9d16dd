"""Patient pages (server-rendered, htmx where a part updates in place).

Reads go through ``patients.selectors`` (scoped, out of scope = 404 and
audited); what a department sees is ``patients.fieldsets``; writes call
``patients.services``. Templates get ready-made rows and flags.
"""

from __future__ import annotations

from datetime import date, datetime

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.models import Region, RegionLevel
from accounts.roles import MANAGE_PATIENTS, VIEW_PATIENTS, fieldset_of
from accounts.scoping import inside_q, regions_with_perm
from audit.services import audit_record
from core.errors import DomainError
from patients import forms as pforms
from patients.fieldsets import (
    FILTERABLE,
    FULL_ID_FIELDSETS,
    SUPPLEMENT,
    WRITABLE,
    fields_for,
    sees,
)
from patients.models import (
    DANGEROUS_BEHAVIOURS,
    REGISTERED_STATUSES,
    CareTeamMember,
    Certificate,
    DatePrecision,
    Diagnosis,
    EconomicStatus,
    Employment,
    Guardian,
    HouseholdType,
    LockStatus,
    PastOutpatient,
    Patient,
    Poverty,
    Status,
    Symptom,
    TreatmentEffect,
)
from patients.selectors import (
    can_manage_patient,
    overdue_q,
    patient_get_for_user,
    patient_list_visible_to,
    patient_search,
)
from patients.services import (
    care_team_add,
    care_team_remove,
    patient_record_search,
    patient_record_view,
    patient_register,
    patient_update,
)

PAGE_SIZE = 20
# The village filter lists every village of the scope up to this many (a
# township, a small county); beyond, the villages of the chosen township.
MAX_VILLAGE_CHOICES = 60
HISTORY_LIMIT = 50

MSG_REGISTERED = _("已登记患者“%(name)s”。")
MSG_SAVED = _("已保存修改。")
MSG_UNCHANGED = _("没有需要保存的修改。")
MSG_MEMBER_ADDED = _("已添加关爱帮扶小组成员。")
MSG_MEMBER_REMOVED = _("已移除关爱帮扶小组成员。")
MSG_REVEALED = _("完整证件号码仅本次显示，查看已记录。")

# Columns of the list per department; each column only shows fields of that
# department's field set (checked by a test against fieldsets.FIELDSETS).
LIST_COLUMNS: dict[str, tuple[str, ...]] = {
    "health": (
        "name",
        "gender_age",
        "id_number",
        "region",
        "diagnosis",
        "status",
        "risk_level",
        "next_followup_due",
    ),
    "police": (
        "name",
        "gender_age",
        "id_number",
        "region",
        "status",
        "risk_level",
        "police_registered",
    ),
    "governance": (
        "name",
        "gender_age",
        "id_number",
        "region",
        "status",
        "risk_level",
        "next_followup_due",
    ),
    "civil_affairs": ("name", "gender_age", "id_number", "region", "status", "poverty"),
    "disabled_federation": ("name", "gender_age", "id_number", "region", "status", "certificate"),
}
COLUMN_FIELDS = {
    "name": ("name",),
    "gender_age": ("gender", "birth_date"),
    "id_number": ("id_number",),
    "region": ("region",),
    "diagnosis": ("diagnosis",),
    "status": ("status",),
    "risk_level": ("risk_level",),
    "next_followup_due": ("next_followup_due", "overdue"),
    "police_registered": ("police_registered",),
    "poverty": ("poverty",),
    "certificate": ("certificate", "certificate_grade"),
}
COLUMN_LABELS = {
    "name": _("姓名"),
    "gender_age": _("性别/年龄"),
    "id_number": _("证件号码"),
    "region": _("现住址"),
    "diagnosis": _("诊断"),
    "status": _("管理状态"),
    "risk_level": _("危险性"),
    "next_followup_due": _("下次随访"),
    "police_registered": _("公安列管"),
    "poverty": _("困难类别"),
    "certificate": _("残疾人证"),
}

# Rows of the identity tab, in order; each shown only when in the field set.
IDENTITY_ROWS = (
    "name",
    "gender",
    "birth_date",
    "id_type",
    "id_number",
    "ethnicity",
    "phone",
    "region",
    "address",
    "household_address",
    "status",
    "status_changed_at",
    "registered_on",
    "managing_organisation",
    "risk_level",
    "classification",
    "last_followup_date",
    "next_followup_due",
    "police_registered",
    "diagnosis",
    "diagnosis_hospital",
    "diagnosis_date",
    "in_hospital",
    "poverty",
    "insurance",
    "union_member",
    "certificate",
    "certificate_grade",
    "certificate_number",
    "in_community_rehab",
)
SUPPLEMENT_ROWS = tuple(
    f
    for f in SUPPLEMENT
    # shown on the identity tab, or folded into the date they qualify
    if f
    not in {
        "household_region",
        "household_address",
        "ethnicity",
        "first_onset_precision",
        "first_antipsychotic_precision",
    }
)
# Bookkeeping fields never listed as "changed" in the history tab.
HISTORY_HIDDEN = {"version", "id_number_index", "id", "created_at", "created_by"}
REASON_LABELS = {
    "patient.registered": _("登记"),
    "patient.updated": _("修改"),
    "seed_demo": _("演示数据"),
    "followup.recorded": _("随访"),
    "followup.corrected": _("更正随访"),
    "followup.due_capped": _("调整下次随访日期"),
}
HISTORY_TYPE_LABELS = {"+": _("新建"), "~": _("修改"), "-": _("删除")}

TABS = (
    ("identity", _("基本信息")),
    ("supplement", _("个人信息补充表")),
    ("guardians", _("监护人")),
    ("care-team", _("关爱帮扶小组")),
    ("followups", _("随访记录")),
    ("alerts", _("预警与肇事肇祸")),
    ("history", _("修改记录")),
)


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------


def _regions_in_scope(user, perm: str, levels, *, limit: int | None = None) -> list[Region]:
    """Regions of the given levels inside the regions the user holds ``perm``
    on (the first ``limit`` of them by code, when given)."""
    granted = regions_with_perm(user, perm)
    if not granted:
        return []
    qs = (
        Region.objects.filter(inside_q(granted, path_field="path"), level__in=levels)
        .select_related("parent")
        .order_by("code")
    )
    return list(qs[:limit] if limit is not None else qs)


def _display(obj, name: str):
    """A model field's value as shown to people."""
    field = obj._meta.get_field(name)
    value = getattr(obj, name)
    if value is None or value == "":
        return "—"
    if field.choices:
        return getattr(obj, f"get_{name}_display")()
    if isinstance(value, bool):
        return _("是") if value else _("否")
    if isinstance(value, datetime):
        return date_format(timezone.localtime(value), "Y-m-d H:i")
    if isinstance(value, date):
        return date_format(value, "Y-m-d")
    return value


def _partial_date(value: date | None, precision: str) -> str:
    if value is None:
        return "—"
    if precision == DatePrecision.YEAR:
        return _("%(year)s年") % {"year": value.year}
    if precision == DatePrecision.MONTH:
        return _("%(year)s年%(month)s月") % {"year": value.year, "month": value.month}
    return date_format(value, "Y-m-d")


def _region_label(region: Region) -> str:
    parent = region.parent if region.parent_id else None
    return f"{parent.name} {region.name}" if parent else region.name


def _risk_label(level) -> str:
    return "—" if level is None else _("%(level)s级") % {"level": level}


def _guardian_of(patient: Patient) -> Guardian | None:
    try:
        return patient.guardian
    except Guardian.DoesNotExist:
        return None


def _is_partial(request) -> bool:
    htmx = getattr(request, "htmx", None)
    return bool(htmx) and not htmx.history_restore_request


def _render(request, full: str, partial: str, context: dict, status: int = 200):
    template = partial if _is_partial(request) else full
    response = render(request, template, context, status=status)
    patch_vary_headers(response, ("HX-Request",))
    return response


def _field_errors_to_form(form, exc: Exception) -> None:
    """Attach a DomainError or a model ValidationError to the form."""
    if isinstance(exc, DomainError):
        form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        return
    if isinstance(exc, ValidationError) and hasattr(exc, "error_dict"):
        for field, errors in exc.error_dict.items():
            target = field if field in form.fields else None
            for error in errors:
                form.add_error(target, error)
        return
    form.add_error(None, exc)


# --------------------------------------------------------------------------
# list
# --------------------------------------------------------------------------


def _stat_cards(fieldset: str | None, qs) -> list[dict]:
    """The home page's counts for the user's scope (one query); each card
    links to the filtered list when the user may use that filter."""
    if fieldset is None:
        return []
    filterable = set(FILTERABLE.get(fieldset, ()))
    high = settings.HIGH_RISK_MIN_LEVEL
    registered = Q(status__in=REGISTERED_STATUSES)
    # key, label, condition, (filter of FILTERABLE, query string)
    wanted = [("registered", _("在册患者"), registered, ("status", "status=registered"))]
    if sees(fieldset, "overdue"):
        wanted.append(("overdue", _("逾期未随访"), overdue_q(), ("overdue", "overdue=on")))
    if sees(fieldset, "risk_level"):
        label = _("%(level)s级及以上危险性") % {"level": high}
        q = registered & Q(risk_level__gte=high)
        wanted.append(("high_risk", label, q, ("risk_level", "risk=high")))
    if fieldset in ("health", "police", "governance"):
        wanted.append(("lost", _("失访"), Q(status=Status.LOST), ("status", "status=lost")))
    if sees(fieldset, "poverty") and fieldset != "health":
        q = registered & Q(poverty__in=[Poverty.DIBAO, Poverty.TEKUN])
        wanted.append(("poor", _("低保、特困"), q, None))
    if sees(fieldset, "certificate") and fieldset != "health":
        q = registered & Q(certificate=Certificate.HELD)
        wanted.append(("certificate", _("已持残疾人证"), q, None))
    counts = qs.aggregate(**{key: Count("pk", filter=q) for key, _label, q, _link in wanted})
    return [
        {
            "key": key,
            "label": label,
            "value": counts[key],
            "query": link[1] if link and link[0] in filterable else "",
            "alert": key in {"overdue", "high_risk", "lost"} and counts[key] > 0,
        }
        for key, label, _q, link in wanted
    ]


def _cell_name(p: Patient, full_id: bool):
    return format_html('<a href="{}">{}</a>', reverse("patients:detail", args=[p.pk]), p.name)


def _cell_gender_age(p: Patient, full_id: bool):
    return format_html("{} / {}", p.get_gender_display(), gettext("%(age)s岁") % {"age": p.age})


def _cell_id_number(p: Patient, full_id: bool):
    return p.id_number if full_id else p.id_number_masked


def _cell_status(p: Patient, full_id: bool):
    return format_html('<span class="badge status-{}">{}</span>', p.status, p.get_status_display())


def _cell_risk(p: Patient, full_id: bool):
    if p.risk_level is None:
        return format_html('<span class="muted">{}</span>', "—")
    return format_html(
        '<span class="badge risk-{}">{}</span>', p.risk_level, _risk_label(p.risk_level)
    )


def _cell_next_due(p: Patient, full_id: bool):
    due = date_format(p.next_followup_due, "Y-m-d") if p.next_followup_due else "—"
    if not p.overdue:
        return due
    return format_html('{} <span class="badge overdue">{}</span>', due, gettext("逾期"))


def _cell_police(p: Patient, full_id: bool):
    if p.police_registered:
        return gettext("已列管")
    return format_html('<span class="muted">{}</span>', gettext("未列管"))


def _cell_certificate(p: Patient, full_id: bool):
    if not p.certificate_grade:
        return p.get_certificate_display()
    grade = gettext("%(grade)s级") % {"grade": p.certificate_grade}
    return format_html("{} · {}", p.get_certificate_display(), grade)


# What each list column shows (escaped by format_html / the template): the
# cells are built here, once per row, not by a chain of template branches.
LIST_CELLS = {
    "name": _cell_name,
    "gender_age": _cell_gender_age,
    "id_number": _cell_id_number,
    "region": lambda p, full_id: _region_label(p.region),
    "diagnosis": lambda p, full_id: p.get_diagnosis_display(),
    "status": _cell_status,
    "risk_level": _cell_risk,
    "next_followup_due": _cell_next_due,
    "police_registered": _cell_police,
    "poverty": lambda p, full_id: p.get_poverty_display(),
    "certificate": _cell_certificate,
}
CELL_CLASSES = {"id_number": "mono"}


def _list_row(patient: Patient, columns, *, full_id: bool) -> dict:
    """One table row: the patient and the rendered cells of ``columns``."""
    return {
        "patient": patient,
        "cells": [
            {
                "label": label,
                "class": CELL_CLASSES.get(key, ""),
                "html": LIST_CELLS[key](patient, full_id),
            }
            for key, label in columns
        ],
    }


def _filter_villages(user, townships: list[Region], data) -> tuple[list[Region], bool]:
    """The villages the list's filter offers (one query), and whether they
    follow the chosen township (then an htmx filter re-renders the field).

    With several townships in scope and one chosen — given, or implied by a
    chosen village (codes nest: a village's first nine digits are its
    township) — that township's villages. Otherwise every village of the
    scope when there are at most MAX_VILLAGE_CHOICES (a township, a small
    county), else none until a township is chosen: a county's page does not
    render a few hundred options nobody scrolls through.
    """
    follows = len(townships) > 1
    chosen = (data.get("township") or data.get("village", "")[:9]) if data and follows else ""
    town = next((t for t in townships if t.code == chosen), None) if chosen else None
    if town is not None:
        villages = list(
            Region.objects.filter(parent_id=town.code, level=RegionLevel.VILLAGE)
            .select_related("parent")
            .order_by("code")
        )
        return villages, follows
    villages = _regions_in_scope(
        user, VIEW_PATIENTS, (RegionLevel.VILLAGE,), limit=MAX_VILLAGE_CHOICES + 1
    )
    return (villages if len(villages) <= MAX_VILLAGE_CHOICES else []), follows


def _list_params(request):
    """The list's search and filters: the page's form POSTs them, so a name
    or ID number searched for never appears in a URL (the browser's address
    bar and history, proxy and server access logs: SECURITY.md → no personal
    data in URLs). Links with filters only (the stat cards) still GET."""
    if request.method == "POST":
        data = request.POST.copy()
        data.pop("csrfmiddlewaretoken", None)
        return data or None
    return request.GET or None


@never_cache
@require_http_methods(["GET", "POST"])
def patient_list(request):
    """``/patients/``: search, filters, pagination; the table re-renders by htmx."""
    user = request.user
    fieldset = fieldset_of(user)
    townships = _regions_in_scope(user, VIEW_PATIENTS, (RegionLevel.TOWNSHIP,))
    data = _list_params(request)
    villages, follows = _filter_villages(user, townships, data)
    village, township = (data.get("village"), data.get("township")) if data else ("", "")
    if follows and village and township and village[:9] != township:
        # the township changed under a village of another: that village goes
        data = data.copy()
        del data["village"]
    form = pforms.PatientFilterForm(
        data,
        fieldset=fieldset,
        townships=townships,
        villages=villages,
        villages_follow_township=follows,
    )
    visible = patient_list_visible_to(user=user)
    term = form.term()
    qs = form.apply(patient_search(visible, term)).select_related("region__parent")
    qs = qs.order_by("region_id", "name", "pk")
    paginator = Paginator(qs, PAGE_SIZE)
    page = paginator.get_page(data.get("page") if data else None)
    # the search, and each patient the page shows as a read (G12, G15)
    patient_record_search(
        user=user,
        term=term,
        count=paginator.count,
        request=request,
        listed=[p.pk for p in page.object_list],
    )
    full_id = fieldset in FULL_ID_FIELDSETS
    columns = [(c, COLUMN_LABELS[c]) for c in LIST_COLUMNS.get(fieldset or "", ("name",))]
    context = {
        "form": form,
        "page": page,
        "rows": [_list_row(p, columns, full_id=full_id) for p in page.object_list],
        "columns": columns,
        "column_keys": [c for c, _label in columns],
        "filtered": bool(term) or form.active_filters(),
        "can_register": fieldset == "health" and bool(regions_with_perm(user, MANAGE_PATIENTS)),
        # the village field follows the township: re-rendered with the rows
        "village_oob": follows and "village" in form.fields and _is_partial(request),
    }
    if not _is_partial(request):
        context["stats"] = _stat_cards(fieldset, visible)
    return _render(
        request, "patients/patient_list.html", "patients/partials/_list_rows.html", context
    )


# --------------------------------------------------------------------------
# detail
# --------------------------------------------------------------------------


def _tabs_for(fieldset: str | None) -> list[tuple[str, object]]:
    shown = {"identity", "history"}
    if sees(fieldset, "specialist_opinion"):
        shown.add("supplement")
    if sees(fieldset, "guardian"):
        shown.add("guardians")
    if sees(fieldset, "care_team"):
        shown.add("care-team")
    if fieldset == "health":
        shown.add("followups")
    if fieldset in ("health", "police", "governance"):
        shown.add("alerts")
    return [(key, label) for key, label in TABS if key in shown]


def _identity_rows(patient: Patient, fieldset: str | None, *, revealed: str | None) -> list:
    rows = []
    for name in IDENTITY_ROWS:
        if not sees(fieldset, name):
            continue
        label = Patient._meta.get_field(name).verbose_name
        if name == "id_number":
            if revealed:
                value = revealed
            elif fieldset in FULL_ID_FIELDSETS:
                value = patient.id_number
            else:
                value = patient.id_number_masked
            rows.append({"key": name, "label": label, "value": value})
            continue
        if name == "region":
            value = _region_label(patient.region)
        elif name == "risk_level":
            value = _risk_label(patient.risk_level)
        elif name == "birth_date":
            value = _("%(date)s（%(age)s岁）") % {
                "date": date_format(patient.birth_date, "Y-m-d"),
                "age": patient.age,
            }
        else:
            value = _display(patient, name)
        rows.append({"key": name, "label": label, "value": value})
    return rows


def _supplement_rows(patient: Patient) -> list:
    rows = []
    for name in SUPPLEMENT_ROWS:
        label = Patient._meta.get_field(name).verbose_name
        if name == "past_symptoms":
            labels = dict(Symptom.choices)
            value = "、".join(str(labels.get(s, s)) for s in patient.past_symptoms or []) or "—"
        elif name == "dangerous_history":
            history = patient.dangerous_history or {}
            parts = [
                _("%(kind)s %(count)s次") % {"kind": DANGEROUS_BEHAVIOURS[k], "count": history[k]}
                for k in DANGEROUS_BEHAVIOURS
                if history.get(k)
            ]
            value = "、".join(parts) or _("无")
        elif name == "first_onset_date":
            value = _partial_date(patient.first_onset_date, patient.first_onset_precision)
        elif name == "first_antipsychotic_date":
            value = _partial_date(
                patient.first_antipsychotic_date, patient.first_antipsychotic_precision
            )
        elif name == "consent":
            value = (
                "—"
                if patient.consent is None
                else (_("同意参加管理") if patient.consent else _("不同意参加管理"))
            )
        else:
            value = _display(patient, name)
        rows.append({"key": name, "label": label, "value": value})
    rows.append(
        {
            "key": "supplement_doctor",
            "label": Patient._meta.get_field("supplement_doctor").verbose_name,
            "value": _staff_name(patient.supplement_doctor) or "—",
        }
    )
    return rows


def _history_rows(patient: Patient, fieldset: str | None) -> list:
    """Who changed what and why, newest first; only fields the user may see."""
    records = list(
        patient.history.select_related("history_user__staff").order_by(
            "-history_date", "-history_id"
        )[: HISTORY_LIMIT + 1]
    )
    tracked = {f.name for f in Patient.history.model.tracked_fields}
    visible = sorted((tracked & set(fields_for(fieldset))) - HISTORY_HIDDEN)
    rows = []
    for i, record in enumerate(records[:HISTORY_LIMIT]):
        previous = records[i + 1] if i + 1 < len(records) else None
        if previous is not None and record.history_type == "~":
            delta = record.diff_against(previous, included_fields=visible)
            changed = [str(Patient._meta.get_field(c.field).verbose_name) for c in delta.changes]
            if not changed:
                continue
        else:
            changed = []
        user = record.history_user
        if user is None:
            who = _("系统")
        else:
            profile = getattr(user, "staff", None)
            who = (profile.display_name if profile else "") or user.get_username()
        reason = record.history_change_reason or ""
        rows.append(
            {
                "when": timezone.localtime(record.history_date),
                "who": who,
                "type": HISTORY_TYPE_LABELS.get(record.history_type, record.history_type),
                "reason": REASON_LABELS.get(reason, reason or "—"),
                "reason_code": reason,
                "changed": changed,
            }
        )
    return rows


def _detail_context(request, patient: Patient, tab: str, **extra) -> dict:
    user = request.user
    fieldset = fieldset_of(user)
    tabs = _tabs_for(fieldset)
    if tab not in {key for key, _label in tabs}:
        tab = "identity"
    can_edit = can_manage_patient(user, patient)
    can_edit_flags = fieldset != "health" and bool(WRITABLE.get(fieldset or ""))
    context = {
        "patient": patient,
        "tab": tab,
        "tabs": tabs,
        "region_label": _region_label(patient.region),
        "show_risk": sees(fieldset, "risk_level"),
        "show_overdue": sees(fieldset, "overdue") and patient.overdue,
        "risk_label": _risk_label(patient.risk_level),
        "can_edit": can_edit,
        "can_edit_flags": can_edit_flags,
        "can_print": fieldset == "health",
        "can_reveal": fieldset not in FULL_ID_FIELDSETS,
        "reveal_form": extra.pop("reveal_form", None) or pforms.RevealIdForm(),
        "revealed_id": extra.pop("revealed_id", None),
    }
    if tab == "identity":
        context["rows"] = _identity_rows(patient, fieldset, revealed=context["revealed_id"])
    elif tab == "supplement":
        context["rows"] = _supplement_rows(patient)
    elif tab == "guardians":
        context["guardian"] = _guardian_of(patient)
        if sees(fieldset, "assistant_guardians"):
            context["assistants"] = list(patient.assistant_guardians.all())
            context["show_assistants"] = True
    elif tab == "care-team":
        context["members"] = list(patient.care_team.select_related("user"))
        context["member_form"] = extra.pop("member_form", None) or pforms.CareTeamMemberForm()
    elif tab == "followups":
        from followups.views import followup_panel

        context.update(followup_panel(user=user, patient=patient))
    elif tab == "alerts":
        from followups.views import alert_panel

        context.update(alert_panel(user=user, patient=patient))
    elif tab == "history":
        context["history"] = _history_rows(patient, fieldset)
    context.update(extra)
    return context


@never_cache
@require_GET
def patient_detail(request, pk):
    """``/patients/<id>/``: tabs by field set; every GET is an audited read."""
    patient = patient_get_for_user(user=request.user, pk=pk, request=request)
    patient_record_view(user=request.user, patient=patient, request=request)
    context = _detail_context(request, patient, request.GET.get("tab", "identity"))
    return _render(
        request, "patients/patient_detail.html", "patients/partials/_detail_tabs.html", context
    )


@never_cache
@require_POST
def patient_reveal_id(request, pk):
    """Show the full ID number once, to a non-health department, with a reason."""
    if fieldset_of(request.user) in FULL_ID_FIELDSETS:
        raise PermissionDenied
    patient = patient_get_for_user(user=request.user, pk=pk, request=request)
    form = pforms.RevealIdForm(request.POST)
    if not form.is_valid():
        patient_record_view(user=request.user, patient=patient, request=request)
        context = _detail_context(request, patient, "identity", reveal_form=form)
        return render(request, "patients/patient_detail.html", context, status=400)
    # the reason is kept, never the number itself (SECURITY.md G14)
    audit_record(
        actor=request.user,
        action="patient.reveal_id",
        object_type="patient",
        object_id=patient.pk,
        detail={"reason": form.cleaned_data["reason"]},
        request=request,
    )
    messages.info(request, MSG_REVEALED)
    context = _detail_context(request, patient, "identity", revealed_id=patient.id_number)
    return render(request, "patients/patient_detail.html", context)


# --------------------------------------------------------------------------
# register / edit
# --------------------------------------------------------------------------


def _manageable_villages(user) -> list[Region]:
    return _regions_in_scope(user, MANAGE_PATIENTS, (RegionLevel.VILLAGE,))


@never_cache
@require_http_methods(["GET", "POST"])
def patient_create(request):
    """``/patients/new/``: health staff with a manage scope register a patient."""
    user = request.user
    if fieldset_of(user) != "health":
        raise PermissionDenied
    villages = _manageable_villages(user)
    if not villages:
        raise PermissionDenied
    initial = {"region": villages[0].code} if len(villages) == 1 else None
    form = pforms.PatientForm(
        request.POST or None, mode="create", fieldset="health", villages=villages, initial=initial
    )
    formset = pforms.assistant_formset(request.POST or None)
    if request.method == "POST":
        form_ok = form.is_valid()
        formset_ok = formset.is_valid()
        if form_ok and formset_ok:
            data = form.patient_data()
            data["guardian"] = form.guardian_data()
            data["assistant_guardians"] = pforms.assistant_rows(formset)
            try:
                patient = patient_register(by=user, data=data, request=request)
            except (DomainError, ValidationError) as exc:
                _field_errors_to_form(form, exc)
            else:
                messages.success(request, MSG_REGISTERED % {"name": patient.name})
                return redirect("patients:detail", pk=patient.pk)
    context = {"form": form, "formset": formset, "mode": "create"}
    status = 400 if request.method == "POST" else 200
    return render(request, "patients/patient_form.html", context, status=status)


def _assistants_of(patient: Patient) -> list[dict]:
    return [
        {"name": a.name, "relation": a.relation, "phone": a.phone}
        for a in patient.assistant_guardians.all()
    ]


def _guardian_unchanged(guardian: Guardian | None, data: dict | None) -> bool:
    if data is None:
        return True  # an empty guardian section leaves the stored guardian alone
    if guardian is None:
        return False
    return all(getattr(guardian, k) == v for k, v in data.items())


@never_cache
@require_http_methods(["GET", "POST"])
def patient_edit(request, pk):
    """``/patients/<id>/edit/``: health edits the record; other departments
    only their own flags (``fieldsets.WRITABLE``). Optimistic locking on
    ``version``."""
    user = request.user
    patient = patient_get_for_user(user=user, pk=pk, request=request)
    fieldset = fieldset_of(user)
    if fieldset == "health":
        if not can_manage_patient(user, patient):
            raise PermissionDenied
    elif not WRITABLE.get(fieldset or ""):
        raise PermissionDenied
    health = fieldset == "health"
    guardian = _guardian_of(patient) if health else None
    stored_assistants = _assistants_of(patient) if health else []
    form = pforms.PatientForm(
        request.POST or None,
        mode="edit",
        fieldset=fieldset,
        initial=pforms.patient_initial(patient, guardian),
    )
    formset = (
        pforms.assistant_formset(request.POST or None, initial=stored_assistants)
        if health
        else None
    )
    if request.method == "GET":
        patient_record_view(user=user, patient=patient, request=request)
    else:
        form_ok = form.is_valid()
        formset_ok = formset.is_valid() if formset is not None else True
        if form_ok and formset_ok:
            data = form.patient_data()
            if health:
                guardian_data = form.guardian_data()
                if not _guardian_unchanged(guardian, guardian_data):
                    data["guardian"] = guardian_data
                rows = pforms.assistant_rows(formset)
                if rows != stored_assistants:
                    data["assistant_guardians"] = rows
            try:
                saved = patient_update(
                    by=user,
                    pk=patient.pk,
                    data=data,
                    expected_version=form.cleaned_data["version"],
                    request=request,
                )
            except (DomainError, ValidationError) as exc:
                _field_errors_to_form(form, exc)
            else:
                changed = saved.version != patient.version
                messages.success(request, MSG_SAVED if changed else MSG_UNCHANGED)
                return redirect("patients:detail", pk=patient.pk)
    context = {
        "form": form,
        "formset": formset,
        "mode": "edit",
        "patient": patient,
        "region_label": _region_label(patient.region),
    }
    status = 400 if request.method == "POST" else 200
    return render(request, "patients/patient_form.html", context, status=status)


# --------------------------------------------------------------------------
# print the personal information supplement form
# --------------------------------------------------------------------------


def _options(choices, selected) -> list[dict]:
    """Numbered options of a national form item, the chosen ones ticked."""
    chosen = set(selected if isinstance(selected, list | tuple | set) else [selected])
    return [
        {"n": i, "label": label, "checked": value in chosen}
        for i, (value, label) in enumerate(choices, start=1)
    ]


@never_cache
@require_GET
def patient_print_supplement(request, pk):
    """The supplement form (DOMAIN-SOURCES.md §1.8) as a printable A4 table."""
    if fieldset_of(request.user) != "health":
        raise PermissionDenied
    patient = patient_get_for_user(user=request.user, pk=pk, request=request)
    patient_record_view(user=request.user, patient=patient, request=request, action="patient.print")
    guardian = _guardian_of(patient)
    history = patient.dangerous_history or {}
    context = {
        "patient": patient,
        "guardian": guardian,
        "household_type": _options(HouseholdType.choices, patient.household_type),
        "employment": _options(Employment.choices, patient.employment),
        "consent": _options(
            [(True, _("同意参加管理")), (False, _("不同意参加管理"))], patient.consent
        ),
        "first_onset": _partial_date(patient.first_onset_date, patient.first_onset_precision),
        "symptoms": _options(Symptom.choices, list(patient.past_symptoms or [])),
        "lock_status": _options(LockStatus.choices, patient.past_lock_status),
        "outpatient": _options(PastOutpatient.choices, patient.past_outpatient),
        "first_antipsychotic": _partial_date(
            patient.first_antipsychotic_date, patient.first_antipsychotic_precision
        ),
        "diagnosis": dict(Diagnosis.choices).get(patient.diagnosis, ""),
        "treatment_effect": _options(TreatmentEffect.choices, patient.recent_treatment_effect),
        "dangers": [
            {"n": i, "label": label, "count": history.get(key)}
            for i, (key, label) in enumerate(DANGEROUS_BEHAVIOURS.items(), start=1)
        ],
        "no_danger": not any(history.values()),
        "no_danger_n": len(DANGEROUS_BEHAVIOURS) + 1,
        "economic": _options(EconomicStatus.choices, patient.economic_status),
        "doctor": patient.supplement_doctor,
        "doctor_name": _staff_name(patient.supplement_doctor),
    }
    return render(request, "patients/patient_print.html", context)


def _staff_name(user) -> str:
    if user is None:
        return ""
    profile = getattr(user, "staff", None)
    return (profile.display_name if profile else "") or user.get_username()


# --------------------------------------------------------------------------
# care team
# --------------------------------------------------------------------------


def _care_team_url(patient_pk) -> str:
    return reverse("patients:detail", kwargs={"pk": patient_pk}) + "?tab=care-team"


@require_POST
def care_team_member_add(request, pk):
    patient = patient_get_for_user(user=request.user, pk=pk, request=request)
    if not can_manage_patient(request.user, patient):
        raise PermissionDenied
    form = pforms.CareTeamMemberForm(request.POST)
    if form.is_valid():
        try:
            care_team_add(
                patient_id=patient.pk,
                by=request.user,
                role=form.cleaned_data["role"],
                name=form.cleaned_data["name"],
                phone=form.cleaned_data["phone"],
            )
        except (DomainError, ValidationError) as exc:
            _field_errors_to_form(form, exc)
        else:
            messages.success(request, MSG_MEMBER_ADDED)
            return redirect(_care_team_url(patient.pk))
    patient_record_view(user=request.user, patient=patient, request=request)
    context = _detail_context(request, patient, "care-team", member_form=form)
    return render(request, "patients/patient_detail.html", context, status=400)


@require_POST
def care_team_member_remove(request, pk, member_id: int):
    patient = patient_get_for_user(user=request.user, pk=pk, request=request)
    if not can_manage_patient(request.user, patient):
        raise PermissionDenied
    try:
        care_team_remove(patient_id=patient.pk, member_id=member_id, by=request.user)
    except CareTeamMember.DoesNotExist as exc:
        raise Http404 from exc
    messages.success(request, MSG_MEMBER_REMOVED)
    return redirect(_care_team_url(patient.pk))
