"""Optimistic locking over HTTP (SECURITY.md R6, G18; RFC 9110 §13.1.1).

A record's ``version`` is its entity tag: a read answers ``ETag: "<version>"``,
a change must send it back in ``If-Match``. Missing → 428; a tag that cannot
be the current version → 412; the service compares the number under a row
lock and raises ``StaleVersion`` (412) when someone saved in between.
"""

from __future__ import annotations

import re

from core.api.exceptions import PreconditionFailed, PreconditionRequired

_STRONG_TAG = re.compile(r'^"(\d{1,10})"$')


def etag_for(version: int) -> str:
    return f'"{version}"'


def expected_version_from(request) -> int:
    """The version named by the request's ``If-Match`` header.

    Only one strong tag is accepted. ``*`` is refused with 428 because it
    would skip the very check the header exists for; a weak or malformed tag
    never matches (412), since our tags are always one strong number.
    """
    raw = (request.headers.get("If-Match") or "").strip()
    if not raw or raw == "*":
        raise PreconditionRequired()
    match = _STRONG_TAG.match(raw)
    if match is None:
        raise PreconditionFailed()
    return int(match.group(1))
