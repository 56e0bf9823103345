"""Showing money: integer minor units and a currency code become "$1,234.56" or "¥1,235". Pure."""

from __future__ import annotations

# Currencies whose minor unit is the major unit (Stripe's zero-decimal list): 1235 jpy is ¥1,235.
ZERO_DECIMAL = frozenset(
    {
        "bif",
        "clp",
        "djf",
        "gnf",
        "jpy",
        "kmf",
        "krw",
        "mga",
        "pyg",
        "rwf",
        "ugx",
        "vnd",
        "vuv",
        "xaf",
        "xof",
        "xpf",
    }
)
# Currencies with three decimals (Stripe's three-decimal list): 1234 kwd is KWD 1.234.
THREE_DECIMAL = frozenset({"bhd", "jod", "kwd", "omr", "tnd"})
# Symbols a reader recognises without ambiguity; any other currency is shown with its code ("CHF 12.00").
SYMBOLS = {
    "usd": "$",
    "eur": "€",
    "gbp": "£",
    "jpy": "¥",
    "cad": "CA$",
    "aud": "A$",
    "nzd": "NZ$",
    "mxn": "MX$",
    "inr": "₹",
    "krw": "₩",
    "cny": "CN¥",
    "ils": "₪",
    "php": "₱",
    "vnd": "₫",
}


class UnknownCurrency(ValueError):
    """A currency code that is not three letters."""


def decimals(currency: str) -> int:
    """How many digits of the amount are after the decimal point in this currency."""
    code = _code(currency)
    if code in ZERO_DECIMAL:
        return 0
    return 3 if code in THREE_DECIMAL else 2


def format_money(amount_minor: int, currency: str) -> str:
    """The amount as a person reads it, in one style for every currency: "-$1,234.56", "CHF 10.00"."""
    if isinstance(amount_minor, bool) or not isinstance(amount_minor, int):
        raise TypeError(f"money is an int in minor units, not {type(amount_minor).__name__}")
    code = _code(currency)
    sign = "-" if amount_minor < 0 else ""
    symbol = SYMBOLS.get(code)
    prefix = symbol if symbol else f"{code.upper()} "
    return f"{sign}{prefix}{_digits(abs(amount_minor), decimals(code))}"


def _digits(units: int, places: int) -> str:
    if places == 0:
        return f"{units:,}"
    major, minor = divmod(units, 10**places)
    return f"{major:,}.{minor:0{places}d}"


def _code(currency: str) -> str:
    code = (currency or "").strip().lower()
    if len(code) != 3 or not code.isalpha():
        raise UnknownCurrency(f"{currency!r} is not a three-letter currency code")
    return code
