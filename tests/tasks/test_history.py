"""The portal's payment history against real PostgreSQL: filters, search, sorts, keyset pages and CSV."""

import csv
from datetime import UTC, date, datetime, timedelta

import pytest

from db.models import Account
from tasks import api
from tasks.domain.errors import RemitError
from tests import factories

# Seller in Chicago (UTC-6 in December): Dec 1 there runs from 06:00 UTC Dec 1 to 06:00 UTC Dec 2.
DAY1 = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)


@pytest.fixture()
def book(db):
    """One account with seven payments (ids 1..7) made over a week, and another account's payment (id 8)."""
    with db() as session, session.begin():
        account = factories.account(session)
        visa = factories.method(session, account, last4="4242")
        bank = factories.method(session, account, kind="us_bank_account", last4="6789")
        invoices = [factories.invoice(session, account, number=f"INV-{n}") for n in (100, 101, 102, 200)]
        rows = [
            # (method, amount, status, created, invoices, note)
            (visa, 5_000, "succeeded", DAY1, [0], None),
            (visa, 7_500, "failed", DAY1 + timedelta(hours=23, minutes=59), [1], None),
            (bank, 12_000, "processing", DAY1 + timedelta(days=1), [2, 3], None),
            (bank, 3_000, "succeeded", DAY1 + timedelta(days=2), [], "Deposit for the Q1 order"),
            (visa, 7_500, "canceled", DAY1 + timedelta(days=3), [], None),
            (visa, 9_900, "succeeded", DAY1 + timedelta(days=4), [], "50%_off promo"),
            (bank, 1_000, "pending", DAY1 + timedelta(days=5), [], None),
        ]
        for method, amount, status, created, paid, note in rows:
            payment = factories.payment(
                session, account, method, amount, status=status, created_at=created, note=note
            )
            for index in paid:
                factories.allocation(session, payment, invoices[index], amount_minor=amount // len(paid))
        other = factories.account(session, account.seller)
        factories.payment(session, other, factories.method(session, other), 7_500, created_at=DAY1)
        return account.id


def _ids(page):
    return [item.payment_id for item in page.items]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({}, [7, 6, 5, 4, 3, 2, 1]),
        ({"status": "succeeded"}, [6, 4, 1]),
        ({"status": ["failed", "canceled"]}, [5, 2]),
        ({"method_kind": "us_bank_account"}, [7, 4, 3]),
        ({"method_kind": "card"}, [6, 5, 2, 1]),
        # Dec 1 at the seller: its first and last minute, not 06:00 UTC Dec 2
        ({"date_from": date(2026, 12, 1), "date_to": date(2026, 12, 1)}, [2, 1]),
        ({"date_from": date(2026, 12, 2)}, [7, 6, 5, 4, 3]),
        ({"date_to": date(2026, 11, 30)}, []),
        ({"amount_min": 7_500}, [6, 5, 3, 2]),
        ({"amount_max": 7_500}, [7, 5, 4, 2, 1]),
        ({"amount_min": 7_500, "amount_max": 7_500}, [5, 2]),
        ({"status": "succeeded", "method_kind": "card", "amount_min": 6_000}, [6]),
    ],
)
def test_each_filter_selects_only_the_accounts_matching_payments(book, filters, expected):
    assert _ids(api.list_payments(book, **filters)) == expected


@pytest.mark.parametrize(
    ("search", "expected"),
    [
        ("inv-10", [3, 2, 1]),  # invoice numbers, ignoring case
        ("INV-200", [3]),
        ("#5", [5]),  # the payment's id
        ("6789", [7, 4, 3]),  # the bank account's last 4
        ("q1 ORDER", [4]),  # the note
        ("50%_", [6]),  # wildcards taken literally
        ("5%", []),
        ("nothing like it", []),
    ],
)
def test_search_matches_invoice_number_id_last4_or_note(book, search, expected):
    assert _ids(api.list_payments(book, search=search)) == expected


