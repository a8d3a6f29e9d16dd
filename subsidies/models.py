"""Guardian reward (以奖代补) and one-stop settlement (一站式结算) — DOMAIN.md.

Policies are data, per county and effective-dated, versioned with history.
Awards move through application → township review → county approval →
notice → active, each step recorded in ``AwardEvent`` (who and when).
Settlements are immutable once saved: corrections are reversals.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from accounts.models import Organisation, Region
from patients.models import Diagnosis, Incident, IncidentKind, Patient, TreatmentEffect
from subsidies import rules

ERR_REGION_COUNTY = _("政策须设在县（区）一级行政区划。")
ERR_POLICY_OVERLAP = _("该县（区）在此期间已有其他政策生效（有效期重叠），请先调整原政策的有效期。")
ERR_MONEY_NEGATIVE = _("金额不能为负数。")
ERR_INCIDENT_KINDS = _("请选择有效的肇事肇祸类别。")
ERR_IMMUTABLE = _("结算单保存后不能修改，如需更正请冲销后重新结算。")
ERR_POLICY_FROZEN = _(
    "该政策（第%(version)s版）已用于%(used)s，其规则和支付层级不能再修改，否则以前的业务将无法按原规则核对。"
    "如需调整，请将本政策的失效日期设为新规则生效的前一天，再新增一个政策版本并设定新的有效期。"
)
ERR_POLICY_VALIDITY_USED = _(
    "该政策已用于%(first)s至%(last)s期间的业务，有效期须包含这段时间；"
    "如需调整规则，请新增一个政策版本并设定新的有效期。"
)
USED_BY_SETTLEMENTS = _("一站式结算业务")
USED_BY_REWARDS = _("以奖代补的申请或发放")

MONEY = {"max_digits": 12, "decimal_places": 2}


def _money_validators():
    return [MinValueValidator(Decimal("0"), message=ERR_MONEY_NEGATIVE)]


def _ratio_validators():
    return [
        MinValueValidator(Decimal("0"), message=rules.ERR_RATIO_RANGE),
        MaxValueValidator(Decimal("100"), message=rules.ERR_RATIO_RANGE),
    ]


def default_incident_kinds() -> list[str]:
    return list(rules.QUALIFYING_INCIDENTS_DEFAULT)


class Frequency(models.TextChoices):
    MONTHLY = "monthly", _("按月")
    QUARTERLY = "quarterly", _("按季度")
    HALF_YEARLY = "half_yearly", _("按半年")
    YEARLY = "yearly", _("按年")


class Payer(models.TextChoices):
    BASIC_INSURANCE = "basic_insurance", _("基本医疗保险")
    SERIOUS_ILLNESS_INSURANCE = "serious_illness_insurance", _("大病保险")
    COMMERCIAL_INSURANCE = "commercial_insurance", _("商业保险")
    CIVIL_AFFAIRS = "civil_affairs", _("民政医疗救助")
    DISABLED_FEDERATION = "disabled_federation", _("残联救助")
    UNION_MUTUAL_AID = "union_mutual_aid", _("工会医疗互助")
    FINANCE_BACKSTOP = "finance_backstop", _("财政兜底")


class Condition(models.TextChoices):
    ALWAYS = "always", _("无条件")
    INSURED = "insured", _("参加基本医疗保险")
    POVERTY_ASSISTANCE = "poverty_assistance", _("低保或特困")
    POOR = "poor", _("困难群众（低保、特困、低收入）")
    CERTIFICATE_HELD = "certificate_held", _("持有残疾人证")
    UNION_MEMBER = "union_member", _("工会会员")
    HIGH_RISK = "high_risk", _("危险性评估达到本层设定等级")
    POOR_OR_HIGH_RISK = "poor_or_high_risk", _("困难群众或危险性评估达到本层设定等级")
    REGISTERED = "registered", _("在册患者")


def _rule_value(obj, field: str):
    """A rule field's value for comparison (a foreign key by id, a list of
    codes in any order)."""
    value = getattr(obj, obj._meta.get_field(field).attname)
    return sorted(value) if isinstance(value, list) else value


# PostgreSQL exclusion constraints (migration 0006): no overlapping validity
# per county, whatever clean() saw when two saves raced.
OVERLAP_CONSTRAINTS = ("rewardpolicy_no_overlap", "settlementpolicy_no_overlap")


def is_overlap_violation(exc: Exception) -> bool:
    return any(name in str(exc) for name in OVERLAP_CONSTRAINTS)


class CountyPolicy(models.Model):
    """Common part of the two policies: one county, a validity, a version.

    Validities of one county never overlap: refused by ``clean()`` with a
    clear message, and by an exclusion constraint in PostgreSQL.
    """

    region = models.ForeignKey(
        Region, verbose_name=_("县（区）"), on_delete=models.PROTECT, related_name="+"
    )
    name = models.CharField(_("政策名称"), max_length=100)
    valid_from = models.DateField(_("生效日期"))
    valid_to = models.DateField(_("失效日期"), null=True, blank=True, help_text=_("空表示长期有效"))
    version = models.PositiveIntegerField(_("版本"), default=1, editable=False)
    notes = models.TextField(_("依据与说明"), blank=True)
    updated_at = models.DateTimeField(_("更新时间"), auto_now=True)

    class Meta:
        abstract = True

    # The fields that carry the policy's rules: frozen once the policy was
    # used (subclasses add theirs; validity may still change, see clean()).
    RULE_FIELDS: tuple[str, ...] = ("region",)
    USED_BY = ""

    def __str__(self) -> str:
        return f"{self.name}（v{self.version}）"

    def usage_span(self) -> tuple | None:
        """(first day, last day) of the business done under this policy as
        saved, or None while it is unused."""
        raise NotImplementedError

    def frozen_error(self) -> str:
        return ERR_POLICY_FROZEN % {"version": self.version, "used": self.USED_BY}

    def _check_frozen(self, errors: dict) -> None:
        """Once used, the rules stay as they were (a settlement or a payment
        can always be checked against the version it used); the validity may
        change only so far as it still covers what was done under it."""
        if self._state.adding or not self.pk:
            return
        original = type(self).objects.filter(pk=self.pk).first()
        if original is None:
            return
        span = original.usage_span()
        if span is None:
            return
        changed = [f for f in self.RULE_FIELDS if _rule_value(self, f) != _rule_value(original, f)]
        if changed:
            errors[changed[0] if changed[0] != "region" else "__all__"] = original.frozen_error()
        first, last = span
        if (self.valid_from and self.valid_from > first) or (
            self.valid_to and self.valid_to < last
        ):
            field = "valid_from" if self.valid_from and self.valid_from > first else "valid_to"
            errors.setdefault(
                field,
                ERR_POLICY_VALIDITY_USED % {"first": first.isoformat(), "last": last.isoformat()},
            )

    def clean(self):
        errors = {}
        if self.region_id and self.region.level != "county":
            errors["region"] = ERR_REGION_COUNTY
        if self.valid_from and self.valid_to and self.valid_to < self.valid_from:
            errors["valid_to"] = rules.ERR_VALIDITY_ORDER
        if not errors:
            self._check_frozen(errors)
        if not errors and self.region_id and self.valid_from:
            others = type(self).objects.filter(region_id=self.region_id).exclude(pk=self.pk)
            for other in others.only("valid_from", "valid_to"):
                if rules.validity_overlaps(
                    self.valid_from, self.valid_to, other.valid_from, other.valid_to
                ):
                    errors["valid_from"] = ERR_POLICY_OVERLAP
                    break
        if errors:
            raise ValidationError(errors)

    def in_force_on(self, day) -> bool:
        return rules.in_validity(day, self.valid_from, self.valid_to)


class RewardPolicy(CountyPolicy):
    """以奖代补政策: amount, frequency, eligibility rule and notice days."""

    yearly_amount = models.DecimalField(
        _("每人每年奖补金额（元）"), validators=_money_validators(), **MONEY
    )
    frequency = models.CharField(
        _("发放频次"), max_length=12, choices=Frequency.choices, default=Frequency.QUARTERLY
    )
    notice_days = models.PositiveSmallIntegerField(_("公示天数"), default=7)
    # the eligibility rule (DOMAIN.md default)
    require_police_registered = models.BooleanField(_("须经公安机关登记列管"), default=True)
    qualifying_incident_kinds = models.JSONField(
        _("符合条件的肇事肇祸类别"),
        default=default_incident_kinds,
        blank=True,
    )
    min_risk_level = models.PositiveSmallIntegerField(
        _("符合条件的最低危险性等级"),
        null=True,
        blank=True,
        default=3,
        validators=[MaxValueValidator(5)],
        help_text=_("空表示危险性等级不作为条件"),
    )
    require_responsibility_letter = models.BooleanField(_("须签订监护责任书"), default=True)
    min_assistant_guardians = models.PositiveSmallIntegerField(_("最少协助监护人数"), default=2)
    reapply_bar_months = models.PositiveSmallIntegerField(
        _("未履责后不得重新申请的月数"), default=12
    )
    history = HistoricalRecords()

    RULE_FIELDS = (
        "region",
        "yearly_amount",
        "frequency",
        "notice_days",
        "require_police_registered",
        "qualifying_incident_kinds",
        "min_risk_level",
        "require_responsibility_letter",
        "min_assistant_guardians",
        "reapply_bar_months",
    )
    USED_BY = USED_BY_REWARDS

    class Meta:
        verbose_name = _("以奖代补政策")
        verbose_name_plural = _("以奖代补政策")
        ordering = ["region_id", "-valid_from"]
        indexes = [models.Index(fields=["region", "valid_from"], name="rewardpolicy_region_from")]

    def usage_span(self) -> tuple | None:
        """Applications made under it, and the months of the county's payment
        batches (with lines) drawn while it was in force."""
        days = list(
            Award.objects.filter(policy=self)
            .order_by()
            .aggregate(first=models.Min("applied_on"), last=models.Max("applied_on"))
            .values()
        )
        batches = RewardBatch.objects.filter(
            region_id=self.region_id, period_end__gte=self.valid_from, line_count__gt=0
        )
        if self.valid_to:
            batches = batches.filter(period_start__lte=self.valid_to)
        for start, end in batches.values_list("period_start", "period_end"):
            days += [max(start, self.valid_from), min(end, self.valid_to or end)]
        days = [d for d in days if d is not None]
        return (min(days), max(days)) if days else None

    def clean(self):
        super().clean()
        kinds = self.qualifying_incident_kinds or []
        if not isinstance(kinds, list) or not set(kinds) <= set(IncidentKind.values):
            raise ValidationError({"qualifying_incident_kinds": ERR_INCIDENT_KINDS})

    def rule(self) -> rules.RewardRule:
        return rules.RewardRule(
            require_police_registered=self.require_police_registered,
            qualifying_incident_kinds=tuple(self.qualifying_incident_kinds or ()),
            min_risk_level=self.min_risk_level,
            require_responsibility_letter=self.require_responsibility_letter,
            min_assistant_guardians=self.min_assistant_guardians,
            reapply_bar_months=self.reapply_bar_months,
        )


class SettlementPolicy(CountyPolicy):
    """一站式结算政策: ordered payer layers (``PayerLayer``).

    Frozen once a settlement used it: its layers (and region) no longer
    change, so re-settling an older admission after a reversal applies the
    rules the first settlement did. A new rule is a new policy version with
    its own validity.
    """

    history = HistoricalRecords()
    USED_BY = USED_BY_SETTLEMENTS

    class Meta:
        verbose_name = _("一站式结算政策")
        verbose_name_plural = _("一站式结算政策")
        ordering = ["region_id", "-valid_from"]
        indexes = [models.Index(fields=["region", "valid_from"], name="settlepolicy_region_from")]

    def usage_span(self) -> tuple | None:
        """The admission dates of the settlements made under it."""
        span = (
            Settlement.objects.filter(policy=self)
            .order_by()
            .aggregate(first=models.Min("admission_date"), last=models.Max("admission_date"))
        )
        return (span["first"], span["last"]) if span["first"] else None

    def rule_layers(self, layers=None) -> list[rules.Layer]:
        rows = layers if layers is not None else self.layers.all()
        return [ly.as_rule() for ly in rows]

    def snapshot(self, layers=None) -> list[dict]:
        rows = layers if layers is not None else self.layers.all()
        return [ly.as_snapshot() for ly in rows]


class PayerLayer(models.Model):
    """One payer layer of a settlement policy."""

    policy = models.ForeignKey(
        SettlementPolicy,
        verbose_name=_("结算政策"),
        on_delete=models.CASCADE,
        related_name="layers",
    )
    order = models.PositiveSmallIntegerField(_("顺序"))
    payer = models.CharField(_("支付方"), max_length=32, choices=Payer.choices)
    condition = models.CharField(_("适用条件"), max_length=24, choices=Condition.choices)
    ratio = models.DecimalField(
        _("支付比例（%）"), max_digits=5, decimal_places=2, validators=_ratio_validators()
    )
    deductible_per_year = models.DecimalField(
        _("年度起付线（元）"), null=True, blank=True, validators=_money_validators(), **MONEY
    )
    cap_per_episode = models.DecimalField(
        _("每次住院封顶（元）"), null=True, blank=True, validators=_money_validators(), **MONEY
    )
    cap_per_year = models.DecimalField(
        _("年度封顶（元）"), null=True, blank=True, validators=_money_validators(), **MONEY
    )
    valid_from = models.DateField(_("本层生效日期"), null=True, blank=True)
    valid_to = models.DateField(_("本层失效日期"), null=True, blank=True)
    # The threshold of the high-risk conditions is this layer's own policy
    # data: settings.HIGH_RISK_MIN_LEVEL decides when alerts fire, and
    # changing it must not silently change who the finance backstop pays.
    min_risk_level = models.PositiveSmallIntegerField(
        _("危险性等级下限"),
        default=3,
        validators=[MinValueValidator(1), MaxValueValidator(5)],
        help_text=_("条件为“危险性评估达到本层设定等级”时，危险性评估达到此等级及以上的患者适用"),
    )
    history = HistoricalRecords()

    RULE_FIELDS = (
        "order",
        "payer",
        "condition",
        "ratio",
        "deductible_per_year",
        "cap_per_episode",
        "cap_per_year",
        "min_risk_level",
        "valid_from",
        "valid_to",
    )

    class Meta:
        verbose_name = _("支付层级")
        verbose_name_plural = _("支付层级")
        ordering = ["policy_id", "order"]
        constraints = [
            models.UniqueConstraint(fields=["policy", "order"], name="payerlayer_unique_order"),
            models.CheckConstraint(
                condition=Q(ratio__gte=0) & Q(ratio__lte=100), name="payerlayer_ratio_0_100"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.order}. {self.get_payer_display()}"

    def clean(self):
        if self.valid_from and self.valid_to and self.valid_to < self.valid_from:
            raise ValidationError({"valid_to": rules.ERR_VALIDITY_ORDER})
        if not self.policy_id:
            return
        original = PayerLayer.objects.filter(pk=self.pk).first() if self.pk else None
        unchanged = original is not None and all(
            getattr(self, f) == getattr(original, f) for f in self.RULE_FIELDS
        )
        if not unchanged and self.policy.usage_span() is not None:
            raise ValidationError(self.policy.frozen_error())

    def as_rule(self) -> rules.Layer:
        return rules.Layer(
            order=self.order,
            payer=self.payer,
            condition=self.condition,
            ratio=self.ratio,
            deductible_per_year=self.deductible_per_year,
            cap_per_episode=self.cap_per_episode,
            cap_per_year=self.cap_per_year,
            valid_from=self.valid_from,
            valid_to=self.valid_to,
            min_risk_level=self.min_risk_level,
        )

    def as_snapshot(self) -> dict:
        def s(v):
            return None if v is None else str(v)

        return {
            "order": self.order,
            "payer": self.payer,
            "condition": self.condition,
            "ratio": s(self.ratio),
            "deductible_per_year": s(self.deductible_per_year),
            "cap_per_episode": s(self.cap_per_episode),
            "cap_per_year": s(self.cap_per_year),
            "valid_from": s(self.valid_from),
            "valid_to": s(self.valid_to),
            "min_risk_level": self.min_risk_level,
        }


# --------------------------------------------------------------------------
# Guardian reward
# --------------------------------------------------------------------------


class AwardStatus(models.TextChoices):
    APPLIED = "applied", _("待乡镇审核")
    REVIEWED = "reviewed", _("待县级审批")
    NOTICE = "notice", _("公示中")
    ACTIVE = "active", _("发放中")
    SUSPENDED = "suspended", _("已暂停")
    ENDED = "ended", _("已终止")
    REJECTED = "rejected", _("未通过")


OPEN_AWARD_STATUSES = (
    AwardStatus.APPLIED,
    AwardStatus.REVIEWED,
    AwardStatus.NOTICE,
    AwardStatus.ACTIVE,
)
PENDING_AWARD_STATUSES = (AwardStatus.APPLIED, AwardStatus.REVIEWED)
# awards that may have paid months in a period
PAYABLE_AWARD_STATUSES = (AwardStatus.ACTIVE, AwardStatus.SUSPENDED, AwardStatus.ENDED)


class ApplicationSource(models.TextChoices):
    HEALTH_CENTRE = "health_centre", _("乡镇卫生院（社区卫生服务中心）")
    VILLAGE = "village", _("村（居）委会推荐")
    GOVERNANCE = "governance", _("综治办")


class EndReason(models.TextChoices):
    DECEASED = "deceased", _("患者死亡")
    MOVED_OUT = "moved_out", _("患者迁出")
    REMOVED = "removed", _("患者注销")
    REVIEW_FAILED = "review_failed", _("年审不合格")
    OTHER = "other", _("其他")


class Award(models.Model):
    """One guardian reward (以奖代补) from application to its end."""

    patient = models.ForeignKey(
        Patient, verbose_name=_("患者"), on_delete=models.PROTECT, related_name="reward_awards"
    )
    region = models.ForeignKey(
        Region,
        verbose_name=_("所在村（居）"),
        on_delete=models.PROTECT,
        related_name="+",
        help_text=_("申请时患者的现住址区划"),
    )
    policy = models.ForeignKey(
        RewardPolicy, verbose_name=_("适用政策"), on_delete=models.PROTECT, related_name="awards"
    )
    status = models.CharField(
        _("状态"), max_length=10, choices=AwardStatus.choices, default=AwardStatus.APPLIED
    )
    guardian_name = models.CharField(_("监护人（领取人）"), max_length=50)
    guardian_relation = models.CharField(_("与患者关系"), max_length=20, blank=True)
    source = models.CharField(_("申请来源"), max_length=16, choices=ApplicationSource.choices)
    applicant_name = models.CharField(_("推荐人/经办人"), max_length=50, blank=True)
    application_note = models.TextField(_("申请说明"), blank=True)
    eligibility_snapshot = models.JSONField(_("申请时的条件核查"), default=dict, blank=True)
    applied_on = models.DateField(_("申请日期"))
    applied_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reviewed_at = models.DateTimeField(_("乡镇审核时间"), null=True, blank=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    approved_at = models.DateTimeField(_("县级审批时间"), null=True, blank=True)
    notice_until = models.DateField(_("公示截止日期"), null=True, blank=True)
    active_from = models.DateField(_("生效日期"), null=True, blank=True)
    valid_until = models.DateField(_("年审到期日"), null=True, blank=True)
    stop_from = models.DateField(
        _("停发起始月"), null=True, blank=True, help_text=_("暂停或终止后不再发放的第一天")
    )
    suspended_incident = models.ForeignKey(
        Incident,
        verbose_name=_("导致暂停的肇事肇祸"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    reapply_from = models.DateField(_("可重新申请日期"), null=True, blank=True)
    end_reason = models.CharField(
        _("终止原因"), max_length=16, choices=EndReason.choices, blank=True
    )
    ended_on = models.DateField(_("终止日期"), null=True, blank=True)
    closing_note = models.TextField(_("不通过/暂停/终止说明"), blank=True)
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords()

    class Meta:
        verbose_name = _("以奖代补")
        verbose_name_plural = _("以奖代补")
        ordering = ["-applied_on", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["patient"],
                condition=Q(status__in=["applied", "reviewed", "notice", "active"]),
                name="award_one_open_per_patient",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "notice_until"], name="award_status_notice"),
            models.Index(fields=["region", "status"], name="award_region_status"),
        ]

    def __str__(self) -> str:
        return f"以奖代补 #{self.pk}"

    @property
    def number(self) -> str:
        return f"JB{self.pk:06d}"


class AwardStep(models.TextChoices):
    APPLIED = "applied", _("提出申请")
    TOWNSHIP_APPROVED = "township_approved", _("乡镇审核通过")
    TOWNSHIP_REJECTED = "township_rejected", _("乡镇审核不通过")
    COUNTY_APPROVED = "county_approved", _("县级审批通过，进入公示")
    COUNTY_REJECTED = "county_rejected", _("县级审批不通过")
    NOTICE_OBJECTION = "notice_objection", _("公示有异议，不予发放")
    ACTIVATED = "activated", _("公示期满，开始发放")
    SUSPENDED = "suspended", _("未履行监护责任，暂停发放")
    RENEWED = "renewed", _("年审通过，续期一年")
    ENDED = "ended", _("终止发放")
    CANCELLED = "cancelled", _("申请终止")


class AwardEvent(models.Model):
    """One step of an award: who (None = the system) and when."""

    award = models.ForeignKey(Award, on_delete=models.CASCADE, related_name="events")
    step = models.CharField(_("环节"), max_length=20, choices=AwardStep.choices)
    at = models.DateTimeField(_("时间"), default=timezone.now)
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("经办人"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    organisation = models.ForeignKey(
        Organisation,
        verbose_name=_("经办机构"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    note = models.TextField(_("说明"), blank=True)

    class Meta:
        verbose_name = _("以奖代补办理记录")
        verbose_name_plural = _("以奖代补办理记录")
        ordering = ["award_id", "at", "id"]

    def __str__(self) -> str:
        return f"{self.get_step_display()} {self.at:%Y-%m-%d %H:%M}"


class BatchStatus(models.TextChoices):
    DRAFTED = "drafted", _("待审核")
    REVIEWED = "reviewed", _("已审核，待发放")
    PAID = "paid", _("已发放")


class RewardBatch(models.Model):
    """The payment batch of one county for one period (unique: drawn once)."""

    region = models.ForeignKey(
        Region, verbose_name=_("县（区）"), on_delete=models.PROTECT, related_name="+"
    )
    period = models.CharField(_("发放期间"), max_length=8)
    period_start = models.DateField(_("期间开始"))
    period_end = models.DateField(_("期间结束"))
    status = models.CharField(
        _("状态"), max_length=10, choices=BatchStatus.choices, default=BatchStatus.DRAFTED
    )
    total = models.DecimalField(_("合计金额（元）"), default=Decimal("0.00"), **MONEY)
    line_count = models.PositiveIntegerField(_("人数"), default=0)
    drawn_at = models.DateTimeField(_("生成时间"), auto_now_add=True)
    drawn_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reviewed_at = models.DateTimeField(_("审核时间"), null=True, blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    paid_at = models.DateTimeField(_("发放时间"), null=True, blank=True)
    paid_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    payment_reference = models.CharField(_("支付凭证号"), max_length=64, blank=True)
    history = HistoricalRecords()

    class Meta:
        verbose_name = _("以奖代补发放批次")
        verbose_name_plural = _("以奖代补发放批次")
        ordering = ["-period_start", "region_id"]
        constraints = [
            models.UniqueConstraint(fields=["region", "period"], name="rewardbatch_once_per_period")
        ]

    def __str__(self) -> str:
        return f"{self.period}"

    @property
    def number(self) -> str:
        return f"FF{self.region_id}-{self.period}"


class RewardBatchLine(models.Model):
    """One guardian's payment in a batch (names kept as paid)."""

    batch = models.ForeignKey(RewardBatch, on_delete=models.CASCADE, related_name="lines")
    award = models.ForeignKey(Award, on_delete=models.PROTECT, related_name="batch_lines")
    guardian_name = models.CharField(_("领取人"), max_length=50)
    guardian_relation = models.CharField(_("与患者关系"), max_length=20, blank=True)
    village = models.ForeignKey(
        Region, verbose_name=_("村（居）"), on_delete=models.PROTECT, related_name="+"
    )
    months = models.JSONField(_("发放月份"), default=list)
    # months of earlier, already drawn periods paid here (e.g. after a late
    # yearly review); also listed in ``months``
    arrears = models.JSONField(_("其中补发月份"), default=list, blank=True)
    month_count = models.PositiveSmallIntegerField(_("月数"))
    amount = models.DecimalField(_("金额（元）"), **MONEY)

    class Meta:
        verbose_name = _("发放明细")
        verbose_name_plural = _("发放明细")
        ordering = ["batch_id", "village_id", "id"]
        constraints = [
            models.UniqueConstraint(fields=["batch", "award"], name="batchline_once_per_award")
        ]

    def __str__(self) -> str:
        return f"{self.guardian_name} {self.amount}"


