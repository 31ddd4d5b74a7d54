"""Request traces -> per-second load -> per-window load statistics.

A *trace* is a DataFrame with columns ``second`` (int64, sorted, unique) and ``requests`` (float64, >= 0):
the number of requests that arrived in that second. Seconds with no row are **gaps** (not observed) and stay
gaps: nothing here silently turns them into zeros.

File formats read by :func:`load_trace` (any of them may be gzipped; ``.gz`` is detected from the name):

``seconds``       ``second,requests`` with a header: the shipped format (``data/traces/*.csv.gz``).
``timestamped``   ``timestamp,requests`` with a header; ``timestamp`` is any time pandas parses
                  (``2024-05-01 12:00:03``, ISO 8601 with zone, ...) or a plain number of seconds. Rows are
                  converted to seconds from the first timestamp and summed per second; seconds without
                  rows are gaps.
``timestamps``    one arrival time (seconds, float) per line, one line per request, optional header
                  ``timestamp``. Counted per second from the first arrival; every second between the first
                  and last arrival was observed, so quiet seconds are 0, not gaps.
``interarrivals`` one inter-arrival time (seconds, float >= 0) per line, optional header ``interarrival``
                  (or ``gap``/``iat``). Arrivals are the cumulative sum from time 0; counted like ``timestamps``.
``inferall``      headerless ``t_sec,a,b,num_tasks`` rows (the InferAll/Spock WITS and Berkeley CSVs):
                  ``second = t_sec``, ``requests = num_tasks``.

``format="auto"`` (the default) decides by this rule: the header names the format (``second,requests``,
``timestamp,requests``, ``timestamp``, ``interarrival``); a headerless file with two columns is ``seconds``,
with four columns ``inferall``, and with **one column it is read as timestamps** -- inter-arrival files must
have an ``interarrival`` header or be loaded with ``format="interarrivals"``. (Guessing from monotonicity
would misread constant inter-arrival gaps as timestamps and unsorted timestamps as gaps.)
"""

from __future__ import annotations

import gzip
import io
import os
from pathlib import Path

import numpy as np
import pandas as pd

from hetplan.errors import HetplanError, did_you_mean
from hetplan.units import parse_duration

FORMATS = ("auto", "seconds", "timestamped", "timestamps", "interarrivals", "inferall")
GAP_MODES = ("exclude", "interpolate")
_HEADERS = {
    ("second", "requests"): "seconds",
    ("timestamp", "requests"): "timestamped",
    ("time", "requests"): "timestamped",
    ("timestamp",): "timestamps",
    ("arrival",): "timestamps",
    ("interarrival",): "interarrivals",
    ("inter_arrival",): "interarrivals",
    ("gap",): "interarrivals",
    ("iat",): "interarrivals",
}
_COLUMNS = {"seconds": 2, "timestamped": 2, "timestamps": 1, "interarrivals": 1, "inferall": 4}


def load_trace(path: str | os.PathLike, format: str = "auto") -> pd.DataFrame:
    """Read a trace file (see the module docstring for formats) as a ``second,requests`` DataFrame."""
    if format not in FORMATS:
        raise HetplanError(f"unknown trace format '{format}'{did_you_mean(format, FORMATS)}")
    path = Path(path)
    name = path.name
    if not path.is_file():
        raise HetplanError(f"trace file '{path}' not found")
    raw = _read_cells(path)
    header = _header_of(raw)
    if header is not None:
        raw = raw.iloc[1:]
    # the first line (header or data) sets the column count; a longer line later is an error
    ncols = len(header) if header is not None else _width(raw)
    fmt = format if format != "auto" else _detect(name, header, ncols)
    if ncols != _COLUMNS[fmt]:
        raise HetplanError(f"{name}: format '{fmt}' needs {_COLUMNS[fmt]} column(s), the file has {ncols}")
    extra = (raw.iloc[:, ncols:] != "").any(axis=1)
    if extra.any():
        line = extra.index[extra.to_numpy().argmax()]
        raise HetplanError(f"{name} line {line}: more than the {ncols} field(s) of the other lines")
    if raw.empty:
        raise HetplanError(f"{name}: the trace has no data rows")
    if fmt == "seconds":
        trace = _from_seconds(name, raw[0], raw[1])
    elif fmt == "inferall":
        trace = _from_seconds(name, raw[0], raw[3])
    elif fmt == "timestamped":
        trace = _from_timestamped(name, raw[0], raw[1])
    else:
        times = _numbers(name, raw[0], "timestamp" if fmt == "timestamps" else "inter-arrival time")
        if fmt == "interarrivals":
            _check_non_negative(name, times, "inter-arrival time")
            times = times.cumsum()
        else:
            _check_sorted(name, times, "timestamp", strict=False)
        trace = _count_arrivals(times)
    return trace


