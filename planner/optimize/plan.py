"""Stage 4: the deployment plan — built from a solver's values, and its JSON form (``PLAN_FORMAT.md``)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from hetplan import __version__
from hetplan.planner.optimize.model import MilpModel
from hetplan.planner.optimize.queueing import latency_quantile

PLAN_SCHEMA_VERSION = 1
ASSIGNMENT_COLUMNS = ["window", "option", "platform", "model", "instance_type", "memory_mb", "count", "launches",
                      "rate_rps", "share", "utilization", "capacity_rps", "overflow_rps", "expected_latency_ms", "cost_usd"]


@dataclass(frozen=True)
class Plan:
    """A plan: per-window assignments plus everything needed to re-check it (``meta``: inputs, targets,
    load, limits, solver). ``options`` has one row per usable option, ``windows`` one per window and
    ``assignments`` one per (window, option) in use."""

    meta: dict
    options: pd.DataFrame
    windows: pd.DataFrame
    assignments: pd.DataFrame
    summary: dict = field(default_factory=dict)
    source: dict | None = field(default=None, repr=False, compare=False)  # the file as read, for Plan.load

    @classmethod
    def load(cls, path) -> "Plan":
        """The plan file at ``path``, checked against ``data/plan.schema.json`` (:func:`load_plan`); the
        file's own dict is ``plan.source`` (what ``validate`` re-checks and ``simulate`` replays, as written)."""
        from hetplan.errors import HetplanError

        data = load_plan(path)
        try:
            return dataclasses.replace(cls.from_dict(data), source=data)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise HetplanError(f"plan '{path}' is malformed ({type(exc).__name__}: {exc}): regenerate it with hetplan solve") from None

    def to_dict(self) -> dict:
        by_window = {w: g for w, g in self.assignments.groupby("window")}
        windows = []
        for row in self.windows.itertuples(index=False):
            part = by_window.get(row.index, self.assignments.iloc[0:0])
            windows.append({**_clean(row._asdict()),
                            "assignments": [_clean(a) for a in part.drop(columns="window").to_dict("records")]})
        return {"schema_version": PLAN_SCHEMA_VERSION, "kind": "hetplan.plan", **self.meta,
                "options": [_clean(o) for o in self.options.to_dict("records")], "windows": windows,
                "summary": _clean(self.summary)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, allow_nan=False) + "\n"

    @classmethod
    def from_dict(cls, data: dict) -> "Plan":
        meta_keys = ("created", "hetplan_version", "inputs", "targets", "load", "limits", "runtime", "solver")
        meta = {k: data[k] for k in meta_keys if k in data}
        windows = pd.DataFrame([{k: v for k, v in w.items() if k != "assignments"} for w in data["windows"]])
        rows = [{"window": w["index"], **a} for w in data["windows"] for a in w["assignments"]]
        assignments = pd.DataFrame(rows, columns=ASSIGNMENT_COLUMNS) if rows else pd.DataFrame(columns=ASSIGNMENT_COLUMNS)
        return cls(meta=meta, options=pd.DataFrame(data["options"]), windows=windows,
                   assignments=assignments, summary=data.get("summary", {}))


def load_plan(path) -> dict:
    """Read a plan file: JSON checked against ``data/plan.schema.json``. The one way commands read plans;
    every problem is a one-line :class:`HetplanError` naming the file and, for schema errors, the JSON path."""
    from pathlib import Path

    import jsonschema

    from hetplan.planner.catalog import DATA_DIR
    from hetplan.errors import HetplanError

    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise HetplanError(f"plan file '{path}' does not exist: write one with hetplan solve --out {path}") from None
    except IsADirectoryError:
        raise HetplanError(f"plan file '{path}' is a folder: name a plan JSON file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise HetplanError(f"plan file '{path}' is not JSON: {exc}") from None
    except OSError as exc:
        raise HetplanError(f"cannot read plan file '{path}': {exc.strerror or exc}") from None
    if not isinstance(data, dict) or data.get("kind") != "hetplan.plan":
        raise HetplanError(f"'{path}' is not a hetplan plan (no \"kind\": \"hetplan.plan\")")
    if data.get("schema_version") != PLAN_SCHEMA_VERSION:
        raise HetplanError(f"plan '{path}' has schema_version {data.get('schema_version')!r}; "
                           f"this hetplan reads version {PLAN_SCHEMA_VERSION}")
    schema = json.loads((DATA_DIR / "plan.schema.json").read_text(encoding="utf-8"))
    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema).iter_errors(data))
    if error is not None:
        where = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
        raise HetplanError(f"plan '{path}' is malformed at {where}: {error.message}; regenerate it with hetplan solve")
    return data


