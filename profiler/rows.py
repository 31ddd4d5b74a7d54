"""Profile rows from measurements: pure functions from a job and its raw figures to a schema row."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from hetplan.profiler.catalog import ModelSpec
from hetplan.profiler.shapes import Shape
from hetplan.profiler.stats import percentile


@dataclass(frozen=True)
class Job:
    spec: ModelSpec
    shape: Shape
    batch: int
    scaled: bool = False  # derived from a VM measurement instead of run under a cgroup

    @property
    def label(self) -> str:
        return f"{self.spec.name} {self.shape.label} batch {self.batch}"

    @property
    def key(self) -> tuple[str, ...]:
        """The key its row will have (``profile_csv.row_key``), to skip work already done."""
        return (self.spec.name, self.shape.platform, self.shape.instance_type, str(self.shape.memory_mb), str(self.batch))


@dataclass(frozen=True)
class Accuracy:
    top1: float | None
    top5: float | None
    source: str  # "measured" or "published"


def published_accuracy(spec: ModelSpec) -> Accuracy:
    """The catalog's figures; empty ones (a model without a published figure) stay empty, and the
    planner then asks for them, but the source is still 'published' as the schema allows no other."""
    return Accuracy(spec.top1, spec.top5, "published")


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def base_row(job: Job, accuracy: Accuracy, host: str, mxnet_version: str, method: str, source: str) -> dict:
    """The columns every row has; latency and the other measured columns empty (not runnable)."""
    return {
        "model": job.spec.name, "platform": job.shape.platform, "instance_type": job.shape.instance_type,
        "memory_mb": job.shape.memory_mb, "vcpus": job.shape.vcpus, "batch": job.batch, "concurrency": 1,
        "accuracy_top1": _round(accuracy.top1, 2), "accuracy_top5": _round(accuracy.top5, 2),
        "accuracy_source": accuracy.source, "method": method, "host": host,
        "mxnet_version": mxnet_version, "timestamp": now(), "source": source,
    }


def measured_row(job: Job, result: dict, accuracy: Accuracy, host: str, mxnet_version: str, source: str) -> dict:
    latencies = result["latencies_ms"]
    row = base_row(job, accuracy, host, mxnet_version, "measured", source)
    row.update({
        "latency_p50_ms": _round(percentile(latencies, 50), 3),
        "latency_p90_ms": _round(percentile(latencies, 90), 3),
        "latency_p99_ms": _round(percentile(latencies, 99), 3),
        "throughput_rps": _round(result["throughput_rps"], 3),
        "peak_memory_mb": _round(result["peak_memory_mb"], 1),
        "load_time_ms": _round(result["load_time_ms"], 1),
    })
    return row


def scaled_row(job: Job, base: dict, accuracy: Accuracy, host: str, mxnet_version: str, reason: str) -> dict:
    """A Lambda row derived from a VM row by ideal CPU-share scaling: time x base vCPUs / share.

    Memory does not scale with CPU: if the base process peaked above the Lambda size, the row
    records that the model does not fit (empty latency)."""
    factor = float(base["vcpus"]) / job.shape.vcpus
    source = (f"scaled from {base['instance_type']} batch {job.batch} by {float(base['vcpus']):g} vCPU / "
              f"{job.shape.vcpus:g} vCPU share (ideal linear scaling, not measured): {reason}")
    row = base_row(job, accuracy, host, mxnet_version, "scaled", source)
    peak = float(base["peak_memory_mb"]) if base.get("peak_memory_mb") not in (None, "") else None
    if base.get("latency_p50_ms") in (None, "") or (peak is not None and peak > job.shape.memory_mb):
        row["source"] = f"does not fit: base peak {peak} MB > {job.shape.memory_mb} MB; " + source
        return row
    for column in ("latency_p50_ms", "latency_p90_ms", "latency_p99_ms", "load_time_ms"):
        if base.get(column) not in (None, ""):
            row[column] = round(float(base[column]) * factor, 3)
    if base.get("throughput_rps") not in (None, ""):
        row["throughput_rps"] = round(float(base["throughput_rps"]) / factor, 3)
    row["peak_memory_mb"] = peak
    return row