def _read_cells(path: Path) -> pd.DataFrame:
    """All cells as strings, indexed by 1-based file line; blank and '#' lines dropped (numbering kept)."""
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8") as handle:
            # comment lines become blank lines, so pandas' row numbers stay file line numbers
            lines = ["\n" if line.lstrip().startswith("#") else line for line in handle]
        width = max((line.count(",") + 1 for line in lines if line.strip()), default=0)
        if width == 0:
            raise HetplanError(f"{path.name}: the trace file is empty")
        raw = pd.read_csv(io.StringIO("".join(lines)), header=None, names=range(width), dtype=str,
                          skip_blank_lines=False, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, EOFError) as exc:
        raise HetplanError(f"{path.name}: cannot read as CSV: {str(exc).strip().splitlines()[-1]}") from None
    raw.index = np.arange(1, len(raw) + 1)
    raw = raw.fillna("").apply(lambda col: col.str.strip())
    return raw[~(raw == "").all(axis=1)]


def _is_number(text: str) -> bool:
    try:
        float(text)
    except (TypeError, ValueError):
        return False
    return True


def _width(raw: pd.DataFrame) -> int:
    cells = list(raw.iloc[0]) if len(raw) else [""]
    while len(cells) > 1 and cells[-1] == "":
        cells.pop()
    return len(cells)


def _header_of(raw: pd.DataFrame) -> tuple[str, ...] | None:
    if raw.empty:
        return None
    first = [str(v).strip().lower() for v in raw.iloc[0]]
    if _is_number(first[0]) or first[0] in ("", "nan", "inf", "-inf"):
        return None
    return tuple(first[:_width(raw)])


def _detect(name: str, header: tuple[str, ...] | None, ncols: int) -> str:
    if header is not None:
        if header in _HEADERS:
            return _HEADERS[header]
        raise HetplanError(
            f"{name} line 1: unknown header '{','.join(header)}': expected second,requests, "
            "timestamp,requests, timestamp or interarrival")
    by_columns = {1: "timestamps", 2: "seconds", 4: "inferall"}
    if ncols not in by_columns:
        raise HetplanError(f"{name}: cannot tell the trace format of a headerless file with {ncols} columns")
    return by_columns[ncols]


def _numbers(name: str, cells: pd.Series, what: str) -> pd.Series:
    """Floats of ``cells``; the first empty, NaN, infinite or non-numeric cell is an error naming its line."""
    values = pd.to_numeric(cells, errors="coerce")
    bad = ~np.isfinite(values.to_numpy(dtype=float))
    if bad.any():
        line = cells.index[bad.argmax()]
        text = cells.loc[line]
        if text == "":
            problem = "is missing"
        elif text.lower() in ("nan", "na", "null", "none"):
            problem = f"is NaN ('{text}')"
        elif _is_number(text):
            problem = f"is not finite ('{text}')"
        else:
            problem = f"'{text}' is not a number"
        raise HetplanError(f"{name} line {line}: {what} {problem}")
    return values.astype(float)


def _check_non_negative(name: str, values: pd.Series, what: str) -> None:
    negative = values.to_numpy() < 0
    if negative.any():
        line = values.index[negative.argmax()]
        raise HetplanError(f"{name} line {line}: {what} {values.loc[line]:g} is negative")


def _check_sorted(name: str, values: pd.Series, what: str, strict: bool) -> None:
    arr = values.to_numpy()
    step = np.diff(arr)
    bad = step <= 0 if strict else step < 0
    if bad.any():
        i = int(bad.argmax()) + 1
        line, prev_line = values.index[i], values.index[i - 1]
        relation = "repeats" if arr[i] == arr[i - 1] else "comes before"
        raise HetplanError(f"{name} line {line}: {what} {_fmt(arr[i])} {relation} {_fmt(arr[i - 1])} "
                           f"on line {prev_line}: the trace must be sorted by time")


