"""Forms of the reports app."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from accounts.models import Region
from reports.rules import INDICATORS

TARGET_INDICATOR_CHOICES = [(i.key, i.label) for i in INDICATORS if i.higher_is_better is not None]


class TargetForm(forms.Form):
    """One target (indicator, region, year, value); the service checks who may
    set it and its range."""

    indicator = forms.ChoiceField(label=_("指标"), choices=TARGET_INDICATOR_CHOICES)
    region = forms.ModelChoiceField(label=_("行政区划"), queryset=Region.objects.none())
    year = forms.IntegerField(label=_("年度"), min_value=2000, max_value=2100)
    value = forms.DecimalField(label=_("目标值"), max_digits=7, decimal_places=2)
    source = forms.CharField(label=_("依据"), max_length=200, required=False)

    def __init__(self, *args, regions: list[Region], **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields["region"]
        field.queryset = Region.objects.filter(code__in=[r.code for r in regions]).order_by("path")
        field.label_from_instance = lambda r: f"{r.name}（{r.code}）"
