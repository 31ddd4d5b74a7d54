"""Batching as a decision: a GPU at batch 32 wins where its batches fill, and loses where they cannot.

Crafted profiles on the real instance catalog (c5.large at $0.085/h, p3.2xlarge at $3.06/h). The MILP's
choice is checked against brute force over every VM count of a one-window instance, where a count vector is
feasible when the window's load fits between the batch-fill rates and the capacities:
Σ_o ρ_o n_o ≤ L ≤ Σ_o k_o n_o.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest

from hetplan.planner import catalog
from hetplan.planner.catalog.schema import PROFILE_COLUMNS
from hetplan.planner.optimize.batching import dispatch_timeout_ms, fill_rate_rps, prefer_direct
from hetplan.planner.optimize.model import Limits, build_model
from hetplan.planner.optimize.options import Targets, build_options
from hetplan.planner.optimize.solvers import SolveOptions, solve_highs
from milp_cases import windows

INSTANCES = catalog.load_instances()
TYPES = ("c5.large", "p3.2xlarge")  # the larger c5 sizes would be scaled from c5.large: kept out of the enumeration
MODELS = catalog.load_models()
SERVERLESS = catalog.load_serverless()


def profile(rows: list[dict]) -> pd.DataFrame:
    """Profile rows for resnet50_v1 (accuracy from the model catalog), in the profile schema."""
    base = {c: np.nan for c in PROFILE_COLUMNS}
    base.update(model="resnet50_v1", platform="vm", concurrency=1, accuracy_source="published", method="published",
                host="test", mxnet_version="", timestamp="", source="crafted for the test",
                accuracy_top1=np.nan, accuracy_top5=np.nan, peak_memory_mb=np.nan, load_time_ms=np.nan)
    out = []
    for r in rows:
        kind = INSTANCES.loc[r["instance_type"]]
        out.append({**base, "memory_mb": kind.memory_gib * 1024, "vcpus": kind.vcpus, **r})
    return pd.DataFrame(out)[list(PROFILE_COLUMNS)]


CPU = {"instance_type": "c5.large", "batch": 1, "latency_p50_ms": 40.0, "concurrency": 2}  # 2 slots: 50 req/s
GPU_1 = {"instance_type": "p3.2xlarge", "batch": 1, "latency_p50_ms": 5.0, "throughput_rps": 200.0}
GPU_32 = {"instance_type": "p3.2xlarge", "batch": 32, "latency_p50_ms": 10.0, "throughput_rps": 3200.0}


def brute_force(vm: pd.DataFrame, load: float, window_s: float) -> tuple[float, tuple]:
    """Cheapest feasible VM counts for one window (VMs booted before it: each pays its boot once)."""
    price = vm.price_per_hour_usd.to_numpy() / 3600.0
    per_vm = price * (window_s + vm.boot_seconds.to_numpy())
    cap, fill = vm.capacity_rps.to_numpy(), vm.min_rate_rps.to_numpy()
    top = [int(math.ceil(load / k)) + 1 for k in cap]
    best, counts = math.inf, None
    for n in itertools.product(*[range(t + 1) for t in top]):
        n = np.array(n)
        if fill @ n <= load + 1e-9 and cap @ n >= load - 1e-9 and per_vm @ n < best:
            best, counts = float(per_vm @ n), tuple(n)
    return best, counts


def solve(vm_options, load: float, window_s: float = 300.0):
    win = windows([load], window_s=window_s, mean_ratio=1.0)
    model = build_model(win, vm_options, Limits(horizon_start_s=-1e4))
    result = solve_highs(model, SolveOptions(gap=1e-9))
    return result, model.values(result.values, "vm-count")[0]


def test_dispatch_timeout_and_fill_rate_follow_the_slo():
    batch = pd.Series([1, 32])
    timeout = dispatch_timeout_ms(batch, pd.Series([5.0, 40.0]), slo_s=0.5)
    assert timeout.tolist() == [0.0, 230.0]  # half of 500 − 40
    assert fill_rate_rps(batch, timeout).tolist() == pytest.approx([0.0, 31 / 0.23])
    assert dispatch_timeout_ms(batch, pd.Series([5.0, 600.0]), slo_s=0.5).tolist() == [0.0, 0.0]  # never negative


def test_gpu_at_batch_32_wins_at_high_load_under_a_loose_slo():
    options = build_options(profile([CPU, GPU_1, GPU_32]), INSTANCES, SERVERLESS, MODELS, Targets(slo_s=0.5, instance_types=TYPES))
    vm = options.vm.set_index("option")
    gpu = vm.loc["vm:resnet50_v1@p3.2xlarge/b32"]
    assert gpu.servers == 32 and gpu.latency_ms == pytest.approx(10 + 245)  # the call plus the fill wait
    assert gpu.min_rate_rps == pytest.approx(31 / 0.245)
    # per request at full use the GPU batch is cheapest: 3.06 / capacity < 0.085 / capacity of c5.large
    assert gpu.price_per_hour_usd / gpu.capacity_rps < vm.loc["vm:resnet50_v1@c5.large"].price_per_hour_usd / \
        vm.loc["vm:resnet50_v1@c5.large"].capacity_rps
    load = 3000.0
    result, counts = solve(options, load)
    expected, brute_counts = brute_force(options.vm, load, 300.0)
    assert result.objective == pytest.approx(expected, rel=1e-6)
    used = dict(zip(options.vm.option, counts))
    assert used["vm:resnet50_v1@p3.2xlarge/b32"] >= 1
    assert used["vm:resnet50_v1@p3.2xlarge/b32"] == brute_counts[list(options.vm.option).index("vm:resnet50_v1@p3.2xlarge/b32")]


def test_gpu_batch_that_cannot_fill_within_the_slo_loses():
    # Under a 100 ms SLO a 10 ms batch-32 call leaves 45 ms to fill: 31 requests in 45 ms is 689 req/s per
    # GPU, more than the 400 req/s this load brings, so the batch never fills and the option never enters.
    load = 400.0
    targets = Targets(slo_s=0.1, max_rate_rps=load, instance_types=TYPES)
    options = build_options(profile([CPU, GPU_1, GPU_32]), INSTANCES, SERVERLESS, MODELS, targets)
    assert "vm:resnet50_v1@p3.2xlarge/b32" not in set(options.vm.option)
    reasons = options.rejected[options.rejected.config == "p3.2xlarge"].reason
    assert reasons.str.contains("batch cannot fill").any()
    result, counts = solve(options, load)
    expected, _ = brute_force(options.vm, load, 300.0)
    assert result.objective == pytest.approx(expected, rel=1e-6)
    used = dict(zip(options.vm.option, counts))
    assert used["vm:resnet50_v1@c5.large"] >= 1  # CPUs carry it: 8 c5.large cost less than a V100


def test_batch_fill_keeps_each_vm_busy_enough_in_the_milp():
    # Without a row limit on the fill rate the MILP would buy two GPUs for a load one can fill; with it,
    # a load between ρ and 2ρ allows only one GPU at batch 32.
    options = build_options(profile([GPU_32]), INSTANCES, SERVERLESS, MODELS, Targets(slo_s=0.5, instance_types=TYPES))
    gpu = options.vm.iloc[0]
    load = 1.5 * gpu.min_rate_rps
    win = windows([load], mean_ratio=1.0)
    model = build_model(win, options, Limits(horizon_start_s=-1e4))
    n = model.blocks["vm-count"].index(0, 0)
    x = model.blocks["vm-rate"].index(0, 0)
    z = np.zeros(model.num_vars)
    z[n], z[x] = 2, load  # two GPUs sharing 1.5 ρ: each gets 0.75 ρ, too little to fill its batch
    rows = model.matrix @ z
    names = model.row_names()
    fill = [k for k, name in enumerate(names) if name.startswith("batch-fill")]
    assert fill and rows[fill[0]] < model.row_lb[fill[0]]
    result, counts = solve(options, load)
    assert counts[0] == 1


def test_the_most_direct_row_wins_where_sources_overlap():
    rows = profile([dict(CPU, method="scaled"), dict(CPU, method="reference", latency_p50_ms=45.0),
                    dict(CPU, batch=4, method="reference", latency_p50_ms=90.0),
                    dict(CPU, batch=4, method="published", latency_p50_ms=80.0, throughput_rps=60.0)])
    kept = prefer_direct(rows)
    assert kept[kept.batch == 1].method.tolist() == ["reference"]
    # a batched row without a measured throughput is unusable, so the published one with a throughput is kept
    assert kept[kept.batch == 4].method.tolist() == ["published"]
