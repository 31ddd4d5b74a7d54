"""Units and range checks at the edge: exact parses, interval ends, and any input parses in range or is refused by name."""

import math

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from hetplan.errors import HetplanError
from hetplan.units import format_duration, parse_accuracy, parse_duration, parse_size_mb


@pytest.mark.parametrize("text, seconds", [("200ms", 0.2), ("0.2s", 0.2), ("1s", 1.0), ("5m", 300.0), ("1h", 3600.0), (" 2 min ", 120.0)])
def test_durations(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text, mb", [("512MB", 512), ("2GiB", 2048), ("1769mb", 1769), ("1GB", 1024), ("1024KiB", 1)])
def test_sizes(text, mb):
    assert parse_size_mb(text) == pytest.approx(mb)


@pytest.mark.parametrize("text, value", [("0.75", 0.75), ("75%", 0.75), ("75", 0.75), ("72.5%", 0.725), (0.7, 0.7)])
def test_accuracies(text, value):
    assert parse_accuracy(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["200", "fast", "200 parsecs", "-5s", "0ms", "", "5m5s", "1e400x"])
def test_bad_durations_name_the_problem(text):
    with pytest.raises(HetplanError) as err:
        parse_duration(text)
    assert repr(text.strip())[1:-1] in str(err.value) or text == ""
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("text", ["512", "2TB", "big", "0MB"])
def test_bad_sizes(text):
    with pytest.raises(HetplanError):
        parse_size_mb(text)


@pytest.mark.parametrize("text", ["150%", "0", "abc", "0.5x"])
def test_bad_accuracies(text):
    with pytest.raises(HetplanError):
        parse_accuracy(text)


@given(st.floats(min_value=1e-3, max_value=1e6, allow_nan=False), st.sampled_from(["ms", "s", "m", "h"]))
def test_duration_round_trip(value, unit):
    factor = {"ms": 1e-3, "s": 1, "m": 60, "h": 3600}[unit]
    assume(value * factor <= 366 * 86400)  # beyond a year is refused (test_durations_beyond_a_year_…)
    parsed = parse_duration(f"{value!r}{unit}")
    assert math.isclose(parsed, value * factor, rel_tol=1e-12)
    assert math.isclose(parse_duration(format_duration(parsed)), parsed, rel_tol=1e-5)


@given(st.text(max_size=12))
def test_any_text_parses_or_fails_cleanly(text):
    try:
        assert parse_duration(text) > 0
    except HetplanError as exc:
        assert str(exc)


def test_atomic_write_leaves_no_partial_file_and_normal_permissions(tmp_path):
    import os

    from hetplan.fileio import write_text_atomic

    target = tmp_path / "out.json"
    write_text_atomic(target, "first")
    assert target.read_text() == "first" and (target.stat().st_mode & 0o777) == (0o666 & ~_umask())

    with pytest.raises(TypeError):
        write_text_atomic(target, 42)  # fails while writing
    assert target.read_text() == "first" and os.listdir(tmp_path) == ["out.json"]


def _umask():
    import os

    mask = os.umask(0)
    os.umask(mask)
    return mask


@pytest.mark.parametrize("text", ["1e309ms", "1e400s", "9000h", "1e30m"])
def test_durations_beyond_a_year_are_refused_with_the_bound(text):
    with pytest.raises(HetplanError) as err:
        parse_duration(text)
    assert "beyond a year" in str(err.value) and text in str(err.value)
    assert parse_duration("8784h") == 366 * 86400  # the bound itself is allowed


TYPED = st.text(max_size=24) | st.from_regex(r"\s*[0-9.e+-]{1,8}\s*[a-zA-Z%]{0,4}\s*", fullmatch=True)


@pytest.mark.parametrize("parse, high", [(parse_duration, 366 * 86400), (parse_size_mb, 1024.0 ** 3),
                                         (parse_accuracy, 1.0)])
@given(text=st.floats(allow_nan=True, allow_infinity=True).map(str) | TYPED)
def test_any_typed_value_parses_into_its_bounds_or_says_why_in_one_line(parse, high, text):
    """Durations (a year and a day), sizes (an exbibyte, in MB) and accuracies (a fraction): a typed newline is
    shown escaped, never splitting the one-line error."""
    try:
        value = parse(text)
    except HetplanError as exc:
        assert "\n" not in str(exc)
        return
    assert math.isfinite(value) and 0 < value <= high


@given(st.text(max_size=24))
def test_any_name_counts_text_parses_to_bounded_whole_counts_or_says_why_in_one_line(text):
    try:
        counts = units.name_counts(text, "--quota")
    except HetplanError as exc:
        assert "--quota" in str(exc) and "\n" not in str(exc)
        return
    assert all(isinstance(n, int) and 0 <= n <= units.MAX_COUNT for n in counts.values())


def test_a_value_with_a_newline_is_shown_escaped():
    with pytest.raises(HetplanError) as exc:
        parse_duration("5\nxyz")
    assert "'5\\nxyz'" in str(exc.value) and "\n" not in str(exc.value)
    with pytest.raises(HetplanError, match="write e.g. 200ms"):
        parse_duration(" 200\n")


# --- the range checks every command shares (units.in_range and its named kinds) ---------------------------------

from hetplan import units  # noqa: E402

KINDS = {  # check → (low, high, low_open, high_open)
    units.fraction: (0.0, 1.0, True, False),
    units.percentile: (0.5, 1.0, False, True),
    units.gap: (0.0, 1.0, False, True),
    units.money: (0.0, units.MAX_MONEY_USD, True, False),
    units.hours: (0.0, units.MAX_DURATION_S / 3600, True, False),
}
ANY_VALUE = (st.floats(allow_nan=True, allow_infinity=True) | st.integers(-10**12, 10**12) | st.text(max_size=8)
             | st.none())


@pytest.mark.parametrize("check", list(KINDS), ids=lambda c: c.__name__)
@given(value=ANY_VALUE)
def test_any_value_is_in_its_interval_or_refused_naming_option_and_interval(check, value):
    low, high, low_open, high_open = KINDS[check]
    try:
        number = check(value, "--opt")
    except HetplanError as exc:
        text = str(exc)
        assert "--opt" in text and "\n" not in text
        interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        assert interval in text or "write a number" in text
        return
    assert math.isfinite(number)
    assert (number > low if low_open else number >= low) and (number < high if high_open else number <= high)


@pytest.mark.parametrize("check, value, ok", [
    (units.fraction, 1.0, True), (units.fraction, 0.0, False), (units.fraction, 1.0000001, False),
    (units.percentile, 0.5, True), (units.percentile, 1.0, False), (units.percentile, 0.999, True),
    (units.gap, 0.0, True), (units.gap, 1.0, False), (units.money, 0.01, True), (units.money, 0.0, False),
    (units.hours, 8784, True), (units.hours, 8784.01, False),
])
def test_interval_ends(check, value, ok):
    if ok:
        assert check(value, "--opt") == value
    else:
        with pytest.raises(HetplanError, match="must be in"):
            check(value, "--opt")


@given(value=ANY_VALUE)
def test_counts_are_whole_numbers_in_range_or_refused(value):
    try:
        number = units.count(value, "--n", minimum=1, maximum=100)
    except HetplanError as exc:
        assert "--n" in str(exc)
        return
    assert isinstance(number, int) and 1 <= number <= 100 and number == float(value)


@pytest.mark.parametrize("value, message", [(2.5, "whole number"), (0, r"\[1, 100\]"), (101, r"\[1, 100\]")])
def test_count_messages(value, message):
    with pytest.raises(HetplanError, match=message):
        units.count(value, "--n", minimum=1, maximum=100)


@pytest.mark.parametrize("parse, option, high", [(units.parse_factor, "--spikes", units.MAX_FACTOR),
                                                (units.parse_fraction, "--threshold", 1.0)])
@given(text=st.text(max_size=16))
def test_typed_factors_and_fractions_parse_to_a_bounded_positive_number_or_are_refused(parse, option, high, text):
    try:
        value = parse(text, option)
    except HetplanError as exc:
        assert option in str(exc) and "\n" not in str(exc)
        return
    assert math.isfinite(value) and 0 < value <= high


@pytest.mark.parametrize("text, value", [("4x", 4.0), ("1.5", 1.5), (" 2X ", 2.0)])
def test_factors(text, value):
    assert units.parse_factor(text, "--spikes") == value


@pytest.mark.parametrize("text, high, value", [("20%", 1.0, 0.2), ("0.2", 1.0, 0.2), ("150%", 10.0, 1.5)])
def test_fractions(text, high, value):
    assert units.parse_fraction(text, "--threshold", high=high) == pytest.approx(value)


def test_name_lists_and_counts():
    assert units.split_names(" a, b,,c ") == ("a", "b", "c") and units.split_names("") is None
    assert units.name_counts("c5.large=3,p3.2xlarge=0", "--quota") == {"c5.large": 3, "p3.2xlarge": 0}
    for bad in ("c5.large", "=3", "c5.large=-1", "c5.large=1.5", "c5.large=99999999999"):
        with pytest.raises(HetplanError, match="--quota"):
            units.name_counts(bad, "--quota")


@pytest.mark.parametrize("field, value, option", [
    ("budget_usd", -5.0, "--budget"), ("budget_usd", float("inf"), "--budget"), ("gap", float("nan"), "--gap"),
    ("lambda_concurrency", -1, "--lambda-concurrency"), ("load_scale", 1e300, "--load-scale"),
    ("hours", -1.0, "--hours"), ("max_utilization", 2.0, "--max-utilization"), ("percentile", 1.0, "--percentile"),
    ("quotas", {"c5.large": -2}, "--quota c5.large"), ("time_limit_s", 0.0, "--time-limit"),
])
def test_a_plan_request_out_of_range_is_refused_before_any_work(field, value, option):
    import dataclasses

    from hetplan.planner.optimize.workflow import PlanRequest, check_request

    request = dataclasses.replace(PlanRequest(slo_s=0.2), **{field: value})
    with pytest.raises(HetplanError) as err:
        check_request(request)
    assert str(err.value).startswith(option)
    check_request(PlanRequest(slo_s=0.2))  # the defaults pass


# Cases the mutation run (tests/README.md) showed were missing: each kills a surviving mutant of units.py.

@pytest.mark.parametrize("seconds, text", [(0.2, "200ms"), (1, "1s"), (59, "59s"), (60, "1m"), (90, "90s"),
                                           (3599, "3599s"), (3600, "1h"), (5400, "90m"), (7200, "2h")])
def test_format_duration_picks_the_largest_whole_unit(seconds, text):
    assert format_duration(seconds) == text


@pytest.mark.parametrize("text, value", [("1", 1.0), ("100%", 1.0), ("1.5", 0.015), ("2", 0.02)])
def test_accuracy_one_is_a_fraction_and_above_one_is_percent(text, value):
    assert parse_accuracy(text) == pytest.approx(value)


@pytest.mark.parametrize("parse, text, word", [(parse_accuracy, "abc", "accuracy"), (parse_accuracy, "150%", "accuracy"),
                                               (parse_duration, "abc", "duration"), (parse_size_mb, "abc", "size")])
def test_parse_errors_name_what_was_read_and_give_an_example(parse, text, word):
    with pytest.raises(HetplanError) as err:
        parse(text)
    assert word in str(err.value) and text in str(err.value)


def test_a_zero_fraction_is_refused_and_a_percentage_is_divided():
    with pytest.raises(HetplanError, match=r"--threshold 0 must be in \(0, 1\], e.g. 0.2 or 20%"):
        units.parse_fraction("0%", "--threshold")
    assert units.parse_fraction("100%", "--threshold") == 1.0
    with pytest.raises(HetplanError, match="e.g. 10"):
        units.count(-1, "--n")
