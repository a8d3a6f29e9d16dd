"""``/api/v1/followups/`` and ``/api/v1/alerts/`` (API.md).

Follow-ups are health-only and scoped like patients (a follow-up is visible
when its patient is; out of scope is 404 and audited). Alerts are the
caller's organisation's inbox. Corrections need ``If-Match`` (ETag =
version); a POST may carry an ``Idempotency-Key`` so a retry returns the
first row instead of writing a second.
"""

from __future__ import annotations

import uuid

import django_filters
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.parsers import JSONParser
from rest_framework.permissions import BasePermission
from rest_framework.response import Response

from accounts.roles import fieldset_of
from audit.services import audit_record
from core.api.conditional import etag_for, expected_version_from
from followups.api.serializers import (
    AlertResolveSerializer,
    AlertSerializer,
    FollowUpCreateSerializer,
    FollowUpSerializer,
    FollowUpUpdateSerializer,
)
from followups.models import AlertKind, AlertRecipient, AlertStatus, FollowUp, Outcome
from followups.selectors import (
    alert_inbox_for,
    alert_recipient_get_for_user,
    followup_get_for_user,
    followup_list_visible_to,
)
from followups.services.alerts import alert_acknowledge, alert_resolve
from patients.services import patient_records_listed

UUID_PATTERN = "[0-9a-fA-F-]{36}"
ERR_HEALTH_ONLY = _("随访记录只对卫生健康部门开放。")
ERR_IDEMPOTENCY_KEY = _("Idempotency-Key 须为 UUID。")

IDEMPOTENCY_HEADER = OpenApiParameter(
    name="Idempotency-Key",
    type=OpenApiTypes.UUID,
    location=OpenApiParameter.HEADER,
    required=False,
    description=_("客户端生成的 UUID：同一键重试时返回第一次保存的记录，不会重复保存。"),
)
IF_MATCH_HEADER = OpenApiParameter(
    name="If-Match",
    type=OpenApiTypes.STR,
    location=OpenApiParameter.HEADER,
    required=True,
    description=_('读取时得到的 ETag，形如 "2"。缺少时返回 428，版本已变时返回 412。'),
)


class HealthOnly(BasePermission):
    """Follow-up records are clinical: health staff only (403 otherwise,
    audited by core.middleware.AuditDenialMiddleware)."""

    def has_permission(self, request, view) -> bool:
        if not (request.user and request.user.is_authenticated):
            return False
        if fieldset_of(request.user) != "health":
            raise PermissionDenied(ERR_HEALTH_ONLY)
        return True


class FollowUpFilter(django_filters.FilterSet):
    patient = django_filters.UUIDFilter(field_name="patient_id")
    outcome = django_filters.ChoiceFilter(choices=Outcome.choices)
    visit_date_from = django_filters.DateFilter(field_name="visit_date", lookup_expr="gte")
    visit_date_to = django_filters.DateFilter(field_name="visit_date", lookup_expr="lte")

    class Meta:
        model = FollowUp
        fields = ["patient", "outcome"]


def _idempotency_key(request):
    raw = request.headers.get("Idempotency-Key")
    if not raw:
        return None
    try:
        return uuid.UUID(raw.strip())
    except ValueError as exc:
        raise ValidationError({"idempotency_key": [ERR_IDEMPOTENCY_KEY]}) from exc


