"""The English translation: Chinese is the source language, English comes
from ``locale/en/LC_MESSAGES/django.po`` through Django's i18n (PostgreSQL).

A user who picks English (language cookie from ``/i18n/setlang/`` or the
browser's ``Accept-Language``) sees English pages; everyone else sees
Chinese. Every message in the catalogue, and every message in the code and
templates, must have an English translation, so a new untranslated string
fails CI.
"""

from __future__ import annotations

import ast
import gettext
import os
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import translation
from django.utils.translation.template import templatize

from patients.tests import factories as pf

BASE_DIR = Path(settings.BASE_DIR)
LOCALE_DIR = BASE_DIR / "locale" / "en" / "LC_MESSAGES"
PO_FILE = LOCALE_DIR / "django.po"
MO_FILE = LOCALE_DIR / "django.mo"

LOGIN_URL = reverse("accounts:login")
LIST_URL = reverse("patients:list")
SETLANG_URL = reverse("set_language")

# What a township doctor's patient list shows as column headers.
HEADERS_ZH = ("姓名", "性别/年龄", "证件号码", "现住址", "诊断", "管理状态", "危险性", "下次随访")
HEADERS_EN = (
    "Name",
    "Sex / age",
    "ID number",
    "Current address",
    "Diagnosis",
    "Management status",
    "Risk",
    "Next follow-up",
)
# One budget for 1 and 30 rows (22-23 measured: session, auth, MFA device,
# scope, regions, break-glass grants, count, audit, page, stats, session save);
# a query per row would add at least 20 on a full page.
LIST_QUERY_BUDGET = 25

# The same file set as `manage.py makemessages -l en --ignore=.venv --ignore=var
# --ignore=bench` (hidden directories are skipped by makemessages too).
SKIPPED_DIRS = {".venv", "var", "bench", "node_modules", "staticfiles", "locale", "__pycache__"}
# xgettext's Python keywords plus the ones makemessages adds: name -> positions
# of (context, singular, plural) among the call's arguments.
KEYWORDS = {
    "_": (None, 0, None),
    "gettext": (None, 0, None),
    "gettext_lazy": (None, 0, None),
    "gettext_noop": (None, 0, None),
    "ngettext": (None, 0, 1),
    "ngettext_lazy": (None, 0, 1),
    "pgettext": (0, 1, None),
    "pgettext_lazy": (0, 1, None),
    "npgettext": (0, 1, 2),
    "npgettext_lazy": (0, 1, 2),
}
TEMPLATIZED_CALL = re.compile(
    r"(?<!\w)(?:_|gettext|ngettext|pgettext|npgettext)\((?:[^()'\"]|'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")*\)"
)
PLACEHOLDER = re.compile(r"%\(\w+\)[sd]|%[sd]|\{\w*\}")


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------


def _unquote(line: str) -> str:
    return ast.literal_eval(line)


def read_po(path: Path = PO_FILE) -> list[dict]:
    """The catalogue's entries (header excluded), parsed without polib."""
    entries: list[dict] = []
    current: dict = {}
    field = None

    def flush():
        if current.get("msgid") is not None:
            entries.append(dict(current))
        current.clear()

    for raw in path.read_text(encoding="utf-8").splitlines() + [""]:
        line = raw.strip()
        if not line:
            flush()
            field = None
            continue
        if line.startswith("#~"):
            current["obsolete"] = True
            continue
        if line.startswith("#,"):
            current.setdefault("flags", set()).update(f.strip() for f in line[2:].split(","))
            continue
        if line.startswith("#"):
            continue
        match = re.match(r"^(msgctxt|msgid_plural|msgid|msgstr(?:\[\d+\])?)\s+(\".*\")$", line)
        if match:
            field = match.group(1)
            current[field] = _unquote(match.group(2))
        else:
            current[field] += _unquote(line)
    flush()
    return [e for e in entries if e["msgid"] != "" and not e.get("obsolete")]


def translations_of(entry: dict) -> list[str]:
    return [value for key, value in entry.items() if key.startswith("msgstr")]


def key_of(context: str | None, msgid: str) -> tuple[str | None, str]:
    return (context or None, msgid)


def _source_files(suffixes: tuple[str, ...]):
    for dirpath, dirnames, filenames in os.walk(BASE_DIR):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIPPED_DIRS and not d.startswith("."))
        for filename in sorted(filenames):
            if filename.endswith(suffixes):
                yield Path(dirpath) / filename


