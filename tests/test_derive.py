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


# Cases the mutation run (tests/README.md) showed were missing.

def test_scale_step_and_spikes_multiply_together():
    how = Derivation(scale=2.0, step=Step(3.0, 1800), spikes=Spikes(5.0, 600, 3600))
    out = derive(flat(2 * 3600, 1.0), how)
    assert list(out.columns) == ["second", "requests"] and out.requests.dtype == np.int64
    r = out.requests.to_numpy()
    assert (r[:1800] == 2).all() and (r[1800:3600] == 6).all()  # scale, then scale × step
    assert (r[3600:4200] == 30).all() and (r[4200:] == 6).all()   # scale × step × spike, in the second period


def test_a_spike_as_long_as_its_period_is_refused():
    with pytest.raises(HetplanError, match="shorter than the period"):
        derive(flat(100), Derivation(spikes=Spikes(2.0, 600, 600)))


@pytest.mark.parametrize("how, text", [
    (Derivation(), "unchanged"),
    (Derivation(scale=1.5), "load ×1.5"),
    (Derivation(scale=2, step=Step(1.5, 21600), spikes=Spikes(4, 600, 7200), shift_s=3600),
     "load ×2, ×1.5 from 21600s on, ×4 spikes of 600s every 7200s, shifted 3600s later"),
])
def test_describe_says_what_was_done(how, text):
    assert how.describe() == text


def test_a_plain_csv_is_written_as_text_and_a_gz_compressed(tmp_path):
    from hetplan.planner.forecast.derive import write_trace

    trace = derive(flat(5, 2.0), Derivation(scale=1.5))
    write_trace(trace, tmp_path / "t.csv")
    write_trace(trace, tmp_path / "t.csv.gz")
    assert (tmp_path / "t.csv").read_text().splitlines() == ["second,requests"] + [f"{s},3" for s in range(1, 6)]
    assert (tmp_path / "t.csv.gz").read_bytes()[:2] == b"\x1f\x8b"
    assert load_trace(tmp_path / "t.csv.gz").requests.tolist() == [3] * 5
