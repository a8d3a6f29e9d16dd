"""Forms of the follow-up, overdue, alert and incident pages.

The follow-up form is the national form on one page. It refuses exactly
what ``followups.rules.validate`` refuses (the API uses the same), and hands
``service_data()`` to ``followups.services.followups``.
"""

from __future__ import annotations

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from followups import rules
from followups.models import (
    Compliance,
    Contact,
    DeathCause,
    Hospitalization,
    Insight,
    Level3,
    LockStatus,
    LostReason,
    Mode,
    Outcome,
    RehabMeasure,
    TreatmentEffect,
    WorkLevel,
)
from patients.models import DANGEROUS_BEHAVIOURS, Classification, IncidentKind, Symptom

RISK_CHOICES = [
    (0, _("0级")),
    (1, _("1级")),
    (2, _("2级")),
    (3, _("3级")),
    (4, _("4级")),
    (5, _("5级")),
]
MEDICATION_ROWS = rules.MAX_MEDICATION_ROWS
DOSE_LABELS = {
    "drug": _("药物名称"),
    "morning_mg": _("早（mg）"),
    "noon_mg": _("中（mg）"),
    "evening_mg": _("晚（mg）"),
    "injection_interval_weeks": _("长效针剂：每几周"),
    "injection_mg": _("每次（mg）"),
}
MED_PREFIX = {"medications": "med", "medication_guidance": "gd"}


def _radio(choices, label, *, required=False, blank=False):
    return forms.ChoiceField(
        label=label,
        choices=([("", _("未填"))] if blank else []) + list(choices),
        widget=forms.RadioSelect,
        required=required,
    )


def _checks(choices, label):
    return forms.MultipleChoiceField(
        label=label, choices=choices, widget=forms.CheckboxSelectMultiple, required=False
    )


def _date_input() -> forms.DateInput:
    # <input type="date"> only takes ISO dates, whatever the locale's format
    return forms.DateInput(format="%Y-%m-%d", attrs={"type": "date"})


def _date(label, *, required=False):
    return forms.DateField(label=label, required=required, widget=_date_input())


def _text(label, max_length, *, textarea=False):
    widget = forms.Textarea(attrs={"rows": 2}) if textarea else forms.TextInput()
    return forms.CharField(label=label, max_length=max_length, required=False, widget=widget)


