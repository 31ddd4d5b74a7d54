"""The fleet file: services planned together under one account's shared limits (``data/fleet.schema.json``)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from hetplan.errors import HetplanError


@dataclass(frozen=True)
class Service:
    name: str
    slo_s: float
    trace: str | None = None
    percentile: float = 0.99
    mean_accuracy: float | None = None
    min_accuracy: float | None = None
    models: tuple[str, ...] | None = None
    load_scale: float = 1.0
    weight: float | None = None
    lambda_concurrency: int | None = None
    gaps: str | None = None  # None: the command's --gaps


@dataclass(frozen=True)
class Shared:
    lambda_concurrency: int = 1000  # AWS's default account limit per region
    vcpu_quota: dict = field(default_factory=dict)  # family → vCPUs
    budget_usd: float | None = None
    window_s: float = 300.0
    hours: float | None = None


@dataclass(frozen=True)
class Fleet:
    services: tuple[Service, ...]
    shared: Shared
    path: str = ""


def load_fleet(path) -> Fleet:
    """A fleet file (TOML, or JSON for ``.json``), checked against its schema; each problem is one line naming the
    file and the field."""
    import tomllib

    import jsonschema

    from hetplan.planner.catalog import DATA_DIR
    from hetplan.units import parse_duration

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
    except FileNotFoundError:
        raise HetplanError(f"fleet file '{path}' does not exist: write one as in examples/fleet.toml") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise HetplanError(f"cannot read fleet file '{path}': {exc}") from None
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise HetplanError(f"fleet file '{path}' is not valid {'JSON' if path.suffix.lower() == '.json' else 'TOML'}: {exc}") from None
    schema = json.loads((DATA_DIR / "fleet.schema.json").read_text(encoding="utf-8"))
    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema).iter_errors(data))
    if error is not None:
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path) or "the top level"
        raise HetplanError(f"fleet file '{path}' is malformed at {where}: {error.message}")
    names = [s["name"] for s in data["services"]]
    if len(set(names)) != len(names):
        twice = next(n for n in names if names.count(n) > 1)
        raise HetplanError(f"fleet file '{path}' names service '{twice}' twice: give each service its own name")
    shared = data.get("shared", {})
    services = tuple(Service(name=s["name"], slo_s=_duration(parse_duration, s["slo"], f"services.{s['name']}.slo", path),
                             trace=s.get("trace"), percentile=s.get("percentile", 0.99), mean_accuracy=s.get("mean_accuracy"),
                             min_accuracy=s.get("min_accuracy"), models=tuple(s["models"]) if s.get("models") else None,
                             load_scale=s.get("load_scale", 1.0), weight=s.get("weight"),
                             lambda_concurrency=s.get("lambda_concurrency"), gaps=s.get("gaps")) for s in data["services"])
    window = _duration(parse_duration, shared["window"], "shared.window", path) if "window" in shared else 300.0
    return Fleet(services, Shared(lambda_concurrency=shared.get("lambda_concurrency", 1000),
                                  vcpu_quota=dict(shared.get("vcpu_quota", {})), budget_usd=shared.get("budget_usd"),
                                  window_s=window, hours=shared.get("hours")), str(path))


def _duration(parse, text: str, where: str, path: Path) -> float:
    try:
        return parse(text)
    except HetplanError as exc:
        raise HetplanError(f"fleet file '{path}' at {where}: {exc}") from None
