"""The ``hetplan`` command line: thin typer commands; the planner returns data, ``render`` draws it.

Every command turns a ``HetplanError`` into one line on stderr and exit code 2 (``--verbose`` shows the
traceback). Heavy libraries (pandas, solvers, mxnet) are imported inside the commands, so ``hetplan --help``
stays fast.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from hetplan import __version__
from hetplan.errors import HetplanError

app = typer.Typer(name="hetplan", add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  context_settings={"help_option_names": ["-h", "--help"]},
                  help="Plan ML inference serving across heterogeneous VMs and serverless at the lowest cost "
                       "that meets a latency SLO and an accuracy target.")
_state = {"verbose": False}


def handle_errors(command):
    """Report domain errors as one line and exit code 2."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except HetplanError as exc:
            if _state["verbose"]:
                raise
            typer.echo(f"hetplan: error: {exc}", err=True)
            raise typer.Exit(2) from None

    return wrapper


def _version(value: bool):
    if value:
        typer.echo(f"hetplan {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show tracebacks of errors.")] = False,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")] = False,
):
    _state["verbose"] = verbose


def _console():
    from rich.console import Console

    return Console()


def _split(text: str | None) -> tuple[str, ...] | None:
    return tuple(part.strip() for part in text.split(",") if part.strip()) if text else None


def _pairs(text: str | None, what: str) -> dict:
    """``a=1,b=2`` → {a: 1, b: 2} (whole numbers ≥ 0)."""
    out = {}
    for part in _split(text) or ():
        name, sep, value = part.rpartition("=")
        if not sep or not name or not value.isdigit():
            raise HetplanError(f"cannot read {what} '{part}': write NAME=COUNT, e.g. c5.large=10")
        out[name] = int(value)
    return out


@app.command("catalog")
@handle_errors
def catalog_command(
    instances: Annotated[Optional[Path], typer.Option(help="Instance catalog CSV (default: the shipped one).")] = None,
    serverless: Annotated[Optional[Path], typer.Option(help="Serverless catalog CSV (default: the shipped one).")] = None,
    models: Annotated[Optional[Path], typer.Option(help="Model catalog CSV (default: the shipped one).")] = None,
    architecture: Annotated[str, typer.Option(help="Lambda architecture: x86_64 or arm64.")] = "x86_64",
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
):
    """Show the shipped (or given) catalog: EC2 instance types, Lambda prices and limits, models."""
    import json
    from dataclasses import asdict

    from hetplan.planner import catalog

    inst = catalog.load_instances(instances)
    lam = catalog.load_serverless(serverless, architecture)
    mods = catalog.load_models(models)
    if json_output:
        typer.echo(json.dumps({"instances": inst.to_dict("records"), "serverless": asdict(lam),
                               "models": json.loads(mods.to_json(orient="records"))}, indent=1))
        return
    from hetplan.commands.render import show_catalog

    show_catalog(_console(), inst, lam, mods)


