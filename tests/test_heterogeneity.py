"""Heterogeneity in the data: profile methods and sources at the edge, --trust, the coverage view, the catalog
columns, and the rows built from MXNet's published tables."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from hetplan.cli import app
from hetplan.planner import catalog
from hetplan.planner.catalog.schema import METHODS

runner = CliRunner()
REFERENCE = catalog.DEFAULT_PROFILE


def run(*args):
    return runner.invoke(app, list(args))


def write_profile(tmp_path, edit) -> str:
    """The reference profile with one edit (a function of the frame), as a file."""
    frame = pd.read_csv(REFERENCE, dtype=str, keep_default_na=False)
    edit(frame)
    path = tmp_path / "profile.csv"
    frame.to_csv(path, index=False)
    return str(path)


@pytest.mark.parametrize("column, value, expected", [
    ("method", "extrapolated", "line 5, column 'method': must be one of measured, reference, published, scaled"),
    ("source", "", "line 5, column 'source': must not be empty"),
    ("instance_type", "c5.mega", "line 5, column 'instance_type': 'c5.mega' is not in the instance catalog"),
])
def test_a_bad_profile_row_is_named_by_file_line_and_field(tmp_path, column, value, expected):
    def edit(frame):
        frame.loc[3, column] = value  # line 5: the header is line 1

    path = write_profile(tmp_path, edit)
    result = run("solve", "--slo", "200ms", "--profile", path, "--hours", "1", "--out", str(tmp_path / "p.json"))
    assert result.exit_code == 2
    assert expected in result.output and path in result.output
    assert "Traceback" not in result.output and not (tmp_path / "p.json").exists()


def test_local_shapes_are_allowed_without_a_catalog_row():
    local = catalog.DATA_DIR / "profiles" / "local-example.csv"
    frame = catalog.load_profile(local, catalog.load_instances())
    assert set(frame[frame.platform == "vm"].instance_type) == {"local-1vcpu", "local-2vcpu"}


def test_trust_keeps_only_the_named_methods_and_the_plan_records_them(tmp_path):
    out = tmp_path / "p.json"
    result = run("solve", "--slo", "200ms", "--hours", "1", "--trust", "reference", "--out", str(out), "--quiet")
    assert result.exit_code == 0, result.output
    plan = json.loads(out.read_text())
    assert plan["targets"]["trust"] == ["reference"]
    assert plan["summary"]["methods_used"] == ["reference"]
    assert {o["method"] for o in plan["options"]} == {"reference"}
    # the reference profile has no measured row: nothing is left to plan with, and the message says what there is
    result = run("solve", "--slo", "200ms", "--hours", "1", "--trust", "measured", "--out", str(tmp_path / "q.json"))
    assert result.exit_code == 2 and "no profile row has a method in --trust measured" in result.output
    assert "reference" in result.output
    result = run("solve", "--slo", "200ms", "--trust", "guessed", "--out", str(tmp_path / "q.json"))
    assert result.exit_code == 2 and "unknown method 'guessed'" in result.output


def test_trust_drops_scaled_rows_from_the_full_profile(tmp_path):
    from hetplan.planner.optimize.workflow import trusted_rows

    full = catalog.load_profile(catalog.FULL_PROFILE, catalog.load_instances())
    kept = trusted_rows(full, ("measured", "reference", "published"))
    assert "scaled" in set(full.method) and "scaled" not in set(kept.method)
    assert len(kept) == (full.method != "scaled").sum()


def test_coverage_shows_the_method_behind_each_model_and_family():
    result = run("catalog", "--coverage", "--json")
    assert result.exit_code == 0, result.output
    cells = {row["model"]: row for row in json.loads(result.output)["coverage"]}
    assert cells["caffenet"]["c5"] == "reference+published"  # InferAll measured it; MXNet's alexnet table as a proxy
    assert cells["caffenet"]["p3"] == "published"
    assert cells["resnet18"]["c5"] == "scaled" and cells["resnet18"]["lambda"] == "–"
    assert cells["squeezenet"]["lambda"] == "reference"
    table = run("catalog", "--coverage", "--plain").output
    assert "model\tc5\tp3\tlambda" in table


def test_catalog_columns_and_burstable_types_are_excluded_with_the_reason():
    instances = catalog.load_instances()
    assert set(instances.arch) == {"x86_64", "arm64"}
    assert instances.loc["p3.2xlarge", ["gpu", "gpu_count", "gpu_memory_gib"]].tolist() == ["V100", 1, 16.0]
    assert (instances[instances.family == "c6g"].arch == "arm64").all()
    data = json.loads(run("catalog", "--json").output)
    use = {r["instance_type"]: r["planner"] for r in data["instances"]}
    assert use["t3.large"].startswith("excluded: burstable") and use["c5.large"] == "usable"
    # the planner rejects a burstable row with that reason rather than taking it as a full-speed CPU
    from hetplan.planner.optimize.options import Targets, build_options

    profile = catalog.load_profile()
    t3 = profile[(profile.instance_type == "c5.large")].assign(instance_type="t3.large")
    options = build_options(t3, instances, catalog.load_serverless(), catalog.load_models(), Targets(slo_s=0.2))
    assert options.vm.empty
    assert options.rejected.reason.str.startswith("burstable type").any()


def test_published_rows_follow_the_table_and_name_their_proxy_or_rule():
    table = pd.read_csv(catalog.DATA_DIR.parent / ".." / "shared" / "data" / "mxnet_published_throughput.csv") \
        if (catalog.DATA_DIR.parent / ".." / "shared" / "data").is_dir() else None
    rows = catalog.load_profile(catalog.DATA_DIR / "profiles" / "published-mxnet.csv", catalog.load_instances())
    assert set(rows.method) <= set(METHODS) and rows.source.str.len().min() > 0
    v100 = rows[(rows.model == "caffenet") & (rows.instance_type == "p3.2xlarge") & (rows.batch == 32)].iloc[0]
    assert v100.method == "published" and "alexnet" in v100.source and "proxy for caffenet" in v100.source
    assert v100.latency_p50_ms == pytest.approx(32 * 1000 / v100.throughput_rps, rel=1e-4)  # one call of 32 images
    if table is not None:
        source = table[(table.hardware == "V100") & (table.precision == "fp32") & (table.model == "alexnet") & (table.batch == 32)]
        assert v100.throughput_rps == pytest.approx(float(source.images_per_s.iloc[0]))
    scaled = rows[(rows.model == "resnet18") & (rows.instance_type == "p3.2xlarge") & (rows.batch == 1)].iloc[0]
    anchor = rows[(rows.model == "resnet50_v1") & (rows.instance_type == "p3.2xlarge") & (rows.batch == 1)].iloc[0]
    local = pd.read_csv(catalog.DATA_DIR / "profiles" / "local-anchors.csv").set_index(["model", "batch"]).latency_p50_ms
    ratio = local[("resnet18", 1)] / local[("resnet50_v1", 1)]
    assert scaled.method == "scaled" and f"{ratio:.4f}" in scaled.source
    assert scaled.latency_p50_ms == pytest.approx(anchor.latency_p50_ms * ratio, rel=1e-3)


def test_profile_on_a_gpu_says_clearly_when_this_mxnet_sees_none(tmp_path):
    pytest.importorskip("mxnet")
    import mxnet as mx

    out = tmp_path / "g.csv"
    result = run("profile", "--device", "gpu", "--models", "squeezenet", "--out", str(out))
    assert result.exit_code == 2 and not out.exists()
    if mx.context.num_gpus() == 0:
        assert "this MXNet sees no GPU" in result.output and "CUDA build" in result.output
    assert run("profile", "--device", "tpu", "--out", str(out)).exit_code == 2


def test_an_instance_catalog_from_before_the_new_columns_still_reads(tmp_path):
    frame = pd.read_csv(catalog.DEFAULT_INSTANCES, dtype=str, keep_default_na=False)
    old = tmp_path / "instances.csv"
    frame.drop(columns=["arch", "gpu_memory_gib", "burstable"]).to_csv(old, index=False)
    loaded = catalog.load_instances(old)
    assert (loaded.arch == "x86_64").all() and (loaded.gpu_memory_gib == 0).all()
    assert loaded.burstable.tolist() == loaded.family.str.startswith("t").tolist()  # AWS's T families are burstable
