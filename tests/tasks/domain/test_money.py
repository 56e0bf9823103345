"""Formatting integer minor units per currency."""

import pytest

from tasks.domain.money import UnknownCurrency, decimals, format_money


@pytest.mark.parametrize(
    "amount, currency, shown",
    [
        (123456, "usd", "$1,234.56"),
        (5, "usd", "$0.05"),
        (0, "usd", "$0.00"),
        (-123456, "usd", "-$1,234.56"),
        (100000000, "usd", "$1,000,000.00"),
        (1235, "jpy", "¥1,235"),
        (1235, "JPY", "¥1,235"),
        (500000, "krw", "₩500,000"),
        (99, "eur", "€0.99"),
        (120050, "gbp", "£1,200.50"),
        (1000, "cad", "CA$10.00"),
        (1000, "chf", "CHF 10.00"),
        (1234, "kwd", "KWD 1.234"),
        (7, "bhd", "BHD 0.007"),
        (250000, "clp", "CLP 250,000"),
    ],
)
def test_amounts_are_shown_in_the_currency_style(amount, currency, shown):
    assert format_money(amount, currency) == shown


@pytest.mark.parametrize("currency, places", [("usd", 2), ("jpy", 0), ("vnd", 0), ("kwd", 3), ("eur", 2)])
def test_decimals_follow_the_currency(currency, places):
    assert decimals(currency) == places


@pytest.mark.parametrize("amount", [12.5, "1250", True, None])
def test_anything_but_an_int_amount_is_refused(amount):
    with pytest.raises(TypeError):
        format_money(amount, "usd")


@pytest.mark.parametrize("currency", ["", "us", "usdx", "12$", None])
def test_a_malformed_currency_code_is_refused(currency):
    with pytest.raises(UnknownCurrency):
        format_money(100, currency)
