"""Routes of the patient API, included under /api/v1/ by config/api_urls.py."""

from rest_framework.routers import SimpleRouter

from patients.api.views import PatientViewSet

app_name = "patients-api"

router = SimpleRouter()
router.register("patients", PatientViewSet, basename="patient")

urlpatterns = router.urls
