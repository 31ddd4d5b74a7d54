"""``hetplan simulate`` (replay a plan against a trace) and ``hetplan compare`` (every policy on one trace).

Heavy imports (pandas, the planner, matplotlib) happen inside the commands so importing this module stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, List, Optional

import typer

from hetplan.commands.common import (DRIFT_HELP, JsonFlag, PlainFlag, QuietFlag, check_suffix, drifts, output,
                                     resolve_profile, resolve_trace, write_table)
from hetplan.errors import CheckFailed, HetplanError

ALL_POLICIES = "hetplan,hetplan-no-feedback,vm-reactive,vm-peak,lambda-only,mark-like,infaas-like,oracle"


def compare_command(
    trace: Annotated[Optional[Path], typer.Option(help="Per-second trace to replay (default: the shipped WITS trace).")] = None,
    slo: Annotated[str, typer.Option(help="Latency SLO in ms or s, e.g. 200ms.")] = "200ms",
    mean_accuracy: Annotated[Optional[str], typer.Option(help="Traffic-weighted mean top-1 to reach, e.g. 0.70 or 70%.")] = "0.70",
    min_accuracy: Annotated[Optional[str], typer.Option(help="Top-1 every model served must reach.")] = None,
    policies: Annotated[str, typer.Option(help="Comma-separated policies to compare.")] = ALL_POLICIES,
    window: Annotated[str, typer.Option(help="Planning / prediction window (s, m), e.g. 5m.")] = "5m",
    hours: Annotated[Optional[float], typer.Option(help="Replay only the first HOURS (h) of the trace.")] = None,
    keep_alive: Annotated[str, typer.Option(help="Lambda keep-alive of an idle instance (s, m), e.g. 10m.")] = "10m",
    predictor: Annotated[str, typer.Option(help="The load predictor every predictive policy uses (hetplan, mark-like, "
                                                "the warm pools): auto (at each decision, the candidate with the best "
                                                "one-step record so far), or ewma, naive, seasonal-naive, ….")] = "auto",
    warm_pool: Annotated[bool, typer.Option(help="Give every policy with Lambda the same warm-pool rule (--no-warm-pool: none).")] = True,
    overflow: Annotated[bool, typer.Option(help="Let every policy whose design allows it overflow to Lambda what its VMs "
                                                "cannot serve within the SLO (--no-overflow: none).")] = True,
    reactive: Annotated[bool, typer.Option(help="A target-tracking scale-out layer under planned fleets (hetplan's; "
                                                "mark-like's tuning may take it); --no-reactive: none.")] = True,
    horizon: Annotated[int, typer.Option(help="hetplan: windows planned at each re-plan (count).")] = 12,
    replan_every: Annotated[int, typer.Option(help="hetplan: windows between re-plans (count).")] = 6,
    time_limit: Annotated[float, typer.Option(help="Seconds per MILP solve (hetplan re-plans; the oracle gets 6x).")] = 10.0,
    method: Annotated[str, typer.Option(help="fluid (fast) or events (request by request; short traces).")] = "fluid",
    profile: Annotated[Optional[Path], typer.Option(help="Profile CSV (default: the AWS reference profile).")] = None,
    drift: Annotated[Optional[List[str]], typer.Option(help=DRIFT_HELP, metavar="model=NAME,latency=X")] = None,
    out: Annotated[Optional[Path], typer.Option(help="Write the table as CSV or JSON.")] = None,
    plot: Annotated[Optional[Path], typer.Option(help="Draw load vs provisioned capacity per policy (PNG).")] = None,
    tune: Annotated[bool, typer.Option(help="Give each baseline its best setting: sweep its main knob (mark-like's "
                                            "headroom, vm-reactive's target utilization) and keep the cheapest that "
                                            "meets the SLO, or the lowest late share.")] = True,
    ablation: Annotated[bool, typer.Option("--ablation", help="Instead of the baselines, replay hetplan with one ingredient "
                                                            "removed at a time (model-mix, instance-types, serverless, "
                                                            "overflow, warm-pool, reactive, predictor, feedback; planner/REPLAY.md) "
                                                            "and report each one's cost ($) and late-share change.")] = False,
    json_output: JsonFlag = False,
    plain: PlainFlag = False,
    quiet: QuietFlag = False,
):
    """Replay every policy on the same trace, profile, SLO and accuracy target; one row per policy (cost in $,
    late requests in %)."""
    from hetplan.planner.replay.compare import POLICIES, compare
    from hetplan.planner.replay.planned import solver_plan_fn
    from hetplan.planner.replay.scenario import Tools, make_scenario
    from hetplan import units
    from hetplan.units import parse_accuracy, parse_duration

    if hours is not None:
        units.hours(hours)
    units.count(horizon, "--horizon", minimum=1, example="12")
    units.count(replan_every, "--replan-every", minimum=1, example="6")
    units.positive(time_limit, "--time-limit", "10", bound=units.MAX_DURATION_S)
    names = tuple(p.strip() for p in policies.split(",") if p.strip())
    unknown = [n for n in names if n not in POLICIES]
    if unknown:
        from hetplan.errors import did_you_mean

        raise HetplanError(f"unknown policy '{unknown[0]}'{did_you_mean(unknown[0], POLICIES)}")
    check_suffix(out, (".csv", ".json"), "--out")  # before minutes of work, not after
    check_suffix(plot, (".png",), "--plot")
    trace = resolve_trace(trace)
    window_s = parse_duration(window)
    if not float(window_s).is_integer():
        raise HetplanError(f"--window {window} must be a whole number of seconds")
    sc = make_scenario(trace, parse_duration(slo), mean_accuracy=parse_accuracy(mean_accuracy) if mean_accuracy else None,
                       min_accuracy=parse_accuracy(min_accuracy) if min_accuracy else None, window_s=int(window_s),
                       profile=profile, hours=hours,
                       tools=Tools(predictor=predictor, warm_pool=warm_pool, overflow=overflow, reactive=reactive))
    from dataclasses import replace

    sc = replace(sc, drift=drifts(drift, sc.profile.model))
    rolling = {"horizon": horizon, "replan_every": replan_every,
               "plan_fn": solver_plan_fn(time_limit_s=time_limit)}
    params = {"hetplan": rolling, "hetplan-no-feedback": rolling,
              "oracle": {"plan_fn": solver_plan_fn(time_limit_s=6 * time_limit, gap=0.01)}}
    view = output(json_output, plain, quiet)
    if ablation:
        _ablation(view, sc, trace, rolling, method, parse_duration(keep_alive), out)
        return
    with view.progress("replaying", total=len(names)) as bar:
        table, replays = compare(sc, names, params, method=method, keep_alive_s=parse_duration(keep_alive),
                                 on_policy=lambda name: bar.advance(description=name), tune=tune)
    table["accuracy_pct"] = 100 * table.mean_accuracy
    table["lambda_pct"] = 100 * table.lambda_requests / table.requests
    best = table.attrs.get("best_baseline")
    title = (f"{trace.name}: {sc.targets.slo_s * 1000:g} ms SLO (p{sc.targets.percentile * 100:g}), "
             f"accuracy ≥ {sc.accuracy_target:.0%}; best baseline: {best}"
             + "".join(f"; drift {d.model} ×{d.latency:g}{' on ' + d.platform if d.platform else ''}" for d in sc.drift))
    from hetplan.commands.output import frame_records
    from hetplan.commands.output.results import show_compare

    records = frame_records(table)
    if view.json:
        view.print_json({"title": title, "trace": trace.name, "slo_ms": sc.targets.slo_s * 1000,
                         "percentile": sc.targets.percentile, "accuracy_target": sc.accuracy_target,
                         "best_baseline": best, "rows": records})
    else:
        show_compare(view, title, records)
    if out:
        write_table(table, out)
    if plot:
        from hetplan.commands.output.plots import compare_plot

        compare_plot(replays, plot, title)


def simulate_command(
    plan: Annotated[Path, typer.Option(help="Plan JSON written by hetplan solve --out.")],
    trace: Annotated[Optional[Path], typer.Option(help="Trace to replay (default: the plan's trace).")] = None,
    slo: Annotated[Optional[str], typer.Option(help="Latency SLO, e.g. 200ms (default: the plan's).")] = None,
    check: Annotated[bool, typer.Option("--check", help="Exit 4 when the replay misses the plan's SLO: late share over "
                                                        "1 − percentile, or more than 5% of windows over it.")] = False,
    overflow: Annotated[bool, typer.Option(help="For a plan that states no overflow (an older plan): send what the "
                                                "VMs cannot serve within the SLO to Lambda.")] = False,
    keep_alive: Annotated[Optional[str], typer.Option(help="Lambda keep-alive of an idle instance (s, m; default: the plan's, else 10m).")] = None,
    method: Annotated[str, typer.Option(help="[bold]events[/]: request by request (the verdict); [bold]fluid[/]: per-second "
                                             "approximation, faster, blind to bunching inside a second.")] = "events",
    window: Annotated[Optional[str], typer.Option(help="Width of the timeline's windows (s, m; default: the plan's).")] = None,
    profile: Annotated[Optional[Path], typer.Option(help="Profile for Lambda load times the plan lacks (default: the plan's).")] = None,
    out: Annotated[Optional[Path], typer.Option(help="Write the per-window timeline as CSV or JSON.")] = None,
    drift: Annotated[Optional[List[str]], typer.Option(help=DRIFT_HELP, metavar="model=NAME,latency=X")] = None,
    log: Annotated[Optional[Path], typer.Option(help="Write a request log (CSV; JSON lines for .jsonl) for hetplan observe: "
                                                     "fluid: a systematic sample of --log-fraction of the requests; events: every request.")] = None,
    log_fraction: Annotated[float, typer.Option(help="Fluid replay: fraction of the requests the log samples.")] = 0.01,
    seed: Annotated[int, typer.Option(help="Seed of the arrivals inside each second (events) and of the log's sampled correctness.")] = 0,
    json_output: Annotated[bool, typer.Option("--json", help="Print the replay's totals and verdict as JSON.")] = False,
    plain: PlainFlag = False,
):
    """Replay a plan, exactly as written (its VMs, shares and runtime), against the per-second trace.

    With --check, exit 4 when the replay misses the plan's own SLO.
    """
    import pandas as pd

    check_suffix(out, (".csv", ".json"), "--out")
    from hetplan.planner import catalog
    from hetplan.planner.optimize.plan import Plan
    from hetplan.planner.replay.planned import plan_deployment
    from hetplan.planner.replay.scenario import accurate_lambda_of_plan
    from hetplan.planner.replay.simulate import replay
    from hetplan.planner.forecast.traces import load_trace
    from hetplan.planner.replay.verdict import judge, worst_windows
    from hetplan import units
    from hetplan.units import parse_duration

    units.fraction(log_fraction, "--log-fraction", "0.01")
    if check and method != "events":
        raise HetplanError("--check replays request by request: drop --method fluid")
    data = Plan.load(plan).source
    inputs = data.get("inputs", {})
    trace = resolve_trace(trace or Path(inputs.get("trace", {}).get("path", catalog.DEFAULT_TRACE)))
    profile = profile or resolve_profile(Path(inputs.get("profile", {}).get("path", catalog.DEFAULT_PROFILE)))
    slo_s = parse_duration(slo) if slo else data["targets"]["slo_ms"] / 1000.0
    limits = data.get("limits", {})
    runtime = data.get("runtime")
    view = output(json_output, plain)
    if runtime is None:
        view.warn(f"plan '{plan}' states no runtime (written by an older hetplan): replaying with a "
                  f"random router, {'overflow to Lambda' if overflow else 'no overflow'} and no warm pool")
    pricing = catalog.load_serverless(None, limits.get("lambda_architecture", "x86_64"))
    profile_frame = catalog.load_profile(profile)
    load_time = profile_frame.load_time_ms.max()
    true_speed = drifts(drift, profile_frame.model)
    recorder = None
    if log is not None:
        from hetplan.planner.replay.drift import LogRecorder

        recorder = LogRecorder(fraction=log_fraction, correct=True, seed=seed)
    spill = accurate_lambda_of_plan(data) if overflow and not (runtime or {}).get("overflow") else None
    windows = data["windows"]
    first, last = float(windows[0]["start_s"]), float(windows[-1]["end_s"])
    requests = load_trace(trace)
    requests = requests[(requests.second >= first) & (requests.second < last)]
    if requests.empty:
        raise HetplanError(f"the trace '{trace.name}' has no seconds in the plan's span {first:g}..{last:g} s")
    scale = float(data.get("load", {}).get("load_scale") or 1.0)
    if scale != 1.0:  # the plan was made for this multiple of the trace: replay the same load
        from hetplan.planner.forecast.traces import scaled

        requests = scaled(requests, scale)
        view.note(f"replaying {scale:g} × the trace's requests, as the plan's --load-scale")
    deployment = plan_deployment(data, overflow=spill, name=plan.stem, end_s=last)
    keep = parse_duration(keep_alive) if keep_alive else float((runtime or {}).get("keep_alive_s", 600.0))
    width = parse_duration(window) if window else float(data.get("load", {}).get("window_s", 300))
    result = replay(requests, deployment, slo_s, pricing, keep_alive_s=keep,
                    concurrency_limit=limits.get("lambda_concurrency"),
                    default_load_time_ms=float(load_time) if pd.notna(load_time) else None, method=method,
                    window_s=int(width), seed=seed, drift=true_speed, recorder=recorder)
    verdict = judge(result.report, result.timeline, data)
    if out:
        write_table(result.timeline, out)
    if recorder is not None:
        from hetplan.planner.catalog.observe import write_log

        frame = recorder.frame()
        write_log(frame, log)
        view.note(f"request log written to {log} ({len(frame):,} requests"
                  + (f", {log_fraction:g} of each second's requests)" if method == "fluid" else ")"))
    worst = worst_windows(result.timeline)
    if view.json:
        from hetplan.commands.output import frame_records

        view.print_json({"plan": str(plan), "trace": trace.name, "slo_ms": slo_s * 1000, "replay": result.report.to_dict(),
                         "verdict": verdict.to_dict(), "worst_windows": frame_records(worst)})
    else:
        from hetplan.commands.output.results import show_replay

        show_replay(view, f"Replay of {plan.name} on {trace.name}, seconds {first:g}..{last:g} (the plan's span), "
                          f"{slo_s * 1000:g} ms SLO, {result.report.method}", result, verdict,
                    worst if check and not verdict.ok else None)
    if check and not verdict.ok:
        raise CheckFailed(verdict.reason)


def _ablation(view, sc, trace: Path, params: dict, method: str, keep_alive_s: float, out: Path | None) -> None:
    """``compare --ablation``: hetplan with one ingredient removed at a time."""
    from hetplan.commands.output import frame_records
    from hetplan.commands.output.results import show_ablation
    from hetplan.planner.replay.ablation import ABLATIONS, ablation_table

    with view.progress("ablations", total=len(ABLATIONS)) as bar:
        table = ablation_table(sc, ABLATIONS, params, method=method, keep_alive_s=keep_alive_s,
                               on_variant=lambda name: bar.advance(description=name))
    if "requests" in table:
        table["lambda_pct"] = 100 * table.lambda_requests / table.requests
    title = (f"{trace.name}: hetplan without one ingredient at a time, {sc.targets.slo_s * 1000:g} ms SLO "
             f"(p{sc.targets.percentile * 100:g}), accuracy ≥ {sc.accuracy_target:.0%}")
    records = frame_records(table)
    if view.json:
        view.print_json({"title": title, "trace": trace.name, "slo_ms": sc.targets.slo_s * 1000, "rows": records})
    else:
        show_ablation(view, title, records)
    if out:
        write_table(table, out)
