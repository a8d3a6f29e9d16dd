"""Lockout to the letter of SECURITY.md G9: 5 failed sign-ins within 15
minutes lock the username for 30 minutes.

django-axes (8.x) has one period, ``AXES_COOLOFF_TIME``, that is both the
lock's length and the window in which failures add up (a failure counts as
long as the one before it is younger than the cool-off), so with 30 minutes
five failures spread over two hours would lock too. This handler keeps
axes' records, middleware, signals and lock page, and decides with the
failure log axes writes anyway (``AccessFailureLog``, one row per failure
with its time and whether it locked):

- locked: a failure that locked (``locked_out``) lies within
  ``AXES_COOLOFF_TIME`` (30 min). A failure during the lock is recorded as
  locking too, so it restarts the 30 minutes (as axes does by default);
- otherwise the failures within ``LOGIN_FAILURE_WINDOW`` (15 min), the one
  being handled included, are what is compared with ``AXES_FAILURE_LIMIT``.

Failures older than both periods are deleted on every failure: the log
holds what the decision needs and no more (what was typed as a username may
be someone's ID number, SECURITY.md G15). A reset (a successful sign-in, the
security admin's unlock) clears the user's failures along with axes' own
records.
"""

from __future__ import annotations

from datetime import timedelta

from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_client_username, get_cool_off, get_failure_limit
from axes.models import AccessFailureLog
from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone


def failure_window() -> timedelta:
    return settings.LOGIN_FAILURE_WINDOW


def lock_period(request=None) -> timedelta:
    return get_cool_off(request) or timedelta(0)


def locked_failures(now=None) -> QuerySet[AccessFailureLog]:
    """Failures that locked their username and still hold the lock."""
    now = now or timezone.now()
    return AccessFailureLog.objects.filter(locked_out=True, attempt_time__gt=now - lock_period())


class WindowedLockoutHandler(AxesDatabaseHandler):
    """``AXES_HANDLER``: axes' database handler with a failure window of its
    own (``LOGIN_FAILURE_WINDOW``) apart from the lock (``AXES_COOLOFF_TIME``)."""

    def get_failures(self, request, credentials=None) -> int:
        username = get_client_username(request, credentials)
        if username is None:
            return 0
        now = getattr(request, "axes_attempt_time", None) or timezone.now()
        failures = AccessFailureLog.objects.filter(username=username)
        if failures.filter(locked_out=True, attempt_time__gt=now - lock_period(request)).exists():
            return get_failure_limit(request, credentials)
        recent = failures.filter(attempt_time__gt=now - failure_window()).count()
        # Inside user_login_failed the failure being handled is not logged yet.
        if getattr(request, "_jft_counting_failure", False):
            recent += 1
        return recent

    def user_login_failed(self, sender, credentials: dict, request=None, **kwargs):
        if request is None:
            return super().user_login_failed(sender, credentials, request=request, **kwargs)
        request._jft_counting_failure = True
        try:
            super().user_login_failed(sender, credentials, request=request, **kwargs)
        finally:
            request._jft_counting_failure = False
        horizon = max(failure_window(), lock_period(request))
        AccessFailureLog.objects.filter(attempt_time__lte=timezone.now() - horizon).delete()
        return None

    def reset_attempts(self, *, ip_address=None, username=None, ip_or_username=False) -> int:
        count = super().reset_attempts(
            ip_address=ip_address, username=username, ip_or_username=ip_or_username
        )
        if username:
            AccessFailureLog.objects.filter(username=username).delete()
        return count

    def reset_user_attempts(self, request, credentials=None) -> int:
        count = super().reset_user_attempts(request, credentials)
        username = get_client_username(request, credentials)
        if username:
            AccessFailureLog.objects.filter(username=username).delete()
        return count
