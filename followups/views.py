"""Follow-up, overdue-list and incident pages (server-rendered, htmx where a
part updates in place; every page works without JavaScript).

Reads go through ``followups.selectors`` / ``patients.selectors`` (scope;
out of scope is 404 and audited); writes call the services; templates get
ready-made rows and flags and make no queries.
"""

from __future__ import annotations

import uuid
from io import BytesIO

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import content_disposition_header, url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _t
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from accounts.exports import export_reason, export_view
from accounts.roles import fieldset_of
from audit.services import audit_record, export_record
from core.errors import DomainError, StaleVersion
from followups import rules
from followups.forms import FollowUpForm, IncidentForm, OverdueFilterForm
from followups.models import AlertKind, FollowUp, Outcome
from followups.selectors import (
    alerts_of_patient,
    followup_get_for_user,
    followups_for_patient,
    incident_list_visible_to,
    last_completed_followup,
    overdue_count_for,
    overdue_list_for,
    previous_completed_visit,
    villages_in_scope,
)
from followups.services.followups import (
    FollowUpInvalid,
    followup_not_reached,
    followup_record,
    followup_update,
)
from followups.services.incidents import incident_record
from patients.models import Classification, Patient
from patients.rules import mask_id_number
from patients.selectors import (
    can_manage_patient,
    patient_get_for_user,
    patient_list_visible_to,
    patient_search,
)
from patients.services import patient_record_search, patient_record_view

OVERDUE_PAGE_SIZE = 50
INCIDENT_PAGE_SIZE = 30
PATIENT_SEARCH_LIMIT = 20

MSG_SAVED = _("已保存随访记录。")
MSG_ALERTED = _("危险性评估为%(level)s级：已通知%(orgs)s。")
MSG_CORRECTED = _("已保存更正。")
MSG_NOT_REACHED = _("已记录一次未访到（%(name)s，连续第%(n)s次）。")
MSG_BECAME_LOST = _("%(name)s已连续3次未访到，已转为失访并通知派出所、综治办。")
MSG_INCIDENT_SAVED = _("已记录肇事肇祸，已通知患者所在地卫生院和综治办。")
ERR_HEALTH_ONLY = _("只有卫生健康部门的工作人员可以使用此页面。")
ERR_POLICE_ONLY = _("只有公安民警可以记录肇事肇祸。")


def _require_health(user) -> None:
    if fieldset_of(user) != "health":
        raise PermissionDenied(ERR_HEALTH_ONLY)


def _region_label(region) -> str:
    return region.name if region else ""


def _risk_label(level) -> str:
    return "—" if level is None else _t("%(n)s级") % {"n": level}