def _clean(record: dict) -> dict:
    """JSON-safe values: numpy scalars to Python, NaN to null."""
    out = {}
    for key, value in record.items():
        if isinstance(value, dict):
            out[key] = _clean(value)
            continue
        if value is pd.NA:
            value = None
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, float) and not math.isfinite(value):
            value = None
        out[key] = value
    return out


def option_table(model: MilpModel) -> pd.DataFrame:
    """The options of a model in the plan's ``options`` form (one table for VM and Lambda)."""
    vm, lam = model.options.vm, model.options.lam
    vm_part = pd.DataFrame({
        "option": vm.option, "model": vm.model, "platform": "vm", "instance_type": vm.instance_type,
        "memory_mb": vm.memory_mb, "accuracy": vm.accuracy, "latency_ms": vm.latency_ms,
        "latency_basis": vm.latency_basis, "servers": vm.servers, "throughput_rps": vm.throughput_rps,
        "utilization_cap": vm.utilization, "capacity_rps": vm.capacity_rps,
        "price_per_hour_usd": vm.price_per_hour_usd, "boot_seconds": vm.boot_seconds,
        "load_time_ms": vm.get("load_time_ms"), "peak_memory_mb": vm.get("peak_memory_mb"),
        "accuracy_source": vm.get("accuracy_source", "published"), "method": vm.method,
        "batch": vm.get("batch", 1), "fill_wait_ms": vm.get("fill_wait_ms", 0.0), "min_rate_rps": vm.get("min_rate_rps", 0.0),
        "family": vm.get("family"), "arch": vm.get("arch"),
    })
    lam_part = pd.DataFrame({
        "option": lam.option, "model": lam.model, "platform": "lambda", "instance_type": None,
        "memory_mb": lam.memory_mb, "accuracy": lam.accuracy, "latency_ms": lam.latency_ms,
        "latency_basis": lam.latency_basis, "duration_ms": lam.duration_ms,
        "cost_per_request_usd": lam.cost_per_request_usd, "load_time_ms": lam.load_time_ms,
        "peak_memory_mb": lam.get("peak_memory_mb"), "accuracy_source": lam.get("accuracy_source", "published"),
        "method": lam.method,
    })
    table = pd.concat([vm_part, lam_part], ignore_index=True)
    for column in ("servers", "batch"):  # whole numbers in JSON; null for Lambda rows
        table[column] = table[column].astype("Int64")
    return table


