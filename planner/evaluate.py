"""Independent re-check of a plan dict (``PLAN_FORMAT.md``) against the catalog.

Nothing here comes from the model, the plan builder or the solver: every constraint of ``model.py`` is
recomputed from the plan's own numbers and the catalog files, so a bug in the MILP or a hand-edited plan
shows up as a :class:`Violation` named after what it breaks:

- model rows: ``demand-window``, ``capacity-vm`` (with the window's own capacity where the sizing rule set
  one), ``launch-vm``, ``no-launch-before-ready``, ``accuracy-window`` (overflowed requests count at the
  overflow option's accuracy), ``overflow-cap``, ``concurrency-window``, ``quota-window``, ``budget``;
- runtime (``planner/runtime.py``): the overflow and warm-pool costs of every window, from the catalog;
- option rules: ``min-accuracy``, ``latency-slo`` (the exact M/D/c latency, ``queueing.latency_quantile``,
  at the planned utilization; not with overflow, whose router diverts what would be late),
  ``utilization-cap``, ``memory``;
- catalog: ``catalog-price`` (VM price and boot, Lambda cost per request), ``catalog-accuracy``,
  ``inputs`` (a catalog file differs from the digest recorded in the plan);
- arithmetic: ``cost`` (assignment, window and total costs), ``summary`` (the other reported figures),
  ``bounds`` (negative rates, fractional counts), ``consistency`` (an assignment that disagrees with its
  option or with itself, windows out of order).

Costs are recomputed with the *catalog's* prices, so a tampered option price is reported once, as
``catalog-price``, and the evaluation's costs are what the plan really costs. Accuracy is the catalog's
where the option copies it (methods ``reference``/``published``), so an inflated accuracy cannot fake the
target. A plan too malformed to read raises :class:`HetplanError`.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from hetplan import catalog
from hetplan.errors import HetplanError
from hetplan.planner.queueing import latency_quantile

RTOL = 1e-6       # relative tolerance of comparisons (solver feasibility tolerances are ~1e-9)
ATOL_USD = 1e-12  # absolute floor for dollars, for zero costs (a Lambda assignment can cost micro-dollars)
ACCURACY_METHODS = ("reference", "published")  # methods whose accuracy is the model catalog's top-1


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
class Evaluation:
    """The verdict: ``ok`` when nothing is violated; costs and accuracy as recomputed here."""

    ok: bool
    violations: tuple[Violation, ...]
    total_cost_usd: float
    vm_cost_usd: float
    lambda_cost_usd: float
    mean_accuracy: float | None

    @property
    def constraints(self) -> frozenset[str]:
        """Names of the violated constraints."""
        return frozenset(v.constraint for v in self.violations)


@dataclass(frozen=True)
class _Truth:
    """What an option really costs and scores: the catalog's figures where the catalog has them."""

    accuracy: float
    price_per_hour_usd: float = 0.0
    boot_seconds: float = 0.0
    cost_per_request_usd: float = 0.0


@dataclass
class _Tally:
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


def evaluate(plan: dict, instances=None, serverless=None, models=None) -> Evaluation:
    """Re-check ``plan`` (a dict as in ``PLAN_FORMAT.md``).

    ``instances``/``models``: DataFrames from ``catalog.load_*`` or paths; ``serverless``: a
    ``ServerlessPricing`` or a path. ``None``: the file the plan's ``inputs`` names if it exists, else the
    shipped catalog; either way checked against the digest the plan recorded.
    """
    _check_shape(plan)
    out: list[Violation] = []
    limits = plan.get("limits") or {}
    instances, serverless, models = _catalogs(plan, instances, serverless, models, out)
    options = {o["option"]: o for o in plan["options"]}
    truth = {n: _check_option(o, plan["targets"], instances, serverless, models, out) for n, o in options.items()}
    tally = _Tally(pricing=serverless)
    _check_windows(plan, options, truth, tally, out)
    _check_summary(plan, options, tally, out)
    total = tally.vm_usd + tally.lambda_usd
    budget = limits.get("budget_usd")
    if budget is not None and total > budget * (1 + RTOL) + ATOL_USD:
        out.append(Violation("budget", None, None, f"total cost ${total:.6f} exceeds the budget ${budget:g}"))
    return Evaluation(ok=not out, violations=tuple(out), total_cost_usd=total, vm_cost_usd=tally.vm_usd,
                      lambda_cost_usd=tally.lambda_usd,
                      mean_accuracy=tally.correct / tally.served if tally.served else None)


