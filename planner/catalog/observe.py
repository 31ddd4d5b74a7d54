"""Observed requests → a corrected profile: read a request log, blend what it shows into the profile.

A request log (CSV, or JSON lines for ``.jsonl``/``.json``; ``.gz`` allowed) has one request per line with
``LOG_COLUMNS``: ``timestamp`` (seconds, or ISO 8601), ``model``, ``platform`` (vm | lambda),
``instance_type`` (vm) or ``memory_mb`` (lambda), ``latency_ms``, ``cold_start`` (yes/no/true/false/1/0)
and optionally ``correct`` (same booleans; empty = unknown). planner/FEEDBACK.md gives the rules.

:func:`update_profile` blends per (model, platform configuration), with every observation weighted
``0.5 ** (age / half_life)`` and the profile counting as ``prior_weight`` observations:

- **latency**: ``new = (prior · profiled + n · observed) / (prior + n)`` per quantile column the profile has
  (p50 / p90 / p99 of the warm requests, weighted quantiles). On a VM the planner serves at the *busy*
  latency (the highest batch-1 latency of the model in the instance family, options.py), so VM
  observations of any size of a family are compared with that and the family's rows are scaled by the
  blended factor (throughput divided by it); a Lambda memory size's batch-1 row takes the blend, its
  other batch rows scale with it.
- **accuracy** (per model, where ``correct`` is given): the Beta mean with the published top-1 as prior
  of weight ``accuracy_prior_weight``.
- **load time** (per Lambda size): observed cold latency − the blended warm p50, blended like latency.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from hetplan.errors import HetplanError

LOG_COLUMNS = ("timestamp", "model", "platform", "instance_type", "memory_mb", "latency_ms", "cold_start", "correct")
_REQUIRED = ("timestamp", "model", "platform", "latency_ms", "cold_start")
_TRUE, _FALSE = {"yes", "true", "1"}, {"no", "false", "0"}
_QUANTILES = ((0.50, "latency_p50_ms"), (0.90, "latency_p90_ms"), (0.99, "latency_p99_ms"))
DEFAULT_HALF_LIFE_S = 6 * 3600.0
DEFAULT_PRIOR_WEIGHT = 100.0
DEFAULT_THRESHOLD = 0.20


@dataclass(frozen=True)
class LogRead:
    """The valid requests of a log (``LOG_COLUMNS`` + ``line``, timestamps in seconds) and the skipped lines."""

    requests: pd.DataFrame
    bad: pd.DataFrame  # line, reason


# --- reading ---------------------------------------------------------------------------------------------

def _open(path: Path):
    return gzip.open(path, "rt", encoding="utf-8", newline="") if path.suffix == ".gz" else open(path, encoding="utf-8", newline="")


def _is_jsonl(path: Path) -> bool:
    suffixes = [s.lower() for s in path.suffixes if s.lower() != ".gz"]
    return bool(suffixes) and suffixes[-1] in (".jsonl", ".json", ".ndjson")


def _raw_rows(path: Path) -> tuple[list[dict] | pd.DataFrame, list[tuple[int, str]]]:
    """(rows as dicts of strings with their line numbers, or such a frame, and bad lines) — structure only, values
    checked later."""
    rows, bad = [], []
    with _open(path) as handle:
        if _is_jsonl(path):
            for number, text in enumerate(handle, start=1):
                if not text.strip():
                    continue
                try:
                    item = json.loads(text)
                except json.JSONDecodeError as exc:
                    bad.append((number, f"not JSON ({exc.msg})"))
                    continue
                if not isinstance(item, dict):
                    bad.append((number, "not a JSON object"))
                    continue
                rows.append({k: "" if v is None else str(v) for k, v in item.items()} | {"line": number})
            return rows, bad
        text = handle.read()
        fast = _regular_csv(text)
        if fast is not None:
            return fast, []
        reader = csv.reader(io.StringIO(text, newline=""))
        header = next(reader, None)
        if header is None:
            raise HetplanError(f"request log '{path}' is empty")
        header = [h.strip() for h in header]
        missing = [c for c in _REQUIRED if c not in header]
        if missing:
            raise HetplanError(f"request log '{path}', line 1: no column(s) {', '.join(missing)} (columns: {', '.join(LOG_COLUMNS)})")
        for fields in reader:
            number = reader.line_num
            if not fields or all(not f.strip() for f in fields):
                continue
            if len(fields) != len(header):
                bad.append((number, f"{len(fields)} fields, the header has {len(header)}"))
                continue
            rows.append(dict(zip(header, fields)) | {"line": number})
    return rows, bad


def _regular_csv(text: str) -> pd.DataFrame | None:
    """A log without quotes whose every line has the header's fields, read by pandas' C parser (10× the csv module);
    None for anything else, which the line-by-line reader then reads and reports on (line numbers, field counts)."""
    if '"' in text or "\r" in text or not text.strip():
        return None
    lines = text.split("\n")
    fields = lines[0].count(",")
    if any(line.count(",") != fields for line in lines[1:] if line):  # pandas pads short lines silently
        return None
    try:
        frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, skip_blank_lines=False, on_bad_lines="error")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError):
        return None
    frame.columns = [str(c).strip() for c in frame.columns]
    if any(c not in frame.columns for c in _REQUIRED) or frame.columns.duplicated().any():
        return None
    frame["line"] = np.arange(2, len(frame) + 2)  # one row per line after the header (blank lines kept, then dropped)
    blank = (frame.drop(columns="line") == "").all(axis=1) if len(frame.columns) > 1 else frame.iloc[:, 0] == ""
    return frame[~blank].reset_index(drop=True)


def _strip(column: pd.Series) -> pd.Series:
    """``column.str.strip()``, computed once per distinct value (a log repeats its models, platforms and flags)."""
    codes, uniques = pd.factorize(column)
    if len(uniques) > len(column) // 4:
        return column.str.strip()
    return pd.Series(np.asarray([u.strip() for u in uniques], dtype=object)[codes], index=column.index)


def _flag(values: pd.Series) -> pd.Series:
    low = values.str.strip().str.lower()
    return pd.Series(np.where(low.isin(_TRUE), 1.0, np.where(low.isin(_FALSE), 0.0, np.nan)), index=values.index)


def to_seconds(values: pd.Series) -> pd.Series:
    """Timestamps as seconds: numbers as given, else ISO 8601 as UTC epoch seconds (NaN when unreadable)."""
    numbers = pd.to_numeric(values, errors="coerce")
    text = numbers.isna() & (values != "")
    if text.any():
        stamps = pd.to_datetime(values[text], errors="coerce", utc=True, format="ISO8601")
        epoch = (stamps - pd.Timestamp("1970-01-01", tz="UTC")).dt.total_seconds()
        numbers[text] = epoch
    return numbers


def read_log(path: str | Path, skip_bad: bool = False) -> LogRead:
    """Read and check a request log; malformed lines raise (first line and count) unless ``skip_bad``."""
    path = Path(path)
    if not path.is_file():
        raise HetplanError(f"request log '{path}' does not exist")
    try:
        rows, bad = _raw_rows(path)
    except (UnicodeDecodeError, OSError, csv.Error) as exc:
        raise HetplanError(f"request log '{path}' is not readable: {exc}") from None
    frame = pd.DataFrame(rows)
    for column in (*LOG_COLUMNS, "line"):
        if column not in frame:
            frame[column] = ""
    frame = frame[list(LOG_COLUMNS) + ["line"]]
    text = frame[list(LOG_COLUMNS)].fillna("").astype(str).apply(_strip)
    out = pd.DataFrame({"timestamp": to_seconds(text.timestamp), "model": text.model, "platform": text.platform.str.lower(),
                        "instance_type": text.instance_type,
                        "memory_mb": pd.to_numeric(text.memory_mb.where(text.memory_mb != ""), errors="coerce"),
                        "latency_ms": pd.to_numeric(text.latency_ms, errors="coerce"),
                        "cold_start": _flag(text.cold_start), "correct": _flag(text.correct),
                        "line": frame.line.astype(int) if len(frame) else pd.Series(dtype=int)})
    checks = (  # (bad mask, reason): the first failing check names the line's reason
        (out.timestamp.isna(), "timestamp is not seconds or ISO 8601"),
        (out.model == "", "model is empty"),
        (~out.platform.isin(["vm", "lambda"]), "platform must be vm or lambda"),
        ((out.platform == "vm") & (out.instance_type == ""), "a vm request needs instance_type"),
        ((out.platform == "lambda") & ~(out.memory_mb > 0), "a lambda request needs memory_mb > 0"),
        (~(out.latency_ms >= 0), "latency_ms must be a number >= 0"),
        (out.cold_start.isna(), "cold_start must be yes/no/true/false/1/0"),
        (out.correct.isna() & (text.correct != ""), "correct must be yes/no/true/false/1/0 or empty"),
    )
    reason = pd.Series("", index=out.index, dtype=object)
    for mask, why in checks:
        reason[(reason == "") & mask] = why
    bad_frame = pd.concat([pd.DataFrame(bad, columns=["line", "reason"]),
                           pd.DataFrame({"line": out.line[reason != ""], "reason": reason[reason != ""]})],
                          ignore_index=True).sort_values("line").reset_index(drop=True)
    if len(bad_frame) and not skip_bad:
        first = bad_frame.iloc[0]
        raise HetplanError(f"request log '{path}': {len(bad_frame)} malformed line(s), the first is line {first.line}: "
                           f"{first.reason} (fix them, or pass --skip-bad to skip them)")
    good = out[reason == ""].copy()
    good["cold_start"] = good.cold_start.astype(bool)
    good.loc[good.platform == "lambda", "instance_type"] = ""
    good.loc[good.platform == "vm", "memory_mb"] = np.nan
    return LogRead(good.reset_index(drop=True), bad_frame)


def log_frame(requests: pd.DataFrame) -> pd.DataFrame:
    """A log in the file format: booleans as yes/no, ``correct`` empty where unknown."""
    out = requests.reindex(columns=LOG_COLUMNS).copy()
    out["cold_start"] = np.where(out.cold_start.astype(bool), "yes", "no")
    out["correct"] = out.correct.map({1.0: "yes", 0.0: "no"}).fillna("")
    out["instance_type"] = out.instance_type.fillna("")
    return out


def write_log(requests: pd.DataFrame, path: str | Path) -> Path:
    """Write a log atomically: JSON lines for ``.jsonl``/``.json``, else CSV (``.gz`` compressed)."""
    from hetplan.fileio import write_bytes_atomic, write_text_atomic

    path = Path(path)
    frame = log_frame(requests)
    if _is_jsonl(path):
        text = frame.to_json(orient="records", lines=True)
    else:
        text = frame.to_csv(index=False, float_format="%.6g")
    if path.suffix == ".gz":
        return write_bytes_atomic(path, gzip.compress(text.encode("utf-8")))
    return write_text_atomic(path, text)


# --- updating --------------------------------------------------------------------------------------------

def weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    """The smallest value whose cumulative weight reaches ``q`` of the total (NaN without weight)."""
    keep = weights > 0
    values, weights = values[keep], weights[keep]
    if values.size == 0:
        return float("nan")
    order = np.argsort(values, kind="stable")
    cum = np.cumsum(weights[order])
    return float(values[order][min(np.searchsorted(cum, q * cum[-1] - 1e-12, side="left"), values.size - 1)])


def _family(instance_type: pd.Series) -> pd.Series:
    """AWS family prefix of an instance type ('c5.2xlarge' → 'c5'; local shapes are their own family)."""
    families = {t: t.split(".")[0] if "." in t else t for t in instance_type.dropna().unique()}  # once per type
    return instance_type.map(families)


def _blend(prior: float, n: float, profiled: float, observed: float) -> float:
    if np.isnan(profiled):
        return observed
    if np.isnan(observed) or prior + n <= 0:
        return profiled
    return (prior * profiled + n * observed) / (prior + n)


def update_profile(profile: pd.DataFrame, log: pd.DataFrame, now: float | None = None,
                   half_life_s: float = DEFAULT_HALF_LIFE_S, prior_weight: float = DEFAULT_PRIOR_WEIGHT,
                   threshold: float = DEFAULT_THRESHOLD,
                   accuracy_prior_weight: float = 1000.0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The profile corrected by the log's requests, and one row per (model, platform, config, quantity)
    observed: ``profiled``, ``observed``, ``new``, ``change_pct`` (new vs profiled), ``drift_pct``
    (observed vs profiled), ``requests``, ``weight`` (decayed count) and ``drifted`` (|drift| > threshold)."""
    if half_life_s <= 0 or prior_weight < 0 or accuracy_prior_weight < 0:
        raise HetplanError("half-life must be positive and prior weights not negative")
    new = profile.copy()
    rows: list[dict] = []
    if log.empty:
        return new, _changes(rows, threshold)
    now = float(log.timestamp.max()) if now is None else float(now)
    log = log[log.timestamp <= now + 1e-9]
    weight = np.power(0.5, np.maximum(now - log.timestamp.to_numpy(float), 0.0) / half_life_s)
    log = log.assign(weight=weight)
    known = set(profile.model)
    _update_vm(new, profile, log[(log.platform == "vm") & log.model.isin(known)], prior_weight, rows)
    _update_lambda(new, profile, log[(log.platform == "lambda") & log.model.isin(known)], prior_weight, rows)
    _update_accuracy(new, profile, log[log.correct.notna() & log.model.isin(known)], accuracy_prior_weight, rows)
    for name in sorted(set(log.model) - known):
        part = log[log.model == name]
        rows.append({"model": name, "platform": ",".join(sorted(set(part.platform))), "config": "", "quantity": "not in the profile",
                     "requests": len(part), "weight": float(part.weight.sum())})
    return new, _changes(rows, threshold)


