"""Forms of the patient pages: list filters, register/edit, reveal, care team.

Field labels, choices and lengths come from the model; what a department may
filter by or write comes from ``patients.fieldsets`` (FILTERABLE, WRITABLE).
"""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.db.models import QuerySet
from django.forms.models import fields_for_model
from django.utils.translation import gettext_lazy as _

from patients.fieldsets import FILTERABLE, WRITABLE
from patients.models import (
    DANGEROUS_BEHAVIOURS,
    REGISTERED_STATUSES,
    CareRole,
    CareTeamMember,
    Diagnosis,
    IdType,
    Patient,
    Status,
    Symptom,
)
from patients.selectors import overdue_q
from patients.services import ERR_BIRTH_REQUIRED, ERR_GENDER_REQUIRED

ERR_GUARDIAN_RELATION = _("请填写监护人与患者的关系。")
ERR_GUARDIAN_NAME = _("填写了监护人信息时，请填写监护人姓名。")
ERR_ASSISTANT_NAME = _("请填写协助监护人姓名。")
ERR_REASON_REQUIRED = _("请填写查看完整证件号码的理由。")

HELP_DERIVED = _("居民身份证可不填，由证件号码自动识别。")

RISK_HIGH = "high"
STATUS_REGISTERED = "registered"


def _date_widget():
    return forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


# --------------------------------------------------------------------------
# List filters
# --------------------------------------------------------------------------


class PatientFilterForm(forms.Form):
    """Search and filters of the patient list; only the filters the user's
    field set allows are present (``fieldsets.FILTERABLE``)."""

    q = forms.CharField(label=_("姓名或证件号码"), required=False, max_length=50)
    township = forms.ChoiceField(label=_("乡镇（街道）"), required=False)
    village = forms.ChoiceField(label=_("村（居）"), required=False)
    status = forms.ChoiceField(label=_("管理状态"), required=False)
    diagnosis = forms.ChoiceField(label=_("诊断"), required=False)
    risk = forms.ChoiceField(label=_("危险性评估"), required=False)
    overdue = forms.BooleanField(label=_("仅看逾期未随访"), required=False)

    def __init__(
        self,
        data=None,
        *,
        fieldset: str | None,
        townships,
        villages,
        villages_follow_township=False,
    ):
        """``townships`` and ``villages`` are the regions inside the user's
        scope; ``villages_follow_township``: the villages offered are those
        of the chosen township (the field stays, empty until one is chosen)."""
        super().__init__(data)
        self.label_suffix = ""
        allowed = set(FILTERABLE.get(fieldset or "", ()))
        self._paths = {r.code: r.path for r in (*townships, *villages)}
        if "region" in allowed and len(townships) > 1:
            self.fields["township"].choices = [
                ("", _("全部乡镇")),
                *((t.code, t.name) for t in townships),
            ]
        else:  # one township (a township doctor): the village filter is enough
            del self.fields["township"]
        if "region" in allowed and (villages or villages_follow_township):
            self.fields["village"].choices = [("", _("全部村（居）")), *_grouped_villages(villages)]
            if not villages:
                self.fields["village"].help_text = _("请先选择乡镇（街道）。")
        else:
            del self.fields["village"]
        if "status" in allowed:
            self.fields["status"].choices = [
                ("", _("全部状态")),
                (STATUS_REGISTERED, _("在册（在管、失访、不同意参加管理）")),
                *Status.choices,
            ]
        else:
            del self.fields["status"]
        if "diagnosis" in allowed:
            self.fields["diagnosis"].choices = [("", _("全部诊断")), *Diagnosis.choices]
        else:
            del self.fields["diagnosis"]
        if "risk_level" in allowed:
            high = settings.HIGH_RISK_MIN_LEVEL
            self.fields["risk"].choices = [
                ("", _("全部")),
                (RISK_HIGH, _("%(level)s级及以上") % {"level": high}),
                *((str(n), _("%(level)s级") % {"level": n}) for n in range(6)),
            ]
        else:
            del self.fields["risk"]
        if "overdue" not in allowed:
            del self.fields["overdue"]

    def active_filters(self) -> bool:
        if not self.is_valid():
            return False
        return any(v for k, v in self.cleaned_data.items() if k != "q")

    def term(self) -> str:
        return self.cleaned_data.get("q", "") if self.is_valid() else ""

    def apply(self, qs: QuerySet[Patient]) -> QuerySet[Patient]:
        """Filter an already scoped queryset; an invalid form filters nothing more."""
        if not self.is_valid():
            return qs
        data = self.cleaned_data
        if data.get("township"):
            qs = qs.filter(region__path__startswith=self._paths[data["township"]])
        if data.get("village"):
            qs = qs.filter(region_id=data["village"])
        status = data.get("status")
        if status == STATUS_REGISTERED:
            qs = qs.filter(status__in=REGISTERED_STATUSES)
        elif status:
            qs = qs.filter(status=status)
        if data.get("diagnosis"):
            qs = qs.filter(diagnosis=data["diagnosis"])
        risk = data.get("risk")
        if risk == RISK_HIGH:
            qs = qs.filter(risk_level__gte=settings.HIGH_RISK_MIN_LEVEL)
        elif risk:
            qs = qs.filter(risk_level=int(risk))
        if data.get("overdue"):
            qs = qs.filter(overdue_q())
        return qs


