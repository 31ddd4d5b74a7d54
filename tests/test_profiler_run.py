"""The profiler end to end: real MXNet inference in worker subprocesses, Lambda emulation under
cgroups, a crashing model, resume after a killed run, and measured accuracy of a trained network."""

from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import sys
import textwrap
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from hetplan.planner.catalog import load_profile
from hetplan.commands.profile import _vm_memory_mb, build_config, profile_app
from hetplan.errors import HetplanError
from hetplan.profiler import cgroups
from hetplan.profiler.architectures import PLUGIN_ENV
from hetplan.profiler.profile_csv import read_rows, row_key
from hetplan.profiler.runner import run_profile
from hetplan.planner.catalog.schema import PROFILE_COLUMNS

# Test models, loaded by the profiler's worker through the plugin hook (mxnet imported inside builders).
PLUGIN = textwrap.dedent('''
    import os

    def tinynet():
        from mxnet.gluon import nn
        net = nn.HybridSequential()
        net.add(nn.Conv2D(8, 3, padding=1, activation="relu"), nn.MaxPool2D(2),
                nn.Conv2D(16, 3, padding=1, activation="relu"), nn.GlobalAvgPool2D(), nn.Dense(4))
        return net

    def bignet():  # 50M float32 weights: about 1 GB at its peak while initializing, more than 512 MB
        from mxnet.gluon import nn
        net = nn.HybridSequential()
        net.add(nn.Flatten(), nn.Dense(50_000, in_units=3 * 16 * 16), nn.Dense(1000, in_units=50_000))
        return net

    def probenet():  # records how the worker was confined, then is a tinynet
        import json
        from hetplan.profiler import cgroups
        cores = sorted(os.sched_getaffinity(0))
        record = {"cores": cores, "omp": os.environ.get("OMP_NUM_THREADS"), "nice": os.getpriority(os.PRIO_PROCESS, 0)}
        v2, v1_cpu, v1_memory = cgroups.own_dir_v2(), cgroups.own_dir_v1("cpu"), cgroups.own_dir_v1("memory")
        if v2 is not None:
            quota, period = map(int, (v2 / "cpu.max").read_text().split())
            record.update(cgroups=[str(v2)], quota=quota / period, limit=int((v2 / "memory.max").read_text()))
        elif v1_cpu is not None and v1_memory is not None:
            quota = int((v1_cpu / "cpu.cfs_quota_us").read_text()) / int((v1_cpu / "cpu.cfs_period_us").read_text())
            record.update(cgroups=[str(v1_cpu), str(v1_memory)], quota=quota,
                          limit=int((v1_memory / "memory.limit_in_bytes").read_text()))
        with open(os.environ["PROBE_FILE"], "a") as handle:
            handle.write(json.dumps(record) + "\\n")
        return tinynet()

    def crashnet():
        raise RuntimeError("injected crash in the model builder")

    def exitnet():
        os._exit(3)

    MODELS = {"tinynet": (tinynet, 16), "bignet": (bignet, 16), "probenet": (probenet, 16),
              "crashnet": (crashnet, 16), "exitnet": (exitnet, 16)}
''')

CGROUPS_OK, CGROUPS_REASON = cgroups.support()
needs_cgroups = pytest.mark.skipif(not CGROUPS_OK, reason=f"Lambda emulation needs writable cgroups: {CGROUPS_REASON}")


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    path = tmp_path / "models_plugin.py"
    path.write_text(PLUGIN)
    monkeypatch.setenv(PLUGIN_ENV, str(path))
    return path


