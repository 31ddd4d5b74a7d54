"""``hetplan sweep``: solve a grid of what-if scenarios in parallel, show the table and draw the frontier.

pandas, Dask, the planner and matplotlib are imported inside the command so ``hetplan --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from hetplan.commands.common import JsonFlag, PlainFlag, QuietFlag, output, resolve_trace
from hetplan.errors import HetplanError


def _values(text: str, option: str, parse) -> list[float]:
    """A comma-separated list through ``parse``, errors naming the option."""
    parts = [part.strip() for part in text.split(",")]
    if not text.strip() or any(not part for part in parts):
        raise HetplanError(f"{option} '{text}' has an empty item: write values separated by commas, e.g. 100ms,200ms")
    try:
        return [parse(part) for part in parts]
    except HetplanError as exc:
        raise HetplanError(f"{option}: {exc}") from None


def _scale(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise HetplanError(f"cannot read load scale '{text}': write a factor such as 1.5") from None


def sweep_command(
    slo: Annotated[str, typer.Option(help="Latency SLOs, comma-separated, e.g. 100ms,200ms,500ms (required).")],
    mean_accuracy: Annotated[str, typer.Option(help="Mean top-1 targets, comma-separated, e.g. 0.70,0.75 or 70%,75%.")] = "0.70",
    load_scale: Annotated[str, typer.Option(help="Load factors, comma-separated, e.g. 1,1.5,2 (what-if growth).")] = "1",
    trace: Annotated[Optional[Path], typer.Option(help="Request trace (default: the shipped WITS trace).")] = None,
    window: Annotated[str, typer.Option(help="Window length (s, m, h), e.g. 5m.")] = "5m",
    hours: Annotated[Optional[float], typer.Option(help="Plan only the first HOURS (h) of the trace.")] = None,
    percentile: Annotated[float, typer.Option(help="Latency percentile the SLOs apply to.")] = 0.99,
    time_limit: Annotated[str, typer.Option(help="Solver wall-clock limit per scenario (s, m), e.g. 60s.")] = "60s",
    gap: Annotated[float, typer.Option(help="Relative optimality gap to stop each solve at.")] = 0.01,
    out: Annotated[Optional[Path], typer.Option(help="Folder for plans/<scenario>.json and summary.csv, written as each scenario finishes.")] = None,
    resume: Annotated[bool, typer.Option(help="Keep the scenarios already in --out and solve only the rest.")] = False,
    plot: Annotated[Optional[Path], typer.Option(help="Draw the frontier: cost vs SLO per accuracy target (PNG).")] = None,
    scheduler: Annotated[Optional[str], typer.Option(help="An existing Dask scheduler, e.g. tcp://HOST:8786 (default: a local cluster).")] = None,
    workers: Annotated[Optional[int], typer.Option(help="Local worker processes (default: one per core).")] = None,
    executor: Annotated[str, typer.Option(help="dask, processes (no Dask) or serial.")] = "dask",
    json_output: JsonFlag = False,
    plain: PlainFlag = False,
    quiet: QuietFlag = False,
):
    """Solve every SLO × accuracy × load combination in parallel; mark the Pareto-optimal scenarios."""
    from hetplan.commands.output import frame_records
    from hetplan.commands.output.plots import sweep_plot
    from hetplan.commands.output.results import show_sweep
    from hetplan.planner.catalog.tables import DEFAULT_TRACE
    from hetplan.planner.optimize.workflow import PlanRequest, check_request
    from hetplan.planner.whatif.sweep import check_executor, run_sweep, scenario_grid
    from hetplan.units import parse_accuracy, parse_duration

    if resume and out is None:
        raise HetplanError("--resume needs --out DIR: the folder of the sweep to resume")
    if plot is not None and plot.suffix.lower() != ".png":
        raise HetplanError(f"--plot '{plot}': write a .png file")
    if scheduler and not scheduler.startswith(("tcp://", "tls://", "inproc://", "ucx://")):
        raise HetplanError(f"--scheduler '{scheduler}': write the scheduler address, e.g. tcp://HOST:8786")
    check_executor(executor, scheduler, workers)
    scenarios = scenario_grid(_values(slo, "--slo", parse_duration),
                              _values(mean_accuracy, "--mean-accuracy", parse_accuracy),
                              _values(load_scale, "--load-scale", _scale))
    trace_path = (resolve_trace(trace) if trace else DEFAULT_TRACE).resolve()  # workers may run elsewhere
    if not trace_path.exists():
        raise HetplanError(f"--trace '{trace}' does not exist")
    base = PlanRequest(slo_s=scenarios[0].slo_s, percentile=percentile, trace=trace_path, window_s=parse_duration(window),
                       hours=hours, time_limit_s=parse_duration(time_limit), gap=gap)
    check_request(base)  # every number of the request, before any worker starts
    view = output(json_output, plain, quiet)
    with view.progress("sweep: starting workers", total=len(scenarios)) as bar:
        def advance(row: dict, resumed: bool) -> None:
            bar.advance(description=f"{row['scenario']}: {'kept' if resumed else row['status']}")

        frame = run_sweep(scenarios, base, out_dir=out, resume=resume, executor=executor, scheduler=scheduler,
                          workers=workers, on_result=advance)
    records = frame_records(frame)
    planned = int(frame.total_cost_usd.notna().sum())
    stopped = int((frame.status == "feasible").sum())
    if view.json:
        view.print_json({"scenarios": len(frame), "planned": planned, "pareto": int(frame.pareto.sum()),
                         "stopped_at_time_limit": stopped, "rows": records})
    else:
        show_sweep(view, records)
        view.note(f"{planned} of {len(frame)} scenarios have a plan; Pareto-optimal (★): {int(frame.pareto.sum())}, "
                  "those no other scenario at the same load beats on cost, SLO and accuracy at once")
        if stopped:
            view.note(f"{stopped} solve(s) stopped at --time-limit: their cost is an upper bound (see gap), so their "
                      "Pareto marks may change with a longer --time-limit")
    if out is not None:
        view.note(f"plans and summary.csv written to {out}")
    if plot is not None:
        sweep_plot(frame, plot)
        view.note(f"frontier drawn to {plot}")
