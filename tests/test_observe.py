"""Request logs → corrected profile: hand-computable blends, drift flags, malformed lines, the observe command."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from hetplan.planner.catalog import load_profile
from hetplan.errors import HetplanError
from hetplan.planner.catalog.observe import (profile_with_feedback, read_log, update_profile, weighted_quantile,
                                     write_log)

HOUR = 3600.0


@pytest.fixture(scope="module")
def profile():
    return load_profile()


def requests(model, latencies, platform="vm", instance_type="c5.2xlarge", memory_mb=np.nan, t=0.0, cold=False,
             correct=np.nan):
    n = len(latencies)
    return pd.DataFrame({"timestamp": np.broadcast_to(np.asarray(t, float), n).copy(), "model": model, "platform": platform,
                         "instance_type": instance_type if platform == "vm" else "",
                         "memory_mb": memory_mb if platform == "lambda" else np.nan,
                         "latency_ms": np.asarray(latencies, float), "cold_start": np.broadcast_to(cold, n).copy(),
                         "correct": np.broadcast_to(np.asarray(correct, float), n).copy()})


def p50(frame, model, platform, config):
    rows = frame[(frame.model == model) & (frame.platform == platform) & (frame.batch == 1)]
    rows = rows[rows.instance_type == config] if platform == "vm" else rows[rows.memory_mb == config]
    return float(rows.latency_p50_ms.iloc[0])


# --- the blend -------------------------------------------------------------------------------------------

def test_no_observations_leave_the_profile_unchanged(profile):
    new, changes = update_profile(profile, requests("inception_bn", [])[0:0])
    pd.testing.assert_frame_equal(new, profile)
    assert changes.empty
    # a model the profile does not know changes nothing, and is reported
    new, changes = update_profile(profile, requests("mystery_net", [50.0] * 10))
    pd.testing.assert_frame_equal(new, profile)
    assert list(changes.quantity) == ["not in the profile"] and not changes.drifted.any()


def test_vm_blend_is_weighted_by_count_and_scales_the_family_from_its_busy_latency(profile):
    # inception_bn's busy latency on c5 is c5.large's 35 ms; 100 fresh observations of 45.5 ms against a prior of 100
    new, changes = update_profile(profile, requests("inception_bn", [45.5] * 100), prior_weight=100)
    blended = (100 * 35 + 100 * 45.5) / 200  # 40.25
    assert p50(new, "inception_bn", "vm", "c5.large") == pytest.approx(blended)
    assert p50(new, "inception_bn", "vm", "c5.2xlarge") == pytest.approx(14 * blended / 35)  # same factor
    row = changes.iloc[0]
    assert (row.profiled, row.observed, row.new) == pytest.approx((35.0, 45.5, blended))
    assert row.change_pct == pytest.approx(15.0) and row.drift_pct == pytest.approx(30.0)
    # other models are untouched
    assert p50(new, "squeezenet", "vm", "c5.large") == 20.0


def test_older_observations_count_less(profile):
    log = requests("inception_bn", [45.5] * 100, t=0.0)
    new, changes = update_profile(profile, log, now=HOUR, half_life_s=HOUR, prior_weight=100)
    assert changes.weight.iloc[0] == pytest.approx(50.0)  # one half-life old: half weight
    assert p50(new, "inception_bn", "vm", "c5.large") == pytest.approx((100 * 35 + 50 * 45.5) / 150)
    # observations after `now` are not seen
    new2, _ = update_profile(profile, pd.concat([log, requests("inception_bn", [500.0] * 100, t=2 * HOUR)]),
                             now=HOUR, half_life_s=HOUR, prior_weight=100)
    pd.testing.assert_frame_equal(new2, new)


def test_many_recent_observations_give_the_observed_quantile(profile):
    latencies = np.tile([80.0, 90.0, 100.0, 110.0], 50_000)
    log = requests("squeezenet", latencies, platform="lambda", memory_mb=2048.0)
    assert weighted_quantile(latencies[:4], np.ones(4), 0.5) == 90.0
    new, _ = update_profile(profile, log, prior_weight=100)
    assert p50(new, "squeezenet", "lambda", 2048.0) == pytest.approx(90.0, rel=1e-3)
    exact, _ = update_profile(profile, log.iloc[:4], prior_weight=0)
    assert p50(exact, "squeezenet", "lambda", 2048.0) == 90.0
    # the other memory sizes keep their figures
    assert p50(new, "squeezenet", "lambda", 1024.0) == 160.0


def test_lambda_blend_load_time_from_cold_starts_and_accuracy_from_correctness(profile):
    warm = requests("squeezenet", [100.0] * 10, platform="lambda", memory_mb=2048.0, correct=1.0)
    cold = requests("squeezenet", [100.0 + 300.0] * 10, platform="lambda", memory_mb=2048.0, cold=True, correct=0.0)
    new, changes = update_profile(profile, pd.concat([warm, cold], ignore_index=True), prior_weight=10,
                                  accuracy_prior_weight=80)
    warm_p50 = (10 * 85 + 10 * 100) / 20  # cold requests do not count for the warm latency
    assert p50(new, "squeezenet", "lambda", 2048.0) == pytest.approx(warm_p50)
    load = (10 * 189 + 10 * (400 - warm_p50)) / 20
    rows = new[(new.model == "squeezenet") & (new.platform == "lambda") & (new.memory_mb == 2048.0)]
    assert rows.load_time_ms.unique() == pytest.approx([load])
    # Beta mean: (80 · 0.554 + 10 correct) / (80 + 20)
    assert new[new.model == "squeezenet"].accuracy_top1.unique() == pytest.approx([100 * (80 * 0.554 + 10) / 100])
    assert (new[new.model == "squeezenet"].accuracy_source == "measured").all()
    assert set(changes.quantity) == {"latency_p50_ms", "load_time_ms", "accuracy_top1"}


def test_drift_is_flagged_beyond_the_threshold_only(profile):
    # resnet200's busy c5 latency is c5.large's 232 ms, whichever size served the requests
    slow = requests("resnet200", [232 * 1.3] * 500, instance_type="c5.2xlarge")
    _, changes = update_profile(profile, slow)
    assert changes.drifted.tolist() == [True]
    slight = slow.assign(latency_ms=232 * 1.1)
    _, changes = update_profile(profile, slight)
    assert changes.drifted.tolist() == [False]
    _, changes = update_profile(profile, slight, threshold=0.05)
    assert changes.drifted.tolist() == [True]
    faster = slow.assign(latency_ms=232 * 0.7)
    assert update_profile(profile, faster)[1].drifted.tolist() == [True]


# --- reading logs ----------------------------------------------------------------------------------------

GOOD = "timestamp,model,platform,instance_type,memory_mb,latency_ms,cold_start,correct\n"


def test_malformed_lines_are_reported_with_line_numbers_and_skipped_only_on_request(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text(GOOD
                    + "10,inception_bn,vm,c5.large,,40,no,yes\n"      # line 2
                    + "11,inception_bn,gpu,c5.large,,40,no,\n"        # line 3: platform
                    + "\n"                                            # line 4: blank, ignored
                    + "12,squeezenet,lambda,,2048,90,maybe,\n"        # line 5: cold_start
                    + "13,squeezenet,lambda,,2048,90,yes\n"           # line 6: too few fields
                    + "2026-11-28T10:00:00Z,squeezenet,lambda,,2048,91,TRUE,0\n")  # line 7: fine
    with pytest.raises(HetplanError, match=r"3 malformed line\(s\), the first is line 3: platform must be vm or lambda.*--skip-bad"):
        read_log(path)
    read = read_log(path, skip_bad=True)
    assert read.bad.line.tolist() == [3, 5, 6]
    assert "cold_start" in read.bad.reason.iloc[1] and "fields" in read.bad.reason.iloc[2]
    assert read.requests.line.tolist() == [2, 7]
    assert read.requests.cold_start.tolist() == [False, True]
    assert read.requests.timestamp.iloc[1] == pd.Timestamp("2026-11-28T10:00:00Z").timestamp()


def test_json_lines_logs_and_round_trips(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_text('{"timestamp": 1, "model": "squeezenet", "platform": "vm", "instance_type": "c5.large", "latency_ms": 21, "cold_start": "no"}\n'
                    'not json\n'
                    '{"timestamp": 2, "model": "squeezenet", "platform": "lambda", "memory_mb": 2048, "latency_ms": -1, "cold_start": 0}\n')
    with pytest.raises(HetplanError, match="2 malformed line.*line 2: not JSON"):
        read_log(path)
    read = read_log(path, skip_bad=True)
    assert read.bad.line.tolist() == [2, 3] and len(read.requests) == 1
    log = pd.concat([requests("inception_bn", [40.0, 41.0], t=5.0, correct=1.0),
                     requests("squeezenet", [300.0], platform="lambda", memory_mb=2048.0, cold=True)], ignore_index=True)
    for name in ("log.csv", "log.jsonl", "log.csv.gz"):
        back = read_log(write_log(log, tmp_path / name)).requests
        pd.testing.assert_frame_equal(back.drop(columns="line"), log, check_dtype=False)


def test_missing_columns_and_files_are_one_line_errors(tmp_path):
    with pytest.raises(HetplanError, match="does not exist"):
        read_log(tmp_path / "nope.csv")
    (tmp_path / "bad.csv").write_text("timestamp,model\n1,x\n")
    with pytest.raises(HetplanError, match="line 1: no column"):
        read_log(tmp_path / "bad.csv")


# --- the command and the solve hook ----------------------------------------------------------------------

@pytest.fixture()
def cli():
    from hetplan.cli import handle_errors
    from hetplan.commands.observe import observe_command

    app = typer.Typer()
    app.command("observe")(handle_errors(observe_command))
    app.command("other")(lambda: None)  # two commands: invoke as `observe ...`
    return app


def test_observe_command_flags_drift_writes_the_profile_and_needs_skip_bad(cli, tmp_path):
    log = pd.concat([requests("inception_bn", [45.5] * 400, t=100.0),
                     requests("squeezenet", [20.5] * 400, instance_type="c5.large", t=100.0)], ignore_index=True)
    path = write_log(log, tmp_path / "log.csv")
    out = tmp_path / "p2.csv"
    result = CliRunner(env={"COLUMNS": "250"}).invoke(cli, ["observe", str(path), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "DRIFT" in result.output and "1 drifted: inception_bn vm c5.* latency_p50_ms +30%" in result.output
    corrected = load_profile(out)
    assert p50(corrected, "inception_bn", "vm", "c5.large") == pytest.approx((100 * 35 + 400 * 45.5) / 500)
    with path.open("a") as handle:
        handle.write("oops\n")
    result = CliRunner().invoke(cli, ["observe", str(path), "--out", str(out)])
    assert result.exit_code == 2 and "line 802" in result.output
    result = CliRunner(env={"COLUMNS": "250"}).invoke(cli, ["observe", str(path), "--out", str(out), "--skip-bad"])
    assert result.exit_code == 0 and "skipped 1 malformed line(s)" in result.output and "line 802" in result.output


def test_profile_with_feedback_writes_a_loadable_corrected_profile(tmp_path):
    from hetplan.planner.catalog import DEFAULT_PROFILE

    log = write_log(requests("inception_bn", [45.5] * 1000, t=0.0), tmp_path / "log.csv")
    path = profile_with_feedback(DEFAULT_PROFILE, log, prior_weight=0)
    assert path.exists()
    assert p50(load_profile(path), "inception_bn", "vm", "c5.large") == pytest.approx(45.5)
    assert profile_with_feedback(DEFAULT_PROFILE, log, prior_weight=0) == path  # cached by inputs
    assert p50(load_profile(profile_with_feedback(DEFAULT_PROFILE, log, out=tmp_path / "p.csv")), "inception_bn", "vm",
               "c5.large") == pytest.approx((100 * 35 + 1000 * 45.5) / 1100)


def test_make_plan_with_feedback_plans_with_the_corrected_latency(tmp_path):
    pytest.importorskip("highspy")
    from hetplan.planner.optimize.workflow import make_plan_with_feedback
    from hetplan.planner.optimize.workflow import PlanRequest

    log = write_log(requests("inception_bn", [45.5] * 1000, t=0.0), tmp_path / "log.csv")
    plan = make_plan_with_feedback(PlanRequest(slo_s=0.2, hours=0.25, time_limit_s=10), log, prior_weight=0).to_dict()
    latency = {o["option"]: o["latency_ms"] for o in plan["options"]}
    assert latency["vm:inception_bn@c5.large"] == pytest.approx(45.5)  # the log's c5.2xlarge speed, for the family
    assert latency["vm:squeezenet@c5.large"] == pytest.approx(20.0)
    assert "hetplan-feedback" in plan["inputs"]["profile"]["path"]