def safe_next(request, fallback: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return fallback


def _patient_summary(patient: Patient) -> dict:
    today = timezone.localdate()
    return {
        "patient": patient,
        "village": _region_label(patient.region),
        "risk": _risk_label(patient.risk_level),
        "classification": Classification(patient.classification).label
        if patient.classification
        else "—",
        "overdue_days": (today - patient.next_followup_due).days if patient.overdue else 0,
    }


# ---------------------------------------------------------------- record a visit


# Items a routine visit often finds unchanged: "same as last visit" fills them
# in one click (never the risk level or symptoms, which are assessed anew).
COPYABLE = (
    "contacts",
    "insight",
    "sleep",
    "diet",
    "self_care",
    "housework",
    "work",
    "learning",
    "social",
    "lock_status",
    "hospitalization",
    "medication_compliance",
    "treatment_effect",
)


def _last_values(last: FollowUp | None) -> dict:
    if last is None:
        return {}
    return {k: getattr(last, k) for k in COPYABLE if getattr(last, k) not in ("", None, [])}


def _new_form_initial(user, patient: Patient) -> tuple[dict, FollowUp | None]:
    last = last_completed_followup(user=user, patient=patient)
    initial = {
        "visit_date": timezone.localdate(),
        "mode": last.mode if last else "home",
        "outcome": Outcome.COMPLETED,
        "idempotency_key": uuid.uuid4(),
    }
    if last is not None:
        initial.update(FollowUpForm.initial_from(last, medications_only=True))
    return initial, last


def _recipients_told(fu: FollowUp) -> str:
    names = {
        r.organisation.name
        for a in fu.alerts.all()
        if a.kind == AlertKind.RISK
        for r in a.recipients.all()
    }
    return "、".join(sorted(names))


@require_http_methods(["GET", "POST"])
def followup_create(request, patient_id):
    """The national form on one page: a routine visit in under a minute."""
    user = request.user
    _require_health(user)
    patient = patient_get_for_user(user=user, pk=patient_id, request=request)
    if not can_manage_patient(user, patient):
        raise PermissionDenied(ERR_HEALTH_ONLY)
    if request.method == "GET":
        # the form shows the patient's summary and last visit: a read
        patient_record_view(user=user, patient=patient, request=request, action="followup.form")
    initial, last = _new_form_initial(user, patient)
    form = FollowUpForm(request.POST or None, initial=initial, birth_date=patient.birth_date)
    if request.method == "POST" and form.is_valid():
        data = form.service_data()
        key = data.pop("idempotency_key", None)
        try:
            fu = followup_record(
                patient_id=patient.pk, by=user, data=data, idempotency_key=key, request=request
            )
        except FollowUpInvalid as exc:
            form.add_service_errors(exc.errors)
        except DomainError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        else:
            messages.success(request, MSG_SAVED)
            told = _recipients_told(fu)
            if told:
                messages.warning(request, MSG_ALERTED % {"level": fu.risk_level, "orgs": told})
            target = reverse("followups:patient", args=[patient.pk])
            if request.htmx:
                return HttpResponseClientRedirect(target)
            return redirect(target)
    return render(
        request,
        "followups/followup_form.html",
        {
            **_patient_summary(patient),
            "form": form,
            "last": last,
            "suggestion": _suggestion(form, patient) if form.is_bound else None,
            "suggest_url": reverse("followups:suggest", args=[patient.pk]),
            "title": _("记录随访"),
            "editing": False,
            "last_values": _last_values(last),
        },
    )


def _suggestion(form: FollowUpForm, patient: Patient, *, exclude=None) -> dict:
    """What the rules say about the form as filled so far (no saving): no
    suggestion until the items the classification reads are filled (it says
    which are missing), and no due date from a visit date the form refuses."""
    data = form.partial_values()
    today = timezone.localdate()
    visit = data.get("visit_date") or today
    outcome = data.get("outcome") or Outcome.COMPLETED
    out: dict = {"outcome": outcome, "visit_date": visit}
    if visit > today:
        out["visit_error"] = rules.ERR_FUTURE_VISIT
    elif early := rules.too_early("visit_date", visit, patient.birth_date):
        out["visit_error"] = early
    if "visit_error" in out:
        return out
    if outcome == Outcome.NOT_REACHED:
        out["keeps_due"] = patient.next_followup_due
        return out
    if outcome != Outcome.COMPLETED:
        return out
    missing = rules.classification_missing(data)
    if missing:
        out["missing"] = "、".join(str(form.fields[k].label) for k in missing)
        return out
    assessment = rules.Assessment.from_data(data)
    suggested = rules.suggest_classification(assessment)
    final = data.get("classification") or suggested
    previous = previous_completed_visit(patient.pk, visit, exclude=exclude)
    latest = rules.next_due_date(visit, final, previous_completed=previous)
    chosen = data.get("next_due_date")
    out.update(
        suggested=Classification(suggested).label,
        suggested_code=suggested,
        final=Classification(final).label,
        overridden=final != suggested,
        latest_due=latest,
        chosen_due=chosen,
        chosen_too_late=bool(chosen and chosen > latest),
        alerts=assessment.risk_level is not None
        and assessment.risk_level >= settings.HIGH_RISK_MIN_LEVEL,
    )
    return out


@require_POST
def followup_suggest(request, patient_id):
    """htmx: the suggested classification and next due date, live."""
    _require_health(request.user)
    patient = patient_get_for_user(user=request.user, pk=patient_id, request=request)
    form = FollowUpForm(request.POST, birth_date=patient.birth_date)
    exclude = request.POST.get("followup") or None
    try:
        exclude = uuid.UUID(exclude) if exclude else None
    except ValueError:
        exclude = None
    return render(
        request,
        "followups/partials/_suggestion.html",
        {"suggestion": _suggestion(form, patient, exclude=exclude)},
    )


# ---------------------------------------------------------------- one follow-up


def _followup_rows(fu: FollowUp) -> list[tuple[str, str]]:
    """(label, value) of every item the visit carries, in form order."""
    from patients.models import DANGEROUS_BEHAVIOURS, Symptom

    def choice(field):
        return getattr(fu, f"get_{field}_display")() if getattr(fu, field) else ""

    symptom_labels = dict(Symptom.choices)
    rows = [
        (_("随访日期"), fu.visit_date.isoformat()),
        (_("随访形式"), choice("mode")),
        (_("随访结果"), choice("outcome")),
        (_("本次随访对象"), "、".join(_contact_labels(fu.contacts))),
    ]
    if fu.outcome == Outcome.LOST:
        rows.append((_("失访原因"), choice("lost_reason")))
    if fu.outcome == Outcome.NOT_REACHED and fu.lost_reason:
        rows.append((_("失访原因"), choice("lost_reason")))
    if fu.outcome == Outcome.DECEASED:
        rows += [
            (_("死亡日期"), fu.death_date.isoformat() if fu.death_date else ""),
            (_("死亡原因"), " ".join(filter(None, [choice("death_cause"), fu.death_cause_detail]))),
        ]
    if fu.outcome == Outcome.COMPLETED:
        dangers = [
            _t("%(label)s%(n)s次") % {"label": label, "n": fu.dangerous_behaviours.get(k)}
            for k, label in DANGEROUS_BEHAVIOURS.items()
            if fu.dangerous_behaviours.get(k)
        ]
        rows += [
            (_("危险性评估"), _risk_label(fu.risk_level)),
            (
                _("目前症状"),
                "、".join(str(symptom_labels.get(s, s)) for s in fu.symptoms)
                + (f"（{fu.symptoms_other}）" if fu.symptoms_other else "")
                or _t("无"),
            ),
            (_("自知力"), choice("insight")),
            (_("睡眠情况"), choice("sleep")),
            (_("饮食情况"), choice("diet")),
            (_("个人生活料理"), choice("self_care")),
            (_("家务劳动"), choice("housework")),
            (_("生产劳动及工作"), choice("work")),
            (_("学习能力"), choice("learning")),
            (_("社会人际交往"), choice("social")),
            (_("危险行为"), "、".join(dangers) or _t("无")),
            (_("两次随访期间关锁情况"), choice("lock_status")),
            (_("两次随访期间住院情况"), choice("hospitalization")),
            (
                _("末次出院时间"),
                fu.last_discharge_date.isoformat() if fu.last_discharge_date else "",
            ),
            (_("实验室检查"), fu.lab_tests or _t("无")),
            (_("用药依从性"), choice("medication_compliance")),
            (
                _("药物不良反应"),
                (_t("有（严重）") if fu.adverse_reaction_serious else _t("有"))
                + (f"：{fu.adverse_reaction_detail}" if fu.adverse_reaction_detail else "")
                if fu.adverse_reaction
                else _t("无"),
            ),
            (_("治疗效果"), choice("treatment_effect")),
            (
                _("转诊"),
                _t("建议转诊：%(reason)s %(to)s")
                % {"reason": fu.referral_reason, "to": fu.referred_to}
                if fu.referral_suggested
                else _t("否"),
            ),
            (_("用药情况"), medication_text(fu.medications)),
            (_("用药指导"), medication_text(fu.medication_guidance)),
            (_("康复措施"), "、".join(_rehab_labels(fu)) or _t("无")),
            (_("系统建议分类"), choice("suggested_classification")),
            (_("本次随访分类"), choice("classification")),
        ]
        if fu.classification_override_reason:
            rows.append((_("调整分类原因"), fu.classification_override_reason))
    if fu.next_due_date:
        rows.append((_("下次随访日期"), fu.next_due_date.isoformat()))
    return [(label, value) for label, value in rows if value not in (None, "")]


def _contact_labels(codes):
    from followups.models import Contact

    labels = dict(Contact.choices)
    return [str(labels.get(c, c)) for c in codes or []]


def _rehab_labels(fu):
    from followups.models import RehabMeasure

    labels = dict(RehabMeasure.choices)
    out = [str(labels.get(c, c)) for c in fu.rehab_measures or []]
    if fu.rehab_measures_other:
        out.append(fu.rehab_measures_other)
    return out


def medication_text(rows) -> str:
    """``利培酮 早1mg 晚2mg；棕榈酸帕利哌酮 每4周150mg``."""
    parts = []
    for row in rows or []:
        if row.get("injection_interval_weeks"):
            dose = _t("每%(w)s周%(mg)smg") % {
                "w": row["injection_interval_weeks"],
                "mg": row.get("injection_mg", ""),
            }
        else:
            dose = " ".join(
                f"{label}{row[key]}mg"
                for key, label in (
                    ("morning_mg", _t("早")),
                    ("noon_mg", _t("中")),
                    ("evening_mg", _t("晚")),
                )
                if row.get(key)
            )
        parts.append(f"{row.get('drug', '')} {dose}".strip())
    return "；".join(parts)


def _followup_or_404(request, pk) -> FollowUp:
    _require_health(request.user)
    fu = followup_get_for_user(user=request.user, pk=pk, request=request)
    audit_record(
        actor=request.user,
        action="followup.view",
        object_type="patient",
        object_id=fu.patient_id,
        detail={"followup": str(fu.pk)},
        request=request,
    )
    return fu


@require_GET
def followup_detail(request, pk):
    fu = _followup_or_404(request, pk)
    return render(
        request,
        "followups/followup_detail.html",
        {
            **_patient_summary(fu.patient),
            "fu": fu,
            "rows": _followup_rows(fu),
            "can_edit": can_manage_patient(request.user, fu.patient),
            "recorded_by": _display_name(fu.recorded_by),
        },
    )


def _display_name(user) -> str:
    if user is None:
        return ""
    staff = getattr(user, "staff", None)
    return (staff.display_name if staff else "") or user.get_username()


@require_http_methods(["GET", "POST"])
def followup_edit(request, pk):
    """Correct a recorded visit; a concurrent correction is refused (version)."""
    fu = _followup_or_404(request, pk)
    if not can_manage_patient(request.user, fu.patient):
        raise PermissionDenied(ERR_HEALTH_ONLY)
    form = FollowUpForm(
        request.POST or None,
        initial=FollowUpForm.initial_from(fu),
        birth_date=fu.patient.birth_date,
    )
    if request.method == "POST" and form.is_valid():
        data = form.service_data()
        data.pop("idempotency_key", None)
        data.pop("outcome", None)
        try:
            version = int(request.POST.get("version", ""))
        except ValueError:
            version = -1
        try:
            followup_update(
                followup_id=fu.pk,
                by=request.user,
                data=data,
                expected_version=version,
                request=request,
            )
        except StaleVersion as exc:
            form.add_error(None, exc.message)
        except FollowUpInvalid as exc:
            form.add_service_errors(exc.errors)
        except DomainError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        else:
            messages.success(request, MSG_CORRECTED)
            return redirect("followups:detail", pk=fu.pk)
    return render(
        request,
        "followups/followup_form.html",
        {
            **_patient_summary(fu.patient),
            "form": form,
            "fu": fu,
            "last": None,
            "suggestion": _suggestion(form, fu.patient, exclude=fu.pk) if form.is_bound else None,
            "suggest_url": reverse("followups:suggest", args=[fu.patient_id]),
            "title": _("更正随访记录"),
            "editing": True,
        },
    )


# The national follow-up service record form (DOMAIN-SOURCES §1.7): its 30
# items in their order, with their numbers.
PRINT_ITEMS = (
    (1, "visit_date", _("随访日期")),
    (2, "mode", _("本次随访形式")),
    (3, "contacts", _("本次随访对象")),
    (4, "lost_reason", _("若失访，原因")),
    (5, "death_date", _("死亡日期")),
    (6, "death_cause", _("死亡原因")),
    (7, "risk_level", _("危险性评估")),
    (8, "symptoms", _("目前症状")),
    (9, "insight", _("自知力")),
    (10, "sleep", _("睡眠情况")),
    (11, "diet", _("饮食情况")),
    (12, "self_care", _("个人生活料理")),
    (13, "housework", _("家务劳动")),
    (14, "work", _("生产劳动及工作")),
    (15, "learning", _("学习能力")),
    (16, "social", _("社会人际交往")),
    (17, "dangerous_behaviours", _("危险行为")),
    (18, "lock_status", _("两次随访期间关锁情况")),
    (19, "hospitalization", _("两次随访期间住院情况")),
    (20, "lab_tests", _("实验室检查")),
    (21, "medication_compliance", _("用药依从性")),
    (22, "adverse_reaction", _("药物不良反应")),
    (23, "treatment_effect", _("治疗效果")),
    (24, "referral", _("是否转诊")),
    (25, "medications", _("用药情况")),
    (26, "medication_guidance", _("用药指导")),
    (27, "rehab_measures", _("康复措施")),
    (28, "classification", _("本次随访分类")),
    (29, "next_due_date", _("下次随访日期")),
    (30, "doctor", _("随访医生签名")),
)

# The national codes of each item's options (DOMAIN-SOURCES §1.7), by our
# code: not always 1..n in order ("not applicable" is 9, hospitalisation
# counts from 0, dangerous behaviour ends with "7 none").
NATIONAL_CODES: dict[str, dict[str, int]] = {
    "mode": {"clinic": 1, "home": 2, "phone": 3},
    "contacts": {"patient": 1, "family": 2, "other": 3},
    "lost_reason": {"out_for_work": 1, "moved": 2, "missing": 3, "unreachable_3x": 4, "other": 5},
    "death_cause": {
        "physical_illness": 1,
        "suicide": 2,
        "homicide": 3,
        "accident": 4,
        "complication": 5,
        "other": 6,
    },
    "symptoms": {code: i for i, code in enumerate(rules.SYMPTOMS, start=1)},
    "insight": {"complete": 1, "partial": 2, "absent": 3},
    "level3": {"good": 1, "fair": 2, "poor": 3},
    "work": {"good": 1, "fair": 2, "poor": 3, "not_applicable": 9},
    "dangerous_behaviours": {
        **{code: i for i, code in enumerate(rules.DANGEROUS_BEHAVIOURS, start=1)},
        "none": 7,
    },
    "lock_status": {"none": 1, "locked": 2, "released": 3},
    "hospitalization": {"none": 0, "current": 1, "past": 2},
    "lab_tests": {"none": 1, "yes": 2},
    "medication_compliance": {"regular": 1, "intermittent": 2, "none": 3, "not_needed": 4},
    "adverse_reaction": {"no": 1, "yes": 2, "not_applicable": 9},
    "treatment_effect": {
        "cured": 1,
        "improved": 2,
        "unchanged": 3,
        "worse": 4,
        "not_applicable": 9,
    },
    "referral": {"no": 1, "yes": 2},
    "rehab_measures": {"daily_living": 1, "vocational": 2, "learning": 3, "social": 4, "other": 5},
    "classification": {"unstable": 1, "basically_stable": 2, "stable": 3},
}


def _print_options(fu: FollowUp, doctor: str = "") -> list[dict]:
    """Each item of the national form with its options under their national
    codes, the recorded ones ticked (□ / ☑), as on the paper form."""
    from followups import models as m
    from patients.models import DANGEROUS_BEHAVIOURS, Symptom

    def options(choices, selected, codes: dict[str, int]):
        chosen = set(selected if isinstance(selected, list | tuple | set) else [selected])
        return [
            {"n": codes[value], "label": label, "on": value in chosen} for value, label in choices
        ]

    def text(value):
        return [{"text": value}] if value else []

    f = fu
    c = NATIONAL_CODES
    level3 = c["level3"]
    dangers = f.dangerous_behaviours or {}
    # no medication prescribed: the adverse-reaction item does not apply (2018 code 9)
    reaction = (
        "yes"
        if f.adverse_reaction
        else ("not_applicable" if f.medication_compliance == "not_needed" else "no")
    )
    if f.outcome != Outcome.COMPLETED:
        reaction = ""
    items = {
        "visit_date": text(f.visit_date.isoformat()),
        "mode": options(m.Mode.choices, f.mode, c["mode"]),
        "contacts": options(m.Contact.choices, f.contacts, c["contacts"]),
        "lost_reason": options(m.LostReason.choices, f.lost_reason, c["lost_reason"]),
        "death_date": text(f.death_date.isoformat() if f.death_date else ""),
        "death_cause": options(m.DeathCause.choices, f.death_cause, c["death_cause"])
        + text(f.death_cause_detail),
        "risk_level": [
            {"n": i, "label": _t("%(n)s级") % {"n": i}, "on": f.risk_level == i} for i in range(6)
        ],
        "symptoms": options(Symptom.choices, f.symptoms, c["symptoms"]) + text(f.symptoms_other),
        "insight": options(m.Insight.choices, f.insight, c["insight"]),
        "sleep": options(m.Level3.choices, f.sleep, level3),
        "diet": options(m.Level3.choices, f.diet, level3),
        "self_care": options(m.Level3.choices, f.self_care, level3),
        "housework": options(m.Level3.choices, f.housework, level3),
        "work": options(m.WorkLevel.choices, f.work, c["work"]),
        "learning": options(m.Level3.choices, f.learning, level3),
        "social": options(m.Level3.choices, f.social, level3),
        "dangerous_behaviours": [
            {
                "n": c["dangerous_behaviours"][k],
                "label": f"{label} {dangers.get(k, 0)} {_t('次')}",
                "on": bool(dangers.get(k)),
            }
            for k, label in DANGEROUS_BEHAVIOURS.items()
        ]
        + [
            {
                "n": c["dangerous_behaviours"]["none"],
                "label": _t("无"),
                "on": f.outcome == Outcome.COMPLETED and not any(dangers.values()),
            }
        ],
        "lock_status": options(m.LockStatus.choices, f.lock_status, c["lock_status"]),
        "hospitalization": options(
            m.Hospitalization.choices, f.hospitalization, c["hospitalization"]
        )
        + text(
            _t("末次出院时间：%(d)s") % {"d": f.last_discharge_date.isoformat()}
            if f.last_discharge_date
            else ""
        ),
        "lab_tests": options(
            [("none", _t("无")), ("yes", _t("有"))],
            ("yes" if f.lab_tests else "none") if f.outcome == Outcome.COMPLETED else "",
            c["lab_tests"],
        )
        + text(f.lab_tests),
        "medication_compliance": options(
            m.Compliance.choices, f.medication_compliance, c["medication_compliance"]
        ),
        "adverse_reaction": options(
            [("no", _t("无")), ("yes", _t("有")), ("not_applicable", _t("不适用"))],
            reaction,
            c["adverse_reaction"],
        )
        + text(f.adverse_reaction_detail),
        "treatment_effect": options(
            m.TreatmentEffect.choices, f.treatment_effect, c["treatment_effect"]
        ),
        "referral": options(
            [("no", _t("否")), ("yes", _t("是"))],
            ("yes" if f.referral_suggested else "no") if f.outcome == Outcome.COMPLETED else "",
            c["referral"],
        )
        + text(" ".join(filter(None, [f.referral_reason, f.referred_to]))),
        "medications": text(medication_text(f.medications)),
        "medication_guidance": text(medication_text(f.medication_guidance)),
        "rehab_measures": options(m.RehabMeasure.choices, f.rehab_measures, c["rehab_measures"])
        + text(f.rehab_measures_other),
        "classification": options(Classification.choices, f.classification, c["classification"]),
        "next_due_date": text(f.next_due_date.isoformat() if f.next_due_date else ""),
        "doctor": text(doctor),
    }
    return [{"no": no, "label": label, "options": items[key]} for no, key, label in PRINT_ITEMS]


@require_GET
def followup_print(request, pk):
    """The national follow-up service record form (随访服务记录表) layout."""
    fu = _followup_or_404(request, pk)
    doctor = _display_name(fu.recorded_by)
    return render(
        request,
        "followups/followup_print.html",
        {
            "fu": fu,
            "patient": fu.patient,
            "items": _print_options(fu, doctor),
            "doctor": doctor,
        },
    )


@require_GET
def patient_followups(request, patient_id):
    """A patient's follow-up history with the button to record a new visit."""
    _require_health(request.user)
    patient = patient_get_for_user(user=request.user, pk=patient_id, request=request)
    patient_record_view(user=request.user, patient=patient, request=request, action="followup.list")
    return render(
        request,
        "followups/patient_followups.html",
        {**_patient_summary(patient), **followup_panel(user=request.user, patient=patient)},
    )


def followup_panel(*, user, patient: Patient, limit: int | None = None) -> dict:
    """Context of ``followups/partials/_patient_followups.html`` (the patient
    page includes it): the visits, newest first, and whether the user may
    record one. Empty for non-health users."""
    if fieldset_of(user) != "health":
        return {"followup_rows": [], "can_record_followup": False}
    visits = followups_for_patient(user=user, patient=patient, limit=limit)
    return {
        "followup_patient": patient,
        "followup_rows": [
            {
                "fu": fu,
                "risk": _risk_label(fu.risk_level) if fu.outcome == Outcome.COMPLETED else "",
                "overridden": fu.classification != fu.suggested_classification,
            }
            for fu in visits
        ],
        "can_record_followup": can_manage_patient(user, patient)
        and rules.can_record(patient.status),
    }


def alert_panel(*, user, patient: Patient, limit: int = 20) -> dict:
    """Context of ``followups/partials/_patient_alerts.html`` (the patient
    page includes it): the patient's alerts and incidents, and for police
    the button to record an incident. Empty for departments that see
    neither (civil affairs, federation)."""
    fieldset = fieldset_of(user)
    if fieldset not in ("health", "police", "governance"):
        return {"patient_alerts": [], "patient_incidents": [], "can_record_incident": False}
    incidents = list(incident_list_visible_to(user=user).filter(patient=patient)[:limit])
    return {
        "alert_patient": patient,
        "patient_alerts": alerts_of_patient(user=user, patient=patient, limit=limit),
        "patient_incidents": incidents,
        "can_record_incident": fieldset == "police",
    }


# ---------------------------------------------------------------- overdue list


def _overdue_filters(request, user):
    villages = list(villages_in_scope(user=user))
    form = OverdueFilterForm(request.GET or None, villages=villages)
    filters = {"village": None, "risk_min": None, "days_min": None}
    if form.is_bound and form.is_valid():
        filters = {
            "village": form.cleaned_data.get("village") or None,
            "risk_min": form.cleaned_data.get("risk"),
            "days_min": form.cleaned_data.get("days"),
        }
    return form, filters


class RowUrls:
    """URLs of list rows by substitution into one reversed pattern per name:
    reversing for every row of a 50-row page costs more than the query."""

    PLACEHOLDER = "00000000-0000-0000-0000-000000000000"

    def __init__(self, *names: str):
        self.patterns = {n: reverse(n, args=[self.PLACEHOLDER]) for n in names}

    def __call__(self, name: str, pk) -> str:
        return self.patterns[name].replace(self.PLACEHOLDER, str(pk))


def overdue_texts() -> dict:
    """The overdue rows' fixed labels, translated once per page."""
    return {
        "risk": _t("危险性"),
        "name": _t("姓名"),
        "village": _t("村（居）"),
        "due": _t("应随访"),
        "overdue": _t("逾期"),
        "guardian": _t("监护人"),
        "actions": _t("操作"),
        "record": _t("记录随访"),
        "not_reached": _t("未访到"),
        "confirm_lost": _t("这是连续第3次未访到，患者将转为失访并通知派出所、综治办。确定吗？"),
    }


def overdue_urls() -> RowUrls:
    return RowUrls("patients:detail", "followups:create", "followups:not-reached")


def _overdue_row(patient: Patient, today, urls: RowUrls) -> dict:
    guardian = getattr(patient, "guardian", None) if _has_guardian(patient) else None
    days = (today - patient.next_followup_due).days
    return {
        "patient": patient,
        "village": _region_label(patient.region),
        "risk": _risk_label(patient.risk_level),
        "age": _t("%(age)s岁") % {"age": patient.age},
        "days": days,
        "days_text": _t("%(n)s天") % {"n": days},
        "misses": patient.misses,
        "misses_text": _t("未访到%(n)s次") % {"n": patient.misses} if patient.misses else "",
        "guardian": guardian,
        # another miss today adds no day (rules.consecutive_misses)
        "loses_next": not patient.missed_today and patient.misses + 1 >= rules.MISSES_BEFORE_LOST,
        # one key per rendered button: a double click or a retried POST
        # records one attempt (followups.services.followups._replay)
        "idempotency_key": uuid.uuid4(),
        "detail_url": urls("patients:detail", patient.pk),
        "create_url": urls("followups:create", patient.pk),
        "not_reached_url": urls("followups:not-reached", patient.pk),
    }


def _has_guardian(patient) -> bool:
    try:
        return patient.guardian is not None
    except Patient.guardian.RelatedObjectDoesNotExist:
        return False


@require_GET
def overdue_list(request):
    """The doctor's working list: overdue patients, highest risk first."""
    user = request.user
    _require_health(user)
    today = timezone.localdate()
    form, filters = _overdue_filters(request, user)
    qs = overdue_list_for(user=user, today=today, **filters)
    page = Paginator(qs, OVERDUE_PAGE_SIZE).get_page(request.GET.get("page"))
    urls = overdue_urls()
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "followups/overdue_list.html",
        {
            "form": form,
            "page": page,
            "rows": [_overdue_row(p, today, urls) for p in page.object_list],
            "t": overdue_texts(),
            "total_overdue": overdue_count_for(user, today),
            "filtered": any(v is not None for v in filters.values()),
            "query": query.urlencode(),
            "next_url": request.get_full_path(),
        },
    )


