from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.models import Permission
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.utils.formats import date_format
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import mfa, selectors, services
from accounts.forms import (
    ERR_MFA_CODE,
    AccountRequestRejectForm,
    ApiKeyRequestForm,
    BreakGlassForm,
    OtpCodeForm,
    PasswordChangeForm,
    StaffChangeForm,
    StaffCreateForm,
    StaffFilterForm,
)
from accounts.middleware import refresh_epoch
from accounts.models import AccountRequest, AccountRequestKind, StaffProfile
from accounts.permissions import role_required
from accounts.roles import Role, home_url_for, role_of
from audit.models import AuditEvent
from audit.services import audit_record
from core.errors import DomainError

ADMIN = Role.ADMIN
SECURITY = Role.SECURITY_ADMIN
HEALTH_ROLES = (Role.TOWNSHIP_DOCTOR, Role.HOSPITAL_DOCTOR, Role.PREVENTION_STAFF)
PAGE_SIZE = 50

MSG_SAVED = _("已保存。")
MSG_PASSWORD_CHANGED = _("密码已修改。")
MSG_CHANGE_REQUESTED = _("已提交申请，经安全管理员授权后生效。")
MSG_REQUEST_APPROVED = _("已授权，变更已生效。")
MSG_REQUEST_REJECTED = _("已驳回该申请。")
MSG_DEACTIVATED = _("账号已停用，其登录会话已失效。")
MSG_REACTIVATED = _("账号已启用。")
MSG_MFA_RESET = _("已清除该用户的动态验证码设备，其下次登录时须重新绑定。")
MSG_UNLOCKED = _("已解除锁定。")
MSG_KEY_REVOKED = _("接口密钥已吊销。")
MSG_KEY_REQUESTED = _("已提交密钥申请，待系统管理员批准后由领取人领取。")
MSG_KEY_APPROVED = _("已批准，领取人登录后可领取密钥。")
MSG_KEY_REJECTED = _("已驳回该密钥申请。")
MSG_BREAKGLASS_GRANTED = _(
    "已开启紧急访问，有效期至 %(until)s。每次查看都会被记录并由审计管理员审核。"
)
MSG_BREAKGLASS_IN_SCOPE = _("该患者在您的管辖范围内，无需紧急访问。")

# What the history reason codes of a staff profile (accounts.services) mean.
STAFF_HISTORY_LABELS = {
    "staff.created": pgettext_lazy("staff history", "创建账号"),
    "staff.changed": pgettext_lazy("staff history", "调整机构或角色"),
    "staff.deactivated": pgettext_lazy("staff history", "停用账号"),
    "staff.reactivated": pgettext_lazy("staff history", "启用账号"),
    "staff.password_changed": pgettext_lazy("staff history", "本人修改密码"),
    "staff.password_reset": pgettext_lazy("staff history", "重置密码"),
    "staff.mfa_reset": pgettext_lazy("staff history", "重置动态验证码"),
}


def _add_errors(form, exc) -> None:
    """Attach a DomainError or a password ValidationError to the form."""
    if isinstance(exc, DomainError):
        field = exc.field if exc.field in form.fields else None
        form.add_error(field, exc.message)
    else:
        field = "password1" if "password1" in form.fields else None
        form.add_error(field, exc)


