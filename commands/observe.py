"""``hetplan observe LOG --profile P --out P2``: correct a profile by a request log, show what changed.

The work is ``planner.catalog.observe`` (pure functions); the output layer draws the result.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from hetplan.commands.common import JsonFlag, PlainFlag, output
from hetplan.errors import HetplanError


def observe_command(
    log: Annotated[Path, typer.Argument(help="Request log: CSV, or JSON lines (.jsonl); columns in planner/FEEDBACK.md.")],
    profile: Annotated[Optional[Path], typer.Option(help="Profile to correct (default: the AWS reference profile).")] = None,
    out: Annotated[Optional[Path], typer.Option(help="Where to write the corrected profile (CSV; written atomically).")] = None,
    threshold: Annotated[str, typer.Option(help="Flag a configuration whose observed value differs from the profile by more than this (fraction or %).")] = "20%",
    skip_bad: Annotated[bool, typer.Option("--skip-bad", help="Skip malformed log lines (they are listed) instead of stopping.")] = False,
    half_life: Annotated[str, typer.Option(help="An observation this old (s, m, h) counts half as much as one made now.")] = "6h",
    prior_weight: Annotated[float, typer.Option(help="How many observations (requests) the profile's own figure is worth.")] = 100.0,
    now: Annotated[Optional[str], typer.Option(help="Age observations from this time (seconds or ISO 8601; default: the log's last).")] = None,
    json_output: JsonFlag = False,
    plain: PlainFlag = False,
):
    """Blend observed latencies, cold starts and correctness into a profile; flag configurations that drifted."""
    import pandas as pd

    from hetplan.planner import catalog
    from hetplan.fileio import write_text_atomic
    from hetplan.planner.catalog.observe import profile_csv, read_log, update_profile
    from hetplan.units import MAX_COUNT, MAX_FACTOR, in_range, parse_duration, parse_fraction

    if out is not None and out.suffix.lower() != ".csv":
        raise HetplanError(f"--out '{out}': write a .csv profile")
    in_range(prior_weight, "--prior-weight", 0.0, MAX_COUNT, example="100")
    limit = parse_fraction(threshold, "--threshold", high=MAX_FACTOR)
    base = catalog.load_profile(profile)
    read = read_log(log, skip_bad=skip_bad)
    view = output(json_output, plain)
    if len(read.bad):
        first = read.bad.iloc[0]
        view.warn(f"skipped {len(read.bad):,} malformed line(s) of {log}; first: line {first.line}: {first.reason}")
    at = None
    if now is not None:
        from hetplan.planner.catalog.observe import to_seconds

        at = float(to_seconds(pd.Series([now.strip()])).iloc[0])
        if at != at:
            raise HetplanError(f"cannot read --now '{now}': write seconds or an ISO 8601 time")
    new, changes = update_profile(base, read.requests, now=at, half_life_s=parse_duration(half_life),
                                  prior_weight=prior_weight, threshold=limit)
    title = (f"{log.name}: {len(read.requests):,} requests against {Path(profile or catalog.DEFAULT_PROFILE).name} "
             f"(half-life {half_life}, prior weight {prior_weight:g}, drift threshold {limit:.0%})")
    drifted = changes[changes.drifted]
    if view.json:
        from hetplan.commands.output import frame_records

        view.print_json({"log": str(log), "requests": len(read.requests), "skipped_lines": len(read.bad),
                         "threshold": limit, "changes": frame_records(changes), "drifted": len(drifted),
                         "out": str(out) if out is not None else None})
    else:
        from hetplan.commands.output.results import show_changes

        show_changes(view, title, changes)
        if len(drifted):
            view.note(f"[bold red]{len(drifted)} drifted:[/] " + ", ".join(
                f"{r.model} {r.platform} {r.config} {r.quantity} {r.drift_pct:+.0f}%" for r in drifted.itertuples()),
                markup=True)
        else:
            view.note(f"no configuration drifted beyond {limit:.0%}")
    if out is not None:
        write_text_atomic(out, profile_csv(new))
        view.note(f"corrected profile written to {out}")
