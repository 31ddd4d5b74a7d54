"""The output layer end to end: ``--json`` on every result command carries the same values as its table (read
back from ``--plain``), piped tables are never cut, and every documented exit code is what the CLI returns."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from hetplan.cli import app, handle_errors

runner = CliRunner()


def run(*args, code: int = 0):
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == code, (result.stdout, result.stderr)
    return result


def tables(text: str) -> dict[str, list[list[str]]]:
    """``--plain`` output → {title: rows} (the first row is the header, or the first pair of a summary)."""
    out, current = {}, None
    for line in text.splitlines():
        if line.startswith("# "):
            current = out.setdefault(line[2:], [])
        elif current is not None and "\t" in line:
            current.append(line.split("\t"))
        else:
            current = None
    return out


def table(text: str, starts: str) -> list[list[str]]:
    return next(rows for title, rows in tables(text).items() if title.startswith(starts))


def number(cell: str) -> float:
    return float(cell.replace("$", "").replace(",", "").replace("%", "").replace(" ms", "").split()[0])


@pytest.fixture(scope="module")
def plan_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("plan") / "plan.json"
    run("solve", "--slo", "200ms", "--hours", "0.5", "--out", path, "--quiet", "--json")
    return path


def test_json_is_the_same_data_as_the_table_catalog():
    data = json.loads(run("catalog", "--json").stdout)
    rows = table(run("catalog", "--plain").stdout, "EC2 instance types")
    header = rows[0]
    shown = {r[header.index("instance_type")]: number(r[header.index("price_per_hour_usd")]) for r in rows[1:]}
    assert len(shown) == len(data["instances"]) > 10
    for item in data["instances"]:
        assert shown[item["instance_type"]] == pytest.approx(round(item["price_per_hour_usd"], 4))


def test_json_is_the_same_data_as_the_table_solve_show_validate(plan_file, tmp_path):
    plan = json.loads(plan_file.read_text())
    again = run("solve", "--slo", "200ms", "--hours", "0.5", "--out", tmp_path / "p.json", "--plain").stdout
    summary = dict(table(again, "Plan summary"))
    assert number(summary["total cost"]) == pytest.approx(round(plan["summary"]["total_cost_usd"], 2))
    shown = json.loads(run("show", plan_file, "--json").stdout)
    assert shown["summary"] == plan["summary"] and len(shown["per_window"]) == len(plan["windows"]) == 6
    rows = table(run("show", plan_file, "--plain").stdout, "Per window")
    header = rows[0]
    for row, record in zip(rows[1:], shown["per_window"]):
        assert int(row[header.index("window")]) == record["window"]
        assert number(row[header.index("cost $")]) == pytest.approx(round(record["cost $"], 3))
        assert row[header.index("VMs")] == record["VMs"]
    checked = json.loads(run("validate", plan_file, "--json").stdout)
    assert checked["ok"] is True and checked["violations"] == []
    assert checked["total_cost_usd"] == pytest.approx(plan["summary"]["total_cost_usd"], rel=1e-9)
    assert f"${checked['total_cost_usd']:.4f}" in run("validate", plan_file, "--plain").stdout


def test_validate_lists_violations_in_json_and_exits_4(plan_file, tmp_path):
    plan = json.loads(plan_file.read_text())
    plan["summary"]["total_cost_usd"] *= 2
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(plan))
    result = run("validate", broken, "--json", code=4)
    data = json.loads(result.stdout)
    assert data["ok"] is False and {v["constraint"] for v in data["violations"]} == {"cost"}
    assert result.stderr.startswith("hetplan: check failed: plan violates cost")
    rows = table(run("validate", broken, "--plain", code=4).stdout, "Plan violates")
    assert [r[0] for r in rows[1:]] == [v["constraint"] for v in data["violations"]]


def test_json_is_the_same_data_as_the_table_predict():
    data = json.loads(run("predict", "--trace", "wits", "--horizon", "6", "--json").stdout)
    rows = table(run("predict", "--trace", "wits", "--horizon", "6", "--plain").stdout, data["predictor"])
    header = rows[0]
    assert len(rows) - 1 == len(data["rows"]) == 6
    for row, record in zip(rows[1:], data["rows"]):
        assert number(row[header.index("pred mean")]) == pytest.approx(round(record["mean_rps"], 1))
        assert number(row[header.index("actual quantile")]) == pytest.approx(round(record["actual_q"], 1))


def test_json_is_the_same_data_as_the_table_simulate_and_observe(plan_file, tmp_path):
    log = tmp_path / "log.csv"
    data = json.loads(run("simulate", "--plan", plan_file, "--json", "--log", log).stdout)
    rows = dict(table(run("simulate", "--plan", plan_file, "--plain").stdout, "Replay of"))
    assert number(rows["violations"]) == pytest.approx(data["replay"]["violations"])
    assert number(rows["cost_usd"]) == pytest.approx(data["replay"]["cost_usd"], rel=1e-5)
    assert rows["verdict"].startswith("keeps") == data["verdict"]["ok"]
    observed = json.loads(run("observe", log, "--json").stdout)
    assert observed["requests"] == pytest.approx(data["replay"]["requests"], rel=0.01)
    changes = table(run("observe", log, "--plain").stdout, "log.csv")
    header = changes[0]
    assert len(changes) - 1 == len(observed["changes"]) > 0
    for row, record in zip(changes[1:], observed["changes"]):
        assert row[header.index("model")] == record["model"]
        assert number(row[header.index("requests")]) == pytest.approx(round(record["requests"]))


def test_json_is_the_same_data_as_the_table_compare():
    args = ("compare", "--hours", "1", "--policies", "vm-peak,lambda-only,mark-like")
    data = json.loads(run(*args, "--json").stdout)
    rows = table(run(*args, "--plain").stdout, "wits")
    header = rows[0]
    assert [r[0] for r in rows[1:]] == [r["policy"] for r in data["rows"]] == ["vm-peak", "lambda-only", "mark-like"]
    for row, record in zip(rows[1:], data["rows"]):
        assert number(row[header.index("cost")]) == pytest.approx(round(record["cost_usd"], 2))
        assert number(row[header.index("SLO violations")]) == pytest.approx(round(record["violation_pct"], 3))
    assert data["best_baseline"] in {"vm-peak", "lambda-only", "mark-like"}
    for row, record in zip(rows[1:], data["rows"]):  # each row states its tools, in the table and the JSON
        for column, field in (("predictor", "predictor"), ("headroom", "headroom"), ("instance types", "instance_types")):
            assert row[header.index(column)] == str(record[field])
        assert number(row[header.index("$/M req")]) == pytest.approx(round(record["cost_per_million_usd"], 3))
        assert int(row[header.index("windows over")]) == record["windows_over"]
    assert [r["predictor"] for r in data["rows"]][1:] == ["auto", "auto"] and data["rows"][2]["overflow"] is True


def test_json_is_the_same_data_as_the_table_sweep(tmp_path):
    args = ("sweep", "--slo", "100ms,500ms", "--hours", "0.5", "--executor", "serial", "--time-limit", "20s")
    data = json.loads(run(*args, "--json").stdout)
    rows = table(run(*args, "--plain").stdout, "Sweep")
    header = rows[0]
    assert len(rows) - 1 == len(data["rows"]) == data["scenarios"] == 2
    for row, record in zip(rows[1:], data["rows"]):
        assert number(row[header.index("cost")]) == pytest.approx(round(record["total_cost_usd"], 2))
        assert (row[0] == "★") == record["pareto"]


def test_piped_output_is_never_cut(tmp_path):
    """A real process with stdout piped: every name whole, no ellipsis, in a table wider than 80 columns."""
    env = {**os.environ, "COLUMNS": "60"}
    done = subprocess.run([sys.executable, "-m", "hetplan", "solve", "--slo", "200ms", "--hours", "1",
                           "--instance-types", "c5.2xlarge,c5.xlarge", "--out", str(tmp_path / "p.json")],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    plan = json.loads((tmp_path / "p.json").read_text())
    used = {o["option"].split("@")[1] for o in plan["options"] if o["platform"] == "vm"}
    assert "…" not in done.stdout and used and all(f"{name} (vm)" in done.stdout for name in used)
    assert max(len(line) for line in done.stdout.splitlines()) > 80
    shown = subprocess.run([sys.executable, "-m", "hetplan", "catalog"], capture_output=True, text=True, env=env,
                           timeout=120)
    assert "…" not in shown.stdout and "c6i.4xlarge" in shown.stdout and "g4dn.xlarge" in shown.stdout


def test_exit_3_when_the_solver_stops_without_a_plan(tmp_path):
    out = tmp_path / "p.json"
    result = run("solve", "--slo", "200ms", "--time-limit", "0.01s", "--out", out, code=3)
    assert "found no plan within --time-limit" in result.stderr and not out.exists()


def test_exit_130_on_ctrl_c_from_a_command():
    @handle_errors
    def interrupted():
        raise KeyboardInterrupt

    import typer

    local = typer.Typer()
    local.command("a")(interrupted)
    local.command("b")(lambda: None)
    result = CliRunner().invoke(local, ["a"])
    assert result.exit_code == 130 and "interrupted" in result.stderr


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child process")
def test_exit_130_on_ctrl_c_and_no_partial_file(tmp_path):
    """A real Ctrl-C (SIGINT) in the middle of a solve: exit 130, no plan and no temporary file left."""
    out = tmp_path / "plan.json"
    # a terminal's Ctrl-C: SIGINT handled by default in the child, even where this test runs in the background
    # (a non-interactive shell starts background jobs with SIGINT ignored, and exec keeps that)
    child = subprocess.Popen([sys.executable, "-m", "hetplan", "solve", "--slo", "200ms", "--out", str(out)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    time.sleep(3.0)  # past start-up, inside the planning work
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=120)
    assert child.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def _without_mxnet(*args: str) -> subprocess.CompletedProcess:
    """``hetplan ARGS`` in a process where mxnet cannot be imported (as after ``pip install hetplan``)."""
    code = ("import sys; sys.modules['mxnet'] = None; "  # find_spec and import both see it as absent
            f"sys.argv = ['hetplan', *{list(args)!r}]; from hetplan.cli import main; main()")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)


def test_the_planner_runs_without_mxnet_and_profile_says_how_to_install_it(tmp_path):
    import tomllib
    from pathlib import Path

    import hetplan

    project = tomllib.loads((Path(hetplan.__file__).parent / "pyproject.toml").read_text())["project"]
    assert not any(d.startswith("mxnet") for d in project["dependencies"])
    assert any(d.startswith("mxnet") for d in project["optional-dependencies"]["profile"])
    solved = _without_mxnet("solve", "--slo", "200ms", "--hours", "0.5", "--out", str(tmp_path / "p.json"))
    assert solved.returncode == 0, solved.stderr
    assert json.loads((tmp_path / "p.json").read_text())["summary"]["total_cost_usd"] > 0
    profiled = _without_mxnet("profile", "--quick", "--out", str(tmp_path / "profile.csv"))
    assert profiled.returncode == 2
    assert profiled.stderr.strip() == ("hetplan: error: install the profiler: pip install 'hetplan[profile]' "
                                       "(mxnet is not installed)")
    assert not (tmp_path / "profile.csv").exists()


def test_profile_merge_json_counts_the_rows_written(tmp_path):
    from hetplan.planner.catalog.tables import DEFAULT_PROFILE

    merged = tmp_path / "merged.csv"
    data = json.loads(run("profile", "merge", DEFAULT_PROFILE, DEFAULT_PROFILE, "--out", merged, "--json").stdout)
    rows = merged.read_text().strip().splitlines()[1:]
    assert data["rows"] == len(rows) == len(DEFAULT_PROFILE.read_text().strip().splitlines()) - 1


def test_command_help_is_rich_and_the_command_list_stays_plain():
    """Rich help (panels, markup) below the top level; ``hetplan --help`` stays plain click text, which keeps
    it within its start-up budget (benchmarks/bench_startup.py)."""
    solve = subprocess.run([sys.executable, "-m", "hetplan", "solve", "--help"], capture_output=True, text=True, timeout=60)
    assert solve.returncode == 0 and "─ Options ─" in solve.stdout and "[bold]" not in solve.stdout
    assert "200ms" in solve.stdout and "$" in solve.stdout  # units in the options' help
    top = subprocess.run([sys.executable, "-m", "hetplan", "--help"], capture_output=True, text=True, timeout=60)
    assert top.returncode == 0 and "Commands:" in top.stdout and "─" not in top.stdout
    assert "130 interrupted" in top.stdout
