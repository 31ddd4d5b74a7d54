"""The data stage: the shipped catalog and profiles, their schema, and request logs that correct a profile.

``from hetplan.planner import catalog`` gives the loaders of :mod:`.tables` (``catalog.load_profile`` …).
They are re-exported lazily (PEP 562), so importing :mod:`.schema` (the profiler does) pulls no pandas.
"""

from __future__ import annotations


def __getattr__(name: str):
    import importlib

    if name.startswith("__"):  # module machinery (__path__ lookups, copy, pickle): not a table
        raise AttributeError(name)
    tables = importlib.import_module("hetplan.planner.catalog.tables")
    try:
        return getattr(tables, name)
    except AttributeError:
        raise AttributeError(f"module 'hetplan.planner.catalog' has no attribute '{name}'") from None
