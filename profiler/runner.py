"""Runs a profile: one subprocess per (model, shape, batch), rows appended as they complete.

The parent never imports mxnet. Each child gets its thread variables from the parent and confines
itself before importing mxnet (CPU affinity, priority, and for Lambda sizes a cgroup with a CPU quota
and a memory limit that the parent created), so its import, model load and inference all run under
the limits of the shape being measured.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from importlib import metadata
from pathlib import Path

import hetplan
from hetplan.profiler import cgroups
from hetplan.profiler.catalog import ModelSpec
from hetplan.profiler.profile_csv import append_row, prepare_output, read_rows
from hetplan.profiler.rows import Accuracy, Job, base_row, measured_row, published_accuracy, scaled_row
from hetplan.profiler.shapes import Shape, emulable
from hetplan.profiler.stats import Repetitions
from hetplan.profiler.weights import find_weights

RESULT_PREFIX = "HETPLAN-RESULT "
MEASURE_NICE = -10  # raised priority of the measuring process, where permitted (root)


@dataclass(frozen=True)
class ProfileConfig:
    models: tuple[ModelSpec, ...]
    batch_sizes: tuple[int, ...]
    shapes: tuple[Shape, ...]
    out: Path
    repetitions: Repetitions
    host_cpus: tuple[int, ...]  # CPU ids the profiler may pin children to
    host: str
    vm_memory_mb: int = 0  # memory of VM rows (the instance's, or this host's)
    resume: bool = False
    weights_dir: Path | None = None
    dataset: Path | None = None
    timeout_s: float = 900.0


@dataclass(frozen=True)
class Outcome:
    job: Job
    status: str  # measured | scaled | not runnable | failed | skipped
    row: dict | None = None
    message: str = ""


@dataclass(frozen=True)
class WorkerRun:
    result: dict | None
    returncode: int
    stderr: str
    oom: bool = False
    timed_out: bool = False


def _child_env(threads: int) -> dict[str, str]:
    env = dict(os.environ)
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[name] = str(threads)
    env["MXNET_CPU_WORKER_NTHREADS"] = "1"  # one engine worker; the cores go to intra-op threads
    # Idle OpenMP threads sleep instead of spinning: spinning burns a Lambda-size CPU quota and, with a
    # neighbour on the other core, stalls every barrier (measured 10x slower medians on this host).
    env["OMP_WAIT_POLICY"] = "PASSIVE"
    package_dir = Path(hetplan.__file__).parent
    if package_dir.name == "hetplan":  # imported from a path entry: let the child find it the same way
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(package_dir.parent), env.get("PYTHONPATH")]))
    return env


def run_worker(job_json: dict, cores: list[int], group: cgroups.Cgroup | None, timeout_s: float) -> WorkerRun:
    """Run the worker confined to ``cores`` (and ``group``) and collect its result line."""
    limits = {"cores": cores, "nice": MEASURE_NICE if os.geteuid() == 0 else 0,
              "cgroup_procs": [str(path) for path in group.procs_files()] if group is not None else []}
    process = subprocess.Popen(
        [sys.executable, "-m", "hetplan.profiler.worker", json.dumps(dict(job_json, limits=limits))],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_child_env(len(cores)),
        start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        return WorkerRun(None, process.returncode, "", timed_out=True)
    except BaseException:  # interrupted: do not leave the child running
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        raise
    result = next((json.loads(line[len(RESULT_PREFIX):]) for line in stdout.splitlines()
                   if line.startswith(RESULT_PREFIX)), None)
    oom = process.returncode != 0 and group is not None and group.oom_killed(process.returncode == -signal.SIGKILL)
    return WorkerRun(result if process.returncode == 0 else None, process.returncode, stderr, oom)


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else "no error output"


@dataclass
class _Context:
    config: ProfileConfig
    mxnet_version: str
    cgroup_ok: bool
    cgroup_reason: str
    done: set = field(default_factory=set)
    vm_rows: dict = field(default_factory=dict)  # (model, batch) -> smallest-vCPU VM row, for scaling


def plan_jobs(config: ProfileConfig, cgroup_ok: bool) -> list[Job]:
    """Model-major order; per model VM shapes first, so scaled Lambda rows find their base row."""
    jobs = []
    for spec in config.models:
        for shape in sorted(config.shapes, key=lambda s: (s.platform != "vm", s.vcpus)):
            scaled = shape.platform == "lambda" and not (cgroup_ok and emulable(shape, len(config.host_cpus)))
            jobs.extend(Job(spec, shape, batch, scaled) for batch in config.batch_sizes)
    return jobs


def _measure(job: Job, context: _Context, accuracy: Accuracy) -> Outcome:
    config = context.config
    shape = job.shape
    job_json = {"arch": job.spec.arch, "input_size": job.spec.input_size, "batch": job.batch,
                "weights": find_weights(config.weights_dir, job.spec.name, job.spec.arch),
                "repetitions": config.repetitions.__dict__}
    cores = list(config.host_cpus[: shape.cores])
    try:
        group = cgroups.create(shape.cpu_quota, shape.memory_limit_mb) if shape.platform == "lambda" else None
    except OSError as error:
        return Outcome(job, "failed", None, f"could not create the cgroup: {error}")
    try:
        run = run_worker(job_json, cores, group, config.timeout_s)
    finally:
        if group is not None:
            cgroups.remove(group)
    if shape.platform == "lambda":
        limits = (f"cgroup {group.version} CPU quota {shape.vcpus:g} vCPU and memory limit "
                  f"{shape.memory_mb} MB on {len(cores)} core(s)")
    else:
        limits = f"affinity to {len(cores)} core(s), {len(cores)} thread(s)"
    if os.geteuid() == 0:
        limits += f", nice {MEASURE_NICE}"
    weights = "weights from file" if job_json["weights"] else "initialized weights"
    if run.oom or run.timed_out:
        why = f"out of memory at the {shape.memory_mb} MB limit" if run.oom else f"not done within {config.timeout_s:g}s"
        row = base_row(job, accuracy, config.host, context.mxnet_version, "measured", f"not runnable: {why}; {limits}")
        return Outcome(job, "not runnable", row, why)
    if run.result is None:
        return Outcome(job, "failed", None, f"worker exited with {run.returncode}: {_last_line(run.stderr)}")
    calls = len(run.result["latencies_ms"])
    source = (f"hetplan profile: {calls} timed calls after {config.repetitions.warmup} warm-up; {limits}; {weights}; "
              "load time = import + build + weights + first call")
    peak = run.result.get("peak_memory_mb")
    if shape.platform == "lambda" and peak is not None and float(peak) > shape.memory_mb:
        # The cgroup charges only the pages this process faulted in; library pages already cached on the host are
        # not charged, so a run can finish under the limit although Lambda, which charges them, would kill it.
        why = f"peak memory {float(peak):.0f} MB exceeds the {shape.memory_mb} MB Lambda size"
        row = base_row(job, accuracy, config.host, context.mxnet_version, "measured", f"not runnable: {why}; {limits}")
        row["peak_memory_mb"] = round(float(peak), 1)
        return Outcome(job, "not runnable", row, why)
    row = measured_row(job, run.result, accuracy, config.host, context.mxnet_version, source)
    return Outcome(job, "measured", row)


def _scale(job: Job, context: _Context, accuracy: Accuracy) -> Outcome:
    base = context.vm_rows.get((job.spec.name, job.batch))
    if base is None:
        return Outcome(job, "failed", None, "no VM measurement of this model and batch to scale from")
    reason = context.cgroup_reason if not context.cgroup_ok else "the host has fewer cores than this share"
    row = scaled_row(job, base, accuracy, context.config.host, context.mxnet_version, reason)
    return Outcome(job, "scaled" if row.get("latency_p50_ms") is not None else "not runnable", row)


def _accuracy(spec: ModelSpec, config: ProfileConfig) -> Accuracy | str:
    """The model's accuracy, or an error message when measuring it failed."""
    if config.dataset is None:
        return published_accuracy(spec)
    job_json = {"task": "accuracy", "arch": spec.arch, "input_size": spec.input_size,
                "weights": find_weights(config.weights_dir, spec.name, spec.arch), "dataset": str(config.dataset)}
    run = run_worker(job_json, list(config.host_cpus), None, config.timeout_s)
    if run.result is None:
        return f"measuring its accuracy failed: {_last_line(run.stderr)}"
    return Accuracy(run.result["top1"], run.result["top5"], "measured")


