"""Independent re-check of a plan dict (``PLAN_FORMAT.md``) against the catalog.

Nothing here comes from the model, the plan builder or the solver: every constraint of ``model.py`` is
recomputed from the plan's own numbers and the catalog files, so a bug in the MILP or a hand-edited plan
shows up as a :class:`Violation` named after what it breaks:

- model rows: ``demand-window``, ``capacity-vm`` (with the window's own capacity where the sizing rule set
  one), ``batch-fill`` (each VM of a batched option gets the rate that fills its batch), ``launch-vm``, ``no-launch-before-ready``, ``accuracy-window`` (overflowed requests count at the
  overflow option's accuracy), ``overflow-cap``, ``concurrency-window``, ``quota-window``, ``budget``;
- runtime (``planner/optimize/runtime.py``): the overflow and warm-pool costs of every window, from the catalog;
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
where the option copies it (methods ``reference``/``published``/``scaled``), so an inflated accuracy cannot fake the
target. A plan too malformed to read raises :class:`HetplanError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hetplan.errors import HetplanError
from hetplan.planner import catalog
from hetplan.planner.optimize.queueing import latency_quantile
from hetplan.planner.optimize.evaluate_windows import (ATOL_USD, RTOL, NUMBER, Tally, Truth, Violation, check_summary,
                                                       check_windows, close, servers)


ACCURACY_METHODS = ("reference", "published", "scaled", "extrapolated")  # methods whose accuracy is the model catalog's top-1


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
    tally = Tally(pricing=serverless)
    check_windows(plan, options, truth, tally, out)
    check_summary(plan, options, tally, out)
    total = tally.vm_usd + tally.lambda_usd
    budget = limits.get("budget_usd")
    if budget is not None and total > budget * (1 + RTOL) + ATOL_USD:
        out.append(Violation("budget", None, None, f"total cost ${total:.6f} exceeds the budget ${budget:g}"))
    return Evaluation(ok=not out, violations=tuple(out), total_cost_usd=total, vm_cost_usd=tally.vm_usd,
                      lambda_cost_usd=tally.lambda_usd,
                      mean_accuracy=tally.correct / tally.served if tally.served else None)


_OPTION = {"option": str, "model": str, "platform": str, "memory_mb": NUMBER, "accuracy": NUMBER,
           "latency_ms": NUMBER, "method": str}
_VM_OPTION = {"instance_type": str, "servers": NUMBER, "throughput_rps": NUMBER, "utilization_cap": NUMBER,
              "capacity_rps": NUMBER, "price_per_hour_usd": NUMBER, "boot_seconds": NUMBER}
_WINDOW = {"index": int, "start_s": NUMBER, "end_s": NUMBER, "demand_rps": NUMBER, "mean_rps": NUMBER,
           "assignments": list}
_ASSIGNMENT = {"option": str, "count": NUMBER, "launches": NUMBER, "rate_rps": NUMBER, "share": NUMBER,
               "cost_usd": NUMBER}


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
    _require(plan["targets"], {"slo_ms": NUMBER, "percentile": NUMBER}, "targets")
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


def _check_option(o: dict, targets: dict, instances, serverless, models, out: list) -> Truth:
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
            if not close(accuracy, published, 1e-9):
                bad("catalog-accuracy", f"accuracy {accuracy:.4f} differs from the catalog's top-1 {published:.4f}")
            accuracy = published
    if o["latency_ms"] > targets["slo_ms"] * (1 + RTOL):
        bad("latency-slo", f"latency {o['latency_ms']:g} ms alone exceeds the SLO {targets['slo_ms']:g} ms")
    if o["platform"] == "vm":
        return _check_vm_option(o, targets, instances, accuracy, bad)
    if o["platform"] == "lambda":
        return _check_lambda_option(o, serverless, accuracy, bad)
    bad("consistency", f"unknown platform '{o['platform']}' (vm or lambda)")
    return Truth(accuracy)


def _check_vm_option(o: dict, targets: dict, instances, accuracy: float, bad) -> Truth:
    kind, planned_boot = o["instance_type"], float(o["boot_seconds"])
    if kind not in instances.index:
        bad("catalog-price", f"instance type '{kind}' is not in the instance catalog")
        return Truth(accuracy, float(o["price_per_hour_usd"]), planned_boot)
    row = instances.loc[kind]
    price, boot = float(row.price_per_hour_usd), float(row.boot_seconds)
    if not close(float(o["price_per_hour_usd"]), price):
        bad("catalog-price", f"price ${o['price_per_hour_usd']:g}/h differs from the catalog's ${price:g}/h for {kind}")
    # An option's boot is the instance's boot plus the model's load time, which plans record only where profiled.
    if o.get("load_time_ms") is not None:
        boot += float(o["load_time_ms"]) / 1000.0
        if not close(planned_boot, boot):
            bad("catalog-price", f"boot {planned_boot:g} s differs from the catalog's {boot:g} s (boot + model load)")
    elif planned_boot < boot * (1 - RTOL):
        bad("catalog-price", f"boot {planned_boot:g} s is shorter than the catalog's {boot:g} s for {kind}")
    else:
        boot = planned_boot
    memory = float(row.memory_gib) * 1024
    if not close(float(o["memory_mb"]), memory):
        bad("memory", f"memory {o['memory_mb']:g} MB differs from {kind}'s {memory:g} MB")
    cap, throughput, capacity = float(o["utilization_cap"]), float(o["throughput_rps"]), float(o["capacity_rps"])
    if capacity > throughput * cap * (1 + RTOL):
        bad("utilization-cap", f"capacity {capacity:.4g} req/s exceeds throughput {throughput:.4g} × cap {cap:.4g}")
    ceiling = targets.get("max_utilization")
    if ceiling is not None and cap > float(ceiling) * (1 + RTOL):
        bad("utilization-cap", f"utilization cap {cap:.4g} exceeds --max-utilization {ceiling:g}")
    percentile = float(targets["percentile"])
    at_cap = latency_quantile(o["latency_ms"] / 1000, servers(o), cap, percentile) * 1000
    if at_cap > targets["slo_ms"] * (1 + RTOL):
        bad("utilization-cap", f"at its cap {cap:.4g} the p{percentile * 100:g} latency is {at_cap:.1f} ms, "
                               f"above the SLO {targets['slo_ms']:g} ms")
    return Truth(accuracy, price, boot)


def _check_lambda_option(o: dict, serverless, accuracy: float, bad) -> Truth:
    memory = float(o["memory_mb"])
    if not serverless.memory_min_mb <= memory <= serverless.memory_max_mb:
        bad("memory", f"Lambda memory {memory:g} MB is outside {serverless.memory_min_mb:g}..{serverless.memory_max_mb:g} MB")
    duration = float(o["latency_ms"] if o.get("duration_ms") is None else o["duration_ms"])
    per_request = serverless.cost_per_request(duration, memory)
    planned = o.get("cost_per_request_usd")
    if not isinstance(planned, NUMBER) or not close(float(planned), per_request):
        bad("catalog-price", f"cost per request {planned} differs from the catalog's ${per_request:.6g} "
                             f"({duration:g} ms at {memory:g} MB, {serverless.architecture})")
    return Truth(accuracy, cost_per_request_usd=per_request)
