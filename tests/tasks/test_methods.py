"""The web tier's saved-method entry points on real Postgres: refusals write nothing, never a Stripe call."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from db.models import Email, PaymentMethod
from tasks.api import methods
from tasks.domain.errors import RemitError
from tests import factories

NOW = datetime(2026, 11, 22, 18, 0, tzinfo=UTC)
MANDATE = {
    "accepted_at": NOW - timedelta(minutes=2),
    "ip_address": "203.0.113.9",
    "user_agent": "Mozilla/5.0 (portal)",
    "text_version": "2026-01",
}
CARD = dict(kind="card", last4="4242", brand="visa", exp_month=12, exp_year=2034)
BANK = dict(kind="us_bank_account", last4="6789", bank_name="STRIPE TEST BANK")


class Portal:
    """A seller with two accounts and nothing saved yet; the accounts have no Stripe customer."""

    def __init__(self, db, gateway):
        with db() as session:
            self.seller = factories.seller(session, timezone="UTC")
            self.account_id = factories.account(session, self.seller).id
            self.other_account_id = factories.account(session, self.seller).id
            session.commit()
        self.db = db
        self.gateway = gateway
        self._keys = iter(range(1, 10_000))

    def save_card(self, token="pm_card_visa", account_id=None, **overrides):
        values = {**CARD, "idempotency_key": f"save-{next(self._keys)}", **overrides}
        return methods.save_payment_method(
            account_id or self.account_id, stripe_payment_method_id=token, now=NOW, **values
        )

    def save_bank(self, token="pm_usBankAccount_success", account_id=None, **overrides):
        values = {**BANK, "idempotency_key": f"save-{next(self._keys)}", "mandate": MANDATE, **overrides}
        return methods.save_payment_method(
            account_id or self.account_id, stripe_payment_method_id=token, now=NOW, **values
        )

    def raw_bank_method(self, account_number="000123456789") -> str:
        """A bank PaymentMethod made from raw account details, as Stripe.js makes it: needs microdeposits."""
        return self.gateway._client.v1.payment_methods.create(
            {
                "type": "us_bank_account",
                "billing_details": {"name": "Acme Corp"},
                "us_bank_account": {
                    "routing_number": "110000000",
                    "account_number": account_number,
                    "account_holder_type": "company",
                },
            }
        ).id

    def method(self, method_id) -> PaymentMethod:
        with self.db() as session:
            return session.get(PaymentMethod, method_id)

    def methods(self, account_id=None) -> list[PaymentMethod]:
        with self.db() as session:
            return list(
                session.scalars(
                    select(PaymentMethod)
                    .where(PaymentMethod.account_id == (account_id or self.account_id))
                    .order_by(PaymentMethod.id)
                )
            )

    def set_status(self, method_id, **values):
        with self.db() as session:
            session.execute(update(PaymentMethod).where(PaymentMethod.id == method_id).values(**values))
            session.commit()

    def payment(self, method_id, status="pending", **overrides):
        with self.db() as session:
            from db.models import Account

            account = session.get(Account, self.account_id)
            payment = factories.payment(
                session, account, session.get(PaymentMethod, method_id), status=status, **overrides
            )
            session.commit()
            return payment.id

    def emails(self) -> list[str]:
        with self.db() as session:
            return sorted(session.scalars(select(Email.kind).where(Email.account_id == self.account_id)))


@pytest.fixture()
def portal(db, gateway, broker):
    return Portal(db, gateway)


def _refused(fn, *args, **kwargs) -> str:
    with pytest.raises(RemitError) as caught:
        fn(*args, **kwargs)
    assert caught.value.message
    return caught.value.code


# -- save_payment_method -------------------------------------------------------------------------------------


def test_saving_a_card_writes_a_pending_row_with_the_portals_display_data_and_calls_no_stripe(
    portal, emulator
):
    saved = portal.save_card()
    row = portal.method(saved.id)
    assert (row.kind, row.status, row.stripe_payment_method_id) == (
        "card",
        "verification_pending",
        "pm_card_visa",
    )
    assert (row.brand, row.last4, row.exp_month, row.exp_year, row.is_default) == (
        "visa",
        "4242",
        12,
        2034,
        False,
    )
    assert (saved.status, saved.replayed) == ("verification_pending", False)
    assert emulator.requests() == []


def test_saving_a_bank_account_records_the_mandate(portal, emulator):
    saved = portal.save_bank()
    row = portal.method(saved.id)
    assert (row.kind, row.status, row.bank_name, row.last4) == (
        "us_bank_account",
        "verification_pending",
        "STRIPE TEST BANK",
        "6789",
    )
    assert (row.mandate_accepted_at, row.mandate_ip, row.mandate_user_agent, row.mandate_text_version) == (
        MANDATE["accepted_at"],
        "203.0.113.9",
        "Mozilla/5.0 (portal)",
        "2026-01",
    )
    assert emulator.requests() == []


def test_saving_the_same_payment_method_again_returns_the_first_row(portal):
    first = portal.save_card()
    again = portal.save_card(idempotency_key="another-click")
    assert (again.id, again.replayed) == (first.id, True)
    assert len(portal.methods()) == 1


@pytest.mark.parametrize(
    "overrides,code",
    [
        ({"mandate": None}, "mandate_required"),
        ({"mandate": {**MANDATE, "ip_address": "nowhere"}}, "invalid_mandate"),
        ({"mandate": {**MANDATE, "accepted_at": NOW + timedelta(days=1)}}, "invalid_mandate"),
        ({"idempotency_key": ""}, "invalid_idempotency_key"),
        ({"idempotency_key": "k" * 256}, "invalid_idempotency_key"),
        ({"token": None}, "invalid_payment_method"),
        ({"token": "tok_visa"}, "invalid_payment_method"),
        ({"kind": "sepa_debit"}, "invalid_method_kind"),
        ({"last4": "12"}, "invalid_method_details"),
        ({"set_default": "yes"}, "invalid_set_default"),
        ({"account_id": 999_999}, "account_not_found"),
        ({"account_id": "1"}, "account_not_found"),
    ],
)
def test_a_refused_bank_save_writes_nothing(portal, overrides, code):
    assert _refused(portal.save_bank, **overrides) == code
    assert portal.methods() == []


@pytest.mark.parametrize(
    "overrides,code",
    [
        ({"exp_month": 13}, "invalid_method_details"),
        ({"brand": None}, "invalid_method_details"),
        ({"kind": None}, "invalid_method_kind"),
    ],
)
def test_a_refused_card_save_writes_nothing(portal, overrides, code):
    assert _refused(portal.save_card, **overrides) == code
    assert portal.methods() == []


@pytest.mark.parametrize("column,save", [("cards_enabled", "save_card"), ("ach_enabled", "save_bank")])
def test_a_kind_the_seller_does_not_accept_is_refused(portal, column, save):
    with portal.db() as session:
        session.execute(
            update(type(portal.seller))
            .where(type(portal.seller).id == portal.seller.id)
            .values(**{column: False})
        )
        session.commit()
    assert _refused(getattr(portal, save)) == "method_not_accepted"
    assert portal.methods() == []


def test_a_payment_method_saved_on_another_account_is_refused(portal):
    portal.save_card(account_id=portal.other_account_id)
    assert _refused(portal.save_card) == "method_taken"
    assert portal.methods() == []


def test_a_removed_payment_method_cannot_be_saved_again(portal):
    saved = portal.save_card()
    methods.remove_payment_method(portal.account_id, saved.id)
    assert _refused(portal.save_card) == "method_removed"


def test_saving_as_default_takes_the_default_from_the_previous_one(portal):
    first = portal.save_card(set_default=True)
    second = portal.save_card(token="pm_card_mastercard", set_default=True)
    assert (portal.method(first.id).is_default, portal.method(second.id).is_default) == (False, True)


# -- set_default_payment_method ------------------------------------------------------------------------------


def test_the_default_swaps_in_one_step_and_stays_unique(portal):
    first = portal.save_card(set_default=True)
    second = portal.save_card(token="pm_card_mastercard")
    chosen = methods.set_default_payment_method(portal.account_id, second.id)
    assert (chosen.is_default, chosen.replayed) == (True, False)
    assert [m.is_default for m in portal.methods()] == [False, True]
    assert methods.set_default_payment_method(portal.account_id, second.id).replayed is True
    assert methods.set_default_payment_method(portal.account_id, first.id).is_default is True
    assert [m.is_default for m in portal.methods()] == [True, False]


def test_the_database_refuses_a_second_default_on_its_own(portal):
    portal.save_card(set_default=True)
    second = portal.save_card(token="pm_card_mastercard")
    with pytest.raises(IntegrityError, match="uq_payment_methods_one_default"):
        portal.set_status(second.id, is_default=True)


@pytest.mark.parametrize(
    "status,code", [("removed", "method_removed"), ("verification_failed", "method_unverified")]
)
def test_a_removed_or_failed_method_cannot_become_the_default(portal, status, code):
    saved = portal.save_card()
    portal.set_status(saved.id, status=status)
    assert _refused(methods.set_default_payment_method, portal.account_id, saved.id) == code
    assert portal.method(saved.id).is_default is False


def test_another_accounts_method_is_not_found(portal):
    theirs = portal.save_card(account_id=portal.other_account_id)
    assert _refused(methods.set_default_payment_method, portal.account_id, theirs.id) == "method_not_found"
    assert _refused(methods.remove_payment_method, portal.account_id, theirs.id) == "method_not_found"
    assert (
        _refused(methods.verify_microdeposits, portal.account_id, theirs.id, [32, 45]) == "method_not_found"
    )
    assert _refused(methods.set_default_payment_method, portal.account_id, True) == "method_not_found"
    assert portal.method(theirs.id).status == "verification_pending"


# -- remove_payment_method -----------------------------------------------------------------------------------


def test_the_default_is_kept_while_another_method_could_take_its_place(portal):
    default = portal.save_card(set_default=True)
    other = portal.save_card(token="pm_card_mastercard")
    assert _refused(methods.remove_payment_method, portal.account_id, default.id) == "method_is_default"
    assert portal.method(default.id).status == "verification_pending"
    methods.set_default_payment_method(portal.account_id, other.id)
    assert methods.remove_payment_method(portal.account_id, default.id).status == "removed"


def test_the_last_method_can_be_removed_even_as_default(portal):
    only = portal.save_card(set_default=True)
    removed = methods.remove_payment_method(portal.account_id, only.id)
    assert (removed.status, removed.is_default) == ("removed", False)


@pytest.mark.parametrize("status", ["pending", "submitting", "processing", "requires_action", "scheduled"])
def test_a_method_a_payment_still_needs_cannot_be_removed(portal, status):
    saved = portal.save_card()
    extra = {"scheduled_for": NOW.date() + timedelta(days=3)} if status == "scheduled" else {}
    portal.payment(saved.id, status=status, **extra)
    assert _refused(methods.remove_payment_method, portal.account_id, saved.id) == "method_in_use"
    assert portal.method(saved.id).status == "verification_pending"


def test_a_method_can_be_removed_once_its_payment_failed(portal):
    saved = portal.save_card()
    payment_id = portal.payment(saved.id, status="pending")
    assert _refused(methods.remove_payment_method, portal.account_id, saved.id) == "method_in_use"
    with portal.db() as session:
        from db.models import Payment

        session.execute(update(Payment).where(Payment.id == payment_id).values(status="failed"))
        session.commit()
    assert methods.remove_payment_method(portal.account_id, saved.id).status == "removed"
    again = methods.remove_payment_method(portal.account_id, saved.id)
    assert (again.status, again.replayed) == ("removed", True)


def test_a_removed_method_is_no_longer_listed(portal):
    kept = portal.save_card()
    gone = portal.save_card(token="pm_card_mastercard")
    methods.remove_payment_method(portal.account_id, gone.id)
    assert [m.id for m in methods.list_payment_methods(portal.account_id)] == [kept.id]


# -- verify_microdeposits ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "amounts,code,expected",
    [
        (None, None, "verification_values_required"),
        ([32, 45], "SM11AA", "verification_values_required"),
        ([32], None, "invalid_microdeposit_amounts"),
        ([0, 45], None, "invalid_microdeposit_amounts"),
        (None, "NOPE", "invalid_descriptor_code"),
    ],
)
def test_verification_values_are_checked_before_anything_is_read(portal, amounts, code, expected):
    saved = portal.save_bank(token=portal.raw_bank_method())
    assert _refused(methods.verify_microdeposits, portal.account_id, saved.id, amounts, code) == expected


def test_only_a_bank_account_waiting_for_its_microdeposits_can_be_verified(portal):
    card = portal.save_card()
    assert (
        _refused(methods.verify_microdeposits, portal.account_id, card.id, [32, 45]) == "not_a_bank_account"
    )
    bank = portal.save_bank(token=portal.raw_bank_method())
    assert (
        _refused(methods.verify_microdeposits, portal.account_id, bank.id, [32, 45])
        == "verification_not_started"
    )
    portal.set_status(bank.id, stripe_setup_intent_id="seti_test", status="active")
    assert _refused(methods.verify_microdeposits, portal.account_id, bank.id, [32, 45]) == "already_verified"
    portal.set_status(bank.id, status="verification_failed")
    assert _refused(methods.verify_microdeposits, portal.account_id, bank.id, [32, 45]) == "not_verifiable"


def test_no_email_is_written_by_the_entry_points(portal):
    saved = portal.save_bank()
    methods.set_default_payment_method(portal.account_id, saved.id)
    with portal.db() as session:
        assert session.scalar(select(func.count()).select_from(Email)) == 0


# -- races ---------------------------------------------------------------------------------------------------


def _together(*calls):
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(len(calls)) as pool:
        return [f.result() for f in [pool.submit(call) for call in calls]]


def test_concurrent_default_swaps_leave_exactly_one_default(portal):
    first = portal.save_card()
    second = portal.save_card(token="pm_card_mastercard")
    calls = [
        lambda m=m: methods.set_default_payment_method(portal.account_id, m)
        for m in [first.id, second.id] * 8
    ]
    _together(*calls)
    assert sum(m.is_default for m in portal.methods()) == 1


def test_a_double_submitted_save_writes_one_row(portal):
    results = _together(*[lambda n=n: portal.save_card(idempotency_key=f"click-{n}") for n in range(6)])
    assert len({r.id for r in results}) == 1
    assert sorted(r.replayed for r in results) == [False] + [True] * 5
    assert len(portal.methods()) == 1
