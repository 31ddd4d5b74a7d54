"""``hetplan sweep``: solve a grid of what-if scenarios in parallel, show the table and draw the frontier.

Registered by ``cli.py`` (``app.command("sweep")(handle_errors(sweep_command))``); pandas, Dask, the planner
and matplotlib are imported inside the command so ``hetplan --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from hetplan.errors import HetplanError

_COLUMNS = {  # table column -> (summary field, format); λ is Lambda
    "SLO": ("slo_ms", "{:g}ms"),
    "acc ≥": ("mean_accuracy_target", "{:.3g}%"),
    "load": ("load_scale", "×{:g}"),
    "status": ("status", "{}"),
    "cost": ("total_cost_usd", "${:,.2f}"),
    "$/M req": ("cost_per_million_usd", "${:,.3f}"),
    "mean acc": ("mean_accuracy", "{:.1%}"),
    "VM/λ $": (("vm_cost_usd", "lambda_cost_usd"), "{:,.2f}/{:,.2f}"),
    "on λ": ("lambda_share", "{:.1%}"),
    "gap": ("gap", "{:.2%}"),
    "time": ("seconds", "{:.1f}s"),
}


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


def _show(console, frame) -> None:
    """The table (one row per scenario), then each distinct reason once with the scenarios it explains."""
    from rich import box
    from rich.table import Table

    columns = {k: v for k, v in _COLUMNS.items() if k != "load" or frame.load_scale.nunique() > 1}
    table = Table(title="Sweep (★ Pareto-optimal)", title_justify="left", header_style="bold", box=box.SIMPLE_HEAD, show_edge=False,
                  pad_edge=False, collapse_padding=True)
    table.add_column("★", no_wrap=True, min_width=1)
    for name in columns:
        table.add_column(name, justify="left" if name == "status" else "right", no_wrap=True)
    for row in frame.to_dict("records"):
        cells = ["★" if row["pareto"] else ""]
        for field, fmt in columns.values():
            values = [row.get(f) for f in (field if isinstance(field, tuple) else (field,))]
            if field == "mean_accuracy_target":
                values = [100 * values[0]]
            cells.append("–" if any(v is None or v != v for v in values) else fmt.format(*values))
        table.add_row(*cells)
    console.print(table)
    failed = frame[frame.reason.notna()]
    for reason, group in failed.groupby("reason", sort=False):
        console.print(f"[bold]{', '.join(group.scenario)}[/bold] ({'/'.join(group.status.unique())}): {reason}",
                      markup=True, highlight=False)


def _plot(frame, path: Path) -> None:
    """Cost against SLO, one line per accuracy target (one panel per load scale); Pareto points filled."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scales = sorted(frame.load_scale.unique())
    fig, axes = plt.subplots(1, len(scales), figsize=(5.5 * len(scales), 4.2), squeeze=False)
    planned = frame[frame.total_cost_usd.notna()]
    colors = dict(zip(sorted(frame.mean_accuracy_target.unique()), plt.get_cmap("viridis_r")(
        [0.15 + 0.7 * i / max(1, frame.mean_accuracy_target.nunique() - 1) for i in range(frame.mean_accuracy_target.nunique())])))
    for ax, scale in zip(axes[0], scales):
        part = planned[planned.load_scale == scale]
        for accuracy, group in part.sort_values("slo_ms").groupby("mean_accuracy_target"):
            color = colors[accuracy]
            ax.plot(group.slo_ms, group.total_cost_usd, color=color, lw=1.2, label=f"accuracy ≥ {accuracy:.1%}")
            front = group[group.pareto]
            ax.scatter(group.slo_ms, group.total_cost_usd, s=30, facecolor="white", edgecolor=color, zorder=3)
            ax.scatter(front.slo_ms, front.total_cost_usd, s=60, color=color, edgecolor="black", zorder=4)
        missing = frame[(frame.load_scale == scale) & frame.total_cost_usd.isna()]
        note = f"; × on the axis: {len(missing)} without a plan" if len(missing) else ""
        rank = {a: i for i, a in enumerate(sorted(frame.mean_accuracy_target.unique()))}  # side by side, not on top
        ax.scatter(missing.slo_ms, [0.02 + 0.025 * rank[a] for a in missing.mean_accuracy_target], marker="x",
                   color=[colors[a] for a in missing.mean_accuracy_target],
                   transform=ax.get_xaxis_transform(), clip_on=False, zorder=4)
        ax.set_xscale("log")
        ticks = sorted(frame.slo_ms.unique())
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        ax.minorticks_off()
        ax.set_xlabel("latency SLO (ms)")
        ax.set_ylabel("plan cost ($)")
        ax.set_ylim(bottom=0)  # costs to scale; the × marks sit below every plan
        ax.set_title(f"load × {scale:g}{note}", fontsize=9, loc="left")
        ax.grid(alpha=0.3)
        if len(part):
            ax.legend(fontsize=7, title="filled: Pareto-optimal", title_fontsize=7)
    fig.suptitle("hetplan sweep: cost vs SLO per accuracy target", fontsize=10)
    fig.tight_layout()
    from hetplan.fileio import save_figure_atomic

    save_figure_atomic(fig, path)


