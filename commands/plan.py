"""``hetplan catalog``, ``solve``, ``show`` and ``validate``: the catalog, the planning MILP and the plan file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from hetplan.commands.common import JsonFlag, PlainFlag, QuietFlag, check_writable, output, resolve_trace
from hetplan.units import name_counts, split_names
from hetplan.errors import CheckFailed, HetplanError


def catalog_command(
    instances: Annotated[Optional[Path], typer.Option(help="Instance catalog CSV (default: the shipped one).")] = None,
    serverless: Annotated[Optional[Path], typer.Option(help="Serverless catalog CSV (default: the shipped one).")] = None,
    models: Annotated[Optional[Path], typer.Option(help="Model catalog CSV (default: the shipped one).")] = None,
    architecture: Annotated[str, typer.Option(help="Lambda architecture: x86_64 or arm64.")] = "x86_64",
    coverage: Annotated[bool, typer.Option("--coverage", help="Show model × instance family with the profile method "
                                                              "of each cell (measured, reference, published, scaled).")] = False,
    profile: Annotated[Optional[Path], typer.Option(help="With --coverage: the profile CSV (default: data/profiles/catalog.csv, every shipped row).")] = None,
    json_output: JsonFlag = False,
    plain: PlainFlag = False,
):
    """Show the shipped (or given) catalog: EC2 instance types ($/h, arch, GPUs, whether the planner uses them),
    Lambda prices and limits, models (top-1 %); with --coverage, what the profile measured where."""
    from hetplan.commands.output.plan import catalog_json, show_catalog, show_coverage
    from hetplan.planner import catalog
    from hetplan.planner.catalog.coverage import coverage as coverage_table, planner_use

    out = output(json_output, plain)
    inst = catalog.load_instances(instances)
    if coverage:
        path = profile or catalog.FULL_PROFILE
        table = coverage_table(catalog.load_profile(path, inst), inst)
        if out.json:
            from hetplan.commands.output import frame_records

            out.print_json({"profile": str(path), "coverage": frame_records(table)})
        else:
            show_coverage(out, table, Path(path).name)
        return
    inst = inst.assign(planner=planner_use(inst))
    lam = catalog.load_serverless(serverless, architecture)
    mods = catalog.load_models(models)
    if out.json:
        out.print_json(catalog_json(inst, lam, mods))
    else:
        show_catalog(out, inst, lam, mods)


def solve_command(
    slo: Annotated[Optional[str], typer.Option(help="Latency SLO in ms or s, e.g. [bold]200ms[/] or 0.5s (required, "
                                                    "except with --fleet, whose services name their own).")] = None,
    percentile: Annotated[float, typer.Option(help="Latency percentile the SLO applies to, in (0.5, 1), e.g. 0.99.")] = 0.99,
    min_accuracy: Annotated[Optional[str], typer.Option(help="Every request served by a model with top-1 ≥ this (fraction 0.75 or 75%).")] = None,
    mean_accuracy: Annotated[Optional[str], typer.Option(help="Traffic-weighted mean top-1 ≥ this in every window (fraction or %). Default 70% when neither accuracy flag is given.")] = None,
    trace: Annotated[Optional[Path], typer.Option(help="Request trace (second,requests CSV, optionally .gz). Default: the shipped WITS trace.")] = None,
    window: Annotated[str, typer.Option(help="Window length (s, m, h), e.g. 5m or 1m.")] = "5m",
    sizing: Annotated[str, typer.Option(help="[bold]late-share[/]: size each window for the requests the SLO counts, from its "
                                             "per-second load (planner/README.md); [bold]quantile[/]: the older rule, "
                                             "provision for --quantile of the per-second rate.")] = "late-share",
    overflow: Annotated[bool, typer.Option(help="Routers send what would be late to Lambda (a warm pool absorbs the "
                                                "bursts), priced in the MILP; --no-overflow sizes the VMs for the bursts.")] = True,
    quantile: Annotated[float, typer.Option(help="With --sizing quantile: provision each window for this quantile (0..1) of its per-second rate (req/s).")] = 0.95,
    hours: Annotated[Optional[float], typer.Option(help="Plan only the first HOURS (h) of the trace.")] = None,
    gaps: Annotated[str, typer.Option(help="Seconds missing from the trace: exclude (statistics over observed seconds; "
                                           "a window with no data is an error) or interpolate.")] = "exclude",
    predictor: Annotated[str, typer.Option(help="[bold]oracle[/]: plan for the trace's own windows; or a predictor (see hetplan predict): "
                                                "plan each window as forecast from the windows before it.")] = "oracle",
    load_scale: Annotated[float, typer.Option(help="Multiply the load (req/s) by this factor (what-if growth).")] = 1.0,
    profile: Annotated[Optional[Path], typer.Option(help="Profile CSV (default: data/profiles/aws-reference.csv; data/profiles/catalog.csv adds "
                                                            "the published GPU and CPU rows).")] = None,
    feedback: Annotated[Optional[Path], typer.Option(help="Request log (see hetplan observe): plan with the profile corrected "
                                                           "by the latencies, cold starts and accuracy it observed.")] = None,
    skip_bad: Annotated[bool, typer.Option(help="With --feedback: skip malformed log lines (they are still reported).")] = False,
    instances: Annotated[Optional[Path], typer.Option(help="Instance catalog CSV (prices in $/h).")] = None,
    serverless: Annotated[Optional[Path], typer.Option(help="Serverless catalog CSV.")] = None,
    model_catalog: Annotated[Optional[Path], typer.Option(help="Model catalog CSV.")] = None,
    models: Annotated[Optional[str], typer.Option(help="Only these models, comma-separated.")] = None,
    instance_types: Annotated[Optional[str], typer.Option(help="Only these instance types, comma-separated.")] = None,
    lambda_architecture: Annotated[str, typer.Option(help="Lambda architecture: x86_64 or arm64.")] = "x86_64",
    local_as_family: Annotated[Optional[str], typer.Option(help="Take profile rows measured on local CPU shapes (local-Nvcpu) "
                                                                  "as this instance family's N-vCPU size, e.g. c5.")] = None,
    trust: Annotated[Optional[str], typer.Option(help="Only profile rows of these methods, comma-separated: measured, "
                                                      "reference, published, scaled (default: all four).")] = None,
    lambda_concurrency: Annotated[Optional[int], typer.Option(help="Lambda concurrency limit, in concurrent executions (default: the catalog's account default).")] = None,
    quota: Annotated[Optional[str], typer.Option(help="VM quotas per type, in VMs, e.g. c5.large=10,c5.xlarge=4.")] = None,
    budget: Annotated[Optional[float], typer.Option(help="Budget in $ for the whole horizon.")] = None,
    initial_vms: Annotated[Optional[str], typer.Option(help="VMs already serving at the start, e.g. vm:squeezenet@c5.large=2.")] = None,
    max_utilization: Annotated[float, typer.Option(help="Never plan a VM busier than this fraction, in (0, 1].")] = 0.95,
    lead_time: Annotated[str, typer.Option(help="How long (s, m) before the first window the plan is deployed; VMs launched "
                                                "later are not serving until their boot delay has passed (0s: start cold).")] = "10m",
    solver: Annotated[str, typer.Option(help="MILP backend: [bold]highs[/], cbc or scip.")] = "highs",
    time_limit: Annotated[str, typer.Option(help="Solver wall-clock limit (s, m), e.g. 60s.")] = "60s",
    gap: Annotated[float, typer.Option(help="Relative optimality gap to stop at, in [0, 1), e.g. 0.01 = 1%.")] = 0.01,
    out: Annotated[Path, typer.Option(help="Where to write the JSON plan (with --fleet: a folder, default fleet-plan).")] = Path("plan.json"),
    fleet: Annotated[Optional[Path], typer.Option(help="A fleet file (TOML): many services planned jointly under the "
                                                       "account's shared limits (planner/README.md, Fleet).")] = None,
    scheduler: Annotated[Optional[str], typer.Option(help="With --fleet: solve on the Dask cluster at this address "
                                                          "(default: a local cluster).")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the plan JSON (the file's content) on stdout.")] = False,
    plain: PlainFlag = False,
    quiet: QuietFlag = False,
):
    """Solve the planning MILP over the trace's windows and write a JSON deployment plan.

    Exit 1 when no plan meets the request (the message names what to relax), 3 when the solver stopped without one.
    """
    from hetplan.commands.output.plan import show_plan
    from hetplan.fileio import write_text_atomic
    from hetplan.planner.catalog.tables import DEFAULT_INSTANCES, DEFAULT_MODELS, DEFAULT_PROFILE, DEFAULT_SERVERLESS
    from hetplan.planner.optimize.workflow import PlanRequest, make_plan
    from hetplan.units import parse_accuracy, parse_duration

    view = output(json_output, plain, quiet)
    if fleet is not None and out == Path("plan.json"):
        out = Path("fleet-plan")
    check_writable(out / "fleet.json" if fleet is not None else out)  # before minutes of solving, not after
    if slo is None and fleet is None:
        raise HetplanError("give --slo, e.g. --slo 200ms (or --fleet FILE, whose services name their SLOs)")
    request = PlanRequest(
        slo_s=parse_duration(slo) if slo else 1.0, percentile=percentile,
        min_accuracy=parse_accuracy(min_accuracy) if min_accuracy else None,
        mean_accuracy=parse_accuracy(mean_accuracy) if mean_accuracy else None,
        trace=resolve_trace(trace), window_s=parse_duration(window), quantile=quantile, sizing=sizing,
        overflow=overflow and sizing != "quantile", gaps=gaps, hours=hours, predictor=predictor,
        load_scale=load_scale, profile=profile or DEFAULT_PROFILE, feedback=feedback, skip_bad_log_lines=skip_bad,
        instances=instances or DEFAULT_INSTANCES,
        serverless=serverless or DEFAULT_SERVERLESS, models_catalog=model_catalog or DEFAULT_MODELS,
        lambda_architecture=lambda_architecture, local_as_family=local_as_family, models=split_names(models),
        trust=split_names(trust),
        instance_types=split_names(instance_types),
        lambda_concurrency=lambda_concurrency, quotas=name_counts(quota, "--quota"), budget_usd=budget,
        initial_vms=name_counts(initial_vms, "--initial-vms"), max_utilization=max_utilization,
        lead_time_s=0.0 if lead_time.strip() in ("0", "0s") else parse_duration(lead_time), solver=solver,
        time_limit_s=parse_duration(time_limit), gap=gap,
    )
    if fleet is not None:
        _solve_fleet(view, fleet, request, out, scheduler)
        return
    with view.progress("planning", total=5, after_s=2.0) as bar:
        plan = make_plan(request, on_stage=lambda text: bar.advance(description=text))
    text = plan.to_json()
    write_text_atomic(out, text)
    if view.json:
        typer.echo(text, nl=False)
        return
    show_plan(view, plan, max_windows=24)
    view.note(f"plan written to {out}")


def _solve_fleet(view, path: Path, base, out: Path, scheduler: str | None) -> None:
    """Every service of the fleet file planned jointly; one plan per service and fleet.json in the folder ``out``."""
    import dataclasses
    import json

    from hetplan.commands.output.fleet import show_fleet
    from hetplan.fileio import write_text_atomic
    from hetplan.planner.fleet.spec import load_fleet
    from hetplan.planner.fleet.decompose import ROUNDS
    from hetplan.planner.fleet.workflow import plan_fleet

    for flag, value in (("--budget", base.budget_usd), ("--quota", base.quotas), ("--lambda-concurrency", base.lambda_concurrency)):
        if value:  # a fleet's limits are shared, so they live in its file, not on one command line
            raise HetplanError(f"{flag} does not apply to --fleet: set the shared limits in the fleet file's [shared] "
                               "(budget_usd, vcpu_quota, lambda_concurrency)")
    fleet = load_fleet(path)
    requests = []
    for service in fleet.services:
        trace = base.trace
        if service.trace:  # relative to the fleet file, else a shipped trace's name
            beside = path.parent / service.trace
            trace = beside if beside.is_file() else resolve_trace(service.trace)
        requests.append(dataclasses.replace(
            base, slo_s=service.slo_s, percentile=service.percentile, trace=trace, window_s=fleet.shared.window_s,
            hours=fleet.shared.hours or base.hours, load_scale=service.load_scale, models=service.models or base.models,
            mean_accuracy=service.mean_accuracy, min_accuracy=service.min_accuracy, budget_usd=None,
            lambda_concurrency=service.lambda_concurrency or fleet.shared.lambda_concurrency, gaps=service.gaps or base.gaps))
    with view.progress("fleet: Lagrangian rounds", total=ROUNDS, after_s=1.0) as bar:
        outcome = plan_fleet(fleet, requests, scheduler=scheduler, gap=base.gap,
                             on_round=lambda r: bar.advance(description=f"fleet: bound ${r['bound']:.4f}"))
    for name, plan in outcome.plans.items():  # plans first: fleet.json lists only plans that are on disk
        write_text_atomic(out / f"{name}.json", plan.to_json())
    write_text_atomic(out / "fleet.json", json.dumps(outcome.summary, indent=1, allow_nan=False) + "\n")
    if view.json:
        view.print_json(outcome.summary)
        return
    show_fleet(view, outcome.summary)
    view.note(f"plans written to {out}/ (one per service, and fleet.json)")


def show_command(
    plan: Annotated[Path, typer.Argument(help="A plan written by hetplan solve (or a fleet's fleet.json).")],
    json_output: Annotated[bool, typer.Option("--json", help="Print the tables' data as JSON: summary, solver, "
                                                             "per window and per model.")] = False,
    plain: PlainFlag = False,
):
    """Show a plan as tables: summary, per window, per model."""
    from hetplan.commands.output import frame_records
    from hetplan.commands.output.plan import plan_models_frame, plan_windows_frame, show_plan

    from hetplan.planner.optimize.plan import Plan

    from hetplan.planner.fleet.check import read_summary

    view = output(json_output, plain)
    summary = read_summary(plan)
    if summary is not None:
        from hetplan.commands.output.fleet import show_fleet

        view.print_json(summary) if view.json else show_fleet(view, summary)
        return
    parsed = Plan.load(plan)
    data = parsed.source
    if view.json:
        view.print_json({"summary": data["summary"], "solver": data.get("solver"), "windows": data["windows"],
                         "per_window": frame_records(plan_windows_frame(parsed)) if not parsed.assignments.empty else [],
                         "per_model": frame_records(plan_models_frame(parsed)) if not parsed.assignments.empty else []})
        return
    show_plan(view, parsed)


def validate_command(
    plan: Annotated[Path, typer.Argument(help="A plan written by hetplan solve (or a fleet's fleet.json).")],
    json_output: JsonFlag = False,
    plain: PlainFlag = False,
):
    """Re-check a plan independently of the solver: capacity, SLO, accuracy, memory, launches, cost ($).

    Exit 4 when a constraint is violated (the violations are listed).
    """
    from hetplan.commands.output.results import show_validation
    from hetplan.planner.fleet.check import read_summary
    from hetplan.planner.optimize.evaluate import evaluate

    from hetplan.planner.optimize.plan import Plan

    view = output(json_output, plain)
    summary = read_summary(plan)
    if summary is not None:
        _validate_fleet(view, plan, summary)
        return
    result = evaluate(Plan.load(plan).source)
    if view.json:
        view.print_json({"ok": result.ok, "total_cost_usd": result.total_cost_usd, "vm_cost_usd": result.vm_cost_usd,
                         "lambda_cost_usd": result.lambda_cost_usd, "mean_accuracy": result.mean_accuracy,
                         "violations": [{"constraint": v.constraint, "window": v.window, "option": v.option,
                                         "message": v.message} for v in result.violations]})
    else:
        show_validation(view, result)
    if not result.ok:
        first = result.violations[0]
        more = f" (and {len(result.violations) - 1} more)" if len(result.violations) > 1 else ""
        raise CheckFailed(f"plan violates {first.constraint}: {first.message}{more}")


def _validate_fleet(view, path: Path, summary: dict) -> None:
    """Each service's plan re-checked alone, then the shared limits across the plans in every window; exit 4 on a violation."""
    from hetplan.commands.output.fleet import show_fleet_check
    from hetplan.planner.fleet.check import check_fleet

    check = check_fleet(path, summary)
    if view.json:
        view.print_json({"ok": check.ok, "services": {name: {"ok": e.ok, "violations": [
            {"constraint": v.constraint, "window": v.window, "option": v.option, "message": v.message} for v in e.violations]}
            for name, e in check.services.items()},
            "shared": [{"constraint": v.constraint, "window": v.window, "message": v.message} for v in check.shared]})
    else:
        show_fleet_check(view, check)
    if not check.ok:
        bad = check.shared + [v for e in check.services.values() for v in e.violations]
        raise CheckFailed(f"fleet violates {bad[0].constraint}: {bad[0].message}" + (f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""))
