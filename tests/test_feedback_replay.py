"""The loop in replay: drift changes the true speed (not the router), the replay writes a request log, and
``hetplan`` re-planning with feedback from the replayed past beats ``hetplan-no-feedback`` under drift."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from hetplan.planner.catalog import DATA_DIR, load_instances, load_models, load_profile, load_serverless
from hetplan.errors import HetplanError
from hetplan.planner.replay.drift import Drift, LogRecorder, apply_drift, parse_drift
from hetplan.planner.replay.feedback import hetplan_feedback_policy
from hetplan.planner.catalog.observe import read_log, update_profile
from hetplan.planner.optimize.options import Targets, build_options, prune_dominated
from hetplan.planner.replay.compare import compare
from hetplan.planner.replay.rolling import hetplan_policy
from hetplan.planner.replay.scenario import Scenario, make_scenario
from hetplan.planner.replay.deployment import Deployment
from hetplan.planner.replay.simulate import replay
from milp_cases import plan_file

PRICING = load_serverless()
VM, LAM = "vm:m@c5.large", "lambda:m@2048MB"
SLO = 0.2


def deployment(overflow=False, share_lambda=0.0):
    vm = pd.DataFrame([dict(option=VM, model="m", instance_type="c5.large", accuracy=0.7, latency_ms=50.0, servers=2,
                            throughput_rps=40.0, price_per_hour_usd=0.36, boot_seconds=100.0)])
    lam = pd.DataFrame([dict(option=LAM, model="m", memory_mb=2048.0, accuracy=0.7, latency_ms=100.0, duration_ms=100.0,
                             load_time_ms=500.0)])
    vms = pd.DataFrame([(VM, -100.0, math.inf)], columns=["option", "launch_s", "stop_s"])
    routes = pd.DataFrame([{"start_s": 0, VM: 1 - share_lambda, LAM: share_lambda}])
    return Deployment(vm, lam, vms, routes, overflow=LAM if overflow else None, overflow_fraction=0.75)


def flat(rate, seconds=900):
    return pd.DataFrame({"second": np.arange(seconds), "requests": np.full(seconds, float(rate))})


def test_parse_drift_reads_one_or_several_and_rejects_nonsense():
    assert parse_drift("model=resnet200,latency=1.3") == (Drift("resnet200", 1.3),)
    assert parse_drift("model=a,latency=2,platform=vm; model=b,latency=0.5") == (Drift("a", 2.0, "vm"), Drift("b", 0.5))
    for bad in ("resnet200", "model=x,latency=-1", "model=x,latency=fast", "model=x,latency=1.2,platform=gpu", "latency=1.3"):
        with pytest.raises(HetplanError, match="--drift"):
            parse_drift(bad)


def test_drift_changes_the_true_speed_but_not_the_router():
    dep = apply_drift(deployment(overflow=True), (Drift("m", 2.0),), SLO)
    assert dep.vm_options.latency_ms.iloc[0] == 100.0 and dep.vm_options.throughput_rps.iloc[0] == 20.0
    assert dep.lam_options[["latency_ms", "duration_ms"]].iloc[0].tolist() == [200.0, 200.0]
    assert dep.lam_options.load_time_ms.iloc[0] == 500.0
    # router: the profiled throughput × 0.75 × (SLO − profiled latency) = 40 × 0.75 × 0.15 = 4.5 requests per VM
    assert dep.overflow_queue[VM].iloc[0] == pytest.approx(4.5)
    vm_only = apply_drift(deployment(), (Drift("m", 2.0, "lambda"),), SLO)
    assert vm_only.vm_options.latency_ms.iloc[0] == 50.0 and vm_only.lam_options.latency_ms.iloc[0] == 200.0


def test_drift_causes_violations_the_profile_does_not_predict():
    trace = flat(30)  # one VM: 40 req/s as profiled, 20 req/s when the model is 2x slower
    assert replay(trace, deployment(), SLO, PRICING).report.violations == 0
    slow = replay(trace, deployment(), SLO, PRICING, drift=(Drift("m", 2.0),)).report
    assert slow.violation_pct > 90
    # with overflow: the router, set from the profile, lets 4.5 requests queue per VM: at the true 30.8 req/s
    # (drift 1.3) that is a 146 ms wait + 65 ms service > 200 ms; without drift 112.5 + 50 ms < 200 ms
    # (the overflow's cold starts, 500 ms loads, violate in every case)
    over = flat(60)
    calm = replay(over, deployment(overflow=True), SLO, PRICING).report
    assert calm.violations == calm.cold_starts
    drifted = replay(over, deployment(overflow=True), SLO, PRICING, drift=(Drift("m", 1.3),)).report
    assert drifted.violations - drifted.cold_starts > 0.1 * drifted.requests and drifted.overflow_requests > 0
    # the same deployment with a router set from the true figures would not violate
    from dataclasses import replace

    true_router = pd.DataFrame([{"start_s": 0, VM: 40 / 1.3 * 0.75 * (SLO - 0.065)}])
    fixed = replay(over, replace(deployment(overflow=True), overflow_queue=true_router), SLO, PRICING,
                   drift=(Drift("m", 1.3),)).report
    assert fixed.violations == fixed.cold_starts


def test_fluid_log_is_a_systematic_sample_with_fluid_latencies():
    rec = LogRecorder(fraction=0.1)
    replay(flat(30), deployment(), SLO, PRICING, drift=(Drift("m", 1.2),), recorder=rec)
    log = rec.frame()
    assert len(log) == pytest.approx(0.1 * 30 * 900, abs=1)
    assert np.allclose(log.latency_ms, 60.0) and (log.platform == "vm").all()  # quiet: the true latency
    assert log.timestamp.is_monotonic_increasing and log.timestamp.between(0, 900).all()
    # overloaded: the sampled latencies include the wait
    rec = LogRecorder(fraction=0.1)
    replay(flat(30), deployment(), SLO, PRICING, drift=(Drift("m", 2.0),), recorder=rec)
    assert rec.frame().latency_ms.max() > 1000


def test_lambda_log_marks_cold_starts_and_events_log_every_request():
    trace = pd.DataFrame({"second": np.arange(120), "requests": np.r_[np.zeros(60), np.full(60, 20.0)]})
    rec = LogRecorder(fraction=1.0)
    report = replay(trace, deployment(share_lambda=1.0), SLO, PRICING, recorder=rec).report
    log = rec.frame()
    assert len(log) == 1200 and (log.platform == "lambda").all()
    assert log.cold_start.sum() == pytest.approx(report.cold_starts, abs=1)
    assert set(log.latency_ms.round(6)) == {100.0, 600.0}  # warm, and warm + the 500 ms load
    rec = LogRecorder()
    report = replay(trace, deployment(share_lambda=0.5), SLO, PRICING, method="events", recorder=rec).report
    log = rec.frame()
    assert len(log) == 1200 and log.cold_start.sum() == report.cold_starts
    assert set(log.platform) == {"vm", "lambda"}


def test_simulate_command_writes_a_log_that_observe_reads(tmp_path):
    from test_policies import greedy_plan

    from hetplan.commands.replay import simulate_command
    from hetplan.planner.optimize.model import Windows

    targets = Targets(slo_s=0.2, mean_accuracy=0.70)
    options = prune_dominated(build_options(load_profile(), load_instances(), PRICING, load_models(), targets))
    w = Windows(start_s=np.array([1.0, 301.0]), duration_s=np.full(2, 300.0), demand_rps=np.array([200.0, 200.0]),
                mean_rps=np.array([150.0, 150.0]))
    plan = {**greedy_plan(w, options, "vm:inception_bn@c5.xlarge"), "kind": "hetplan.plan",
            "targets": {"slo_ms": 200, "mean_accuracy": 0.7}}
    (tmp_path / "plan.json").write_text(json.dumps(plan_file(plan)))
    (tmp_path / "t.csv").write_text("second,requests\n" + "".join(f"{s},150\n" for s in range(1, 601)))
    app = typer.Typer()
    app.command("simulate")(simulate_command)
    app.command("other")(lambda: None)
    args = ["simulate", "--plan", str(tmp_path / "plan.json"), "--trace", str(tmp_path / "t.csv"), "--overflow",
            "--log", str(tmp_path / "log.csv"), "--method", "fluid", "--drift", "model=inception_bn,latency=1.3"]
    result = CliRunner(env={"COLUMNS": "250"}).invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "request log written" in result.output
    read = read_log(tmp_path / "log.csv")
    assert len(read.bad) == 0 and len(read.requests) == pytest.approx(0.01 * 150 * 600, abs=2)
    _, changes = update_profile(load_profile(), read.requests)
    row = changes[(changes.model == "inception_bn") & (changes.platform == "vm")].iloc[0]
    assert row.drifted and row.drift_pct == pytest.approx(30.0, abs=1)
    bad = CliRunner().invoke(app, [*args[:-1], "model=inception_nb,latency=1.3"])
    assert isinstance(bad.exception, HetplanError) and "did you mean 'inception_bn'" in str(bad.exception)


# --- the feedback policy ---------------------------------------------------------------------------------

def greedy_plan_fn(windows, options, targets, limits):
    """A fast stand-in for the MILP that does use the options it is given: the cheapest VM option per SLO-safe
    capacity meeting the accuracy target, enough VMs for each window's demand."""
    from test_policies import option_records

    vm = options.vm[options.vm.accuracy >= 0.70]
    best = vm.loc[(vm.price_per_hour_usd / vm.capacity_rps).idxmin()]
    wins = [{"index": i, "start_s": float(windows.start_s[i]), "end_s": float(windows.start_s[i] + windows.duration_s[i]),
             "assignments": [{"option": best.option, "platform": "vm",
                              "count": math.ceil(windows.demand_rps[i] / best.capacity_rps - 1e-9), "share": 1.0}]}
            for i in range(len(windows))]
    return {"options": option_records(options), "targets": {"mean_accuracy": 0.70}, "windows": wins}


