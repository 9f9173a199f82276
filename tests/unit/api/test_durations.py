"""padlock.api.durations: Go duration strings as users write them in Certificates."""

from __future__ import annotations

import datetime
import re

import pytest

from padlock.api import durations

H = datetime.timedelta(hours=1)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2160h", 2160 * H),
        ("90m", datetime.timedelta(minutes=90)),
        ("1h30m", datetime.timedelta(minutes=90)),
        ("30s", datetime.timedelta(seconds=30)),
        ("1h0m0s", H),  # Go's own String() form
        ("1.5h", datetime.timedelta(minutes=90)),
        ("0.1s", datetime.timedelta(milliseconds=100)),  # exact, no float rounding
        ("250ms", datetime.timedelta(milliseconds=250)),
        ("3us", datetime.timedelta(microseconds=3)),
        ("3\u00b5s", datetime.timedelta(microseconds=3)),
        ("3\u03bcs", datetime.timedelta(microseconds=3)),
        ("2000ns", datetime.timedelta(microseconds=2)),
        ("0", datetime.timedelta(0)),
        ("-1h", -H),
        ("+1h", H),
    ],
)
def test_parse_accepts_go_duration_syntax(text: str, expected: datetime.timedelta) -> None:
    assert durations.parse(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty duration"),
        ("90", "'90' has no unit"),
        ("30d", "unknown unit 'd'"),
        ("1y", "unknown unit 'y'"),
        ("h", "expected a number at 'h'"),
        ("1h ", "expected a number at ' '"),
        (" 1h", "expected a number at ' 1h'"),
        ("-", "a sign alone"),
        ("1ns", "finer than a microsecond"),
        ("1.h", "'1.' needs digits after the decimal point"),
        ("1.5.5s", "a second decimal point at '.5s'"),
    ],
)
def test_parse_refuses_with_a_message_naming_the_problem(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        durations.parse(text)


def test_parse_refuses_non_strings() -> None:
    with pytest.raises(TypeError, match="duration must be a string, got int"):
        durations.parse(3600)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (2160 * H, "2160h"),
        (datetime.timedelta(minutes=90), "1h30m"),
        (datetime.timedelta(seconds=30), "30s"),
        (datetime.timedelta(hours=1, seconds=5), "1h5s"),
        (datetime.timedelta(seconds=1.5), "1.5s"),
        (datetime.timedelta(milliseconds=250), "250ms"),
        (datetime.timedelta(microseconds=1500), "1.5ms"),
        (datetime.timedelta(microseconds=3), "3us"),
        (datetime.timedelta(0), "0s"),
        (-datetime.timedelta(minutes=90), "-1h30m"),
    ],
)
def test_format_writes_the_shortest_go_form(value: datetime.timedelta, text: str) -> None:
    assert durations.format(value) == text


@pytest.mark.parametrize("micros", [1, 999, 1_000, 1_234_567, 5_400_000_000, 7_776_000_000_001])
def test_format_then_parse_is_the_identity(micros: int) -> None:
    value = datetime.timedelta(microseconds=micros)
    assert durations.parse(durations.format(value)) == value


@pytest.mark.parametrize("text", ["2160h", "1h30m", "0.5s", "10\u00b5s", "1h0m0s"])
def test_schema_pattern_accepts_what_parse_accepts(text: str) -> None:
    assert re.fullmatch(durations.PATTERN, text)
    durations.parse(text)


@pytest.mark.parametrize("text", ["90", "30d", "-1h", "1h ", "", "1.h"])
def test_schema_pattern_refuses_what_a_certificate_may_not_say(text: str) -> None:
    assert not re.fullmatch(durations.PATTERN, text)
