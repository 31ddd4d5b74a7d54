#!/usr/bin/env python3
"""Crontab lines that move a deployment's load balancer weights at the times the plan changes them.

A thin example of ``hetplan deploy --json`` (standard library only): it reads deploy's JSON report and prints one
cron line per weights change, each running ``hetplan deploy PLAN --name NAME --apply-window now --yes``.

    hetplan deploy plan.json --name web --start 2027-01-05T08:00:00Z --dry-run --json > report.json
    python examples/deploy_cron.py report.json plan.json >> my.crontab      # cron runs in UTC here
"""

from __future__ import annotations

import datetime as dt
import json
import shlex
import sys


def cron_lines(report: dict, plan_path: str) -> list[str]:
    """One line per ``weights`` action after the first window (deploy itself sets the first window's weights)."""
    command = f"hetplan deploy {shlex.quote(plan_path)} --name {shlex.quote(report['deployment'])} --apply-window now --yes"
    lines = []
    for action in report["actions"]:
        if action["what"] != "weights" or action["window"] == report.get("route_window"):
            continue
        at = dt.datetime.strptime(action["time"], "%Y-%m-%dT%H:%M:%SZ")
        lines.append(f"{at.minute} {at.hour} {at.day} {at.month} * {command}   # window {action['window']}")
    return lines


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: deploy_cron.py REPORT.json PLAN.json", file=sys.stderr)
        return 2
    try:
        with open(argv[0], encoding="utf-8") as handle:
            report = json.load(handle)
        print("\n".join(cron_lines(report, argv[1])))
    except (OSError, ValueError, KeyError) as exc:
        print(f"deploy_cron.py: error: cannot read the report {argv[0]}: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
