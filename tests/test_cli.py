"""The CLI end to end through typer's CliRunner (and one real subprocess for start-up imports)."""

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from hetplan import __version__
from hetplan.cli import app

runner = CliRunner()


def run(*args):
    return runner.invoke(app, list(args))


def test_help_and_version():
    for flag in ("--help", "-h"):
        result = run(flag)
        assert result.exit_code == 0 and "solve" in result.output and "catalog" in result.output
    assert run("--version").output.strip() == f"hetplan {__version__}"
    assert "--slo" in run("solve", "--help").output


def test_startup_imports_no_heavy_library():
    code = ("import sys, hetplan.cli; heavy = {'mxnet', 'ortools', 'highspy', 'pulp', 'pandas', 'numpy', 'scipy', 'statsmodels', 'boto3', 'botocore'}; "
            "print(sorted(heavy & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


def test_catalog_tables_and_json():
    result = run("catalog")
    assert result.exit_code == 0 and "c5.large" in result.output and "resnet200" in result.output
    data = json.loads(run("catalog", "--json").output)
    assert {r["instance_type"] for r in data["instances"]} >= {"c5.large", "p3.2xlarge"}
    assert data["serverless"]["mb_per_vcpu"] == 1769


def test_solve_show_end_to_end(tmp_path):
    out = tmp_path / "plan.json"
    result = run("solve", "--slo", "200ms", "--hours", "1", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "Plan summary" in result.output and "Per model" in result.output
    plan = json.loads(out.read_text())
    assert plan["schema_version"] == 1 and plan["targets"]["slo_ms"] == 200 and len(plan["windows"]) == 12
    assert plan["solver"]["status"] == "optimal" and plan["solver"]["gap"] <= 0.01
    assert all(a["expected_latency_ms"] <= 200 for w in plan["windows"] for a in w["assignments"])
    shown = run("show", str(out))
    assert shown.exit_code == 0 and f"${plan['summary']['total_cost_usd']:.2f}" in shown.output
    as_json = json.loads(run("show", str(out), "--json").output)
    assert as_json["summary"] == plan["summary"]
    checked = run("validate", str(out))
    assert checked.exit_code == 0 and "plan OK" in checked.output
    # A plan edited by hand to drop a VM no longer has the capacity it claims.
    window = next(w for w in plan["windows"] if any(a["platform"] == "vm" and a["count"] > 0 for a in w["assignments"]))
    vm = next(a for a in window["assignments"] if a["platform"] == "vm" and a["count"] > 0)
    vm["count"] -= 1
    out.write_text(json.dumps(plan))
    broken = run("validate", str(out))
    assert broken.exit_code == 4 and "violates" in broken.output


@pytest.mark.parametrize("args, message", [
    (["solve", "--slo", "fast"], "cannot read duration 'fast'"),
    (["solve", "--slo", "200"], "has no unit"),
    (["solve", "--slo", "200ms", "--models", "resnet20"], "did you mean 'resnet200'"),
    (["solve", "--slo", "200ms", "--instance-types", "c5.larg"], "did you mean 'c5.large'"),
    (["solve", "--slo", "200ms", "--trace", "missing.csv"], "missing.csv"),
    (["solve", "--slo", "200ms", "--quota", "c5.large"], "write NAME=COUNT"),
    (["solve", "--slo", "200ms", "--solver", "gurobi"], "unknown solver 'gurobi'"),
    (["show", "nope.json"], "does not exist"),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, args, message):
    out = tmp_path / "plan.json"
    result = run(*args, "--out", str(out)) if args[0] == "solve" else run(*args)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("hetplan: error:") and message in lines[0], result.output
    assert not out.exists()


@pytest.mark.parametrize("args, message", [
    (["--slo", "5ms"], "no model meets 5 ms"),
    (["--slo", "200ms", "--mean-accuracy", "90%"], "relax --mean-accuracy"),
    (["--slo", "50ms", "--min-accuracy", "75%"], "relax --slo to ≥ 232ms or --min-accuracy to ≤ 72.5%"),
    (["--slo", "50ms", "--min-accuracy", "78%"], "the most accurate is resnet200 at 77.9%"),
    (["--slo", "200ms", "--hours", "1", "--budget", "0.01"], "raise --budget to at least"),
])
def test_an_infeasible_request_exits_1_names_what_to_relax_and_writes_nothing(tmp_path, args, message):
    out = tmp_path / "plan.json"
    result = run("solve", *args, "--out", str(out))
    assert result.exit_code == 1, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("hetplan: error:") and message in lines[0], result.output
    assert not out.exists()


def test_broken_trace_is_reported(tmp_path):
    trace = tmp_path / "t.csv"
    trace.write_text("second,requests\n1,5\n2,-3\n")
    result = run("solve", "--slo", "200ms", "--trace", str(trace), "--out", str(tmp_path / "p.json"))
    assert result.exit_code == 2 and "line 3" in result.output and not (tmp_path / "p.json").exists()


def test_show_rejects_a_non_plan(tmp_path):
    path = tmp_path / "x.json"
    path.write_text('{"kind": "other"}')
    result = run("show", str(path))
    assert result.exit_code == 2 and "not a hetplan plan" in result.output


def test_solve_accepts_the_local_example_profile(tmp_path):
    from hetplan.planner.catalog import DATA_DIR

    out = tmp_path / "plan.json"
    profile = DATA_DIR / "profiles" / "local-example.csv"
    result = run("solve", "--slo", "1s", "--hours", "1", "--profile", str(profile), "--out", str(out))
    assert result.exit_code == 0, result.output
    plan = json.loads(out.read_text())
    # Local CPU shapes are not EC2 types: without --local-as-family only Lambda serves.
    assert {a["platform"] for w in plan["windows"] for a in w["assignments"]} == {"lambda"}
    result = run("solve", "--slo", "1s", "--hours", "1", "--profile", str(profile), "--local-as-family", "c5", "--gap", "0.05",
                 "--out", str(out))  # (the option types are asserted, not the optimum: a 5% gap proves in a third of the time)
    assert result.exit_code == 0, result.output
    plan = json.loads(out.read_text())
    vm_types = {a["instance_type"] for w in plan["windows"] for a in w["assignments"] if a["platform"] == "vm"}
    assert vm_types and vm_types <= {"c5.large", "c5.xlarge", "c5.2xlarge", "c5.4xlarge"}
    used_vm = {a["option"] for w in plan["windows"] for a in w["assignments"] if a["platform"] == "vm"}
    assert used_vm <= set(plan["summary"]["extrapolated_options_used"])  # listed as relied-on assumptions
    assert run("validate", str(out)).exit_code == 0


def test_profile_command_is_registered_and_checks_arguments():
    assert "--lambda-memory" in run("profile", "--help").output
    result = run("profile", "--models", "resnet20", "--quick")
    assert result.exit_code == 2 and "did you mean" in result.output


def test_simulate_and_compare_end_to_end(tmp_path):
    out = tmp_path / "plan.json"
    assert run("solve", "--slo", "200ms", "--hours", "2", "--out", str(out)).exit_code == 0
    result = run("simulate", "--plan", str(out), "--overflow")
    assert result.exit_code == 0, result.output
    assert "violations" in result.output.lower()
    table = tmp_path / "compare.csv"
    result = run("compare", "--hours", "2", "--policies", "vm-peak,lambda-only,hetplan", "--time-limit", "5", "--out", str(table))
    assert result.exit_code == 0, result.output
    import pandas as pd

    rows = pd.read_csv(table)
    assert set(rows.policy) == {"vm-peak", "lambda-only", "hetplan"}
    by = rows.set_index("policy")
    # Statically provisioning for the peak on VMs is never cheaper than planning per window.
    assert by.loc["vm-peak", "cost_usd"] > by.loc["hetplan", "cost_usd"]


def test_windows_without_data_are_an_error_unless_interpolated(tmp_path):
    trace = tmp_path / "gappy.csv"
    rows = [f"{sec},{10 + sec % 7}" for sec in range(1, 3601) if not 700 <= sec < 1400]  # 700 s missing
    trace.write_text("second,requests\n" + "\n".join(rows) + "\n")
    out = tmp_path / "plan.json"
    result = run("solve", "--slo", "200ms", "--trace", str(trace), "--out", str(out))
    assert result.exit_code == 2 and "has no data" in result.output and "--gaps interpolate" in result.output
    assert not out.exists()
    result = run("solve", "--slo", "200ms", "--trace", str(trace), "--gaps", "interpolate", "--out", str(out))
    assert result.exit_code == 0 and json.loads(out.read_text())["load"]["gaps"] == "interpolate"


def test_feedback_loop_end_to_end(tmp_path):
    """solve → simulate with a drifted model, logging → observe flags it → solve --feedback plans around it."""
    plan, log, corrected = tmp_path / "plan.json", tmp_path / "requests.log", tmp_path / "profile.csv"
    assert run("solve", "--slo", "200ms", "--hours", "1", "--out", str(plan)).exit_code == 0
    result = run("simulate", "--plan", str(plan), "--overflow", "--drift", "model=inception_bn,latency=1.3", "--log", str(log), "--method", "fluid")
    assert result.exit_code == 0, result.output
    from hetplan.planner.catalog import DEFAULT_PROFILE

    result = run("observe", str(log), "--profile", str(DEFAULT_PROFILE), "--out", str(corrected))
    assert result.exit_code == 0 and "drifted" in result.output and "inception_bn" in result.output
    replanned = tmp_path / "replanned.json"
    result = run("solve", "--slo", "200ms", "--hours", "1", "--feedback", str(log), "--out", str(replanned))
    assert result.exit_code == 0, result.output
    before, after = json.loads(plan.read_text()), json.loads(replanned.read_text())
    assert "feedback" in after["inputs"]
    latency = lambda p: {o["option"]: o["latency_ms"] for o in p["options"]}
    both = sorted(name for name in set(latency(before)) & set(latency(after)) if name.startswith("vm:inception_bn@"))
    assert both and all(latency(after)[name] > 1.2 * latency(before)[name] for name in both)
    assert after["summary"]["total_cost_usd"] > before["summary"]["total_cost_usd"]  # slower model, more VMs
    assert run("validate", str(replanned)).exit_code == 0


def test_sweep_from_the_main_cli(tmp_path):
    result = run("sweep", "--slo", "5ms,200ms", "--mean-accuracy", "0.70", "--hours", "1", "--executor", "serial",
                 "--out", str(tmp_path / "sweep"))
    assert result.exit_code == 0, result.output
    import pandas as pd

    rows = pd.read_csv(tmp_path / "sweep" / "summary.csv")
    assert sorted(rows.status) == ["infeasible", "optimal"]
    assert (tmp_path / "sweep" / "plans").is_dir()
