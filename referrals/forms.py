"""Forms of the referrals pages. Choices come from the views (scoped to the
user); the services decide, the forms only shape input."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from accounts.models import Region
from patients.models import Diagnosis, Gender, IdType, TreatmentEffect
from referrals.models import (
    ClueCloseReason,
    ClueSource,
    DeliveryMethod,
    EnrolmentEndReason,
    ExchangeSchedule,
    PackageFormat,
    PartnerDepartment,
    RehabService,
    TaskStatus,
)

# ISO format: an <input type="date"> only takes YYYY-MM-DD (zh-hans would render 2026/11/22)
DATE = forms.DateInput(format="%Y-%m-%d", attrs={"type": "date"})


class RegionCodeField(forms.CharField):
    """A division code typed or chosen; resolved to a Region."""

    def __init__(self, *args, levels=("village",), **kwargs):
        self.levels = levels
        kwargs.setdefault("max_length", 12)
        super().__init__(*args, **kwargs)

    def clean(self, value):
        value = super().clean(value)
        if not value:
            return None
        region = Region.objects.filter(code=value.strip()).first()
        if region is None or region.level not in self.levels:
            raise forms.ValidationError(_("区划代码不存在或级别不对。"))
        return region


class OrganisationChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        return f"{obj.name}（{obj.region.name}）"


class ReferralForm(forms.Form):
    to_organisation = OrganisationChoiceField(queryset=None, label=_("接收机构"))
    reason = forms.CharField(label=_("转诊原因"), widget=forms.Textarea(attrs={"rows": 3}))

    def __init__(self, *args, kind: str, organisations, **kwargs):
        super().__init__(*args, **kwargs)
        self.kind = kind
        self.fields["to_organisation"].queryset = organisations
        if kind == "downward":
            self.fields["discharge_date"] = forms.DateField(label=_("出院日期"), widget=DATE)
            self.fields["admission_date"] = forms.DateField(
                label=_("入院日期"), widget=DATE, required=False
            )
            self.fields["case_number"] = forms.CharField(
                label=_("住院号"), max_length=40, required=False
            )
            self.fields["discharge_diagnosis"] = forms.ChoiceField(
                label=_("出院诊断"), choices=[("", "—"), *Diagnosis.choices], required=False
            )
            self.fields["inpatient_effect"] = forms.ChoiceField(
                label=_("住院疗效"), choices=[("", "—"), *TreatmentEffect.choices], required=False
            )
            self.fields["medication_note"] = forms.CharField(
                label=_("出院用药及指导"),
                widget=forms.Textarea(attrs={"rows": 2}),
                required=False,
            )
            self.fields["rehab_advice"] = forms.CharField(
                label=_("康复措施建议"), widget=forms.Textarea(attrs={"rows": 2}), required=False
            )
            self.fields["attending_doctor"] = forms.CharField(
                label=_("主治医生"), max_length=50, required=False
            )
            self.fields["note"] = forms.CharField(
                label=_("注意事项"), widget=forms.Textarea(attrs={"rows": 2}), required=False
            )
        if kind == "rehab":
            self.fields["patient_consent"] = forms.BooleanField(
                label=_("患者本人同意"), required=False
            )
            self.fields["guardian_consent"] = forms.BooleanField(
                label=_("监护人同意"), required=False
            )
            self.fields["consent_date"] = forms.DateField(
                label=_("同意日期"), widget=DATE, required=False
            )
        if kind == "transfer":
            self.fields["to_region"] = RegionCodeField(
                label=_("迁入村（居）代码"),
                required=False,
                help_text=_("12位代码；不清楚时可由接收卫生院在接收时填写。"),
            )
            self.fields["to_address"] = forms.CharField(
                label=_("迁入地址"), max_length=200, required=False
            )

    SHEET_KEYS = (
        "case_number",
        "admission_date",
        "discharge_date",
        "discharge_diagnosis",
        "inpatient_effect",
        "medication_note",
        "rehab_advice",
        "attending_doctor",
        "note",
    )

    def service_kwargs(self) -> dict:
        data = self.cleaned_data
        out = {"to_organisation": data["to_organisation"], "reason": data["reason"]}
        if self.kind == "downward":
            out["discharge_sheet"] = {k: data.get(k) for k in self.SHEET_KEYS if data.get(k)}
            out["discharge_date"] = data["discharge_date"]
        if self.kind == "rehab":
            out.update(
                patient_consent=data["patient_consent"],
                guardian_consent=data["guardian_consent"],
                consent_date=data.get("consent_date"),
            )
        if self.kind == "transfer":
            out.update(to_region=data.get("to_region"), to_address=data.get("to_address", ""))
        return out


class NoteForm(forms.Form):
    note = forms.CharField(
        label=_("说明"), required=False, widget=forms.Textarea(attrs={"rows": 2}), max_length=500
    )


class AcceptForm(NoteForm):
    to_region = RegionCodeField(label=_("迁入村（居）代码"), required=False)
    to_address = forms.CharField(label=_("迁入地址"), max_length=200, required=False)


class ReasonForm(forms.Form):
    reason = forms.CharField(
        label=_("原因"), widget=forms.Textarea(attrs={"rows": 2}), max_length=500
    )


class PatientSearchForm(forms.Form):
    q = forms.CharField(label=_("姓名或身份证号"), max_length=40, required=False)


# --------------------------------------------------------------------------
# rehab
# --------------------------------------------------------------------------


class RegionChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        return f"{obj.name}（{obj.code}）"


class RehabInstitutionForm(forms.Form):
    name = forms.CharField(label=_("机构名称"), max_length=100)
    region = RegionChoiceField(queryset=None, label=_("服务区域"))
    places = forms.IntegerField(label=_("康复名额"), min_value=1)
    services = forms.MultipleChoiceField(
        label=_("服务项目"), choices=RehabService.choices, widget=forms.CheckboxSelectMultiple
    )
    address = forms.CharField(label=_("地址"), max_length=200, required=False)
    contact_name = forms.CharField(label=_("联系人"), max_length=50, required=False)
    contact_phone = forms.CharField(label=_("联系电话"), max_length=32, required=False)
    is_active = forms.BooleanField(label=_("启用"), required=False, initial=True)

    def __init__(self, *args, regions=None, editing=False, **kwargs):
        super().__init__(*args, **kwargs)
        if editing:
            del self.fields["name"]
            del self.fields["region"]
        else:
            self.fields["region"].queryset = regions
            del self.fields["is_active"]


class EnrolForm(forms.Form):
    patient_consent = forms.BooleanField(label=_("患者本人同意"), required=False)
    guardian_consent = forms.BooleanField(label=_("监护人同意"), required=False)
    consent_date = forms.DateField(label=_("同意日期"), widget=DATE, required=False)
    started_on = forms.DateField(label=_("入组日期"), widget=DATE, required=False)


class EnrolmentEndForm(forms.Form):
    reason = forms.ChoiceField(label=_("结束原因"), choices=EnrolmentEndReason.choices)
    note = forms.CharField(label=_("说明"), max_length=200, required=False)


class GreenChannelForm(forms.Form):
    to_organisation = OrganisationChoiceField(queryset=None, label=_("转至医院"))
    reason = forms.CharField(label=_("复发情况"), widget=forms.Textarea(attrs={"rows": 3}))

    def __init__(self, *args, hospitals, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["to_organisation"].queryset = hospitals


class RehabSessionForm(forms.Form):
    kind = forms.ChoiceField(label=_("服务项目"), choices=RehabService.choices)
    held_on = forms.DateField(label=_("日期"), widget=DATE)
    topic = forms.CharField(label=_("内容"), max_length=200)
    facilitator = forms.CharField(label=_("带领人"), max_length=50, required=False)
    attended = forms.MultipleChoiceField(
        label=_("出勤"), required=False, widget=forms.CheckboxSelectMultiple
    )

    def __init__(self, *args, enrolments=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["attended"].choices = [(str(e.pk), e.patient.name) for e in enrolments]


# --------------------------------------------------------------------------
# clues
# --------------------------------------------------------------------------


class ClueForm(forms.Form):
    source = forms.ChoiceField(label=_("来源"))
    name = forms.CharField(label=_("姓名"), max_length=50)
    gender = forms.ChoiceField(
        label=_("性别"), choices=[("", "—"), *Gender.choices], required=False
    )
    birth_date = forms.DateField(label=_("出生日期"), widget=DATE, required=False)
    id_type = forms.ChoiceField(label=_("证件类型"), choices=IdType.choices, initial="resident_id")
    id_number = forms.CharField(label=_("证件号码"), max_length=32, required=False)
    region = RegionChoiceField(queryset=None, label=_("所在乡镇或村（居）"))
    address = forms.CharField(label=_("住址"), max_length=200, required=False)
    phone = forms.CharField(label=_("联系电话"), max_length=32, required=False)
    description = forms.CharField(
        label=_("异常表现"), widget=forms.Textarea(attrs={"rows": 3}), required=False
    )
    reporter_name = forms.CharField(label=_("报告人"), max_length=50, required=False)

    def __init__(self, *args, sources, regions, **kwargs):
        super().__init__(*args, **kwargs)
        labels = dict(ClueSource.choices)
        self.fields["source"].choices = [(s, labels[s]) for s in sources]
        self.fields["region"].queryset = regions


class ClueConfirmForm(forms.Form):
    name = forms.CharField(label=_("姓名"), max_length=50)
    gender = forms.ChoiceField(
        label=_("性别"), choices=[("", "—"), *Gender.choices], required=False
    )
    id_type = forms.ChoiceField(label=_("证件类型"), choices=IdType.choices)
    id_number = forms.CharField(label=_("证件号码"), max_length=32)
    birth_date = forms.DateField(label=_("出生日期"), widget=DATE, required=False)
    region = RegionChoiceField(queryset=None, label=_("现住址村（居）"))
    address = forms.CharField(label=_("现住址"), max_length=200)
    diagnosis = forms.ChoiceField(label=_("复核诊断"), choices=Diagnosis.choices)
    diagnosis_hospital = forms.CharField(label=_("复核（确诊）医院"), max_length=100)
    diagnosis_date = forms.DateField(label=_("确诊日期"), widget=DATE)
    guardian_name = forms.CharField(label=_("监护人姓名"), max_length=50, required=False)
    guardian_relation = forms.CharField(label=_("与患者关系"), max_length=20, required=False)
    guardian_phone = forms.CharField(label=_("监护人电话"), max_length=32, required=False)

    def __init__(self, *args, regions, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["region"].queryset = regions

    def patient_data(self) -> dict:
        d = self.cleaned_data
        data = {
            k: d[k]
            for k in (
                "name",
                "id_type",
                "id_number",
                "region",
                "address",
                "diagnosis",
                "diagnosis_hospital",
                "diagnosis_date",
            )
        }
        if d.get("gender"):
            data["gender"] = d["gender"]
        if d.get("birth_date"):
            data["birth_date"] = d["birth_date"]
        if d.get("guardian_name"):
            data["guardian"] = {
                "name": d["guardian_name"],
                "relation": d.get("guardian_relation", ""),
                "phone": d.get("guardian_phone", ""),
            }
        return data


class ClueCloseForm(forms.Form):
    reason = forms.ChoiceField(label=_("关闭原因"), choices=ClueCloseReason.choices)
    note = forms.CharField(label=_("说明"), max_length=200, required=False)


# --------------------------------------------------------------------------
# import, exchange, reconciliation
# --------------------------------------------------------------------------


class UploadForm(forms.Form):
    file = forms.FileField(label=_("文件（.xlsx 或 .csv）"))


class ReconciliationForm(UploadForm):
    partner = forms.ChoiceField(label=_("名单来源部门"))

    def __init__(self, *args, partners, **kwargs):
        super().__init__(*args, **kwargs)
        labels = dict(PartnerDepartment.choices)
        self.fields["partner"].choices = [(p, labels[p]) for p in partners]
        self.order_fields(["partner", "file"])


class PartnerForm(forms.Form):
    department = forms.ChoiceField(label=_("交换部门"), choices=PartnerDepartment.choices)
    name = forms.CharField(label=_("名称"), max_length=100)
    organisation = OrganisationChoiceField(queryset=None, label=_("接收单位"), required=False)
    schedule = forms.ChoiceField(label=_("交换周期"), choices=ExchangeSchedule.choices)
    immediate_high_risk = forms.BooleanField(
        label=_("危险性3级及以上即时推送（公安、综治）"), required=False
    )
    format = forms.ChoiceField(label=_("文件格式"), choices=PackageFormat.choices)
    delivery = forms.ChoiceField(label=_("投递方式"), choices=DeliveryMethod.choices)
    folder_path = forms.CharField(label=_("投递目录"), max_length=255, required=False)
    endpoint_url = forms.URLField(
        label=_("接收地址（HTTPS）"), max_length=255, required=False, assume_scheme="https"
    )
    ca_certificate = forms.CharField(
        label=_("对方CA证书（PEM，可选）"),
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
    )
    is_active = forms.BooleanField(label=_("启用"), required=False, initial=True)

    def __init__(self, *args, organisations, editing=False, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["organisation"].queryset = organisations
        if editing:
            self.fields["department"].disabled = True


class TaskResolveForm(forms.Form):
    status = forms.ChoiceField(
        label=_("处理结果"),
        choices=[
            (TaskStatus.RESOLVED, TaskStatus.RESOLVED.label),
            (TaskStatus.DISMISSED, TaskStatus.DISMISSED.label),
        ],
    )
    note = forms.CharField(label=_("说明"), max_length=200, required=False)
