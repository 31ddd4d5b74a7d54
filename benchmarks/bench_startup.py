"""How fast `hetplan --help` answers (target: under 0.5 s; no mxnet/solver import at start-up).

Run:  python benchmarks/bench_startup.py [--runs 10]
Prints the best and median wall time of a fresh `hetplan --help` process and of `import hetplan.cli`.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time


def timed(command: list[str], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return times


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    exe = shutil.which("hetplan") or "hetplan"
    for label, command in (("hetplan --help", [exe, "--help"]),
                           ("python -c 'import hetplan.cli'", [sys.executable, "-c", "import hetplan.cli"]),
                           ("python -c 'pass' (interpreter alone)", [sys.executable, "-c", "pass"])):
        times = timed(command, args.runs)
        print(f"{label:40s} best {min(times) * 1000:6.0f} ms   median {statistics.median(times) * 1000:6.0f} ms   (target < 300 ms for --help)")


if __name__ == "__main__":
    main()
