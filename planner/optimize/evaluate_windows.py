"""The per-window half of :func:`~hetplan.planner.optimize.evaluate.evaluate`: each window's demand, capacity,
fleet and launches, accuracy, overflow, concurrency, quotas, runtime costs and the plan's summary, recomputed
from the plan's own numbers and the option figures the catalog confirmed (:class:`Truth`).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field

from hetplan.planner.optimize.queueing import latency_quantile

RTOL = 1e-6       # relative tolerance of comparisons (solver feasibility tolerances are ~1e-9)
ATOL_USD = 1e-12  # absolute floor for dollars, for zero costs (a Lambda assignment can cost micro-dollars)
NUMBER = (int, float)


@dataclass(frozen=True)
class Violation:
    constraint: str
    window: int | None
    option: str | None
    message: str

    def __str__(self) -> str:
        where = ", ".join(p for p in (None if self.window is None else f"window {self.window}", self.option) if p)
        return f"{self.constraint}[{where}]: {self.message}" if where else f"{self.constraint}: {self.message}"


@dataclass(frozen=True)
class Truth:
    """What an option really costs and scores: the catalog's figures where the catalog has them."""

    accuracy: float
    price_per_hour_usd: float = 0.0
    boot_seconds: float = 0.0
    cost_per_request_usd: float = 0.0


@dataclass
class Tally:
    """Running totals over the windows (internal, mutable)."""

    vm_usd: float = 0.0
    lambda_usd: float = 0.0
    requests: float = 0.0
    served: float = 0.0
    correct: float = 0.0
    lambda_served: float = 0.0
    vm_hours: dict = field(default_factory=lambda: defaultdict(float))
    used: set = field(default_factory=set)
    pricing: object = None  # the serverless catalog (ServerlessPricing): ping prices


def close(a: float, b: float, atol: float = 0.0) -> bool:
    return abs(a - b) <= RTOL * max(abs(a), abs(b)) + atol


def servers(o: dict) -> int:
    return max(1, int(round(float(o["servers"]))))


def check_windows(plan: dict, options: dict, truth: dict, tally: Tally, out: list) -> None:
    limits, windows = plan.get("limits") or {}, plan["windows"]
    initial = limits.get("initial_vms") or {}
    previous = {n: float(initial.get(n, 0)) for n, o in options.items() if o["platform"] == "vm"}
    now = limits.get("horizon_start_s")
    now = float(windows[0]["start_s"]) if now is None else float(now)
    for position, w in enumerate(windows):
        t = w["index"]
        if t != position:
            out.append(Violation("consistency", t, None, f"window index {t} at position {position}: windows must be in order"))
        if w["end_s"] <= w["start_s"] or (position and not close(w["start_s"], windows[position - 1]["end_s"])):
            out.append(Violation("consistency", t, None, f"window [{w['start_s']}, {w['end_s']}) does not follow the previous one"))
        fleet, lambda_usd = _check_window(w, t, plan, options, truth, tally, out)
        lambda_usd += _check_runtime_costs(w, t, plan, options, truth, tally, out)
        vm_usd = _check_fleet(w, t, fleet, previous, now - float(w["start_s"]), truth, out)
        tally.vm_usd += vm_usd
        if w.get("cost_usd") is not None:
            _same_cost(w["cost_usd"], vm_usd + lambda_usd, t, None, out, "window cost")


def _check_runtime_costs(w: dict, t: int, plan: dict, options: dict, truth: dict, tally: Tally, out: list) -> float:
    """The window's overflow and warm-pool costs (``planner/optimize/runtime.py``) from the catalog; returns them."""
    runtime = plan.get("runtime") or {}
    duration = float(w["end_s"]) - float(w["start_s"])
    star = (runtime.get("overflow") or {}).get("option")
    cost = 0.0
    if star is not None and star not in truth:
        out.append(Violation("consistency", t, star, "the overflow option is not among the plan's options"))
        star = None
    if star is not None:
        overflow = float(w.get("overflow_rps") or 0.0) * duration * truth[star].cost_per_request_usd
        _same_cost(w.get("overflow_cost_usd", 0.0), overflow, t, star, out, "overflow cost")
        cost += overflow
    ping_ms, keep = float(runtime.get("ping_ms", 100.0)), float(runtime.get("keep_alive_s", 600.0))
    pool_usd = 0.0
    for name, count in (w.get("warm_pool") or {}).items():
        if name not in options or options[name]["platform"] != "lambda":
            out.append(Violation("consistency", t, name, "the warm pool names an option that is not a Lambda option of the plan"))
            continue
        pool_usd += count * tally.pricing.cost_per_request(ping_ms, float(options[name]["memory_mb"])) * duration / (keep / 2.0)
    if w.get("warm_pool") or "warm_pool_cost_usd" in w:
        _same_cost(w.get("warm_pool_cost_usd", 0.0), pool_usd, t, None, out, "warm pool cost")
    tally.lambda_usd += cost + pool_usd
    return cost + pool_usd


