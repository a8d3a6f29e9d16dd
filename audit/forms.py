from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

OBJECT_TYPES = [
    ("", _("全部")),
    ("patient", _("患者")),
    ("user", _("账号")),
    ("view", _("页面")),
    ("api_key", _("接口密钥")),
    ("break_glass", _("紧急访问")),
]


class EventFilterForm(forms.Form):
    actor = forms.CharField(label=_("账号"), required=False, max_length=150)
    action = forms.CharField(
        label=_("动作"),
        required=False,
        max_length=64,
        help_text=_("前缀匹配，如 auth. 或 patient.view"),
    )
    object_type = forms.ChoiceField(label=_("对象类型"), required=False, choices=OBJECT_TYPES)
    object_id = forms.CharField(label=_("对象"), required=False, max_length=64)
    date_from = forms.DateField(
        label=_("起始日期"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = forms.DateField(
        label=_("截止日期"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
