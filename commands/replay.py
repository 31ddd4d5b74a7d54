"""``hetplan simulate`` (replay a plan against a trace) and ``hetplan compare`` (every policy on one trace).

Registered by ``cli.py``; heavy imports (pandas, the planner, matplotlib) happen inside the commands so
importing this module stays fast. ``HetplanError`` is turned into exit code 2 by the main CLI.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, List, Optional

import typer

from hetplan.errors import HetplanError

ALL_POLICIES = "hetplan,hetplan-no-feedback,vm-reactive,vm-peak,lambda-only,mark-like,oracle"
_DRIFT_HELP = ("The true latency of a model differs from the profile: model=NAME,latency=FACTOR[,platform=vm|lambda]; "
               "repeat for several (planner/FEEDBACK.md).")
_COMPARE_COLUMNS = {  # table column -> (report field, format)
    "policy": ("policy", "{}"),
    "cost": ("cost_usd", "${:,.2f}"),
    "cost vs best": ("cost_vs_best_pct", "{:+.1f}%"),
    "SLO violations": ("violation_pct", "{:.3f}%"),
    "violations vs best": ("violations_vs_best_pct", "{:+.0f}%"),
    "p99 latency": ("latency_p99_ms", "{:,.0f} ms"),
    "mean accuracy": ("accuracy_pct", "{:.1f}%"),
    "Lambda share": ("lambda_pct", "{:.2f}%"),
    "cold starts": ("cold_starts", "{:,.0f}"),
    "VM-hours": ("vm_hours", "{:,.1f}"),
}


def _resolve_trace(path: Path | None) -> Path:
    """The trace path as given, else the same name among the shipped traces (so ``--trace
    data/traces/wits.csv.gz`` works from any folder after a plain install)."""
    from hetplan.planner.catalog import DATA_DIR, DEFAULT_TRACE

    if path is None:
        return DEFAULT_TRACE
    if path.exists():
        return path
    for candidate in (DATA_DIR.parent / path, DATA_DIR / "traces" / path.name):
        if candidate.exists():
            return candidate
    return path


def _check_suffix(path: Path | None, suffixes: tuple[str, ...], option: str) -> None:
    if path is not None and path.suffix.lower() not in suffixes:
        raise HetplanError(f"{option} '{path}': write a {' or '.join(suffixes)} file")


def _drifts(texts, known) -> tuple:
    """Parsed ``--drift`` values, their models checked against the profile's."""
    from hetplan.errors import did_you_mean
    from hetplan.planner.replay.drift import parse_drift

    drifts = tuple(d for text in texts or () for d in parse_drift(text))
    for d in drifts:
        if d.model not in set(known):
            raise HetplanError(f"--drift names model '{d.model}', which is not in the profile{did_you_mean(d.model, known)}")
    return drifts


def _console():
    from rich.console import Console

    return Console()


def _write_table(frame, path: Path) -> None:
    from hetplan.fileio import write_text_atomic

    if path.suffix.lower() == ".json":
        write_text_atomic(path, frame.to_json(orient="records", indent=1) + "\n")
    elif path.suffix.lower() == ".csv":
        write_text_atomic(path, frame.to_csv(index=False))
    else:
        raise HetplanError(f"--out '{path}': write a .csv or .json file")


def _show(console, title: str, frame, columns: dict) -> None:
    from rich.table import Table

    table = Table(title=title, title_justify="left", header_style="bold")
    for name in columns:
        table.add_column(name, justify="left" if name == "policy" else "right")
    for row in frame.to_dict("records"):
        cells = []
        for field, fmt in columns.values():
            value = row.get(field)
            cells.append("–" if value is None or value != value else fmt.format(value))
        table.add_row(*cells)
    console.print(table)