def _next_url(request, default: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return default


def _reverse_or_none(name: str, *args) -> str | None:
    try:
        return reverse(name, args=args)
    except NoReverseMatch:
        return None


# --- sign-in -----------------------------------------------------------------------


@method_decorator(login_not_required, name="dispatch")
class LoginView(auth_views.LoginView):
    """Password step. Unknown user, wrong password and disabled account all
    get the same answer; five failures lock the username (django-axes)."""

    template_name = "accounts/login.html"
    redirect_authenticated_user = True


@require_GET
def no_role(request):
    """An account without a role (or with two) reaches nothing."""
    return render(request, "accounts/no_role.html", status=403)


@require_http_methods(["GET", "POST"])
def password_change(request):
    """Change one's own password (required when due or after a reset)."""
    form = PasswordChangeForm(request.POST or None, user=request.user)
    if form.is_bound and form.is_valid():
        try:
            services.staff_set_password(
                user=request.user, password=form.cleaned_data["password1"], by=request.user
            )
        except (DomainError, ValidationError) as exc:
            _add_errors(form, exc)
        else:
            update_session_auth_hash(request, request.user)
            refresh_epoch(request, request.user)
            messages.success(request, MSG_PASSWORD_CHANGED)
            return redirect(_next_url(request, home_url_for(request.user)))
    return render(
        request,
        "accounts/password_change.html",
        {"form": form, "next": _next_url(request, "")},
    )


@require_http_methods(["GET", "POST"])
def mfa_setup(request):
    """Enrol a TOTP authenticator: scan the QR code, confirm with a code."""
    user = request.user
    if mfa.has_confirmed_device(user):
        return redirect(reverse("accounts:mfa-verify") + _query_next(request))
    device = mfa.device_for_enrolment(user)
    form = OtpCodeForm(request.POST or None)
    if form.is_bound and form.is_valid():
        code = form.cleaned_data["code"].strip()
        if code.isdigit() and device.verify_token(code):
            device.confirmed = True
            device.save(update_fields=["confirmed"])
            otp_login(request, device)
            request.session.cycle_key()
            audit_record(
                actor=user,
                action="auth.mfa_enrolled",
                object_type="user",
                object_id=user.pk,
                request=request,
            )
            return redirect(_next_url(request, home_url_for(user)))
        audit_record(
            actor=user,
            action="auth.mfa_failed",
            object_type="user",
            object_id=user.pk,
            request=request,
        )
        form.add_error("code", ERR_MFA_CODE)
    return render(
        request,
        "accounts/mfa_setup.html",
        {
            "form": form,
            "qr": mfa.qr_data_uri(device.config_url),
            "secret": mfa.secret_base32(device),
            "otpauth": device.config_url,
            "next": _next_url(request, ""),
        },
    )


@require_http_methods(["GET", "POST"])
def mfa_verify(request):
    """The second step of signing in: the code from the authenticator."""
    user = request.user
    if not mfa.needs_second_factor(user):
        return redirect(_next_url(request, home_url_for(user)))
    if not mfa.has_confirmed_device(user):
        return redirect(reverse("accounts:mfa-setup") + _query_next(request))
    form = OtpCodeForm(request.POST or None)
    if form.is_bound and form.is_valid():
        device = mfa.verify_code(user, form.cleaned_data["code"])
        if device is not None:
            otp_login(request, device)
            request.session.cycle_key()
            audit_record(
                actor=user,
                action="auth.mfa_verified",
                object_type="user",
                object_id=user.pk,
                request=request,
            )
            return redirect(_next_url(request, home_url_for(user)))
        audit_record(
            actor=user,
            action="auth.mfa_failed",
            object_type="user",
            object_id=user.pk,
            request=request,
        )
        form.add_error("code", ERR_MFA_CODE)
    return render(
        request, "accounts/mfa_verify.html", {"form": form, "next": _next_url(request, "")}
    )


def _query_next(request) -> str:
    target = _next_url(request, "")
    if not target:
        return ""
    return "?" + urlencode({"next": target})


# --- account management (system admin; security admin reads) -----------------------


@require_GET
@role_required(ADMIN, SECURITY)
def staff_list(request):
    organisations = selectors.organisations_managed_by(request.user)
    form = StaffFilterForm(request.GET or None, organisations=organisations)
    filters = form.cleaned_data if form.is_valid() else {}
    qs = selectors.staff_list_for(
        request.user,
        search=filters.get("q") or "",
        organisation_id=filters["organisation"].pk if filters.get("organisation") else None,
        active=filters.get("active"),
    )
    page = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
    rows = [(u, Role(u.role).label if u.role else "") for u in page.object_list]
    role = role_of(request.user)
    return render(
        request,
        "accounts/staff_list.html",
        {
            "form": form,
            "page": page,
            "rows": rows,
            "can_create": role == ADMIN,
            "can_approve": role == ADMIN,
            "is_security_admin": role == SECURITY,
            "query": _query_without_page(request),
        },
    )


def _query_without_page(request) -> str:
    params = request.GET.copy()
    params.pop("page", None)
    return params.urlencode()


def _staff_detail_context(request, target, **forms):
    role = role_of(request.user)
    own = target.pk == request.user.pk
    organisations = selectors.organisations_managed_by(request.user)
    history = list(
        StaffProfile.history.filter(user_id=target.pk)
        .select_related("history_user", "organisation")
        .order_by("-history_date")[:20]
    )
    for record in history:
        reason = record.history_change_reason or ""
        record.reason_label = STAFF_HISTORY_LABELS.get(reason, reason or "—")
    events = AuditEvent.objects.filter(object_type="user", object_id=str(target.pk)).order_by(
        "-id"
    )[:20]
    export_perm = Permission.objects.filter(
        content_type__app_label="accounts", codename="export_data"
    )
    context = {
        "target": target,
        "target_role": Role(target.role).label if target.role else "",
        "profile": target.staff,
        "history": history,
        "events": events,
        "can_manage": role == ADMIN and not own,
        "can_security": role == SECURITY and not own,
        "has_device": TOTPDevice.objects.filter(user=target, confirmed=True).exists(),
        "export_allowed": target.user_permissions.filter(pk__in=export_perm).exists(),
        "locked": selectors.lockout_list_for(request.user)
        .filter(username=target.username)
        .exists(),
        "change_form": forms.get("change_form")
        or StaffChangeForm(
            organisations=organisations,
            initial={"organisation": target.staff.organisation_id, "role": target.role},
        ),
        "pending_request": target.account_requests.filter(status="pending")
        .select_related("organisation", "requested_by")
        .first(),
    }
    return context


@require_GET
@role_required(ADMIN, SECURITY)
def staff_detail(request, pk):
    target = selectors.staff_get_for(request.user, pk)
    return render(request, "accounts/staff_detail.html", _staff_detail_context(request, target))


def _half_page(request, req: AccountRequest, half: str, *, approver: bool):
    """The half of an initial password this person hands over, shown once."""
    return render(
        request,
        "accounts/account_request_half.html",
        {"req": req, "half": half, "approver": approver},
    )


@require_http_methods(["GET", "POST"])
@role_required(ADMIN)
def staff_create(request):
    """The system admin asks for a new account; a security admin authorises
    it (two-person rule, SECURITY.md G4)."""
    form = StaffCreateForm(
        request.POST or None, organisations=selectors.organisations_managed_by(request.user)
    )
    if form.is_bound and form.is_valid():
        data = form.cleaned_data
        try:
            req, half = services.account_request_create(
                username=data["username"],
                organisation=data["organisation"],
                role=data["role"],
                display_name=data["display_name"],
                by=request.user,
            )
        except DomainError as exc:
            _add_errors(form, exc)
        else:
            return _half_page(request, req, half, approver=False)
    return render(request, "accounts/staff_create.html", {"form": form})


@require_POST
@role_required(ADMIN)
def staff_change(request, pk):
    target = selectors.staff_get_for(request.user, pk)
    form = StaffChangeForm(
        request.POST, organisations=selectors.organisations_managed_by(request.user)
    )
    if form.is_valid():
        try:
            services.account_request_change(
                user=target,
                organisation=form.cleaned_data["organisation"],
                role=form.cleaned_data["role"],
                by=request.user,
            )
        except DomainError as exc:
            if exc.field not in form.fields:
                messages.error(request, exc.message)
                return redirect("accounts:staff-detail", pk=target.pk)
            _add_errors(form, exc)
        else:
            messages.success(request, MSG_CHANGE_REQUESTED)
            return redirect("accounts:staff-detail", pk=target.pk)
    context = _staff_detail_context(request, target, change_form=form)
    return render(request, "accounts/staff_detail.html", context, status=400)


@require_http_methods(["GET", "POST"])
@role_required(ADMIN)
def staff_password_reset(request, pk):
    """GET asks; POST requests a new password: the system admin gets its
    first half now, the security admin the second when authorising."""
    target = selectors.staff_get_for(request.user, pk)
    detail = reverse("accounts:staff-detail", args=[target.pk])
    if request.method != "POST":
        return _confirm(
            request,
            title=_("申请重置密码"),
            text=_(
                "将为账号 %(name)s 申请新的初始密码：您会看到前半段，安全管理员授权时看到后半段，"
                "两段交给本人后，本人登录时须立即修改。确认申请吗？"
            )
            % {"name": target.username},
            button=_("确认申请"),
            cancel_url=detail,
            danger=False,
        )
    try:
        req, half = services.account_request_password_reset(user=target, by=request.user)
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect(detail)
    return _half_page(request, req, half, approver=False)


def _confirm(request, *, title, text, button, cancel_url, danger=True, status=200):
    return render(
        request,
        "accounts/confirm.html",
        {
            "title": title,
            "text": text,
            "button": button,
            "cancel_url": cancel_url,
            "danger": danger,
        },
        status=status,
    )


def _run(request, action, *, success, redirect_to):
    try:
        action()
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, success)
    return redirect(redirect_to)


