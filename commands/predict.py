"""``hetplan predict``: a trace's load windows, predicted (vs what happened) or backtested per predictor.

pandas, statsmodels and matplotlib are imported inside the command, so ``hetplan --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from hetplan.commands.common import JsonFlag, PlainFlag, QuietFlag, check_suffix, output, resolve_trace, write_table
from hetplan.errors import HetplanError

DEFAULT_PREDICTOR = "peak-aware"  # = hetplan.planner.forecast.predict.DEFAULT_PREDICTOR (not imported: keeps startup fast)


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
    json_output: JsonFlag = False,
    plain: PlainFlag = False,
    quiet: QuietFlag = False,
) -> None:
    """Predict per-window load (mean, peak and quantile request rates) from a request trace.

    Without --backtest, the last --horizon windows of the trace are predicted from the windows before them and
    shown next to what happened (or, with --future, the windows after the trace). With --backtest, every
    predictor is evaluated rolling-origin: fit on the windows before each origin only, predict the next
    --horizon windows, and score: MAPE of the mean rate, the share of windows whose actual quantile exceeded
    the prediction (under-provisioned) and the mean over-provisioning of the quantile.
    """
    from hetplan.commands.output import frame_records
    from hetplan.commands.output.plots import predict_plot, sparklines
    from hetplan.commands.output.results import show_backtest, show_prediction
    from hetplan.planner.forecast import predict as pr
    from hetplan.planner.forecast.traces import find_gaps, load_trace, window_stats
    from hetplan import units
    from hetplan.units import format_duration, parse_duration

    check_suffix(out, (".csv", ".json"), "--out")
    check_suffix(plot, (".png",), "--plot")
    units.fraction(quantile, "--quantile")
    for option, value in (("--horizon", horizon), ("--min-history", min_history)):
        if value is not None:
            units.count(value, option, minimum=1, example="12")
    if predictor not in pr.PREDICTORS:
        pr.make_predictor(predictor)  # raises the unknown-name error before any work
    view = output(json_output, plain, quiet)
    path = resolve_trace(trace)
    window_s = parse_duration(window)
    series = load_trace(path, format=trace_format)
    holes = find_gaps(series)
    view.note(f"{path.name}: {len(series):,} seconds observed, {len(holes):,} gap(s) "
              f"({int(holes['length_s'].sum()):,} s missing, handled: {gaps}); windows of "
              f"{format_duration(window_s)}, rates at quantile {quantile:g}", markup=True)
    windows = window_stats(series, window_s, quantile=quantile, gaps=gaps)
    meta = {"trace": str(path), "window_s": window_s, "quantile": quantile, "gaps": gaps}
    if backtest:
        steps = horizon or 1
        with view.progress("backtesting", total=None):
            forecasts = pr.rolling_forecasts(windows, list(pr.PREDICTORS), min_history=min_history, horizon=steps)
        frame = pr.score(forecasts)
        best = pr.choose_default([frame])
        shown = forecasts[forecasts["predictor"] == predictor]
        meta.update(predictor_shown=predictor, horizon=steps, best=best)
        if not view.json:
            show_backtest(view, frame, best, steps)
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
        shown = frame.rename(columns={"q_rps": "pred_q_rps", "actual_q": "actual_q_rps"})
        meta.update(predictor=predictor, horizon=steps, future=future)
        if not view.json:
            show_prediction(view, frame, predictor, format_duration(window_s))
    if view.json:
        view.print_json({**meta, "rows": frame_records(frame)})
    elif "actual_q_rps" in shown and len(shown) > 1:
        view.note(sparklines(shown["actual_q_rps"].to_numpy(), shown["pred_q_rps"].to_numpy(), predictor))
    if out is not None:
        write_table(frame, out, meta if out.suffix.lower() == ".json" else None)
        view.note(f"wrote {out}")
    if plot is not None:
        predict_plot(plot, windows, shown, predictor, meta)
        view.note(f"wrote {plot}")


def _versus_actual(predicted, actual):
    frame = predicted.copy()
    for column in ("mean_rps", "q_rps", "peak_rps"):
        frame[f"actual_{column.removesuffix('_rps')}"] = actual[column].to_numpy()
    frame["q_error_pct"] = 100 * (frame["q_rps"] - frame["actual_q"]) / frame["actual_q"].where(frame["actual_q"] > 0)
    return frame