def _plot(replays: dict, path: Path, title: str) -> None:
    """Load vs provisioned VM capacity (and the Lambda rate) per policy over time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if path.suffix.lower() != ".png":
        raise HetplanError(f"--plot '{path}': write a .png file")
    fig, axes = plt.subplots(len(replays), 1, figsize=(11, 2.1 * len(replays)), sharex=True, squeeze=False)
    for ax, (name, result) in zip(axes[:, 0], replays.items()):
        t = result.timeline
        hours = (t.start_s - t.start_s.iloc[0]) / 3600
        ax.plot(hours, t.peak_rps, color="0.75", lw=0.8, label="peak load (req/s)")
        ax.plot(hours, t.mean_rps, color="black", lw=1.0, label="mean load")
        ax.step(hours, t.vm_capacity_rps, where="post", color="tab:blue", lw=1.2, label="VM throughput")
        ax.plot(hours, t.lambda_requests / (t.end_s - t.start_s), color="tab:orange", lw=1.0, label="Lambda rate")
        r = result.report
        ax.set_title(f"{name}: ${r.cost_usd:,.2f}, {r.violation_pct:.3f}% late", fontsize=9, loc="left")
        ax.set_ylabel("req/s")
    axes[0, 0].legend(loc="upper right", fontsize=7, ncol=4)
    axes[-1, 0].set_xlabel("hours into the trace")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    from hetplan.fileio import save_figure_atomic

    save_figure_atomic(fig, path)


def compare_command(
    trace: Annotated[Optional[Path], typer.Option(help="Per-second trace to replay (default: the shipped WITS trace).")] = None,
    slo: Annotated[str, typer.Option(help="Latency SLO, e.g. 200ms.")] = "200ms",
    mean_accuracy: Annotated[Optional[str], typer.Option(help="Traffic-weighted mean top-1 to reach, e.g. 0.70 or 70%.")] = "0.70",
    min_accuracy: Annotated[Optional[str], typer.Option(help="Top-1 every model served must reach.")] = None,
    policies: Annotated[str, typer.Option(help="Comma-separated policies to compare.")] = ALL_POLICIES,
    window: Annotated[str, typer.Option(help="Planning / prediction window.")] = "5m",
    hours: Annotated[Optional[float], typer.Option(help="Replay only the first HOURS of the trace.")] = None,
    keep_alive: Annotated[str, typer.Option(help="Lambda keep-alive of an idle instance.")] = "10m",
    predictor: Annotated[str, typer.Option(help="hetplan's load predictor (mark-like always predicts then pads).")] = "ewma",
    horizon: Annotated[int, typer.Option(help="hetplan: windows planned at each re-plan.")] = 12,
    replan_every: Annotated[int, typer.Option(help="hetplan: windows between re-plans.")] = 6,
    time_limit: Annotated[float, typer.Option(help="Seconds per MILP solve (hetplan re-plans; the oracle gets 6x).")] = 10.0,
    method: Annotated[str, typer.Option(help="fluid (fast) or events (request by request; short traces).")] = "fluid",
    profile: Annotated[Optional[Path], typer.Option(help="Profile CSV (default: the AWS reference profile).")] = None,
    drift: Annotated[Optional[List[str]], typer.Option(help=_DRIFT_HELP, metavar="model=NAME,latency=X")] = None,
    out: Annotated[Optional[Path], typer.Option(help="Write the table as CSV or JSON.")] = None,
    plot: Annotated[Optional[Path], typer.Option(help="Draw load vs provisioned capacity per policy (PNG).")] = None,
):
    """Replay every policy on the same trace, profile, SLO and accuracy target; one row per policy."""
    from hetplan.planner.replay.compare import POLICIES, compare
    from hetplan.planner.replay.planned import solver_plan_fn
    from hetplan.planner.replay.scenario import make_scenario
    from hetplan.units import parse_accuracy, parse_duration

    names = tuple(p.strip() for p in policies.split(",") if p.strip())
    unknown = [n for n in names if n not in POLICIES]
    if unknown:
        from hetplan.errors import did_you_mean

        raise HetplanError(f"unknown policy '{unknown[0]}'{did_you_mean(unknown[0], POLICIES)}")
    _check_suffix(out, (".csv", ".json"), "--out")  # before minutes of work, not after
    _check_suffix(plot, (".png",), "--plot")
    trace = _resolve_trace(trace)
    window_s = parse_duration(window)
    if not float(window_s).is_integer():
        raise HetplanError(f"--window {window} must be a whole number of seconds")
    sc = make_scenario(trace, parse_duration(slo), mean_accuracy=parse_accuracy(mean_accuracy) if mean_accuracy else None,
                       min_accuracy=parse_accuracy(min_accuracy) if min_accuracy else None, window_s=int(window_s),
                       profile=profile, hours=hours)
    from dataclasses import replace

    sc = replace(sc, drift=_drifts(drift, sc.profile.model))
    rolling = {"predictor": predictor, "horizon": horizon, "replan_every": replan_every,
               "plan_fn": solver_plan_fn(time_limit_s=time_limit)}
    params = {"hetplan": rolling, "hetplan-no-feedback": rolling,
              "oracle": {"plan_fn": solver_plan_fn(time_limit_s=6 * time_limit, gap=0.01)}}
    table, replays = compare(sc, names, params, method=method, keep_alive_s=parse_duration(keep_alive))
    table["accuracy_pct"] = 100 * table.mean_accuracy
    table["lambda_pct"] = 100 * table.lambda_requests / table.requests
    best = table.attrs.get("best_baseline")
    title = (f"{trace.name}: {sc.targets.slo_s * 1000:g} ms SLO (p{sc.targets.percentile * 100:g}), "
             f"accuracy ≥ {sc.accuracy_target:.0%}; best baseline: {best}"
             + "".join(f"; drift {d.model} ×{d.latency:g}{' on ' + d.platform if d.platform else ''}" for d in sc.drift))
    console = _console()
    _show(console, title, table, _COMPARE_COLUMNS)
    for row in table[table.error.notna()].itertuples():
        console.print(f"{row.policy}: not run: {row.error}")
    if out:
        _write_table(table, out)
    if plot:
        _plot(replays, plot, title)


def simulate_command(
    plan: Annotated[Path, typer.Option(help="Plan JSON written by hetplan solve --out.")],
    trace: Annotated[Optional[Path], typer.Option(help="Trace to replay (default: the plan's trace).")] = None,
    slo: Annotated[Optional[str], typer.Option(help="Latency SLO, e.g. 200ms (default: the plan's).")] = None,
    check: Annotated[bool, typer.Option("--check", help="Exit 4 when the replay misses the plan's SLO: late share over "
                                                        "1 − percentile, or more than 5% of windows over it.")] = False,
    overflow: Annotated[bool, typer.Option(help="For a plan that states no overflow (an older plan): send what the "
                                                "VMs cannot serve within the SLO to Lambda.")] = False,
    keep_alive: Annotated[Optional[str], typer.Option(help="Lambda keep-alive of an idle instance (default: the plan's, else 10m).")] = None,
    method: Annotated[str, typer.Option(help="events: request by request (the verdict); fluid: per-second "
                                             "approximation, faster, blind to bunching inside a second.")] = "events",
    window: Annotated[Optional[str], typer.Option(help="Width of the timeline's windows (default: the plan's).")] = None,
    profile: Annotated[Optional[Path], typer.Option(help="Profile for Lambda load times the plan lacks (default: the plan's).")] = None,
    out: Annotated[Optional[Path], typer.Option(help="Write the per-window timeline as CSV or JSON.")] = None,
    drift: Annotated[Optional[List[str]], typer.Option(help=_DRIFT_HELP, metavar="model=NAME,latency=X")] = None,
    log: Annotated[Optional[Path], typer.Option(help="Write a request log (CSV; JSON lines for .jsonl) for hetplan observe: "
                                                     "fluid: a systematic sample of --log-fraction of the requests; events: every request.")] = None,
    log_fraction: Annotated[float, typer.Option(help="Fluid replay: fraction of the requests the log samples.")] = 0.01,
    seed: Annotated[int, typer.Option(help="Seed of the arrivals inside each second (events) and of the log's sampled correctness.")] = 0,
    json_output: Annotated[bool, typer.Option("--json", help="Print the replay's totals and verdict as JSON.")] = False,
):
    """Replay a plan, exactly as written (its VMs, shares and runtime), against the per-second trace."""
    import json

    import pandas as pd

    _check_suffix(out, (".csv", ".json"), "--out")
    from hetplan.planner import catalog
    from hetplan.planner.optimize.plan import load_plan
    from hetplan.planner.replay.planned import plan_deployment
    from hetplan.planner.replay.scenario import accurate_lambda_of_plan
    from hetplan.planner.replay.simulate import replay
    from hetplan.planner.forecast.traces import load_trace
    from hetplan.planner.replay.verdict import judge, worst_windows
    from hetplan.units import parse_duration

    if check and method != "events":
        raise HetplanError("--check replays request by request: drop --method fluid")
    data = load_plan(plan)
    inputs = data.get("inputs", {})
    trace = _resolve_trace(trace or Path(inputs.get("trace", {}).get("path", catalog.DEFAULT_TRACE)))
    profile = profile or _resolve_profile(Path(inputs.get("profile", {}).get("path", catalog.DEFAULT_PROFILE)))
    slo_s = parse_duration(slo) if slo else data["targets"]["slo_ms"] / 1000.0
    limits = data.get("limits", {})
    runtime = data.get("runtime")
    if runtime is None:
        typer.echo(f"hetplan: warning: plan '{plan}' states no runtime (written by an older hetplan): replaying with a "
                   f"random router, {'overflow to Lambda' if overflow else 'no overflow'} and no warm pool", err=True)
    pricing = catalog.load_serverless(None, limits.get("lambda_architecture", "x86_64"))
    profile_frame = catalog.load_profile(profile)
    load_time = profile_frame.load_time_ms.max()
    drifts = _drifts(drift, profile_frame.model)
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
    deployment = plan_deployment(data, overflow=spill, name=plan.stem, end_s=last)
    keep = parse_duration(keep_alive) if keep_alive else float((runtime or {}).get("keep_alive_s", 600.0))
    width = parse_duration(window) if window else float(data.get("load", {}).get("window_s", 300))
    result = replay(requests, deployment, slo_s, pricing, keep_alive_s=keep,
                    concurrency_limit=limits.get("lambda_concurrency"),
                    default_load_time_ms=float(load_time) if pd.notna(load_time) else None, method=method,
                    window_s=int(width), seed=seed, drift=drifts, recorder=recorder)
    verdict = judge(result.report, result.timeline, data)
    if out:
        _write_table(result.timeline, out)
    if recorder is not None:
        from hetplan.planner.catalog.observe import write_log

        frame = recorder.frame()
        write_log(frame, log)
        typer.echo(f"request log written to {log} ({len(frame):,} requests"
                   + (f", {log_fraction:g} of each second's requests)" if method == "fluid" else ")"), err=json_output)
    if json_output:
        report = result.report.to_dict()
        typer.echo(json.dumps({"plan": str(plan), "trace": trace.name, "slo_ms": slo_s * 1000, "replay": report,
                               "verdict": verdict.to_dict(),
                               "worst_windows": worst_windows(result.timeline).to_dict("records")}, indent=1, default=float))
    else:
        _show_replay(plan, trace, first, last, slo_s, result, verdict, check)
    if check and not verdict.ok:
        typer.echo(f"hetplan: check failed: {verdict.reason}", err=True)
        raise typer.Exit(4)


def _resolve_profile(path: Path) -> Path:
    """The plan's profile as recorded, else the same name among the shipped profiles."""
    from hetplan.planner.catalog import DATA_DIR

    if path.exists():
        return path
    candidate = DATA_DIR / "profiles" / path.name
    return candidate if candidate.exists() else path


def _show_replay(plan, trace, first, last, slo_s, result, verdict, check: bool) -> None:
    import pandas as pd

    from hetplan.planner.replay.verdict import worst_windows
    from hetplan.commands.render import show_frame

    report = result.report.to_dict()
    hours = report.pop("vm_hours")
    report["vm_hours"] = ", ".join(f"{k} {v:,.2f}" for k, v in hours.items()) or "–"
    report["stated_cost_usd"] = verdict.stated_cost_usd
    report["windows_over_allowance"] = f"{verdict.windows_over} of {verdict.windows} (at most {verdict.windows_over_limit})"
    report["verdict"] = ("keeps" if verdict.ok else "misses") + f" its SLO: {verdict.reason}"
    frame = pd.DataFrame({"metric": list(report), "value": [_fmt(v) for v in report.values()]})
    console = _console()
    show_frame(console, f"Replay of {plan.name} on {trace.name}, seconds {first:g}..{last:g} "
                        f"(the plan's span), {slo_s * 1000:g} ms SLO, {result.report.method}", frame)
    if check and not verdict.ok:
        show_frame(console, "Worst windows", worst_windows(result.timeline))


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 10_000 else f"{value:,.6g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)
