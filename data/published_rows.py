"""Profile rows from MXNet's published throughput tables (``published``) and rows derived from them (``scaled``).

Source: ``../shared/data/mxnet_published_throughput.csv``, the tables of the Apache MXNet documentation,
"Some Tips for Improving MXNet Performance" (apache/mxnet ``docs/static_site/src/pages/api/faq/perf.md``),
MXNet 1.2.0.rc1 measured with ``example/image-classification/benchmark_score.py``: images/s by batch size,
calls back to back (no queueing). Used by ``build_catalog.py``; see data/README.md.

One row per (model, hardware, batch) with a throughput:
- ``throughput_rps`` = images/s, ``latency_p50_ms`` = batch × 1000 / images/s (one call), ``concurrency`` 1;
- an empty images/s (out of GPU memory) is kept as a row with empty latency: the batch cannot run there.

Hardware → catalog type: c5.xlarge, c5.2xlarge, c5.4xlarge as named (CPU, MKL-DNN); V100 fp32 → p3.2xlarge
(1 V100). c5.9xlarge, c5.18xlarge, K80 (p2) and M60 (g3) have no row in ``instances.csv`` and are left out.

Models:
- **published**, the table's own model: inception_bn, vgg16; resnet50 → resnet50_v1, resnet152 → resnet152_v1 and
  inception_v3 → inceptionv3 (the benchmark's symbolic networks, same architectures as the Gluon zoo's);
- **published with a named proxy** (``PROXIES``): caffenet measured as alexnet (CaffeNet is a variant of AlexNet),
  googlenet measured as inception_bn (Inception-BN is GoogLeNet with batch normalization; only approximately the
  same network). The proxy is named in ``source``;
- **scaled** (``SCALED``): a seed model in no table takes an anchor model's row times a ratio of latencies
  measured for both *in one run on one CPU, at the same batch*:
  squeezenet and resnet200 from inception_bn, with the ratio on c5.xlarge in the InferAll AWS reference profile
  (``aws-reference.csv``); resnet18 and resnext50 from resnet50_v1, with the ratio measured by ``hetplan
  profile`` on one local vCPU (``profiles/local-anchors.csv``; batches above the largest measured one use its
  ratio). The ratio and its source are in each row's ``source``. Caution: a CPU ratio carried to a GPU assumes
  the two models use the GPU alike; small networks use a GPU less fully, so their GPU rows are optimistic.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import pandas as pd

PERF_MD = "MXNet docs perf.md (apache/mxnet docs/static_site/src/pages/api/faq/perf.md), MXNet 1.2.0.rc1"
HARDWARE = {"c5.xlarge": "c5.xlarge", "c5.2xlarge": "c5.2xlarge", "c5.4xlarge": "c5.4xlarge", "V100": "p3.2xlarge"}
OWN = {"inception_bn": "inception_bn", "vgg16": "vgg16", "resnet50": "resnet50_v1", "resnet152": "resnet152_v1",
       "inception_v3": "inceptionv3"}
PROXIES = {"caffenet": ("alexnet", "CaffeNet is a variant of AlexNet"),
           "googlenet": ("inception_bn", "Inception-BN is GoogLeNet with batch normalization, approximately")}
# model -> (anchor model in a table, where the ratio comes from)
SCALED = {"squeezenet": ("inception_bn", "inferall"), "resnet200": ("inception_bn", "inferall"),
          "resnet18": ("resnet50_v1", "local"), "resnext50": ("resnet50_v1", "local")}
INFERALL = "InferAll AWS reference profile (veerkumar/InferAll@5e3287b), c5.xlarge"
LOCAL = "hetplan profile on 1 local vCPU (data/profiles/local-anchors.csv)"


def _published_table(shared: Path) -> pd.DataFrame:
    table = pd.read_csv(shared / "mxnet_published_throughput.csv")
    table = table[(table.precision == "fp32") & table.hardware.isin(HARDWARE)]
    return table.assign(instance_type=table.hardware.map(HARDWARE))


def _ratio_inferall(reference_csv: str) -> dict:
    """(model, batch) -> latency on c5.xlarge in the InferAll reference profile."""
    frame = pd.read_csv(io.StringIO(reference_csv))
    frame = frame[(frame.instance_type == "c5.xlarge") & frame.latency_p50_ms.notna()]
    return {(r.model, int(r.batch)): float(r.latency_p50_ms) for r in frame.itertuples()}


def _ratio_local(data_dir: Path) -> dict:
    frame = pd.read_csv(data_dir / "profiles" / "local-anchors.csv")
    frame = frame[frame.latency_p50_ms.notna() & (frame.platform == "vm")]
    return {(r.model, int(r.batch)): float(r.latency_p50_ms) for r in frame.itertuples()}


def _ratio(latencies: dict, model: str, anchor: str, batch: int) -> tuple[float, int] | None:
    """latency(model)/latency(anchor) at ``batch``, else at the largest smaller batch both have."""
    batches = sorted(b for (m, b) in latencies if m == model and (anchor, b) in latencies and b <= batch)
    if not batches:
        return None
    b = batches[-1]
    return latencies[(model, b)] / latencies[(anchor, b)], b


def build_published(shared: Path, data_dir: Path, columns: tuple[str, ...], reference_csv: str) -> str:
    """The rows described in the module docstring, as CSV text in the profile schema."""
    table = _published_table(shared)
    instances = pd.read_csv(data_dir / "instances.csv").set_index("instance_type")
    models = pd.read_csv(data_dir / "models.csv").set_index("model")
    ratios = {"inferall": (_ratio_inferall(reference_csv), INFERALL), "local": (_ratio_local(data_dir), LOCAL)}
    by_model = {OWN.get(m, m): group for m, group in table.groupby("model")}
    rows = []

    def add(model: str, r, ips: float | None, method: str, source: str) -> None:
        kind = instances.loc[r.instance_type]
        batch = int(r.batch)
        rows.append({
            "model": model, "platform": "vm", "instance_type": r.instance_type, "memory_mb": kind.memory_gib * 1024,
            "vcpus": kind.vcpus, "batch": batch,
            "latency_p50_ms": None if ips is None else round(batch * 1000.0 / ips, 4),
            "throughput_rps": None if ips is None else round(ips, 4), "concurrency": 1,
            "accuracy_top1": models.loc[model, "top1"], "accuracy_top5": models.loc[model, "top5"],
            "accuracy_source": "published", "method": method, "host": f"published-{r.hardware}", "source": source,
        })

    for model, group in sorted(by_model.items()):
        if model in models.index:
            for r in group.itertuples():
                add(model, r, _ips(r), "published", f"{PERF_MD}: {r.model} on {r.hardware} fp32")
    for model, (proxy, why) in PROXIES.items():
        for r in by_model[proxy].itertuples():
            add(model, r, _ips(r), "published",
                f"{PERF_MD}: {r.model} on {r.hardware} fp32, as a proxy for {model} ({why})")
    for model, (anchor, where) in SCALED.items():
        latencies, cited = ratios[where]
        for r in by_model[anchor].itertuples():
            found = _ratio(latencies, model, anchor, int(r.batch))
            if found is None:
                continue
            ratio, at = found
            ips = _ips(r)
            add(model, r, None if ips is None else ips / ratio, "scaled",
                f"scaled: {anchor} row ({PERF_MD}, {r.hardware} fp32) × latency ratio {model}/{anchor} = "
                f"{ratio:.4f} at batch {at}, {cited}")
    frame = pd.DataFrame(rows).reindex(columns=list(columns))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in frame.itertuples(index=False):
        writer.writerow([_cell(v) for v in row])
    return buffer.getvalue()


def _ips(r) -> float | None:
    value = float(r.images_per_s)
    return None if math.isnan(value) else value


def _cell(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
