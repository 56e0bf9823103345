"""Typed SQLAlchemy models; PostgreSQL itself enforces the rules that protect money."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from tasks.domain.states import (
    AllocationState,
    CreditState,
    EmailStatus,
    EventStatus,
    ExternalPaymentKind,
    FailedJobStatus,
    FeedDeliveryStatus,
    MethodKind,
    MethodStatus,
    PaymentKind,
    PaymentStatus,
)

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def _one_of(column: str, enum: type[StrEnum], name: str) -> CheckConstraint:
    values = ", ".join(f"'{member.value}'" for member in enum)
    return CheckConstraint(f"{column} IN ({values})", name=name)


def _first_amount(context: Any) -> int:
    """Column default: a new allocation was paid its whole amount."""
    return context.get_current_parameters()["amount_minor"]


def _created() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), server_default=func.now())


CURRENCY_CHECK = "currency ~ '^[a-z]{3}$'"


class Seller(Base):
    __tablename__ = "sellers"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    logo_url: Mapped[str | None] = mapped_column(Text)
    brand_color: Mapped[str] = mapped_column(String(7), default="#1f6feb")
    support_email: Mapped[str | None] = mapped_column(String(320))
    support_phone: Mapped[str | None] = mapped_column(String(40))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    payments_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    cards_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    ach_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    deposits_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    short_pay_reasons: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list)
    max_invoices_per_payment: Mapped[int] = mapped_column(Integer, default=200)
    # How long a card payment may wait for the customer's authentication; None: the deployment's default.
    auth_window_on_session_hours: Mapped[int | None] = mapped_column(Integer)
    auth_window_off_session_hours: Mapped[int | None] = mapped_column(Integer)
    # The portal page finishing a payment, "{payment_id}" in it; None: the deployment's default.
    portal_payment_url: Mapped[str | None] = mapped_column(Text)
    # Customer-facing payment references are "<prefix>-<number>": the prefix (default: from the slug) and
    # the last number given, counted up in the transaction that creates each payment.
    reference_prefix: Mapped[str | None] = mapped_column(String(12))
    last_payment_number: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    # The From of the seller's emails: display name (default: the seller's name) and address (default:
    # MAIL_FROM's, and always it outside MAIL_SELLER_DOMAINS).
    email_from_name: Mapped[str | None] = mapped_column(String(200))
    email_from_address: Mapped[str | None] = mapped_column(String(320))
    created_at: Mapped[datetime] = _created()

    __table_args__ = (
        CheckConstraint("max_invoices_per_payment BETWEEN 1 AND 200", name="max_invoices_range"),
        CheckConstraint(
            "auth_window_on_session_hours BETWEEN 1 AND 168"
            " AND auth_window_off_session_hours BETWEEN 1 AND 168",
            name="auth_window_range",
        ),
        CheckConstraint(
            "portal_payment_url ~ '^https?://' AND position('{payment_id}' in portal_payment_url) > 0",
            name="portal_payment_url_shape",
        ),
        CheckConstraint(
            "reference_prefix IS NULL OR reference_prefix ~ '^[A-Z0-9]{1,12}$'",
            name="reference_prefix_format",
        ),
        CheckConstraint("brand_color ~ '^#[0-9a-fA-F]{6}$'", name="brand_color_hex"),
    )


class Account(Base):
    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    seller_id: Mapped[int] = mapped_column(ForeignKey("sellers.id"), index=True)
    number: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    billing_email: Mapped[str] = mapped_column(String(320))
    currency: Mapped[str] = mapped_column(String(3), default="usd")
    stripe_customer_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    portal_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    balance_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    overdue_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    pending_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    scheduled_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    credit_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    balance_computed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    balance_stale_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)
    # The seller's ERP id and the version of its last sync (tasks/api/sync.py); None for accounts made here.
    external_id: Mapped[str | None] = mapped_column(String(64))
    version: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = _created()

    seller: Mapped[Seller] = relationship()

    __table_args__ = (
        UniqueConstraint("seller_id", "number", name="uq_accounts_seller_number"),
        UniqueConstraint("seller_id", "external_id", name="uq_accounts_seller_external_id"),
        CheckConstraint("(external_id IS NULL) = (version IS NULL)", name="external_has_version"),
        CheckConstraint(CURRENCY_CHECK, name="currency_code"),
    )


class Invoice(Base):
    __tablename__ = "invoices"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    number: Mapped[str] = mapped_column(String(64))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("invoices.id"), index=True)
    site_name: Mapped[str | None] = mapped_column(String(200))
    currency: Mapped[str] = mapped_column(String(3))
    total_minor: Mapped[int] = mapped_column(BigInteger)
    issued_on: Mapped[date] = mapped_column(Date)
    due_on: Mapped[date] = mapped_column(Date)
    discount_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    discount_until: Mapped[date | None] = mapped_column(Date)
    voided: Mapped[bool] = mapped_column(Boolean, default=False)
    customer_visible: Mapped[bool] = mapped_column(Boolean, default=True)
    # Set together by an ERP sync: the ERP's ids are unique per seller, and the seller keys them here.
    seller_id: Mapped[int | None] = mapped_column(ForeignKey("sellers.id"))
    external_id: Mapped[str | None] = mapped_column(String(64))
    version: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = _created()
    # Money that settled the invoice (applied allocations with their discounts, outside payment lines not
    # kept as credit), kept by PostgreSQL's triggers (migration 0014) in the statement that moves the
    # ledger: read, never written, by Remit's code.
    settled_minor: Mapped[int] = mapped_column(BigInteger, server_default="0")

    __table_args__ = (
        UniqueConstraint("account_id", "number", name="uq_invoices_account_number"),
        UniqueConstraint("seller_id", "external_id", name="uq_invoices_seller_external_id"),
        # The invoice list's keyset pages in its default order (due date): a page is an index range, not
        # a sort of the account's invoices. (A number sort compares by code point, COLLATE "C", which no
        # index serves; PostgreSQL sorts the account's selected rows for it.)
        Index("ix_invoices_account_due", "account_id", "due_on", "id"),
        CheckConstraint(
            "(external_id IS NULL) = (version IS NULL) AND (external_id IS NULL) = (seller_id IS NULL)",
            name="external_has_version",
        ),
        CheckConstraint("total_minor > 0", name="total_positive"),
        CheckConstraint(
            "discount_minor >= 0 AND (discount_minor = 0 OR discount_minor < total_minor)",
            name="discount_range",
        ),
        CheckConstraint("discount_minor = 0 OR discount_until IS NOT NULL", name="discount_has_date"),
        CheckConstraint("due_on >= issued_on", name="due_after_issue"),
        CheckConstraint("parent_id IS NULL OR parent_id <> id", name="not_own_parent"),
        CheckConstraint(CURRENCY_CHECK, name="currency_code"),
    )


class ExternalPayment(Base):
    """Money the seller's ERP recorded outside Remit (check, cash, wire, credit memo, write-off)."""

    __tablename__ = "external_payments"

    id: Mapped[int] = mapped_column(primary_key=True)
    seller_id: Mapped[int] = mapped_column(ForeignKey("sellers.id"))
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    reference: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(16))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    created_at: Mapped[datetime] = _created()

    lines: Mapped[list[ExternalPaymentLine]] = relationship(order_by="ExternalPaymentLine.id")

    __table_args__ = (
        UniqueConstraint("seller_id", "reference", name="uq_external_payments_seller_reference"),
        CheckConstraint("amount_minor > 0", name="amount_positive"),
        CheckConstraint(CURRENCY_CHECK, name="currency_code"),
        _one_of("kind", ExternalPaymentKind, "kind_known"),
    )


