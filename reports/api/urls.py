"""Routes of the reports API, included under /api/v1/ by config/api_urls.py."""

from django.urls import path

from reports.api.views import IndicatorReportView

app_name = "reports-api"

urlpatterns = [
    path("reports/indicators/", IndicatorReportView.as_view(), name="indicators"),
]
