"""Resource quantities as apimachinery's resource.Quantity parses and prints them.

The grammar is the one in k8s.io/apimachinery/pkg/api/resource/quantity.go; printing follows
Quantity.String's canonical form (so "0.5" is stored as "500m" and 1024Mi as "1Gi").
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

_QUANTITY = re.compile(
    r"^(?P<number>[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))"
    r"(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?[0-9]+)?$"
)
_BINARY = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
QUANTITY_ERROR = "quantities must match the regular expression " + repr(
    "^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"
)
"""The API server's message for a malformed quantity (resource.ErrFormatWrong)."""


class QuantityError(ValueError):
    """Not a quantity."""


def parse(value: Any) -> tuple[Decimal, str]:
    """(value, format) where format is 'BinarySI', 'DecimalSI' or 'DecimalExponent'."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise QuantityError(QUANTITY_ERROR)
    match = _QUANTITY.match(str(value).strip() if isinstance(value, str) else repr(value))
    if match is None:
        raise QuantityError(QUANTITY_ERROR)
    try:
        number = Decimal(match["number"])
    except InvalidOperation as error:
        raise QuantityError(QUANTITY_ERROR) from error
    suffix = match["suffix"] or ""
    if suffix in _BINARY:
        return number * (Decimal(1024) ** _BINARY[suffix]), "BinarySI"
    if suffix[:1] in ("e", "E"):
        return number.scaleb(int(suffix[1:])), "DecimalExponent"
    return number.scaleb(_DECIMAL[suffix]), "DecimalSI"


def value(quantity: Any) -> float:
    """A quantity's number ('500m' → 0.5, '16Gi' → 17179869184.0)."""
    return float(parse(quantity)[0])


def canonical(quantity: Any) -> str:
    """Quantity.String(): the form the API server stores and returns."""
    amount, form = parse(quantity)
    if amount == 0:
        return "0"
    sign = "-" if amount < 0 else ""
    amount = abs(amount)
    if form == "BinarySI" and (amount != amount.to_integral_value() or amount < 1024):
        form = "DecimalSI"
    if form == "BinarySI":
        whole = int(amount)
        for suffix, power in sorted(_BINARY.items(), key=lambda item: -item[1]):
            if whole % (1024**power) == 0:
                return f"{sign}{whole // 1024**power}{suffix}"
        return f"{sign}{whole}"
    # Round up to nano units, then the largest exponent (a multiple of 3) with a whole mantissa.
    nanos = (amount.scaleb(9)).to_integral_value(rounding="ROUND_CEILING")
    exponent = -9
    while exponent < 18 and nanos % 1000 == 0:
        nanos //= 1000
        exponent += 3
    if form == "DecimalExponent":
        return f"{sign}{nanos}" + (f"e{exponent}" if exponent else "")
    suffix = next(name for name, power in _DECIMAL.items() if power == exponent)
    return f"{sign}{nanos}{suffix}"


def is_whole(quantity: Any) -> bool:
    amount, _ = parse(quantity)
    return amount == amount.to_integral_value()
