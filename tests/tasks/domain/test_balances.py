from datetime import date

import pytest

from tasks.domain.balances import InvoiceFacts, compute_figures

TODAY = date(2026, 11, 22)


@pytest.mark.parametrize(
    ("invoices", "balance", "overdue"),
    [
        ([], 0, 0),
        ([InvoiceFacts(10_000, 0, date(2026, 12, 1))], 10_000, 0),
        ([InvoiceFacts(10_000, 0, date(2026, 11, 21))], 10_000, 10_000),
        # due today is not overdue yet
        ([InvoiceFacts(10_000, 0, TODAY)], 10_000, 0),
        (
            [InvoiceFacts(10_000, 4_000, date(2026, 11, 1)), InvoiceFacts(5_000, 5_000, date(2026, 11, 1))],
            6_000,
            6_000,
        ),
        # an invoice settled with a discount owes nothing, never a negative amount
        ([InvoiceFacts(10_000, 10_000, date(2026, 11, 1))], 0, 0),
    ],
)
def test_balance_and_overdue_come_from_what_is_still_owed(invoices, balance, overdue):
    figures = compute_figures(invoices, pending_minor=7, scheduled_minor=8, credit_minor=9, today=TODAY)
    assert (figures.balance_minor, figures.overdue_minor) == (balance, overdue)
    assert (figures.pending_minor, figures.scheduled_minor, figures.credit_minor) == (7, 8, 9)
