"""Guardian-reward coverage, read through the subsidies app when it offers it.

The subsidies app owns who is eligible and whose award is active. This app
looks up ``subsidies.selectors.reward_coverage_counts`` lazily; the function
takes a region and a date (keyword ``region=``/``date=`` or positionally)
and returns the counts for that region on that date, either as a mapping
``{"eligible": n, "active": m}`` or as a pair ``(eligible, active)``. When
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


def coverage_function() -> Callable | None:
    try:
        module = import_module(MODULE)
    except ImportError:
        return None
    fn = getattr(module, FUNCTION, None)
    return fn if callable(fn) else None


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
