"""The navigation of each role: computed in Python, rendered by base.html."""

from __future__ import annotations

from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext_lazy as _

from accounts.roles import Role

PATIENTS = ("patients:list", _("患者"))
OVERDUE = ("followups:overdue", _("逾期随访"))
ALERTS = ("alerts:list", _("预警"))
REFERRALS = ("referrals:inbox", _("转诊"))
SUBSIDIES = ("subsidies:home", _("以奖代补"))
SETTLEMENTS = ("subsidies:settlement-list", _("一站式结算"))
REPORTS = ("reports:dashboard", _("统计"))
EXCHANGE = ("referrals:exchange-home", _("信息交换"))
STAFF = ("accounts:staff-list", _("账号管理"))
AUDIT = ("audit:event-list", _("审计日志"))
INCIDENTS = ("followups:incident-list", _("肇事肇祸"))

NAV: dict[str, tuple[tuple[str, object], ...]] = {
    Role.TOWNSHIP_DOCTOR: (PATIENTS, OVERDUE, ALERTS, REFERRALS, REPORTS),
    Role.HOSPITAL_DOCTOR: (PATIENTS, REFERRALS, SETTLEMENTS, ALERTS, REPORTS),
    Role.PREVENTION_STAFF: (PATIENTS, OVERDUE, ALERTS, REFERRALS, REPORTS, EXCHANGE),
    Role.POLICE: (ALERTS, PATIENTS, INCIDENTS),
    Role.GOVERNANCE: (ALERTS, PATIENTS, SUBSIDIES, REPORTS, EXCHANGE),
    Role.CIVIL_AFFAIRS: (PATIENTS, SUBSIDIES, SETTLEMENTS, REPORTS, EXCHANGE),
    Role.DISABLED_FEDERATION: (PATIENTS, SETTLEMENTS, REPORTS, EXCHANGE),
    Role.FINANCE: (SUBSIDIES, SETTLEMENTS, REPORTS),
    Role.OFFICIAL: (REPORTS,),
    Role.ADMIN: (STAFF,),
    Role.SECURITY_ADMIN: (STAFF,),
    Role.AUDIT_ADMIN: (AUDIT,),
}


def nav_for(role: str | None, current_path: str) -> list[dict]:
    items = []
    for url_name, label in NAV.get(role or "", ()):
        try:
            url = reverse(url_name)
        except NoReverseMatch:
            continue  # the page's app is not installed in this build
        items.append({"url": url, "label": label, "active": current_path.startswith(url)})
    return items
