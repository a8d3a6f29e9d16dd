"""Serializers of the referrals API: input and output apart (STYLE.md §2).
They validate and shape; the services decide."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from accounts.models import Organisation, Region
from patients.models import Diagnosis, Gender, IdType, TreatmentEffect
from patients.rules import mask_id_number
from referrals.models import (
    Clue,
    ClueCloseReason,
    ClueSource,
    ExchangeRun,
    PartnerDepartment,
    ReconciliationItem,
    ReconciliationRun,
    Referral,
    ReferralEvent,
    ReferralKind,
)
from referrals.selectors import is_health

API_COUNT_KEYS = (
    "rows",
    "matched",
    "missing_from_register",
    "status_disagreements",
    "high_risk_missing_from_partner",
)


class RegionCodeField(serializers.SlugRelatedField):
    def __init__(self, **kwargs):
        super().__init__(slug_field="code", queryset=Region.objects.all(), **kwargs)


# --------------------------------------------------------------------------
# referrals
# --------------------------------------------------------------------------


ERR_SHEET_UNKNOWN = _("出院信息单没有这一项。")
ERR_SHEET_DISCHARGE_DATE = _("出院信息单须填写出院日期。")
ERR_SHEET_ADMISSION_AFTER = _("入院日期不能晚于出院日期。")


class DischargeSheetSerializer(serializers.Serializer):
    """The discharge information sheet (出院信息单: case number, admission and
    discharge dates, discharge diagnosis, inpatient effect, discharge
    medication and guidance, rehab measures, attending doctor, notes) with
    the fields, types and lengths of the referral page form
    (referrals.forms.ReferralForm.SHEET_KEYS); other keys are refused."""

    case_number = serializers.CharField(max_length=40, required=False, allow_blank=True)
    admission_date = serializers.DateField(required=False, allow_null=True)
    discharge_date = serializers.DateField(required=False, allow_null=True)
    discharge_diagnosis = serializers.ChoiceField(
        choices=Diagnosis.choices, required=False, allow_blank=True
    )
    inpatient_effect = serializers.ChoiceField(
        choices=TreatmentEffect.choices, required=False, allow_blank=True
    )
    medication_note = serializers.CharField(max_length=2000, required=False, allow_blank=True)
    rehab_advice = serializers.CharField(max_length=2000, required=False, allow_blank=True)
    attending_doctor = serializers.CharField(max_length=50, required=False, allow_blank=True)
    note = serializers.CharField(max_length=2000, required=False, allow_blank=True)

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError(dict.fromkeys(unknown, [ERR_SHEET_UNKNOWN]))
        return super().to_internal_value(data)

    def validate(self, attrs):
        admitted, discharged = attrs.get("admission_date"), attrs.get("discharge_date")
        if admitted and discharged and admitted > discharged:
            raise serializers.ValidationError({"admission_date": ERR_SHEET_ADMISSION_AFTER})
        # kept as the page form keeps it: only what was filled in
        return {k: v for k, v in attrs.items() if v not in (None, "")}


class ReferralCreateSerializer(serializers.Serializer):
    patient = serializers.UUIDField()
    kind = serializers.ChoiceField(choices=ReferralKind.choices)
    to_organisation = serializers.PrimaryKeyRelatedField(
        queryset=Organisation.objects.filter(is_active=True)
    )
    reason = serializers.CharField(max_length=2000)
    to_region = RegionCodeField(required=False, allow_null=True)
    to_address = serializers.CharField(max_length=200, required=False, allow_blank=True)
    discharge_date = serializers.DateField(required=False, allow_null=True)
    discharge_sheet = DischargeSheetSerializer(required=False)
    patient_consent = serializers.BooleanField(required=False, default=False)
    guardian_consent = serializers.BooleanField(required=False, default=False)
    consent_date = serializers.DateField(required=False, allow_null=True)

    def validate(self, attrs):
        sheet = attrs.get("discharge_sheet")
        if (
            attrs.get("kind") == ReferralKind.DOWNWARD
            and sheet
            and not (sheet.get("discharge_date") or attrs.get("discharge_date"))
        ):
            # a sheet without the discharge date (as on the page, it is the
            # one required item); no sheet at all takes the recorded one
            raise serializers.ValidationError(
                {"discharge_sheet": {"discharge_date": [ERR_SHEET_DISCHARGE_DATE]}}
            )
        return attrs


class ReferralEventSerializer(serializers.ModelSerializer):
    by = serializers.CharField(source="by_name")
    organisation = serializers.CharField(source="organisation.name", default="")

    class Meta:
        model = ReferralEvent
        fields = ["action", "by", "organisation", "at", "note"]


class ReferralSerializer(serializers.ModelSerializer):
    patient = serializers.UUIDField(source="patient_id")
    patient_name = serializers.CharField(source="patient.name")
    from_organisation_name = serializers.CharField(source="from_organisation.name")
    to_organisation_name = serializers.CharField(source="to_organisation.name")
    to_region = serializers.CharField(source="to_region_id", allow_null=True)

    class Meta:
        model = Referral
        fields = [
            "id",
            "patient",
            "patient_name",
            "kind",
            "status",
            "from_organisation",
            "from_organisation_name",
            "to_organisation",
            "to_organisation_name",
            "reason",
            "green_channel",
            "to_region",
            "to_address",
            "discharge_date",
            "discharge_sheet",
            "patient_consent",
            "guardian_consent",
            "consent_date",
            "accept_by",
            "complete_by",
            "created_at",
            "status_changed_at",
        ]


class ReferralDetailSerializer(ReferralSerializer):
    events = ReferralEventSerializer(many=True, read_only=True)

    class Meta(ReferralSerializer.Meta):
        fields = [*ReferralSerializer.Meta.fields, "events"]


class ReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=2000)


class NoteSerializer(serializers.Serializer):
    note = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")


class AcceptSerializer(NoteSerializer):
    to_region = RegionCodeField(required=False, allow_null=True)
    to_address = serializers.CharField(max_length=200, required=False, allow_blank=True)


# --------------------------------------------------------------------------
# clues
# --------------------------------------------------------------------------


class ClueCreateSerializer(serializers.Serializer):
    source = serializers.ChoiceField(choices=ClueSource.choices, required=False)
    name = serializers.CharField(max_length=50)
    gender = serializers.ChoiceField(choices=Gender.choices, required=False, allow_blank=True)
    birth_date = serializers.DateField(required=False, allow_null=True)
    id_type = serializers.ChoiceField(choices=IdType.choices, required=False)
    id_number = serializers.CharField(max_length=32, required=False, allow_blank=True)
    region = RegionCodeField()
    address = serializers.CharField(max_length=200, required=False, allow_blank=True)
    phone = serializers.CharField(max_length=32, required=False, allow_blank=True)
    description = serializers.CharField(required=False, allow_blank=True)
    reporter_name = serializers.CharField(max_length=50, required=False, allow_blank=True)


class ClueSerializer(serializers.ModelSerializer):
    """Health staff see the full ID number and the review outcome; other
    departments see their report and its status (no diagnosis)."""

    region = serializers.CharField(source="region_id")
    id_number = serializers.SerializerMethodField()
    assigned_organisation_name = serializers.CharField(
        source="assigned_organisation.name", default=""
    )
    patient = serializers.UUIDField(source="patient_id", allow_null=True)

    class Meta:
        model = Clue
        fields = [
            "id",
            "source",
            "status",
            "name",
            "gender",
            "birth_date",
            "id_type",
            "id_number",
            "region",
            "address",
            "description",
            "organisation",
            "assigned_organisation",
            "assigned_organisation_name",
            "close_reason",
            "close_note",
            "review_diagnosis",
            "review_hospital",
            "patient",
            "created_at",
        ]

    HEALTH_ONLY = ("review_diagnosis", "review_hospital", "patient")

    def get_id_number(self, obj) -> str:
        user = self.context["request"].user
        return obj.id_number if is_health(user) else mask_id_number(obj.id_number)

    def to_representation(self, instance):
        data = super().to_representation(instance)
        if not is_health(self.context["request"].user):
            for key in self.HEALTH_ONLY:
                data.pop(key, None)
        return data


class ClueCloseSerializer(serializers.Serializer):
    reason = serializers.ChoiceField(choices=ClueCloseReason.choices)
    note = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")


class GuardianSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=50)
    relation = serializers.CharField(max_length=20)
    phone = serializers.CharField(max_length=32, required=False, allow_blank=True)
    address = serializers.CharField(max_length=200, required=False, allow_blank=True)


class ClueConfirmSerializer(serializers.Serializer):
    """Diagnosis review confirmed: the patient's registration (API.md)."""

    name = serializers.CharField(max_length=50)
    gender = serializers.ChoiceField(choices=Gender.choices, required=False)
    id_type = serializers.ChoiceField(choices=IdType.choices, required=False)
    id_number = serializers.CharField(max_length=32)
    birth_date = serializers.DateField(required=False)
    region = RegionCodeField()
    address = serializers.CharField(max_length=200)
    diagnosis = serializers.ChoiceField(choices=Diagnosis.choices)
    diagnosis_hospital = serializers.CharField(max_length=100, required=False, allow_blank=True)
    diagnosis_date = serializers.DateField(required=False)
    guardian = GuardianSerializer(required=False)