def sweep_command(
    slo: Annotated[str, typer.Option(help="Latency SLOs, comma-separated, e.g. 100ms,200ms,500ms (required).")],
    mean_accuracy: Annotated[str, typer.Option(help="Mean top-1 targets, comma-separated, e.g. 0.70,0.75 or 70%,75%.")] = "0.70",
    load_scale: Annotated[str, typer.Option(help="Load factors, comma-separated, e.g. 1,1.5,2 (what-if growth).")] = "1",
    trace: Annotated[Optional[Path], typer.Option(help="Request trace (default: the shipped WITS trace).")] = None,
    window: Annotated[str, typer.Option(help="Window length, e.g. 5m.")] = "5m",
    hours: Annotated[Optional[float], typer.Option(help="Plan only the first HOURS of the trace.")] = None,
    percentile: Annotated[float, typer.Option(help="Latency percentile the SLOs apply to.")] = 0.99,
    time_limit: Annotated[str, typer.Option(help="Solver wall-clock limit per scenario, e.g. 60s.")] = "60s",
    gap: Annotated[float, typer.Option(help="Relative optimality gap to stop each solve at.")] = 0.01,
    out: Annotated[Optional[Path], typer.Option(help="Folder for plans/<scenario>.json and summary.csv, written as each scenario finishes.")] = None,
    resume: Annotated[bool, typer.Option(help="Keep the scenarios already in --out and solve only the rest.")] = False,
    plot: Annotated[Optional[Path], typer.Option(help="Draw the frontier: cost vs SLO per accuracy target (PNG).")] = None,
    scheduler: Annotated[Optional[str], typer.Option(help="An existing Dask scheduler, e.g. tcp://HOST:8786 (default: a local cluster).")] = None,
    workers: Annotated[Optional[int], typer.Option(help="Local worker processes (default: one per core).")] = None,
    executor: Annotated[str, typer.Option(help="dask, processes (no Dask) or serial.")] = "dask",
):
    """Solve every SLO × accuracy × load combination in parallel; mark the Pareto-optimal scenarios."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from hetplan.planner.catalog import DEFAULT_TRACE
    from hetplan.commands.replay import _resolve_trace
    from hetplan.planner.whatif.sweep import check_executor, run_sweep, scenario_grid
    from hetplan.planner.optimize.workflow import PlanRequest
    from hetplan.units import parse_accuracy, parse_duration

    if not 0 <= gap < 1:
        raise HetplanError(f"--gap {gap:g} must be in [0, 1), e.g. 0.01")
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
    trace_path = (_resolve_trace(trace) if trace else DEFAULT_TRACE).resolve()  # workers may run elsewhere
    if not trace_path.exists():
        raise HetplanError(f"--trace '{trace}' does not exist")
    base = PlanRequest(slo_s=scenarios[0].slo_s, percentile=percentile, trace=trace_path, window_s=parse_duration(window),
                       hours=hours, time_limit_s=parse_duration(time_limit), gap=gap)
    console = Console()
    if not console.is_terminal:  # piped to a file: 80 columns would cut the table
        console = Console(width=max(console.width, 110))
    with Progress(TextColumn("[bold]sweep"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("{task.description}"), console=console) as progress:
        task = progress.add_task("starting workers", total=len(scenarios))

        def advance(row: dict, resumed: bool) -> None:
            progress.update(task, advance=1, description=f"{row['scenario']}: {'kept' if resumed else row['status']}")

        frame = run_sweep(scenarios, base, out_dir=out, resume=resume, executor=executor, scheduler=scheduler,
                          workers=workers, on_result=advance)
    _show(console, frame)
    planned = int(frame.total_cost_usd.notna().sum())
    console.print(f"{planned} of {len(frame)} scenarios have a plan; Pareto-optimal (★): {int(frame.pareto.sum())}, "
                  "those no other scenario at the same load beats on cost, SLO and accuracy at once")
    stopped = int((frame.status == "feasible").sum())
    if stopped:
        console.print(f"{stopped} solve(s) stopped at --time-limit: their cost is an upper bound (see gap), so their "
                      "Pareto marks may change with a longer --time-limit")
    if out is not None:
        console.print(f"plans and summary.csv written to {out}")
    if plot is not None:
        _plot(frame, plot)
        console.print(f"frontier drawn to {plot}")