@app.command("solve")
@handle_errors
def solve_command(
    slo: Annotated[str, typer.Option(help="Latency SLO, e.g. 200ms or 0.5s (required).")],
    percentile: Annotated[float, typer.Option(help="Latency percentile the SLO applies to.")] = 0.99,
    min_accuracy: Annotated[Optional[str], typer.Option(help="Every request served by a model with top-1 ≥ this (0.75 or 75%).")] = None,
    mean_accuracy: Annotated[Optional[str], typer.Option(help="Traffic-weighted mean top-1 ≥ this in every window. Default 70% when neither accuracy flag is given.")] = None,
    trace: Annotated[Optional[Path], typer.Option(help="Request trace (second,requests CSV, optionally .gz). Default: the shipped WITS trace.")] = None,
    window: Annotated[str, typer.Option(help="Window length, e.g. 5m or 1m.")] = "5m",
    sizing: Annotated[str, typer.Option(help="late-share: size each window for the requests the SLO counts, from its "
                                             "per-second load (planner/README.md); quantile: the older rule, "
                                             "provision for --quantile of the per-second rate.")] = "late-share",
    overflow: Annotated[bool, typer.Option(help="Routers send what would be late to Lambda (a warm pool absorbs the "
                                                "bursts), priced in the MILP; --no-overflow sizes the VMs for the bursts.")] = True,
    quantile: Annotated[float, typer.Option(help="With --sizing quantile: provision each window for this quantile of its per-second rate.")] = 0.95,
    hours: Annotated[Optional[float], typer.Option(help="Plan only the first HOURS of the trace.")] = None,
    gaps: Annotated[str, typer.Option(help="Seconds missing from the trace: exclude (statistics over observed seconds; "
                                           "a window with no data is an error) or interpolate.")] = "exclude",
    predictor: Annotated[str, typer.Option(help="oracle: plan for the trace's own windows; or a predictor (see hetplan predict): "
                                                "plan each window as forecast from the windows before it.")] = "oracle",
    load_scale: Annotated[float, typer.Option(help="Multiply the load by this factor (what-if growth).")] = 1.0,
    profile: Annotated[Optional[Path], typer.Option(help="Profile CSV (default: data/profiles/aws-reference.csv).")] = None,
    feedback: Annotated[Optional[Path], typer.Option(help="Request log (see hetplan observe): plan with the profile corrected "
                                                           "by the latencies, cold starts and accuracy it observed.")] = None,
    skip_bad: Annotated[bool, typer.Option(help="With --feedback: skip malformed log lines (they are still reported).")] = False,
    instances: Annotated[Optional[Path], typer.Option(help="Instance catalog CSV.")] = None,
    serverless: Annotated[Optional[Path], typer.Option(help="Serverless catalog CSV.")] = None,
    model_catalog: Annotated[Optional[Path], typer.Option(help="Model catalog CSV.")] = None,
    models: Annotated[Optional[str], typer.Option(help="Only these models, comma-separated.")] = None,
    instance_types: Annotated[Optional[str], typer.Option(help="Only these instance types, comma-separated.")] = None,
    lambda_architecture: Annotated[str, typer.Option(help="Lambda architecture: x86_64 or arm64.")] = "x86_64",
    local_as_family: Annotated[Optional[str], typer.Option(help="Take profile rows measured on local CPU shapes (local-Nvcpu) "
                                                                  "as this instance family's N-vCPU size, e.g. c5.")] = None,
    lambda_concurrency: Annotated[Optional[int], typer.Option(help="Lambda concurrency limit (default: the catalog's account default).")] = None,
    quota: Annotated[Optional[str], typer.Option(help="VM quotas per type, e.g. c5.large=10,c5.xlarge=4.")] = None,
    budget: Annotated[Optional[float], typer.Option(help="Budget in dollars for the whole horizon.")] = None,
    initial_vms: Annotated[Optional[str], typer.Option(help="VMs already serving at the start, e.g. vm:squeezenet@c5.large=2.")] = None,
    max_utilization: Annotated[float, typer.Option(help="Never plan a VM busier than this.")] = 0.95,
    lead_time: Annotated[str, typer.Option(help="How long before the first window the plan is deployed; VMs launched "
                                                "later are not serving until their boot delay has passed (0s: start cold).")] = "10m",
    solver: Annotated[str, typer.Option(help="MILP backend: highs, cbc or scip.")] = "highs",
    time_limit: Annotated[str, typer.Option(help="Solver wall-clock limit, e.g. 60s.")] = "60s",
    gap: Annotated[float, typer.Option(help="Relative optimality gap to stop at.")] = 0.01,
    out: Annotated[Path, typer.Option(help="Where to write the JSON plan.")] = Path("plan.json"),
    json_output: Annotated[bool, typer.Option("--json", help="Print the plan JSON instead of tables.")] = False,
):
    """Solve the planning MILP over the trace's windows and write a JSON deployment plan."""
    from hetplan.planner.catalog import DEFAULT_INSTANCES, DEFAULT_MODELS, DEFAULT_PROFILE, DEFAULT_SERVERLESS, DEFAULT_TRACE
    from hetplan.fileio import write_text_atomic
    from hetplan.planner.optimize.workflow import PlanRequest, make_plan
    from hetplan.units import parse_accuracy, parse_duration

    if gap < 0 or gap >= 1:
        raise HetplanError(f"--gap {gap:g} must be in [0, 1), e.g. 0.01")
    if load_scale <= 0:
        raise HetplanError(f"--load-scale {load_scale:g} must be positive")
    request = PlanRequest(
        slo_s=parse_duration(slo), percentile=percentile,
        min_accuracy=parse_accuracy(min_accuracy) if min_accuracy else None,
        mean_accuracy=parse_accuracy(mean_accuracy) if mean_accuracy else None,
        trace=trace or DEFAULT_TRACE, window_s=parse_duration(window), quantile=quantile, sizing=sizing,
        overflow=overflow and sizing != "quantile", gaps=gaps, hours=hours, predictor=predictor,
        load_scale=load_scale, profile=profile or DEFAULT_PROFILE, feedback=feedback, skip_bad_log_lines=skip_bad,
        instances=instances or DEFAULT_INSTANCES,
        serverless=serverless or DEFAULT_SERVERLESS, models_catalog=model_catalog or DEFAULT_MODELS,
        lambda_architecture=lambda_architecture, local_as_family=local_as_family, models=_split(models), instance_types=_split(instance_types),
        lambda_concurrency=lambda_concurrency, quotas=_pairs(quota, "--quota"), budget_usd=budget,
        initial_vms=_pairs(initial_vms, "--initial-vms"), max_utilization=max_utilization,
        lead_time_s=0.0 if lead_time.strip() in ("0", "0s") else parse_duration(lead_time), solver=solver,
        time_limit_s=parse_duration(time_limit), gap=gap,
    )
    plan = make_plan(request)
    text = plan.to_json()
    write_text_atomic(out, text)
    if json_output:
        typer.echo(text, nl=False)
        return
    from hetplan.commands.render import show_plan

    console = _console()
    show_plan(console, plan, max_windows=24)
    console.print(f"plan written to {out}")


