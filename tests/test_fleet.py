"""Fleet planning: the decomposed plan against the monolithic MILP's optimum, its bound, and the CLI on Dask."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from hetplan.cli import app
from hetplan.planner import catalog
from hetplan.planner.fleet.coupling import monolithic
from hetplan.planner.fleet.spec import Fleet, Service, Shared
from hetplan.planner.fleet.workflow import build_problems, plan_fleet
from hetplan.planner.optimize.solvers import SolveOptions, Status, get_backend
from hetplan.planner.optimize.workflow import PlanRequest

BERKELEY = catalog.DEFAULT_TRACE.parent / "berkeley.csv.gz"
MODELS = ("inception_bn", "squeezenet")
CONCURRENCY, QUOTA = 60, 40  # tight enough that the services' own optima together break both


def fleet_and_requests(hours=1.0):
    services = (Service("search", 0.2), Service("photos", 0.5, trace="berkeley", load_scale=0.5),
                Service("tags", 0.2, load_scale=0.6))
    fleet = Fleet(services, Shared(lambda_concurrency=CONCURRENCY, vcpu_quota={"c5": QUOTA}, hours=hours))
    requests = [PlanRequest(slo_s=s.slo_s, trace=BERKELEY if s.trace else catalog.DEFAULT_TRACE, hours=hours,
                            load_scale=s.load_scale, lambda_concurrency=CONCURRENCY, gaps="interpolate", models=MODELS,
                            time_limit_s=30) for s in services]
    return fleet, requests


@pytest.fixture(scope="module")
def solved():
    fleet, requests = fleet_and_requests()
    problems, rows = build_problems(fleet, requests)
    exact = get_backend("highs")(monolithic(problems, rows), SolveOptions(time_limit_s=120, gap=1e-6))
    alone = [get_backend("highs")(p.model, SolveOptions(time_limit_s=60, gap=1e-6)) for p in problems]
    outcome = plan_fleet(fleet, requests, serial=True, gap=0.001, iterations=20)
    return fleet, problems, rows, exact, alone, outcome


def test_the_shared_limits_bind_on_this_fleet(solved):
    _, problems, rows, exact, alone, _ = solved
    assert exact.status == Status.OPTIMAL and len(problems) == 3 and len(problems[0].model.windows) == 12
    # planned alone, the services together break the shared rows, so the fleet optimum costs more
    used = sum(p.coupling @ r.values for p, r in zip(problems, alone))
    assert np.any(used > rows.capacity + 1e-6)
    assert sum(r.objective for r in alone) < exact.bound - 1e-6


def test_the_bound_never_exceeds_the_optimum_and_the_plan_never_beats_it(solved):
    _, _, _, exact, _, outcome = solved
    solution = outcome.solution
    assert all(r["dual_value"] <= exact.objective + 1e-6 for r in solution.history if np.isfinite(r["dual_value"]))
    assert solution.bound <= exact.objective + 1e-6
    assert solution.cost >= exact.bound - 1e-6
    bounds = [r["bound"] for r in solution.history]
    assert bounds == sorted(bounds)  # the best bound only rises
    assert solution.gap == pytest.approx((solution.cost - solution.bound) / solution.cost)
    assert solution.cost <= exact.objective * 1.02  # a good plan, not only a valid one (observed: within 0.1%)
    # and a tight bound: from the LP relaxation's prices (observed 0.5% below the optimum; 12.6% from zero prices)
    assert solution.bound >= exact.objective * 0.98


def test_subproblems_solved_by_chunks_keep_the_bound_valid(solved, monkeypatch):
    """Long services' subproblems are solved by chunks of windows (``optimize.chunked``); here chunks of 4 of the
    12 windows: every round's Lagrangian value stays below the monolithic optimum, the plan fits the limits."""
    from hetplan.planner.optimize import chunked

    fleet, _, rows, exact, _, _ = solved
    monkeypatch.setattr(chunked, "CHUNK_WINDOWS", 4)
    calls = []
    monkeypatch.setattr(chunked, "chunk_models", lambda *a, real=chunked.chunk_models: calls.append(1) or real(*a))
    _, requests = fleet_and_requests()
    solution = plan_fleet(fleet, requests, serial=True, gap=0.001, iterations=4).solution
    assert calls  # the subproblems were cut
    assert all(r["dual_value"] <= exact.objective + 1e-6 for r in solution.history if np.isfinite(r["dual_value"]))
    assert solution.bound <= exact.objective + 1e-6 <= solution.cost + 2e-6
    assert np.all(solution.usage <= rows.capacity + 1e-6)
    assert solution.cost <= exact.objective * 1.05


