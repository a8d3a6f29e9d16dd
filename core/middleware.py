from __future__ import annotations

from django.contrib.auth.middleware import LoginRequiredMiddleware as _LoginRequired
from django.http import HttpResponse


class ApiNoStoreMiddleware:
    """API answers and signed-in pages carry personal data: never let a proxy
    or browser cache them (SECURITY.md G7; ASVS 8.2.1)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if request.path.startswith("/api/"):
            response["Cache-Control"] = "no-store"
            response["Pragma"] = "no-cache"
        elif "Cache-Control" not in response:
            user = getattr(request, "user", None)
            if user is not None and user.is_authenticated:
                response["Cache-Control"] = "private, no-store"
        return response


class AuditDenialMiddleware:
    """Every 403 answer is an audited denial (SECURITY.md G12), whatever
    raised it: a page's role check, Django's PermissionDenied or DRF.
    Out-of-scope patient reads (404) are audited by ``patients.selectors``."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if response.status_code == 403:
            from audit.services import audit_record

            match = getattr(request, "resolver_match", None)
            audit_record(
                actor=getattr(request, "user", None),
                action="access.denied",
                object_type="view",
                object_id=(match.view_name if match else "")[:64],
                detail={"method": request.method, "status": 403},
                request=request,
            )
        return response


class LoginRequiredMiddleware(_LoginRequired):
    """Deny by default for pages; the API answers 401/403 itself (DRF
    ``IsAuthenticated``), so it is not redirected to the login page."""

    def process_view(self, request, view_func, view_args, view_kwargs):
        if request.path_info.startswith("/api/"):
            return None
        return super().process_view(request, view_func, view_args, view_kwargs)

    def handle_no_permission(self, request, view_func):
        response = super().handle_no_permission(request, view_func)
        if request.headers.get("HX-Request") == "true":
            # An htmx request whose session ended: load the login page as a
            # whole page instead of swapping it into a fragment.
            redirect = HttpResponse(status=204)
            redirect["HX-Redirect"] = response["Location"]
            return redirect
        return response
