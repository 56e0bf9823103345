"""The set-based figures equal the domain's rules applied row by row, on a ledger with every kind of row."""

import random
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import text

from db.models import Account, Allocation, Credit, ExternalPayment, ExternalPaymentLine, Invoice, Payment
from db.queries import balances as balance_rows
from tasks.domain.balances import InvoiceFacts, compute_aging, compute_figures
from tasks.domain.transitions import IN_FLIGHT
from tests import factories

NOW = datetime(2026, 12, 5, 4, 30, tzinfo=UTC)  # still 4 December in Chicago, already the 5th in UTC
STATUSES = ["pending", "submitting", "processing", "requires_action", "scheduled", "succeeded", "failed"]


def _ledger(session, rng: random.Random) -> list[int]:
    """Accounts of two sellers (two timezones) with invoices of every flag, payments, credits, ERP lines."""
    ids = []
    for timezone in ("America/Chicago", "UTC"):
        seller = factories.seller(session, timezone=timezone)
        for n in range(4):
            account = factories.account(session, seller, currency="usd")
            ids.append(account.id)
            card = factories.method(session, account)
            parent = factories.invoice(session, account, 50_000)
            for k in range(8 + n):
                invoice = factories.invoice(
                    session,
                    account,
                    rng.randint(1, 90_000),
                    currency=rng.choice(["usd", "usd", "usd", "cad"]),
                    due_on=date(2026, 12, 4) + timedelta(days=rng.randint(-3, 3)),
                    voided=rng.random() < 0.1,
                    customer_visible=rng.random() > 0.1,
                    parent_id=parent.id if k == 0 else None,
                )
                status = rng.choice(STATUSES)
                payment = factories.payment(
                    session,
                    account,
                    card,
                    rng.randint(1, 95_000),
                    status=status,
                    currency=invoice.currency,
                    scheduled_for=date(2026, 12, 20) if status == "scheduled" else None,
                )
                state = {"succeeded": "applied", "failed": "released"}.get(status, "reserved")
                amount = rng.randint(1, invoice.total_minor)
                factories.allocation(
                    session,
                    payment,
                    invoice,
                    amount_minor=amount,
                    discount_minor=rng.choice([0, 0, 50]),
                    state=state,
                )
                if rng.random() < 0.3 and amount < invoice.total_minor:
                    external = ExternalPayment(
                        seller_id=seller.id,
                        account_id=account.id,
                        reference=f"CHK-{account.id}-{k}",
                        kind="check",
                        amount_minor=1,
                        currency=invoice.currency,
                    )
                    session.add(external)
                    session.flush()
                    session.add(
                        ExternalPaymentLine(
                            external_payment_id=external.id,
                            invoice_id=invoice.id,
                            amount_minor=1,
                            as_credit=rng.random() < 0.3,  # kept as account credit: settles nothing
                        )
                    )
                if rng.random() < 0.4:
                    state = rng.choice(["available", "pending", "applied"])
                    session.add(
                        Credit(
                            account_id=account.id,
                            payment_id=payment.id,
                            amount_minor=rng.randint(1, 5_000),
                            currency=rng.choice(["usd", "cad"]),
                            state=state,
                            applied_invoice_id=invoice.id,
                            used_by_payment_id=payment.id if state == "applied" else None,
                        )
                    )
            session.flush()
    return ids


def _facts_by_rows(session, account_id: int) -> list[InvoiceFacts]:
    """Each payable invoice's total, settled amount and due date, read one by one through the ORM."""
    account = session.get(Account, account_id)
    invoices = session.query(Invoice).filter_by(account_id=account_id).all()
    parents = {i.parent_id for i in invoices if i.parent_id}  # a parent of any currency's child
    invoices = [i for i in invoices if i.currency == account.currency]
    facts = []
    for invoice in invoices:
        if invoice.voided or not invoice.customer_visible or invoice.id in parents:
            continue
        settled = sum(
            a.amount_minor + a.discount_minor
            for a in session.query(Allocation).filter_by(invoice_id=invoice.id, state="applied")
        )
        settled += sum(
            line.amount_minor
            for line in session.query(ExternalPaymentLine).filter_by(invoice_id=invoice.id, as_credit=False)
        )
        facts.append(InvoiceFacts(invoice.total_minor, settled, invoice.due_on))
    return facts


def _by_rows(session, account_id: int, today: date):
    """The domain's compute_figures over rows read one by one through the ORM (the rule, not SQL)."""
    account = session.get(Account, account_id)
    facts = _facts_by_rows(session, account_id)
    payments = session.query(Payment).filter_by(account_id=account_id, currency=account.currency).all()
    pending = sum(p.amount_minor for p in payments if p.status in IN_FLIGHT)
    scheduled = sum(p.amount_minor for p in payments if p.status == "scheduled")
    credit = sum(
        c.amount_minor
        for c in session.query(Credit).filter_by(
            account_id=account_id, currency=account.currency, state="available"
        )
    )
    return compute_figures(facts, pending, scheduled, credit, today)


