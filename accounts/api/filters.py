"""Filters of the region and organisation lists."""

from __future__ import annotations

import django_filters
from django.utils.translation import gettext_lazy as _

from accounts.models import Department, Organisation, OrganisationKind, Region, RegionLevel


def inside_region(queryset, code: str, *, path_field: str = "region__path"):
    """Rows whose region lies inside region ``code``, at any level below it
    (materialised path). An unknown code matches nothing, like any filter value
    that no row has."""
    path = Region.objects.filter(code=code).values_list("path", flat=True).first()
    if path is None:
        return queryset.none()
    return queryset.filter(**{f"{path_field}__startswith": path})


class RegionFilter(django_filters.FilterSet):
    parent = django_filters.CharFilter(field_name="parent_id", label=_("上级区划代码"))
    level = django_filters.ChoiceFilter(choices=RegionLevel.choices, label=_("级别"))

    class Meta:
        model = Region
        fields: list[str] = []


class OrganisationFilter(django_filters.FilterSet):
    department = django_filters.ChoiceFilter(choices=Department.choices, label=_("部门"))
    kind = django_filters.ChoiceFilter(choices=OrganisationKind.choices, label=_("类型"))
    region = django_filters.CharFilter(method="filter_region", label=_("区划代码（含下级）"))

    class Meta:
        model = Organisation
        fields: list[str] = []

    def filter_region(self, queryset, name, value):
        return inside_region(queryset, value)
