from django.urls import path

from followups import alert_views

app_name = "alerts"
urlpatterns = [
    path("", alert_views.alert_list, name="list"),
    path("<uuid:pk>/", alert_views.alert_detail, name="detail"),
    path("<uuid:pk>/acknowledge/", alert_views.alert_ack, name="acknowledge"),
    path("<uuid:pk>/resolve/", alert_views.alert_resolve_view, name="resolve"),
]
