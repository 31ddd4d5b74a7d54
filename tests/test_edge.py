"""Bad input at the edge: numbers that overflow, fractions out of range and paths that cannot be written end
in one line with exit 2, no traceback and nothing written."""

from __future__ import annotations

import os

import pytest
from typer.testing import CliRunner

from hetplan.cli import app
from hetplan.errors import HetplanError
from hetplan.fileio import write_text_atomic

runner = CliRunner()


@pytest.mark.parametrize("args, says", [
    (["--slo", "1e309ms"], "duration '1e309ms' is beyond a year"),
    (["--slo", "200ms", "--window", "1e400s"], "beyond a year"),
    (["--slo", "200ms", "--max-utilization", "2"], "--max-utilization 2 must be in (0, 1]"),
    (["--slo", "200ms", "--max-utilization", "0"], "--max-utilization 0 must be in (0, 1]"),
    (["--slo", "200ms", "--load-scale", "1e309"], "--load-scale inf must be in (0, 1e+06]"),
    (["--slo", "200ms", "--budget", "nan"], "--budget nan must be in (0, 1e+12]"),
    (["--slo", "200ms", "--gap", "nan"], "--gap nan must be in [0, 1)"),
    (["--slo", "200ms", "--lambda-concurrency", "-1"], "--lambda-concurrency -1 must be in [0, 1e+09]"),
    (["--slo", "200ms", "--hours", "-1"], "--hours -1 must be in (0, 8784]"),
])
def test_solve_refuses_out_of_range_numbers_before_any_work(tmp_path, args, says):
    out = tmp_path / "p.json"
    result = runner.invoke(app, ["solve", "--hours", "1", *args, "--out", str(out)])  # a later option wins
    assert result.exit_code == 2, result.output
    assert says in result.output and "Traceback" not in result.output
    assert os.listdir(tmp_path) == []


def test_an_output_that_cannot_be_written_says_so_in_one_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    target = blocker / "plan.json"  # a folder that cannot exist: its parent is a file
    with pytest.raises(HetplanError, match=r"cannot write .*plan\.json: .*file is a file, not a folder"):
        write_text_atomic(target, "{}")
    result = runner.invoke(app, ["solve", "--slo", "200ms", "--hours", "1", "--out", str(target)])
    assert result.exit_code == 2 and "cannot write" in result.output and "Traceback" not in result.output
    result = runner.invoke(app, ["solve", "--slo", "200ms", "--hours", "1", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "it is a folder" in result.output
    assert sorted(os.listdir(tmp_path)) == ["file"]  # no temporary file left anywhere
