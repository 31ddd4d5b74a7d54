"""The domain exceptions: caught once at the CLI edge, shown as one line, mapped to the documented exit codes.

| exit | meaning | raised as |
|---|---|---|
| 0 | success | |
| 1 | infeasible: nothing fits; nothing written; the message names the binding constraint and what to relax | :class:`Infeasible` |
| 2 | bad input or usage | :class:`HetplanError` (and typer's usage errors) |
| 3 | the solver stopped without a plan (time limit) | :class:`SolverStopped` |
| 4 | ``validate`` or ``simulate --check`` found violations | :class:`CheckFailed` |
| 130 | interrupted (Ctrl-C); no partial files (every write is atomic) | ``KeyboardInterrupt`` |
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

EXIT_OK, EXIT_INFEASIBLE, EXIT_BAD_INPUT, EXIT_SOLVER_STOPPED, EXIT_CHECK_FAILED, EXIT_INTERRUPTED = 0, 1, 2, 3, 4, 130


class HetplanError(Exception):
    """A user-facing error: bad input, missing file, unknown name. The message says what is wrong and how to fix it."""

    exit_code = EXIT_BAD_INPUT


class Infeasible(HetplanError):
    """No plan meets the request (SLO, accuracy, limits, budget); the message says what to relax."""

    exit_code = EXIT_INFEASIBLE


class SolverStopped(HetplanError):
    """The solver reached its time limit before it found any plan."""

    exit_code = EXIT_SOLVER_STOPPED


class CheckFailed(HetplanError):
    """A check (``validate``, ``simulate --check``) ran and found violations; its report was printed."""

    exit_code = EXIT_CHECK_FAILED


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """' (did you mean 'x'?)' for the closest known name, or the list of known names when none is close."""
    known = sorted(set(known))
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    if close:
        return f" (did you mean '{close[0]}'?)"
    shown = ", ".join(known[:12]) + (", ..." if len(known) > 12 else "")
    return f" (known: {shown})"