def _grouped_villages(villages) -> list:
    """Village choices grouped by township (``<optgroup>``)."""
    groups: dict[str, list] = {}
    names: dict[str, str] = {}
    for v in villages:
        key = v.parent_id or ""
        groups.setdefault(key, []).append((v.code, v.name))
        names[key] = v.parent.name if v.parent_id else ""
    return [(names[k], rows) for k, rows in groups.items()]


def village_choices(villages) -> list:
    return _grouped_villages(villages)


# --------------------------------------------------------------------------
# Register / edit
# --------------------------------------------------------------------------

IDENTITY_FIELDS = (
    "name",
    "id_type",
    "id_number",
    "gender",
    "birth_date",
    "ethnicity",
    "phone",
    "region",
    "address",
    "household_address",
    "registered_on",
)
CLINICAL_FIELDS = ("diagnosis", "diagnosis_hospital", "diagnosis_date")
FLAG_FIELDS = (
    "police_registered",
    "poverty",
    "insurance",
    "union_member",
    "certificate",
    "certificate_grade",
    "certificate_number",
)
SUPPLEMENT_FIELDS = (
    "village_contact_name",
    "village_contact_phone",
    "household_type",
    "employment",
    "consent",
    "consent_signer",
    "consent_date",
    "first_onset_date",
    "first_onset_precision",
    "past_symptoms",
    "past_symptoms_other",
    "past_lock_status",
    "past_outpatient",
    "first_antipsychotic_date",
    "first_antipsychotic_precision",
    "past_admissions",
    "recent_treatment_effect",
    "dangerous_history",
    "economic_status",
    "specialist_opinion",
    "supplement_filled_on",
)
GUARDIAN_FIELDS = (
    "guardian_name",
    "guardian_relation",
    "guardian_phone",
    "guardian_address",
    "guardian_responsibility_letter",
    "guardian_responsibility_letter_date",
)
# model fields copied as they are (the others get custom form fields below)
_MODEL_FIELDS = [
    f
    for f in (*IDENTITY_FIELDS, *CLINICAL_FIELDS, *FLAG_FIELDS, *SUPPLEMENT_FIELDS)
    if f not in {"region", "past_symptoms", "dangerous_history", "consent", "certificate_grade"}
]
DANGER_PREFIX = "danger_"
CONSENT_CHOICES = [("", _("未填")), ("true", _("同意参加管理")), ("false", _("不同意参加管理"))]


