from datetime import date

import pytest

from tasks.domain.method_edits import check_edit, merged_billing, stripe_update

TODAY = date(2026, 11, 22)


@pytest.mark.parametrize(
    ("current", "change", "expected"),
    [
        # nothing yet: the change is all there is
        (None, {"name": "Pat"}, {"name": "Pat"}),
        # a field given replaces; the others stay
        ({"name": "Pat", "phone": "1"}, {"phone": "2"}, {"name": "Pat", "phone": "2"}),
        # an address merges field by field, so a new postal code keeps the street
        (
            {"address": {"line1": "1 Main", "city": "X"}},
            {"address": {"city": "Y"}},
            {"address": {"line1": "1 Main", "city": "Y"}},
        ),
        # "" is kept: it clears the field at Stripe
        ({"name": "Pat"}, {"name": ""}, {"name": ""}),
    ],
)
def test_merged_billing(current, change, expected):
    assert merged_billing(current, change) == expected


@pytest.mark.parametrize(
    ("kind", "billing", "month", "year", "expected"),
    [
        (
            "card",
            {"name": "Pat"},
            3,
            2031,
            {"billing_details": {"name": "Pat"}, "card": {"exp_month": 3, "exp_year": 2031}},
        ),
        # a bank account has no card part, whatever the row holds
        ("us_bank_account", {"name": "Pat"}, None, None, {"billing_details": {"name": "Pat"}}),
        # nothing billed yet: only the expiry
        ("card", None, 3, 2031, {"card": {"exp_month": 3, "exp_year": 2031}}),
    ],
)
def test_stripe_update_sends_the_whole_editable_state(kind, billing, month, year, expected):
    assert stripe_update(kind, billing, month, year) == expected


@pytest.mark.parametrize(
    ("month", "year", "ok"),
    [
        (11, 2026, True),  # this month is still good
        (10, 2026, False),  # last month has passed
        (12, 2046, True),  # twenty years ahead
        (1, 2047, False),
    ],
)
def test_a_card_expiry_is_judged_on_the_sellers_day(month, year, ok):
    if ok:
        assert check_edit(None, None, month, year, "card", TODAY).exp_year == year
    else:
        with pytest.raises(Exception, match="expir|too far"):
            check_edit(None, None, month, year, "card", TODAY)
