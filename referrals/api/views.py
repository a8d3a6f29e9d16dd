"""``/api/v1/referrals/``, ``/api/v1/clues/``, ``/api/v1/exchanges/runs/``
and ``/api/v1/reconciliations/`` (API.md). Scoped by referrals.selectors;
out of scope is 404 (audited); a role without the capability gets 403."""

from __future__ import annotations

import django_filters
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.parsers import JSONParser, MultiPartParser
from rest_framework.permissions import BasePermission
from rest_framework.response import Response

from referrals import selectors as sel
from referrals.api.serializers import (
    AcceptSerializer,
    ClueCloseSerializer,
    ClueConfirmSerializer,
    ClueCreateSerializer,
    ClueSerializer,
    ExchangeRunSerializer,
    NoteSerializer,
    ReasonSerializer,
    ReconciliationCreateSerializer,
    ReconciliationItemSerializer,
    ReconciliationSerializer,
    ReferralCreateSerializer,
    ReferralDetailSerializer,
    ReferralSerializer,
)
from referrals.models import (
    ClueStatus,
    ItemOutcome,
    PartnerDepartment,
    ReferralKind,
    ReferralStatus,
    RunStatus,
)
from referrals.services import clues as clue_svc
from referrals.services import reconciliation as recon_svc
from referrals.services import referrals as svc

ERR_REFERRALS = _("转诊只对卫生健康部门和社区康复主管部门开放。")
ERR_CLUES = _("您的角色不能报告或查看线索。")
ERR_EXCHANGE = _("您的角色不能查看信息交换。")


def _capability(check, message):
    class Capability(BasePermission):
        def has_permission(self, request, view) -> bool:
            if not (request.user and request.user.is_authenticated):
                return False
            if not check(request.user):
                raise PermissionDenied(message)
            return True

    return Capability


CanUseReferrals = _capability(sel.can_use_referrals, ERR_REFERRALS)
CanReportClues = _capability(sel.can_report_clue, ERR_CLUES)
CanUseExchange = _capability(sel.can_use_exchange, ERR_EXCHANGE)
CanReconcile = _capability(lambda user: bool(sel.reconcile_partners_for(user)), ERR_EXCHANGE)


class ReferralFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=ReferralStatus.choices)
    kind = django_filters.ChoiceFilter(choices=ReferralKind.choices)
    patient = django_filters.UUIDFilter(field_name="patient_id")
    box = django_filters.ChoiceFilter(
        choices=[("incoming", _("收到的")), ("outgoing", _("发出的"))], method="filter_box"
    )

    def filter_box(self, queryset, name, value):
        acting = sel.acting_organisation_ids(self.request.user)
        if value == "incoming":
            return queryset.filter(to_organisation_id__in=acting)
        return queryset.filter(from_organisation_id__in=acting)


