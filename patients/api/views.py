"""``/api/v1/patients/`` (API.md → patients).

Rows come only from ``patients.selectors`` (scope; out of scope is 404 and
audited); what a department sees of a row is its field set; every list call
is audited as ``patient.search`` and every detail read as ``patient.view``.
Changes need ``If-Match`` with the ETag the client read (SECURITY.md R6).
"""

from __future__ import annotations

from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    PolymorphicProxySerializer,
    extend_schema,
    extend_schema_view,
)
from rest_framework import status, viewsets
from rest_framework.exceptions import PermissionDenied
from rest_framework.parsers import JSONParser
from rest_framework.permissions import BasePermission
from rest_framework.response import Response

from accounts.roles import fieldset_of
from core.api.conditional import etag_for, expected_version_from
from core.api.exceptions import PreconditionFailed, PreconditionRequired
from core.api.schema import error_response
from patients.api import schema as _schema  # noqa: F401 - registers the payload extension
from patients.api.filters import PatientFilter
from patients.api.serializers import (
    OUTPUT_SERIALIZERS,
    PatientCreateSerializer,
    PatientHealthSerializer,
    PatientSerializer,
    PatientUpdateSerializer,
)
from patients.fieldsets import WRITABLE, fields_for
from patients.models import Patient
from patients.selectors import (
    can_manage_patient,
    patient_get_for_user,
    patient_list_visible_to,
    patient_regions_manageable,
)
from patients.services import patient_record_search, patient_record_view

ERR_NO_PATIENT_ACCESS = _("您的角色不能查看患者名单。")
ERR_CANNOT_REGISTER = _("只有在辖区内负责患者管理的卫生健康人员可以登记患者。")
ERR_CANNOT_CHANGE = _("您的角色不能修改此患者的信息。")


class PatientAccess(BasePermission):
    """Signed in; listing needs a patient field set; registering needs a
    health role with manage scope. Object scope is the selector's job.
    Every 403 is audited by ``core.middleware.AuditDenialMiddleware``."""

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        fieldset = fieldset_of(user)
        if view.action == "list" and fieldset is None:
            raise PermissionDenied(ERR_NO_PATIENT_ACCESS)
        if view.action == "create" and not (
            fieldset == "health" and patient_regions_manageable(user)
        ):
            raise PermissionDenied(ERR_CANNOT_REGISTER)
        return True


PATIENT_OUT = PolymorphicProxySerializer(
    component_name="PatientByDepartment",
    serializers=list(OUTPUT_SERIALIZERS.values()),
    resource_type_field_name=None,
)
ETAG_HEADER = OpenApiParameter(
    name="ETag",
    type=OpenApiTypes.STR,
    location=OpenApiParameter.HEADER,
    description=_('记录的版本，形如 "3"；修改时放入 If-Match。'),
    response=[200, 201],
)
IF_MATCH_HEADER = OpenApiParameter(
    name="If-Match",
    type=OpenApiTypes.STR,
    location=OpenApiParameter.HEADER,
    required=True,
    description=_('读取时得到的 ETag，形如 "3"。缺少时返回 428，版本已变时返回 412。'),
)


@extend_schema_view(
    list=extend_schema(
        summary=_("患者名单"),
        description=_(
            "辖区内的患者，字段按调用者部门裁剪（公安无诊断等临床字段）。"
            "按调用者看不到的字段筛选返回 400。每次调用记入审计（patient.search）。"
        ),
        responses={200: PATIENT_OUT},
    ),
    retrieve=extend_schema(
        summary=_("患者详情"),
        description=_("辖区外或不存在均返回 404（记入审计）。每次读取记入审计（patient.view）。"),
        responses={200: PATIENT_OUT},
        parameters=[ETAG_HEADER],
    ),
    create=extend_schema(
        summary=_("登记患者"),
        request=PatientCreateSerializer,
        responses={201: PatientHealthSerializer},
        parameters=[ETAG_HEADER],
    ),
    partial_update=extend_schema(
        summary=_("修改患者信息"),
        description=_(
            "只能修改本部门可写的字段，其他字段返回 400。须带 If-Match（读取时的 ETag）。"
        ),
        request=PatientUpdateSerializer,
        responses={
            200: PATIENT_OUT,
            412: error_response(PreconditionFailed.default_detail),
            428: error_response(PreconditionRequired.default_detail),
        },
        parameters=[IF_MATCH_HEADER, ETAG_HEADER],
    ),
)
class PatientViewSet(viewsets.GenericViewSet):
    permission_classes = [PatientAccess]
    parser_classes = [JSONParser]  # nested guardian objects: JSON only
    filterset_class = PatientFilter
    serializer_class = PatientSerializer
    lookup_url_kwarg = "id"
    # any segment reaches the view, so a malformed id is the same JSON 404
    lookup_value_regex = "[^/]+"
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation
            return Patient.objects.none()
        user = self.request.user
        visible = fields_for(fieldset_of(user))
        qs = patient_list_visible_to(user=user).order_by("region_id", "name", "id")
        if "guardian" in visible:
            qs = qs.select_related("guardian")
        prefetch = [f for f in ("assistant_guardians", "care_team") if f in visible]
        return qs.prefetch_related(*prefetch) if prefetch else qs

    def _patient(self) -> Patient:
        return patient_get_for_user(
            user=self.request.user, pk=self.kwargs[self.lookup_url_kwarg], request=self.request
        )

    def _output(self, instance, *, many: bool = False):
        serializer_class = OUTPUT_SERIALIZERS.get(fieldset_of(self.request.user) or "")
        if serializer_class is None:  # no field set: nothing of a patient is shown
            raise PermissionDenied(ERR_NO_PATIENT_ACCESS)
        context = {**self.get_serializer_context(), "list": many}
        return serializer_class(instance, many=many, context=context).data

    def list(self, request, *args, **kwargs):
        queryset = self.filter_queryset(self.get_queryset())
        page = self.paginate_queryset(queryset)
        data = self._output(page, many=True)
        patient_record_search(
            user=request.user,
            term=request.query_params.get("search", ""),
            count=self.paginator.page.paginator.count,
            request=request,
            # each patient of the page is a read of that patient (G12, G15)
            listed=[p.pk for p in page],
        )
        return self.get_paginated_response(data)

    def retrieve(self, request, *args, **kwargs):
        patient = self._patient()
        patient_record_view(user=request.user, patient=patient, request=request)
        return Response(self._output(patient), headers={"ETag": etag_for(patient.version)})

    def create(self, request, *args, **kwargs):
        serializer = PatientCreateSerializer(
            data=request.data, context=self.get_serializer_context()
        )
        serializer.is_valid(raise_exception=True)
        patient = serializer.save()
        headers = {
            "ETag": etag_for(patient.version),
            "Location": reverse("patients-api:patient-detail", kwargs={"id": patient.pk}),
        }
        return Response(self._output(patient), status=status.HTTP_201_CREATED, headers=headers)

    def partial_update(self, request, *args, **kwargs):
        patient = self._patient()
        user = request.user
        fieldset = fieldset_of(user)
        if not WRITABLE.get(fieldset or "") or (
            fieldset == "health" and not can_manage_patient(user, patient)
        ):
            raise PermissionDenied(ERR_CANNOT_CHANGE)
        context = {
            **self.get_serializer_context(),
            "expected_version": expected_version_from(request),
        }
        serializer = PatientUpdateSerializer(
            patient, data=request.data, partial=True, fieldset=fieldset, context=context
        )
        serializer.is_valid(raise_exception=True)
        patient = serializer.save()
        return Response(self._output(patient), headers={"ETag": etag_for(patient.version)})