def _fmt(value) -> str:
    return f"{value:g}" if isinstance(value, (float, np.floating)) else str(value)


def _from_seconds(name: str, second_cells: pd.Series, request_cells: pd.Series) -> pd.DataFrame:
    seconds = _numbers(name, second_cells, "second")
    fractional = seconds != np.floor(seconds)
    if fractional.any():
        line = seconds.index[fractional.to_numpy().argmax()]
        raise HetplanError(f"{name} line {line}: second {seconds.loc[line]:g} is not a whole number")
    _check_non_negative(name, seconds, "second")
    _check_sorted(name, seconds, "second", strict=True)
    requests = _numbers(name, request_cells, "requests")
    _check_non_negative(name, requests, "requests")
    return _frame(seconds.to_numpy(dtype=np.int64), requests.to_numpy())


def _from_timestamped(name: str, time_cells: pd.Series, request_cells: pd.Series) -> pd.DataFrame:
    requests = _numbers(name, request_cells, "requests")
    _check_non_negative(name, requests, "requests")
    numeric = pd.to_numeric(time_cells, errors="coerce")
    if numeric.notna().all():
        elapsed = _numbers(name, time_cells, "timestamp")
    else:
        elapsed = _parse_times(name, time_cells)
    _check_sorted(name, elapsed, "timestamp", strict=False)
    seconds = np.floor(elapsed.to_numpy() - elapsed.iloc[0]).astype(np.int64)
    summed = pd.Series(requests.to_numpy()).groupby(seconds).sum()
    return _frame(summed.index.to_numpy(dtype=np.int64), summed.to_numpy())


def _parse_times(name: str, cells: pd.Series) -> pd.Series:
    """Seconds since the epoch of pandas-parsable times; mixed formats allowed, naive times read as UTC."""
    try:
        times = pd.to_datetime(cells, errors="coerce", utc=True, format="mixed")
    except (ValueError, TypeError) as exc:  # pragma: no cover - pandas raises only for odd inputs
        raise HetplanError(f"{name}: cannot read timestamps: {exc}") from None
    bad = times.isna().to_numpy()
    if bad.any():
        line = cells.index[bad.argmax()]
        raise HetplanError(f"{name} line {line}: timestamp '{cells.loc[line]}' is not a time pandas can read")
    nanos = times.astype("int64").astype(float)
    return pd.Series(nanos / 1e9, index=cells.index)


def _count_arrivals(times: pd.Series) -> pd.DataFrame:
    """Requests per second from arrival times; quiet seconds between first and last arrival count 0."""
    offsets = times.to_numpy() - times.iloc[0]
    counts = np.bincount(np.floor(offsets).astype(np.int64))
    return _frame(np.arange(len(counts), dtype=np.int64), counts.astype(float))


def _frame(seconds: np.ndarray, requests: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"second": seconds.astype(np.int64), "requests": requests.astype(float)})


def scaled(trace: pd.DataFrame, factor: float) -> pd.DataFrame:
    """The trace with every second's requests times ``factor`` (``--load-scale``), as whole requests: the
    running total is rounded, so the total is the scaled total to within one request and no second drifts."""
    if factor == 1.0:
        return trace
    total = np.floor(np.cumsum(trace.requests.to_numpy(float) * factor) + 0.5)
    counts = np.diff(np.concatenate([[0.0], total]))
    return trace.assign(requests=counts.astype(trace.requests.dtype if trace.requests.dtype.kind == "i" else float))


def find_gaps(trace: pd.DataFrame) -> pd.DataFrame:
    """Missing stretches of a trace: one row per gap with ``start_s`` (first missing second) and ``length_s``."""
    sec = trace["second"].to_numpy()
    jumps = np.flatnonzero(np.diff(sec) > 1)
    return pd.DataFrame({"start_s": sec[jumps] + 1, "length_s": np.diff(sec)[jumps] - 1}).astype(np.int64)


