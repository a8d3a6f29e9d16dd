from django.urls import path

from followups import views

app_name = "followups"
urlpatterns = [
    path("overdue/", views.overdue_list, name="overdue"),
    path("overdue/export/", views.overdue_export, name="overdue-export"),
    path(
        "overdue/<uuid:patient_id>/not-reached/",
        views.overdue_not_reached,
        name="not-reached",
    ),
    path("new/<uuid:patient_id>/", views.followup_create, name="create"),
    path("new/<uuid:patient_id>/suggest/", views.followup_suggest, name="suggest"),
    path("patient/<uuid:patient_id>/", views.patient_followups, name="patient"),
    path("<uuid:pk>/", views.followup_detail, name="detail"),
    path("<uuid:pk>/edit/", views.followup_edit, name="edit"),
    path("<uuid:pk>/print/", views.followup_print, name="print"),
    path("incidents/", views.incident_list, name="incident-list"),
    path("incidents/new/", views.incident_create, name="incident-create"),
]
