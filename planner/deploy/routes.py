"""The plan's time series as AWS sees them: scheduled capacity per group and alias, and route weights per window."""

from __future__ import annotations

from hetplan.planner.deploy.steps import (DEFAULT_ROUTE, MAX_FORWARD_GROUPS, MAX_GROUP_ACTIONS, MAX_TARGET_ACTIONS, Action,
                                            DeployError, Timeline, apportion, capacity_steps, iso)


def action_name(key: str, moment) -> str:
    """``<resource>-<UTC time>``: named by time, so a new plan that keeps a step keeps its action. The resource is
    in the name too: AWS scopes names per group, but moto's server keeps one namespace for all groups."""
    return f"{key}-" + iso(moment).replace("-", "").replace(":", "")


def schedules(plan: dict, options: list[dict], keys: dict[str, str], timeline: Timeline, now) -> tuple[dict, list[Action]]:
    """Per option key: ``max_size``, ``desired_now`` (the value already due at ``now``) and ``schedule`` (action
    name → value for each later change). VMs: the count of each window from start − boot to its end (boot leads
    overlap, so :func:`capacity_steps` takes the larger). Lambda: the window's warm pool, from its start."""
    per_window = {o["option"]: [] for o in options}
    for w in plan["windows"]:
        start, end = float(w["start_s"]), float(w["end_s"])
        for a in w["assignments"]:
            if a["option"] in per_window and a["platform"] == "vm" and a["count"] > 0:
                per_window[a["option"]].append((start, end, int(a["count"]), int(w["index"])))
        for option, n in (w.get("warm_pool") or {}).items():
            if option in per_window and n > 0:
                per_window[option].append((start, end, int(n), int(w["index"])))
    out, actions = {}, []
    for o in options:
        lead = float(o.get("boot_seconds") or 0) if o["platform"] == "vm" else 0.0
        spans = [(a - lead, b, n) for a, b, n, _ in per_window[o["option"]]]
        key, what = keys[o["option"]], ("desired-capacity" if o["platform"] == "vm" else "provisioned-concurrency")
        desired_now, schedule = 0, {}
        for t, value in capacity_steps(spans):
            moment = timeline.wall(t)
            if moment <= now:
                desired_now = value
            else:
                schedule[action_name(key, moment)] = value
            window = next((i for a, b, _, i in per_window[o["option"]] if t < b), int(plan["windows"][-1]["index"]))
            actions.append(Action(iso(moment), window, key, what, value))
        quota = MAX_GROUP_ACTIONS if o["platform"] == "vm" else MAX_TARGET_ACTIONS
        if len(schedule) > quota:
            raise DeployError(f"{key} needs {len(schedule)} scheduled actions, over AWS's quota of {quota}: plan a "
                              "shorter horizon (hetplan solve --hours) and deploy it in parts")
        out[key] = {"max_size": max((n for _, _, n in spans), default=0), "desired_now": desired_now, "schedule": schedule}
    return out, actions


def window_routes(window: dict, options: list[dict], keys: dict[str, str]) -> dict[str, dict[str, int]]:
    """The window's weights: the default route splits all traffic by the plan's shares; ``/<model>/*`` splits a
    model's own traffic among its options. A model without traffic in the window keeps a route to its Lambda
    options (or all its options) in equal parts, so a client that names it is still served."""
    share = {a["option"]: float(a["share"] or 0) for a in window["assignments"]}
    routes = {DEFAULT_ROUTE: apportion({keys[o["option"]]: share.get(o["option"], 0.0) for o in options})}
    for model in sorted({o["model"] for o in options}):
        mine = [o for o in options if o["model"] == model]
        weights = apportion({keys[o["option"]]: share.get(o["option"], 0.0) for o in mine})
        if not weights:
            fallback = [o for o in mine if o["platform"] == "lambda"] or mine
            weights = apportion({keys[o["option"]]: 1.0 for o in fallback})
        routes[f"/{model}/*"] = weights
    for path, weights in routes.items():
        if len(weights) > MAX_FORWARD_GROUPS:
            raise DeployError(f"window {window['index']} routes {path} to {len(weights)} target groups; an ALB forward "
                              f"action takes at most {MAX_FORWARD_GROUPS}: plan with fewer options (--models or --instance-types)")
    return routes


def route_specs(plan: dict, options: list[dict], keys: dict[str, str], timeline: Timeline,
                route_window: int) -> tuple[dict, list[Action]]:
    """The routes of ``route_window`` (what the load balancer gets now) and a weights action per later change."""
    actions, previous, current = [], None, None
    for w in plan["windows"]:
        routes = window_routes(w, options, keys)  # every window is checked against the ALB limit before deploying
        if int(w["index"]) == route_window:
            current = routes
        if routes != previous:
            actions.append(Action(iso(timeline.wall(float(w["start_s"]))), int(w["index"]), "load-balancer", "weights", routes))
            previous = routes
    return current, actions
