from datetime import date, timedelta

import pytest

from tasks.domain.balances import InvoiceFacts, compute_aging, compute_figures

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


# Wednesday Dec 16 2026: its week ends Sunday Dec 20, its month Thursday Dec 31.
AGING_DAY = date(2026, 12, 16)


def _owed_on(due_on: date, settled: int = 0) -> InvoiceFacts:
    return InvoiceFacts(1_000, settled, due_on)


@pytest.mark.parametrize(
    ("days_late", "bucket"),
    [
        (-40, "current_minor"),  # due next month
        (0, "current_minor"),  # due today: not past due yet
        (1, "days_1_30_minor"),  # due yesterday: the first day past due
        (30, "days_1_30_minor"),
        (31, "days_31_60_minor"),
        (60, "days_31_60_minor"),
        (61, "days_61_90_minor"),
        (90, "days_61_90_minor"),
        (91, "over_90_minor"),
        (400, "over_90_minor"),
    ],
)
def test_an_invoice_ages_into_the_next_bucket_the_day_after_each_boundary(days_late, bucket):
    aging = compute_aging([_owed_on(AGING_DAY - timedelta(days=days_late))], AGING_DAY)
    buckets = {name: value for name, value in vars(aging).items() if not name.startswith("due_")}
    assert buckets == {name: 1_000 if name == bucket else 0 for name in buckets}


@pytest.mark.parametrize(
    ("due_on", "this_week", "this_month"),
    [
        (date(2026, 12, 15), 0, 0),  # yesterday is past due, not falling due
        (date(2026, 12, 16), 1_000, 1_000),  # today
        (date(2026, 12, 20), 1_000, 1_000),  # Sunday: the week's last day
        (date(2026, 12, 21), 0, 1_000),  # next Monday
        (date(2026, 12, 31), 0, 1_000),  # the month's last day
        (date(2027, 1, 1), 0, 0),
    ],
)
def test_what_falls_due_this_week_and_this_month(due_on, this_week, this_month):
    aging = compute_aging([_owed_on(due_on)], AGING_DAY)
    assert (aging.due_this_week_minor, aging.due_this_month_minor) == (this_week, this_month)


def test_on_a_sunday_the_week_is_today_only_and_settled_money_is_not_owed():
    sunday = date(2026, 12, 20)
    invoices = [
        _owed_on(sunday, settled=400),
        _owed_on(date(2026, 12, 21)),
        _owed_on(date(2026, 1, 1), 1_000),
    ]
    aging = compute_aging(invoices, sunday)
    assert (aging.due_this_week_minor, aging.due_this_month_minor, aging.current_minor) == (600, 1_600, 1_600)
    assert aging.over_90_minor == 0


def test_the_buckets_add_up_to_the_balance():
    invoices = [_owed_on(AGING_DAY - timedelta(days=d), settled=d) for d in range(-5, 200, 7)]
    aging = compute_aging(invoices, AGING_DAY)
    buckets = [value for name, value in vars(aging).items() if not name.startswith("due_")]
    figures = compute_figures(invoices, pending_minor=0, scheduled_minor=0, credit_minor=0, today=AGING_DAY)
    assert sum(buckets) == figures.balance_minor
