"""Pages of the guardian reward (以奖代补) and the one-stop settlement (一站式结算).

Thin: form → selector/service → render. Capability (role) failures are 403,
objects outside the user's scope are 404 (audited by the selectors); flags
for buttons are computed here, never in templates.
"""

from __future__ import annotations

from datetime import date, timedelta
from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Exists, OuterRef
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _t
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.exports import export_reason, export_view
from accounts.models import Region
from accounts.roles import Role, role_of
from audit.services import export_record
from core.errors import DomainError
from patients.models import Incident, IncidentKind
from patients.selectors import (
    can_manage_patient,
    patient_get_for_user,
    patient_list_visible_to,
    patient_search,
)
from patients.services import patient_record_search, patient_record_view, patient_records_listed
from subsidies import exports, forms, rules, services
from subsidies import selectors as sel
from subsidies.models import (
    LIMITED_LABELS,
    OPEN_AWARD_STATUSES,
    AwardStatus,
    BatchStatus,
    EpisodeStatus,
    Payer,
    Settlement,
    SettlementKind,
)

PER_PAGE = 20
LINES_PER_PAGE = 50


def _page(request, qs, per_page: int = PER_PAGE):
    return Paginator(qs, per_page).get_page(_params(request).get("page"))


def _params(request):
    """A page's search and filters. Pages that search by a patient's name or
    ID number take them from the POST body of their form, never from the
    query string (browser history, proxy and access logs: SECURITY.md → no
    personal data in URLs); their pagination submits the form again."""
    return request.POST if request.method == "POST" else request.GET


def _search_data(request):
    """The bound data of a search form: the POST body, or on a GET the
    filters without the term (an old link's ``q`` is not searched for)."""
    if request.method == "POST":
        return request.POST
    data = request.GET.copy()
    data.pop("q", None)
    return data or None


def _query_without_page(request) -> str:
    params = [(k, v) for k, v in request.GET.items() if k != "page"]
    return urlencode(params)


def _render(request, page: str, partial: str | None, ctx: dict, status: int = 200):
    template = partial if (partial and request.htmx and not request.htmx.boosted) else page
    return render(request, template, ctx, status=status)


def _reward_flags(user) -> dict:
    return {
        "can_view_awards": sel.can(user, sel.REWARD_VIEW),
        "can_apply": sel.can(user, sel.REWARD_APPLY),
        "can_township_review": sel.can(user, sel.REWARD_TOWNSHIP_REVIEW),
        "can_county_approve": sel.can(user, sel.REWARD_COUNTY_APPROVE),
        "can_manage": sel.can(user, sel.REWARD_MANAGE),
        "can_view_batches": sel.can(user, sel.BATCH_VIEW),
        "can_draw": sel.can(user, sel.BATCH_DRAW),
        "can_review_batch": sel.can(user, sel.BATCH_REVIEW),
        "can_pay": sel.can(user, sel.BATCH_PAY),
        "can_export": sel.can(user, sel.BATCH_EXPORT),
    }


def _settlement_flags(user) -> dict:
    return {
        "is_hospital": sel.can(user, sel.EPISODE_MANAGE),
        "can_view_settlements": sel.can(user, sel.SETTLEMENT_VIEW),
        "can_statement": bool(sel.statement_payers_for(user)),
        "show_identity": sel.sees_identities(user),
    }


# Which award states wait for the user's department.
QUEUE_BY_ROLE = {
    Role.TOWNSHIP_DOCTOR: (AwardStatus.APPLIED, AwardStatus.REVIEWED, AwardStatus.NOTICE),
    Role.GOVERNANCE: (AwardStatus.APPLIED, AwardStatus.REVIEWED, AwardStatus.NOTICE),
    Role.CIVIL_AFFAIRS: (AwardStatus.REVIEWED, AwardStatus.NOTICE),
}


# ==========================================================================
# Guardian reward
# ==========================================================================


@require_GET
def home(request):
    """The reward workflow home of governance, civil affairs, finance (and health centres)."""
    user = request.user
    sel.require_any(user, sel.REWARD_VIEW, sel.BATCH_VIEW)
    today = timezone.localdate()
    flags = _reward_flags(user)
    ctx = {"flags": flags, "tab": "home"}
    if flags["can_view_awards"]:
        counts = sel.award_counts(user=user)
        ctx["status_cards"] = [
            {"code": code, "label": label, "count": counts.get(code, 0)}
            for code, label in AwardStatus.choices
        ]
        ctx["review_due"] = sel.awards_review_due(user=user, today=today).count()
        queue = QUEUE_BY_ROLE.get(role_of(user), ())
        ctx["queue"] = list(
            sel.award_list_visible_to(user=user)
            .filter(status__in=queue)
            .order_by("applied_on")[:10]
        )
    if flags["can_view_batches"]:
        ctx["batches"] = list(sel.batch_list_visible_to(user=user).order_by("-period_start")[:6])
        ctx["batch_counts"] = sel.batch_totals_by_status(user=user)
    return render(request, "subsidies/home.html", ctx)


