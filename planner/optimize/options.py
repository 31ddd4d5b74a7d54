"""Stage 1: profile + catalog + targets → the usable (model, platform) options, with capacity and cost.

Rules (documented in planner/README.md):
- **Latency**: the requested percentile where the profile has it (``latency_p99_ms`` for 0.99), else the
  nearest lower one that exists; the basis used is kept in ``latency_basis`` and printed with the plan.
- **VM capacity** (requests/s one VM sustains): the measured ``throughput_rps`` where the profile has it;
  otherwise ``min(concurrency, vCPUs) × 1000 / latency`` from the batch-1 row. Slots are a concurrency
  limit, not free parallelism: a CPU-bound model cannot serve faster than its vCPUs allow. The latency
  used is the *busy* latency: the highest batch-1 latency of the model on any measured size of the
  family (larger sizes are faster when idle only because one inference then uses several threads;
  under load each slot has about one vCPU). So capacity grows with vCPUs, never faster. The VM then
  runs at the highest utilization whose queueing keeps the latency percentile inside the SLO
  (``queueing.max_utilization``); ``capacity_rps`` is the throughput at that utilization.
- **Batching** (``batching.py``): one option per (model, instance type, batch size); a batch waits at most
  its dispatch timeout to fill, counted in its latency, and the MILP keeps each VM's rate high enough to fill it.
- **Burstable types** (``burstable`` in the instance catalog: t3, t4g) are excluded with that reason: their
  sustained CPU is a credit-limited share, and the planner never takes them as full-speed CPUs.
- **Scaled VM rows** (``method=scaled``): a (model, CPU instance type) pair without a profile row takes the row of the largest
  measured *smaller* size of the same family, with concurrency scaled by the vCPU ratio and the smaller
  size's latency (bigger sizes are never slower per request on these profiles, so this is conservative).
  In the AWS reference profile caffenet holds 3 / 6 / 12 slots on c5.large / xlarge / 2xlarge: exactly this rule.
- **Lambda**: one request per invocation at the profiled batch-1 latency; usable when that latency fits
  the SLO (cold starts are rare and counted by the replay, not here). Cost per request = request fee +
  billed duration × memory × GB-s price (``ServerlessPricing.cost_per_request``), at the p50 latency.
- **Memory**: a model fits a VM or Lambda size when its peak memory (if profiled) is below the memory
  size; a profile row with an empty latency means it could not run there.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from hetplan.planner.catalog import ServerlessPricing
from hetplan.planner.catalog.coverage import BURSTABLE_REASON, planner_use
from hetplan.errors import HetplanError, did_you_mean
from hetplan.planner.optimize.batching import dispatch_timeout_ms, fill_rate_rps, option_name, prefer_direct
from hetplan.planner.optimize.queueing import max_utilization

_PERCENTILE_COLUMNS = ((0.99, "latency_p99_ms"), (0.90, "latency_p90_ms"), (0.50, "latency_p50_ms"))


@dataclass(frozen=True)
class Targets:
    """What the plan must meet: SLO (seconds) at a latency percentile, and accuracy (fractions of 1)."""

    slo_s: float
    percentile: float = 0.99
    min_accuracy: float | None = None
    mean_accuracy: float | None = None
    models: tuple[str, ...] | None = None
    instance_types: tuple[str, ...] | None = None
    max_utilization: float = 0.95
    max_rate_rps: float | None = None  # the highest rate a window routes (batches that need more never fill)


@dataclass(frozen=True)
class Options:
    """Usable options: ``vm`` (one row per model × instance type) and ``lam`` (model × Lambda memory).

    ``rejected`` lists every option that was not usable, with the reason; ``pruned`` lists usable
    options removed because another option is at least as good in every respect.
    """

    vm: pd.DataFrame
    lam: pd.DataFrame
    rejected: pd.DataFrame
    pruned: pd.DataFrame = field(default_factory=pd.DataFrame)


def latency_for(rows: pd.DataFrame, percentile: float) -> tuple[pd.Series, pd.Series]:
    """Per row: the latency (ms) at the percentile or the nearest lower one that exists, and its basis."""
    latency = pd.Series(np.nan, index=rows.index)
    basis = pd.Series("", index=rows.index, dtype=object)
    for level, column in _PERCENTILE_COLUMNS:
        if level > percentile + 1e-9:
            continue
        take = latency.isna() & rows[column].notna()
        latency[take] = rows.loc[take, column]
        basis[take] = column.removeprefix("latency_").removesuffix("_ms")
    return latency, basis


def extrapolate_family(profile: pd.DataFrame, instances: pd.DataFrame) -> pd.DataFrame:
    """VM rows for larger sizes of a measured CPU family (see module docstring), marked ``method=scaled``.

    GPU types are left alone: their throughput follows the GPU count, not the vCPUs."""
    cpu_types = instances.index[instances.gpu_count == 0]
    vm = profile[(profile.platform == "vm") & profile.instance_type.isin(cpu_types)]
    if vm.empty:
        return profile.iloc[0:0]
    measured = set(zip(vm.model, vm.instance_type))
    new_rows = []
    for (model, family), group in vm.assign(family=vm.instance_type.map(instances.family)).groupby(["model", "family"]):
        sizes = instances[instances.family == family].sort_values("vcpus")
        for target in sizes.itertuples():
            if (model, target.instance_type) in measured:
                continue
            smaller = group[group.vcpus < target.vcpus]
            if smaller.empty:
                continue
            base_type = smaller.loc[smaller.vcpus.idxmax(), "instance_type"]
            base = smaller[smaller.instance_type == base_type]
            ratio = target.vcpus / base.vcpus
            rows = base.assign(
                instance_type=target.instance_type, vcpus=target.vcpus, memory_mb=target.memory_gib * 1024,
                concurrency=np.maximum(1, np.round(base.concurrency * ratio)).astype(int),
                throughput_rps=base.throughput_rps * ratio, method="scaled",
                source=f"scaled from {base_type} (same family: slots and throughput × the catalog's vCPU ratio)",
            )
            new_rows.append(rows.drop(columns="family", errors="ignore"))
    if not new_rows:
        return profile.iloc[0:0]
    return pd.concat(new_rows, ignore_index=True)


def map_local_shapes(profile: pd.DataFrame, instances: pd.DataFrame, family: str) -> pd.DataFrame:
    """Take VM rows measured on local CPU shapes (``local-Nvcpu``) as the ``family`` size with N vCPUs.

    An explicit user assumption (``--local-as-family``): the local CPU stands in for that family's.
    The rows become ``method=scaled`` so plans list them; shapes with no such size are dropped.
    """
    sizes = instances[instances.family == family]
    if sizes.empty:
        raise HetplanError(f"no instance family '{family}' in the instance catalog{did_you_mean(family, instances.family)}")
    by_vcpus = dict(zip(sizes.vcpus, sizes.instance_type))
    local = (profile.platform == "vm") & profile.instance_type.str.match(r"^local-\d+vcpu$")
    mapped = profile.loc[local].assign(instance_type=lambda f: f.vcpus.map(by_vcpus))
    mapped = mapped.dropna(subset=["instance_type"])
    mapped = mapped.assign(memory_mb=mapped.instance_type.map(instances.memory_gib) * 1024, method="scaled",
                           source=profile.loc[mapped.index, "instance_type"] + " measurement taken as " + mapped.instance_type)
    return pd.concat([profile.loc[~local], mapped], ignore_index=True)


def _accuracy(profile_rows: pd.DataFrame, models: pd.DataFrame) -> pd.Series:
    """Top-1 as a fraction: the profile's value where given (measured or published), else the catalog's."""
    from_catalog = profile_rows.model.map(models.top1) if len(models) else pd.Series(np.nan, index=profile_rows.index)
    top1 = profile_rows.accuracy_top1.fillna(from_catalog)
    missing = top1.isna()
    if missing.any():
        name = profile_rows.loc[missing, "model"].iloc[0]
        raise HetplanError(f"no top-1 accuracy for model '{name}': add it to the model catalog (data/models.csv) or the profile")
    return top1 / 100.0


def _check_names(targets: Targets, profile: pd.DataFrame, instances: pd.DataFrame) -> None:
    known_models = set(profile.model)
    for name in targets.models or ():
        if name not in known_models:
            raise HetplanError(f"unknown model '{name}' in --models{did_you_mean(name, known_models)}")
    for name in targets.instance_types or ():
        if name not in instances.index:
            raise HetplanError(f"unknown instance type '{name}'{did_you_mean(name, instances.index)}")


def build_options(profile: pd.DataFrame, instances: pd.DataFrame, serverless: ServerlessPricing,
                  models: pd.DataFrame, targets: Targets) -> Options:
    """All (model, platform) options with latency, capacity and cost; unusable ones in ``rejected``."""
    _check_names(targets, profile, instances)
    profile = pd.concat([profile, extrapolate_family(profile, instances)], ignore_index=True)
    profile = prefer_direct(profile)
    if targets.models:
        profile = profile[profile.model.isin(targets.models)]
    profile = profile.assign(accuracy=_accuracy(profile, models))
    latency, basis = latency_for(profile, targets.percentile)
    profile = profile.assign(latency_ms=latency, latency_basis=basis)
    vm, vm_rejected = _vm_options(profile, instances, targets)
    lam, lam_rejected = _lambda_options(profile, serverless, targets)
    # an empty part would decide nothing about the columns' dtypes (pandas warns that this will change)
    parts = [part for part in (vm_rejected, lam_rejected) if len(part)]
    rejected = pd.concat(parts, ignore_index=True) if parts else vm_rejected
    return Options(vm=vm, lam=lam, rejected=rejected)


def _reject(rows: pd.DataFrame, mask: pd.Series, reason: str, out: list) -> pd.DataFrame:
    if mask.any():
        part = rows[mask]
        out.append(pd.DataFrame({"model": part.model, "platform": part.platform, "config": part.config,
                                 "latency_ms": part.latency_ms, "accuracy": part.accuracy, "reason": reason}))
    return rows[~mask]


def _vm_options(profile: pd.DataFrame, instances: pd.DataFrame, targets: Targets) -> tuple[pd.DataFrame, pd.DataFrame]:
    rows = profile[profile.platform == "vm"].copy()
    rows["config"] = rows.instance_type
    rejected: list = []
    rows = _reject(rows, ~rows.instance_type.isin(instances.index), "instance type not in the instance catalog", rejected)
    if targets.instance_types:
        rows = _reject(rows, ~rows.instance_type.isin(targets.instance_types), "instance type not selected", rejected)
    rows = _reject(rows, rows.latency_ms.isna(), "could not run there (profile has no latency)", rejected)
    rows = _reject(rows, rows.instance_type.map(planner_use(instances)) != "usable", BURSTABLE_REASON, rejected)
    single = rows.batch == 1
    rows.loc[single, "latency_ms"] = np.maximum(rows.latency_ms[single], _busy_latency(rows[single], instances))
    # Batch > 1 is credited only where throughput was measured: the reference batch latencies exceed what the CPUs can do.
    rows = _reject(rows, (rows.batch > 1) & rows.throughput_rps.isna(), "batched row without measured throughput", rejected)
    inst = instances.loc[rows.instance_type]
    rows = _reject(rows, (rows.peak_memory_mb > inst.memory_gib.to_numpy() * 1024).fillna(False).to_numpy(),
                   "model does not fit the VM's memory", rejected)
    if targets.min_accuracy is not None:
        rows = _reject(rows, rows.accuracy < targets.min_accuracy - 1e-12, "accuracy below --min-accuracy", rejected)
    rows = _reject(rows, rows.latency_ms > targets.slo_s * 1000, "latency above the SLO", rejected)
    inst = instances.loc[rows.instance_type]
    calls = np.maximum(1, np.minimum(rows.concurrency.to_numpy(), np.floor(inst.vcpus.to_numpy()))).astype(int)
    servers = calls * rows.batch.to_numpy().astype(int)  # requests held at once: calls × batch (batching.py)
    throughput = rows.throughput_rps.fillna(pd.Series(servers * 1000.0 / rows.latency_ms.to_numpy(), index=rows.index))
    timeout = dispatch_timeout_ms(rows.batch, rows.latency_ms, targets.slo_s)
    fill = fill_rate_rps(rows.batch, timeout)
    rows = rows.assign(servers=servers, throughput_rps=throughput, fill_wait_ms=timeout, min_rate_rps=fill)
    keep = fill <= throughput * targets.max_utilization
    if targets.max_rate_rps is not None:
        keep &= fill <= targets.max_rate_rps
    rows = _reject(rows, ~keep, "batch cannot fill within the SLO at a rate one VM carries or the load brings", rejected)
    inst = instances.loc[rows.instance_type]
    latency = rows.latency_ms + rows.fill_wait_ms  # the call plus the wait for the batch to fill
    utilization = np.array([
        max_utilization(lat / 1000.0, int(c), targets.slo_s, targets.percentile, targets.max_utilization)
        for lat, c in zip(latency, rows.servers)
    ])
    out = pd.DataFrame({
        "model": rows.model, "instance_type": rows.instance_type, "batch": rows.batch,
        "accuracy": rows.accuracy, "price_per_hour_usd": inst.price_per_hour_usd.to_numpy(),
        "boot_seconds": inst.boot_seconds.to_numpy() + rows.load_time_ms.fillna(0).to_numpy() / 1000.0,
        "latency_ms": latency, "latency_basis": rows.latency_basis, "servers": rows.servers,
        "throughput_rps": rows.throughput_rps, "utilization": utilization,
        "capacity_rps": rows.throughput_rps * utilization, "fill_wait_ms": rows.fill_wait_ms,
        "min_rate_rps": rows.min_rate_rps,
        "memory_mb": inst.memory_gib.to_numpy() * 1024, "load_time_ms": rows.load_time_ms,
        "peak_memory_mb": rows.peak_memory_mb, "accuracy_source": rows.accuracy_source, "method": rows.method,
        "family": inst.family.to_numpy(), "arch": inst.arch.to_numpy(),
        "source": rows.source,
    })
    out = _reject(out.assign(platform="vm", config=out.instance_type), out.utilization <= 0,
                  "queueing leaves no headroom under the SLO", rejected)
    out = _reject(out, out.min_rate_rps > out.capacity_rps, "batch cannot fill within the SLO at a rate one VM carries "
                  "under its utilization cap", rejected)
    out = out.sort_values(["model", "price_per_hour_usd", "instance_type", "batch"]).reset_index(drop=True)
    out.insert(0, "option", option_name(out.model, out.instance_type, out.batch))
    return out.drop(columns=["platform", "config"]), _concat(rejected)


def _busy_latency(rows: pd.DataFrame, instances: pd.DataFrame) -> pd.Series:
    """Batch-1 latency of a request on one vCPU: the highest latency of the model on any size of the family.

    Larger sizes show lower idle latency because MXNet spreads one inference over more threads; under
    load each slot has about one vCPU, so the smallest size's latency is the honest service time.
    """
    family = rows.instance_type.map(instances.family)
    single = rows[rows.batch == 1].assign(family=family)
    worst = single.groupby(["model", "family"]).latency_ms.max()
    keys = pd.MultiIndex.from_arrays([rows.model, family])
    return pd.Series(worst.reindex(keys).to_numpy(), index=rows.index).fillna(rows.latency_ms)


def _lambda_options(profile: pd.DataFrame, serverless: ServerlessPricing, targets: Targets) -> tuple[pd.DataFrame, pd.DataFrame]:
    rows = profile[(profile.platform == "lambda") & (profile.batch == 1)].copy()
    rows["config"] = rows.memory_mb.map(lambda mb: f"{mb:g}MB")
    rejected: list = []
    outside = (rows.memory_mb < serverless.memory_min_mb) | (rows.memory_mb > serverless.memory_max_mb)
    rows = _reject(rows, outside, "memory size outside Lambda's range", rejected)
    rows = _reject(rows, rows.latency_ms.isna(), "could not run there (profile has no latency)", rejected)
    rows = _reject(rows, (rows.peak_memory_mb > rows.memory_mb).fillna(False), "model does not fit the memory size", rejected)
    if targets.min_accuracy is not None:
        rows = _reject(rows, rows.accuracy < targets.min_accuracy - 1e-12, "accuracy below --min-accuracy", rejected)
    rows = _reject(rows, rows.latency_ms > targets.slo_s * 1000, "latency above the SLO", rejected)
    duration = rows.latency_p50_ms.fillna(rows.latency_ms)
    out = pd.DataFrame({
        "model": rows.model, "memory_mb": rows.memory_mb, "accuracy": rows.accuracy,
        "latency_ms": rows.latency_ms, "latency_basis": rows.latency_basis, "duration_ms": duration,
        "cost_per_request_usd": [serverless.cost_per_request(d, m) for d, m in zip(duration, rows.memory_mb)],
        "load_time_ms": rows.load_time_ms, "peak_memory_mb": rows.peak_memory_mb,
        "accuracy_source": rows.accuracy_source, "method": rows.method,
    }).sort_values(["model", "memory_mb"]).reset_index(drop=True)
    out.insert(0, "option", "lambda:" + out.model + "@" + out.memory_mb.map(lambda mb: f"{mb:g}MB"))
    return out, _concat(rejected)


def _concat(frames: list) -> pd.DataFrame:
    columns = ["model", "platform", "config", "latency_ms", "accuracy", "reason"]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)


def overflow_option(lam: pd.DataFrame, target: float) -> pd.Series:
    """The Lambda option routers overflow to: the cheapest one meeting the accuracy target, else the most
    accurate (the cheapest among equals). Lambda-only and mark-like use the same rule."""
    if lam.empty:
        raise HetplanError("no Lambda option meets the SLO: lambda-only, mark-like and the overflow need one")
    ok = lam[lam.accuracy >= target - 1e-12]
    if ok.empty:
        return lam.sort_values(["accuracy", "cost_per_request_usd"], ascending=[False, True]).iloc[0]
    return ok.loc[ok.cost_per_request_usd.idxmin()]


def prune_dominated(options: Options, quota_types: frozenset[str] = frozenset(),
                    capacity: np.ndarray | None = None, no_slower: bool = False) -> Options:
    """Drop options another option beats in every respect (exact twins: keep the first, which breaks symmetry).

    VM option *i* is dominated by *r* VMs of option *j* (r = 1, 2, …; any model) when accuracy_j ≥ accuracy_i,
    r·price_j ≤ price_i, r·capacity_j ≥ capacity_i and r·price_j·boot_j ≤ price_i·boot_i and r·ρ_j ≤ ρ_i (the batch-fill rates, ``batching.py``): any plan using *i*
    can use r·*j* instead at no more cost, and the mean accuracy does not fall. Types under a quota never
    dominate (they might not be available). Lambda option *i* is dominated by an option no less accurate,
    no dearer per request and no slower (so it uses no more of the concurrency limit).
    Models below ``--min-accuracy`` were already removed, so the accuracy rule is safe for both targets.
    With per-window capacities (``capacity``, windows × VM options, from ``sizing.window_capacity``) the
    capacity test must hold in every window. ``no_slower``: *j* must also be no slower than *i* (with
    overflow on, a slower model has a smaller wait budget and so overflows more at the same capacity).
    """
    pruned = []
    keep_vm = []
    rows = list(options.vm.itertuples())
    if capacity is None:
        capacity = options.vm.capacity_rps.to_numpy(float)[None, :]
    column = {row.Index: k for k, row in enumerate(rows)}
    for i in rows:
        by = next((j for j in rows if j.Index != i.Index and j.instance_type not in quota_types
                   and (not no_slower or j.latency_ms <= i.latency_ms)
                   and _vm_dominates(j, i, capacity[:, column[j.Index]], capacity[:, column[i.Index]])), None)
        if by is None:
            keep_vm.append(i.Index)
        else:
            pruned.append({"option": i.option, "dominated_by": by.option})
    keep_lam = []
    rows = list(options.lam.itertuples())
    for i in rows:
        by = next((j for j in rows if j.Index != i.Index and _lambda_dominates(j, i)), None)
        if by is None:
            keep_lam.append(i.Index)
        else:
            pruned.append({"option": i.option, "dominated_by": by.option})
    return Options(vm=options.vm.loc[keep_vm].reset_index(drop=True), lam=options.lam.loc[keep_lam].reset_index(drop=True),
                   rejected=options.rejected, pruned=pd.DataFrame(pruned, columns=["option", "dominated_by"]))


def _vm_dominates(j, i, capacity_j: np.ndarray, capacity_i: np.ndarray) -> bool:
    eps = 1e-12
    if j.accuracy < i.accuracy - eps:
        return False
    for r in range(1, 65):
        price, capacity, boot = r * j.price_per_hour_usd, r * capacity_j, r * j.price_per_hour_usd * j.boot_seconds
        if price > i.price_per_hour_usd + eps or r * getattr(j, "min_rate_rps", 0.0) > getattr(i, "min_rate_rps", 0.0) + eps:
            return False  # r VMs of j need r·ρ_j to fill their batches: no more than i's VM guarantees
        if np.all(capacity >= capacity_i - eps) and boot <= i.price_per_hour_usd * i.boot_seconds + eps:
            strictly = (price < i.price_per_hour_usd - eps or np.any(capacity > capacity_i + eps)
                        or boot < i.price_per_hour_usd * i.boot_seconds - eps)
            return strictly or j.Index < i.Index  # exact twins: keep the first (breaks symmetry)
    return False


def _lambda_dominates(j, i) -> bool:
    no_worse = (j.accuracy >= i.accuracy and j.cost_per_request_usd <= i.cost_per_request_usd + 1e-15
                and j.latency_ms <= i.latency_ms)
    strictly = (j.accuracy > i.accuracy or j.cost_per_request_usd < i.cost_per_request_usd - 1e-15
                or j.latency_ms < i.latency_ms)
    return no_worse and (strictly or j.Index < i.Index)
