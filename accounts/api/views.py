"""Sign-in tokens (API.md → auth), regions and organisations."""

from __future__ import annotations

from axes.helpers import get_cool_off
from axes.utils import reset as axes_reset
from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.models import update_last_login
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import JSONParser
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.filters import OrganisationFilter, RegionFilter
from accounts.api.serializers import (
    OrganisationSerializer,
    RegionSerializer,
    TokenRequestSerializer,
    TokenSerializer,
)
from accounts.authentication import token_issue
from accounts.mfa import verify_for_token
from accounts.selectors import organisation_list, region_list
from audit.services import audit_record
from core.api.exceptions import Locked
from core.api.schema import error_response

# One message for an unknown user, a wrong password and an inactive account:
# the answer must not tell which (no user enumeration, SECURITY.md G9).
ERR_CREDENTIALS = _("用户名或密码错误。")
ERR_LOCKED = _("登录失败次数过多，该账号已被暂时锁定。如需提前解锁，请联系安全管理员。")
ERR_OTP = _("需要有效的动态验证码（otp）：请先在网页上绑定身份验证器，再填写其当前显示的6位数字。")


class AuthTokenView(APIView):
    """Exchange a username and password for an API token.

    ``authenticate`` gets the request so django-axes counts failures and
    refuses a locked account (5 failures → locked for AXES_COOLOFF_TIME).
    """

    authentication_classes: list = []
    permission_classes = [AllowAny]
    parser_classes = [JSONParser]

    @extend_schema(
        summary=_("获取 API 令牌"),
        description=_(
            "用户名和密码换取令牌，之后的请求带 Authorization: Token <令牌>。"
            "用户名或密码错误返回 400；连续失败5次账号被锁定，返回 429。"
        ),
        request=TokenRequestSerializer,
        responses={200: TokenSerializer, 429: error_response(ERR_LOCKED)},
        auth=[],
    )
    def post(self, request, *args, **kwargs):
        serializer = TokenRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = authenticate(
            request=request,
            username=serializer.validated_data["username"],
            password=serializer.validated_data["password"],
        )
        # Axes flags the request when this failure reached the limit or the
        # account was already locked (then even the right password fails).
        if getattr(request, "axes_locked_out", False):
            locked = Locked(ERR_LOCKED)
            cool_off = get_cool_off(request)
            if cool_off:  # DRF turns ``wait`` into a Retry-After header
                locked.wait = int(cool_off.total_seconds())
            raise locked
        if user is None:
            raise ValidationError({"non_field_errors": [ERR_CREDENTIALS]}, code="authorization")
        if not verify_for_token(user, serializer.validated_data.get("otp")):
            audit_record(
                actor=user,
                action="auth.token_otp_failed",
                object_type="user",
                object_id=user.pk,
                request=request,
            )
            raise ValidationError({"otp": [ERR_OTP]}, code="authorization")
        # the current token while it is valid, else a new one (12 h, idle timeout)
        token = token_issue(user)
        # A token is a sign-in, but not a session: clear the failure count
        # and set last_login here rather than sending ``user_logged_in``,
        # whose receivers stamp a browser session.
        if settings.AXES_ENABLED and settings.AXES_RESET_ON_SUCCESS:
            axes_reset(username=user.get_username())
        update_last_login(None, user)
        audit_record(
            actor=user, action="auth.token", object_type="user", object_id=user.pk, request=request
        )
        return Response(TokenSerializer({"token": token.key}).data)


@extend_schema_view(
    list=extend_schema(summary=_("行政区划列表")),
    retrieve=extend_schema(summary=_("行政区划")),
)
class RegionViewSet(viewsets.ReadOnlyModelViewSet):
    """Administrative divisions, for any signed-in user."""

    serializer_class = RegionSerializer
    filterset_class = RegionFilter
    lookup_field = "code"
    lookup_value_regex = "[^/]+"  # a malformed code is a JSON 404, not Django's page

    def get_queryset(self):
        return region_list().order_by("code")


@extend_schema_view(
    list=extend_schema(summary=_("机构列表")),
    retrieve=extend_schema(summary=_("机构")),
)
class OrganisationViewSet(viewsets.ReadOnlyModelViewSet):
    """Active organisations of every department, for any signed-in user."""

    serializer_class = OrganisationSerializer
    filterset_class = OrganisationFilter
    lookup_value_regex = "[^/]+"  # a malformed id is a JSON 404, not Django's page

    def get_queryset(self):
        return organisation_list().order_by("region_id", "department", "name", "id")