def _messages_in_python(source: str) -> set[tuple[str | None, str]]:
    found = set()
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
        if name not in KEYWORDS:
            continue
        ctx_at, singular_at, _plural_at = KEYWORDS[name]
        args = node.args

        def literal(i):
            if i is None or i >= len(args):
                return None
            arg = args[i]
            return (
                arg.value if isinstance(arg, ast.Constant) and isinstance(arg.value, str) else None
            )

        msgid = literal(singular_at)
        if msgid:
            found.add(key_of(literal(ctx_at), msgid))
    return found


def source_messages() -> set[tuple[str | None, str]]:
    """Every translatable message in the code and templates, the way
    makemessages finds them (templates are templatized first)."""
    found: set[tuple[str | None, str]] = set()
    for path in _source_files((".py",)):
        source = path.read_text(encoding="utf-8")
        if "gettext" in source or "_(" in source:
            found |= _messages_in_python(source)
    for path in _source_files((".html", ".txt")):
        code = templatize(path.read_text(encoding="utf-8"), origin=str(path))
        calls = "\n".join(TEMPLATIZED_CALL.findall(code))
        found |= _messages_in_python(calls)
    return found


def html(response) -> str:
    return response.content.decode()


@pytest.fixture(autouse=True)
def _restore_language():
    """Requests activate a language for the thread; put the default back so
    no later test formats its messages in English."""
    before = translation.get_language()
    yield
    translation.activate(before or settings.LANGUAGE_CODE)


# --------------------------------------------------------------------------
# pages
# --------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.postgres
def test_login_page_is_chinese_by_default(client):
    page = html(client.get(LOGIN_URL))
    assert '<html lang="zh-hans">' in page
    for text in ("登录精防通", "用户名", "密码", "登录"):
        assert text in page
    assert "Log in" not in page and "Username" not in page


@pytest.mark.django_db
@pytest.mark.postgres
def test_login_page_is_english_for_a_browser_asking_for_english(client):
    page = html(client.get(LOGIN_URL, headers={"accept-language": "en-GB,en;q=0.9"}))
    assert '<html lang="en">' in page
    for text in ("Log in to Jingfangtong", "Username", "Password", ">Log in</button>"):
        assert text in page
    for text in ("登录精防通", "用户名", "密码"):
        assert text not in page


@pytest.mark.django_db
@pytest.mark.postgres
def test_login_page_is_english_with_the_language_cookie(client):
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    page = html(client.get(LOGIN_URL))
    assert "Log in to Jingfangtong" in page and "Username" in page
    assert "用户名" not in page


@pytest.mark.django_db
@pytest.mark.postgres
def test_the_footer_switch_sets_english_for_a_signed_in_user(client, world, patients):
    client.force_login(world.users.doctor_a)
    assert "姓名" in html(client.get(LIST_URL))
    response = client.post(SETLANG_URL, {"language": "en", "next": LIST_URL})
    assert response.status_code == 302 and response["Location"] == LIST_URL
    assert client.cookies[settings.LANGUAGE_COOKIE_NAME].value == "en"
    page = html(client.get(LIST_URL))
    assert '<html lang="en">' in page and '<th scope="col">Name</th>' in page
    assert "Log out" in page and "退出" not in page
    client.post(SETLANG_URL, {"language": "zh-hans", "next": LIST_URL})
    assert "退出" in html(client.get(LIST_URL))


@pytest.mark.django_db
@pytest.mark.postgres
def test_patient_list_headers_are_chinese_by_default(client, world, patients):
    client.force_login(world.users.doctor_a)
    page = html(client.get(LIST_URL))
    headers = re.findall(r'<th scope="col">([^<]*)</th>', page)
    assert tuple(headers) == HEADERS_ZH
    assert patients.pA1.name in page


@pytest.mark.django_db
@pytest.mark.postgres
@pytest.mark.parametrize("rows", [1, 30])
def test_patient_list_headers_are_english_for_an_english_user(
    client, world, rows, django_assert_max_num_queries
):
    for i in range(rows):
        pf.patient(by=world.users.doctor_a, village="990102001001", name=f"英文{i:02d}")
    client.force_login(world.users.doctor_a)
    with CaptureQueriesContext(connection) as chinese:
        client.get(LIST_URL)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    with (
        django_assert_max_num_queries(LIST_QUERY_BUDGET),
        CaptureQueriesContext(connection) as english,
    ):
        response = client.get(LIST_URL)
    # the translation comes from the compiled catalogue, not the database
    assert len(english) <= len(chinese)
    page = html(response)
    headers = re.findall(r'<th scope="col">([^<]*)</th>', page)
    assert tuple(headers) == HEADERS_EN
    assert f'data-label="{HEADERS_EN[0]}"' in page
    # choices labels come from the catalogue too
    assert "Schizophrenia" in page and "Managed" in page
    assert "精神分裂症" not in page and "在管" not in page
    expected = "1 patient" if rows == 1 else f"{rows} patients"
    assert expected in page


