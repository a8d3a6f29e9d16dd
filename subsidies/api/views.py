"""``/api/v1/settlements/`` (quote and save, API.md), ``/api/v1/reward-awards/``
and ``/api/v1/reward-batches/`` (read by the departments involved).

Rows come from ``subsidies.selectors`` (scope; out of scope is 404 and
audited); a role outside the feature gets 403; the services hold the rules
and raise DomainErrors that answer 400 naming the field.
"""

from __future__ import annotations

import django_filters
from django.db.models import Prefetch
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import BasePermission
from rest_framework.response import Response

from subsidies import selectors as sel
from subsidies import services
from subsidies.api.serializers import (
    AwardDetailSerializer,
    AwardSerializer,
    QuoteSerializer,
    RewardBatchDetailSerializer,
    RewardBatchSerializer,
    SettlementCreateInputSerializer,
    SettlementFinanceSerializer,
    SettlementQuoteInputSerializer,
    SettlementSerializer,
)
from subsidies.models import AwardEvent, AwardStatus, BatchStatus, SettlementKind

ERR_ROLE = _("您的角色无权执行此操作。")


class CapabilityPermission(BasePermission):
    """Signed in, and the role holds the capability the view names per action."""

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        if view.action is None:
            # a method the route does not map: no handler runs, DRF answers
            # 405 (a 403 here would hide that the method does not exist)
            return True
        cap = view.capabilities.get(view.action) or view.capabilities.get("*")
        if cap is None or not sel.can(user, cap):
            raise PermissionDenied(ERR_ROLE)
        return True


class SettlementFilter(django_filters.FilterSet):
    settled_from = django_filters.DateFilter(field_name="settled_on", lookup_expr="gte")
    settled_to = django_filters.DateFilter(field_name="settled_on", lookup_expr="lte")
    kind = django_filters.ChoiceFilter(choices=SettlementKind.choices)


@extend_schema_view(
    list=extend_schema(
        summary="Settlements the caller may read (hospital: its own; payers: their county)"
    ),
    retrieve=extend_schema(summary="One settlement with its lines"),
)
class SettlementViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = SettlementSerializer
    permission_classes = [CapabilityPermission]
    filterset_class = SettlementFilter
    capabilities = {
        "list": sel.SETTLEMENT_VIEW,
        "retrieve": sel.SETTLEMENT_VIEW,
        "create": sel.EPISODE_MANAGE,
        "quote": sel.EPISODE_MANAGE,
    }

    def get_queryset(self):
        return (
            sel.settlement_list_visible_to(user=self.request.user)
            .prefetch_related("lines")
            .order_by("-settled_on", "-id")
        )

    def get_serializer_class(self):
        # the department's field set: finance reads no patient identity at all
        if sel.sees_identities(self.request.user):
            return SettlementSerializer
        return SettlementFinanceSerializer

    def get_object(self):
        obj = sel.settlement_get_for_user(
            user=self.request.user, pk=self.kwargs["pk"], request=self.request
        )
        services.record_view(
            user=self.request.user,
            patient_id=obj.patient_id,
            action="settlement.view",
            request=self.request,
            settlement=obj.pk,
        )
        return obj

    @extend_schema(
        summary="Quote a settlement at discharge (nothing is saved)",
        request=SettlementQuoteInputSerializer,
        responses={200: QuoteSerializer},
    )
    @action(detail=False, methods=["post"])
    def quote(self, request):
        data = SettlementQuoteInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        quote, policy = services.settlement_quote(
            patient_id=v["patient"],
            by=request.user,
            admission_date=v["admission_date"],
            discharge_date=v["discharge_date"],
            total_cost=v["total_cost"],
            in_scope_cost=v["in_scope_cost"],
            request=request,
        )
        return Response(QuoteSerializer(QuoteSerializer.from_quote(quote, policy)).data)

    @extend_schema(
        summary="Save a settlement (discharging the episode if the patient is still in)",
        request=SettlementCreateInputSerializer,
        responses={201: SettlementSerializer},
    )
    def create(self, request):
        data = SettlementCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        settlement = services.settlement_record(
            patient_id=v["patient"],
            by=request.user,
            admission_date=v["admission_date"],
            discharge_date=v["discharge_date"],
            total_cost=v["total_cost"],
            in_scope_cost=v["in_scope_cost"],
            case_number=v.get("case_number", ""),
            sheet={k: v[k] for k in SettlementCreateInputSerializer.SHEET if k in v},
            request=request,
        )
        settlement = self.get_queryset().get(pk=settlement.pk)
        return Response(SettlementSerializer(settlement).data, status=status.HTTP_201_CREATED)


class AwardFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=AwardStatus.choices)


@extend_schema_view(
    list=extend_schema(summary="Guardian rewards of the patients the caller may read"),
    retrieve=extend_schema(
        summary="One guardian reward with its steps (who and when)",
        responses={200: AwardDetailSerializer, 404: OpenApiResponse(description="not found")},
    ),
)
class RewardAwardViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = AwardSerializer
    permission_classes = [CapabilityPermission]
    filterset_class = AwardFilter
    capabilities = {"*": sel.REWARD_VIEW}

    def get_queryset(self):
        return sel.award_list_visible_to(user=self.request.user).order_by("-applied_on", "-id")

    def get_serializer_class(self):
        return AwardDetailSerializer if self.action == "retrieve" else AwardSerializer

    def get_object(self):
        obj = sel.award_get_for_user(
            user=self.request.user, pk=self.kwargs["pk"], request=self.request
        )
        obj = (
            type(obj)
            .objects.prefetch_related(
                Prefetch(
                    "events",
                    queryset=AwardEvent.objects.select_related("by", "organisation").order_by(
                        "at", "id"
                    ),
                )
            )
            .get(pk=obj.pk)
        )
        services.record_view(
            user=self.request.user,
            patient_id=obj.patient_id,
            action="reward.view",
            request=self.request,
            award=obj.pk,
        )
        return obj


class BatchFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=BatchStatus.choices)
    period = django_filters.CharFilter()


@extend_schema_view(
    list=extend_schema(summary="Reward payment batches of the caller's county"),
    retrieve=extend_schema(
        summary="One payment batch with its lines", responses={200: RewardBatchDetailSerializer}
    ),
)
class RewardBatchViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = RewardBatchSerializer
    permission_classes = [CapabilityPermission]
    filterset_class = BatchFilter
    capabilities = {"*": sel.BATCH_VIEW}

    def get_queryset(self):
        return sel.batch_list_visible_to(user=self.request.user).order_by(
            "-period_start", "region_id"
        )

    def get_serializer_class(self):
        return RewardBatchDetailSerializer if self.action == "retrieve" else RewardBatchSerializer

    def get_object(self):
        obj = sel.batch_get_for_user(
            user=self.request.user, pk=self.kwargs["pk"], request=self.request
        )
        return type(obj).objects.prefetch_related("lines").get(pk=obj.pk)
