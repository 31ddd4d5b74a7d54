"""Predictors on series with known answers, the oracle, and a backtest that cannot peek at the future."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hetplan.errors import HetplanError
from hetplan.planner.forecast.predict import (DEFAULT_PREDICTOR, PREDICTORS, RATES, backtest, choose_default,
                                     detect_period, forecast, make_predictor, rolling_forecasts, score)

REALISTIC = [name for name in PREDICTORS if name != "oracle"]


def windows_of(mean, q_factor=1.5, peak_factor=2.0, width=300):
    """A window_stats-shaped frame whose rates are scaled copies of ``mean``."""
    mean = np.asarray(mean, dtype=float)
    n = len(mean)
    start = 1000 + width * np.arange(n)
    return pd.DataFrame({"window": np.arange(n), "start_s": start, "end_s": start + width,
                         "mean_rps": mean, "peak_rps": mean * peak_factor, "q_rps": mean * q_factor,
                         "seconds_observed": width, "requests": mean * width})


def sine(n, period=12, level=100.0, amplitude=40.0):
    return level + amplitude * np.sin(2 * np.pi * np.arange(n) / period)


# --- known answers -------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", REALISTIC)
def test_constant_series_is_predicted_exactly(name):
    predicted = forecast(windows_of(np.full(40, 70.0)), name, horizon=5)
    for column, factor in (("mean_rps", 1.0), ("q_rps", 1.5), ("peak_rps", 2.0)):
        np.testing.assert_allclose(predicted[column], 70.0 * factor)


def test_prediction_frame_continues_the_windows():
    predicted = forecast(windows_of(np.full(10, 5.0)), "naive", horizon=3)
    assert predicted.columns.tolist() == ["window", "start_s", "end_s", *RATES]
    assert predicted["window"].tolist() == [10, 11, 12]
    assert predicted["start_s"].tolist() == [4000, 4300, 4600]
    assert predicted["end_s"].tolist() == [4300, 4600, 4900]


def test_detect_period_of_a_pure_sine_and_none_without_seasonality():
    assert detect_period(sine(96, period=12)) == 12
    noisy = sine(120, period=10) + np.random.default_rng(1).normal(0, 5, 120)
    assert detect_period(noisy) == 10
    assert detect_period(np.full(50, 3.0)) is None
    assert detect_period(np.r_[np.full(30, 10.0), np.full(30, 50.0)]) is None
    walk = 100 + np.cumsum(np.random.default_rng(7).normal(0, 3, 200))
    assert detect_period(walk) is None
    assert detect_period(sine(20, period=12)) is None  # under two cycles: not enough evidence


def test_seasonal_naive_repeats_the_last_cycle_of_a_sine():
    history = windows_of(sine(96, period=12))
    model = make_predictor("seasonal-naive").fit(history)
    assert model.period == 12
    np.testing.assert_allclose(model.predict(18)["mean_rps"], sine(96 + 18, period=12)[96:], atol=1e-9)


def test_holt_winters_follows_a_sine_with_the_detected_period():
    history = windows_of(sine(72, period=12))
    model = make_predictor("holt-winters").fit(history)
    assert model.period == 12
    truth = sine(72 + 12, period=12)[72:]
    np.testing.assert_allclose(model.predict(12)["mean_rps"], truth, atol=2.0)  # amplitude is 40


@pytest.mark.parametrize("n", range(10, 16))
def test_holt_winters_on_short_seasonal_histories(n):
    predicted = forecast(windows_of(sine(n, period=5)), "holt-winters", 3)  # needs 15 windows to go seasonal
    assert np.isfinite(predicted["mean_rps"]).all()


def test_naive_and_moving_average_miss_a_sine_where_seasonal_models_do_not():
    history, truth = windows_of(sine(72)), sine(78)[72:]
    errors = {name: np.abs(forecast(history, name, 6)["mean_rps"] - truth).mean()
              for name in ("naive", "moving-average", "seasonal-naive", "holt-winters")}
    assert errors["seasonal-naive"] < 1e-9 and errors["holt-winters"] < 2.0
    assert errors["naive"] > 10 and errors["moving-average"] > 10


@pytest.mark.parametrize("name, tolerance", [("naive", 0), ("moving-average", 0), ("ewma", 1e-6),
                                             ("holt-winters", 2.5), ("seasonal-naive", 0)])
def test_step_is_followed_once_it_has_settled(name, tolerance):
    history = windows_of(np.r_[np.full(30, 10.0), np.full(30, 50.0)])
    np.testing.assert_allclose(forecast(history, name, 3)["mean_rps"], 50.0, atol=tolerance)


def test_moving_average_and_ewma_right_after_a_step():
    history = windows_of(np.r_[np.full(20, 10.0), np.full(3, 50.0)])
    assert forecast(history, "moving-average", 1)["mean_rps"].iloc[0] == pytest.approx(30.0)  # (3*10+3*50)/6
    # newest weights 0.5, 0.25, 0.125 on 50, the rest (0.125) on 10
    assert forecast(history, "ewma", 1)["mean_rps"].iloc[0] == pytest.approx(45.0)


def test_peak_aware_pads_after_under_predictions_and_relaxes_later():
    base = np.full(60, 100.0)
    stepped = windows_of(np.r_[base[:50], np.full(10, 200.0)])  # the step is inside the 24-window lookback
    model = make_predictor("peak-aware").fit(stepped)
    assert model.margin > 1.2
    padded = model.predict(2)
    assert (padded["q_rps"] > 300.0 * 1.2).all()  # base q forecast is ~300 (1.5 x 200), then padded
    assert padded["mean_rps"].iloc[0] == pytest.approx(forecast(stepped, "ewma", 1)["mean_rps"].iloc[0])
    assert (padded["peak_rps"] >= padded["q_rps"]).all()
    settled = windows_of(np.r_[base[:30], np.full(40, 200.0)])  # the step left the lookback
    assert make_predictor("peak-aware").fit(settled).margin == pytest.approx(1.0, abs=1e-3)


def test_peak_aware_margin_covers_noise():
    noisy = 100 + np.random.default_rng(3).normal(0, 10, 130)
    history = windows_of(noisy)
    backtested = score(rolling_forecasts(history, ["ewma", "peak-aware"], min_history=50))
    under = dict(zip(backtested["predictor"], backtested["under_pct"]))
    assert under["peak-aware"] < 15 < under["ewma"]


# --- oracle and the backtest ---------------------------------------------------------------------------

def test_oracle_is_exact_and_scores_zero():
    windows = windows_of(100 + np.random.default_rng(0).normal(0, 20, 40))
    predicted = make_predictor("oracle", truth=windows).fit(windows.iloc[:30]).predict(5)
    pd.testing.assert_frame_equal(predicted[list(RATES)].reset_index(drop=True),
                                  windows.iloc[30:35][list(RATES)].reset_index(drop=True))
    table = backtest(windows, ["oracle"], min_history=10, horizon=3)
    assert table.loc[0, "windows"] == 30
    assert table.loc[0, ["mape_mean_pct", "under_pct", "over_pct"]].tolist() == [0.0, 0.0, 0.0]


def test_oracle_errors():
    windows = windows_of(np.ones(5))
    with pytest.raises(HetplanError, match="needs the true windows"):
        make_predictor("oracle")
    with pytest.raises(HetplanError, match="knows only 1 window"):
        make_predictor("oracle", truth=windows).fit(windows.iloc[:4]).predict(2)


def test_backtest_never_anticipates_a_spike():
    mean = np.full(40, 100.0)
    mean[30] = 10_000.0
    forecasts = rolling_forecasts(windows_of(mean), list(PREDICTORS), min_history=10)
    at_spike = forecasts[forecasts["window"] == 30].set_index("predictor")
    for name in REALISTIC:
        assert at_spike.loc[name, "pred_mean_rps"] == pytest.approx(100.0), name
        assert at_spike.loc[name, "pred_q_rps"] == pytest.approx(150.0), name
    assert at_spike.loc["oracle", "pred_mean_rps"] == 10_000.0


def test_backtest_predictions_do_not_depend_on_later_windows():
    rng = np.random.default_rng(5)
    original = sine(48) + rng.normal(0, 3, 48)
    changed = original.copy()
    changed[40:] = rng.uniform(0, 1000, 8)  # rewrite the future after window 39
    before = rolling_forecasts(windows_of(original), REALISTIC, min_history=30, horizon=2)
    after = rolling_forecasts(windows_of(changed), REALISTIC, min_history=30, horizon=2)
    # forecasts made at origins <= 40 (30, 32, ..., 40) used only windows < 40: they must be bit-identical
    cols = ["pred_mean_rps", "pred_q_rps", "pred_peak_rps"]
    early_before, early_after = before[before["origin"] <= 40], after[after["origin"] <= 40]
    assert len(early_before) == len(REALISTIC) * 6 * 2
    pd.testing.assert_frame_equal(early_before[cols], early_after[cols])
    assert not before[cols].equals(after[cols])  # ...and the later ones did change


def test_rolling_origins_and_horizon():
    forecasts = rolling_forecasts(windows_of(np.arange(1.0, 11.0)), ["naive"], min_history=4, horizon=3)
    assert forecasts["origin"].tolist() == [4, 4, 4, 7, 7, 7]
    assert forecasts["window"].tolist() == [4, 5, 6, 7, 8, 9]
    assert forecasts["pred_mean_rps"].tolist() == [4.0, 4.0, 4.0, 7.0, 7.0, 7.0]


def test_score_known_values():
    forecasts = pd.DataFrame({
        "predictor": ["p"] * 4,
        "actual_mean_rps": [100.0, 100.0, 50.0, 0.0], "pred_mean_rps": [110.0, 90.0, 50.0, 5.0],
        "actual_q_rps": [100.0, 200.0, 100.0, 0.0], "pred_q_rps": [150.0, 100.0, 100.0, 1.0],
        "actual_peak_rps": 0.0, "pred_peak_rps": 0.0})
    row = score(forecasts).iloc[0]
    assert row["windows"] == 4
    assert row["mape_mean_pct"] == pytest.approx(100 * (0.1 + 0.1 + 0) / 3)  # zero-rate window left out
    assert row["under_pct"] == 25.0  # only the 200-vs-100 window
    assert row["over_pct"] == pytest.approx(100 * (0.5 + 0 + 0) / 3)


def test_backtest_bad_arguments():
    windows = windows_of(np.ones(10))
    with pytest.raises(HetplanError, match="more windows than its 10 windows of history"):
        backtest(windows, ["naive"], min_history=10)
    with pytest.raises(HetplanError, match="horizon 0"):
        backtest(windows, ["naive"], horizon=0, min_history=3)
    with pytest.raises(HetplanError, match="did you mean 'ewma'"):
        backtest(windows, ["ewmaa"], min_history=3)


def test_choose_default_skips_the_oracle_and_caps_over_provisioning():
    table = pd.DataFrame({"predictor": ["oracle", "a", "b", "c"], "under_pct": [0.0, 2.0, 5.0, 9.0],
                          "over_pct": [0.0, 40.0, 20.0, 10.0]})
    other = table.assign(over_pct=[0.0, 10.0, 24.0, 5.0])
    assert choose_default([table, other]) == "b"  # 'a' is over the cap on the first trace
    assert choose_default([table], max_over_pct=15) == "c"
    with pytest.raises(HetplanError, match="no predictor"):
        choose_default([table], max_over_pct=1)
    assert DEFAULT_PREDICTOR in PREDICTORS and DEFAULT_PREDICTOR != "oracle"


# --- interface errors and invariants -------------------------------------------------------------------

def test_interface_errors():
    with pytest.raises(HetplanError, match="unknown predictor 'holtwinters' \\(did you mean 'holt-winters'"):
        make_predictor("holtwinters")
    with pytest.raises(HetplanError, match="must be fit"):
        make_predictor("naive").predict(1)
    with pytest.raises(HetplanError, match="horizon 0"):
        forecast(windows_of([1.0]), "naive", 0)
    with pytest.raises(HetplanError, match="lacks column"):
        make_predictor("naive").fit(pd.DataFrame({"mean_rps": [1.0]}))
    with pytest.raises(HetplanError, match="NaN or infinite"):
        make_predictor("naive").fit(windows_of([1.0, np.nan]))
    with pytest.raises(HetplanError, match="at least one past window"):
        make_predictor("ewma").fit(windows_of([]))


def test_fit_accepts_bare_rate_columns():
    history = pd.DataFrame({"mean_rps": [1.0, 2.0], "peak_rps": [2.0, 3.0], "q_rps": [1.5, 2.5]})
    predicted = forecast(history, "naive", 2)
    assert predicted["window"].tolist() == [2, 3] and predicted["q_rps"].tolist() == [2.5, 2.5]


@settings(max_examples=25, deadline=None)
@given(st.lists(st.floats(0, 1e4, allow_nan=False), min_size=1, max_size=40),
       st.sampled_from(REALISTIC), st.integers(1, 6))
def test_predictions_are_finite_non_negative_and_sized(values, name, horizon):
    predicted = forecast(windows_of(values), name, horizon)
    assert len(predicted) == horizon
    rates = predicted[list(RATES)].to_numpy()
    assert np.isfinite(rates).all() and (rates >= 0).all()


def test_holt_winters_never_predicts_negative_load():
    falling = windows_of(np.linspace(500, 5, 40))
    assert (forecast(falling, "holt-winters", 30)[list(RATES)] >= 0).all().all()


# --- the CLI command -----------------------------------------------------------------------------------

def run_cli(*args):
    import typer
    from typer.testing import CliRunner

    from hetplan.commands.predict import predict_command

    app = typer.Typer()
    app.command("predict")(predict_command)
    app.command("other")(lambda: None)  # two commands, so 'predict' is addressed by name as in hetplan's CLI
    return CliRunner().invoke(app, ["predict", *map(str, args)])


@pytest.fixture
def small_trace(tmp_path):
    """630 seconds: 20 req/s with a 10 req/s swing of period 100 s, and a 15-second gap (300..314)."""
    seconds = np.r_[np.arange(0, 300), np.arange(315, 630)]
    requests = 20 + 10 * np.sin(2 * np.pi * seconds / 100)
    path = tmp_path / "small.csv"
    pd.DataFrame({"second": seconds, "requests": requests.round(3)}).to_csv(path, index=False)
    return path


def test_cli_predicts_held_out_windows_to_csv(small_trace, tmp_path):
    out = tmp_path / "pred.csv"
    result = run_cli("--trace", small_trace, "--window", "20s", "--predictor", "oracle", "--horizon", 4,
                     "--out", out)
    assert result.exit_code == 0, result.output
    assert "1 gap(s) (15 s missing" in result.output and "predicted vs actual" in result.output
    table = pd.read_csv(out)
    assert table["window"].tolist() == [28, 29, 30, 31]
    np.testing.assert_allclose(table["q_rps"], table["actual_q"])  # the oracle is exact
    assert (table["q_error_pct"].abs() < 1e-9).all()


def test_cli_future_json(small_trace, tmp_path):
    import json

    out = tmp_path / "future.json"
    result = run_cli("--trace", small_trace, "--window", "1m", "--predictor", "naive", "--future",
                     "--horizon", 2, "--gaps", "interpolate", "--out", out)
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    assert doc["predictor"] == "naive" and doc["window_s"] == 60 and doc["gaps"] == "interpolate"
    assert [row["start_s"] for row in doc["rows"]] == [660, 720]  # windows stay on the 1-minute grid
    assert "actual_q" not in doc["rows"][0]


def test_cli_backtest_table_plot_and_out(small_trace, tmp_path):
    out, png = tmp_path / "bt.csv", tmp_path / "bt.png"
    result = run_cli("--trace", small_trace, "--window", "20s", "--backtest", "--min-history", 12,
                     "--out", out, "--plot", png)
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out)
    assert table["predictor"].tolist() == list(PREDICTORS)
    assert (table["windows"] == 32 - 12).all()
    oracle = table[table["predictor"] == "oracle"].iloc[0]
    assert oracle[["mape_mean_pct", "under_pct", "over_pct"]].tolist() == [0.0, 0.0, 0.0]
    assert "rolling-origin backtest" in result.output and "actual" in result.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_errors_are_hetplan_errors_and_write_nothing(small_trace, tmp_path):
    out = tmp_path / "never.csv"
    cases = [
        (("--predictor", "orcale"), "did you mean 'oracle'"),
        (("--out", tmp_path / "x.txt"), "write a .csv or .json file"),
        (("--plot", tmp_path / "x.jpg"), "write a .png file"),
        (("--window", "5"), "has no unit"),
        (("--window", "20s", "--horizon", 32), "leaves no history"),
        (("--gaps", "fill"), "unknown gap mode"),
    ]
    for args, message in cases:
        result = run_cli("--trace", small_trace, "--out", out, *args) if "--out" not in args else \
            run_cli("--trace", small_trace, *args)
        assert isinstance(result.exception, HetplanError), (args, result.output)
        assert message in str(result.exception)
        assert not out.exists()
    result = run_cli("--trace", tmp_path / "missing.csv")
    assert isinstance(result.exception, HetplanError) and "not found" in str(result.exception)
    result = run_cli("--trace", small_trace, "--window", "10s")  # three 10 s windows fall in the gap
    assert "window 30 (seconds 300..309) has no data" in str(result.exception)  # inside the gap


def test_cli_module_imports_no_heavy_libraries():
    import subprocess
    import sys

    code = ("import sys, hetplan.commands.predict; "
            "print(sorted(m for m in ('pandas', 'numpy', 'statsmodels', 'matplotlib') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_cli_default_predictor_matches_the_library():
    from hetplan.commands.predict import DEFAULT_PREDICTOR as CLI_DEFAULT

    assert CLI_DEFAULT == DEFAULT_PREDICTOR


def test_sparkline():
    from hetplan.commands.output.plots import sparkline

    assert sparkline([0, 1, 2, 3, 4, 5, 6, 7]) == "▁▂▃▄▅▆▇█"
    assert sparkline([5, 5, 5]) == "███"
    assert sparkline(list(range(100)), width=10)[-1] == "█" and len(sparkline(range(100), width=10)) == 10
    assert sparkline([]) == ""


@pytest.mark.parametrize("name", ["wits", "wits.csv", "data/traces/wits.csv", None])
def test_cli_finds_the_shipped_trace(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # not the repository: the name must resolve to the packaged file
    out = tmp_path / "w.json"
    args = ("--future", "--horizon", 1, "--predictor", "naive", "--out", out)
    result = run_cli(*(("--trace", name) if name else ()), *args)
    assert result.exit_code == 0, result.output
    assert "wits.csv.gz: 46,798 seconds observed, 0 gap(s)" in result.output.replace("\n", " ")


def test_auto_picks_the_candidate_with_the_best_record_so_far_and_sees_only_the_past():
    from hetplan.planner.forecast.predict import AUTO_CANDIDATES, auto_backtest, make_predictor

    # a load that repeats every 6 windows: seasonal-naive is exact once it sees two cycles, the others are not
    pattern = np.tile([100.0, 100.0, 400.0, 100.0, 100.0, 100.0], 8)
    windows = pd.DataFrame({"window": np.arange(pattern.size), "start_s": 300 * np.arange(pattern.size),
                            "end_s": 300 * np.arange(1, pattern.size + 1), "mean_rps": pattern, "q_rps": pattern,
                            "peak_rps": pattern})
    choices, own = auto_backtest(windows)
    assert len(choices) == pattern.size + 1 and set(choices) <= set(AUTO_CANDIDATES)
    assert choices[:6] == ["ewma"] * 6 and choices[-1] == "seasonal-naive"
    assert make_predictor("auto").fit(windows).chosen == "seasonal-naive"
    late = own[own.origin >= 30]
    assert (late.pred_mean_rps == late.actual_mean_rps).all()  # auto forecasts as its choice does
    # the choices for a history depend on that history only
    assert auto_backtest(windows.iloc[:20])[0] == choices[:21]


def test_rolling_auto_over_several_steps_equals_refitting_auto_at_each_origin():
    """rolling_forecasts takes auto's choices from one backtest pass; refitting ``auto`` at each origin (its
    own backtest on the history so far) must give the very same forecasts."""
    rng = np.random.default_rng(3)
    windows = windows_of(sine(40) + rng.normal(0, 5, 40))
    rolled = rolling_forecasts(windows, ["auto"], min_history=10, horizon=3)
    refit = np.concatenate([make_predictor("auto").fit(windows.iloc[:origin].copy()).predict(min(3, 40 - origin))
                            .mean_rps.to_numpy() for origin in range(10, 40, 3)])
    np.testing.assert_array_equal(rolled.pred_mean_rps.to_numpy(), refit)
