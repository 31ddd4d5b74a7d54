"""What ``hetplan deploy`` prints: the changes (a preview or what was done) and, with ``--json``, every resource's
ARN and every timed action for other scripts."""

from __future__ import annotations

import dataclasses

STYLES = {"create": "green", "update": "yellow", "delete": "red"}


def show_changes(out, prepared, preview: bool) -> None:
    title = (f"{'Will change' if preview else 'Changed'}: deployment {prepared.name} (plan {prepared.digest}, "
             f"region {prepared.clients.region})")
    rows = [[f"[{STYLES[c.action]}]{c.action}[/]", c.kind, c.key, c.detail] for c in prepared.changes]
    out.table(title, ["change", "kind", "resource", "what"], rows, left=["change", "kind", "resource", "what"])
    if preview and prepared.window is not None and prepared.desired is not None and len(prepared.desired.actions):
        out.note(f"The load balancer gets the weights of window {prepared.window}; later windows' weights are applied by "
                 "hetplan deploy PLAN --apply-window now (README: Deploy).")


def deploy_json(prepared, status: str, done: list[str]) -> dict:
    ctx = prepared.context
    if prepared.desired is not None:
        resources = [{"kind": r.kind, "resource": r.key, "name": r.aws_name, "arn": ctx.arns.get((r.kind, r.key))
                      or (prepared.found[(r.kind, r.key)].arn if (r.kind, r.key) in prepared.found else None)}
                     for r in prepared.desired.resources]
        actions = [dataclasses.asdict(a) for a in prepared.desired.actions]
    else:
        resources = [{"kind": f.kind, "resource": f.key, "name": f.aws_name, "arn": f.arn} for f in prepared.found.values()]
        actions = []
    return {"deployment": prepared.name, "plan_hash": prepared.digest, "region": prepared.clients.region,
            "endpoint_url": prepared.clients.endpoint_url, "status": status, "route_window": prepared.window,
            "changes": [{"change": c.action, "kind": c.kind, "resource": c.key, "what": c.detail} for c in prepared.changes],
            "done": done, "resources": resources, "actions": actions}
