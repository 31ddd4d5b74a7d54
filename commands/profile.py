"""``hetplan profile``: measure models on CPU shapes and emulated Lambda sizes, and merge profiles.

Nothing here imports mxnet: the measuring runs in subprocesses, so ``hetplan --help`` stays fast.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from hetplan.commands.common import JsonFlag, PlainFlag, QuietFlag, output
from hetplan.errors import HetplanError

profile_app = typer.Typer(no_args_is_help=False)

DEFAULT_LAMBDA_MB = "512,1024,1769,3008"


def _host_description(instance_type: str | None, cpus: int) -> str:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = " ".join(line.split(":", 1)[1].split())
                break
    except OSError:
        pass
    where = instance_type or "local"
    return f"{where}: {model or 'unknown CPU'}, {cpus} CPU(s) usable"


def _vm_memory_mb(instance_type: str | None) -> int:
    """The instance's memory from data/instances.csv, else this host's total memory."""
    if instance_type:
        import csv

        table = Path(__file__).resolve().parents[1] / "data" / "instances.csv"
        if table.exists():
            with open(table, newline="", encoding="utf-8") as handle:
                for row in csv.DictReader(handle):
                    if row.get("instance_type") == instance_type and row.get("memory_gib"):
                        return int(float(row["memory_gib"]) * 1024)
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    return 0


def build_config(models: str, batch_sizes: str, vcpus: str, lambda_memory: str, instance_type: str | None,
                 weights: Path | None, dataset: Path | None, out: Path, resume: bool, quick: bool,
                 repetitions: int | None):
    """Validate the options into a ProfileConfig (HetplanError on the first bad one)."""
    from hetplan.profiler import stats
    from hetplan.profiler.catalog import PAPER_MODELS, read_catalog, resolve_models
    from hetplan.profiler.runner import ProfileConfig
    from hetplan.profiler.shapes import lambda_shapes, parse_int_list, vm_shapes

    catalog = read_catalog()
    if models.strip() == "all":
        from hetplan.profiler.architectures import known_architectures

        # every catalog model (those with a published accuracy) that has a builder
        names = [name for name, spec in catalog.items() if spec.top1 is not None and spec.arch in known_architectures()]
    else:
        names = [name.strip() for name in (models or ",".join(PAPER_MODELS)).split(",") if name.strip()]
    specs = resolve_models(names, catalog)
    host_cpus = tuple(sorted(os.sched_getaffinity(0)))
    vm_counts = parse_int_list(vcpus, "vcpus") if vcpus.strip() not in ("", "none") else []
    memories = parse_int_list(lambda_memory, "Lambda memory") if lambda_memory.strip() not in ("", "none") else []
    vm_memory = _vm_memory_mb(instance_type)
    shapes = vm_shapes(vm_counts, len(host_cpus), vm_memory, instance_type) if vm_counts else []
    shapes += lambda_shapes(memories, len(host_cpus))
    if not shapes:
        raise HetplanError("nothing to measure: give --vcpus and/or --lambda-memory")
    if dataset is not None and weights is None:
        raise HetplanError("--dataset needs --weights: accuracy of initialized weights means nothing")
    for folder, what in ((weights, "--weights"), (dataset, "--dataset")):
        if folder is not None and not folder.exists():
            raise HetplanError(f"{what} '{folder}' does not exist")
    if weights is not None:
        from hetplan.profiler.weights import find_weights

        for spec in specs:
            find_weights(weights, spec.name, spec.arch)  # fail before measuring anything
    if repetitions is not None:
        from hetplan.units import count

        count(repetitions, "--repetitions", minimum=1, example="30")
    reps = stats.fixed(repetitions) if repetitions else (stats.QUICK if quick else stats.Repetitions())
    return ProfileConfig(
        models=tuple(specs), batch_sizes=tuple(parse_int_list(batch_sizes, "batch sizes")), shapes=tuple(shapes),
        out=out, repetitions=reps, host_cpus=host_cpus, host=_host_description(instance_type, len(host_cpus)),
        vm_memory_mb=vm_memory,
        resume=resume, weights_dir=weights, dataset=dataset, timeout_s=300.0 if quick else 900.0)


def require_mxnet() -> None:
    """The profiler needs mxnet, an optional extra: say how to install it instead of failing on an import."""
    import importlib.util

    if importlib.util.find_spec("mxnet") is None:
        raise HetplanError("install the profiler: pip install 'hetplan[profile]' (mxnet is not installed)")


def require_device(device: str) -> None:
    """``--device gpu`` needs a GPU that this MXNet build can see; say so (exit 2) rather than measure the CPU."""
    if device not in ("cpu", "gpu"):
        raise HetplanError(f"--device {device!r}: use cpu or gpu")
    if device == "cpu":
        return
    import mxnet as mx

    gpus = mx.context.num_gpus()
    if gpus == 0:
        raise HetplanError("--device gpu: this MXNet sees no GPU (mx.context.num_gpus() = 0; a CPU-only build, or no "
                           "NVIDIA GPU and driver): run on a GPU instance with a CUDA build, e.g. pip install mxnet-cu112")
    raise HetplanError(f"--device gpu: {gpus} GPU(s) found, but measuring on a GPU is not implemented yet; "
                       "use the published GPU rows (data/profiles/published-mxnet.csv)")


@profile_app.callback(invoke_without_command=True)
def profile(
    ctx: typer.Context,
    models: Annotated[str, typer.Option(help="Comma-separated catalog or Gluon zoo names, or 'all' (every data/models.csv model with a builder). Default: the paper's six.")] = "",
    batch_sizes: Annotated[str, typer.Option(help="Comma-separated batch sizes.")] = "1",
    vcpus: Annotated[str, typer.Option(help="Local CPU shapes: comma-separated vCPU counts, or 'none'.")] = "1",
    lambda_memory: Annotated[str, typer.Option(help="Lambda memory sizes in MB (128-10240) to emulate, or 'none'.")] = DEFAULT_LAMBDA_MB,
    instance_type: Annotated[Optional[str], typer.Option(help="Name VM rows after this EC2 type (run it on that instance).")] = None,
    weights: Annotated[Optional[Path], typer.Option(help="Folder of trained weights: <model>.params, <arch>.params, or <model>-symbol.json + <model>-0000.params.")] = None,
    dataset: Annotated[Optional[Path], typer.Option(help="Labelled image folder or .rec file: measure top-1/top-5 (needs --weights).")] = None,
    out: Annotated[Path, typer.Option(help="Profile CSV to write (rows are appended as they are measured).")] = Path("profile.csv"),
    resume: Annotated[bool, typer.Option(help="Continue an interrupted run: skip rows already in --out.")] = False,
    quick: Annotated[bool, typer.Option(help="Few repetitions: a smoke run, not a careful profile.")] = False,
    repetitions: Annotated[Optional[int], typer.Option(help="Exactly this many timed calls per measurement.")] = None,
    device: Annotated[str, typer.Option(help="cpu, or gpu (needs a CUDA build of MXNet and an NVIDIA GPU).")] = "cpu",
    json_output: JsonFlag = False,
    plain: PlainFlag = False,
    quiet: QuietFlag = False,
) -> None:
    """Measure models on CPU shapes (--vcpus) and emulated Lambda sizes (--lambda-memory).

    Each (model, shape, batch) runs in a fresh process: latency p50/p90/p99, throughput, peak memory, load time.

    As root, Lambda sizes get a cgroup CPU quota (memory/1769 vCPU) and memory limit; else they are scaled (method=scaled).
    """
    if ctx.invoked_subcommand is not None:
        return
    require_mxnet()
    require_device(device)
    from hetplan.commands.output.results import profile_records, show_profile
    from hetplan.profiler.runner import run_profile

    config = build_config(models, batch_sizes, vcpus, lambda_memory, instance_type, weights, dataset, out,
                          resume, quick, repetitions)
    view = output(json_output, plain, quiet)
    with view.progress("profiling") as bar:
        outcomes = run_profile(
            config,
            on_plan=lambda total: bar.update(total=total),
            on_start=lambda job: bar.update(description=job.label),
            on_outcome=lambda outcome: bar.advance())
    records = profile_records(outcomes)
    if view.json:
        view.print_json({"out": str(out), "rows": records})
    else:
        show_profile(view, records, out)
    failed = [outcome for outcome in outcomes if outcome.status == "failed"]
    if failed:
        # exit 1: the profile asked for is not complete (the README lists this case)
        typer.echo(f"{len(failed)} measurement(s) failed; rerun with --resume to retry them", err=True)
        raise typer.Exit(1)


@profile_app.command()
def merge(
    inputs: Annotated[list[Path], typer.Argument(help="Profile CSV files, e.g. one per instance type.")],
    out: Annotated[Path, typer.Option(help="Merged profile to write.")],
    json_output: JsonFlag = False,
) -> None:
    """Combine profiles into one: one row per model/platform/instance type/memory/batch, the newest winning."""
    from hetplan.profiler.profile_csv import merge_profiles

    count = merge_profiles(inputs, out)
    view = output(json_output)
    if view.json:
        view.print_json({"out": str(out), "rows": count, "inputs": [str(path) for path in inputs]})
    else:
        view.note(f"wrote {count} rows to {out}")