class ExternalPaymentLine(Base):
    """What an external payment put on one invoice: counted as settled beside applied allocations."""

    __tablename__ = "external_payment_lines"

    id: Mapped[int] = mapped_column(primary_key=True)
    external_payment_id: Mapped[int] = mapped_column(ForeignKey("external_payments.id"))
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"), index=True)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    # Money on an invoice a payment in flight held: kept as account credit, it settles nothing here.
    as_credit: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))

    __table_args__ = (
        CheckConstraint("amount_minor > 0", name="amount_positive"),
        UniqueConstraint(
            "external_payment_id", "invoice_id", name="uq_external_payment_lines_payment_invoice"
        ),
    )


class PaymentMethod(Base):
    __tablename__ = "payment_methods"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    stripe_payment_method_id: Mapped[str] = mapped_column(String(255), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    brand: Mapped[str | None] = mapped_column(String(32))
    bank_name: Mapped[str | None] = mapped_column(String(200))
    last4: Mapped[str] = mapped_column(String(4))
    exp_month: Mapped[int | None] = mapped_column(Integer)
    exp_year: Mapped[int | None] = mapped_column(Integer)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(32), default=MethodStatus.ACTIVE)
    stripe_setup_intent_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    mandate_accepted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    mandate_ip: Mapped[str | None] = mapped_column(String(64))
    mandate_user_agent: Mapped[str | None] = mapped_column(Text)
    mandate_text_version: Mapped[str | None] = mapped_column(String(32))
    verification_error: Mapped[str | None] = mapped_column(Text)
    # Microdeposit verification attempts sent for this method on the seller's day verification_attempts_on.
    verification_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    verification_attempts_on: Mapped[date | None] = mapped_column(Date)
    # False: a method given with one payment and not to be kept; it is never listed or offered again.
    saved: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    nickname: Mapped[str | None] = mapped_column(String(60))
    billing_details: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    # Counts the customer's edits held at Stripe: each is sent with its own idempotency key.
    update_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )

    __table_args__ = (
        _one_of("kind", MethodKind, "kind_known"),
        _one_of("status", MethodStatus, "status_known"),
        CheckConstraint("last4 ~ '^[0-9]{4}$'", name="last4_digits"),
        CheckConstraint("exp_month IS NULL OR exp_month BETWEEN 1 AND 12", name="exp_month_range"),
        CheckConstraint(
            "kind <> 'us_bank_account' OR mandate_accepted_at IS NOT NULL", name="ach_needs_mandate"
        ),
        CheckConstraint("NOT (is_default AND status = 'removed')", name="removed_not_default"),
        Index(
            "uq_payment_methods_one_default", "account_id", unique=True, postgresql_where=text("is_default")
        ),
    )