@extend_schema_view(
    list=extend_schema(
        summary=_("随访记录"),
        description=_("调用者辖区内患者的随访记录，新的在前；可按患者筛选。仅卫生健康部门。"),
    ),
    retrieve=extend_schema(
        summary=_("随访记录详情"), description=_("辖区外或不存在均返回 404（记入审计）。")
    ),
    create=extend_schema(
        summary=_("记录随访"),
        description=_(
            "按全国随访表记录一次随访；返回系统计算的 classification（随访分类）和 "
            "next_due_date（下次随访日期）。"
        ),
        request=FollowUpCreateSerializer,
        responses={201: FollowUpSerializer},
        parameters=[IDEMPOTENCY_HEADER],
    ),
    partial_update=extend_schema(
        summary=_("更正随访记录"),
        description=_("随访结果不能修改；须带 If-Match。"),
        request=FollowUpUpdateSerializer,
        responses={200: FollowUpSerializer},
        parameters=[IF_MATCH_HEADER],
    ),
)
class FollowUpViewSet(viewsets.GenericViewSet):
    permission_classes = [HealthOnly]
    parser_classes = [JSONParser]
    serializer_class = FollowUpSerializer
    filterset_class = FollowUpFilter
    lookup_url_kwarg = "id"
    lookup_value_regex = UUID_PATTERN
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return FollowUp.objects.none()
        return followup_list_visible_to(user=self.request.user).order_by(
            "-visit_date", "-created_at", "id"
        )

    def list(self, request, *args, **kwargs):
        queryset = self.filter_queryset(self.get_queryset())
        page = self.paginate_queryset(queryset)
        data = FollowUpSerializer(page, many=True).data
        audit_record(
            actor=request.user,
            action="followup.search",
            object_type="followup",
            detail={
                "patient": request.query_params.get("patient", "")[:40],
                "results": self.paginator.page.paginator.count,
            },
            request=request,
        )
        return self.get_paginated_response(data)

    def _followup(self) -> FollowUp:
        return followup_get_for_user(
            user=self.request.user, pk=self.kwargs[self.lookup_url_kwarg], request=self.request
        )

    def retrieve(self, request, *args, **kwargs):
        fu = self._followup()
        audit_record(
            actor=request.user,
            action="followup.view",
            object_type="patient",
            object_id=fu.patient_id,
            detail={"followup": str(fu.pk)},
            request=request,
        )
        return Response(FollowUpSerializer(fu).data, headers={"ETag": etag_for(fu.version)})

    def create(self, request, *args, **kwargs):
        context = {**self.get_serializer_context(), "idempotency_key": _idempotency_key(request)}
        serializer = FollowUpCreateSerializer(data=request.data, context=context)
        serializer.is_valid(raise_exception=True)
        fu = serializer.save()
        headers = {
            "ETag": etag_for(fu.version),
            "Location": reverse("followups-api:followup-detail", kwargs={"id": fu.pk}),
        }
        if getattr(fu, "replayed", False):
            headers["Idempotent-Replayed"] = "true"
        return Response(
            FollowUpSerializer(fu).data, status=status.HTTP_201_CREATED, headers=headers
        )

    def partial_update(self, request, *args, **kwargs):
        fu = self._followup()
        context = {
            **self.get_serializer_context(),
            "expected_version": expected_version_from(request),
        }
        serializer = FollowUpUpdateSerializer(fu, data=request.data, partial=True, context=context)
        serializer.is_valid(raise_exception=True)
        fu = serializer.save()
        return Response(FollowUpSerializer(fu).data, headers={"ETag": etag_for(fu.version)})


class AlertFilter(django_filters.FilterSet):
    kind = django_filters.ChoiceFilter(field_name="alert__kind", choices=AlertKind.choices)
    status = django_filters.ChoiceFilter(choices=AlertStatus.choices)

    class Meta:
        model = AlertRecipient
        fields = ["kind", "status"]


@extend_schema_view(
    list=extend_schema(
        summary=_("本单位预警"),
        description=_(
            "调用者所在机构收到的预警，待处理的在前；status 为本单位的处理状态。"
            "患者信息按部门最少必要（无诊断）。"
        ),
    ),
    retrieve=extend_schema(summary=_("预警详情")),
)
class AlertViewSet(viewsets.GenericViewSet):
    serializer_class = AlertSerializer
    filterset_class = AlertFilter
    lookup_url_kwarg = "id"
    lookup_value_regex = UUID_PATTERN
    http_method_names = ["get", "post", "head", "options"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return AlertRecipient.objects.none()
        return alert_inbox_for(user=self.request.user)

    def list(self, request, *args, **kwargs):
        queryset = self.filter_queryset(self.get_queryset())
        page = self.paginate_queryset(queryset)
        data = AlertSerializer(page, many=True, context=self.get_serializer_context()).data
        # each alert shows its patient: a read of that patient (G12, G15)
        patient_records_listed(
            user=request.user,
            patient_ids=[r.alert.patient_id for r in page],
            request=request,
            action="alert.list",
        )
        return self.get_paginated_response(data)

    def _output(self, row: AlertRecipient, *, full: bool = False) -> dict:
        context = {**self.get_serializer_context(), "full": full}
        return AlertSerializer(row, context=context).data

    def _row(self) -> AlertRecipient:
        return alert_recipient_get_for_user(
            user=self.request.user,
            alert_id=self.kwargs[self.lookup_url_kwarg],
            request=self.request,
        )

    def retrieve(self, request, *args, **kwargs):
        row = self._row()
        audit_record(
            actor=request.user,
            action="alert.view",
            object_type="patient",
            object_id=row.alert.patient_id,
            detail={"alert": str(row.alert_id)},
            request=request,
        )
        return Response(self._output(row, full=True))

    @extend_schema(
        summary=_("签收预警"),
        request=None,
        responses={200: AlertSerializer},
        description=_("本单位签收（待处理 → 已签收）；重复签收不改变任何内容。"),
    )
    @action(detail=True, methods=["post"])
    def acknowledge(self, request, *args, **kwargs):
        alert_acknowledge(alert_id=self.kwargs["id"], by=request.user, request=request)
        return Response(self._output(self._fresh()))

    @extend_schema(
        summary=_("办结预警"),
        request=AlertResolveSerializer,
        responses={200: AlertSerializer},
        description=_("本单位办结并填写处理情况（note 必填）。"),
    )
    @action(detail=True, methods=["post"])
    def resolve(self, request, *args, **kwargs):
        serializer = AlertResolveSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        alert_resolve(
            alert_id=self.kwargs["id"],
            by=request.user,
            note=serializer.validated_data["note"],
            request=request,
        )
        return Response(self._output(self._fresh()))

    def _fresh(self) -> AlertRecipient:
        return alert_inbox_for(user=self.request.user).get(alert_id=self.kwargs["id"])
