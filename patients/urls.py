from django.urls import path

from patients import views

app_name = "patients"
urlpatterns = [
    path("", views.patient_list, name="list"),
    path("new/", views.patient_create, name="create"),
    path("<uuid:pk>/", views.patient_detail, name="detail"),
    path("<uuid:pk>/edit/", views.patient_edit, name="edit"),
    path("<uuid:pk>/reveal-id/", views.patient_reveal_id, name="reveal-id"),
    path("<uuid:pk>/print/", views.patient_print_supplement, name="print-supplement"),
    path("<uuid:pk>/care-team/add/", views.care_team_member_add, name="care-team-add"),
    path(
        "<uuid:pk>/care-team/<int:member_id>/remove/",
        views.care_team_member_remove,
        name="care-team-remove",
    ),
]
