"""``hetplan trace derive``: stress variants of a trace (growth, periodic spikes, a step change, a shift)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from hetplan.commands.common import JsonFlag, output, resolve_trace
from hetplan.errors import HetplanError

trace_app = typer.Typer(no_args_is_help=True, help="Work with request traces: derive stress variants.")


def _parts(text: str, count: int, option: str, example: str) -> list[str]:
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != count or not all(parts):
        raise HetplanError(f"cannot read {option} '{text}': write {example}")
    return parts


@trace_app.command("derive")
def derive_command(
    out: Annotated[Path, typer.Option(help="Where to write the derived trace: .csv, or .csv.gz (compressed).")],
    trace: Annotated[Optional[str], typer.Option(help="The trace to derive from: a file, or a shipped trace name (wits, berkeley). Default: wits.")] = None,
    scale: Annotated[float, typer.Option(help="Multiply every second's requests by this factor (growth).")] = 1.0,
    spikes: Annotated[Optional[str], typer.Option(help="Periodic spikes FACTOR,LENGTH,EVERY, e.g. 4x,10m,2h: requests ×4 "
                                                       "for 10 minutes every 2 hours.")] = None,
    step: Annotated[Optional[str], typer.Option(help="A lasting change FACTOR,AT, e.g. 1.5,6h: requests ×1.5 from 6 h "
                                                     "after the start on.")] = None,
    shift: Annotated[Optional[str], typer.Option(help="Move the load pattern later by this duration (s, m, h), "
                                                      "wrapping around, e.g. 3h (a diurnal shift).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the rounding of scaled counts to whole requests.")] = 0,
    json_output: JsonFlag = False,
):
    """Derive a stress variant of a trace (planner/forecast/derive.py): load ×k, periodic spikes, a step change,
    a diurnal shift. Counts stay whole numbers; the same options and seed give the same file."""
    from hetplan.planner.forecast.derive import Derivation, Spikes, Step, derive, write_trace
    from hetplan.planner.forecast.traces import load_trace
    from hetplan.units import parse_duration, parse_factor, positive

    name = out.name.lower()
    if not (name.endswith(".csv") or name.endswith(".csv.gz")):
        raise HetplanError(f"--out '{out}': write a .csv or .csv.gz file")
    positive(scale, "--scale")
    how = Derivation(
        scale=scale, seed=seed,
        spikes=None if spikes is None else Spikes(
            parse_factor(_parts(spikes, 3, "--spikes", "FACTOR,LENGTH,EVERY, e.g. 4x,10m,2h")[0], "--spikes"),
            parse_duration(spikes.split(",")[1].strip()), parse_duration(spikes.split(",")[2].strip())),
        step=None if step is None else Step(
            parse_factor(_parts(step, 2, "--step", "FACTOR,AT, e.g. 1.5,6h")[0], "--step"), parse_duration(step.split(",")[1].strip())),
        shift_s=parse_duration(shift) if shift else 0.0)
    source = resolve_trace(trace)
    original = load_trace(source)
    derived = derive(original, how)
    write_trace(derived, out)
    summary = {"source": source.name, "out": str(out), "derivation": how.describe(), "seconds": int(len(derived)),
               "requests_before": float(original.requests.sum()), "requests_after": float(derived.requests.sum()),
               "peak_before_rps": float(original.requests.max()), "peak_after_rps": float(derived.requests.max())}
    view = output(json_output)
    if view.json:
        view.print_json(summary)
        return
    view.table(f"{source.name} → {out.name}: {how.describe()}", ["", "before", "after"], [
        ["requests", f"{summary['requests_before']:,.0f}", f"{summary['requests_after']:,.0f}"],
        ["peak second (req/s)", f"{summary['peak_before_rps']:,.0f}", f"{summary['peak_after_rps']:,.0f}"],
        ["seconds", f"{len(original):,}", f"{len(derived):,}"]], left=("",))
