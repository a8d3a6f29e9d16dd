"""Filters of the patient list API (API.md → patients).

A filter reads a field; filtering by a field the caller's department cannot
see would reveal it through which rows come back (police filtering by
diagnosis), so such a filter is refused with 400 naming the parameter.
"""

from __future__ import annotations

import django_filters
from django.utils.translation import gettext_lazy as _

from accounts.api.filters import inside_region
from accounts.roles import fieldset_of
from patients.fieldsets import fields_for
from patients.models import Diagnosis, Patient, Status
from patients.selectors import overdue_q, patient_search

ERR_FILTER_NOT_ALLOWED = _("您的部门不能按此项筛选。")

# query parameter → the patient field whose visibility it needs
FILTER_FIELDS = {
    "region": "region",
    "status": "status",
    "risk_level__gte": "risk_level",
    "overdue": "overdue",
    "search": "name",
    "diagnosis": "diagnosis",
}


class PatientFilter(django_filters.FilterSet):
    region = django_filters.CharFilter(method="filter_region", label=_("区划代码（含下级）"))
    status = django_filters.ChoiceFilter(choices=Status.choices, label=_("管理状态"))
    risk_level__gte = django_filters.NumberFilter(
        field_name="risk_level", lookup_expr="gte", min_value=0, max_value=5, label=_("危险性≥")
    )
    overdue = django_filters.BooleanFilter(method="filter_overdue", label=_("逾期未随访"))
    search = django_filters.CharFilter(method="filter_search", label=_("姓名或证件号码"))
    diagnosis = django_filters.ChoiceFilter(choices=Diagnosis.choices, label=_("目前诊断"))

    class Meta:
        model = Patient
        fields: list[str] = []

    def __init__(self, data=None, queryset=None, *, request=None, prefix=None):
        super().__init__(data=data, queryset=queryset, request=request, prefix=prefix)
        visible = set(fields_for(fieldset_of(getattr(request, "user", None))))
        self.refused = sorted(
            param
            for param, field in FILTER_FIELDS.items()
            if field not in visible and (self.data.get(param) or "") != ""
        )

    def is_valid(self):
        valid = super().is_valid()
        for param in self.refused:
            self.form.add_error(param, ERR_FILTER_NOT_ALLOWED)
        return valid and not self.refused

    def filter_region(self, queryset, name, value):
        # any level; a region outside the caller's scope narrows, never widens
        return inside_region(queryset, value)

    def filter_overdue(self, queryset, name, value):
        return queryset.filter(overdue_q()) if value else queryset.exclude(overdue_q())

    def filter_search(self, queryset, name, value):
        return patient_search(queryset, value)
