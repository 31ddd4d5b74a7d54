"""The replay simulator on hand-computable cases, and the fluid model against the request-level run."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from hetplan.planner.catalog import load_serverless
from hetplan.errors import HetplanError
from hetplan.planner.replay.deployment import Deployment
from hetplan.planner.replay.fluid import _backlog
from hetplan.planner.replay.simulate import replay

PRICING = load_serverless()
VM = "vm:m@c5.large"
LAM = "lambda:m@2048MB"
SLO = 0.2
PRICE = 0.36  # $/h: 0.0001 $/s


def vm_options(boot=100.0, throughput=40.0, latency_ms=50.0):
    return pd.DataFrame([dict(option=VM, model="m", instance_type="c5.large", accuracy=0.7, latency_ms=latency_ms,
                              servers=2, throughput_rps=throughput, price_per_hour_usd=PRICE, boot_seconds=boot)])


def lam_options(load_time_ms=500.0):
    return pd.DataFrame([dict(option=LAM, model="m", memory_mb=2048.0, accuracy=0.6, latency_ms=100.0,
                              duration_ms=100.0, load_time_ms=load_time_ms)])


def deployment(vms=((-100.0, math.inf),), shares=None, overflow=None, boot=100.0, throughput=40.0, route_start=0,
               load_time_ms=500.0):
    shares = {VM: 1.0} if shares is None else shares
    frame = pd.DataFrame([(VM, a, b) for a, b in vms], columns=["option", "launch_s", "stop_s"])
    return Deployment(vm_options(boot, throughput), lam_options(load_time_ms), frame,
                      pd.DataFrame([{"start_s": route_start, **shares}]), overflow=overflow)


def constant(rate, seconds=600, first=0):
    return pd.DataFrame({"second": np.arange(first, first + seconds), "requests": np.full(seconds, float(rate))})


def run(trace, dep, **kw):
    return replay(trace, dep, SLO, PRICING, **kw).report


# --- hand-computable cases -------------------------------------------------------------------------------

def test_constant_load_below_capacity_meets_the_slo_at_the_service_latency():
    r = run(constant(30), deployment())
    assert r.requests == 18000 and r.violations == 0
    assert r.latency_p50_ms == pytest.approx(50) and r.latency_p99_ms == pytest.approx(50)
    # launched 100 s before the trace (warm start), billed from launch: 700 s at 0.0001 $/s
    assert r.vm_cost_usd == pytest.approx(0.07) and r.lambda_cost_usd == 0
    assert r.vm_hours == {"c5.large": pytest.approx(700 / 3600)}
    assert r.cost_per_million_usd == pytest.approx(0.07 / 18000 * 1e6)
    assert r.mean_accuracy == pytest.approx(0.7)


def test_constant_load_above_capacity_queues_and_violates_after_the_wait_budget():
    # 45 rps on 40 rps: the backlog grows 5/s, an arrival at t waits 5t/40 s, late once that passes 0.15 s (t > 1.2 s)
    r = run(constant(45), deployment())
    assert r.violations == pytest.approx(45 * (600 - 1.2), abs=1.0)
    # the median request arrives at t = 300 s and waits 37.5 s
    assert r.latency_p50_ms == pytest.approx(50 + 37500, rel=2e-3)


def test_a_boot_delay_leaves_the_first_seconds_unserved_then_the_backlog_drains():
    # launched at 0 with a 100 s boot: 3000 requests queue, then drain at 10/s until t = 400 s;
    # an arrival at t waits more than 0.15 s until t = 399.4 s
    r = run(constant(30), deployment(vms=((0.0, math.inf),)))
    assert r.violations == pytest.approx(30 * 399.4, rel=1e-3)
    assert r.vm_cost_usd == pytest.approx(600 * 0.0001)


def test_a_vm_is_billed_at_least_sixty_seconds():
    trace = constant(0, seconds=300)
    short = run(trace, deployment(vms=((0.0, 30.0),)))
    assert short.vm_cost_usd == pytest.approx(60 * 0.0001) and short.vm_hours["c5.large"] == pytest.approx(60 / 3600)
    longer = run(trace, deployment(vms=((0.0, 90.0),)))
    assert longer.vm_cost_usd == pytest.approx(90 * 0.0001)
    assert run(trace, deployment(vms=((0.0, 30.0), (100.0, 110.0)))).vm_launches == 2


def test_lambda_cold_starts_one_per_request_while_new_instances_load_and_again_after_the_keep_alive():
    # no instance is ready before the first one has loaded (500 ms) and served (100 ms), about 1 s:
    # each of the first second's 30 requests starts its own instance (and is late); then 30 are warm
    dep = deployment(vms=(), shares={LAM: 1.0})
    r = run(constant(30), dep)
    assert r.cold_starts == 30 and r.violations == 30 and r.lambda_requests == 18000
    warm, cold = PRICING.cost_per_request(100, 2048), PRICING.cost_per_request(600, 2048)
    assert r.lambda_cost_usd == pytest.approx(17970 * warm + 30 * cold)
    assert r.latency_p50_ms == pytest.approx(100)
    busy = lambda rate, n: [rate] * n
    for idle, colds in ((300, 30), (700, 60)):  # idle shorter / longer than the 600 s keep-alive
        trace = pd.DataFrame({"second": np.arange(20 + idle), "requests": busy(30.0, 10) + [0.0] * idle + busy(30.0, 10)})
        assert run(trace, dep).cold_starts == colds
    assert run(trace, dep, keep_alive_s=1000).cold_starts == 30


def test_a_warm_pool_removes_cold_starts_up_to_its_size_for_the_price_of_pings():
    base = deployment(vms=(), shares={LAM: 1.0})
    for pool, colds in ((5, 0), (2, 10)):  # 2 warm instances serve 20 of the first second's 30 requests
        dep = Deployment(base.vm_options, base.lam_options, base.vms, base.routes,
                         warm=pd.DataFrame({"start_s": [0], LAM: [pool]}))
        r = run(constant(30), dep)
        assert r.cold_starts == colds
        # pinged every half keep-alive (300 s): 600 s × pool / 300 pings of 100 ms
        assert r.ping_cost_usd == pytest.approx(pool * 2 * PRICING.cost_per_request(100, 2048))
        events = run(constant(30), dep, method="events", arrivals="even").cold_starts
        # request by request the first cold instances are ready again after 0.6 s, not a whole second
        assert events == colds if colds == 0 else 1 <= events <= 15
    with pytest.raises(HetplanError, match="warm pool"):
        Deployment(base.vm_options, base.lam_options, base.vms, base.routes, warm=pd.DataFrame({"start_s": [0], "x": [1]}))


def test_missing_load_time_uses_the_given_conservative_default():
    dep = deployment(vms=(), shares={LAM: 1.0}, load_time_ms=float("nan"))
    with pytest.raises(HetplanError, match="no load time"):
        run(constant(30), dep)
    r = replay(constant(30), dep, SLO, PRICING, default_load_time_ms=2104.0).report
    # 2.2 s of loading and serving: the first two seconds are all cold
    assert r.cold_starts == 60
    assert r.lambda_cost_usd == pytest.approx(17940 * PRICING.cost_per_request(100, 2048) + 60 * PRICING.cost_per_request(2204, 2048))


def test_overflow_sends_what_the_vms_cannot_serve_in_time_to_lambda():
    r = run(constant(60), deployment(overflow=LAM))
    # 20 rps over capacity; the VM keeps a backlog of 40 × 0.15 = 6 requests (served just in time)
    assert r.overflow_requests == pytest.approx(20 * 600 - 6, abs=0.5)
    assert r.violations == r.cold_starts  # only the cold starts are late
    assert r.latency_p99_ms <= 200 + 1e-6


def test_an_overflow_fraction_keeps_a_margin_below_the_slo():
    dep = deployment(overflow=LAM)
    strict = Deployment(dep.vm_options, dep.lam_options, dep.vms, dep.routes, overflow=LAM, overflow_fraction=0.5)
    r = run(constant(60), strict)
    # waits stay under half the 150 ms budget: p99 ≤ 50 + 75 ms; the backlog kept is 40 × 0.075 = 3 requests
    assert r.latency_p99_ms <= 125 + 1e-6
    assert r.overflow_requests == pytest.approx(20 * 600 - 3, abs=0.5)


SLOW = "vm:big@c5.large"


def two_options(slow_latency_ms: float, throughput: float, overflow=None) -> Deployment:
    """The usual VM option and a second, more accurate one (0.8) with its own latency, half the traffic each."""
    slow = vm_options(throughput=throughput).assign(option=SLOW, model="big", accuracy=0.8, latency_ms=slow_latency_ms)
    options = pd.concat([vm_options(throughput=throughput), slow], ignore_index=True)
    launches = pd.DataFrame([(VM, -100.0, math.inf), (SLOW, -100.0, math.inf)], columns=["option", "launch_s", "stop_s"])
    return Deployment(options, lam_options(), launches, pd.DataFrame([{"start_s": 0, VM: 0.5, SLOW: 0.5}]),
                      overflow=overflow)


def test_two_vm_options_add_up_by_hand():
    """30 rps split evenly: 15 rps on each 40-rps option, no queue. The slow option's 250 ms is past the 200 ms SLO,
    so every one of its 15 × 600 requests is late and the other's none; accuracy is the mean of 0.7 and 0.8; both
    VMs are billed 700 s."""
    for method in ("fluid", "events"):
        r = run(constant(30), two_options(250.0, 40.0), method=method)
        assert r.violations == pytest.approx(15 * 600, rel=1e-9 if method == "fluid" else 0.02)
        assert r.mean_accuracy == pytest.approx(0.75, rel=1e-9 if method == "fluid" else 0.01)
        assert r.vm_cost_usd == pytest.approx(2 * 0.07)


def test_each_option_overflows_its_own_excess():
    """60 rps split evenly on two 20-rps options: each is 10 rps over and keeps a backlog of 20 × 0.15 = 3 requests
    (its wait budget: SLO 200 ms − latency 50 ms), so Lambda takes 2 × (10 × 600 − 3): the two diversions add up."""
    r = run(constant(60), two_options(50.0, 20.0, overflow=LAM))
    assert r.overflow_requests == pytest.approx(2 * (10 * 600 - 3), abs=0.5)
    assert r.mean_accuracy == pytest.approx((2 * (20 * 600 + 3) * 0.75 + 2 * (10 * 600 - 3) * 0.6) / 36000, rel=1e-6)


def test_request_by_request_the_options_overflow_together_and_the_router_splits_as_named():
    """Events: both options' diversions reach Lambda (at least the fluid's 2 × (10 × 600 − 3): Poisson bunching
    only adds). A weighted round robin sends exactly half of the 18,000 requests to the slow option, whatever the
    seed; a random router draws them (binomial, sd 67)."""
    r = run(constant(60), two_options(50.0, 20.0, overflow=LAM), method="events")
    assert 2 * (10 * 600 - 3) <= r.overflow_requests == r.lambda_requests <= 1.1 * 2 * (10 * 600 - 3)
    dep = two_options(250.0, 40.0)
    split = {router: [replay(constant(30), dataclasses.replace(dep, router=router), SLO, PRICING, method="events",
                             seed=seed).report.violations for seed in range(4)]
             for router in ("weighted-round-robin", "random")}
    assert all(abs(v - 9000) <= 1 for v in split["weighted-round-robin"])
    assert all(abs(v - 9000) <= 5 * 67 for v in split["random"]) and len(set(split["random"])) > 1


def test_fractional_counts_arrive_in_whole_requests_at_their_mean():
    """0.5 requests a second: each second brings 0 or 1 (a coin), so the 1,000 unrouted seconds bring about 500
    (sd 16), each one late."""
    r = run(constant(0.5, seconds=2000), deployment(route_start=1000), method="events")
    assert abs(r.unrouted_requests - 500) <= 5 * 16 and r.violations == r.unrouted_requests


def test_the_concurrency_limit_queues_lambda_requests():
    dep = deployment(vms=(), shares={LAM: 1.0})
    r = run(constant(30), dep, concurrency_limit=2)  # 2 / 0.1 s = 20 rps < 30 rps
    assert r.violation_pct > 95 and r.latency_p99_ms > 10_000


def test_unrouted_seconds_are_violations_and_gaps_are_quiet_seconds():
    r = run(constant(10, seconds=100), deployment(route_start=50))
    assert r.violations == 500 and r.unrouted_requests == 500 and r.mean_accuracy == pytest.approx(0.7)
    assert run(constant(10, seconds=100), deployment(route_start=50), method="events").unrouted_requests == 500
    gappy = pd.DataFrame({"second": [0, 1, 5, 6], "requests": [10.0, 10.0, 10.0, 10.0]})
    g = replay(gappy, deployment(), SLO, PRICING, window_s=1)
    assert g.report.seconds == 7 and g.report.requests == 40
    assert list(g.timeline.requests) == [10, 10, 0, 0, 0, 10, 10]


def test_timeline_sums_to_the_report():
    res = replay(constant(45, seconds=900), deployment(overflow=LAM), SLO, PRICING, window_s=300)
    t, r = res.timeline, res.report
    assert len(t) == 3 and list(t.start_s) == [0, 300, 600]
    assert t.violations.sum() == pytest.approx(r.violations)
    assert (t.vm_cost_usd.sum() + t.lambda_cost_usd.sum()) == pytest.approx(r.cost_usd)
    assert t.vm_capacity_rps.iloc[0] == pytest.approx(40)


def test_bad_inputs_raise_domain_errors():
    with pytest.raises(HetplanError, match="unknown option"):
        Deployment(vm_options(), lam_options(), pd.DataFrame(columns=["option", "launch_s", "stop_s"]),
                   pd.DataFrame([{"start_s": 0, "vm:nope": 1.0}]))
    with pytest.raises(HetplanError, match="method"):
        run(constant(1), deployment(), method="magic")
    with pytest.raises(HetplanError, match="empty"):
        run(constant(1).iloc[0:0], deployment())


# --- the capped backlog against a plain loop -------------------------------------------------------------

@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 50), st.floats(0, 50), st.floats(0, 20)), min_size=1, max_size=40),
       st.booleans())
def test_backlog_matches_the_recursion(rows, capped):
    a, mu, cap = (np.array(c, dtype=float) for c in zip(*rows))
    start, diverted = _backlog(a, mu, cap if capped else None)
    b = 0.0
    for i in range(len(a)):
        assert start[i] == pytest.approx(b, abs=1e-6)
        e = b + a[i] - mu[i]
        d = min(a[i], e - cap[i]) if capped and e > cap[i] else 0.0
        assert diverted[i] == pytest.approx(d, abs=1e-6)
        b = max(e - d, 0.0)


# --- fluid vs request-level ------------------------------------------------------------------------------

def bursty(seconds=900, seed=1):
    rng = np.random.default_rng(seed)
    t = np.arange(seconds)
    rate = 55 + 25 * np.sin(2 * np.pi * t / 300) + np.where((t % 200) < 8, 60, 0)
    return pd.DataFrame({"second": t, "requests": rng.poisson(rate).astype(float)})


CASES = {
    # two VMs, one leaving at 450 s: queueing in the bursts and after the scale-in
    "vm-queueing": lambda: deployment(vms=((-100.0, math.inf), (-100.0, 450.0)), throughput=45.0),
    # one VM plus overflow to Lambda, a share on Lambda too
    "vm-overflow": lambda: deployment(vms=((-100.0, math.inf),), throughput=50.0, overflow=LAM,
                                      shares={VM: 0.8, LAM: 0.2}),
    # a VM arriving late (boot) while Lambda serves a share
    "boot-and-lambda": lambda: deployment(vms=((0.0, math.inf), (-100.0, math.inf)), throughput=40.0,
                                          shares={VM: 0.7, LAM: 0.3}),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("arrivals", ["poisson", "even"])
def test_fluid_agrees_with_discrete_events_within_one_point(case, arrivals):
    trace, dep = bursty(), CASES[case]()
    fluid = run(trace, dep)
    events = run(trace, dep, method="events", arrivals=arrivals, seed=3)
    assert fluid.requests == events.requests
    assert abs(fluid.violation_pct - events.violation_pct) < 1.0, (fluid.violation_pct, events.violation_pct)
    assert fluid.vm_cost_usd == pytest.approx(events.vm_cost_usd)
    assert fluid.lambda_cost_usd == pytest.approx(events.lambda_cost_usd, rel=0.05)
    assert fluid.mean_accuracy == pytest.approx(events.mean_accuracy, abs=0.005)
    assert fluid.latency_p99_ms == pytest.approx(events.latency_p99_ms, rel=0.15, abs=30)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(0, 120), min_size=5, max_size=120), st.integers(1, 3))
def test_more_vms_never_mean_more_violations_or_a_longer_tail(rates, n):
    assume(sum(rates) > 0)  # no requests: no latency to compare
    trace = pd.DataFrame({"second": np.arange(len(rates)), "requests": np.array(rates, float)})
    fewer = run(trace, deployment(vms=[(-100.0, math.inf)] * n))
    more = run(trace, deployment(vms=[(-100.0, math.inf)] * (n + 1)))
    assert more.violations <= fewer.violations + 1e-9
    assert more.latency_p99_ms <= fewer.latency_p99_ms + 1e-6
    assert more.vm_cost_usd > fewer.vm_cost_usd


def test_a_scaled_trace_keeps_its_total_and_its_shape():
    from hetplan.planner.forecast.traces import scaled

    trace = pd.DataFrame({"second": np.arange(1, 7), "requests": [3.0, 0.0, 7.0, 1.0, 2.0, 5.0]})
    double = scaled(trace, 2.0)
    assert double.requests.tolist() == [6, 0, 14, 2, 4, 10]
    third = scaled(trace, 1 / 3)
    assert third.requests.sum() == pytest.approx(trace.requests.sum() / 3, abs=1)
    assert (third.requests >= 0).all() and third.requests.tolist() == [1, 0, 2, 1, 0, 2]  # running total rounded
    assert scaled(trace, 1.0) is trace


def test_simulate_replays_the_load_the_plan_was_made_for(tmp_path):
    import json

    from typer.testing import CliRunner

    from hetplan.cli import app

    plan = tmp_path / "p.json"
    runner = CliRunner()
    made = runner.invoke(app, ["solve", "--slo", "200ms", "--hours", "0.5", "--load-scale", "3", "--out", str(plan), "--quiet"])
    assert made.exit_code == 0, made.output
    stated = json.loads(plan.read_text())["summary"]["requests"]
    result = runner.invoke(app, ["simulate", "--plan", str(plan), "--json"])
    assert result.exit_code == 0, result.output
    replayed = json.loads(result.stdout)["replay"]["requests"]
    assert replayed == pytest.approx(stated, rel=0.01)  # 3 × the trace, not the trace
