"""Small hand-made planning instances for MILP tests (independent of any profile file)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from hetplan.planner.optimize.model import Windows
from hetplan.planner.optimize.options import Options


def vm_options(rows: list[dict]) -> pd.DataFrame:
    """rows: model, instance_type, accuracy, price, capacity, boot (s)."""
    frame = pd.DataFrame([{
        "option": f"vm:{r['model']}@{r['instance_type']}", "model": r["model"], "instance_type": r["instance_type"],
        "batch": 1, "accuracy": r["accuracy"], "price_per_hour_usd": r["price"], "boot_seconds": r.get("boot", 100.0),
        "latency_ms": r.get("latency_ms", 20.0), "latency_basis": "p50", "servers": r.get("servers", 2),
        "throughput_rps": r["capacity"] / 0.9, "utilization": 0.9, "capacity_rps": r["capacity"],
        "memory_mb": 4096.0, "method": "reference",
    } for r in rows])
    return frame


def lambda_options(rows: list[dict]) -> pd.DataFrame:
    """rows: model, memory_mb, accuracy, cost (per request), latency_ms."""
    return pd.DataFrame([{
        "option": f"lambda:{r['model']}@{r['memory_mb']:g}MB", "model": r["model"], "memory_mb": float(r["memory_mb"]),
        "accuracy": r["accuracy"], "latency_ms": r.get("latency_ms", 100.0), "latency_basis": "p50",
        "duration_ms": r.get("latency_ms", 100.0), "cost_per_request_usd": r["cost"], "load_time_ms": np.nan,
        "method": "reference",
    } for r in rows])


def options(vm_rows: list[dict], lam_rows: list[dict]) -> Options:
    return Options(vm=vm_options(vm_rows), lam=lambda_options(lam_rows),
                   rejected=pd.DataFrame(columns=["model", "platform", "config", "latency_ms", "accuracy", "reason"]))


def windows(demand: list[float], window_s: float = 300.0, mean_ratio: float = 0.8) -> Windows:
    demand = np.asarray(demand, float)
    start = np.arange(len(demand)) * window_s
    return Windows(start_s=start, duration_s=np.full(len(demand), window_s), demand_rps=demand,
                   mean_rps=demand * mean_ratio)


def random_case(seed: int, T: int = 3, V: int = 2, L: int = 2):
    """A seeded random instance small enough to enumerate every VM count."""
    rng = np.random.default_rng(seed)
    models = ["fast", "accurate"]
    vm_rows = [{"model": models[v % 2], "instance_type": f"t{v}.large", "accuracy": [0.55, 0.75][v % 2],
                "price": float(rng.uniform(0.05, 0.4)), "capacity": float(rng.uniform(20, 60)),
                "boot": float(rng.choice([60.0, 100.0, 400.0]))} for v in range(V)]
    lam_rows = [{"model": models[j % 2], "memory_mb": 1024 * (j + 1), "accuracy": [0.55, 0.75][j % 2],
                 "cost": float(rng.uniform(2e-6, 8e-6)), "latency_ms": float(rng.uniform(50, 150))} for j in range(L)]
    demand = rng.uniform(10, 110, size=T).round(1).tolist()
    return options(vm_rows, lam_rows), windows(demand), float(rng.choice([0.6, 0.65, 0.7]))


def plan_file(plan: dict, slo_ms: float = 200.0) -> dict:
    """A hand-made partial plan (options, windows with assignments, targets) completed into a plan file that
    the one plan reader accepts (``data/plan.schema.json``): the fields the replay does not read get neutral
    values. Demand is each window's share-weighted sum; costs are zero (these plans test the replay)."""
    from hetplan import __version__
    from hetplan.planner import catalog

    options = {o["option"]: o for o in plan["options"]}
    digest = "sha256:" + "0" * 64
    files = {"profile": catalog.DEFAULT_PROFILE, "instances": catalog.DEFAULT_INSTANCES,
             "serverless": catalog.DEFAULT_SERVERLESS, "models": catalog.DEFAULT_MODELS, "trace": catalog.DEFAULT_TRACE}
    windows = []
    for w in plan["windows"]:
        assignments = []
        for a in w["assignments"]:
            o = options[a["option"]]
            assignments.append({"model": o["model"], "instance_type": o.get("instance_type"), "memory_mb": o["memory_mb"],
                                "launches": 0, "rate_rps": 0.0, "utilization": 0.0 if a["platform"] == "vm" else None,
                                "expected_latency_ms": None, "cost_usd": 0.0, **a})
        windows.append({"demand_rps": 1.0, "mean_rps": 1.0, "cost_usd": 0.0, "mean_accuracy": None, **w,
                        "assignments": assignments})
    return {
        "schema_version": 1, "kind": "hetplan.plan", "created": "2026-12-01T00:00:00+00:00",
        "hetplan_version": __version__,
        "inputs": {k: {"path": str(path), "digest": digest} for k, path in files.items()},
        "targets": {"slo_ms": slo_ms, "percentile": 0.99, "min_accuracy": None, "mean_accuracy": None,
                    "max_utilization": 0.95, **plan.get("targets", {})},
        "load": {"window_s": 300, "quantile": 0.95, "predictor": "oracle", "windows": len(windows)},
        "limits": {"lambda_concurrency": 1000, "lambda_architecture": "x86_64", "quotas": {}, "budget_usd": None,
                   "initial_vms": {}},
        "solver": {"name": "highs", "method": "full", "status": "feasible", "objective_usd": 0.0, "bound_usd": None,
                   "gap": None, "lp_bound_usd": None, "seconds": 0.0, "time_limit_s": 1.0, "gap_target": 0.01},
        "options": [_option_record(o) for o in plan["options"]],
        "windows": windows,
        "summary": {"total_cost_usd": 0.0, "vm_cost_usd": 0.0, "lambda_cost_usd": 0.0, "requests": 0.0,
                    "cost_per_million_usd": 0.0, "mean_accuracy": None, "vm_hours": {}, "extrapolated_options_used": []},
    }


def _option_record(o: dict) -> dict:
    """An ``Options`` row as the plan's ``options`` entry (``plan.option_table`` names)."""
    record = {k: (None if isinstance(v, float) and v != v else v) for k, v in o.items()}
    if "utilization" in record:
        record["utilization_cap"] = record.pop("utilization")
    if record.get("servers") is not None:
        record["servers"] = int(record["servers"])
    return record