def _model_fields() -> dict[str, forms.Field]:
    fields = fields_for_model(
        Patient,
        fields=_MODEL_FIELDS,
        widgets={
            name: _date_widget()
            for name in (
                "birth_date",
                "diagnosis_date",
                "consent_date",
                "first_onset_date",
                "first_antipsychotic_date",
                "supplement_filled_on",
                "registered_on",
            )
        },
    )
    for name, field in fields.items():
        # EncryptedCharField.formfield() does not pass the verbose name on
        field.label = Patient._meta.get_field(name).verbose_name
    return fields


class PatientForm(forms.Form):
    """Register and edit form.

    ``mode`` is ``"create"`` or ``"edit"``. Health staff get the whole form
    (the region is fixed after registration: a move is a transfer referral);
    other departments get only the fields they may write
    (``fieldsets.WRITABLE``), e.g. police only ``police_registered``.
    """

    version = forms.IntegerField(widget=forms.HiddenInput, required=False)

    def __init__(self, data=None, *, mode: str, fieldset: str, villages=(), initial=None):
        super().__init__(data, initial=initial)
        self.label_suffix = ""
        self.mode = mode
        self.fieldset = fieldset
        self.villages = {v.code: v for v in villages}
        writable = set(WRITABLE.get(fieldset, ()))
        built = _model_fields()
        built["gender"].required = False
        built["gender"].help_text = HELP_DERIVED
        built["birth_date"].required = False
        built["birth_date"].help_text = HELP_DERIVED
        built["past_admissions"].required = False
        built["consent"] = forms.TypedChoiceField(
            label=Patient._meta.get_field("consent").verbose_name,
            choices=CONSENT_CHOICES,
            coerce=lambda v: v == "true",
            empty_value=None,
            required=False,
        )
        built["certificate_grade"] = forms.TypedChoiceField(
            label=Patient._meta.get_field("certificate_grade").verbose_name,
            choices=[("", "—"), *((str(n), _("%(n)s级") % {"n": n}) for n in range(1, 5))],
            coerce=int,
            empty_value=None,
            required=False,
        )
        built["past_symptoms"] = forms.MultipleChoiceField(
            label=Patient._meta.get_field("past_symptoms").verbose_name,
            choices=Symptom.choices,
            widget=forms.CheckboxSelectMultiple,
            required=False,
        )
        for key, label in DANGEROUS_BEHAVIOURS.items():
            built[DANGER_PREFIX + key] = forms.IntegerField(
                label=label, min_value=0, max_value=999, required=False
            )
        if mode == "create":
            built["region"] = forms.ChoiceField(
                label=Patient._meta.get_field("region").verbose_name,
                choices=[("", _("请选择村（居）委会")), *village_choices(villages)],
            )
        candidates = [
            *IDENTITY_FIELDS,
            *CLINICAL_FIELDS,
            *FLAG_FIELDS,
            *GUARDIAN_FIELDS,
            *(f for f in SUPPLEMENT_FIELDS if f != "dangerous_history"),
            *(DANGER_PREFIX + k for k in DANGEROUS_BEHAVIOURS),
        ]
        wanted = [f for f in candidates if _written_as(f) in writable]
        if mode != "create" and "region" in wanted:
            wanted.remove("region")
        pool = {**built, **_guardian_fields()}
        for name in wanted:
            self.fields[name] = pool[name]
            _label_blank_choice(name, pool[name])
        if mode == "create":
            del self.fields["version"]
        else:
            # optimistic locking: the version read must come back; kept last,
            # after the visible fields
            version = self.fields.pop("version")
            version.required = True
            self.fields["version"] = version

    # -- groups for the template ------------------------------------------
    def group(self, names) -> list:
        return [self[n] for n in names if n in self.fields]

    @property
    def identity_fields(self):
        return self.group(IDENTITY_FIELDS)

    @property
    def clinical_fields(self):
        return self.group(CLINICAL_FIELDS)

    @property
    def flag_fields(self):
        return self.group(FLAG_FIELDS)

    @property
    def guardian_fields(self):
        return self.group(GUARDIAN_FIELDS)

    @property
    def supplement_fields(self):
        return self.group(f for f in SUPPLEMENT_FIELDS if f != "dangerous_history")

    @property
    def danger_fields(self):
        return self.group(DANGER_PREFIX + k for k in DANGEROUS_BEHAVIOURS)

    # -- validation ---------------------------------------------------------
    def clean_region(self):
        code = self.cleaned_data["region"]
        return self.villages[code]  # ChoiceField already limited it to these codes

    def clean(self):
        data = super().clean()
        if "id_type" in self.fields:
            id_type = data.get("id_type")
            if id_type and id_type != IdType.RESIDENT_ID:
                if not data.get("birth_date") and "birth_date" not in self.errors:
                    self.add_error("birth_date", ERR_BIRTH_REQUIRED)
                if not data.get("gender") and "gender" not in self.errors:
                    self.add_error("gender", ERR_GENDER_REQUIRED)
        if "guardian_name" in self.fields:
            others = [
                data.get(f)
                for f in ("guardian_relation", "guardian_phone", "guardian_address")
                if data.get(f)
            ]
            if data.get("guardian_name"):
                if not data.get("guardian_relation"):
                    self.add_error("guardian_relation", ERR_GUARDIAN_RELATION)
            elif others or data.get("guardian_responsibility_letter"):
                self.add_error("guardian_name", ERR_GUARDIAN_NAME)
        return data

    # -- to the service -----------------------------------------------------
    def patient_data(self) -> dict:
        """The cleaned values as the services take them (model field names)."""
        data = {}
        for name, value in self.cleaned_data.items():
            if name == "version" or name.startswith(("guardian_", DANGER_PREFIX)):
                continue
            data[name] = value
        if "past_admissions" in data and data["past_admissions"] is None:
            data["past_admissions"] = 0
        if any(n.startswith(DANGER_PREFIX) for n in self.fields):
            data["dangerous_history"] = {
                key: self.cleaned_data[DANGER_PREFIX + key]
                for key in DANGEROUS_BEHAVIOURS
                if self.cleaned_data.get(DANGER_PREFIX + key)
            }
        return data

    def guardian_data(self) -> dict | None:
        if "guardian_name" not in self.fields or not self.cleaned_data.get("guardian_name"):
            return None
        data = {
            "name": self.cleaned_data["guardian_name"],
            "relation": self.cleaned_data["guardian_relation"],
            "phone": self.cleaned_data["guardian_phone"],
            "address": self.cleaned_data["guardian_address"],
            "responsibility_letter": self.cleaned_data["guardian_responsibility_letter"],
        }
        # patients.services._save_guardian turns None into "" (invalid for a
        # date), so an empty date is left out rather than sent as None.
        letter_date = self.cleaned_data["guardian_responsibility_letter_date"]
        if letter_date is not None:
            data["responsibility_letter_date"] = letter_date
        return data