@require_http_methods(["GET", "POST"])
@role_required(ADMIN)
def staff_deactivate(request, pk):
    """GET asks for confirmation; POST disables the account."""
    target = selectors.staff_get_for(request.user, pk)
    detail = reverse("accounts:staff-detail", args=[target.pk])
    if request.method != "POST":
        return _confirm(
            request,
            title=_("停用账号"),
            text=_("停用后该账号将无法登录，其现有会话立即失效。账号 %(name)s 确认停用吗？")
            % {"name": target.username},
            button=_("确认停用"),
            cancel_url=detail,
        )
    return _run(
        request,
        lambda: services.staff_deactivate(user=target, by=request.user),
        success=MSG_DEACTIVATED,
        redirect_to=detail,
    )


@require_POST
@role_required(ADMIN)
def staff_reactivate(request, pk):
    target = selectors.staff_get_for(request.user, pk)
    return _run(
        request,
        lambda: services.staff_reactivate(user=target, by=request.user),
        success=MSG_REACTIVATED,
        redirect_to=reverse("accounts:staff-detail", args=[target.pk]),
    )


@require_POST
@role_required(ADMIN)
def staff_export(request, pk):
    target = selectors.staff_get_for(request.user, pk)
    allowed = request.POST.get("allowed") == "1"
    return _run(
        request,
        lambda: services.staff_set_export(user=target, allowed=allowed, by=request.user),
        success=MSG_SAVED,
        redirect_to=reverse("accounts:staff-detail", args=[target.pk]),
    )


