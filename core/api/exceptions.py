"""DRF exception handler that turns domain errors into 400s naming the field."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from core.errors import DomainError, StaleVersion


def exception_handler(exc, context):
    if isinstance(exc, StaleVersion):
        return Response({"detail": str(exc.message)}, status=status.HTTP_412_PRECONDITION_FAILED)
    if isinstance(exc, DomainError):
        key = exc.field or "non_field_errors"
        return Response({key: [str(exc.message)]}, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, DjangoValidationError):
        if hasattr(exc, "error_dict"):
            data = {k: [str(m) for m in v.messages] for k, v in exc.message_dict.items()}
        else:
            data = {"non_field_errors": [str(m) for m in exc.messages]}
        return Response(data, status=status.HTTP_400_BAD_REQUEST)
    return drf_exception_handler(exc, context)
