"""Routes of the accounts API, included under /api/v1/ by config/api_urls.py."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from accounts.api.views import AuthTokenView, OrganisationViewSet, RegionViewSet

app_name = "accounts-api"

router = SimpleRouter()
router.register("regions", RegionViewSet, basename="region")
router.register("organisations", OrganisationViewSet, basename="organisation")

urlpatterns = [
    path("auth/token/", AuthTokenView.as_view(), name="auth-token"),
    *router.urls,
]
