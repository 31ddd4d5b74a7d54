"""A plan is a promise: solve, then replay the plan exactly as written, request by request, and check the SLO.

Each case runs the real CLI (typer's runner) end to end: ``hetplan solve`` writes the plan, ``hetplan
simulate --check --json`` replays it and returns the verdict.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from hetplan.planner.catalog import DATA_DIR
from hetplan.cli import app

runner = CliRunner(mix_stderr=False) if "mix_stderr" in CliRunner.__init__.__code__.co_varnames else CliRunner()
WITS = str(DATA_DIR / "traces" / "wits.csv.gz")
BERKELEY = str(DATA_DIR / "traces" / "berkeley.csv.gz")


def solve(out, *args):
    result = runner.invoke(app, ["solve", "--out", str(out), "--json", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def check(plan):
    result = runner.invoke(app, ["simulate", "--plan", str(plan), "--check", "--json"])
    assert result.exit_code in (0, 4), result.output
    return result.exit_code, json.loads(result.stdout)


def bursty_trace(path, seconds=7200, seed=7):
    """150 req/s with 4-second bursts to 600 req/s every 100 s: 4% of seconds, so a window's 95th percentile
    of per-second rates does not see them, while they hold 14% of the requests."""
    rng = np.random.default_rng(seed)
    t = np.arange(seconds)
    rate = 150 + np.where(t % 100 < 4, 450, 0)
    pd.DataFrame({"second": t, "requests": rng.poisson(rate)}).to_csv(path, index=False)
    return str(path)


def test_sizing_on_a_per_second_quantile_misses_the_slo_and_the_late_share_rules_keep_it(tmp_path):
    trace = bursty_trace(tmp_path / "bursty.csv")
    solve(tmp_path / "q.json", "--slo", "200ms", "--trace", trace, "--sizing", "quantile")
    code, old = check(tmp_path / "q.json")
    assert code == 4 and not old["verdict"]["ok"] and old["verdict"]["late_pct"] > 5.0
    for name, extra in (("overflow", []), ("vms-only", ["--no-overflow"])):
        plan = solve(tmp_path / f"{name}.json", "--slo", "200ms", "--trace", trace, *extra)
        code, new = check(tmp_path / f"{name}.json")
        verdict = new["verdict"]
        assert code == 0 and verdict["ok"], (name, verdict)
        assert verdict["late_pct"] <= 1.0 and verdict["windows_over"] <= verdict["windows_over_limit"]
        assert abs(verdict["cost_difference_pct"]) <= 2.0, (name, verdict)
        assert verdict["stated_cost_usd"] == pytest.approx(plan["summary"]["total_cost_usd"])
        rule = plan["load"]["sizing"]
        assert rule["rule"] == ("overflow" if name == "overflow" else "late-share")
        if name == "overflow":
            assert plan["runtime"]["overflow"]["option"].startswith("lambda:")
            assert any(w.get("warm_pool") for w in plan["windows"])
        else:
            assert plan["runtime"]["overflow"] is None and rule["target"] == pytest.approx(0.005)


@pytest.mark.parametrize("trace,extra", [(WITS, []), (BERKELEY, ["--gaps", "interpolate"])], ids=["wits", "berkeley"])
def test_the_default_plan_of_a_shipped_trace_slice_keeps_its_slo(tmp_path, trace, extra):
    plan = solve(tmp_path / "plan.json", "--slo", "200ms", "--trace", trace, "--hours", "2", *extra)
    code, out = check(tmp_path / "plan.json")
    verdict = out["verdict"]
    assert code == 0, verdict
    assert verdict["late_pct"] <= 1.0 and verdict["windows_over"] <= verdict["windows_over_limit"]
    assert abs(verdict["cost_difference_pct"]) <= 2.0, verdict
    assert out["replay"]["requests"] == pytest.approx(plan["summary"]["requests"], rel=0.02)


def test_a_forecast_plan_keeps_its_slo_with_headroom_from_the_backtest(tmp_path):
    plan = solve(tmp_path / "plan.json", "--slo", "200ms", "--hours", "4", "--predictor", "ewma")
    headroom = [w["headroom"] for w in plan["windows"]]
    assert plan["load"]["sizing"]["seconds"] == "history" and min(headroom) > 0
    assert plan["load"]["sizing"]["headroom"] == pytest.approx(max(headroom))
    code, out = check(tmp_path / "plan.json")
    assert code == 0 and out["verdict"]["late_pct"] <= 1.0, out["verdict"]


def test_an_older_plan_without_runtime_replays_with_a_warning_naming_the_assumption(tmp_path):
    solve(tmp_path / "plan.json", "--slo", "200ms", "--hours", "1")
    data = json.loads((tmp_path / "plan.json").read_text())
    del data["runtime"]
    (tmp_path / "old.json").write_text(json.dumps(data))
    result = runner.invoke(app, ["simulate", "--plan", str(tmp_path / "old.json"), "--json"])
    assert result.exit_code == 0
    warning = result.stderr.strip().splitlines()
    assert len(warning) == 1 and "states no runtime" in warning[0] and "random router" in warning[0]
    assert json.loads(result.stdout)["replay"]["overflow_requests"] == 0


@pytest.mark.parametrize("path,value,field", [
    (("windows", 0, "assignments", 0, "count"), "two", "$.windows[0].assignments[0].count"),
    (("runtime", "router"), "sticky", "$.runtime.router"),
    (("targets", "percentile"), 1.5, "$.targets.percentile"),
])
def test_a_malformed_plan_is_refused_with_the_field_named(tmp_path, path, value, field):
    solve(tmp_path / "plan.json", "--slo", "200ms", "--hours", "1")
    data = json.loads((tmp_path / "plan.json").read_text())
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    (tmp_path / "bad.json").write_text(json.dumps(data))
    for command in (["simulate", "--plan"], ["validate"], ["show"]):
        result = runner.invoke(app, [*command, str(tmp_path / "bad.json")])
        assert result.exit_code == 2, (command, result.output)
        assert field in result.output and "Traceback" not in result.output
