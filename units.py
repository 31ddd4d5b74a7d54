"""Parsers for the durations, sizes and accuracies users type on the command line.

Durations: ``200ms``, ``0.2s``, ``1s``, ``5m``, ``1h`` (a bare number is rejected: say the unit).
Sizes: ``512MB``, ``2GiB``, ``1769MB`` (MB = 10^6 bytes is *not* used: AWS Lambda's "MB" is MiB,
so MB and MiB both mean 2^20 bytes here, as in the Lambda console).
Accuracies: ``0.75``, ``75%`` or ``75`` (a number above 1 is read as percent).
"""

from __future__ import annotations

import math
import re

from hetplan.errors import HetplanError

# Beyond these a value is a typo, not a plan (and 1e309 would reach the solver and the JSON writer as inf).
MAX_DURATION_S = 366 * 86400.0   # a year and a day
MAX_SIZE_MB = 1024.0 ** 3        # an exbibyte

_DURATION_UNITS = {"ms": 1e-3, "s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}
_SIZE_UNITS_MB = {"kb": 1 / 1024, "kib": 1 / 1024, "mb": 1.0, "mib": 1.0, "gb": 1024.0, "gib": 1024.0}
_NUMBER_UNIT = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([A-Za-z%]*)\s*$")


def _split(text: str, what: str, example: str) -> tuple[float, str]:
    match = _NUMBER_UNIT.match(str(text))
    if not match:
        raise HetplanError(f"cannot read {what} '{text}': write a number with a unit, e.g. {example}")
    return float(match.group(1)), match.group(2)


def _parse_with_unit(text: str, units: dict[str, float], what: str, example: str, unit_hint: str, bare: str,
                     bound: tuple[float, str]) -> float:
    value, unit = _split(text, what, example)
    if not unit:
        raise HetplanError(f"{what} '{text}' has no unit: write e.g. {text}{bare}")
    factor = units.get(unit.lower())
    if factor is None:
        raise HetplanError(f"unknown {what} unit '{unit}' in '{text}': use {unit_hint}")
    if value <= 0:
        raise HetplanError(f"{what} '{text}' must be positive")
    limit, shown = bound
    if not math.isfinite(value * factor) or value * factor > limit:
        raise HetplanError(f"{what} '{text}' is beyond {shown}: write a value at most that")
    return value * factor


def parse_duration(text: str) -> float:
    """Seconds in a duration string such as ``200ms``, ``0.2s`` or ``5m``."""
    return _parse_with_unit(text, _DURATION_UNITS, "duration", "200ms, 0.2s, 5m", "ms, s, m or h", "ms",
                            (MAX_DURATION_S, "a year (8784h)"))


def parse_size_mb(text: str) -> float:
    """MiB in a size string such as ``512MB`` or ``2GiB`` (MB and MiB both mean 2^20 bytes, as AWS Lambda does)."""
    return _parse_with_unit(text, _SIZE_UNITS_MB, "size", "512MB, 2GiB", "KB, MB, MiB, GB or GiB", "MB",
                            (MAX_SIZE_MB, "1 EiB"))


def parse_accuracy(text: str | float) -> float:
    """Top-1 accuracy as a fraction in (0, 1]: ``0.75``, ``75%`` and ``75`` all give 0.75."""
    value, unit = _split(str(text), "accuracy", "0.75 or 75%")
    if unit not in ("", "%"):
        raise HetplanError(f"cannot read accuracy '{text}': write a fraction (0.75) or a percentage (75%)")
    if unit == "%" or value > 1:
        value /= 100.0
    if not (math.isfinite(value) and 0 < value <= 1):
        raise HetplanError(f"accuracy '{text}' is outside 0..100%")
    return value


def format_duration(seconds: float) -> str:
    """Short human form: 0.2 -> '200ms', 300 -> '5m'."""
    if seconds < 1:
        return f"{seconds * 1000:g}ms"
    if seconds < 60 or seconds % 60:
        return f"{seconds:g}s"
    if seconds < 3600 or seconds % 3600:
        return f"{seconds / 60:g}m"
    return f"{seconds / 3600:g}h"
