from __future__ import annotations

from django import forms
from django.core.validators import RegexValidator
from django.utils.translation import gettext_lazy as _

from accounts.models import Organisation
from accounts.roles import ROLE_INFO, Role
from patients.models import IdType

ERR_PASSWORD_MISMATCH = _("两次输入的密码不一致。")
ERR_OLD_PASSWORD = _("原密码不正确。")
ERR_MFA_CODE = _("验证码不正确或已过期，请重新输入。")

USERNAME_VALIDATOR = RegexValidator(
    r"^[A-Za-z0-9_.-]{3,30}$", _("用户名为3至30位字母、数字或 _ . -。")
)


class OrganisationChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Organisation) -> str:
        return f"{obj.region.name} · {obj.name}"


def _role_choices(*, include_admin_class: bool = True):
    return [
        (code, label)
        for code, label in Role.choices
        if include_admin_class or not ROLE_INFO[code].admin_class
    ]


class NewPasswordMixin(forms.Form):
    password1 = forms.CharField(
        label=_("新密码"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=_(
            "12至128位，包含大写字母、小写字母、数字、符号中的至少三类；"
            "不能是常见密码，不能与最近5次用过的密码相同。"
        ),
    )
    password2 = forms.CharField(
        label=_("再次输入新密码"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def clean(self):
        data = super().clean()
        if data.get("password1") and data.get("password1") != data.get("password2"):
            self.add_error("password2", ERR_PASSWORD_MISMATCH)
        return data


class StaffCreateForm(forms.Form):
    """A request for a new account: no password here, the system makes the
    initial one in two halves (accounts.services.account_request_create)."""

    username = forms.CharField(label=_("用户名"), max_length=30, validators=[USERNAME_VALIDATOR])
    display_name = forms.CharField(label=_("姓名"), max_length=50)
    organisation = OrganisationChoiceField(label=_("机构"), queryset=Organisation.objects.none())
    role = forms.ChoiceField(label=_("角色"), choices=Role.choices)

    def __init__(self, *args, organisations, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["organisation"].queryset = organisations


class StaffChangeForm(forms.Form):
    organisation = OrganisationChoiceField(label=_("机构"), queryset=Organisation.objects.none())
    role = forms.ChoiceField(label=_("角色"), choices=Role.choices)

    def __init__(self, *args, organisations, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["organisation"].queryset = organisations


class PasswordChangeForm(NewPasswordMixin):
    old_password = forms.CharField(
        label=_("原密码"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )
    field_order = ["old_password", "password1", "password2"]

    def __init__(self, *args, user, **kwargs):
        self.user = user
        super().__init__(*args, **kwargs)

    def clean_old_password(self):
        value = self.cleaned_data["old_password"]
        if not self.user.check_password(value):
            raise forms.ValidationError(ERR_OLD_PASSWORD)
        return value


class StaffFilterForm(forms.Form):
    q = forms.CharField(label=_("用户名或姓名"), required=False)
    organisation = OrganisationChoiceField(
        label=_("机构"), queryset=Organisation.objects.none(), required=False
    )
    active = forms.TypedChoiceField(
        label=_("状态"),
        required=False,
        choices=[("", _("全部")), ("1", _("启用")), ("0", _("停用"))],
        coerce=lambda v: v == "1",
        empty_value=None,
    )

    def __init__(self, *args, organisations, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["organisation"].queryset = organisations


class OtpCodeForm(forms.Form):
    code = forms.CharField(
        label=_("动态验证码"),
        max_length=8,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}
        ),
    )


class ApiKeyRequestForm(forms.Form):
    name = forms.CharField(label=_("名称"), max_length=100, help_text=_("例如“公安局重点人员系统”"))
    organisation = OrganisationChoiceField(label=_("机构"), queryset=Organisation.objects.none())
    role = forms.ChoiceField(label=_("角色"), choices=_role_choices(include_admin_class=False))
    custodian = forms.CharField(
        label=_("领取人用户名"),
        max_length=150,
        help_text=_(
            "该机构中担任该角色的工作人员（通常是对方系统的负责人）。"
            "系统管理员批准后，由其本人登录领取密钥。"
        ),
    )

    def __init__(self, *args, organisations, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["organisation"].queryset = organisations


class BreakGlassForm(forms.Form):
    id_type = forms.ChoiceField(label=_("证件类型"), choices=IdType.choices)
    id_number = forms.CharField(label=_("证件号码"), max_length=32)
    reason = forms.CharField(
        label=_("理由"),
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_(
            "写明为何需要查看辖区外患者的档案（如急诊、转诊接收）。理由将由审计管理员审核。"
        ),
    )


class ReviewForm(forms.Form):
    note = forms.CharField(label=_("审核意见"), max_length=200, required=False)


class AccountRequestRejectForm(forms.Form):
    reason = forms.CharField(
        label=_("驳回理由"),
        max_length=200,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("申请人会看到这条理由。"),
    )
