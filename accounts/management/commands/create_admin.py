"""``manage.py create_admin``: the first system administrator of a county,
and the first security and audit administrators (``--role``).

Unlike ``createsuperuser`` (a Django superuser with no role, organisation
or scope), this creates a staff account with the admin role in one
organisation through ``accounts.services.staff_create``, so the password
rules, the history and the audit row are those of every other account.
The admin then signs in at /accounts/login/, enrols a TOTP authenticator on
that first sign-in, and asks for the other accounts on the account pages,
which a security admin authorises (the two-person rule, SECURITY.md G4).
The 三员 that start a county are therefore made here, at the console by
the operator (like ``seed_demo``, the system itself), not by one another.
"""

import getpass
import os

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext_lazy as _

from accounts.models import Organisation
from accounts.roles import Role
from accounts.services import staff_create
from core.errors import DomainError

PASSWORD_ENV = "ADMIN_PASSWORD"

ERR_ORG_MISSING = _("找不到机构“%(organisation)s”。")
ERR_ORG_AMBIGUOUS = _(
    "有多个名为“%(organisation)s”的机构，请用 --region 指定区划代码，或填写机构编号。"
)
ERR_PASSWORD_MISMATCH = _("两次输入的密码不一致。")
ERR_PASSWORD_MISSING = _("使用 --no-input 时，请在环境变量 %(name)s 中提供密码。")
MSG_CREATED = _(
    "已创建系统管理员 %(username)s（%(organisation)s）。首次登录时须绑定动态验证码（TOTP）。"
)
MSG_CREATED_ROLE = _(
    "已创建%(role)s %(username)s（%(organisation)s）。首次登录时须绑定动态验证码（TOTP）。"
)
ROLES = (Role.ADMIN, Role.SECURITY_ADMIN, Role.AUDIT_ADMIN)


class Command(BaseCommand):
    help = (
        "Create a system administrator (admin role; or with --role a security or audit "
        "administrator) in an organisation; TOTP enrolment follows at the first sign-in."
    )

    def add_arguments(self, parser):
        parser.add_argument("--username", required=True)
        parser.add_argument(
            "--organisation", required=True, help="the organisation's id or name (e.g. 县卫健局)"
        )
        parser.add_argument("--region", help="division code of the organisation, when names repeat")
        parser.add_argument(
            "--role",
            default=Role.ADMIN.value,
            choices=[r.value for r in ROLES],
            help="admin (default), security_admin or audit_admin",
        )
        parser.add_argument("--display-name", default="")
        parser.add_argument("--phone", default="")
        parser.add_argument(
            "--no-input",
            action="store_true",
            help=f"read the password from the environment variable {PASSWORD_ENV}",
        )

    def handle(self, *args, **opts):
        organisation = self._organisation(opts["organisation"], opts["region"])
        password = self._password(opts["no_input"])
        try:
            user = staff_create(
                username=opts["username"].strip(),
                password=password,
                organisation=organisation,
                role=opts["role"],
                display_name=opts["display_name"],
                phone=opts["phone"],
            )
        except DomainError as exc:
            raise CommandError(str(exc.message)) from exc
        except ValidationError as exc:
            raise CommandError(" ".join(str(m) for m in exc.messages)) from exc
        values = {"username": user.username, "organisation": organisation.name}
        if opts["role"] == Role.ADMIN:
            message = MSG_CREATED % values
        else:
            message = MSG_CREATED_ROLE % {**values, "role": Role(opts["role"]).label}
        self.stdout.write(self.style.SUCCESS(str(message)))

    def _organisation(self, value: str, region: str | None) -> Organisation:
        qs = Organisation.objects.select_related("region").filter(is_active=True)
        if region:
            qs = qs.filter(region_id=region)
        matches = list(qs.filter(pk=int(value))) if value.isdigit() else []
        matches = matches or list(qs.filter(name=value.strip())[:2])
        if not matches:
            raise CommandError(str(ERR_ORG_MISSING % {"organisation": value}))
        if len(matches) > 1:
            raise CommandError(str(ERR_ORG_AMBIGUOUS % {"organisation": value}))
        return matches[0]

    def _password(self, no_input: bool) -> str:
        if no_input:
            password = os.environ.get(PASSWORD_ENV, "")
            if not password:
                raise CommandError(str(ERR_PASSWORD_MISSING % {"name": PASSWORD_ENV}))
            return password
        first = getpass.getpass(str(_("密码：")))
        second = getpass.getpass(str(_("再次输入密码：")))
        if first != second:
            raise CommandError(str(ERR_PASSWORD_MISMATCH))
        return first