def window_stats(trace: pd.DataFrame, window_s: float | str, quantile: float = 0.95,
                 gaps: str = "exclude") -> pd.DataFrame:
    """Per-window load statistics of a trace.

    Windows are ``window_s`` seconds long (a whole number >= 1, or a duration such as ``"5m"``) and start at the
    trace's first second; the last window ends with the trace and may be shorter. One row per window:
    ``window`` (0-based), ``start_s``/``end_s`` (trace seconds, end exclusive), ``mean_rps``, ``peak_rps``,
    ``q_rps`` (the ``quantile`` of the per-second rates in the window, linear interpolation), ``seconds_observed``
    and ``requests`` (the window's total).

    ``gaps="exclude"``: statistics use only the observed seconds (a gap neither lowers the mean nor counts as
    zero); a window with no observed second raises :class:`HetplanError` naming it.
    ``gaps="interpolate"``: missing seconds are filled linearly between the observed seconds around the gap and
    counted in every statistic, ``requests`` included; ``seconds_observed`` still counts only real seconds.
    """
    if not 0 <= quantile <= 1:
        raise HetplanError(f"quantile {quantile:g} must be between 0 and 1 (e.g. 0.95)")
    rates, observed, first, span = _grid(trace, window_s, gaps)
    count, width = rates.shape
    n_obs = observed.sum(axis=1)
    empty = np.flatnonzero(n_obs == 0)
    if empty.size and gaps == "exclude":
        k = int(empty[0])
        raise HetplanError(
            f"window {k} (seconds {first + k * width}..{first + (k + 1) * width - 1}) has no data: "
            f"{empty.size} window(s) fall entirely in gaps; use a longer window or gaps='interpolate' (--gaps interpolate)")
    start = first + np.arange(count) * width
    return pd.DataFrame({
        "window": np.arange(count, dtype=np.int64),
        "start_s": start.astype(np.int64),
        "end_s": np.minimum(start + width, first + span).astype(np.int64),
        "mean_rps": np.nanmean(rates, axis=1),
        "peak_rps": np.nanmax(rates, axis=1),
        "q_rps": np.nanquantile(rates, quantile, axis=1),
        "seconds_observed": n_obs.astype(np.int64),
        "requests": np.nansum(rates, axis=1),
    })


def window_seconds(trace: pd.DataFrame, window_s: float | str, gaps: str = "exclude") -> np.ndarray:
    """(windows × seconds) requests per second, aligned with :func:`window_stats`'s rows; NaN where a
    second was not observed (a gap under ``gaps="exclude"``, or past the end of a short last window)."""
    rates, _, _, _ = _grid(trace, window_s, gaps)
    return rates


def observed_mean(per_second: np.ndarray) -> np.ndarray:
    """Per row of a :func:`window_seconds` matrix: the mean over its observed seconds (as ``mean_rps``)."""
    raw = np.atleast_2d(np.asarray(per_second, float))
    return np.nan_to_num(raw).sum(axis=1) / np.maximum(np.isfinite(raw).sum(axis=1), 1)


def _grid(trace: pd.DataFrame, window_s: float | str, gaps: str):
    """Per-second rates on the windows' grid, which seconds were observed, the first second and the span."""
    if isinstance(window_s, str):
        window_s = parse_duration(window_s)
    if not (window_s >= 1 and float(window_s).is_integer()):
        raise HetplanError(f"window {window_s:g}s must be a whole number of seconds, at least 1s")
    if gaps not in GAP_MODES:
        raise HetplanError(f"unknown gap mode '{gaps}'{did_you_mean(gaps, GAP_MODES)}")
    if trace.empty:
        raise HetplanError("the trace is empty: there are no windows to compute")
    width = int(window_s)
    sec = trace["second"].to_numpy(dtype=np.int64)
    req = trace["requests"].to_numpy(dtype=float)
    first, span = int(sec[0]), int(sec[-1] - sec[0] + 1)
    count = -(-span // width)
    rates = np.full(count * width, np.nan)
    observed = np.zeros(count * width, dtype=bool)
    rates[sec - first] = req
    observed[sec - first] = True
    if gaps == "interpolate":
        rates[:span] = np.interp(np.arange(span), sec - first, req)
    return rates.reshape(count, width), observed.reshape(count, width), first, span
