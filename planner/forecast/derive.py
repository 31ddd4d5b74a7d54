"""Stress variants of a trace (``hetplan trace derive``): what a planner should survive that the shipped traces
may not show. Each transform keeps the trace's seconds and changes its requests per second:

| transform | parameter | effect |
|---|---|---|
| ``scale`` | k > 0 | every second's requests × k (growth) |
| ``spikes`` | factor, length, every | requests × factor for ``length`` at every multiple of ``every`` from the start (``every`` after the first second, then every ``every``) |
| ``step`` | factor, at | requests × factor from ``at`` after the start on (a lasting change of level) |
| ``shift`` | duration | the load pattern moved later by ``duration``, wrapping around (a diurnal shift) |

Counts stay whole numbers: a scaled count x·k is rounded up with probability equal to its fractional part,
from ``seed`` (so the mean is kept exactly in expectation and a derived trace is reproducible).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from hetplan.errors import HetplanError


@dataclass(frozen=True)
class Spikes:
    factor: float
    length_s: float
    every_s: float


@dataclass(frozen=True)
class Step:
    factor: float
    at_s: float


@dataclass(frozen=True)
class Derivation:
    """The transforms to apply, in the order scale → step → spikes → shift (each optional)."""

    scale: float = 1.0
    step: Step | None = None
    spikes: Spikes | None = None
    shift_s: float = 0.0
    seed: int = 0

    def describe(self) -> str:
        parts = [f"load ×{self.scale:g}"] if self.scale != 1 else []
        if self.step:
            parts.append(f"×{self.step.factor:g} from {self.step.at_s:g}s on")
        if self.spikes:
            parts.append(f"×{self.spikes.factor:g} spikes of {self.spikes.length_s:g}s every {self.spikes.every_s:g}s")
        if self.shift_s:
            parts.append(f"shifted {self.shift_s:g}s later")
        return ", ".join(parts) or "unchanged"


def derive(trace: pd.DataFrame, how: Derivation) -> pd.DataFrame:
    """The trace (``second,requests``) transformed as ``how`` says (see the module docstring)."""
    if trace.empty:
        raise HetplanError("the trace is empty: nothing to derive")
    for name, value in (("scale", how.scale), ("step factor", how.step.factor if how.step else 1.0),
                        ("spike factor", how.spikes.factor if how.spikes else 1.0)):
        if not (np.isfinite(value) and value > 0):
            raise HetplanError(f"{name} {value:g} must be a positive number")
    if how.spikes and not (0 < how.spikes.length_s < how.spikes.every_s):
        raise HetplanError(f"spikes of {how.spikes.length_s:g}s every {how.spikes.every_s:g}s: the length must be "
                           "positive and shorter than the period")
    second = trace.second.to_numpy(np.int64)
    requests = trace.requests.to_numpy(float)
    offset = (second - second[0]).astype(float)
    factor = np.full(second.size, float(how.scale))
    if how.step:
        factor *= np.where(offset >= how.step.at_s, how.step.factor, 1.0)
    if how.spikes:
        phase = offset % how.spikes.every_s
        in_spike = (offset >= how.spikes.every_s - 1e-9) & (phase < how.spikes.length_s)
        factor *= np.where(in_spike, how.spikes.factor, 1.0)
    if how.shift_s:
        span = int(second[-1] - second[0] + 1)
        full = np.zeros(span)
        full[second - second[0]] = requests
        full = np.roll(full, int(round(how.shift_s)) % span)
        requests = full[second - second[0]]
    scaled = requests * factor
    rng = np.random.default_rng(how.seed)
    whole = np.floor(scaled)
    whole += rng.random(scaled.size) < scaled - whole
    return pd.DataFrame({"second": second, "requests": whole.astype(np.int64)})


def write_trace(trace: pd.DataFrame, path) -> None:
    """``second,requests`` CSV, gzip-compressed when the name ends in .gz; written atomically."""
    import gzip
    from pathlib import Path

    from hetplan.fileio import write_bytes_atomic

    path = Path(path)
    text = trace.to_csv(index=False).encode("utf-8")
    # mtime=0: the same derived trace gives the same bytes
    write_bytes_atomic(path, gzip.compress(text, mtime=0) if path.suffix == ".gz" else text)
