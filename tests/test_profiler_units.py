"""Profiler pieces that need no mxnet: shapes, statistics, CSV handling, scaling, names, CLI errors."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from hetplan.commands.profile import profile_app
from hetplan.errors import HetplanError
from hetplan.profiler import cgroups
from hetplan.profiler.catalog import PAPER_MODELS, read_catalog, resolve_models
from hetplan.profiler.profile_csv import append_row, merge_profiles, prepare_output, read_rows
from hetplan.profiler.rows import Accuracy, Job, scaled_row
from hetplan.profiler.shapes import lambda_shapes, lambda_vcpus, parse_int_list, vm_shapes
from hetplan.profiler.stats import Repetitions, median_moved, percentile, should_stop
from hetplan.profiler.weights import find_weights
from hetplan.planner.catalog.schema import PROFILE_COLUMNS


def row(**values) -> dict:
    base = dict.fromkeys(PROFILE_COLUMNS, "")
    base.update(model="m", platform="vm", instance_type="local-1vcpu", memory_mb="1024", vcpus="1.0", batch="1",
                latency_p50_ms="100.0", latency_p90_ms="110.0", latency_p99_ms="120.0", throughput_rps="10.0",
                peak_memory_mb="300.0", load_time_ms="2000.0", timestamp="2026-01-01T00:00:00+00:00")
    base.update({k: str(v) for k, v in values.items()})
    return base


# --- shapes ---------------------------------------------------------------------------------------

def test_lambda_share_follows_aws_rule():
    assert lambda_vcpus(1769) == pytest.approx(1.0)
    assert lambda_vcpus(512) == pytest.approx(512 / 1769)
    assert lambda_vcpus(10240) == pytest.approx(10240 / 1769)
    assert lambda_vcpus(20000) == 6.0
    shapes = lambda_shapes([512, 3008], host_cpus=2)
    assert [s.cores for s in shapes] == [1, 2]
    assert shapes[1].cpu_quota == pytest.approx(3008 / 1769, abs=1e-4)
    assert shapes[0].memory_limit_mb == 512 and shapes[0].instance_type == ""


@pytest.mark.parametrize("memory", [64, 127, 10241, 20000])
def test_lambda_memory_outside_limits_is_rejected(memory):
    with pytest.raises(HetplanError, match="outside 128-10240 MB"):
        lambda_shapes([memory], host_cpus=2)


@pytest.mark.parametrize("text", ["0", "-1", "a", "1,,2", "1.5", ""])
def test_bad_integer_lists_are_rejected(text):
    with pytest.raises(HetplanError, match="bad vcpus"):
        parse_int_list(text, "vcpus")


def test_integer_lists_are_sorted_and_deduplicated():
    assert parse_int_list("4, 1,2,1", "batch sizes") == [1, 2, 4]


def test_vm_shapes_are_named_and_checked_against_host():
    assert [s.instance_type for s in vm_shapes([1, 2], 2, 4096, None)] == ["local-1vcpu", "local-2vcpu"]
    assert vm_shapes([2], 2, 8192, "c5.xlarge")[0].instance_type == "c5.xlarge"
    with pytest.raises(HetplanError, match="bad vcpus 3"):
        vm_shapes([3], 2, 4096, None)
    with pytest.raises(HetplanError, match="at most one --vcpus"):
        vm_shapes([1, 2], 2, 4096, "c5.xlarge")


# --- statistics -------------------------------------------------------------------------------------

def test_percentile_matches_numpy():
    values = [5.0, 1.0, 4.0, 2.0, 3.0, 10.0, 7.5]
    for q in (0, 25, 50, 90, 99, 100):
        assert percentile(values, q) == pytest.approx(np.percentile(values, q))


def test_stopping_rule():
    reps = Repetitions(minimum=10, maximum=50, seconds=100.0, chunk=5, tolerance=0.01)
    assert not should_stop([1.0] * 9, reps, 0.0, calm_checks=5)  # minimum first
    assert not should_stop([1.0] * 10, reps, 0.0, calm_checks=1)
    assert should_stop([1.0] * 10, reps, 0.0, calm_checks=2)  # stable twice
    assert should_stop([1.0] * 10, reps, 100.0, calm_checks=0)  # out of time
    assert should_stop([1.0] * 50, reps, 0.0, calm_checks=0)  # out of calls
    assert median_moved([1.0] * 10 + [2.0] * 10, chunk=5, tolerance=0.01)
    assert not median_moved([1.0] * 20, chunk=5, tolerance=0.01)


# --- CSV ------------------------------------------------------------------------------------------

def test_append_resume_cuts_torn_line_and_refuses_overwrite(tmp_path):
    out = tmp_path / "p.csv"
    assert prepare_output(out, resume=False) == set()
    append_row(out, row(model="a"))
    with open(out, "a") as handle:
        handle.write("b,vm,local-1vcpu,10")  # a torn line, as a kill mid-write would leave
    with pytest.raises(HetplanError, match="--resume"):
        prepare_output(out, resume=False)
    keys = prepare_output(out, resume=True)
    assert keys == {("a", "vm", "local-1vcpu", "1024", "1")}
    assert out.read_text().endswith("\n") and "b,vm" not in out.read_text()
    assert out.read_text().splitlines()[0] == ",".join(PROFILE_COLUMNS)


def test_resume_rejects_a_file_that_is_not_a_profile(tmp_path):
    out = tmp_path / "p.csv"
    out.write_text("a,b\n1,2\n")
    with pytest.raises(HetplanError, match="not a profile"):
        prepare_output(out, resume=True)


def test_merge_keeps_newest_row_per_key(tmp_path):
    first, second, merged = tmp_path / "1.csv", tmp_path / "2.csv", tmp_path / "m.csv"
    for path in (first, second):
        prepare_output(path, resume=False)
    append_row(first, row(model="a", latency_p50_ms=1, timestamp="2026-01-02T00:00:00+00:00"))
    append_row(first, row(model="b", instance_type="c5.large", latency_p50_ms=2))
    append_row(second, row(model="a", latency_p50_ms=3, timestamp="2026-01-01T00:00:00+00:00"))
    append_row(second, row(model="b", instance_type="c5.xlarge", latency_p50_ms=4))
    assert merge_profiles([first, second], merged) == 3
    rows = read_rows(merged)
    assert [(r["model"], r["instance_type"], r["latency_p50_ms"]) for r in rows] == [
        ("a", "local-1vcpu", "1"), ("b", "c5.large", "2"), ("b", "c5.xlarge", "4")]
    result = CliRunner().invoke(profile_app, ["merge", str(first), str(second), "--out", str(tmp_path / "c.csv")])
    assert result.exit_code == 0, result.output
    assert read_rows(tmp_path / "c.csv") == rows


# --- weights ----------------------------------------------------------------------------------------

def test_weights_are_found_by_model_architecture_or_checkpoint_name(tmp_path):
    assert find_weights(None, "resnet18", "resnet18_v1") is None
    with pytest.raises(HetplanError, match="no weights for 'resnet18'"):
        find_weights(tmp_path, "resnet18", "resnet18_v1")
    (tmp_path / "resnet18_v1-a0666292.params").write_bytes(b"")  # as the Gluon zoo names its files
    assert find_weights(tmp_path, "resnet18", "resnet18_v1").endswith("resnet18_v1-a0666292.params")
    (tmp_path / "resnet18.params").write_bytes(b"")
    assert find_weights(tmp_path, "resnet18", "resnet18_v1").endswith("/resnet18.params")
    (tmp_path / "caffenet-symbol.json").write_text("{}")
    with pytest.raises(HetplanError):  # a symbol file without its parameters is not a checkpoint
        find_weights(tmp_path, "caffenet", "caffenet")
    (tmp_path / "caffenet-0000.params").write_bytes(b"")
    assert find_weights(tmp_path, "caffenet", "caffenet").endswith("caffenet-symbol.json")


# --- scaling --------------------------------------------------------------------------------------

def test_scaled_row_divides_time_by_share_and_checks_memory():
    catalog = read_catalog()
    spec = resolve_models(["squeezenet"], catalog)[0]
    small, large = lambda_shapes([512, 3008], host_cpus=2)
    base = row(model="squeezenet", latency_p50_ms=100.0, throughput_rps=10.0, peak_memory_mb=300.0)
    scaled = scaled_row(Job(spec, large, 1, True), base, Accuracy(55.4, 78.8, "published"), "h", "1.9.1", "why")
    assert scaled["method"] == "scaled" and "not measured" in scaled["source"]
    assert scaled["latency_p50_ms"] == pytest.approx(100.0 / (3008 / 1769), rel=1e-3)
    assert scaled["throughput_rps"] == pytest.approx(10.0 * 3008 / 1769, rel=1e-3)
    too_big = dict(base, peak_memory_mb="700.0")
    unfit = scaled_row(Job(spec, small, 1, True), too_big, Accuracy(None, None, "published"), "h", "1.9.1", "why")
    assert unfit.get("latency_p50_ms") is None and "does not fit" in unfit["source"]


# --- names and CLI errors ---------------------------------------------------------------------------

def test_paper_models_resolve_to_buildable_architectures():
    specs = resolve_models(list(PAPER_MODELS), read_catalog())
    assert {s.name: s.arch for s in specs} == {
        "caffenet": "caffenet", "googlenet": "googlenet", "squeezenet": "squeezenet1.0",
        "resnet18": "resnet18_v1", "resnet200": "preresnet200b", "resnext50": "resnext50_32x4d"}
    assert {s.name: s.input_size for s in specs}["caffenet"] == 227


def invoke(*args: str):
    return CliRunner().invoke(profile_app, list(args))


def test_unknown_model_suggests_the_closest_name(tmp_path):
    result = invoke("--models", "resnet2000", "--out", str(tmp_path / "p.csv"))
    assert isinstance(result.exception, HetplanError)
    assert "unknown model 'resnet2000'" in str(result.exception) and "did you mean 'resnet200'" in str(result.exception)
    assert not (tmp_path / "p.csv").exists()


@pytest.mark.parametrize("args, message", [
    (["--lambda-memory", "100"], "outside 128-10240 MB"),
    (["--lambda-memory", "12000"], "outside 128-10240 MB"),
    (["--vcpus", "0"], "bad vcpus"),
    (["--vcpus", "64"], "bad vcpus 64"),
    (["--batch-sizes", "x"], "bad batch sizes"),
    (["--vcpus", "none", "--lambda-memory", "none"], "nothing to measure"),
    (["--dataset", "."], "needs --weights"),
    (["--weights", "/nonexistent/weights"], "does not exist"),
    (["--repetitions", "0"], "--repetitions 0 must be in [1, 1e+09]"),
])
def test_bad_arguments_raise_one_line_domain_errors(tmp_path, args, message):
    result = invoke("--models", "squeezenet", "--out", str(tmp_path / "p.csv"), *args)
    assert isinstance(result.exception, HetplanError), result.output
    assert message in str(result.exception) and "\n" not in str(result.exception)


def test_model_without_builder_is_named():
    catalog = read_catalog()
    if "inception_bn" not in catalog:
        pytest.skip("data/models.csv has no inception_bn row")
    with pytest.raises(HetplanError, match="no builder"):
        resolve_models(["inception_bn"], catalog)


def test_importing_the_cli_does_not_import_mxnet():
    code = "import sys, hetplan.commands.profile; print('mxnet' in sys.modules)"
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=os.environ, check=True)
    assert output.stdout.strip() == "False"


# --- cgroups ----------------------------------------------------------------------------------------

def test_cgroup_limits_are_written_and_removed():
    usable, reason = cgroups.support()
    if not usable:
        pytest.skip(f"cannot create cgroups here: {reason}")
    group = cgroups.create(512 / 1769, 512)
    try:
        if group.version == "v1":
            quota = int((group.cpu_dir / "cpu.cfs_quota_us").read_text())
            period = int((group.cpu_dir / "cpu.cfs_period_us").read_text())
            limit = int((group.memory_dir / "memory.limit_in_bytes").read_text())
        else:
            quota, period = map(int, (group.cpu_dir / "cpu.max").read_text().split())
            limit = int((group.memory_dir / "memory.max").read_text())
        assert quota / period == pytest.approx(512 / 1769, rel=0.01)
        assert limit == 512 * 2**20
        assert not group.oom_killed(sigkilled=False)
    finally:
        cgroups.remove(group)
    assert not group.cpu_dir.exists() and not group.memory_dir.exists()


# --- the shipped example profile ---------------------------------------------------------------------

def test_shipped_local_profile_is_readable_by_the_planner_and_consistent():
    from pathlib import Path

    from hetplan.planner.catalog import load_profile

    path = Path(__file__).resolve().parent.parent / "data" / "profiles" / "local-example.csv"
    frame = load_profile(path)
    assert set(frame.model) == set(PAPER_MODELS) and len(frame) == 6 * 6 * 2
    assert set(frame.method) == {"measured"} and set(frame.accuracy_source) == {"published"}
    lam = frame[frame.platform == "lambda"]
    # under sub-core quotas the CPU share sets the pace: latency falls as memory rises
    for (_, _), group in lam[lam.memory_mb < 2000].groupby(["model", "batch"]):
        medians = group.sort_values("memory_mb").latency_p50_ms.dropna().to_numpy()
        assert (np.diff(medians) < 0).all()
    # a row without latency did not fit: its memory size is below what the model peaked at elsewhere
    for row in lam[lam.latency_p50_ms.isna()].itertuples():
        fitted = frame[(frame.model == row.model) & (frame.batch == row.batch)].peak_memory_mb.max()
        assert fitted > row.memory_mb * 0.9