@require_http_methods(["GET", "POST"])
@role_required(SECURITY)
def staff_mfa_reset(request, pk):
    target = selectors.staff_get_for(request.user, pk)
    detail = reverse("accounts:staff-detail", args=[target.pk])
    if request.method != "POST":
        return _confirm(
            request,
            title=_("重置动态验证码"),
            text=_(
                "将删除账号 %(name)s 已绑定的验证器，其会话立即失效，下次登录须重新绑定。确认吗？"
            )
            % {"name": target.username},
            button=_("确认重置"),
            cancel_url=detail,
        )
    return _run(
        request,
        lambda: services.staff_reset_mfa(user=target, by=request.user),
        success=MSG_MFA_RESET,
        redirect_to=detail,
    )


# --- two-person rule: account requests ----------------------------------------------


@require_GET
@role_required(ADMIN, SECURITY)
def account_request_list(request):
    """The queue: the security admin authorises or rejects the system
    admin's requests; the system admin follows their status."""
    page = Paginator(selectors.account_request_list_for(request.user), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    role = role_of(request.user)
    rows = [(r, Role(r.role).label if r.role else "") for r in page.object_list]
    return render(
        request,
        "accounts/account_request_list.html",
        {
            "page": page,
            "rows": rows,
            "query": "",
            "is_security_admin": role == SECURITY,
            "can_approve": role == ADMIN,
        },
    )


def _request_summary(req: AccountRequest) -> str:
    if req.kind == AccountRequestKind.PASSWORD_RESET:
        return _("为账号 %(username)s 重置密码") % {"username": req.username}
    values = {
        "username": req.username,
        "organisation": req.organisation.name,
        "role": Role(req.role).label,
    }
    if req.kind == AccountRequestKind.CREATE:
        return _("新建账号 %(username)s（%(organisation)s · %(role)s）") % values
    return _("将账号 %(username)s 调整为 %(organisation)s · %(role)s") % values


@require_http_methods(["GET", "POST"])
@role_required(SECURITY)
def account_request_approve(request, pk):
    """GET asks; POST authorises. A new account or a reset shows the
    second half of the initial password, once."""
    req = selectors.account_request_get_for(request.user, pk)
    back = reverse("accounts:account-request-list")
    if request.method != "POST":
        return _confirm(
            request,
            title=_("授权申请"),
            text=_("%(summary)s，申请人 %(requester)s。授权后立即生效。确认授权吗？")
            % {
                "summary": _request_summary(req),
                "requester": req.requested_by.get_username() if req.requested_by else "—",
            },
            button=_("确认授权"),
            cancel_url=back,
            danger=False,
        )
    try:
        req, half = services.account_request_approve(req=req, by=request.user)
    except (DomainError, ValidationError) as exc:
        messages.error(request, exc.message if isinstance(exc, DomainError) else exc.messages[0])
        return redirect(back)
    if half:
        return _half_page(request, req, half, approver=True)
    messages.success(request, MSG_REQUEST_APPROVED)
    return redirect(back)


@require_http_methods(["GET", "POST"])
@role_required(SECURITY)
def account_request_reject(request, pk):
    """GET shows the form; POST rejects with a reason."""
    req = selectors.account_request_get_for(request.user, pk)
    back = reverse("accounts:account-request-list")
    form = AccountRequestRejectForm(request.POST or None)
    if form.is_bound and form.is_valid():
        try:
            services.account_request_reject(
                req=req, by=request.user, reason=form.cleaned_data["reason"]
            )
        except DomainError as exc:
            if exc.field not in form.fields:
                messages.error(request, exc.message)
                return redirect(back)
            _add_errors(form, exc)
        else:
            messages.success(request, MSG_REQUEST_REJECTED)
            return redirect(back)
    return render(
        request,
        "accounts/account_request_reject.html",
        {"form": form, "req": req, "summary": _request_summary(req), "cancel_url": back},
    )


# --- security admin: lockouts and partner keys ---------------------------------------


@require_GET
@role_required(SECURITY)
def lockout_list(request):
    rows = list(selectors.lockout_list_for(request.user))
    return render(request, "accounts/lockout_list.html", {"rows": rows})


@require_POST
@role_required(SECURITY)
def lockout_release(request):
    username = request.POST.get("username", "")
    if not selectors.lockout_list_for(request.user).filter(username=username).exists():
        raise Http404
    services.lockout_release(username=username, by=request.user)
    messages.success(request, MSG_UNLOCKED)
    return redirect("accounts:lockout-list")


def _custodian_for(username: str):
    """The account a request names as custodian (the service checks it)."""
    from django.contrib.auth import get_user_model

    return (
        get_user_model()
        .objects.select_related("staff")
        .filter(username=(username or "").strip())
        .first()
    )


@require_http_methods(["GET", "POST"])
@role_required(SECURITY, ADMIN)
def apikey_list(request):
    """Partner keys: the security admin requests them (naming a custodian),
    the system admin approves or rejects them; neither ever sees a secret."""
    organisations = selectors.organisations_managed_by(request.user)
    is_security_admin = role_of(request.user) == SECURITY
    if request.method == "POST" and not is_security_admin:
        raise PermissionDenied
    form = ApiKeyRequestForm(request.POST or None, organisations=organisations)
    if form.is_bound and form.is_valid():
        data = form.cleaned_data
        try:
            services.apikey_request(
                name=data["name"],
                organisation=data["organisation"],
                role=data["role"],
                custodian=_custodian_for(data["custodian"]),
                by=request.user,
            )
        except DomainError as exc:
            _add_errors(form, exc)
        else:
            messages.success(request, MSG_KEY_REQUESTED)
            return redirect("accounts:apikey-list")
    page = Paginator(selectors.apikey_list_for(request.user), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    rows = [(k, Role(k.role).label if k.role else "") for k in page.object_list]
    status = 400 if form.is_bound else 200
    return render(
        request,
        "accounts/apikey_list.html",
        {
            "form": form if is_security_admin else None,
            "page": page,
            "rows": rows,
            "query": "",
            "is_security_admin": is_security_admin,
            "can_approve": role_of(request.user) == ADMIN,
        },
        status=status,
    )


def _apikey_decision(request, pk, *, approve: bool):
    api_key = selectors.apikey_get_for(request.user, pk)
    back = reverse("accounts:apikey-list")
    if request.method != "POST":
        custodian = api_key.custodian.get_username() if api_key.custodian else "—"
        if approve:
            text = _(
                "批准后，领取人 %(custodian)s 登录后可领取密钥“%(name)s”；"
                "密钥只向领取人显示一次，您不会看到它。确认批准吗？"
            )
        else:
            text = _("驳回后，密钥“%(name)s”不会生效。确认驳回吗？")
        return _confirm(
            request,
            title=_("批准接口密钥") if approve else _("驳回接口密钥"),
            text=text % {"name": api_key.name, "custodian": custodian},
            button=_("确认批准") if approve else _("确认驳回"),
            cancel_url=back,
            danger=not approve,
        )
    action = services.apikey_approve if approve else services.apikey_reject
    return _run(
        request,
        lambda: action(api_key=api_key, by=request.user),
        success=MSG_KEY_APPROVED if approve else MSG_KEY_REJECTED,
        redirect_to=back,
    )


@require_http_methods(["GET", "POST"])
@role_required(ADMIN)
def apikey_approve(request, pk):
    return _apikey_decision(request, pk, approve=True)


@require_http_methods(["GET", "POST"])
@role_required(ADMIN)
def apikey_reject(request, pk):
    return _apikey_decision(request, pk, approve=False)


def _not_admin_class(request) -> None:
    """Keys are never held by the 三员 (SECURITY.md G4)."""
    if mfa.is_admin_class(request.user):
        raise PermissionDenied


@require_GET
def apikey_mine(request):
    """The keys this user is custodian of: approved ones to collect, and
    the ones collected."""
    _not_admin_class(request)
    rows = [
        (k, Role(k.role).label if k.role else "")
        for k in selectors.apikey_list_of_custodian(request.user)[:PAGE_SIZE]
    ]
    return render(request, "accounts/apikey_mine.html", {"rows": rows})


@require_http_methods(["GET", "POST"])
def apikey_collect(request, pk):
    """GET asks; POST makes the secret and shows it this once."""
    _not_admin_class(request)
    api_key = selectors.apikey_get_to_collect(request.user, pk)
    if request.method != "POST":
        return _confirm(
            request,
            title=_("领取接口密钥"),
            text=_(
                "密钥“%(name)s”只显示这一次，系统只保存其摘要。请准备好安全地"
                "交给对方系统的保管位置后再领取。"
            )
            % {"name": api_key.name},
            button=_("领取并显示密钥"),
            cancel_url=reverse("accounts:apikey-mine"),
            danger=False,
        )
    try:
        api_key, key = services.apikey_collect(api_key=api_key, by=request.user)
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect("accounts:apikey-mine")
    # Shown once: only the hash is kept (the page is not cached: no-store).
    return render(request, "accounts/apikey_created.html", {"api_key": api_key, "key": key})


@require_http_methods(["GET", "POST"])
@role_required(SECURITY)
def apikey_revoke(request, pk):
    api_key = selectors.apikey_get_for(request.user, pk)
    back = reverse("accounts:apikey-list")
    if request.method != "POST":
        return _confirm(
            request,
            title=_("吊销接口密钥"),
            text=_("吊销后使用密钥“%(name)s”的系统将立即无法访问。确认吊销吗？")
            % {"name": api_key.name},
            button=_("确认吊销"),
            cancel_url=back,
        )
    return _run(
        request,
        lambda: services.apikey_revoke(api_key=api_key, by=request.user),
        success=MSG_KEY_REVOKED,
        redirect_to=back,
    )


# --- break the glass ---------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@role_required(*HEALTH_ROLES)
def breakglass_request(request):
    """Ask for 3 hours of read access to a patient outside one's scope."""
    form = BreakGlassForm(request.POST or None)
    if form.is_bound and form.is_valid():
        data = form.cleaned_data
        try:
            grant = services.breakglass_request(
                by=request.user,
                id_type=data["id_type"],
                id_number=data["id_number"],
                reason=data["reason"],
                request=request,
            )
        except DomainError as exc:
            _add_errors(form, exc)
        else:
            if grant is None:
                messages.info(request, MSG_BREAKGLASS_IN_SCOPE)
                return redirect("accounts:breakglass-request")
            until = date_format(timezone.localtime(grant.expires_at), "Y-m-d H:i")
            messages.warning(request, MSG_BREAKGLASS_GRANTED % {"until": until})
            return redirect(
                _reverse_or_none("patients:detail", grant.patient_id)
                or reverse("accounts:breakglass-request")
            )
    grants = list(selectors.breakglass_list_of(request.user)[:20])
    rows = [(g, _reverse_or_none("patients:detail", g.patient_id)) for g in grants]
    return render(request, "accounts/breakglass_request.html", {"form": form, "rows": rows})
