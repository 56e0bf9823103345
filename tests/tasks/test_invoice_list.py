"""The portal's invoice list against real PostgreSQL: filters, search, sorts, keyset pages, CSV, and the
account's scheduled payments."""

import csv
from datetime import UTC, date, datetime

import pytest

from tasks import api
from tasks.domain.errors import RemitError
from tasks.domain.history import encode_cursor as history_cursor
from tests import factories

NOW = datetime(2026, 12, 10, 18, 0, tzinfo=UTC)  # Dec 10 at the seller (Chicago)
ORDER = ["INV-100", "INV-101", "MS-200", "MS-200-1", "MS-200-2", "INV-103", "INV-102", "INV-104", "=SUM(1)"]
ORDER.append("INV-105")  # due date first, then id (the order rows are created in)


@pytest.fixture()
def book(db):
    """An account's ten visible invoices in every state, a hidden one, and another account's invoice."""
    with db() as session, session.begin():
        account = factories.account(session)
        card = factories.method(session, account, last4="4242")
        bank = factories.method(session, account, kind="us_bank_account", last4="6789", bank_name="=Bank")

        def invoice(number, total, due, **extra):
            return factories.invoice(
                session, account, total, number=number, due_on=date(2026, 12, due), **extra
            )

        invoice("INV-100", 10_000, 1)  # open, overdue
        b = invoice("INV-101", 20_000, 5, site_name="North Yard")  # paid
        c = invoice("INV-102", 30_000, 20)  # partially paid
        d = invoice("INV-103", 5_000, 15)  # scheduled
        e = invoice("INV-104", 7_000, 25)  # pending
        invoice("INV-105", 8_000, 30, voided=True)
        invoice("=SUM(1)", 1_000, 28, site_name="@evil")
        parent = invoice("MS-200", 10_000, 12)
        invoice("MS-200-1", 4_000, 12, parent_id=parent.id, site_name="North Yard")
        invoice("MS-200-2", 6_000, 12, parent_id=parent.id, site_name="South_50%")
        invoice("INV-900", 9_000, 2, customer_visible=False)
        paid = factories.payment(session, account, card, 25_000, status="succeeded")
        factories.allocation(session, paid, b, state="applied")
        factories.allocation(session, paid, c, amount_minor=5_000, state="applied")
        later = dict(status="scheduled", scheduled_for=date(2026, 12, 14))
        factories.allocation(session, factories.payment(session, account, bank, 5_000, **later), d)
        factories.allocation(session, factories.payment(session, account, card, 7_000), e)
        sooner = dict(status="scheduled", scheduled_for=date(2026, 12, 11), kind="amount")
        factories.payment(session, account, card, 3_000, **sooner)
        factories.payment(session, account, card, 3_000, status="canceled", scheduled_for=date(2026, 12, 12))
        other = factories.account(session, account.seller)
        factories.invoice(session, other, number="INV-100-OTHER")
        factories.payment(session, other, factories.method(session, other), **later)
        return account.id


def _numbers(result):
    items = result.items if hasattr(result, "items") else result
    return [view.number for view in items]