def build_plan(model: MilpModel, values: np.ndarray, meta: dict, percentile: float) -> Plan:
    """Turn solver values into a plan; VM counts are rounded (they are integral up to solver tolerance)."""
    win, vm, lam = model.windows, model.options.vm, model.options.lam
    counts = np.round(model.values(values, "vm-count"))
    # a rate on zero VMs is the solver's feasibility tolerance (rate ≤ count · capacity), not traffic: drop it
    rates = np.where(counts > 0, np.clip(model.values(values, "vm-rate"), 0.0, None), 0.0)
    lam_rates = np.clip(model.values(values, "lambda-rate"), 0.0, None)
    previous = np.vstack([[_initial(vm, meta)], counts[:-1]]) if len(win) else counts
    launches = np.maximum(0.0, counts - previous)
    if meta.get("limits", {}).get("free_start"):
        launches[0] = 0.0
    demand = win.demand_rps
    share_of = (lambda r: np.divide(r, demand[:, None], out=np.zeros_like(r), where=demand[:, None] > 0))
    vm_share, lam_share = share_of(rates), share_of(lam_rates)
    price = vm.price_per_hour_usd.to_numpy() / 3600.0
    vm_cost = counts * price * win.duration_s[:, None] + launches * price * vm.boot_seconds.to_numpy()
    lam_cost = lam_share * (win.mean_rps * win.duration_s)[:, None] * lam.cost_per_request_usd.to_numpy()
    utilization = np.divide(rates, counts * vm.throughput_rps.to_numpy(), out=np.zeros_like(rates), where=counts > 0)
    capacity = win.vm_capacity(model.options)
    overflow = (np.clip(model.values(values, "vm-overflow"), 0.0, None) if "vm-overflow" in model.blocks
                else np.zeros_like(rates))
    star = (meta.get("runtime") or {}).get("overflow") or {}
    star_cost = float(lam.set_index("option").cost_per_request_usd[star["option"]]) if star else 0.0
    overflow_cost = overflow.sum(axis=1) * star_cost * win.mean_rps * win.duration_s * np.divide(
        1.0, demand, out=np.zeros_like(demand), where=demand > 0)
    rows = []
    for t, o in zip(*np.nonzero((counts > 0) | (rates > 1e-9))):
        r = vm.iloc[o]
        latency = latency_quantile(r.latency_ms / 1000.0, int(r.servers), float(utilization[t, o]), percentile) * 1000
        rows.append({"window": t, "option": r.option, "platform": "vm", "model": r.model, "instance_type": r.instance_type,
                     "memory_mb": r.memory_mb, "count": int(counts[t, o]), "launches": int(launches[t, o]),
                     "rate_rps": rates[t, o], "share": vm_share[t, o], "utilization": utilization[t, o],
                     "capacity_rps": capacity[t, o], "overflow_rps": overflow[t, o],
                     "expected_latency_ms": latency, "cost_usd": vm_cost[t, o]})
    for t, j in zip(*np.nonzero(lam_rates > 1e-9)):
        r = lam.iloc[j]
        rows.append({"window": t, "option": r.option, "platform": "lambda", "model": r.model, "instance_type": None,
                     "memory_mb": r.memory_mb, "count": 0, "launches": 0, "rate_rps": lam_rates[t, j],
                     "share": lam_share[t, j], "utilization": None, "capacity_rps": None, "overflow_rps": None,
                     "expected_latency_ms": r.latency_ms, "cost_usd": lam_cost[t, j]})
    # a horizon without demand (an idle trace) has no assignment, but the columns every reader expects
    assignments = (pd.DataFrame(rows).sort_values(["window", "platform", "option"]).reset_index(drop=True) if rows
                   else pd.DataFrame(columns=ASSIGNMENT_COLUMNS))
    accuracy = pd.concat([vm.set_index("option").accuracy, lam.set_index("option").accuracy])
    mean_acc = (assignments.assign(a=assignments.option.map(accuracy) * assignments.share)
                .groupby("window").a.sum()) if rows else pd.Series(dtype=float)
    window_cost = assignments.groupby("window").cost_usd.sum() if rows else pd.Series(dtype=float)
    windows = pd.DataFrame({
        "index": np.arange(len(win)), "start_s": win.start_s, "end_s": win.start_s + win.duration_s,
        "demand_rps": demand, "mean_rps": win.mean_rps, "overflow_rps": overflow.sum(axis=1),
        "overflow_cost_usd": overflow_cost,
        "cost_usd": window_cost.reindex(range(len(win)), fill_value=0.0).to_numpy() + overflow_cost,
        "mean_accuracy": mean_acc.reindex(range(len(win))).to_numpy() + _overflow_accuracy_shift(vm, lam, overflow, demand, star),
    })
    meta = {"created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "hetplan_version": __version__, **meta}
    plan = Plan(meta=meta, options=option_table(model), windows=windows, assignments=assignments)
    return dataclasses.replace(plan, summary=summarize(plan))


def _overflow_accuracy_shift(vm: pd.DataFrame, lam: pd.DataFrame, overflow: np.ndarray, demand: np.ndarray,
                             star: dict) -> np.ndarray:
    """Per window: how the overflow moves the mean top-1 (overflowed requests are served by ℓ*'s model)."""
    if not star:
        return np.zeros(len(demand))
    a_star = float(lam.set_index("option").accuracy[star["option"]])
    moved = overflow @ (a_star - vm.accuracy.to_numpy(float))
    return np.divide(moved, demand, out=np.zeros_like(moved), where=demand > 0)


def _initial(vm: pd.DataFrame, meta: dict) -> np.ndarray:
    initial = meta.get("limits", {}).get("initial_vms", {}) or {}
    return np.array([initial.get(name, 0) for name in vm.option], dtype=float)


def summarize(plan: Plan) -> dict:
    """Totals a capacity planner reads first: cost split, requests, cost per million, mean accuracy, VM-hours."""
    a, w = plan.assignments, plan.windows
    requests = float((w.mean_rps * (w.end_s - w.start_s)).sum())
    if a.empty:
        return {"total_cost_usd": 0.0, "vm_cost_usd": 0.0, "lambda_cost_usd": 0.0, "requests": requests,
                "cost_per_million_usd": 0.0, "mean_accuracy": None, "lambda_share": 0.0, "vm_hours": {},
                "extrapolated_options_used": [], "methods_used": []}
    vm = a[a.platform == "vm"]
    lam = a[a.platform == "lambda"]
    duration = (w.set_index("index").end_s - w.set_index("index").start_s)
    served = w.set_index("index").mean_rps * duration
    accuracy = plan.options.set_index("option").accuracy
    weight = a.share * a.window.map(served)
    extra = {k: float(w[k].sum()) if k in w else 0.0 for k in ("overflow_cost_usd", "warm_pool_cost_usd")}
    overflow_requests = float((w.overflow_rps * duration.to_numpy()).sum()) if "overflow_rps" in w else 0.0
    total = float(a.cost_usd.sum()) + sum(extra.values())
    methods = plan.options.set_index("option").method
    used = sorted(set(a.option))
    return {
        "total_cost_usd": total, "vm_cost_usd": float(vm.cost_usd.sum()),
        "lambda_cost_usd": float(lam.cost_usd.sum()) + sum(extra.values()), **extra,
        "overflow_share": overflow_requests / requests if requests else 0.0,
        "requests": requests, "cost_per_million_usd": total / requests * 1e6 if requests else 0.0,
        "mean_accuracy": float(((weight * a.option.map(accuracy)).sum() + _overflow_correct(plan, accuracy, served))
                               / weight.sum()) if weight.sum() else None,
        "lambda_share": float((lam.share * lam.window.map(served)).sum() / requests) if requests else 0.0,
        "vm_hours": {k: float(v) for k, v in (vm["count"] * vm.window.map(duration) / 3600).groupby(vm.instance_type).sum().items()},
        "extrapolated_options_used": [o for o in used if methods.get(o) == "scaled"],
        "methods_used": sorted({str(methods[o]) for o in used if o in methods}),
    }


def _overflow_correct(plan: Plan, accuracy: pd.Series, served: pd.Series) -> float:
    """Correct answers the overflow adds (or takes away): overflowed requests get ℓ*'s accuracy instead."""
    star = (plan.meta.get("runtime") or {}).get("overflow") or {}
    a = plan.assignments
    if not star or "overflow_rps" not in a:
        return 0.0
    overflow = pd.to_numeric(a.overflow_rps, errors="coerce").fillna(0.0)  # None on Lambda rows: an object column
    vm = a[(a.platform == "vm") & (overflow > 0)]
    demand = plan.windows.set_index("index").demand_rps
    moved = vm.overflow_rps / vm.window.map(demand) * vm.window.map(served)
    return float((moved * (accuracy[star["option"]] - vm.option.map(accuracy))).sum())
