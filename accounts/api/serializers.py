"""Serializers of the accounts API: sign-in tokens, regions, organisations."""

from __future__ import annotations

from rest_framework import serializers

from accounts.models import Organisation, Region


class TokenRequestSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(
        max_length=128, trim_whitespace=False, write_only=True, style={"input_type": "password"}
    )
    # The TOTP code, required for admin roles and for everyone when MFA_REQUIRED.
    otp = serializers.CharField(max_length=10, required=False, allow_blank=True, write_only=True)


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField(read_only=True)


class RegionSerializer(serializers.ModelSerializer):
    parent = serializers.CharField(source="parent_id", read_only=True, allow_null=True)

    class Meta:
        model = Region
        fields = ("code", "name", "level", "parent", "population")
        read_only_fields = fields


class OrganisationSerializer(serializers.ModelSerializer):
    region = serializers.CharField(source="region_id", read_only=True)

    class Meta:
        model = Organisation
        fields = ("id", "name", "department", "kind", "region")
        read_only_fields = fields