def step_scenario(drift=()):
    from test_policies import step_trace

    targets = Targets(slo_s=0.2, mean_accuracy=0.70)
    profile = load_profile()
    options = prune_dominated(build_options(profile, load_instances(), PRICING, load_models(), targets))
    return Scenario(trace=step_trace(seconds=5400), options=options, targets=targets, pricing=PRICING,
                    default_load_time_ms=float(profile.load_time_ms.max()), drift=tuple(drift))


def test_feedback_replans_with_the_corrected_capacity_and_only_from_the_past():
    sc = step_scenario((Drift("inception_bn", 1.3),))
    blind = hetplan_policy(sc, plan_fn=greedy_plan_fn, predictor="naive", horizon=4, replan_every=2)
    seen = hetplan_feedback_policy(sc, plan_fn=greedy_plan_fn, predictor="naive", horizon=4, replan_every=2)
    # the first re-plan has nothing to learn from: the same launches; later ones plan ~1.3x the VMs
    first = lambda dep: dep.vms[dep.vms.launch_s < 500].option.value_counts().to_dict()
    assert first(seen) == first(blind)
    late = lambda dep: len(dep.vms[dep.vms.stop_s > 5000])
    assert late(seen) >= math.floor(1.25 * late(blind))
    # routers follow the corrected figures from the second re-plan on
    router = seen.overflow_queue.set_index("start_s")
    drifted = [c for c in router.columns if "inception_bn" in c]
    assert drifted and (router[drifted].iloc[-1] < router[drifted].iloc[0]).all()
    play = lambda dep: replay(sc.trace, dep, sc.targets.slo_s, PRICING, default_load_time_ms=sc.default_load_time_ms,
                              drift=sc.drift).report
    assert play(seen).violations < 0.5 * play(blind).violations
    # without drift, feedback changes nothing that matters
    calm = step_scenario()
    a = hetplan_policy(calm, plan_fn=greedy_plan_fn, predictor="naive", horizon=4, replan_every=2)
    b = hetplan_feedback_policy(calm, plan_fn=greedy_plan_fn, predictor="naive", horizon=4, replan_every=2)
    assert a.vms.option.value_counts().to_dict() == b.vms.option.value_counts().to_dict()
    # decisions depend on the past only: a different future leaves the early fleet unchanged
    changed = sc.trace.copy()
    changed.loc[changed.second > 4000, "requests"] *= 3
    from dataclasses import replace

    other = hetplan_feedback_policy(replace(sc, trace=changed), plan_fn=greedy_plan_fn, predictor="naive", horizon=4,
                                    replan_every=2)
    early = lambda dep: dep.vms[dep.vms.launch_s < 3500].reset_index(drop=True)
    pd.testing.assert_frame_equal(early(other)[["option", "launch_s"]], early(seen)[["option", "launch_s"]])