def test_a_payment_lists_its_method_and_invoice_numbers(book):
    [item] = api.list_payments(book, search="INV-200").items
    assert item.method == api.MethodDisplay("us_bank_account", None, "6789", "STRIPE TEST BANK")
    assert (item.invoice_numbers, item.amount_minor, item.currency) == (("INV-102", "INV-200"), 12_000, "usd")
    assert item.created_at == DAY1 + timedelta(days=1)


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("newest", [7, 6, 5, 4, 3, 2, 1]),
        ("oldest", [1, 2, 3, 4, 5, 6, 7]),
        ("amount_desc", [3, 6, 5, 2, 1, 4, 7]),  # equal amounts: the higher id first
        ("amount_asc", [7, 4, 1, 2, 5, 6, 3]),
    ],
)
def test_each_sort_pages_through_every_payment_once_in_order(book, sort, expected):
    assert _ids(api.list_payments(book, sort=sort)) == expected
    seen, after = [], None
    while True:
        page = api.list_payments(book, sort=sort, after=after, limit=2)
        seen += _ids(page)
        if page.next_cursor is None:
            break
        after = page.next_cursor
    assert seen == expected


def test_a_page_of_exactly_limit_rows_has_no_next(book):
    page = api.list_payments(book, limit=7)
    assert (len(page.items), page.next_cursor) == (7, None)


def test_one_row_more_than_limit_gives_a_cursor_to_a_last_page_of_one(book):
    first = api.list_payments(book, limit=6)
    assert len(first.items) == 6 and first.next_cursor is not None
    last = api.list_payments(book, limit=6, after=first.next_cursor)
    assert (_ids(last), last.next_cursor) == ([1], None)


def test_an_empty_selection_is_an_empty_page(book):
    assert api.list_payments(book, status="disputed") == api.PaymentPage((), None)


def test_a_cursor_from_another_sort_is_refused(book):
    cursor = api.list_payments(book, sort="amount_desc", limit=2).next_cursor
    with pytest.raises(RemitError) as refused:
        api.list_payments(book, sort="amount_asc", after=cursor)
    assert refused.value.code == "invalid_cursor"


@pytest.mark.parametrize(
    ("arguments", "code"),
    [
        ({"account_id": 999}, "account_not_found"),
        ({"account_id": "1"}, "account_not_found"),
        ({"after": "garbage"}, "invalid_cursor"),
        ({"limit": 201}, "invalid_limit"),
        ({"sort": "name"}, "invalid_sort"),
        ({"status": "paid"}, "invalid_status"),
    ],
)
def test_a_bad_request_is_refused(book, arguments, code):
    with pytest.raises(RemitError) as refused:
        api.list_payments(**{"account_id": book, **arguments})
    assert refused.value.code == code


@pytest.mark.parametrize("sort", ["newest", "amount_asc"])
def test_the_csv_export_is_the_pages_concatenated(book, monkeypatch, sort):
    from tasks.api import history

    monkeypatch.setattr(history, "EXPORT_PAGE_SIZE", 3)  # several export pages from seven rows
    rows = list(csv.reader(api.export_payments_csv(book, sort=sort, method_kind="card")))
    assert rows[0] == list(history.CSV_HEADER)
    expected = [item for page in _all_pages(book, sort=sort, method_kind="card") for item in page.items]
    assert [int(row[0]) for row in rows[1:]] == [item.payment_id for item in expected]
    first = dict(zip(rows[0], rows[-1 if sort == "newest" else 1]))
    assert first["invoice_numbers"] == "INV-100" and first["amount_minor"] == "5000"
    assert first["created_at"] == DAY1.isoformat()


def test_the_export_refuses_a_bad_filter_at_the_call(book):
    with pytest.raises(RemitError) as refused:
        api.export_payments_csv(book, amount_min=-5)
    assert refused.value.code == "invalid_amount_range"


def test_an_invoice_number_that_looks_like_a_formula_is_exported_as_text(db):
    with db() as session, session.begin():
        account = factories.account(session)
        payment = factories.payment(session, account, factories.method(session, account))
        factories.allocation(session, payment, factories.invoice(session, account, number="=1+2"))
        account_id = account.id
    rows = list(csv.reader(api.export_payments_csv(account_id)))
    assert rows[1][-1] == "'=1+2"