# --- reading -------------------------------------------------------------------------------------------------

_NUMBER = (int, float)
_OPTION = {"option": str, "model": str, "platform": str, "memory_mb": _NUMBER, "accuracy": _NUMBER,
           "latency_ms": _NUMBER, "method": str}
_VM_OPTION = {"instance_type": str, "servers": _NUMBER, "throughput_rps": _NUMBER, "utilization_cap": _NUMBER,
              "capacity_rps": _NUMBER, "price_per_hour_usd": _NUMBER, "boot_seconds": _NUMBER}
_WINDOW = {"index": int, "start_s": _NUMBER, "end_s": _NUMBER, "demand_rps": _NUMBER, "mean_rps": _NUMBER,
           "assignments": list}
_ASSIGNMENT = {"option": str, "count": _NUMBER, "launches": _NUMBER, "rate_rps": _NUMBER, "share": _NUMBER,
               "cost_usd": _NUMBER}


def _require(record, kinds: dict, where: str) -> None:
    where = f"plan {where}".rstrip()
    if not isinstance(record, dict):
        raise HetplanError(f"{where} is not a JSON object (see planner/PLAN_FORMAT.md)")
    for key, kind in kinds.items():
        value = record.get(key)
        if not isinstance(value, kind) or isinstance(value, bool):
            got = "missing" if key not in record else f"{type(value).__name__} {value!r:.30}"
            raise HetplanError(f"{where} '{key}' is {got}: regenerate the plan with hetplan solve")


def _check_shape(plan) -> None:
    """Enough structure to evaluate without crashing; anything subtler is a violation, not an exception."""
    _require(plan, {"schema_version": int, "targets": dict, "options": list, "windows": list, "summary": dict}, "")
    if plan["schema_version"] != 1:
        raise HetplanError(f"plan schema_version {plan['schema_version']} is not 1: this hetplan reads version 1")
    _require(plan["targets"], {"slo_ms": _NUMBER, "percentile": _NUMBER}, "targets")
    for i, o in enumerate(plan["options"]):
        _require(o, _OPTION, f"option #{i}")
        if o["platform"] == "vm":
            _require(o, _VM_OPTION, f"option {o['option']}")
    if not plan["windows"]:
        raise HetplanError("plan has no windows")
    for i, w in enumerate(plan["windows"]):
        _require(w, _WINDOW, f"window #{i}")
        for j, a in enumerate(w["assignments"]):
            _require(a, _ASSIGNMENT, f"window {w['index']} assignment #{j}")


def _catalogs(plan, instances, serverless, models, out):
    inputs = plan.get("inputs") or {}
    architecture = (plan.get("limits") or {}).get("lambda_architecture") or "x86_64"

    def resolve(given, name, default, load):
        if given is not None and not isinstance(given, (str, Path)):
            return given  # already loaded: nothing to compare a digest with
        recorded = inputs.get(name) or {}
        named = Path(recorded["path"]) if recorded.get("path") else None
        path = Path(given) if given is not None else named if named and named.is_file() else default
        digest = recorded.get("digest")
        if digest and catalog.file_digest(path) != digest:
            lost = f" ({named} is gone)" if given is None and named and not named.is_file() else ""
            out.append(Violation("inputs", None, None, f"the {name} catalog {path}{lost} differs from the file the plan "
                                                       f"was made with ({digest[:15]}…): results use {path}"))
        return load(path)

    return (resolve(instances, "instances", catalog.DEFAULT_INSTANCES, catalog.load_instances),
            resolve(serverless, "serverless", catalog.DEFAULT_SERVERLESS, lambda p: catalog.load_serverless(p, architecture)),
            resolve(models, "models", catalog.DEFAULT_MODELS, catalog.load_models))


