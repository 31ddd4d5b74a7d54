"""Profile CSV files: incremental appends that survive a kill, resume keys, and merging.

Each row is written as one complete line with a single write, then flushed and fsynced, so an
interrupted run leaves only whole rows (a torn last line, should one appear, is cut on resume).
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

from hetplan.errors import HetplanError
from hetplan.fileio import write_text_atomic
from hetplan.planner.catalog.schema import PROFILE_COLUMNS

KEY_COLUMNS = ("model", "platform", "instance_type", "memory_mb", "batch")


def row_key(row: dict) -> tuple[str, ...]:
    """The identity of a configuration: a later row with the same key supersedes an earlier one."""
    return tuple(str(row.get(column, "")) for column in KEY_COLUMNS)


def format_line(values: list) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(values)
    return buffer.getvalue()


def _check_header(path: Path, header: list[str]) -> None:
    if tuple(header) != PROFILE_COLUMNS:
        raise HetplanError(f"{path} is not a profile file: its header differs from the profile schema")


def read_rows(path: str | Path) -> list[dict]:
    path = Path(path)
    if not path.exists():
        raise HetplanError(f"profile '{path}' does not exist")
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            return []
        _check_header(path, header)
        return [dict(zip(PROFILE_COLUMNS, values)) for values in reader if len(values) == len(PROFILE_COLUMNS)]


def prepare_output(path: str | Path, resume: bool) -> set[tuple[str, ...]]:
    """Keys already in ``path`` when resuming (after cutting a torn last line); a fresh header otherwise."""
    path = Path(path)
    if path.exists() and path.stat().st_size > 0:
        if not resume:
            raise HetplanError(f"'{path}' already exists: pass --resume to continue it, or choose another --out")
        text = path.read_text(encoding="utf-8")
        if not text.endswith("\n"):
            with open(path, "r+", encoding="utf-8") as handle:
                handle.truncate(len(text[: text.rfind("\n") + 1].encode("utf-8")))
        return {row_key(row) for row in read_rows(path)}
    write_text_atomic(path, format_line(list(PROFILE_COLUMNS)))
    return set()


def append_row(path: str | Path, row: dict) -> None:
    """Append one row as one line, durably."""
    line = format_line(["" if row.get(column) is None else row[column] for column in PROFILE_COLUMNS])
    with open(path, "a", encoding="utf-8", newline="") as handle:
        handle.write(line)
        handle.flush()
        os.fsync(handle.fileno())


def merge_profiles(inputs: list[str | Path], out: str | Path) -> int:
    """Write the union of ``inputs`` to ``out``, one row per key, the newest timestamp winning
    (on a tie the later input wins). Returns the number of rows written."""
    newest: dict[tuple[str, ...], dict] = {}
    for path in inputs:
        for row in read_rows(path):
            key = row_key(row)
            if key not in newest or row["timestamp"] >= newest[key]["timestamp"]:
                newest[key] = row

    def order(row: dict):
        return (row["model"], row["platform"], row["instance_type"],
                float(row["memory_mb"] or 0), float(row["batch"] or 0))

    rows = sorted(newest.values(), key=order)
    text = format_line(list(PROFILE_COLUMNS)) + "".join(
        format_line([row[column] for column in PROFILE_COLUMNS]) for row in rows)
    write_text_atomic(out, text)
    return len(rows)