def _listed(request, patient_ids, action: str, *, term: str = "", count: int = 0) -> None:
    """The patients a list page shows: one audit read each (G12, G15); with
    a search ``term``, the search too (its keyed hash and ``count``), in the
    same insert."""
    if term:
        patient_record_search(
            user=request.user,
            term=term,
            count=count,
            request=request,
            listed=patient_ids,
            list_action=action,
        )
    else:
        patient_records_listed(
            user=request.user, patient_ids=patient_ids, request=request, action=action
        )


@require_http_methods(["GET", "POST"])
def award_list(request):
    user = request.user
    sel.require(user, sel.REWARD_VIEW)
    form = forms.AwardFilterForm(_search_data(request))
    term = ""
    qs = sel.award_list_visible_to(user=user)
    today = timezone.localdate()
    if form.is_valid():
        if form.cleaned_data["status"]:
            qs = qs.filter(status=form.cleaned_data["status"])
        term = form.cleaned_data["q"].strip()
        if term:
            qs = qs.filter(patient__name__contains=term)
    if request.GET.get("due") == "1":
        qs = sel.awards_review_due(user=user, today=today)
    page = _page(request, qs.order_by("-applied_on", "-id"))
    listed = [a.patient_id for a in page.object_list]
    _listed(request, listed, "reward.list", term=term, count=page.paginator.count)
    ctx = {
        "form": form,
        "page": page,
        "post_form": "award-filter",
        "flags": _reward_flags(user),
        "tab": "awards",
        "today": today,
    }
    return _render(request, "subsidies/award_list.html", "subsidies/partials/_award_rows.html", ctx)


def reward_rule_text(rule: rules.RewardRule) -> str:
    """The eligibility rule of a reward policy, in words (the page states the
    policy in force, never a fixed text)."""
    parts = [
        _t("患者在册并经公安机关登记列管") if rule.require_police_registered else _t("患者在册")
    ]
    kinds = "、".join(
        str(IncidentKind(k).label)
        for k in rule.qualifying_incident_kinds
        if k in IncidentKind.values
    )
    if kinds and rule.min_risk_level is not None:
        parts.append(
            _t("有%(kinds)s记录或最近危险性评估%(min)s级及以上")
            % {"kinds": kinds, "min": rule.min_risk_level}
        )
    elif kinds:
        parts.append(_t("有%(kinds)s记录") % {"kinds": kinds})
    elif rule.min_risk_level is not None:
        parts.append(_t("最近危险性评估%(min)s级及以上") % {"min": rule.min_risk_level})
    parts.append(
        _t("监护人已签订监护责任书") if rule.require_responsibility_letter else _t("已登记监护人")
    )
    if rule.min_assistant_guardians:
        parts.append(_t("至少%(n)s名协助监护人") % {"n": rule.min_assistant_guardians})
    if rule.reapply_bar_months:
        parts.append(
            _t("监护人近%(n)s个月内无未履行监护责任的情形") % {"n": rule.reapply_bar_months}
        )
    return _t("条件：%(parts)s。") % {"parts": "；".join(parts)}


@require_http_methods(["GET", "POST"])
def award_candidates(request):
    """Registered patients with the eligibility check and, when not eligible,
    why. The search form POSTs (no name or ID number in a URL)."""
    user = request.user
    sel.require(user, sel.REWARD_VIEW)
    form = forms.CandidateFilterForm(_search_data(request))
    term, only = "", False
    if form.is_valid():
        term, only = form.cleaned_data["q"].strip(), form.cleaned_data["only_eligible"]
    qs = sel.reward_candidates(user=user, term=term, only_eligible=only)
    page = _page(request, qs)
    today = timezone.localdate()
    can_apply = sel.can(user, sel.REWARD_APPLY)
    is_doctor = role_of(user) == Role.TOWNSHIP_DOCTOR
    policies: dict[str | None, object] = {}
    rows = []
    for patient in page.object_list:
        county = patient.region.county_code
        if county not in policies:
            policies[county] = sel.reward_policy_in_force(county_code=county, on=today)
        policy = policies[county]
        facts = sel.reward_facts_for(patient)
        if policy is None:
            reasons = [rules.Reason("no_policy", str(services.ERR_NO_REWARD_POLICY))]
        else:
            reasons = rules.reward_ineligibility(facts, policy.rule(), today=today)
        rows.append(
            {
                "patient": patient,
                "facts": facts,
                "reasons": reasons,
                "open_award": patient.rf_open_award,
                "can_apply": can_apply
                and not reasons
                and not patient.rf_open_award
                and (not is_doctor or can_manage_patient(user, patient)),
            }
        )
    listed = [p.pk for p in page.object_list]
    _listed(request, listed, "candidates.list", term=term, count=page.paginator.count)
    ctx = {
        "form": form,
        "page": page,
        "rows": rows,
        "post_form": "candidate-filter",
        "flags": _reward_flags(user),
        "tab": "candidates",
        "rule_texts": [
            (policy.name, reward_rule_text(policy.rule()))
            for policy in sel.reward_policies_in_scope(user=user, on=today)
        ],
    }
    return _render(
        request, "subsidies/award_candidates.html", "subsidies/partials/_candidate_rows.html", ctx
    )


