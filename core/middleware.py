from __future__ import annotations

from django.contrib.auth.middleware import LoginRequiredMiddleware as _LoginRequired


class ApiNoStoreMiddleware:
    """API answers carry personal data: never let a proxy or browser cache them."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if request.path.startswith("/api/"):
            response["Cache-Control"] = "no-store"
            response["Pragma"] = "no-cache"
        return response


class LoginRequiredMiddleware(_LoginRequired):
    """Deny by default for pages; the API answers 401/403 itself (DRF
    ``IsAuthenticated``), so it is not redirected to the login page."""

    def process_view(self, request, view_func, view_args, view_kwargs):
        if request.path_info.startswith("/api/"):
            return None
        return super().process_view(request, view_func, view_args, view_kwargs)
