from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class AuditEvent(models.Model):
    """One append-only audit row: a read or write of patient data, a login,
    a denial or an admin action. ``detail`` never holds personal data (names,
    ID numbers, phones): search terms are stored as keyed hashes.

    Rows are chained: ``hash`` covers the previous row's hash and this row's
    content, so a changed or deleted row breaks ``verify_audit_chain``. How
    it is computed is versioned per row (``hash_version``; rows are never
    re-hashed, the table is append-only): 1 = SHA-256 without the account
    name (rows written before the keyed chain), 2 = HMAC-SHA256 under
    ``AUDIT_CHAIN_KEY`` including ``actor_username`` (audit.services).
    """

    at = models.DateTimeField(_("时间"), default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("操作人"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_constraint=False,
    )
    actor_username = models.CharField(_("账号"), max_length=150, blank=True)
    action = models.CharField(_("动作"), max_length=64, db_index=True)
    object_type = models.CharField(_("对象类型"), max_length=64, blank=True)
    object_id = models.CharField(_("对象"), max_length=64, blank=True, db_index=True)
    detail = models.JSONField(_("详情"), default=dict, blank=True)
    ip = models.GenericIPAddressField(_("IP"), null=True, blank=True)
    prev_hash = models.CharField(max_length=64, blank=True)
    hash = models.CharField(max_length=64, blank=True)
    hash_version = models.PositiveSmallIntegerField(default=2)

    class Meta:
        verbose_name = _("审计记录")
        verbose_name_plural = _("审计记录")
        ordering = ["-id"]
        indexes = [models.Index(fields=["object_type", "object_id", "at"], name="audit_object_at")]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor_username} {self.action}"
