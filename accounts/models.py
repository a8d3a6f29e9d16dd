"""Regions (administrative divisions), organisations, departments and staff."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from accounts import rules
from core.fields import EncryptedCharField


class RegionLevel(models.TextChoices):
    PROVINCE = "province", _("省")
    CITY = "city", _("市")
    COUNTY = "county", _("县")
    TOWNSHIP = "township", _("乡镇")
    VILLAGE = "village", _("村（居）")


# 6/9/12 digits by level; enforced by Region.clean() (accounts.rules).
LEVEL_CODE_LENGTH = {RegionLevel(level): n for level, n in rules.CODE_LENGTH.items()}


class Region(models.Model):
    """An administrative division (GB/T 2260 + statistical division codes).

    ``path`` is the materialised ancestor path, ``/990000/990100/990102/``:
    zero-padded division codes are not string prefixes of their children
    (990000 vs 990102), so "inside" is ``path LIKE ancestor.path || '%'``.
    """

    code = models.CharField(_("区划代码"), max_length=12, primary_key=True)
    name = models.CharField(_("名称"), max_length=64)
    level = models.CharField(_("级别"), max_length=10, choices=RegionLevel.choices)
    parent = models.ForeignKey(
        "self",
        verbose_name=_("上级"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="children",
    )
    path = models.CharField(_("路径"), max_length=80, unique=True, editable=False)
    population = models.PositiveIntegerField(_("常住人口"), null=True, blank=True)

    class Meta:
        verbose_name = _("行政区划")
        verbose_name_plural = _("行政区划")
        ordering = ["code"]
        permissions = [
            ("view_patients_in", _("查看辖区内患者")),
            ("manage_patients_in", _("登记和管理辖区内患者")),
            ("view_aggregates_in", _("查看辖区统计数据")),
        ]
        # path is unique, so Django also builds the varchar_pattern_ops index
        # that serves ``path LIKE 'prefix%'`` on PostgreSQL.

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs):
        self.path = self.compute_path()
        super().save(*args, **kwargs)

    def clean(self):
        """The code fits the level and the parent (accounts.rules)."""
        super().clean()
        if not self.code or not self.level:
            return  # the field validators name what is missing
        parent = self.parent if self.parent_id else None
        try:
            rules.check_region_code(
                self.code,
                self.level,
                parent.code if parent else None,
                parent.level if parent else None,
            )
        except rules.RegionCodeError as exc:
            raise ValidationError({exc.field: exc.message}) from exc

    def compute_path(self) -> str:
        base = self.parent.path if self.parent_id else "/"
        return f"{base}{self.code}/"

    @property
    def county_code(self) -> str | None:
        parts = [p for p in self.path.strip("/").split("/") if p]
        for code in parts:
            if len(code) == 6 and not code.endswith("00"):
                return code
        return None


class Department(models.TextChoices):
    HEALTH = "health", _("卫生健康")
    POLICE = "police", _("公安")
    GOVERNANCE = "governance", _("综治")
    CIVIL_AFFAIRS = "civil_affairs", _("民政")
    DISABLED_FEDERATION = "disabled_federation", _("残联")
    FINANCE = "finance", _("财政")


class OrganisationKind(models.TextChoices):
    HEALTH_CENTRE = "health_centre", _("乡镇卫生院/社区卫生服务中心")
    SPECIALIST_HOSPITAL = "specialist_hospital", _("精神专科医院")
    PREVENTION_AGENCY = "prevention_agency", _("精神卫生防治机构")
    HEALTH_BUREAU = "health_bureau", _("卫生健康局")
    POLICE_STATION = "police_station", _("派出所")
    POLICE_BUREAU = "police_bureau", _("公安局")
    GOVERNANCE_OFFICE = "governance_office", _("综治办")
    CIVIL_AFFAIRS_BUREAU = "civil_affairs_bureau", _("民政局")
    FEDERATION = "federation", _("残联")
    FINANCE_BUREAU = "finance_bureau", _("财政局")
    REHAB_INSTITUTION = "rehab_institution", _("社区康复机构")
    OTHER = "other", _("其他")


class Organisation(models.Model):
    """A unit of one department in one region; its region is its jurisdiction."""

    name = models.CharField(_("名称"), max_length=100)
    department = models.CharField(_("部门"), max_length=24, choices=Department.choices)
    kind = models.CharField(_("类型"), max_length=24, choices=OrganisationKind.choices)
    region = models.ForeignKey(
        Region, verbose_name=_("辖区"), on_delete=models.PROTECT, related_name="organisations"
    )
    phone = models.CharField(_("电话"), max_length=32, blank=True)
    is_active = models.BooleanField(_("启用"), default=True)
    history = HistoricalRecords()

    class Meta:
        verbose_name = _("机构")
        verbose_name_plural = _("机构")
        ordering = ["region_id", "department", "name"]
        constraints = [
            models.UniqueConstraint(fields=["region", "name"], name="organisation_unique_name")
        ]
        indexes = [models.Index(fields=["department", "region"], name="org_department_region")]

    def __str__(self) -> str:
        return self.name

    def clean(self):
        super().clean()
        if (
            self.kind
            and self.department
            and not rules.kind_fits_department(self.kind, self.department)
        ):
            expected = Department(rules.KIND_DEPARTMENT[self.kind]).label
            raise ValidationError(
                {"department": rules.ERR_KIND_DEPARTMENT % {"department": expected}}
            )


class StaffProfile(models.Model):
    """Links a Django user to exactly one organisation."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="staff"
    )
    organisation = models.ForeignKey(
        Organisation, verbose_name=_("机构"), on_delete=models.PROTECT, related_name="staff"
    )
    display_name = models.CharField(_("姓名"), max_length=50, blank=True)
    phone = models.CharField(_("电话"), max_length=32, blank=True)
    password_changed_at = models.DateTimeField(_("密码修改时间"), null=True, blank=True)
    # Set when an admin resets the password: the user must choose their own
    # at the next login (accounts.middleware.SessionSecurityMiddleware).
    must_change_password = models.BooleanField(_("须修改密码"), default=False)
    # Bumped on password or role change: sessions carrying an older epoch end.
    session_epoch = models.PositiveIntegerField(default=0)
    history = HistoricalRecords()

    class Meta:
        verbose_name = _("工作人员")
        verbose_name_plural = _("工作人员")
        # Exporting data is a permission of its own, granted per account by
        # the system admin (SECURITY.md G14; accounts.exports).
        permissions = [("export_data", _("导出数据"))]

    def __str__(self) -> str:
        return self.display_name or self.user.get_username()


