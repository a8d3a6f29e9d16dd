from django.urls import path

from reports import views

app_name = "reports"
urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("patients/", views.drilldown, name="patients"),
    path("targets/", views.targets, name="targets"),
    path("export/indicators.xlsx", views.export_indicators, name="export-indicators"),
    path("export/exchange.xlsx", views.export_exchange, name="export-exchange"),
]
