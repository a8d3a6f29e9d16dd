"""Forms of the reward and settlement pages. Rules live in the services;
forms only type the input (DomainErrors are attached to the named field)."""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from patients.models import Diagnosis, TreatmentEffect
from subsidies.models import ApplicationSource, AwardStatus, EndReason, Payer

ERR_MONTH = _("月份格式应为2026-03。")
MEDICATION_ROWS = 3


class DateInput(forms.DateInput):
    input_type = "date"

    def __init__(self, attrs=None):
        super().__init__(attrs=attrs, format="%Y-%m-%d")


def money_field(label):
    return forms.DecimalField(
        label=label,
        max_digits=12,
        decimal_places=2,
        min_value=Decimal("0"),
        widget=forms.NumberInput(attrs={"step": "0.01", "min": "0", "inputmode": "decimal"}),
    )


class ErrorMixin:
    def add_domain_error(self, exc) -> None:
        field = exc.field if exc.field in self.fields else None
        self.add_error(field, exc.message)


# --- guardian reward ---------------------------------------------------------


class CandidateFilterForm(forms.Form):
    q = forms.CharField(label=_("姓名或身份证号"), required=False, max_length=50)
    only_eligible = forms.BooleanField(label=_("只看可能符合条件的患者"), required=False)


class AwardFilterForm(forms.Form):
    status = forms.ChoiceField(
        label=_("状态"), required=False, choices=[("", _("全部"))] + AwardStatus.choices
    )
    q = forms.CharField(label=_("患者姓名"), required=False, max_length=50)


class ApplyForm(ErrorMixin, forms.Form):
    source = forms.ChoiceField(label=_("申请来源"), choices=ApplicationSource.choices)
    applicant_name = forms.CharField(
        label=_("推荐人/经办人"),
        required=False,
        max_length=50,
        help_text=_("村（居）委会推荐的，填写推荐人姓名"),
    )
    note = forms.CharField(
        label=_("申请说明"), required=False, widget=forms.Textarea(attrs={"rows": 3})
    )

    def __init__(self, *args, sources=(), **kwargs):
        super().__init__(*args, **kwargs)
        allowed = [c for c in ApplicationSource.choices if c[0] in sources]
        self.fields["source"].choices = allowed
        if allowed:
            self.fields["source"].initial = allowed[0][0]


class DecisionForm(ErrorMixin, forms.Form):
    """Approve or refuse (buttons named ``decision``); a note is needed to refuse."""

    decision = forms.ChoiceField(choices=[("approve", _("通过")), ("reject", _("不通过"))])
    note = forms.CharField(
        label=_("意见"), required=False, widget=forms.Textarea(attrs={"rows": 3})
    )


class NoteForm(ErrorMixin, forms.Form):
    note = forms.CharField(label=_("理由"), widget=forms.Textarea(attrs={"rows": 3}))


