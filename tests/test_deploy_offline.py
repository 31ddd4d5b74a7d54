"""``hetplan deploy`` without a server: the pure parts (steps, weights, names), the IAM policy against every call
the code makes, and the cron example of ``--json``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def test_steps_take_the_larger_count_where_boot_leads_overlap():
    from hetplan.planner.deploy.steps import capacity_steps

    # windows [0,60) 3 VMs, [60,120) 1, [120,180) 4, boot 100 s: window 3's VMs launch at 20, before window 2 ends
    spans = [(0 - 100, 60, 3), (60 - 100, 120, 1), (120 - 100, 180, 4)]
    assert capacity_steps(spans) == [(-100, 3), (20, 4), (180, 0)]
    assert capacity_steps([(0, 10, 2), (10, 20, 2), (20, 30, 0)]) == [(0, 2), (20, 0)]
    assert capacity_steps([]) == []


def test_weights_are_whole_and_keep_the_shares():
    from hetplan.planner.deploy.steps import apportion, short_name

    weights = apportion({"a": 0.5, "b": 0.3333, "c": 0.1667, "d": 0.0})
    # 999 × shares = 499.5, 332.97, 166.53: floors 499, 332, 166; the two largest remainders (b, c) get one more
    assert weights == {"a": 499, "b": 333, "c": 167} and sum(weights.values()) == 999
    assert apportion({"a": 0.0}) == {}
    long = "deployment-name-inception_bn-c5.18xlarge-b256"
    assert len(short_name(long, 32)) <= 32 and short_name(long, 32) != short_name(long + "x", 32)
    assert short_name("web-resnet-c5-large", 32) == "web-resnet-c5-large"


def test_the_iam_policy_allows_every_call_deploy_makes():
    """Every boto3 call in planner/deploy (direct, paginated or through a waiter) is an action the example policy allows."""
    import re

    root = Path(__file__).resolve().parents[1]
    policy = json.loads((root / "examples" / "deploy-iam-policy.json").read_text())
    allowed = {a for s in policy["Statement"] for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    prefix = {"ec2": "ec2", "autoscaling": "autoscaling", "asg": "autoscaling", "lam": "lambda", "iam": "iam",
              "elb": "elasticloadbalancing", "scaling": "application-autoscaling"}
    waiters = {"function_updated_v2": "lambda:GetFunction", "load_balancers_deleted": "elasticloadbalancing:DescribeLoadBalancers"}
    needed = set()
    for path in (root / "planner" / "deploy").glob("*.py"):
        source = path.read_text()
        for client_name, method in re.findall(r"\b(ec2|autoscaling|asg|lam|iam|elb|scaling)\.(\w+)\(", source):
            if method in ("get_paginator", "get_waiter"):
                continue
            needed.add(f"{prefix[client_name]}:" + "".join(part.title() for part in method.split("_")))
        for client_name, method in re.findall(r"\b(ec2|autoscaling|asg|lam|iam|elb|scaling)\.get_paginator\(\"(\w+)\"", source):
            needed.add(f"{prefix[client_name]}:" + "".join(part.title() for part in method.split("_")))
        needed |= {waiters[w] for w in re.findall(r"get_waiter\(\"(\w+)\"", source)}
    assert len(needed) > 30
    assert needed - allowed == set()


def test_the_cron_example_moves_weights_at_their_times(tmp_path):
    report = {"deployment": "web", "route_window": 0, "actions": [
        {"time": "2027-01-05T08:00:00Z", "window": 0, "resource": "load-balancer", "what": "weights", "value": {}},
        {"time": "2027-01-05T07:58:20Z", "window": 0, "resource": "web-m-c5-large", "what": "desired-capacity", "value": 2},
        {"time": "2027-01-05T08:35:00Z", "window": 7, "resource": "load-balancer", "what": "weights", "value": {}}]}
    path = tmp_path / "report.json"
    path.write_text(json.dumps(report))
    script = Path(__file__).resolve().parents[1] / "examples" / "deploy_cron.py"
    done = subprocess.run([sys.executable, "-S", str(script), str(path), "plan.json"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "35 8 5 1 * hetplan deploy plan.json --name web --apply-window now --yes   # window 7"
    bad = subprocess.run([sys.executable, "-S", str(script), str(tmp_path / "missing.json"), "plan.json"],
                         capture_output=True, text=True, timeout=30)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1


def test_a_plan_cannot_put_a_command_into_the_boot_script():
    """Model names reach AWS names and the VMs' user data: anything but a plain name is refused before any call."""
    import datetime as dt

    import pytest

    from hetplan.errors import HetplanError
    from hetplan.planner.deploy.desired import Settings, desired_state

    option = {"option": "vm:x@c5.large", "platform": "vm", "model": "x\nENV\nrm -rf /", "instance_type": "c5.large",
              "memory_mb": 4096, "boot_seconds": 100}
    plan = {"options": [option], "windows": [{"index": 0, "start_s": 0, "end_s": 300, "assignments": [
        {"option": "vm:x@c5.large", "platform": "vm", "count": 1, "share": 1.0}]}]}
    now = dt.datetime(2027, 1, 1, tzinfo=dt.timezone.utc)
    settings = Settings(name="web", start=now + dt.timedelta(days=1), now=now, subnets=("a", "b"), image_id="ami-1")
    with pytest.raises(HetplanError, match="deploy takes only letters"):
        desired_state(plan, "abc", settings)
    option["model"] = "resnet50_v1.5"
    assert any(r.kind == "launch-template" for r in desired_state(plan, "abc", settings).resources)
