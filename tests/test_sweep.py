"""Sweeps: a real two-process Dask cluster against direct solves, Pareto marking, resume, failures, the CLI."""

import json
import os
import re
import shutil

import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from hetplan.cli import handle_errors
from hetplan.commands.sweep import sweep_command
from hetplan.errors import HetplanError
from hetplan.planner.whatif import sweep
from hetplan.planner.optimize.plan import Plan
from hetplan.planner.whatif.sweep import Scenario, pareto_mask, run_sweep, scenario_grid
from hetplan.planner.optimize.workflow import PlanRequest, make_plan

BASE = PlanRequest(slo_s=1.0, hours=1, gap=1e-4)  # 12 windows of WITS; a tight gap so both sides prove optimality
GRID = scenario_grid([0.005, 0.1, 0.5], [0.65, 0.70])  # 5 ms is below every model's latency: infeasible


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep")
    calls = []
    frame = run_sweep(GRID, BASE, out_dir=out, workers=2, on_result=lambda row, resumed: calls.append(resumed))
    return out, frame, calls


def test_grid_order_ids_and_bad_lists():
    assert [s.id for s in scenario_grid([0.1, 0.2], [0.7, 0.77], [1, 1.5])][:3] == [
        "slo100ms-acc70-load1", "slo100ms-acc70-load1.5", "slo100ms-acc77-load1"]
    assert Scenario(0.2, 0.75, 2).request(BASE) == PlanRequest(slo_s=0.2, mean_accuracy=0.75, load_scale=2, hours=1, gap=1e-4)
    for bad, words in [(([], [0.7]), "--slo is empty"), (([0.1, 0.1], [0.7]), "lists 0.1 twice"),
                       (([0.1], [75.0]), "above 100%"), (([0.1], [0.7], [0]), "positive")]:
        with pytest.raises(HetplanError, match=words):
            scenario_grid(*bad)


def test_pareto_marking_on_a_hand_made_table():
    frame = pd.DataFrame([
        # scenario, slo_ms, accuracy target, load, status, cost
        ("a", 100, 0.70, 1, "optimal", 10.0),   # tight and cheap: on the front
        ("b", 200, 0.70, 1, "optimal", 10.0),   # looser SLO at the same cost and accuracy as a: dominated
        ("c", 200, 0.75, 1, "optimal", 12.0),   # more accurate than a, dearer: on the front
        ("d", 500, 0.70, 1, "optimal", 8.0),    # loosest but cheapest: on the front
        ("e", 500, 0.65, 1, "feasible", 9.0),   # dearer than d, less accurate, same SLO: dominated
        ("f", 100, 0.75, 1, "infeasible", None),  # no plan: never marked, dominates nothing
        ("g", 500, 0.65, 2, "optimal", 30.0),   # another load: compared only with its own load (alone: front)
        ("h", 100, 0.70, 1, "optimal", 10.0),   # exact twin of a: both stay
    ], columns=["scenario", "slo_ms", "mean_accuracy_target", "load_scale", "status", "total_cost_usd"])
    marked = dict(zip(frame.scenario, pareto_mask(frame)))
    assert marked == {"a": True, "b": False, "c": True, "d": True, "e": False, "f": False, "g": True, "h": True}


def test_dask_sweep_equals_direct_solves(swept):
    out, frame, calls = swept
    assert list(frame.scenario) == [s.id for s in GRID] and calls == [False] * len(GRID)
    workers = set(frame.worker)
    assert len(workers) == 2 and all(int(w.split(":")[1]) != os.getpid() for w in workers)  # solved in two processes
    for scenario, row in zip(GRID, frame.to_dict("records")):
        if scenario.slo_s < 0.01:
            assert row["status"] == "infeasible" and "relax --slo" in row["reason"] and pd.isna(row["total_cost_usd"])
            assert not (out / "plans" / f"{scenario.id}.json").exists()
            continue
        direct = make_plan(scenario.request(BASE))
        assert row["status"] == direct.meta["solver"]["status"] == "optimal"
        assert row["total_cost_usd"] == pytest.approx(direct.summary["total_cost_usd"], rel=1e-4)
        assert row["mean_accuracy"] == pytest.approx(direct.summary["mean_accuracy"], abs=1e-3)
        assert row["mean_accuracy"] >= scenario.mean_accuracy - 1e-9
        written = Plan.from_dict(json.loads((out / row["plan"]).read_text()))
        assert written.summary["total_cost_usd"] == pytest.approx(row["total_cost_usd"], rel=1e-12)
        assert written.meta["targets"]["slo_ms"] == pytest.approx(scenario.slo_s * 1000)
    on_disk = pd.read_csv(out / "summary.csv")
    assert list(on_disk.scenario) == list(frame.scenario) and list(on_disk.pareto) == list(frame.pareto)
    assert frame.pareto.sum() == 4  # every plan here buys a tighter SLO or a higher accuracy with its cost