EXPORT_HEADERS = (
    _("姓名"),
    _("性别"),
    _("年龄"),
    _("身份证号"),
    _("村（居）"),
    _("现住址"),
    _("联系电话"),
    _("监护人"),
    _("监护人电话"),
    _("危险性"),
    _("随访分类"),
    _("最近随访"),
    _("应随访日期"),
    _("逾期天数"),
    _("连续未访到"),
)


@require_http_methods(["GET", "POST"])
@export_view("overdue_list")
def overdue_export(request):
    """Excel of the overdue list with the same filters; always a valid
    workbook, also when nobody is overdue. Needs the export permission and
    a reason (accounts.exports); audited as an export."""
    from openpyxl import Workbook

    user = request.user
    _require_health(user)
    reason = export_reason(request)
    today = timezone.localdate()
    _form, filters = _overdue_filters(request, user)
    qs = overdue_list_for(user=user, today=today, **filters)
    wb = Workbook(write_only=True)
    ws = wb.create_sheet(_t("逾期未随访"))
    ws.append([str(h) for h in EXPORT_HEADERS])
    n = 0
    for p in qs.iterator(chunk_size=2000):
        guardian = p.guardian if _has_guardian(p) else None
        ws.append(
            [
                p.name,
                p.get_gender_display(),
                p.age,
                mask_id_number(p.id_number),
                _region_label(p.region),
                p.address,
                p.phone,
                guardian.name if guardian else "",
                guardian.phone if guardian else "",
                p.risk_level,
                p.get_classification_display() if p.classification else "",
                p.last_followup_date,
                p.next_followup_due,
                (today - p.next_followup_due).days,
                p.misses,
            ]
        )
        n += 1
    buffer = BytesIO()
    wb.save(buffer)
    export_record(
        user=user,
        what="overdue_list",
        reason=reason,
        count=n,
        detail={k: str(getattr(v, "pk", v)) for k, v in filters.items() if v},
        request=request,
    )
    response = HttpResponse(
        buffer.getvalue(),
        content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    )
    response["Content-Disposition"] = content_disposition_header(
        True, _t("逾期随访_%(day)s.xlsx") % {"day": f"{today:%Y%m%d}"}
    )
    return response


