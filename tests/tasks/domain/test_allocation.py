from datetime import date

import pytest

from tasks.domain.allocation import TAKEN_BACK, OpenInvoice, plan_amount, plan_in_full
from tasks.domain.states import AllocationState

TODAY = date(2026, 11, 22)


def inv(id, due_day, total, settled=0, discount=0, until=None):
    return OpenInvoice(id, f"INV-{id}", date(2026, 11, due_day), total, settled, discount, until)


@pytest.mark.parametrize(
    ("invoices", "expected_lines", "expected_total", "warnings"),
    [
        # plain invoices, paid in due-date order
        ([inv(2, 20, 5_000), inv(1, 10, 3_000)], [(1, 3_000, 0), (2, 5_000, 0)], 8_000, 0),
        # discount taken on or before its last day
        ([inv(1, 30, 10_000, discount=200, until=TODAY)], [(1, 9_800, 200)], 9_800, 0),
        # discount forfeited the day after, with a warning
        ([inv(1, 30, 10_000, discount=200, until=date(2026, 11, 21))], [(1, 10_000, 0)], 10_000, 1),
        # a partly paid invoice owes only the rest and loses its discount
        ([inv(1, 30, 10_000, settled=4_000, discount=200, until=TODAY)], [(1, 6_000, 0)], 6_000, 1),
    ],
)
def test_paying_in_full(invoices, expected_lines, expected_total, warnings):
    plan = plan_in_full(invoices, TODAY)
    assert [(l.invoice_id, l.amount_minor, l.discount_minor) for l in plan.lines] == expected_lines
    assert plan.total_minor == expected_total
    assert plan.credit_minor == 0
    assert len(plan.warnings) == warnings


@pytest.mark.parametrize(
    ("amount", "expected_lines"),
    [
        (2_500, [(1, 2_500)]),
        (3_000, [(1, 3_000)]),
        (4_000, [(1, 3_000), (3, 1_000)]),
        (7_999, [(1, 3_000), (3, 2_000), (2, 2_999)]),
    ],
)
def test_short_payment_goes_oldest_first(amount, expected_lines):
    invoices = [inv(2, 25, 5_000), inv(1, 5, 3_000), inv(3, 15, 2_000)]
    plan = plan_amount(invoices, amount, TODAY)
    assert [(l.invoice_id, l.amount_minor) for l in plan.lines] == expected_lines
    assert plan.total_minor == amount
    assert all(l.discount_minor == 0 for l in plan.lines)


def test_short_payment_warns_that_it_forfeits_the_discount():
    plan = plan_amount([inv(1, 30, 10_000, discount=200, until=TODAY)], 5_000, TODAY)
    assert plan.warnings == (
        "Invoice INV-1: paying less than its discounted total of 9800 forfeits its early-payment "
        "discount of 200.",
    )


def test_due_date_ties_break_on_invoice_number():
    a = OpenInvoice(7, "INV-B", date(2026, 11, 1), 1_000)
    b = OpenInvoice(9, "INV-A", date(2026, 11, 1), 1_000)
    assert [l.invoice_id for l in plan_amount([a, b], 1_500, TODAY).lines] == [9, 7]


@pytest.mark.parametrize(
    ("amount", "lines", "credit"),
    [
        (1_000, [(1, 1_000)], 0),
        (8_000, [(1, 3_000), (2, 5_000)], 0),
        (9_000, [(1, 3_000), (2, 5_000)], 1_000),
    ],
)
def test_custom_amount_leaves_the_remainder_as_credit(amount, lines, credit):
    plan = plan_amount([inv(2, 20, 5_000), inv(1, 10, 3_000)], amount, TODAY)
    assert [(l.invoice_id, l.amount_minor) for l in plan.lines] == lines
    assert plan.credit_minor == credit
    assert plan.total_minor == amount


def test_custom_amount_with_nothing_owed_is_all_credit():
    plan = plan_amount([], 5_000, TODAY)
    assert plan.lines == () and plan.credit_minor == 5_000


DISCOUNTED = [inv(1, 10, 10_000, discount=200, until=TODAY), inv(2, 20, 5_000, discount=100, until=TODAY)]


@pytest.mark.parametrize(
    ("amount", "lines", "credit", "warnings"),
    [
        # exactly the first's discounted total: it takes its discount, nothing is left
        (9_800, [(1, 9_800, 200)], 0, 0),
        # above the first's discounted total but below its total: discounted, the rest to the next invoice
        (9_900, [(1, 9_800, 200), (2, 100, 0)], 0, 1),
        # both discounted totals covered: both discounts, the rest becomes credit
        (14_800, [(1, 9_800, 200), (2, 4_900, 100)], 100, 0),
        (15_000, [(1, 9_800, 200), (2, 4_900, 100)], 300, 0),
        # below the first's discounted total: it is paid in part and forfeits its discount, with a warning
        (9_000, [(1, 9_000, 0)], 0, 1),
    ],
)
def test_an_amount_covering_a_discounted_total_takes_the_discount_and_the_rest_goes_on(
    amount, lines, credit, warnings
):
    plan = plan_amount(DISCOUNTED, amount, TODAY)
    assert [(l.invoice_id, l.amount_minor, l.discount_minor) for l in plan.lines] == lines
    assert (plan.credit_minor, len(plan.warnings), plan.total_minor) == (credit, warnings, amount)


def test_an_amount_after_the_discount_window_takes_no_discount_and_says_so():
    plan = plan_amount([inv(1, 10, 10_000, discount=200, until=date(2026, 11, 21))], 10_000, TODAY)
    assert [(l.amount_minor, l.discount_minor) for l in plan.lines] == [(10_000, 0)]
    assert "ended on 2026-11-21" in plan.warnings[0]


@pytest.mark.parametrize(
    ("state", "paid", "standing", "taken_back"),
    [
        # a reversed allocation gave back all the payment paid the invoice
        (AllocationState.REVERSED, 5_000, 0, 5_000),
        # an applied one reduced by a partial refund gave back the difference
        (AllocationState.APPLIED, 5_000, 3_000, 2_000),
        # an applied one untouched gave back nothing
        (AllocationState.APPLIED, 5_000, 5_000, 0),
    ],
)
def test_an_email_shows_what_was_taken_back_from_each_invoice(state, paid, standing, taken_back):
    assert TAKEN_BACK[state](paid, standing) == taken_back


def test_an_email_shows_nothing_taken_back_while_an_allocation_is_reserved_or_released():
    assert AllocationState.RESERVED not in TAKEN_BACK and AllocationState.RELEASED not in TAKEN_BACK
