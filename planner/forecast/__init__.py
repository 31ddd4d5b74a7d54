"""Stage 2, forecast: request traces, per-window load statistics, predictors and their backtest."""