@extend_schema_view(
    list=extend_schema(
        summary=_("转诊"),
        description=_("调用者发出或收到的转诊，以及卫生健康人员辖区内患者的转诊。"),
    ),
    retrieve=extend_schema(summary=_("转诊详情"), description=_("含每一步的办理记录。")),
    create=extend_schema(
        summary=_("发起转诊"),
        description=_(
            "kind：upward 上转、downward 下转（须附出院信息单 discharge_sheet 或 "
            "discharge_date）、rehab 转介社区康复（须 patient_consent 和 guardian_consent）、"
            "transfer 迁移（可带 to_region 村级代码）。"
        ),
        request=ReferralCreateSerializer,
        responses={201: ReferralSerializer},
    ),
)
class ReferralViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):
    permission_classes = [CanUseReferrals]
    filterset_class = ReferralFilter
    serializer_class = ReferralSerializer
    parser_classes = [JSONParser]

    def get_queryset(self):
        return sel.referral_list_visible_to(user=self.request.user).order_by("-created_at")

    def get_object(self):
        return sel.referral_get_for_user(
            user=self.request.user, pk=self.kwargs["pk"], request=self.request
        )

    def retrieve(self, request, *args, **kwargs):
        referral = self.get_object()
        sel.record_read(user=request.user, object_type="referral", obj=referral, request=request)
        data = ReferralDetailSerializer(referral, context={"request": request}).data
        return Response(data)

    def create(self, request, *args, **kwargs):
        data = ReferralCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        referral = svc.referral_create(
            patient_id=values.pop("patient"), by=request.user, request=request, **values
        )
        out = ReferralSerializer(referral, context={"request": request}).data
        return Response(out, status=status.HTTP_201_CREATED)

    def _done(self, request, pk):
        referral = sel.referral_get_for_user(user=request.user, pk=pk, request=request)
        return Response(ReferralDetailSerializer(referral, context={"request": request}).data)

    @extend_schema(
        summary=_("接收转诊"), request=AcceptSerializer, responses=ReferralDetailSerializer
    )
    @action(detail=True, methods=["post"])
    def accept(self, request, pk=None):
        self.get_object()  # scope first: out of scope is 404 whatever the body
        body = AcceptSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        svc.referral_accept(referral_id=pk, by=request.user, request=request, **body.validated_data)
        return self._done(request, pk)

    @extend_schema(
        summary=_("拒绝转诊"), request=ReasonSerializer, responses=ReferralDetailSerializer
    )
    @action(detail=True, methods=["post"])
    def reject(self, request, pk=None):
        self.get_object()  # scope first: out of scope is 404 whatever the body
        body = ReasonSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        svc.referral_reject(
            referral_id=pk, by=request.user, reason=body.validated_data["reason"], request=request
        )
        return self._done(request, pk)

    @extend_schema(
        summary=_("完成转诊"), request=NoteSerializer, responses=ReferralDetailSerializer
    )
    @action(detail=True, methods=["post"])
    def complete(self, request, pk=None):
        self.get_object()  # scope first: out of scope is 404 whatever the body
        body = NoteSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        svc.referral_complete(
            referral_id=pk, by=request.user, note=body.validated_data["note"], request=request
        )
        return self._done(request, pk)

    @extend_schema(
        summary=_("撤销转诊"), request=ReasonSerializer, responses=ReferralDetailSerializer
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        self.get_object()  # scope first: out of scope is 404 whatever the body
        body = ReasonSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        svc.referral_cancel(
            referral_id=pk, by=request.user, reason=body.validated_data["reason"], request=request
        )
        return self._done(request, pk)


class ClueFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=ClueStatus.choices)
    region = django_filters.CharFilter(method="filter_region")

    def filter_region(self, queryset, name, value):
        return queryset.filter(region__path__contains=f"/{value}/")


@extend_schema_view(
    list=extend_schema(
        summary=_("线索"),
        description=_("卫生健康人员：辖区内及分配给本机构的线索；其他部门：本单位报告的线索。"),
    ),
    retrieve=extend_schema(summary=_("线索详情")),
    create=extend_schema(
        summary=_("报告线索"), request=ClueCreateSerializer, responses={201: ClueSerializer}
    ),
)
class ClueViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):
    permission_classes = [CanReportClues]
    filterset_class = ClueFilter
    serializer_class = ClueSerializer
    parser_classes = [JSONParser]

    def get_queryset(self):
        return sel.clue_list_visible_to(user=self.request.user).order_by("-created_at")

    def get_object(self):
        return sel.clue_get_for_user(
            user=self.request.user, pk=self.kwargs["pk"], request=self.request
        )

    def retrieve(self, request, *args, **kwargs):
        clue = self.get_object()
        sel.record_read(user=request.user, object_type="clue", obj=clue, request=request)
        return Response(ClueSerializer(clue, context={"request": request}).data)

    def create(self, request, *args, **kwargs):
        body = ClueCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        clue = clue_svc.clue_report(by=request.user, data=body.validated_data, request=request)
        return Response(
            ClueSerializer(clue, context={"request": request}).data,
            status=status.HTTP_201_CREATED,
        )

    @extend_schema(
        summary=_("诊断复核确诊并登记"),
        request=ClueConfirmSerializer,
        responses=ClueSerializer,
    )
    @action(detail=True, methods=["post"])
    def confirm(self, request, pk=None):
        self.get_object()  # scope first: out of scope is 404 whatever the body
        body = ClueConfirmSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        clue_svc.clue_confirm(
            clue_id=pk, by=request.user, data=body.validated_data, request=request
        )
        return Response(ClueSerializer(self.get_object(), context={"request": request}).data)

    @extend_schema(summary=_("关闭线索"), request=ClueCloseSerializer, responses=ClueSerializer)
    @action(detail=True, methods=["post"])
    def close(self, request, pk=None):
        self.get_object()  # scope first: out of scope is 404 whatever the body
        body = ClueCloseSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        clue_svc.clue_close(clue_id=pk, by=request.user, request=request, **body.validated_data)
        return Response(ClueSerializer(self.get_object(), context={"request": request}).data)


