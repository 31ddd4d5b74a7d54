"""Closing the loop in replay: true-speed drift, request logs from the replay, and ``hetplan`` re-planning with feedback.

- :class:`Drift`: a model's true latency is ``latency`` × the profile's (on VMs: service time up, throughput
  down; on Lambda: latency and billed duration up). The replay applies it to the deployment it plays; the
  policies never see it.
- :class:`LogRecorder`: collects a request log (observe.LOG_COLUMNS) while the replay runs. The fluid run
  has no individual requests: it logs a systematic sample of ``fraction`` of each option's requests per
  second, each with the fluid latency (service + wait) at its instant within the second and, on Lambda,
  cold when it falls among the second's cold-started requests. The request-level run logs every request.
- :func:`hetplan_feedback_policy`: ``hetplan``'s rolling horizon, but before each re-plan the windows served
  since the last one are replayed (with the drift) and their log corrects the profile the options are
  rebuilt from (observe.update_profile). planner/FEEDBACK.md gives the rules and the measurements.
"""

from __future__ import annotations

import math
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
        if not 0 < fraction <= 1:
            raise HetplanError(f"log fraction {fraction:g} must be in (0, 1]")
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
        from hetplan.planner.observe import LOG_COLUMNS

        if not self._parts:
            return pd.DataFrame(columns=LOG_COLUMNS)
        return pd.concat(self._parts, ignore_index=True).sort_values("timestamp", kind="stable").reset_index(drop=True)


# --- the feedback policy ---------------------------------------------------------------------------------

def _sources(sc):
    """Profile, instances and models the scenario's options came from (the shipped ones if it does not say)."""
    from hetplan import catalog

    profile = sc.profile if getattr(sc, "profile", None) is not None else catalog.load_profile()
    instances = sc.instances if getattr(sc, "instances", None) is not None else catalog.load_instances()
    models = sc.models if getattr(sc, "models", None) is not None else catalog.load_models()
    return profile, instances, models


def _restrict(options, vm_names, lam_names):
    """Options limited to the names the profile itself allows (feedback re-ranks and re-sizes them; it does not
    resurrect an option the profile rejected, whose true speed the drift is not defined against)."""
    from hetplan.planner.options import Options

    return Options(vm=options.vm[options.vm.option.isin(vm_names)].reset_index(drop=True),
                   lam=options.lam[options.lam.option.isin(lam_names)].reset_index(drop=True),
                   rejected=options.rejected, pruned=options.pruned)


def hetplan_feedback_policy(sc, plan_fn=None, predictor: str = "ewma", horizon: int = 12, replan_every: int = 6,
                            overflow: bool = True, warm: bool = True, warm_lookback_s: float = 86400,
                            warm_predictor: str = "peak-aware", half_life_s: float = 3600.0,
                            prior_weight: float = 100.0, fraction: float = 0.02, name: str = "hetplan"):
    """``policies.hetplan_policy`` with feedback: before each re-plan (decided a boot delay ahead), replay the
    seconds since the previous decision against the deployment so far, under the scenario's ``drift``, log a
    ``fraction`` of the requests, and rebuild the options from the profile corrected by every log so far
    (``half_life_s`` decay, ``prior_weight``). The replayed slice starts with an empty queue (an approximation:
    a backlog carried across a decision is not seen). The deployment keeps the profile's option figures: the
    final replay applies the drift to them, as it does for every policy."""
    from hetplan.planner import policies as P
    from hetplan.planner.observe import update_profile
    from hetplan.planner.options import build_options, prune_dominated
    from hetplan.planner.simulate import replay

    plan_fn = plan_fn or P.solver_plan_fn()
    profile, instances, models = _sources(sc)
    drift = tuple(getattr(sc, "drift", ()) or ())
    nominal = build_options(profile, instances, sc.pricing, models, sc.targets)  # unpruned: every option a plan may use
    stats = sc.stats()
    lead = P._lead(sc)
    spill = P.accurate_lambda(sc).option if overflow and len(sc.options.lam) else None
    vm_names, lam_names = list(nominal.vm.option), list(nominal.lam.option)
    counts_parts, share_parts, pools, routers = [], [], [], []
    logs: list[pd.DataFrame] = []
    options, initial, observed_to = sc.options, {}, -math.inf
    for k in range(0, len(stats), replan_every):
        decided = float(stats.start_s.iloc[k]) - lead
        if counts_parts:
            log = _observe(sc, nominal, counts_parts, share_parts, spill, pools, routers, observed_to, decided, drift,
                           fraction, replay, P)
            observed_to = decided
            if len(log):
                # observations ten half-lives old weigh < 0.1%: drop them so the log does not grow with the trace
                logs = [part for part in logs if part.timestamp.iloc[-1] >= decided - 10 * half_life_s] + [log]
                corrected, _ = update_profile(profile, pd.concat(logs, ignore_index=True), now=decided,
                                              half_life_s=half_life_s, prior_weight=prior_weight)
                options = _restrict(prune_dominated(build_options(corrected, instances, sc.pricing, models, sc.targets)),
                                    vm_names, lam_names)
        future = P._predicted(sc, stats, k, horizon, predictor)
        initial = {n: c for n, c in initial.items() if n in set(options.vm.option)}
        plan = plan_fn(P._windows_of(future), options, sc.targets, P._limits(sc, initial, float(future.start_s.iloc[0]) - lead))
        vm, lam, counts, shares = P.plan_windows(plan)
        keep = min(replan_every, len(counts))
        counts_parts.append(counts.iloc[:keep])
        share_parts.append(shares.iloc[:keep])
        queue = router_queue(vm, sc.targets.slo_s, P.OVERFLOW_FRACTION)  # the router follows the corrected figures
        routers.append(pd.DataFrame([queue.to_dict()] * keep).assign(start_s=counts.start_s.iloc[:keep].to_numpy()))
        if warm:
            seen = [P._seen_peak(sc, float(start) - lead, warm_lookback_s) for start in future.start_s.iloc[:keep]]
            padded = P._predicted(sc, stats, k, keep, warm_predictor).peak_rps.to_numpy(float)
            peaks = np.maximum(np.maximum(future.peak_rps.to_numpy(float)[:keep], padded), seen)
            # sized with what the plan believed (its options), as hetplan_policy does
            pools.append(P.warm_pool(vm, lam, counts.iloc[:keep], shares.iloc[:keep], peaks, spill, P._concurrency(sc)))
        last = counts.iloc[keep - 1]
        initial = {n: int(last[n]) for n in vm.option if last[n] > 0}
    return _assemble(nominal, counts_parts, share_parts, pools, routers, spill, name, P)


