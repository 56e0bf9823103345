"""Validation of what the web tier asks for, before anything is read or written. Pure rules."""

from __future__ import annotations

import hashlib
import json
import re
import reprlib
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
# A short-payment reason is one of the seller's few labels; anything longer is not one of them.
MAX_REASON_LENGTH = 200
OTHER_REASON = "other"
# Every id column is a PostgreSQL bigint: an id outside 1..2**63-1 names no row (and psycopg cannot send it).
MAX_ID = 2**63 - 1
# How much of a caller's value a refusal quotes back: enough to recognise it, never a whole hostile input.
QUOTE_LIMIT = 60
# Text never holds NUL or other control characters (C0, DEL, C1), nor lone surrogates UTF-8 cannot carry;
# free text a person types (comments, notes) may hold tabs and line breaks.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_CONTROL_IN_PROSE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
# SQLSTATEs of a lock or statement we gave up waiting for, a deadlock and a serialization failure: the
# transaction was rolled back and the same request may succeed in a moment.
BUSY_SQLSTATES = frozenset({"55P03", "40P01", "40001", "57014"})
BUSY_MESSAGE = "The account is busy with another request; nothing was changed. Try again in a moment."

_QUOTER = reprlib.Repr()
_QUOTER.maxstring = _QUOTER.maxother = _QUOTER.maxlong = QUOTE_LIMIT
_QUOTER.maxlist = _QUOTER.maxtuple = _QUOTER.maxdict = _QUOTER.maxset = 5
_QUOTER.maxlevel = 2


def quoted(value: Any) -> str:
    """A caller's value as a refusal may show it: repr-like, at most about QUOTE_LIMIT characters."""
    try:
        text = _QUOTER.repr(value)
    except ValueError:  # an int too long for str(): Python refuses to write it out
        text = f"<{type(value).__name__}>"
    return text if len(text) <= QUOTE_LIMIT + 5 else text[:QUOTE_LIMIT] + "...'"


def is_id(value: Any) -> bool:
    """A whole number (not a bool) that can be a row's id."""
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_ID


def check_id(value: Any, code: str, what: str) -> int:
    """An id, or the refusal an unknown one gets: a value that cannot be an id names nothing we have."""
    if not is_id(value):
        raise RemitError(code, f"{what} {quoted(value)} was not found.")
    return value


def check_text(
    value: Any, name: str, code: str, limit: int, *, required: bool = True, prose: bool = False
) -> str | None:
    """Text of 1 to limit characters with no control characters (prose may break lines); None if optional.

    Its length is checked before its characters, so an oversized value costs nothing to refuse.
    """
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise RemitError(code, f"The {name} must be text, not {quoted(value)}.")
    if len(value) > limit:
        raise RemitError(code, f"The {name} is longer than {limit} characters.")
    found = (_CONTROL_IN_PROSE if prose else _CONTROL).search(value)
    if found:
        raise RemitError(
            code, f"The {name} contains a control character (U+{ord(found.group()):04X}); remove it."
        )
    return value


def is_busy(sqlstate: str | None) -> bool:
    """Whether a database error is a lock or statement timeout, deadlock or serialization failure."""
    return sqlstate in BUSY_SQLSTATES


def check_amount(amount: Any, name: str = "amount") -> int:
    """A positive whole number of minor units, or a refusal naming the problem."""
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise RemitError(
            "invalid_amount", f"The {name} must be a whole number of cents, not {quoted(amount)}."
        )
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
    return check_text(key, "idempotency key", "invalid_idempotency_key", MAX_IDEMPOTENCY_KEY_LENGTH)


def check_invoice_ids(invoice_ids: Any, limit: int = MAX_INVOICES_PER_PAYMENT) -> list[int]:
    """A non-empty list of distinct ids, at most limit of them; the count is checked first, so any list
    costs at most limit steps to refuse."""
    if not isinstance(invoice_ids, (list, tuple)) or not invoice_ids:
        raise RemitError("no_invoices", "Select at least one invoice to pay.")
    if len(invoice_ids) > limit:
        raise RemitError(
            "too_many_invoices",
            f"At most {limit} invoices can be paid at once; {len(invoice_ids)} were selected.",
        )
    if not all(is_id(i) for i in invoice_ids):
        raise RemitError("invalid_invoice_id", f"Invoice ids must be whole numbers from 1 to {MAX_ID}.")
    seen: set[int] = set()
    duplicates = {i for i in invoice_ids if i in seen or seen.add(i)}
    if duplicates:
        raise RemitError("duplicate_invoices", f"Invoice ids appear more than once: {sorted(duplicates)}.")
    return list(invoice_ids)


def check_pay_on_type(pay_on: Any) -> date | None:
    """None or a date; a datetime is a date to Python, but not comparable to one."""
    if pay_on is not None and (isinstance(pay_on, datetime) or not isinstance(pay_on, date)):
        raise RemitError("invalid_pay_on", f"The payment date must be a date, not {quoted(pay_on)}.")
    return pay_on


def check_pay_on(pay_on: Any, today: date) -> date | None:
    """None for today or no date; a future date within a year for a scheduled payment."""
    if check_pay_on_type(pay_on) is None:
        return None
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
            "short_reason_unknown",
            f"{quoted(reason)} is not one of the reasons this seller accepts: {allowed}.",
        )
    comment = comment.strip() if isinstance(comment, str) else None
    if matches[0].casefold() == OTHER_REASON and not comment:
        raise RemitError("comment_required", "Please explain the short payment when the reason is 'Other'.")
    if comment and len(comment) > MAX_COMMENT_LENGTH:
        raise RemitError("comment_too_long", f"The comment is longer than {MAX_COMMENT_LENGTH} characters.")
    return matches[0], comment or None


def check_request_texts(reason: Any = None, comment: Any = None, note: Any = None) -> None:
    """The free text a payment request may carry, checked before anything is read or locked: its type, its
    length and no control characters (a comment or note may break lines). Blank prose counts as none."""
    if reason is not None:
        check_text(reason, "short-payment reason", "invalid_short_reason", MAX_REASON_LENGTH)
    if comment is not None:
        _check_prose(comment, "comment", "invalid_comment", too_long="comment_too_long")
    if note is not None:
        _check_prose(note, "note", "invalid_note", too_long="invalid_note")


def _check_prose(value: Any, name: str, code: str, too_long: str) -> None:
    if not isinstance(value, str):
        raise RemitError(code, f"The {name} must be text, not {quoted(value)}.")
    text = value.strip()
    if len(text) > MAX_COMMENT_LENGTH:
        raise RemitError(too_long, f"The {name} is longer than {MAX_COMMENT_LENGTH} characters.")
    if text:
        check_text(text, name, code, MAX_COMMENT_LENGTH, prose=True)


def request_hash(operation: str, **params: Any) -> str:
    """A stable fingerprint of a request's parameters, to tell a retry from a different request."""
    canonical = json.dumps({"op": operation, **params}, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()
