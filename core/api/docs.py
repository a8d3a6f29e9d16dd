"""The Swagger UI at /api/docs/, under the strict CSP.

``SpectacularSwaggerSplitView`` already serves its start-up script as a
separate request (``?script``), so ``script-src 'self'`` holds; the JS and CSS
come from drf-spectacular-sidecar under /static/. The page template still has
one small inline ``<style>`` block: rather than loosening ``style-src`` for the
whole site, this view allows exactly that block by its SHA-256 (CSP level 2
hash source), computed from the template so an upgrade cannot drift from it.
"""

from __future__ import annotations

import base64
import hashlib
import re
from functools import cache

from django.template.loader import get_template
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularSwaggerSplitView

_STYLE_BLOCK = re.compile(r"<style>(.*?)</style>", re.DOTALL)


@cache
def inline_style_sources(template_name: str) -> tuple[str, ...]:
    """CSP hash sources (``'sha256-…'``) of the template's inline style blocks."""
    source = get_template(template_name).template.source
    return tuple(
        "'sha256-{}'".format(
            base64.b64encode(hashlib.sha256(block.encode("utf-8")).digest()).decode("ascii")
        )
        for block in _STYLE_BLOCK.findall(source)
    )


class ApiDocsView(SpectacularSwaggerSplitView):
    @extend_schema(exclude=True)
    def get(self, request, *args, **kwargs):
        response = super().get(request, *args, **kwargs)
        if request.GET.get("script") is None:
            hashes = inline_style_sources(self.template_name)
            if hashes:
                # read by csp.middleware.CSPMiddleware, as @csp_update would set it
                response._csp_update = {"style-src": list(hashes)}
        return response
