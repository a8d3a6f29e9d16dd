"""Serializers of ``/api/v1/followups/`` and ``/api/v1/alerts/``.

Input serializers validate with ``followups.rules`` (the same refusals as
the page) and hand over to the services; output serializers shape rows. An
alert shows the minimum necessary of its patient for the caller's
department (``patients.fieldsets``): never a diagnosis.
"""

from __future__ import annotations

from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.roles import fieldset_of
from followups import rules
from followups.models import (
    AlertKind,
    AlertRecipient,
    AlertStatus,
    Compliance,
    Contact,
    DeathCause,
    FollowUp,
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
from followups.services.followups import FollowUpInvalid, followup_record, followup_update
from patients import rules as patient_rules
from patients.fieldsets import FULL_ID_FIELDSETS, sees
from patients.models import Classification, IncidentKind, Symptom


def _display_name(user) -> str:
    if user is None:
        return ""
    staff = getattr(user, "staff", None)
    return (staff.display_name if staff else "") or user.get_username()


class MedicationRowSerializer(serializers.Serializer):
    """One drug: oral doses (mg morning/noon/evening) or a long-acting injection."""

    drug = serializers.CharField(max_length=60)
    morning_mg = serializers.DecimalField(
        max_digits=8, decimal_places=2, min_value=0, required=False, allow_null=True
    )
    noon_mg = serializers.DecimalField(
        max_digits=8, decimal_places=2, min_value=0, required=False, allow_null=True
    )
    evening_mg = serializers.DecimalField(
        max_digits=8, decimal_places=2, min_value=0, required=False, allow_null=True
    )
    injection_interval_weeks = serializers.IntegerField(
        min_value=1, max_value=52, required=False, allow_null=True
    )
    injection_mg = serializers.DecimalField(
        max_digits=8, decimal_places=2, min_value=0, required=False, allow_null=True
    )


class DangerousBehavioursSerializer(serializers.Serializer):
    """Counts since the last visit (0 = none)."""

    minor_trouble = serializers.IntegerField(min_value=0, max_value=999, default=0)
    trouble = serializers.IntegerField(min_value=0, max_value=999, default=0)
    disaster = serializers.IntegerField(min_value=0, max_value=999, default=0)
    other_harm = serializers.IntegerField(min_value=0, max_value=999, default=0)
    self_harm = serializers.IntegerField(min_value=0, max_value=999, default=0)
    suicide_attempt = serializers.IntegerField(min_value=0, max_value=999, default=0)


def _choice(choices, **kwargs):
    return serializers.ChoiceField(
        choices=choices, required=False, allow_blank=True, default="", **kwargs
    )


class FollowUpFormSerializer(serializers.Serializer):
    """The items of the national follow-up form (DOMAIN.md → Follow-ups)."""

    visit_date = serializers.DateField()
    mode = serializers.ChoiceField(choices=Mode.choices)
    outcome = serializers.ChoiceField(choices=Outcome.choices, default=Outcome.COMPLETED)
    contacts = serializers.ListField(
        child=serializers.ChoiceField(choices=Contact.choices), required=False, default=list
    )
    lost_reason = _choice(LostReason.choices)
    death_date = serializers.DateField(required=False, allow_null=True, default=None)
    death_cause = _choice(DeathCause.choices)
    death_cause_detail = serializers.CharField(
        max_length=100, required=False, allow_blank=True, default=""
    )
    risk_level = serializers.IntegerField(
        min_value=0, max_value=5, required=False, allow_null=True, default=None
    )
    symptoms = serializers.ListField(
        child=serializers.ChoiceField(choices=Symptom.choices), required=False, default=list
    )
    symptoms_other = serializers.CharField(
        max_length=100, required=False, allow_blank=True, default=""
    )
    insight = _choice(Insight.choices)
    sleep = _choice(Level3.choices)
    diet = _choice(Level3.choices)
    self_care = _choice(Level3.choices)
    housework = _choice(Level3.choices)
    work = _choice(WorkLevel.choices)
    learning = _choice(Level3.choices)
    social = _choice(Level3.choices)
    dangerous_behaviours = DangerousBehavioursSerializer(required=False)
    lock_status = _choice(LockStatus.choices)
    hospitalization = _choice(Hospitalization.choices)
    last_discharge_date = serializers.DateField(required=False, allow_null=True, default=None)
    lab_tests = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")
    medication_compliance = _choice(Compliance.choices)
    adverse_reaction = serializers.BooleanField(required=False, default=False)
    adverse_reaction_serious = serializers.BooleanField(required=False, default=False)
    adverse_reaction_detail = serializers.CharField(
        max_length=200, required=False, allow_blank=True, default=""
    )
    treatment_effect = _choice(TreatmentEffect.choices)
    referral_suggested = serializers.BooleanField(required=False, default=False)
    referral_reason = serializers.CharField(
        max_length=200, required=False, allow_blank=True, default=""
    )
    referred_to = serializers.CharField(
        max_length=100, required=False, allow_blank=True, default=""
    )
    medications = MedicationRowSerializer(
        many=True, required=False, max_length=rules.MAX_MEDICATION_ROWS
    )
    medication_guidance = MedicationRowSerializer(
        many=True, required=False, max_length=rules.MAX_MEDICATION_ROWS
    )
    rehab_measures = serializers.ListField(
        child=serializers.ChoiceField(choices=RehabMeasure.choices),
        required=False,
        default=list,
    )
    rehab_measures_other = serializers.CharField(
        max_length=100, required=False, allow_blank=True, default=""
    )
    classification = serializers.ChoiceField(
        choices=Classification.choices,
        required=False,
        allow_blank=True,
        allow_null=True,
        default=None,
        help_text=_("留空则采用系统建议；与建议不同时须填写调整原因。"),
    )
    classification_override_reason = serializers.CharField(
        max_length=200, required=False, allow_blank=True, default=""
    )
    next_due_date = serializers.DateField(
        required=False,
        allow_null=True,
        default=None,
        help_text=_("留空则按规则计算；可早于、不可晚于规则给出的日期。"),
    )

    def validate(self, attrs):
        attrs = dict(attrs)
        attrs["dangerous_behaviours"] = dict(attrs.get("dangerous_behaviours") or {})
        for key in ("medications", "medication_guidance"):
            attrs[key] = [
                {k: v for k, v in dict(row).items() if v is not None}
                for row in attrs.get(key) or []
            ]
        errors = rules.validate(attrs, today=timezone.localdate())
        if errors:
            raise serializers.ValidationError({k: [v] for k, v in errors.items()})
        return attrs


def _invalid(exc: FollowUpInvalid) -> serializers.ValidationError:
    return serializers.ValidationError({k: [str(v)] for k, v in exc.errors.items()})


class FollowUpCreateSerializer(FollowUpFormSerializer):
    patient = serializers.UUIDField()
    idempotency_key = serializers.UUIDField(
        required=False,
        allow_null=True,
        help_text=_(
            "客户端生成的键：同一键重试时返回第一次保存的记录。也可放在 Idempotency-Key 请求头。"
        ),
    )

    def create(self, validated_data):
        data = dict(validated_data)
        patient_id = data.pop("patient")
        key = data.pop("idempotency_key", None) or self.context.get("idempotency_key")
        request = self.context["request"]
        try:
            return followup_record(
                patient_id=patient_id,
                by=request.user,
                data=data,
                idempotency_key=key,
                request=request,
            )
        except FollowUpInvalid as exc:
            raise _invalid(exc) from exc


class FollowUpUpdateSerializer(FollowUpFormSerializer):
    """A correction: only the items sent change (PATCH)."""

    def validate(self, attrs):
        return dict(attrs)  # the service validates the merged record

    def update(self, instance, validated_data):
        request = self.context["request"]
        try:
            return followup_update(
                followup_id=instance.pk,
                by=request.user,
                data=dict(validated_data),
                expected_version=self.context["expected_version"],
                request=request,
            )
        except FollowUpInvalid as exc:
            raise _invalid(exc) from exc


class FollowUpSerializer(serializers.ModelSerializer):
    """One follow-up with the system's decision: ``classification`` and
    ``next_due_date`` (and the suggestions they may differ from)."""

    dangerous_behaviours = DangerousBehavioursSerializer(read_only=True)
    medications = MedicationRowSerializer(many=True, read_only=True)
    medication_guidance = MedicationRowSerializer(many=True, read_only=True)
    recorded_by = serializers.SerializerMethodField()

    class Meta:
        model = FollowUp
        fields = (
            "id",
            "patient",
            "visit_date",
            "mode",
            "outcome",
            "contacts",
            "lost_reason",
            "death_date",
            "death_cause",
            "death_cause_detail",
            "risk_level",
            "symptoms",
            "symptoms_other",
            "insight",
            "sleep",
            "diet",
            "self_care",
            "housework",
            "work",
            "learning",
            "social",
            "dangerous_behaviours",
            "lock_status",
            "hospitalization",
            "last_discharge_date",
            "lab_tests",
            "medication_compliance",
            "adverse_reaction",
            "adverse_reaction_serious",
            "adverse_reaction_detail",
            "treatment_effect",
            "referral_suggested",
            "referral_reason",
            "referred_to",
            "medications",
            "medication_guidance",
            "rehab_measures",
            "rehab_measures_other",
            "suggested_classification",
            "classification",
            "classification_override_reason",
            "suggested_next_due_date",
            "next_due_date",
            "organisation",
            "recorded_by",
            "idempotency_key",
            "version",
            "created_at",
        )
        read_only_fields = fields

    def get_recorded_by(self, obj) -> str:
        return _display_name(obj.recorded_by)


# ---------------------------------------------------------------- alerts


class AlertGuardianSerializer(serializers.Serializer):
    name = serializers.CharField()
    relation = serializers.CharField()
    phone = serializers.CharField()


class AlertPatientSerializer(serializers.Serializer):
    """The minimum necessary about the patient of an alert: who and where,
    the guardian, the latest risk level and status; health staff also see
    the classification and the next due date. Never a diagnosis."""

    id = serializers.UUIDField()
    name = serializers.CharField()
    gender = serializers.CharField()
    age = serializers.IntegerField()
    region = serializers.CharField()
    region_name = serializers.CharField()
    address = serializers.CharField(required=False)
    status = serializers.CharField()
    risk_level = serializers.IntegerField(allow_null=True, required=False)
    classification = serializers.CharField(required=False)
    next_followup_due = serializers.DateField(allow_null=True, required=False)
    guardian = AlertGuardianSerializer(allow_null=True, required=False)


def alert_patient(patient, fieldset: str | None, *, full: bool) -> dict:
    """The alert's patient as ``AlertPatientSerializer`` describes it."""
    out = {
        "id": patient.pk,
        "name": patient.name,
        "gender": patient.gender,
        "age": patient.age,
        "region": patient.region_id,
        "region_name": patient.region.name,
        "status": patient.status,
    }
    if sees(fieldset, "address"):
        out["address"] = patient.address
    if sees(fieldset, "risk_level"):
        out["risk_level"] = patient.risk_level
    if sees(fieldset, "classification"):
        out["classification"] = patient.classification
    if sees(fieldset, "next_followup_due"):
        out["next_followup_due"] = patient.next_followup_due
    if sees(fieldset, "guardian"):
        guardian = getattr(patient, "guardian", None) if _has_guardian(patient) else None
        out["guardian"] = (
            {
                "name": guardian.name,
                "relation": guardian.relation,
                "phone": guardian.phone
                if full or fieldset in FULL_ID_FIELDSETS
                else patient_rules.mask_phone(guardian.phone),
            }
            if guardian
            else None
        )
    return out


def _has_guardian(patient) -> bool:
    try:
        return patient.guardian is not None
    except patient.__class__.guardian.RelatedObjectDoesNotExist:
        return False


class AlertIncidentSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    kind = serializers.ChoiceField(choices=IncidentKind.choices)
    occurred_on = serializers.DateField()


class AlertSerializer(serializers.Serializer):
    """One alert as the caller's organisation handles it: ``status`` is this
    organisation's (open / acknowledged / resolved), ``alert_status`` the
    summary over every organisation told."""

    id = serializers.UUIDField(source="alert.id")
    kind = serializers.ChoiceField(source="alert.kind", choices=AlertKind.choices)
    status = serializers.ChoiceField(choices=AlertStatus.choices)
    alert_status = serializers.ChoiceField(source="alert.status", choices=AlertStatus.choices)
    risk_level = serializers.IntegerField(source="alert.risk_level", allow_null=True)
    raised_at = serializers.DateTimeField(source="alert.raised_at")
    due_by = serializers.DateTimeField(source="alert.due_by", allow_null=True)
    escalated = serializers.BooleanField()
    organisation = serializers.IntegerField(source="organisation_id")
    acknowledged_at = serializers.DateTimeField(allow_null=True)
    acknowledged_by = serializers.SerializerMethodField()
    resolved_at = serializers.DateTimeField(allow_null=True)
    resolved_by = serializers.SerializerMethodField()
    note = serializers.CharField()
    patient = serializers.SerializerMethodField()
    incident = serializers.SerializerMethodField()
    followup = serializers.SerializerMethodField()
    referral = serializers.UUIDField(source="alert.referral_id", allow_null=True)

    def get_acknowledged_by(self, row: AlertRecipient) -> str:
        return _display_name(row.acknowledged_by)

    def get_resolved_by(self, row: AlertRecipient) -> str:
        return _display_name(row.resolved_by)

    def _fieldset(self):
        return fieldset_of(self.context["request"].user)

    @extend_schema_field(AlertPatientSerializer)
    def get_patient(self, row: AlertRecipient) -> dict:
        return alert_patient(
            row.alert.patient, self._fieldset(), full=self.context.get("full", False)
        )

    @extend_schema_field(AlertIncidentSerializer(allow_null=True))
    def get_incident(self, row: AlertRecipient) -> dict | None:
        inc = row.alert.incident
        if inc is None:
            return None
        return {"id": inc.pk, "kind": inc.kind, "occurred_on": inc.occurred_on}

    def get_followup(self, row: AlertRecipient) -> str | None:
        # the follow-up record is clinical: health staff only
        if row.alert.followup_id is None or self._fieldset() != "health":
            return None
        return str(row.alert.followup_id)


class AlertResolveSerializer(serializers.Serializer):
    note = serializers.CharField(max_length=2000)