def test_without_arguments_it_is_the_whole_list_as_before(book):
    views = api.list_invoices(book, now=NOW)
    assert isinstance(views, list)
    assert _numbers(views) == ORDER
    statuses = {v.number: (v.status, v.overdue, v.owed_minor) for v in views}
    assert statuses["INV-100"] == ("open", True, 10_000)
    assert statuses["MS-200"] == ("open", False, 10_000)  # the sum of its children


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({}, ORDER),
        ({"status": "open"}, ["INV-100", "MS-200", "MS-200-1", "MS-200-2", "=SUM(1)"]),
        ({"status": ["paid", "void"]}, ["INV-101", "INV-105"]),
        ({"status": "partially_paid"}, ["INV-102"]),
        ({"status": "scheduled"}, ["INV-103"]),
        ({"status": "pending"}, ["INV-104"]),
        ({"overdue": True}, ["INV-100"]),
        ({"overdue": False}, ORDER[1:]),
        ({"due_from": date(2026, 12, 12), "due_to": date(2026, 12, 20)}, ORDER[2:7]),
        ({"due_from": date(2026, 12, 28)}, ["=SUM(1)", "INV-105"]),
        ({"due_to": date(2026, 11, 30)}, []),
        ({"layout": "single"}, ["INV-100", "INV-101", "INV-103", "INV-102", "INV-104", "=SUM(1)", "INV-105"]),
        ({"layout": "multi"}, ["MS-200", "MS-200-1", "MS-200-2"]),
        ({"site": "north YARD"}, ["INV-101", "MS-200-1"]),
        ({"site": "North"}, []),  # a site is named whole
        ({"status": "open", "layout": "multi", "site": "North Yard"}, ["MS-200-1"]),
    ],
)
def test_each_filter_selects_only_the_accounts_matching_invoices(book, filters, expected):
    assert _numbers(api.list_invoices(book, now=NOW, limit=200, **filters)) == expected


@pytest.mark.parametrize(
    ("search", "expected"),
    [
        ("inv-10", ["INV-100", "INV-101", "INV-103", "INV-102", "INV-104", "INV-105"]),  # number, any case
        ("ms-200-", ["MS-200-1", "MS-200-2"]),
        ("yard", ["INV-101", "MS-200-1"]),  # site name
        ("_", ["MS-200-2"]),  # wildcards taken literally
        ("0%", ["MS-200-2"]),
        ("  ", ORDER),  # blank is no search
        ("other", []),  # another account's invoice
        ("INV-900", []),  # hidden from the customer
    ],
)
def test_search_matches_number_or_site_ignoring_case(book, search, expected):
    assert _numbers(api.list_invoices(book, now=NOW, search=search)) == expected


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("due_asc", ORDER),
        ("due_desc", ORDER[::-1]),
        ("number_asc", sorted(ORDER)),
        ("number_desc", sorted(ORDER, reverse=True)),
        # owed: C 25,000; P and A 10,000 (P made later); E 7,000; ...; F and B 0 (F made later)
        (
            "owed_desc",
            ["INV-102", "MS-200", "INV-100", "INV-104", "MS-200-2", "INV-103", "MS-200-1", "=SUM(1)"]
            + ["INV-105", "INV-101"],
        ),
        (
            "owed_asc",
            ["INV-101", "INV-105", "=SUM(1)", "MS-200-1", "INV-103", "MS-200-2", "INV-104", "INV-100"]
            + ["MS-200", "INV-102"],
        ),
    ],
)
def test_sorts_and_pages_of_two_walk_the_same_order(book, sort, expected):
    assert _numbers(api.list_invoices(book, now=NOW, sort=sort)) == expected
    walked, after = [], None
    while True:
        page = api.list_invoices(book, now=NOW, sort=sort, limit=2, after=after)
        walked += _numbers(page)
        if page.next_cursor is None:
            break
        after = page.next_cursor
    assert walked == expected


def test_paging_boundaries(book):
    exactly = api.list_invoices(book, now=NOW, layout="multi", limit=3)
    assert (_numbers(exactly), exactly.next_cursor) == (["MS-200", "MS-200-1", "MS-200-2"], None)
    first = api.list_invoices(book, now=NOW, layout="multi", limit=2)
    assert _numbers(first) == ["MS-200", "MS-200-1"] and first.next_cursor
    last = api.list_invoices(book, now=NOW, layout="multi", limit=2, after=first.next_cursor)
    assert (_numbers(last), last.next_cursor) == (["MS-200-2"], None)
    empty = api.list_invoices(book, now=NOW, due_to=date(2026, 11, 1))
    assert (empty.items, empty.next_cursor) == ((), None)
    one = api.list_invoices(book, now=NOW, limit=1)
    assert _numbers(one) == ["INV-100"]
    assert len(api.list_invoices(book, now=NOW, limit=200).items) == 10


