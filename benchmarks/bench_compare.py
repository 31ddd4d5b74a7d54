"""A fair comparison: hetplan against every baseline on the same tools, on the shipped traces and on stress
variants derived from WITS (``hetplan trace derive``), each baseline tuned to its best setting.

Prints one markdown table: per trace, each policy's cost and late requests (fluid replay), and hetplan's
change against the tuned mark-like baseline and against the best baseline. With the date and the machine.

    python benchmarks/bench_compare.py [--traces wits,berkeley,wits-x2,wits-spikes,wits-step,wits-shift] [--method fluid]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import tempfile
import time
from pathlib import Path

from hetplan.planner.catalog.tables import DATA_DIR
from hetplan.planner.forecast.derive import Derivation, Spikes, Step, derive, write_trace
from hetplan.planner.forecast.traces import load_trace
from hetplan.planner.replay.compare import DEFAULT_POLICIES, compare
from hetplan.planner.replay.planned import solver_plan_fn
from hetplan.planner.replay.scenario import make_scenario

VARIANTS = {  # name -> (source trace, derivation): the stress traces of the README
    "wits": ("wits.csv.gz", None),
    "berkeley": ("berkeley.csv.gz", None),
    "wits-x2": ("wits.csv.gz", Derivation(scale=2.0)),
    "wits-spikes": ("wits.csv.gz", Derivation(spikes=Spikes(4.0, 600, 7200))),
    "wits-step": ("wits.csv.gz", Derivation(step=Step(1.5, 6 * 3600))),
    "wits-shift": ("wits.csv.gz", Derivation(shift_s=6 * 3600)),
}


def trace_file(name: str, folder: Path) -> Path:
    source, how = VARIANTS[name]
    path = DATA_DIR / "traces" / source
    if how is None:
        return path
    out = folder / f"{name}.csv.gz"
    write_trace(derive(load_trace(path), how), out)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traces", default=",".join(VARIANTS))
    parser.add_argument("--method", default="fluid")
    parser.add_argument("--slo", type=float, default=0.2)
    args = parser.parse_args()
    print(f"{dt.date.today()}, {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"replay: {args.method}, SLO {args.slo * 1000:g} ms at p99, mean top-1 ≥ 70%\n")
    print("| trace | policy | cost | late requests | windows over | tuned | hetplan vs it: cost | late |")
    print("|---|---|---:|---:|---:|---|---:|---:|")
    with tempfile.TemporaryDirectory() as folder:
        for name in args.traces.split(","):
            started = time.perf_counter()
            sc = make_scenario(trace_file(name, Path(folder)), args.slo, mean_accuracy=0.70)
            fast = {"plan_fn": solver_plan_fn(time_limit_s=10.0)}
            table, _ = compare(sc, DEFAULT_POLICIES, {"hetplan": fast, "oracle": {"plan_fn": solver_plan_fn(60.0, 0.01)}},
                               method=args.method, tune=True)
            rows = table.set_index("policy")
            ours = rows.loc["hetplan"]
            best = table.attrs.get("best_baseline")
            for policy, row in rows.iterrows():
                if isinstance(row.get("error"), str):
                    print(f"| {name} | {policy} | – | – | – | not run: {row.error} | | |")
                    continue
                versus = ("" if policy == "hetplan" else
                          f"{100 * (ours.cost_usd / row.cost_usd - 1):+.1f}% | "
                          + (f"{100 * (ours.violation_pct / row.violation_pct - 1):+.0f}%" if row.violation_pct > 0
                             else f"{ours.violations:,.0f} vs 0"))
                tuned = row.get("tuned") if isinstance(row.get("tuned"), str) else ""
                label = f"{policy}{' (best baseline)' if policy == best else ''}"
                print(f"| {name} | {label} | ${row.cost_usd:,.2f} | {row.violation_pct:.4f}% ({row.violations:,.0f}) | "
                      f"{row.windows_over:.0f} of {row.windows:.0f} | {tuned} | {versus or ' | '} |")
            print(f"|  | *{time.perf_counter() - started:.0f} s* | | | | | | |")


if __name__ == "__main__":
    main()
