"""Go duration strings (`2160h`, `90m`, `1h30m`, `30s`), as Kubernetes and cert-manager write them.

Called by the models (`Certificate.duration`, `renewBefore`, `Issuer.ca.maxDuration`) to check
and read what users wrote, and by the operator to print durations back. The grammar is Go's
`time.ParseDuration`: an optional sign, then one or more decimal numbers each followed by a
unit (`ns`, `us`/`µs`, `ms`, `s`, `m`, `h`); a bare `0` is allowed. It is the same grammar the
API server's CEL `duration()` accepts, so a value this module accepts is one the CRD's rules
can compare. Python's `timedelta` holds microseconds: finer values are refused, not rounded.
"""

from __future__ import annotations

import datetime
import re

# Units in nanoseconds. Go accepts both U+00B5 (micro sign) and U+03BC (Greek mu) for µs.
_NANOS: dict[str, int] = {
    "ns": 1,
    "us": 1_000,
    "\u00b5s": 1_000,
    "\u03bcs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}
_MICROS_PER_MINUTE = 60_000_000
_MICROS_PER_HOUR = 3_600_000_000

_TERM = re.compile("([0-9]+(?:\\.[0-9]+)?)(ns|us|\u00b5s|\u03bcs|ms|s|m|h)")

# The regular expression the CRD schema uses for duration fields: the same terms as _TERM, in
# syntax RE2 (the API server), CEL string literals and Python read alike: the µ signs are
# literal characters and the dot is `[.]`, so no backslash needs escaping anywhere.
# Only non-negative values: a negative lifetime has no meaning in a Certificate.
PATTERN = "^([0-9]+([.][0-9]+)?(ns|us|\u00b5s|\u03bcs|ms|s|m|h))+$"


def parse(text: str) -> datetime.timedelta:
    """Parse a Go duration string into a timedelta.

    ValueError says what is wrong: `'90' has no unit`, `'1d': unknown unit 'd'`, etc.
    """
    if not isinstance(text, str):
        raise TypeError(f"duration must be a string, got {type(text).__name__}")
    original = text
    if text == "":
        raise ValueError("empty duration (write e.g. '2160h', '90m' or '1h30m')")
    sign = 1
    if text[0] in "+-":
        sign = -1 if text[0] == "-" else 1
        text = text[1:]
    if text == "0":
        return datetime.timedelta(0)
    if text == "":
        raise ValueError(f"invalid duration {original!r}: a sign alone is not a duration")
    total_ns = 0
    pos = 0
    while pos < len(text):
        match = _TERM.match(text, pos)
        if match is None:
            raise ValueError(_explain(original, text[pos:]))
        number, unit = match.groups()
        total_ns += _to_ns(number, unit)
        pos = match.end()
    if total_ns % 1000:
        raise ValueError(
            f"invalid duration {original!r}: finer than a microsecond is not supported"
        )
    return sign * datetime.timedelta(microseconds=total_ns // 1000)


def _to_ns(number: str, unit: str) -> int:
    whole, _dot, frac = number.partition(".")
    scale = _NANOS[unit]
    ns = int(whole or "0") * scale
    if frac:
        # Exact decimal arithmetic: no float rounding of e.g. "0.1s".
        ns += int(frac) * scale // 10 ** len(frac)
    return ns


def _explain(original: str, rest: str) -> str:
    number = re.match(r"[0-9]*\.?[0-9]*", rest)
    digits = number.group(0) if number else ""
    after = rest[len(digits) :]
    if digits in ("", "."):
        return f"invalid duration {original!r}: expected a number at {rest!r}"
    if digits.endswith("."):
        return f"invalid duration {original!r}: {digits!r} needs digits after the decimal point"
    if after == "":
        return (
            f"invalid duration {original!r}: {digits!r} has no unit "
            "(use h, m, s, ms, us or ns, e.g. '2160h')"
        )
    if after[0] == ".":
        return f"invalid duration {original!r}: a second decimal point at {after!r}"
    unit = re.match(r"[^0-9.]+", after)
    found = unit.group(0) if unit else after
    return (
        f"invalid duration {original!r}: unknown unit {found!r} "
        "(use h, m, s, ms, us or ns; days are written in hours, e.g. '720h' for 30 days)"
    )


def format(value: datetime.timedelta) -> str:
    """Format a timedelta as the shortest Go duration string: `2160h`, `1h30m`, `30s`, `1.5s`.

    Zero components are left out (Go's `String()` would write `2160h0m0s`; both parse alike).
    """
    micros = (value.days * 86_400 + value.seconds) * 1_000_000 + value.microseconds
    if micros == 0:
        return "0s"
    sign = "-" if micros < 0 else ""
    micros = abs(micros)
    if micros < 1_000:
        return f"{sign}{micros}us"
    if micros < 1_000_000:
        return f"{sign}{_decimal(micros, 1_000)}ms"
    hours, micros = divmod(micros, _MICROS_PER_HOUR)
    minutes, micros = divmod(micros, _MICROS_PER_MINUTE)
    out = sign
    if hours:
        out += f"{hours}h"
    if minutes:
        out += f"{minutes}m"
    if micros:
        out += f"{_decimal(micros, 1_000_000)}s"
    return out


def _decimal(amount: int, unit: int) -> str:
    whole, frac = divmod(amount, unit)
    if not frac:
        return str(whole)
    digits = len(str(unit)) - 1
    return f"{whole}.{frac:0{digits}d}".rstrip("0")
