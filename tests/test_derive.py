"""Stress variants of a trace, checked against hand-computed cases, and ``hetplan trace derive`` end to end."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from hetplan.cli import app
from hetplan.errors import HetplanError
from hetplan.planner.forecast.derive import Derivation, Spikes, Step, derive
from hetplan.planner.catalog.tables import DEFAULT_TRACE
from hetplan.planner.forecast.traces import load_trace


def flat(seconds: int, rate: float = 10.0) -> pd.DataFrame:
    return pd.DataFrame({"second": np.arange(1, seconds + 1), "requests": np.full(seconds, rate)})


def test_scale_keeps_whole_counts_and_the_mean():
    assert derive(flat(100), Derivation(scale=1.5)).requests.tolist() == [15] * 100
    halves = derive(flat(20000, 1.0), Derivation(scale=0.5, seed=7)).requests
    assert set(halves) == {0, 1} and halves.mean() == pytest.approx(0.5, abs=0.02)


def test_spikes_multiply_every_period_after_the_first():
    out = derive(flat(3 * 3600, 1.0), Derivation(spikes=Spikes(4.0, 600, 3600))).requests.to_numpy()
    offset = np.arange(out.size)
    inside = (offset >= 3600) & (offset % 3600 < 600)
    assert (out[inside] == 4).all() and (out[~inside] == 1).all() and inside.sum() == 2 * 600


def test_step_changes_the_level_from_its_time_on():
    out = derive(flat(7200, 10.0), Derivation(step=Step(2.0, 3600))).requests.to_numpy()
    assert (out[:3600] == 10).all() and (out[3600:] == 20).all()


def test_shift_moves_the_pattern_later_and_wraps():
    trace = pd.DataFrame({"second": np.arange(1, 11), "requests": np.arange(10)})
    out = derive(trace, Derivation(shift_s=3)).requests.tolist()
    assert out == [7, 8, 9, 0, 1, 2, 3, 4, 5, 6]


@pytest.mark.parametrize("how, words", [
    (Derivation(scale=0), "scale 0 must be a positive number"),
    (Derivation(spikes=Spikes(4, 600, 300)), "shorter than the period"),
    (Derivation(step=Step(float("nan"), 10)), "step factor nan"),
])
def test_bad_derivations_are_refused(how, words):
    with pytest.raises(HetplanError, match=words):
        derive(flat(100), how)


def test_cli_writes_a_loadable_reproducible_trace(tmp_path):
    runner = CliRunner()
    first, second = tmp_path / "a.csv.gz", tmp_path / "b.csv.gz"
    args = ["trace", "derive", "--trace", "wits", "--spikes", "4x,10m,2h", "--scale", "1.2", "--seed", "3"]
    result = runner.invoke(app, [*args, "--out", str(first), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert runner.invoke(app, [*args, "--out", str(second)]).exit_code == 0
    assert first.read_bytes() == second.read_bytes()  # same options and seed: the same file
    derived, original = load_trace(first), load_trace(DEFAULT_TRACE)
    assert len(derived) == len(original) == summary["seconds"]
    assert derived.requests.sum() == summary["requests_after"] > 1.2 * original.requests.sum()
    for bad, words in ((["--out", str(tmp_path / "x.txt")], "write a .csv or .csv.gz file"),
                       (["--out", str(first), "--spikes", "4x,10m"], "write FACTOR,LENGTH,EVERY"),
                       (["--out", str(first), "--step", "fast,1h"], "cannot read the factor 'fast'")):
        result = runner.invoke(app, ["trace", "derive", *bad])
        assert result.exit_code == 2 and words in result.output, result.output
