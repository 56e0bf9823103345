"""The entry points the portal's web tier calls: validate, write rows, enqueue after commit. Never Stripe."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from types import SimpleNamespace

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from db.models import Account, Payment, Seller
from db.queries import invoices as invoice_rows
from db.queries import payments as payment_rows
from tasks.api import credit, new_methods, receipts, selection
from tasks.api.exports import export_payments  # noqa: F401  (part of this contract)
from tasks.api.external import ExternalPaymentReceipt, record_external_payment  # noqa: F401  (ditto)
from tasks.api.feed import (  # noqa: F401  (the ledger feed is part of this contract)
    LedgerEventView,
    feed_status,
    list_ledger_events,
    replay_ledger_events,
    retire_feed_secrets,
    set_feed_endpoint,
)
from tasks.api.guard import api_transaction
from tasks.api.history import (  # noqa: F401  (the payment history is part of this contract)
    MethodDisplay,
    PaymentPage,
    PaymentSummary,
    export_payments_csv,
    list_payments,
)
from tasks.api.invoices import (  # noqa: F401  (part of this contract)
    InvoicePage,
    InvoiceView,
    ScheduledPayment,
    export_invoices_csv,
    list_invoices,
    list_scheduled_payments,
)
from tasks.api.method_edits import update_payment_method  # noqa: F401  (editing a saved method)
from tasks.api.methods import (  # noqa: F401  (the saved-method entry points are part of this contract)
    SavedMethod,
    list_payment_methods,
    remove_payment_method,
    save_payment_method,
    set_default_payment_method,
    verify_microdeposits,
)
from tasks.api.payments_view import (  # noqa: F401  (one payment, and ending its authentication)
    CustomerAction,
    PaymentLine,
    PaymentReceipt,
    cancel_payment,
    confirm_payment,
    describe,
    get_payment,
)
from tasks.api.receipts import render_receipt  # noqa: F401  (the portal's receipts)
from tasks.api.sync import SyncResult, sync_accounts, sync_invoices  # noqa: F401  (the ERP sync contract)
from tasks.domain import allocation as plans
from tasks.domain import requests as checks
from tasks.domain.balances import Aging
from tasks.domain.dates import seller_today
from tasks.domain.errors import RemitError
from tasks.domain.feed import PAYMENT_ACCEPTED
from tasks.domain.states import CreditState, PaymentKind, PaymentStatus
from tasks.domain.transitions import SCHEDULED_EMAIL
from tasks.flows import feed, messages
from tasks.flows.balances import overview_figures, recompute_after_commit
from tasks.flows.ledger import apply_transition, queue_payment_email
from tasks.flows.payments import lock_in_order


@dataclass(frozen=True)
class PaymentPreview:
    currency: str
    total_minor: int
    credit_minor: int
    lines: tuple[PaymentLine, ...]
    warnings: tuple[str, ...]
    scheduled_for: date | None
    credit_used_minor: int = 0  # paid from available credit (use_credit); total_minor less it is charged


def preview_payment(
    account_id: int,
    invoice_ids: list[int] | None = None,
    amount: int | None = None,
    payment_method_id: int | None = None,
    pay_on: date | None = None,
    now: datetime | None = None,
    use_credit: bool = False,
) -> PaymentPreview:
    """What would be charged, per invoice, with discounts and warnings; writes nothing.

    With invoice_ids it previews pay_invoices (amount makes it short); with only amount, pay_amount.
    """
    _check_request(
        account_id, payment_method_id, preview=True, invoice_ids=invoice_ids, amount=amount, pay_on=pay_on
    )
    with api_transaction() as session:
        account, seller = selection.load_account(session, account_id, lock=False)
        if payment_method_id is not None:
            selection.load_method(session, account, seller, payment_method_id)
        today = seller_today(seller, now or _now())
        scheduled_for = checks.check_pay_on(pay_on, today)
        if invoice_ids is not None:
            plan, currency, _ = _invoice_plan(
                session, account, seller, invoice_ids, amount, scheduled_for or today, lock=False
            )
        else:
            plan, currency = (
                _amount_plan(
                    session, account, seller, checks.check_amount(amount), scheduled_for or today, lock=False
                ),
                account.currency,
            )
        used = (
            credit.plan_use(session, account.id, currency, plan).used_minor if _credit_flag(use_credit) else 0
        )
        session.rollback()
    return PaymentPreview(
        currency, plan.total_minor, plan.credit_minor, _lines(plan), plan.warnings, scheduled_for, used
    )


def pay_invoices(
    account_id: int,
    invoice_ids: list[int],
    payment_method_id: int,
    idempotency_key: str,
    amount: int | None = None,
    short_reason: str | None = None,
    comment: str | None = None,
    pay_on: date | None = None,
    now: datetime | None = None,
    use_credit: bool = False,
    *,
    payment_method: str | None = None,
    save_for_future: bool = False,
    method_display: dict | None = None,
) -> PaymentReceipt:
    """Pay one to 200 invoices in full, or short with a reason; now or on a future date.

    With a saved method's payment_method_id, or (payment_method_id None) a new card from Stripe.js:
    payment_method "pm_...", method_display and save_for_future (see tasks.api.new_methods). use_credit
    spends available credit first and charges only the rest (nothing when credit covers it).
    """
    new = new_methods.check_choice(payment_method_id, payment_method, save_for_future, method_display)
    _check_request(
        account_id,
        payment_method_id,
        idempotency_key,
        new_method=new is not None,
        invoice_ids=invoice_ids,
        amount=amount,
        reason=short_reason,
        comment=comment,
        pay_on=pay_on,
    )
    fingerprint = checks.request_hash(
        "pay_invoices",
        account_id=account_id,
        invoice_ids=_fingerprint_ids(invoice_ids),
        method=payment_method_id,
        amount=amount,
        reason=short_reason,
        comment=comment,
        pay_on=pay_on,
        **_new_method_fields(new),
        **_credit_flag(use_credit),
    )

    def build(session: Session, account: Account, seller: Seller, today: date) -> SimpleNamespace:
        method = new_methods.choose(session, account, seller, payment_method_id, new)
        scheduled_for = checks.check_pay_on(pay_on, today)
        # An early-payment discount is judged on the day the money moves.
        plan, currency, short = _invoice_plan(
            session, account, seller, invoice_ids, amount, scheduled_for or today, lock=True
        )
        reason, note = (None, None)
        if short:
            reason, note = checks.check_short_pay(short_reason, comment, seller.short_pay_reasons)
        return _create(
            session,
            account,
            method.id,
            PaymentKind.INVOICES,
            plan,
            currency,
            scheduled_for,
            idempotency_key,
            fingerprint,
            short_reason=reason,
            short_comment=note,
            saves_method=method.saves_method,
            use_credit=use_credit,
        )

    return _submit(account_id, idempotency_key, fingerprint, build, now)


def pay_amount(
    account_id: int,
    amount: int,
    payment_method_id: int,
    idempotency_key: str,
    pay_on: date | None = None,
    now: datetime | None = None,
    use_credit: bool = False,
    *,
    payment_method: str | None = None,
    save_for_future: bool = False,
    method_display: dict | None = None,
) -> PaymentReceipt:
    """A custom amount applied oldest invoice first, taking the discount of each invoice it pays in full
    within its window; a remainder becomes credit when deposits are allowed. use_credit, and a new card
    instead of a saved method, as in pay_invoices."""
    new = new_methods.check_choice(payment_method_id, payment_method, save_for_future, method_display)
    _check_request(
        account_id,
        payment_method_id,
        idempotency_key,
        new_method=new is not None,
        amount=amount,
        required_amount=True,
        pay_on=pay_on,
    )
    fingerprint = checks.request_hash(
        "pay_amount",
        account_id=account_id,
        amount=amount,
        method=payment_method_id,
        pay_on=pay_on,
        **_new_method_fields(new),
        **_credit_flag(use_credit),
    )

    def build(session: Session, account: Account, seller: Seller, today: date) -> SimpleNamespace:
        method = new_methods.choose(session, account, seller, payment_method_id, new)
        scheduled_for = checks.check_pay_on(pay_on, today)
        value = checks.check_amount(amount)
        plan = _amount_plan(session, account, seller, value, scheduled_for or today, lock=True)
        return _create(
            session,
            account,
            method.id,
            PaymentKind.AMOUNT,
            plan,
            account.currency,
            scheduled_for,
            idempotency_key,
            fingerprint,
            saves_method=method.saves_method,
            use_credit=use_credit,
        )

    return _submit(account_id, idempotency_key, fingerprint, build, now)


def make_deposit(
    account_id: int,
    amount: int,
    payment_method_id: int,
    idempotency_key: str,
    note: str | None = None,
    now: datetime | None = None,
    *,
    payment_method: str | None = None,
    save_for_future: bool = False,
    method_display: dict | None = None,
) -> PaymentReceipt:
    """Money on account as unapplied credit, with an optional note; a new card as in pay_invoices."""
    new = new_methods.check_choice(payment_method_id, payment_method, save_for_future, method_display)
    _check_request(
        account_id,
        payment_method_id,
        idempotency_key,
        new_method=new is not None,
        amount=amount,
        required_amount=True,
        note=note,
    )
    fingerprint = checks.request_hash(
        "make_deposit",
        account_id=account_id,
        amount=amount,
        method=payment_method_id,
        note=note,
        **_new_method_fields(new),
    )

    def build(session: Session, account: Account, seller: Seller, today: date) -> SimpleNamespace:
        if not seller.deposits_enabled:
            raise RemitError("deposits_disabled", f"{seller.name} does not accept deposits.")
        method = new_methods.choose(session, account, seller, payment_method_id, new)
        value = checks.check_amount(amount)
        plan = plans.Plan((), value, value)
        return _create(
            session,
            account,
            method.id,
            PaymentKind.DEPOSIT,
            plan,
            account.currency,
            None,
            idempotency_key,
            fingerprint,
            note=note.strip() if note else None,
            saves_method=method.saves_method,
        )

    return _submit(account_id, idempotency_key, fingerprint, build, now)


def apply_credit(
    account_id: int,
    invoice_ids: list[int] | None = None,
    amount: int | None = None,
    idempotency_key: str | None = None,
    now: datetime | None = None,
) -> PaymentReceipt:
    """Pay invoices from available credit alone: the invoices named in full (with their discounts), or an
    amount of credit oldest invoice first. Nothing reaches Stripe; the payment succeeds at once."""
    credit.check_request(account_id, invoice_ids, amount, idempotency_key)
    fingerprint = checks.request_hash(
        "apply_credit", account_id=account_id, invoice_ids=_fingerprint_ids(invoice_ids), amount=amount
    )

    def build(session: Session, account: Account, seller: Seller, today: date) -> SimpleNamespace:
        if invoice_ids is not None:
            plan, currency, _ = _invoice_plan(session, account, seller, invoice_ids, None, today, lock=True)
        else:
            plan, currency = (
                _amount_plan(session, account, seller, amount, today, lock=True),
                account.currency,
            )
            credit.require_no_remainder(plan, amount)
        return _create(
            session,
            account,
            None,
            PaymentKind.CREDIT,
            plan,
            currency,
            None,
            idempotency_key,
            fingerprint,
            use_credit=True,
            credit_only=True,
        )

    return _submit(account_id, idempotency_key, fingerprint, build, now)


def cancel_scheduled_payment(account_id: int, payment_id: int, now: datetime | None = None) -> PaymentReceipt:
    """Cancel a scheduled payment and free its invoices; refused once execution has begun.

    Locks the account (KEY SHARE) and then the payment, as every payment writer does: the dispatcher,
    which takes due payments first, skips one held here and shares the account lock.
    """
    checks.check_id(payment_id, "payment_not_found", "Payment")
    if not checks.is_id(account_id):
        raise RemitError("payment_not_found", f"Payment {payment_id} was not found on this account.")
    with api_transaction() as session:
        payment = lock_in_order(session, payment_id)
        if payment is None or payment.account_id != account_id:
            raise RemitError("payment_not_found", f"Payment {payment_id} was not found on this account.")
        if payment.status == PaymentStatus.CANCELED:
            return _receipt(session, payment, replayed=True)
        if payment.status != PaymentStatus.SCHEDULED:
            raise RemitError(
                "not_cancelable",
                f"Payment {payment_id} is already {payment.status} and can no longer be canceled.",
            )
        apply_transition(session, payment, PaymentStatus.CANCELED, source="api", now=now or _now())
        return _receipt(session, payment, replayed=False)


@dataclass(frozen=True)
class AccountOverview:
    account_id: int
    currency: str
    balance_minor: int
    overdue_minor: int
    pending_minor: int
    scheduled_minor: int
    credit_minor: int
    payment_count: int
    aging: Aging
    # What is owed less the available credit that can pay it (negative: the account holds more credit).
    net_owed_minor: int = 0


def account_overview(account_id: int, now: datetime | None = None) -> AccountOverview:
    """Balance, overdue, pending, scheduled, credit and aging, computed from the ledger as of now."""
    now = now or _now()
    with api_transaction() as session:
        account = selection.find_account(session, account_id)
        figures, aging = overview_figures(session, account, now)
        count = payment_rows.count_payments(session, account.id)
        return AccountOverview(
            account.id,
            account.currency,
            figures.balance_minor,
            figures.overdue_minor,
            figures.pending_minor,
            figures.scheduled_minor,
            figures.credit_minor,
            count,
            aging,
            figures.balance_minor - figures.credit_minor,
        )


def _check_request(
    account_id: object,
    method_id: object,
    key: object = None,
    *,
    preview: bool = False,
    new_method: bool = False,
    invoice_ids: object = None,
    amount: object = None,
    required_amount: bool = False,
    reason: object = None,
    comment: object = None,
    note: object = None,
    pay_on: object = None,
) -> None:
    """Everything a request can be refused for without reading a row, refused before any lock is taken:
    ids, key, the size of the selection, the amount's type and the free text. A preview has no key and
    may name no method."""
    checks.check_id(account_id, "account_not_found", "Account")
    if method_id is not None or not (preview or new_method):
        checks.check_id(method_id, "method_not_found", "Payment method")
    if not preview:
        checks.check_idempotency_key(key)
    if invoice_ids is not None:
        checks.check_invoice_ids(invoice_ids)
    if amount is not None or required_amount:
        checks.check_amount(amount)
    checks.check_pay_on_type(pay_on)
    checks.check_request_texts(reason, comment, note)


def _invoice_plan(
    session: Session, account: Account, seller: Seller, invoice_ids, amount, pay_day: date, lock: bool
) -> tuple[plans.Plan, str, bool]:
    """The plan for money moving on pay_day, its currency, and whether it is a short payment (less than the
    full amount due)."""
    chosen = selection.select_invoices(session, account, seller, invoice_ids, lock=lock)
    full = plans.plan_in_full(chosen.invoices, pay_day)
    if amount is None:
        if full.total_minor > checks.MAX_AMOUNT_MINOR:
            raise RemitError(
                "invalid_amount",
                f"The total of the selected invoices, {full.total_minor}, is above the "
                "largest single payment allowed; pay them in smaller groups.",
            )
        return full, chosen.currency, False
    value = checks.check_amount(amount)
    owed = sum(i.owed_minor for i in chosen.invoices)
    if value > owed:
        raise RemitError(
            "amount_exceeds_balance",
            f"The amount {value} is more than the {owed} owed on the selected invoices.",
        )
    if value == full.total_minor:  # the discounted total, while discounts apply, pays everything
        return full, chosen.currency, False
    # Each invoice the amount covers down to its discounted total takes its discount; what is left goes on
    # to the next invoice, then to credit. Short while it does not reach the discounted total.
    plan = plans.plan_amount(chosen.invoices, value, pay_day)
    if plan.credit_minor and not seller.deposits_enabled:
        raise RemitError(
            "amount_above_discounted_total",
            f"The amount {value} is more than the {full.total_minor} the selected invoices owe with their "
            f"early-payment discounts, and {seller.name} does not keep the difference as credit; "
            f"pay {full.total_minor}.",
        )
    return plan, chosen.currency, value < full.total_minor


def _new_method_fields(new: new_methods.NewMethod | None) -> dict:
    """A new card's part of the request fingerprint; none for a saved method, so those stay as they were."""
    return {} if new is None else {"new_method": new.stripe_id, "save_for_future": new.save}


