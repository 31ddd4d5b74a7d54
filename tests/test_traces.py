"""Trace loading (every format, every bad input) and per-window statistics."""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hetplan.errors import HetplanError
from hetplan.planner.forecast.traces import find_gaps, load_trace, window_stats


def write(tmp_path, text, name="t.csv"):
    path = tmp_path / name
    if name.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def trace_of(seconds, requests):
    return pd.DataFrame({"second": np.asarray(seconds, dtype=np.int64), "requests": np.asarray(requests, float)})


# --- formats ---------------------------------------------------------------------------------------------

def test_shipped_format_gzipped_keeps_gaps(tmp_path):
    path = write(tmp_path, "second,requests\n1,10\n2,12.5\n5,0\n", "t.csv.gz")
    trace = load_trace(path)
    assert list(trace.columns) == ["second", "requests"]
    assert trace["second"].dtype == np.int64 and trace["requests"].dtype == float
    assert trace["second"].tolist() == [1, 2, 5]  # 3 and 4 stay missing
    assert trace["requests"].tolist() == [10.0, 12.5, 0.0]
    assert find_gaps(trace).to_dict("records") == [{"start_s": 3, "length_s": 2}]


def test_blank_lines_whitespace_and_comments_are_ignored(tmp_path):
    path = write(tmp_path, "# made by hand\nsecond, requests\n\n1, 3\n2 ,4\n\n")
    assert load_trace(path)["requests"].tolist() == [3.0, 4.0]


def test_inferall_headerless_four_columns_reads_num_tasks(tmp_path):
    path = write(tmp_path, "1,468,0,234\n2,649,2,325\n")
    assert load_trace(path).to_dict("list") == {"second": [1, 2], "requests": [234.0, 325.0]}


def test_per_request_timestamps_count_per_second_with_zeros(tmp_path):
    path = write(tmp_path, "100.2\n100.7\n101.1\n103.9\n")
    trace = load_trace(path)
    # counted from the first arrival; the quiet second in between was observed, so it is 0, not a gap
    # offsets 0, 0.5, 0.9, 3.7 -> three requests in second 0, none in 1 and 2, one in 3
    assert trace.to_dict("list") == {"second": [0, 1, 2, 3], "requests": [3.0, 0.0, 0.0, 1.0]}


def test_timestamps_exact_counts(tmp_path):
    path = write(tmp_path, "timestamp\n10.0\n10.5\n11.0\n13.2\n")
    trace = load_trace(path)
    assert trace.to_dict("list") == {"second": [0, 1, 2, 3], "requests": [2.0, 1.0, 0.0, 1.0]}


def test_interarrivals_need_header_or_format(tmp_path):
    gaps = "0.5\n0.5\n0.5\n0.5\n0.5\n"
    by_header = load_trace(write(tmp_path, "interarrival\n" + gaps, "a.csv"))
    by_format = load_trace(write(tmp_path, gaps, "b.csv"), format="interarrivals")
    # arrivals at 0.5, 1.0, ..., 2.5 -> counted from the first arrival (0.5): offsets 0, .5, 1, 1.5, 2
    expected = {"second": [0, 1, 2], "requests": [2.0, 2.0, 1.0]}
    assert by_header.to_dict("list") == expected
    assert by_format.to_dict("list") == expected
    # without either, the documented rule reads one column as timestamps
    assert load_trace(write(tmp_path, gaps, "c.csv"))["requests"].sum() == 5


def test_timestamped_csv_any_pandas_time_aggregated_per_second(tmp_path):
    text = ("timestamp,requests\n2024-05-01 12:00:00,3\n2024-05-01T12:00:00.500,2\n"
            "2024-05-01 12:00:01,1\n2024-05-01T12:00:04Z,7\n")
    trace = load_trace(write(tmp_path, text))
    assert trace.to_dict("list") == {"second": [0, 1, 4], "requests": [5.0, 1.0, 7.0]}


def test_timestamped_csv_with_numeric_times(tmp_path):
    trace = load_trace(write(tmp_path, "timestamp,requests\n1000.0,1\n1000.9,1\n1002.5,4\n"))
    assert trace.to_dict("list") == {"second": [0, 2], "requests": [2.0, 4.0]}


# --- bad input: each names the file and the line ---------------------------------------------------------

