"""Kubernetes resource quantities ("500m", "3Gi", "1.5", "2e3") parsed exactly with Decimal."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

_SUFFIX = {
    "": Decimal(1),
    "m": Decimal("0.001"),
    "u": Decimal("0.000001"),
    "n": Decimal("0.000000001"),
    "k": Decimal(10) ** 3,
    "M": Decimal(10) ** 6,
    "G": Decimal(10) ** 9,
    "T": Decimal(10) ** 12,
    "P": Decimal(10) ** 15,
    "E": Decimal(10) ** 18,
    "Ki": Decimal(2) ** 10,
    "Mi": Decimal(2) ** 20,
    "Gi": Decimal(2) ** 30,
    "Ti": Decimal(2) ** 40,
    "Pi": Decimal(2) ** 50,
    "Ei": Decimal(2) ** 60,
}
_PATTERN = re.compile(r"^([+-]?(?:\d+(?:\.\d*)?|\.\d+))(?:[eE]([+-]?\d+)|(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])?)$")


class QuantityError(ValueError):
    """A string that is not a Kubernetes quantity; the message says what is accepted."""


def parse_quantity(text: str) -> Decimal:
    """Parse a quantity into its value in base units (cores, bytes, ...)."""
    s = str(text).strip()
    m = _PATTERN.match(s)
    if not m:
        raise QuantityError(
            f"{text!r} is not a quantity: write a number with an optional suffix, e.g. 500m, 0.5, 2, 128Mi, 3Gi, 1G"
        )
    number, exponent, suffix = m.groups()
    try:
        value = Decimal(number)
    except InvalidOperation as exc:  # pragma: no cover - the regex already checked
        raise QuantityError(f"{text!r} is not a quantity") from exc
    if exponent is not None:
        return value * (Decimal(10) ** int(exponent))
    return value * _SUFFIX[suffix or ""]


def cpu_millis(text: str) -> int:
    """CPU quantity in millicores, rounded up like Kubernetes ("0.5" -> 500, "100m" -> 100)."""
    value = parse_quantity(text) * 1000
    return int(value.to_integral_value(rounding="ROUND_CEILING"))


def to_bytes(text: str) -> int:
    """Memory/storage quantity in bytes, rounded up."""
    return int(parse_quantity(text).to_integral_value(rounding="ROUND_CEILING"))


def format_bytes(n: int) -> str:
    """Bytes as the shortest exact binary quantity ("1Gi", "512Mi", "1000")."""
    for suffix in ("Ei", "Pi", "Ti", "Gi", "Mi", "Ki"):
        unit = int(_SUFFIX[suffix])
        if n and n % unit == 0:
            return f"{n // unit}{suffix}"
    return str(n)


def format_millis(m: int) -> str:
    """Millicores as Kubernetes prints them ("2", "500m")."""
    return str(m // 1000) if m % 1000 == 0 else f"{m}m"
