"""The one domain exception: caught at the CLI edge and shown as a one-line message (exit code 2)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class HetplanError(Exception):
    """A user-facing error: bad input, infeasible request, missing file. The message says what is wrong and how to fix it."""


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """' (did you mean 'x'?)' for the closest known name, or the list of known names when none is close."""
    known = sorted(set(known))
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    if close:
        return f" (did you mean '{close[0]}'?)"
    shown = ", ".join(known[:12]) + (", ..." if len(known) > 12 else "")
    return f" (known: {shown})"