# --- options -------------------------------------------------------------------------------------------------

def _close(a: float, b: float, atol: float = 0.0) -> bool:
    return abs(a - b) <= RTOL * max(abs(a), abs(b)) + atol


def _check_option(o: dict, targets: dict, instances, serverless, models, out: list) -> _Truth:
    name = o["option"]

    def bad(constraint, message):
        out.append(Violation(constraint, None, name, message))

    accuracy = float(o["accuracy"])
    # Measured accuracy (the profiler's, or corrected by feedback) is the profile's, not the catalog's.
    if o.get("accuracy_source", "published") == "published" and o["method"] in ACCURACY_METHODS:
        if o["model"] not in models.index:
            bad("catalog-accuracy", f"model '{o['model']}' is not in the model catalog")
        else:
            published = float(models.loc[o["model"], "top1"]) / 100.0
            if not _close(accuracy, published, 1e-9):
                bad("catalog-accuracy", f"accuracy {accuracy:.4f} differs from the catalog's top-1 {published:.4f}")
            accuracy = published
    if o["latency_ms"] > targets["slo_ms"] * (1 + RTOL):
        bad("latency-slo", f"latency {o['latency_ms']:g} ms alone exceeds the SLO {targets['slo_ms']:g} ms")
    if o["platform"] == "vm":
        return _check_vm_option(o, targets, instances, accuracy, bad)
    if o["platform"] == "lambda":
        return _check_lambda_option(o, serverless, accuracy, bad)
    bad("consistency", f"unknown platform '{o['platform']}' (vm or lambda)")
    return _Truth(accuracy)


def _check_vm_option(o: dict, targets: dict, instances, accuracy: float, bad) -> _Truth:
    kind, planned_boot = o["instance_type"], float(o["boot_seconds"])
    if kind not in instances.index:
        bad("catalog-price", f"instance type '{kind}' is not in the instance catalog")
        return _Truth(accuracy, float(o["price_per_hour_usd"]), planned_boot)
    row = instances.loc[kind]
    price, boot = float(row.price_per_hour_usd), float(row.boot_seconds)
    if not _close(float(o["price_per_hour_usd"]), price):
        bad("catalog-price", f"price ${o['price_per_hour_usd']:g}/h differs from the catalog's ${price:g}/h for {kind}")
    # An option's boot is the instance's boot plus the model's load time, which plans record only where profiled.
    if o.get("load_time_ms") is not None:
        boot += float(o["load_time_ms"]) / 1000.0
        if not _close(planned_boot, boot):
            bad("catalog-price", f"boot {planned_boot:g} s differs from the catalog's {boot:g} s (boot + model load)")
    elif planned_boot < boot * (1 - RTOL):
        bad("catalog-price", f"boot {planned_boot:g} s is shorter than the catalog's {boot:g} s for {kind}")
    else:
        boot = planned_boot
    memory = float(row.memory_gib) * 1024
    if not _close(float(o["memory_mb"]), memory):
        bad("memory", f"memory {o['memory_mb']:g} MB differs from {kind}'s {memory:g} MB")
    cap, throughput, capacity = float(o["utilization_cap"]), float(o["throughput_rps"]), float(o["capacity_rps"])
    if capacity > throughput * cap * (1 + RTOL):
        bad("utilization-cap", f"capacity {capacity:.4g} req/s exceeds throughput {throughput:.4g} × cap {cap:.4g}")
    ceiling = targets.get("max_utilization")
    if ceiling is not None and cap > float(ceiling) * (1 + RTOL):
        bad("utilization-cap", f"utilization cap {cap:.4g} exceeds --max-utilization {ceiling:g}")
    percentile = float(targets["percentile"])
    at_cap = latency_quantile(o["latency_ms"] / 1000, _servers(o), cap, percentile) * 1000
    if at_cap > targets["slo_ms"] * (1 + RTOL):
        bad("utilization-cap", f"at its cap {cap:.4g} the p{percentile * 100:g} latency is {at_cap:.1f} ms, "
                               f"above the SLO {targets['slo_ms']:g} ms")
    return _Truth(accuracy, price, boot)


