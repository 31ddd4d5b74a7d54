"""Plots (PNG, matplotlib, written atomically) and terminal sparklines of the analysis commands."""

from __future__ import annotations

from pathlib import Path

import numpy as np

_BARS = "▁▂▃▄▅▆▇█"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> None:
    from hetplan.fileio import save_figure_atomic

    save_figure_atomic(fig, path)


def compare_plot(replays: dict, path: Path, title: str) -> None:
    """Load vs provisioned VM capacity (and the Lambda rate) per policy over time."""
    plt = _pyplot()
    fig, axes = plt.subplots(len(replays), 1, figsize=(11, 2.1 * len(replays)), sharex=True, squeeze=False)
    for ax, (name, result) in zip(axes[:, 0], replays.items()):
        t = result.timeline
        hours = (t.start_s - t.start_s.iloc[0]) / 3600
        ax.plot(hours, t.peak_rps, color="0.75", lw=0.8, label="peak load (req/s)")
        ax.plot(hours, t.mean_rps, color="black", lw=1.0, label="mean load")
        ax.step(hours, t.vm_capacity_rps, where="post", color="tab:blue", lw=1.2, label="VM throughput")
        ax.plot(hours, t.lambda_requests / (t.end_s - t.start_s), color="tab:orange", lw=1.0, label="Lambda rate")
        r = result.report
        ax.set_title(f"{name}: ${r.cost_usd:,.2f}, {r.violation_pct:.3f}% late", fontsize=9, loc="left")
        ax.set_ylabel("req/s")
    axes[0, 0].legend(loc="upper right", fontsize=7, ncol=4)
    axes[-1, 0].set_xlabel("hours into the trace")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    _save(fig, path)


def predict_plot(path: Path, windows, shown, predictor: str, meta: dict) -> None:
    """Actual quantile and mean rate per window, and the predictor's quantile."""
    plt = _pyplot()
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
    _save(fig, path)


def sweep_plot(frame, path: Path) -> None:
    """Cost against SLO, one line per accuracy target (one panel per load scale); Pareto points filled."""
    plt = _pyplot()
    scales = sorted(frame.load_scale.unique())
    fig, axes = plt.subplots(1, len(scales), figsize=(5.5 * len(scales), 4.2), squeeze=False)
    planned = frame[frame.total_cost_usd.notna()]
    targets = sorted(frame.mean_accuracy_target.unique())
    colors = dict(zip(targets, plt.get_cmap("viridis_r")([0.15 + 0.7 * i / max(1, len(targets) - 1) for i in range(len(targets))])))
    rank = {a: i for i, a in enumerate(targets)}  # × marks side by side, not on top of each other
    for ax, scale in zip(axes[0], scales):
        part = planned[planned.load_scale == scale]
        for accuracy, group in part.sort_values("slo_ms").groupby("mean_accuracy_target"):
            color = colors[accuracy]
            ax.plot(group.slo_ms, group.total_cost_usd, color=color, lw=1.2, label=f"accuracy ≥ {accuracy:.1%}")
            front = group[group.pareto]
            ax.scatter(group.slo_ms, group.total_cost_usd, s=30, facecolor="white", edgecolor=color, zorder=3)
            ax.scatter(front.slo_ms, front.total_cost_usd, s=60, color=color, edgecolor="black", zorder=4)
        missing = frame[(frame.load_scale == scale) & frame.total_cost_usd.isna()]
        note = f"; × on the axis: {len(missing)} without a plan" if len(missing) else ""
        ax.scatter(missing.slo_ms, [0.02 + 0.025 * rank[a] for a in missing.mean_accuracy_target], marker="x",
                   color=[colors[a] for a in missing.mean_accuracy_target],
                   transform=ax.get_xaxis_transform(), clip_on=False, zorder=4)
        ax.set_xscale("log")
        ticks = sorted(frame.slo_ms.unique())
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        ax.minorticks_off()
        ax.set_xlabel("latency SLO (ms)")
        ax.set_ylabel("plan cost ($)")
        ax.set_ylim(bottom=0)  # costs to scale; the × marks sit below every plan
        ax.set_title(f"load × {scale:g}{note}", fontsize=9, loc="left")
        ax.grid(alpha=0.3)
        if len(part):
            ax.legend(fontsize=7, title="filled: Pareto-optimal", title_fontsize=7)
    fig.suptitle("hetplan sweep: cost vs SLO per accuracy target", fontsize=10)
    fig.tight_layout()
    _save(fig, path)


def sparkline(values, width: int = 60, low: float | None = None, high: float | None = None) -> str:
    """Unicode bar chart of ``values`` scaled from ``low`` (lowest bar) to ``high`` (full bar): at most ``width``
    bars, each the maximum of a bucket of consecutive values (peaks matter more than troughs here)."""
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


def sparklines(actual, predicted, predictor: str) -> str:
    low, high = float(min(actual.min(), predicted.min())), float(max(actual.max(), predicted.max()))
    return (f"quantile rate per window, {low:.0f} to {high:.0f} req/s\n"
            f"  {'actual':<14} {sparkline(actual, low=low, high=high)}\n"
            f"  {predictor:<14} {sparkline(predicted, low=low, high=high)}")
