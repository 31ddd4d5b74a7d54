"""The profile schema: the columns the profiler writes and the planner reads (schema version 1).

One row is one measured (or derived) configuration of a model on a platform:

| column | unit | meaning |
|---|---|---|
| model | - | catalog name (``data/models.csv``) |
| platform | - | ``vm`` or ``lambda`` |
| instance_type | - | EC2 type for ``vm`` rows (``data/instances.csv``), or a local shape name such as ``local-2vcpu``; empty for ``lambda`` |
| memory_mb | MiB | Lambda memory size, or the VM's memory |
| vcpus | vCPU | CPUs the serving process had (Lambda: memory_mb / 1769, at most 6) |
| batch | requests | batch size of one inference call |
| latency_p50_ms, latency_p90_ms, latency_p99_ms | ms | latency of one inference call at that batch; p90/p99 empty where only one figure is known |
| throughput_rps | requests/s | sustained throughput measured at ``concurrency``; empty where not measured |
| concurrency | calls | inference calls run at once on the shape (VM slots) |
| peak_memory_mb | MiB | peak resident memory of the serving process; empty where unknown |
| load_time_ms | ms | time to load the model into a fresh process (the cold-start component); empty where unknown |
| accuracy_top1, accuracy_top5 | % | ImageNet top-1 / top-5 |
| accuracy_source | - | ``measured`` or ``published`` |
| method | - | ``measured`` (run here by ``hetplan profile``), ``reference`` (measured on that hardware by someone else, cited), ``published`` (from a published benchmark, cited; a proxy model is named in ``source``), ``scaled`` (derived from another row by a documented rule whose ratio is cited in ``source``) |
| host | - | where it was measured |
| mxnet_version | - | |
| timestamp | ISO 8601 | |
| source | - | citation or command; required (the rule, for ``scaled`` rows) |

A row whose latency is empty records that the configuration could not run (out of memory or time).
"""

from __future__ import annotations

PROFILE_SCHEMA_VERSION = 1

PROFILE_COLUMNS: tuple[str, ...] = (
    "model",
    "platform",
    "instance_type",
    "memory_mb",
    "vcpus",
    "batch",
    "latency_p50_ms",
    "latency_p90_ms",
    "latency_p99_ms",
    "throughput_rps",
    "concurrency",
    "peak_memory_mb",
    "load_time_ms",
    "accuracy_top1",
    "accuracy_top5",
    "accuracy_source",
    "method",
    "host",
    "mxnet_version",
    "timestamp",
    "source",
)
PLATFORMS = ("vm", "lambda")
METHODS = ("measured", "reference", "published", "scaled")  # in order of directness (batching.prefer_direct)
ACCURACY_SOURCES = ("measured", "published")

# AWS Lambda: at 1,769 MB a function has the equivalent of one vCPU; at most 6 vCPUs (data/serverless.csv).
LAMBDA_MB_PER_VCPU = 1769.0
LAMBDA_MAX_VCPUS = 6.0