# --------------------------------------------------------------------------
# Hospital episodes and settlement
# --------------------------------------------------------------------------


class EpisodeStatus(models.TextChoices):
    IN_HOSPITAL = "in_hospital", _("在院")
    DISCHARGED = "discharged", _("已出院")


class Episode(models.Model):
    """One inpatient stay at a specialist hospital, with the discharge sheet."""

    patient = models.ForeignKey(
        Patient, verbose_name=_("患者"), on_delete=models.PROTECT, related_name="episodes"
    )
    hospital = models.ForeignKey(
        Organisation, verbose_name=_("医院"), on_delete=models.PROTECT, related_name="episodes"
    )
    case_number = models.CharField(_("住院号"), max_length=32)
    status = models.CharField(
        _("状态"), max_length=12, choices=EpisodeStatus.choices, default=EpisodeStatus.IN_HOSPITAL
    )
    admission_date = models.DateField(_("入院日期"))
    admission_note = models.TextField(_("入院情况"), blank=True)
    admitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    # discharge information sheet (出院信息单)
    discharge_date = models.DateField(_("出院日期"), null=True, blank=True)
    discharge_diagnosis = models.CharField(
        _("出院诊断"), max_length=32, choices=Diagnosis.choices, blank=True
    )
    discharge_diagnosis_detail = models.CharField(
        _("诊断说明（含ICD-10编码）"), max_length=200, blank=True
    )
    inpatient_effect = models.CharField(
        _("住院疗效"), max_length=10, choices=TreatmentEffect.choices, blank=True
    )
    rehab_advice = models.TextField(_("康复措施建议"), blank=True)
    medication_advice = models.JSONField(_("出院用药建议"), default=list, blank=True)
    medication_note = models.TextField(_("用药指导"), blank=True)
    attending_doctor = models.CharField(_("主治医生"), max_length=50, blank=True)
    discharge_note = models.TextField(_("注意事项"), blank=True)
    discharged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    discharged_at = models.DateTimeField(_("办理出院时间"), null=True, blank=True)
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords()

    class Meta:
        verbose_name = _("住院")
        verbose_name_plural = _("住院")
        ordering = ["-admission_date", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["hospital", "case_number"], name="episode_unique_case_number"
            ),
            models.UniqueConstraint(
                fields=["patient"],
                condition=Q(status="in_hospital"),
                name="episode_one_open_per_patient",
            ),
            models.CheckConstraint(
                condition=Q(discharge_date__isnull=True)
                | Q(discharge_date__gte=models.F("admission_date")),
                name="episode_discharge_after_admission",
            ),
        ]
        indexes = [models.Index(fields=["hospital", "status"], name="episode_hospital_status")]

    def __str__(self) -> str:
        return self.case_number


