"""Stage 2: the solver-neutral MILP, built in bulk from pandas/numpy data.

Sets
    t ∈ T   windows (start s_t, length w_t seconds)
    o ∈ V   VM options (model m(o) on instance type i(o)); ℓ ∈ Λ Lambda options (model m(ℓ), memory size)
Parameters
    L_t     rate to provision for in window t (a high quantile of the per-second rate), req/s
    M_t     expected (mean) rate in window t, req/s
    k_o     requests/s one VM of option o serves inside the SLO (capacity at its utilization cap)
    p_o     $/hour of option o's instance type; D_o its boot-to-serving delay (boot + model load), s
    c_ℓ     $ per request on Lambda option ℓ; τ_ℓ its latency (s);  a_m top-1 of model m (fraction)
    n⁰_o    VMs of option o already serving when the horizon starts (default 0)
    A       mean-accuracy target (fraction); C Lambda concurrency limit; Q_i quota of type i; B budget ($)
Variables
    vm-count[t,o]    n ∈ ℤ≥0   VMs of option o serving throughout window t
    vm-rate[t,o]     x ≥ 0     requests/s routed to option o in window t
    vm-launch[t,o]   u ≥ 0     VMs of option o launched to serve from window t on
    lambda-rate[t,ℓ] f ≥ 0     requests/s routed to Lambda option ℓ in window t
Objective (dollars)
    min Σ_t Σ_o p_o/3600 · (w_t · n[t,o] + D_o · u[t,o])  +  Σ_t Σ_ℓ c_ℓ · w_t · (M_t / L_t) · f[t,ℓ]
    A VM serving window t is launched D_o seconds before s_t (pre-launch), so each launch pays its boot
    time. Traffic is routed by weights x/L and f/L, so Lambda receives the share f/L of the M_t·w_t
    requests the window actually brings.
Constraints (names as in the code)
    demand-window[t]          Σ_o x[t,o] + Σ_ℓ f[t,ℓ] = L_t
    capacity-vm[t,o]          x[t,o] − k_o · n[t,o] ≤ 0
    launch-vm[t,o]            u[t,o] − n[t,o] + n[t−1,o] ≥ 0            (n[−1,o] = n⁰_o; no row at t = 0 in the
                              free-start relaxation used for decomposition bounds)
    no-launch-before-ready[t,o] n[t,o] − n[t−1,o] ≤ 0  for windows with s_t < D_o (a VM launched now is not
                              serving yet; serverless covers the ramp)
    accuracy-window[t]        Σ_o a_m(o) x[t,o] + Σ_ℓ a_m(ℓ) f[t,ℓ] ≥ A · L_t
    concurrency-window[t]     Σ_ℓ τ_ℓ f[t,ℓ] ≤ C                        (Little's law)
    quota-window[t,i]         Σ_{o: i(o)=i} n[t,o] ≤ Q_i
    budget                    objective ≤ B
Tightening (valid for some optimal plan, so the optimum is unchanged)
    n[t,o] ≤ ⌈L_t / k_o⌉ where D_o ≤ w_t: a VM beyond that carries no traffic, and dropping it for the
    window saves p_o·w_t while a later relaunch costs only p_o·D_o ≤ p_o·w_t. Elsewhere n[t,o] ≤ ⌈max_t L_t / k_o⌉.
    In windows before any VM can be ready, n[t,o] ≤ n⁰_o.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp

from hetplan.planner.options import Options


@dataclass(frozen=True)
class Windows:
    """The load the plan is for: one entry per window (seconds, requests/s)."""

    start_s: np.ndarray
    duration_s: np.ndarray
    demand_rps: np.ndarray
    mean_rps: np.ndarray

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
        return Windows(self.start_s[part], self.duration_s[part], self.demand_rps[part], self.mean_rps[part])


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
    demand_peak_rps: float | None = None             # peak over the whole horizon, when this model is a part of it


@dataclass
class VarBlock:
    name: str
    offset: int
    shape: tuple[int, int]

    @property
    def size(self) -> int:
        return self.shape[0] * self.shape[1]

    def index(self, t: np.ndarray | int, j: np.ndarray | int) -> np.ndarray:
        return self.offset + np.asarray(t) * self.shape[1] + np.asarray(j)


@dataclass
class MilpModel:
    """min cᵀz s.t. row_lb ≤ A z ≤ row_ub, lb ≤ z ≤ ub, z_j integer where ``integer[j]``.

    Variables and rows carry names (``vm-count[3,vm:squeezenet@c5.large]``) through ``blocks`` and
    ``row_blocks`` so LP dumps and infeasibility reports read well; ``objective_offset`` is a constant.
    """

    windows: Windows
    options: Options
    blocks: dict[str, VarBlock]
    cost: np.ndarray
    lb: np.ndarray
    ub: np.ndarray
    integer: np.ndarray
    matrix: sp.csr_matrix
    row_lb: np.ndarray
    row_ub: np.ndarray
    row_blocks: list[tuple[str, int, int, list]]  # (name, first row, row count, labels per row)
    objective_offset: float = 0.0

    @property
    def num_vars(self) -> int:
        return len(self.cost)

    @property
    def num_rows(self) -> int:
        return self.matrix.shape[0]

    def var_names(self) -> list[str]:
        names = []
        for block in self.blocks.values():
            labels = self._column_labels(block.name)
            names += [f"{block.name}[{t},{labels[j]}]" for t in range(block.shape[0]) for j in range(block.shape[1])]
        return names

    def row_names(self) -> list[str]:
        names = []
        for name, _, count, labels in self.row_blocks:
            names += [f"{name}[{labels[r]}]" for r in range(count)]
        return names

    def _column_labels(self, block: str) -> list[str]:
        return list(self.options.lam.option) if block == "lambda-rate" else list(self.options.vm.option)

    def values(self, z: np.ndarray, block: str) -> np.ndarray:
        """The solution values of one variable block as a (windows × options) array."""
        b = self.blocks[block]
        return z[b.offset:b.offset + b.size].reshape(b.shape)


class _Builder:
    """Collects variable blocks and COO constraint blocks, then assembles one sparse matrix."""

    def __init__(self):
        self.blocks: dict[str, VarBlock] = {}
        self.cost, self.lb, self.ub, self.integer = [], [], [], []
        self.rows, self.cols, self.vals = [], [], []
        self.row_lb, self.row_ub, self.row_blocks = [], [], []
        self.num_vars = 0
        self.num_rows = 0

    def add_vars(self, name, shape, cost, lb, ub, integer) -> VarBlock:
        block = VarBlock(name, self.num_vars, shape)
        size = block.size
        self.cost.append(np.broadcast_to(cost, shape).ravel().astype(float))
        self.lb.append(np.broadcast_to(lb, shape).ravel().astype(float))
        self.ub.append(np.broadcast_to(ub, shape).ravel().astype(float))
        self.integer.append(np.full(size, integer))
        self.blocks[name] = block
        self.num_vars += size
        return block

    def add_rows(self, name, count, lb, ub, labels) -> int:
        first = self.num_rows
        self.row_lb.append(np.broadcast_to(np.asarray(lb, float), (count,)).copy())
        self.row_ub.append(np.broadcast_to(np.asarray(ub, float), (count,)).copy())
        self.row_blocks.append((name, first, count, labels))
        self.num_rows += count
        return first

    def add_terms(self, rows, cols, vals) -> None:
        rows, cols, vals = np.broadcast_arrays(np.asarray(rows), np.asarray(cols), np.asarray(vals, float))
        self.rows.append(rows.ravel())
        self.cols.append(cols.ravel())
        self.vals.append(vals.ravel())

    def build(self, windows, options) -> MilpModel:
        cat = (lambda parts, dtype=float: np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype))
        matrix = sp.coo_matrix((cat(self.vals), (cat(self.rows, int), cat(self.cols, int))),
                               shape=(self.num_rows, self.num_vars)).tocsr()
        return MilpModel(windows=windows, options=options, blocks=self.blocks, cost=cat(self.cost), lb=cat(self.lb),
                         ub=cat(self.ub), integer=cat(self.integer, bool), matrix=matrix, row_lb=cat(self.row_lb),
                         row_ub=cat(self.row_ub), row_blocks=self.row_blocks)


def build_model(windows: Windows, options: Options, limits: Limits = Limits(), tighten: bool = True) -> MilpModel:
    """The whole MILP: variables, then one builder per constraint family (see the module docstring).

    ``tighten=False`` leaves out the per-window count bounds (for benchmarks that measure what they buy).
    """
    b = _Builder()
    _add_variables(b, windows, options, limits, tighten)
    add_demand(b, windows, options)
    add_vm_capacity(b, windows, options)
    add_launches(b, windows, options, limits)
    add_no_launch_before_ready(b, windows, options, limits)
    if limits.mean_accuracy is not None:
        add_accuracy(b, windows, options, limits.mean_accuracy)
    if limits.concurrency_limit is not None and len(options.lam):
        add_concurrency(b, windows, options, limits.concurrency_limit)
    if limits.quotas:
        add_quotas(b, windows, options, limits.quotas)
    model = b.build(windows, options)
    if limits.budget_usd is not None:
        add_budget(model, limits.budget_usd)
    return model


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
    capacity = options.vm.capacity_rps.to_numpy()
    demand = windows.demand_rps
    n0 = initial_counts(options, limits)
    peak = max(demand.max(initial=0.0), limits.demand_peak_rps or 0.0)
    global_ub = np.maximum(np.ceil(peak / capacity - 1e-9), n0) if V else np.zeros(0)
    per_window = np.ceil(demand[:, None] / capacity[None, :] - 1e-9)
    ub = np.where(boot[None, :] <= windows.duration_s[:, None], np.minimum(per_window, global_ub), global_ub)
    if not tighten:
        ub = np.broadcast_to(np.maximum(global_ub, 1e3), (T, V)) if V else np.zeros((T, 0))
    ub = np.where(boot_mask(windows, options, limits), np.minimum(ub, n0[None, :]), ub)
    b.add_vars("vm-count", (T, V), price_s[None, :] * windows.duration_s[:, None], 0.0, ub, True)
    b.add_vars("vm-rate", (T, V), 0.0, 0.0, np.minimum(demand[:, None], capacity[None, :] * ub), False)
    b.add_vars("vm-launch", (T, V), price_s[None, :] * boot[None, :], 0.0, ub, False)
    share = np.divide(windows.mean_rps, demand, out=np.zeros(T), where=demand > 0)
    lam_cost = options.lam.cost_per_request_usd.to_numpy()[None, :] * (windows.duration_s * share)[:, None]
    b.add_vars("lambda-rate", (T, Λ), lam_cost, 0.0, demand[:, None], False)


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
    """capacity-vm[t,o]:  x[t,o] − k_o · n[t,o] ≤ 0."""
    T, V = len(windows), len(options.vm)
    t, o = _grid(T, V)
    first = b.add_rows("capacity-vm", T * V, -np.inf, 0.0, [f"{ti},{name}" for ti, name in zip(t, options.vm.option.to_numpy()[o])])
    rows = first + np.arange(T * V)
    b.add_terms(rows, b.blocks["vm-rate"].index(t, o), 1.0)
    b.add_terms(rows, b.blocks["vm-count"].index(t, o), -options.vm.capacity_rps.to_numpy()[o])


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


def add_accuracy(b: _Builder, windows: Windows, options: Options, target: float) -> None:
    """accuracy-window[t]:  Σ_o a_m(o) x[t,o] + Σ_ℓ a_m(ℓ) f[t,ℓ] − A · L_t ≥ 0  (traffic-weighted mean top-1)."""
    T = len(windows)
    first = b.add_rows("accuracy-window", T, target * windows.demand_rps, np.inf, list(range(T)))
    for name, frame in (("vm-rate", options.vm), ("lambda-rate", options.lam)):
        block = b.blocks[name]
        t, j = _grid(*block.shape)
        b.add_terms(first + t, block.index(t, j), frame.accuracy.to_numpy()[j])


def add_concurrency(b: _Builder, windows: Windows, options: Options, limit: float) -> None:
    """concurrency-window[t]:  Σ_ℓ τ_ℓ f[t,ℓ] ≤ C  (concurrent Lambda executions by Little's law)."""
    T = len(windows)
    first = b.add_rows("concurrency-window", T, -np.inf, limit, list(range(T)))
    block = b.blocks["lambda-rate"]
    t, j = _grid(*block.shape)
    b.add_terms(first + t, block.index(t, j), options.lam.latency_ms.to_numpy()[j] / 1000.0)


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
