"""The primitives of a deployment: names of AWS limits, timed actions, trace time ↔ wall time, step functions."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass

from hetplan.errors import HetplanError

KINDS = ("role", "launch-template", "target-group", "function", "group", "concurrency", "load-balancer")  # create order
ALIAS = "live"  # the alias the load balancer and provisioned concurrency point at
DEFAULT_ROUTE = "default"  # the listener's default action (the plan's whole mix); other routes are /<model>/*
PORT = 8080  # the model server's port on a VM
MAX_GROUP_ACTIONS = 125  # AWS quota: scheduled actions per Auto Scaling group
MAX_TARGET_ACTIONS = 200  # AWS quota: scheduled actions per Application Auto Scaling scalable target
MAX_FORWARD_GROUPS = 5  # AWS limit: target groups in one forward action
WEIGHT_TOTAL = 999  # ALB weights are whole numbers 0..999; shares are apportioned to this total
NAME_RULE = re.compile(r"^[a-z]([a-z0-9-]{0,22}[a-z0-9])?$")


class DeployError(HetplanError):
    """Deploy could not do what was asked; the message names the resource and the AWS error code."""


@dataclass(frozen=True)
class Action:
    """One timed change: a group's desired capacity, an alias's provisioned concurrency, or the route weights."""

    time: str  # ISO UTC
    window: int
    resource: str
    what: str  # desired-capacity | provisioned-concurrency | weights
    value: object


def iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def capacity_steps(spans: list[tuple[float, float, int]]) -> list[tuple[float, int]]:
    """The step function max{count : a ≤ t < b} over ``spans`` (a, b, count), as (time, new value) at each change,
    starting from 0 and ending at 0. A VM serving window w exists from start_w − boot to end_w, so overlapping
    boot leads take the larger count instead of an earlier scale-in undoing a later scale-out."""
    points = sorted({a for a, _, _ in spans} | {b for _, b, _ in spans})
    steps, current = [], 0
    for p in points:
        value = max((c for a, b, c in spans if a <= p < b), default=0)
        if value != current:
            steps.append((p, value))
            current = value
    return steps


def apportion(shares: dict[str, float], total: int = WEIGHT_TOTAL) -> dict[str, int]:
    """Whole weights summing to ``total`` in proportion to ``shares`` (largest remainder), zeros dropped."""
    mass = sum(shares.values())
    if mass <= 0:
        return {}
    exact = {k: v / mass * total for k, v in shares.items()}
    weights = {k: int(v) for k, v in exact.items()}
    for k in sorted(exact, key=lambda k: (weights[k] - exact[k], k))[: total - sum(weights.values())]:
        weights[k] += 1
    return {k: w for k, w in sorted(weights.items()) if w > 0}


class Timeline:
    """Trace seconds of the plan ↔ wall time."""

    def __init__(self, plan: dict, start: dt.datetime):
        self.windows = plan["windows"]
        self.t0 = float(self.windows[0]["start_s"])
        self.start = start

    def wall(self, t: float) -> dt.datetime:
        return self.start + dt.timedelta(seconds=round(t - self.t0))

    def window_at(self, moment: dt.datetime) -> int:
        """The window running at ``moment``: the first before the plan starts, the last after it ends."""
        t = self.t0 + (moment - self.start).total_seconds()
        for w in self.windows:
            if t < float(w["end_s"]):
                return int(w["index"])
        return int(self.windows[-1]["index"])


def short_name(key: str, limit: int, allowed: str = r"A-Za-z0-9-") -> str:
    """``key`` with characters AWS refuses replaced by '-', cut to ``limit`` with a hash of the whole kept unique."""
    clean = re.sub(f"[^{allowed}]", "-", key).strip("-")
    if len(clean) <= limit:
        return clean
    return clean[:limit - 9].rstrip("-") + "-" + hashlib.sha1(key.encode()).hexdigest()[:8]
