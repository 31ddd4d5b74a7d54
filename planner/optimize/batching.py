"""Batching as a decision: one VM option per (model, instance type, batch size).

A VM that runs batch ``b`` serves ``b`` requests per inference call of latency ``ℓ_b`` (the profile's
latency at that batch). It runs ``c`` calls at once, so it holds ``c·b`` requests, each for ``ℓ_b``, and its
throughput is the measured one at that batch (``c·b·1000/ℓ_b`` where none was measured, batch 1 only).

A request also waits for its batch to fill. The router dispatches a batch when it is full or when its first
request has waited ``τ_b``, the **dispatch timeout**::

    τ_b = (SLO − ℓ_b) / 2   for b > 1;   τ_1 = 0

Half of what the SLO leaves after the call goes to filling, half to queueing: a stated design choice, read
from the SLO and the profile at solve time, not fitted to any trace. A batch fills within ``τ_b`` when each VM
receives at least ``ρ_b = (b − 1) / τ_b`` requests/s, and the MILP asks exactly that (``model.add_batch_fill``)::

    batch-fill[t,o]:  x[t,o] − ρ_o · n[t,o] ≥ 0

Below that rate the batch would leave part-full and the option's throughput would not be reached, so a plan
never counts on it. An option whose ``ρ_b`` exceeds what one VM carries (its capacity) can never fill its batch
within the SLO: it is rejected with that reason.

The option's ``latency_ms`` (what a request sees with no queue) is ``ℓ_b + τ_b``. The replay, the window
sizing and the plan checks use it as the service time: a conservative reading, since the slot is held
only ``ℓ_b`` and the throughput is the measured one.

**Which row, when sources overlap.** A (model, platform, instance type, memory, batch) may come from several
profiles (an AWS reference measurement and a published benchmark of the same type). The planner keeps the row
of the most direct method, in the order of ``METHODS`` (measured, reference, published, scaled); a batched VM
row without a measured throughput, which the planner cannot use, comes after every usable one.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hetplan.planner.catalog.schema import METHODS

_CONFIGURATION = ["model", "platform", "instance_type", "memory_mb", "batch"]


def prefer_direct(profile: pd.DataFrame) -> pd.DataFrame:
    """One row per configuration: the one whose method comes first in ``METHODS`` (ties: the first row)."""
    rank = profile.method.map({m: k for k, m in enumerate(METHODS)}).fillna(len(METHODS))
    # A batched VM row without a measured throughput cannot be used (options.py), so any usable row beats it.
    unusable = (profile.platform == "vm") & (profile.batch > 1) & profile.throughput_rps.isna()
    rank = rank + np.where(unusable, len(METHODS) + 1, 0)
    order = np.lexsort((np.arange(len(profile)), rank.to_numpy()))
    keep = ~profile.iloc[order].duplicated(_CONFIGURATION).to_numpy()
    return profile.iloc[np.sort(order[keep])]


def dispatch_timeout_ms(batch: pd.Series, latency_ms: pd.Series, slo_s: float) -> pd.Series:
    """τ_b in ms: half the SLO's slack after the call for b > 1, 0 for b = 1 (never negative)."""
    slack = np.maximum(slo_s * 1000.0 - latency_ms.to_numpy(float), 0.0)
    return pd.Series(np.where(batch.to_numpy() > 1, slack / 2.0, 0.0), index=batch.index)


def fill_rate_rps(batch: pd.Series, timeout_ms: pd.Series) -> pd.Series:
    """ρ_b: the requests/s one VM must receive for its batch to fill within τ_b (0 for b = 1)."""
    b = batch.to_numpy(float)
    tau = timeout_ms.to_numpy(float) / 1000.0
    rate = np.divide(b - 1.0, tau, out=np.full(len(b), np.inf), where=tau > 0)
    return pd.Series(np.where(b > 1, rate, 0.0), index=batch.index)


def option_name(model: pd.Series, instance_type: pd.Series, batch: pd.Series) -> pd.Series:
    """``vm:<model>@<type>`` for batch 1 (as before batching), ``vm:<model>@<type>/b<batch>`` otherwise."""
    suffix = np.where(batch.to_numpy() > 1, "/b" + batch.astype(str), "")
    return "vm:" + model + "@" + instance_type + suffix