def _assemble(nominal, counts_parts, share_parts, pools, routers, spill, name, P, end_s: float = math.inf):
    """One deployment from the chunks, over the profile's option figures (union of the options the plans used)."""
    counts = pd.concat(counts_parts, ignore_index=True).fillna(0.0)
    shares = pd.concat(share_parts, ignore_index=True).fillna(0.0)
    used_vm = [c for c in counts.columns if c not in ("start_s", "end_s")]
    used_lam = [c for c in shares.columns if c not in ("start_s", "end_s") and c not in used_vm]
    vm = nominal.vm[nominal.vm.option.isin(used_vm)].reset_index(drop=True)
    names = set(used_lam) | ({spill} if spill else set())
    lam = nominal.lam[nominal.lam.option.isin(names)].reset_index(drop=True)
    missing = (set(used_vm) - set(vm.option)) | (names - set(lam.option))
    if missing:
        raise HetplanError(f"a feedback plan used option '{sorted(missing)[0]}', which the profile does not allow")
    counts = counts.reindex(columns=["start_s", "end_s", *vm.option]).fillna(0.0)
    shares = shares.reindex(columns=["start_s", "end_s", *vm.option, *lam.option]).fillna(0.0)
    dep = P._deployment(vm, lam, counts, shares, spill, name, end_s)
    if pools:
        pool = pd.concat(pools, ignore_index=True).reindex(columns=["start_s", *lam.option]).fillna(0.0)
        dep = replace(dep, warm=pool)
    if spill and routers:
        queue = pd.concat(routers, ignore_index=True).reindex(columns=["start_s", *vm.option]).fillna(0.0)
        dep = replace(dep, overflow_queue=queue)
    return dep


def _observe(sc, nominal, counts_parts, share_parts, spill, pools, routers, start, end, drift, fraction, replay,
             P) -> pd.DataFrame:
    """The log of the seconds [start, end) served by the deployment decided so far (replayed with the drift)."""
    trace = sc.trace[(sc.trace.second >= start) & (sc.trace.second < end)]
    if trace.empty:
        return pd.DataFrame()
    dep = _assemble(nominal, counts_parts, share_parts, pools, routers, spill, "observed", P)
    recorder = LogRecorder(fraction=fraction)
    replay(trace, dep, sc.targets.slo_s, sc.pricing, concurrency_limit=sc.concurrency_limit,
           default_load_time_ms=sc.default_load_time_ms, drift=drift, recorder=recorder, window_s=sc.window_s)
    return recorder.frame()