class FollowUpForm(forms.Form):
    """The national follow-up form (DOMAIN.md → Follow-ups) on one page."""

    visit_date = _date(_("随访日期"), required=True)
    mode = _radio(Mode.choices, _("随访形式"), required=True)
    outcome = _radio(Outcome.choices, _("随访结果"), required=True)
    contacts = _checks(Contact.choices, _("本次随访对象"))
    # lost / deceased
    lost_reason = _radio(LostReason.choices, _("失访原因"))
    death_date = _date(_("死亡日期"))
    death_cause = _radio(DeathCause.choices, _("死亡原因"))
    death_cause_detail = _text(_("死亡原因说明"), 100)
    # completed: the clinical items
    risk_level = forms.TypedChoiceField(
        label=_("危险性评估"),
        choices=RISK_CHOICES,
        coerce=int,
        empty_value=None,
        widget=forms.RadioSelect,
        required=False,
    )
    symptoms = _checks(Symptom.choices, _("目前症状（无症状则不勾选）"))
    symptoms_other = _text(_("其他症状"), 100)
    insight = _radio(Insight.choices, _("自知力"))
    sleep = _radio(Level3.choices, _("睡眠情况"))
    diet = _radio(Level3.choices, _("饮食情况"))
    self_care = _radio(Level3.choices, _("个人生活料理"))
    housework = _radio(Level3.choices, _("家务劳动"))
    work = _radio(WorkLevel.choices, _("生产劳动及工作"))
    learning = _radio(Level3.choices, _("学习能力"))
    social = _radio(Level3.choices, _("社会人际交往"))
    lock_status = _radio(LockStatus.choices, _("两次随访期间关锁情况"))
    hospitalization = _radio(Hospitalization.choices, _("两次随访期间住院情况"))
    last_discharge_date = _date(_("末次出院时间"))
    lab_tests = _text(_("实验室检查（无则不填）"), 2000)
    medication_compliance = _radio(Compliance.choices, _("用药依从性"))
    adverse_reaction = forms.BooleanField(label=_("有药物不良反应"), required=False)
    adverse_reaction_serious = forms.BooleanField(label=_("严重不良反应"), required=False)
    adverse_reaction_detail = _text(_("不良反应（药物及表现）"), 200)
    treatment_effect = _radio(TreatmentEffect.choices, _("治疗效果"))
    referral_suggested = forms.BooleanField(label=_("建议转诊"), required=False)
    referral_reason = _text(_("转诊原因"), 200)
    referred_to = _text(_("转诊至机构及科室"), 100)
    rehab_measures = _checks(RehabMeasure.choices, _("康复措施"))
    rehab_measures_other = _text(_("其他康复措施"), 100)
    # the doctor's decision
    classification = _radio([("", _("采用系统建议")), *Classification.choices], _("本次随访分类"))
    classification_override_reason = _text(_("调整分类的原因"), 200)
    next_due_date = _date(_("下次随访日期（可早于建议日期，不可晚于）"))
    # a double-click or a retried POST saves one visit, not two
    idempotency_key = forms.UUIDField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, birth_date=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.birth_date = birth_date  # no date on the form may lie before it
        today = timezone.localdate().isoformat()
        self.fields["visit_date"].widget.attrs["max"] = today
        floor = max(birth_date or rules.EARLIEST_DATE, rules.EARLIEST_DATE).isoformat()
        for name in ("visit_date", "death_date", "last_discharge_date"):
            self.fields[name].widget.attrs["min"] = floor
        for key, label in DANGEROUS_BEHAVIOURS.items():
            self.fields[f"db_{key}"] = forms.IntegerField(
                label=label,
                min_value=0,
                max_value=999,
                required=False,
                widget=forms.NumberInput(attrs={"inputmode": "numeric", "min": 0}),
            )
        for prefix in MED_PREFIX.values():
            for i in range(MEDICATION_ROWS):
                for key, label in DOSE_LABELS.items():
                    name = f"{prefix}_{i}_{key}"
                    if key == "drug":
                        field = forms.CharField(label=label, max_length=60, required=False)
                    else:
                        # the rules refuse what is not a dose (an injection
                        # interval of 0 or 1.5 weeks too: rules.medication_rows_error)
                        weeks = key == "injection_interval_weeks"
                        field = forms.DecimalField(
                            label=label,
                            min_value=0,
                            max_digits=8,
                            decimal_places=2,
                            required=False,
                            widget=forms.NumberInput(
                                attrs={"step": 1, "min": 1, "max": rules.MAX_INJECTION_WEEKS}
                                if weeks
                                else {"step": "any", "min": 0}
                            ),
                        )
                    self.fields[name] = field

    # ---------------------------------------------------------- layout helpers

    def danger_fields(self):
        return [self[f"db_{k}"] for k in DANGEROUS_BEHAVIOURS]

    def medication_rows(self, group: str):
        prefix = MED_PREFIX[group]
        return [[self[f"{prefix}_{i}_{k}"] for k in DOSE_LABELS] for i in range(MEDICATION_ROWS)]

    def medication_rows_medications(self):
        return self.medication_rows("medications")

    def medication_rows_guidance(self):
        return self.medication_rows("medication_guidance")

    def social_fields(self):
        return [self[k] for k in rules.SOCIAL_FUNCTION]

    @staticmethod
    def dose_labels():
        return list(DOSE_LABELS.values())

    # ---------------------------------------------------------- data

    @staticmethod
    def initial_from(fu, *, medications_only: bool = False) -> dict:
        """Initial values from a follow-up: all items (editing), or the last
        visit's medication and guidance only (a new visit)."""
        initial: dict = {}
        for group, prefix in MED_PREFIX.items():
            for i, row in enumerate(getattr(fu, group) or []):
                for key in DOSE_LABELS:
                    if key in row:
                        initial[f"{prefix}_{i}_{key}"] = row[key]
        if medications_only:
            return initial
        from followups.services.followups import FORM_FIELDS

        for name in FORM_FIELDS:
            if name in ("medications", "medication_guidance", "dangerous_behaviours"):
                continue
            initial[name] = getattr(fu, name)
        for key in DANGEROUS_BEHAVIOURS:
            initial[f"db_{key}"] = (fu.dangerous_behaviours or {}).get(key, 0)
        if fu.classification != fu.suggested_classification:
            initial["classification"] = fu.classification
            initial["classification_override_reason"] = fu.classification_override_reason
        if fu.next_due_date != fu.suggested_next_due_date:
            initial["next_due_date"] = fu.next_due_date
        return initial

    def _rows(self, data, group: str) -> list[dict]:
        prefix = MED_PREFIX[group]
        rows = []
        for i in range(MEDICATION_ROWS):
            row = {k: data.get(f"{prefix}_{i}_{k}") for k in DOSE_LABELS}
            if any(v not in (None, "") for v in row.values()):
                rows.append({k: v for k, v in row.items() if v not in (None, "")})
        return rows

    def values(self, data) -> dict:
        """Service data from cleaned (or partially cleaned) values."""
        out = {
            k: data.get(k)
            for k in self.base_fields
            if k not in ("risk_level", "classification", "next_due_date")  # handled below
        }
        out["risk_level"] = data.get("risk_level")
        out["classification"] = data.get("classification") or None
        out["next_due_date"] = data.get("next_due_date")
        out["dangerous_behaviours"] = {
            k: data.get(f"db_{k}") or 0 for k in DANGEROUS_BEHAVIOURS if data.get(f"db_{k}")
        }
        out["medications"] = self._rows(data, "medications")
        out["medication_guidance"] = self._rows(data, "medication_guidance")
        for key in ("contacts", "symptoms", "rehab_measures"):
            out[key] = list(data.get(key) or [])
        return out

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        data = self.values(cleaned)
        errors = rules.validate(data, today=timezone.localdate(), birth_date=self.birth_date)
        for field, message in errors.items():
            self._add(field, message)
        return cleaned

    def _add(self, field: str, message) -> None:
        if field in self.fields:
            self.add_error(field, message)
        elif field == "dangerous_behaviours":
            self.add_error(f"db_{next(iter(DANGEROUS_BEHAVIOURS))}", message)
        elif field in MED_PREFIX:
            self.add_error(f"{MED_PREFIX[field]}_0_drug", message)
        else:
            self.add_error(None, message)

    def add_service_errors(self, errors: dict) -> None:
        for field, message in errors.items():
            self._add(field, message)

    def service_data(self) -> dict:
        return self.values(self.cleaned_data)

    def partial_values(self) -> dict:
        """Best-effort values of a half-filled form (live suggestion)."""
        data: dict = {}
        for name, field in self.fields.items():
            raw = field.widget.value_from_datadict(self.data, self.files, self.add_prefix(name))
            try:
                data[name] = field.clean(raw)
            except forms.ValidationError:
                data[name] = None
        return self.values(data)


