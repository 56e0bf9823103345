"""Hostile input to every entry point of tasks.api: each is a RemitError with a stable code, nothing written.

Replays issue 13's "raw exceptions escape tasks.api" cases against real PostgreSQL and Redis: NUL and control
characters in keys, comments, notes, reasons and method fields; ids of 2**63 and bools as ids; an integer
mandate IP; a 1 MB reason; 60,000 invoice ids; a row held locked by another transaction; microdeposit
guessing.
"""

from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta

import psycopg
import pytest
from sqlalchemy import func, select

from db.models import Allocation, Credit, Email, Payment, PaymentEvent, PaymentMethod
from db.session import libpq_url
from tasks import api
from tasks.api import methods
from tasks.domain.errors import RemitError
from tests import factories
from tests.helpers import queued_messages

NOW = datetime(2026, 11, 22, 18, 0, tzinfo=UTC)
BIG = 2**63
MANDATE = {
    "accepted_at": NOW - timedelta(minutes=2),
    "ip_address": "203.0.113.9",
    "user_agent": "Mozilla/5.0 (portal)",
    "text_version": "2026-01",
}
CARD = dict(kind="card", last4="4242", brand="visa", exp_month=12, exp_year=2034)
BANK = dict(kind="us_bank_account", last4="6789", bank_name="STRIPE TEST BANK")
WRITTEN = (Payment, Allocation, Credit, Email, PaymentEvent, PaymentMethod)


@pytest.fixture()
def world(db, broker):
    """An account with a card, a bank account waiting for microdeposits, five invoices and one scheduled
    payment (id 1) on another account of the same seller."""
    with db() as session:
        seller = factories.seller(session, timezone="UTC")
        other = factories.account(session, seller)
        other_card = factories.method(session, other)
        scheduled = factories.payment(
            session, other, other_card, status="scheduled", scheduled_for=date(2026, 12, 20)
        )
        account = factories.account(session, seller)
        w = type("World", (), {})()
        w.db, w.broker, w.account_id, w.other_account_id = db, broker, account.id, other.id
        w.scheduled_id = scheduled.id
        w.card = factories.method(session, account).id
        w.pending_bank = factories.method(
            session,
            account,
            kind="us_bank_account",
            status="verification_pending",
            stripe_setup_intent_id="seti_test_pending",
        ).id
        w.invoices = [
            factories.invoice(session, account, total_minor=10_000, due_on=date(2026, 12, n + 1)).id
            for n in range(5)
        ]
        session.commit()
    assert w.scheduled_id == 1 and w.other_account_id == 1
    return w


def _snapshot(w) -> list:
    with w.db() as session:
        counts = [session.scalar(select(func.count()).select_from(m)) for m in WRITTEN]
        statuses = sorted(session.execute(select(Payment.id, Payment.status)).all())
    queues = [len(queued_messages(w.broker, q)) for q in ("payments", "ach", "emails")]
    return [counts, statuses, queues]


def _refused(w, code, call) -> RemitError:
    """The call is refused with this code, a bounded message, and not one row or message written."""
    before = _snapshot(w)
    with pytest.raises(RemitError) as caught:
        call()
    assert caught.value.code == code, caught.value
    assert 10 < len(caught.value.message) <= 500
    assert _snapshot(w) == before
    return caught.value


@contextmanager
def _held(table: str, row_id: int):
    """The row locked FOR UPDATE by another connection until the block ends."""
    with psycopg.connect(libpq_url(_database_url())) as other:
        other.execute(f"SELECT 1 FROM {table} WHERE id = %s FOR UPDATE", (row_id,))
        try:
            yield
        finally:
            other.rollback()


def _database_url() -> str:
    import os

    return os.environ["DATABASE_URL"]


def _pay(w, **overrides):
    values = dict(
        account_id=w.account_id, invoice_ids=w.invoices[:1], payment_method_id=w.card, idempotency_key="k"
    )
    return lambda: api.pay_invoices(**{**values, **overrides})


def _save(w, **overrides):
    values = {**CARD, "stripe_payment_method_id": "pm_card_visa", "idempotency_key": "save-1", "now": NOW}
    return lambda: methods.save_payment_method(w.account_id, **{**values, **overrides})