@pytest.mark.parametrize("text, match", [
    ("second,requests\n1,3\n2,abc\n", r"t\.csv line 3: requests 'abc' is not a number"),
    ("second,requests\n1,3\n2,nan\n", r"t\.csv line 3: requests is NaN"),
    ("second,requests\n1,3\n2,\n", r"t\.csv line 3: requests is missing"),
    ("second,requests\n1,3\n2,inf\n", r"t\.csv line 3: requests is not finite"),
    ("second,requests\n1,3\n2,-1\n", r"t\.csv line 3: requests -1 is negative"),
    ("second,requests\n1,3\n3,1\n2,1\n", r"t\.csv line 4: second 2 comes before 3 on line 3.*sorted"),
    ("second,requests\n1,3\n1,1\n", r"t\.csv line 3: second 1 repeats"),
    ("second,requests\n1,3\nx,1\n", r"t\.csv line 3: second 'x' is not a number"),
    ("second,requests\n1.5,3\n", r"t\.csv line 2: second 1.5 is not a whole number"),
    ("second,requests\n-1,3\n", r"t\.csv line 2: second -1 is negative"),
    ("second,requests\n", r"t\.csv: the trace has no data rows"),
    ("", r"t\.csv: the trace file is empty"),
    ("\n\n", r"t\.csv: the trace file is empty"),
    ("secs,reqs\n1,2\n", r"t\.csv line 1: unknown header 'secs,reqs'"),
    ("1.0\n3.0\n2.0\n", r"t\.csv line 3: timestamp 2 comes before 3 on line 2"),
    ("1.0\n\n\nfoo\n", r"t\.csv line 4: timestamp 'foo' is not a number"),
    ("interarrival\n0.1\n-0.2\n", r"t\.csv line 3: inter-arrival time -0.2 is negative"),
    ("timestamp,requests\n2024-01-01 00:00:05,1\n2024-01-01 00:00:01,1\n",
     r"t\.csv line 3: timestamp .* comes before .*sorted"),
    ("timestamp,requests\n2024-01-01,1\nyesterday-ish,1\n",
     r"t\.csv line 3: timestamp 'yesterday-ish' is not a time"),
    ("timestamp,requests\n2024-01-01,1\n2024-01-02,-4\n", r"t\.csv line 3: requests -4 is negative"),
    ("1,2,3\n", r"t\.csv: cannot tell the trace format of a headerless file with 3 columns"),
    ("second,requests\n1,3\n2\n", r"t\.csv line 3: requests is missing"),
    ("second,requests\n1,3\n2,4,5\n", r"t\.csv line 3: more than the 2 field"),
    ("1,3\n2,4\n3,4,5,6\n", r"t\.csv line 3: more than the 2 field"),
])
def test_bad_input_is_a_one_line_error_naming_file_and_line(tmp_path, text, match):
    with pytest.raises(HetplanError, match=match):
        load_trace(write(tmp_path, text))


def test_missing_file_and_unknown_format(tmp_path):
    with pytest.raises(HetplanError, match="not found"):
        load_trace(tmp_path / "nope.csv")
    with pytest.raises(HetplanError, match="did you mean 'timestamps'"):
        load_trace(write(tmp_path, "1\n"), format="timestamp")


def test_format_with_wrong_column_count(tmp_path):
    with pytest.raises(HetplanError, match="format 'seconds' needs 2 column"):
        load_trace(write(tmp_path, "1.0\n2.0\n"), format="seconds")


def test_corrupt_gzip_is_a_clean_error(tmp_path):
    path = tmp_path / "t.csv.gz"
    path.write_bytes(b"not gzip at all")
    with pytest.raises(HetplanError, match="t.csv.gz: cannot read"):
        load_trace(path)


# --- windows ---------------------------------------------------------------------------------------------

def test_window_stats_known_values():
    trace = trace_of(range(10, 16), [1, 2, 3, 4, 5, 6])
    stats = window_stats(trace, 3, quantile=0.5)
    assert stats.columns.tolist() == ["window", "start_s", "end_s", "mean_rps", "peak_rps", "q_rps",
                                      "seconds_observed", "requests"]
    assert stats["window"].tolist() == [0, 1]
    assert stats["start_s"].tolist() == [10, 13] and stats["end_s"].tolist() == [13, 16]
    assert stats["mean_rps"].tolist() == [2.0, 5.0]
    assert stats["peak_rps"].tolist() == [3.0, 6.0]
    assert stats["q_rps"].tolist() == [2.0, 5.0]
    assert stats["requests"].tolist() == [6.0, 15.0]
    assert stats["seconds_observed"].tolist() == [3, 3]