def _fingerprint_ids(invoice_ids) -> list[int] | str:
    """The ids in order, so a retry listing them differently is the same request; anything unsortable as
    given, for the validation inside the request to refuse."""
    try:
        return sorted(invoice_ids or [])
    except TypeError:
        return repr(invoice_ids)


def _credit_flag(use_credit: bool) -> dict[str, bool]:
    """use_credit in a request's fingerprint only when set, so older requests keep theirs."""
    if not isinstance(use_credit, bool):
        raise RemitError("invalid_use_credit", "use_credit must be True or False.")
    return {"use_credit": True} if use_credit else {}


def _amount_plan(
    session: Session, account: Account, seller: Seller, amount: int, pay_day: date, lock: bool
) -> plans.Plan:
    invoices = selection.open_account_invoices(session, account, lock=lock)
    plan = plans.plan_amount(invoices, amount, pay_day)
    if plan.credit_minor and not seller.deposits_enabled:
        owed = amount - plan.credit_minor
        raise RemitError(
            "amount_exceeds_balance", f"The amount {amount} is more than the {owed} owed on this account."
        )
    return plan


def _submit(
    account_id: int,
    key: str,
    fingerprint: str,
    build: Callable[[Session, Account, Seller, date], SimpleNamespace],
    now: datetime | None,
) -> PaymentReceipt:
    now = now or _now()
    try:
        with api_transaction() as session:
            account, seller = selection.load_account(session, account_id, lock=True)
            existing = payment_rows.find_payment_by_key(session, account.id, key)
            if existing is not None:
                return _replay(session, existing, fingerprint)
            payment = build(session, account, seller, seller_today(seller, now))
            return _receipt(session, payment, replayed=False)
    except IntegrityError as exc:
        if "uq_allocations_one_reserved_per_invoice" in str(exc.orig):
            raise RemitError(
                "invoice_unavailable", "One of the invoices already has a payment in progress."
            ) from None
        raise


