"""True-speed drift and request logs in replay.

- :class:`Drift`: a model's true latency is ``latency`` × the profile's (on VMs: service time up, throughput
  down; on Lambda: latency and billed duration up). The replay applies it to the deployment it plays; the
  policies never see it.
- :class:`LogRecorder`: collects a request log (``catalog.observe.LOG_COLUMNS``) while the replay runs. The
  fluid run has no individual requests: it logs a systematic sample of ``fraction`` of each option's requests
  per second, each with the fluid latency (service + wait) at its instant within the second and, on Lambda,
  cold when it falls among the second's cold-started requests. The request-level run logs every request.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from hetplan.errors import HetplanError


@dataclass(frozen=True)
class Drift:
    """The true latency of ``model`` is ``latency`` × its profiled latency (on ``platform``, or on both)."""

    model: str
    latency: float
    platform: str | None = None


def parse_drift(text: str) -> tuple[Drift, ...]:
    """``model=resnet200,latency=1.3[,platform=vm]``; several separated by ``;``."""
    out = []
    for part in (p.strip() for p in text.split(";")):
        if not part:
            continue
        fields = {}
        for item in part.split(","):
            key, sep, value = item.partition("=")
            if not sep or key.strip() not in ("model", "latency", "platform"):
                raise HetplanError(f"cannot read --drift '{part}': write model=NAME,latency=FACTOR[,platform=vm|lambda]")
            fields[key.strip()] = value.strip()
        try:
            factor = float(fields.get("latency", ""))
        except ValueError:
            factor = float("nan")
        if not fields.get("model") or not factor > 0:
            raise HetplanError(f"--drift '{part}' needs a model and a positive latency factor, e.g. model=resnet200,latency=1.3")
        if fields.get("platform") not in (None, "vm", "lambda"):
            raise HetplanError(f"--drift '{part}': platform must be vm or lambda")
        out.append(Drift(fields["model"], factor, fields.get("platform")))
    return tuple(out)


def router_queue(vm: pd.DataFrame, slo_s: float, fraction: float) -> pd.Series:
    """Per VM option, the queue per VM (requests) the overflow router allows: believed throughput × fraction ×
    (SLO − believed latency), the wait the planner's figures say stays within the SLO margin."""
    return pd.Series(vm.throughput_rps.to_numpy(float) * fraction * np.maximum(slo_s - vm.latency_ms.to_numpy(float) / 1000.0, 0.0),
                     index=list(vm.option))


def apply_drift(dep, drifts, slo_s: float | None = None) -> object:
    """The deployment with the options' true speeds (what the replay serves at). The overflow router stays set
    from the options' profiled figures (``Deployment.overflow_queue``): drift is what the planner does not know."""
    if dep.overflow and dep.overflow_queue is None and slo_s is not None and len(dep.vm_options):
        queue = router_queue(dep.vm_options, slo_s, dep.overflow_fraction)
        dep = replace(dep, overflow_queue=pd.DataFrame([{"start_s": -1e18, **queue.to_dict()}]))
    vm, lam = dep.vm_options.copy(), dep.lam_options.copy()
    for d in drifts:
        if d.platform in (None, "vm") and len(vm):
            rows = vm.model == d.model
            vm.loc[rows, "latency_ms"] = vm.loc[rows, "latency_ms"] * d.latency
            for column in ("throughput_rps", "capacity_rps"):
                if column in vm:
                    vm.loc[rows, column] = vm.loc[rows, column] / d.latency
        if d.platform in (None, "lambda") and len(lam):
            rows = lam.model == d.model
            for column in ("latency_ms", "duration_ms"):
                lam.loc[rows, column] = lam.loc[rows, column].astype(float) * d.latency
    return replace(dep, vm_options=vm, lam_options=lam)


class LogRecorder:
    """Collects the replay's request log (a sink the replay writes to; see the module docstring)."""

    def __init__(self, fraction: float = 0.01, correct: bool = False, seed: int = 0):
        from hetplan.units import fraction as check_fraction

        check_fraction(fraction, "log fraction", "0.01")
        self.fraction, self.correct, self._rng, self._parts = fraction, correct, np.random.default_rng(seed), []

    def _sample(self, a: np.ndarray):
        """Systematic sample: (second index, position in the second in [0, 1)) of every 1/fraction-th request."""
        cum = np.cumsum(a * self.fraction) + 0.5
        prev = cum - a * self.fraction
        n = (np.floor(cum) - np.floor(prev)).astype(int)
        sec = np.repeat(np.arange(len(a)), n)
        g = np.arange(1, n.sum() + 1) + np.floor(prev[0]) if n.sum() else np.zeros(0)
        with np.errstate(divide="ignore", invalid="ignore"):
            x = (g - prev[sec]) / (a[sec] * self.fraction)
        return sec, np.clip(np.nan_to_num(x), 0.0, 1.0 - 1e-9)

    def _add(self, row, platform: str, times, latency_s, cold) -> None:
        n = len(times)
        correct = ((self._rng.random(n) < float(row.accuracy)).astype(float) if self.correct else np.full(n, np.nan))
        self._parts.append(pd.DataFrame({
            "timestamp": np.asarray(times, float), "model": row.model, "platform": platform,
            "instance_type": row.instance_type if platform == "vm" else "",
            "memory_mb": float(row.memory_mb) if platform == "lambda" else np.nan,
            "latency_ms": 1000.0 * np.asarray(latency_s, float), "cold_start": np.asarray(cold, bool), "correct": correct}))

    @staticmethod
    def _at(sec, x, busy, latency, default):
        """Latency of samples: the fluid's wait samples in busy seconds, ``default`` elsewhere."""
        out = np.asarray(default, float) * np.ones(len(sec))
        if len(busy) and len(sec):
            where = np.full(int(max(sec.max(), busy.max())) + 1, -1)
            where[busy] = np.arange(len(busy))
            row = where[sec]
            hit = row >= 0
            col = np.minimum((x[hit] * latency.shape[1]).astype(int), latency.shape[1] - 1)
            out[hit] = latency[row[hit], col]
        return out

    def fluid_vm(self, o, t0, a, busy, latency) -> None:
        sec, x = self._sample(a)
        if len(sec):
            self._add(o, "vm", t0 + sec + x, self._at(sec, x, busy, latency, o.latency_ms / 1000.0), np.zeros(len(sec), bool))

    def fluid_lambda(self, row, t0, a, c, warm_s, cold_s, busy, latency) -> None:
        sec, x = self._sample(a)
        if not len(sec):
            return
        with np.errstate(divide="ignore", invalid="ignore"):
            cold = x >= np.where(a[sec] > 0, (a[sec] - c[sec]) / a[sec], 1.0)
        lat = self._at(sec, x, busy, latency, warm_s)
        lat = np.where(cold & (lat <= warm_s + 1e-12), cold_s, lat)
        self._add(row, "lambda", t0 + sec + x, lat, cold)

    def events(self, row, platform, times, latency_s, cold) -> None:
        self._add(row, platform, times, latency_s, cold)

    def frame(self) -> pd.DataFrame:
        from hetplan.planner.catalog.observe import LOG_COLUMNS

        if not self._parts:
            return pd.DataFrame(columns=LOG_COLUMNS)
        return pd.concat(self._parts, ignore_index=True).sort_values("timestamp", kind="stable").reset_index(drop=True)