def _save_bank(w, **mandate):
    values = {**BANK, "stripe_payment_method_id": "pm_usBankAccount_success", "idempotency_key": "save-2"}
    return lambda: methods.save_payment_method(
        w.account_id, **values, mandate={**MANDATE, **mandate}, now=NOW
    )


# -- NUL and control characters in text ----------------------------------------------------------------------


@pytest.mark.parametrize("key", ["k\x00", "checkout\n7", "k\x1b[2J", "k\x7f", "k\ud800", "k\u0085"])
def test_control_characters_in_an_idempotency_key(world, key):
    _refused(world, "invalid_idempotency_key", _pay(world, idempotency_key=key))
    _refused(world, "invalid_idempotency_key", lambda: api.pay_amount(world.account_id, 500, world.card, key))
    _refused(
        world, "invalid_idempotency_key", lambda: api.make_deposit(world.account_id, 500, world.card, key)
    )
    _refused(world, "invalid_idempotency_key", _save(world, idempotency_key=key))


def test_nul_in_a_short_payment_comment(world):
    _refused(
        world, "invalid_comment", _pay(world, amount=5_000, short_reason="Other", comment="disputed\x00 line")
    )


def test_nul_in_a_short_payment_reason(world):
    _refused(world, "invalid_short_reason", _pay(world, amount=5_000, short_reason="Other\x00"))


def test_nul_in_a_deposit_note(world):
    _refused(
        world,
        "invalid_note",
        lambda: api.make_deposit(world.account_id, 5_000, world.card, "k", note="a\x00b"),
    )


def test_a_comment_or_note_may_break_lines(world):
    receipt = api.make_deposit(
        world.account_id, 5_000, world.card, "k", note="for March\r\nand April\tthanks"
    )
    assert receipt.status == "pending"
    with world.db() as session:
        assert session.scalar(select(Credit.note)) == "for March\r\nand April\tthanks"


@pytest.mark.parametrize(
    "field,value,code",
    [
        ("brand", "visa\x00", "invalid_method_details"),
        ("brand", "vi\nsa", "invalid_method_details"),
        ("last4", "4242\n", "invalid_method_details"),
        ("stripe_payment_method_id", "pm_card_visa\n", "invalid_payment_method"),
        ("stripe_payment_method_id", "pm_card\x00visa", "invalid_payment_method"),
    ],
)
def test_control_characters_in_card_fields(world, field, value, code):
    _refused(world, code, _save(world, **{field: value}))


@pytest.mark.parametrize(
    "mandate",
    [
        {"user_agent": "Mozilla\x00/5.0"},
        {"text_version": "2026\x00"},
        {"ip_address": "203.0.113.9\x00"},
        {"ip_address": 1},
        {"ip_address": 3405803785},
        {"ip_address": b"\xcb\x00q\t"},
        {"ip_address": "fe80::1%" + "x" * 100},
    ],
)
def test_malformed_mandate(world, mandate):
    _refused(world, "invalid_mandate", _save_bank(world, **mandate))


def test_nul_in_a_bank_name(world):
    _refused(
        world,
        "invalid_method_details",
        lambda: methods.save_payment_method(
            world.account_id,
            **{**BANK, "bank_name": "STRIPE\x00BANK"},
            stripe_payment_method_id="pm_usBankAccount_success",
            idempotency_key="save-3",
            mandate=MANDATE,
            now=NOW,
        ),
    )


# -- ids: out of range, bools, strings -----------------------------------------------------------------------


@pytest.mark.parametrize("bad", [BIG, 2**64, -1, 0, True, "1", 1.0, None])
def test_account_ids_that_cannot_be_ids(world, bad):
    for call in (
        lambda: api.account_overview(bad),
        lambda: api.list_invoices(bad),
        lambda: methods.list_payment_methods(bad),
        lambda: api.preview_payment(bad, amount=500),
        _pay(world, account_id=bad),
        lambda: api.pay_amount(bad, 500, world.card, "k"),
        lambda: api.make_deposit(bad, 500, world.card, "k"),
        lambda: methods.save_payment_method(
            bad, **CARD, stripe_payment_method_id="pm_x", idempotency_key="s"
        ),
        lambda: methods.set_default_payment_method(bad, world.card),
        lambda: methods.remove_payment_method(bad, world.card),
        lambda: methods.verify_microdeposits(bad, world.pending_bank, [32, 45]),
    ):
        _refused(world, "account_not_found", call)


