"""Load predictors over per-window statistics, and a rolling-origin backtest.

Every predictor has one interface: ``fit(history) -> self`` where ``history`` is a
:func:`hetplan.planner.forecast.traces.window_stats` frame (the past windows, oldest first), then
``predict(horizon) -> DataFrame`` with ``window``, ``start_s``, ``end_s`` and the rate columns
``mean_rps``, ``peak_rps`` and ``q_rps`` for the ``horizon`` windows right after the history.
Each rate column is forecast on its own (the planner provisions for ``q_rps``, so it is predicted, not derived).
Predictions are never negative. ``make_predictor(name)`` builds one from the registry ``PREDICTORS``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable

import numpy as np
import pandas as pd

from hetplan.errors import HetplanError, did_you_mean

RATES = ("mean_rps", "peak_rps", "q_rps")


def detect_period(values, min_acf: float = 0.2, min_prominence: float = 0.2) -> int | None:
    """The seasonal period (in windows) a series shows, or None.

    The period is the lag of the highest local maximum of the autocorrelation (lags 2..n/2, so at least two
    full cycles are seen) that reaches ``min_acf`` and rises ``min_prominence`` above the lowest autocorrelation
    at a shorter lag. The prominence test is what rejects the small bumps of a persistent but aperiodic load
    (a random walk's ACF decays slowly and wiggles; a daily cycle dips below zero half a period in).
    """
    from statsmodels.tsa.stattools import acf

    y = np.asarray(values, dtype=float)
    if len(y) < 8 or np.ptp(y) == 0:
        return None
    corr = acf(y, nlags=len(y) // 2, fft=True)
    best, best_acf = None, min_acf
    for lag in range(2, len(corr) - 1):
        if corr[lag] >= corr[lag - 1] and corr[lag] >= corr[lag + 1] and corr[lag] >= best_acf:
            if corr[lag] - corr[1:lag].min() >= min_prominence:
                best, best_acf = lag, corr[lag]
    return best


class Predictor:
    """Base class: subclasses implement ``_forecast(y, horizon)`` for one rate column (``y`` oldest first)."""

    name = "?"

    def fit(self, history: pd.DataFrame) -> Predictor:
        missing = [c for c in RATES if c not in history.columns]
        if missing:
            raise HetplanError(f"history lacks column(s) {', '.join(missing)}: pass a window_stats() frame")
        if history.empty:
            raise HetplanError(f"predictor '{self.name}' needs at least one past window")
        if not np.isfinite(history[list(RATES)].to_numpy(dtype=float)).all():
            raise HetplanError("history has NaN or infinite rates: window the trace with gaps='interpolate'")
        self._history = history.reset_index(drop=True)
        self._prepare(self._history)
        return self

    def _prepare(self, history: pd.DataFrame) -> None:
        """Learn what the rate columns share (e.g. the seasonal period) before each column is forecast."""

    def predict(self, horizon: int) -> pd.DataFrame:
        if not hasattr(self, "_history"):
            raise HetplanError(f"predictor '{self.name}' must be fit before it predicts")
        if horizon < 1:
            raise HetplanError(f"horizon {horizon} must be at least 1 window")
        out = _future_frame(self._history, horizon)
        for column in RATES:
            y = self._history[column].to_numpy(dtype=float)
            out[column] = np.clip(np.asarray(self._forecast(y, horizon), dtype=float), 0, None)
        return out

    def _forecast(self, y: np.ndarray, horizon: int) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError


def _future_frame(history: pd.DataFrame, horizon: int) -> pd.DataFrame:
    """Index and time span of the ``horizon`` windows after ``history`` (window length from its start times)."""
    last = len(history) - 1
    window = int(history["window"].iloc[-1]) + 1 if "window" in history else len(history)
    if "start_s" not in history:
        return pd.DataFrame({"window": np.arange(window, window + horizon, dtype=np.int64)})
    starts = history["start_s"].to_numpy()
    width = int(starts[1] - starts[0]) if len(starts) > 1 else int(history["end_s"].iloc[0] - starts[0])
    start = int(starts[last]) + width * np.arange(1, horizon + 1)
    return pd.DataFrame({"window": np.arange(window, window + horizon, dtype=np.int64),
                         "start_s": start.astype(np.int64), "end_s": (start + width).astype(np.int64)})


class Naive(Predictor):
    """The last window, repeated."""

    name = "naive"

    def _forecast(self, y, horizon):
        return np.repeat(y[-1], horizon)


class _Seasonal(Predictor):
    """A predictor that uses a season: given, or detected on the history's mean rate at each fit."""

    def __init__(self, period: int | None = None):
        self.fixed_period = period
        self.period: int | None = period

    def _prepare(self, history):
        self.period = self.fixed_period or detect_period(history["mean_rps"])


class SeasonalNaive(_Seasonal):
    """The same window one season earlier; the period is detected on the history's mean rate (naive if none)."""

    name = "seasonal-naive"

    def _forecast(self, y, horizon):
        m = self.period
        if not m or len(y) < m:
            return np.repeat(y[-1], horizon)
        return y[len(y) - m + np.arange(horizon) % m]


class MovingAverage(Predictor):
    """Mean of the last ``windows`` windows."""

    name = "moving-average"

    def __init__(self, windows: int = 6):
        self.windows = windows

    def _forecast(self, y, horizon):
        return np.repeat(y[-self.windows:].mean(), horizon)


class Ewma(Predictor):
    """Exponentially weighted mean (weight ``alpha`` on the newest window)."""

    name = "ewma"

    def __init__(self, alpha: float = 0.5):
        self.alpha = alpha

    def _forecast(self, y, horizon):
        return np.repeat(pd.Series(y).ewm(alpha=self.alpha, adjust=False).mean().iloc[-1], horizon)


class HoltWinters(_Seasonal):
    """statsmodels exponential smoothing: additive damped trend, plus additive seasonality of the detected
    period once the history holds two cycles of it. Too short a history (< 10 windows) falls back to naive."""

    name = "holt-winters"

    def _forecast(self, y, horizon):
        from statsmodels.tsa.holtwinters import ExponentialSmoothing

        if len(y) < 10 or np.ptp(y) == 0:
            return np.repeat(y[-1], horizon)
        m = self.period
        # two cycles to see the season, and what statsmodels' heuristic initialisation needs
        seasonal = m if m and len(y) >= max(2 * m, 10 + 2 * (m // 2)) else None
        # heuristic initial states and no brute-force start: 20x faster than the defaults with the same
        # forecasts on the shipped traces; 'estimated' seasonal states would optimise one per window of the
        # cycle (288 for a day of 5-minute windows), which is slow and overfits
        model = ExponentialSmoothing(y, trend="add", damped_trend=True, seasonal="add" if seasonal else None,
                                     seasonal_periods=seasonal, initialization_method="heuristic")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ConvergenceWarning on flat stretches; the fit is still usable
            forecast = model.fit(use_brute=False).forecast(horizon)
        if not np.all(np.isfinite(forecast)):
            return np.repeat(y[-1], horizon)
        return forecast


class PeakAware(Predictor):
    """Predict then pad: a base predictor's forecast, with ``q_rps`` and ``peak_rps`` multiplied by a margin.

    The margin is learned from the last ``lookback`` windows of the history: the base predictor forecasts each
    of them one step ahead from the windows before it, and the margin is the ``coverage`` quantile of
    actual/predicted ``q_rps`` (at least 1). So the padding grows after under-predictions and shrinks back as
    they leave the lookback. The mean rate is left unpadded (it is a forecast, not a provisioning target).
    """

    name = "peak-aware"

    def __init__(self, base: str = "ewma", lookback: int = 24, coverage: float = 0.95):
        self.base, self.lookback, self.coverage = base, lookback, coverage
        self.margin = 1.0

    def _prepare(self, history):
        base = make_predictor(self.base)
        ratios = []
        for origin in range(max(1, len(history) - self.lookback), len(history)):
            predicted = base.fit(history.iloc[:origin]).predict(1)["q_rps"].iloc[0]
            if predicted > 1e-6:  # below a millionth of a request per second the ratio means nothing
                ratios.append(history["q_rps"].iloc[origin] / predicted)
        self.margin = max(1.0, float(np.quantile(ratios, self.coverage))) if ratios else 1.0
        self._base = base.fit(history)

    def predict(self, horizon):
        out = super().predict(horizon)
        base = self._base.predict(horizon)
        out["mean_rps"] = base["mean_rps"]
        out["q_rps"] = base["q_rps"] * self.margin
        out["peak_rps"] = np.maximum(base["peak_rps"], out["q_rps"])
        return out

    def _forecast(self, y, horizon):  # the columns are set in predict() from the base predictor
        return np.zeros(horizon)


class Oracle(Predictor):
    """The true future windows (an upper bound for replay): built with the full window table it will reveal."""

    name = "oracle"

    def __init__(self, truth: pd.DataFrame | None = None):
        if truth is None:
            raise HetplanError("the oracle predictor needs the true windows (truth=window_stats(...))")
        self.truth = truth.reset_index(drop=True)

    def predict(self, horizon):
        out = super().predict(horizon)
        if "window" in self._history and "window" in self.truth:
            later = self.truth[self.truth["window"] > self._history["window"].iloc[-1]]
        else:
            later = self.truth.iloc[len(self._history):]
        future = later.iloc[:horizon]
        if len(future) < horizon:
            raise HetplanError(f"the oracle knows only {len(future)} window(s) after the history; "
                               f"cannot predict {horizon}")
        for column in RATES:
            out[column] = future[column].to_numpy(dtype=float)
        return out

    def _forecast(self, y, horizon):
        return np.zeros(horizon)


class Auto(Predictor):
    """At each fit, the candidate whose one-step forecasts of the mean rate had the lowest mean absolute
    percentage error on the history so far (:func:`auto_backtest`); ``ewma`` until three windows are scored."""

    name = "auto"

    def fit(self, history: pd.DataFrame) -> Predictor:
        choices, _ = auto_backtest(history.reset_index(drop=True))
        self.chosen = choices[len(history)]
        self._inner = make_predictor(self.chosen).fit(history)
        return self

    def predict(self, horizon: int) -> pd.DataFrame:
        return self._inner.predict(horizon)


AUTO_CANDIDATES = ("naive", "seasonal-naive", "moving-average", "ewma")  # cheap to refit at every window


def auto_backtest(windows: pd.DataFrame) -> tuple[list[str], pd.DataFrame]:
    """``choices[m]``: the candidate ``auto`` uses when fit on ``windows[:m]`` (m = 0 … n), from the errors of
    the windows before m only; and auto's own one-step rolling forecasts (``rolling_forecasts`` columns)."""
    n = len(windows)
    if n < 4:
        return ["ewma"] * (n + 1), pd.DataFrame()
    steps = rolling_forecasts(windows, AUTO_CANDIDATES, min_history=3)
    actual = steps.actual_mean_rps.where(steps.actual_mean_rps > 0)
    steps["ape"] = (steps.pred_mean_rps - actual).abs() / actual
    scored = steps.pivot_table(index="origin", columns="predictor", values="ape", aggfunc="first").expanding().mean()
    # a fit on windows[:m] knows the errors of origins 3 … m-1; the first three are a fixed start
    choices = [str(scored.loc[m - 1].idxmin()) if m >= 6 and scored.loc[m - 1].notna().any() else "ewma"
               for m in range(n + 1)]
    mine = pd.Series(choices[3:n], index=range(3, n))
    own = steps[steps.predictor == steps.origin.map(mine)].drop(columns="ape").assign(predictor="auto")
    return choices, own.sort_values("origin").reset_index(drop=True)


PREDICTORS: dict[str, Callable[..., Predictor]] = {
    cls.name: cls for cls in (Naive, SeasonalNaive, MovingAverage, Ewma, HoltWinters, PeakAware, Oracle, Auto)}

# chosen by the backtest on both shipped traces (planner/PREDICT.md): lowest under-prediction rate among the
# predictors whose mean over-provisioning stays within 25%
DEFAULT_PREDICTOR = "peak-aware"


def make_predictor(name: str, **params) -> Predictor:
    """A fresh predictor by registry name; ``params`` go to its constructor (``truth=`` for the oracle)."""
    if name not in PREDICTORS:
        raise HetplanError(f"unknown predictor '{name}'{did_you_mean(name, PREDICTORS)}")
    return PREDICTORS[name](**params)


def forecast(windows: pd.DataFrame, predictor: str | Predictor, horizon: int) -> pd.DataFrame:
    """The ``horizon`` windows after ``windows``, predicted by ``predictor`` (a name or an instance)."""
    model = make_predictor(predictor) if isinstance(predictor, str) else predictor
    return model.fit(windows).predict(horizon)


def rolling_forecasts(windows: pd.DataFrame, predictors: Iterable[str] | None = None,
                      min_history: int | None = None, horizon: int = 1) -> pd.DataFrame:
    """Rolling-origin forecasts: at origins ``min_history``, ``min_history + horizon``, ... each predictor is
    fit on the windows *before* the origin only (a copy, so nothing later is reachable) and predicts the next
    ``horizon`` windows. Long frame: ``predictor, origin, window, start_s`` and ``actual_*``/``pred_*`` for
    the three rates. Only the oracle is handed the full table, by design."""
    names = list(predictors) if predictors is not None else list(PREDICTORS)
    windows = windows.reset_index(drop=True)
    n = len(windows)
    if min_history is None:
        min_history = max(12, n // 4)
    if horizon < 1:
        raise HetplanError(f"horizon {horizon} must be at least 1 window")
    if not 1 <= min_history < n:
        raise HetplanError(f"a backtest needs more windows than its {min_history} windows of history; "
                           f"the trace has {n}: use a shorter --window or a longer trace")
    rows = []
    for name in names:
        if name == "auto" and horizon == 1:  # its rolling forecasts come with its choices, in one pass
            rows.append(auto_backtest(windows)[1].query("origin >= @min_history"))
            continue
        model = make_predictor(name, truth=windows) if name == "oracle" else make_predictor(name)
        # auto's choice at m depends on windows[:m] only (auto_backtest), so one pass gives every origin's
        # choice: the same forecasts as refitting auto at each origin, without its backtest each time
        choices = auto_backtest(windows)[0] if name == "auto" else None
        for origin in range(min_history, n, horizon):
            steps = min(horizon, n - origin)
            if choices is not None:
                model = make_predictor(choices[origin])
            predicted = model.fit(windows.iloc[:origin].copy()).predict(steps)
            actual = windows.iloc[origin:origin + steps]
            frame = pd.DataFrame({"predictor": name, "origin": origin,
                                  "window": actual["window"].to_numpy() if "window" in actual else
                                  np.arange(origin, origin + steps)})
            if "start_s" in actual:
                frame["start_s"] = actual["start_s"].to_numpy()
            for column in RATES:
                frame[f"actual_{column}"] = actual[column].to_numpy(dtype=float)
                frame[f"pred_{column}"] = predicted[column].to_numpy(dtype=float)
            rows.append(frame)
    return pd.concat(rows, ignore_index=True)


def score(forecasts: pd.DataFrame) -> pd.DataFrame:
    """Per predictor: ``windows`` evaluated, ``mape_mean_pct`` (MAPE of the mean rate), ``under_pct`` (share
    of windows whose actual ``q_rps`` exceeds the predicted one) and ``over_pct`` (mean over-provisioning:
    ``max(pred_q - actual_q, 0) / actual_q`` averaged over all windows, so under-predicted windows count 0).
    Windows with a zero actual rate are left out of the ratios."""
    rows = []
    for name, group in forecasts.groupby("predictor", sort=False):
        act_mean, pred_mean = group["actual_mean_rps"].to_numpy(), group["pred_mean_rps"].to_numpy()
        act_q, pred_q = group["actual_q_rps"].to_numpy(), group["pred_q_rps"].to_numpy()
        ok_mean, ok_q = act_mean > 0, act_q > 0
        rows.append({
            "predictor": name,
            "windows": len(group),
            "mape_mean_pct": 100 * _mean(np.abs(pred_mean - act_mean)[ok_mean] / act_mean[ok_mean]),
            "under_pct": 100 * float(np.mean(act_q > pred_q * (1 + 1e-9))),
            "over_pct": 100 * _mean(np.maximum(pred_q - act_q, 0)[ok_q] / act_q[ok_q]),
        })
    return pd.DataFrame(rows)


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if values.size else float("nan")


def backtest(trace_windows: pd.DataFrame, predictors: Iterable[str] | None = None,
             min_history: int | None = None, horizon: int = 1) -> pd.DataFrame:
    """Rolling-origin backtest table (see :func:`rolling_forecasts` and :func:`score`)."""
    return score(rolling_forecasts(trace_windows, predictors, min_history=min_history, horizon=horizon))


def choose_default(tables: Iterable[pd.DataFrame], max_over_pct: float = 25.0) -> str:
    """The predictor with the lowest under-prediction rate (averaged over the tables) among those whose
    over-provisioning is at most ``max_over_pct`` in every table; ties go to less over-provisioning. The oracle
    is left out: it cannot run on live load."""
    combined = pd.concat(list(tables))
    combined = combined[combined["predictor"] != "oracle"]
    summary = combined.groupby("predictor").agg(under=("under_pct", "mean"), over=("over_pct", "mean"),
                                                worst_over=("over_pct", "max"))
    eligible = summary[summary["worst_over"] <= max_over_pct]
    if eligible.empty:
        raise HetplanError(f"no predictor keeps over-provisioning within {max_over_pct:g}% on every trace")
    return str(eligible.sort_values(["under", "over"]).index[0])
