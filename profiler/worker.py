"""One measurement in a fresh process: ``python -m hetplan.profiler.worker JOB_JSON``.

The process first confines itself as the job says (cgroup, CPU affinity, priority; the parent set the
thread variables), then loads the model, times inference calls and prints one JSON line with the raw
figures. A fresh process per measurement keeps peak memory honest and isolates crashes and
out-of-memory kills. Confining here rather than in a ``preexec_fn`` lets the parent start children
without fork handlers (mxnet's, when a caller has it loaded, made each start take seconds).
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from pathlib import Path


def confine(limits: dict) -> None:
    """Join the cgroup, pin to the cores and raise priority, before mxnet is imported."""
    for procs in limits.get("cgroup_procs", []):
        Path(procs).write_text(str(os.getpid()))
    if limits.get("cores"):
        os.sched_setaffinity(0, limits["cores"])
    if limits.get("nice"):
        try:  # on a shared host, neighbours at normal priority then barely slow the measurement
            os.setpriority(os.PRIO_PROCESS, 0, limits["nice"])
        except OSError:
            pass


def measure_latency(job: dict, started: float) -> dict:
    import mxnet as mx

    from hetplan.profiler.stats import Repetitions, median_moved, should_stop
    from hetplan.profiler.weights import load_network

    reps = Repetitions(**job["repetitions"])
    size = job["input_size"]
    net = load_network(job["arch"], job.get("weights"))
    data = mx.nd.random.uniform(shape=(job["batch"], 3, size, size))
    net(data).wait_to_read()  # first call builds the cached graph: part of loading
    load_ms = (time.perf_counter() - started) * 1000.0
    for _ in range(reps.warmup):
        net(data).wait_to_read()
    latencies: list[float] = []
    calm = 0
    begin = time.perf_counter()
    while not should_stop(latencies, reps, time.perf_counter() - begin, calm):
        start = time.perf_counter()
        net(data).wait_to_read()
        latencies.append((time.perf_counter() - start) * 1000.0)
        if len(latencies) >= reps.minimum and len(latencies) % reps.chunk == 0:
            calm = 0 if median_moved(latencies, reps.chunk, reps.tolerance) else calm + 1
    wall = time.perf_counter() - begin
    return {
        "latencies_ms": latencies,
        "throughput_rps": job["batch"] * len(latencies) / wall,
        "load_time_ms": load_ms,
        "mxnet_version": mx.__version__,
    }


def measure_accuracy_job(job: dict, started: float) -> dict:
    from hetplan.profiler.accuracy import evaluate
    from hetplan.profiler.weights import load_network

    net = load_network(job["arch"], job["weights"])
    return evaluate(net, job["dataset"], job["input_size"], batch=job.get("batch", 16))


def peak_memory_mb() -> float:
    """The high-water mark of this process's resident memory, in MiB.

    ``VmHWM`` belongs to the memory of this program since its exec. ``ru_maxrss`` does not: Linux keeps it across
    fork and exec, so a worker started from a large parent (a test runner of 600 MB) would report the parent's
    size. ``ru_maxrss`` (KiB on Linux) remains the fallback where /proc is not there."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return float(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main(argv: list[str]) -> int:
    job = json.loads(argv[1])
    confine(job.get("limits", {}))
    started = time.perf_counter()  # before importing mxnet: the import is part of a cold start
    task = measure_accuracy_job if job.get("task") == "accuracy" else measure_latency
    result = task(job, started)
    result["peak_memory_mb"] = peak_memory_mb()
    sys.stdout.write("HETPLAN-RESULT " + json.dumps(result) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(f"usage: python -m hetplan.profiler.worker JOB_JSON (got {Path(sys.argv[0]).name} {sys.argv[1:]})")
    sys.exit(main(sys.argv))
