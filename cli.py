"""The ``hetplan`` command line: registers the commands of ``commands/`` and maps errors to exit codes.

Every domain error becomes one line on stderr and the exit code its class names (``errors.py``: 1 infeasible,
2 bad input, 3 solver stopped, 4 check failed); Ctrl-C exits 130, and every file is written atomically, so an
interrupted command leaves no partial file. ``--verbose`` shows tracebacks. Heavy libraries (pandas, solvers,
mxnet) are imported inside the commands, so ``hetplan --help`` stays fast.
"""

from __future__ import annotations

import functools
import sys
from typing import Annotated

import typer

from hetplan import __version__
from hetplan.errors import EXIT_INTERRUPTED, HetplanError

app = typer.Typer(name="hetplan", add_completion=True, no_args_is_help=True, rich_markup_mode=None,
                  context_settings={"help_option_names": ["-h", "--help"]},
                  help="Plan ML inference serving across heterogeneous VMs and serverless at the lowest cost "
                       "that meets a latency SLO and an accuracy target.\n\n"
                       "Exit codes: 0 ok, 1 infeasible, 2 bad input, 3 solver stopped without a plan, "
                       "4 check found violations, 130 interrupted.")
_state = {"verbose": False}


def _report(exc: HetplanError) -> int:
    prefix = "check failed" if exc.exit_code == 4 else "error"
    print(f"hetplan: {prefix}: {exc}", file=sys.stderr)
    return exc.exit_code


def handle_errors(command):
    """Report domain errors as one line with their exit code, and Ctrl-C as exit 130."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except HetplanError as exc:
            if _state["verbose"]:
                raise
            raise typer.Exit(_report(exc)) from None
        except KeyboardInterrupt:
            print("hetplan: interrupted", file=sys.stderr)
            raise typer.Exit(EXIT_INTERRUPTED) from None

    return wrapper


def _version(value: bool):
    if value:
        typer.echo(f"hetplan {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show tracebacks of errors.")] = False,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")] = False,
):
    _state["verbose"] = verbose


def _guarded(sub: typer.Typer) -> typer.Typer:
    """A copy of a sub-app whose callback and commands report domain errors like ours."""
    import copy

    clone = copy.copy(sub)
    if sub.registered_callback and sub.registered_callback.callback:
        clone.registered_callback = copy.copy(sub.registered_callback)
        clone.registered_callback.callback = handle_errors(sub.registered_callback.callback)
    clone.registered_commands = []
    for command in sub.registered_commands:
        command = copy.copy(command)
        command.callback = handle_errors(command.callback)
        clone.registered_commands.append(command)
    return clone


def _register() -> None:
    """Each command module imports its heavy libraries inside its commands, so importing them here is cheap."""
    from hetplan.commands import deploy, observe, plan, predict, profile, replay, sweep, trace

    for name, command in (("catalog", plan.catalog_command), ("solve", plan.solve_command),
                          ("show", plan.show_command), ("validate", plan.validate_command),
                          ("predict", predict.predict_command), ("simulate", replay.simulate_command),
                          ("compare", replay.compare_command), ("observe", observe.observe_command),
                          ("sweep", sweep.sweep_command), ("deploy", deploy.deploy_command)):
        app.command(name)(handle_errors(command))
    app.add_typer(_guarded(profile.profile_app), name="profile")
    app.add_typer(_guarded(trace.trace_app), name="trace")


_register()


def _rich_command_help(group) -> None:
    """Rich help (panels, markup) for every command below the top level: typer's rich help costs about 150 ms
    of imports, which ``hetplan --help`` (the command list) cannot afford within its 0.3 s start-up budget,
    while ``hetplan solve --help`` can."""
    for command in getattr(group, "commands", {}).values():
        command.rich_markup_mode = "rich"
        _rich_command_help(command)


def main() -> None:
    import typer.main

    command = typer.main.get_command(app)
    _rich_command_help(command)
    try:
        command(prog_name="hetplan")
    except HetplanError as exc:  # raised outside a command (a sub-app's own machinery)
        if _state["verbose"]:
            raise
        sys.exit(_report(exc))
    except KeyboardInterrupt:
        print("hetplan: interrupted", file=sys.stderr)
        _exit_now(EXIT_INTERRUPTED)
    except SystemExit as exc:
        if exc.code == EXIT_INTERRUPTED:
            _exit_now(EXIT_INTERRUPTED)
        raise


def _exit_now(code: int) -> None:
    """Exit without the interpreter's teardown: a solver's native worker threads may still be running after
    Ctrl-C, and tearing them down aborts the process (SIGABRT) instead of exiting with ``code``. Every file is
    written atomically, so nothing is left half-written."""
    import os

    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
