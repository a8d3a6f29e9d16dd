"""Serializers of the settlement and reward API: input ones only type the
request (the services hold the rules), output ones shape the answer."""

from __future__ import annotations

from decimal import Decimal

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from patients.models import Diagnosis, TreatmentEffect
from subsidies import rules
from subsidies.models import (
    Award,
    AwardEvent,
    Payer,
    RewardBatch,
    RewardBatchLine,
    Settlement,
)

MONEY = {"max_digits": 12, "decimal_places": 2, "min_value": Decimal("0")}


class SettlementQuoteInputSerializer(serializers.Serializer):
    patient = serializers.UUIDField()
    admission_date = serializers.DateField()
    discharge_date = serializers.DateField()
    total_cost = serializers.DecimalField(**MONEY)
    in_scope_cost = serializers.DecimalField(**MONEY)


class SettlementCreateInputSerializer(SettlementQuoteInputSerializer):
    """The quote's fields; the episode is found by patient and admission date
    at the caller's hospital (or recorded), and discharged if still in."""

    case_number = serializers.CharField(max_length=32, required=False, allow_blank=True)
    discharge_diagnosis = serializers.ChoiceField(
        choices=Diagnosis.choices, required=False, allow_blank=True
    )
    discharge_diagnosis_detail = serializers.CharField(
        max_length=200, required=False, allow_blank=True
    )
    inpatient_effect = serializers.ChoiceField(
        choices=TreatmentEffect.choices, required=False, allow_blank=True
    )
    rehab_advice = serializers.CharField(required=False, allow_blank=True)
    medication_note = serializers.CharField(required=False, allow_blank=True)
    attending_doctor = serializers.CharField(max_length=50, required=False, allow_blank=True)

    SHEET = (
        "discharge_diagnosis",
        "discharge_diagnosis_detail",
        "inpatient_effect",
        "rehab_advice",
        "medication_note",
        "attending_doctor",
    )


class LayerLineSerializer(serializers.Serializer):
    """One payer layer's share: the detail behind a payer's line."""

    order = serializers.IntegerField()
    ratio = serializers.DecimalField(max_digits=5, decimal_places=2)
    base = serializers.DecimalField(max_digits=12, decimal_places=2)
    eligible = serializers.DecimalField(max_digits=12, decimal_places=2)
    amount = serializers.DecimalField(max_digits=12, decimal_places=2)
    limited_by = serializers.CharField()


class PayerLineSerializer(serializers.Serializer):
    """One line per payer (API.md): what it pays, with the layers it paid through."""

    payer = serializers.ChoiceField(choices=Payer.choices)
    payer_label = serializers.CharField()
    order = serializers.IntegerField()
    amount = serializers.DecimalField(max_digits=12, decimal_places=2)
    layers = LayerLineSerializer(many=True)


def payer_lines(lines) -> list[dict]:
    """Per-layer lines (quoted or saved) as one line per payer."""
    return [
        {
            "payer": total.payer,
            "payer_label": str(Payer(total.payer).label),
            "order": total.order,
            "amount": total.amount,
            "layers": [
                {
                    "order": ln.order,
                    "ratio": ln.ratio,
                    "base": ln.base,
                    "eligible": ln.eligible,
                    "amount": ln.amount,
                    "limited_by": ln.limited_by,
                }
                for ln in total.layers
            ],
        }
        for total in rules.lines_by_payer(lines)
    ]


class QuoteSerializer(serializers.Serializer):
    lines = PayerLineSerializer(many=True)
    patient_pays = serializers.DecimalField(max_digits=12, decimal_places=2)
    total_cost = serializers.DecimalField(max_digits=12, decimal_places=2)
    in_scope_cost = serializers.DecimalField(max_digits=12, decimal_places=2)
    out_of_scope_cost = serializers.DecimalField(max_digits=12, decimal_places=2)
    policy = serializers.IntegerField()
    policy_version = serializers.IntegerField()

    @staticmethod
    def from_quote(quote, policy) -> dict:
        return {
            "lines": payer_lines(quote.lines),
            "patient_pays": quote.patient_pays,
            "total_cost": quote.total,
            "in_scope_cost": quote.in_scope,
            "out_of_scope_cost": quote.out_of_scope,
            "policy": policy.pk,
            "policy_version": policy.version,
        }