class RunFilter(django_filters.FilterSet):
    partner = django_filters.ChoiceFilter(
        field_name="partner__department", choices=PartnerDepartment.choices
    )
    status = django_filters.ChoiceFilter(choices=RunStatus.choices)
    period = django_filters.CharFilter()


@extend_schema_view(
    list=extend_schema(
        summary=_("信息交换记录"),
        description=_("每个数据包一条：partner、period、status、rows、sha256、created_at。"),
    ),
    retrieve=extend_schema(summary=_("信息交换记录详情")),
)
class ExchangeRunViewSet(viewsets.ReadOnlyModelViewSet):
    permission_classes = [CanUseExchange]
    serializer_class = ExchangeRunSerializer
    filterset_class = RunFilter

    def get_queryset(self):
        return sel.exchange_run_list_visible_to(user=self.request.user).order_by("-created_at")

    def get_object(self):
        return sel.exchange_run_get_for_user(
            user=self.request.user, pk=self.kwargs["pk"], request=self.request
        )


class ItemFilter(django_filters.FilterSet):
    outcome = django_filters.ChoiceFilter(choices=ItemOutcome.choices)


@extend_schema_view(
    list=extend_schema(summary=_("比对记录")),
    retrieve=extend_schema(summary=_("比对结果")),
    create=extend_schema(
        summary=_("上传名单比对"),
        description=_(
            "multipart：partner（police、governance、civil_affairs、disabled_federation）和 "
            "file（CSV 或 XLSX，至少含“身份证号”和“姓名”两列）。同一文件再次上传返回同一结果，"
            "不会产生新的线索。"
        ),
        request={"multipart/form-data": ReconciliationCreateSerializer},
        responses={201: ReconciliationSerializer},
    ),
)
class ReconciliationViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):
    permission_classes = [CanReconcile]
    serializer_class = ReconciliationSerializer
    parser_classes = [MultiPartParser, JSONParser]
    filterset_class = None  # the items action sets its own

    def get_queryset(self):
        return sel.reconciliation_list_visible_to(user=self.request.user)

    def get_object(self):
        return sel.reconciliation_get_for_user(
            user=self.request.user, pk=self.kwargs["pk"], request=self.request
        )

    def create(self, request, *args, **kwargs):
        body = ReconciliationCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        upload = body.validated_data["file"]
        run = recon_svc.reconciliation_run(
            by=request.user,
            partner=body.validated_data["partner"],
            file_name=upload.name,
            data=upload.read(),
            request=request,
        )
        return Response(
            ReconciliationSerializer(run, context={"request": request}).data,
            status=status.HTTP_201_CREATED,
        )

    @extend_schema(
        summary=_("比对结果明细"),
        responses=ReconciliationItemSerializer(many=True),
        filters=True,
    )
    @action(detail=True, methods=["get"], filterset_class=ItemFilter)
    def items(self, request, pk=None):
        run = self.get_object()
        qs = self.filter_queryset(sel.reconciliation_items(user=request.user, run=run))
        page = self.paginate_queryset(qs)
        data = ReconciliationItemSerializer(page, many=True, context={"request": request}).data
        return self.get_paginated_response(data)
