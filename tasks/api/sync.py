"""The seller's ERP, inbound: accounts and invoices upserted by ERP id and version, one outcome per record."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from db.queries import accounts as account_rows
from db.queries import sync as sync_rows
from tasks.api.guard import api_transaction
from tasks.domain import sync as rules
from tasks.domain.errors import RemitError
from tasks.domain.sync import Outcome, RecordRefused
from tasks.flows import holds
from tasks.flows.balances import recompute_all_after_commit

# One call holds one transaction and one seller's sync lock: 50,000 records is a few seconds of statements
# (bench/sync.py), while a larger file belongs in `remit import`, which sends it in batches.
MAX_BATCH_RECORDS = 50_000


@dataclass(frozen=True)
class SyncResult:
    """What one record did: applied, unchanged, stale_version, or refused with a code and a message."""

    external_id: str | None
    outcome: Outcome
    id: int | None = None
    code: str | None = None
    message: str | None = None


def sync_accounts(seller_id: int, accounts: list[dict[str, Any]]) -> list[SyncResult]:
    """Create or change the seller's accounts by ERP id; results in the order of the records."""
    return _sync(seller_id, accounts, rules.account_record, _apply_accounts)


def sync_invoices(
    seller_id: int, invoices: list[dict[str, Any]], now: datetime | None = None
) -> list[SyncResult]:
    """Create, change, void and hide the seller's invoices by ERP id, parents by parent_external_id."""
    return _sync(seller_id, invoices, rules.invoice_record, _apply_invoices, now or datetime.now(UTC))


def _sync(seller_id: int, raw: object, parse: Callable, apply: Callable, *extra: Any) -> list[SyncResult]:
    if not isinstance(raw, list) or len(raw) > MAX_BATCH_RECORDS:
        raise RemitError("invalid_batch", f"records must be a list of at most {MAX_BATCH_RECORDS}")
    results: list[SyncResult | None] = [None] * len(raw)
    records, seen = {}, set()
    for index, item in enumerate(raw):
        try:
            record = parse(item)
        except RecordRefused as refused:
            results[index] = _refused(item.get("external_id") if isinstance(item, dict) else None, refused)
            continue
        if record.external_id in seen:
            message = "this external_id appears earlier in the batch"
            results[index] = SyncResult(
                record.external_id, Outcome.REFUSED, None, "duplicate_in_batch", message
            )
            continue
        records[index] = record
        seen.add(record.external_id)
    with api_transaction() as session:
        if account_rows.find_seller(session, seller_id) is None:
            raise RemitError("seller_not_found", f"Seller {seller_id} was not found.")
        sync_rows.lock_seller_sync(session, seller_id)
        results = apply(session, seller_id, records, results, *extra)
    return results


def _refused(external_id: object, refused: RecordRefused) -> SyncResult:
    key = external_id if isinstance(external_id, str) else None
    return SyncResult(key, Outcome.REFUSED, None, refused.code, refused.message)


def _apply_accounts(session: Session, seller_id: int, records: dict, results: list) -> list[SyncResult]:
    keys, numbers = [r.external_id for r in records.values()], [r.number for r in records.values()]
    stored = sync_rows.list_synced_accounts(session, seller_id, keys, numbers)
    by_id = {row.external_id: row for row in stored if row.external_id is not None}
    owners = {row.number: row.external_id for row in stored}
    decided = {}
    for index, record in records.items():
        row = by_id.get(record.external_id)
        try:
            decided[index] = _decide(row, 3, record)
            if decided[index] is Outcome.APPLIED:
                _check_account(record, row, owners)
        except RecordRefused as refused:
            decided.pop(index, None)
            results[index] = _refused(record.external_id, refused)
    applied = [_row_of(records[i]) for i, outcome in decided.items() if outcome is Outcome.APPLIED]
    ids = {**{k: r.id for k, r in by_id.items()}, **sync_rows.upsert_accounts(session, seller_id, applied)}
    return _settle(records, decided, ids, results)


def _decide(row: Any, first_field: int, record: Any) -> Outcome:
    """The record's outcome vs the stored row, whose columns from first_field on are the record's fields."""
    if row is None:
        return Outcome.APPLIED
    return rules.decide(row.version, tuple(row)[first_field:], record.version, record.fields())


def _check_account(record: rules.AccountRecord, row: Any, owners: dict) -> None:
    """RecordRefused when an applied account would take another's number or change its currency."""
    if owners.setdefault(record.number, record.external_id) != record.external_id:
        raise RecordRefused("number_taken", f"account number {record.number} belongs to another account")
    if row is not None and row.currency != record.currency:
        raise RecordRefused("currency_changed", f"the account is in {row.currency}; its currency is kept")


