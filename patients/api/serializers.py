"""Patient API serializers (API.md → patients; STYLE.md §2).

Output is one ``PatientSerializer`` trimmed to the caller's department field
set (``patients.fieldsets.FIELDSETS``): keys outside the set are absent, not
null. The audience subclasses (``PatientPoliceSerializer`` …) fix the field
set for the OpenAPI schema. Input serializers only validate and shape; their
``create()``/``update()`` call ``patient_register``/``patient_update``, which
hold the rules (identity checks, scope, optimistic locking).
"""

from __future__ import annotations

from collections.abc import Mapping

from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.models import Region
from patients import rules
from patients.fieldsets import FIELDSETS, FULL_ID_FIELDSETS, WRITABLE, fields_for
from patients.models import (
    DANGEROUS_BEHAVIOURS,
    AssistantGuardian,
    CareTeamMember,
    Guardian,
    IdType,
    Patient,
    Symptom,
)
from patients.services import ERR_NOT_ALLOWED, patient_register, patient_update

ERR_UNKNOWN_BEHAVIOUR = _("未知的危险行为类别。")
# the register form's texts (patients.forms): one message, one translation
ERR_BIRTH_REQUIRED = _("非居民身份证须填写出生日期。")
ERR_GENDER_REQUIRED = _("非居民身份证须填写性别。")
# Optional on registration for a resident ID, required for other documents.
DERIVED_FROM_RESIDENT_ID = {"gender": ERR_GENDER_REQUIRED, "birth_date": ERR_BIRTH_REQUIRED}

# Every key any department may see, in the health set's order (the widest).
ALL_OUTPUT_FIELDS = tuple(dict.fromkeys(f for fs in FIELDSETS.values() for f in fs))


# --- output -----------------------------------------------------------------


def _patient_serializer(field):
    node = field.parent
    while node is not None and not hasattr(node, "fieldset"):
        node = node.parent
    return node


def _shows_full_id(field) -> bool:
    owner = _patient_serializer(field)
    return owner is not None and owner.fieldset in FULL_ID_FIELDSETS


@extend_schema_field(OpenApiTypes.STR)
class IdNumberField(serializers.Field):
    """Full for the health field set, masked (first 6, last 4) for all others."""

    def __init__(self, **kwargs):
        kwargs["read_only"] = True
        super().__init__(**kwargs)

    def to_representation(self, value):
        return value if _shows_full_id(self) else rules.mask_id_number(value)


@extend_schema_field(OpenApiTypes.STR)
class PhoneField(serializers.Field):
    """Full for health; for other departments masked in lists (SECURITY.md
    G14) and full in a detail read, which is audited as ``patient.view``."""

    def __init__(self, **kwargs):
        kwargs["read_only"] = True
        super().__init__(**kwargs)

    def to_representation(self, value):
        if _shows_full_id(self) or not self.context.get("list"):
            return value
        return rules.mask_phone(value)


class GuardianSerializer(serializers.ModelSerializer):
    phone = PhoneField()

    class Meta:
        model = Guardian
        fields = (
            "name",
            "relation",
            "phone",
            "address",
            "responsibility_letter",
            "responsibility_letter_date",
        )
        read_only_fields = fields


class AssistantGuardianSerializer(serializers.ModelSerializer):
    phone = PhoneField()

    class Meta:
        model = AssistantGuardian
        fields = ("name", "relation", "phone")
        read_only_fields = fields


class CareTeamMemberSerializer(serializers.ModelSerializer):
    phone = PhoneField()
    user = serializers.IntegerField(source="user_id", read_only=True, allow_null=True)

    class Meta:
        model = CareTeamMember
        fields = ("id", "role", "name", "phone", "user")
        read_only_fields = fields


class PatientSerializer(serializers.ModelSerializer):
    """A patient as one department sees it: ``PatientSerializer(p, fieldset="police")``."""

    fieldset: str | None = "health"

    id_number = IdNumberField()
    phone = PhoneField()
    region = serializers.CharField(source="region_id", read_only=True)
    household_region = serializers.CharField(
        source="household_region_id", read_only=True, allow_null=True
    )
    managing_organisation = serializers.IntegerField(
        source="managing_organisation_id", read_only=True, allow_null=True
    )
    overdue = serializers.BooleanField(read_only=True)
    guardian = GuardianSerializer(read_only=True, allow_null=True)
    assistant_guardians = AssistantGuardianSerializer(many=True, read_only=True)
    care_team = CareTeamMemberSerializer(many=True, read_only=True)
    past_symptoms = serializers.ListField(
        child=serializers.ChoiceField(choices=Symptom.choices), read_only=True
    )
    dangerous_history = serializers.DictField(child=serializers.IntegerField(), read_only=True)

    class Meta:
        model = Patient
        fields = ALL_OUTPUT_FIELDS
        # not ``read_only_fields``: DRF would then drop ``allow_blank`` and the
        # schema's enums would lack "" ("not recorded"); get_fields() marks
        # every field read-only instead.

    def __init__(self, *args, fieldset: str | None = None, **kwargs):
        if fieldset is not None:
            self.fieldset = fieldset
        super().__init__(*args, **kwargs)

    def get_fields(self):
        allowed = set(fields_for(self.fieldset))
        fields = {k: f for k, f in super().get_fields().items() if k in allowed}
        for field in fields.values():  # output only: every key is always present
            field.read_only = True
            field.required = False
        return fields


class PatientHealthSerializer(PatientSerializer):
    fieldset = "health"


class PatientPoliceSerializer(PatientSerializer):
    fieldset = "police"


