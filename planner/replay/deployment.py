"""What a replay plays (:class:`Deployment`), what it reports (:class:`Report`, :class:`Replay`), and the
per-second views of a deployment that the fluid and the event replays share (time axis, shares, VMs serving,
the overflow router's queue cap).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from hetplan.errors import HetplanError


MIN_BILLED_S = 60.0  # EC2 per-second billing charges at least one minute per launch
PING_MS = 100.0  # a keep-warm ping sleeps ~100 ms so concurrent pings land on distinct instances
VM_COLUMNS = ("option", "model", "instance_type", "accuracy", "latency_ms", "servers", "throughput_rps",
              "price_per_hour_usd", "boot_seconds")
LAMBDA_COLUMNS = ("option", "model", "memory_mb", "accuracy", "latency_ms", "duration_ms", "load_time_ms")
METHODS = ("fluid", "events")
ARRIVALS = ("poisson", "even")
TOL = 1e-6  # seconds: a request finishing at the SLO (to float noise of the cumulative sums) meets it


@dataclass(frozen=True)
class Deployment:
    """What serves the traffic over time (absolute trace seconds).

    ``vm_options`` / ``lam_options``: the options used (columns ``VM_COLUMNS`` / ``LAMBDA_COLUMNS``).
    ``vms``: one row per VM launch: ``option``, ``launch_s``, ``stop_s`` (``inf`` = runs to the end).
    ``routes``: ``start_s`` plus one share column per option name; each row holds until the next one, and
    seconds before the first row are unrouted (their requests count as violations). Shares sum to ≤ 1.
    ``overflow``: a Lambda option that takes the requests a VM option could only serve after the SLO; with
    ``overflow_fraction`` < 1 it takes them once their wait would pass that fraction of the wait budget
    (SLO − service latency), a margin for the arrival jitter inside a second the fluid does not see.
    ``warm``: optional ``start_s`` plus one column per Lambda option: instances kept warm by pings (piecewise
    constant like ``routes``; zero before its first row).
    ``router``: how requests are split by share: ``random`` (each request draws its option) or
    ``weighted-round-robin`` (the shares spread evenly over the requests, as nginx or Envoy do).
    ``overflow_queue``: optional ``start_s`` plus one column per VM option: the queue per VM (requests) beyond
    which the router diverts to ``overflow``, piecewise constant; by default ``throughput_rps ×
    overflow_fraction × (SLO − latency)`` of the options' own figures. The router is set from what the
    planner believes; a :class:`~hetplan.planner.replay.drift.Drift` changes the true speed, not the router.
    """

    vm_options: pd.DataFrame
    lam_options: pd.DataFrame
    vms: pd.DataFrame
    routes: pd.DataFrame
    overflow: str | None = None
    name: str = "plan"
    warm: pd.DataFrame | None = None
    overflow_fraction: float = 1.0
    overflow_queue: pd.DataFrame | None = None
    router: str = "random"
    config: dict = field(default_factory=dict)  # what the policy's row states about its tools (compare.py)
    forecast: pd.DataFrame | None = field(default=None, repr=False)  # the per-window forecast it planned on


    def __post_init__(self):
        for frame, columns, what in ((self.vm_options, VM_COLUMNS, "VM options"),
                                     (self.lam_options, LAMBDA_COLUMNS, "Lambda options")):
            missing = [c for c in columns if c not in frame.columns]
            if missing:
                raise HetplanError(f"deployment {what} lack column(s) {', '.join(missing)}")
        known = set(self.vm_options.option) | set(self.lam_options.option)
        unknown = sorted((set(self.routes.columns) - {"start_s"}) - known) + sorted(set(self.vms.option) - set(self.vm_options.option))
        if unknown:
            raise HetplanError(f"deployment uses unknown option '{unknown[0]}'")
        if self.warm is not None and set(self.warm.columns) - {"start_s"} - set(self.lam_options.option):
            raise HetplanError(f"warm pool names unknown Lambda option '{sorted(set(self.warm.columns) - {'start_s'})[0]}'")
        if self.overflow is not None and self.overflow not in set(self.lam_options.option):
            raise HetplanError(f"overflow option '{self.overflow}' is not one of the deployment's Lambda options")


@dataclass(frozen=True)
class Report:
    """Totals of one replay (costs in USD, latencies in ms, accuracy as a fraction)."""

    policy: str
    method: str
    seconds: int
    requests: float
    violations: float
    violation_pct: float
    latency_p50_ms: float
    latency_p99_ms: float
    cost_usd: float
    vm_cost_usd: float
    lambda_cost_usd: float
    cost_per_million_usd: float
    mean_accuracy: float
    lambda_requests: float
    overflow_requests: float
    unrouted_requests: float
    cold_starts: float
    ping_cost_usd: float
    vm_launches: int
    vm_hours: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Replay:
    """A replay's totals and its per-window timeline (``window_s=1`` gives one row per second)."""

    report: Report
    timeline: pd.DataFrame


