#!/usr/bin/env python3
"""Regenerate the derived catalog files from the shared reference data (schema_version: 1).

Writes
  data/profiles/aws-reference.csv   the InferAll AWS-measured profile in the project's profile schema
  data/profiles/published-mxnet.csv MXNet's published throughput tables as profile rows (``published_rows.py``)
  data/profiles/catalog.csv         the default profile: the two above, one after the other
  data/traces/wits.csv.gz           WITS request trace as ``second,requests``
  data/traces/berkeley.csv.gz       Berkeley Home IP request trace as ``second,requests``

``instances.csv``, ``serverless.csv`` and ``models.csv`` are curated by hand (see data/README.md);
this script reads them (vCPUs, Lambda MB per vCPU, accuracies) but does not write them.

Usage, from the repository root:
  python data/build_catalog.py [SHARED_DIR]          # default SHARED_DIR: ../shared/data
  python data/build_catalog.py [SHARED_DIR] --check  # exit 1 if a shipped file differs from a rebuild

Only pandas, numpy and the standard library are used. The profile column order is taken from
``planner/catalog/schema.py`` (loaded by file path, so the package need not be installed).
"""

from __future__ import annotations

import argparse
import csv
import gzip
import importlib.util
import io
import math
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd

DATA_DIR = Path(__file__).resolve().parent
REPO_ROOT = DATA_DIR.parent
DEFAULT_SHARED = REPO_ROOT / ".." / "shared" / "data"

PROFILE_SOURCE = "InferAll config.py (veerkumar/InferAll@5e3287b)"
# Model names in reference_profile_aws.csv that differ from data/models.csv.
PROFILE_MODEL_RENAMES = {"inception": "inception_bn"}
# Lambda load time = Cocktail cold minus warm execution (PRICES.md section 3), for these models only.
COCKTAIL_NAMES = {"caffenet": "Caffenet", "squeezenet": "Squeezenet", "resnet200": "Resnet-200"}
# Source trace file -> column names (no header in the source; see shared traces/SOURCES.md).
TRACES = {
    "wits": ["t_sec", "raw_count", "type", "num_tasks"],
    "berkeley": ["t_sec", "type", "raw_count", "num_tasks"],  # column order differs from WITS
}


