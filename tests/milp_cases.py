"""Small hand-made planning instances for MILP tests (independent of any profile file)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from hetplan.planner.model import Windows
from hetplan.planner.options import Options


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
