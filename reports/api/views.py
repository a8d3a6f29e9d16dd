"""``GET /api/v1/reports/indicators/?region=&period=`` (API.md).

Same scope as the dashboard (a region outside it is 404 and audited) and the
same numbers: ``reports.selectors.region_report``. A period that has not
started, lies before the first data, or (for a city or province) has no
snapshot yet is refused with 400 and the reason under ``period``.
"""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from reports import selectors
from reports.api.serializers import IndicatorQuerySerializer, IndicatorReportSerializer
from reports.rules import Period, PeriodError


class IndicatorReportView(APIView):
    """The indicators of one region and quarter, keyed by indicator."""

    @extend_schema(
        operation_id="reports_indicators",
        parameters=[
            OpenApiParameter("region", str, description="Division code; default: own region."),
            OpenApiParameter("period", str, description="YYYYQn; default: current quarter."),
        ],
        responses={200: IndicatorReportSerializer},
    )
    def get(self, request):
        query = IndicatorQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        today = timezone.localdate()
        period = query.validated_data.get("period") or Period.containing(today)
        region = selectors.report_region_get_for_user(
            user=request.user, code=query.validated_data.get("region"), request=request
        )
        try:
            selectors.period_check(period, today)
            report = selectors.region_report(region=region, period=period, today=today)
        except PeriodError as exc:  # not started, before the data, or not summed up
            raise serializers.ValidationError({"period": [str(exc.message)]}) from exc
        return Response(IndicatorReportSerializer(report).data)
