"""Edge helpers the commands share: the output flags, option parsers that name the option they read, shipped
file lookup and result files. Light at import (no pandas, no rich): ``hetplan --help`` stays fast."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hetplan.errors import HetplanError

JsonFlag = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout; notes and progress go to stderr.")]
PlainFlag = Annotated[bool, typer.Option("--plain", help="Print tables as tab-separated text (no borders, no colour).")]
QuietFlag = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")]


def output(json: bool = False, plain: bool = False, quiet: bool = False):
    from hetplan.commands.output import Output

    return Output(json=json, plain=plain, quiet=quiet)


def shipped(kind: str) -> Path:
    """A folder of the shipped data (``traces``, ``profiles``) or the data folder itself (``""``)."""
    from hetplan.planner.catalog.tables import DATA_DIR

    return DATA_DIR / kind if kind else DATA_DIR


def resolve_trace(trace: str | Path | None) -> Path:
    """The trace as given (or its .gz); else the shipped trace of that name: ``wits``, ``wits.csv`` and
    ``data/traces/wits.csv.gz`` all work from any folder after a plain install. Default: the WITS trace."""
    traces = shipped("traces")
    if trace is None:
        return traces / "wits.csv.gz"
    path = Path(trace)
    candidates = (path, path.with_name(path.name + ".gz"), shipped("").parent / path, traces / path.name,
                  traces / f"{path.name}.gz", traces / f"{path.name}.csv.gz")
    return next((candidate for candidate in candidates if candidate.is_file()), path)


def resolve_profile(path: Path) -> Path:
    """A profile as recorded (in a plan), else the same name among the shipped profiles."""
    if path.exists():
        return path
    candidate = shipped("profiles") / path.name
    return candidate if candidate.exists() else path


def check_suffix(path: Path | None, suffixes: tuple[str, ...], option: str) -> None:
    """Checked before any work, so a typo in an output name does not cost minutes of solving."""
    if path is not None and path.suffix.lower() not in suffixes:
        raise HetplanError(f"{option} '{path}': write a {' or '.join(suffixes)} file")
    if path is not None:
        check_writable(path)


def check_writable(path: Path) -> None:
    """Before any work: the nearest existing folder on the way to ``path`` must be a folder we may write in."""
    import os

    folder = Path(path).absolute().parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if Path(path).is_dir():
        raise HetplanError(f"cannot write {path}: it is a folder; name a file")
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        raise HetplanError(f"cannot write {path}: {folder} is not a folder this user may write in")


def write_table(frame, path: Path, meta: dict | None = None) -> None:
    """A result table as CSV, or as JSON (records; with ``meta``: ``{**meta, "rows": records}``), atomically."""
    import json

    from hetplan.commands.output import frame_records, jsonable
    from hetplan.fileio import write_text_atomic

    if path.suffix.lower() == ".csv":
        write_text_atomic(path, frame.to_csv(index=False))
    elif path.suffix.lower() == ".json":
        records = frame_records(frame)
        body = records if meta is None else {**jsonable(meta), "rows": records}
        write_text_atomic(path, json.dumps(body, indent=1, allow_nan=False) + "\n")
    else:
        raise HetplanError(f"--out '{path}': write a .csv or .json file")


def drifts(texts, known) -> tuple:
    """Parsed ``--drift`` values, their models checked against the profile's."""
    from hetplan.errors import did_you_mean
    from hetplan.planner.replay.drift import parse_drift

    parsed = tuple(d for text in texts or () for d in parse_drift(text))
    for d in parsed:
        if d.model not in set(known):
            raise HetplanError(f"--drift names model '{d.model}', which is not in the profile{did_you_mean(d.model, known)}")
    return parsed


DRIFT_HELP = ("The true latency of a model differs from the profile: model=NAME,latency=FACTOR[,platform=vm|lambda]; "
              "repeat for several (planner/FEEDBACK.md).")
