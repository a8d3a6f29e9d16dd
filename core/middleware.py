from __future__ import annotations

import ipaddress
import logging
import sys

from django.contrib.auth.middleware import LoginRequiredMiddleware as _LoginRequired
from django.http import HttpResponse, JsonResponse
from django.utils import translation
from django.utils.translation import gettext_lazy as _

logger = logging.getLogger(__name__)


def _is_loopback(address: str | None) -> bool:
    try:
        ip = ipaddress.ip_address((address or "").split("%", 1)[0])
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return ip.is_loopback or bool(mapped and mapped.is_loopback)


class LoopbackHealthCheckMiddleware:
    """Answer ``/healthz`` asked from the machine itself, whatever its Host.

    The container health check (docker-compose.yml) asks
    ``http://127.0.0.1:8000/healthz`` from inside the web container; under
    production settings that Host is not in ALLOWED_HOSTS, so CommonMiddleware
    would answer 400. This middleware sits after SecurityMiddleware (which
    exempts ``/healthz`` from the HTTPS redirect, SECURE_REDIRECT_EXEMPT) and
    before anything that validates the host. Only a loopback peer is served
    here; everyone else, including the TLS proxy, goes through the usual
    host check. The answer carries no URL built from the Host header.
    """

    path = "/healthz"

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path_info == self.path and _is_loopback(request.META.get("REMOTE_ADDR")):
            from core.views import healthz

            return healthz(request)
        return self.get_response(request)


class ApiNoStoreMiddleware:
    """API answers and signed-in pages carry personal data: never let a proxy
    or browser cache them (SECURITY.md G7; ASVS 8.2.1). First in MIDDLEWARE,
    so it also marks what inner middleware answers on its own: a redirect
    (APPEND_SLASH, TLS), a 500 raised in a middleware, the 503 of an outage."""

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


ERR_UNAVAILABLE = _("服务暂时不可用，请稍后再试。")
RETRY_AFTER_SECONDS = 30


def _is_database_error(exc: BaseException | None) -> bool:
    from django.db import InterfaceError, OperationalError

    return isinstance(exc, OperationalError | InterfaceError)


def note_database_error(sender, request=None, **kwargs) -> None:
    """``got_request_exception`` receiver: Django turns an exception raised in
    a middleware (the session or the user loaded by SessionMiddleware,
    AuthenticationMiddleware and friends) into a 500 response right there,
    so no outer middleware sees the exception itself. Mark the request; the
    outermost ``DatabaseUnavailableMiddleware`` then answers 503 instead."""
    if request is not None and _is_database_error(sys.exc_info()[1]):
        request._database_unavailable = True


def unavailable_response(request) -> HttpResponse:
    """The generic 503: no detail of the error, in the user's language
    (language cookie or Accept-Language: the session may be what failed),
    never cached."""
    language = translation.get_language_from_request(request)
    with translation.override(language):
        message = str(ERR_UNAVAILABLE)
    if request.path_info.startswith("/api/"):
        response = JsonResponse(
            {"detail": message}, status=503, json_dumps_params={"ensure_ascii": False}
        )
    else:
        response = HttpResponse(message, status=503, content_type="text/plain; charset=utf-8")
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response["Cache-Control"] = "no-store"
    response["Content-Language"] = language
    return response


class DatabaseUnavailableMiddleware:
    """The database is down: answer 503 at once with a generic body instead
    of a 500 (SECURITY.md R9), wherever the error was raised — in a view
    (``process_exception``) or in an inner middleware loading the session or
    the user (``note_database_error``). Second in MIDDLEWARE, inside only
    ``ApiNoStoreMiddleware``. CONN_HEALTH_CHECKS reconnects by itself when the
    database is back; nothing here retries or hangs."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            response = self.get_response(request)
        except Exception as exc:
            if not _is_database_error(exc):
                raise
            return self._unavailable(request, exc)
        if response.status_code == 500 and getattr(request, "_database_unavailable", False):
            return unavailable_response(request)
        return response

    def process_exception(self, request, exception):
        if not _is_database_error(exception):
            return None
        return self._unavailable(request, exception)

    @staticmethod
    def _unavailable(request, exception) -> HttpResponse:
        logger.warning("database unavailable: %s", type(exception).__name__)
        return unavailable_response(request)
