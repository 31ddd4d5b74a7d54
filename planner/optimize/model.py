"""Stage 2: the solver-neutral MILP, built in bulk from pandas/numpy data.

Sets
    t ∈ T   windows (start s_t, length w_t seconds)
    o ∈ V   VM options (model m(o) on instance type i(o)); ℓ ∈ Λ Lambda options (model m(ℓ), memory size)
Parameters
    L_t     rate routed in window t, req/s: the window's mean rate when the windows are sized for the SLO's
            late share (``planner/optimize/sizing.py``); a high quantile of the per-second rate in the older rule
    M_t     expected (mean) rate in window t, req/s;  P_t the window's peak per-second rate (default L_t)
    k_to    requests/s (of L_t) one VM of option o carries in window t within the SLO: the sizing rule's
            per-window capacity, or the option's steady capacity at its utilization cap
    ρ_o     requests/s one VM of option o must receive to fill its batch in time (0 at batch 1)
    p_o     $/hour of option o's instance type; D_o its boot-to-serving delay (boot + model load), s
    c_ℓ     $ per request on Lambda option ℓ; τ_ℓ its latency (s);  a_m top-1 of model m (fraction)
    n⁰_o    VMs of option o already serving when the horizon starts (default 0)
    A       mean-accuracy target (fraction); C Lambda concurrency limit; Q_i quota of type i; B budget ($)
Variables
    vm-count[t,o]    n ∈ ℤ≥0   VMs of option o serving throughout window t
    vm-rate[t,o]     x ≥ 0     requests/s routed to option o in window t
    vm-launch[t,o]   u ≥ 0     VMs of option o launched to serve from window t on
    lambda-rate[t,ℓ] f ≥ 0     requests/s routed to Lambda option ℓ in window t
    vm-overflow[t,o] v ≥ 0     requests/s (mean) option o's router sends to the overflow function ℓ*
                               (only with overflow on: ``planner/optimize/overflow.py``)
    vm-overflow-peak[t,o] w ≥ 0  that overflow's rate in its busiest second (where the concurrency limit could bind)
Objective (dollars)
    min Σ_t Σ_o p_o/3600 · (w_t · n[t,o] + D_o · u[t,o])  +  Σ_t Σ_ℓ c_ℓ · w_t · (M_t / L_t) · f[t,ℓ]
    A VM serving window t is launched D_o seconds before s_t (pre-launch), so each launch pays its boot
    time. Traffic is routed by weights x/L and f/L, so Lambda receives the share f/L of the M_t·w_t
    requests the window actually brings; overflow adds c_ℓ* · w_t · (M_t / L_t) · v[t,o].
Constraints (names as in the code)
    demand-window[t]          Σ_o x[t,o] + Σ_ℓ f[t,ℓ] = L_t
    capacity-vm[t,o]          x[t,o] − min(k_to, L_t) · n[t,o] ≤ 0   (L_t: valid for integral n, tighter LP)
    batch-fill[t,o]           x[t,o] − ρ_o · n[t,o] ≥ 0   for batched options (ρ_o > 0: the rate that fills a
                              batch within its dispatch timeout, ``planner/optimize/batching.py``)
    launch-vm[t,o]            u[t,o] − n[t,o] + n[t−1,o] ≥ 0            (n[−1,o] = n⁰_o; no row at t = 0 in the
                              free-start relaxation used for decomposition bounds)
    no-launch-before-ready[t,o] n[t,o] − n[t−1,o] ≤ 0  for windows with s_t < D_o (a VM launched now is not
                              serving yet; serverless covers the ramp)
    accuracy-window[t]        Σ_o a_m(o) x[t,o] + Σ_ℓ a_m(ℓ) f[t,ℓ] + Σ_o (a_ℓ* − a_m(o)) v[t,o] ≥ A · L_t
    overflow-vm[t,o,k]        v[t,o] − α_tok x[t,o] − β_tok n[t,o] ≥ 0   (segment k of the overflow curve)
    overflow-cap[t,o]         v[t,o] − x[t,o] ≤ 0
    overflow-peak-vm[t,o,k]   w[t,o] − α'_tok x[t,o] − β'_tok n[t,o] ≥ 0   (the busiest second's overflow curve)
    concurrency-window[t]     Σ_ℓ τ_ℓ (P_t / L_t) f[t,ℓ] + τ_ℓ* Σ_o w[t,o] ≤ C   (Little's law at the peak second)
    quota-window[t,i]         Σ_{o: i(o)=i} n[t,o] ≤ Q_i
    budget                    objective ≤ B
Tightening (valid for some optimal plan, so the optimum is unchanged)
    n[t,o] ≤ ⌊L_t / ρ_o⌋ for batched options (x ≤ L_t and x ≥ ρ_o n).
    n[t,o] ≤ ⌈L_t / k_to⌉ where D_o ≤ w_t: a VM beyond that carries no traffic, and dropping it for the
    window saves p_o·w_t while a later relaunch costs only p_o·D_o ≤ p_o·w_t. Elsewhere n[t,o] ≤ max_t ⌈L_t / k_to⌉
    (over the whole horizon when the model is a chunk of it).
    In windows before any VM can be ready, n[t,o] ≤ n⁰_o.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp

from hetplan.planner.optimize.matrix import MilpModel, VarBlock, _Builder  # noqa: F401  (MilpModel is re-exported)
from hetplan.planner.optimize.options import Options


@dataclass(frozen=True)
class Windows:
    """The load the plan is for: one entry per window (seconds, requests/s)."""

    start_s: np.ndarray
    duration_s: np.ndarray
    demand_rps: np.ndarray
    mean_rps: np.ndarray
    capacity_rps: np.ndarray | None = None  # (windows × VM options): k_to from the sizing rule; None = steady capacity
    peak_rps: np.ndarray | None = None      # the windows' peak per-second rate (Lambda concurrency); None = demand
    overflow_cuts: object | None = None     # overflow.OverflowCuts (windows × VM options × segments), with overflow on

    def __len__(self) -> int:
        return len(self.start_s)

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, demand_column: str = "q_rps") -> "Windows":
        """From a ``window_stats``-style frame (``start_s``, ``end_s``, ``mean_rps`` and the demand column)."""
        return cls(start_s=frame.start_s.to_numpy(float), duration_s=(frame.end_s - frame.start_s).to_numpy(float),
                   demand_rps=frame[demand_column].to_numpy(float), mean_rps=frame.mean_rps.to_numpy(float))

    def slice(self, first: int, last: int) -> "Windows":
        """Windows first..last-1, keeping their start times."""
        part = slice(first, last)
        return Windows(self.start_s[part], self.duration_s[part], self.demand_rps[part], self.mean_rps[part],
                       None if self.capacity_rps is None else self.capacity_rps[part],
                       None if self.peak_rps is None else self.peak_rps[part],
                       None if self.overflow_cuts is None else self.overflow_cuts.slice(first, last))

    def select_vm(self, columns: np.ndarray) -> "Windows":
        """The same windows for a subset of the VM options (their capacity and overflow columns)."""
        cuts = None if self.overflow_cuts is None else self.overflow_cuts.select(slice(None), columns)
        capacity = None if self.capacity_rps is None else np.asarray(self.capacity_rps)[:, columns]
        return Windows(self.start_s, self.duration_s, self.demand_rps, self.mean_rps, capacity, self.peak_rps, cuts)

    def vm_capacity(self, options: Options) -> np.ndarray:
        """(windows × VM options) k_to: the sizing rule's, else each option's steady capacity in every window."""
        if self.capacity_rps is not None:
            return np.asarray(self.capacity_rps, float)
        return np.broadcast_to(options.vm.capacity_rps.to_numpy(float)[None, :], (len(self), len(options.vm)))


@dataclass(frozen=True)
class Limits:
    """Optional limits of the request; ``None`` means unlimited."""

    mean_accuracy: float | None = None
    concurrency_limit: float | None = None
    quotas: dict = field(default_factory=dict)
    budget_usd: float | None = None
    initial_vms: dict = field(default_factory=dict)  # option name -> VMs serving at the start
    horizon_start_s: float | None = None             # "now"; default: the first window's start
    free_start: bool = False                         # relaxation: VMs at the start are free (decomposition bound)
    peak_vms: tuple | None = None                    # per VM option, max_t ⌈L_t / k_to⌉ over the whole horizon (chunks)
    overflow_option: str | None = None               # ℓ*: the Lambda option the routers overflow to (cuts in Windows)


def build_model(windows: Windows, options: Options, limits: Limits = Limits(), tighten: bool = True) -> MilpModel:
    """The whole MILP: variables, then one builder per constraint family (see the module docstring).

    ``tighten=False`` leaves out the per-window count bounds (for benchmarks that measure what they buy).
    """
    b = _Builder()
    _add_variables(b, windows, options, limits, tighten)
    add_demand(b, windows, options)
    add_vm_capacity(b, windows, options)
    add_batch_fill(b, windows, options)
    add_launches(b, windows, options, limits)
    add_no_launch_before_ready(b, windows, options, limits)
    if limits.overflow_option is not None:
        add_overflow(b, windows, options)
        if "vm-overflow-peak" in b.blocks:
            add_overflow_peak(b, windows, options, overflow_peak_windows(windows, options, limits))
    if limits.mean_accuracy is not None:
        add_accuracy(b, windows, options, limits.mean_accuracy, limits.overflow_option)
    if limits.concurrency_limit is not None and len(options.lam):
        add_concurrency(b, windows, options, limits.concurrency_limit, limits.overflow_option)
    if limits.quotas:
        add_quotas(b, windows, options, limits.quotas)
    model = b.build(windows, options)
    if limits.budget_usd is not None:
        add_budget(model, limits.budget_usd)
    return model


def vms_needed(windows: Windows, options: Options) -> np.ndarray:
    """(windows × VM options) ⌈L_t / k_to⌉: VMs of one option that would carry a whole window alone; with
    overflow, ⌈r_to · L_t / θ_o⌉, the VMs beyond which nothing overflows (more cannot lower the cost)."""
    capacity = windows.vm_capacity(options)
    if windows.overflow_cuts is not None:
        throughput = options.vm.throughput_rps.to_numpy(float)[None, :]
        capacity = np.minimum(capacity, throughput / np.maximum(windows.overflow_cuts.full_ratio, 1e-9))
    return np.ceil(np.divide(windows.demand_rps[:, None], capacity, out=np.zeros(capacity.shape), where=capacity > 0) - 1e-9)


def initial_counts(options: Options, limits: Limits) -> np.ndarray:
    return np.array([limits.initial_vms.get(name, 0) for name in options.vm.option], dtype=float)


def boot_mask(windows: Windows, options: Options, limits: Limits) -> np.ndarray:
    """(windows × VM options): True where a VM launched at the horizon start cannot be serving by s_t."""
    if limits.free_start:
        return np.zeros((len(windows), len(options.vm)), dtype=bool)
    now = windows.start_s[0] if limits.horizon_start_s is None else limits.horizon_start_s
    return (windows.start_s[:, None] - now) < options.vm.boot_seconds.to_numpy()[None, :]


def _add_variables(b: _Builder, windows: Windows, options: Options, limits: Limits, tighten: bool = True) -> None:
    T, V, Λ = len(windows), len(options.vm), len(options.lam)
    price_s = options.vm.price_per_hour_usd.to_numpy() / 3600.0
    boot = options.vm.boot_seconds.to_numpy()
    capacity = windows.vm_capacity(options)
    demand = windows.demand_rps
    n0 = initial_counts(options, limits)
    per_window = vms_needed(windows, options)
    peak = per_window.max(axis=0, initial=0.0)
    if limits.peak_vms is not None:
        peak = np.maximum(peak, np.asarray(limits.peak_vms, float))
    global_ub = np.maximum(peak, n0) if V else np.zeros(0)
    ub = np.where(boot[None, :] <= windows.duration_s[:, None], np.minimum(per_window, global_ub), global_ub)
    if not tighten:
        ub = np.broadcast_to(np.maximum(global_ub, 1e3), (T, V)) if V else np.zeros((T, 0))
    ub = np.where(boot_mask(windows, options, limits), np.minimum(ub, n0[None, :]), ub)
    fill = fill_rates(options)
    ub = np.where(fill[None, :] > 0, np.minimum(ub, np.floor(demand[:, None] / np.maximum(fill[None, :], 1e-12) + 1e-9)), ub)
    b.add_vars("vm-count", (T, V), price_s[None, :] * windows.duration_s[:, None], 0.0, ub, True)
    b.add_vars("vm-rate", (T, V), 0.0, 0.0, np.minimum(demand[:, None], capacity * ub), False)
    b.add_vars("vm-launch", (T, V), price_s[None, :] * boot[None, :], 0.0, ub, False)
    share = np.divide(windows.mean_rps, demand, out=np.zeros(T), where=demand > 0)
    lam_cost = options.lam.cost_per_request_usd.to_numpy()[None, :] * (windows.duration_s * share)[:, None]
    b.add_vars("lambda-rate", (T, Λ), lam_cost, 0.0, demand[:, None], False)
    if limits.overflow_option is not None:
        star = options.lam.set_index("option").cost_per_request_usd[limits.overflow_option]
        b.add_vars("vm-overflow", (T, V), star * (windows.duration_s * share)[:, None], 0.0, demand[:, None], False)
        busy = overflow_peak_windows(windows, options, limits)
        if busy.any():
            b.add_vars("vm-overflow-peak", (T, V), 0.0, 0.0, np.where(busy, np.inf, 0.0)[:, None] * np.ones((1, V)), False)


def _grid(T: int, J: int) -> tuple[np.ndarray, np.ndarray]:
    t, j = np.meshgrid(np.arange(T), np.arange(J), indexing="ij")
    return t.ravel(), j.ravel()


def add_demand(b: _Builder, windows: Windows, options: Options) -> None:
    """demand-window[t]:  Σ_o x[t,o] + Σ_ℓ f[t,ℓ] = L_t."""
    T = len(windows)
    first = b.add_rows("demand-window", T, windows.demand_rps, windows.demand_rps, list(range(T)))
    for name in ("vm-rate", "lambda-rate"):
        block = b.blocks[name]
        t, j = _grid(*block.shape)
        b.add_terms(first + t, block.index(t, j), 1.0)


def add_vm_capacity(b: _Builder, windows: Windows, options: Options) -> None:
    """capacity-vm[t,o]:  x[t,o] − min(k_to, L_t) · n[t,o] ≤ 0.

    ``min(k_to, L_t)`` is ``k_to`` tightened for the LP: with n integral, x ≤ L_t ≤ L_t · n whenever n ≥ 1, and
    x = 0 when n = 0, so no integral plan is cut off, while the relaxation can no longer serve a whole window
    with a sliver of one large VM (a GPU whose one VM carries more than the window brings)."""
    T, V = len(windows), len(options.vm)
    t, o = _grid(T, V)
    first = b.add_rows("capacity-vm", T * V, -np.inf, 0.0, [f"{ti},{name}" for ti, name in zip(t, options.vm.option.to_numpy()[o])])
    rows = first + np.arange(T * V)
    b.add_terms(rows, b.blocks["vm-rate"].index(t, o), 1.0)
    capacity = np.minimum(windows.vm_capacity(options), windows.demand_rps[:, None])
    b.add_terms(rows, b.blocks["vm-count"].index(t, o), -capacity[t, o])


def fill_rates(options: Options) -> np.ndarray:
    """ρ_o per VM option (0 where the options carry no batch-fill rate)."""
    if "min_rate_rps" not in options.vm:
        return np.zeros(len(options.vm))
    return options.vm.min_rate_rps.fillna(0.0).to_numpy(float)


def add_batch_fill(b: _Builder, windows: Windows, options: Options) -> None:
    """batch-fill[t,o]:  x[t,o] − ρ_o · n[t,o] ≥ 0 for options with ρ_o > 0 (each VM gets enough requests to fill
    its batch within the dispatch timeout)."""
    fill = fill_rates(options)
    batched = np.flatnonzero(fill > 0)
    if not len(batched):
        return
    t, k = _grid(len(windows), len(batched))
    o = batched[k]
    first = b.add_rows("batch-fill", len(t), 0.0, np.inf, [f"{ti},{name}" for ti, name in zip(t, options.vm.option.to_numpy()[o])])
    rows = first + np.arange(len(t))
    b.add_terms(rows, b.blocks["vm-rate"].index(t, o), 1.0)
    b.add_terms(rows, b.blocks["vm-count"].index(t, o), -fill[o])


def add_launches(b: _Builder, windows: Windows, options: Options, limits: Limits) -> None:
    """launch-vm[t,o]:  u[t,o] − n[t,o] + n[t−1,o] ≥ 0, with n[−1,o] = n⁰_o (moved to the right-hand side)."""
    T, V = len(windows), len(options.vm)
    t, o = _grid(T, V)
    if limits.free_start:  # no link to the VMs before the first window
        keep = t > 0
        t, o = t[keep], o[keep]
    n0 = initial_counts(options, limits)
    lower = np.where(t == 0, -n0[o], 0.0)
    first = b.add_rows("launch-vm", len(t), lower, np.inf, [f"{ti},{name}" for ti, name in zip(t, options.vm.option.to_numpy()[o])])
    rows = first + np.arange(len(t))
    b.add_terms(rows, b.blocks["vm-launch"].index(t, o), 1.0)
    b.add_terms(rows, b.blocks["vm-count"].index(t, o), -1.0)
    later = t > 0
    b.add_terms(rows[later], b.blocks["vm-count"].index(t[later] - 1, o[later]), 1.0)


def add_no_launch_before_ready(b: _Builder, windows: Windows, options: Options, limits: Limits) -> None:
    """no-launch-before-ready[t,o]:  n[t,o] − n[t−1,o] ≤ 0 for t ≥ 1 with s_t − now < D_o (t = 0 is a bound)."""
    mask = boot_mask(windows, options, limits)
    mask[0, :] = False
    t, o = np.nonzero(mask)
    if len(t) == 0:
        return
    first = b.add_rows("no-launch-before-ready", len(t), -np.inf, 0.0, [f"{ti},{name}" for ti, name in zip(t, options.vm.option.to_numpy()[o])])
    rows = first + np.arange(len(t))
    b.add_terms(rows, b.blocks["vm-count"].index(t, o), 1.0)
    b.add_terms(rows, b.blocks["vm-count"].index(t - 1, o), -1.0)


def add_accuracy(b: _Builder, windows: Windows, options: Options, target: float, overflow: str | None = None) -> None:
    """accuracy-window[t]:  Σ_o a_m(o) x[t,o] + Σ_ℓ a_m(ℓ) f[t,ℓ] + Σ_o (a_ℓ* − a_m(o)) v[t,o] − A · L_t ≥ 0
    (traffic-weighted mean top-1; an overflowed request is served by ℓ*'s model)."""
    T = len(windows)
    first = b.add_rows("accuracy-window", T, target * windows.demand_rps, np.inf, list(range(T)))
    for name, frame in (("vm-rate", options.vm), ("lambda-rate", options.lam)):
        block = b.blocks[name]
        t, j = _grid(*block.shape)
        b.add_terms(first + t, block.index(t, j), frame.accuracy.to_numpy()[j])
    if overflow is not None:
        block = b.blocks["vm-overflow"]
        t, j = _grid(*block.shape)
        star = options.lam.set_index("option").accuracy[overflow]
        b.add_terms(first + t, block.index(t, j), star - options.vm.accuracy.to_numpy()[j])


def add_overflow(b: _Builder, windows: Windows, options: Options) -> None:
    """overflow-vm[t,o,k]:  v[t,o] − α_tok x[t,o] − β_tok n[t,o] ≥ 0 (the perspective of each segment of the
    overflow curve, ``planner/optimize/overflow.py``);  overflow-cap[t,o]:  v[t,o] − x[t,o] ≤ 0."""
    T, V = len(windows), len(options.vm)
    cuts = windows.overflow_cuts
    _segment_cuts(b, "overflow-vm", "vm-overflow", np.arange(T), options, cuts.intercept, cuts.slope)
    names = options.vm.option.to_numpy()
    t, o = _grid(T, V)
    first = b.add_rows("overflow-cap", T * V, -np.inf, 0.0, [f"{ti},{names[oi]}" for ti, oi in zip(t, o)])
    rows = first + np.arange(T * V)
    b.add_terms(rows, b.blocks["vm-overflow"].index(t, o), 1.0)
    b.add_terms(rows, b.blocks["vm-rate"].index(t, o), -1.0)


def overflow_peak_windows(windows: Windows, options: Options, limits: Limits) -> np.ndarray:
    """Windows whose Lambda concurrency could reach the limit: (τ_max + τ*) · P_t > C, counting every request of the
    peak second at the slowest Lambda latency and again at the overflow function's. Elsewhere no row is needed."""
    cuts = windows.overflow_cuts
    if (limits.overflow_option is None or limits.concurrency_limit is None or cuts is None
            or cuts.peak_intercept is None or not len(options.vm)):
        return np.zeros(len(windows), dtype=bool)
    star = float(options.lam.set_index("option").latency_ms[limits.overflow_option]) / 1000.0
    slowest = float(options.lam.latency_ms.max()) / 1000.0
    peak = windows.demand_rps if windows.peak_rps is None else np.maximum(windows.peak_rps, windows.demand_rps)
    return (star + slowest) * peak > limits.concurrency_limit


def add_overflow_peak(b: _Builder, windows: Windows, options: Options, busy: np.ndarray) -> None:
    """overflow-peak-vm[t,o,k]:  w[t,o] − α'_tok x[t,o] − β'_tok n[t,o] ≥ 0: the pool's overflow rate at its busiest
    second (``overflow.py``), in the windows where the concurrency limit could bind."""
    cuts = windows.overflow_cuts
    _segment_cuts(b, "overflow-peak-vm", "vm-overflow-peak", np.flatnonzero(busy), options, cuts.peak_intercept,
                  cuts.peak_slope)


def _segment_cuts(b: _Builder, rows_name: str, variable: str, windows: np.ndarray, options: Options,
                  intercept: np.ndarray, slope: np.ndarray) -> None:
    """``variable[t,o] − intercept_tok · x[t,o] − slope_tok · n[t,o] ≥ 0`` for the given windows, every VM option
    and segment. A segment past the point where nothing overflows reads ``variable ≥ 0``, which its bound
    already says: left out."""
    t, o, k = (g.ravel() for g in np.meshgrid(windows, np.arange(len(options.vm)), np.arange(intercept.shape[2]),
                                              indexing="ij"))
    live = (np.abs(intercept[t, o, k]) > 1e-12) | (np.abs(slope[t, o, k]) > 1e-12)
    t, o, k = t[live], o[live], k[live]
    names = options.vm.option.to_numpy()
    first = b.add_rows(rows_name, len(t), 0.0, np.inf, [f"{ti},{names[oi]},{ki}" for ti, oi, ki in zip(t, o, k)])
    rows = first + np.arange(len(t))
    b.add_terms(rows, b.blocks[variable].index(t, o), 1.0)
    b.add_terms(rows, b.blocks["vm-rate"].index(t, o), -intercept[t, o, k])
    b.add_terms(rows, b.blocks["vm-count"].index(t, o), -slope[t, o, k])


def add_concurrency(b: _Builder, windows: Windows, options: Options, limit: float, overflow: str | None = None) -> None:
    """concurrency-window[t]:  Σ_ℓ τ_ℓ (P_t / L_t) f[t,ℓ] + τ* Σ_o w[t,o] ≤ C  (concurrent executions at the peak
    second, Little's law; w, the overflow's busiest second, only where it could bind: ``overflow_peak_windows``).
    Adding the two peaks, which need not fall in the same second, errs on the safe side."""
    T = len(windows)
    first = b.add_rows("concurrency-window", T, -np.inf, limit, list(range(T)))
    block = b.blocks["lambda-rate"]
    t, j = _grid(*block.shape)
    peak = windows.demand_rps if windows.peak_rps is None else np.maximum(windows.peak_rps, windows.demand_rps)
    burst = np.divide(peak, windows.demand_rps, out=np.ones(T), where=windows.demand_rps > 0)
    b.add_terms(first + t, block.index(t, j), options.lam.latency_ms.to_numpy()[j] / 1000.0 * burst[t])
    if overflow is not None and "vm-overflow-peak" in b.blocks:
        block = b.blocks["vm-overflow-peak"]
        t, o = _grid(*block.shape)
        star = float(options.lam.set_index("option").latency_ms[overflow]) / 1000.0
        b.add_terms(first + t, block.index(t, o), star)


def add_quotas(b: _Builder, windows: Windows, options: Options, quotas: dict) -> None:
    """quota-window[t,i]:  Σ_{o on type i} n[t,o] ≤ Q_i."""
    T = len(windows)
    block = b.blocks["vm-count"]
    for itype, quota in quotas.items():
        cols = np.flatnonzero(options.vm.instance_type.to_numpy() == itype)
        first = b.add_rows("quota-window", T, -np.inf, quota, [f"{t},{itype}" for t in range(T)])
        t, j = np.meshgrid(np.arange(T), cols, indexing="ij")
        b.add_terms(first + t.ravel(), block.index(t.ravel(), j.ravel()), 1.0)


def add_budget(model: MilpModel, budget: float) -> None:
    """budget:  Σ cost · z ≤ B (one dense row: the objective itself)."""
    row = sp.csr_matrix(model.cost[None, :])
    model.matrix = sp.vstack([model.matrix, row], format="csr")
    model.row_lb = np.append(model.row_lb, -np.inf)
    model.row_ub = np.append(model.row_ub, budget - model.objective_offset)
    model.row_blocks.append(("budget", model.matrix.shape[0] - 1, 1, ["total"]))
