#!/usr/bin/env python3
"""Turn a hetplan plan into the AWS actions that carry it out, window by window (a dry run).

    python examples/deploy.py plan.json           # the commands, as text
    python examples/deploy.py plan.json --json    # the same actions as JSON, for your own tooling

One Auto Scaling group per VM option (``hetplan-<model>-<instance type>``) and one Lambda function per
Lambda option (``hetplan-<model>-<MB>mb``: a function has one memory size, and a plan may serve a model
at two sizes at once). Per window, only what changes is printed:

- ``aws autoscaling set-desired-capacity``: scale-out ``boot_seconds`` before the window starts (the plan
  pays for that boot), scale-in when it starts;
- ``aws lambda update-function-configuration --memory-size``: once, before a function first gets traffic;
- ``route``: the traffic weights (the plan's shares) for your router, whenever they change.

Times are seconds of the trace the plan was made for. Only the standard library is used. Nothing is ever
sent to AWS: ``--apply`` is refused unless boto3 is installed and ``--yes`` is given, and even then this
example only prints, because it carries no AWS client code and no credentials.
"""

from __future__ import annotations

import argparse
import bisect
import json
import re
import sys

EXIT_BAD_INPUT = 2


class PlanError(Exception):
    """The plan cannot be deployed: the message says what is wrong, on one line."""


# --- reading the plan ----------------------------------------------------------------------------------------

def _need(record, key, kinds, where):
    if not isinstance(record, dict) or key not in record:
        raise PlanError(f"{where} lacks '{key}'")
    value = record[key]
    if not isinstance(value, kinds) or isinstance(value, bool):
        names = "/".join(k.__name__ for k in (kinds if isinstance(kinds, tuple) else (kinds,)))
        raise PlanError(f"{where} '{key}' must be {names}, got {json.dumps(value)[:40]}")
    return value


NUMBER = (int, float)


