"""Tables of the analysis commands: replay (``simulate``), ``compare``, ``predict``, ``sweep``, ``observe``,
``validate`` and ``profile``. Each takes the result the command built and draws it through :class:`Output`."""

from __future__ import annotations

from hetplan.commands.output import Output

COMPARE_COLUMNS = {  # table column -> (report field, format)
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
    "windows over": ("windows_over", "{:,.0f}"),
    "$/M req": ("cost_per_million_usd", "${:,.3f}"),
    "predictor": ("predictor", "{}"),
    "warm pool": ("warm_pool", "{}"),
    "overflow": ("overflow", "{}"),
    "headroom": ("headroom", "{}"),
    "instance types": ("instance_types", "{}"),
    "reactive": ("reactive", "{}"),
    "tuned": ("tuned", "{}"),
}
ABLATION_COLUMNS = {
    "ablation": ("ablation", "{}"),
    "cost": ("cost_usd", "${:,.2f}"),
    "Δ cost": ("cost_delta_pct", "{:+.1f}%"),
    "SLO violations": ("violation_pct", "{:.3f}%"),
    "Δ late": ("late_delta_pp", "{:+.4f} pp"),
    "Lambda share": ("lambda_pct", "{:.2f}%"),
    "cold starts": ("cold_starts", "{:,.0f}"),
    "VM-hours": ("vm_hours", "{:,.1f}"),
    "predictor": ("predictor", "{}"),
    "warm pool": ("warm_pool", "{}"),
    "overflow": ("overflow", "{}"),
}
SWEEP_COLUMNS = {  # table column -> (summary field(s), format); λ is Lambda
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


def _missing(value) -> bool:
    return value is None or value != value


def _cells(row: dict, columns: dict) -> list[str]:
    """A record's cells for ``columns`` (table column -> (field or fields, format)); "–" where a value is missing."""
    cells = []
    for field, fmt in columns.values():
        values = [row.get(f) for f in (field if isinstance(field, tuple) else (field,))]
        cells.append("–" if any(_missing(v) for v in values) else fmt.format(*values))
    return cells


def _records_table(out: Output, title: str, records: list[dict], columns: dict, left=("policy",), **kw) -> None:
    out.table(title, list(columns), [_cells(row, columns) for row in records], left=left, **kw)


# --- simulate ------------------------------------------------------------------------------------------------

def replay_rows(result, verdict) -> list[tuple[str, str]]:
    """The replay's totals and its verdict as (metric, value) rows."""
    report = result.report.to_dict()
    hours = report.pop("vm_hours")
    report["vm_hours"] = ", ".join(f"{k} {v:,.2f}" for k, v in hours.items()) or "–"
    report["stated_cost_usd"] = verdict.stated_cost_usd
    report["windows_over_allowance"] = f"{verdict.windows_over} of {verdict.windows} (at most {verdict.windows_over_limit})"
    report["verdict"] = ("keeps" if verdict.ok else "misses") + f" its SLO: {verdict.reason}"
    return [(key, _fmt(value)) for key, value in report.items()]


def show_replay(out: Output, title: str, result, verdict, worst=None) -> None:
    out.table(title, ["metric", "value"], replay_rows(result, verdict), left=("metric", "value"))
    if worst is not None:
        out.frame("Worst windows", worst)


def _fmt(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 10_000 else f"{value:,.6g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


# --- compare -------------------------------------------------------------------------------------------------

def show_compare(out: Output, title: str, records: list[dict]) -> None:
    _records_table(out, title, records, COMPARE_COLUMNS,
                   left=("policy", "predictor", "warm pool", "overflow", "headroom", "instance types", "reactive", "tuned"))
    for row in records:
        if row.get("error"):
            out.note(f"{row['policy']}: not run: {row['error']}")


def show_ablation(out: Output, title: str, records: list[dict]) -> None:
    _records_table(out, title, records, ABLATION_COLUMNS, left=("ablation", "predictor", "warm pool", "overflow"))
    for row in records:
        if row.get("error"):
            out.note(f"without {row['ablation']}: not run: {row['error']}")


# --- validate ------------------------------------------------------------------------------------------------

def show_validation(out: Output, evaluation) -> None:
    if evaluation.ok:
        out.note(f"plan OK: all constraints hold; cost ${evaluation.total_cost_usd:.4f} recomputed from the catalog")
        return
    rows = [[v.constraint, "–" if v.window is None else str(v.window), v.option or "–", v.message]
            for v in evaluation.violations]
    out.table(f"Plan violates {len(rows)} constraint(s); cost ${evaluation.total_cost_usd:.4f} recomputed from the catalog",
              ["constraint", "window", "option", "message"], rows, left=("constraint", "option", "message"))


# --- predict -------------------------------------------------------------------------------------------------

def show_prediction(out: Output, frame, predictor: str, window: str) -> None:
    has_actual = "actual_q" in frame
    headers = ["window", "start s"]
    for label in ("mean", "quantile", "peak"):
        headers += [f"pred {label}"] + ([f"actual {label}"] if has_actual else [])
    headers += ["quantile err"] if has_actual else []
    rows = []
    for row in frame.itertuples(index=False):
        cells = [str(row.window), str(getattr(row, "start_s", ""))]
        for pred, act in (("mean_rps", "actual_mean"), ("q_rps", "actual_q"), ("peak_rps", "actual_peak")):
            cells.append(f"{getattr(row, pred):.1f}")
            if has_actual:
                cells.append(f"{getattr(row, act):.1f}")
        if has_actual:
            err = row.q_error_pct
            cells.append(f"[{'red' if err < 0 else 'green'}]{err:+.1f}%[/]" if err == err else "–")
        rows.append(cells)
    out.table(f"{predictor}: predicted{' vs actual' if has_actual else ''} load per {window} window (requests/s)",
              headers, rows)


def show_backtest(out: Output, table, best: str, steps: int) -> None:
    rows = [[f"[bold green]{r.predictor} *[/]" if r.predictor == best else r.predictor, str(r.windows),
             f"{r.mape_mean_pct:.1f}%", f"{r.under_pct:.1f}%", f"{r.over_pct:.1f}%"] for r in table.itertuples(index=False)]
    out.table(f"rolling-origin backtest, {steps}-window horizon (default rule: lowest under-prediction with "
              "over-provisioning <= 25%, oracle excluded; * = the default)",
              ["predictor", "windows", "MAPE mean", "under-predicted", "over-provisioning"], rows, left=("predictor",))


# --- sweep ---------------------------------------------------------------------------------------------------

def show_sweep(out: Output, records: list[dict]) -> None:
    """One row per scenario, then each distinct reason once with the scenarios it explains."""
    columns = {k: v for k, v in SWEEP_COLUMNS.items() if k != "load" or len({r["load_scale"] for r in records}) > 1}
    shown = [{**r, "mean_accuracy_target": 100 * r["mean_accuracy_target"]} for r in records]
    rows = [["★" if row["pareto"] else "", *_cells(row, columns)] for row in shown]
    out.table("Sweep (★ Pareto-optimal)", ["★", *columns], rows, left=("★", "status"), compact=True)
    reasons: dict[str, list[dict]] = {}
    for row in records:
        if row.get("reason"):
            reasons.setdefault(row["reason"], []).append(row)
    from rich.markup import escape

    for reason, group in reasons.items():
        statuses = "/".join(dict.fromkeys(r["status"] for r in group))
        out.note(f"[bold]{', '.join(r['scenario'] for r in group)}[/bold] ({statuses}): {escape(reason)}", markup=True)


# --- observe -------------------------------------------------------------------------------------------------

def _observed(value: float, quantity: str) -> str:
    if value != value:
        return "–"
    return f"{value:.1f}%" if quantity.startswith("accuracy") else f"{value:,.1f} ms"


def show_changes(out: Output, title: str, changes) -> None:
    headers = ["model", "platform", "config", "quantity", "profiled", "observed", "new", "change", "requests", "weight", "drifted"]
    rows, styles = [], []
    for r in changes.itertuples():
        rows.append([str(r.model), str(r.platform), str(r.config), str(r.quantity), _observed(r.profiled, r.quantity),
                     _observed(r.observed, r.quantity), _observed(r.new, r.quantity),
                     "–" if r.change_pct != r.change_pct else f"{r.change_pct:+.1f}%", f"{r.requests:,.0f}",
                     "–" if r.weight != r.weight else f"{r.weight:,.1f}", "DRIFT" if r.drifted else ""])
        styles.append("bold red" if r.drifted else None)
    out.table(title, headers, rows, left=("model", "platform", "config", "quantity"), row_styles=styles)
    if changes.empty:
        out.note("no observations of any profiled configuration: the profile is unchanged")


# --- profile -------------------------------------------------------------------------------------------------

def profile_records(outcomes) -> list[dict]:
    """One record per measured (model, shape, batch): the figures the summary table shows."""
    records = []
    for outcome in outcomes:
        row, job = outcome.row or {}, outcome.job
        number = (lambda key: None if row.get(key) in (None, "") else float(row[key]))
        records.append({"model": job.spec.name, "shape": job.shape.label, "batch": job.batch,
                        "latency_p50_ms": number("latency_p50_ms"), "latency_p99_ms": number("latency_p99_ms"),
                        "throughput_rps": number("throughput_rps"), "peak_memory_mb": number("peak_memory_mb"),
                        "load_time_ms": number("load_time_ms"), "result": outcome.status, "message": outcome.message})
    return records


def show_profile(out: Output, records: list[dict], path) -> None:
    fmt = (lambda v, digits=1: "–" if v is None else f"{v:.{digits}f}")
    rows = [[r["model"], r["shape"], str(r["batch"]), fmt(r["latency_p50_ms"]), fmt(r["latency_p99_ms"]),
             fmt(r["throughput_rps"]), fmt(r["peak_memory_mb"], 0),
             fmt(None if r["load_time_ms"] is None else r["load_time_ms"] / 1000), r["result"]] for r in records]
    if rows:
        out.table(f"profile: {path} (latency in ms, load in s)",
                  ["model", "shape", "batch", "p50", "p99", "req/s", "peak MB", "load", "result"], rows,
                  left=("model", "shape", "result"), compact=True)
    for r in records:
        if r["result"] in ("failed", "not runnable"):
            out.note(f"{r['model']} on {r['shape']} (batch {r['batch']}): {r['result']}: {r['message']}")