def _written_as(form_field: str) -> str:
    """The WRITABLE key a form field writes (guardian_* → guardian, …)."""
    if form_field.startswith("guardian_"):
        return "guardian"
    if form_field.startswith(DANGER_PREFIX):
        return "dangerous_history"
    return form_field


BLANK_LABELS = {"gender": _("由居民身份证号识别"), "diagnosis": _("请选择")}


def _label_blank_choice(name: str, field: forms.Field) -> None:
    """Replace Django's "---------" with words a user understands."""
    choices = getattr(field, "choices", None)
    if not choices or not isinstance(field, forms.ChoiceField):
        return
    first_value, _first_label = choices[0]
    if first_value == "":
        field.choices = [("", BLANK_LABELS.get(name, _("未填"))), *choices[1:]]


def _guardian_fields() -> dict[str, forms.Field]:
    from patients.models import Guardian

    def label(name):
        return Guardian._meta.get_field(name).verbose_name

    return {
        "guardian_name": forms.CharField(label=label("name"), max_length=50, required=False),
        "guardian_relation": forms.CharField(
            label=label("relation"), max_length=20, required=False
        ),
        "guardian_phone": forms.CharField(label=label("phone"), max_length=32, required=False),
        "guardian_address": forms.CharField(label=label("address"), max_length=200, required=False),
        "guardian_responsibility_letter": forms.BooleanField(
            label=label("responsibility_letter"), required=False
        ),
        "guardian_responsibility_letter_date": forms.DateField(
            label=label("responsibility_letter_date"), required=False, widget=_date_widget()
        ),
    }


