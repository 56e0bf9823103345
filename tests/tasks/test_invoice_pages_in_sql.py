"""Invoice list pages the database pages itself (no derived filter, a stored sort) hold exactly what
deriving every invoice and paging in Python holds: same rows, same order, same cursors."""

from datetime import UTC, date, datetime

import pytest

from tasks import api
from tasks.api import invoices as listing
from tasks.domain import invoice_list as rules
from tests import factories

NOW = datetime(2026, 12, 10, 18, 0, tzinfo=UTC)
# Numbers whose order differs between a locale's collation and code points: Python compares code points.
NUMBERS = ["inv-10", "INV-9", "INV-10", "Ä-1", "a_2", "Z-1", "INV-09", "b 1", "INV-100", "ß-3"]


@pytest.fixture()
def mixed(db):
    with db() as session, session.begin():
        account = factories.account(session)
        card = factories.method(session, account)
        rows = [
            factories.invoice(session, account, 1_000 + n, number=number, due_on=date(2026, 12, 1 + n % 4))
            for n, number in enumerate(NUMBERS)
        ]
        parent = factories.invoice(session, account, 5_000, number="MS-1", due_on=date(2026, 12, 2))
        factories.invoice(session, account, 2_000, number="MS-1-a", parent_id=parent.id, site_name="North")
        factories.invoice(session, account, 3_000, number="MS-1-b", parent_id=parent.id, voided=True)
        paid = factories.payment(session, account, card, 1_000, status="succeeded")
        factories.allocation(session, paid, rows[0], amount_minor=1_000, state="applied")
        return account.id


def _walk(account_id, **query):
    pages, after = [], None
    while True:
        page = api.list_invoices(account_id, NOW, after=after, limit=3, **query)
        pages.append(([v.number for v in page.items], page.next_cursor))
        if page.next_cursor is None:
            return pages
        after = page.next_cursor


def _walk_in_python(account_id, sort, **filters):
    """The same pages through the path that derives every invoice first."""
    order, chosen = rules.check_sort(sort), rules.check_filter(**filters)
    from tasks.api.guard import api_transaction
    from tasks.api.selection import find_account

    with api_transaction() as session:
        views = listing._selected(session, find_account(session, account_id), chosen, NOW)
    pages, cursor = [], None
    while True:
        shown, more = rules.page_of(views, order, cursor, 3)
        token = rules.encode_cursor(sort, shown[-1]) if more else None
        pages.append(([v.number for v in shown], token))
        if token is None:
            return pages
        cursor = rules.decode_cursor(token, sort)


@pytest.mark.parametrize("sort", ["due_asc", "due_desc", "number_asc", "number_desc"])
@pytest.mark.parametrize(
    "filters",
    [
        {},
        {"search": "inv"},
        {"layout": "multi"},
        {"due_from": date(2026, 12, 2)},
        # derived: read in order a batch at a time, filtered as each batch is derived
        {"status": "open"},
        {"status": ["paid", "void"]},
        {"overdue": True},
        {"overdue": False, "search": "inv"},
    ],
)
def test_sql_pages_equal_the_pages_of_every_derived_invoice(mixed, monkeypatch, sort, filters):
    monkeypatch.setattr(listing, "SCAN_BATCH", 4)  # several batches per page, and batches ending mid-page
    assert rules.pages_in_sql(rules.check_sort(sort))
    assert _walk(mixed, sort=sort, **filters) == _walk_in_python(mixed, sort, **filters)


def test_a_sort_on_the_amount_owed_still_derives_every_invoice_first(mixed):
    assert not rules.pages_in_sql(rules.check_sort("owed_desc"))
    assert _walk(mixed, sort="owed_desc", status="open") == _walk_in_python(mixed, "owed_desc", status="open")


def test_a_parent_on_a_sql_page_still_sums_its_visible_live_children(mixed):
    [parent] = [v for v in api.list_invoices(mixed, NOW, search="MS-1", limit=10).items if v.number == "MS-1"]
    assert (parent.total_minor, parent.owed_minor) == (2_000, 2_000)
