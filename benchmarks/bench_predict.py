"""Timing of trace loading, windowing and one fit+predict per predictor on the shipped traces, and the
peak-aware parameter sweep quoted in planner/PREDICT.md.

    python -m hetplan.benchmarks.bench_predict            # timings (a few seconds)
    python -m hetplan.benchmarks.bench_predict --sweep    # peak-aware sweep (about 2 minutes on 2 cores)
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

TRACES = Path(__file__).resolve().parent.parent / "data" / "traces"
SWEEP = [("ewma", 24, 0.95), ("ewma", 24, 1.0), ("ewma", 12, 0.95), ("ewma", 48, 0.95), ("ewma", 48, 1.0),
         ("naive", 24, 0.95), ("moving-average", 24, 0.95)]


def _windows(name: str):
    from hetplan.planner.forecast.traces import load_trace, window_stats

    start = time.perf_counter()
    trace = load_trace(TRACES / f"{name}.csv.gz")
    loaded = time.perf_counter()
    windows = window_stats(trace, "5m", gaps="interpolate")
    print(f"{name}: load_trace {loaded - start:.2f}s ({len(trace):,} rows), "
          f"window_stats {time.perf_counter() - loaded:.3f}s ({len(windows)} windows)")
    return windows


def timings() -> None:
    from hetplan.planner.forecast.predict import PREDICTORS, make_predictor

    for name in ("wits", "berkeley"):
        windows = _windows(name)
        for predictor in PREDICTORS:
            model = make_predictor(predictor, truth=windows) if predictor == "oracle" else make_predictor(predictor)
            start = time.perf_counter()
            model.fit(windows.iloc[:-12]).predict(12)
            print(f"  {predictor:<15} fit+predict(12) {1000 * (time.perf_counter() - start):7.1f} ms")


def sweep() -> None:
    import pandas as pd

    from hetplan.planner.forecast import predict as pr

    rows = []
    for name in ("wits", "berkeley"):
        windows = _windows(name)
        for base, lookback, coverage in SWEEP:
            label = f"peak-aware base={base} lookback={lookback} coverage={coverage}"
            pr.PREDICTORS[label] = lambda b=base, lb=lookback, c=coverage: pr.PeakAware(b, lb, c)
            try:
                table = pr.score(pr.rolling_forecasts(windows, [label]))
            finally:
                del pr.PREDICTORS[label]
            rows.append(table.assign(trace=name))
    print(pd.concat(rows).round(1).to_string(index=False))


if __name__ == "__main__":
    sweep() if "--sweep" in sys.argv[1:] else timings()
