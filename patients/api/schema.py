"""OpenAPI description of the patient payloads.

A department's payload has exactly its field set's keys (the rest are absent),
so each audience component is closed with ``additionalProperties: false``.
That also makes the ``oneOf`` of ``PatientByDepartment`` exact: a payload
matches one department's shape only, as OpenAPI's ``oneOf`` requires.
Imported by ``patients.api.views`` so it is registered before generation.
"""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiSerializerExtension


class PatientPayloadExtension(OpenApiSerializerExtension):
    target_class = "patients.api.serializers.PatientSerializer"
    match_subclasses = True

    def map_serializer(self, auto_schema, direction):
        schema = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        schema["additionalProperties"] = False
        return schema
