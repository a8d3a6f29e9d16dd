"""Routes of the follow-up and alert API, included under /api/v1/ by
config/api_urls.py."""

from rest_framework.routers import SimpleRouter

from followups.api.views import AlertViewSet, FollowUpViewSet

app_name = "followups-api"

router = SimpleRouter()
router.register("followups", FollowUpViewSet, basename="followup")
router.register("alerts", AlertViewSet, basename="alert")

urlpatterns = router.urls
