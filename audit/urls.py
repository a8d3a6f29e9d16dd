from django.urls import path

from audit import views

app_name = "audit"
urlpatterns = [
    path("", views.event_list, name="event-list"),
    path("alerts/", views.unusual_list, name="unusual-list"),
    path("break-glass/", views.breakglass_list, name="breakglass-list"),
    path("break-glass/<uuid:pk>/review/", views.breakglass_review, name="breakglass-review"),
    path("patients/<uuid:pk>/", views.patient_access, name="patient-access"),
]