class SuspendForm(ErrorMixin, forms.Form):
    incident = forms.ChoiceField(label=_("肇事肇祸记录"))
    note = forms.CharField(
        label=_("说明"), required=False, widget=forms.Textarea(attrs={"rows": 3})
    )

    def __init__(self, *args, incidents=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["incident"].choices = [
            (str(i.pk), f"{i.occurred_on:%Y-%m-%d} {i.get_kind_display()}") for i in incidents
        ]


class EndForm(ErrorMixin, forms.Form):
    reason = forms.ChoiceField(
        label=_("终止原因"),
        choices=[c for c in EndReason.choices if c[0] != EndReason.REVIEW_FAILED],
    )
    ended_on = forms.DateField(label=_("终止日期"), widget=DateInput())
    note = forms.CharField(
        label=_("说明"), required=False, widget=forms.Textarea(attrs={"rows": 3})
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["ended_on"].initial = timezone.localdate()


class BatchDrawForm(ErrorMixin, forms.Form):
    region = forms.ChoiceField(label=_("县（区）"))
    period = forms.CharField(
        label=_("发放期间"), max_length=8, help_text=_("如2026Q1（季度）、2026H1、2026-03、2026")
    )

    def __init__(self, *args, counties=(), period="", **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["region"].choices = [(r.pk, r.name) for r in counties]
        self.fields["period"].initial = period


class PayForm(ErrorMixin, forms.Form):
    reference = forms.CharField(label=_("支付凭证号"), max_length=64)


# --- hospital --------------------------------------------------------------------


class PatientSearchForm(forms.Form):
    q = forms.CharField(label=_("姓名或身份证号"), required=False, max_length=50)


class AdmitForm(ErrorMixin, forms.Form):
    case_number = forms.CharField(label=_("住院号"), max_length=32)
    admission_date = forms.DateField(label=_("入院日期"), widget=DateInput())
    admission_note = forms.CharField(
        label=_("入院情况"), required=False, widget=forms.Textarea(attrs={"rows": 3})
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["admission_date"].initial = timezone.localdate()


class CostForm(ErrorMixin, forms.Form):
    total_cost = money_field(_("医疗总费用（元）"))
    in_scope_cost = money_field(_("其中政策范围内费用（元）"))


class DischargeForm(CostForm):
    discharge_date = forms.DateField(label=_("出院日期"), widget=DateInput())
    discharge_diagnosis = forms.ChoiceField(
        label=_("出院诊断"), choices=[("", "---------")] + Diagnosis.choices
    )
    discharge_diagnosis_detail = forms.CharField(
        label=_("诊断说明（含ICD-10编码）"), required=False, max_length=200
    )
    inpatient_effect = forms.ChoiceField(
        label=_("住院疗效"), choices=[("", "---------")] + TreatmentEffect.choices
    )
    rehab_advice = forms.CharField(
        label=_("康复措施建议"), required=False, widget=forms.Textarea(attrs={"rows": 3})
    )
    medication_note = forms.CharField(
        label=_("用药指导"), required=False, widget=forms.Textarea(attrs={"rows": 3})
    )
    attending_doctor = forms.CharField(label=_("主治医生"), max_length=50)
    discharge_note = forms.CharField(
        label=_("注意事项"), required=False, widget=forms.Textarea(attrs={"rows": 3})
    )

    field_order = [
        "discharge_date",
        "discharge_diagnosis",
        "discharge_diagnosis_detail",
        "inpatient_effect",
        "rehab_advice",
        "medication_note",
        "attending_doctor",
        "discharge_note",
        "total_cost",
        "in_scope_cost",
    ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["discharge_date"].initial = timezone.localdate()
        for i in range(MEDICATION_ROWS):
            self.fields[f"med_{i}_drug"] = forms.CharField(
                label=_("药物名称"), required=False, max_length=50
            )
            for key, label in (
                ("morning_mg", _("早（mg）")),
                ("noon_mg", _("中（mg）")),
                ("evening_mg", _("晚（mg）")),
            ):
                self.fields[f"med_{i}_{key}"] = forms.DecimalField(
                    label=label,
                    required=False,
                    min_value=Decimal("0"),
                    max_digits=8,
                    decimal_places=2,
                    widget=forms.NumberInput(attrs={"step": "0.01", "min": "0"}),
                )

    def medication_rows(self):
        """Bound fields grouped per row, for the template."""
        return [
            [self[f"med_{i}_{k}"] for k in ("drug", "morning_mg", "noon_mg", "evening_mg")]
            for i in range(MEDICATION_ROWS)
        ]

    def sheet(self) -> dict:
        data = self.cleaned_data
        rows = []
        for i in range(MEDICATION_ROWS):
            drug = (data.get(f"med_{i}_drug") or "").strip()
            if drug:
                rows.append(
                    {
                        "drug": drug,
                        **{
                            k: data.get(f"med_{i}_{k}")
                            for k in ("morning_mg", "noon_mg", "evening_mg")
                            if data.get(f"med_{i}_{k}") is not None
                        },
                    }
                )
        return {
            "discharge_diagnosis": data["discharge_diagnosis"],
            "discharge_diagnosis_detail": data.get("discharge_diagnosis_detail", ""),
            "inpatient_effect": data["inpatient_effect"],
            "rehab_advice": data.get("rehab_advice", ""),
            "medication_advice": rows,
            "medication_note": data.get("medication_note", ""),
            "attending_doctor": data["attending_doctor"],
            "discharge_note": data.get("discharge_note", ""),
        }


class ReverseForm(ErrorMixin, forms.Form):
    reason = forms.CharField(label=_("冲销原因"), widget=forms.Textarea(attrs={"rows": 3}))


class StatementForm(forms.Form):
    payer = forms.ChoiceField(label=_("支付方"))
    month = forms.CharField(label=_("月份"), max_length=7, help_text=_("如2026-03"))

    def __init__(self, *args, payers=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["payer"].choices = [(p, Payer(p).label) for p in payers]

    def clean_month(self):
        from datetime import date

        value = self.cleaned_data["month"].strip()
        try:
            year, month = value.split("-")
            return date(int(year), int(month), 1)
        except ValueError:
            raise forms.ValidationError(ERR_MONTH) from None


class SettlementFilterForm(forms.Form):
    month = forms.CharField(label=_("结算月份"), required=False, max_length=7)

    def clean_month(self):
        from datetime import date

        value = (self.cleaned_data.get("month") or "").strip()
        if not value:
            return None
        try:
            year, month = value.split("-")
            return date(int(year), int(month), 1)
        except ValueError:
            raise forms.ValidationError(ERR_MONTH) from None
