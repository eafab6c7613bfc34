"""Money: Decimal amounts in a policy's currency, rounded explicitly.

Amounts are ``decimal.Decimal`` from input to output. Arithmetic runs in
:data:`CONTEXT` (34 significant digits, traps on invalid operations and
division by zero) so no result depends on the caller's thread context.
Results are rounded once, at the end, to the currency's minor unit with the
rounding mode the policy declares; policies may also round explicitly with
``round()``.
"""

from __future__ import annotations

import decimal
from decimal import Decimal

from engine import currency as _currency

CONTEXT = decimal.Context(
    prec=34, rounding=decimal.ROUND_HALF_EVEN,
    traps=[decimal.InvalidOperation, decimal.DivisionByZero, decimal.Overflow])

ROUNDING_MODES = {
    "half_up": decimal.ROUND_HALF_UP,
    "half_even": decimal.ROUND_HALF_EVEN,
    "half_down": decimal.ROUND_HALF_DOWN,
    "up": decimal.ROUND_UP,
    "down": decimal.ROUND_DOWN,
    "ceiling": decimal.ROUND_CEILING,
    "floor": decimal.ROUND_FLOOR,
}



def quantum(currency: str) -> Decimal:
    """The smallest amount of ``currency`` (Decimal('0.01') for USD; ISO 4217 via babel)."""
    return _currency.quantum(currency)


def round_to(value: Decimal, exponent: Decimal, mode: str) -> Decimal:
    """Round ``value`` to the places of ``exponent`` with the named mode (never a negative zero:
    a refund of -0.001 is "0.00", not "-0.00")."""
    result = value.quantize(exponent, rounding=ROUNDING_MODES[mode], context=CONTEXT)
    return result.copy_abs() if result.is_zero() else result


def format_amount(value: Decimal, currency: str) -> str:
    """Plain decimal string with exactly the currency's minor-unit places."""
    return f"{value.quantize(quantum(currency), context=CONTEXT):f}"