def _latency_blend(obs: pd.DataFrame, reference: dict, prior: float, rows: list, key: dict) -> dict:
    """Blended value per quantile column with a reference; appends the change rows; returns column → new."""
    warm = obs[~obs.cold_start]
    values, w = warm.latency_ms.to_numpy(float), warm.weight.to_numpy(float)
    out = {}
    for q, column in _QUANTILES:
        ref = reference.get(column, np.nan)
        if np.isnan(ref) and column != "latency_p50_ms":
            continue  # the profile has no such quantile: its basis stays what it was (see FEEDBACK.md)
        observed = weighted_quantile(values, w, q)
        if np.isnan(observed):
            continue
        out[column] = _blend(prior, float(w.sum()), ref, observed)
        rows.append({**key, "quantity": column, "profiled": ref, "observed": observed, "new": out[column],
                     "requests": len(warm), "weight": float(w.sum())})
    return out


def _update_vm(new: pd.DataFrame, profile: pd.DataFrame, obs: pd.DataFrame, prior: float, rows: list) -> None:
    vm = profile[profile.platform == "vm"]
    if obs.empty or vm.empty:
        return
    family = _family(vm.instance_type)
    single = vm[vm.batch == 1]
    for (model, fam), part in obs.assign(family=_family(obs.instance_type)).groupby(["model", "family"]):
        mine = (vm.model == model) & (family == fam)
        base = single[mine.loc[single.index]]
        key = {"model": model, "platform": "vm", "config": f"{fam}.*"}  # the family shares one busy latency
        if base.empty:
            rows.append({**key, "quantity": "no batch-1 profile row in the family", "requests": len(part),
                         "weight": float(part.weight.sum())})
            continue
        busy = {c: float(base[c].max()) for _, c in _QUANTILES}  # the planner's service latency (options.py)
        blended = _latency_blend(part, busy, prior, rows, key)
        index = mine[mine].index
        for column, value in blended.items():
            if not np.isnan(busy[column]):
                new.loc[index, column] = profile.loc[index, column] * value / busy[column]
        if "latency_p50_ms" in blended and busy["latency_p50_ms"] > 0:
            new.loc[index, "throughput_rps"] = profile.loc[index, "throughput_rps"] / (blended["latency_p50_ms"] / busy["latency_p50_ms"])


