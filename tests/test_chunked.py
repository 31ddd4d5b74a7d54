"""Any per-window MILP by chunks of windows: the bound never exceeds the exact optimum, the plan is feasible."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from hetplan.planner.optimize.chunked import chunk_models, chunk_spans, solve_by_chunks
from hetplan.planner.optimize.model import Limits, build_model
from hetplan.planner.optimize.solvers import SolveOptions, Status, solve_highs
from milp_cases import random_case
from test_milp_bruteforce import extended_case


def feasible(model, z) -> bool:
    rows = model.matrix @ z
    return bool(np.all(rows >= model.row_lb - 1e-6) and np.all(rows <= model.row_ub + 1e-6)
                and np.all(z >= model.lb - 1e-6) and np.all(z <= model.ub + 1e-6)
                and np.allclose(z[model.integer], np.round(z[model.integer])))


def priced(model, seed):
    """Random non-negative prices on the Lambda columns (as a fleet's Lagrangian subproblem)."""
    block = model.blocks["lambda-rate"]
    cost = model.cost.copy()
    cost[block.offset:block.offset + block.size] += np.random.default_rng(seed).uniform(0, 5e-4, block.size)
    return dataclasses.replace(model, cost=cost)


def cases():
    for seed in range(4):
        opts, win, accuracy = random_case(seed, T=9, V=3)
        limits = Limits(mean_accuracy=accuracy, concurrency_limit=5.0, horizon_start_s=win.start_s[0] - 250.0)
        model = build_model(win, opts, limits)
        yield f"plain-{seed}", model, 2
        yield f"priced-{seed}", priced(model, seed), 3
    opts, win, accuracy, initial = extended_case(3, True)
    limits = Limits(mean_accuracy=accuracy, concurrency_limit=1.0, quotas={"t0.large": 8}, initial_vms=initial,
                    horizon_start_s=win.start_s[0] - 1000.0, overflow_option=opts.lam.option[1])
    yield "overflow", build_model(win, opts, limits), 1


@pytest.mark.parametrize("name, model, chunk", list(cases()), ids=lambda v: v if isinstance(v, str) else "")
def test_the_chunk_bound_and_plan_bracket_the_exact_optimum(name, model, chunk):
    exact = solve_highs(model, SolveOptions(gap=1e-9, time_limit_s=30))
    loose = solve_by_chunks(model, "highs", SolveOptions(gap=0.5, time_limit_s=30), chunk=chunk)  # no polish
    assert loose.message == "chunks" and loose.values is not None and feasible(model, loose.values)
    assert loose.objective == pytest.approx(float(model.cost @ loose.values + model.objective_offset), rel=1e-9)
    assert loose.bound <= exact.objective + 1e-9 <= loose.objective + 2e-9
    tight = solve_by_chunks(model, "highs", SolveOptions(gap=1e-9, time_limit_s=30), chunk=chunk)  # polished whole
    assert tight.objective == pytest.approx(exact.objective, rel=1e-7) and tight.bound <= exact.objective + 1e-9


def test_only_rows_across_a_cut_are_dropped():
    opts, win, accuracy = random_case(1, T=9, V=3)
    model = build_model(win, opts, Limits(mean_accuracy=accuracy, concurrency_limit=5.0, horizon_start_s=-1e4,
                                          budget_usd=10.0))
    spans = chunk_spans(9, 2)
    assert spans == [(0, 2), (2, 4), (4, 6), (6, 8), (8, 9)]
    parts = chunk_models(model, spans)
    assert sorted(np.concatenate([cols for cols, _ in parts]).tolist()) == list(range(model.num_vars))
    kept = sum(part.num_rows for _, part in parts)
    # dropped: one launch row per VM option at each of the 4 joins, and the budget row (it spans every window)
    assert model.num_rows - kept == 4 * len(opts.vm) + 1
    assert chunk_spans(9, 4) == [(0, 4), (4, 9)] and chunk_spans(3, 120) == [(0, 3)]  # a remainder under half joins


def test_short_or_infeasible_models():
    opts, win, accuracy = random_case(2, T=4)
    model = build_model(win, opts, Limits(mean_accuracy=accuracy, concurrency_limit=5.0))
    whole = solve_by_chunks(model, "highs", SolveOptions(gap=1e-9), chunk=2)  # 4 windows: not worth cutting
    assert whole.message != "chunks" and whole.objective == pytest.approx(solve_highs(model, SolveOptions(gap=1e-9)).objective)
    opts, win, accuracy = random_case(2, T=9)
    impossible = build_model(win, opts, Limits(mean_accuracy=0.99, concurrency_limit=5.0))  # no option is that accurate
    assert solve_by_chunks(impossible, "highs", SolveOptions(gap=0.01), chunk=2).status == Status.INFEASIBLE
