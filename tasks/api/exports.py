"""The seller's ERP, outbound by file: the payments CSV its reconciliation reads."""

from __future__ import annotations

import csv
import io
from datetime import date

from db.queries import accounts as account_rows
from db.queries import exports as export_rows
from tasks.api.guard import api_transaction
from tasks.domain.errors import RemitError

# A year of payments is what an ERP reconciles at once; a longer range is a bulk extract, not this.
MAX_EXPORT_DAYS = 366
EXPORT_COLUMNS = (
    "payment_id",
    "account_number",
    "account_external_id",
    "kind",
    "status",
    "amount_minor",
    "refunded_minor",
    "currency",
    "method_kind",
    "method_name",
    "method_last4",
    "stripe_payment_intent_id",
    "stripe_charge_id",
    "invoice_number",
    "invoice_external_id",
    "invoice_amount_minor",
    "invoice_discount_minor",
    "allocation_state",
    "created_at",
    "scheduled_for",
    "finished_at",
    # Added after the first ERPs read this file: new columns go last, so a reader by position keeps working.
    # "remit" for a payment made here; "external" for one the ERP recorded (kind check, wire, ...). Ids are
    # unique within a source. The reference is the payment's own: the customer-facing one Remit gave
    # (e.g. NWF-1042) or the ERP's (its check number).
    "source",
    "reference",
)


def export_payments(seller_id: int, date_from: date, date_to: date) -> str:
    """CSV of the seller's payments created on its days date_from to date_to, one row per invoice paid;
    external payments the ERP recorded come after Remit's."""
    if not isinstance(date_from, date) or not isinstance(date_to, date) or date_from > date_to:
        raise RemitError("invalid_range", "date_from and date_to must be dates, date_from not after date_to.")
    if (date_to - date_from).days >= MAX_EXPORT_DAYS:
        raise RemitError("invalid_range", f"An export covers at most {MAX_EXPORT_DAYS} days.")
    with api_transaction() as session:
        if account_rows.find_seller(session, seller_id) is None:
            raise RemitError("seller_not_found", f"Seller {seller_id} was not found.")
        rows = export_rows.list_payment_lines(session, seller_id, date_from, date_to)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(EXPORT_COLUMNS)
    for row in rows:
        writer.writerow(_cell(row._mapping[column]) for column in EXPORT_COLUMNS)
    return out.getvalue()


def _cell(value: object) -> object:
    """ISO 8601 for times; empty for nothing; text an ERP's spreadsheet would run as a formula is quoted."""
    if value is None:
        return ""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@"):
        return "'" + value
    return value