def _update_lambda(new: pd.DataFrame, profile: pd.DataFrame, obs: pd.DataFrame, prior: float, rows: list) -> None:
    lam = profile[profile.platform == "lambda"]
    for (model, memory), part in obs.groupby(["model", "memory_mb"]):
        mine = (lam.model == model) & (lam.memory_mb == memory)
        key = {"model": model, "platform": "lambda", "config": f"{memory:g}MB"}
        base = lam[mine & (lam.batch == 1)]
        if base.empty:
            rows.append({**key, "quantity": "no batch-1 profile row", "requests": len(part), "weight": float(part.weight.sum())})
            continue
        ref = base.iloc[0]
        blended = _latency_blend(part, {c: float(ref[c]) for _, c in _QUANTILES}, prior, rows, key)
        index = mine[mine].index
        for column, value in blended.items():
            old = float(ref[column])
            new.loc[index, column] = value if np.isnan(old) else profile.loc[index, column] * value / old
        cold = part[part.cold_start]
        warm_p50 = blended.get("latency_p50_ms", float(ref.latency_p50_ms))
        if cold.empty or np.isnan(warm_p50):
            continue
        load = np.maximum(cold.latency_ms.to_numpy(float) - warm_p50, 0.0)
        observed = float(np.average(load, weights=cold.weight.to_numpy(float))) if cold.weight.sum() > 0 else np.nan
        value = _blend(prior, float(cold.weight.sum()), float(ref.load_time_ms), observed)
        new.loc[index, "load_time_ms"] = value
        rows.append({**key, "quantity": "load_time_ms", "profiled": float(ref.load_time_ms), "observed": observed,
                     "new": value, "requests": len(cold), "weight": float(cold.weight.sum())})


