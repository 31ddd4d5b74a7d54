"""What a plan needs on AWS: resources with their specs and the per-window actions (pure; no AWS calls).

A plan's times are seconds of its trace; ``Settings.start`` is the wall time (UTC) of its first window, so trace
second ``t`` happens at ``start + (t - t0)``. Every spec here has the same shape as what :mod:`.observed` reads
back, so comparing the two dicts is the whole diff.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import re
from dataclasses import dataclass

from hetplan.errors import HetplanError
from hetplan.planner.deploy.routes import route_specs, schedules
from hetplan.planner.deploy.steps import ALIAS, KINDS, NAME_RULE, PORT, Action, Timeline, iso, short_name

SAFE_NAME = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

@dataclass(frozen=True)
class Settings:
    """Where and how to deploy: everything :func:`desired_state` needs besides the plan."""

    name: str
    start: dt.datetime  # UTC wall time of the plan's first window
    now: dt.datetime  # actions at or before now are applied at once instead of scheduled
    subnets: tuple[str, ...] = ()
    vpc_id: str | None = None
    image_id: str | None = None
    key_name: str | None = None
    code_sha256: str | None = None  # base64 SHA-256 of the Lambda zip, as Lambda reports it
    runtime: str = "python3.11"
    handler: str = "handler.handler"
    role_arn: str | None = None  # None: deploy makes and owns the role <name>-lambda


@dataclass(frozen=True)
class Resource:
    kind: str
    key: str  # logical name <deployment>-<model>-<option>; the TAG_RESOURCE tag
    aws_name: str  # the name AWS knows it by (shortened where AWS limits names)
    spec: dict


@dataclass(frozen=True)
class Desired:
    name: str
    plan_hash: str
    resources: tuple[Resource, ...]
    actions: tuple[Action, ...]
    route_window: int  # the window whose weights the load balancer gets now


def plan_hash(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()[:12]


def default_name(digest: str) -> str:
    return f"hp-{digest[:8]}"


def check_name(name: str) -> str:
    if not NAME_RULE.match(name):
        raise HetplanError(f"--name '{name}' is not a valid deployment name: use 1-24 lower-case letters, digits and "
                           "hyphens, starting with a letter (it prefixes every AWS name, and load balancer names are short)")
    return name


def option_key(name: str, option: dict) -> str:
    """``<deployment>-<model>-<instance type>[-b<batch>]`` or ``<deployment>-<model>-<MB>mb``."""
    if option["platform"] == "vm":
        batch = int(option.get("batch") or 1)
        tail = f"{option['instance_type']}" + (f"-b{batch}" if batch > 1 else "")
    else:
        tail = f"{int(option['memory_mb'])}mb"
    return re.sub(r"[^A-Za-z0-9_-]", "-", f"{name}-{option['model']}-{tail}")


def used_options(plan: dict) -> list[dict]:
    """The plan's options that deploy must create: VM options with a VM in some window, Lambda options with traffic,
    a warm pool or the overflow role in some window."""
    used = set()
    for w in plan["windows"]:
        used |= {a["option"] for a in w["assignments"] if (a["count"] or 0) > 0 or (a["share"] or 0) > 0}
        used |= {o for o, n in (w.get("warm_pool") or {}).items() if n > 0}
    overflow = ((plan.get("runtime") or {}).get("overflow") or {}).get("option")
    if overflow:
        used.add(overflow)
    return [o for o in plan["options"] if o["option"] in used]


def desired_state(plan: dict, digest: str, settings: Settings) -> Desired:
    """Every resource ``plan`` needs, keyed and specified as :mod:`.observed` reads them back."""
    options = used_options(plan)
    for o in options:  # these go into AWS names and the VMs' boot script: plain names only, whatever the plan says
        for field in ("model", "instance_type"):
            if o.get(field) is not None and not SAFE_NAME.match(str(o[field])):
                raise HetplanError(f"the plan's option {o['option']!r} has {field} {str(o[field])!r}: deploy takes only "
                                   "letters, digits, '.', '_' and '-' there; regenerate the plan with hetplan solve")
    keys = {o["option"]: option_key(settings.name, o) for o in options}
    timeline = Timeline(plan, settings.start)
    resources: list[Resource] = []
    lambdas = [o for o in options if o["platform"] == "lambda"]
    vms = [o for o in options if o["platform"] == "vm"]
    if vms and not settings.image_id:
        raise HetplanError("the plan runs VMs: give --image-id AMI (an image whose hetplan-serve unit starts the model server)")
    if lambdas and not settings.code_sha256:
        raise HetplanError("the plan uses Lambda: give --lambda-zip FILE (the function's deployment package)")
    role = settings.role_arn
    if lambdas and role is None:
        role_key = f"{settings.name}-lambda"
        resources.append(Resource("role", role_key, short_name(role_key, 64, r"A-Za-z0-9+=,.@_-"),
                                  {"trusts": "lambda.amazonaws.com"}))
        role = f"role:{role_key}"  # resolved to its ARN when applied
    arch = (plan.get("limits") or {}).get("lambda_architecture") or "x86_64"
    for o in lambdas:
        key = keys[o["option"]]
        resources.append(Resource("target-group", key, short_name(key, 32), {"target_type": "lambda", "port": None, "vpc": None}))
        resources.append(Resource("function", key, short_name(key, 64, r"A-Za-z0-9_-"), {
            "memory_mb": int(o["memory_mb"]), "architecture": o.get("arch") or arch, "code_sha256": settings.code_sha256,
            "runtime": settings.runtime, "handler": settings.handler, "role": role, "timeout_s": 30,
            "environment": {"HETPLAN_MODEL": str(o["model"]), "HETPLAN_MEMORY_MB": str(int(o["memory_mb"]))}}))
    overflow = (plan.get("runtime") or {}).get("overflow") or {}
    overflow_function = next((r.aws_name for r in resources if r.kind == "function" and r.key == keys.get(overflow.get("option"))), "")
    for o in vms:
        key = keys[o["option"]]
        resources.append(Resource("launch-template", key, short_name(key, 128, r"A-Za-z0-9()./_-"), {
            "image_id": settings.image_id, "instance_type": o["instance_type"], "key_name": settings.key_name,
            "user_data": user_data(settings.name, o, overflow_function, overflow.get("queue_fraction"))}))
        resources.append(Resource("target-group", key, short_name(key, 32),
                                  {"target_type": "instance", "port": PORT, "vpc": settings.vpc_id}))
    sched, actions = schedules(plan, options, keys, timeline, settings.now)
    for o in vms:
        key = keys[o["option"]]
        resources.append(Resource("group", key, short_name(key, 255, r"A-Za-z0-9_.-"), {
            "launch_template": key, "subnets": sorted(settings.subnets), "target_group": key, **sched[key]}))
    for o in lambdas:
        key = keys[o["option"]]
        if sched[key]["max_size"] > 0:  # a warm pool in some window
            resources.append(Resource("concurrency", key, key, {k: sched[key][k] for k in ("desired_now", "schedule")}))
    route_window = timeline.window_at(max(settings.now, settings.start))
    routes, route_actions = route_specs(plan, options, keys, timeline, route_window)
    resources.append(Resource("load-balancer", settings.name, short_name(settings.name, 32), {
        "subnets": sorted(settings.subnets), "start": iso(settings.start), "routes": routes}))
    resources.sort(key=lambda r: (KINDS.index(r.kind), r.key))
    return Desired(settings.name, digest, tuple(resources), tuple(sorted(actions + route_actions, key=lambda a: (a.time, a.resource))),
                   route_window)


def user_data(name: str, option: dict, overflow_function: str, queue_fraction) -> str:
    """The VM's boot script (base64, as EC2 stores it): the model server's settings in /etc/hetplan/serve.env,
    then the AMI's ``hetplan-serve`` unit restarted to read them (the AMI contract, README "Deploy"). It holds no
    plan hash, so a new plan that keeps an option keeps its template."""
    lines = ["#!/bin/bash", f"# hetplan deploy {name}: serve {option['model']} on port {PORT}",
             "mkdir -p /etc/hetplan", "cat > /etc/hetplan/serve.env <<'ENV'",
             f"HETPLAN_MODEL={option['model']}", f"HETPLAN_BATCH={int(option.get('batch') or 1)}",
             f"HETPLAN_FILL_WAIT_MS={float(option.get('fill_wait_ms') or 0):g}", f"HETPLAN_PORT={PORT}",
             f"HETPLAN_OVERFLOW_FUNCTION={overflow_function + ':' + ALIAS if overflow_function else ''}",
             f"HETPLAN_OVERFLOW_QUEUE_FRACTION={'' if queue_fraction is None else f'{float(queue_fraction):g}'}",
             "ENV", "systemctl restart hetplan-serve", ""]
    return base64.b64encode("\n".join(lines).encode()).decode()