class SettlementKind(models.TextChoices):
    SETTLEMENT = "settlement", _("结算")
    REVERSAL = "reversal", _("冲销")


class Settlement(models.Model):
    """One saved settlement (or its reversal). Never changed after saving.

    Refused here in Python and, in PostgreSQL, by a row trigger on UPDATE and
    DELETE of this table and of its lines (migration 0003), whatever sends it.
    """

    kind = models.CharField(
        _("类型"), max_length=10, choices=SettlementKind.choices, default=SettlementKind.SETTLEMENT
    )
    reverses = models.OneToOneField(
        "self",
        verbose_name=_("冲销的结算单"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="reversal",
    )
    episode = models.ForeignKey(
        Episode, verbose_name=_("住院"), on_delete=models.PROTECT, related_name="settlements"
    )
    patient = models.ForeignKey(
        Patient, verbose_name=_("患者"), on_delete=models.PROTECT, related_name="settlements"
    )
    hospital = models.ForeignKey(
        Organisation, verbose_name=_("医院"), on_delete=models.PROTECT, related_name="+"
    )
    region = models.ForeignKey(
        Region,
        verbose_name=_("患者所在村（居）"),
        on_delete=models.PROTECT,
        related_name="+",
    )
    admission_date = models.DateField(_("入院日期"))
    discharge_date = models.DateField(_("出院日期"))
    total_cost = models.DecimalField(_("医疗总费用（元）"), **MONEY)
    in_scope_cost = models.DecimalField(_("政策范围内费用（元）"), **MONEY)
    out_of_scope_cost = models.DecimalField(_("政策范围外费用（元）"), **MONEY)
    patient_pays = models.DecimalField(_("个人自付（元）"), **MONEY)
    policy = models.ForeignKey(
        SettlementPolicy, verbose_name=_("结算政策"), on_delete=models.PROTECT, related_name="+"
    )
    policy_version = models.PositiveIntegerField(_("政策版本"))
    policy_snapshot = models.JSONField(_("所用政策层级"), default=list)
    facts = models.JSONField(_("入院日患者情况"), default=dict)
    settled_on = models.DateField(_("结算日期"), db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # PROTECT, not SET_NULL: the row is immutable (a database trigger refuses
    # UPDATE and DELETE), so whoever saved it stays recorded; accounts are
    # deactivated, never deleted.
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+"
    )
    reason = models.TextField(_("冲销原因"), blank=True)

    class Meta:
        verbose_name = _("结算单")
        verbose_name_plural = _("结算单")
        ordering = ["-settled_on", "-id"]
        indexes = [
            models.Index(fields=["patient", "admission_date"], name="settlement_patient_adm"),
            models.Index(fields=["hospital", "settled_on"], name="settlement_hospital_day"),
        ]

    def __str__(self) -> str:
        return self.number

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise ValidationError(ERR_IMMUTABLE)
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValidationError(ERR_IMMUTABLE)

    @property
    def number(self) -> str:
        prefix = "CX" if self.kind == SettlementKind.REVERSAL else "JS"
        return f"{prefix}{self.pk:08d}" if self.pk else prefix


class SettlementLine(models.Model):
    """What one payer pays of one settlement (negative in a reversal)."""

    settlement = models.ForeignKey(Settlement, on_delete=models.PROTECT, related_name="lines")
    order = models.PositiveSmallIntegerField(_("顺序"))
    payer = models.CharField(_("支付方"), max_length=32, choices=Payer.choices)
    ratio = models.DecimalField(_("比例（%）"), max_digits=5, decimal_places=2)
    base = models.DecimalField(_("进入本层的范围内余额（元）"), **MONEY)
    eligible = models.DecimalField(_("起付线以上部分（元）"), **MONEY)
    amount = models.DecimalField(_("支付金额（元）"), **MONEY)
    limited_by = models.CharField(_("限额说明"), max_length=16, blank=True)

    class Meta:
        verbose_name = _("结算明细")
        verbose_name_plural = _("结算明细")
        ordering = ["settlement_id", "order"]
        indexes = [models.Index(fields=["payer", "settlement"], name="settleline_payer")]

    def __str__(self) -> str:
        return f"{self.get_payer_display()} {self.amount}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise ValidationError(ERR_IMMUTABLE)
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValidationError(ERR_IMMUTABLE)

    @property
    def limited_label(self) -> str:
        return str(LIMITED_LABELS.get(self.limited_by, ""))


LIMITED_LABELS = {
    "deductible": _("扣除年度起付线"),
    "cap_per_episode": _("达到单次封顶"),
    "cap_per_year": _("达到年度封顶"),
}
