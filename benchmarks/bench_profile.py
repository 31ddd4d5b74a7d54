"""Benchmark of ``hetplan profile --quick``: wall time and repeatability of the medians.

Runs the quick profile of the paper's six models at 1 vCPU and Lambda 512/1024/1769/3008 MB twice,
each in a fresh process, and prints the wall time of each run (target: under 5 minutes) and how far
each configuration's median latency moved between the two runs (target: within 10%).

    python benchmarks/bench_profile.py [--runs 2] [--keep DIR]

Needs hetplan importable (installed, or its parent folder on PYTHONPATH) and, for measured Lambda
sizes, root with writable cgroups; otherwise the Lambda rows are scaled, and the script says so.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hetplan.profiler.catalog import PAPER_MODELS
from hetplan.profiler.profile_csv import read_rows, row_key

ARGS = ["--models", ",".join(PAPER_MODELS), "--vcpus", "1", "--lambda-memory", "512,1024,1769,3008", "--quick"]
RUNNER = "import sys; from hetplan.commands.profile import profile_app; profile_app(sys.argv[1:])"


def run_once(out: Path) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", RUNNER, *ARGS, "--out", str(out)], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--keep", type=Path, help="folder to keep the profiles in")
    options = parser.parse_args()
    folder = options.keep or Path(tempfile.mkdtemp(prefix="bench-profile-"))
    folder.mkdir(parents=True, exist_ok=True)
    outs = [folder / f"run{index + 1}.csv" for index in range(options.runs)]
    for out in outs:
        out.unlink(missing_ok=True)
        print(f"{out.name}: wall {run_once(out):.1f} s (target < 300 s)", flush=True)
    runs = [{row_key(row): row for row in read_rows(out)} for out in outs]
    methods = sorted({row["method"] for run in runs for row in run.values()})
    print(f"rows per run: {[len(run) for run in runs]}; methods: {', '.join(methods)}")
    print(f"{'model':<11}{'shape':<13}" + "".join(f"{'p50 run' + str(i + 1):>12}" for i in range(len(runs)))
          + f"{'spread':>9}")
    spreads = []
    for key in sorted(runs[0], key=lambda k: (k[0], k[1] != "vm", float(k[3]))):
        medians = [run.get(key, {}).get("latency_p50_ms", "") for run in runs]
        shape = key[2] or f"lambda-{key[3]}"
        if "" in medians:
            print(f"{key[0]:<11}{shape:<13}" + "".join(f"{m or 'n/a':>12}" for m in medians))
            continue
        values = [float(m) for m in medians]
        spread = (max(values) - min(values)) / statistics.mean(values)
        spreads.append(spread)
        print(f"{key[0]:<11}{shape:<13}" + "".join(f"{v:>12.1f}" for v in values) + f"{spread:>9.1%}")
    if spreads:
        within = sum(spread <= 0.10 for spread in spreads)
        print(f"median spread {statistics.median(spreads):.1%}, max {max(spreads):.1%}; "
              f"{within}/{len(spreads)} configurations within 10%")
    print(f"profiles in {folder}")


if __name__ == "__main__":
    main()
