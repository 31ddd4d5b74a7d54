"""The compared policies: each baseline's defining behaviour, plan dicts to deployments, the rolling horizon
(seeing only the past), the oracle's optimality against other feasible plans, and the two CLI commands."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from hetplan.planner.catalog import load_instances, load_models, load_profile, load_serverless
from hetplan.errors import HetplanError
from hetplan.planner.optimize.model import Limits, Windows
from hetplan.planner.optimize.options import Targets, build_options, prune_dominated
from hetplan.planner.replay.baselines import lambda_only, mark_like, vm_peak, vm_reactive
from hetplan.planner.replay.compare import compare
from hetplan.planner.replay.planned import plan_deployment, warm_pool
from hetplan.planner.replay.rolling import hetplan_policy, oracle_policy
from hetplan.planner.replay.scenario import Scenario, Tools, accurate_lambda, single_model_vm
from hetplan.planner.replay.simulate import replay
from milp_cases import plan_file

TARGETS = Targets(slo_s=0.2, mean_accuracy=0.70)
PRICING = load_serverless()


@pytest.fixture(scope="module")
def options():
    return prune_dominated(build_options(load_profile(), load_instances(), PRICING, load_models(), TARGETS))


def step_trace(seconds=7200, low=120.0, high=420.0, step_at=3600, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(1, seconds + 1)
    rate = np.where(t < step_at, low, high)
    return pd.DataFrame({"second": t, "requests": rng.poisson(rate).astype(float)})


def scenario(options, trace=None):
    return Scenario(trace=step_trace() if trace is None else trace, options=options, targets=TARGETS,
                    pricing=PRICING, default_load_time_ms=float(load_profile().load_time_ms.max()))


def play(sc, dep):
    return replay(sc.trace, dep, sc.targets.slo_s, sc.pricing, default_load_time_ms=sc.default_load_time_ms).report


def capacity_at(dep, second):
    """VM throughput (req/s) serving at ``second``."""
    o = dep.vm_options.set_index("option")
    v = dep.vms
    on = (v.launch_s + v.option.map(o.boot_seconds) <= second) & (v.stop_s > second)
    return float(v[on].option.map(o.throughput_rps).sum())


def serving(dep, second):
    boot = dep.vm_options.set_index("option").boot_seconds
    v = dep.vms
    on = v.launch_s + v.option.map(boot)
    return int(((on <= second) & (v.stop_s > second)).sum())


# --- baselines -------------------------------------------------------------------------------------------

def test_single_model_choice_meets_the_accuracy_target_at_the_lowest_price_per_capacity(options):
    sc = scenario(options)
    o = single_model_vm(sc)
    assert o.accuracy >= 0.70
    ok = options.vm[options.vm.accuracy >= 0.70]
    best = (ok.price_per_hour_usd / ok.capacity_rps).min()
    assert o.price_per_hour_usd / o.capacity_rps <= best * 1.05


def test_vm_peak_is_static_and_sized_for_the_peak(options):
    sc = scenario(options)
    dep = vm_peak(sc)
    o = single_model_vm(sc)
    assert len(dep.vms) == math.ceil(sc.trace.requests.max() / o.capacity_rps)
    assert (dep.vms.stop_s == math.inf).all() and (dep.vms.launch_s == 1 - o.boot_seconds).all()
    assert dep.lam_options.empty and dep.overflow is None
    assert play(sc, dep).violations == 0


def test_vm_reactive_scales_out_within_a_period_and_in_only_after_the_cooldown(options):
    trace = step_trace(seconds=9000, low=420.0, high=120.0, step_at=1800)  # a drop, then stay low
    up = step_trace()
    sc_up, sc_down = scenario(options, up), scenario(options, trace)
    dep = vm_reactive(sc_up)
    # Spock-like: one VM type, Lambda taking the overflow (the shared tools); VM-only without them
    assert dep.vm_options.option.nunique() == 1 and list(dep.lam_options.option) == [accurate_lambda(sc_up).option]
    assert dep.overflow == accurate_lambda(sc_up).option and dep.warm is not None
    bare = vm_reactive(replace(sc_up, tools=Tools(overflow=False)))
    assert bare.lam_options.empty and bare.overflow is None and bare.warm is None
    assert bare.vms.equals(dep.vms)  # the tools change the runtime, not the scaling decisions
    before, after = serving(dep, 3500), serving(dep, 3600 + 2 * 60 + 1 + 100)
    assert after > before  # launched at the first evaluation after the step, serving after the boot
    assert dep.vms.launch_s.max() <= 3600 + 2 * 60 + 1  # the first period wholly after the step ends then
    down = vm_reactive(sc_down, scale_in_periods=15)
    stops = down.vms.stop_s[np.isfinite(down.vms.stop_s)]
    assert len(stops) and stops.min() >= 1800 + 15 * 60 - 60  # not before 15 low periods
    assert serving(down, 1700) > serving(down, 8000)


def test_vm_reactive_sees_only_the_past(options):
    full = vm_reactive(scenario(options))
    cut = scenario(options, step_trace().iloc[:4000])
    part = vm_reactive(cut)
    early = lambda d: sorted(d.vms.launch_s[d.vms.launch_s < 3950].tolist())
    assert early(full) == early(part)


def test_infaas_like_takes_the_cheapest_variant_at_the_load_it_sees_and_switches_without_a_gap(options):
    from hetplan.planner.replay.infaas import infaas_like

    # a hand-made catalog where the big type pays off only at high load: c5.2xlarge serves 6× its profiled rate
    everything = build_options(load_profile(), load_instances(), PRICING, load_models(), TARGETS)
    vm = everything.vm[(everything.vm.model == "inception_bn") & everything.vm.instance_type.isin(["c5.large", "c5.2xlarge"])
                       & (everything.vm.batch == 1)].copy()
    big = vm.instance_type == "c5.2xlarge"
    vm.loc[big, ["throughput_rps", "capacity_rps"]] *= 6
    options = replace(everything, vm=vm.reset_index(drop=True))
    sc = scenario(options, step_trace(seconds=9000, low=40.0, high=900.0, step_at=3600))
    dep = infaas_like(sc, threshold=0.6)
    variants = dep.vm_options.set_index("option")
    assert (variants.accuracy >= sc.accuracy_target - 1e-12).all() and dep.overflow == accurate_lambda(sc).option
    # the cheapest variant for each load, computed here: price · ⌈load / (0.6 · throughput)⌉ over accurate options
    accurate = sc.options.vm[sc.options.vm.accuracy >= sc.accuracy_target - 1e-12]
    cheapest = lambda load: accurate.assign(cost=lambda f: f.price_per_hour_usd * np.maximum(
        1, np.ceil(load / (0.6 * f.throughput_rps) - 1e-9))).sort_values(["cost", "price_per_hour_usd"]).option.iloc[0]
    on = lambda second: set(dep.vms[(dep.vms.launch_s + dep.vms.option.map(variants.boot_seconds) <= second)
                                    & (dep.vms.stop_s > second)].option)
    assert on(3000) == {cheapest(40.0)}
    assert on(8900) == {cheapest(900.0)}
    assert cheapest(40.0) != cheapest(900.0)  # so it switched: after 15 periods of the new one being cheapest, no gap
    assert all(on(t) for t in range(1, 9000, 30))
    moved = dep.routes[dep.routes[cheapest(900.0)] == 1.0].start_s.min()
    assert 3600 + 15 * 60 <= moved <= 3600 + 17 * 60 + variants.boot_seconds.max()
    assert len(dep.routes) == 2 and set(dep.vm_options.instance_type) == {"c5.large", "c5.2xlarge"}
    assert play(sc, dep).violation_pct < 5  # the replay takes the switch (routes, overlapping fleets)
    cut = infaas_like(scenario(options, step_trace(seconds=9000, low=40.0, high=900.0, step_at=3600).iloc[:5000]), threshold=0.6)
    early = lambda d: sorted(zip(d.vms.option[d.vms.launch_s < 4900], d.vms.launch_s[d.vms.launch_s < 4900]))
    assert early(dep) == early(cut)  # decisions from the past only


def test_lambda_only_puts_everything_on_the_cheapest_accurate_lambda(options):
    sc = scenario(options, step_trace(seconds=600))
    dep = lambda_only(sc)
    lam = accurate_lambda(sc)
    assert dep.vms.empty and list(dep.lam_options.option) == [lam.option]
    ok = options.lam[options.lam.accuracy >= 0.70]
    assert lam.cost_per_request_usd == ok.cost_per_request_usd.min()
    cold = play(sc, lambda_only(replace(sc, tools=Tools(warm_pool=False))))
    assert cold.lambda_requests == cold.requests and cold.vm_cost_usd == 0 and cold.cold_starts > 0
    warm = play(sc, dep)  # the shared warm pool: instances kept warm for the forecast and seen peaks
    assert warm.cold_starts < cold.cold_starts and warm.ping_cost_usd > 0


def test_mark_like_uses_one_model_and_family_with_lambda_overflow(options):
    sc = scenario(options)
    dep = mark_like(sc)
    assert dep.vm_options.model.nunique() == 1
    assert dep.vm_options.instance_type.str.split(".").str[0].nunique() == 1
    assert dep.overflow == accurate_lambda(sc).option
    r = play(sc, dep)
    assert r.overflow_requests > 0 and r.violation_pct < 1.0
    # after the step the forecast catches up: far more VM throughput late than early
    assert capacity_at(dep, 7000) > 2 * capacity_at(dep, 3000)


def test_mark_like_sees_only_the_past(options):
    full = mark_like(scenario(options))
    part = mark_like(scenario(options, step_trace().iloc[:5000]))
    early = lambda d: d.vms[d.vms.launch_s < 4500].sort_values(["option", "launch_s"]).launch_s.tolist()
    assert early(full) == early(part)


# --- plans -----------------------------------------------------------------------------------------------

def option_records(options):
    vm = options.vm.assign(platform="vm")
    lam = options.lam.assign(platform="lambda", instance_type=None)
    return [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()}
            for r in pd.concat([vm, lam], ignore_index=True).to_dict("records")]


def greedy_plan(windows: Windows, options, option_name=None, lam_share=0.0):
    """A feasible PLAN_FORMAT.md plan: per window, enough VMs of one option for the demand."""
    vm = options.vm.set_index("option")
    name = option_name or vm[vm.accuracy >= 0.70].assign(r=lambda f: f.price_per_hour_usd / f.capacity_rps).r.idxmin()
    lam = options.lam[options.lam.accuracy >= 0.70].iloc[0].option
    cap = vm.loc[name, "capacity_rps"]
    wins = []
    for i in range(len(windows)):
        n = math.ceil(windows.demand_rps[i] * (1 - lam_share) / cap - 1e-9)
        assignments = [{"option": name, "platform": "vm", "count": n, "share": 1 - lam_share}]
        if lam_share:
            assignments.append({"option": lam, "platform": "lambda", "count": 0, "share": lam_share})
        wins.append({"index": i, "start_s": windows.start_s[i], "end_s": windows.start_s[i] + windows.duration_s[i],
                     "assignments": assignments})
    return {"options": option_records(options), "targets": {"mean_accuracy": 0.70}, "windows": wins}


def test_plan_deployment_launches_ahead_of_windows_and_routes_by_share(options):
    w = Windows(start_s=np.array([1.0, 301.0, 601.0]), duration_s=np.full(3, 300.0),
                demand_rps=np.array([100.0, 300.0, 100.0]), mean_rps=np.array([80.0, 250.0, 80.0]))
    plan = greedy_plan(w, options, "vm:inception_bn@c5.xlarge", lam_share=0.1)
    dep = plan_deployment(plan)
    boot = dep.vm_options.set_index("option").boot_seconds["vm:inception_bn@c5.xlarge"]
    counts = [serving(dep, s) for s in (150, 450, 750)]
    assert counts == [1, 3, 1]
    assert sorted(dep.vms.launch_s) == [1 - boot, 301 - boot, 301 - boot]
    assert sorted(dep.vms.stop_s)[:2] == [601, 601]
    routes = dep.routes.set_index("start_s")
    assert routes.loc[301.0, "vm:inception_bn@c5.xlarge"] == pytest.approx(0.9)
    assert routes.iloc[-1].drop(labels=[], errors="ignore").sum() == 0  # after the plan: unrouted
    trace = pd.DataFrame({"second": np.arange(1, 901), "requests": np.full(900, 50.0)})
    r = replay(trace, dep, 0.2, PRICING, default_load_time_ms=2104.0).report
    assert r.lambda_requests == pytest.approx(0.1 * 45000)


def test_warm_pool_covers_the_lambda_shares_and_what_the_vms_cannot_take_at_the_peak(options):
    vm = options.vm[options.vm.option == "vm:inception_bn@c5.2xlarge"].reset_index(drop=True)  # 228.6 req/s
    lam = options.lam[options.lam.option.isin(["lambda:inception_bn@3008MB", "lambda:squeezenet@1024MB"])]
    lam = lam.reset_index(drop=True)
    counts = pd.DataFrame({"start_s": [1.0, 301.0], vm.option[0]: [1, 2]})
    shares = pd.DataFrame({"start_s": [1.0, 301.0], vm.option[0]: [0.9, 1.0], "lambda:inception_bn@3008MB": [0.0, 0.0],
                           "lambda:squeezenet@1024MB": [0.1, 0.0]})
    pool = warm_pool(vm, lam, counts, shares, np.array([400.0, 400.0]), "lambda:inception_bn@3008MB", 1000)
    # window 0: squeezenet share 40 req/s × 160 ms = 6.4 → 7; overflow (360 − 228.6) × 144 ms = 18.9 → 19
    assert pool["lambda:squeezenet@1024MB"].tolist() == [7, 0]
    assert pool["lambda:inception_bn@3008MB"].tolist() == [19, 0]  # window 1: two VMs take all 400 req/s
    capped = warm_pool(vm, lam, counts, shares, np.array([400.0, 400.0]), "lambda:inception_bn@3008MB", 13)
    assert capped.drop(columns="start_s").sum(axis=1).max() <= 13


class Recorder:
    """A plan function that records what the rolling horizon gives it and plans greedily."""

    def __init__(self, options):
        self.options, self.calls = options, []

    def __call__(self, windows, options, targets, limits):
        self.calls.append((windows, limits))
        return greedy_plan(windows, options)  # the options the re-plan was given (pruned as the product prunes)


def test_hetplan_replans_on_a_rolling_horizon_from_the_past_only(options):
    rec = Recorder(options)
    sc = scenario(options)
    dep = hetplan_policy(sc, plan_fn=rec, predictor="naive", horizon=4, replan_every=2)
    starts = [c[0].start_s[0] for c in rec.calls]
    assert starts == list(np.arange(1, 7200, 600.0))  # every 2 windows of 300 s
    assert all(len(c[0]) == 4 for c in rec.calls[:-1])
    # decided one boot delay ahead, with the VMs then running as the initial fleet
    assert [c[1].horizon_start_s for c in rec.calls] == [s - 100 for s in starts]
    assert rec.calls[0][1].initial_vms == {}
    assert sum(rec.calls[3][1].initial_vms.values()) >= 1
    # naive forecast = the last complete window before the decision: window k-2 for window k (the windows
    # route the central forecast; overflow to Lambda absorbs what it misses)
    stats = sc.stats()
    for windows, _ in rec.calls[1:]:
        k = int((windows.start_s[0] - 1) // 300)
        assert windows.demand_rps[0] == pytest.approx(stats.mean_rps.iloc[k - 2])
    # changing the future does not change earlier decisions
    changed = step_trace()
    changed.loc[changed.second > 5000, "requests"] *= 3
    rec2 = Recorder(options)
    hetplan_policy(scenario(options, changed), plan_fn=rec2, predictor="naive", horizon=4, replan_every=2)
    for (a, _), (b, _) in zip(rec.calls, rec2.calls):
        if a.start_s[0] - 100 < 4800:
            assert np.array_equal(a.demand_rps, b.demand_rps)
    # ... nor the warm pool kept before then
    changed_dep = hetplan_policy(scenario(options, changed), plan_fn=Recorder(options), predictor="naive", horizon=4,
                                 replan_every=2)
    early = dep.warm.start_s < 4800
    assert dep.warm[early].equals(changed_dep.warm[early])
    assert dep.warm.drop(columns="start_s").to_numpy().sum() > 0
    assert dep.overflow == accurate_lambda(sc).option
    assert play(sc, dep).violation_pct < 5


def test_compare_reports_every_policy_against_the_best_baseline(options):
    sc = scenario(options, step_trace(seconds=3600))
    fake = {"plan_fn": Recorder(options)}
    table, replays = compare(sc, params={"hetplan": {**fake, "predictor": "naive"}, "oracle": fake})
    assert list(table.policy) == ["hetplan", "vm-reactive", "vm-peak", "lambda-only", "mark-like", "infaas-like", "oracle"]
    best = table.attrs["best_baseline"]
    assert best in ("vm-reactive", "vm-peak", "lambda-only", "mark-like", "infaas-like")
    assert table.set_index("policy").loc[best, "cost_vs_best_pct"] == pytest.approx(0)
    assert set(replays) == set(table.policy)


# --- the oracle (the real MILP) --------------------------------------------------------------------------

def plan_cost(plan, options, windows):
    """The PLAN_FORMAT.md window cost of a plan: VM time, launches (boot time), Lambda share of the mean load."""
    vm = options.vm.set_index("option")
    lam = options.lam.set_index("option")
    total, previous = 0.0, {}
    for i, w in enumerate(plan["windows"]):
        counts = {}
        for a in w["assignments"]:
            if a["platform"] == "vm":
                o = vm.loc[a["option"]]
                counts[a["option"]] = a["count"]
                launches = max(0, a["count"] - previous.get(a["option"], 0))
                total += o.price_per_hour_usd / 3600 * (a["count"] * windows.duration_s[i] + launches * o.boot_seconds)
            elif a.get("share"):
                total += a["share"] * windows.mean_rps[i] * windows.duration_s[i] * lam.loc[a["option"], "cost_per_request_usd"]
        previous = counts
    return total


def test_the_oracle_never_costs_more_than_another_feasible_plan(options):
    pytest.importorskip("highspy")
    from hetplan.planner.optimize.solve import solve_plan

    sc = scenario(options, step_trace(seconds=1800, step_at=900))
    stats = sc.stats()
    windows = Windows.from_frame(stats)
    limits = Limits(mean_accuracy=0.70, concurrency_limit=1000, horizon_start_s=float(windows.start_s[0] - 100))
    plans = {"oracle": solve_plan(windows, options, TARGETS, limits, time_limit_s=20, gap=0.001).to_dict()}
    vm = options.vm[options.vm.accuracy >= 0.70]
    for name in vm.option:
        plans[name] = greedy_plan(windows, options, name)
        plans[name + "+lambda"] = greedy_plan(windows, options, name, lam_share=0.2)
    costs = {k: plan_cost(p, options, windows) for k, p in plans.items()}
    assert costs["oracle"] == pytest.approx(plans["oracle"]["summary"]["total_cost_usd"], rel=1e-6)
    assert all(costs["oracle"] <= c * (1 + 1e-3) for c in costs.values()), costs
    # and replayed on the true trace (no overflow), the oracle is still the cheapest
    replayed = {k: play(sc, plan_deployment(p)).cost_usd for k, p in plans.items()}
    assert all(replayed["oracle"] <= c * 1.01 for c in replayed.values()), replayed
    dep = oracle_policy(sc, plan_fn=lambda w, o, t, l: plans["oracle"])
    assert dep.name == "oracle" and dep.overflow is not None


# --- CLI -------------------------------------------------------------------------------------------------

@pytest.fixture()
def cli():
    from hetplan.commands.replay import compare_command, simulate_command

    app = typer.Typer()
    app.command("simulate")(simulate_command)
    app.command("compare")(compare_command)
    return app


def test_compare_command_prints_one_row_per_policy_and_writes_table_and_plot(cli, tmp_path):
    out, png = tmp_path / "cmp.csv", tmp_path / "cmp.png"
    result = CliRunner(env={"COLUMNS": "200"}).invoke(cli, ["compare", "--trace", "data/traces/wits.csv.gz", "--hours", "0.5",
                                      "--policies", "hetplan,vm-reactive,vm-peak,lambda-only,mark-like",
                                      "--out", str(out), "--plot", str(png)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    for name in ("hetplan", "vm-reactive", "vm-peak", "lambda-only", "mark-like", "cost vs best"):
        assert name in result.output
    table = pd.read_csv(out)
    assert list(table.policy) == ["hetplan", "vm-reactive", "vm-peak", "lambda-only", "mark-like"]
    assert table.violation_pct.notna().all() and (table.cost_usd > 0).all()
    assert png.stat().st_size > 10_000


def test_compare_reports_a_policy_that_cannot_run_and_runs_the_others(options):
    from hetplan.planner.optimize.options import Options

    no_lambda = Options(vm=options.vm, lam=options.lam.iloc[0:0], rejected=options.rejected)
    table, _ = compare(scenario(no_lambda, step_trace(seconds=1800)), ("vm-reactive", "lambda-only", "mark-like"))
    errors = table.set_index("policy").error
    assert errors.isna()["vm-reactive"] and "Lambda" in errors["lambda-only"] and "Lambda" in errors["mark-like"]
    assert table.attrs["best_baseline"] == "vm-reactive"


def test_compare_command_rejects_an_unknown_policy_or_output_before_running(cli):
    result = CliRunner().invoke(cli, ["compare", "--policies", "vm-magic"])
    assert isinstance(result.exception, HetplanError) and "vm-magic" in str(result.exception)
    result = CliRunner().invoke(cli, ["compare", "--out", "table.txt"])
    assert isinstance(result.exception, HetplanError) and ".csv or .json" in str(result.exception)


def test_simulate_command_replays_a_plan_file(cli, tmp_path, options):
    w = Windows(start_s=np.array([1.0, 301.0]), duration_s=np.full(2, 300.0), demand_rps=np.array([200.0, 200.0]),
                mean_rps=np.array([150.0, 150.0]))
    plan = {**greedy_plan(w, options), "kind": "hetplan.plan", "targets": {"slo_ms": 200, "mean_accuracy": 0.7}}
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan_file(plan)))
    trace = tmp_path / "t.csv"
    trace.write_text("second,requests\n" + "".join(f"{s},150\n" for s in range(1, 601)))
    timeline = tmp_path / "timeline.json"
    result = CliRunner(env={"COLUMNS": "200"}).invoke(cli, ["simulate", "--plan", str(path), "--trace", str(trace), "--out", str(timeline),
                                      "--overflow"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "violation_pct" in result.output and "90,000" in result.output
    assert len(json.loads(timeline.read_text())) == 2
    bad = CliRunner().invoke(cli, ["simulate", "--plan", str(tmp_path / "missing.json")])
    assert isinstance(bad.exception, HetplanError)
