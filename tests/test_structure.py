"""The house rules, checked on the source: stages import only the stages before them, no import cycle (imports
inside functions included), command modules never import each other, no module over 400 lines, at most six
``.py`` files at the root, the planner never imports mxnet, and no machine-specific path in a committed file.

Each checker is also run on a small hand-made case it must reject, so a checker that cannot fail is caught.
"""

from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path

import hetplan

ROOT = Path(hetplan.__file__).resolve().parent
SKIP = {"tests", "benchmarks", "examples", "data", ".ci-venv", "hetplan.egg-info", "build", ".git"}
STAGES = ("catalog", "forecast", "optimize", "replay", "whatif", "fleet", "deploy")  # planner/<stage>, in dependency order
SHARED = {"hetplan.commands.common", "hetplan.commands.output"}   # what command modules may share
MAX_LINES = 400


def package_files() -> dict[str, Path]:
    """Dotted module name → file, for every module of the installed package (tests, benchmarks, data excluded)."""
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT).parts
        if parts[0] in SKIP or any(p.startswith(".") for p in parts):
            continue
        names = list(parts[:-1]) + ([] if path.name == "__init__.py" else [path.stem])
        out[".".join(["hetplan", *names])] = path
    return out


def imported_modules(path: Path, name: str, known: set[str]) -> set[str]:
    """hetplan modules that ``path`` imports anywhere (module level or inside functions)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in known}
    return {m for m in found if m in known and m != name}


def import_graph() -> dict[str, set[str]]:
    files = package_files()
    known = set(files)
    return {name: imported_modules(path, name, known) for name, path in files.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path [a, b, …, a], or None (depth-first search with colours)."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def stage_of(module: str) -> int | None:
    parts = module.split(".")
    if len(parts) >= 3 and parts[1] == "planner" and parts[2] in STAGES:
        return STAGES.index(parts[2])
    return None


def backward_imports(graph: dict[str, set[str]]) -> list[tuple[str, str]]:
    """(importer, imported) pairs where a stage imports a later stage."""
    return sorted((a, b) for a, targets in graph.items() for b in targets
                  if stage_of(a) is not None and stage_of(b) is not None and stage_of(b) > stage_of(a))


def command_modules(graph) -> set[str]:
    return {m for m in graph if m.startswith("hetplan.commands.") and not any(m == s or m.startswith(s + ".") for s in SHARED)}


def commands_importing_commands(graph) -> list[tuple[str, str]]:
    commands = command_modules(graph)
    return sorted((a, b) for a in commands for b in graph[a] if b in commands)


# --- the checkers bite --------------------------------------------------------------------------------------

def test_the_checkers_reject_hand_made_violations():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    graph = {"hetplan.planner.optimize.x": {"hetplan.planner.replay.y"}, "hetplan.planner.replay.y": set()}
    assert backward_imports(graph) == [("hetplan.planner.optimize.x", "hetplan.planner.replay.y")]
    graph = {"hetplan.commands.a": {"hetplan.commands.b", "hetplan.commands.output.plan"}, "hetplan.commands.b": set(),
             "hetplan.commands.output.plan": set()}
    assert commands_importing_commands(graph) == [("hetplan.commands.a", "hetplan.commands.b")]


def test_imports_inside_functions_count(tmp_path):
    source = tmp_path / "m.py"
    source.write_text("def f():\n    from hetplan.planner.replay import planned\n    from . import sibling\n")
    known = {"hetplan.planner.replay", "hetplan.planner.replay.planned", "hetplan.planner.optimize.sibling"}
    assert imported_modules(source, "hetplan.planner.optimize.m", known) == {
        "hetplan.planner.replay", "hetplan.planner.replay.planned", "hetplan.planner.optimize.sibling"}


# --- the house ---------------------------------------------------------------------------------------------

def test_the_package_is_found_whole():
    graph = import_graph()
    for name in ("hetplan.cli", "hetplan.planner.optimize.model", "hetplan.planner.replay.simulate",
                 "hetplan.commands.plan", "hetplan.commands.output", "hetplan.profiler.runner"):
        assert name in graph
    assert "hetplan.planner.optimize.model" in graph["hetplan.planner.optimize.solve"]


def test_no_import_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, " → ".join(cycle)


def test_stages_import_only_earlier_stages():
    assert backward_imports(import_graph()) == []


def test_the_planner_imports_no_cli_no_profiler_and_no_mxnet():
    files = package_files()
    for name, path in files.items():
        if not name.startswith("hetplan.planner"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        modules = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        modules |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        bad = {m for m in modules if m.split(".")[0] == "mxnet" or m.startswith(("hetplan.cli", "hetplan.commands", "hetplan.profiler"))}
        assert not bad, f"{name} imports {sorted(bad)}"


def test_command_modules_never_import_each_other():
    graph = import_graph()
    assert len(command_modules(graph)) >= 6
    assert commands_importing_commands(graph) == []


def test_no_module_over_400_lines():
    long = {name: n for name, path in package_files().items()
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}


def test_at_most_six_python_files_at_the_root():
    root_files = sorted(p.name for p in ROOT.glob("*.py"))
    assert len(root_files) <= 6, root_files


def _committed_text_files() -> list[Path]:
    try:
        listed = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
        return [ROOT / name for name in listed]
    except (OSError, subprocess.CalledProcessError):  # not a git checkout (an sdist): every file but the skipped
        return [p for p in ROOT.rglob("*") if p.is_file() and not {".git", ".ci-venv"} & set(p.parts)]


MACHINE_PATH = re.compile(r"(?<![\w.])(/home/[a-z_][\w-]*/|/Users/\w+|/root/|/work/|/tmp/pytest-|[A-Z]:\\Users\\)")


def test_no_machine_specific_path_in_a_committed_file():
    assert MACHINE_PATH.search("see /home/alice/hetplan/plan.json") and not MACHINE_PATH.search("data/traces/wits.csv.gz")
    hits = []
    for path in _committed_text_files():
        if path.suffix in (".gz", ".png", ".params", ".rec") or not path.is_file() or path.name == "test_structure.py":
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        hits += [f"{path.relative_to(ROOT)}: {m.group(0)}" for m in MACHINE_PATH.finditer(text)]
    assert hits == []


def test_no_unsafe_calls_on_user_input():
    """No eval/exec, no pickle of files, no shell: every subprocess takes an argument list (README, Security)."""
    pattern = re.compile(r"\b(eval|exec)\(|\bpickle\.|shell\s*=\s*True|os\.system\(|os\.popen\(|yaml\.load\(|marshal\.")
    offenders = [f"{name}:{k + 1}" for name, path in package_files().items()
                 for k, line in enumerate(path.read_text().splitlines()) if pattern.search(line.split("#")[0])]
    assert offenders == []