# --------------------------------------------------------------------------
# the catalogue
# --------------------------------------------------------------------------


def test_every_message_in_the_catalogue_is_translated():
    entries = read_po()
    assert len(entries) > 1000
    untranslated = [e["msgid"] for e in entries if not all(translations_of(e))]
    assert untranslated == [], f"{len(untranslated)} untranslated: {untranslated[:20]}"
    fuzzy = [e["msgid"] for e in entries if "fuzzy" in e.get("flags", set())]
    assert fuzzy == [], f"{len(fuzzy)} fuzzy entries: {fuzzy[:20]}"


def test_translations_keep_the_placeholders():
    wrong = []
    for entry in read_po():
        sources = [entry["msgid"], entry.get("msgid_plural", entry["msgid"])]
        for i, text in enumerate(translations_of(entry)):
            source = sources[min(i, 1)]
            if sorted(PLACEHOLDER.findall(source)) != sorted(PLACEHOLDER.findall(text)):
                wrong.append((source, text))
    assert wrong == []


def test_the_compiled_catalogue_matches_the_po_file():
    """`manage.py compilemessages` was run after the last change to django.po."""
    with MO_FILE.open("rb") as fh:
        compiled = gettext.GNUTranslations(fh)
    stale = []
    for entry in read_po():
        context = entry.get("msgctxt")
        if "msgid_plural" in entry:
            got = [
                compiled.npgettext(context, entry["msgid"], entry["msgid_plural"], n)
                if context
                else compiled.ngettext(entry["msgid"], entry["msgid_plural"], n)
                for n in (1, 2)
            ]
            want = [entry["msgstr[0]"], entry["msgstr[1]"]]
        else:
            got = [
                compiled.pgettext(context, entry["msgid"])
                if context
                else compiled.gettext(entry["msgid"])
            ]
            want = [entry["msgstr"]]
        if got != want:
            stale.append(entry["msgid"])
    assert stale == [], f"django.mo is out of date for {len(stale)} messages: {stale[:10]}"


def test_every_message_in_the_code_has_an_english_translation():
    """A string added to a template or module without `make messages` and a
    translation fails here, listing what is missing."""
    translated = {
        key_of(e.get("msgctxt"), e["msgid"]) for e in read_po() if all(translations_of(e))
    }
    found = source_messages()
    assert len(found) > 1000
    missing = sorted(found - translated, key=lambda k: (k[0] or "", k[1]))
    assert missing == [], (
        f"{len(missing)} messages have no English translation; run `make messages`, "
        f"translate them in locale/en/LC_MESSAGES/django.po and compile: {missing[:20]}"
    )


CJK = re.compile(r"[\u3400-\u9fff]")


def _unwrapped_literals(node):
    """The string literals of an expression that no call encloses."""
    if isinstance(node, ast.Call):
        return
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        yield node.value
    for child in ast.iter_child_nodes(node):
        yield from _unwrapped_literals(child)


def test_message_constants_are_marked_for_translation():
    """An ``ERR_*`` or ``MSG_*`` constant holding a plain Chinese string is
    never extracted by makemessages, so English users get Chinese: wrap it in
    gettext_lazy, or gettext_noop where it must stay a plain string (pure
    rules) and is translated where it is shown."""
    unmarked = []
    for path in _source_files((".py",)):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Assign | ast.AnnAssign) or node.value is None:
                continue
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = [t.id for t in targets if isinstance(t, ast.Name)]
            if not any(n.startswith(("ERR_", "MSG_")) for n in names):
                continue
            # a literal is marked when a call (gettext_lazy, gettext_noop)
            # encloses it, also inside a dict or tuple of messages
            if any(CJK.search(text) for text in _unwrapped_literals(node.value)):
                unmarked.append(f"{path.relative_to(BASE_DIR)}: {names[0]}")
    assert unmarked == []


@pytest.mark.django_db
def test_id_number_errors_of_the_rules_are_english_in_the_english_api(world):
    from rest_framework.test import APIClient

    from patients import rules

    client = APIClient()
    client.force_authenticate(user=world.users.doctor_a)
    payload = {
        "name": "英文错误",
        "id_number": "110105194912310021",  # wrong check character
        "region": "990102001001",
        "address": "地址",
        "diagnosis": "schizophrenia",
    }
    response = client.post(
        "/api/v1/patients/", payload, format="json", headers={"accept-language": "en"}
    )
    assert response.status_code == 400
    assert response.json() == {
        "id_number": ["The check character of the ID number is wrong; please check the number."]
    }
    response = client.post("/api/v1/patients/", payload, format="json")
    assert response.json() == {"id_number": [rules.ERR_CHECKSUM]}