def test_resume_solves_only_what_is_missing(swept, tmp_path):
    out, frame, _ = swept
    again = tmp_path / "again"
    shutil.copytree(out, again)
    summary = pd.read_csv(again / "summary.csv")
    lost_row, lost_plan = GRID[3].id, GRID[4].id  # killed before its row was written; its plan file lost
    summary[summary.scenario != lost_row].to_csv(again / "summary.csv", index=False)
    (again / "plans" / f"{lost_plan}.json").unlink()
    calls = []
    resumed = run_sweep(GRID, BASE, out_dir=again, resume=True, executor="serial",
                        on_result=lambda row, kept: calls.append((row["scenario"], kept)))
    redone = {s for s, kept in calls if not kept}
    assert redone == {lost_row, lost_plan} and len(calls) == len(GRID)
    for old, new in zip(frame.to_dict("records"), resumed.to_dict("records")):
        if old["scenario"] in redone:  # solved again, here (serial: this process)
            assert new["worker"].endswith(f":{os.getpid()}") and new["finished_utc"] > old["finished_utc"]
            assert new["total_cost_usd"] == pytest.approx(old["total_cost_usd"], rel=1e-4)
        else:  # untouched: same timestamp, same worker
            assert (new["finished_utc"], new["worker"]) == (old["finished_utc"], old["worker"])
    assert (again / "plans" / f"{lost_plan}.json").exists()
    assert list(pd.read_csv(again / "summary.csv").scenario) == [s.id for s in GRID]
    with pytest.raises(HetplanError, match="hours"):  # another question in the same folder
        run_sweep(GRID, PlanRequest(slo_s=1.0, hours=2, gap=1e-4), out_dir=again, resume=True, executor="serial")


def test_existing_scheduler_and_process_pool(tmp_path):
    from dask.distributed import LocalCluster

    grid = [Scenario(0.005, 0.65), Scenario(0.5, 0.65)]
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None, protocol="tcp") as cluster:
        assert cluster.scheduler_address.startswith("tcp://")
        remote = run_sweep(grid, BASE, scheduler=cluster.scheduler_address)
    local = run_sweep(grid, BASE, executor="processes", workers=2)
    for frame in (remote, local):
        assert list(frame.status) == ["infeasible", "optimal"] and list(frame.pareto) == [False, True]
    assert remote.total_cost_usd[1] == pytest.approx(local.total_cost_usd[1], rel=1e-4)


def test_unreachable_scheduler_is_one_line(monkeypatch):
    monkeypatch.setattr(sweep, "CONNECT_TIMEOUT_S", 1.0)
    with pytest.raises(HetplanError, match="cannot reach the Dask scheduler at tcp://127.0.0.1:1 .*dask scheduler"):
        run_sweep([Scenario(0.5, 0.65)], BASE, scheduler="tcp://127.0.0.1:1")


def test_a_crashing_scenario_is_a_row(monkeypatch):
    def broken(request):
        if request.slo_s < 0.2:
            raise ZeroDivisionError("boom")
        return real(request)

    real = make_plan
    monkeypatch.setattr("hetplan.planner.optimize.workflow.make_plan", broken)
    frame = run_sweep([Scenario(0.1, 0.65), Scenario(0.5, 0.65)], BASE, executor="serial")
    assert list(frame.status) == ["error", "optimal"] and frame.reason[0].startswith("ZeroDivisionError: boom")


app = typer.Typer()
app.command("sweep")(handle_errors(sweep_command))
app.command("noop")(lambda: None)  # two commands, so "sweep" is a sub-command as in hetplan's app


def test_cli_table_plot_and_resume(swept, tmp_path):
    out, frame, _ = swept
    again = tmp_path / "cli"
    shutil.copytree(out, again)
    result = CliRunner().invoke(app, ["sweep", "--slo", "5ms,100ms,500ms", "--mean-accuracy", "65%,0.70", "--hours", "1",
                                      "--gap", "1e-4", "--out", str(again), "--resume", "--plot", str(tmp_path / "f.png")])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    rows = [line for line in lines if re.match(r"^★? +\d+ms ", line)]
    assert [line.startswith("★") for line in rows] == [False, False, True, True, True, True]
    assert "relax --slo to ≥ 20ms" in result.output
    assert (tmp_path / "f.png").read_bytes()[:4] == b"\x89PNG"
    assert pd.read_csv(again / "summary.csv").finished_utc.tolist() == frame.finished_utc.tolist()  # nothing re-solved


@pytest.mark.parametrize("args, words", [
    (["--slo", "100ms,,200ms"], "--slo '100ms,,200ms' has an empty item"),
    (["--slo", "100"], "--slo: duration '100' has no unit"),
    (["--slo", "100ms", "--mean-accuracy", "0.7,0.7"], "--mean-accuracy lists 0.7 twice"),
    (["--slo", "100ms", "--load-scale", "x"], "cannot read load scale 'x'"),
    (["--slo", "100ms", "--resume"], "--resume needs --out"),
    (["--slo", "100ms", "--scheduler", "host:8786"], "tcp://HOST:8786"),
    (["--slo", "100ms", "--plot", "f.pdf"], "write a .png file"),
    (["--slo", "100ms", "--scheduler", "tcp://h:8786", "--workers", "2"], "--workers sizes the local cluster"),
    (["--slo", "100ms", "--executor", "threads"], "unknown executor 'threads'"),
    (["--slo", "100ms", "--trace", "nope.csv"], "--trace 'nope.csv' does not exist"),
])
def test_cli_errors_are_one_line(args, words):
    result = CliRunner().invoke(app, ["sweep", *args])
    assert result.exit_code == 2 and words in result.output and result.output.count("\n") == 1, result.output
