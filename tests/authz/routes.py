"""Every route of the URL conf, found by walking ``django.urls.get_resolver()``.

A route is named ``namespace:name`` (DRF router routes included, under their
app's namespace). The HTTP methods come from the view: DRF viewsets, the
router's ``actions``; APIView/View, the handlers it defines; function views,
the ``require_http_methods`` family (``require_GET``, ``require_POST``,
``require_safe``) they are wrapped in, found by walking the ``__wrapped__``
chain to the closure that holds ``request_method_list``. Every function view
of the project must declare its methods so (``test_matrix``); a third-party
function view (Django's ``set_language``) has none, and the matrix names its
methods itself.

``python -m tests.authz.routes`` lists the routes (there is no show_urls).
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
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
    methods: frozenset[str] | None  # upper-case; None = a function view that declares none
    view: str  # dotted path of the callback, for messages
    project: bool = True  # the view is the project's code (not Django's or a library's)
    function: bool = False  # a function view (not a class-based one)

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


def _view_class(callback):
    return getattr(callback, "cls", None) or getattr(callback, "view_class", None)


def declared_methods(func) -> frozenset[str] | None:
    """The methods a function view's ``require_http_methods`` decorators let
    through (upper-case, HEAD and OPTIONS left out), or None when it has
    none. The decorator's ``inner`` closes over ``request_method_list``;
    stacked decorators are walked through ``__wrapped__`` and intersected."""
    found: frozenset[str] | None = None
    seen: set[int] = set()
    while func is not None and id(func) not in seen:
        seen.add(id(func))
        code = getattr(func, "__code__", None)
        if code is not None and "request_method_list" in code.co_freevars:
            cell = func.__closure__[code.co_freevars.index("request_method_list")]
            methods = frozenset(m.upper() for m in cell.cell_contents)
            found = methods if found is None else found & methods
        func = getattr(func, "__wrapped__", None)
    if found is None:
        return None
    return frozenset(m for m in found if m.lower() not in IMPLICIT)


def _methods(callback) -> frozenset[str] | None:
    actions = getattr(callback, "actions", None)
    if actions:  # DRF viewset route
        return frozenset(m.upper() for m in actions if m not in IMPLICIT)
    cls = _view_class(callback)
    if cls is None:
        return declared_methods(callback)
    names = getattr(cls, "http_method_names", ())
    return frozenset(m.upper() for m in names if m not in IMPLICIT and hasattr(cls, m))


def _is_project_code(callback) -> bool:
    """Defined in a module of this repository, not of an installed package."""
    module = sys.modules.get(callback.__module__)
    source = getattr(module, "__file__", None)
    if not source:
        return False
    path = Path(source).resolve()
    base = Path(settings.BASE_DIR).resolve()
    return path.is_relative_to(base) and "site-packages" not in path.parts


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
            yield Route(
                full,
                _clean(prefix + str(p.pattern)),
                _methods(callback),
                view,
                project=_is_project_code(callback),
                function=_view_class(callback) is None and not getattr(callback, "actions", None),
            )


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
