"""The fleet's MILP: one single-service MILP per service, coupled only by per-window sums of shared limits.

For services s with variables z_s (their own MILP: min c_sᵀz_s, z_s ∈ X_s), the shared limits are

    Σ_s G_s z_s ≤ b        with one row per
      lambda-concurrency[t]:  Σ_s (service s's concurrency-window[t] row)  ≤ C       (account concurrency)
      vcpus[t,f]:             Σ_s Σ_{o of family f} vcpus_o · n_s[t,o]       ≤ Q_f     (On-Demand vCPU quota)
      budget:                 Σ_s c_sᵀ z_s                                   ≤ B − Σ_s offset_s

so every coupling is linear in the services' own variables, and pricing it (``priced``) keeps each service's
problem the existing MILP with changed costs. Services are aligned by window index: window t of every service
is the same wall-clock period (the fleet file gives them one window length and horizon).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from hetplan.errors import HetplanError
from hetplan.planner.optimize.matrix import MilpModel
from hetplan.planner.optimize.model import build_model
from hetplan.planner.optimize.workflow import PreparedPlan


@dataclass(frozen=True)
class SharedRows:
    labels: tuple[str, ...]
    capacity: np.ndarray  # b


@dataclass
class ServiceProblem:
    name: str
    prepared: PreparedPlan
    model: MilpModel
    coupling: sp.csr_matrix  # G_s: shared rows × the service's variables
    weight: float  # its part of the shared limits in the fair-share start


def shared_rows(windows: int, concurrency: int, vcpu_quota: dict, budget_usd: float | None, offsets: float) -> SharedRows:
    labels = [f"lambda-concurrency[{t}]" for t in range(windows)]
    capacity = [float(concurrency)] * windows
    for family, quota in sorted(vcpu_quota.items()):
        labels += [f"vcpus[{t},{family}]" for t in range(windows)]
        capacity += [float(quota)] * windows
    if budget_usd is not None:
        labels.append("budget")
        capacity.append(float(budget_usd) - offsets)
    return SharedRows(tuple(labels), np.array(capacity, float))


def service_model(prepared: PreparedPlan) -> MilpModel:
    """The service's own MILP with its concurrency rows present (its own cap, else the account's) and no budget row:
    the budget is shared."""
    limits = dataclasses.replace(prepared.limits, budget_usd=None)
    return build_model(prepared.windows, prepared.options, limits)


def coupling_matrix(model: MilpModel, rows: SharedRows, vcpus: dict[str, float], families: dict[str, str]) -> sp.csr_matrix:
    """G_s for one service's ``model``: its concurrency-window rows, its VMs' vCPUs per family, its cost."""
    T = len(model.windows)
    index = {label: k for k, label in enumerate(rows.labels)}
    coo_rows, coo_cols, coo_vals = [], [], []
    concurrency = next(((first, count) for name, first, count, _ in model.row_blocks if name == "concurrency-window"), None)
    if concurrency is not None:
        part = model.matrix[concurrency[0]:concurrency[0] + concurrency[1]].tocoo()
        coo_rows.append(np.array([index[f"lambda-concurrency[{t}]"] for t in part.row]))
        coo_cols.append(part.col)
        coo_vals.append(part.data)
    count = model.blocks["vm-count"]
    options = model.options.vm
    for family in {label.split(",")[1][:-1] for label in rows.labels if label.startswith("vcpus[")}:
        columns = [j for j, itype in enumerate(options.instance_type) if families.get(itype) == family]
        for j in columns:
            t = np.arange(T)
            coo_rows.append(np.array([index[f"vcpus[{k},{family}]"] for k in t]))
            coo_cols.append(count.index(t, j))
            coo_vals.append(np.full(T, vcpus[options.instance_type.iloc[j]]))
    if "budget" in index:
        nonzero = np.flatnonzero(model.cost)
        coo_rows.append(np.full(len(nonzero), index["budget"]))
        coo_cols.append(nonzero)
        coo_vals.append(model.cost[nonzero])
    cat = (lambda parts, dtype=float: np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype))
    return sp.coo_matrix((cat(coo_vals), (cat(coo_rows, int), cat(coo_cols, int))),
                         shape=(len(rows.labels), model.num_vars)).tocsr()


def priced(problem: ServiceProblem, prices: np.ndarray) -> MilpModel:
    """min (c_s + G_sᵀλ)ᵀ z_s over the service's own constraints: the Lagrangian subproblem at prices λ ≥ 0."""
    return dataclasses.replace(problem.model, cost=problem.model.cost + problem.coupling.T @ prices)


def capped(problem: ServiceProblem, caps: np.ndarray) -> MilpModel:
    """The service's MILP with G_s z_s ≤ caps added: its share of every shared limit (a start or a descent step)."""
    model = problem.model
    return dataclasses.replace(model, matrix=sp.vstack([model.matrix, problem.coupling], format="csr"),
                               row_lb=np.concatenate([model.row_lb, np.full(len(caps), -np.inf)]),
                               row_ub=np.concatenate([model.row_ub, caps]),
                               row_blocks=model.row_blocks + [("shared-cap", model.num_rows, len(caps), list(range(len(caps))))])


def monolithic(problems: list[ServiceProblem], rows: SharedRows) -> MilpModel:
    """Every service's MILP side by side plus the shared rows: the exact fleet MILP (small fleets; tests)."""
    models = [p.model for p in problems]
    matrix = sp.vstack([sp.block_diag([m.matrix for m in models], format="csr"),
                        sp.hstack([p.coupling for p in problems], format="csr")], format="csr")
    cat = np.concatenate
    return MilpModel(windows=None, options=None, blocks={}, cost=cat([m.cost for m in models]), lb=cat([m.lb for m in models]),
                     ub=cat([m.ub for m in models]), integer=cat([m.integer for m in models]), matrix=matrix,
                     row_lb=cat([m.row_lb for m in models] + [np.full(len(rows.capacity), -np.inf)]),
                     row_ub=cat([m.row_ub for m in models] + [rows.capacity]), row_blocks=[],
                     objective_offset=float(sum(m.objective_offset for m in models)))


def aligned_windows(problems: list[ServiceProblem]) -> int:
    counts = {p.name: len(p.model.windows) for p in problems}
    if len(set(counts.values())) != 1:
        listed = ", ".join(f"{name} {n}" for name, n in counts.items())
        raise HetplanError(f"the fleet's services have different numbers of windows ({listed}): give [shared] hours "
                           "within every trace, so window t is the same period for all")
    return next(iter(counts.values()))
