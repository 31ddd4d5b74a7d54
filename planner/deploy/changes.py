"""Desired against observed: the changes, in the order AWS accepts them, then applied or torn down.

Creates and updates run in :data:`KINDS` order (a role before the function that assumes it, target groups before
the groups and rules that point at them, the load balancer last); deletes run after them in reverse order, so the
load balancer stops routing to a target group before it goes, and a group is gone before its target group.
"""

from __future__ import annotations

from dataclasses import dataclass

from hetplan.planner.deploy.aws import aws_errors
from hetplan.planner.deploy.desired import Desired, Resource
from hetplan.planner.deploy.kinds import OPERATIONS, Context
from hetplan.planner.deploy.observed import Found
from hetplan.planner.deploy.steps import KINDS, DeployError

VERBS = {"create": "creating", "update": "updating", "delete": "deleting"}


@dataclass(frozen=True)
class Change:
    action: str  # create | update | delete
    kind: str
    key: str
    detail: str
    resource: Resource | None = None
    found: Found | None = None


def diff(desired: Desired, found: dict[tuple[str, str], Found]) -> list[Change]:
    """What must change for AWS to match ``desired``; an empty list means up to date."""
    changes = []
    for r in desired.resources:
        f = found.get((r.kind, r.key))
        if f is None:
            changes.append(Change("create", r.kind, r.key, describe(r.kind, r.spec), r))
        elif f.spec != r.spec:
            if OPERATIONS[r.kind][1] is None:
                raise DeployError(f"{r.kind} {r.key} exists with other settings ({differences(r.spec, f.spec)}), which AWS "
                                  f"cannot change in place: run hetplan deploy --teardown --name {desired.name} first")
            changes.append(Change("update", r.kind, r.key, differences(r.spec, f.spec), r, f))
    wanted = {(r.kind, r.key) for r in desired.resources}
    changes += [Change("delete", f.kind, f.key, describe(f.kind, f.spec), None, f) for k, f in found.items() if k not in wanted]
    return ordered(changes)


def teardown_changes(found: dict[tuple[str, str], Found]) -> list[Change]:
    return ordered([Change("delete", f.kind, f.key, describe(f.kind, f.spec), None, f) for f in found.values()])


def ordered(changes: list[Change]) -> list[Change]:
    build = sorted((c for c in changes if c.action != "delete"), key=lambda c: (KINDS.index(c.kind), c.key))
    remove = sorted((c for c in changes if c.action == "delete"), key=lambda c: (-KINDS.index(c.kind), c.key))
    return build + remove


def describe(kind: str, spec: dict) -> str:
    """One line about a resource's settings, for the preview."""
    if kind == "group":
        return f"max {spec['max_size']} VMs, {spec['desired_now']} now, {len(spec['schedule'])} scheduled actions"
    if kind == "concurrency":
        return f"up to {max(spec['schedule'].values(), default=0)} warm, {spec['desired_now']} now, {len(spec['schedule'])} scheduled actions"
    if kind == "function":
        return f"{spec['memory_mb']} MB, {spec['architecture']}, model {spec['environment'].get('HETPLAN_MODEL', '?')}"
    if kind == "launch-template":
        return f"{spec['instance_type']}, image {spec['image_id']}"
    if kind == "target-group":
        return f"{spec['target_type']} targets"
    if kind == "load-balancer":
        return "; ".join(f"{path}: " + ", ".join(f"{k} {w}" for k, w in weights.items()) for path, weights in spec["routes"].items())
    return ""


def differences(new: dict, old: dict) -> str:
    """What an update changes: schedules as added/changed/removed actions, routes by path, fields old → new."""
    parts = []
    for field in sorted(set(new) | set(old)):
        a, b = new.get(field), old.get(field)
        if a == b:
            continue
        if field == "schedule":
            a, b = a or {}, b or {}
            parts.append(f"scheduled actions +{len(set(a) - set(b))} ~{sum(1 for k in a if k in b and a[k] != b[k])} "
                         f"-{len(set(b) - set(a))}")
        elif field == "routes":
            paths = sorted(p for p in set(a or {}) | set(b or {}) if (a or {}).get(p) != (b or {}).get(p))
            parts.append("weights of " + ", ".join(paths))
        elif field in ("user_data", "code_sha256", "environment"):
            parts.append(f"{field} changed")
        else:
            parts.append(f"{field} {b} → {a}")
    return "; ".join(parts)


def apply(ctx: Context, changes: list[Change], found: dict[tuple[str, str], Found], progress=None) -> list[str]:
    """Run ``changes`` in order; what was done, as lines ("created group web-resnet-c5.large"). A failure names the
    resource, the AWS error code and what was done before it (:func:`.aws.aws_errors`)."""
    for (kind, key), f in found.items():
        ctx.arns[(kind, key)], ctx.names[(kind, key)] = f.arn, f.aws_name
    done: list[str] = []
    for change in changes:
        create, update, delete = OPERATIONS[change.kind]
        with aws_errors(f"{VERBS[change.action]} {change.kind} {change.key}", done):
            if change.action == "create":
                ctx.names[(change.kind, change.key)] = change.resource.aws_name
                ctx.arns[(change.kind, change.key)] = create(ctx, change.resource)
            elif change.action == "update":
                update(ctx, change.resource, change.found)
            else:
                delete(ctx, change.found)
                ctx.arns.pop((change.kind, change.key), None)
        done.append(f"{change.action}d {change.kind} {change.key}")
        if progress is not None:
            progress.advance()
    return done
