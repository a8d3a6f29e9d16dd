"""Guardian-reward coverage, read through the subsidies app when it offers it.

The subsidies app owns who is eligible and whose award is active. This app
looks up ``subsidies.selectors.reward_coverage_counts`` lazily; the function
takes a region and a date (keyword ``region=``/``date=`` or positionally)
and returns the counts for that region on that date, either as a mapping
``{"eligible": n, "active": m}`` or as a pair ``(eligible, active)``, both
judged on that date (the register as of it, the awards active on it), so
a past quarter never counts today's state. When
the function is missing, the indicator reports as not available; no value
is invented.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from datetime import date
from importlib import import_module

from accounts.models import Region

MODULE = "subsidies.selectors"
FUNCTION = "reward_coverage_counts"
# The same counts for every region of a county at once, per patient region
# (``county=``, ``date=`` → ``{region code: {"eligible": n, "active": m}}``
# or None), summed upwards here: what the nightly snapshot uses.
COUNTY_FUNCTION = "reward_coverage_by_region"


def _lookup(name: str) -> Callable | None:
    try:
        module = import_module(MODULE)
    except ImportError:
        return None
    fn = getattr(module, name, None)
    return fn if callable(fn) else None


def coverage_function() -> Callable | None:
    return _lookup(FUNCTION)


def county_coverage_function() -> Callable | None:
    return _lookup(COUNTY_FUNCTION)


def _call(fn: Callable, region: Region, on: date):
    try:
        inspect.signature(fn).bind(region=region, date=on)
    except TypeError:
        return fn(region, on)
    return fn(region=region, date=on)


def coverage_counts(region: Region, on: date, fn: Callable | None = None) -> dict[str, int] | None:
    """``{"reward_eligible": n, "reward_active": m}`` or None when unavailable."""
    fn = fn or coverage_function()
    if fn is None:
        return None
    result = _call(fn, region, on)
    if result is None:
        return None
    if isinstance(result, Mapping):
        eligible, active = result.get("eligible"), result.get("active")
    else:
        eligible, active = result
    if eligible is None or active is None:
        return None
    return {"reward_eligible": int(eligible), "reward_active": int(active)}


def subtree_coverage(county: Region, on: date) -> dict[str, dict[str, int]] | None:
    """``coverage_counts`` of the county and of every region inside it:
    from the per-village counts of ``COUNTY_FUNCTION``, summed up the
    region tree (one statement for the whole county), else region by
    region through ``FUNCTION``. None when unavailable for the county."""
    from reports.rules import rollup

    regions = list(Region.objects.filter(path__startswith=county.path).only("code", "path"))
    grouped = county_coverage_function()
    if grouped is not None:
        leaves = grouped(county=county, date=on)
        if leaves is None:
            return None
        paths = {r.code: r.path for r in regions}
        leaves = {code: row for code, row in leaves.items() if code in paths}
        sums = rollup(leaves, paths, paths, keys=("eligible", "active"))
        return {
            code: {"reward_eligible": row["eligible"], "reward_active": row["active"]}
            for code, row in sums.items()
        }
    fn = coverage_function()
    if fn is None:
        return None
    out = {}
    for region in regions:
        extra = coverage_counts(region, on, fn)
        if extra is not None:
            out[region.code] = extra
    return out or None