def _check_fleet(w: dict, t: int, fleet: dict, previous: dict, since_start: float, truth: dict, out: list) -> float:
    """Launches, readiness and cost of every VM option in a window (``previous`` is updated); returns the VM cost.

    ``since_start`` is now − window start: a window starting less than a boot after "now" cannot gain VMs.
    """
    cost, duration = 0.0, float(w["end_s"]) - float(w["start_s"])
    for name, before in previous.items():
        count, reported, reported_cost = fleet.get(name, (0.0, 0.0, None))
        launches = max(0.0, count - before)
        if reported != launches:
            out.append(Violation("launch-vm", t, name, f"launches {reported:g}, but the count goes {before:g} → {count:g} "
                                                       f"(launches = max(0, {count:g} − {before:g}) = {launches:g})"))
        option = truth[name]
        if count > before and -since_start < option.boot_seconds:
            out.append(Violation("no-launch-before-ready", t, name,
                                 f"count rises {before:g} → {count:g} in a window starting {-since_start:g} s after the "
                                 f"plan starts, before a VM booting {option.boot_seconds:g} s can serve"))
        here = option.price_per_hour_usd / 3600 * (count * duration + launches * option.boot_seconds)
        if name in fleet:
            _same_cost(reported_cost, here, t, name, out)
        cost += here
        previous[name] = count
    return cost


def _same_cost(reported, recomputed: float, t, name, out: list, what: str = "cost") -> None:
    if not isinstance(reported, NUMBER) or not close(float(reported), recomputed, ATOL_USD):
        out.append(Violation("cost", t, name, f"{what} ${reported} differs from the recomputed ${recomputed:.9g}"))


