"""The edge's one set of parsers and range checks: every value a user types goes through one of these.

Each raises :class:`HetplanError` naming the option, the value, the range it must be in and an example;
numbers must be finite, and values beyond a sane bound are refused with the bound named.

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
MAX_FACTOR = 1e6                 # a load scale or a spike factor: a million times a trace is a typo
MAX_MONEY_USD = 1e12             # a budget beyond a trillion dollars
MAX_COUNT = 10 ** 9              # VMs, concurrency, windows, repetitions

_DURATION_UNITS = {"ms": 1e-3, "s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}
_SIZE_UNITS_MB = {"kb": 1 / 1024, "kib": 1 / 1024, "mb": 1.0, "mib": 1.0, "gb": 1024.0, "gib": 1024.0}
_NUMBER_UNIT = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([A-Za-z%]*)\s*$")


def _quoted(text) -> str:
    """``text`` in quotes for a one-line message: as typed if it is one printable line, else as its repr."""
    text = str(text)
    return f"'{text}'" if text.isprintable() else repr(text)


def _split(text: str, what: str, example: str) -> tuple[float, str]:
    match = _NUMBER_UNIT.match(str(text))
    if not match:
        raise HetplanError(f"cannot read {what} {_quoted(text)}: write a number with a unit, e.g. {example}")
    return float(match.group(1)), match.group(2)


def _parse_with_unit(text: str, units: dict[str, float], what: str, example: str, unit_hint: str, bare: str,
                     bound: tuple[float, str]) -> float:
    value, unit = _split(text, what, example)
    if not unit:
        raise HetplanError(f"{what} {_quoted(text)} has no unit: write e.g. {value:g}{bare}")
    factor = units.get(unit.lower())
    if factor is None:
        raise HetplanError(f"unknown {what} unit '{unit}' in {_quoted(text)}: use {unit_hint}")
    if value <= 0:
        raise HetplanError(f"{what} {_quoted(text)} must be positive")
    limit, shown = bound
    if not math.isfinite(value * factor) or value * factor > limit:
        raise HetplanError(f"{what} {_quoted(text)} is beyond {shown}: write a value at most that")
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
        raise HetplanError(f"cannot read accuracy {_quoted(text)}: write a fraction (0.75) or a percentage (75%)")
    if unit == "%" or value > 1:
        value /= 100.0
    if not (math.isfinite(value) and 0 < value <= 1):
        raise HetplanError(f"accuracy {_quoted(text)} is outside 0..100%")
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


def in_range(value, option: str, low: float, high: float, *, low_open: bool = False, high_open: bool = False,
             example: str) -> float:
    """``value`` as a float when it is finite and in the interval; the interval is shown as written."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise HetplanError(f"cannot read {option} {_quoted(value)}: write a number, e.g. {example}") from None
    above = number > low if low_open else number >= low
    below = number < high if high_open else number <= high
    if not (math.isfinite(number) and above and below):
        interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        raise HetplanError(f"{option} {number:g} must be in {interval}, e.g. {example}")
    return number


def fraction(value, option: str, example: str = "0.95") -> float:
    """A share of something, in (0, 1]: a utilization cap, a log sample, a quantile."""
    return in_range(value, option, 0.0, 1.0, low_open=True, example=example)


def percentile(value, option: str = "--percentile") -> float:
    """The SLO's latency percentile, in [0.5, 1): p50 to (not including) p100."""
    return in_range(value, option, 0.5, 1.0, high_open=True, example="0.99")


def gap(value, option: str = "--gap") -> float:
    """A relative optimality gap, in [0, 1)."""
    return in_range(value, option, 0.0, 1.0, high_open=True, example="0.01")


def positive(value, option: str, example: str = "2", bound: float = MAX_FACTOR) -> float:
    """A factor or a quantity that must be above 0 and at most ``bound``."""
    return in_range(value, option, 0.0, bound, low_open=True, example=example)


def money(value, option: str = "--budget") -> float:
    """Dollars, above 0 and at most ``MAX_MONEY_USD``."""
    return in_range(value, option, 0.0, MAX_MONEY_USD, low_open=True, example="100")


def hours(value, option: str = "--hours") -> float:
    """A length of trace in hours: above 0, at most a year."""
    return in_range(value, option, 0.0, MAX_DURATION_S / 3600.0, low_open=True, example="24")


def count(value, option: str, minimum: int = 0, maximum: int = MAX_COUNT, example: str = "10") -> int:
    """A whole number in [minimum, maximum]."""
    number = in_range(value, option, minimum, maximum, example=example)
    if number != int(number):
        raise HetplanError(f"{option} {number:g} must be a whole number, e.g. {example}")
    return int(number)


def split_names(text: str | None) -> tuple[str, ...] | None:
    """``a, b,c`` → ('a', 'b', 'c'); None or empty → None."""
    return tuple(part.strip() for part in text.split(",") if part.strip()) if text else None


def name_counts(text: str | None, option: str) -> dict[str, int]:
    """``a=1,b=2`` → {a: 1, b: 2} (whole numbers from 0 to ``MAX_COUNT``)."""
    out = {}
    for part in split_names(text) or ():
        name, sep, value = part.rpartition("=")
        if not sep or not name or not value.isdigit():
            raise HetplanError(f"cannot read {option} {_quoted(part)}: write NAME=COUNT, e.g. c5.large=10")
        out[name] = count(int(value), f"{option} {name}")
    return out


def parse_factor(text: str, option: str) -> float:
    """A multiplier written ``4`` or ``4x``, above 0 and at most ``MAX_FACTOR``."""
    raw = str(text).strip().lower().removesuffix("x")
    try:
        value = float(raw)
    except ValueError:
        raise HetplanError(f"cannot read the factor {_quoted(text)} of {option}: write a number such as 4 or 4x") from None
    return positive(value, f"the factor of {option}", example="4")


def parse_fraction(text: str, option: str, high: float = 1.0) -> float:
    """``20%`` or ``0.2`` → 0.2, in (0, ``high``] (a relative difference may pass 100%: give ``high``)."""
    raw = str(text).strip()
    try:
        value = float(raw.rstrip("%")) / (100.0 if raw.endswith("%") else 1.0)
    except ValueError:
        raise HetplanError(f"cannot read {option} {_quoted(text)}: write a fraction (0.2) or a percentage (20%)") from None
    return in_range(value, option, 0.0, high, low_open=True, example="0.2 or 20%")