def patient_initial(patient: Patient, guardian) -> dict:
    """Initial values of the edit form from a stored patient and guardian."""
    initial = {f: getattr(patient, f) for f in _MODEL_FIELDS}
    initial.update(
        version=patient.version,
        consent="" if patient.consent is None else ("true" if patient.consent else "false"),
        certificate_grade=patient.certificate_grade or "",
        past_symptoms=list(patient.past_symptoms or []),
    )
    for key in DANGEROUS_BEHAVIOURS:
        initial[DANGER_PREFIX + key] = (patient.dangerous_history or {}).get(key)
    if guardian is not None:
        initial.update(
            guardian_name=guardian.name,
            guardian_relation=guardian.relation,
            guardian_phone=guardian.phone,
            guardian_address=guardian.address,
            guardian_responsibility_letter=guardian.responsibility_letter,
            guardian_responsibility_letter_date=guardian.responsibility_letter_date,
        )
    return initial


class AssistantGuardianForm(forms.Form):
    name = forms.CharField(label=_("姓名"), max_length=50, required=False)
    relation = forms.CharField(label=_("身份/关系"), max_length=30, required=False)
    phone = forms.CharField(label=_("电话"), max_length=32, required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.label_suffix = ""

    def clean(self):
        data = super().clean()
        if not data.get("name") and (data.get("relation") or data.get("phone")):
            self.add_error("name", ERR_ASSISTANT_NAME)
        return data


MAX_ASSISTANTS = 3


def assistant_formset(data=None, *, initial: list[dict] | None = None):
    """Up to three assistant guardians (more are kept when already stored)."""
    initial = list(initial or [])
    size = max(MAX_ASSISTANTS, len(initial))
    formset_class = forms.formset_factory(
        AssistantGuardianForm,
        extra=size - len(initial),
        max_num=size,
        absolute_max=size,
        validate_max=True,
    )
    return formset_class(data, initial=initial, prefix="ag")


def assistant_rows(formset) -> list[dict]:
    return [
        {
            "name": f.cleaned_data["name"],
            "relation": f.cleaned_data["relation"],
            "phone": f.cleaned_data["phone"],
        }
        for f in formset.forms
        if f.cleaned_data.get("name")
    ]


# --------------------------------------------------------------------------
# Actions on the detail page
# --------------------------------------------------------------------------


class RevealIdForm(forms.Form):
    reason = forms.CharField(
        label=_("查看理由"),
        max_length=200,
        widget=forms.Textarea(attrs={"rows": 2}),
        error_messages={"required": ERR_REASON_REQUIRED},
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.label_suffix = ""

    def clean_reason(self):
        reason = self.cleaned_data["reason"].strip()
        if not reason:
            raise forms.ValidationError(ERR_REASON_REQUIRED)
        return reason


class CareTeamMemberForm(forms.Form):
    role = forms.ChoiceField(label=_("职责"), choices=CareRole.choices)
    name = forms.CharField(label=_("姓名"), max_length=50)
    phone = forms.CharField(label=_("电话"), max_length=32, required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.label_suffix = ""
        self.fields["name"].label = CareTeamMember._meta.get_field("name").verbose_name