@dataclass(frozen=True)
class Axis:
    """The replay's time axis: absolute seconds t0 .. t0+T-1, with per-second arrivals (gaps are zeros)."""

    t0: int
    requests: np.ndarray

    @property
    def length(self) -> int:
        return len(self.requests)


def time_axis(trace: pd.DataFrame) -> Axis:
    if trace.empty:
        raise HetplanError("the trace is empty: nothing to replay")
    sec = trace["second"].to_numpy(np.int64)
    t0 = int(sec[0])
    requests = np.zeros(int(sec[-1]) - t0 + 1)
    requests[sec - t0] = trace["requests"].to_numpy(float)
    return Axis(t0, requests)


def shares_per_second(dep: Deployment, axis: Axis, names: list[str]) -> np.ndarray:
    """(T × options) routing shares per second, from the piecewise-constant ``routes``."""
    return values_per_second(dep.routes, axis, names)


def values_per_second(frame: pd.DataFrame | None, axis: Axis, names: list[str]) -> np.ndarray:
    """(T × names) values of a piecewise-constant frame (``start_s`` + columns); zero before its first row."""
    if frame is None:
        return np.zeros((axis.length, len(names)))
    return values_at(frame, names, axis.t0 + np.arange(axis.length))


def values_at(frame: pd.DataFrame, names: list[str], seconds: np.ndarray) -> np.ndarray:
    """(seconds × names) values of a piecewise-constant frame at ``seconds``; zero before its first row."""
    routes = frame.sort_values("start_s")
    table = np.zeros((len(routes) + 1, len(names)))  # last row: before the first route = unrouted
    for j, name in enumerate(names):
        if name in routes:
            table[:-1, j] = routes[name].fillna(0.0).to_numpy(float)
    row = np.searchsorted(routes.start_s.to_numpy(float), seconds, side="right") - 1
    return table[row]


def vm_counts(dep: Deployment, axis: Axis) -> np.ndarray:
    """(options × T) VMs serving in each second."""
    index = {name: j for j, name in enumerate(dep.vm_options.option)}
    boot = dep.vm_options.set_index("option").boot_seconds
    diff = np.zeros((len(index), axis.length + 1))
    if len(dep.vms):
        j = dep.vms.option.map(index).to_numpy(int)
        on = np.ceil(dep.vms.launch_s.to_numpy(float) + boot.loc[dep.vms.option].to_numpy(float) - 1e-9) - axis.t0
        off = np.ceil(dep.vms.stop_s.to_numpy(float) - 1e-9) - axis.t0
        on, off = np.clip(on, 0, axis.length), np.clip(off, 0, axis.length)
        ok = on < off
        np.add.at(diff, (j[ok], on[ok].astype(int)), 1.0)
        np.add.at(diff, (j[ok], off[ok].astype(int)), -1.0)
    return np.cumsum(diff, axis=1)[:, :-1]


def overflow_cap(dep: Deployment, axis: Axis, j: int, o, count: np.ndarray, slo_s: float) -> np.ndarray | None:
    """Per second, the queue (requests) of VM option ``j`` beyond which arrivals go to the overflow (None: no overflow)."""
    if not dep.overflow:
        return None
    if dep.overflow_queue is not None:
        return count * values_per_second(dep.overflow_queue, axis, [o.option])[:, 0]
    return count * o.throughput_rps * max((slo_s - o.latency_ms / 1000.0) * dep.overflow_fraction, 0.0)