def _update_accuracy(new: pd.DataFrame, profile: pd.DataFrame, obs: pd.DataFrame, prior: float, rows: list) -> None:
    for model, part in obs.groupby("model"):
        index = profile.index[profile.model == model]
        published = profile.loc[index, "accuracy_top1"].dropna()
        if published.empty:
            continue
        a0 = float(published.iloc[0]) / 100.0
        n = float(part.weight.sum())
        observed = float(np.average(part.correct, weights=part.weight)) if n > 0 else np.nan
        mean = (prior * a0 + n * observed) / (prior + n) if n > 0 else a0  # Beta(prior·a0, prior·(1−a0)) posterior
        new.loc[index, "accuracy_top1"] = 100.0 * mean
        new.loc[index, "accuracy_source"] = "measured"
        rows.append({"model": model, "platform": ",".join(sorted(set(part.platform))), "config": "all",
                     "quantity": "accuracy_top1", "profiled": 100 * a0, "observed": 100 * observed, "new": 100 * mean,
                     "requests": len(part), "weight": n})


def _changes(rows: list, threshold: float) -> pd.DataFrame:
    columns = ["model", "platform", "config", "quantity", "profiled", "observed", "new", "change_pct", "drift_pct",
               "requests", "weight", "drifted"]
    frame = pd.DataFrame(rows).reindex(columns=columns)
    for column in ("profiled", "observed", "new", "weight"):
        frame[column] = frame[column].astype(float)
    frame["change_pct"] = 100 * (frame.new / frame.profiled - 1)
    frame["drift_pct"] = 100 * (frame.observed / frame.profiled - 1)
    frame["drifted"] = (frame.drift_pct.abs() > 100 * threshold).fillna(False).astype(bool)
    return frame.reset_index(drop=True)