def _create(
    session: Session,
    account: Account,
    method_id: int | None,
    kind: PaymentKind,
    plan: plans.Plan,
    currency: str,
    scheduled_for: date | None,
    key: str,
    fingerprint: str,
    use_credit: bool = False,
    credit_only: bool = False,
    **extra,
) -> SimpleNamespace:
    use = credit.plan_use(session, account.id, currency, plan) if use_credit else credit.NO_CREDIT
    if credit_only:
        credit.require_covered(use, plan)
    status = PaymentStatus.SCHEDULED if scheduled_for else PaymentStatus.PENDING
    # Straight to the tables in one statement: a request reads nothing back as objects.
    row = dict(
        **receipts.new_reference(session, account.seller),
        account_id=account.id,
        kind=kind,
        amount_minor=plan.total_minor - use.used_minor,
        credit_used_minor=use.used_minor,
        currency=currency,
        payment_method_id=method_id,
        status=status,
        scheduled_for=scheduled_for,
        idempotency_key=key,
        request_hash=fingerprint,
        attempt=0,
        refunded_minor=0,
        **{"saves_method": False, **extra},
    )
    payment_id, marked_stale = payment_rows.insert_payment(
        session,
        row,
        [(line.invoice_id, line.amount_minor, line.discount_minor) for line in plan.lines],
        source="api",
        detail={"warnings": list(plan.warnings)} if plan.warnings else {},
        now=_now(),
    )
    if marked_stale:
        recompute_after_commit(session, account.id)
    payment = SimpleNamespace(id=payment_id, **row)
    feed.emit(session, PAYMENT_ACCEPTED, feed.accepted_data(payment, plan), seller_id=account.seller_id)
    credit.record_use(session, payment.id, use)
    if plan.credit_minor:
        invoice_rows.insert_credit(
            session,
            account_id=account.id,
            payment_id=payment.id,
            amount_minor=plan.credit_minor,
            currency=currency,
            state=CreditState.PENDING,
            note=extra.get("note"),
        )
    if status == PaymentStatus.SCHEDULED:
        queue_payment_email(session, payment_rows.lock_payment(session, payment.id), SCHEDULED_EMAIL, _now())
    elif payment.amount_minor == 0:
        credit.settle_from_credit(session, payment.id, _now())
        payment.status = PaymentStatus.SUCCEEDED
    else:
        messages.send_after_commit(session, "execute_payment", [(payment.id,)])
    session.info["remit_plan"] = plan
    return payment


