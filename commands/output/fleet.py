"""A fleet plan's summary as tables: cost per service, the bound and gap, the shared limits that bind."""

from __future__ import annotations


def show_fleet(out, summary: dict) -> None:
    rows = [[s["name"], f"${s['milp_cost_usd']:.4f}", f"${s['total_cost_usd']:.4f}", str(s["windows"]), s["plan"]]
            for s in summary["services"]]
    out.table("Fleet plan: cost per service", ["service", "MILP cost", "plan total", "windows", "plan"], rows,
              left=["service", "plan"])
    out.pairs("Fleet", [
        ("method", summary["method"]),
        ("MILP cost", f"${summary['milp_cost_usd']:.4f}"),
        ("lower bound", f"${summary['bound_usd']:.4f}"),
        ("gap", f"{summary['gap'] * 100:.2f}%"),
        ("rounds", str(summary["iterations"])),
        ("plans' total", f"${summary['total_cost_usd']:.4f}"),
        ("binding limits", ", ".join(summary["binding"]) or "none"),
    ])
    busiest = {}
    for row in summary["limits"]:
        family = row["row"].split("[")[0] + ("" if "," not in row["row"] else ":" + row["row"].split(",")[1][:-1])
        if row["limit"] > 0 and row["used"] / row["limit"] > busiest.get(family, (0, None))[0]:
            busiest[family] = (row["used"] / row["limit"], row)
    out.table("Shared limits at their busiest window", ["limit", "window row", "used", "limit", "use"],
              [[name, row["row"], f"{row['used']:.4g}", f"{row['limit']:.4g}", f"{share * 100:.1f}%"]
               for name, (share, row) in sorted(busiest.items())], left=["limit", "window row"])


def show_fleet_check(out, check) -> None:
    rows = [[name, "ok" if e.ok else f"[red]{len(e.violations)} violations[/]", f"${e.total_cost_usd:.4f}"]
            for name, e in check.services.items()]
    out.table("Fleet check: each service's plan alone", ["service", "check", "recomputed cost"], rows, left=["service", "check"])
    if check.shared:
        out.table("Shared limits broken", ["constraint", "window", "what"],
                  [[v.constraint, "–" if v.window is None else str(v.window), v.message] for v in check.shared],
                  left=["constraint", "what"])
    out.note("fleet ok: every plan passes, and together they keep every shared limit in every window" if check.ok
             else "fleet check failed")
