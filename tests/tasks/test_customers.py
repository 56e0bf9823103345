"""The account's Stripe customer, shared by the payment and saved-method flows."""

from db.models import Account
from db.queries import accounts as account_rows
from tasks.flows import customers
from tests import factories


def _account(db, **values) -> int:
    with db() as session:
        account_id = factories.account(session, **values).id
        session.commit()
    return account_id


def test_the_first_stored_customer_is_kept_and_returned(db):
    account_id = _account(db, stripe_customer_id=None)
    with db() as session:
        assert account_rows.update_stripe_customer(session, account_id, "cus_first") == "cus_first"
        assert account_rows.update_stripe_customer(session, account_id, "cus_second") == "cus_first"
        session.commit()
    with db() as session:
        assert session.get(Account, account_id).stripe_customer_id == "cus_first"


def test_ensure_customer_creates_it_at_stripe_once_under_the_accounts_key(db, emulator, gateway):
    account_id = _account(db, stripe_customer_id=None)
    first = customers.ensure_customer(account_id, "ap@customer.test", "Customer")
    assert customers.ensure_customer(account_id, "ap@customer.test", "Customer") == first
    assert [c["id"] for c in emulator.customers()] == [first]
    creates = [r for r in emulator.requests() if r["path"] == "/v1/customers"]
    assert {r["idempotency_key"] for r in creates} == {f"remit-customer-{account_id}"}
