from __future__ import annotations

import logging

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db import connection
from django.http import JsonResponse
from django.shortcuts import redirect
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_safe

log = logging.getLogger(__name__)


@login_not_required
@never_cache
@require_safe
def healthz(request):
    """200 when the database and the broker answer, 503 otherwise."""
    checks = {}
    try:
        with connection.cursor() as cur:
            cur.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception:  # noqa: BLE001 - any failure means "down"
        log.warning("healthz: database unreachable")
        checks["database"] = "down"
    checks["broker"] = _broker_status()
    ok = all(v == "ok" for v in checks.values())
    return JsonResponse({"status": "ok" if ok else "down", **checks}, status=200 if ok else 503)


def _broker_status() -> str:
    url = settings.CELERY_BROKER_URL
    if url.startswith(("filesystem://", "memory://")):
        return "ok"
    try:
        from kombu import Connection

        with Connection(url, connect_timeout=2) as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        return "ok"
    except Exception:  # noqa: BLE001
        log.warning("healthz: broker unreachable")
        return "down"


@require_GET
def home(request):
    """``/``: send each user to the home page of their role."""
    from accounts.roles import home_url_for

    return redirect(home_url_for(request.user))