class PasswordHistory(models.Model):
    """A hash of a password the user has had: the last ones may not come back
    (SECURITY.md G8; accounts.passwords.PasswordHistoryValidator)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="password_history"
    )
    password = models.CharField(max_length=128)  # a Django password hash, never the password
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("历史密码")
        verbose_name_plural = _("历史密码")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "-created_at"], name="pwhistory_user_created")]

    def __str__(self) -> str:
        return f"{self.user_id} {self.created_at:%Y-%m-%d}"


class ApiKeyStatus(models.TextChoices):
    REQUESTED = "requested", _("待审批")
    APPROVED = "approved", _("待领取")
    ACTIVE = "active", _("有效")
    REJECTED = "rejected", _("已驳回")


class ApiKey(models.Model):
    """A named key of a partner system (another department's software).

    A key acts through its own service account (no usable password) that
    holds one role in one organisation, so the API scopes its reads exactly
    as for a person of that organisation. Only a SHA-256 of the key is kept.

    No 三员 account ever holds a key (SECURITY.md G4; accounts.services):
    the security admin requests it and names its custodian — a person of
    that organisation with that role, who can read that data anyway; the
    system admin approves it; only then does the custodian collect it, and
    the secret is made at that moment and shown to the custodian once.
    """

    name = models.CharField(_("名称"), max_length=100)
    organisation = models.ForeignKey(
        Organisation, verbose_name=_("机构"), on_delete=models.PROTECT, related_name="api_keys"
    )
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        verbose_name=_("服务账号"),
        on_delete=models.PROTECT,
        related_name="api_key",
    )
    prefix = models.CharField(_("前缀"), max_length=16, unique=True)
    key_hash = models.CharField(max_length=64, blank=True)  # set when collected
    status = models.CharField(
        _("状态"), max_length=16, choices=ApiKeyStatus.choices, default=ApiKeyStatus.REQUESTED
    )
    custodian = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("领取人"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("审批人"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    approved_at = models.DateTimeField(_("审批时间"), null=True, blank=True)
    collected_at = models.DateTimeField(_("领取时间"), null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("创建人"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(_("创建时间"), default=timezone.now)
    last_used_at = models.DateTimeField(_("最近使用"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("吊销时间"), null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("吊销人"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        verbose_name = _("接口密钥")
        verbose_name_plural = _("接口密钥")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None and self.status == ApiKeyStatus.ACTIVE

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None


class AccountRequestKind(models.TextChoices):
    CREATE = "create", _("新建账号")
    CHANGE = "change", _("调整机构或角色")
    PASSWORD_RESET = "password_reset", _("重置密码")


class AccountRequestStatus(models.TextChoices):
    PENDING = "pending", _("待授权")
    APPROVED = "approved", _("已授权")
    REJECTED = "rejected", _("已驳回")


class AccountRequest(models.Model):
    """An account change asked for by the system admin that takes effect
    only when a security admin authorises it (two-person rule, SECURITY.md
    G4; accounts.services.account_request_*).

    A new account does not exist before approval (``user`` is set then). A
    password reset or a new account gets a generated initial password in two
    halves: the first is shown once to the requesting system admin, the
    second once to the authorising security admin, so neither alone knows
    it. ``secret`` holds the first half, encrypted, until the decision and
    is emptied then.
    """

    kind = models.CharField(_("类型"), max_length=16, choices=AccountRequestKind.choices)
    status = models.CharField(
        _("状态"),
        max_length=16,
        choices=AccountRequestStatus.choices,
        default=AccountRequestStatus.PENDING,
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("账号"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="account_requests",
    )
    username = models.CharField(_("用户名"), max_length=150)
    display_name = models.CharField(_("姓名"), max_length=50, blank=True)
    phone = models.CharField(_("电话"), max_length=32, blank=True)
    organisation = models.ForeignKey(
        Organisation, verbose_name=_("机构"), on_delete=models.PROTECT, related_name="+"
    )
    role = models.CharField(_("角色"), max_length=32, blank=True)
    secret = EncryptedCharField(blank=True, default="", max_plain_length=32)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("申请人"),
        null=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    requested_at = models.DateTimeField(_("申请时间"), default=timezone.now)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("授权人"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    decided_at = models.DateTimeField(_("处理时间"), null=True, blank=True)
    reason = models.CharField(_("驳回理由"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("账号变更申请")
        verbose_name_plural = _("账号变更申请")
        ordering = ["-requested_at", "-id"]
        constraints = [
            # one open request per account, and per new username
            models.UniqueConstraint(
                fields=["user"],
                condition=models.Q(status="pending"),
                name="accountrequest_one_pending_per_user",
            ),
            models.UniqueConstraint(
                fields=["username"],
                condition=models.Q(status="pending", kind="create"),
                name="accountrequest_one_pending_per_username",
            ),
        ]
        indexes = [models.Index(fields=["status", "-requested_at"], name="accountrequest_status")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.username}"

    @property
    def is_pending(self) -> bool:
        return self.status == AccountRequestStatus.PENDING


class BreakGlassGrant(models.Model):
    """Emergency read access (break the glass) of one health user to one
    patient outside their scope, with a written reason, for a few hours
    (SECURITY.md G25). ``patients.selectors._extra_grants_q`` honours it while
    ``expires_at`` lies ahead; the audit admin reviews every grant."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("申请人"),
        on_delete=models.PROTECT,
        related_name="break_glass_grants",
    )
    patient = models.ForeignKey(
        "patients.Patient", verbose_name=_("患者"), on_delete=models.PROTECT, related_name="+"
    )
    reason = models.TextField(_("理由"))
    created_at = models.DateTimeField(_("申请时间"), default=timezone.now)
    expires_at = models.DateTimeField(_("到期时间"))
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("审核人"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    reviewed_at = models.DateTimeField(_("审核时间"), null=True, blank=True)
    review_note = models.CharField(_("审核意见"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("紧急访问授权")
        verbose_name_plural = _("紧急访问授权")
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["user", "expires_at"], name="breakglass_user_expires")]

    def __str__(self) -> str:
        return f"{self.user_id} {self.created_at:%Y-%m-%d %H:%M}"

    @property
    def is_active(self) -> bool:
        return self.expires_at > timezone.now()


class TokenActivity(models.Model):
    """When an API token (DRF ``authtoken.Token``, one per user) was last
    used: the idle clock of G11 for the API. Written at most once a minute by
    ``accounts.authentication.ExpiringTokenAuthentication``; goes with the
    token (a new token starts a new clock)."""

    token = models.OneToOneField(
        "authtoken.Token", primary_key=True, on_delete=models.CASCADE, related_name="activity"
    )
    last_used_at = models.DateTimeField()

    class Meta:
        verbose_name = _("令牌使用")
        verbose_name_plural = _("令牌使用")

    def __str__(self) -> str:
        return f"{self.last_used_at:%Y-%m-%d %H:%M}"
