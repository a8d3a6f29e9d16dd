"""``manage.py import_regions``: load a real county's administrative tree and
organisations from CSV or Excel (README → Setting up a real county).

All or nothing: any error in any row stops the import before anything is
written, listing row, column and reason. Running it again with the same
file changes nothing.
"""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext_lazy as _

from accounts.region_import import ImportFailed, check_tables, read_tables, regions_import

MSG_FAILED = _("导入失败：发现%(count)d处错误，未写入任何数据。")
MSG_CHECKED = _("检查通过：行政区划%(regions)d行，机构%(organisations)d行；未写入（--dry-run）。")
MSG_DONE = _(
    "导入完成。行政区划：新增%(r_created)d，更新%(r_updated)d，未变%(r_unchanged)d；"
    "机构：新增%(o_created)d，更新%(o_updated)d，未变%(o_unchanged)d。"
)


class Command(BaseCommand):
    help = (
        "Load regions (code, name, level or parent, population) and organisations "
        "(name, department, kind, region) from .csv or .xlsx; all or nothing, idempotent."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "file",
            nargs="?",
            help="regions as .csv, or an .xlsx with the sheets 行政区划/regions and 机构/organisations",
        )
        parser.add_argument("--organisations", help="organisations as .csv or .xlsx")
        parser.add_argument("--dry-run", action="store_true", help="check only, write nothing")

    def handle(self, *args, **opts):
        source = " ".join(p for p in (opts["file"], opts["organisations"]) if p)
        try:
            regions, organisations = read_tables(opts["file"], opts["organisations"])
            region_rows, org_rows = check_tables(regions, organisations)
        except ImportFailed as exc:
            self._fail(exc.errors)
        if opts["dry_run"]:
            self.stdout.write(
                str(MSG_CHECKED % {"regions": len(region_rows), "organisations": len(org_rows)})
            )
            return
        try:
            result = regions_import(regions=region_rows, organisations=org_rows, source=source)
        except ValidationError as exc:  # a check above should have caught it
            self._fail([f"{k}: {'; '.join(v)}" for k, v in exc.message_dict.items()])
        counts = {f"r_{k}": v for k, v in result.regions.items()}
        counts |= {f"o_{k}": v for k, v in result.organisations.items()}
        self.stdout.write(self.style.SUCCESS(str(MSG_DONE % counts)))

    def _fail(self, errors):
        for error in errors:
            self.stderr.write(error)
        raise CommandError(str(MSG_FAILED % {"count": len(errors)}))
