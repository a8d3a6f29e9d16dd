"""Routes of the referrals API, included under /api/v1/ by config/api_urls.py."""

from rest_framework.routers import SimpleRouter

from referrals.api.views import (
    ClueViewSet,
    ExchangeRunViewSet,
    ReconciliationViewSet,
    ReferralViewSet,
)

app_name = "referrals-api"

router = SimpleRouter()
router.register("referrals", ReferralViewSet, basename="referral")
router.register("clues", ClueViewSet, basename="clue")
router.register("exchanges/runs", ExchangeRunViewSet, basename="exchange-run")
router.register("reconciliations", ReconciliationViewSet, basename="reconciliation")

urlpatterns = router.urls