def _servers(o: dict) -> int:
    return max(1, int(round(float(o["servers"]))))


def _check_lambda_option(o: dict, serverless, accuracy: float, bad) -> _Truth:
    memory = float(o["memory_mb"])
    if not serverless.memory_min_mb <= memory <= serverless.memory_max_mb:
        bad("memory", f"Lambda memory {memory:g} MB is outside {serverless.memory_min_mb:g}..{serverless.memory_max_mb:g} MB")
    duration = float(o["latency_ms"] if o.get("duration_ms") is None else o["duration_ms"])
    per_request = serverless.cost_per_request(duration, memory)
    planned = o.get("cost_per_request_usd")
    if not isinstance(planned, _NUMBER) or not _close(float(planned), per_request):
        bad("catalog-price", f"cost per request {planned} differs from the catalog's ${per_request:.6g} "
                             f"({duration:g} ms at {memory:g} MB, {serverless.architecture})")
    return _Truth(accuracy, cost_per_request_usd=per_request)


# --- windows -------------------------------------------------------------------------------------------------

def _check_windows(plan: dict, options: dict, truth: dict, tally: _Tally, out: list) -> None:
    limits, windows = plan.get("limits") or {}, plan["windows"]
    initial = limits.get("initial_vms") or {}
    previous = {n: float(initial.get(n, 0)) for n, o in options.items() if o["platform"] == "vm"}
    now = limits.get("horizon_start_s")
    now = float(windows[0]["start_s"]) if now is None else float(now)
    for position, w in enumerate(windows):
        t = w["index"]
        if t != position:
            out.append(Violation("consistency", t, None, f"window index {t} at position {position}: windows must be in order"))
        if w["end_s"] <= w["start_s"] or (position and not _close(w["start_s"], windows[position - 1]["end_s"])):
            out.append(Violation("consistency", t, None, f"window [{w['start_s']}, {w['end_s']}) does not follow the previous one"))
        fleet, lambda_usd = _check_window(w, t, plan, options, truth, tally, out)
        lambda_usd += _check_runtime_costs(w, t, plan, options, truth, tally, out)
        vm_usd = _check_fleet(w, t, fleet, previous, now - float(w["start_s"]), truth, out)
        tally.vm_usd += vm_usd
        if w.get("cost_usd") is not None:
            _same_cost(w["cost_usd"], vm_usd + lambda_usd, t, None, out, "window cost")


def _check_runtime_costs(w: dict, t: int, plan: dict, options: dict, truth: dict, tally: _Tally, out: list) -> float:
    """The window's overflow and warm-pool costs (``planner/runtime.py``) from the catalog; returns them."""
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
    if not isinstance(reported, _NUMBER) or not _close(float(reported), recomputed, ATOL_USD):
        out.append(Violation("cost", t, name, f"{what} ${reported} differs from the recomputed ${recomputed:.9g}"))