@pytest.mark.parametrize("bad", [BIG, True, 2**70, "1"])
def test_method_ids_that_cannot_be_ids(world, bad):
    for call in (
        _pay(world, payment_method_id=bad),
        lambda: api.pay_amount(world.account_id, 500, bad, "k"),
        lambda: api.make_deposit(world.account_id, 500, bad, "k"),
        lambda: api.preview_payment(world.account_id, amount=500, payment_method_id=bad),
        lambda: methods.set_default_payment_method(world.account_id, bad),
        lambda: methods.remove_payment_method(world.account_id, bad),
        lambda: methods.verify_microdeposits(world.account_id, bad, [32, 45]),
    ):
        _refused(world, "method_not_found", call)


@pytest.mark.parametrize("bad", [[BIG], [1, True], [2**64], [-(2**63) - 1], [1, "2"]])
def test_invoice_ids_that_cannot_be_ids(world, bad):
    _refused(world, "invalid_invoice_id", _pay(world, invoice_ids=bad))
    _refused(world, "invalid_invoice_id", lambda: api.preview_payment(world.account_id, invoice_ids=bad))


def test_true_is_not_payment_1(world):
    """cancel_scheduled_payment(True) once canceled payment 1, since True == 1 in Python."""
    _refused(world, "payment_not_found", lambda: api.cancel_scheduled_payment(world.other_account_id, True))
    _refused(world, "payment_not_found", lambda: api.cancel_scheduled_payment(True, world.scheduled_id))
    _refused(world, "account_not_found", lambda: api.account_overview(True))


@pytest.mark.parametrize("bad", [BIG, 2**80, "1", 1.0])
def test_payment_ids_that_cannot_be_ids(world, bad):
    _refused(world, "payment_not_found", lambda: api.cancel_scheduled_payment(world.other_account_id, bad))


# -- nothing echoed unbounded --------------------------------------------------------------------------------


def test_a_one_megabyte_reason_is_not_echoed(world):
    reason = "R" * 1_000_000
    error = _refused(world, "invalid_short_reason", _pay(world, amount=5_000, short_reason=reason))
    assert "R" * 100 not in error.message


@pytest.mark.parametrize(
    "call,code",
    [
        (lambda w: api.account_overview("A" * 1_000_000), "account_not_found"),
        (lambda w: api.pay_amount(w.account_id, "9" * 1_000_000, w.card, "k"), "invalid_amount"),
        (lambda w: api.pay_amount(w.account_id, 10**5000, w.card, "k"), "invalid_amount"),
        (lambda w: api.cancel_scheduled_payment(w.account_id, "P" * 1_000_000), "payment_not_found"),
        (lambda w: api.make_deposit(w.account_id, 500, w.card, "k", note="N" * 1_000_000), "invalid_note"),
        (
            lambda w: methods.save_payment_method(
                w.account_id,
                **{**CARD, "kind": "K" * 1_000_000},
                stripe_payment_method_id="pm_x",
                idempotency_key="s",
            ),
            "invalid_method_kind",
        ),
        (lambda w: api.account_overview(-(10**5000)), "account_not_found"),
    ],
)
def test_huge_inputs_are_not_echoed(world, call, code):
    error = _refused(world, code, lambda: call(world))
    assert len(error.message) < 200


# -- sizes checked before any lock ---------------------------------------------------------------------------


def test_sixty_thousand_invoice_ids_are_refused_before_any_lock(world):
    """With the account row held by another transaction, a request that took the lock would wait for it
    (and time out); this one is refused without touching the database."""
    ids = list(range(1, 60_001))
    with _held("accounts", world.account_id):
        _refused(world, "too_many_invoices", _pay(world, invoice_ids=ids))
        _refused(world, "too_many_invoices", _pay(world, invoice_ids=ids + ids))
        _refused(world, "too_many_invoices", lambda: api.preview_payment(world.account_id, invoice_ids=ids))


