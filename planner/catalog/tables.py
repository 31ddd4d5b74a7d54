"""Typed loaders for the shipped catalog (``data/``) and for users' own files with the same columns.

Each loader reads one CSV, checks every column and value, and returns a validated DataFrame (or a
frozen dataclass). A bad file raises :class:`HetplanError` naming the file, line and column.
Catalog queries are pure pandas functions over these frames; units are in the column names
(``price_per_hour_usd``, ``memory_gib``) and documented in ``data/README.md``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from hetplan.errors import HetplanError
from hetplan.planner.catalog.schema import ACCURACY_SOURCES, METHODS, PLATFORMS, PROFILE_COLUMNS

DATA_DIR = Path(__file__).resolve().parents[2] / "data"  # the package's data/ folder (repo root = package root)
DEFAULT_INSTANCES = DATA_DIR / "instances.csv"
DEFAULT_SERVERLESS = DATA_DIR / "serverless.csv"
DEFAULT_MODELS = DATA_DIR / "models.csv"
DEFAULT_PROFILE = DATA_DIR / "profiles" / "aws-reference.csv"
FULL_PROFILE = DATA_DIR / "profiles" / "catalog.csv"  # aws-reference.csv + published-mxnet.csv (every family with rows)
DEFAULT_TRACE = DATA_DIR / "traces" / "wits.csv.gz"

# Column kinds: "str" (non-empty), "str?" (may be empty), "num>=0", "num>0", "num?" (empty or >= 0),
# "int>=0", "int>0", "bool", and tuples of allowed strings.
_INSTANCE_COLUMNS = {
    "instance_type": "str", "family": "str", "size": "str", "vcpus": "num>0", "memory_gib": "num>0",
    "price_per_hour_usd": "num>0", "arch": ("x86_64", "arm64"), "gpu": "str?", "gpu_count": "int>=0",
    "gpu_memory_gib": "num>=0", "burstable": "bool", "boot_seconds": "num>=0", "price_verified": "bool",
}
# Columns added after schema version 1 was first shipped, and what a file without them means.
# AWS's burstable performance instances are its T families (t2, t3, t3a, t4g): a file without the column marks those.
_INSTANCE_DEFAULTS = {"arch": "x86_64", "gpu_memory_gib": "0",
                      "burstable": lambda f: f.family.str.strip().str.fullmatch(r"t\d+[a-z]*").map({True: "true", False: "false"})}
_SERVERLESS_COLUMNS = {
    "architecture": "str", "price_per_request_usd": "num>=0", "price_per_gb_second_usd": "num>0",
    "memory_min_mb": "num>0", "memory_max_mb": "num>0", "memory_step_mb": "num>0", "mb_per_vcpu": "num>0",
    "max_vcpus": "num>0", "concurrency_limit": "int>0", "billing_granularity_ms": "num>0", "init_limit_s": "num>0",
}
_MODEL_COLUMNS = {
    "model": "str", "family": "str?", "top1": "num>0", "top5": "num?", "params": "num?", "input_size": "int>0",
    "accuracy_source": "str", "params_source": "str?", "zoo_name": "str?", "notes": "str?",
}
_PROFILE_KINDS = {
    "model": "str", "platform": PLATFORMS, "instance_type": "str?", "memory_mb": "num>0", "vcpus": "num>0",
    "batch": "int>0", "latency_p50_ms": "num?", "latency_p90_ms": "num?", "latency_p99_ms": "num?",
    "throughput_rps": "num?", "concurrency": "int>0", "peak_memory_mb": "num?", "load_time_ms": "num?",
    "accuracy_top1": "num?", "accuracy_top5": "num?", "accuracy_source": ACCURACY_SOURCES, "method": METHODS,
    "host": "str?", "mxnet_version": "str?", "timestamp": "str?", "source": "str",
}
assert tuple(_PROFILE_KINDS) == PROFILE_COLUMNS


@dataclass(frozen=True)
class ServerlessPricing:
    """AWS Lambda prices and limits for one architecture (units in the field names)."""

    architecture: str
    price_per_request_usd: float
    price_per_gb_second_usd: float
    memory_min_mb: float
    memory_max_mb: float
    memory_step_mb: float
    mb_per_vcpu: float
    max_vcpus: float
    concurrency_limit: int
    billing_granularity_ms: float
    init_limit_s: float

    def cost_per_request(self, duration_ms: float, memory_mb: float) -> float:
        """Dollars for one invocation: request fee + GB-seconds at the billed (rounded-up) duration."""
        billed_ms = -(-duration_ms // self.billing_granularity_ms) * self.billing_granularity_ms
        return self.price_per_request_usd + billed_ms / 1000.0 * memory_mb / 1024.0 * self.price_per_gb_second_usd

    def vcpus_at(self, memory_mb: float) -> float:
        """CPU share Lambda gives at a memory size (1,769 MB = 1 vCPU, capped)."""
        return min(memory_mb / self.mb_per_vcpu, self.max_vcpus)


def file_digest(path: str | Path) -> str:
    """``sha256:<hex>`` of a file, recorded in plans so their inputs can be checked."""
    return "sha256:" + hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _read_checked(path: str | Path, kinds: dict, what: str, defaults: dict | None = None) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise HetplanError(f"{what} file '{path}' does not exist: pass an existing CSV file")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise HetplanError(f"{what} file '{path}' is not a readable CSV: {str(exc).splitlines()[0]}") from exc
    for column, value in (defaults or {}).items():  # columns added later: older files stay readable
        if column not in frame.columns:
            frame[column] = value(frame) if callable(value) else value
    missing = [c for c in kinds if c not in frame.columns]
    if missing:
        raise HetplanError(f"{what} file '{path}' lacks column(s) {', '.join(missing)}: see data/README.md for the schema")
    if frame.empty:
        raise HetplanError(f"{what} file '{path}' has no rows")
    out = {}
    for column, kind in kinds.items():
        out[column] = _convert_column(frame[column].str.strip(), kind, path, column)
    return pd.DataFrame(out)


def _convert_column(values: pd.Series, kind, path: Path, column: str) -> pd.Series:
    def fail(index: int, why: str):
        raise HetplanError(f"{path}, line {index + 2}, column '{column}': {why} (got '{values.iloc[index]}')")

    if isinstance(kind, tuple):
        bad = ~values.isin(kind)
        if bad.any():
            fail(int(bad.to_numpy().argmax()), f"must be one of {', '.join(kind)}")
        return values
    if kind in ("str", "str?"):
        if kind == "str" and (values == "").any():
            fail(int((values == "").to_numpy().argmax()), "must not be empty")
        return values
    if kind == "bool":
        lowered = values.str.lower()
        bad = ~lowered.isin(["true", "false"])
        if bad.any():
            fail(int(bad.to_numpy().argmax()), "must be true or false")
        return lowered == "true"
    optional = kind.endswith("?")
    numbers = pd.to_numeric(values.where(values != ""), errors="coerce")
    not_number = numbers.isna() & ((values != "") | (not optional))
    if not_number.any():
        fail(int(not_number.to_numpy().argmax()), "must be a number" if values.iloc[int(not_number.to_numpy().argmax())] else "must not be empty")
    lower_ok = numbers > 0 if kind.endswith(">0") else numbers >= 0
    bad = numbers.notna() & ~lower_ok
    if bad.any():
        fail(int(bad.to_numpy().argmax()), "must be positive" if kind.endswith(">0") else "must not be negative")
    if kind.startswith("int"):
        fractional = numbers.notna() & (numbers != numbers.round())
        if fractional.any():
            fail(int(fractional.to_numpy().argmax()), "must be a whole number")
        return numbers.astype("int64")
    return numbers.astype("float64")


def _unique(frame: pd.DataFrame, keys: list[str], path: Path, what: str) -> pd.DataFrame:
    dup = frame.duplicated(keys)
    if dup.any():
        row = int(dup.to_numpy().argmax())
        raise HetplanError(f"{path}, line {row + 2}: duplicate {what} {tuple(frame.loc[frame.index[row], keys])}")
    return frame


def load_instances(path: str | Path | None = None) -> pd.DataFrame:
    """EC2 instance types: vCPUs, memory (GiB), on-demand $/hour, boot-to-serving delay (s)."""
    path = Path(path or DEFAULT_INSTANCES)
    frame = _unique(_read_checked(path, _INSTANCE_COLUMNS, "instance catalog", _INSTANCE_DEFAULTS), ["instance_type"], path,
                    "instance type")
    return frame.set_index("instance_type", drop=False)


def load_serverless(path: str | Path | None = None, architecture: str = "x86_64") -> ServerlessPricing:
    """Lambda prices and limits for one architecture."""
    path = Path(path or DEFAULT_SERVERLESS)
    frame = _unique(_read_checked(path, _SERVERLESS_COLUMNS, "serverless catalog"), ["architecture"], path, "architecture")
    rows = frame[frame.architecture == architecture]
    if rows.empty:
        from hetplan.errors import did_you_mean

        raise HetplanError(f"no serverless architecture '{architecture}' in {path}{did_you_mean(architecture, frame.architecture)}")
    row = rows.iloc[0].to_dict()
    row["concurrency_limit"] = int(row["concurrency_limit"])
    return ServerlessPricing(**row)


def load_models(path: str | Path | None = None) -> pd.DataFrame:
    """Model catalog: published top-1/top-5 (%), parameter count, input size, with sources."""
    path = Path(path or DEFAULT_MODELS)
    frame = _unique(_read_checked(path, _MODEL_COLUMNS, "model catalog"), ["model"], path, "model")
    over = frame.top1 > 100
    if over.any():
        raise HetplanError(f"{path}, line {int(over.to_numpy().argmax()) + 2}, column 'top1': a percentage above 100")
    return frame.set_index("model", drop=False)


def load_profile(path: str | Path | None = None, instances: pd.DataFrame | None = None) -> pd.DataFrame:
    """A profile in the profile schema (``hetplan.planner.catalog.schema``); rows with empty latency mean 'could not run'.

    Every row names its ``method`` (one of ``METHODS``) and its ``source``. With ``instances``, a vm row's
    instance type must be in that catalog or be a local shape (``local-<N>vcpu``, the profiler's own)."""
    path = Path(path or DEFAULT_PROFILE)
    frame = _read_checked(path, _PROFILE_KINDS, "profile")
    vm_without_type = (frame.platform == "vm") & (frame.instance_type == "")
    if vm_without_type.any():
        row = int(vm_without_type.to_numpy().argmax())
        raise HetplanError(f"{path}, line {row + 2}, column 'instance_type': a vm row needs an instance type")
    if instances is not None:
        local = frame.instance_type.str.fullmatch(r"local-\d+vcpu")
        unknown = (frame.platform == "vm") & ~frame.instance_type.isin(instances.index) & ~local
        if unknown.any():
            from hetplan.errors import did_you_mean

            row = int(unknown.to_numpy().argmax())
            name = frame.instance_type.iloc[row]
            raise HetplanError(f"{path}, line {row + 2}, column 'instance_type': '{name}' is not in the instance catalog"
                               f"{did_you_mean(name, instances.index)}; add it to instances.csv or fix the row")
    # One row per configuration and method: sources may overlap (the planner keeps the most direct, batching.py).
    keys = ["model", "platform", "instance_type", "memory_mb", "batch", "method"]
    return _unique(frame, keys, path, "configuration").reset_index(drop=True)
