"""DRF exception handler that turns domain errors into 400s naming the field,
plus the HTTP errors of conditional requests and lockout the API raises."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils.translation import gettext_lazy as _
from rest_framework import status
from rest_framework.exceptions import APIException
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from core.errors import DomainError, StaleVersion


class PreconditionRequired(APIException):
    """428: a change was sent without ``If-Match`` (optimistic locking, SECURITY.md R6)."""

    status_code = status.HTTP_428_PRECONDITION_REQUIRED
    default_detail = _("修改前须带上 If-Match 请求头（先读取记录，取其 ETag）。")
    default_code = "precondition_required"


class PreconditionFailed(APIException):
    """412: the ``If-Match`` entity tag does not match the record's version."""

    status_code = status.HTTP_412_PRECONDITION_FAILED
    default_detail = _("该记录已被他人修改，请重新读取后再提交。")
    default_code = "precondition_failed"


class Locked(APIException):
    """429: the account is locked after repeated failed sign-ins (django-axes)."""

    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    default_detail = _("登录失败次数过多，该账号已被暂时锁定。")
    default_code = "locked"


def exception_handler(exc, context):
    if isinstance(exc, StaleVersion):
        return Response({"detail": str(exc.message)}, status=status.HTTP_412_PRECONDITION_FAILED)
    if isinstance(exc, DomainError):
        key = exc.field or "non_field_errors"
        return Response({key: [str(exc.message)]}, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, DjangoValidationError):
        if hasattr(exc, "error_dict"):
            # message_dict: field → list of message strings
            data = {k: [str(m) for m in v] for k, v in exc.message_dict.items()}
        else:
            data = {"non_field_errors": [str(m) for m in exc.messages]}
        return Response(data, status=status.HTTP_400_BAD_REQUEST)
    return drf_exception_handler(exc, context)
