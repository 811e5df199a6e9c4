"""SLA units: percentages, durations and costs."""

import pytest

from pinnace.common.units import UnitError, format_percent, parse_cost_per_hour, parse_duration, parse_percent


def test_percent() -> None:
    assert parse_percent("99%") == pytest.approx(0.99)
    assert parse_percent("99.9%") == pytest.approx(0.999)
    assert format_percent(0.999) == "99.9%"
    for bad in ("99", "x%", "0%", "101%", ""):
        with pytest.raises(UnitError):
            parse_percent(bad)


def test_duration() -> None:
    assert parse_duration("200ms") == pytest.approx(0.2)
    assert parse_duration("1.5s") == pytest.approx(1.5)
    assert parse_duration("2m") == 120
    for bad in ("200", "fast", "-1s", "0ms"):
        with pytest.raises(UnitError):
            parse_duration(bad)


def test_cost() -> None:
    assert parse_cost_per_hour("0.40$/h") == pytest.approx(0.40)
    assert parse_cost_per_hour("$0.40/h") == pytest.approx(0.40)
    assert parse_cost_per_hour("24$/day") == pytest.approx(1.0)
    with pytest.raises(UnitError, match="dollars per hour"):
        parse_cost_per_hour("x$/h")