@require_http_methods(["GET", "POST"])
def award_apply(request, patient_id):
    user = request.user
    sel.require(user, sel.REWARD_APPLY)
    patient = patient_get_for_user(user=user, pk=patient_id, request=request)
    if role_of(user) == Role.TOWNSHIP_DOCTOR and not can_manage_patient(user, patient):
        raise PermissionDenied
    form = forms.ApplyForm(
        request.POST or None, sources=services.SOURCES_BY_ROLE.get(role_of(user), ())
    )
    if request.method == "POST" and form.is_valid():
        try:
            award = services.award_apply(
                patient_id=patient.pk,
                by=user,
                source=form.cleaned_data["source"],
                applicant_name=form.cleaned_data["applicant_name"],
                note=form.cleaned_data["note"],
                request=request,
            )
        except DomainError as exc:
            form.add_domain_error(exc)
        else:
            messages.success(request, _t("申请已提交，等待乡镇综治办审核。"))
            return redirect("subsidies:award-detail", pk=award.pk)
    policy, reasons = services.reward_eligibility(patient=patient)
    open_award = (
        sel.award_list_visible_to(user=user)
        .filter(patient=patient, status__in=OPEN_AWARD_STATUSES)
        .first()
    )
    services.record_view(user=user, patient_id=patient.pk, action="reward.check", request=request)
    ctx = {
        "patient": patient,
        "facts": sel.reward_facts_for(patient),
        "policy": policy,
        "reasons": reasons,
        "open_award": open_award,
        "form": form,
        "flags": _reward_flags(user),
        "tab": "candidates",
    }
    return render(request, "subsidies/award_apply.html", ctx)


def _award_context(request, award, bound: dict | None = None) -> dict:
    user = request.user
    flags = _reward_flags(user)
    today = timezone.localdate()
    status = award.status
    failed = list(
        Incident.objects.filter(patient_id=award.patient_id, guardian_failed_duties=True).order_by(
            "-occurred_on"
        )
    )
    review_opens = (
        award.valid_until - timedelta(days=sel.REVIEW_WINDOW_DAYS) if award.valid_until else None
    )
    review_window = review_opens is not None and today >= review_opens
    actions = {
        "review": flags["can_township_review"] and status == AwardStatus.APPLIED,
        "county": flags["can_county_approve"] and status == AwardStatus.REVIEWED,
        "same_person": award.reviewed_by_id == user.pk,
        "objection": flags["can_county_approve"] and status == AwardStatus.NOTICE,
        "yearly": flags["can_manage"] and status == AwardStatus.ACTIVE and review_window,
        "suspend": flags["can_manage"] and status in OPEN_AWARD_STATUSES and bool(failed),
        "end": flags["can_manage"] and status in OPEN_AWARD_STATUSES,
    }
    bound = bound or {}
    policy, reasons = services.reward_eligibility(patient=award.patient, today=today)
    return {
        "award": award,
        "patient": award.patient,
        "events": list(sel.award_events(award)),
        "payments": list(award.batch_lines.select_related("batch").order_by("batch__period_start")),
        "reasons": reasons,
        "actions": actions,
        "flags": flags,
        "tab": "awards",
        "review_form": bound.get("review") or forms.DecisionForm(prefix="review"),
        "county_form": bound.get("county") or forms.DecisionForm(prefix="county"),
        "objection_form": bound.get("objection") or forms.NoteForm(prefix="objection"),
        "yearly_form": bound.get("yearly") or forms.DecisionForm(prefix="yearly"),
        "suspend_form": bound.get("suspend")
        or forms.SuspendForm(incidents=failed, prefix="suspend"),
        "end_form": bound.get("end") or forms.EndForm(prefix="end"),
        "review_window_days": sel.REVIEW_WINDOW_DAYS,
        # why the yearly review form is not there yet
        "review_not_open": (
            flags["can_manage"] and status == AwardStatus.ACTIVE and not review_window
        ),
        "review_opens": review_opens,
    }


@require_GET
def award_detail(request, pk):
    user = request.user
    award = sel.award_get_for_user(user=user, pk=pk, request=request)
    services.record_view(
        user=user,
        patient_id=award.patient_id,
        action="reward.view",
        request=request,
        award=award.pk,
    )
    return render(request, "subsidies/award_detail.html", _award_context(request, award))


def _refusals_as_messages(request, form) -> None:
    """The errors of a form the page will not show (its action is not open in
    the object's current state) become page messages: never a silent re-render."""
    for field, errors in form.errors.items():
        label = form.fields[field].label if field in form.fields else None
        for error in errors:
            messages.error(request, f"{label}：{error}" if label else error)


def _award_action(request, pk, *, cap, form, key, run, done):
    """Common shape of the award actions: check, call the service, re-render on error."""
    user = request.user
    sel.require(user, cap)
    award = sel.award_get_for_user(user=user, pk=pk, request=request)
    if form.is_valid():
        try:
            run(award, form.cleaned_data)
        except DomainError as exc:
            form.add_domain_error(exc)
        else:
            messages.success(request, done)
            return redirect("subsidies:award-detail", pk=award.pk)
    award.refresh_from_db()
    ctx = _award_context(request, award, bound={key: form})
    if not ctx["actions"][key]:
        _refusals_as_messages(request, form)
    return render(request, "subsidies/award_detail.html", ctx)