class PatientGovernanceSerializer(PatientSerializer):
    fieldset = "governance"


class PatientCivilAffairsSerializer(PatientSerializer):
    fieldset = "civil_affairs"


class PatientDisabledFederationSerializer(PatientSerializer):
    fieldset = "disabled_federation"


OUTPUT_SERIALIZERS: dict[str, type[PatientSerializer]] = {
    "health": PatientHealthSerializer,
    "police": PatientPoliceSerializer,
    "governance": PatientGovernanceSerializer,
    "civil_affairs": PatientCivilAffairsSerializer,
    "disabled_federation": PatientDisabledFederationSerializer,
}
assert set(OUTPUT_SERIALIZERS) == set(FIELDSETS), "one output serializer per field set"


# --- input ------------------------------------------------------------------


class StrictInputMixin:
    """Refuse keys that are not writable here instead of silently dropping
    them: a department must not believe it changed what it may not change."""

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({k: [ERR_NOT_ALLOWED] for k in unknown})
        return super().to_internal_value(data)


class GuardianInputSerializer(StrictInputMixin, serializers.Serializer):
    name = serializers.CharField(max_length=50)
    relation = serializers.CharField(max_length=20)
    phone = serializers.CharField(max_length=32, required=False, allow_blank=True)
    address = serializers.CharField(max_length=200, required=False, allow_blank=True)
    responsibility_letter = serializers.BooleanField(required=False)
    responsibility_letter_date = serializers.DateField(required=False, allow_null=True)


class AssistantGuardianInputSerializer(StrictInputMixin, serializers.Serializer):
    name = serializers.CharField(max_length=50)
    relation = serializers.CharField(max_length=30, required=False, allow_blank=True)
    phone = serializers.CharField(max_length=32, required=False, allow_blank=True)


class PatientWriteSerializer(StrictInputMixin, serializers.ModelSerializer):
    """The fields a department may write (``fieldsets.WRITABLE``)."""

    fieldset: str | None = "health"

    region = serializers.SlugRelatedField(slug_field="code", queryset=Region.objects.all())
    household_region = serializers.SlugRelatedField(
        slug_field="code", queryset=Region.objects.all(), required=False, allow_null=True
    )
    id_number = serializers.CharField(max_length=32)
    phone = serializers.CharField(max_length=32, required=False, allow_blank=True)
    guardian = GuardianInputSerializer(required=False)
    assistant_guardians = AssistantGuardianInputSerializer(many=True, required=False)
    past_symptoms = serializers.ListField(
        child=serializers.ChoiceField(choices=Symptom.choices), required=False
    )
    dangerous_history = serializers.DictField(
        child=serializers.IntegerField(min_value=0, max_value=999), required=False
    )

    class Meta:
        model = Patient
        fields = WRITABLE["health"]

    def __init__(self, *args, fieldset: str | None = None, **kwargs):
        if fieldset is not None:
            self.fieldset = fieldset
        super().__init__(*args, **kwargs)

    def get_fields(self):
        allowed = set(WRITABLE.get(self.fieldset or "", ()))
        return {k: f for k, f in super().get_fields().items() if k in allowed}

    def validate_dangerous_history(self, value):
        unknown = set(value) - set(DANGEROUS_BEHAVIOURS)
        if unknown:
            raise serializers.ValidationError(ERR_UNKNOWN_BEHAVIOUR)
        return value


class PatientCreateSerializer(PatientWriteSerializer):
    """Register a patient: needs name, id_number, region (a village or
    community code), address and diagnosis, plus gender and birth_date for
    documents other than a resident ID; the rest may follow.

    A resident ID carries the birth date and gender: like the register form,
    the API derives them when they are left out, and when they are given the
    service refuses a disagreement with a 400 naming ``gender`` or
    ``birth_date`` (patients.services.check_identity)."""

    fieldset = "health"

    def get_fields(self):
        fields = super().get_fields()
        for name in DERIVED_FROM_RESIDENT_ID:
            if name in fields:
                fields[name].required = False
        return fields

    def to_internal_value(self, data):
        # Named together with the other missing fields, as when required.
        try:
            attrs = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            if isinstance(exc.detail, dict) and isinstance(data, Mapping):
                for name, errors in self._missing_for_document(data).items():
                    exc.detail.setdefault(name, errors)
            raise
        missing = self._missing_for_document(attrs)
        if missing:
            raise serializers.ValidationError(missing)
        return attrs

    @staticmethod
    def _missing_for_document(values: Mapping) -> dict[str, list]:
        if (values.get("id_type") or IdType.RESIDENT_ID) == IdType.RESIDENT_ID:
            return {}
        return {
            name: [message]
            for name, message in DERIVED_FROM_RESIDENT_ID.items()
            if not values.get(name)
        }

    def create(self, validated_data):
        request = self.context["request"]
        return patient_register(by=request.user, data=validated_data, request=request)


class PatientUpdateSerializer(PatientWriteSerializer):
    """Change the fields the caller's department may write; the version the
    client read comes in ``context["expected_version"]`` (from ``If-Match``)."""

    def create(self, validated_data):
        # Registration has its own rules (PatientCreateSerializer); never
        # fall back to ModelSerializer.create, which would skip the service.
        raise TypeError("PatientUpdateSerializer only updates an existing patient.")

    def update(self, instance, validated_data):
        request = self.context["request"]
        return patient_update(
            by=request.user,
            pk=instance.pk,
            data=validated_data,
            expected_version=self.context["expected_version"],
            request=request,
        )
