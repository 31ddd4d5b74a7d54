"""``hetplan deploy`` against a real AWS API implementation: moto's server on a free loopback port.

boto3 is not mocked: every call is an HTTP request the server accepts or refuses, and every check reads the state
back through boto3 describe calls. Expectations are computed from the plan file here, not by deploy's own code.
"""

from __future__ import annotations

import copy
import datetime as dt
import io
import json
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hetplan.cli import app

pytest.importorskip("moto.server")
import boto3  # noqa: E402

START = "2027-01-05T08:00:00Z"
TAG = "hetplan:deployment"
runner = CliRunner()


@pytest.fixture(scope="module")
def moto_url():
    """A moto server started for these tests, on a free port of the loopback interface."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(url + "/moto-api/", timeout=1)
            break
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                pytest.fail("moto server did not start")
            time.sleep(0.2)
    yield url
    server.terminate()
    server.wait(10)


@pytest.fixture
def aws(moto_url, monkeypatch):
    """A clean account on the server, and credentials that exist only for it."""
    urllib.request.urlopen(urllib.request.Request(moto_url + "/moto-api/reset", method="POST"), timeout=10)
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1",
                       "AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return moto_url


def client(url, service):
    return boto3.client(service, endpoint_url=url, region_name="us-east-1")


@pytest.fixture(scope="module")
def plan_file(tmp_path_factory) -> Path:
    from hetplan.planner.optimize.workflow import PlanRequest, make_plan

    path = tmp_path_factory.mktemp("deploy") / "plan.json"
    path.write_text(make_plan(PlanRequest(slo_s=0.2, hours=2, time_limit_s=10, gap=0.05)).to_json())
    return path


@pytest.fixture(scope="module")
def package(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("zip") / "fn.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("handler.py", "def handler(event, context):\n    return {'statusCode': 200}\n")
    return path


def deploy(url, plan, package, *extra, input=None):
    args = ["deploy", str(plan), "--start", START, "--endpoint-url", url, "--image-id", "ami-12345678",
            "--lambda-zip", str(package), "--name", "web", *extra]
    return runner.invoke(app, args, input=input)


def wall(plan: dict, t: float) -> dt.datetime:
    start = dt.datetime(2027, 1, 5, 8, 0, tzinfo=dt.timezone.utc)
    return start + dt.timedelta(seconds=round(t - plan["windows"][0]["start_s"]))


def state(url) -> dict:
    """Everything tagged with a deployment, read back through boto3."""
    asg, lam, elb, scaling = (client(url, s) for s in ("autoscaling", "lambda", "elbv2", "application-autoscaling"))
    groups = {g["AutoScalingGroupName"]: g for g in asg.describe_auto_scaling_groups()["AutoScalingGroups"]
              if any(t["Key"] == TAG for t in g.get("Tags", []))}
    actions = {name: sorted((a["StartTime"].astimezone(dt.timezone.utc), a["DesiredCapacity"])
                            for a in asg.describe_scheduled_actions(AutoScalingGroupName=name)["ScheduledUpdateGroupActions"])
               for name in groups}
    functions = {f["FunctionName"]: f for f in lam.list_functions()["Functions"]
                 if TAG in lam.list_tags(Resource=f["FunctionArn"]).get("Tags", {})}
    warm = {a["ResourceId"]: a for a in scaling.describe_scheduled_actions(ServiceNamespace="lambda")["ScheduledActions"]}
    tgs = elb.describe_target_groups()["TargetGroups"]
    tagged = {d["ResourceArn"] for d in elb.describe_tags(ResourceArns=[g["TargetGroupArn"] for g in tgs])["TagDescriptions"]
              if any(t["Key"] == TAG for t in d["Tags"])} if tgs else set()
    balancers = elb.describe_load_balancers()["LoadBalancers"]
    return {"groups": groups, "actions": actions, "functions": functions, "warm": warm,
            "target_groups": {g["TargetGroupName"]: g for g in tgs if g["TargetGroupArn"] in tagged}, "balancers": balancers}


def vm_counts(plan: dict) -> dict[tuple[str, str], list[int]]:
    counts: dict = {}
    for w in plan["windows"]:
        for a in w["assignments"]:
            if a["platform"] == "vm" and a["count"] > 0:
                counts.setdefault((a["model"], a["instance_type"]), [0] * len(plan["windows"]))[w["index"]] = a["count"]
    return counts


def in_effect(actions: list, moment: dt.datetime) -> int:
    return next((v for t, v in reversed(actions) if t <= moment), 0)


def test_deploy_makes_what_the_plan_describes(aws, plan_file, package):
    plan = json.loads(plan_file.read_text())
    result = deploy(aws, plan_file, package, "--yes")
    assert result.exit_code == 0, result.output
    got = state(aws)
    counts = vm_counts(plan)
    boot = {(o["model"], o["instance_type"]): o["boot_seconds"] for o in plan["options"] if o["platform"] == "vm"}
    assert sorted(got["groups"]) == sorted(f"web-{m}-{t.replace('.', '-')}" for m, t in counts)
    for (model, itype), per_window in counts.items():
        actions = got["actions"][f"web-{model}-{itype.replace('.', '-')}"]
        assert len(actions) == len({t for t, _ in actions}) > 0  # one action per change of count
        for w in plan["windows"]:
            start, end, lead, count = w["start_s"], w["end_s"], boot[(model, itype)], per_window[w["index"]]
            # the plan's VMs serve from start − boot: capacity is in place through the whole window ...
            assert min(in_effect(actions, wall(plan, t)) for t in (start - lead, start, end - 1)) >= count
            # ... and it is exactly the plan's count once the previous window is over and the next is not yet booting
            if end - lead - 1 >= start:
                assert in_effect(actions, wall(plan, end - lead - 1)) == count
        assert actions[-1] == (wall(plan, plan["windows"][-1]["end_s"]), 0)  # nothing left running after the plan
    lambdas = {(o["model"], o["memory_mb"]) for w in plan["windows"] for o in plan["options"]
               if o["platform"] == "lambda" and (o["option"] in (w.get("warm_pool") or {})
                                                  or o["option"] in {a["option"] for a in w["assignments"] if a["share"] > 0})}
    assert {(f["Environment"]["Variables"]["HETPLAN_MODEL"], f["MemorySize"]) for f in got["functions"].values()} == \
        {(m, int(mb)) for m, mb in lambdas}
    assert {f["Architectures"][0] for f in got["functions"].values()} <= {plan["limits"]["lambda_architecture"]}
    first = plan["windows"][0]
    rule = _default_rule(aws)
    weights = {g["TargetGroupArn"].split("/")[1]: g["Weight"] for g in rule["Actions"][0]["ForwardConfig"]["TargetGroups"]}
    shares = {a["option"]: a["share"] for a in first["assignments"] if a["share"] > 0}
    assert len(weights) == len(shares)
    for option, share in shares.items():
        model, rest = option.split(":")[1].split("@")
        name = f"web-{model}-{rest.replace('.', '-').replace('MB', 'mb')}".replace("_", "-")
        assert abs(weights[name] / sum(weights.values()) - share) <= 1 / 999
    scaling = client(aws, "application-autoscaling").describe_scheduled_actions(ServiceNamespace="lambda")["ScheduledActions"]
    for option in {o for w in plan["windows"] for o in (w.get("warm_pool") or {})}:
        model, mb = option.split(":")[1].split("@")
        resource = f"function:web-{model}-{mb.lower()}:live"
        warm = sorted((dt.datetime.fromisoformat(a["Schedule"][3:-1]).replace(tzinfo=dt.timezone.utc),
                       a["ScalableTargetAction"]["MinCapacity"]) for a in scaling if a["ResourceId"] == resource)
        for w in plan["windows"]:
            assert in_effect(warm, wall(plan, w["start_s"])) == (w.get("warm_pool") or {}).get(option, 0)


def _default_rule(url):
    elb = client(url, "elbv2")
    balancer = elb.describe_load_balancers(Names=["web"])["LoadBalancers"][0]
    listener = elb.describe_listeners(LoadBalancerArn=balancer["LoadBalancerArn"])["Listeners"][0]
    return next(r for r in elb.describe_rules(ListenerArn=listener["ListenerArn"])["Rules"] if r["IsDefault"])


def test_redeploy_changes_nothing_and_a_new_plan_changes_only_what_differs(aws, plan_file, package, tmp_path):
    assert deploy(aws, plan_file, package, "--yes").exit_code == 0
    before = state(aws)
    again = deploy(aws, plan_file, package, "--yes", "--json")
    assert again.exit_code == 0 and json.loads(again.stdout)["status"] == "up to date"
    assert state(aws)["actions"] == before["actions"]
    # a second plan: one more VM of one option in one window of the middle
    plan = json.loads(plan_file.read_text())
    changed = copy.deepcopy(plan)
    window = changed["windows"][len(changed["windows"]) // 2]
    target = next(a for a in window["assignments"] if a["platform"] == "vm" and a["count"] > 0)
    target["count"] += 1
    second = tmp_path / "second.json"
    second.write_text(json.dumps(changed))
    result = deploy(aws, second, package, "--yes", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    group = f"web-{target['model']}-{target['instance_type'].replace('.', '-')}"
    assert [(c["change"], c["kind"], c["resource"]) for c in report["changes"]] == [("update", "group", group)]
    after = state(aws)
    assert {k: v for k, v in after["actions"].items() if k != group} == {k: v for k, v in before["actions"].items() if k != group}
    moment = wall(plan, window["start_s"] + 1)
    assert in_effect(after["actions"][group], moment) == in_effect(before["actions"][group], moment) + 1
    assert after["groups"][group]["MaxSize"] >= target["count"]
    tags = {t["Key"]: t["Value"] for t in after["groups"][group]["Tags"]}
    assert tags["hetplan:plan"] == report["plan_hash"] != json.loads(again.stdout)["plan_hash"]


def test_teardown_removes_only_what_deploy_made(aws, plan_file, package):
    ec2, asg, elb = client(aws, "ec2"), client(aws, "autoscaling"), client(aws, "elbv2")
    # resources made outside deploy: untagged, one of them named like a deployment's
    ec2.create_launch_template(LaunchTemplateName="web-manual", LaunchTemplateData={"ImageId": "ami-1", "InstanceType": "c5.large"})
    subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
    asg.create_auto_scaling_group(AutoScalingGroupName="web-manual", MinSize=0, MaxSize=1, VPCZoneIdentifier=subnet,
                                  LaunchTemplate={"LaunchTemplateName": "web-manual"})
    elb.create_target_group(Name="web-manual", TargetType="lambda")
    assert deploy(aws, plan_file, package, "--yes").exit_code == 0
    assert state(aws)["groups"]
    result = runner.invoke(app, ["deploy", str(plan_file), "--name", "web", "--endpoint-url", aws, "--teardown", "--yes", "--json"])
    assert result.exit_code == 0, result.output
    removed = json.loads(result.stdout)
    assert removed["status"] == "removed" and removed["done"][0].startswith("deleted load-balancer")
    got = state(aws)
    assert not got["groups"] and not got["functions"] and not got["target_groups"] and not got["balancers"]
    assert not client(aws, "application-autoscaling").describe_scalable_targets(ServiceNamespace="lambda")["ScalableTargets"]
    assert [g["AutoScalingGroupName"] for g in asg.describe_auto_scaling_groups()["AutoScalingGroups"]] == ["web-manual"]
    assert [g["TargetGroupName"] for g in elb.describe_target_groups()["TargetGroups"]] == ["web-manual"]
    assert [t["LaunchTemplateName"] for t in ec2.describe_launch_templates()["LaunchTemplates"]] == ["web-manual"]
    again = runner.invoke(app, ["deploy", str(plan_file), "--name", "web", "--endpoint-url", aws, "--teardown", "--yes"])
    assert again.exit_code == 0 and "nothing to remove" in again.output


def test_preview_dry_run_and_declining_change_nothing(aws, plan_file, package):
    dry = deploy(aws, plan_file, package, "--dry-run")
    assert dry.exit_code == 0 and "create" in dry.output and "dry run" in dry.output
    declined = deploy(aws, plan_file, package, input="n\n")
    assert declined.exit_code == 0 and "declined" in declined.output
    got = state(aws)
    assert not got["groups"] and not got["functions"] and not got["balancers"]
    accepted = deploy(aws, plan_file, package, input="y\n")
    assert accepted.exit_code == 0 and state(aws)["groups"]


def test_apply_window_sets_that_windows_weights(aws, plan_file, package):
    plan = json.loads(plan_file.read_text())
    assert deploy(aws, plan_file, package, "--yes").exit_code == 0
    index = next(w["index"] for w in plan["windows"]
                 if {a["option"] for a in w["assignments"] if a["share"] > 0}
                 != {a["option"] for a in plan["windows"][0]["assignments"] if a["share"] > 0})
    result = runner.invoke(app, ["deploy", str(plan_file), "--name", "web", "--endpoint-url", aws,
                                 "--apply-window", str(index), "--yes", "--json"])
    assert result.exit_code == 0, result.output
    assert [(c["change"], c["kind"]) for c in json.loads(result.stdout)["changes"]] == [("update", "load-balancer")]
    groups = {g["TargetGroupArn"]: g["TargetGroupName"] for g in client(aws, "elbv2").describe_target_groups()["TargetGroups"]}
    weights = {groups[g["TargetGroupArn"]]: g["Weight"] for g in _default_rule(aws)["Actions"][0]["ForwardConfig"]["TargetGroups"]}
    shares = {a["option"]: a["share"] for a in plan["windows"][index]["assignments"] if a["share"] > 0}
    assert len(weights) == len(shares) and abs(sum(weights.values()) - 999) == 0
    for option, share in shares.items():
        model, rest = option.split(":")[1].split("@")
        assert abs(weights[f"web-{model}-{rest.replace('.', '-').lower()}".replace("_", "-")] / 999 - share) <= 1 / 999
    again = runner.invoke(app, ["deploy", str(plan_file), "--name", "web", "--endpoint-url", aws, "--apply-window", str(index), "--yes"])
    assert again.exit_code == 0 and "up to date" in again.output


def test_bad_input_exits_2_and_creates_nothing(aws, plan_file, package, tmp_path):
    broken = tmp_path / "broken.json"
    data = json.loads(plan_file.read_text())
    data["windows"][0]["assignments"][0]["count"] = "three"
    broken.write_text(json.dumps(data))
    not_zip = tmp_path / "fn.zip"
    not_zip.write_text("not a zip")
    cases = [
        (deploy(aws, broken, package, "--yes"), "malformed"),
        (deploy(aws, plan_file, not_zip, "--yes"), "not a zip"),
        (deploy(aws, plan_file, package, "--yes", "--start", "2020-01-01T00:00:00Z"), "in the past"),
        (deploy(aws, plan_file, package, "--yes", "--region", "us-eats-1"), "unknown AWS region"),
        (deploy(aws, plan_file, package, "--yes", "--name", "Bad_Name"), "not a valid deployment name"),
        (runner.invoke(app, ["deploy", str(plan_file), "--start", START, "--endpoint-url", aws, "--lambda-zip", str(package), "--yes"]), "--image-id"),
    ]
    for result, reason in cases:
        assert result.exit_code == 2 and reason in result.output and "Traceback" not in result.output, result.output
        assert len(result.output.strip().splitlines()) == 1
    got = state(aws)
    assert not got["groups"] and not got["functions"] and not got["balancers"]
    assert not client(aws, "iam").list_roles()["Roles"]


def test_an_aws_error_names_the_resource_its_code_and_what_was_done(aws, plan_file, package):
    """A function made outside deploy holds the name deploy needs: AWS refuses, and the line says what to do."""
    plan = json.loads(plan_file.read_text())
    option = next(o for o in plan["options"] if o["option"] == plan["runtime"]["overflow"]["option"])
    name = f"web-{option['model']}-{int(option['memory_mb'])}mb"
    role = client(aws, "iam").create_role(RoleName="other", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("h.py", "")
    client(aws, "lambda").create_function(FunctionName=name, Runtime="python3.11", Role=role, Handler="h.h",
                                          Code={"ZipFile": buffer.getvalue()})
    result = deploy(aws, plan_file, package, "--yes")
    assert result.exit_code == 2
    line = result.output.strip()
    assert f"creating function {name}: AWS error ResourceConflictException" in line
    assert "already done: created role web-lambda" in line and "--teardown" in line
    cleanup = runner.invoke(app, ["deploy", str(plan_file), "--name", "web", "--endpoint-url", aws, "--teardown", "--yes"])
    assert cleanup.exit_code == 0
    assert [f["FunctionName"] for f in client(aws, "lambda").list_functions()["Functions"]] == [name]


def test_the_documented_command_in_a_real_process(aws, package, tmp_path):
    """The issue's commands, through the entry point, on the default plan (the shipped trace, 13 h): solve, deploy,
    again (up to date), tear down."""
    plan_file = tmp_path / "plan.json"
    solved = subprocess.run([sys.executable, "-m", "hetplan", "solve", "--slo", "200ms", "--out", str(plan_file), "--quiet"],
                            capture_output=True, text=True, timeout=300)
    assert solved.returncode == 0, solved.stderr
    base = [sys.executable, "-m", "hetplan", "deploy", str(plan_file), "--endpoint-url", aws]
    first = subprocess.run(base + ["--start", START, "--image-id", "ami-12345678", "--lambda-zip", str(package), "--yes", "--json"],
                           capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    assert report["status"] == "applied" and all(r["arn"] for r in report["resources"])
    assert {a["what"] for a in report["actions"]} >= {"desired-capacity", "weights"}
    plan = json.loads(plan_file.read_text())
    assert len(plan["windows"]) == 156 and {r["kind"] for r in report["resources"]} >= {"group", "function", "load-balancer"}
    second = subprocess.run(base + ["--start", START, "--image-id", "ami-12345678", "--lambda-zip", str(package), "--yes"],
                            capture_output=True, text=True, timeout=120)
    assert second.returncode == 0 and "up to date" in second.stdout
    gone = subprocess.run(base + ["--teardown", "--yes"], capture_output=True, text=True, timeout=120)
    assert gone.returncode == 0 and "removed" in gone.stdout
    assert not state(aws)["groups"]



def test_functions_take_the_planned_architecture(aws, plan_file, package, tmp_path):
    plan = json.loads(plan_file.read_text())
    plan["limits"]["lambda_architecture"] = "arm64"
    arm = tmp_path / "arm.json"
    arm.write_text(json.dumps(plan))
    assert deploy(aws, arm, package, "--yes").exit_code == 0
    functions = state(aws)["functions"]
    assert functions and {f["Architectures"][0] for f in functions.values()} == {"arm64"}
