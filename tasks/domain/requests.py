"""Validation of what the web tier asks for, before anything is read or written. Pure rules."""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime, timedelta
from typing import Any

from tasks.domain.errors import RemitError

MAX_INVOICES_PER_PAYMENT = 200
# Stripe accepts idempotency keys up to 255 characters; ours are stored with the same limit.
MAX_IDEMPOTENCY_KEY_LENGTH = 255
# A payment scheduled further ahead than a year is almost certainly a typo.
MAX_SCHEDULE_AHEAD_DAYS = 365
# Stripe's ceiling for a single charge in USD is $999,999.99.
MAX_AMOUNT_MINOR = 99_999_999
MAX_COMMENT_LENGTH = 1000
OTHER_REASON = "other"


def check_amount(amount: Any, name: str = "amount") -> int:
    """A positive whole number of minor units, or a refusal naming the problem."""
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise RemitError("invalid_amount", f"The {name} must be a whole number of cents, not {amount!r}.")
    if amount <= 0:
        raise RemitError("invalid_amount", f"The {name} must be greater than zero.")
    if amount > MAX_AMOUNT_MINOR:
        raise RemitError("invalid_amount", f"The {name} is above the largest single payment allowed.")
    return amount


def check_idempotency_key(key: Any) -> str:
    if not isinstance(key, str) or not key.strip():
        raise RemitError(
            "invalid_idempotency_key", "An idempotency key is required for every payment request."
        )
    if len(key) > MAX_IDEMPOTENCY_KEY_LENGTH:
        raise RemitError("invalid_idempotency_key", "The idempotency key is longer than 255 characters.")
    return key


def check_invoice_ids(invoice_ids: Any, limit: int = MAX_INVOICES_PER_PAYMENT) -> list[int]:
    """A non-empty list of distinct integer ids, at most limit of them."""
    if not isinstance(invoice_ids, (list, tuple)) or not invoice_ids:
        raise RemitError("no_invoices", "Select at least one invoice to pay.")
    if any(isinstance(i, bool) or not isinstance(i, int) for i in invoice_ids):
        raise RemitError("invalid_invoice_id", "Invoice ids must be whole numbers.")
    if len(set(invoice_ids)) != len(invoice_ids):
        duplicates = sorted({i for i in invoice_ids if invoice_ids.count(i) > 1})
        raise RemitError("duplicate_invoices", f"Invoice ids appear more than once: {duplicates}.")
    if len(invoice_ids) > limit:
        raise RemitError(
            "too_many_invoices",
            f"At most {limit} invoices can be paid at once; {len(invoice_ids)} were selected.",
        )
    return list(invoice_ids)


def check_pay_on(pay_on: Any, today: date) -> date | None:
    """None for today or no date; a future date within a year for a scheduled payment."""
    if pay_on is None:
        return None
    if isinstance(pay_on, datetime) or not isinstance(
        pay_on, date
    ):  # a datetime is a date, but not comparable to one
        raise RemitError("invalid_pay_on", f"The payment date must be a date, not {pay_on!r}.")
    if pay_on < today:
        raise RemitError("invalid_pay_on", f"The payment date {pay_on.isoformat()} is in the past.")
    if pay_on > today + timedelta(days=MAX_SCHEDULE_AHEAD_DAYS):
        raise RemitError("invalid_pay_on", "A payment can be scheduled at most one year ahead.")
    return pay_on if pay_on > today else None


def check_short_pay(reason: Any, comment: Any, allowed: list[str]) -> tuple[str, str | None]:
    """A reason from the seller's list, and a comment when the reason is 'other'."""
    if not isinstance(reason, str) or not reason.strip():
        raise RemitError("short_reason_required", "Paying less than the invoices' total needs a reason.")
    matches = [r for r in allowed if r.casefold() == reason.strip().casefold()]
    if not matches:
        raise RemitError(
            "short_reason_unknown", f"{reason!r} is not one of the reasons this seller accepts: {allowed}."
        )
    comment = comment.strip() if isinstance(comment, str) else None
    if matches[0].casefold() == OTHER_REASON and not comment:
        raise RemitError("comment_required", "Please explain the short payment when the reason is 'Other'.")
    if comment and len(comment) > MAX_COMMENT_LENGTH:
        raise RemitError("comment_too_long", f"The comment is longer than {MAX_COMMENT_LENGTH} characters.")
    return matches[0], comment or None


def request_hash(operation: str, **params: Any) -> str:
    """A stable fingerprint of a request's parameters, to tell a retry from a different request."""
    canonical = json.dumps({"op": operation, **params}, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()