@require_POST
def award_township_review(request, pk):
    def run(award, data):
        services.award_township_review(
            award_id=award.pk,
            by=request.user,
            approve=data["decision"] == "approve",
            note=data["note"],
            request=request,
        )

    return _award_action(
        request,
        pk,
        cap=sel.REWARD_TOWNSHIP_REVIEW,
        form=forms.DecisionForm(request.POST, prefix="review"),
        key="review",
        run=run,
        done=_t("乡镇审核已办理。"),
    )


@require_POST
def award_county_decide(request, pk):
    def run(award, data):
        services.award_county_decide(
            award_id=award.pk,
            by=request.user,
            approve=data["decision"] == "approve",
            note=data["note"],
            request=request,
        )

    return _award_action(
        request,
        pk,
        cap=sel.REWARD_COUNTY_APPROVE,
        form=forms.DecisionForm(request.POST, prefix="county"),
        key="county",
        run=run,
        done=_t("县级审批已办理。"),
    )


@require_POST
def award_objection(request, pk):
    def run(award, data):
        services.award_notice_objection(
            award_id=award.pk, by=request.user, note=data["note"], request=request
        )

    return _award_action(
        request,
        pk,
        cap=sel.REWARD_COUNTY_APPROVE,
        form=forms.NoteForm(request.POST, prefix="objection"),
        key="objection",
        run=run,
        done=_t("已登记公示异议，不予发放。"),
    )


@require_POST
def award_yearly_review(request, pk):
    def run(award, data):
        services.award_yearly_review(
            award_id=award.pk,
            by=request.user,
            renew=data["decision"] == "approve",
            note=data["note"],
            request=request,
        )

    return _award_action(
        request,
        pk,
        cap=sel.REWARD_MANAGE,
        form=forms.DecisionForm(request.POST, prefix="yearly"),
        key="yearly",
        run=run,
        done=_t("年审已办理。"),
    )


@require_POST
def award_suspend(request, pk):
    user = request.user
    sel.require(user, sel.REWARD_MANAGE)
    award = sel.award_get_for_user(user=user, pk=pk, request=request)
    failed = Incident.objects.filter(
        patient_id=award.patient_id, guardian_failed_duties=True
    ).order_by("-occurred_on")

    def run(award, data):
        services.award_suspend(
            award_id=award.pk,
            incident_id=data["incident"],
            by=request.user,
            note=data["note"],
            request=request,
        )

    return _award_action(
        request,
        pk,
        cap=sel.REWARD_MANAGE,
        form=forms.SuspendForm(request.POST, incidents=failed, prefix="suspend"),
        key="suspend",
        run=run,
        done=_t("已暂停发放。"),
    )


@require_POST
def award_end(request, pk):
    def run(award, data):
        services.award_end(
            award_id=award.pk,
            by=request.user,
            reason=data["reason"],
            ended_on=data["ended_on"],
            note=data["note"],
            request=request,
        )

    return _award_action(
        request,
        pk,
        cap=sel.REWARD_MANAGE,
        form=forms.EndForm(request.POST, prefix="end"),
        key="end",
        run=run,
        done=_t("已终止发放。"),
    )


# --- batches ----------------------------------------------------------------


def _default_period(counties) -> str:
    today = timezone.localdate()
    for county in counties:
        policy = sel.reward_policy_in_force(county_code=county.pk, on=today)
        if policy is not None:
            return rules.last_completed_period(policy.frequency, today).code
    return rules.last_completed_period("quarterly", today).code


@require_GET
def batch_list(request):
    user = request.user
    sel.require(user, sel.BATCH_VIEW)
    counties = sel.batch_scope_counties(user=user)
    page = _page(
        request, sel.batch_list_visible_to(user=user).order_by("-period_start", "region_id")
    )
    ctx = {
        "page": page,
        "query": _query_without_page(request),
        "flags": _reward_flags(user),
        "draw_form": forms.BatchDrawForm(counties=counties, period=_default_period(counties)),
        "tab": "batches",
    }
    return render(request, "subsidies/batch_list.html", ctx)


@require_POST
def batch_draw(request):
    user = request.user
    sel.require(user, sel.BATCH_DRAW)
    counties = sel.batch_scope_counties(user=user)
    form = forms.BatchDrawForm(request.POST, counties=counties)
    if form.is_valid():
        region = Region.objects.get(pk=form.cleaned_data["region"])
        try:
            batch, created = services.batch_draw(
                region=region, period_code=form.cleaned_data["period"], by=user, request=request
            )
        except DomainError as exc:
            form.add_domain_error(exc)
        else:
            if created:
                messages.success(request, _t("发放批次已生成，请审核。"))
            else:
                messages.info(request, _t("该期发放批次已经生成过，未重复生成。"))
            return redirect("subsidies:batch-detail", pk=batch.pk)
    page = _page(request, sel.batch_list_visible_to(user=user).order_by("-period_start"))
    ctx = {
        "page": page,
        "query": "",
        "flags": _reward_flags(user),
        "draw_form": form,
        "tab": "batches",
    }
    return render(request, "subsidies/batch_list.html", ctx)