SETTLEMENT_FIELDS = [
    "id",
    "number",
    "kind",
    "reverses",
    "episode",
    "case_number",
    "patient",
    "hospital",
    "region",
    "admission_date",
    "discharge_date",
    "total_cost",
    "in_scope_cost",
    "out_of_scope_cost",
    "patient_pays",
    "lines",
    "policy",
    "policy_version",
    "settled_on",
    "created_at",
]


class SettlementSerializer(serializers.ModelSerializer):
    """A settlement for the departments that see patients (hospital, civil
    affairs, federation): ``patient`` is the register's id."""

    number = serializers.CharField(read_only=True)
    case_number = serializers.CharField(source="episode.case_number", read_only=True)
    region = serializers.CharField(source="region_id", read_only=True)
    lines = serializers.SerializerMethodField()

    class Meta:
        model = Settlement
        fields = SETTLEMENT_FIELDS
        read_only_fields = fields

    @extend_schema_field(PayerLineSerializer(many=True))
    def get_lines(self, obj) -> list[dict]:
        lines = PayerLineSerializer(payer_lines(obj.lines.all()), many=True)
        return lines.data


class SettlementFinanceSerializer(SettlementSerializer):
    """Finance has no patient field set (patients/fieldsets.py): not even the
    register's id — the key is absent, as on its pages."""

    class Meta(SettlementSerializer.Meta):
        fields = [f for f in SETTLEMENT_FIELDS if f != "patient"]
        read_only_fields = fields


class AwardEventSerializer(serializers.ModelSerializer):
    by = serializers.CharField(source="by.username", read_only=True, default=None)
    organisation = serializers.CharField(source="organisation.name", read_only=True, default=None)

    class Meta:
        model = AwardEvent
        fields = ["step", "at", "by", "organisation", "note"]


class AwardSerializer(serializers.ModelSerializer):
    number = serializers.CharField(read_only=True)
    region = serializers.CharField(source="region_id", read_only=True)

    class Meta:
        model = Award
        fields = [
            "id",
            "number",
            "patient",
            "region",
            "status",
            "guardian_name",
            "guardian_relation",
            "source",
            "policy",
            "applied_on",
            "notice_until",
            "active_from",
            "valid_until",
            "stop_from",
            "reapply_from",
            "end_reason",
            "ended_on",
        ]
        read_only_fields = fields


class AwardDetailSerializer(AwardSerializer):
    events = AwardEventSerializer(many=True, read_only=True)

    class Meta(AwardSerializer.Meta):
        fields = [*AwardSerializer.Meta.fields, "events"]
        read_only_fields = fields


class RewardBatchLineSerializer(serializers.ModelSerializer):
    village = serializers.CharField(source="village_id", read_only=True)

    class Meta:
        model = RewardBatchLine
        fields = [
            "award",
            "guardian_name",
            "guardian_relation",
            "village",
            "months",
            "arrears",
            "month_count",
            "amount",
        ]
        read_only_fields = fields


class RewardBatchSerializer(serializers.ModelSerializer):
    number = serializers.CharField(read_only=True)
    region = serializers.CharField(source="region_id", read_only=True)

    class Meta:
        model = RewardBatch
        fields = [
            "id",
            "number",
            "region",
            "period",
            "period_start",
            "period_end",
            "status",
            "line_count",
            "total",
            "drawn_at",
            "reviewed_at",
            "paid_at",
            "payment_reference",
        ]
        read_only_fields = fields


class RewardBatchDetailSerializer(RewardBatchSerializer):
    lines = RewardBatchLineSerializer(many=True, read_only=True)

    class Meta(RewardBatchSerializer.Meta):
        fields = [*RewardBatchSerializer.Meta.fields, "lines"]
        read_only_fields = fields