class NotReachedForm(forms.Form):
    mode = forms.ChoiceField(
        label=_("随访形式"), choices=Mode.choices, initial=Mode.PHONE, required=False
    )


class OverdueFilterForm(forms.Form):
    """Filters of the overdue list (GET)."""

    village = forms.ChoiceField(label=_("村（居）"), required=False)
    risk = forms.TypedChoiceField(
        label=_("危险性"),
        choices=[("", _("全部")), *[(i, _("%(n)s级及以上") % {"n": i}) for i in range(1, 6)]],
        coerce=int,
        empty_value=None,
        required=False,
    )
    days = forms.TypedChoiceField(
        label=_("逾期天数"),
        choices=[
            ("", _("全部")),
            (7, _("7天以上")),
            (14, _("14天以上")),
            (30, _("30天以上")),
            (90, _("90天以上")),
        ],
        coerce=int,
        empty_value=None,
        required=False,
    )

    def __init__(self, *args, villages=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["village"].choices = [("", _("全部"))] + [(v.code, v.name) for v in villages]


class AlertResolveForm(forms.Form):
    note = forms.CharField(
        label=_("处理情况"),
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("写明做了什么，例如：已上门走访，患者在家，监护人已落实看护。"),
    )


class IncidentForm(forms.Form):
    kind = forms.ChoiceField(
        label=_("类别"), choices=IncidentKind.choices, widget=forms.RadioSelect
    )
    occurred_on = forms.DateField(label=_("发生日期"), widget=_date_input())
    place = forms.CharField(label=_("地点"), max_length=200)
    description = forms.CharField(
        label=_("经过"), widget=forms.Textarea(attrs={"rows": 3}), max_length=4000
    )
    handling = forms.CharField(
        label=_("处置情况"), widget=forms.Textarea(attrs={"rows": 2}), required=False
    )
    guardian_failed_duties = forms.BooleanField(label=_("监护人未履行监护责任"), required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["occurred_on"].widget.attrs["max"] = timezone.localdate().isoformat()