def _batch_context(request, batch, pay_form=None) -> dict:
    user = request.user
    flags = _reward_flags(user)
    return {
        "batch": batch,
        "page": _page(request, sel.batch_lines(batch), LINES_PER_PAGE),
        "query": _query_without_page(request),
        "flags": flags,
        "can_review": flags["can_review_batch"] and batch.status == BatchStatus.DRAFTED,
        "can_pay": flags["can_pay"] and batch.status == BatchStatus.REVIEWED,
        "pay_form": pay_form or forms.PayForm(),
        "tab": "batches",
    }


@require_GET
def batch_detail(request, pk):
    batch = sel.batch_get_for_user(user=request.user, pk=pk, request=request)
    return render(request, "subsidies/batch_detail.html", _batch_context(request, batch))


@require_POST
def batch_review(request, pk):
    user = request.user
    sel.require(user, sel.BATCH_REVIEW)
    batch = sel.batch_get_for_user(user=user, pk=pk, request=request)
    try:
        services.batch_review(batch_id=batch.pk, by=user, request=request)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _t("批次已审核，请财政部门发放。"))
    return redirect("subsidies:batch-detail", pk=batch.pk)


@require_POST
def batch_pay(request, pk):
    user = request.user
    sel.require(user, sel.BATCH_PAY)
    batch = sel.batch_get_for_user(user=user, pk=pk, request=request)
    form = forms.PayForm(request.POST)
    if form.is_valid():
        try:
            services.batch_mark_paid(
                batch_id=batch.pk,
                by=user,
                reference=form.cleaned_data["reference"],
                request=request,
            )
        except DomainError as exc:
            form.add_domain_error(exc)
        else:
            messages.success(request, _t("批次已标记为已发放。"))
            return redirect("subsidies:batch-detail", pk=batch.pk)
    return render(request, "subsidies/batch_detail.html", _batch_context(request, batch, form))


@require_http_methods(["GET", "POST"])
@export_view("reward_batch")
def batch_export(request, pk):
    user = request.user
    sel.require(user, sel.BATCH_EXPORT)
    batch = sel.batch_get_for_user(user=user, pk=pk, request=request)
    reason = export_reason(request)
    lines = sel.batch_lines(batch)
    export_record(
        user=user,
        what="reward_batch",
        reason=reason,
        count=batch.line_count,
        object_id=batch.pk,
        request=request,
    )

    def rows():
        for i, line in enumerate(lines.iterator(chunk_size=500), start=1):
            yield [
                i,
                line.award.number,
                line.village.parent.name if line.village.parent_id else "",
                line.village.name,
                line.guardian_name,
                line.guardian_relation,
                "、".join(line.months),
                "、".join(line.arrears),
                line.month_count,
                line.amount,
            ]

    return exports.xlsx_response(
        filename=f"以奖代补发放明细_{batch.region_id}_{batch.period}.xlsx",
        title=_t("发放明细"),
        preamble=[
            [_t("以奖代补发放明细"), batch.region.name, batch.period],
            [_t("状态"), batch.get_status_display(), _t("支付凭证号"), batch.payment_reference],
        ],
        header=[
            _t("序号"),
            _t("奖补编号"),
            _t("乡镇（街道）"),
            _t("村（居）"),
            _t("领取人（监护人）"),
            _t("与患者关系"),
            _t("发放月份"),
            _t("其中补发月份"),
            _t("月数"),
            _t("金额（元）"),
        ],
        rows=rows(),
        footer=[[_t("合计"), "", "", "", "", "", "", "", batch.line_count, batch.total]],
    )


# ==========================================================================
# Hospital episodes and settlement
# ==========================================================================

HOSPITAL_TABS = ("in_hospital", "discharged", "settlements")


@require_GET
def settlement_list(request):
    """Hospital: in-hospital and discharged episodes and settlements.
    Payers (civil affairs, federation, finance): settlements in which they pay."""
    user = request.user
    sel.require_any(user, sel.EPISODE_MANAGE, sel.SETTLEMENT_VIEW)
    flags = _settlement_flags(user)
    filter_form = forms.SettlementFilterForm(request.GET or None)
    month = filter_form.cleaned_data.get("month") if filter_form.is_valid() else None
    tab = request.GET.get("tab")
    if flags["is_hospital"]:
        tab = tab if tab in HOSPITAL_TABS else "in_hospital"
    else:
        tab = "settlements"
    ctx = {"flags": flags, "tab": tab, "filter_form": filter_form}
    if tab == "settlements":
        qs = sel.settlements_for_payers(user=user)
        if month is not None:
            qs = qs.filter(settled_on__range=(rules.month_start(month), rules.month_end(month)))
        if flags["show_identity"]:
            qs = qs.select_related("patient")
        ctx["page"] = _page(request, qs.order_by("-settled_on", "-id"))
        _listed(request, [s.patient_id for s in ctx["page"].object_list], "settlement.list")
        partial = "subsidies/partials/_settlement_rows.html"
    else:
        effective = Settlement.objects.filter(
            episode=OuterRef("pk"), kind=SettlementKind.SETTLEMENT, reversal__isnull=True
        )
        qs = (
            sel.episode_list_visible_to(user=user)
            .filter(status=tab)
            .annotate(settled=Exists(effective))
        )
        order = ("-admission_date", "-id") if tab == "in_hospital" else ("-discharge_date", "-id")
        ctx["page"] = _page(request, qs.order_by(*order))
        _listed(request, [e.patient_id for e in ctx["page"].object_list], "episode.list")
        partial = "subsidies/partials/_episode_rows.html"
    ctx["query"] = _query_without_page(request)
    return _render(request, "subsidies/settlement_list.html", partial, ctx)