def profile_with_feedback(profile_path: str | Path, log_path: str | Path, out: str | Path | None = None,
                          skip_bad: bool = False, **kw) -> Path:
    """The profile corrected by a log, written (atomically) to ``out`` or to a cache file named by both
    inputs' digests; returns its path (what ``hetplan solve --feedback`` plans with)."""
    from hetplan.planner import catalog
    from hetplan.fileio import write_text_atomic

    profile = catalog.load_profile(profile_path)
    new, _ = update_profile(profile, read_log(log_path, skip_bad=skip_bad).requests, **kw)
    if out is None:
        digest = catalog.file_digest(profile_path)[7:19] + catalog.file_digest(log_path)[7:19]
        tag = "-".join(f"{k}{v}" for k, v in sorted(kw.items()))
        out = Path(tempfile.gettempdir()) / "hetplan-feedback" / f"profile-{digest}{('-' + tag) if tag else ''}.csv"
    return write_text_atomic(out, profile_csv(new))


def profile_csv(profile: pd.DataFrame) -> str:
    """A profile as CSV in the schema's column order (numbers without float noise)."""
    from hetplan.planner.catalog.schema import PROFILE_COLUMNS

    return profile[list(PROFILE_COLUMNS)].to_csv(index=False, float_format="%.10g")