def profile_columns() -> tuple[str, ...]:
    spec = importlib.util.spec_from_file_location("_hetplan_schema", REPO_ROOT / "planner" / "catalog" / "schema.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return tuple(module.PROFILE_COLUMNS)


def fmt(value) -> str:
    """CSV cell: empty for missing, integers without '.0', other floats in shortest round-trip form."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, (float, np.floating)):
        return str(int(value)) if float(value).is_integer() else repr(float(value))
    return str(value)


def csv_text(header, rows) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([[fmt(v) for v in row] for row in rows])
    return buffer.getvalue()


def cocktail_load_times(prices_md: str) -> dict[str, float]:
    """{model: cold - warm ms} from the Cocktail table in PRICES.md section 3."""
    out = {}
    for model, name in COCKTAIL_NAMES.items():
        match = re.search(rf"^\s*\|\s*{re.escape(name)}\s*\|\s*(\d+)\s*\|\s*(\d+)\s*\|", prices_md, re.MULTILINE)
        if match is None:
            raise SystemExit(f"PRICES.md: no Cocktail cold/warm row for {name}")
        cold, warm = int(match.group(1)), int(match.group(2))
        out[model] = float(cold - warm)
    return out


def build_profile(shared: Path) -> str:
    columns = profile_columns()
    source = pd.read_csv(shared / "reference_profile_aws.csv")
    instances = pd.read_csv(DATA_DIR / "instances.csv").set_index("instance_type")
    serverless = pd.read_csv(DATA_DIR / "serverless.csv").set_index("architecture").loc["x86_64"]
    models = pd.read_csv(DATA_DIR / "models.csv").set_index("model")
    load_ms = cocktail_load_times((shared / "PRICES.md").read_text(encoding="utf-8"))

    rows = []
    for r in source.itertuples(index=False):
        model = PROFILE_MODEL_RENAMES.get(r.model, r.model)
        if model not in models.index:
            raise SystemExit(f"profile model '{model}' is not in data/models.csv")
        is_vm = r.platform == "vm"
        if is_vm:
            vcpus = float(instances.loc[r.config, "vcpus"])
            slots = int(r.vm_slots)
            # The source lists 0 slots exactly where the configuration could not run (empty latency).
            # The schema needs a positive concurrency, so such rows record the single call that was tried.
            concurrency = slots if slots > 0 else 1
        else:
            vcpus = round(min(r.memory_mb / serverless.mb_per_vcpu, serverless.max_vcpus), 4)
            concurrency = 1
        row = {
            "model": model,
            "platform": r.platform,
            "instance_type": r.config if is_vm else "",
            "memory_mb": r.memory_mb,
            "vcpus": vcpus,
            "batch": r.batch,
            "latency_p50_ms": r.latency_ms,  # a single figure of unknown percentile; p90/p99 left empty
            "latency_p90_ms": None,
            "latency_p99_ms": None,
            "throughput_rps": None,  # not measured; the planner bounds it (data/README.md)
            "concurrency": concurrency,
            "peak_memory_mb": None,
            "load_time_ms": None if is_vm else load_ms.get(model),
            "accuracy_top1": models.loc[model, "top1"],
            "accuracy_top5": models.loc[model, "top5"],
            "accuracy_source": "published",
            "method": "reference",
            "host": f"aws-{r.config}",
            "mxnet_version": None,
            "timestamp": None,
            "source": PROFILE_SOURCE,
        }
        rows.append([row[c] for c in columns])
    return csv_text(columns, rows)


def build_trace(shared: Path, name: str) -> bytes:
    frame = pd.read_csv(shared / "traces" / f"{name}.csv", header=None, names=TRACES[name])
    # Guard against a column mix-up with the relations documented in the shared traces/SOURCES.md.
    if name == "wits":
        assert (frame.num_tasks == np.ceil(frame.raw_count / 2)).all(), "wits: num_tasks != ceil(raw_count/2)"
    else:
        assert (frame.num_tasks == 2 * frame.raw_count).all(), "berkeley: num_tasks != 2*raw_count"
    assert frame.t_sec.is_monotonic_increasing and frame.t_sec.is_unique, f"{name}: t_sec not strictly increasing"
    text = csv_text(["second", "requests"], frame[["t_sec", "num_tasks"]].itertuples(index=False))
    buffer = io.BytesIO()
    # Fixed mtime and no embedded file name, so the same input always gives the same bytes.
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, compresslevel=9, mtime=0) as handle:
        handle.write(text.encode("ascii"))
    return buffer.getvalue()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("shared", nargs="?", default=str(DEFAULT_SHARED),
                        help="folder with the shared reference data (default: ../shared/data from the repo root)")
    parser.add_argument("--check", action="store_true", help="compare with the shipped files instead of writing")
    args = parser.parse_args(argv)
    shared = Path(args.shared)
    if not (shared / "reference_profile_aws.csv").is_file():
        parser.error(f"'{shared}' does not hold reference_profile_aws.csv")

    sys.path.insert(0, str(DATA_DIR))
    from published_rows import build_published

    reference = build_profile(shared)
    published = build_published(shared, DATA_DIR, profile_columns(), reference)
    outputs = {DATA_DIR / "profiles" / "aws-reference.csv": reference.encode("utf-8"),
               DATA_DIR / "profiles" / "published-mxnet.csv": published.encode("utf-8"),
               DATA_DIR / "profiles" / "catalog.csv": (reference + published.split("\n", 1)[1]).encode("utf-8")}
    for name in TRACES:
        outputs[DATA_DIR / "traces" / f"{name}.csv.gz"] = build_trace(shared, name)

    stale = []
    for path, content in outputs.items():
        if args.check:
            if not path.is_file() or path.read_bytes() != content:
                stale.append(path)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.tmp")
            tmp.write_bytes(content)
            tmp.replace(path)
        print(f"{'checked' if args.check else 'wrote'} {path.relative_to(REPO_ROOT)} ({len(content):,} bytes)")
    for path in stale:
        print(f"STALE: {path.relative_to(REPO_ROOT)} differs from a rebuild", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
