"""``hetplan observe LOG --profile P --out P2``: correct a profile by a request log, show what changed.

Registered by ``cli.py``; the work is ``planner.observe`` (pure functions), this module only renders.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from hetplan.errors import HetplanError


def _fraction(text: str, option: str) -> float:
    """``20%`` or ``0.2`` → 0.2."""
    raw = text.strip()
    try:
        value = float(raw.rstrip("%")) / (100.0 if raw.endswith("%") else 1.0)
    except ValueError:
        raise HetplanError(f"cannot read {option} '{text}': write a fraction (0.2) or a percentage (20%)") from None
    if not value > 0:
        raise HetplanError(f"{option} '{text}' must be positive")
    return value


def _fmt(value: float, quantity: str) -> str:
    if value != value:
        return "–"
    return f"{value:.1f}%" if quantity.startswith("accuracy") else f"{value:,.1f} ms"


def observe_command(
    log: Annotated[Path, typer.Argument(help="Request log: CSV, or JSON lines (.jsonl); columns in planner/FEEDBACK.md.")],
    profile: Annotated[Optional[Path], typer.Option(help="Profile to correct (default: the AWS reference profile).")] = None,
    out: Annotated[Optional[Path], typer.Option(help="Where to write the corrected profile (CSV; written atomically).")] = None,
    threshold: Annotated[str, typer.Option(help="Flag a configuration whose observed value differs from the profile by more than this.")] = "20%",
    skip_bad: Annotated[bool, typer.Option("--skip-bad", help="Skip malformed log lines (they are listed) instead of stopping.")] = False,
    half_life: Annotated[str, typer.Option(help="An observation this old counts half as much as one made now.")] = "6h",
    prior_weight: Annotated[float, typer.Option(help="How many observations the profile's own figure is worth.")] = 100.0,
    now: Annotated[Optional[str], typer.Option(help="Age observations from this time (seconds or ISO 8601; default: the log's last).")] = None,
):
    """Blend observed latencies, cold starts and correctness into a profile; flag configurations that drifted."""
    import pandas as pd

    from hetplan.planner import catalog
    from hetplan.fileio import write_text_atomic
    from hetplan.planner.catalog.observe import profile_csv, read_log, update_profile
    from hetplan.units import parse_duration

    if out is not None and out.suffix.lower() != ".csv":
        raise HetplanError(f"--out '{out}': write a .csv profile")
    if prior_weight < 0:
        raise HetplanError(f"--prior-weight {prior_weight:g} must not be negative")
    limit = _fraction(threshold, "--threshold")
    base = catalog.load_profile(profile)
    read = read_log(log, skip_bad=skip_bad)
    console = _console()
    if len(read.bad):
        first = read.bad.iloc[0]
        console.print(f"[yellow]skipped {len(read.bad):,} malformed line(s) of {log}; first: line {first.line}: {first.reason}[/]")
    at = None
    if now is not None:
        from hetplan.planner.catalog.observe import to_seconds

        at = float(to_seconds(pd.Series([now.strip()])).iloc[0])
        if at != at:
            raise HetplanError(f"cannot read --now '{now}': write seconds or an ISO 8601 time")
    new, changes = update_profile(base, read.requests, now=at, half_life_s=parse_duration(half_life),
                                  prior_weight=prior_weight, threshold=limit)
    _show_changes(console, f"{log.name}: {len(read.requests):,} requests against {Path(profile or catalog.DEFAULT_PROFILE).name} "
                           f"(half-life {half_life}, prior weight {prior_weight:g}, drift threshold {limit:.0%})", changes)
    drifted = changes[changes.drifted]
    if len(drifted):
        console.print(f"[bold red]{len(drifted)} drifted:[/] " + ", ".join(
            f"{r.model} {r.platform} {r.config} {r.quantity} {r.drift_pct:+.0f}%" for r in drifted.itertuples()))
    else:
        console.print(f"no configuration drifted beyond {limit:.0%}")
    if out is not None:
        write_text_atomic(out, profile_csv(new))
        console.print(f"corrected profile written to {out}")


def _show_changes(console, title: str, changes) -> None:
    from rich.table import Table

    table = Table(title=title, title_justify="left", header_style="bold")
    for name in ("model", "platform", "config", "quantity", "profiled", "observed", "new", "change", "requests", "weight", "drifted"):
        table.add_column(name, justify="left" if name in ("model", "platform", "config", "quantity") else "right")
    for r in changes.itertuples():
        style = "bold red" if r.drifted else None
        table.add_row(str(r.model), str(r.platform), str(r.config), str(r.quantity), _fmt(r.profiled, r.quantity),
                      _fmt(r.observed, r.quantity), _fmt(r.new, r.quantity),
                      "–" if r.change_pct != r.change_pct else f"{r.change_pct:+.1f}%", f"{r.requests:,.0f}",
                      "–" if r.weight != r.weight else f"{r.weight:,.1f}", "DRIFT" if r.drifted else "", style=style)
    console.print(table)
    if changes.empty:
        console.print("no observations of any profiled configuration: the profile is unchanged")


def _console():
    from rich.console import Console

    return Console()