class Payment(Base):
    __tablename__ = "payments"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    # None only for a payment paid wholly from credit (nothing charged at Stripe).
    payment_method_id: Mapped[int | None] = mapped_column(ForeignKey("payment_methods.id"), index=True)
    status: Mapped[str] = mapped_column(String(32), index=True)
    scheduled_for: Mapped[date | None] = mapped_column(Date, index=True)
    short_reason: Mapped[str | None] = mapped_column(String(200))
    short_comment: Mapped[str | None] = mapped_column(Text)
    note: Mapped[str | None] = mapped_column(Text)
    idempotency_key: Mapped[str] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))
    stripe_payment_intent_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    stripe_idempotency_key: Mapped[str | None] = mapped_column(String(255), unique=True)
    stripe_charge_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    first_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    failure_code: Mapped[str | None] = mapped_column(String(64))
    failure_message: Mapped[str | None] = mapped_column(Text)
    refunded_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    needs_review: Mapped[bool] = mapped_column(Boolean, default=False)
    # What the payment spends from available credit, beside amount_minor, what Stripe charges.
    credit_used_minor: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    # What the last look changed from what the customer approved, as lines the emails show.
    last_look_changes: Mapped[list[str] | None] = mapped_column(JSONB)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now(), index=True
    )
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # When the reconciler last asked Stripe about it, moved or not: it takes the least recently asked
    # first, so payments Stripe keeps waiting on cannot crowd out the rest. Not an update: updated_at stays.
    reconciled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The customer-facing reference, "<seller prefix>-<number>", unique per seller (None only on rows
    # written outside the api, e.g. by tests).
    seller_id: Mapped[int | None] = mapped_column(ForeignKey("sellers.id"))
    reference: Mapped[str | None] = mapped_column(String(32))
    # The PaymentIntent saves the method for off-session use (setup_future_usage): fixed at creation so
    # every retry sends the same parameters.
    saves_method: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))

    account: Mapped[Account] = relationship()
    method: Mapped[PaymentMethod] = relationship()
    allocations: Mapped[list[Allocation]] = relationship(back_populates="payment", order_by="Allocation.id")

    __table_args__ = (
        UniqueConstraint("account_id", "idempotency_key", name="uq_payments_account_idempotency_key"),
        UniqueConstraint("seller_id", "reference", name="uq_payments_seller_reference"),
        CheckConstraint(
            "amount_minor >= 0 AND credit_used_minor >= 0 AND amount_minor + credit_used_minor > 0",
            name="amount_positive",
        ),
        CheckConstraint("amount_minor = 0 OR payment_method_id IS NOT NULL", name="charge_has_method"),
        CheckConstraint("refunded_minor >= 0 AND refunded_minor <= amount_minor", name="refund_range"),
        CheckConstraint("attempt >= 0", name="attempt_non_negative"),
        CheckConstraint("length(idempotency_key) BETWEEN 1 AND 255", name="idempotency_key_length"),
        CheckConstraint(CURRENCY_CHECK, name="currency_code"),
        _one_of("kind", PaymentKind, "kind_known"),
        _one_of("status", PaymentStatus, "status_known"),
        CheckConstraint("status <> 'scheduled' OR scheduled_for IS NOT NULL", name="scheduled_has_date"),
        # The payment history's keyset pages, an index per sort column: a page at any depth is an index range.
        Index("ix_payments_account_created", "account_id", "created_at", "id"),
        Index("ix_payments_account_amount", "account_id", "amount_minor", "id"),
    )