@require_POST
def overdue_not_reached(request, patient_id):
    """One click: today's attempt did not reach the patient."""
    user = request.user
    _require_health(user)
    patient = patient_get_for_user(user=user, pk=patient_id, request=request)
    mode = request.POST.get("mode") or "phone"
    if mode not in rules.MODES:
        mode = "phone"
    try:
        key = uuid.UUID(request.POST.get("idempotency_key") or "")
    except ValueError:
        key = None
    try:
        followup_not_reached(
            patient_id=patient.pk, by=user, mode=mode, idempotency_key=key, request=request
        )
    except DomainError as exc:
        messages.error(request, exc.message)
        if request.htmx:
            return HttpResponseClientRedirect(reverse("followups:overdue"))
        return redirect(safe_next(request, reverse("followups:overdue")))
    today = timezone.localdate()
    fresh = overdue_list_for(user=user, today=today).filter(pk=patient.pk).first()
    patient.refresh_from_db()
    if patient.status == "lost":
        message = MSG_BECAME_LOST % {"name": patient.name}
    else:
        misses = fresh.misses if fresh is not None else 1
        message = MSG_NOT_REACHED % {"name": patient.name, "n": misses}
    if request.htmx:
        return render(
            request,
            "followups/partials/_overdue_row.html",
            {
                "row": _overdue_row(fresh, today, overdue_urls()) if fresh is not None else None,
                "t": overdue_texts(),
                "done_message": message,
                "done_patient": patient,
                "next_url": safe_next(request, reverse("followups:overdue")),
            },
        )
    messages.success(request, message)
    return redirect(safe_next(request, reverse("followups:overdue")))


