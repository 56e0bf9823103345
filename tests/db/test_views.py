"""Plain views of joined rows (db.queries._views): every column of the row and of each party, as read."""

from psycopg._queries import MAX_CACHED_STATEMENT_LENGTH
from sqlalchemy import select
from sqlalchemy.dialects import postgresql

from db.models import Account, Payment, PaymentMethod, Seller
from db.queries import payments as payment_rows
from db.queries._views import _layout
from tests import factories


def test_a_payment_view_holds_every_column_of_the_payment_and_its_parties_as_stored(db):
    with db() as session, session.begin():
        account = factories.account(session)
        method = factories.method(session, account)
        first = factories.payment(session, account, method, amount_minor=1_234, status="pending")
        second = factories.payment(session, account, method, amount_minor=5_678, status="succeeded")
        ids = (first.id, second.id, account.id, method.id, account.seller_id)
    with db() as session, session.begin():
        _layout.cache_clear()
        views = payment_rows.lock_payment_views(session, payment_ids=list(ids[:2]))
        stored = {
            "payment": {p.id: p for p in session.scalars(select(Payment).where(Payment.id.in_(ids[:2])))},
            "method": session.get(PaymentMethod, ids[3]),
            "account": session.get(Account, ids[2]),
            "seller": session.get(Seller, ids[4]),
        }
        for view in views:
            payment = stored["payment"][view.id]
            columns = {c.name for c in Payment.__table__.c}
            assert vars(view).keys() == columns | {"method", "account", "seller"}
            assert all(getattr(view, c.name) == getattr(payment, c.key) for c in Payment.__table__.c)
            for party, model in (("method", PaymentMethod), ("account", Account), ("seller", Seller)):
                shown, row = getattr(view, party), stored[party]
                assert vars(shown) == {c.name: getattr(row, c.key) for c in model.__table__.c}
        assert [v.amount_minor for v in views] == [1_234, 5_678]
    # Which columns a view of this shape reads was worked out once, not at every row.
    assert _layout.cache_info().misses == 1 and _layout.cache_info().hits == 1


def test_the_payment_view_statements_stay_short_enough_for_psycopg_to_keep_their_conversion():
    """psycopg converts a query's text once and keeps it only up to MAX_CACHED_STATEMENT_LENGTH bytes:
    over it (the view's four tables by full name came to 4.4 KB), every execution of the hottest
    statements parsed the whole text again."""
    dialect = postgresql.psycopg.dialect()
    statements = {
        "in order": payment_rows._LOCK_PAYMENT_IN_ORDER,
        "views": payment_rows._LOCK_PAYMENT_VIEWS,
        "find": payment_rows._FIND_PAYMENT_VIEW,
        **{f"by {column}": statement for column, statement in payment_rows._LOCK_PAYMENT_BY.items()},
    }
    lengths = {name: len(str(s.compile(dialect=dialect)).encode()) for name, s in statements.items()}
    assert {name: n for name, n in lengths.items() if n > MAX_CACHED_STATEMENT_LENGTH} == {}