def test_lp_prices_are_the_fleet_lp_duals_and_bound_from_the_first_round(solved):
    """At the LP's optimal prices the relaxed subproblems add up to the LP optimum (strong duality: this checks the
    sign of HiGHS's duals), and the integer subproblems' Lagrangian value is at least that."""
    from hetplan.planner.fleet.coupling import priced
    from hetplan.planner.fleet.decompose import lp_start

    _, problems, rows, exact, _, outcome = solved
    prices, lp_value, usage = lp_start(problems, rows)
    assert np.all(prices >= 0) and prices.max() > 0 and lp_value <= exact.objective + 1e-9
    highs = get_backend("highs")
    relaxed = sum(highs(priced(p, prices), SolveOptions(relax=True)).objective for p in problems)
    assert relaxed - prices @ rows.capacity == pytest.approx(lp_value, rel=1e-6)
    first_round = outcome.solution.history[0]
    assert lp_value - 1e-9 <= first_round["dual_value"] <= exact.objective + 1e-6
    # the LP's split of the limits (the first caps): within every limit, and exactly at it where a row has a price
    # (complementary slackness), so the caps built from it add up to the limits
    total = np.sum(usage, axis=0)
    assert np.all(total <= rows.capacity + 1e-6)
    np.testing.assert_allclose(total[prices > 1e-9], rows.capacity[prices > 1e-9], rtol=1e-6)


def test_the_fleet_plans_respect_every_shared_limit_in_every_window(solved):
    """Read from the plans themselves: VMs × vCPUs per family per window, MILP cost against the summary."""
    _, problems, rows, _, _, outcome = solved
    vcpus = catalog.load_instances(None).vcpus.to_dict()
    per_window = np.zeros(12)
    for plan in outcome.plans.values():
        for a in plan.assignments.itertuples():
            if a.platform == "vm":
                per_window[a.window] += a.count * vcpus[a.instance_type]
    assert per_window.max() <= QUOTA
    summary = outcome.summary
    concurrency = [row for row in summary["limits"] if row["row"].startswith("lambda-concurrency")]
    assert len(concurrency) == 12 and all(row["used"] <= CONCURRENCY + 1e-6 for row in concurrency)
    assert summary["milp_cost_usd"] == pytest.approx(sum(s["milp_cost_usd"] for s in summary["services"]))
    assert summary["milp_cost_usd"] == pytest.approx(sum(p.meta["solver"]["objective_usd"] for p in outcome.plans.values()))
    assert set(summary["binding"]) <= {row["row"] for row in summary["limits"]} and summary["binding"]