def profile(*args: str):
    result = CliRunner().invoke(profile_app, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def by_shape(rows: list[dict]) -> dict[tuple[str, str, str], dict]:
    return {(r["model"], r["instance_type"] or f"lambda-{r['memory_mb']}", r["batch"]): r for r in rows}


def test_real_inference_on_local_cpu_shape(tmp_path):
    out = tmp_path / "p.csv"
    result = profile("--models", "squeezenet1.1", "--batch-sizes", "1,2", "--vcpus", "1",
                     "--lambda-memory", "none", "--repetitions", "6", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert out.read_text().splitlines()[0] == ",".join(PROFILE_COLUMNS)
    rows = by_shape(read_rows(out))
    assert set(rows) == {("squeezenet1.1", "local-1vcpu", "1"), ("squeezenet1.1", "local-1vcpu", "2")}
    for (_, _, batch), row in rows.items():
        p50, p90, p99 = (float(row[c]) for c in ("latency_p50_ms", "latency_p90_ms", "latency_p99_ms"))
        assert 0 < p50 <= p90 <= p99
        throughput = float(row["throughput_rps"])
        assert 0.4 * int(batch) * 1000 / p50 < throughput < 1.5 * int(batch) * 1000 / p50
        assert float(row["peak_memory_mb"]) > 100  # an mxnet process, not the parent's figure
        assert float(row["load_time_ms"]) > p50
        assert (row["method"], row["platform"], row["vcpus"], row["concurrency"]) == ("measured", "vm", "1.0", "1")
        assert (row["accuracy_top1"], row["accuracy_top5"], row["accuracy_source"]) == ("54.96", "78.17", "published")
        assert row["mxnet_version"] == "1.9.1" and "6 timed calls" in row["source"]
    assert "squeezenet1.1" in result.output and "measured" in result.output  # the summary table


def test_vcpus_confine_the_measuring_process(tmp_path, plugin, monkeypatch):
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs 2 CPUs to compare 1- and 2-vCPU shapes")
    probe = tmp_path / "probe.jsonl"
    monkeypatch.setenv("PROBE_FILE", str(probe))
    profile("--models", "probenet", "--vcpus", "1,2", "--lambda-memory", "none", "--repetitions", "2",
            "--out", str(tmp_path / "p.csv"))
    records = [json.loads(line) for line in probe.read_text().splitlines()]
    assert [(len(r["cores"]), r["omp"]) for r in records] == [(1, "1"), (2, "2")]
    if os.geteuid() == 0:
        assert {r["nice"] for r in records} == {-10}
    assert [r["vcpus"] for r in read_rows(tmp_path / "p.csv")] == ["1.0", "2.0"]


def test_instance_type_names_vm_rows(tmp_path, plugin):
    out = tmp_path / "p.csv"
    profile("--models", "tinynet", "--vcpus", "1", "--lambda-memory", "none", "--instance-type", "c5.xlarge",
            "--repetitions", "3", "--out", str(out))
    (row,) = read_rows(out)
    assert (row["instance_type"], row["memory_mb"], row["platform"]) == ("c5.xlarge", "8192", "vm")
    assert row["host"].startswith("c5.xlarge:")
    assert row["accuracy_source"] == "published" and row["accuracy_top1"] == ""  # none known for a plugin model


@needs_cgroups
def test_lambda_sizes_run_under_cpu_quota_and_memory_limit(tmp_path, plugin, monkeypatch):
    out = tmp_path / "p.csv"
    result = profile("--models", "squeezenet1.1", "--vcpus", "none", "--lambda-memory", "512,1769",
                     "--repetitions", "8", "--out", str(out))
    assert result.exit_code == 0, result.output
    result = profile("--models", "bignet", "--vcpus", "none", "--lambda-memory", "512", "--repetitions", "2",
                     "--out", str(out), "--resume")
    assert result.exit_code == 0, result.output
    probe = tmp_path / "probe.jsonl"
    monkeypatch.setenv("PROBE_FILE", str(probe))
    profile("--models", "probenet", "--vcpus", "none", "--lambda-memory", "1024", "--repetitions", "2",
            "--out", str(out), "--resume")
    (inside,) = [json.loads(line) for line in probe.read_text().splitlines()]
    # the worker ran inside the profiler's cgroup(s), with the quota and limit of 1024 MB
    assert inside["cgroups"] and all("hetplan-profile-" in folder for folder in inside["cgroups"])
    assert inside["quota"] == pytest.approx(1024 / 1769, rel=0.01) and inside["limit"] == 1024 * 2**20
    assert (len(inside["cores"]), inside["omp"]) == (1, "1")
    rows = by_shape(read_rows(out))
    small, large = rows[("squeezenet1.1", "lambda-512", "1")], rows[("squeezenet1.1", "lambda-1769", "1")]
    assert small["method"] == large["method"] == "measured" and "cgroup" in small["source"]
    assert (small["vcpus"], large["vcpus"], small["instance_type"]) == ("0.2894", "1.0", "")
    # a 0.29-vCPU quota against a whole vCPU: about 3.5 times slower, as on AWS; the margin allows for
    # neighbours on a shared host slowing the whole-vCPU run (seen: a ratio of 1.9 under load)
    assert float(small["latency_p50_ms"]) > 1.5 * float(large["latency_p50_ms"])
    assert float(large["throughput_rps"]) > 1.5 * float(small["throughput_rps"])
    assert float(small["load_time_ms"]) > 1.3 * float(large["load_time_ms"])
    oom = rows[("bignet", "lambda-512", "1")]  # about 1 GB to initialize 50M weights
    assert oom["latency_p50_ms"] == "" and "out of memory at the 512 MB limit" in oom["source"]
    assert "not runnable" in result.output
    assert list(Path("/sys/fs/cgroup").rglob(f"hetplan-profile-{os.getpid()}-*")) == []  # removed after use


def test_a_lambda_row_that_peaks_above_its_memory_size_is_not_runnable(tmp_path, plugin):
    # The cgroup charges only the pages the worker faults in: library pages the host has cached are free, so a
    # process can finish under a 200 MB limit while its resident peak (squeezenet: about 225 MB) is above it.
    # Lambda charges them, so such a row must not read as measured.
    out = tmp_path / "p.csv"
    result = profile("--models", "squeezenet", "--vcpus", "none", "--lambda-memory", "200", "--repetitions", "2",
                     "--out", str(out))
    assert result.exit_code == 0, result.output
    row = by_shape(read_rows(out))[("squeezenet", "lambda-200", "1")]
    assert row["latency_p50_ms"] == "" and row["source"].startswith("not runnable")
    assert ("exceeds the 200 MB Lambda size" in row["source"] and float(row["peak_memory_mb"]) > 200) or \
        "out of memory at the 200 MB limit" in row["source"]
    assert "not runnable" in result.output


def test_without_cgroups_lambda_rows_are_scaled_not_measured(tmp_path, monkeypatch):
    monkeypatch.setattr(cgroups, "support", lambda: (False, "test: cgroups switched off"))
    out = tmp_path / "p.csv"
    base = dict.fromkeys(PROFILE_COLUMNS, "")
    base.update(model="squeezenet", platform="vm", instance_type="local-1vcpu", memory_mb=str(_vm_memory_mb(None)), vcpus="1.0",
                batch="1", latency_p50_ms="50.0", latency_p90_ms="55.0", latency_p99_ms="60.0",
                throughput_rps="20.0", concurrency="1", peak_memory_mb="230.0", load_time_ms="2000.0",
                method="measured", accuracy_source="published", timestamp="2026-01-01T00:00:00+00:00",
                source="hetplan profile: a row written by the test")
    out.write_text(",".join(PROFILE_COLUMNS) + "\n" + ",".join(base.values()) + "\n")
    # the VM row is already there (resumed), so no MXNet process runs: the Lambda rows derive from it
    # --vcpus none: the profiler adds the 1-vCPU shape itself, as the base of the scaled rows
    result = profile("--models", "squeezenet", "--vcpus", "none", "--lambda-memory", "128,1769,3008", "--resume",
                     "--out", str(out))
    assert result.exit_code == 0, result.output
    rows = by_shape(read_rows(out))
    for memory in (1769, 3008):
        row = rows[("squeezenet", f"lambda-{memory}", "1")]
        assert row["method"] == "scaled" and "cgroups switched off" in row["source"]
        assert float(row["latency_p50_ms"]) == pytest.approx(50.0 * 1769 / memory, rel=1e-3)
    assert rows[("squeezenet", "lambda-128", "1")]["latency_p50_ms"] == ""  # 230 MB peak does not fit 128 MB
    assert rows[("squeezenet", "local-1vcpu", "1")]["timestamp"] == "2026-01-01T00:00:00+00:00"
    loaded = load_profile(out)  # the planner reads what the profiler writes
    assert sorted(loaded.method) == ["measured", "scaled", "scaled", "scaled"]


def test_crashing_models_do_not_lose_the_others(tmp_path, plugin):
    out = tmp_path / "p.csv"
    config = build_config("crashnet,tinynet,exitnet", "1", "1", "none", None, None, None, out, False, False, 3)
    outcomes = {o.job.spec.name: o for o in run_profile(config)}
    assert outcomes["tinynet"].status == "measured"
    assert outcomes["crashnet"].status == "failed" and "injected crash" in outcomes["crashnet"].message
    assert outcomes["exitnet"].status == "failed" and "exited with 3" in outcomes["exitnet"].message
    assert [r["model"] for r in read_rows(out)] == ["tinynet"]
    result = CliRunner().invoke(profile_app, ["--models", "exitnet", "--vcpus", "1", "--lambda-memory", "none",
                                              "--repetitions", "2", "--out", str(tmp_path / "q.csv")])
    assert result.exit_code == 1 and "failed" in result.output


def test_profile_json_and_plain_carry_the_rows_written(tmp_path, plugin):
    out = tmp_path / "p.csv"
    args = ["--models", "tinynet", "--batch-sizes", "1,2", "--vcpus", "1", "--lambda-memory", "none",
            "--repetitions", "5", "--out", str(out)]
    result = profile(*args, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    written = read_rows(out)
    assert [r["batch"] for r in data["rows"]] == [int(r["batch"]) for r in written] == [1, 2]
    for record, row in zip(data["rows"], written):
        assert record["result"] == "measured"
        assert record["latency_p50_ms"] == pytest.approx(float(row["latency_p50_ms"]))
    plain = profile(*args, "--plain", "--resume")  # resumed: the rows are kept, shown as skipped
    lines = [line.split("\t") for line in plain.stdout.splitlines() if "\t" in line]
    assert lines[0][:3] == ["model", "shape", "batch"] and [row[-1] for row in lines[1:]] == ["skipped", "skipped"]


def test_resume_after_the_run_is_killed(tmp_path, plugin):
    out = tmp_path / "p.csv"
    args = ["--models", "tinynet", "--batch-sizes", "1,2,3,4,5,6", "--vcpus", "1", "--lambda-memory", "none",
            "--repetitions", "30", "--out", str(out)]
    code = f"from hetplan.commands.profile import profile_app; profile_app({args!r})"
    run = subprocess.Popen([sys.executable, "-c", code], env=os.environ, start_new_session=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and (not out.exists() or len(out.read_text().splitlines()) < 3):
        time.sleep(0.1)
    os.killpg(run.pid, signal.SIGKILL)  # the profiler and its measuring child, mid-run
    run.wait()
    first = read_rows(out)
    assert 2 <= len(first) < 6, "the run should have been killed part-way"
    assert out.read_text().endswith("\n")
    result = profile(*args, "--resume")
    assert result.exit_code == 0, result.output
    rows = read_rows(out)
    keys = [row_key(r) for r in rows]
    assert sorted(r["batch"] for r in rows) == ["1", "2", "3", "4", "5", "6"] and len(set(keys)) == len(keys)
    assert rows[: len(first)] == first  # kept, not measured again


# --- measured accuracy -------------------------------------------------------------------------------

def png(rgb: np.ndarray) -> bytes:
    """A minimal 8-bit RGB PNG encoder, so the test needs no imaging package."""
    height, width, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[i].tobytes() for i in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def quadrant_images(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """20x20 noisy images; class k has a bright patch in quadrant k."""
    rng = np.random.default_rng(seed)
    labels = np.arange(count) % 4
    images = rng.integers(0, 90, size=(count, 20, 20, 3), dtype=np.uint8)
    for image, label in zip(images, labels):
        top, left = 2 + 8 * (label // 2) + rng.integers(0, 2), 2 + 8 * (label % 2) + rng.integers(0, 2)
        image[top:top + 6, left:left + 6] = rng.integers(200, 256, size=3)
    return images, labels


def load_plugin(path: Path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("test_plugin", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def train_tinynet(plugin_path: Path, weights: Path, checkpoint: Path) -> None:
    """Train the plugin's tinynet; save Gluon parameters to ``weights`` and a symbolic checkpoint to ``checkpoint``."""
    import mxnet as mx

    from hetplan.profiler.accuracy import preprocess

    mx.random.seed(0)
    net = load_plugin(plugin_path).tinynet()
    net.initialize(mx.init.Xavier())
    net.hybridize()
    images, labels = quadrant_images(256, seed=1)
    data = mx.nd.stack(*[preprocess(mx.nd.array(image, dtype="uint8"), 16) for image in images])
    target = mx.nd.array(labels)
    trainer = mx.gluon.Trainer(net.collect_params(), "adam", {"learning_rate": 0.01})
    loss = mx.gluon.loss.SoftmaxCrossEntropyLoss()
    for _ in range(15):
        for start in range(0, len(images), 32):
            with mx.autograd.record():
                value = loss(net(data[start:start + 32]), target[start:start + 32])
            value.backward()
            trainer.step(32)
    net.save_parameters(str(weights / "tinynet.params"))
    net.export(str(checkpoint / "tinynet"))  # tinynet-symbol.json + tinynet-0000.params


def test_measured_accuracy_of_a_trained_network(tmp_path, plugin):
    weights, checkpoint, dataset = tmp_path / "weights", tmp_path / "checkpoint", tmp_path / "images"
    weights.mkdir()
    checkpoint.mkdir()
    train_tinynet(plugin, weights, checkpoint)
    images, labels = quadrant_images(40, seed=2)  # held out: another seed
    for index, (image, label) in enumerate(zip(images, labels)):
        folder = dataset / f"class_{label}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{index}.png").write_bytes(png(image))

    def measured(weights_dir: Path, out: Path) -> dict:
        result = profile("--models", "tinynet", "--vcpus", "1", "--lambda-memory", "none", "--repetitions", "2",
                         "--weights", str(weights_dir), "--dataset", str(dataset), "--out", str(out))
        assert result.exit_code == 0, result.output
        (row,) = read_rows(out)
        assert row["accuracy_source"] == "measured" and "weights from file" in row["source"]
        return row

    rows = {name: measured(folder, tmp_path / f"{name}.csv") for name, folder in (("gluon", weights), ("symbolic", checkpoint))}
    for row in rows.values():
        assert float(row["accuracy_top1"]) >= 90.0
        assert float(row["accuracy_top5"]) == 100.0  # 4 classes: every label is within the top min(5, 4)
    # the same evaluation reads a .rec file (with its .idx) as well as a folder
    import mxnet as mx

    from hetplan.profiler.accuracy import evaluate

    record = mx.recordio.MXIndexedRecordIO(str(tmp_path / "val.idx"), str(tmp_path / "val.rec"), "w")
    for index, (image, label) in enumerate(zip(images, labels)):
        record.write_idx(index, mx.recordio.pack(mx.recordio.IRHeader(0, float(label), index, 0), png(image)))
    record.close()
    net = load_plugin(plugin).tinynet()
    net.load_parameters(str(weights / "tinynet.params"))
    from_rec = evaluate(net, tmp_path / "val.rec", 16)
    assert from_rec["images"] == 40 and from_rec["top1"] == pytest.approx(float(rows["gluon"]["accuracy_top1"]))
    # the same weights with the folders' labels permuted score far lower: the labels are really checked
    for label in range(4):
        (dataset / f"class_{label}").rename(dataset / f"tmp_{(label + 1) % 4}")
    assert float(measured(weights, tmp_path / "permuted.csv")["accuracy_top1"]) <= 30.0


def test_missing_weights_are_reported_before_measuring(tmp_path, plugin):
    with pytest.raises(HetplanError, match="no weights for 'tinynet'"):
        profile("--models", "tinynet", "--weights", str(tmp_path), "--out", str(tmp_path / "p.csv"))
    assert not (tmp_path / "p.csv").exists()
