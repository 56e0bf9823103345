"""invoices.settled_minor is kept by PostgreSQL equal to what the ledger's rows say settled the invoice.

Every kind of change to allocations and outside payment lines is made with plain SQL (as every writer's
statements are) and the kept figure is compared with the ledger's own sum (db.queries.invoices.list_standing)
after each; a recompute and the invoice list read the kept figure (the list with list_holds), the full pass
the ledger.
"""

from sqlalchemy import text

from db.queries import invoices as invoice_rows
from tests import factories


def _kept(session, invoice_id: int) -> int:
    kept = text("SELECT settled_minor FROM invoices WHERE id = :i")
    return session.execute(kept, {"i": invoice_id}).scalar()


def _assert_kept_equals_ledger(session, *invoices) -> None:
    ledger = invoice_rows.list_standing(session, [invoice.id for invoice in invoices])
    expected = {i.id: ledger[i.id][0] if i.id in ledger else 0 for i in invoices}
    assert {i.id: _kept(session, i.id) for i in invoices} == expected
    # The list reads the kept figure beside the holds alone: they are the ledger's holds.
    holds = {invoice_id: held for invoice_id, (_, held) in ledger.items() if held is not None}
    assert invoice_rows.list_holds(session, [invoice.id for invoice in invoices]) == holds


def _run(session, sql: str, **values) -> None:
    session.execute(text(sql), values)
    session.commit()


def test_every_allocation_change_moves_the_invoice_settled_figure(db):
    session = db()
    account = factories.account(session)
    method = factories.method(session, account)
    first = factories.invoice(session, account, total_minor=10_000)
    second = factories.invoice(session, account, total_minor=8_000)
    paying = factories.payment(session, account, method, status="submitting")
    earlier = factories.payment(session, account, method, status="succeeded")
    session.commit()
    insert = (
        "INSERT INTO allocations (payment_id, invoice_id, amount_minor, paid_minor, discount_minor, state)"
        " VALUES (:p, :i, :a, :a, :d, :s)"
    )
    _run(session, insert, p=earlier.id, i=first.id, a=3_000, d=200, s="applied")
    assert _kept(session, first.id) == 3_200
    _run(session, insert, p=paying.id, i=first.id, a=4_000, d=0, s="reserved")
    _run(session, insert, p=paying.id, i=second.id, a=8_000, d=0, s="reserved")
    assert (_kept(session, first.id), _kept(session, second.id)) == (3_200, 0)  # reserved settles nothing
    _assert_kept_equals_ledger(session, first, second)

    # The payment succeeds: both of its allocations apply in one statement, as move_allocations_of does.
    _run(session, "UPDATE allocations SET state = 'applied' WHERE payment_id = :p", p=paying.id)
    assert (_kept(session, first.id), _kept(session, second.id)) == (7_200, 8_000)
    _assert_kept_equals_ledger(session, first, second)

    # A partial refund lowers one applied allocation; a full one reverses the other.
    _run(
        session,
        "UPDATE allocations SET amount_minor = 1500 WHERE payment_id = :p AND invoice_id = :i",
        p=paying.id,
        i=first.id,
    )
    _run(
        session,
        "UPDATE allocations SET state = 'reversed' WHERE payment_id = :p AND invoice_id = :i",
        p=paying.id,
        i=second.id,
    )
    assert (_kept(session, first.id), _kept(session, second.id)) == (4_700, 0)
    _assert_kept_equals_ledger(session, first, second)

    # A discount changed on an applied allocation, one moved to another invoice, one deleted.
    _run(session, "UPDATE allocations SET discount_minor = 0 WHERE payment_id = :p", p=earlier.id)
    assert _kept(session, first.id) == 4_500
    _run(session, "UPDATE allocations SET invoice_id = :to WHERE payment_id = :p", to=second.id, p=earlier.id)
    assert (_kept(session, first.id), _kept(session, second.id)) == (1_500, 3_000)
    _run(session, "DELETE FROM allocations WHERE payment_id = :p", p=earlier.id)
    assert (_kept(session, first.id), _kept(session, second.id)) == (1_500, 0)
    _assert_kept_equals_ledger(session, first, second)

    # A change that is not about applied money leaves the figure alone.
    _run(
        session,
        "UPDATE allocations SET amount_minor = 900 WHERE state = 'reversed' AND payment_id = :p",
        p=paying.id,
    )
    assert (_kept(session, first.id), _kept(session, second.id)) == (1_500, 0)
    session.close()


def test_outside_payment_lines_settle_unless_kept_as_credit(db):
    session = db()
    account = factories.account(session)
    invoice = factories.invoice(session, account, total_minor=10_000)
    other = factories.invoice(session, account, total_minor=5_000)
    session.commit()
    external = session.execute(
        text(
            "INSERT INTO external_payments (seller_id, account_id, reference, kind, amount_minor, currency)"
            " VALUES (:s, :a, 'CHK-1', 'check', 9000, :c) RETURNING id"
        ),
        {"s": account.seller_id, "a": account.id, "c": account.currency},
    ).scalar()
    line = (
        "INSERT INTO external_payment_lines (external_payment_id, invoice_id, amount_minor, as_credit)"
        " VALUES (:e, :i, :a, :credit)"
    )
    _run(session, line, e=external, i=invoice.id, a=6_000, credit=False)
    _run(session, line, e=external, i=other.id, a=3_000, credit=True)
    assert (_kept(session, invoice.id), _kept(session, other.id)) == (6_000, 0)
    _assert_kept_equals_ledger(session, invoice, other)

    _run(session, "UPDATE external_payment_lines SET as_credit = false WHERE invoice_id = :i", i=other.id)
    _run(session, "UPDATE external_payment_lines SET amount_minor = 5500 WHERE invoice_id = :i", i=invoice.id)
    assert (_kept(session, invoice.id), _kept(session, other.id)) == (5_500, 3_000)
    _run(session, "UPDATE external_payment_lines SET as_credit = true WHERE invoice_id = :i", i=invoice.id)
    _run(session, "DELETE FROM external_payment_lines WHERE invoice_id = :i", i=other.id)
    assert (_kept(session, invoice.id), _kept(session, other.id)) == (0, 0)
    _assert_kept_equals_ledger(session, invoice, other)
    session.close()


def test_a_rolled_back_change_leaves_the_figure_as_it_was(db):
    session = db()
    account = factories.account(session)
    method = factories.method(session, account)
    invoice = factories.invoice(session, account, total_minor=10_000)
    payment = factories.payment(session, account, method, status="succeeded")
    factories.allocation(session, payment, invoice, amount_minor=2_500, state="applied")
    session.commit()
    assert _kept(session, invoice.id) == 2_500  # an ORM insert goes through the trigger too
    reverse = text("UPDATE allocations SET state = 'reversed' WHERE payment_id = :p")
    session.execute(reverse, {"p": payment.id})
    assert _kept(session, invoice.id) == 0  # within the transaction, at once
    session.rollback()
    assert _kept(session, invoice.id) == 2_500
    session.close()