def test_malformed_requests_are_refused_before_any_lock(world):
    with _held("accounts", world.account_id):
        _refused(world, "invalid_comment", _pay(world, amount=5_000, short_reason="Other", comment="\x00"))
        _refused(world, "duplicate_invoices", _pay(world, invoice_ids=[world.invoices[0]] * 2))
        _refused(world, "invalid_amount", lambda: api.pay_amount(world.account_id, True, world.card, "k"))
        _refused(world, "invalid_pay_on", _pay(world, pay_on="2026-12-24\x00"))
        _refused(
            world,
            "invalid_pay_on",
            lambda: api.pay_amount(world.account_id, 500, world.card, "k", pay_on=NOW + timedelta(days=3)),
        )


# -- a lock we cannot get is "busy" --------------------------------------------------------------------------


def test_a_locked_account_is_busy_not_a_raw_lock_timeout(world):
    with _held("accounts", world.account_id):
        error = _refused(world, "busy", _pay(world))
        _refused(world, "busy", _save(world))
    assert "try again" in error.message.lower()
    receipt = _pay(world)()  # the same request, once the lock is gone
    assert receipt.status == "pending"


def test_a_deadlock_is_busy(world):
    """Another transaction holds an invoice and then asks for the account pay_invoices holds while it
    waits for that invoice: PostgreSQL breaks the cycle by aborting the request, which is busy."""
    import threading

    from tests.helpers import wait_until

    outcome = {}

    def request():
        try:
            outcome["receipt"] = _pay(world)()
        except Exception as exc:  # the assertion below names what came out
            outcome["error"] = exc

    before = _snapshot(world)
    with psycopg.connect(libpq_url(_database_url())) as other:
        other.execute("SELECT 1 FROM invoices WHERE id = %s FOR UPDATE", (world.invoices[0],))
        other_pid = other.info.backend_pid
        thread = threading.Thread(target=request)
        thread.start()
        with psycopg.connect(libpq_url(_database_url()), autocommit=True) as watcher:
            wait_until(
                lambda: (
                    watcher.execute(
                        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                        "AND datname = current_database() AND pid <> %s",
                        (other_pid,),
                    ).fetchone()[0]
                    == 1
                )
            )
        other.execute("SELECT 1 FROM accounts WHERE id = %s FOR UPDATE", (world.account_id,))
        other.rollback()
    thread.join(30)
    error = outcome.get("error")
    assert isinstance(error, RemitError) and error.code == "busy", outcome
    assert _snapshot(world) == before


def test_a_locked_payment_is_busy_to_cancel(world):
    with _held("payments", world.scheduled_id):
        _refused(
            world, "busy", lambda: api.cancel_scheduled_payment(world.other_account_id, world.scheduled_id)
        )
    assert api.cancel_scheduled_payment(world.other_account_id, world.scheduled_id).status == "canceled"


def test_a_locked_method_is_busy_to_verify(world):
    with _held("payment_methods", world.pending_bank):
        _refused(
            world, "busy", lambda: methods.verify_microdeposits(world.account_id, world.pending_bank, [1, 2])
        )


# -- microdeposit guessing -----------------------------------------------------------------------------------


def test_microdeposit_attempts_are_limited_per_method_per_day(world):
    from tasks.domain.methods import MAX_MICRODEPOSIT_ATTEMPTS_PER_DAY

    for n in range(MAX_MICRODEPOSIT_ATTEMPTS_PER_DAY):
        methods.verify_microdeposits(world.account_id, world.pending_bank, [1 + n, 2], now=NOW)
    assert len(queued_messages(world.broker, "ach")) == MAX_MICRODEPOSIT_ATTEMPTS_PER_DAY
    _refused(
        world,
        "too_many_verification_attempts",
        lambda: methods.verify_microdeposits(world.account_id, world.pending_bank, [32, 45], now=NOW),
    )
    _refused(
        world,
        "too_many_verification_attempts",
        lambda: methods.verify_microdeposits(
            world.account_id, world.pending_bank, None, "SM11AA", now=NOW + timedelta(hours=5)
        ),
    )
    with world.db() as session:  # counted on the row: a restart forgets nothing
        row = session.get(PaymentMethod, world.pending_bank)
        assert (row.verification_attempts, row.verification_attempts_on) == (5, NOW.date())
    tomorrow = NOW + timedelta(days=1)
    methods.verify_microdeposits(world.account_id, world.pending_bank, [32, 45], now=tomorrow)
    assert len(queued_messages(world.broker, "ach")) == MAX_MICRODEPOSIT_ATTEMPTS_PER_DAY + 1
