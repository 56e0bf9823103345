"""The ERP sync contract's rules: what a record must hold, and what its version decides against ours. Pure."""

from __future__ import annotations

import re
from dataclasses import astuple, dataclass
from datetime import date
from enum import StrEnum
from typing import Any

from tasks.domain.addresses import InvalidAddress, email_address
from tasks.domain.states import ExternalPaymentKind

# The columns that hold an ERP id, a number, a name and a site (db/models.py).
MAX_ID_CHARS, MAX_NUMBER_CHARS, MAX_NAME_CHARS = 64, 64, 200
# A reference names one external payment in the ERP; the column holds 255.
MAX_REFERENCE_CHARS = 255
# Same ceiling as a payment's invoices (sellers.max_invoices_per_payment): one check rarely pays more.
MAX_EXTERNAL_LINES = 200
_CURRENCY = re.compile(r"^[a-z]{3}$")


class Outcome(StrEnum):
    APPLIED = "applied"
    UNCHANGED = "unchanged"
    STALE_VERSION = "stale_version"
    REFUSED = "refused"


class RecordRefused(ValueError):
    """A record the sync refuses: a stable code and a message naming the field at fault."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class AccountRecord:
    external_id: str
    version: int
    number: str
    name: str
    billing_email: str
    currency: str
    portal_enabled: bool

    def fields(self) -> tuple:
        return astuple(self)[2:]


@dataclass(frozen=True)
class InvoiceRecord:
    external_id: str
    version: int
    account_external_id: str
    number: str
    currency: str | None
    total_minor: int
    issued_on: date
    due_on: date
    discount_minor: int
    discount_until: date | None
    customer_visible: bool
    voided: bool
    parent_external_id: str | None
    site_name: str | None

    def fields(self) -> tuple:
        return astuple(self)[2:]


def decide(stored_version: int | None, stored_fields: tuple | None, version: int, fields: tuple) -> Outcome:
    """What a record does to the row it names: a newer version applies, an older one is stale.

    The same version with other content is refused: two different records cannot both be version n.
    """
    if stored_version is None or version > stored_version:
        return Outcome.APPLIED
    if version < stored_version:
        return Outcome.STALE_VERSION
    if fields != stored_fields:
        raise RecordRefused("version_conflict", f"version {version} is stored with other content")
    return Outcome.UNCHANGED


def account_record(raw: Any) -> AccountRecord:
    """The account a raw record describes, or RecordRefused."""
    row = _mapping(raw)
    try:
        email = email_address(row.get("billing_email"), "billing_email")
    except InvalidAddress as wrong:
        raise RecordRefused("invalid_email", str(wrong)) from None
    return AccountRecord(
        external_id=_text(row, "external_id", MAX_ID_CHARS),
        version=_count(row, "version", minimum=0),
        number=_text(row, "number", MAX_NUMBER_CHARS),
        name=_text(row, "name", MAX_NAME_CHARS),
        billing_email=email,
        currency=_currency(row.get("currency", "usd")),
        portal_enabled=_flag(row, "portal_enabled", True),
    )


def invoice_record(raw: Any) -> InvoiceRecord:
    """The invoice a raw record describes, or RecordRefused; the invoices table's rules, said first."""
    row = _mapping(raw)
    record = InvoiceRecord(
        external_id=_text(row, "external_id", MAX_ID_CHARS),
        version=_count(row, "version", minimum=0),
        account_external_id=_text(row, "account_external_id", MAX_ID_CHARS),
        number=_text(row, "number", MAX_NUMBER_CHARS),
        currency=None if row.get("currency") is None else _currency(row["currency"]),
        total_minor=_count(row, "total_minor", minimum=1),
        issued_on=_date(row, "issued_on"),
        due_on=_date(row, "due_on"),
        discount_minor=_count(row, "discount_minor", minimum=0, default=0),
        discount_until=None if row.get("discount_until") is None else _date(row, "discount_until"),
        customer_visible=_flag(row, "customer_visible", True),
        voided=_flag(row, "voided", False),
        parent_external_id=_optional_text(row, "parent_external_id", MAX_ID_CHARS),
        site_name=_optional_text(row, "site_name", MAX_NAME_CHARS),
    )
    _check_invoice(record)
    return record


