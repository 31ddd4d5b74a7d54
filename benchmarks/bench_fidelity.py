"""A plan is a promise: solve, replay the plan as written (request by request), and compare.

For each trace, SLO and predictor: the plan's late share and windows over the allowance in the replay, its
stated and replayed cost, and the cost of the older plan sized on the per-second 95th percentile (which
does not keep the SLO) — the price of keeping the promise.

    python benchmarks/bench_fidelity.py [--traces wits,berkeley] [--slos 100,200,500] [--predictors oracle,ewma]
"""

from __future__ import annotations

import argparse
import dataclasses
import time

from hetplan.planner import catalog
from hetplan.planner.replay.planned import plan_deployment
from hetplan.planner.replay.simulate import replay
from hetplan.planner.forecast.traces import load_trace
from hetplan.planner.replay.verdict import judge
from hetplan.planner.optimize.workflow import PlanRequest, make_plan

TRACES = {"wits": ("wits.csv.gz", "exclude"), "berkeley": ("berkeley.csv.gz", "interpolate")}


def replayed(plan, trace):
    data = plan.to_dict()
    first, last = data["windows"][0]["start_s"], data["windows"][-1]["end_s"]
    requests = trace[(trace.second >= first) & (trace.second < last)]
    profile = catalog.load_profile(catalog.DEFAULT_PROFILE)
    result = replay(requests, plan_deployment(data, name="plan", end_s=last), data["targets"]["slo_ms"] / 1000,
                    catalog.load_serverless(None), method="events", default_load_time_ms=float(profile.load_time_ms.max()),
                    keep_alive_s=float((data.get("runtime") or {}).get("keep_alive_s", 600.0)),
                    concurrency_limit=data["limits"]["lambda_concurrency"], window_s=int(data["load"]["window_s"]))
    return judge(result.report, result.timeline, data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traces", default="wits,berkeley")
    parser.add_argument("--slos", default="100,200,500")
    parser.add_argument("--predictors", default="oracle,ewma")
    args = parser.parse_args()
    print("| trace | SLO | predictor | late requests (allowance 1%) | windows over (limit) | stated cost | "
          "replayed cost | difference | quantile-sized plan: cost, late | change in cost | solve + replay |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name in args.traces.split(","):
        file, gaps = TRACES[name]
        path = catalog.DATA_DIR / "traces" / file
        trace = load_trace(path)
        for slo in (float(s) for s in args.slos.split(",")):
            for predictor in args.predictors.split(","):
                base = PlanRequest(slo_s=slo / 1000, trace=path, gaps=gaps, predictor=predictor)
                before = replayed(make_plan(dataclasses.replace(base, sizing="quantile", overflow=False)), trace)
                started = time.perf_counter()
                plan = make_plan(base)
                v = replayed(plan, trace)
                seconds = time.perf_counter() - started
                change = 100 * (v.stated_cost_usd / before.stated_cost_usd - 1)
                print(f"| {name} | {slo:g} ms | {predictor} | {v.late_pct:.3f}% | {v.windows_over} of {v.windows} "
                      f"({v.windows_over_limit}) | ${v.stated_cost_usd:.2f} | ${v.cost_usd:.2f} | "
                      f"{v.cost_difference_pct:+.1f}% | ${before.stated_cost_usd:.2f}, {before.late_pct:.2f}% | "
                      f"{change:+.1f}% | {seconds:.0f} s |", flush=True)


if __name__ == "__main__":
    main()
