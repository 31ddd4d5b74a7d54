"""CLI fuzzing: the real ``hetplan`` app on generated option values and mutated files. Whatever comes in, the answer is
an exit code from the documented set, no traceback, at most three lines of error, and nothing written on failure.

Marked ``fuzz``: the suite runs each with FUZZ_EXAMPLES examples (small, for CI); ``HETPLAN_FUZZ_EXAMPLES=500 pytest
-m fuzz`` digs deeper.
"""

from __future__ import annotations

import copy
import json
import os

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from typer.testing import CliRunner

from hetplan.cli import app

pytestmark = pytest.mark.fuzz
FUZZ_EXAMPLES = int(os.environ.get("HETPLAN_FUZZ_EXAMPLES", "25"))
DOCUMENTED = {0, 1, 2, 3, 4}
PROFILE = __import__("pathlib").Path(__file__).resolve().parents[1] / "data" / "profiles" / "aws-reference.csv"
FUZZ = settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
runner = CliRunner()


def check(result, written=None) -> None:
    assert result.exit_code in DOCUMENTED, (result.exit_code, result.output[-500:])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    if result.exit_code != 0:
        errors = [line for line in result.output.splitlines() if line.startswith("hetplan:")]
        assert 1 <= len(errors) <= 3, result.output[-500:]
        if written is not None:
            assert not written.exists(), f"{written} written by a failed command"


def fresh(tmp_path):
    """A new folder per hypothesis example (``tmp_path`` is shared by a test's examples)."""
    import tempfile
    from pathlib import Path

    return Path(tempfile.mkdtemp(dir=tmp_path))


@pytest.fixture(scope="module")
def plan(tmp_path_factory) -> dict:
    from hetplan.planner.optimize.workflow import PlanRequest, make_plan

    return make_plan(PlanRequest(slo_s=0.2, hours=0.5, time_limit_s=10)).to_dict()


UNITS = st.sampled_from(["", "ms", "s", "m", "h", "MB", "%", "x", " ", "e", "-", ".", "inf", "nan", "1e309"])
NUMBERISH = st.builds(lambda a, b, c: f"{a}{b}{c}", st.sampled_from(["", "-", "+", "0", "."]),
                      st.one_of(st.integers(-10**6, 10**6).map(str), st.floats(allow_nan=True, allow_infinity=True).map(repr)),
                      UNITS)
VALUES = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(-10**9, 10**9), st.floats(allow_nan=False, allow_infinity=False),
                                st.text(max_size=8)),
                      lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)),
                      max_leaves=5)


@FUZZ
@given(slo=NUMBERISH, window=NUMBERISH, percentile=st.floats(allow_nan=True, allow_infinity=True),
       utilization=st.floats(allow_nan=True, allow_infinity=True), accuracy=NUMBERISH)
def test_solve_options(tmp_path, slo, window, percentile, utilization, accuracy):
    out = fresh(tmp_path) / "plan.json"
    result = runner.invoke(app, ["solve", "--slo", slo, "--window", window, "--percentile", repr(percentile),
                                 "--max-utilization", repr(utilization), "--mean-accuracy", accuracy, "--hours", "0.1",
                                 "--time-limit", "10s", "--out", str(out), "--quiet"])
    check(result, out)


def _paths(value, prefix=()):
    """Every (path, value) inside a JSON value."""
    yield prefix, value
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, prefix + (key,))
    elif isinstance(value, list):
        for k, item in enumerate(value[:3]):
            yield from _paths(item, prefix + (k,))


@FUZZ
@given(data=st.data(), replacement=VALUES)
def test_validate_and_show_on_a_mutated_plan(tmp_path, plan, data, replacement):
    paths = [p for p, _ in _paths(plan) if p]
    where = data.draw(st.sampled_from(paths))
    mutated = copy.deepcopy(plan)
    node = mutated
    for key in where[:-1]:
        node = node[key]
    if data.draw(st.booleans()) and isinstance(node, dict):
        del node[where[-1]]
    else:
        node[where[-1]] = replacement
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(mutated, allow_nan=True))
    for command in (["validate", str(path), "--json"], ["show", str(path), "--plain"]):
        check(runner.invoke(app, command))


@settings(max_examples=max(5, FUZZ_EXAMPLES // 3), deadline=None,  # each valid trace is a real solve
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(st.one_of(
    st.builds(lambda s, r: f"{s},{r}", st.one_of(st.integers(-5, 5000), st.floats(allow_nan=True, allow_infinity=True)),
              st.one_of(st.integers(-100, 10**6), st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=4))),
    st.text(max_size=12)), max_size=40), header=st.sampled_from(["second,requests", "requests,second", "", "a,b,c"]))
def test_predict_and_solve_on_a_mutated_trace(tmp_path, lines, header):
    tmp_path = fresh(tmp_path)
    trace = tmp_path / "trace.csv"
    trace.write_text("\n".join([header] + lines) + "\n")
    check(runner.invoke(app, ["predict", "--trace", str(trace), "--window", "1m", "--json"]))
    out = tmp_path / "out.json"
    check(runner.invoke(app, ["solve", "--slo", "200ms", "--trace", str(trace), "--window", "1m", "--time-limit", "10s",
                              "--out", str(out), "--quiet"]), out)


@FUZZ
@given(raw=st.binary(max_size=300))
def test_every_file_reader_on_random_bytes(tmp_path, raw):
    tmp_path = fresh(tmp_path)
    for name, command in (("p.json", ["validate"]), ("p.json", ["show"]), ("t.csv", ["predict", "--trace"]),
                          ("f.toml", ["solve", "--fleet"]), ("log.csv", ["observe"])):
        path = tmp_path / name
        path.write_bytes(raw)
        extra = ["--profile", str(PROFILE), "--out", str(tmp_path / "o.csv")] if command == ["observe"] else []
        check(runner.invoke(app, command + [str(path)] + extra), tmp_path / "o.csv" if extra else None)