def _check_invoice(record: InvoiceRecord) -> None:
    if record.due_on < record.issued_on:
        raise RecordRefused("invalid_dates", "due_on is before issued_on")
    if record.discount_minor and record.discount_minor >= record.total_minor:
        raise RecordRefused("invalid_discount", "discount_minor must be less than total_minor")
    if record.discount_minor and record.discount_until is None:
        raise RecordRefused("invalid_discount", "a discount needs discount_until")
    if record.parent_external_id == record.external_id:
        raise RecordRefused("invalid_parent", "an invoice cannot be its own parent")


def external_lines(kind: object, reference: object, lines: object) -> tuple[str, list[tuple[str, int]]]:
    """The kind and lines of an external payment, or RecordRefused: one line per invoice, amounts positive."""
    if kind not in set(ExternalPaymentKind):
        allowed = ", ".join(ExternalPaymentKind)
        raise RecordRefused("invalid_kind", f"kind must be one of {allowed}")
    _text({"reference": reference}, "reference", MAX_REFERENCE_CHARS)
    if not isinstance(lines, (list, tuple)) or not 1 <= len(lines) <= MAX_EXTERNAL_LINES:
        raise RecordRefused(
            "invalid_lines", f"lines must list 1 to {MAX_EXTERNAL_LINES} (invoice, amount) pairs"
        )
    checked = []
    for line in lines:
        if not isinstance(line, (list, tuple)) or len(line) != 2:
            raise RecordRefused("invalid_lines", "each line is (invoice external id, amount_minor)")
        invoice_id = _text({"invoice": line[0]}, "invoice", MAX_ID_CHARS)
        checked.append((invoice_id, _count({"amount_minor": line[1]}, "amount_minor", minimum=1)))
    if len({invoice for invoice, _ in checked}) != len(checked):
        raise RecordRefused("duplicate_invoice", "an invoice appears on two lines")
    return str(kind), checked


def _mapping(raw: Any) -> dict:
    if not isinstance(raw, dict):
        raise RecordRefused("invalid_record", f"a record is a mapping, not {type(raw).__name__}")
    return raw


def _text(row: dict, field: str, limit: int) -> str:
    value = row.get(field)
    if not isinstance(value, str) or not value.strip():
        raise RecordRefused("missing_field", f"{field} must be non-empty text")
    if len(value) > limit or any(ord(c) < 32 for c in value):
        raise RecordRefused(
            "invalid_field", f"{field} must be at most {limit} characters, no control characters"
        )
    return value


def _optional_text(row: dict, field: str, limit: int) -> str | None:
    return None if row.get(field) in (None, "") else _text(row, field, limit)


def _count(row: dict, field: str, *, minimum: int, default: int | None = None) -> int:
    value = row.get(field, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise RecordRefused("invalid_field", f"{field} must be a whole number of at least {minimum}")
    if value >= 2**63:
        raise RecordRefused("invalid_field", f"{field} is too large")
    return value


def _currency(value: object) -> str:
    if not isinstance(value, str) or not _CURRENCY.match(value):
        raise RecordRefused("invalid_field", "currency must be a lower-case three-letter ISO code")
    return value


def _date(row: dict, field: str) -> date:
    value = row.get(field)
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    elif isinstance(value, date):
        return value
    raise RecordRefused("invalid_field", f"{field} must be a date (YYYY-MM-DD)")


def _flag(row: dict, field: str, default: bool) -> bool:
    value = row.get(field, default)
    if not isinstance(value, bool):
        raise RecordRefused("invalid_field", f"{field} must be true or false")
    return value
