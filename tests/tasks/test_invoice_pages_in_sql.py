"""Invoice list pages the database pages itself (every sort, the amount owed computed in SQL) hold exactly
what deriving every invoice and paging in Python holds: same rows, same order, same cursors."""

from datetime import UTC, date, datetime

import pytest

from db.models import ExternalPayment, ExternalPaymentLine
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
        # Owed amounts the SQL must derive as the domain does: a discount, a partial payment, outside
        # lines (one kept as credit, settling nothing), a parent whose children are all voided, a voided
        # invoice with money on it, and a payment still in flight (it settles nothing yet).
        factories.allocation(session, paid, rows[1], amount_minor=900, discount_minor=101, state="applied")
        factories.allocation(session, paid, rows[2], amount_minor=400, state="applied")
        factories.allocation(session, paid, rows[3], amount_minor=1_003, state="reserved")
        outside = ExternalPayment(
            seller_id=account.seller_id,
            account_id=account.id,
            reference="CHK-1",
            kind="check",
            amount_minor=1_500,
            currency="usd",
        )
        session.add(outside)
        session.flush()
        session.add_all(
            [
                ExternalPaymentLine(
                    external_payment_id=outside.id, invoice_id=rows[4].id, amount_minor=1_004
                ),
                ExternalPaymentLine(
                    external_payment_id=outside.id, invoice_id=rows[5].id, amount_minor=496, as_credit=True
                ),
            ]
        )
        rows[6].voided = True
        factories.allocation(session, paid, rows[6], amount_minor=10, state="applied")
        gone = factories.invoice(session, account, 4_000, number="MS-2", due_on=date(2026, 12, 3))
        factories.invoice(session, account, 700, number="MS-2-a", parent_id=gone.id, voided=True)
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


@pytest.mark.parametrize("sort", sorted(rules.SORTS))
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
    assert _walk(mixed, sort=sort, **filters) == _walk_in_python(mixed, sort, **filters)


def test_the_amount_owed_sql_sorts_on_is_the_amount_each_view_shows(mixed):
    """Every kind of money on an invoice, held against the derived views row by row."""
    from db.queries import invoices as invoice_rows
    from tasks.api.guard import api_transaction

    everything = rules.check_filter()
    with api_transaction() as session:
        rows = invoice_rows.list_listed_page(session, mixed, everything, rules.SORTS["owed_desc"], None, 100)
    shown = {v.invoice_id: v.owed_minor for v in api.list_invoices(mixed, NOW)}
    assert {row.id: row.owed_minor for row in rows} == shown
    owed = {v.number: v.owed_minor for v in api.list_invoices(mixed, NOW)}
    assert (owed["INV-9"], owed["INV-10"], owed["Ä-1"], owed["a_2"], owed["Z-1"]) == (0, 602, 1_003, 0, 1_005)
    assert (owed["INV-09"], owed["MS-2"], owed["MS-1"]) == (0, 0, 2_000)


def test_a_parent_on_a_sql_page_still_sums_its_visible_live_children(mixed):
    [parent] = [v for v in api.list_invoices(mixed, NOW, search="MS-1", limit=10).items if v.number == "MS-1"]
    assert (parent.total_minor, parent.owed_minor) == (2_000, 2_000)