def test_solve_fleet_on_a_local_dask_cluster_writes_plans_and_summary(tmp_path):
    fleet = tmp_path / "fleet.toml"
    fleet.write_text(f'''[shared]
lambda_concurrency = {CONCURRENCY}
hours = 0.5
[shared.vcpu_quota]
c5 = {QUOTA}

[[services]]
name = "search"
slo = "200ms"
models = ["inception_bn", "squeezenet"]

[[services]]
name = "tags"
slo = "200ms"
load_scale = 0.6
models = ["inception_bn", "squeezenet"]
''')
    out = tmp_path / "plans"
    result = CliRunner().invoke(app, ["solve", "--fleet", str(fleet), "--out", str(out), "--json", "--time-limit", "20s"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary == json.loads((out / "fleet.json").read_text())
    assert [s["name"] for s in summary["services"]] == ["search", "tags"]
    assert summary["bound_usd"] <= summary["milp_cost_usd"] + 1e-9
    for service in summary["services"]:
        shown = CliRunner().invoke(app, ["show", str(out / service["plan"]), "--json"])
        assert shown.exit_code == 0 and json.loads(shown.stdout)["solver"]["method"] == "fleet"
    assert json.loads(CliRunner().invoke(app, ["show", str(out / "fleet.json"), "--json"]).stdout) == summary
    checked = CliRunner().invoke(app, ["validate", str(out / "fleet.json"), "--json"])
    assert checked.exit_code == 0 and json.loads(checked.stdout)["ok"] is True
    # the same plans against a smaller quota: validate recomputes the vCPUs from the plans and finds the windows over it
    used = max(row["used"] for row in summary["limits"] if row["row"].startswith("vcpus["))
    summary["shared"]["vcpu_quota"]["c5"] = int(used) - 1
    tight = out / "tight.json"
    tight.write_text(json.dumps(summary))
    failed = CliRunner().invoke(app, ["validate", str(tight), "--json"])
    assert failed.exit_code == 4
    report = json.loads(failed.stdout)
    assert report["ok"] is False and all(s["ok"] for s in report["services"].values())
    over = [v for v in report["shared"] if v["constraint"] == "shared-vcpus"]
    assert over and {v["window"] for v in over} == {int(row["row"][6:].split(",")[0]) for row in summary["limits"]
                                                   if row["row"].startswith("vcpus[") and row["used"] > used - 1}


def test_a_bad_fleet_file_is_one_line_and_exit_2(tmp_path):
    cases = {"services = []\n": "malformed", "[[services]]\nname = \"a\"\nslo = \"fast\"\n": "slo",
             "[[services]]\nname = \"a\"\nslo = \"200ms\"\n[[services]]\nname = \"a\"\nslo = \"1s\"\n": "twice",
             "[shared]\nvcpu_quota = {c9 = 4}\n[[services]]\nname = \"a\"\nslo = \"200ms\"\n": "unknown family",
             "not = [toml": "not valid TOML",
             "[shared]\nlambda_concurrency = \"1000/s\"\n[[services]]\nname = \"a\"\nslo = \"200ms\"\n": "shared.lambda_concurrency",
             "[[services]]\nname = \"a\"\nslo = \"200ms\"\ntrace = \"nowhere.csv\"\n": "service a: trace file 'nowhere.csv' not found"}
    for text, reason in cases.items():
        path = tmp_path / "fleet.toml"
        path.write_text(text)
        result = CliRunner().invoke(app, ["solve", "--fleet", str(path), "--out", str(tmp_path / "out")])
        assert result.exit_code == 2 and reason in result.output and len(result.output.strip().splitlines()) == 1, result.output
        assert not (tmp_path / "out").exists()


def test_a_worker_killed_mid_solve_costs_a_rerun_not_the_fleet(tmp_path):
    """SIGKILL a Dask worker while it solves a subproblem: Dask runs that task again elsewhere, and the fleet plan
    is the one a serial run makes (HiGHS on one thread is deterministic)."""
    import logging
    import os
    import signal
    import threading
    import time

    from dask.distributed import Client, LocalCluster

    fleet, requests = fleet_and_requests(hours=0.5)
    serial = plan_fleet(fleet, requests, serial=True, gap=0.001, iterations=6)
    killed = {}
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=logging.CRITICAL) as cluster, Client(cluster) as client:
        pids = client.run(os.getpid)

        def kill_one_busy_worker():
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not killed:
                busy = [w for w, tasks in client.processing().items() if tasks]
                if busy:
                    killed["worker"], killed["tasks"] = busy[0], client.processing()[busy[0]]
                    os.kill(pids[busy[0]], signal.SIGKILL)
                time.sleep(0.01)

        killer = threading.Thread(target=kill_one_busy_worker, daemon=True)
        killer.start()
        distributed = plan_fleet(fleet, requests, scheduler=cluster.scheduler_address, gap=0.001, iterations=6)
        killer.join(5)
    assert killed and killed["tasks"], "no worker was busy to kill"
    assert distributed.solution.cost == pytest.approx(serial.solution.cost, rel=1e-9)
    assert distributed.solution.bound == pytest.approx(serial.solution.bound, rel=1e-9)
    for name, plan in serial.plans.items():
        assert distributed.plans[name].assignments[["window", "option", "count"]].equals(plan.assignments[["window", "option", "count"]])


def test_single_service_limits_on_the_command_line_are_refused_with_a_fleet(tmp_path):
    path = tmp_path / "fleet.toml"
    path.write_text('[[services]]\nname = "a"\nslo = "200ms"\n')
    for flag, value in (("--budget", "10"), ("--quota", "c5.large=2"), ("--lambda-concurrency", "100")):
        result = CliRunner().invoke(app, ["solve", "--fleet", str(path), flag, value, "--out", str(tmp_path / "out")])
        assert result.exit_code == 2 and f"{flag} does not apply to --fleet" in result.output
    assert not (tmp_path / "out").exists()


def test_a_service_infeasible_on_its_own_is_named_with_exit_1(tmp_path):
    path = tmp_path / "fleet.toml"
    path.write_text('[shared]\nhours = 0.5\n[[services]]\nname = "a"\nslo = "200ms"\n'
                    '[[services]]\nname = "b"\nslo = "200ms"\nmean_accuracy = 0.99\n')
    result = CliRunner().invoke(app, ["solve", "--fleet", str(path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1 and result.output.startswith("hetplan: error: service b: ") and "mean-accuracy" in result.output
    assert not (tmp_path / "out").exists()


def test_the_shipped_example_fleet_reads():
    from pathlib import Path

    from hetplan.planner.fleet.spec import load_fleet

    fleet = load_fleet(Path(__file__).resolve().parents[1] / "examples" / "fleet.toml")
    assert [s.name for s in fleet.services] == ["search", "photos", "tags"]
    assert fleet.shared.lambda_concurrency == 60 and fleet.shared.vcpu_quota == {"c5": 40} and fleet.shared.window_s == 300
    assert fleet.services[1].trace == "berkeley" and fleet.services[1].gaps == "interpolate" and fleet.services[1].slo_s == 0.5
