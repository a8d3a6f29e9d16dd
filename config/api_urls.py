"""Everything under /api/v1/: each app contributes its own router."""

from django.urls import include, path

urlpatterns = [
    path("", include("accounts.api.urls")),
    path("", include("patients.api.urls")),
    path("", include("followups.api.urls")),
    path("", include("subsidies.api.urls")),
    path("", include("referrals.api.urls")),
    path("", include("reports.api.urls")),
]
