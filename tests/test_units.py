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


@given(st.text(max_size=24))
def test_any_duration_text_parses_to_a_finite_bounded_value_or_says_why(text):
    try:
        value = parse_duration(text)
    except HetplanError:
        return
    assert math.isfinite(value) and 0 < value <= 366 * 86400


@given(st.floats(allow_nan=True, allow_infinity=True).map(str) | st.text(max_size=12))
def test_any_accuracy_is_a_fraction_in_0_1_or_refused(text):
    try:
        value = parse_accuracy(text)
    except HetplanError:
        return
    assert math.isfinite(value) and 0 < value <= 1