# --------------------------------------------------------------------------
# exchange and reconciliation
# --------------------------------------------------------------------------


class ExchangeRunSerializer(serializers.ModelSerializer):
    partner = serializers.CharField(source="partner.department")
    partner_name = serializers.CharField(source="partner.name")

    class Meta:
        model = ExchangeRun
        fields = [
            "id",
            "partner",
            "partner_name",
            "kind",
            "period",
            "status",
            "rows",
            "sha256",
            "attempts",
            "delivered_at",
            "created_at",
        ]


class ReconciliationCreateSerializer(serializers.Serializer):
    partner = serializers.ChoiceField(choices=PartnerDepartment.choices)
    file = serializers.FileField(help_text=_("CSV 或 XLSX，至少含“身份证号”和“姓名”两列"))


class ReconciliationCountsSerializer(serializers.Serializer):
    rows = serializers.IntegerField()
    matched = serializers.IntegerField()
    missing_from_register = serializers.IntegerField()
    status_disagreements = serializers.IntegerField()
    high_risk_missing_from_partner = serializers.IntegerField()


class ReconciliationSerializer(serializers.ModelSerializer):
    region = serializers.CharField(source="region_id")
    counts = serializers.SerializerMethodField()
    details = serializers.SerializerMethodField()

    class Meta:
        model = ReconciliationRun
        fields = [
            "id",
            "partner",
            "region",
            "file_name",
            "sha256",
            "status",
            "counts",
            "details",
            "created_at",
        ]

    def get_counts(self, obj) -> ReconciliationCountsSerializer:
        return {k: (obj.counts or {}).get(k, 0) for k in API_COUNT_KEYS}

    def get_details(self, obj) -> dict:
        """Further counts: rows for manual review, unreadable rows, clues and
        tasks raised by this run."""
        return {k: v for k, v in (obj.counts or {}).items() if k not in API_COUNT_KEYS}


class ReconciliationItemSerializer(serializers.ModelSerializer):
    id_number = serializers.SerializerMethodField()
    patient = serializers.UUIDField(source="patient_id", allow_null=True)
    clue = serializers.UUIDField(source="clue_id", allow_null=True)

    class Meta:
        model = ReconciliationItem
        fields = [
            "id",
            "row_number",
            "outcome",
            "name",
            "id_number",
            "patient",
            "disagreements",
            "note",
            "clue",
            "review_status",
        ]

    def get_id_number(self, obj) -> str:
        user = self.context["request"].user
        return obj.id_number if is_health(user) else mask_id_number(obj.id_number)