class Allocation(Base):
    __tablename__ = "allocations"

    id: Mapped[int] = mapped_column(primary_key=True)
    payment_id: Mapped[int] = mapped_column(ForeignKey("payments.id"), index=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"), index=True)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    # What the payment first put on the invoice, never changed: a refund lowers amount_minor only,
    # and emails list this so their lines still add up to the payment.
    paid_minor: Mapped[int] = mapped_column(BigInteger, default=_first_amount)
    discount_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    state: Mapped[str] = mapped_column(String(16), default=AllocationState.RESERVED)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )

    payment: Mapped[Payment] = relationship(back_populates="allocations")
    invoice: Mapped[Invoice] = relationship()

    __table_args__ = (
        CheckConstraint("amount_minor > 0", name="amount_positive"),
        CheckConstraint("discount_minor >= 0", name="discount_non_negative"),
        CheckConstraint("paid_minor >= amount_minor", name="paid_covers_amount"),
        _one_of("state", AllocationState, "state_known"),
        UniqueConstraint("payment_id", "invoice_id", name="uq_allocations_payment_invoice"),
        # The database itself refuses a second in-flight or scheduled payment for one invoice.
        Index(
            "uq_allocations_one_reserved_per_invoice",
            "invoice_id",
            unique=True,
            postgresql_where=text("state = 'reserved'"),
        ),
    )


class Credit(Base):
    __tablename__ = "credits"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    payment_id: Mapped[int | None] = mapped_column(ForeignKey("payments.id"), index=True)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    state: Mapped[str] = mapped_column(String(16), default=CreditState.PENDING)
    applied_invoice_id: Mapped[int | None] = mapped_column(ForeignKey("invoices.id"))
    # The payment spending this credit on applied_invoice_id (reserved while in flight, applied once paid).
    used_by_payment_id: Mapped[int | None] = mapped_column(ForeignKey("payments.id"), index=True)
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )

    __table_args__ = (
        CheckConstraint("amount_minor > 0", name="amount_positive"),
        CheckConstraint(CURRENCY_CHECK, name="currency_code"),
        _one_of("state", CreditState, "state_known"),
        CheckConstraint("state <> 'applied' OR applied_invoice_id IS NOT NULL", name="applied_has_invoice"),
        CheckConstraint(
            "state NOT IN ('reserved', 'applied')"
            " OR (used_by_payment_id IS NOT NULL AND applied_invoice_id IS NOT NULL)",
            name="spent_names_payment",
        ),
    )


class Refund(Base):
    __tablename__ = "refunds"

    id: Mapped[int] = mapped_column(primary_key=True)
    payment_id: Mapped[int] = mapped_column(ForeignKey("payments.id"), index=True)
    stripe_refund_id: Mapped[str] = mapped_column(String(255), unique=True)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = _created()

    __table_args__ = (CheckConstraint("amount_minor > 0", name="amount_positive"),)


class Dispute(Base):
    __tablename__ = "disputes"

    id: Mapped[int] = mapped_column(primary_key=True)
    payment_id: Mapped[int] = mapped_column(ForeignKey("payments.id"), index=True)
    stripe_dispute_id: Mapped[str] = mapped_column(String(255), unique=True)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    reason: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = _created()
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # What its chargeback reversed ({"allocations": [ids], "credits": [ids]}): a won dispute reinstates
    # exactly these, since a refund before it may have reversed others.
    reversal: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    # When a won dispute's money was put back on the invoices (or became credit).
    reinstated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (CheckConstraint("amount_minor > 0", name="amount_positive"),)


class BalanceDrift(Base):
    """Stored figures a recompute found different from the ledger though no money movement marked them."""

    __tablename__ = "balance_drifts"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    found_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    # When the stored (drifted) figures had been computed.
    computed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    before: Mapped[dict[str, Any]] = mapped_column(JSONB)
    after: Mapped[dict[str, Any]] = mapped_column(JSONB)


class StripeEvent(Base):
    __tablename__ = "stripe_events"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    type: Mapped[str] = mapped_column(String(100))
    livemode: Mapped[bool] = mapped_column(Boolean, default=False)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    stripe_created_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    status: Mapped[str] = mapped_column(String(16), default=EventStatus.RECEIVED)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    processed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        _one_of("status", EventStatus, "status_known"),
        CheckConstraint("id LIKE 'evt_%'", name="event_id_shape"),
        # Only events still waiting, oldest first: what processing batches and the sweeper look for.
        # Every event is written twice (stored, then marked), so each index costs twice per event.
        Index("ix_stripe_events_waiting", "received_at", postgresql_where=text("status = 'received'")),
    )