def test_set_based_figures_equal_the_domain_rules_row_by_row(db):
    with db() as session, session.begin():
        ids = _ledger(session, random.Random(7))
    with db() as session:
        todays = {}
        for account_id in ids:
            account = session.get(Account, account_id)
            todays[account_id] = (
                date(2026, 12, 4) if account.seller.timezone == "America/Chicago" else date(2026, 12, 5)
            )
        computed = balance_rows.compute_figures_of(session, todays)
        assert computed.keys() == set(ids)
        for account_id in ids:
            assert computed[account_id] == _by_rows(session, account_id, todays[account_id]), account_id
        # The ledger is varied enough to mean something: money overdue, pending and available somewhere.
        assert all(any(getattr(f, name) for f in computed.values()) for name in vars(computed[ids[0]]))


def test_computing_and_storing_in_one_statement_stores_the_figures_and_clears_the_mark(db):
    now = datetime(2026, 12, 5, 15, tzinfo=UTC)
    with db() as session, session.begin():
        ids = _ledger(session, random.Random(13))
        for account_id in ids:
            session.get(Account, account_id).balance_stale_since = now
    todays = dict.fromkeys(ids, date(2026, 12, 5))
    with db() as session, session.begin():
        for account_id in ids:
            assert balance_rows.lock_if_stale(session, account_id)
            balance_rows.compute_and_store(session, account_id, todays[account_id], now)
    with db() as session:
        stored = balance_rows.list_stored_figures(session, ids)
        assert {i: row.figures for i, row in stored.items()} == {
            i: _by_rows(session, i, todays[i]) for i in ids
        }
        assert not any(row.stale for row in stored.values())
        assert all(row.computed_at == now for row in stored.values())
        # Marked no longer: the lock says there is nothing to recompute.
        assert balance_rows.lock_if_stale(session, ids[0]) is None


def test_owed_per_due_date_gives_the_figures_and_aging_every_invoice_gives(db):
    with db() as session, session.begin():
        ids = _ledger(session, random.Random(11))
    with db() as session:
        several_a_day = 0
        for account_id in ids:
            for today in (date(2026, 12, 1), date(2026, 12, 5), date(2026, 12, 31)):
                every_invoice = _facts_by_rows(session, account_id)
                per_day = balance_rows.list_owed_by_due_date(session, account_id, today)
                assert [f.settled_minor for f in per_day] == [0] * len(per_day)
                assert len({f.due_on for f in per_day}) == len(per_day)
                assert compute_aging(per_day, today) == compute_aging(every_invoice, today), account_id
                assert compute_figures(per_day, 0, 0, 0, today) == compute_figures(
                    every_invoice, 0, 0, 0, today
                )
            several_a_day += len(per_day) < len(every_invoice)
        # Invoices sharing a due date were summed somewhere (a settled one among them, floored at zero).
        assert several_a_day


def test_one_accounts_statements_are_planned_once_per_connection_not_at_every_run(db):
    """A recompute follows every money movement: its statement and the overview's take scalars, so after
    psycopg prepares them (the fifth run) PostgreSQL keeps one generic plan instead of planning each run."""
    with db() as session, session.begin():
        ids = _ledger(session, random.Random(17))
        # Tables of a size where a plan for the values differs from one for any values, as in production.
        session.execute(
            text(
                "INSERT INTO invoices (account_id, number, currency, total_minor, issued_on, due_on,"
                " discount_minor, voided, customer_visible)"
                " SELECT a.id, 'BULK-' || a.id || '-' || n, 'usd', 1000 + n, date '2026-11-01',"
                " date '2026-11-01' + n % 60, 0, false, true"
                " FROM accounts a, generate_series(1, 2500) AS n WHERE a.id = ANY(:ids)"
            ),
            {"ids": ids},
        )
        session.execute(text("ANALYZE"))
    with db() as session, session.begin():
        for _ in range(3):
            for account_id in ids:
                balance_rows.compute_and_store(session, account_id, date(2026, 12, 5), NOW)
                balance_rows.list_owed_by_due_date(session, account_id, date(2026, 12, 5))
        plans = session.execute(
            text(
                "SELECT generic_plans, custom_plans FROM pg_prepared_statements"
                " WHERE statement LIKE '%FROM owed GROUP BY due_on%'"
                " OR statement LIKE '%UPDATE accounts SET balance_minor = f.balance%FROM figures f%'"
            )
        ).all()
    # psycopg prepares a statement once it ran a few times; PostgreSQL plans its first five runs for their
    # values, then keeps one plan for the account's statements (arrays were planned at every run).
    runs = 3 * len(ids)
    assert len(plans) == 2, plans
    assert all(custom <= 5 and generic >= runs - 12 for generic, custom in plans), (runs, plans)
