"""Routes of the subsidies API, included under /api/v1/ by config/api_urls.py."""

from rest_framework.routers import SimpleRouter

from subsidies.api.views import RewardAwardViewSet, RewardBatchViewSet, SettlementViewSet

app_name = "subsidies-api"

router = SimpleRouter()
router.register("settlements", SettlementViewSet, basename="settlement")
router.register("reward-awards", RewardAwardViewSet, basename="reward-award")
router.register("reward-batches", RewardBatchViewSet, basename="reward-batch")

urlpatterns = router.urls
