"""Mutation testing of one module against its tests, with mutmut (``pip install -e '.[mutation]'``).

    python tests/mutate.py units.py tests/test_units.py
    python tests/mutate.py planner/forecast/derive.py tests/test_derive.py
    python tests/mutate.py planner/optimize/queueing.py tests/test_queueing.py --select "not event_simulation"

mutmut names a mutant by the module path it sees from the file path, and the tests import ``hetplan.…``:
the repository root *is* the package, so mutmut cannot run in place. This script copies the tracked files
into ``<staging>/hetplan/``, writes mutmut's configuration there (the module to mutate; everything else
copied as is; the one test file, narrowed by ``--select``; ``--jobs`` mutants at a time), runs ``mutmut run``
and prints the score and every surviving mutant's diff. The staging folder is temporary unless ``--keep``. Nothing in the repository is
changed. Results are in ``tests/README.md``. Pick tests that run in seconds (``--select`` leaves out the
slow ones): mutmut re-runs them for every mutant.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def stage(folder: Path, module: str, tests: str, select: str | None = None) -> None:
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, check=True, capture_output=True, text=True).stdout.split()
    package = folder / "hetplan"
    for name in files:
        target = package / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target)
    top = sorted({name.split("/")[0] for name in files} - {module})
    also = ", ".join(f'"hetplan/{name}"' for name in top)
    chosen = f', "-k", {json.dumps(select)}' if select else ""
    (folder / "pyproject.toml").write_text(
        "[tool.mutmut]\n"
        f'source_paths = ["hetplan/{module}"]\n'
        f"also_copy = [{also}]\n"
        f'pytest_add_cli_args_test_selection = ["hetplan/{tests}"]\n'
        f'pytest_add_cli_args = ["-p", "no:xdist", "-p", "no:cacheprovider", "-o", "addopts="{chosen}]\n')


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("module", help="the module to mutate, relative to the repository root")
    parser.add_argument("tests", help="the test file that should kill its mutants")
    parser.add_argument("--select", help="a pytest -k expression: the tests of the file that judge the mutants "
                                         "(leave out those too slow to re-run per mutant, and say so)")
    parser.add_argument("--jobs", type=int, default=1, help="mutants tested at once (mutmut --max-children)")
    parser.add_argument("--keep", action="store_true", help="keep the staging folder (its path is printed)")
    args = parser.parse_args()
    if shutil.which("mutmut") is None:
        print("mutmut is not installed: pip install -e '.[mutation]'", file=sys.stderr)
        return 2
    folder = Path(tempfile.mkdtemp(prefix="hetplan-mutate-"))
    try:
        stage(folder, args.module, args.tests, args.select)
        subprocess.run(["mutmut", "run", "--max-children", str(args.jobs)], cwd=folder, stdout=subprocess.DEVNULL, check=False)
        results = subprocess.run(["mutmut", "results", "--all", "true"], cwd=folder, capture_output=True,
                                 text=True).stdout
        status = [line.rsplit(":", 1)[1].strip() for line in results.splitlines() if ":" in line]
        survived = [line.split(":")[0].strip() for line in results.splitlines() if line.strip().endswith("survived")]
        killed = status.count("killed")
        by = args.tests + (f" -k {args.select!r}" if args.select else "")
        print(f"{args.module}: {len(status)} mutants, {killed} killed, {len(survived)} survived "
              f"({100 * killed / max(len(status), 1):.0f}% killed) by {by}")
        for name in survived:
            diff = subprocess.run(["mutmut", "show", name], cwd=folder, capture_output=True, text=True).stdout
            changed = [line for line in diff.splitlines() if line[:1] in "+-" and line[:2] not in ("++", "--")]
            print(f"\n{name}\n" + "\n".join(changed))
        return 0
    finally:
        if args.keep:
            print(f"\nstaging kept in {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