def _all_pages(account_id, **filters):
    after = None
    while True:
        page = api.list_payments(account_id, after=after, limit=2, **filters)
        yield page
        if page.next_cursor is None:
            return
        after = page.next_cursor


@pytest.fixture()
def owing(db):
    """An account owing 10,000 on an invoice due Dec 1 2026 (2,500 of 12,500 paid); a void one owes none."""
    with db() as session, session.begin():
        account = factories.account(session)
        late = factories.invoice(
            session, account, 12_500, issued_on=date(2026, 11, 1), due_on=date(2026, 12, 1)
        )
        factories.invoice(session, account, 9_000, due_on=date(2026, 12, 1), voided=True)
        paid = factories.payment(
            session, account, factories.method(session, account), 2_500, status="succeeded"
        )
        factories.allocation(session, paid, late, amount_minor=2_500, state="applied")
        return account.id


# Midnight at the Chicago seller is 06:00 UTC in winter: each pair is the last minute of a seller's day in
# one bucket and the first minute of the next day, in the next bucket.
@pytest.mark.parametrize(
    ("now", "bucket"),
    [
        (datetime(2026, 12, 2, 5, 59, tzinfo=UTC), "current_minor"),  # Dec 1 at the seller: due today
        (datetime(2026, 12, 2, 6, 0, tzinfo=UTC), "days_1_30_minor"),  # Dec 2: one day past due
        (datetime(2027, 1, 1, 5, 59, tzinfo=UTC), "days_1_30_minor"),  # Dec 31: 30 days
        (datetime(2027, 1, 1, 6, 0, tzinfo=UTC), "days_31_60_minor"),  # Jan 1: 31 days
        (datetime(2027, 1, 31, 5, 59, tzinfo=UTC), "days_31_60_minor"),  # Jan 30: 60 days
        (datetime(2027, 1, 31, 6, 0, tzinfo=UTC), "days_61_90_minor"),  # Jan 31: 61 days
        (datetime(2027, 3, 2, 5, 59, tzinfo=UTC), "days_61_90_minor"),  # Mar 1: 90 days
        (datetime(2027, 3, 2, 6, 0, tzinfo=UTC), "over_90_minor"),  # Mar 2: 91 days
    ],
)
def test_the_overview_ages_what_is_owed_on_the_seller_day_each_boundary_is_crossed(owing, now, bucket):
    aging = api.account_overview(owing, now=now).aging
    late = {name: value for name, value in vars(aging).items() if name != "current_minor"}
    late = {name: value for name, value in late.items() if not name.startswith("due_")}
    if bucket == "current_minor":
        assert aging.current_minor == 10_000 and set(late.values()) == {0}
    else:
        assert late == {name: 10_000 if name == bucket else 0 for name in late}


def test_the_overview_shows_what_falls_due_this_week_and_this_month(owing, db):
    with db() as session, session.begin():
        account = session.get(Account, owing)
        factories.invoice(session, account, 4_000, issued_on=date(2026, 11, 1), due_on=date(2026, 12, 6))
    # Wednesday Dec 2 at the seller: the 4,000 due Sunday Dec 6 falls due this week and this month.
    overview = api.account_overview(owing, now=datetime(2026, 12, 2, 18, 0, tzinfo=UTC))
    assert (overview.aging.due_this_week_minor, overview.aging.due_this_month_minor) == (4_000, 4_000)
    assert (overview.balance_minor, overview.overdue_minor, overview.aging.current_minor) == (
        14_000,
        10_000,
        4_000,
    )
    # Monday Dec 7: nothing left to fall due this week or month.
    later = api.account_overview(owing, now=datetime(2026, 12, 7, 18, 0, tzinfo=UTC)).aging
    assert (later.due_this_week_minor, later.due_this_month_minor, later.days_1_30_minor) == (0, 0, 14_000)