def _check_window(w: dict, t: int, plan: dict, options: dict, truth: dict, tally: Tally, out: list):
    """Per-window rows; returns ({VM option: (count, reported launches, reported cost)}, Lambda cost)."""
    targets, limits = plan["targets"], plan.get("limits") or {}

    def bad(constraint, name, message):
        out.append(Violation(constraint, t, name, message))

    demand, mean = float(w["demand_rps"]), float(w["mean_rps"])
    duration = float(w["end_s"]) - float(w["start_s"])
    tally.requests += mean * duration
    if demand < 0 or mean < 0:
        bad("bounds", None, f"demand {demand:g} and mean {mean:g} req/s must not be negative")
    fleet, per_type = {}, defaultdict(float)
    rates = shares = accuracy = concurrency = lambda_usd = 0.0
    for a in w["assignments"]:
        name = a["option"]
        o = options.get(name)
        if o is None:
            bad("consistency", name, "assignment names an option that is not in the plan's options")
            continue
        if name in fleet:
            bad("consistency", name, "the option appears twice in the window")
        for key in ("platform", "model", "instance_type"):
            if key in a and a[key] != o.get(key):
                bad("consistency", name, f"assignment {key} '{a[key]}' differs from the option's '{o.get(key)}'")
        if isinstance(a.get("memory_mb"), NUMBER) and not close(float(a["memory_mb"]), float(o["memory_mb"])):
            bad("memory", name, f"assignment memory {a['memory_mb']:g} MB differs from the option's {o['memory_mb']:g} MB")
        rate, count, launches = float(a["rate_rps"]), float(a["count"]), float(a["launches"])
        if rate < 0 or count < 0 or launches < 0 or count != round(count) or launches != round(launches):
            bad("bounds", name, f"rate {rate:g}, count {count:g}, launches {launches:g}: need rate ≥ 0, whole counts ≥ 0")
        share = rate / demand if demand > 0 else 0.0  # traffic is routed by rate / demand
        if not close(float(a["share"]), share, 1e-9):
            bad("consistency", name, f"share {a['share']:.6g} is not rate/demand = {share:.6g}")
        rates, shares = rates + rate, shares + float(a["share"])
        accuracy += share * truth[name].accuracy
        floor = targets.get("min_accuracy")
        if floor is not None and rate > 0 and truth[name].accuracy < float(floor) - 1e-9:
            bad("min-accuracy", name, f"model {o['model']} ({truth[name].accuracy:.4f}) is below --min-accuracy {floor:g}")
        served = share * mean * duration
        tally.served += served
        tally.correct += served * truth[name].accuracy
        tally.used.add(name)
        star = ((plan.get("runtime") or {}).get("overflow") or {}).get("option")
        if o["platform"] == "vm" and star in truth and demand > 0 and isinstance(a.get("overflow_rps"), NUMBER):
            moved = float(a["overflow_rps"]) / demand  # overflowed requests are answered by the overflow option's model
            if moved > share * (1 + RTOL) + 1e-12:
                bad("overflow-cap", name, f"overflow {a['overflow_rps']:.4g} req/s exceeds the rate routed {rate:.4g} req/s")
            accuracy += moved * (truth[star].accuracy - truth[name].accuracy)
            tally.correct += moved * mean * duration * (truth[star].accuracy - truth[name].accuracy)
        if o["platform"] == "vm":
            fleet[name] = (count, launches, a["cost_usd"])
            per_type[o["instance_type"]] += count
            tally.vm_hours[o["instance_type"]] += count * duration / 3600
            _check_vm_assignment(a, o, rate, count, targets, bad, overflow=bool((plan.get("runtime") or {}).get("overflow")))
        else:
            if count or launches:
                bad("consistency", name, "a Lambda assignment has no VMs: count and launches must be 0")
            reported = a.get("expected_latency_ms")
            if isinstance(reported, NUMBER) and not close(float(reported), float(o["latency_ms"])):
                bad("consistency", name, f"expected_latency_ms {reported:g} is not the option's latency {o['latency_ms']:g}")
            concurrency += rate * float(o["latency_ms"]) / 1000  # Little's law
            cost = served * truth[name].cost_per_request_usd
            _same_cost(a["cost_usd"], cost, t, name, out)
            lambda_usd += cost
            tally.lambda_served += served
    tally.lambda_usd += lambda_usd
    if not close(rates, demand, 1e-9):
        bad("demand-window", None, f"rates sum to {rates:.6g} req/s, but the demand is {demand:.6g} req/s")
    if demand > 0 and not close(shares, 1.0, 1e-9):
        bad("demand-window", None, f"routing shares sum to {shares:.6g}, not 1")
    target = targets.get("mean_accuracy")
    if target is not None and demand > 0 and accuracy < float(target) - 1e-6:
        bad("accuracy-window", None, f"traffic-weighted accuracy {accuracy:.4f} is below the target {float(target):.4f}")
    reported = w.get("mean_accuracy")
    if isinstance(reported, NUMBER) and demand > 0 and not close(float(reported), accuracy, 1e-9):
        bad("summary", None, f"window mean_accuracy {reported:.6f} differs from the recomputed {accuracy:.6f}")
    limit = limits.get("lambda_concurrency")
    if limit is not None and concurrency > float(limit) * (1 + RTOL):
        bad("concurrency-window", None, f"Lambda needs {concurrency:.1f} concurrent executions (Σ rate × latency), "
                                        f"above the limit {limit:g}")
    for kind, quota in (limits.get("quotas") or {}).items():
        if per_type.get(kind, 0.0) > float(quota):
            bad("quota-window", None, f"{per_type[kind]:g} VMs of {kind}, above the quota {quota}")
    return fleet, lambda_usd


