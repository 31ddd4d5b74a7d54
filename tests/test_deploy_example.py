"""examples/deploy.py, run as users run it (a subprocess, standard library only): its actions carry out the plan."""

from __future__ import annotations

import copy
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "examples" / "deploy.py"


def run(*args: str, env_path: Path | None = None) -> subprocess.CompletedProcess:
    """``python -S``: no site-packages, so the script can only use the standard library."""
    env = {"PATH": "/usr/bin:/bin", **({"PYTHONPATH": str(env_path)} if env_path else {})}
    return subprocess.run([sys.executable, "-S", str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=60)


def load_script():
    spec = importlib.util.spec_from_file_location("deploy_example", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def plan_file(tmp_path_factory) -> Path:
    from hetplan.planner.optimize.workflow import PlanRequest, make_plan

    path = tmp_path_factory.mktemp("deploy") / "plan.json"
    path.write_text(make_plan(PlanRequest(slo_s=0.2, hours=2, time_limit_s=10, gap=0.05)).to_json())
    return path


@pytest.fixture(scope="module")
def plan(plan_file) -> dict:
    return json.loads(plan_file.read_text())


@pytest.fixture(scope="module")
def actions(plan_file) -> list[dict]:
    done = run(str(plan_file), "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["actions"]


def plan_counts(plan: dict) -> dict[str, list[int]]:
    """ASG name -> VM count per window, from the plan itself."""
    names = {o["option"]: f"hetplan-{o['model']}-{o['instance_type']}" for o in plan["options"] if o["platform"] == "vm"}
    counts = {name: [0] * len(plan["windows"]) for name in names.values()}
    for w in plan["windows"]:
        for a in w["assignments"]:
            if a["platform"] == "vm":
                counts[names[a["option"]]][w["index"]] += a["count"]
    return counts


def capacity_at(actions: list[dict], group: str, time_s: float) -> int:
    """Desired capacity of a group after every action up to ``time_s`` has run."""
    level = 0
    for a in actions:
        if a["kind"] == "asg" and a["name"] == group and a["at_s"] <= time_s:
            level = a["desired_capacity"]
    return level


# --- the actions carry out the plan ---------------------------------------------------------------------------

def test_desired_capacity_equals_the_plans_counts_in_every_window(plan, actions):
    boot = {f"hetplan-{o['model']}-{o['instance_type']}": o["boot_seconds"] for o in plan["options"] if o["platform"] == "vm"}
    for group, counts in plan_counts(plan).items():
        for w, n in zip(plan["windows"], counts):
            assert capacity_at(actions, group, w["start_s"]) == n, (group, w["index"])
            # launched in time: the VMs already exist (booting) boot_seconds before the window
            assert capacity_at(actions, group, w["start_s"] - boot[group]) >= n, (group, w["index"])


def test_capacity_actions_only_where_counts_change(plan, actions):
    counts = plan_counts(plan)
    changed = {(g, t) for g, c in counts.items() for t in range(len(c)) if c[t] != (c[t - 1] if t else 0)}
    acted = {(a["name"], a["window"]) for a in actions if a["kind"] == "asg"}
    assert acted == changed
    assert changed, "the plan should scale at least once"
    boot = {o["option"]: o["boot_seconds"] for o in plan["options"] if o["platform"] == "vm"}
    for a in actions:
        if a["kind"] == "asg":
            start = plan["windows"][a["window"]]["start_s"]
            grows = a["desired_capacity"] > a["previous_capacity"]
            assert a["at_s"] == (start - boot[a["option"]] if grows else start)  # out: boot early; in: at the start


def test_routing_weights_sum_to_one_and_match_the_shares(plan, actions):
    routes = [a for a in actions if a["kind"] == "route"]
    assert routes
    for r in routes:
        assert sum(r["weights"].values()) == pytest.approx(1.0, abs=1e-6)
    options = {o["option"]: o for o in plan["options"]}
    target = load_script().target_name
    for w in plan["windows"]:  # the weights in force during each window are the plan's shares
        current = [r for r in routes if r["at_s"] <= w["start_s"]][-1]["weights"]
        shares = {target(options[a["option"]], "hetplan"): a["share"] for a in w["assignments"] if a["share"] > 0}
        assert current == pytest.approx(shares, abs=1e-6), w["index"]


def test_each_lambda_function_is_configured_once_with_its_memory(plan, actions):
    used = {}
    for w in plan["windows"]:
        for a in w["assignments"]:
            if a["platform"] == "lambda" and a["share"] > 0:
                used.setdefault(f"hetplan-{a['model']}-{a['memory_mb']:g}mb", (w["index"], a["memory_mb"]))
    configured = {a["name"]: (a["window"], a["memory_mb"]) for a in actions if a["kind"] == "lambda"}
    assert configured == used
    assert len([a for a in actions if a["kind"] == "lambda"]) == len(used)


def test_text_output_is_a_dry_run_listing_the_same_commands(plan_file, actions):
    done = run(str(plan_file))
    assert done.returncode == 0, done.stderr
    text = done.stdout
    assert text.startswith("# hetplan deploy: DRY RUN")
    commands = [line.split("  ", 1)[1].split("   #")[0] for line in text.splitlines() if line.startswith("t=")]
    assert commands == [a["command"] for a in actions]
    assert sum("aws autoscaling set-desired-capacity" in c for c in commands) == sum(a["kind"] == "asg" for a in actions)
    windows_shown = [int(line.split()[2]) for line in text.splitlines() if line.startswith("== window")]
    assert windows_shown == sorted({a["window"] for a in actions})


# --- small hand-made plans for the timing rules --------------------------------------------------------------

def tiny_plan(counts: list[int], boot: float, initial: int = 0, window_s: float = 300.0) -> dict:
    option = {"option": "vm:resnet18_v1@c5.large", "model": "resnet18_v1", "platform": "vm", "instance_type": "c5.large",
              "memory_mb": 4096.0, "boot_seconds": boot}
    lam = {"option": "lambda:squeezenet1.1@2048MB", "model": "squeezenet1.1", "platform": "lambda", "instance_type": None,
           "memory_mb": 2048.0}
    windows = []
    for t, n in enumerate(counts):
        vm_share = 0.75 if n else 0.0
        assignments = ([{"option": option["option"], "platform": "vm", "count": n, "share": vm_share}] if n else []) + \
                      [{"option": lam["option"], "platform": "lambda", "count": 0, "share": 1 - vm_share}]
        windows.append({"index": t, "start_s": t * window_s, "end_s": (t + 1) * window_s, "demand_rps": 100.0,
                        "assignments": assignments})
    return {"schema_version": 1, "kind": "hetplan.plan", "limits": {"initial_vms": {option["option"]: initial}},
            "options": [option, lam], "windows": windows}


def test_boot_longer_than_a_window_keeps_vms_for_the_next_one():
    deploy = load_script()
    plan = tiny_plan([2, 1, 2], boot=400.0)  # window 2's second VM must launch at t=200, before window 1 starts
    actions = deploy.plan_actions(plan)
    levels = [capacity_at(actions, "hetplan-resnet18_v1-c5.large", t) for t in (-400, 0, 300, 600)]
    assert levels == [2, 2, 2, 2]  # never scaled in: the VM would be relaunched before it could be released


def test_initial_vms_need_no_launch():
    deploy = load_script()
    actions = [a for a in deploy.plan_actions(tiny_plan([2, 2, 1], boot=100.0, initial=2)) if a["kind"] == "asg"]
    assert [(a["window"], a["at_s"], a["desired_capacity"]) for a in actions] == [(2, 600.0, 1)]


def test_names_are_valid_lambda_function_names():
    deploy = load_script()
    actions = deploy.plan_actions(tiny_plan([1], boot=100.0))
    assert [a["name"] for a in actions if a["kind"] == "lambda"] == ["hetplan-squeezenet1-1-2048mb"]


# --- bad input and --apply -----------------------------------------------------------------------------------------

BROKEN = {
    "not json": lambda p: "{not json",
    "not a plan": lambda p: json.dumps({"kind": "other"}),
    "wrong version": lambda p: json.dumps({**p, "schema_version": 2}),
    "no windows": lambda p: json.dumps({k: v for k, v in p.items() if k != "windows"}),
    "count missing": lambda p: json.dumps(_edit(p, lambda q: q["windows"][1]["assignments"][0].pop("count"))),
    "count as text": lambda p: json.dumps(_edit(p, lambda q: q["windows"][1]["assignments"][0].update(count="1"))),
    "unknown option": lambda p: json.dumps(_edit(p, lambda q: q["windows"][1]["assignments"][0].update(option="vm:x@y"))),
    "bad platform": lambda p: json.dumps(_edit(p, lambda q: q["options"][0].update(platform="k8s"))),
}


def _edit(plan: dict, change) -> dict:
    p = copy.deepcopy(plan)
    change(p)
    return p


@pytest.mark.parametrize("name", list(BROKEN))
def test_malformed_plan_gives_one_line_error_and_exit_2(plan, tmp_path, name):
    path = tmp_path / "bad.json"
    path.write_text(BROKEN[name](plan))
    done = run(str(path))
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.startswith("deploy.py: error: ") and done.stderr.count("\n") == 1, done.stderr


def test_missing_file_gives_exit_2(tmp_path):
    done = run(str(tmp_path / "nope.json"))
    assert done.returncode == 2 and done.stderr.startswith("deploy.py: error: cannot read")


def fake_modules(tmp_path: Path, boto3_source: str) -> Path:
    (tmp_path / "boto3.py").write_text(boto3_source)
    return tmp_path


def test_apply_without_boto3_is_refused(plan_file, tmp_path):
    done = run(str(plan_file), "--apply", "--yes", env_path=fake_modules(tmp_path, "raise ImportError('no boto3')"))
    assert done.returncode == 2 and done.stdout == ""
    assert "--apply needs boto3" in done.stderr


def test_apply_without_yes_is_refused(plan_file, tmp_path):
    done = run(str(plan_file), "--apply", env_path=fake_modules(tmp_path, ""))
    assert done.returncode == 2 and done.stdout == ""
    assert "add --yes" in done.stderr


def test_apply_yes_still_only_prints(plan_file, tmp_path):
    done = run(str(plan_file), "--apply", "--yes", env_path=fake_modules(tmp_path, ""))
    assert done.returncode == 0
    assert "executes nothing" in done.stderr
    assert done.stdout == run(str(plan_file)).stdout