def _ignore(*args) -> None:
    pass


def run_profile(config: ProfileConfig, on_outcome: Callable[[Outcome], None] = _ignore,
                on_plan: Callable[[int], None] = _ignore, on_start: Callable[[Job], None] = _ignore) -> list[Outcome]:
    """Measure every pending job, appending each row to ``config.out`` as it completes."""
    needs_cgroup = any(shape.platform == "lambda" for shape in config.shapes)
    cgroup_ok, cgroup_reason = cgroups.support() if needs_cgroup else (False, "")
    jobs = plan_jobs(config, cgroup_ok)
    if any(job.scaled for job in jobs) and not any(shape.platform == "vm" for shape in config.shapes):
        base = Shape("vm", "local-1vcpu", config.vm_memory_mb, 1.0, 1)  # what scaled rows derive from
        return run_profile(replace(config, shapes=(base,) + config.shapes), on_outcome, on_plan, on_start)
    try:
        version = metadata.version("mxnet")
    except metadata.PackageNotFoundError:
        version = ""
    context = _Context(config, version, cgroup_ok, cgroup_reason, prepare_output(config.out, config.resume))
    for row in read_rows(config.out):
        _remember_vm_row(context, row)
    on_plan(len(jobs))
    outcomes, accuracies = [], {}
    for job in jobs:
        if job.key in context.done:
            outcome = Outcome(job, "skipped", message="already in the output (resumed)")
        else:
            on_start(job)
            if job.spec.name not in accuracies:
                accuracies[job.spec.name] = _accuracy(job.spec, config)
            accuracy = accuracies[job.spec.name]
            if isinstance(accuracy, str):
                outcome = Outcome(job, "failed", None, accuracy)
            else:
                outcome = (_scale if job.scaled else _measure)(job, context, accuracy)
            if outcome.row is not None:
                append_row(config.out, outcome.row)
                _remember_vm_row(context, {k: ("" if v is None else v) for k, v in outcome.row.items()})
        outcomes.append(outcome)
        on_outcome(outcome)
    return outcomes


def _remember_vm_row(context: _Context, row: dict) -> None:
    if row["platform"] != "vm" or row.get("latency_p50_ms") in (None, ""):
        return
    key = (row["model"], int(float(row["batch"])))
    known = context.vm_rows.get(key)
    if known is None or float(row["vcpus"]) < float(known["vcpus"]):
        context.vm_rows[key] = row