@require_http_methods(["GET", "POST"])
def episode_new(request):
    """Find the patient to admit: the search form POSTs (no name or ID
    number in a URL)."""
    user = request.user
    sel.require(user, sel.EPISODE_MANAGE)
    form = forms.PatientSearchForm(request.POST if request.method == "POST" else None)
    results = []
    term = ""
    if form.is_valid():
        term = form.cleaned_data["q"].strip()
    if term:
        qs = patient_search(patient_list_visible_to(user=user), term).order_by("name", "pk")
        results = list(qs[:20])
        patient_record_search(
            user=user,
            term=term,
            count=len(results),
            request=request,
            listed=[p.pk for p in results],
        )
    ctx = {
        "form": form,
        "results": results,
        "term": term,
        "flags": _settlement_flags(user),
        "tab": "admit",
    }
    return render(request, "subsidies/episode_new.html", ctx)


@require_http_methods(["GET", "POST"])
def episode_admit(request, patient_id):
    user = request.user
    sel.require(user, sel.EPISODE_MANAGE)
    patient = patient_get_for_user(user=user, pk=patient_id, request=request)
    if request.method == "GET":
        patient_record_view(user=user, patient=patient, request=request, action="episode.form")
    form = forms.AdmitForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            episode = services.episode_admit(
                patient_id=patient.pk, by=user, request=request, **form.cleaned_data
            )
        except DomainError as exc:
            form.add_domain_error(exc)
        else:
            messages.success(request, _t("已办理入院。"))
            return redirect("subsidies:episode-detail", pk=episode.pk)
    ctx = {"patient": patient, "form": form, "flags": _settlement_flags(user), "tab": "admit"}
    return render(request, "subsidies/episode_admit.html", ctx)


def _episode_settlements(episode):
    return list(
        Settlement.objects.filter(episode=episode)
        .select_related("reverses")
        .prefetch_related("lines")
        .order_by("id")
    )


@require_GET
def episode_detail(request, pk):
    user = request.user
    episode = sel.episode_get_for_user(user=user, pk=pk, request=request)
    settlements = _episode_settlements(episode)
    reversed_ids = {s.reverses_id for s in settlements if s.reverses_id}
    effective = next(
        (
            s
            for s in reversed(settlements)
            if s.kind == SettlementKind.SETTLEMENT and s.pk not in reversed_ids
        ),
        None,
    )
    services.record_view(
        user=user,
        patient_id=episode.patient_id,
        action="episode.view",
        request=request,
        episode=episode.pk,
    )
    ctx = {
        "episode": episode,
        "patient": episode.patient,
        "sheet": sel.discharge_sheet_for(episode=episode),
        "settlements": settlements,
        "reversed_ids": reversed_ids,
        "effective": effective,
        "can_discharge": episode.status == EpisodeStatus.IN_HOSPITAL,
        "can_settle": episode.status == EpisodeStatus.DISCHARGED and effective is None,
        "flags": _settlement_flags(user),
        "tab": "in_hospital" if episode.status == EpisodeStatus.IN_HOSPITAL else "discharged",
    }
    return render(request, "subsidies/episode_detail.html", ctx)


def _quote(request, episode, form_data, *, discharge_date):
    """Quote from posted costs: (quote, policy, errors dict)."""
    cost = forms.CostForm(form_data)
    if not cost.is_valid():
        return None, None, cost.errors
    try:
        quote, policy = services.settlement_quote(
            patient_id=episode.patient_id,
            by=request.user,
            admission_date=episode.admission_date,
            discharge_date=discharge_date,
            total_cost=cost.cleaned_data["total_cost"],
            in_scope_cost=cost.cleaned_data["in_scope_cost"],
            episode_id=episode.pk,
            request=request,
        )
    except DomainError as exc:
        return None, None, {exc.field or "__all__": [exc.message]}
    return quote, policy, {}


def payer_rows(lines) -> list[dict]:
    """Quoted or saved per-layer lines as one row per payer (as the API answers)."""
    rows = []
    for total in rules.lines_by_payer(lines):
        layers = total.layers
        rows.append(
            {
                "payer": total.payer,
                "label": Payer(total.payer).label,
                "ratio": "、".join(f"{ln.ratio}%" for ln in layers),
                "base": layers[0].base,
                "amount": total.amount,
                "limited": "、".join(
                    str(LIMITED_LABELS[ln.limited_by]) for ln in layers if ln.limited_by
                ),
                "layers": layers,
            }
        )
    return rows


