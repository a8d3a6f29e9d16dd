"""OpenAPI helpers: the error responses every operation documents.

A drf-spectacular postprocessing hook (``SPECTACULAR_SETTINGS
["POSTPROCESSING_HOOKS"]``) adds 400/401/403/404 to every operation that does
not document them itself, so a new endpoint cannot forget them and schema-based
fuzzing (schemathesis) finds no undocumented status codes.
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import serializers

ERROR_COMPONENT = "Error"
VALIDATION_ERROR_COMPONENT = "ValidationError"

ERROR_SCHEMA = {
    "type": "object",
    "description": "An error with a human-readable message in the user's language.",
    "properties": {"detail": {"type": "string"}},
    "required": ["detail"],
}
VALIDATION_ERROR_SCHEMA = {
    "type": "object",
    "description": (
        "Invalid input: each key names a field (or `non_field_errors`), each value "
        "lists its messages (an object of the same shape for nested fields); a body "
        "that cannot be parsed answers `detail` with one message."
    ),
    "additionalProperties": {
        "anyOf": [
            {"type": "string"},
            {"type": "array", "items": {"type": "string"}},
            {"type": "object"},
        ]
    },
}

STANDARD_ERRORS = {
    "400": (VALIDATION_ERROR_COMPONENT, _("请求有误：字段校验失败或参数无效。")),
    "401": (ERROR_COMPONENT, _("未登录，或令牌无效。")),
    "403": (ERROR_COMPONENT, _("您的角色无权执行此操作。")),
    "404": (ERROR_COMPONENT, _("对象不存在，或不在您的管辖范围内。")),
}

HTTP_METHODS = {"get", "put", "post", "patch", "delete", "head", "options", "trace"}


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def add_error_responses(result, generator, request, public):
    """Document 400/401/403/404 on every operation (keeps explicit ones)."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault(ERROR_COMPONENT, ERROR_SCHEMA)
    schemas.setdefault(VALIDATION_ERROR_COMPONENT, VALIDATION_ERROR_SCHEMA)
    for path_item in result.get("paths", {}).values():
        for method, operation in path_item.items():
            if method not in HTTP_METHODS:
                continue
            responses = operation.setdefault("responses", {})
            for code, (component, description) in STANDARD_ERRORS.items():
                responses.setdefault(
                    code,
                    {
                        "description": str(description),
                        "content": {"application/json": {"schema": _ref(component)}},
                    },
                )
    return result


# For views that document an error code beyond the standard four (412, 428, 429).
ErrorSerializer = inline_serializer(
    name=ERROR_COMPONENT, fields={"detail": serializers.CharField()}
)


def error_response(description) -> OpenApiResponse:
    return OpenApiResponse(response=ErrorSerializer, description=str(description))


class ApiKeyScheme(OpenApiAuthenticationExtension):
    """Partner systems' ``Authorization: Api-Key <prefix>.<secret>`` (accounts.authentication).

    Registered here because this module is imported with the API views,
    before the schema is generated.
    """

    target_class = "accounts.authentication.ApiKeyAuthentication"
    name = "ApiKeyAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "Api-Key <prefix>.<secret>",
        }
