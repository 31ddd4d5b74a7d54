"""Did a replayed plan keep its promise? The SLO verdict of ``hetplan simulate --check``.

A plan promises that at most ``1 − percentile`` of its requests are later than the SLO (1% for p99), and
that the promise holds window by window: at most ``WINDOWS_OVER_LIMIT`` of the windows may have a late
share over that allowance. The verdict is taken on the request-level replay (``method="events"``): the
fluid replay does not see requests bunching inside a second and is never used for it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import pandas as pd

WINDOWS_OVER_LIMIT = 0.05  # share of windows allowed over the allowance


@dataclass(frozen=True)
class Verdict:
    ok: bool
    allowance_pct: float      # late share the SLO allows, % of requests
    late_pct: float           # late share replayed, % of requests
    latency_p99_ms: float
    windows: int
    windows_over: int         # windows whose late share is over the allowance
    windows_over_limit: int   # the most windows that may be over
    cost_usd: float           # replayed
    stated_cost_usd: float    # what the plan says it costs
    cost_difference_pct: float
    reason: str

    def to_dict(self) -> dict:
        return asdict(self)


def judge(report, timeline: pd.DataFrame, plan: dict) -> Verdict:
    """The verdict on a replay (``simulate.Replay`` parts) of ``plan``."""
    percentile = float(plan.get("targets", {}).get("percentile", 0.99))
    allowance = 100.0 * (1.0 - percentile)
    busy = timeline[timeline.requests > 0]
    over = int((busy.violation_pct > allowance + 1e-12).sum())
    limit = int(WINDOWS_OVER_LIMIT * len(busy))
    stated = float(plan.get("summary", {}).get("total_cost_usd", float("nan")))
    reasons = []
    if report.violation_pct > allowance + 1e-12:
        reasons.append(f"{report.violation_pct:.3f}% of requests late, over the {allowance:g}% the p{percentile * 100:g} SLO allows")
    if over > limit:
        reasons.append(f"{over} of {len(busy)} windows over the {allowance:g}% allowance (at most {limit} may be)")
    return Verdict(ok=not reasons, allowance_pct=allowance, late_pct=report.violation_pct,
                   latency_p99_ms=report.latency_p99_ms, windows=len(busy), windows_over=over,
                   windows_over_limit=limit, cost_usd=report.cost_usd, stated_cost_usd=stated,
                   cost_difference_pct=100.0 * (report.cost_usd / stated - 1.0) if stated > 0 else float("nan"),
                   reason="; ".join(reasons) or "the plan keeps its SLO")


def worst_windows(timeline: pd.DataFrame, count: int = 5) -> pd.DataFrame:
    """The windows with the largest late share (for the check's report)."""
    busy = timeline[timeline.requests > 0]
    columns = ["window", "start_s", "end_s", "requests", "violations", "violation_pct", "vms", "lambda_requests",
               "cold_starts"]
    return busy.sort_values("violation_pct", ascending=False).head(count)[columns].reset_index(drop=True)