def _quote_ctx(quote, policy, errors) -> dict:
    lines = payer_rows(quote.lines) if quote is not None else []
    return {"quote": quote, "quote_policy": policy, "quote_lines": lines, "quote_errors": errors}


def _parse_date(value):
    try:
        return date.fromisoformat(value or "")
    except ValueError:
        return None


@require_http_methods(["GET", "POST"])
def episode_discharge(request, pk):
    """The discharge information sheet and the settlement, quoted then saved together."""
    user = request.user
    sel.require(user, sel.EPISODE_MANAGE)
    episode = sel.episode_get_for_user(user=user, pk=pk, request=request)
    if episode.status != EpisodeStatus.IN_HOSPITAL:
        messages.info(request, _t("该次住院已办理出院。"))
        return redirect("subsidies:episode-detail", pk=episode.pk)
    form = forms.DischargeForm(request.POST or None)
    if request.method == "GET":
        patient_record_view(
            user=user, patient=episode.patient, request=request, action="episode.form"
        )
    ctx = {"episode": episode, "patient": episode.patient, "flags": _settlement_flags(user)}
    if request.method == "POST" and request.POST.get("action") == "quote":
        discharge = _parse_date(request.POST.get("discharge_date"))
        quote, policy, errors = _quote(request, episode, request.POST, discharge_date=discharge)
        ctx.update(_quote_ctx(quote, policy, errors))
        if request.htmx:
            return render(request, "subsidies/partials/_quote.html", ctx)
        ctx["form"] = form
        return render(request, "subsidies/episode_discharge.html", ctx)
    if request.method == "POST" and form.is_valid():
        try:
            settlement = services.episode_discharge(
                episode_id=episode.pk,
                by=user,
                discharge_date=form.cleaned_data["discharge_date"],
                sheet=form.sheet(),
                total_cost=form.cleaned_data["total_cost"],
                in_scope_cost=form.cleaned_data["in_scope_cost"],
                request=request,
            )
        except DomainError as exc:
            form.add_domain_error(exc)
        else:
            messages.success(request, _t("已办理出院并完成一站式结算。"))
            return redirect("subsidies:settlement-detail", pk=settlement.pk)
    ctx.update(_quote_ctx(None, None, {}))
    ctx["form"] = form
    return render(request, "subsidies/episode_discharge.html", ctx)


@require_http_methods(["GET", "POST"])
def episode_settle(request, pk):
    """Settle a discharged episode that has no settlement in force (after a reversal)."""
    user = request.user
    sel.require(user, sel.EPISODE_MANAGE)
    episode = sel.episode_get_for_user(user=user, pk=pk, request=request)
    if episode.status != EpisodeStatus.DISCHARGED or sel.effective_settlement(episode):
        messages.info(request, _t("该次住院当前不需要结算。"))
        return redirect("subsidies:episode-detail", pk=episode.pk)
    form = forms.CostForm(request.POST or None)
    ctx = {"episode": episode, "patient": episode.patient, "flags": _settlement_flags(user)}
    if request.method == "POST" and request.POST.get("action") == "quote":
        quote, policy, errors = _quote(
            request, episode, request.POST, discharge_date=episode.discharge_date
        )
        ctx.update(_quote_ctx(quote, policy, errors))
        if request.htmx:
            return render(request, "subsidies/partials/_quote.html", ctx)
        ctx["form"] = form
        return render(request, "subsidies/episode_settle.html", ctx)
    if request.method == "POST" and form.is_valid():
        try:
            settlement = services.settlement_create(
                episode_id=episode.pk,
                by=user,
                total_cost=form.cleaned_data["total_cost"],
                in_scope_cost=form.cleaned_data["in_scope_cost"],
                request=request,
            )
        except DomainError as exc:
            form.add_domain_error(exc)
        else:
            messages.success(request, _t("结算已完成。"))
            return redirect("subsidies:settlement-detail", pk=settlement.pk)
    ctx.update(_quote_ctx(None, None, {}))
    ctx["form"] = form
    return render(request, "subsidies/episode_settle.html", ctx)


def _settlement_context(request, settlement, reverse_form=None) -> dict:
    user = request.user
    flags = _settlement_flags(user)
    reversal = Settlement.objects.filter(reverses=settlement).first()
    return {
        "settlement": settlement,
        "lines": payer_rows(sel.settlement_lines(settlement)),
        "reversal": reversal,
        "flags": flags,
        "patient": settlement.patient if flags["show_identity"] else None,
        "can_reverse": flags["is_hospital"]
        and settlement.kind == SettlementKind.SETTLEMENT
        and reversal is None,
        "reverse_form": reverse_form or forms.ReverseForm(),
        "tab": "settlements",
    }


@require_GET
def settlement_detail(request, pk):
    user = request.user
    settlement = sel.settlement_get_for_user(user=user, pk=pk, request=request)
    services.record_view(
        user=user,
        patient_id=settlement.patient_id,
        action="settlement.view",
        request=request,
        settlement=settlement.pk,
    )
    return render(
        request, "subsidies/settlement_detail.html", _settlement_context(request, settlement)
    )


