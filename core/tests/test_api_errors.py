"""The API's exception handler turns model validation errors into a 400 that
names each field, as DRF's own serializer errors do (core.api.exceptions)."""

from __future__ import annotations

from django.core.exceptions import ValidationError

from core.api.exceptions import exception_handler


def test_a_model_validation_error_is_a_400_naming_each_field():
    exc = ValidationError({"birth_date": ["请填写出生日期。"], "gender": ["请选择性别。"]})
    response = exception_handler(exc, {})
    assert response.status_code == 400
    assert response.data == {"birth_date": ["请填写出生日期。"], "gender": ["请选择性别。"]}


def test_a_validation_error_without_fields_is_a_non_field_error():
    response = exception_handler(ValidationError("记录已锁定。"), {})
    assert response.status_code == 400
    assert response.data == {"non_field_errors": ["记录已锁定。"]}