def _check_window(w: dict, t: int, plan: dict, options: dict, truth: dict, tally: _Tally, out: list):
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
        if isinstance(a.get("memory_mb"), _NUMBER) and not _close(float(a["memory_mb"]), float(o["memory_mb"])):
            bad("memory", name, f"assignment memory {a['memory_mb']:g} MB differs from the option's {o['memory_mb']:g} MB")
        rate, count, launches = float(a["rate_rps"]), float(a["count"]), float(a["launches"])
        if rate < 0 or count < 0 or launches < 0 or count != round(count) or launches != round(launches):
            bad("bounds", name, f"rate {rate:g}, count {count:g}, launches {launches:g}: need rate ≥ 0, whole counts ≥ 0")
        share = rate / demand if demand > 0 else 0.0  # traffic is routed by rate / demand
        if not _close(float(a["share"]), share, 1e-9):
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
        if o["platform"] == "vm" and star in truth and demand > 0 and isinstance(a.get("overflow_rps"), _NUMBER):
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
            if isinstance(reported, _NUMBER) and not _close(float(reported), float(o["latency_ms"])):
                bad("consistency", name, f"expected_latency_ms {reported:g} is not the option's latency {o['latency_ms']:g}")
            concurrency += rate * float(o["latency_ms"]) / 1000  # Little's law
            cost = served * truth[name].cost_per_request_usd
            _same_cost(a["cost_usd"], cost, t, name, out)
            lambda_usd += cost
            tally.lambda_served += served
    tally.lambda_usd += lambda_usd
    if not _close(rates, demand, 1e-9):
        bad("demand-window", None, f"rates sum to {rates:.6g} req/s, but the demand is {demand:.6g} req/s")
    if demand > 0 and not _close(shares, 1.0, 1e-9):
        bad("demand-window", None, f"routing shares sum to {shares:.6g}, not 1")
    target = targets.get("mean_accuracy")
    if target is not None and demand > 0 and accuracy < float(target) - 1e-6:
        bad("accuracy-window", None, f"traffic-weighted accuracy {accuracy:.4f} is below the target {float(target):.4f}")
    reported = w.get("mean_accuracy")
    if isinstance(reported, _NUMBER) and demand > 0 and not _close(float(reported), accuracy, 1e-9):
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
    if isinstance(a.get("capacity_rps"), _NUMBER):  # the sizing rule's per-window capacity (planner/sizing.py)
        capacity = float(a["capacity_rps"])
        ceiling = float(targets.get("max_utilization") or 1.0)
        if capacity > throughput * ceiling * (1 + RTOL):
            bad("utilization-cap", name, f"window capacity {capacity:.4g} req/s exceeds throughput {throughput:.4g} × "
                                         f"--max-utilization {ceiling:g}")
    if rate > count * capacity * (1 + RTOL) + 1e-9:
        bad("capacity-vm", name, f"rate {rate:.4g} req/s exceeds {count:g} VM(s) × {capacity:.4g} req/s")
    if count <= 0:
        return
    utilization = rate / (count * throughput)
    if isinstance(a.get("utilization"), _NUMBER) and not _close(float(a["utilization"]), utilization, 1e-9):
        bad("consistency", name, f"utilization {a['utilization']:.6g} is not rate/(count × throughput) = {utilization:.6g}")
    slo_ms, percentile = float(targets["slo_ms"]), float(targets["percentile"])
    latency = latency_quantile(float(o["latency_ms"]) / 1000, _servers(o), utilization, percentile) * 1000
    if latency > slo_ms * (1 + RTOL) and not overflow:  # with overflow the router diverts what would be late
        shown = "unbounded (utilization ≥ 1)" if math.isinf(latency) else f"{latency:.1f} ms"
        bad("latency-slo", name, f"p{percentile * 100:g} latency at utilization {utilization:.3f} is {shown}, SLO {slo_ms:g} ms")
    reported = a.get("expected_latency_ms")
    if isinstance(reported, _NUMBER) and math.isfinite(latency) and not _close(float(reported), latency, 1e-6):
        bad("consistency", name, f"expected_latency_ms {reported:.6g} differs from the recomputed {latency:.6g}")


# --- summary -------------------------------------------------------------------------------------------------

def _check_summary(plan: dict, options: dict, tally: _Tally, out: list) -> None:
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
            isinstance(reported, _NUMBER) and value is not None and _close(float(reported), value, 1e-9))
        if not same:
            out.append(Violation("summary", None, None, f"summary {key} {reported} differs from the recomputed {value}"))
    if "vm_hours" in s:
        hours = {k: v for k, v in tally.vm_hours.items() if v > 0}
        reported = {k: float(v) for k, v in (s["vm_hours"] or {}).items() if float(v) > 0}
        if set(hours) != set(reported) or any(not _close(reported[k], hours[k], 1e-9) for k in hours):
            out.append(Violation("summary", None, None, f"summary vm_hours {reported} differs from the recomputed {hours}"))
    if "extrapolated_options_used" in s:
        used = sorted(n for n in tally.used if options[n]["method"] in ("extrapolated", "scaled"))
        if sorted(s["extrapolated_options_used"] or []) != used:
            out.append(Violation("summary", None, None, f"summary extrapolated_options_used "
                                                        f"{s['extrapolated_options_used']} should be {used}"))