def _replay(session: Session, payment: Payment, fingerprint: str) -> PaymentReceipt:
    if payment.request_hash != fingerprint:
        raise RemitError(
            "idempotency_key_reused", "This idempotency key was already used for a different payment request."
        )
    return _receipt(session, payment, replayed=True)


def _receipt(session: Session, payment: Payment | SimpleNamespace, replayed: bool) -> PaymentReceipt:
    plan = session.info.pop("remit_plan", None)
    if plan is not None:  # just created: the plan is what was written
        lines, warnings = _lines(plan), plan.warnings
    else:
        rows = invoice_rows.list_allocation_lines(session, payment.id)
        lines, warnings = tuple(PaymentLine(*row) for row in rows), ()
    used = getattr(payment, "credit_used_minor", 0) or 0
    created = payment.amount_minor + used - sum(line.amount_minor for line in lines)
    receipt = PaymentReceipt(
        payment.id,
        payment.status,
        payment.kind,
        payment.amount_minor,
        payment.currency,
        payment.scheduled_for,
        created,
        lines,
        warnings,
        replayed,
        reference=payment.reference,
        credit_used_minor=used,
    )
    return describe(session, receipt)


def _lines(plan: plans.Plan) -> tuple[PaymentLine, ...]:
    return tuple(PaymentLine(l.invoice_id, l.number, l.amount_minor, l.discount_minor) for l in plan.lines)


def _now() -> datetime:
    return datetime.now(UTC)