def _settle(records: dict, decided: dict, ids: dict, results: list) -> list[SyncResult]:
    for index, outcome in decided.items():
        results[index] = SyncResult(records[index].external_id, outcome, ids.get(records[index].external_id))
    return results


def _apply_invoices(
    session: Session, seller_id: int, records: dict, results: list, now: datetime
) -> list[SyncResult]:
    keys = [r.external_id for r in records.values()]
    parents = [r.parent_external_id for r in records.values() if r.parent_external_id]
    by_id = {
        row.external_id: row for row in sync_rows.list_synced_invoices(session, seller_id, keys + parents)
    }
    wanted = list({r.account_external_id for r in records.values()})
    accounts = {
        row.external_id: row for row in sync_rows.list_synced_accounts(session, seller_id, wanted, [])
    }
    numbers = sync_rows.list_invoice_numbers(
        session, [a.id for a in accounts.values()], [r.number for r in records.values()]
    )
    decided: dict[int, Outcome] = {}
    for index, record in records.items():
        row = by_id.get(record.external_id)
        try:
            record = records[index] = _with_currency(record, accounts)
            decided[index] = _decide(row, 4, record)
            if decided[index] is Outcome.APPLIED:
                _check_invoice(record, row, accounts, numbers)
        except RecordRefused as refused:
            decided.pop(index, None)
            results[index] = _refused(record.external_id, refused)
    _refuse_orphans(records, decided, by_id, results)
    applied = [records[i] for i, outcome in decided.items() if outcome is Outcome.APPLIED]
    # Stored invoices are updated in id order, the order payments lock them in, and new ones after.
    applied.sort(key=lambda r: by_id[r.external_id].id if r.external_id in by_id else 2**63)
    rows = [{**_row_of(r), "account_id": accounts[r.account_external_id].id} for r in applied]
    changed = {by_id[r.external_id].id: r.number for r in applied if r.external_id in by_id}
    # A change to an invoice a payment holds is accepted; that payment's last look decides what it charges.
    holders = holds.lock_holders(session, {row["account_id"] for row in rows}, changed)
    ids = {**{k: r.id for k, r in by_id.items()}, **sync_rows.upsert_invoices(session, seller_id, rows)}
    links = [{"external_id": r.external_id, "parent_external_id": r.parent_external_id} for r in applied]
    sync_rows.set_invoice_parents(session, seller_id, links)
    holds.note_changed(session, holders, changed, now)
    touched = sorted({accounts[r.account_external_id].id for r in applied})
    recompute_all_after_commit(session, account_rows.mark_balances_stale(session, touched, now))
    return _settle(records, decided, ids, results)


def _with_currency(record: rules.InvoiceRecord, accounts: dict) -> rules.InvoiceRecord:
    """The record with its account's currency when it names none; RecordRefused for an unknown account."""
    account = accounts.get(record.account_external_id)
    if account is None:
        raise RecordRefused("account_not_found", f"no account has external_id {record.account_external_id}")
    return replace(record, currency=record.currency or account.currency)


def _check_invoice(record: rules.InvoiceRecord, row: Any, accounts: dict, numbers: dict) -> None:
    """RecordRefused when an applied invoice would move account, change currency or take another's number."""
    if row is not None and row.account_external_id != record.account_external_id:
        raise RecordRefused("account_changed", "an invoice stays on its account; void it and sync a new one")
    if row is not None and row.currency != record.currency:
        raise RecordRefused("currency_changed", f"the invoice is in {row.currency}; its currency is kept")
    key = (accounts[record.account_external_id].id, record.number)
    if numbers.setdefault(key, record.external_id) != record.external_id:
        raise RecordRefused("number_taken", f"invoice number {record.number} is taken on this account")


def _refuse_orphans(records: dict, decided: dict, stored: dict, results: list) -> None:
    """Refuse applied children whose parent is neither stored nor kept in this batch, on the same account."""
    while True:
        kept = {records[i].external_id: records[i].account_external_id for i in decided}
        known = {**{k: row.account_external_id for k, row in stored.items()}, **kept}
        orphans = [
            i
            for i, outcome in decided.items()
            if outcome is Outcome.APPLIED
            and records[i].parent_external_id
            and known.get(records[i].parent_external_id) != records[i].account_external_id
        ]
        if not orphans:
            return
        for index in orphans:
            del decided[index]
            message = "parent_external_id names no invoice of the same account"
            results[index] = SyncResult(
                records[index].external_id, Outcome.REFUSED, None, "parent_not_found", message
            )


def _row_of(record: Any) -> dict[str, Any]:
    """A record as the row the upsert statements read."""
    return dict(vars(record))
