"""Tables of a plan (``hetplan solve``, ``show``, ``validate``) and of the catalog (``hetplan catalog``)."""

from __future__ import annotations

import pandas as pd

from hetplan.commands.output import Output


def show_catalog(out: Output, instances: pd.DataFrame, serverless, models: pd.DataFrame) -> None:
    out.frame("EC2 instance types (us-east-1, on-demand)", instances.drop(columns=["family", "size"]),
              {"price_per_hour_usd": "${:.4f}"})
    fields = dict(vars(serverless))
    out.frame(f"AWS Lambda ({serverless.architecture})",
              pd.DataFrame({"field": list(fields), "value": [str(v) for v in fields.values()]}))
    out.frame("Models (ImageNet top-1/top-5, %)",
              models[["model", "top1", "top5", "params", "input_size", "zoo_name", "accuracy_source"]])


def show_coverage(out: Output, table: pd.DataFrame, profile_name: str) -> None:
    out.frame(f"Coverage of {profile_name}: the profile methods behind each model × family "
              "(– none; 'not runnable' where every row failed)", table)


def catalog_json(instances: pd.DataFrame, serverless, models: pd.DataFrame) -> dict:
    """The catalog as the tables show it."""
    from dataclasses import asdict

    from hetplan.commands.output import frame_records

    return {"instances": frame_records(instances), "serverless": asdict(serverless), "models": frame_records(models)}


def plan_summary_rows(plan) -> list[tuple[str, str]]:
    """The summary table of a plan (``hetplan.planner.optimize.plan.Plan``)."""
    s, solver, targets = plan.summary, plan.meta.get("solver", {}), plan.meta.get("targets", {})
    gap = solver.get("gap")
    rows = [
        ("total cost", f"${s['total_cost_usd']:.2f}"),
        ("  VM / Lambda", f"${s['vm_cost_usd']:.2f} / ${s['lambda_cost_usd']:.2f}"),
        ("requests", f"{s['requests']:,.0f}"),
        ("cost per million requests", f"${s['cost_per_million_usd']:.3f}"),
        ("share of requests on Lambda", f"{s['lambda_share']:.1%}"),
        ("mean top-1 accuracy", f"{s['mean_accuracy']:.2%}" if s.get("mean_accuracy") is not None else "–"),
        ("SLO", f"{targets.get('slo_ms', 0):g} ms at p{100 * targets.get('percentile', 0.99):g}"),
        ("accuracy target", _accuracy_target(targets)),
        ("solver", f"{solver.get('name')} ({solver.get('method')}), {solver.get('status')}, {solver.get('seconds', 0):.1f} s"),
        ("proven lower bound", f"${solver['bound_usd']:.2f} (gap {gap:.2%})" if gap is not None else "–"),
        ("LP relaxation bound", f"${solver['lp_bound_usd']:.2f}" if solver.get("lp_bound_usd") is not None else "–"),
    ]
    rows += _runtime_rows(plan)
    if s.get("methods_used"):
        rows.append(("profile methods used", ", ".join(s["methods_used"])
                     + (f" (trusted: {', '.join(targets['trust'])})" if targets.get("trust") else "")))
    if s.get("extrapolated_options_used"):
        rows.append(("relies on scaled rows", ", ".join(s["extrapolated_options_used"])))
    return rows


def show_plan(out: Output, plan, max_windows: int | None = None) -> None:
    """Summary, per-window and per-model tables of a plan."""
    out.pairs("Plan summary", plan_summary_rows(plan))
    if plan.assignments.empty:
        return
    per_window = plan_windows_frame(plan)
    shown = per_window if max_windows is None or len(per_window) <= max_windows else per_window.head(max_windows)
    title = "Per window" + ("" if len(shown) == len(per_window) else f" (first {len(shown)} of {len(per_window)}; `hetplan show PLAN` for all)")
    out.frame(title, shown, {"cost $": "{:.3f}", "accuracy": "{:.1%}", "load rps": "{:.0f}"})
    out.frame("Per model", plan_models_frame(plan), {"share of requests": "{:.1%}", "cost $": "{:.2f}", "accuracy": "{:.1%}"})
    out.frame("Per option (where each figure comes from)", plan_options_frame(plan), {"cost $": "{:.2f}"})


