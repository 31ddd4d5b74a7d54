"""The output layer: the only code that draws. Commands build result objects (dataclasses, DataFrames, dicts)
and hand them to :class:`Output`, which prints rich tables, tab-separated text (``--plain``) or JSON (``--json``).

Rules every command gets from here:
- stdout carries the result only; notes, warnings and progress go to stderr when ``--json`` is on;
- tables never truncate: when stdout is not a terminal they render at their natural width;
- progress bars are drawn on stderr, and only when stderr is a terminal and ``--quiet`` is off;
- JSON is strict: NaN and infinity become ``null``, numpy scalars become numbers.
"""

from __future__ import annotations

import contextlib
import json
import math
import sys
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

PIPED_WIDTH = 100_000  # columns when stdout is not a terminal: wide enough that no table is ever cut


def jsonable(value):
    """``value`` with NaN/inf as None, numpy scalars and arrays as Python numbers and lists, paths as strings."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):  # numpy scalar or array
        return jsonable(value.tolist())
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (bool, int, str)):
        return value
    return str(value)


def frame_records(frame) -> list[dict]:
    """A DataFrame's rows as JSON-ready dicts (NaN → None)."""
    return jsonable(json.loads(frame.to_json(orient="records", double_precision=15)))


@dataclass
class Progress:
    """A handle on a progress bar; every method is a no-op when the bar is not drawn."""

    _bar: object = None
    _task: object = None

    def advance(self, steps: float = 1, description: str | None = None) -> None:
        if self._bar is not None:
            self._bar.update(self._task, advance=steps, **({"description": description} if description else {}))

    def update(self, description: str | None = None, total: float | None = None) -> None:
        if self._bar is not None:
            kwargs = {"description": description} if description else {}
            if total is not None:
                kwargs["total"] = total
            self._bar.update(self._task, **kwargs)


@dataclass
class Output:
    """Where and how a command prints its result (``--json``, ``--plain``, ``--quiet``)."""

    json: bool = False
    plain: bool = False
    quiet: bool = False
    _console: object = field(default=None, repr=False)

    @property
    def console(self):
        """stdout's console: the terminal's width, or no limit when piped (tables never cut)."""
        if self._console is None:
            from rich.console import Console

            piped = not sys.stdout.isatty()
            self._console = Console(width=PIPED_WIDTH if piped else None, highlight=False, soft_wrap=piped)
        return self._console

    def print_json(self, data) -> None:
        sys.stdout.write(json.dumps(jsonable(data), indent=1, allow_nan=False, ensure_ascii=False) + "\n")

    def note(self, text: str, markup: bool = False) -> None:
        """An informative line: stdout with tables, stderr with --json (stdout then holds JSON only).
        ``markup``: the text holds rich markup (``[bold]…[/]``), drawn on a terminal and removed elsewhere."""
        plain = _plain_text(text) if markup else text
        if self.json:
            sys.stderr.write(plain + "\n")
        elif self.plain:
            sys.stdout.write(plain + "\n")
        else:
            self.console.print(text, markup=markup, highlight=False)

    def warn(self, text: str) -> None:
        sys.stderr.write(f"hetplan: warning: {text}\n")

    def table(self, title: str, headers: Sequence[str], rows: Sequence[Sequence[str]], *,
              left: Sequence[str] = (), row_styles: Sequence[str | None] | None = None, compact: bool = False) -> None:
        """One table of already formatted cells (rich markup allowed); ``left``: left-aligned columns (others
        right); ``--plain`` prints ``# title``, then tab-separated header and rows without markup."""
        if self.plain:
            lines = [f"# {title}", "\t".join(headers)] + ["\t".join(_plain_text(c) for c in row) for row in rows]
            sys.stdout.write("\n".join(lines) + "\n")
            return
        from rich import box
        from rich.table import Table

        extra = {"box": box.SIMPLE_HEAD, "show_edge": False, "pad_edge": False, "collapse_padding": True} if compact else {}
        table = Table(title=title, title_justify="left", header_style="bold", **extra)
        for name in headers:
            table.add_column(name, justify="left" if name in left else "right", no_wrap=not sys.stdout.isatty())
        for k, row in enumerate(rows):
            table.add_row(*row, style=row_styles[k] if row_styles else None)
        self.console.print(table)

    def frame(self, title: str, frame, formats: dict | None = None) -> None:
        """A DataFrame as a table: ``formats`` maps a column to a format string; other floats get 4 significant
        digits; missing values print as "–"; text columns are left-aligned."""
        import pandas as pd

        formats = formats or {}
        rows = []
        for row in frame.itertuples(index=False):
            cells = []
            for column, value in zip(frame.columns, row):
                if value is None or (isinstance(value, float) and pd.isna(value)):
                    cells.append("–")
                elif column in formats:
                    cells.append(formats[column].format(value))
                elif isinstance(value, float):
                    cells.append(f"{value:,.4g}")
                else:
                    cells.append(str(value))
            rows.append(cells)
        left = [str(c) for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
        self.table(title, [str(c) for c in frame.columns], rows, left=left)

    def pairs(self, title: str, rows: Sequence[tuple[str, str]]) -> None:
        """A two-column key/value table (a summary)."""
        if self.plain:
            sys.stdout.write("\n".join([f"# {title}"] + [f"{k.strip()}\t{_plain_text(v)}" for k, v in rows]) + "\n")
            return
        from rich.table import Table

        table = Table(title=title, title_justify="left", show_header=False)
        table.add_column(style="bold", no_wrap=True)
        table.add_column(justify="right", no_wrap=not sys.stdout.isatty())
        for key, value in rows:
            table.add_row(key, value)
        self.console.print(table)

    @contextlib.contextmanager
    def progress(self, description: str, total: float | None = None, after_s: float = 0.0) -> Iterator[Progress]:
        """A progress bar on stderr, shown only on a terminal without ``--quiet``; ``after_s``: only for work
        that lasts longer (a quick solve draws nothing)."""
        if self.quiet or not sys.stderr.isatty():
            yield Progress()
            return
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress as Bar, SpinnerColumn, TextColumn, TimeElapsedColumn

        bar = Bar(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=Console(stderr=True), transient=True)
        task = bar.add_task(description, total=total)
        timer = threading.Timer(after_s, bar.start) if after_s > 0 else None
        if timer is None:
            bar.start()
        else:
            timer.daemon = True
            timer.start()
        try:
            yield Progress(bar, task)
        finally:
            if timer is not None:
                timer.cancel()
            bar.stop()


def _plain_text(text: str) -> str:
    """Rich markup removed (``[bold]x[/]`` → ``x``)."""
    if "[" not in text:
        return text
    from rich.text import Text

    return Text.from_markup(text).plain
