"""Catalog queries over a profile and the instance catalog (pure pandas).

``planner_use``: whether the planner can use each instance type, with the reason when it cannot.
``coverage``: a model × family table of the methods behind the profile's rows, so a planner sees at a glance
what was measured here, measured elsewhere, published, or derived by a rule.
"""

from __future__ import annotations

import pandas as pd

from hetplan.planner.catalog.schema import METHODS


BURSTABLE_REASON = "burstable type (CPU credits), never taken as a full-speed CPU"


def planner_use(instances: pd.DataFrame) -> pd.Series:
    """Per instance type: "usable", or "excluded: <why>" (burstable types run on CPU credits: a baseline
    share of their vCPUs plus credits earned, never a full-speed CPU the planner could count on)."""
    burstable = instances.burstable if "burstable" in instances else pd.Series(False, index=instances.index)
    return pd.Series([f"excluded: {BURSTABLE_REASON}" if b else "usable" for b in burstable],
                     index=instances.index, name="planner")


def coverage(profile: pd.DataFrame, instances: pd.DataFrame) -> pd.DataFrame:
    """Rows: models; columns: instance families (catalog order) then ``lambda``; cells: the methods of the
    rows there, most direct first (``measured+published``), "not runnable" when no row has a latency, "–" when
    there is no row. Local shapes (``local-Nvcpu``) are shown as the column ``local``."""
    family = profile.instance_type.map(instances.family)
    family = family.where(profile.platform == "vm", "lambda")
    family = family.fillna(profile.instance_type.where(~profile.instance_type.str.startswith("local-"), "local"))
    rows = profile.assign(family=family, ran=profile.latency_p50_ms.notna() | profile.latency_p99_ms.notna())
    order = {m: k for k, m in enumerate(METHODS)}

    def cell(group: pd.DataFrame) -> str:
        ran = group[group.ran]
        if ran.empty:
            return "not runnable"
        return "+".join(sorted(set(ran.method), key=lambda m: order.get(m, len(order))))

    cells = rows.groupby(["model", "family"]).apply(cell, include_groups=False)
    table = cells.unstack("family")
    families = [f for f in dict.fromkeys(instances.family) if f in table.columns]
    others = [c for c in table.columns if c not in families and c != "lambda"]
    columns = families + sorted(others) + (["lambda"] if "lambda" in table.columns else [])
    return table.reindex(columns=columns).fillna("–").reset_index()
