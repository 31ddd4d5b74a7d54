"""What-if sweeps: solve a grid of scenarios (SLO × mean accuracy × load scale) in parallel and mark the frontier.

A scenario is the base ``PlanRequest`` with its ``slo_s``, ``mean_accuracy`` and ``load_scale`` replaced.
Scenarios are independent solves, so they run on ``dask.distributed`` (a local cluster of processes by
default, or an existing cluster), on a plain process pool, or one after another. The client writes each
result as it arrives (``plans/<id>.json`` then ``summary.csv``, both atomically), so a killed sweep resumes
where it stopped. A scenario that fails is a row with its reason, never an exception that stops the others.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import os
import socket
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from hetplan.errors import HetplanError
from hetplan.fileio import write_text_atomic
from hetplan.planner.optimize.workflow import PlanRequest

EXECUTORS = ("dask", "processes", "serial")
SUMMARY_COLUMNS = [
    "scenario", "slo_ms", "mean_accuracy_target", "load_scale", "status", "pareto",
    "total_cost_usd", "cost_per_million_usd", "mean_accuracy", "vm_cost_usd", "lambda_cost_usd", "lambda_share",
    "gap", "bound_usd", "solver_seconds", "seconds", "windows", "requests", "reason", "plan", "worker", "finished_utc",
]
PLANNED = ("optimal", "feasible")          # statuses that come with a plan
FINAL = PLANNED + ("infeasible",)          # statuses --resume keeps; "timeout" and "error" are tried again
_NUMERIC = SUMMARY_COLUMNS[1:4] + SUMMARY_COLUMNS[6:18]
_SWEPT_FIELDS = ("slo_s", "mean_accuracy", "load_scale")
CONNECT_TIMEOUT_S = 10.0  # to reach a --scheduler


@dataclass(frozen=True)
class Scenario:
    slo_s: float
    mean_accuracy: float
    load_scale: float = 1.0

    @property
    def id(self) -> str:
        """File-name-safe and stable across runs (resume matches on it), e.g. ``slo200ms-acc75-load1.5``."""
        return f"slo{_g(self.slo_s * 1000)}ms-acc{_g(self.mean_accuracy * 100)}-load{_g(self.load_scale)}"

    def request(self, base: PlanRequest) -> PlanRequest:
        return dataclasses.replace(base, slo_s=self.slo_s, mean_accuracy=self.mean_accuracy, load_scale=self.load_scale)


def _g(value: float) -> str:
    return f"{round(value, 6):g}"  # 0.77 * 100 = 77.00000000000001 must still read 77


def scenario_grid(slos_s: Iterable[float], mean_accuracies: Iterable[float],
                  load_scales: Iterable[float] = (1.0,)) -> list[Scenario]:
    """Every combination, SLO-major; raises HetplanError on an empty list, a duplicate or a value out of range."""
    axes = {"--slo": list(slos_s), "--mean-accuracy": list(mean_accuracies), "--load-scale": list(load_scales)}
    for option, values in axes.items():
        if not values:
            raise HetplanError(f"{option} is empty: give one value or more, comma-separated")
        seen = set()
        for value in values:
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise HetplanError(f"{option} value {value!r} must be a positive number")
            if round(value, 9) in seen:
                raise HetplanError(f"{option} lists {value:g} twice")
            seen.add(round(value, 9))
    for value in axes["--mean-accuracy"]:
        if value > 1:
            raise HetplanError(f"--mean-accuracy {value:g} is above 100%: write 0.75 or 75%")
    return [Scenario(s, a, l) for s in axes["--slo"] for a in axes["--mean-accuracy"] for l in axes["--load-scale"]]


def solve_scenario(scenario: Scenario, base: PlanRequest) -> tuple[dict, str | None]:
    """Solve one scenario: (summary row, plan JSON or None). Never raises: a failure is a row with its reason.

    Runs inside the workers; returns the plan as text so a remote worker needs no shared disk for results.
    """
    from hetplan.planner.optimize.workflow import make_plan

    started = time.perf_counter()
    row = {"scenario": scenario.id, "slo_ms": round(scenario.slo_s * 1000, 6),
           "mean_accuracy_target": scenario.mean_accuracy, "load_scale": scenario.load_scale}
    text = None
    try:
        plan = make_plan(scenario.request(base))
        text = plan.to_json()
        s, solver = plan.summary, plan.meta["solver"]
        row.update(status=solver["status"], total_cost_usd=s["total_cost_usd"], cost_per_million_usd=s["cost_per_million_usd"],
                   mean_accuracy=s["mean_accuracy"], vm_cost_usd=s["vm_cost_usd"], lambda_cost_usd=s["lambda_cost_usd"],
                   lambda_share=s["lambda_share"], gap=solver["gap"], bound_usd=solver["bound_usd"],
                   solver_seconds=solver["seconds"], windows=len(plan.windows), requests=s["requests"])
    except HetplanError as exc:  # the planner's explanation: targets out of reach, or no plan in the time limit
        row.update(status="timeout" if "--time-limit" in str(exc) else "infeasible", reason=str(exc))
    except Exception as exc:  # a bug or a broken input must not stop the other scenarios
        where = traceback.extract_tb(exc.__traceback__)[-1]
        row.update(status="error", reason=f"{type(exc).__name__}: {exc} ({Path(where.filename).name}:{where.lineno})")
    row.update(seconds=time.perf_counter() - started, worker=f"{socket.gethostname()}:{os.getpid()}",
               finished_utc=dt.datetime.now(dt.timezone.utc).isoformat(timespec="microseconds"))
    return row, text


def pareto_mask(frame: pd.DataFrame) -> pd.Series:
    """True for the Pareto-optimal scenarios among those with a plan, compared within each load scale.

    Scenario A dominates B when A is at least as good on all three axes and strictly better on one:
    - cost: lower ``total_cost_usd`` is better;
    - SLO: a tighter (lower) ``slo_ms`` is better: a looser SLO is a weaker promise;
    - accuracy: a higher ``mean_accuracy_target`` is better (the target is the promise in every window;
      the achieved mean can only be higher).
    A scenario is Pareto-optimal when no other dominates it. Exact ties dominate neither way, so twins are
    both marked. Load scales are not compared with each other: more traffic is a different question,
    not a worse answer. Rows without a plan (infeasible, timeout, error) are never marked and dominate nothing.
    """
    mask = pd.Series(False, index=frame.index)
    planned = frame[frame.status.isin(PLANNED) & frame.total_cost_usd.notna()]
    for _, group in planned.groupby("load_scale"):
        # minimise all three: cost, SLO and minus accuracy
        x = np.column_stack([group.total_cost_usd, group.slo_ms, -group.mean_accuracy_target]).astype(float)
        no_worse = (x[:, None, :] <= x[None, :, :]).all(axis=2)   # [i, j]: i is no worse than j everywhere
        better = (x[:, None, :] < x[None, :, :]).any(axis=2)      # [i, j]: i is strictly better somewhere
        dominated = (no_worse & better).any(axis=0)
        mask.loc[group.index] = ~dominated
    return mask


def summary_frame(rows: Sequence[dict]) -> pd.DataFrame:
    """Rows in the given order, every summary column present, ``pareto`` computed."""
    frame = pd.DataFrame(list(rows), columns=SUMMARY_COLUMNS)
    for column in _NUMERIC:
        frame[column] = pd.to_numeric(frame[column], errors="coerce")
    frame["pareto"] = pareto_mask(frame) if len(frame) else pd.Series(dtype=bool)
    return frame


def check_executor(executor: str, scheduler: str | None, workers: int | None) -> None:
    """Raise HetplanError when the execution options do not go together (before any work starts)."""
    if executor not in EXECUTORS:
        raise HetplanError(f"unknown executor '{executor}': use {', '.join(EXECUTORS)}")
    if scheduler and executor != "dask":
        raise HetplanError("--scheduler needs the dask executor")
    if scheduler and workers is not None:
        raise HetplanError("--workers sizes the local cluster: with --scheduler the cluster's own workers run the scenarios")
    if workers is not None and workers < 1:
        raise HetplanError(f"--workers {workers} must be at least 1")


def run_sweep(scenarios: Sequence[Scenario], base: PlanRequest, *, out_dir: str | os.PathLike | None = None,
              resume: bool = False, executor: str = "dask", scheduler: str | None = None, workers: int | None = None,
              on_result: Callable[[dict, bool], None] | None = None) -> pd.DataFrame:
    """Solve every scenario and return the summary (one row each, in grid order, ``pareto`` marked).

    ``executor``: ``dask`` (a ``LocalCluster`` of ``workers`` single-threaded processes, default one per
    core, or the cluster at ``scheduler``, e.g. ``tcp://host:8786``), ``processes`` (a local process pool,
    no Dask) or ``serial``. With ``out_dir`` each finished scenario is written at once; ``resume`` keeps the
    rows already there (except timeouts and errors) and solves only the rest. ``on_result(row, resumed)``
    is called once per scenario as it is done (for progress bars).
    """
    check_executor(executor, scheduler, workers)
    ids = [s.id for s in scenarios]
    if len(set(ids)) != len(ids):
        raise HetplanError("the sweep lists a scenario twice")
    out = Path(out_dir) if out_dir is not None else None
    rows: dict[str, dict] = {}
    if out is not None:
        _check_base(out, base, resume)
        if resume:
            rows = _finished_rows(out, ids)
        else:  # an old summary must not outlive this run's first result (a later --resume would trust it)
            _write_summary(out, [])
    for scenario_id in ids:
        if scenario_id in rows and on_result:
            on_result(rows[scenario_id], True)
    todo = [s for s in scenarios if s.id not in rows]
    for scenario, (row, text) in _results(todo, base, executor, scheduler, workers):
        if out is not None and text is not None:  # plan first: a row in summary.csv always has its plan on disk
            row["plan"] = f"plans/{scenario.id}.json"
            write_text_atomic(out / row["plan"], text)
        rows[scenario.id] = row
        if out is not None:
            _write_summary(out, [rows[i] for i in ids if i in rows])
        if on_result:
            on_result(row, False)
    if out is not None:
        _write_summary(out, [rows[i] for i in ids])  # a resumed sweep's rows and Pareto marks, in grid order
    return summary_frame([rows[i] for i in ids])


def _results(todo: list[Scenario], base: PlanRequest, executor: str, scheduler: str | None,
             workers: int | None) -> Iterator[tuple[Scenario, tuple[dict, str | None]]]:
    """(scenario, solve_scenario result) in completion order."""
    if not todo:
        return
    if executor == "serial":
        for scenario in todo:
            yield scenario, solve_scenario(scenario, base)
    elif executor == "processes":
        yield from _process_results(todo, base, workers or _cores())
    else:
        yield from _dask_results(todo, base, scheduler, workers)


def _process_results(todo, base, workers):
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    with ProcessPoolExecutor(max_workers=min(workers, len(todo)), mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {pool.submit(solve_scenario, s, base): s for s in todo}
        for future in as_completed(futures):
            yield futures[future], _outcome(futures[future], future)


def _dask_results(todo, base, scheduler, workers):
    import contextlib
    import logging

    import dask
    from dask.distributed import Client, LocalCluster, as_completed

    with contextlib.ExitStack() as stack:
        if scheduler:
            client = stack.enter_context(connect_scheduler(Client, scheduler))
        else:
            # One queued scenario per free thread (not 1.1): a few long solves must not wait behind each other
            # on one worker while another is idle. (Inside the daemonic workers solve_plan solves its chunks
            # in-process: the sweep is already parallel across scenarios.)
            stack.enter_context(dask.config.set({"distributed.scheduler.worker-saturation": 1.0}))
            cluster = stack.enter_context(LocalCluster(
                n_workers=min(workers or _cores(), len(todo)), threads_per_worker=1, processes=True,
                dashboard_address=None, silence_logs=logging.ERROR))
            client = stack.enter_context(Client(cluster))
        futures = {client.submit(solve_scenario, s, base, key=f"hetplan-sweep-{s.id}-{os.getpid()}-{time.time_ns()}",
                                 pure=False): s for s in todo}
        for future in as_completed(futures):
            yield futures[future], _outcome(futures[future], future)
            future.release()  # the plan text may be large; the client holds its own copy now


def connect_scheduler(client_class, scheduler: str):
    try:
        client = client_class(scheduler, timeout=f"{CONNECT_TIMEOUT_S}s")
    except (OSError, TimeoutError) as exc:
        raise HetplanError(f"cannot reach the Dask scheduler at {scheduler} ({type(exc).__name__}): start one with "
                           f"`dask scheduler` and `dask worker {scheduler}`, or drop --scheduler to run locally") from None
    try:
        client.wait_for_workers(1, timeout=30)
    except (OSError, TimeoutError):
        client.close()
        raise HetplanError(f"the Dask scheduler at {scheduler} has no workers: start some with "
                           f"`dask worker {scheduler}` (hetplan must be installed there)") from None
    return client


def _outcome(scenario: Scenario, future) -> tuple[dict, str | None]:
    """The future's result, or an error row when the task itself failed (worker died, hetplan missing on it)."""
    try:
        return future.result()
    except Exception as exc:
        hint = " (is hetplan installed on the workers?)" if isinstance(exc, (ImportError, ModuleNotFoundError)) else ""
        return ({"scenario": scenario.id, "slo_ms": round(scenario.slo_s * 1000, 6),
                 "mean_accuracy_target": scenario.mean_accuracy, "load_scale": scenario.load_scale,
                 "status": "error", "reason": f"{type(exc).__name__}: {exc}{hint}",
                 "finished_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="microseconds")}, None)


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _base_key(base: PlanRequest) -> dict:
    """The base request's fields other than the swept ones, JSON-comparable."""
    return {k: v for k, v in json.loads(json.dumps(dataclasses.asdict(base), default=str)).items()
            if k not in _SWEPT_FIELDS}


def _check_base(out: Path, base: PlanRequest, resume: bool) -> None:
    """``sweep.json`` records the base request; resuming with another one would mix answers to two questions."""
    path, key = out / "sweep.json", _base_key(base)
    if resume and path.exists():
        try:
            old = json.loads(path.read_text()).get("base", {})
        except (json.JSONDecodeError, OSError, AttributeError) as exc:
            raise HetplanError(f"--resume: cannot read {path} ({exc}); delete {out} or run without --resume") from None
        changed = next((k for k in key if old.get(k) != key[k]), None)
        if changed:
            raise HetplanError(f"--resume: {out} holds a sweep with {changed}={old.get(changed)!r}, this one has "
                               f"{key[changed]!r}; use another --out or the same options")
    write_text_atomic(path, json.dumps({"kind": "hetplan.sweep", "base": key}, indent=1) + "\n")


def _finished_rows(out: Path, ids: list[str]) -> dict[str, dict]:
    """Rows of ``summary.csv`` that --resume keeps: in this grid, final, and with their plan file when planned."""
    path = out / "summary.csv"
    if not path.exists():
        return {}
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise HetplanError(f"--resume: cannot read {path} ({exc}); delete it to start over") from None
    if "scenario" not in frame or "status" not in frame:
        raise HetplanError(f"--resume: {path} is not a sweep summary (no scenario/status columns)")
    wanted = set(ids)
    kept = {}
    for row in frame.astype(object).where(frame.notna(), None).to_dict("records"):
        if row["scenario"] not in wanted or row["status"] not in FINAL:
            continue
        if row["status"] in PLANNED and not (row.get("plan") and (out / row["plan"]).exists()):
            continue
        kept[row["scenario"]] = row
    return kept


def _write_summary(out: Path, rows: list[dict]) -> None:
    write_text_atomic(out / "summary.csv", summary_frame(rows).to_csv(index=False))