def test_headline_feedback_halves_violations_under_drift_on_the_workhorse_model():
    """WITS, first hour, +30% on inception_bn (most of the default plan's traffic), the real MILP."""
    pytest.importorskip("highspy")
    from hetplan.planner.replay.planned import solver_plan_fn

    sc = make_scenario(DATA_DIR / "traces" / "wits.csv.gz", 0.2, mean_accuracy=0.70, hours=1,
                       drift=parse_drift("model=inception_bn,latency=1.3"))
    params = {"predictor": "ewma", "horizon": 4, "replan_every": 2, "plan_fn": solver_plan_fn(time_limit_s=5)}
    table, _ = compare(sc, ("hetplan", "hetplan-no-feedback"), {"hetplan": params, "hetplan-no-feedback": params})
    v = table.set_index("policy").violations
    assert v["hetplan"] <= 0.5 * v["hetplan-no-feedback"], table


def test_compare_command_takes_drift_and_shows_both_hetplan_rows(tmp_path):
    pytest.importorskip("highspy")
    from hetplan.commands.replay import compare_command

    app = typer.Typer()
    app.command("compare")(compare_command)
    app.command("other")(lambda: None)
    out = tmp_path / "t.csv"
    args = ["compare", "--hours", "0.5", "--time-limit", "2", "--replan-every", "2", "--horizon", "4",
            "--policies", "hetplan,hetplan-no-feedback,vm-reactive", "--drift", "model=inception_bn,latency=1.3",
            "--out", str(out)]
    result = CliRunner(env={"COLUMNS": "250"}).invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "drift inception_bn ×1.3" in result.output
    table = pd.read_csv(out).set_index("policy")
    assert list(table.index) == ["hetplan", "hetplan-no-feedback", "vm-reactive"]
    assert table.loc["hetplan", "violations"] < table.loc["hetplan-no-feedback", "violations"]
    bad = CliRunner().invoke(app, ["compare", "--hours", "0.1", "--policies", "vm-peak", "--drift", "model=resnet,latency=2"])
    assert isinstance(bad.exception, HetplanError) and "resnet200" in str(bad.exception)