def _read_plan(path: Path):
    from hetplan.planner.optimize.plan import Plan, load_plan

    data = load_plan(path)
    try:
        return data, Plan.from_dict(data)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise HetplanError(f"plan '{path}' is malformed ({type(exc).__name__}: {exc}): regenerate it with hetplan solve") from None


@app.command("show")
@handle_errors
def show_command(
    plan: Annotated[Path, typer.Argument(help="A plan written by hetplan solve.")],
    json_output: Annotated[bool, typer.Option("--json", help="Print the plan's summary and windows as JSON.")] = False,
):
    """Show a plan as tables: summary, per window, per model."""
    import json

    data, parsed = _read_plan(plan)
    if json_output:
        typer.echo(json.dumps({"summary": data["summary"], "solver": data.get("solver"), "windows": data["windows"]}, indent=1))
        return
    from hetplan.commands.render import show_plan

    show_plan(_console(), parsed)


@app.command("validate")
@handle_errors
def validate_command(
    plan: Annotated[Path, typer.Argument(help="A plan written by hetplan solve.")],
):
    """Re-check a plan independently of the solver: capacity, SLO, accuracy, memory, launches, cost."""
    from hetplan.planner.optimize.evaluate import evaluate

    data, _ = _read_plan(plan)
    result = evaluate(data)
    if not result.ok:
        first = result.violations[0]
        more = f" (and {len(result.violations) - 1} more)" if len(result.violations) > 1 else ""
        typer.echo(f"hetplan: plan violates {first.constraint}: {first.message}{more}", err=True)
        raise typer.Exit(1)
    typer.echo(f"plan OK: all constraints hold; cost ${result.total_cost_usd:.4f} recomputed from the catalog")


def _guarded(sub: typer.Typer) -> typer.Typer:
    """A copy of a sub-app whose callback and commands report domain errors like ours."""
    import copy

    clone = copy.copy(sub)
    if sub.registered_callback and sub.registered_callback.callback:
        clone.registered_callback = copy.copy(sub.registered_callback)
        clone.registered_callback.callback = handle_errors(sub.registered_callback.callback)
    clone.registered_commands = []
    for command in sub.registered_commands:
        command = copy.copy(command)
        command.callback = handle_errors(command.callback)
        clone.registered_commands.append(command)
    return clone


def _register_extensions() -> None:
    """Commands that live in their own CLI modules (each imports its heavy libraries lazily)."""
    from hetplan.commands.predict import predict_command
    from hetplan.commands.profile import profile_app
    from hetplan.commands.observe import observe_command
    from hetplan.commands.replay import compare_command, simulate_command
    from hetplan.commands.sweep import sweep_command

    app.command("predict")(handle_errors(predict_command))
    app.command("simulate")(handle_errors(simulate_command))
    app.command("compare")(handle_errors(compare_command))
    app.command("observe")(handle_errors(observe_command))
    app.command("sweep")(handle_errors(sweep_command))
    app.add_typer(_guarded(profile_app), name="profile")


_register_extensions()


def main() -> None:
    try:
        app()
    except HetplanError as exc:  # from commands registered without handle_errors (sub-apps)
        if _state["verbose"]:
            raise
        print(f"hetplan: error: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