def test_window_duration_string_and_partial_last_window():
    trace = trace_of(range(0, 150), np.ones(150))
    stats = window_stats(trace, "1m")
    assert stats["end_s"].tolist() == [60, 120, 150]
    assert stats["seconds_observed"].tolist() == [60, 60, 30]
    assert stats["mean_rps"].tolist() == [1.0, 1.0, 1.0]


def test_gaps_excluded_do_not_count_as_zero():
    trace = trace_of([0, 1, 3], [10, 10, 10])  # second 2 missing
    stats = window_stats(trace, 4)
    assert stats.loc[0, "mean_rps"] == 10.0 and stats.loc[0, "seconds_observed"] == 3
    assert stats.loc[0, "requests"] == 30.0


def test_gaps_interpolated_linearly():
    trace = trace_of([0, 4], [0, 8])  # 1..3 filled as 2, 4, 6
    stats = window_stats(trace, 5, quantile=1.0, gaps="interpolate")
    assert stats.loc[0, "requests"] == 20.0 and stats.loc[0, "mean_rps"] == 4.0
    assert stats.loc[0, "seconds_observed"] == 2


def test_window_entirely_in_a_gap_is_named_unless_interpolated():
    trace = trace_of([0, 1, 9], [4, 4, 8])
    with pytest.raises(HetplanError, match=r"window 1 \(seconds 3\.\.5\) has no data"):
        window_stats(trace, 3)
    stats = window_stats(trace, 3, gaps="interpolate")
    assert stats.loc[1, "seconds_observed"] == 0
    assert stats.loc[1, "mean_rps"] == pytest.approx(np.mean([4 + 4 / 8 * k for k in (2, 3, 4)]))


@pytest.mark.parametrize("kwargs, match", [
    ({"window_s": 0.5}, "whole number of seconds"),
    ({"window_s": 2.5}, "whole number of seconds"),
    ({"window_s": "5"}, "no unit"),
    ({"window_s": 3, "quantile": 1.5}, "between 0 and 1"),
    ({"window_s": 3, "gaps": "fill"}, "unknown gap mode"),
])
def test_window_stats_bad_arguments(kwargs, match):
    with pytest.raises(HetplanError, match=match):
        window_stats(trace_of([0, 1], [1, 1]), **kwargs)


def test_empty_trace_has_no_windows():
    with pytest.raises(HetplanError, match="empty"):
        window_stats(trace_of([], []), 3)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 1000), min_size=1, max_size=200), st.integers(1, 50),
       st.floats(0, 1))
def test_window_invariants(counts, width, q):
    trace = trace_of(range(len(counts)), counts)
    stats = window_stats(trace, width, quantile=q)
    assert stats["requests"].sum() == pytest.approx(sum(counts))
    assert stats["seconds_observed"].sum() == len(counts)
    assert (stats["mean_rps"] <= stats["peak_rps"] + 1e-9).all()
    assert (stats["q_rps"] <= stats["peak_rps"] + 1e-9).all()
    assert (stats["end_s"] - stats["start_s"] == stats["seconds_observed"]).all()


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(0, 100, allow_nan=False), min_size=1, max_size=100))
def test_roundtrip_shipped_format(tmp_path_factory, rates):
    path = tmp_path_factory.mktemp("rt") / "t.csv.gz"
    trace = trace_of(np.arange(len(rates)) * 2, rates)  # every other second missing
    path.write_bytes(gzip.compress(trace.to_csv(index=False).encode()))
    back = load_trace(path)
    pd.testing.assert_frame_equal(back, trace)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(0, 50, allow_nan=False), min_size=1, max_size=200))
def test_timestamps_and_interarrivals_count_every_request(tmp_path_factory, values):
    folder = tmp_path_factory.mktemp("arrivals")
    times = np.sort(np.asarray(values)) + 1000.0
    stamps = folder / "stamps.txt"
    stamps.write_text("".join(f"{t!r}\n" for t in times))
    trace = load_trace(stamps)
    assert trace["requests"].sum() == len(times)
    assert trace["second"].tolist() == list(range(len(trace)))  # every second observed, no gaps
    expected = np.bincount(np.floor(times - times[0]).astype(int))
    assert trace["requests"].tolist() == expected.tolist()
    gaps = folder / "gaps.txt"
    gaps.write_text("interarrival\n" + "".join(f"{g!r}\n" for g in np.asarray(values)))
    assert load_trace(gaps)["requests"].sum() == len(values)
