"""``hetplan predict``: a trace's load windows, predicted (vs what happened) or backtested per predictor.

pandas, statsmodels and matplotlib are imported inside the command, so ``hetplan --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from hetplan.errors import HetplanError

SHIPPED_TRACES = Path(__file__).resolve().parents[1] / "data" / "traces"
DEFAULT_PREDICTOR = "peak-aware"  # = hetplan.planner.forecast.predict.DEFAULT_PREDICTOR (not imported: keeps startup fast)
_BARS = "▁▂▃▄▅▆▇█"


def predict_command(
    trace: Annotated[Optional[str], typer.Option(
        help="Trace file: second,requests CSV (optionally .gz), timestamp,requests CSV, one arrival time or "
             "inter-arrival time per line; or a shipped trace name (wits, berkeley).")] = None,
    window: Annotated[str, typer.Option(help="Window length, e.g. 5m, 300s, 1h.")] = "5m",
    predictor: Annotated[str, typer.Option(
        help="naive, seasonal-naive, moving-average, ewma, holt-winters, peak-aware or oracle "
             "(with --backtest: the one drawn in the chart).")] = DEFAULT_PREDICTOR,
    quantile: Annotated[float, typer.Option(help="Quantile of the per-second rate the planner provisions for.")] = 0.95,
    horizon: Annotated[Optional[int], typer.Option(
        help="Windows to predict (default 12; with --backtest 1, i.e. one step ahead).")] = None,
    gaps: Annotated[str, typer.Option(
        help="Missing seconds: 'exclude' (statistics over observed seconds) or 'interpolate' (linear fill).")] = "exclude",
    trace_format: Annotated[str, typer.Option(
        "--format", help="auto, seconds, timestamped, timestamps, interarrivals or inferall.")] = "auto",
    future: Annotated[bool, typer.Option(
        help="Predict the windows after the trace's end (no actuals) instead of its last --horizon windows.")] = False,
    backtest: Annotated[bool, typer.Option(
        help="Rolling-origin backtest of every predictor: MAPE of the mean rate, under-predicted windows, "
             "over-provisioning.")] = False,
    min_history: Annotated[Optional[int], typer.Option(
        help="Backtest: windows of history before the first forecast (default: a quarter of them, at least 12).")] = None,
    out: Annotated[Optional[Path], typer.Option(help="Write the table to FILE.csv or FILE.json.")] = None,
    plot: Annotated[Optional[Path], typer.Option(help="Write a PNG of actual vs predicted load over time.")] = None,
) -> None:
    """Predict per-window load (mean, peak and quantile request rates) from a request trace.

    Without --backtest, the last --horizon windows of the trace are predicted from the windows before them and
    shown next to what happened (or, with --future, the windows after the trace). With --backtest, every
    predictor is evaluated rolling-origin: fit on the windows before each origin only, predict the next
    --horizon windows, and score: MAPE of the mean rate, the share of windows whose actual quantile exceeded
    the prediction (under-provisioned) and the mean over-provisioning of the quantile.
    """
    from rich.console import Console

    from hetplan.planner.forecast import predict as pr
    from hetplan.planner.forecast.traces import find_gaps, load_trace, window_stats
    from hetplan.units import format_duration, parse_duration

    _check_out(out, (".csv", ".json"), "--out")
    _check_out(plot, (".png",), "--plot")
    if predictor not in pr.PREDICTORS:
        pr.make_predictor(predictor)  # raises the unknown-name error before any work
    console = Console()
    path = _resolve_trace(trace)
    window_s = parse_duration(window)
    series = load_trace(path, format=trace_format)
    holes = find_gaps(series)
    console.print(f"[bold]{path.name}[/]: {len(series):,} seconds observed, {len(holes):,} gap(s) "
                  f"({int(holes['length_s'].sum()):,} s missing, handled: {gaps}); windows of "
                  f"{format_duration(window_s)}, rates at quantile {quantile:g}")
    windows = window_stats(series, window_s, quantile=quantile, gaps=gaps)
    meta = {"trace": str(path), "window_s": window_s, "quantile": quantile, "gaps": gaps}
    if backtest:
        steps = horizon or 1
        forecasts = pr.rolling_forecasts(windows, list(pr.PREDICTORS), min_history=min_history, horizon=steps)
        table = pr.score(forecasts)
        best = pr.choose_default([table])
        console.print(_backtest_table(table, best, steps))
        shown = forecasts[forecasts["predictor"] == predictor]
        frame, meta["predictor_shown"], meta["horizon"] = table, predictor, steps
    else:
        steps = horizon or 12
        model = pr.make_predictor(predictor, truth=windows) if predictor == "oracle" else pr.make_predictor(predictor)
        if future:
            frame = model.fit(windows).predict(steps)
        else:
            if steps >= len(windows):
                raise HetplanError(f"--horizon {steps} leaves no history: the trace has {len(windows)} windows "
                                   f"of {format_duration(window_s)}")
            frame = _versus_actual(model.fit(windows.iloc[:-steps]).predict(steps), windows.iloc[-steps:])
        console.print(_prediction_table(frame, predictor, format_duration(window_s)))
        shown = frame.rename(columns={"q_rps": "pred_q_rps", "actual_q": "actual_q_rps"})
        meta.update(predictor=predictor, horizon=steps, future=future)
    if "actual_q_rps" in shown and len(shown) > 1:
        console.print(_sparklines(shown["actual_q_rps"].to_numpy(), shown["pred_q_rps"].to_numpy(), predictor))
    if out is not None:
        _write_table(out, frame, meta)
        console.print(f"wrote {out}")
    if plot is not None:
        _write_plot(plot, windows, shown, predictor, meta)
        console.print(f"wrote {plot}")


def _resolve_trace(trace: str | None) -> Path:
    """The file as given; else its .gz; else the shipped trace of that name (wits, wits.csv, data/traces/wits.csv)."""
    if trace is None:
        return SHIPPED_TRACES / "wits.csv.gz"
    path = Path(trace)
    candidates = (path, path.with_name(path.name + ".gz"), SHIPPED_TRACES / f"{path.name}.gz",
                  SHIPPED_TRACES / f"{path.name}.csv.gz")
    return next((candidate for candidate in candidates if candidate.is_file()), path)


def _check_out(path: Path | None, suffixes: tuple[str, ...], option: str) -> None:
    # checked before any work so a typo does not cost a long backtest
    if path is not None and path.suffix.lower() not in suffixes:
        raise HetplanError(f"{option} '{path}' must end in {' or '.join(suffixes)}")


def _versus_actual(predicted, actual):
    frame = predicted.copy()
    for column in ("mean_rps", "q_rps", "peak_rps"):
        frame[f"actual_{column.removesuffix('_rps')}"] = actual[column].to_numpy()
    frame["q_error_pct"] = 100 * (frame["q_rps"] - frame["actual_q"]) / frame["actual_q"].where(frame["actual_q"] > 0)
    return frame


def _prediction_table(frame, predictor: str, window: str):
    from rich.table import Table

    has_actual = "actual_q" in frame
    table = Table(title=f"{predictor}: predicted{' vs actual' if has_actual else ''} load per {window} window "
                        "(requests/s)")
    table.add_column("window", justify="right")
    table.add_column("start s", justify="right")
    for label in ("mean", "quantile", "peak"):
        table.add_column(f"pred {label}", justify="right")
        if has_actual:
            table.add_column(f"actual {label}", justify="right")
    if has_actual:
        table.add_column("quantile err", justify="right")
    for row in frame.itertuples(index=False):
        cells = [str(row.window), str(getattr(row, "start_s", ""))]
        for pred, act in (("mean_rps", "actual_mean"), ("q_rps", "actual_q"), ("peak_rps", "actual_peak")):
            cells.append(f"{getattr(row, pred):.1f}")
            if has_actual:
                cells.append(f"{getattr(row, act):.1f}")
        if has_actual:
            err = row.q_error_pct
            style = "red" if err < 0 else "green"
            cells.append(f"[{style}]{err:+.1f}%[/]" if err == err else "-")
        table.add_row(*cells)
    return table


def _backtest_table(table, best: str, steps: int):
    from rich.table import Table

    out = Table(title=f"rolling-origin backtest, {steps}-window horizon (default rule: lowest under-prediction "
                      "with over-provisioning <= 25%, oracle excluded)")
    for column, justify in (("predictor", "left"), ("windows", "right"), ("MAPE mean", "right"),
                            ("under-predicted", "right"), ("over-provisioning", "right")):
        out.add_column(column, justify=justify)
    for row in table.itertuples(index=False):
        name = f"[bold green]{row.predictor} *[/]" if row.predictor == best else row.predictor
        out.add_row(name, str(row.windows), f"{row.mape_mean_pct:.1f}%", f"{row.under_pct:.1f}%",
                    f"{row.over_pct:.1f}%")
    return out


def sparkline(values, width: int = 60, low: float | None = None, high: float | None = None) -> str:
    """Unicode bar chart of ``values`` scaled from ``low`` (lowest bar) to ``high`` (full bar): at most ``width``
    bars, each the maximum of a bucket of consecutive values (peaks matter more than troughs here)."""
    import numpy as np

    values = np.asarray(values, dtype=float)
    if values.size == 0:
        return ""
    highs = np.array([bucket.max() for bucket in np.array_split(values, min(width, values.size))])
    low = highs.min() if low is None else low
    high = highs.max() if high is None else high
    if high <= low:
        return _BARS[-1] * len(highs)
    levels = np.clip(np.round((highs - low) / (high - low) * (len(_BARS) - 1)), 0, len(_BARS) - 1)
    return "".join(_BARS[int(level)] for level in levels)


def _sparklines(actual, predicted, predictor: str) -> str:
    low, high = float(min(actual.min(), predicted.min())), float(max(actual.max(), predicted.max()))
    return (f"quantile rate per window, {low:.0f} to {high:.0f} req/s\n"
            f"  {'actual':<14} {sparkline(actual, low=low, high=high)}\n"
            f"  {predictor:<14} {sparkline(predicted, low=low, high=high)}")


def _write_table(path: Path, frame, meta: dict) -> None:
    import json

    from hetplan.fileio import write_text_atomic

    if path.suffix.lower() == ".csv":
        write_text_atomic(path, frame.to_csv(index=False))
    else:
        rows = json.loads(frame.to_json(orient="records"))
        write_text_atomic(path, json.dumps({**meta, "rows": rows}, indent=2) + "\n")


def _write_plot(path: Path, windows, shown, predictor: str, meta: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 4))
    hours = windows["start_s"] / 3600
    ax.plot(hours, windows["q_rps"], color="0.6", lw=1, label=f"actual q{meta['quantile']:g}")
    ax.plot(hours, windows["mean_rps"], color="0.8", lw=1, label="actual mean")
    if "start_s" in shown and len(shown):
        ax.plot(shown["start_s"] / 3600, shown["pred_q_rps"], color="tab:red", lw=1.2,
                label=f"{predictor} q{meta['quantile']:g}")
    ax.set_xlabel("trace time (h)")
    ax.set_ylabel("requests/s")
    ax.set_title(f"{Path(meta['trace']).name}: {predictor}, windows of {meta['window_s']:g}s")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    from hetplan.fileio import save_figure_atomic

    save_figure_atomic(fig, path)