def _check_vm_assignment(a: dict, o: dict, rate: float, count: float, targets: dict, bad, overflow: bool = False) -> None:
    name, capacity, throughput = o["option"], float(o["capacity_rps"]), float(o["throughput_rps"])
    if isinstance(a.get("capacity_rps"), NUMBER):  # the sizing rule's per-window capacity (planner/optimize/sizing.py)
        capacity = float(a["capacity_rps"])
        ceiling = float(targets.get("max_utilization") or 1.0)
        if capacity > throughput * ceiling * (1 + RTOL):
            bad("utilization-cap", name, f"window capacity {capacity:.4g} req/s exceeds throughput {throughput:.4g} × "
                                         f"--max-utilization {ceiling:g}")
    if rate > count * capacity * (1 + RTOL) + 1e-9:
        bad("capacity-vm", name, f"rate {rate:.4g} req/s exceeds {count:g} VM(s) × {capacity:.4g} req/s")
    if count <= 0:
        return
    fill = float(o.get("min_rate_rps") or 0.0)
    if rate < count * fill * (1 - RTOL) - 1e-9:
        bad("batch-fill", name, f"rate {rate:.4g} req/s cannot fill batches of {o.get('batch')} on {count:g} VM(s): "
                                f"each needs {fill:.4g} req/s within the dispatch timeout")
    utilization = rate / (count * throughput)
    if isinstance(a.get("utilization"), NUMBER) and not close(float(a["utilization"]), utilization, 1e-9):
        bad("consistency", name, f"utilization {a['utilization']:.6g} is not rate/(count × throughput) = {utilization:.6g}")
    slo_ms, percentile = float(targets["slo_ms"]), float(targets["percentile"])
    latency = latency_quantile(float(o["latency_ms"]) / 1000, servers(o), utilization, percentile) * 1000
    if latency > slo_ms * (1 + RTOL) and not overflow:  # with overflow the router diverts what would be late
        shown = "unbounded (utilization ≥ 1)" if math.isinf(latency) else f"{latency:.1f} ms"
        bad("latency-slo", name, f"p{percentile * 100:g} latency at utilization {utilization:.3f} is {shown}, SLO {slo_ms:g} ms")
    reported = a.get("expected_latency_ms")
    if isinstance(reported, NUMBER) and math.isfinite(latency) and not close(float(reported), latency, 1e-6):
        bad("consistency", name, f"expected_latency_ms {reported:.6g} differs from the recomputed {latency:.6g}")


def check_summary(plan: dict, options: dict, tally: Tally, out: list) -> None:
    s = plan["summary"]
    total = tally.vm_usd + tally.lambda_usd
    for key, value in (("total_cost_usd", total), ("vm_cost_usd", tally.vm_usd), ("lambda_cost_usd", tally.lambda_usd)):
        if key in s:
            _same_cost(s[key], value, None, None, out, f"summary {key}")
    expected = {
        "requests": tally.requests,
        "cost_per_million_usd": total / tally.requests * 1e6 if tally.requests else 0.0,
        "mean_accuracy": tally.correct / tally.served if tally.served else None,
        "lambda_share": tally.lambda_served / tally.requests if tally.requests else 0.0,
    }
    for key, value in expected.items():
        if key not in s:
            continue
        reported = s[key]
        same = (reported is None and value is None) or (
            isinstance(reported, NUMBER) and value is not None and close(float(reported), value, 1e-9))
        if not same:
            out.append(Violation("summary", None, None, f"summary {key} {reported} differs from the recomputed {value}"))
    if "vm_hours" in s:
        hours = {k: v for k, v in tally.vm_hours.items() if v > 0}
        reported = {k: float(v) for k, v in (s["vm_hours"] or {}).items() if float(v) > 0}
        if set(hours) != set(reported) or any(not close(reported[k], hours[k], 1e-9) for k in hours):
            out.append(Violation("summary", None, None, f"summary vm_hours {reported} differs from the recomputed {hours}"))
    if "extrapolated_options_used" in s:
        # "extrapolated" is what earlier plans called a scaled row
        used = sorted(n for n in tally.used if options[n]["method"] in ("scaled", "extrapolated"))
        if sorted(s["extrapolated_options_used"] or []) != used:
            out.append(Violation("summary", None, None, f"summary extrapolated_options_used "
                                                        f"{s['extrapolated_options_used']} should be {used}"))