@require_POST
def settlement_reverse(request, pk):
    user = request.user
    sel.require(user, sel.EPISODE_MANAGE)
    settlement = sel.settlement_get_for_user(user=user, pk=pk, request=request)
    form = forms.ReverseForm(request.POST)
    if form.is_valid():
        try:
            services.settlement_reverse(
                settlement_id=settlement.pk,
                by=user,
                reason=form.cleaned_data["reason"],
                request=request,
            )
        except DomainError as exc:
            form.add_domain_error(exc)
        else:
            messages.success(request, _t("结算单已冲销，可重新结算。"))
            return redirect("subsidies:episode-detail", pk=settlement.episode_id)
    ctx = _settlement_context(request, settlement, form)
    if not ctx["can_reverse"]:
        _refusals_as_messages(request, form)
    return render(request, "subsidies/settlement_detail.html", ctx)


def _statement_params(request):
    """(form, payer, month, refusal): ``refusal`` explains a payer the user's
    department may not see (payer and month are then None)."""
    user = request.user
    payers = sel.statement_payers_for(user)
    if not payers:
        raise PermissionDenied
    today = timezone.localdate()
    asked = request.GET.get("payer")
    if asked and asked not in payers:
        label = Payer(asked).label if asked in Payer.values else asked
        refusal = sel.ERR_STATEMENT_PAYER % {
            "payer": label,
            "allowed": "、".join(str(Payer(p).label) for p in payers),
        }
        month = request.GET.get("month") or f"{today:%Y-%m}"
        return (
            forms.StatementForm({"payer": payers[0], "month": month}, payers=payers),
            None,
            None,
            refusal,
        )
    data = {
        "payer": request.GET.get("payer") or payers[0],
        "month": request.GET.get("month") or f"{today:%Y-%m}",
    }
    form = forms.StatementForm(data, payers=payers)
    if not form.is_valid():
        return form, None, None, None
    return form, form.cleaned_data["payer"], form.cleaned_data["month"], None


@require_GET
def statement(request):
    """One payer's monthly statement: what it owes for the month's settlements."""
    user = request.user
    form, payer, month, refusal = _statement_params(request)
    ctx = {"form": form, "flags": _settlement_flags(user), "tab": "statement"}
    if refusal:
        # another department's statement: said plainly, with the payers this user reads
        ctx["refusal"] = refusal
        return render(request, "subsidies/statement.html", ctx, status=403)
    if payer is not None:
        lines = sel.statement_lines(user=user, payer=payer, month=month)
        if sel.sees_identities(user):
            lines = lines.select_related("settlement__patient")
        ctx.update(
            {
                "payer_label": Payer(payer).label,
                "month": month,
                "page": _page(request, lines, LINES_PER_PAGE),
                "total": sel.statement_total(lines),
                "query": _query_without_page(request),
                "export_query": urlencode({"payer": payer, "month": f"{month:%Y-%m}"}),
            }
        )
    return render(request, "subsidies/statement.html", ctx)


@require_http_methods(["GET", "POST"])
@export_view("settlement_statement")
def statement_export(request):
    user = request.user
    form, payer, month, refusal = _statement_params(request)
    if refusal:
        raise PermissionDenied(refusal)
    if payer is None:
        raise Http404
    reason = export_reason(request)
    show_identity = sel.sees_identities(user)
    lines = sel.statement_lines(user=user, payer=payer, month=month)
    if show_identity:
        lines = lines.select_related("settlement__patient")
    total = sel.statement_total(lines)
    export_record(
        user=user,
        what="settlement_statement",
        reason=reason,
        count=lines.count(),
        object_id=f"{payer}:{month:%Y-%m}",
        detail={"identities": show_identity},
        request=request,
    )

    def rows():
        for i, line in enumerate(lines.iterator(chunk_size=500), start=1):
            s = line.settlement
            identity = [s.patient.name, s.patient.id_number_masked] if show_identity else []
            yield [
                i,
                s.number,
                s.get_kind_display(),
                s.settled_on.isoformat(),
                s.hospital.name,
                s.episode.case_number,
                *identity,
                s.region.parent.name if s.region.parent_id else "",
                s.admission_date.isoformat(),
                s.discharge_date.isoformat(),
                s.total_cost,
                s.in_scope_cost,
                line.amount,
            ]

    identity_header = [_t("患者姓名"), _t("证件号码")] if show_identity else []
    label = Payer(payer).label
    return exports.xlsx_response(
        filename=f"一站式结算对账单_{label}_{month:%Y-%m}.xlsx",
        title=_t("对账单"),
        preamble=[[_t("一站式结算月度对账单"), str(label), f"{month:%Y-%m}"]],
        header=[
            _t("序号"),
            _t("结算单号"),
            _t("类型"),
            _t("结算日期"),
            _t("医院"),
            _t("住院号"),
            *identity_header,
            _t("乡镇（街道）"),
            _t("入院日期"),
            _t("出院日期"),
            _t("医疗总费用"),
            _t("政策范围内费用"),
            _t("本方应付（元）"),
        ],
        rows=rows(),
        footer=[[_t("合计"), *[""] * (10 + len(identity_header)), total]],
    )
