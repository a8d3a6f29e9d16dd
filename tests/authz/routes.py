"""Every route of the URL conf, found by walking ``django.urls.get_resolver()``.

A route is named ``namespace:name`` (DRF router routes included, under their
app's namespace). For class-based views the HTTP methods come from the view
(DRF viewsets: the router's ``actions``; APIView/View: the handlers it
defines); function views do not say which methods they accept, so for them
the matrix file names the methods itself.

``python -m tests.authz.routes`` lists the routes (there is no show_urls).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.urls import URLPattern, URLResolver, get_resolver

# Methods every view answers the same way (HEAD is GET without a body, OPTIONS
# is metadata): they are not matrix cells of their own.
IMPLICIT = frozenset({"head", "options"})
# Django admin has its own login and permission model (is_staff and model
# permissions); its generated routes are one matrix group ("admin:*").
ADMIN_NAMESPACE = "admin"


@dataclass(frozen=True)
class Route:
    name: str  # "patients:detail", "patients-api:patient-list"
    pattern: str  # "patients/<uuid:pk>/"
    methods: frozenset[str] | None  # upper-case; None = function view (unknown)
    view: str  # dotted path of the callback, for messages

    @property
    def is_api(self) -> bool:
        return self.pattern.startswith("api/")

    @property
    def kwargs(self) -> tuple[str, ...]:
        return _kwargs(self.pattern)


def _kwargs(pattern: str) -> tuple[str, ...]:
    names = []
    for conv, regex in re.findall(r"<(?:\w+:)?(\w+)>|\(\?P<(\w+)>", pattern):
        names.append(conv or regex)
    return tuple(names)


def _methods(callback) -> frozenset[str] | None:
    actions = getattr(callback, "actions", None)
    if actions:  # DRF viewset route
        return frozenset(m.upper() for m in actions if m not in IMPLICIT)
    cls = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
    if cls is None:
        return None
    names = getattr(cls, "http_method_names", ())
    return frozenset(m.upper() for m in names if m not in IMPLICIT and hasattr(cls, m))


def _clean(pattern: str) -> str:
    # DRF router regexes: "^patients/(?P<id>[^/.]+)/$" inside "api/v1/"
    return pattern.replace("^", "").replace("$", "")


def _walk(patterns, prefix: str, namespace: str | None):
    for p in patterns:
        if isinstance(p, URLResolver):
            ns = namespace
            if p.namespace:
                ns = f"{namespace}:{p.namespace}" if namespace else p.namespace
            yield from _walk(p.url_patterns, prefix + str(p.pattern), ns)
        elif isinstance(p, URLPattern):
            name = p.name or getattr(p.callback, "__name__", "?")
            full = f"{namespace}:{name}" if namespace else name
            callback = p.callback
            view = f"{callback.__module__}.{getattr(callback, '__qualname__', callback.__name__)}"
            yield Route(full, _clean(prefix + str(p.pattern)), _methods(callback), view)


def all_routes() -> list[Route]:
    """Every route, in URL conf order; a name appears once (first wins)."""
    seen: dict[str, Route] = {}
    for route in _walk(get_resolver().url_patterns, "", None):
        seen.setdefault(route.name, route)
    return list(seen.values())


def is_admin_site(route: Route) -> bool:
    return route.name.split(":", 1)[0] == ADMIN_NAMESPACE


def main() -> None:  # pragma: no cover - developer helper
    import os

    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
    django.setup()
    from tests.authz.matrix import MATRIX

    for route in all_routes():
        if is_admin_site(route):
            continue
        methods = ",".join(sorted(route.methods)) if route.methods is not None else "?"
        mark = " " if route.name in MATRIX else "!"
        print(f"{mark} {route.name:48} {methods:18} /{route.pattern}")


if __name__ == "__main__":  # pragma: no cover
    main()