def plan_options_frame(plan) -> pd.DataFrame:
    """Every option the plan uses: its family, architecture, batch and the profile method behind it."""
    a = plan.assignments
    used = plan.options[plan.options.option.isin(set(a.option))].copy()
    cost = a.groupby("option").cost_usd.sum()
    is_vm = used.platform == "vm"
    family = used.get("family", pd.Series(None, index=used.index)).where(is_vm, "lambda")
    arch = used.get("arch", pd.Series(None, index=used.index))
    batch = used.get("batch", pd.Series(None, index=used.index))
    return pd.DataFrame({
        "option": used.option, "family": family.fillna("–"), "arch": arch.fillna("–"),
        "batch": batch.map(lambda b: "–" if pd.isna(b) else f"{int(b)}"), "method": used.method,
        "cost $": used.option.map(cost),
    }).sort_values("cost $", ascending=False)


def _runtime_rows(plan) -> list[tuple[str, str]]:
    """What the plan relies on when it runs (planner/optimize/runtime.py), and how its windows were sized."""
    runtime, s = plan.meta.get("runtime"), plan.summary
    sizing = plan.meta.get("load", {}).get("sizing") or {}
    rows = [("sizing", {"overflow": "bursts overflow to Lambda, priced per window",
                        "late-share": f"VMs for ≤ {sizing.get('target', 0):.2%} late requests per window",
                        "quantile": f"VMs for the p{100 * sizing.get('quantile', 0):g} of the per-second rate"}
             .get(sizing.get("rule"), "–"))]
    if sizing.get("headroom"):
        rows.append(("forecast headroom", f"up to {sizing['headroom']:.1%} ({plan.meta['load'].get('predictor')})"))
    if runtime is None:
        return rows + [("runtime", "not stated (older plan)")]
    overflow = runtime.get("overflow")
    rows.append(("runtime", f"{runtime['router']} router; " + (
        f"overflow to {overflow['option']} at {overflow['queue_fraction']:.0%} of the wait budget" if overflow else "no overflow")))
    rows.append(("  overflow / warm pool", f"{s.get('overflow_share', 0):.2%} of requests, ${s.get('overflow_cost_usd', 0):.2f} / "
                                           f"${s.get('warm_pool_cost_usd', 0):.3f}"))
    return rows


def _accuracy_target(targets: dict) -> str:
    parts = []
    if targets.get("mean_accuracy") is not None:
        parts.append(f"mean top-1 ≥ {targets['mean_accuracy']:.1%}")
    if targets.get("min_accuracy") is not None:
        parts.append(f"every request top-1 ≥ {targets['min_accuracy']:.1%}")
    return ", ".join(parts) or "none"


def _joined(frame: pd.DataFrame, by: str, describe) -> dict:
    """{window: text} from ``describe(group)`` per group (empty frames give {})."""
    return {key: describe(group) for key, group in frame.groupby(by)}


def plan_windows_frame(plan) -> pd.DataFrame:
    a, w = plan.assignments, plan.windows
    vm = a[a.platform == "vm"]
    lam = a[a.platform == "lambda"]
    vms = _joined(vm, "window", lambda g: ", ".join(f"{c} {t}" for t, c in g.groupby("instance_type")["count"].sum().items()))
    mix = _joined(a, "window", lambda g: ", ".join(f"{m} {s:.0%}" for m, s in g.groupby("model").share.sum().sort_values(ascending=False).items()))
    lam_text = _joined(lam, "window", lambda g: f"{g.share.sum():.0%} @ " + "/".join(f"{m:g}MB" for m in sorted(set(g.memory_mb))))
    idx = w["index"]
    start = (w.start_s - w.start_s.iloc[0]).astype(int)
    return pd.DataFrame({
        "window": idx, "start": start.map(lambda sec: f"{sec // 3600}:{sec % 3600 // 60:02d}"),
        "load rps": w.demand_rps.round(0), "VMs": idx.map(vms).fillna(""), "Lambda": idx.map(lam_text).fillna(""),
        "model mix": idx.map(mix).fillna(""), "accuracy": w.mean_accuracy, "cost $": w.cost_usd,
    })


def plan_models_frame(plan) -> pd.DataFrame:
    a, w = plan.assignments, plan.windows.set_index("index")
    served = a.share * a.window.map(w.mean_rps * (w.end_s - w.start_s))
    frame = a.assign(served=served)
    accuracy = plan.options.set_index("option").accuracy
    table = frame.groupby("model").agg(requests=("served", "sum"), cost=("cost_usd", "sum")).reset_index()
    table["accuracy"] = table.model.map(frame.assign(acc=frame.option.map(accuracy)).groupby("model").acc.first())
    table["share of requests"] = table.requests / table.requests.sum()
    platforms = _joined(frame, "model", lambda g: ", ".join(sorted(set(g.option.str.split("@").str[1] + " (" + g.platform + ")"))))
    table["platforms"] = table.model.map(platforms)
    return table.rename(columns={"cost": "cost $"})[["model", "accuracy", "share of requests", "cost $", "platforms"]]
