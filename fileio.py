"""Atomic writes: an output file is either complete or absent, never half-written."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def _write_atomic(path: str | os.PathLike, mode: str, write: Callable) -> Path:
    """Call ``write(handle)`` on a temporary file in the same folder, then rename it over ``path``.

    A path that cannot be written (no such folder and none can be made, no permission, a full disk) raises the
    project's own error, "cannot write PATH: reason" (exit 2), with nothing left behind."""
    from hetplan.errors import HetplanError

    path = Path(path)
    try:
        return _write_in(path, mode, write)
    except OSError as exc:
        blocker = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
        reason = f"{blocker} is a file, not a folder" if blocker is not None else (exc.strerror or str(exc))
        raise HetplanError(f"cannot write {path}: {reason}") from exc


def _write_in(path: Path, mode: str, write: Callable) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, **({"encoding": "utf-8"} if "b" not in mode else {})) as handle:
            write(handle)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically."""
    return _write_atomic(path, "w", lambda handle: handle.write(text))


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    return _write_atomic(path, "wb", lambda handle: handle.write(data))


def save_figure_atomic(fig, path: str | os.PathLike, dpi: int = 110) -> Path:
    """Save a matplotlib figure as PNG atomically, and close it."""
    import matplotlib.pyplot as plt

    try:
        return _write_atomic(path, "wb", lambda handle: fig.savefig(handle, format="png", dpi=dpi))
    finally:
        plt.close(fig)