def read_plan(path: str) -> dict:
    """The plan, checked for everything this script reads (PLAN_FORMAT.md)."""
    try:
        with open(path, encoding="utf-8") as handle:
            plan = json.load(handle)
    except OSError as exc:
        raise PlanError(f"cannot read {path}: {exc.strerror}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise PlanError(f"{path} is not JSON ({exc})") from None
    if not isinstance(plan, dict) or plan.get("kind") != "hetplan.plan":
        raise PlanError(f"{path} is not a hetplan plan (no \"kind\": \"hetplan.plan\")")
    if plan.get("schema_version") != 1:
        raise PlanError(f"{path} has schema_version {plan.get('schema_version')!r}; this script reads version 1")
    options = {}
    for i, o in enumerate(_need(plan, "options", list, "plan")):
        where = f"option #{i}"
        name = _need(o, "option", str, where)
        platform = _need(o, "platform", str, where)
        _need(o, "model", str, where)
        _need(o, "memory_mb", NUMBER, where)
        if platform == "vm":
            _need(o, "instance_type", str, where)
            _need(o, "boot_seconds", NUMBER, where)
        elif platform != "lambda":
            raise PlanError(f"{where} has platform '{platform}'; expected vm or lambda")
        options[name] = o
    windows = _need(plan, "windows", list, "plan")
    if not windows:
        raise PlanError("plan has no windows")
    for i, w in enumerate(windows):
        where = f"window #{i}"
        if _need(w, "index", int, where) != i:
            raise PlanError(f"{where} has index {w['index']}; windows must be in order from 0")
        for key in ("start_s", "end_s", "demand_rps"):
            _need(w, key, NUMBER, where)
        for j, a in enumerate(_need(w, "assignments", list, where)):
            at = f"window {i} assignment #{j}"
            if _need(a, "option", str, at) not in options:
                raise PlanError(f"{at} names option '{a['option']}', which is not in the plan's options")
            if _need(a, "count", int, at) < 0:
                raise PlanError(f"{at} has a negative count")
            _need(a, "share", NUMBER, at)
    return plan


# --- actions ---------------------------------------------------------------------------------------------------

def asg_name(option: dict, prefix: str) -> str:
    return f"{prefix}-{option['model']}-{option['instance_type']}"


def function_name(option: dict, prefix: str) -> str:
    name = f"{prefix}-{option['model']}-{option['memory_mb']:g}mb"
    return re.sub(r"[^A-Za-z0-9_-]", "-", name)[:64]  # Lambda names allow letters, digits, - and _ only


def target_name(option: dict, prefix: str) -> str:
    return asg_name(option, prefix) if option["platform"] == "vm" else function_name(option, prefix)


def plan_actions(plan: dict, prefix: str = "hetplan") -> list[dict]:
    """Every action, in time order: ``{"window", "at_s", "kind": asg|lambda|route, ...}``."""
    options, windows = {o["option"]: o for o in plan["options"]}, plan["windows"]
    counts = [{a["option"]: a["count"] for a in w["assignments"]} for w in windows]
    initial = (plan.get("limits") or {}).get("initial_vms") or {}
    actions = []
    for name, o in options.items():
        if o["platform"] == "vm":
            actions += _asg_actions(o, windows, [c.get(name, 0) for c in counts], int(initial.get(name, 0)), prefix)
    configured, previous = set(), None
    for w in windows:
        weights = {}
        for a in w["assignments"]:
            o = options[a["option"]]
            target = target_name(o, prefix)
            weights[target] = weights.get(target, 0.0) + a["share"]
            if o["platform"] == "lambda" and a["share"] > 0 and target not in configured:
                configured.add(target)
                actions.append({"window": w["index"], "at_s": w["start_s"], "kind": "lambda", "name": target,
                                "model": o["model"], "memory_mb": o["memory_mb"],
                                "command": f"aws lambda update-function-configuration --function-name {target} "
                                           f"--memory-size {o['memory_mb']:g}"})
        weights = {k: v for k, v in sorted(weights.items()) if v > 0}
        rounded = {k: round(v, 6) for k, v in weights.items()}
        if rounded != previous:
            actions.append({"window": w["index"], "at_s": w["start_s"], "kind": "route", "weights": weights,
                            "command": "route " + (" ".join(f"{k}={v:.6f}" for k, v in weights.items()) or "(no traffic)")})
            previous = rounded
    order = {"asg": 0, "lambda": 1, "route": 2}  # capacity first, then traffic
    return sorted(actions, key=lambda a: (a["at_s"], order[a["kind"]], a.get("name", "")))


def _asg_actions(option: dict, windows: list, counts: list, initial: int, prefix: str) -> list[dict]:
    """Desired capacity over time: a VM serving window t runs from start_t − boot to end_t, so the group needs
    the largest count among the windows it is booting for or serving (this also orders the steps right when
    boot is longer than a window)."""
    boot, name = float(option["boot_seconds"]), asg_name(option, prefix)
    starts, ends = [w["start_s"] for w in windows], [w["end_s"] for w in windows]
    times = sorted({t for start in starts for t in (start - boot, start)})
    current, out = initial, []
    for at in times:
        # windows t with start_t − boot ≤ at < end_t: ends after `at`, starts at most `boot` after it
        first, last = bisect.bisect_right(ends, at), bisect.bisect_right(starts, at + boot)
        level = max(counts[first:last], default=0)
        if at < windows[0]["start_s"]:
            level = max(level, initial)  # VMs already serving stay until the plan starts
        if level == current:
            continue
        t = next(i for i, w in enumerate(windows) if w["start_s"] >= at)
        why = (f"scale out {current} → {level}, {boot:g} s boot before window {t}" if level > current
               else f"scale in {current} → {level} as window {t} starts")
        out.append({"window": t, "at_s": at, "kind": "asg", "name": name, "model": option["model"],
                    "instance_type": option["instance_type"], "option": option["option"], "desired_capacity": level,
                    "previous_capacity": current, "why": why,
                    "command": f"aws autoscaling set-desired-capacity --auto-scaling-group-name {name} "
                               f"--desired-capacity {level}"})
        current = level
    return out


# --- output ------------------------------------------------------------------------------------------------------

def render(plan: dict, actions: list[dict], path: str) -> str:
    windows = plan["windows"]
    solver = plan.get("solver") or {}
    cost = (plan.get("summary") or {}).get("total_cost_usd")
    lines = [
        "# hetplan deploy: DRY RUN. Nothing below is executed; each line is what a deploy would do, at trace time t.",
        f"# plan {path}: {len(windows)} windows from t={windows[0]['start_s']:g}s to t={windows[-1]['end_s']:g}s"
        + (f", solver {solver['status']}" if solver.get("status") else "")
        + (f", ${cost:.4f}" if isinstance(cost, NUMBER) else ""),
    ]
    by_window = {}
    for a in actions:
        by_window.setdefault(a["window"], []).append(a)
    for t in sorted(by_window):
        w = windows[t]
        lines.append(f"\n== window {t}  [{w['start_s']:g}s, {w['end_s']:g}s)  demand {w['demand_rps']:.1f} req/s")
        for a in by_window[t]:
            note = f"   # {a['why']}" if a["kind"] == "asg" else ""
            lines.append(f"t={a['at_s']:g}s  {a['command']}{note}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Print the AWS actions that deploy a hetplan plan (dry run).")
    parser.add_argument("plan", help="plan JSON written by hetplan solve --out")
    parser.add_argument("--json", action="store_true", help="print the actions as JSON")
    parser.add_argument("--prefix", default="hetplan", help="name prefix of the Auto Scaling groups and functions")
    parser.add_argument("--apply", action="store_true", help="ask to run the actions (refused; see --yes)")
    parser.add_argument("--yes", action="store_true", help="confirm --apply")
    args = parser.parse_args(argv)
    if args.apply:
        try:
            import boto3  # noqa: F401  (only its presence is checked)
        except ImportError:
            return _fail("--apply needs boto3 (pip install boto3), and --yes to confirm; without --apply this is a dry run")
        if not args.yes:
            return _fail("--apply changes live AWS resources: add --yes to confirm (this example still only prints)")
        print("deploy.py: note: --apply --yes accepted, but this example has no AWS client code and no credentials: "
              "it prints the commands and executes nothing", file=sys.stderr)
    try:
        plan = read_plan(args.plan)
    except PlanError as exc:
        return _fail(str(exc))
    actions = plan_actions(plan, args.prefix)
    try:
        if args.json:
            print(json.dumps({"plan": args.plan, "dry_run": True, "actions": actions}, indent=1))
        else:
            sys.stdout.write(render(plan, actions, args.plan))
        sys.stdout.flush()
    except BrokenPipeError:  # piped into head: not an error
        sys.stdout = None
    return 0


def _fail(message: str) -> int:
    print(f"deploy.py: error: {message}", file=sys.stderr)
    return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