# ---------------------------------------------------------------- incidents


@require_GET
def incident_list(request):
    """Incidents about the patients in the user's area, newest first."""
    user = request.user
    if fieldset_of(user) not in ("police", "governance", "health"):
        raise PermissionDenied(ERR_POLICE_ONLY)
    page = Paginator(incident_list_visible_to(user=user), INCIDENT_PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    return render(
        request,
        "followups/incident_list.html",
        {
            "page": page,
            "rows": [
                {"incident": i, "village": _region_label(i.patient.region)}
                for i in page.object_list
            ],
            "can_record": fieldset_of(user) == "police",
        },
    )


@require_http_methods(["GET", "POST"])
def incident_create(request):
    """Police record an incident; the patient is picked by name or ID number
    among the patients of their area."""
    user = request.user
    if fieldset_of(user) != "police":
        raise PermissionDenied(ERR_POLICE_ONLY)
    patient_id = request.POST.get("patient") or request.GET.get("patient")
    patient = None
    if patient_id:
        patient = patient_get_for_user(user=user, pk=patient_id, request=request)
    # the search's term travels in the POST body only, never in a URL
    # (SECURITY.md → no personal data in URLs)
    results, term = [], (request.POST.get("q") or "").strip()
    if patient is None and term:
        qs = patient_search(patient_list_visible_to(user=user), term).order_by("name", "pk")
        results = list(qs[:PATIENT_SEARCH_LIMIT])
        patient_record_search(
            user=user,
            term=term,
            count=len(results),
            request=request,
            listed=[p.pk for p in results],
        )
    form = IncidentForm(
        request.POST if patient is not None and request.method == "POST" else None,
        initial={"occurred_on": timezone.localdate()},
    )
    if request.method == "POST" and patient is not None and form.is_valid():
        try:
            incident_record(patient_id=patient.pk, by=user, data=form.cleaned_data, request=request)
        except DomainError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        else:
            messages.success(request, MSG_INCIDENT_SAVED)
            return redirect("followups:incident-list")
    return render(
        request,
        "followups/incident_form.html",
        {
            "form": form,
            "patient": patient,
            "village": _region_label(patient.region) if patient else "",
            "results": [{"patient": p, "village": _region_label(p.region)} for p in results],
            "term": term,
            "searched": bool(term),
        },
    )
