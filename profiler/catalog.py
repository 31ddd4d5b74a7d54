"""Which models the profiler can build, and their published accuracy (``data/models.csv``).

A catalog name (``resnet200``) resolves to an architecture name (``preresnet200b``) that a builder
in ``architectures.py`` knows. No mxnet import here: the parent process only needs names and numbers.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from hetplan.errors import HetplanError, did_you_mean
from hetplan.profiler.architectures import known_architectures

MODELS_CSV = Path(__file__).resolve().parent.parent / "data" / "models.csv"

# The six models of the paper's table, in its order.
PAPER_MODELS = ("caffenet", "googlenet", "squeezenet", "resnet18", "resnet200", "resnext50")

# Architecture for catalog names whose ``zoo_name`` is empty because the zoo lacks them.
_DEFAULT_ARCH = {
    "caffenet": "caffenet",
    "googlenet": "googlenet",
    "squeezenet": "squeezenet1.0",
    "resnet18": "resnet18_v1",
    "resnet200": "preresnet200b",
    "resnext50": "resnext50_32x4d",
}


@dataclass(frozen=True)
class ModelSpec:
    name: str
    arch: str
    input_size: int
    top1: float | None  # percent, published
    top5: float | None
    params: int | None  # published parameter count


def _number(text: str | None) -> float | None:
    text = (text or "").strip()
    return float(text) if text else None


def read_catalog(path: Path = MODELS_CSV) -> dict[str, ModelSpec]:
    """Every model of ``data/models.csv`` plus every buildable architecture under its own name."""
    extra = known_architectures()
    specs: dict[str, ModelSpec] = {}
    if path.exists():
        with open(path, newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                name = row["model"].strip()
                arch = (row.get("zoo_name") or "").strip() or _DEFAULT_ARCH.get(name, name)
                params = _number(row.get("params"))
                size = _number(row.get("input_size"))
                specs[name] = ModelSpec(name, arch, int(size) if size else extra.get(arch, 224),
                                        _number(row.get("top1")), _number(row.get("top5")),
                                        int(params) if params else None)
    for arch, size in extra.items():
        specs.setdefault(arch, ModelSpec(arch, arch, size, None, None, None))
    for name, arch in _DEFAULT_ARCH.items():
        specs.setdefault(name, ModelSpec(name, arch, extra[arch], None, None, None))
    return specs


def resolve_models(names: list[str], catalog: dict[str, ModelSpec]) -> list[ModelSpec]:
    """The specs for ``names``, or a HetplanError naming the first unknown or unbuildable one."""
    buildable = known_architectures()
    specs = []
    for name in names:
        spec = catalog.get(name)
        if spec is None:
            raise HetplanError(f"unknown model '{name}'{did_you_mean(name, catalog)}")
        if spec.arch not in buildable:
            raise HetplanError(f"model '{name}' has no builder for architecture '{spec.arch}': "
                               f"profile one of {', '.join(PAPER_MODELS)} or a Gluon zoo name")
        specs.append(spec)
    return specs