@pytest.mark.parametrize(
    ("arguments", "code"),
    [
        ({"sort": "newest"}, "invalid_sort"),
        ({"limit": 0}, "invalid_limit"),
        ({"limit": 201}, "invalid_limit"),
        ({"limit": True}, "invalid_limit"),
        ({"status": "overdue"}, "invalid_status"),
        ({"status": []}, "invalid_status"),
        ({"overdue": "yes"}, "invalid_overdue"),
        ({"due_from": date(2026, 12, 2), "due_to": date(2026, 12, 1)}, "invalid_date_range"),
        ({"due_from": "2026-12-01"}, "invalid_date_range"),
        ({"layout": "parent"}, "invalid_layout"),
        ({"site": "x" * 201}, "invalid_site"),
        ({"search": "a\x00b"}, "invalid_search"),
        ({"after": "garbage!"}, "invalid_cursor"),
        ({"after": history_cursor("newest", NOW, 1)}, "invalid_cursor"),  # the payment history's
    ],
)
def test_refusals_name_what_is_wrong(book, arguments, code):
    with pytest.raises(RemitError) as refused:
        api.list_invoices(book, now=NOW, **arguments)
    assert refused.value.code == code
    if "after" not in arguments and "limit" not in arguments and "sort" not in arguments:
        with pytest.raises(RemitError) as again:
            api.export_invoices_csv(book, now=NOW, **arguments)
        assert again.value.code == code


def test_a_cursor_of_another_sort_is_refused(book):
    page = api.list_invoices(book, now=NOW, sort="due_asc", limit=2)
    with pytest.raises(RemitError, match="belongs to sort 'due_asc'") as refused:
        api.list_invoices(book, now=NOW, sort="due_desc", after=page.next_cursor)
    assert refused.value.code == "invalid_cursor"


def test_an_unknown_account_is_refused(book):
    for call in (
        lambda: api.list_invoices(10**6, now=NOW, limit=5),
        lambda: api.export_invoices_csv(10**6, now=NOW),
        lambda: api.list_scheduled_payments(10**6),
        lambda: api.list_scheduled_payments(True),
    ):
        with pytest.raises(RemitError) as refused:
            call()
        assert refused.value.code == "account_not_found"


@pytest.mark.parametrize(
    "filters",
    [
        {},
        {"status": "open"},
        {"search": "inv"},
        {"layout": "multi", "sort": "owed_desc"},
        {"sort": "number_desc"},
    ],
)
def test_csv_holds_what_the_pages_hold(book, filters):
    pages, after = [], None
    while True:
        page = api.list_invoices(book, now=NOW, limit=3, after=after, **filters)
        pages += page.items
        if page.next_cursor is None:
            break
        after = page.next_cursor
    rows = list(csv.reader("".join(api.export_invoices_csv(book, now=NOW, **filters)).splitlines()))
    assert rows[0][:3] == ["invoice_id", "number", "parent_id"]
    assert [int(row[0]) for row in rows[1:]] == [view.invoice_id for view in pages]
    assert [(row[7], row[10], row[11]) for row in rows[1:]] == [
        (str(v.owed_minor), v.status, str(v.overdue).lower()) for v in pages
    ]


def test_csv_neutralises_formula_cells(book):
    rows = list(csv.reader("".join(api.export_invoices_csv(book, now=NOW, search="sum")).splitlines()))
    assert rows[1][1:4] == ["'=SUM(1)", "", "'@evil"]


def test_scheduled_payments_soonest_first_with_method_and_invoices(book):
    listed = api.list_scheduled_payments(book)
    assert [(p.scheduled_for, p.amount_minor, p.invoice_numbers) for p in listed] == [
        (date(2026, 12, 11), 3_000, ()),
        (date(2026, 12, 14), 5_000, ("INV-103",)),
    ]
    assert (listed[1].method.kind, listed[1].method.last4, listed[1].method.bank_name) == (
        "us_bank_account",
        "6789",
        "=Bank",
    )
    assert listed[0].method.brand is None or isinstance(listed[0].method.brand, str)
