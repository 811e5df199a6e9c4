"""The units of service level agreements: percentages ("99.9%"), durations ("200ms", "1.5s",
"2m") and costs per hour ("0.40$/h", "$0.40/h", "12$/day"), parsed with errors users can act on."""

from __future__ import annotations

import re


class UnitError(ValueError):
    """A value that is not in the expected unit; the message gives examples of what is accepted."""


_PERCENT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(us|µs|ms|s|m|h)\s*$")
_COST = re.compile(r"^\s*(?:\$\s*(\d+(?:\.\d+)?)|(\d+(?:\.\d+)?)\s*\$)\s*/\s*(h|hour|d|day|month)\s*$")
_DURATION_SCALE = {"us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_PER_HOUR = {"h": 1.0, "hour": 1.0, "d": 1 / 24, "day": 1 / 24, "month": 1 / 730}


def parse_percent(text: str) -> float:
    """ "99%" -> 0.99; must be above 0 and at most 100."""
    m = _PERCENT.match(str(text))
    if not m:
        raise UnitError(f"{text!r} is not a percentage: write e.g. 99% or 99.9%")
    value = float(m.group(1))
    if not 0 < value <= 100:
        raise UnitError(f"{text!r}: a percentage must be above 0% and at most 100%")
    return value / 100


def parse_duration(text: str) -> float:
    """ "200ms" -> 0.2 seconds."""
    m = _DURATION.match(str(text))
    if not m:
        raise UnitError(f"{text!r} is not a duration: write e.g. 200ms, 1.5s or 2m")
    value = float(m.group(1)) * _DURATION_SCALE[m.group(2)]
    if value <= 0:
        raise UnitError(f"{text!r}: a duration must be positive")
    return value


def parse_cost_per_hour(text: str) -> float:
    """ "0.40$/h" or "$0.40/h" -> 0.40 dollars an hour ("/day" and "/month" are converted)."""
    m = _COST.match(str(text))
    if not m:
        raise UnitError(f"{text!r} is not a cost: write dollars per hour, e.g. 0.40$/h or $0.40/h")
    amount = float(m.group(1) or m.group(2))
    return amount * _PER_HOUR[m.group(3)]


def format_duration(seconds: float) -> str:
    return f"{seconds * 1000:.0f}ms" if seconds < 10 else f"{seconds:.1f}s"


def format_percent(fraction: float) -> str:
    return f"{fraction * 100:.2f}".rstrip("0").rstrip(".") + "%"


def format_cost(per_hour: float) -> str:
    return f"{per_hour:.2f}$/h" if per_hour >= 0.01 else f"{per_hour:.4f}$/h"