class Email(Base):
    __tablename__ = "emails"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(64))
    recipient: Mapped[str] = mapped_column(String(320))
    context: Mapped[dict[str, Any]] = mapped_column(JSONB)
    dedupe_key: Mapped[str] = mapped_column(String(255), unique=True)
    seller_id: Mapped[int] = mapped_column(ForeignKey("sellers.id"), index=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), index=True)
    payment_id: Mapped[int | None] = mapped_column(ForeignKey("payments.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default=EmailStatus.QUEUED, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    smtp_message_id: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = _created()
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        _one_of("status", EmailStatus, "status_known"),
        CheckConstraint("recipient LIKE '%_@_%'", name="recipient_shape"),
    )


class PaymentEvent(Base):
    __tablename__ = "payment_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    payment_id: Mapped[int] = mapped_column(ForeignKey("payments.id"), index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    from_status: Mapped[str | None] = mapped_column(String(32))
    to_status: Mapped[str] = mapped_column(String(32))
    applied: Mapped[bool] = mapped_column(Boolean, default=True)
    source: Mapped[str] = mapped_column(String(255))
    detail: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)


class FailedJob(Base):
    __tablename__ = "failed_jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[str] = mapped_column(String(64), unique=True)
    queue: Mapped[str] = mapped_column(String(64), index=True)
    actor: Mapped[str] = mapped_column(String(128))
    args: Mapped[list[Any]] = mapped_column(JSONB, default=list)
    kwargs: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    error: Mapped[str] = mapped_column(Text)
    traceback: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    status: Mapped[str] = mapped_column(String(16), default=FailedJobStatus.DEAD, index=True)
    failed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    retried_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (_one_of("status", FailedJobStatus, "status_known"),)


class ScheduleRun(Base):
    __tablename__ = "schedule_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    job: Mapped[str] = mapped_column(String(100))
    period: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONB)

    __table_args__ = (UniqueConstraint("job", "period", name="uq_schedule_runs_job_period"),)


class LedgerEvent(Base):
    """A money fact for the seller's ERP, numbered per seller in commit order (tasks/flows/feed.py)."""

    __tablename__ = "ledger_events"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    seller_id: Mapped[int] = mapped_column(ForeignKey("sellers.id"))
    sequence: Mapped[int] = mapped_column(BigInteger)
    type: Mapped[str] = mapped_column(String(64))
    data: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = _created()

    __table_args__ = (UniqueConstraint("seller_id", "sequence", name="uq_ledger_events_seller_sequence"),)


class LedgerSequence(Base):
    """The last sequence number given to a seller's ledger events; its row lock orders their commits."""

    __tablename__ = "ledger_sequences"

    seller_id: Mapped[int] = mapped_column(ForeignKey("sellers.id"), primary_key=True)
    last_sequence: Mapped[int] = mapped_column(BigInteger)


class FeedEndpoint(Base):
    """Where a seller's ledger events are posted, signed with each of its secrets, and how far they went."""

    __tablename__ = "feed_endpoints"

    seller_id: Mapped[int] = mapped_column(ForeignKey("sellers.id"), primary_key=True)
    url: Mapped[str] = mapped_column(Text)
    secrets: Mapped[list[str]] = mapped_column(ARRAY(Text))
    delivered_sequence: Mapped[int] = mapped_column(BigInteger, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    leased_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = _created()

    __table_args__ = (CheckConstraint("cardinality(secrets) BETWEEN 1 AND 5", name="secrets_count"),)


class FeedDelivery(Base):
    """Attempts to post one ledger event to its seller's endpoint (a replay is a delivery of its own)."""

    __tablename__ = "feed_deliveries"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    seller_id: Mapped[int] = mapped_column(ForeignKey("sellers.id"))
    event_id: Mapped[int] = mapped_column(ForeignKey("ledger_events.id"))
    sequence: Mapped[int] = mapped_column(BigInteger)
    replay: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    response_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    first_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        _one_of("status", FeedDeliveryStatus, "status_known"),
        Index("ix_feed_deliveries_seller_sequence", "seller_id", "sequence"),
    )


class AuditEntry(Base):
    """One thing an operator did from the dashboard or the ops CLI: who, when, what, to what."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), index=True)
    operator: Mapped[str] = mapped_column(String(64), index=True)
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(255))
    detail: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
