"""Accounts and invoices keyed by the seller's ERP ids: read and written set-wise, one statement per step."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row, text
from sqlalchemy.orm import Session

from db.queries._batch import _json

# One sync (or external payment) per seller at a time: the outcomes it decides from the rows it read stay
# true until it commits. The first key names the lock's purpose, so it never meets another advisory lock.
_SYNC_LOCK_CLASS = 14_001
_LOCK = text("SELECT pg_advisory_xact_lock(:purpose, :seller_id)")

_ACCOUNTS = text(
    "SELECT external_id, id, version, number, name, billing_email, currency, portal_enabled FROM accounts"
    " WHERE seller_id = :seller_id AND (external_id = ANY(:ids) OR number = ANY(:numbers))"
)
_UPSERT_ACCOUNTS = text(
    "INSERT INTO accounts (seller_id, external_id, version, number, name, billing_email, currency,"
    " portal_enabled, balance_minor, overdue_minor, pending_minor, scheduled_minor, credit_minor)"
    " SELECT :seller_id, r.external_id, r.version, r.number, r.name, r.billing_email, r.currency,"
    " r.portal_enabled, 0, 0, 0, 0, 0 FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r (external_id text,"
    " version bigint, number text, name text, billing_email text, currency text, portal_enabled boolean)"
    " ON CONFLICT (seller_id, external_id) DO UPDATE SET version = EXCLUDED.version,"
    " number = EXCLUDED.number, name = EXCLUDED.name, billing_email = EXCLUDED.billing_email,"
    " currency = EXCLUDED.currency, portal_enabled = EXCLUDED.portal_enabled"
    " RETURNING external_id, id"
)
_INVOICES = text(
    "SELECT i.external_id, i.id, i.version, i.account_id, a.external_id AS account_external_id, i.number,"
    " i.currency, i.total_minor, i.issued_on, i.due_on, i.discount_minor, i.discount_until,"
    " i.customer_visible, i.voided, p.external_id AS parent_external_id, i.site_name"
    " FROM invoices i JOIN accounts a ON a.id = i.account_id LEFT JOIN invoices p ON p.id = i.parent_id"
    " WHERE i.seller_id = :seller_id AND i.external_id = ANY(:ids)"
)
_NUMBERS = text(
    "SELECT account_id, number, external_id FROM invoices"
    " WHERE account_id = ANY(:accounts) AND number = ANY(:numbers)"
)
_UPSERT_INVOICES = text(
    "INSERT INTO invoices (seller_id, external_id, version, account_id, number, currency, total_minor,"
    " issued_on, due_on, discount_minor, discount_until, customer_visible, voided, site_name)"
    " SELECT :seller_id, r.external_id, r.version, r.account_id, r.number, r.currency, r.total_minor,"
    " r.issued_on, r.due_on, r.discount_minor, r.discount_until, r.customer_visible, r.voided, r.site_name"
    " FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r (external_id text, version bigint,"
    " account_id bigint,"
    " number text, currency text, total_minor bigint, issued_on date, due_on date, discount_minor bigint,"
    " discount_until date, customer_visible boolean, voided boolean, site_name text)"
    " ON CONFLICT (seller_id, external_id) DO UPDATE SET version = EXCLUDED.version,"
    " number = EXCLUDED.number, total_minor = EXCLUDED.total_minor, issued_on = EXCLUDED.issued_on,"
    " due_on = EXCLUDED.due_on, discount_minor = EXCLUDED.discount_minor,"
    " discount_until = EXCLUDED.discount_until, customer_visible = EXCLUDED.customer_visible,"
    " voided = EXCLUDED.voided, site_name = EXCLUDED.site_name"
    " RETURNING external_id, id"
)
_SET_PARENTS = text(
    "UPDATE invoices c SET parent_id = p.id FROM jsonb_to_recordset(CAST(:rows AS jsonb))"
    " AS r (external_id text, parent_external_id text)"
    " LEFT JOIN invoices p ON p.seller_id = :seller_id AND p.external_id = r.parent_external_id"
    " WHERE c.seller_id = :seller_id AND c.external_id = r.external_id"
    " AND c.parent_id IS DISTINCT FROM p.id"
)


def lock_seller_sync(session: Session, seller_id: int) -> None:
    """Wait for any other sync or external payment of this seller to commit; held until this one does."""
    session.connection().execute(_LOCK, {"purpose": _SYNC_LOCK_CLASS, "seller_id": seller_id})


def list_synced_accounts(
    session: Session, seller_id: int, external_ids: Sequence[str], numbers: Sequence[str]
) -> list[Row]:
    """The seller's accounts with one of these ERP ids or numbers (a number may be taken by another id)."""
    params = {"seller_id": seller_id, "ids": list(external_ids), "numbers": list(numbers)}
    return list(session.connection().execute(_ACCOUNTS, params))


def upsert_accounts(session: Session, seller_id: int, rows: Sequence[dict[str, Any]]) -> dict[str, int]:
    """Insert or overwrite accounts by ERP id; {external id: account id}."""
    if not rows:
        return {}
    found = session.connection().execute(_UPSERT_ACCOUNTS, {"seller_id": seller_id, "rows": _json(rows)})
    return dict(found.all())


def list_synced_invoices(session: Session, seller_id: int, external_ids: Sequence[str]) -> list[Row]:
    """The seller's invoices with these ERP ids, with their account's and parent's ERP ids."""
    params = {"seller_id": seller_id, "ids": list(external_ids)}
    return list(session.connection().execute(_INVOICES, params))


def list_invoice_numbers(
    session: Session, account_ids: Sequence[int], numbers: Sequence[str]
) -> dict[tuple[int, str], str | None]:
    """{(account id, number): ERP id or None} of the invoices already holding one of these numbers."""
    rows = session.connection().execute(_NUMBERS, {"accounts": list(account_ids), "numbers": list(numbers)})
    return {(account_id, number): external_id for account_id, number, external_id in rows}


def upsert_invoices(session: Session, seller_id: int, rows: Sequence[dict[str, Any]]) -> dict[str, int]:
    """Insert or overwrite invoices by ERP id (account and currency are kept on update); {external id: id}."""
    if not rows:
        return {}
    found = session.connection().execute(_UPSERT_INVOICES, {"seller_id": seller_id, "rows": _json(rows)})
    return dict(found.all())


def set_invoice_parents(session: Session, seller_id: int, rows: Sequence[dict[str, Any]]) -> None:
    """Point each invoice at its parent by ERP ids ({external_id, parent_external_id}; None for no parent)."""
    if rows:
        session.connection().execute(_SET_PARENTS, {"seller_id": seller_id, "rows": _json(list(rows))})
