"""Latency statistics and the stopping rule for repetitions. Pure functions."""

from __future__ import annotations

from dataclasses import dataclass


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100) with linear interpolation between order statistics (numpy's default)."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class Repetitions:
    """How many timed calls to make: at least ``minimum``, then in chunks of ``chunk`` until the median
    moves by less than ``tolerance`` (relative) twice in a row, or ``maximum`` calls or ``seconds`` pass."""

    warmup: int = 3
    minimum: int = 10
    maximum: int = 200
    seconds: float = 20.0
    chunk: int = 5
    tolerance: float = 0.01


QUICK = Repetitions(warmup=1, minimum=5, maximum=15, seconds=4.0, chunk=5, tolerance=0.02)


def fixed(count: int) -> Repetitions:
    """Exactly ``count`` timed calls (``--repetitions``)."""
    return Repetitions(warmup=2, minimum=count, maximum=count, seconds=float("inf"))


def should_stop(latencies: list[float], reps: Repetitions, elapsed: float, calm_checks: int) -> bool:
    """True once the minimum is done and the median is stable, or a cap is reached."""
    n = len(latencies)
    if n < reps.minimum:
        return False
    return n >= reps.maximum or elapsed >= reps.seconds or calm_checks >= 2


def median_moved(latencies: list[float], chunk: int, tolerance: float) -> bool:
    """Whether the last ``chunk`` calls moved the median by ``tolerance`` or more."""
    if len(latencies) <= chunk:
        return True
    before = percentile(latencies[:-chunk], 50)
    return abs(percentile(latencies, 50) - before) >= tolerance * before
